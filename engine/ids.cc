// Copyright (c) Coffer authors.
//
// Validation of ids and parsing of sizes: the first line of defence against
// path traversal through tenant ids and against malformed operator input.

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "coffer/cluster.h"

namespace coffer {

namespace {

constexpr size_t kMaxIdLength = 63;

bool IsLowerAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

std::string Printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 40)) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out += c;
    } else {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  if (s.size() > 40) out += "...";
  return out;
}

}  // namespace

Status ValidateId(std::string_view kind, std::string_view id) {
  std::string what = std::string(kind) + " id";
  if (id.empty()) return Status::InvalidArgument(what + " is empty");
  if (id.size() > kMaxIdLength) {
    return Status::InvalidArgument(what + " is " + std::to_string(id.size()) +
                                   " bytes long; the maximum is 63");
  }
  if (!IsLowerAlnum(id[0])) {
    return Status::InvalidArgument(
        what + " '" + Printable(id) +
        "' must start with a lower-case letter or digit");
  }
  for (char c : id) {
    if (!IsLowerAlnum(c) && c != '-' && c != '_') {
      return Status::InvalidArgument(
          what + " '" + Printable(id) +
          "' may contain only a-z, 0-9, '-' and '_'");
    }
  }
  return Status::OK();
}

Status ParseSize(std::string_view text, uint64_t* bytes) {
  auto bad = [&](const char* why) {
    return Status::InvalidArgument("size '" + Printable(text) + "' " + why +
                                   " (use bytes or a KiB/MiB/GiB suffix)");
  };
  size_t i = 0;
  uint64_t value = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10) {
      return bad("is too large");
    }
    value = value * 10 + digit;
    ++i;
  }
  if (i == 0) return bad("does not start with a number");
  std::string_view suffix = text.substr(i);
  if (!suffix.empty() && suffix[0] == '.') return bad("is not a whole number");
  int shift = 0;
  if (suffix.empty() || suffix == "B") {
    shift = 0;
  } else if (suffix == "K" || suffix == "KB" || suffix == "KiB") {
    shift = 10;
  } else if (suffix == "M" || suffix == "MB" || suffix == "MiB") {
    shift = 20;
  } else if (suffix == "G" || suffix == "GB" || suffix == "GiB") {
    shift = 30;
  } else if (suffix == "T" || suffix == "TB" || suffix == "TiB") {
    shift = 40;
  } else {
    return bad("has an unknown unit");
  }
  if (shift > 0 && value > (std::numeric_limits<uint64_t>::max() >> shift)) {
    return bad("is too large");
  }
  *bytes = value << shift;
  return Status::OK();
}

}  // namespace coffer
