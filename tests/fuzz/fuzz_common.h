// Copyright (c) Coffer authors.
//
// Helpers shared by the fuzz targets in tests/fuzz/ and their seed-corpus
// generator: fixed test keys (so a target reaches past an authenticated outer
// layer), a per-process scratch directory, and a check that aborts (so the
// fuzzer and the replay tests report a broken invariant like a crash).
//
// The keys here are public test constants: they protect nothing and are used
// only by fuzzing and its seed corpora.

#ifndef COFFER_TESTS_FUZZ_FUZZ_COMMON_H_
#define COFFER_TESTS_FUZZ_FUZZ_COMMON_H_

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>

#include <google/protobuf/stubs/logging.h>

#include "coffer/key_provider.h"
#include "coffer/status.h"
#include "engine/secure.h"

// Aborts with the failed condition: a broken invariant is a finding.
#define FUZZ_CHECK(cond)                                                 \
  do {                                                                   \
    if (!(cond)) {                                                       \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__,   \
                   __LINE__, #cond);                                     \
      std::abort();                                                      \
    }                                                                    \
  } while (0)

namespace coffer::fuzz {

// Protobuf logs every string field with invalid UTF-8 it parses; on fuzzed
// input that is most inputs, and the logging would dominate the run time.
inline const bool kProtobufLogsQuiet =
    (google::protobuf::SetLogHandler(nullptr), true);

// 32 bytes each.
inline constexpr std::string_view kMasterKeyBytes =
    "coffer fuzz: fixed master key 01";
inline constexpr std::string_view kFixedKeyBytes =
    "coffer fuzz: fixed test key   02";
inline constexpr std::string_view kSecondKeyBytes =
    "coffer fuzz: fixed test key   03";

// Sets up setup-time state or dies with `what`: a target that cannot set up
// must not silently test nothing.
inline void CheckOk(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "fuzz setup: %s: %s\n", what, s.ToString().c_str());
    std::abort();
  }
}

// With COFFER_FUZZ_VERBOSE set, prints how far an input got (`step` and its
// status), to check that seeds reach past the layers they are meant to.
inline void Note(const char* step, const Status& s) {
  static const bool verbose = std::getenv("COFFER_FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "  %s: %s\n", step, s.ToString().c_str());
}

inline SecretKey MakeKey(std::string_view bytes) {
  SecretKey key;
  CheckOk(SecretKey::FromBytes(bytes, &key), "fixed key");
  return key;
}

// A directory of this process under $TMPDIR (or /tmp), removed at exit.
inline const std::string& ScratchDir() {
  struct Dir {
    std::string path;
    Dir() {
      const char* tmp = std::getenv("TMPDIR");
      std::string base = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
      base += "/coffer-fuzz-XXXXXX";
      if (::mkdtemp(base.data()) == nullptr) {
        std::perror("fuzz setup: mkdtemp");
        std::abort();
      }
      path = base;
    }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static Dir dir;
  return dir.path;
}

// Replaces `path` with `bytes` (no fsync: scratch files only).
inline void WriteFileOrDie(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
}

inline std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "fuzz: cannot read %s\n", path.c_str());
    std::abort();
  }
  return std::string((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
}

inline void MakeDirOrDie(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) {
    std::fprintf(stderr, "fuzz: cannot create %s\n", path.c_str());
    std::abort();
  }
}

// A file key provider holding kMasterKeyBytes (its key file lies in
// `key_dir`, default ScratchDir()/keys). The same key, so the same key id,
// as the one the seed corpora were written with.
inline std::shared_ptr<KeyProvider> FixedKeyProvider(
    const std::string& key_dir = "") {
  const std::string dir = key_dir.empty() ? ScratchDir() + "/keys" : key_dir;
  MakeDirOrDie(dir);
  const std::string path = dir + "/master.key";
  WriteFileOrDie(path, kMasterKeyBytes);
  ::chmod(path.c_str(), 0600);
  std::shared_ptr<KeyProvider> keys;
  CheckOk(NewFileKeyProvider(path, &keys), "master key provider");
  return keys;
}

}  // namespace coffer::fuzz

#endif  // COFFER_TESTS_FUZZ_FUZZ_COMMON_H_
