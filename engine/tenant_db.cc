// Copyright (c) Coffer authors.

#include "engine/tenant_db.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <vector>

#include "engine/per_block_cipher.h"
#include "engine/storage.h"
#include "rocksdb/convenience.h"
#include "rocksdb/env_encryption.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/listener.h"
#include "rocksdb/options.h"
#include "rocksdb/sst_file_reader.h"
#include "rocksdb/transaction_log.h"

namespace coffer {

namespace {

bool EndsWith(const std::string& s, const char* suffix) {
  size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// Keeps TenantDb's usage counters current without a property lookup on the
// write path: each completed flush moves its entries' key and value bytes
// from "unflushed" into table files, and every flush or compaction refreshes
// the size of the live table files.
class UsageListener final : public rocksdb::EventListener {
 public:
  explicit UsageListener(std::shared_ptr<TenantDb::Usage> usage)
      : usage_(std::move(usage)) {}

  void OnFlushCompleted(rocksdb::DB* db,
                        const rocksdb::FlushJobInfo& info) override {
    const rocksdb::TableProperties& p = info.table_properties;
    // raw_key_size counts RocksDB's 8-byte internal suffix per entry.
    const uint64_t suffix = 8 * (p.num_entries + p.num_range_deletions);
    uint64_t flushed = p.raw_key_size + p.raw_value_size;
    flushed = flushed > suffix ? flushed - suffix : 0;
    uint64_t cur = usage_->unflushed.load();
    while (!usage_->unflushed.compare_exchange_weak(
        cur, cur > flushed ? cur - flushed : 0)) {
    }
    RefreshTables(db);
  }

  void OnCompactionCompleted(rocksdb::DB* db,
                             const rocksdb::CompactionJobInfo&) override {
    RefreshTables(db);
  }

 private:
  void RefreshTables(rocksdb::DB* db) {
    uint64_t sst = 0;
    if (db->GetIntProperty(rocksdb::DB::Properties::kLiveSstFilesSize, &sst)) {
      usage_->tables.store(sst);
    }
  }

  std::shared_ptr<TenantDb::Usage> usage_;
};

// A tenant's info LOG, written through its encrypted file system. RocksDB's
// own file logger asserts (aborting the process in builds with assertions,
// such as Debian's) on the line after a failed write, so a full disk would
// bring the whole cluster down: here the first failed write ends the log
// instead (it is diagnostics only; the next open starts a new one).
class InfoLog final : public rocksdb::Logger {
 public:
  explicit InfoLog(std::unique_ptr<rocksdb::FSWritableFile> file)
      : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL),
        file_(std::move(file)) {}
  ~InfoLog() override { Close().PermitUncheckedError(); }

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    struct timeval now;
    ::gettimeofday(&now, nullptr);
    struct tm t;
    ::localtime_r(&now.tv_sec, &t);
    char buf[2048];
    int n = std::snprintf(buf, sizeof(buf),
                          "%04d/%02d/%02d-%02d:%02d:%02d.%06ld ",
                          t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour,
                          t.tm_min, t.tm_sec, static_cast<long>(now.tv_usec));
    va_list copy;
    va_copy(copy, ap);
    int m = std::vsnprintf(buf + n, sizeof(buf) - n - 1, format, copy);
    va_end(copy);
    if (m < 0) return;
    size_t len = std::min(static_cast<size_t>(n + m), sizeof(buf) - 2);
    buf[len++] = '\n';
    std::lock_guard<std::mutex> lock(mu_);
    if (file_ == nullptr || failed_) return;
    failed_ = !file_->Append(rocksdb::Slice(buf, len), rocksdb::IOOptions(),
                             nullptr)
                   .ok();
  }

  void Flush() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (file_ != nullptr && !failed_) {
      failed_ = !file_->Flush(rocksdb::IOOptions(), nullptr).ok();
    }
  }

 protected:
  rocksdb::Status CloseImpl() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (file_ == nullptr) return rocksdb::Status::OK();
    rocksdb::Status s = file_->Close(rocksdb::IOOptions(), nullptr);
    file_.reset();
    return s;
  }

 private:
  std::mutex mu_;
  std::unique_ptr<rocksdb::FSWritableFile> file_;  // guarded by mu_
  bool failed_ = false;                            // guarded by mu_
};

// Notes when RocksDB stops taking writes after a background error (a failed
// log write or sync, flush or compaction: a full disk, an I/O error), and
// when its own recovery clears the error.
class StopListener final : public rocksdb::EventListener {
 public:
  explicit StopListener(std::shared_ptr<TenantDb::StopState> state)
      : state_(std::move(state)) {}

