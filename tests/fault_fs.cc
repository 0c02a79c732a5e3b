// Copyright (c) Coffer authors.

#include "tests/fault_fs.h"

#include <fnmatch.h>
#include <unistd.h>

#include <filesystem>

namespace coffer::test {

namespace {

using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

std::string Normal(const std::string& path) {
  std::string p = std::filesystem::path(path).lexically_normal().string();
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

const char* OpName(FaultFs::Op op) {
  switch (op) {
    case FaultFs::Op::kCreate:
      return "create";
    case FaultFs::Op::kWrite:
      return "write";
    case FaultFs::Op::kSync:
      return "sync";
    case FaultFs::Op::kRename:
      return "rename";
    case FaultFs::Op::kRead:
      return "read";
  }
  return "?";
}

class FaultWritableFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FaultWritableFile(FaultFs* fs, std::string path,
                    std::unique_ptr<rocksdb::FSWritableFile> target)
      : FSWritableFileOwnerWrapper(std::move(target)),
        fs_(fs),
        path_(std::move(path)) {}

  IOStatus Append(const Slice& data, const IOOptions& o,
                  IODebugContext* dbg) override {
    IOStatus s = fs_->Check(FaultFs::Op::kWrite, path_, true, data.size());
    if (s.ok()) s = target()->Append(data, o, dbg);
    if (s.ok()) fs_->OnAppended(path_, target()->GetFileSize(o, dbg));
    return s;
  }
  IOStatus Append(const Slice& data, const IOOptions& o,
                  const rocksdb::DataVerificationInfo& v,
                  IODebugContext* dbg) override {
    IOStatus s = fs_->Check(FaultFs::Op::kWrite, path_, true, data.size());
    if (s.ok()) s = target()->Append(data, o, v, dbg);
    if (s.ok()) fs_->OnAppended(path_, target()->GetFileSize(o, dbg));
    return s;
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset,
                            const IOOptions& o, IODebugContext* dbg) override {
    IOStatus s = fs_->Check(FaultFs::Op::kWrite, path_, true, data.size());
    if (s.ok()) s = target()->PositionedAppend(data, offset, o, dbg);
    if (s.ok()) fs_->OnAppended(path_, offset + data.size());
    return s;
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset,
                            const IOOptions& o,
                            const rocksdb::DataVerificationInfo& v,
                            IODebugContext* dbg) override {
    IOStatus s = fs_->Check(FaultFs::Op::kWrite, path_, true, data.size());
    if (s.ok()) s = target()->PositionedAppend(data, offset, o, v, dbg);
    if (s.ok()) fs_->OnAppended(path_, offset + data.size());
    return s;
  }
  IOStatus Truncate(uint64_t size, const IOOptions& o,
                    IODebugContext* dbg) override {
    IOStatus s = fs_->CheckMutation(path_);
    if (s.ok()) s = target()->Truncate(size, o, dbg);
    if (s.ok()) fs_->OnTruncated(path_, size);
    return s;
  }
  IOStatus Sync(const IOOptions& o, IODebugContext* dbg) override {
    IOStatus s = fs_->Check(FaultFs::Op::kSync, path_, true);
    if (s.ok()) s = target()->Sync(o, dbg);
    if (s.ok()) fs_->OnSynced(path_);
    return s;
  }
  IOStatus Fsync(const IOOptions& o, IODebugContext* dbg) override {
    IOStatus s = fs_->Check(FaultFs::Op::kSync, path_, true);
    if (s.ok()) s = target()->Fsync(o, dbg);
    if (s.ok()) fs_->OnSynced(path_);
    return s;
  }
  // Not a durability point (sync_file_range writes data, not metadata).
  IOStatus RangeSync(uint64_t offset, uint64_t n, const IOOptions& o,
                     IODebugContext* dbg) override {
    IOStatus s = fs_->CheckMutation(path_);
    if (s.ok()) s = target()->RangeSync(offset, n, o, dbg);
    return s;
  }

 private:
  FaultFs* const fs_;
  const std::string path_;
};

class FaultSequentialFile final : public rocksdb::FSSequentialFileOwnerWrapper {
 public:
  FaultSequentialFile(FaultFs* fs, std::string path,
                      std::unique_ptr<rocksdb::FSSequentialFile> target)
      : FSSequentialFileOwnerWrapper(std::move(target)),
        fs_(fs),
        path_(std::move(path)) {}

