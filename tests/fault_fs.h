// Copyright (c) Coffer authors.
//
// FaultFs: a RocksDB FileSystem for tests that sits under the whole engine
// (engine/storage.h) and fails chosen operations, runs out of space, and
// loses power.
//
// Faults. FailOp(op, pattern, skip, times) fails operations of one kind on
// files whose base name matches `pattern` (fnmatch: "*.log", "MANIFEST-*",
// "TENANT", "CLUSTER*"; a pattern with a '/' matches the whole path, as in
// "*/tenants/acme/db/*.sst"): the first `skip` matching calls pass, the next
// `times` fail (0: every one from then on). A failed call never reaches the
// disk. Failures are IOError, or NoSpace (ENOSPC) when asked.
//
// Full disk. SetSpaceBudget(n): once n more bytes have been written through
// this FileSystem, every write fails with NoSpace (nothing of it is written)
// until RaiseSpaceBudget or ClearSpaceBudget: "space returns". The budget
// counts bytes written, not bytes stored: deleting files gives nothing back.
//
// Power loss. The model, deliberately pessimistic, of a disk whose cache
// dies with the power:
//   - Data: a file written through this FileSystem keeps exactly the bytes
//     it had at its last successful Sync/Fsync (RangeSync and Close do not
//     count); the tail written after it is lost (truncated, never torn at
//     random). Files never opened for writing are durable as they are.
//   - Names: a file created since its directory was last fsynced
//     disappears, even if its data was synced; a rename whose directory was
//     not fsynced after it is undone (the renamed file returns to its old
//     name and a file it replaced gets its old bytes back).
//   - Not modelled: deletions are durable at once (undoing them would only
//     bring back obsolete files), directories created are durable at once,
//     and only file and directory operations made through this FileSystem
//     are seen (the engine's POSIX-only files, such as the audit trail, are
//     not tracked; see engine/storage.h).
// CutPowerAfter(n) makes every mutating operation (create, write, sync,
// rename, delete, truncate, directory fsync) from the n-th on fail, as if
// the machine stopped there; the process can then be closed down, and
// SimulatePowerLoss() applies the model above to the disk and restores
// power.
//
// Thread-safety: all methods are thread-safe.

#ifndef COFFER_TESTS_FAULT_FS_H_
#define COFFER_TESTS_FAULT_FS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "rocksdb/file_system.h"

namespace coffer::test {

class FaultFs final : public rocksdb::FileSystemWrapper {
 public:
  enum class Op {
    kCreate,  // NewWritableFile / ReopenWritableFile
    kWrite,   // Append, PositionedAppend
    kSync,    // Sync, Fsync of a file; Fsync of a directory (its name)
    kRename,  // RenameFile (matches the source or the target name)
    kRead,    // Read, PositionedRead, MultiRead of an open file
  };

  explicit FaultFs(std::shared_ptr<rocksdb::FileSystem> base =
                       rocksdb::FileSystem::Default());

  const char* Name() const override { return "CofferFaultFs"; }

  // ---- injected failures ----
  void FailOp(Op op, const std::string& pattern, uint64_t skip = 0,
              uint64_t times = 0, bool no_space = false);
  void ClearFaults();
  // Failures injected so far (rules, budget and power cut together).
  uint64_t injected() const;
  // Calls of `op` on files matching `pattern` seen so far, failed or not.
  uint64_t Count(Op op, const std::string& pattern) const;

  // ---- full disk ----
  void SetSpaceBudget(uint64_t bytes);
  void RaiseSpaceBudget(uint64_t more_bytes);
  void ClearSpaceBudget();

  // ---- power ----
  // Mutating operations seen since construction or the last power loss.
  uint64_t mutating_ops() const;
  // Fails every mutating operation from the n-th (1-based, counted from
  // now) on. 1 cuts at once.
  void CutPowerAfter(uint64_t n);
  bool power_cut() const;
  // Applies the power-loss model to the disk, forgets all tracking, restores
  // power and clears every fault. REQUIRES: no file open for writing (close
  // the cluster first). Returns the first error met while doing so.
  rocksdb::IOStatus SimulatePowerLoss();

