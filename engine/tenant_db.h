// Copyright (c) Coffer authors.
//
// TenantDb: one open RocksDB instance of one tenant, on a file system that
// encrypts every file with the tenant's keys, using the cluster's shared
// block cache, memtable budget and background threads.
//
// Thread-safety: all methods are thread-safe (RocksDB's DB is).

#ifndef COFFER_ENGINE_TENANT_DB_H_
#define COFFER_ENGINE_TENANT_DB_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "coffer/options.h"
#include "coffer/status.h"
#include "engine/encryption_provider.h"
#include "rocksdb/cache.h"
#include "rocksdb/write_batch.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "rocksdb/table.h"
#include "rocksdb/write_buffer_manager.h"

namespace coffer {

// The column family holding Coffer's own records (never user data).
inline constexpr char kSystemColumnFamily[] = "coffer.system";

// Resources shared by every tenant of a cluster. Built once at Cluster::Open.
struct SharedResources {
  explicit SharedResources(const OpenOptions& options);

  OpenOptions options;
  std::shared_ptr<rocksdb::Cache> block_cache;
  std::shared_ptr<rocksdb::WriteBufferManager> write_buffers;
  std::shared_ptr<rocksdb::TableFactory> table_factory;
};

class TenantDb {
 public:
  // Opens (creating if missing) the database in `db_dir`. With a null
  // keyring the files are plaintext; with `rocksdb_ctr` they are encrypted
  // by RocksDB's CTR provider under the current key (benchmarks only).
  static Status Open(const std::string& tenant_id, const std::string& db_dir,
                     std::shared_ptr<Keyring> keyring, bool rocksdb_ctr,
                     const SharedResources& shared,
                     std::unique_ptr<TenantDb>* result);

  // Waits for background work and closes the database.
  ~TenantDb();
  TenantDb(const TenantDb&) = delete;
  TenantDb& operator=(const TenantDb&) = delete;

  rocksdb::DB* db() const { return db_.get(); }
  // Null in plaintext mode.
  const std::shared_ptr<Keyring>& keyring() const { return keyring_; }
  // The encrypted file system (null in plaintext mode, unless the base
  // file system was replaced: storage.h).
  rocksdb::FileSystem* fs() const { return fs_.get(); }
  rocksdb::ColumnFamilyHandle* system() const { return system_.get(); }
  const std::string& tenant_id() const { return tenant_id_; }

  // Writes `marker_key` into the system column family and flushes every
  // family: the memtables switch, so the current write-ahead log becomes
  // obsolete even when no user data was pending. `written`, if set, gets
  // the marker's batch as committed (its header holds its sequence) before
  // the flush.
  Status FlushAll(
      const std::string& marker_key, const std::string& marker_value,
      const std::function<void(const rocksdb::WriteBatch&)>& written = {});

  // True once RocksDB stopped taking writes after a background error (a
  // failed log write or sync, flush or compaction: a full disk, an I/O
  // error), until the error is cleared. Reads keep working meanwhile.
  bool stopped() const {
    return stop_->stopped.load(std::memory_order_relaxed);
  }
  // Clears a background error in place (RocksDB's DB::Resume: flushes the
  // memtables, so writes continue on a fresh log). OK when nothing was
  // stopped; the error (disk full: free space first) when it persists.
  // *reopen is set when retrying in place cannot help (an I/O error other
  // than a full disk, or a fatal one) or has to wait for RocksDB's own
  // recovery, which polls the free space every 5 seconds: closing and
  // reopening the database clears the error at once.
  Status Resume(bool* reopen);

  // Bytes that count against quotas: live table files plus the key and value
  // bytes written but not yet flushed to a table file.
  uint64_t UsedBytes() const;
  // Records `bytes` of keys and values just written to the memtable.
  void AddUnflushed(uint64_t bytes) {
    usage_->unflushed.fetch_add(bytes, std::memory_order_relaxed);
  }

  // Usage counters, shared with the listener that keeps them current.
  struct Usage {
    std::atomic<uint64_t> tables{0};     // live table files, bytes
    std::atomic<uint64_t> unflushed{0};  // key + value bytes in memtables
  };
  // Whether RocksDB stopped writes, shared with the listener that notes it.
  struct StopState {
    std::atomic<bool> stopped{false};
    std::mutex mu;
    rocksdb::Status error;  // guarded by mu; the error that stopped them
  };

 private:
  TenantDb() = default;

  std::string tenant_id_;
  std::shared_ptr<Keyring> keyring_;
  std::shared_ptr<Usage> usage_ = std::make_shared<Usage>();
  std::shared_ptr<StopState> stop_ = std::make_shared<StopState>();
  std::shared_ptr<rocksdb::FileSystem> fs_;
  std::unique_ptr<rocksdb::Env> env_;
  std::unique_ptr<rocksdb::DB> db_;  // destroyed before env_ and fs_
  // Coffer's own records, kept apart from user keys.
  std::unique_ptr<rocksdb::ColumnFamilyHandle> system_;
};

// Whether a RocksDB status reports a full disk.
bool IsNoSpace(const rocksdb::Status& s);

// Translates a RocksDB status, prefixing `context` (e.g. "tenant 'acme'").
// A full disk is an IOError saying "disk full", whatever RocksDB wrapped it in.
Status FromRocks(const rocksdb::Status& s, const std::string& context);

// How many files under `db_dir` (recursively: archived logs too) carry each
// data-key version in their prefix, read raw without any key. Files without
// a valid prefix count as version 0. IOError if any file cannot be examined:
// a version must never be judged unused on a partial scan.
Status CountFilesByKeyVersion(const std::string& db_dir,
                              std::map<uint32_t, uint64_t>* counts);

// Sum of the logical sizes of table and log files in a closed tenant's
// database directory: its usage before it is first opened.
uint64_t OnDiskUsage(const std::string& db_dir, bool encrypted);

}  // namespace coffer

#endif  // COFFER_ENGINE_TENANT_DB_H_