  void OnBackgroundError(rocksdb::BackgroundErrorReason,
                         rocksdb::Status* error) override {
    if (error == nullptr || error->ok()) return;
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->error = *error;
    state_->stopped.store(true);
  }

  void OnErrorRecoveryEnd(
      const rocksdb::BackgroundErrorRecoveryInfo& info) override {
    if (info.new_bg_error.ok()) state_->stopped.store(false);
  }

 private:
  std::shared_ptr<TenantDb::StopState> state_;
};

// Forwards everything to the tenant's info log and remembers the first line
// in which RocksDB's log recovery reported a damaged record ("<file>:
// dropping N bytes; <reason>"): the status DB::Open returns then says only
// what was wrong, not in which write-ahead log. The line holds a file name,
// a byte count and a reason, never user data. Thread-safe.
class RecoveryLogger final : public rocksdb::Logger {
 public:
  explicit RecoveryLogger(std::shared_ptr<rocksdb::Logger> base)
      : rocksdb::Logger(base->GetInfoLogLevel()), base_(std::move(base)) {}

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format,
            va_list ap) override {
    if (std::strstr(format, ": dropping ") != nullptr) {
      va_list copy;
      va_copy(copy, ap);
      char line[512];
      std::vsnprintf(line, sizeof(line), format, copy);
      va_end(copy);
      std::lock_guard<std::mutex> lock(mu_);
      if (first_damage_.empty()) first_damage_ = line;
    }
    base_->Logv(level, format, ap);
  }
  void LogHeader(const char* format, va_list ap) override {
    base_->LogHeader(format, ap);
  }
  size_t GetLogFileSize() const override { return base_->GetLogFileSize(); }
  void Flush() override { base_->Flush(); }
  void SetInfoLogLevel(const rocksdb::InfoLogLevel level) override {
    rocksdb::Logger::SetInfoLogLevel(level);
    base_->SetInfoLogLevel(level);
  }

  std::string first_damage() {
    std::lock_guard<std::mutex> lock(mu_);
    return first_damage_;
  }

 protected:
  rocksdb::Status CloseImpl() override { return base_->Close(); }

 private:
  std::shared_ptr<rocksdb::Logger> base_;
  std::mutex mu_;
  std::string first_damage_;
};

// Checks what RocksDB 7.8 asserts instead of reporting, before it opens the
// database in `dir` (and its archive/): every file holds at least its
// encryption prefix (an empty file, which a crash right after creating it
// leaves, is fine), and IDENTITY decrypts. Corruption names the file.
Status CheckBeforeOpen(rocksdb::FileSystem* fs, const std::string& dir,
                       const std::string& tenant_id) {
  for (const std::string& d : {dir, dir + "/archive"}) {
    DIR* listing = ::opendir(d.c_str());
    if (listing == nullptr) continue;  // not created yet
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(listing)) names.push_back(e->d_name);
    ::closedir(listing);
    for (const std::string& name : names) {
      const std::string path = d + "/" + name;
      struct stat st;
      if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      // LOCK is empty; RocksDB never reads the info logs, and deletes the
      // temporary files a crash left behind.
      if (name == "LOCK" || name == "LOG" || name == "LOG.old" ||
          EndsWith(name, ".dbtmp")) {
        continue;
      }
      if (st.st_size > 0 && st.st_size < static_cast<off_t>(kFilePrefixBytes)) {
        return Status::Corruption(
            "tenant '" + tenant_id + "': " + path + " is " +
            std::to_string(st.st_size) + " bytes, shorter than its " +
            std::to_string(kFilePrefixBytes) +
            "-byte encryption prefix (truncated or not written by Coffer)");
      }
    }
  }
  const std::string identity = dir + "/IDENTITY";
  struct stat st;
  if (::stat(identity.c_str(), &st) == 0 && st.st_size > 0) {
    std::unique_ptr<rocksdb::FSSequentialFile> file;
    rocksdb::IOStatus io = fs->NewSequentialFile(
        identity, rocksdb::FileOptions(), &file, nullptr);
    char scratch[64];
    rocksdb::Slice got;
    if (io.ok()) {
      io = file->Read(sizeof(scratch), rocksdb::IOOptions(), &got, scratch,
                      nullptr);
    }
    if (!io.ok()) {
      return Status::Corruption("tenant '" + tenant_id + "': " + identity +
                                ": " + io.ToString());
    }
  }
  return Status::OK();
}

