// Copyright (c) Coffer authors.

#include "replication/frame.h"

#include <xxhash.h>

#include <cstring>

namespace coffer {

namespace {

constexpr char kFrameMagic[4] = {'C', 'f', 'R', '1'};

void PutFixed(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out->push_back(static_cast<char>(v >> (8 * i)));
}

uint64_t GetFixed(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) {
    v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  }
  return v;
}

}  // namespace

Status EncodeFrame(std::string_view payload, std::string* out) {
  if (payload.size() > kMaxFramePayload) {
    return Status::InvalidArgument("replication message of " +
                                   std::to_string(payload.size()) +
                                   " bytes exceeds the frame limit of " +
                                   std::to_string(kMaxFramePayload));
  }
  out->append(kFrameMagic, sizeof(kFrameMagic));
  PutFixed(out, payload.size(), 4);
  PutFixed(out, XXH3_64bits(payload.data(), payload.size()), 8);
  out->append(payload);
  return Status::OK();
}

Status FrameDecoder::Next(std::string* payload, bool* have) {
  *have = false;
  if (buffer_.size() < kFrameHeaderBytes) {
    // Reject a wrong magic as soon as its bytes are here.
    const size_t n = std::min(buffer_.size(), sizeof(kFrameMagic));
    if (std::memcmp(buffer_.data(), kFrameMagic, n) != 0) {
      return Status::Corruption("replication stream: bad frame magic");
    }
    return Status::OK();
  }
  if (std::memcmp(buffer_.data(), kFrameMagic, sizeof(kFrameMagic)) != 0) {
    return Status::Corruption("replication stream: bad frame magic");
  }
  const uint64_t length = GetFixed(buffer_.data() + 4, 4);
  if (length > kMaxFramePayload) {
    return Status::InvalidArgument(
        "replication stream: frame of " + std::to_string(length) +
        " bytes exceeds the limit of " + std::to_string(kMaxFramePayload));
  }
  if (buffer_.size() < kFrameHeaderBytes + length) return Status::OK();
  const char* body = buffer_.data() + kFrameHeaderBytes;
  if (XXH3_64bits(body, length) != GetFixed(buffer_.data() + 8, 8)) {
    return Status::Corruption("replication stream: frame checksum mismatch");
  }
  payload->assign(body, length);
  buffer_.erase(0, kFrameHeaderBytes + length);
  *have = true;
  return Status::OK();
}

}  // namespace coffer
