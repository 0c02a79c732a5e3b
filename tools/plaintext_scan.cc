// Copyright (c) Coffer authors.

#include "tools/plaintext_scan.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string_view>
#include <unordered_map>

namespace coffer::cli {
namespace {

// Needles are found by hashing every window of kWindow bytes of a file and
// comparing in full only where a needle starts with that window.
constexpr size_t kWindow = 8;

class NeedleIndex {
 public:
  explicit NeedleIndex(const std::vector<std::string>& needles) {
    for (const std::string& needle : needles) {
      if (needle.empty()) continue;
      if (needle.size() < kWindow) {
        short_.push_back(&needle);
      } else {
        by_prefix_[std::string_view(needle).substr(0, kWindow)].push_back(
            &needle);
      }
    }
  }

  bool FoundIn(std::string_view data) const {
    for (const std::string* needle : short_) {
      if (data.find(*needle) != std::string_view::npos) return true;
    }
    for (size_t i = 0; i + kWindow <= data.size(); ++i) {
      auto it = by_prefix_.find(data.substr(i, kWindow));
      if (it == by_prefix_.end()) continue;
      for (const std::string* needle : it->second) {
        if (data.substr(i).starts_with(*needle)) return true;
      }
    }
    return false;
  }

 private:
  std::vector<const std::string*> short_;
  std::unordered_map<std::string_view, std::vector<const std::string*>>
      by_prefix_;
};

}  // namespace

Status ScanForPlaintext(const std::string& dir,
                        const std::vector<std::string>& needles,
                        PlaintextScan* result) {
  namespace fs = std::filesystem;
  *result = PlaintextScan();
  const NeedleIndex index(needles);
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec) || it->is_symlink(ec)) continue;
    const std::string path = it->path().string();
    std::ifstream in(path, std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
    if (!in && !in.eof()) return Status::IOError("cannot read " + path);
    ++result->files;
    result->bytes += data.size();
    if (index.FoundIn(data)) result->hits.push_back(path);
  }
  if (ec) return Status::IOError("cannot list " + dir + ": " + ec.message());
  return Status::OK();
}

}  // namespace coffer::cli
