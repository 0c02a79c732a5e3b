// Copyright (c) Coffer authors.

#include "engine/record_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>

namespace coffer {

namespace {

constexpr char kMagic[8] = {'C', 'o', 'f', 'f', 'e', 'r', 'R', 1};
constexpr size_t kHeaderBytes = sizeof(kMagic) + 8;
constexpr size_t kTrailerBytes = 8;

void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) {
    v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  }
  return v;
}

Status Errno(const std::string& what, const std::string& path) {
  std::string msg = what + " " + path + ": " + std::strerror(errno);
  if (errno == ENOSPC) msg += " (disk full)";
  return Status::IOError(msg);
}

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

}  // namespace

Status WriteAll(int fd, const std::string& path, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("cannot write", path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::OK();
}

Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open directory", dir);
  Status s;
  if (::fsync(fd) != 0) s = Errno("cannot fsync directory", dir);
  ::close(fd);
  return s;
}

Status WriteRecordFile(const std::string& path, std::string_view payload) {
  std::string bytes(kMagic, sizeof(kMagic));
  PutU64(&bytes, payload.size());
  bytes.append(payload);
  PutU64(&bytes, XXH3_64bits(bytes.data(), bytes.size()));

  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("cannot create", tmp);
  Status s = WriteAll(fd, tmp, bytes);
  if (s.ok() && ::fsync(fd) != 0) s = Errno("cannot fsync", tmp);
  if (::close(fd) != 0 && s.ok()) s = Errno("cannot close", tmp);
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    s = Errno("cannot rename onto", path);
  }
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  return SyncDir(DirOf(path));
}

Status ReadRecordFile(const std::string& path, std::string* payload) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(path + " does not exist");
    return Errno("cannot open", path);
  }
  std::string bytes;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      Status s = Errno("cannot read", path);
      ::close(fd);
      return s;
    }
    if (n == 0) break;
    bytes.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return ParseRecordFile(path, bytes, payload);
}

Status ParseRecordFile(const std::string& path, std::string_view bytes,
                       std::string* payload) {
  if (bytes.size() < kHeaderBytes + kTrailerBytes ||
      std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return Status::Corruption(path +
                              " is torn or not a Coffer catalog record (" +
                              std::to_string(bytes.size()) + " bytes)");
  }
  const uint64_t len = GetU64(bytes.data() + sizeof(kMagic));
  if (len != bytes.size() - kHeaderBytes - kTrailerBytes) {
    return Status::Corruption(path + " is truncated or torn (length field " +
                              std::to_string(len) + ", file " +
                              std::to_string(bytes.size()) + " bytes)");
  }
  const size_t body_end = bytes.size() - kTrailerBytes;
  if (XXH3_64bits(bytes.data(), body_end) != GetU64(bytes.data() + body_end)) {
    return Status::Corruption(path +
                              " fails its checksum (altered or damaged); "
                              "it was left untouched");
  }
  payload->assign(bytes.data() + kHeaderBytes, len);
  return Status::OK();
}

}  // namespace coffer
