// Copyright (c) Coffer authors.

#include "engine/record_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>

#include "engine/storage.h"
#include "rocksdb/file_system.h"

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

// The same for a failed FileSystem call.
Status IoError(const std::string& what, const std::string& path,
               const rocksdb::IOStatus& io) {
  std::string msg = what + " " + path + ": " + io.ToString();
  if (io.IsNoSpace()) msg += " (disk full: free space, then retry)";
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
  std::shared_ptr<rocksdb::FileSystem> fs = BaseFileSystem();
  std::unique_ptr<rocksdb::FSDirectory> d;
  rocksdb::IOStatus io =
      fs->NewDirectory(dir, rocksdb::IOOptions(), &d, nullptr);
  if (!io.ok()) return IoError("cannot open directory", dir, io);
  io = d->Fsync(rocksdb::IOOptions(), nullptr);
  Status s;
  if (!io.ok()) s = IoError("cannot fsync directory", dir, io);
  d->Close(rocksdb::IOOptions(), nullptr).PermitUncheckedError();
  return s;
}

Status WriteRecordFile(const std::string& path, std::string_view payload) {
  std::string bytes(kMagic, sizeof(kMagic));
  PutU64(&bytes, payload.size());
  bytes.append(payload);
  PutU64(&bytes, XXH3_64bits(bytes.data(), bytes.size()));

  // Through the base FileSystem (storage.h), so that tests can fail or
  // lose any of these steps.
  std::shared_ptr<rocksdb::FileSystem> fs = BaseFileSystem();
  const rocksdb::IOOptions io_opts;
  const std::string tmp = path + ".tmp";
  std::unique_ptr<rocksdb::FSWritableFile> f;
  rocksdb::IOStatus io =
      fs->NewWritableFile(tmp, rocksdb::FileOptions(), &f, nullptr);
  if (!io.ok()) return IoError("cannot create", tmp, io);
  // Records are for the owner only, like the 0700 data directory; the
  // FileSystem creates files 0644.
  Status s;
  if (::chmod(tmp.c_str(), 0600) != 0) s = Errno("cannot restrict", tmp);
  if (s.ok()) {
    io = f->Append(bytes, io_opts, nullptr);
    if (!io.ok()) s = IoError("cannot write", tmp, io);
  }
  if (s.ok()) {
    io = f->Fsync(io_opts, nullptr);
    if (!io.ok()) s = IoError("cannot fsync", tmp, io);
  }
  io = f->Close(io_opts, nullptr);
  if (!io.ok() && s.ok()) s = IoError("cannot close", tmp, io);
  f.reset();
  if (s.ok()) {
    io = fs->RenameFile(tmp, path, io_opts, nullptr);
    if (!io.ok()) s = IoError("cannot rename onto", path, io);
  }
  if (!s.ok()) {
    fs->DeleteFile(tmp, io_opts, nullptr).PermitUncheckedError();
    return s;
  }
  return SyncDir(DirOf(path));
}

Status ReadRecordFile(const std::string& path, std::string* payload) {
  std::string bytes;
  rocksdb::IOStatus io =
      rocksdb::ReadFileToString(BaseFileSystem().get(), path, &bytes);
  if (io.IsNotFound() || io.IsPathNotFound()) {
    return Status::NotFound(path + " does not exist");
  }
  if (!io.ok()) return IoError("cannot read", path, io);
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
