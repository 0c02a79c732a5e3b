// Copyright (c) Coffer authors.
//
// Commit timestamps in the write-ahead log. Every client write batch carries
// its commit time as a RocksDB log-data record (written to the WAL, never to
// the memtable, consuming no sequence number), so a replica learns exactly
// when each shipped batch was committed and lag can be stated in seconds.
//
// Record layout (wire and disk format; never change): "cts1" then the commit
// time in microseconds since the Unix epoch, little-endian u64.

#ifndef COFFER_ENGINE_COMMIT_STAMP_H_
#define COFFER_ENGINE_COMMIT_STAMP_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace coffer {

inline constexpr size_t kCommitStampBytes = 12;

inline std::string EncodeCommitStamp(uint64_t unix_micros) {
  std::string out = "cts1";
  for (int i = 0; i < 8; ++i) {
    out.push_back(static_cast<char>((unix_micros >> (8 * i)) & 0xff));
  }
  return out;
}

// False if `blob` is not a commit stamp.
inline bool DecodeCommitStamp(std::string_view blob, uint64_t* unix_micros) {
  if (blob.size() != kCommitStampBytes || blob.substr(0, 4) != "cts1") {
    return false;
  }
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) {
    v = (v << 8) | static_cast<uint8_t>(blob[4 + i]);
  }
  *unix_micros = v;
  return true;
}

}  // namespace coffer

#endif  // COFFER_ENGINE_COMMIT_STAMP_H_