// After DB::Open failed with a corruption it attributes to the MANIFEST
// being replayed (as RocksDB 7.8 does for a damaged table footer): the first
// table file in `dir` that does not open, with why; empty if all open.
std::string FindDamagedTable(const rocksdb::Options& options,
                             const std::string& dir) {
  DIR* listing = ::opendir(dir.c_str());
  if (listing == nullptr) return "";
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(listing)) {
    if (EndsWith(e->d_name, ".sst")) names.push_back(e->d_name);
  }
  ::closedir(listing);
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    rocksdb::SstFileReader reader(options);
    rocksdb::Status s = reader.Open(dir + "/" + name);
    if (!s.ok()) return dir + "/" + name + ": " + s.ToString();
  }
  return "";
}

}  // namespace

SharedResources::SharedResources(const OpenOptions& opts) : options(opts) {
  block_cache = rocksdb::NewLRUCache(opts.block_cache_bytes);
  // Memtable memory is charged to the block cache, so the two budgets share
  // one bound on the process's memory.
  write_buffers = std::make_shared<rocksdb::WriteBufferManager>(
      opts.write_buffer_budget_bytes, block_cache);
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = block_cache;
  // Index and filter blocks live in the shared cache too: with thousands of
  // tenants, per-table-reader memory would otherwise be unbounded.
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = false;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::Env::Default()->SetBackgroundThreads(
      opts.background_threads > 0 ? opts.background_threads : 1,
      rocksdb::Env::LOW);
  rocksdb::Env::Default()->SetBackgroundThreads(1, rocksdb::Env::HIGH);
}

bool IsNoSpace(const rocksdb::Status& s) {
  if (s.subcode() == rocksdb::Status::kNoSpace) return true;
  // A write that waited in a stall while the database stopped gets
  // Incomplete carrying the background error's text (ENOSPC's, as RocksDB's
  // POSIX file system words it) without its subcode.
  const char* state = s.getState();
  return state != nullptr &&
         std::strstr(state, "No space left on device") != nullptr;
}

Status FromRocks(const rocksdb::Status& s, const std::string& context) {
  if (s.ok()) return Status::OK();
  std::string msg = context + ": " + s.ToString();
  switch (s.code()) {
    case rocksdb::Status::kNotFound:
      return Status::NotFound(msg);
    case rocksdb::Status::kCorruption:
      return Status::Corruption(msg);
    case rocksdb::Status::kInvalidArgument:
      return Status::InvalidArgument(msg);
    case rocksdb::Status::kNotSupported:
      return Status::NotSupported(msg);
    case rocksdb::Status::kBusy:
    case rocksdb::Status::kTimedOut:
    case rocksdb::Status::kTryAgain:
      return Status::Busy(msg);
    default:
      if (IsNoSpace(s)) {
        return Status::IOError(msg + " (disk full: free space, then retry)");
      }
      return Status::IOError(msg);
  }
}