  IOStatus Read(size_t n, const IOOptions& o, Slice* result, char* scratch,
                IODebugContext* dbg) override {
    IOStatus s = fs_->Check(FaultFs::Op::kRead, path_, false);
    if (!s.ok()) return s;
    return target()->Read(n, o, result, scratch, dbg);
  }
  IOStatus PositionedRead(uint64_t offset, size_t n, const IOOptions& o,
                          Slice* result, char* scratch,
                          IODebugContext* dbg) override {
    IOStatus s = fs_->Check(FaultFs::Op::kRead, path_, false);
    if (!s.ok()) return s;
    return target()->PositionedRead(offset, n, o, result, scratch, dbg);
  }

 private:
  FaultFs* const fs_;
  const std::string path_;
};

class FaultRandomAccessFile final
    : public rocksdb::FSRandomAccessFileOwnerWrapper {
 public:
  FaultRandomAccessFile(FaultFs* fs, std::string path,
                        std::unique_ptr<rocksdb::FSRandomAccessFile> target)
      : FSRandomAccessFileOwnerWrapper(std::move(target)),
        fs_(fs),
        path_(std::move(path)) {}

  IOStatus Read(uint64_t offset, size_t n, const IOOptions& o, Slice* result,
                char* scratch, IODebugContext* dbg) const override {
    IOStatus s = fs_->Check(FaultFs::Op::kRead, path_, false);
    if (!s.ok()) return s;
    return target()->Read(offset, n, o, result, scratch, dbg);
  }
  IOStatus MultiRead(rocksdb::FSReadRequest* reqs, size_t num,
                     const IOOptions& o, IODebugContext* dbg) override {
    IOStatus s = fs_->Check(FaultFs::Op::kRead, path_, false);
    if (!s.ok()) {
      for (size_t i = 0; i < num; ++i) reqs[i].status = s;
      return s;
    }
    return target()->MultiRead(reqs, num, o, dbg);
  }
  IOStatus ReadAsync(rocksdb::FSReadRequest& req, const IOOptions& o,
                     std::function<void(const rocksdb::FSReadRequest&, void*)> cb,
                     void* cb_arg, void** io_handle, rocksdb::IOHandleDeleter* del,
                     IODebugContext* dbg) override {
    IOStatus s = fs_->Check(FaultFs::Op::kRead, path_, false);
    if (!s.ok()) return s;
    return target()->ReadAsync(req, o, cb, cb_arg, io_handle, del, dbg);
  }

 private:
  FaultFs* const fs_;
  const std::string path_;
};

class FaultDirectory final : public rocksdb::FSDirectoryWrapper {
 public:
  FaultDirectory(FaultFs* fs, std::string path,
                 std::unique_ptr<rocksdb::FSDirectory> target)
      : FSDirectoryWrapper(std::move(target)),
        fs_(fs),
        path_(std::move(path)) {}

  IOStatus Fsync(const IOOptions& o, IODebugContext* dbg) override {
    IOStatus s = fs_->Check(FaultFs::Op::kSync, path_, true);
    if (s.ok()) s = FSDirectoryWrapper::Fsync(o, dbg);
    if (s.ok()) fs_->OnDirSynced(path_);
    return s;
  }
  IOStatus FsyncWithDirOptions(
      const IOOptions& o, IODebugContext* dbg,
      const rocksdb::DirFsyncOptions& options) override {
    IOStatus s = fs_->Check(FaultFs::Op::kSync, path_, true);
    if (s.ok()) s = FSDirectoryWrapper::FsyncWithDirOptions(o, dbg, options);
    if (s.ok()) fs_->OnDirSynced(path_);
    return s;
  }