  // ---- FileSystem ----
  rocksdb::IOStatus NewSequentialFile(
      const std::string& f, const rocksdb::FileOptions& o,
      std::unique_ptr<rocksdb::FSSequentialFile>* r,
      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewRandomAccessFile(
      const std::string& f, const rocksdb::FileOptions& o,
      std::unique_ptr<rocksdb::FSRandomAccessFile>* r,
      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewWritableFile(
      const std::string& f, const rocksdb::FileOptions& o,
      std::unique_ptr<rocksdb::FSWritableFile>* r,
      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(
      const std::string& f, const rocksdb::FileOptions& o,
      std::unique_ptr<rocksdb::FSWritableFile>* r,
      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(
      const std::string& f, const std::string& old,
      const rocksdb::FileOptions& o,
      std::unique_ptr<rocksdb::FSWritableFile>* r,
      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewDirectory(const std::string& name,
                                 const rocksdb::IOOptions& io,
                                 std::unique_ptr<rocksdb::FSDirectory>* r,
                                 rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& dst,
                               const rocksdb::IOOptions& io,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteFile(const std::string& f,
                               const rocksdb::IOOptions& io,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus Truncate(const std::string& f, size_t size,
                             const rocksdb::IOOptions& io,
                             rocksdb::IODebugContext* dbg) override;
  // The disk's free space, or the space budget if smaller.
  rocksdb::IOStatus GetFreeSpace(const std::string& path,
                                 const rocksdb::IOOptions& io, uint64_t* free,
                                 rocksdb::IODebugContext* dbg) override;

  // ---- for the file wrappers (fault_fs.cc) ----
  // The injected failure for `op` on `path` (consuming a rule's count), or
  // OK. `mutating` operations also count towards, and fail after, a power
  // cut; `bytes` > 0 are charged against the space budget.
  rocksdb::IOStatus Check(Op op, const std::string& path, bool mutating,
                          uint64_t bytes = 0);
  rocksdb::IOStatus CheckMutation(const std::string& path);
  void OnAppended(const std::string& path, uint64_t end_offset);
  void OnSynced(const std::string& path);
  void OnTruncated(const std::string& path, uint64_t size);
  void OnDirSynced(const std::string& dir);

 private:
  struct Rule {
    Op op;
    std::string pattern;
    uint64_t skip;
    uint64_t times;  // 0: unlimited
    bool no_space;
    uint64_t seen = 0;
  };
  // A file written through this FileSystem.
  struct FileState {
    uint64_t size = 0;    // bytes written
    uint64_t synced = 0;  // bytes at the last successful sync
    bool unlinked_dir = true;  // created since its directory's last fsync
  };
  struct Rename {
    std::string src, dst;
    bool replaced = false;    // dst existed before
    std::string old_bytes;    // its bytes then
  };

  rocksdb::IOStatus CheckLocked(Op op, const std::string& path, bool mutating,
                                uint64_t bytes);
  void TrackNewFile(const std::string& path, uint64_t size, bool created);

  mutable std::mutex mu_;
  std::vector<Rule> rules_;                  // guarded by mu_
  std::map<std::string, uint64_t> counts_;   // "op|basename" -> calls
  uint64_t injected_ = 0;
  uint64_t budget_ = UINT64_MAX;  // bytes that may still be written
  uint64_t mutating_ops_ = 0;
  uint64_t cut_at_ = UINT64_MAX;  // first failing mutating op
  std::map<std::string, FileState> files_;
  std::vector<Rename> renames_;  // not yet made durable, oldest first
};

// fnmatch of `pattern` against the last component of `path`, or against the
// whole path when `pattern` holds a '/'.
bool MatchesBaseName(const std::string& pattern, const std::string& path);

}  // namespace coffer::test

#endif  // COFFER_TESTS_FAULT_FS_H_
