// Copyright (c) Coffer authors.
//
// The records `coffer workload` writes and the ack log it keeps, as
// `coffer verify` checks them (tools/cli_workload.cc). Both are persistent
// formats: a log or a cluster written by one build is verified by another,
// so never change a byte of them.
//
// Records: write n = 1, 2, 3, ... of a tenant puts RecordKey(n), "wl/" + n
// as 12 zero-padded decimal digits, with the value WorkloadValue(tenant, n,
// --value-size).
//
// Ack log: one line "<tenant> <n>\n" per acknowledged write, n in decimal
// without leading zeros. A final line without a newline is torn (the writer
// was killed mid-line) and is not part of the log.
//
// Header-only so that the tool's build lists a single source for both
// commands.

#ifndef COFFER_TOOLS_WORKLOAD_FORMAT_H_
#define COFFER_TOOLS_WORKLOAD_FORMAT_H_

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <system_error>

#include "coffer/cluster.h"
#include "coffer/status.h"
#include "coffer/tenant.h"

namespace coffer::cli {

inline constexpr std::string_view kWorkloadKeyPrefix = "wl/";
inline constexpr size_t kWorkloadKeyDigits = 12;
inline constexpr uint64_t kWorkloadMaxN = 999'999'999'999;
// A value, its key and the batch's framing fit in one write (kMaxWriteBytes).
inline constexpr uint64_t kWorkloadMaxValueSize = kMaxWriteBytes - 1024;

// A decimal number of 1 to 12 digits, without sign or leading zero.
inline bool ParseWorkloadNumber(std::string_view text, uint64_t* value) {
  if (text.empty() || text.size() > kWorkloadKeyDigits ||
      (text.size() > 1 && text[0] == '0')) {
    return false;
  }
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *value);
  return ec == std::errc() && ptr == end;
}

// REQUIRES: 1 <= n <= kWorkloadMaxN
inline std::string RecordKey(uint64_t n) {
  char digits[kWorkloadKeyDigits + 1];
  std::snprintf(digits, sizeof(digits), "%012llu",
                static_cast<unsigned long long>(n));
  return std::string(kWorkloadKeyPrefix) + digits;
}

// The n of a key RecordKey(n) made; false for any other key.
inline bool ParseRecordKey(std::string_view key, uint64_t* n) {
  if (key.size() != kWorkloadKeyPrefix.size() + kWorkloadKeyDigits ||
      !key.starts_with(kWorkloadKeyPrefix)) {
    return false;
  }
  const std::string_view digits = key.substr(kWorkloadKeyPrefix.size());
  if (!std::all_of(digits.begin(), digits.end(),
                   [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  std::from_chars(digits.data(), digits.data() + digits.size(), *n);
  return *n >= 1;
}

namespace workload_internal {

inline uint64_t Fnv1a64(std::string_view bytes) {
  uint64_t hash = 0xcbf29ce484222325;
  for (char c : bytes) {
    hash ^= static_cast<uint8_t>(c);
    hash *= 0x100000001b3;
  }
  return hash;
}

// SplitMix64 (Steele, Lea and Flood, 2014): advances *state and returns the
// next word of the stream.
inline uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

}  // namespace workload_internal

// The value of write n to `tenant` with --value-size `size`:
//
//   header = "<tenant>|<n>|<size>|"   (n and size in decimal)
//   value  = header, then filler up to `size` bytes in all (no filler if the
//            header is already that long)
//   filler byte i = kFiller[(w[i / 8] >> (8 * (i % 8))) & 63], where w[0],
//            w[1], ... are the SplitMix64 words from the state
//            FNV-1a-64(header), and kFiller is "A".."Z" "a".."z" "0".."9" "-_"
//
// The filler is printable and has no runs (a plaintext scan of the data
// directory must not match long runs of one byte), and the header names the
// size, so a value is checked without knowing the run's --value-size and a
// truncated value never passes.
inline std::string WorkloadValue(std::string_view tenant, uint64_t n,
                                 uint64_t size) {
  static constexpr char kFiller[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string value = std::string(tenant) + "|" + std::to_string(n) + "|" +
                      std::to_string(size) + "|";
  uint64_t state = workload_internal::Fnv1a64(value);
  value.reserve(std::max<uint64_t>(size, value.size()));
  while (value.size() < size) {
    const uint64_t word = workload_internal::SplitMix64(&state);
    for (int i = 0; i < 8 && value.size() < size; ++i) {
      value.push_back(kFiller[(word >> (8 * i)) & 63]);
    }
  }
  return value;
}

// Whether `value` is exactly what write n to `tenant` stored, whatever the
// --value-size of the run that wrote it.
inline bool IsWorkloadValue(std::string_view tenant, uint64_t n,
                            std::string_view value) {
  const std::string start = std::string(tenant) + "|" + std::to_string(n) + "|";
  if (!value.starts_with(start)) return false;
  const size_t bar = value.find('|', start.size());
  uint64_t size = 0;
  if (bar == std::string_view::npos ||
      !ParseWorkloadNumber(value.substr(start.size(), bar - start.size()),
                           &size) ||
      size > kWorkloadMaxValueSize) {
    return false;
  }
  return value == WorkloadValue(tenant, n, size);
}

// "<tenant> <n>" (without the newline): a valid tenant id and n >= 1.
inline bool ParseAckLine(std::string_view line, std::string_view* tenant,
                         uint64_t* n) {
  const size_t space = line.find(' ');
  if (space == std::string_view::npos) return false;
  *tenant = line.substr(0, space);
  return ValidateId("tenant", *tenant).ok() &&
         ParseWorkloadNumber(line.substr(space + 1), n) && *n >= 1;
}

struct AckLogContents {
  std::map<std::string, uint64_t> last_n;  // highest n per tenant, by id
  uint64_t lines = 0;                      // complete lines
  uint64_t complete_bytes = 0;  // up to and including the last newline
  bool torn_tail = false;       // a final line without newline was ignored
};

// Reads the ack log at `path`. NotFound if it does not exist;
// InvalidArgument naming the line for a malformed line; IOError if it cannot
// be read.
inline Status ReadAckLog(const std::string& path, AckLogContents* log) {
  *log = AckLogContents();
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code error;
    if (!std::filesystem::exists(path, error) && !error) {
      return Status::NotFound("ack log " + path + " does not exist");
    }
    return Status::IOError("cannot read the ack log " + path);
  }
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof()) {  // no newline after it: torn, and the last line
      log->torn_tail = true;
      break;
    }
    ++log->lines;
    std::string_view tenant;
    uint64_t n = 0;
    if (!ParseAckLine(line, &tenant, &n)) {
      return Status::InvalidArgument(
          "ack log " + path + " line " + std::to_string(log->lines) +
          ": malformed; every line must be '<tenant> <n>' with n >= 1");
    }
    uint64_t& last = log->last_n[std::string(tenant)];
    last = std::max(last, n);
    log->complete_bytes += line.size() + 1;
  }
  if (in.bad()) return Status::IOError("cannot read the ack log " + path);
  return Status::OK();
}

}  // namespace coffer::cli

#endif  // COFFER_TOOLS_WORKLOAD_FORMAT_H_
