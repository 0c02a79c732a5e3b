// Copyright (c) Coffer authors.
//
// Fuzz target: the replication frame decoder (replication/frame.h) as the TLS
// channel and the admin channel run it on bytes from the network.
// Input: byte 0 chooses how many bytes arrive per read (1..256), the rest is
// the byte stream. Every complete frame's payload is parsed as an Envelope,
// as the channel does next.
// Invariants: a decoded payload is within the frame limit; re-encoding the
// decoded payloads and decoding them again gives them back, whole.

#include <algorithm>
#include <string>
#include <vector>

#include "replication/frame.h"
#include "replication/proto/replication.pb.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace coffer;
  if (size == 0) return 0;
  const size_t chunk = static_cast<size_t>(data[0]) + 1;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);

  FrameDecoder decoder;
  std::vector<std::string> payloads;
  bool broken = false;
  while (!in.empty() && !broken) {
    const size_t n = std::min(chunk, in.size());
    decoder.Feed(in.substr(0, n));
    in.remove_prefix(n);
    for (;;) {
      std::string payload;
      bool have = false;
      if (!decoder.Next(&payload, &have).ok()) {
        broken = true;  // the connection would be closed here
        break;
      }
      if (!have) break;
      FUZZ_CHECK(payload.size() <= kMaxFramePayload);
      replpb::Envelope message;
      (void)message.ParseFromString(payload);
      payloads.push_back(std::move(payload));
    }
  }

  std::string wire;
  for (const std::string& p : payloads) FUZZ_CHECK(EncodeFrame(p, &wire).ok());
  FrameDecoder again;
  again.Feed(wire);
  for (const std::string& p : payloads) {
    std::string payload;
    bool have = false;
    FUZZ_CHECK(again.Next(&payload, &have).ok());
    FUZZ_CHECK(have && payload == p);
  }
  std::string rest;
  bool have = true;
  FUZZ_CHECK(again.Next(&rest, &have).ok() && !have);
  FUZZ_CHECK(again.buffered() == 0);
  return 0;
}