Status TenantDb::Open(const std::string& tenant_id, const std::string& db_dir,
                      std::shared_ptr<Keyring> keyring, bool rocksdb_ctr,
                      const SharedResources& shared,
                      std::unique_ptr<TenantDb>* result) {
  std::unique_ptr<TenantDb> t(new TenantDb());
  t->tenant_id_ = tenant_id;
  t->keyring_ = std::move(keyring);
  // Usually the local disk; a fault-injecting one in tests (storage.h).
  std::shared_ptr<rocksdb::FileSystem> base = BaseFileSystem();
  if (t->keyring_ != nullptr) {
    std::shared_ptr<rocksdb::EncryptionProvider> provider;
    SecretKey current;
    if (rocksdb_ctr && t->keyring_->Get(t->keyring_->current(), &current)) {
      provider = rocksdb::EncryptionProvider::NewCTRProvider(
          NewPerBlockAesCipher(current));
    } else {
      provider = std::make_shared<TenantEncryptionProvider>(
          t->keyring_, "'" + tenant_id + "'");
    }
    t->fs_ = rocksdb::NewEncryptedFS(base, provider);
    if (t->fs_ == nullptr) {
      return Status::IOError(
          "cannot create the encrypted file system of "
          "tenant '" +
          tenant_id + "'");
    }
  } else if (base != rocksdb::FileSystem::Default()) {
    t->fs_ = base;  // plaintext benchmark mode on a replaced base
  }
  if (t->fs_ != nullptr) t->env_ = rocksdb::NewCompositeEnv(t->fs_);

  rocksdb::Options o;
  o.create_if_missing = true;
  o.env = t->env_ != nullptr ? t->env_.get() : rocksdb::Env::Default();
  o.write_buffer_manager = shared.write_buffers;
  o.table_factory = shared.table_factory;
  o.write_buffer_size = shared.options.tenant_write_buffer_bytes;
  o.max_write_buffer_number = 2;
  o.max_background_jobs = 2;
  o.max_open_files = 64;
  // A recycled log file would be rewritten under its old keystream.
  o.recycle_log_file_num = 0;
  o.WAL_ttl_seconds = shared.options.wal_retention_seconds;
  // A lazily reopened tenant keeps its recovered writes in the memtable
  // instead of writing and syncing a table file on every open, and opens its
  // few table files without spawning a thread pool: together they cut cold
  // open P99 at 10,000 tenants from ~48 ms to ~7 ms (bench/README.md).
  o.avoid_flush_during_recovery = true;
  o.max_file_opening_threads = 1;
  o.keep_log_file_num = 2;
  o.max_log_file_size = 1 << 20;
  o.stats_dump_period_sec = 0;
  o.stats_persist_period_sec = 0;
  o.allow_mmap_reads = false;
  o.allow_mmap_writes = false;
  // Every write acknowledged with sync must survive: a torn record at the
  // end of a log (a crash mid-write) is dropped, but a damaged record
  // anywhere else fails the open instead of silently truncating the log
  // there (RocksDB's default, kPointInTimeRecovery, would drop every later
  // write, and let older values of overwritten keys reappear).
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  o.listeners.push_back(std::make_shared<UsageListener>(t->usage_));
  o.listeners.push_back(std::make_shared<StopListener>(t->stop_));
  std::shared_ptr<RecoveryLogger> recovery_log;
  if (t->keyring_ != nullptr) {
    // RocksDB's composite Env writes the info LOG with the plain POSIX
    // logger, bypassing the encrypted file system: give it one that goes
    // through it. The previous run's log is kept as LOG.old.
    const std::string log = db_dir + "/LOG";
    rocksdb::IOOptions io;
    if (t->fs_->FileExists(log, io, nullptr).ok()) {
      t->fs_->RenameFile(log, db_dir + "/LOG.old", io, nullptr)
          .PermitUncheckedError();
    }
    t->fs_->CreateDirIfMissing(db_dir, io, nullptr).PermitUncheckedError();
    std::unique_ptr<rocksdb::FSWritableFile> log_file;
    rocksdb::IOStatus ls = t->fs_->NewWritableFile(log, rocksdb::FileOptions(),
                                                   &log_file, nullptr);
    if (!ls.ok()) {
      return FromRocks(
          ls, "cannot open the info log of tenant '" + tenant_id + "'");
    }
    auto base = std::make_shared<InfoLog>(std::move(log_file));
    base->SetInfoLogLevel(rocksdb::InfoLogLevel::INFO_LEVEL);
    recovery_log = std::make_shared<RecoveryLogger>(std::move(base));
    o.info_log = recovery_log;
    Status s = CheckBeforeOpen(t->fs_.get(), db_dir, tenant_id);
    if (!s.ok()) return s;
  }
  o.create_missing_column_families = true;
  rocksdb::ColumnFamilyOptions system_cf(o);
  system_cf.write_buffer_size = 64 << 10;
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions(o)},
      {kSystemColumnFamily, system_cf}};
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status rs = rocksdb::DB::Open(o, db_dir, families, &handles, &raw);
  if (!rs.ok()) {
    std::string context = "cannot open tenant '" + tenant_id + "'";
    const std::string damage =
        recovery_log != nullptr ? recovery_log->first_damage() : "";
    if (!damage.empty()) {
      context += " (recovery found " + damage + ")";
    } else if (rs.IsCorruption()) {
      const std::string table = FindDamagedTable(o, db_dir);
      if (!table.empty()) context += " (table file " + table + ")";
    }
    return FromRocks(rs, context);
  }
  t->db_.reset(raw);
  // The default family's handle is owned by the DB; the system one is ours.
  delete handles[0];
  t->system_.reset(handles[1]);
  uint64_t sst = 0;
  t->db_->GetIntProperty(rocksdb::DB::Properties::kLiveSstFilesSize, &sst);
  t->usage_->tables.store(sst);
  // Writes recovered from the log stay in the memtable (no flush during
  // recovery): count them, by the size of the live logs, a slight
  // over-estimate that the next flush mostly takes back.
  rocksdb::VectorLogPtr logs;
  if (t->db_->GetSortedWalFiles(logs).ok()) {
    uint64_t bytes = 0;
    for (const auto& log : logs) {
      if (log->Type() == rocksdb::kAliveLogFile) bytes += log->SizeFileBytes();
    }
    t->usage_->unflushed.store(bytes);
  }
  *result = std::move(t);
  return Status::OK();
}

