// Copyright (c) Coffer authors.
//
// Searches the files of a directory for plaintext: the check behind the
// demo's "0 files contain plaintext".

#ifndef COFFER_TOOLS_PLAINTEXT_SCAN_H_
#define COFFER_TOOLS_PLAINTEXT_SCAN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "coffer/status.h"

namespace coffer::cli {

struct PlaintextScan {
  uint64_t files = 0;             // regular files read
  uint64_t bytes = 0;             // bytes read
  std::vector<std::string> hits;  // files holding at least one needle
};

// Reads every byte of every regular file under `dir` (recursively, not
// following symlinks) and records the files that contain any of `needles`.
// IOError if a file or directory cannot be read: an unread file is never
// reported clean.
Status ScanForPlaintext(const std::string& dir,
                        const std::vector<std::string>& needles,
                        PlaintextScan* result);

}  // namespace coffer::cli

#endif  // COFFER_TOOLS_PLAINTEXT_SCAN_H_