 private:
  FaultFs* const fs_;
  const std::string path_;
};

}  // namespace

bool MatchesBaseName(const std::string& pattern, const std::string& path) {
  if (pattern.find('/') != std::string::npos) {
    return ::fnmatch(pattern.c_str(), path.c_str(), 0) == 0;
  }
  size_t slash = path.rfind('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  return ::fnmatch(pattern.c_str(), base.c_str(), 0) == 0;
}

FaultFs::FaultFs(std::shared_ptr<rocksdb::FileSystem> base)
    : FileSystemWrapper(std::move(base)) {}

void FaultFs::FailOp(Op op, const std::string& pattern, uint64_t skip,
                     uint64_t times, bool no_space) {
  std::lock_guard<std::mutex> lock(mu_);
  rules_.push_back(Rule{op, pattern, skip, times, no_space});
}

void FaultFs::ClearFaults() {
  std::lock_guard<std::mutex> lock(mu_);
  rules_.clear();
  budget_ = UINT64_MAX;
  cut_at_ = UINT64_MAX;
}

uint64_t FaultFs::injected() const {
  std::lock_guard<std::mutex> lock(mu_);
  return injected_;
}

uint64_t FaultFs::Count(Op op, const std::string& pattern) const {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string prefix = std::string(OpName(op)) + "|";
  uint64_t n = 0;
  for (const auto& [key, calls] : counts_) {
    if (key.rfind(prefix, 0) == 0 &&
        MatchesBaseName(pattern, key.substr(prefix.size()))) {
      n += calls;
    }
  }
  return n;
}

void FaultFs::SetSpaceBudget(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  budget_ = bytes;
}

void FaultFs::RaiseSpaceBudget(uint64_t more_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  budget_ = budget_ > UINT64_MAX - more_bytes ? UINT64_MAX
                                              : budget_ + more_bytes;
}

void FaultFs::ClearSpaceBudget() {
  std::lock_guard<std::mutex> lock(mu_);
  budget_ = UINT64_MAX;
}

uint64_t FaultFs::mutating_ops() const {
  std::lock_guard<std::mutex> lock(mu_);
  return mutating_ops_;
}

void FaultFs::CutPowerAfter(uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  cut_at_ = mutating_ops_ + (n > 0 ? n : 1);
}

bool FaultFs::power_cut() const {
  std::lock_guard<std::mutex> lock(mu_);
  return mutating_ops_ >= cut_at_;
}

IOStatus FaultFs::Check(Op op, const std::string& path, bool mutating,
                        uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  return CheckLocked(op, path, mutating, bytes);
}

IOStatus FaultFs::CheckLocked(Op op, const std::string& path, bool mutating,
                              uint64_t bytes) {
  size_t slash = path.rfind('/');
  counts_[std::string(OpName(op)) + "|" +
          (slash == std::string::npos ? path : path.substr(slash + 1))]++;
  if (mutating) {
    if (++mutating_ops_ >= cut_at_) {
      injected_++;
      return IOStatus::IOError("simulated power cut", path);
    }
  }
  for (Rule& r : rules_) {
    if (r.op != op || !MatchesBaseName(r.pattern, path)) continue;
    const uint64_t n = r.seen++;
    if (n < r.skip || (r.times != 0 && n >= r.skip + r.times)) continue;
    injected_++;
    std::string what = std::string("injected ") + OpName(op) + " failure";
    return r.no_space ? IOStatus::NoSpace(what, path)
                      : IOStatus::IOError(what, path);
  }
  if (bytes > 0) {
    if (bytes > budget_) {
      injected_++;
      return IOStatus::NoSpace("simulated full disk", path);
    }
    if (budget_ != UINT64_MAX) budget_ -= bytes;
  }
  return IOStatus::OK();
}

IOStatus FaultFs::CheckMutation(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  if (++mutating_ops_ >= cut_at_) {
    injected_++;
    return IOStatus::IOError("simulated power cut", path);
  }
  return IOStatus::OK();
}

void FaultFs::TrackNewFile(const std::string& path, uint64_t size,
                           bool created) {
  auto [it, inserted] = files_.try_emplace(path);
  it->second.size = size;
  it->second.synced = size;
  // An existing file keeps its name's state: durable unless created here
  // since its directory's last fsync.
  if (inserted || created) it->second.unlinked_dir = created;
}

void FaultFs::OnAppended(const std::string& path, uint64_t end_offset) {
  std::lock_guard<std::mutex> lock(mu_);
  FileState& f = files_[path];
  if (end_offset > f.size) f.size = end_offset;
}

void FaultFs::OnSynced(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  FileState& f = files_[path];
  f.synced = f.size;
}

void FaultFs::OnTruncated(const std::string& path, uint64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  FileState& f = files_[path];
  f.size = size;
  if (f.synced > size) f.synced = size;
}

void FaultFs::OnDirSynced(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [path, f] : files_) {
    if (DirOf(path) == dir) f.unlinked_dir = false;
  }
  std::vector<Rename> kept;
  for (Rename& r : renames_) {
    if (DirOf(r.dst) != dir) kept.push_back(std::move(r));
  }
  renames_ = std::move(kept);
}

IOStatus FaultFs::NewSequentialFile(
    const std::string& f, const rocksdb::FileOptions& o,
    std::unique_ptr<rocksdb::FSSequentialFile>* r, IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSSequentialFile> file;
  IOStatus s = target()->NewSequentialFile(f, o, &file, dbg);
  if (s.ok()) r->reset(new FaultSequentialFile(this, Normal(f), std::move(file)));
  return s;
}

IOStatus FaultFs::NewRandomAccessFile(
    const std::string& f, const rocksdb::FileOptions& o,
    std::unique_ptr<rocksdb::FSRandomAccessFile>* r, IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSRandomAccessFile> file;
  IOStatus s = target()->NewRandomAccessFile(f, o, &file, dbg);
  if (s.ok()) {
    r->reset(new FaultRandomAccessFile(this, Normal(f), std::move(file)));
  }
  return s;
}

IOStatus FaultFs::NewWritableFile(const std::string& f,
                                  const rocksdb::FileOptions& o,
                                  std::unique_ptr<rocksdb::FSWritableFile>* r,
                                  IODebugContext* dbg) {
  const std::string path = Normal(f);
  std::lock_guard<std::mutex> lock(mu_);
  IOStatus s = CheckLocked(Op::kCreate, path, true, 0);
  if (!s.ok()) return s;
  const bool existed = target()->FileExists(f, IOOptions(), nullptr).ok();
  std::unique_ptr<rocksdb::FSWritableFile> file;
  s = target()->NewWritableFile(f, o, &file, dbg);
  if (!s.ok()) return s;
  // Truncated at once: whatever it held is gone, and a new name is not
  // durable until its directory is fsynced.
  TrackNewFile(path, 0, !existed);
  r->reset(new FaultWritableFile(this, path, std::move(file)));
  return s;
}

IOStatus FaultFs::ReopenWritableFile(
    const std::string& f, const rocksdb::FileOptions& o,
    std::unique_ptr<rocksdb::FSWritableFile>* r, IODebugContext* dbg) {
  const std::string path = Normal(f);
  std::lock_guard<std::mutex> lock(mu_);
  IOStatus s = CheckLocked(Op::kCreate, path, true, 0);
  if (!s.ok()) return s;
  uint64_t size = 0;
  const bool existed =
      target()->GetFileSize(f, IOOptions(), &size, nullptr).ok();
  std::unique_ptr<rocksdb::FSWritableFile> file;
  s = target()->ReopenWritableFile(f, o, &file, dbg);
  if (!s.ok()) return s;
  if (files_.count(path) == 0) TrackNewFile(path, size, !existed);
  r->reset(new FaultWritableFile(this, path, std::move(file)));
  return s;
}

IOStatus FaultFs::ReuseWritableFile(
    const std::string& f, const std::string& old,
    const rocksdb::FileOptions& o,
    std::unique_ptr<rocksdb::FSWritableFile>* r, IODebugContext* dbg) {
  // Coffer never recycles logs (recycle_log_file_num = 0).
  return IOStatus::NotSupported("FaultFs does not reuse files", f);
}

IOStatus FaultFs::NewDirectory(const std::string& name, const IOOptions& io,
                               std::unique_ptr<rocksdb::FSDirectory>* r,
                               IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSDirectory> dir;
  IOStatus s = target()->NewDirectory(name, io, &dir, dbg);
  if (s.ok()) r->reset(new FaultDirectory(this, Normal(name), std::move(dir)));
  return s;
}

IOStatus FaultFs::RenameFile(const std::string& src, const std::string& dst,
                             const IOOptions& io, IODebugContext* dbg) {
  const std::string from = Normal(src), to = Normal(dst);
  std::lock_guard<std::mutex> lock(mu_);
  IOStatus s = CheckLocked(Op::kRename, to, true, 0);
  if (s.ok()) {
    // Matching the source name too, without counting the call twice.
    for (Rule& r : rules_) {
      if (r.op != Op::kRename || MatchesBaseName(r.pattern, to) ||
          !MatchesBaseName(r.pattern, from)) {
        continue;
      }
      const uint64_t n = r.seen++;
      if (n < r.skip || (r.times != 0 && n >= r.skip + r.times)) continue;
      injected_++;
      return IOStatus::IOError("injected rename failure", from);
    }
  }
  if (!s.ok()) return s;
  Rename rename;
  rename.src = from;
  rename.dst = to;
  rename.replaced =
      rocksdb::ReadFileToString(target(), dst, &rename.old_bytes).ok();
  s = target()->RenameFile(src, dst, io, dbg);
  if (!s.ok()) return s;
  auto it = files_.find(from);
  if (it != files_.end()) {
    files_[to] = it->second;
    files_.erase(from);
  } else {
    files_.erase(to);  // replaced by an untracked (durable) file
  }
  renames_.push_back(std::move(rename));
  return s;
}

IOStatus FaultFs::DeleteFile(const std::string& f, const IOOptions& io,
                             IODebugContext* dbg) {
  const std::string path = Normal(f);
  std::lock_guard<std::mutex> lock(mu_);
  if (++mutating_ops_ >= cut_at_) {
    injected_++;
    return IOStatus::IOError("simulated power cut", path);
  }
  IOStatus s = target()->DeleteFile(f, io, dbg);
  if (s.ok()) files_.erase(path);
  return s;
}

IOStatus FaultFs::Truncate(const std::string& f, size_t size,
                           const IOOptions& io, IODebugContext* dbg) {
  const std::string path = Normal(f);
  IOStatus s = CheckMutation(path);
  if (s.ok()) s = target()->Truncate(f, size, io, dbg);
  if (s.ok()) OnTruncated(path, size);
  return s;
}

IOStatus FaultFs::GetFreeSpace(const std::string& path, const IOOptions& io,
                               uint64_t* free, IODebugContext* dbg) {
  IOStatus s = target()->GetFreeSpace(path, io, free, dbg);
  std::lock_guard<std::mutex> lock(mu_);
  if (s.ok() && budget_ < *free) *free = budget_;
  return s;
}

IOStatus FaultFs::SimulatePowerLoss() {
  std::lock_guard<std::mutex> lock(mu_);
  const IOOptions io;
  IOStatus first;
  auto note = [&first](IOStatus s) {
    if (!s.ok() && first.ok()) first = s;
  };
  // Renames not made durable are undone, newest first.
  for (auto r = renames_.rbegin(); r != renames_.rend(); ++r) {
    if (!target()->FileExists(r->dst, io, nullptr).ok()) continue;
    note(target()->RenameFile(r->dst, r->src, io, nullptr));
    auto it = files_.find(r->dst);
    if (it != files_.end()) {
      files_[r->src] = it->second;
      files_.erase(it);
    }
    if (r->replaced) {
      note(rocksdb::WriteStringToFile(target(), r->old_bytes, r->dst,
                                      /*should_sync=*/false));
    }
  }
  for (const auto& [path, f] : files_) {
    if (!target()->FileExists(path, io, nullptr).ok()) continue;
    if (f.unlinked_dir) {
      note(target()->DeleteFile(path, io, nullptr));
      continue;
    }
    uint64_t size = 0;
    IOStatus s = target()->GetFileSize(path, io, &size, nullptr);
    note(s);
    // Through POSIX: the default FileSystem has no Truncate by name.
    if (s.ok() && size > f.synced &&
        ::truncate(path.c_str(), static_cast<off_t>(f.synced)) != 0) {
      note(IOStatus::IOError("cannot truncate", path));
    }
  }
  files_.clear();
  renames_.clear();
  rules_.clear();
  budget_ = UINT64_MAX;
  cut_at_ = UINT64_MAX;
  mutating_ops_ = 0;
  return first;
}

}  // namespace coffer::test
