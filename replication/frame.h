// Copyright (c) Coffer authors.
//
// Framing of replication messages on a byte stream.
//
// Frame layout (wire format; never change, bump kFrameMagic instead):
//   [0, 4)   magic "CfR1"
//   [4, 8)   payload length, little-endian u32, at most kMaxFramePayload
//   [8, 16)  XXH3-64 of the payload, little-endian u64
//   [16, ..) payload (a serialized replpb::Envelope)
// A frame with a wrong magic, an oversized length or a bad checksum is a
// protocol error: the connection is closed and retried, the frame never
// applied.

#ifndef COFFER_REPLICATION_FRAME_H_
#define COFFER_REPLICATION_FRAME_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "coffer/status.h"

namespace coffer {

inline constexpr size_t kFrameHeaderBytes = 16;
// Caps the memory one peer can make the other allocate for one frame.
inline constexpr uint32_t kMaxFramePayload = 16u << 20;

// Appends one frame carrying `payload` to *out. InvalidArgument if the
// payload exceeds kMaxFramePayload.
Status EncodeFrame(std::string_view payload, std::string* out);

// Incremental decoder: feed bytes as they arrive, take frames as they
// complete. Holds at most one frame's bytes plus what was fed beyond it.
// Not thread-safe.
class FrameDecoder {
 public:
  void Feed(std::string_view bytes) { buffer_.append(bytes); }

  // If a whole frame is buffered, moves its payload to *payload and sets
  // *have = true; else *have = false. Corruption on a bad magic or checksum,
  // InvalidArgument on an oversized length: the stream is then unusable.
  Status Next(std::string* payload, bool* have);

  size_t buffered() const { return buffer_.size(); }

 private:
  std::string buffer_;
};

}  // namespace coffer

#endif  // COFFER_REPLICATION_FRAME_H_