TenantDb::~TenantDb() {
  if (db_ != nullptr) {
    rocksdb::CancelAllBackgroundWork(db_.get(), /*wait=*/true);
    if (system_ != nullptr) {
      db_->DestroyColumnFamilyHandle(system_.release()).PermitUncheckedError();
    }
    db_->Close().PermitUncheckedError();
    db_.reset();
  }
}

Status TenantDb::FlushAll(
    const std::string& marker_key, const std::string& marker_value,
    const std::function<void(const rocksdb::WriteBatch&)>& written) {
  rocksdb::WriteOptions wo;
  rocksdb::WriteBatch marker;
  rocksdb::Status rs = marker.Put(system_.get(), marker_key, marker_value);
  if (rs.ok()) rs = db_->Write(wo, &marker);
  if (rs.ok() && written) written(marker);
  rocksdb::FlushOptions fo;
  fo.wait = true;
  if (rs.ok()) {
    rs = db_->Flush(fo, {db_->DefaultColumnFamily(), system_.get()});
  }
  return FromRocks(rs, "flush of tenant '" + tenant_id_ + "'");
}

Status TenantDb::Resume(bool* reopen) {
  rocksdb::Status rs = db_->Resume();
  if (rs.ok()) stop_->stopped.store(false);
  *reopen = false;
  if (rs.IsBusy()) {
    // RocksDB's own recovery (after a full disk) is running. It looks at the
    // free space only every 5 seconds, and on a loaded machine it can fail
    // and wait again: reopening (the caller first checks the free space)
    // does not wait for it. The error to report is what stopped the writes.
    std::lock_guard<std::mutex> lock(stop_->mu);
    rs = stop_->error;
    *reopen = true;
  } else if (!rs.ok()) {
    // A fatal error (say, a new log file that could not be written) never
    // clears in place, whatever its cause.
    std::lock_guard<std::mutex> lock(stop_->mu);
    *reopen = !IsNoSpace(rs) ||
              stop_->error.severity() >= rocksdb::Status::Severity::kFatalError;
  }
  return FromRocks(rs, "tenant '" + tenant_id_ +
                           "' stopped taking writes after a storage error");
}

uint64_t TenantDb::UsedBytes() const {
  return usage_->tables.load(std::memory_order_relaxed) +
         usage_->unflushed.load(std::memory_order_relaxed);
}

Status CountFilesByKeyVersion(const std::string& db_dir,
                              std::map<uint32_t, uint64_t>* counts) {
  counts->clear();
  DIR* d = ::opendir(db_dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return Status::OK();  // never opened: no files
    return Status::IOError("cannot list " + db_dir + ": " +
                           std::strerror(errno));
  }
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  ::closedir(d);
  for (const std::string& name : names) {
    const std::string path = db_dir + "/" + name;
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;  // deleted meanwhile (obsolete file)
      return Status::IOError("cannot stat " + path + ": " +
                             std::strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) {
      // archive/: write-ahead logs kept for replication.
      std::map<uint32_t, uint64_t> sub;
      Status s = CountFilesByKeyVersion(path, &sub);
      if (!s.ok()) return s;
      for (const auto& [v, n] : sub) (*counts)[v] += n;
      continue;
    }
    if (!S_ISREG(st.st_mode) || name == "LOCK") continue;  // LOCK: empty
    char prefix[kFilePrefixBytes];
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) continue;
      return Status::IOError("cannot open " + path + ": " +
                             std::strerror(errno));
    }
    ssize_t n = ::read(fd, prefix, sizeof(prefix));
    int err = errno;
    ::close(fd);
    if (n < 0) {
      return Status::IOError("cannot read " + path + ": " + std::strerror(err));
    }
    FilePrefixInfo info;
    uint32_t version = 0;  // no valid prefix (an empty file, a foreign file)
    if (n == static_cast<ssize_t>(sizeof(prefix)) &&
        ParseFilePrefix(rocksdb::Slice(prefix, sizeof(prefix)), &info).ok()) {
      version = info.key_version;
    }
    (*counts)[version]++;
  }
  return Status::OK();
}

uint64_t OnDiskUsage(const std::string& db_dir, bool encrypted) {
  DIR* d = ::opendir(db_dir.c_str());
  if (d == nullptr) return 0;
  uint64_t total = 0;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (!EndsWith(name, ".sst") && !EndsWith(name, ".log")) continue;
    struct stat st;
    if (::stat((db_dir + "/" + name).c_str(), &st) != 0) continue;
    uint64_t size = static_cast<uint64_t>(st.st_size);
    if (encrypted) size = size > kFilePrefixBytes ? size - kFilePrefixBytes : 0;
    total += size;
  }
  ::closedir(d);
  return total;
}

}  // namespace coffer
