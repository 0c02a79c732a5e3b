// Copyright (c) Coffer authors.
//
// Tenant: a handle to one tenant's partition of a cluster. Every tenant is its
// own encrypted RocksDB instance in its own directory, so a handle can only
// ever read or write the bytes of the tenant it was opened for.
//
// Example:
//   std::unique_ptr<coffer::Tenant> t;
//   coffer::Status s = cluster->GetTenant("acme", &t);
//   coffer::WriteBatch batch;
//   batch.Put("user/1", "alice");
//   batch.Delete("user/0");
//   if (s.ok()) s = t->Write(coffer::WriteOptions(), batch);
//   std::unique_ptr<coffer::Iterator> it =
//       t->NewIterator(coffer::ReadOptions{.prefix = "user/"});
//   for (it->SeekToFirst(); it->Valid(); it->Next()) use(it->key(),
//   it->value()); s = it->status();
//
// Thread-safety: a Tenant handle is safe for concurrent use from many threads.
// An Iterator is not; use one per thread. The cluster may close an idle
// tenant's database and reopen it on the next call; this is invisible to the
// caller. A handle, iterator or snapshot must not outlive its Cluster.

#ifndef COFFER_INCLUDE_COFFER_TENANT_H_
#define COFFER_INCLUDE_COFFER_TENANT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/options.h"
#include "coffer/status.h"

namespace coffer {

// The most one write (Put, Delete or Write) may carry, counted as its encoded
// batch: keys, values and a few bytes per operation. A larger write fails
// with InvalidArgument and changes nothing; split it into several. The cap
// keeps every write-ahead log record shippable to a replica in one frame.
inline constexpr size_t kMaxWriteBytes = size_t{8} << 20;

// An atomic group of writes to one tenant: all apply or none do.
class WriteBatch {
 public:
  enum class OpType : uint8_t { kPut, kDelete, kDeleteRange };
  struct Op {
    OpType type;
    std::string key;    // kDeleteRange: begin (inclusive)
    std::string value;  // kDeleteRange: end (exclusive)
  };

  void Put(std::string_view key, std::string_view value);
  void Delete(std::string_view key);
  // Deletes every key in [begin, end).
  void DeleteRange(std::string_view begin, std::string_view end);
  void Clear();

  const std::vector<Op>& ops() const { return ops_; }
  size_t Count() const { return ops_.size(); }
  // Sum of key and value bytes of all Put operations.
  uint64_t PutBytes() const { return put_bytes_; }
  // Sum of key and value bytes of all operations.
  uint64_t Bytes() const { return bytes_; }

 private:
  std::vector<Op> ops_;
  uint64_t put_bytes_ = 0;
  uint64_t bytes_ = 0;
};

// A consistent point-in-time view of one tenant. Reads given this snapshot see
// exactly the writes that completed before it was taken. Release it by
// dropping the last shared_ptr; it keeps the tenant open while it lives.
class Snapshot {
 public:
  virtual ~Snapshot() = default;
  // The tenant's sequence number at the snapshot.
  virtual uint64_t sequence() const = 0;
};

// Iterates a tenant's keys in byte-wise order. Keys and values returned are
// valid until the next move of the iterator.
class Iterator {
 public:
  virtual ~Iterator() = default;
  virtual bool Valid() const = 0;
  virtual void SeekToFirst() = 0;
  virtual void SeekToLast() = 0;
  // Positions at the first key >= target.
  virtual void Seek(std::string_view target) = 0;
  // Positions at the last key <= target.
  virtual void SeekForPrev(std::string_view target) = 0;
  virtual void Next() = 0;
  virtual void Prev() = 0;
  // REQUIRES: Valid()
  virtual std::string_view key() const = 0;
  virtual std::string_view value() const = 0;
  // Non-OK if iteration stopped because of an error rather than the end.
  virtual Status status() const = 0;
};

class Tenant {
 public:
  virtual ~Tenant() = default;
  Tenant(const Tenant&) = delete;
  Tenant& operator=(const Tenant&) = delete;

  virtual const std::string& id() const = 0;

  // Fails with QuotaExceeded, leaving stored data unchanged, when the write
  // would take the tenant or the cluster over its quota. Empty keys are
  // InvalidArgument.
  virtual Status Put(const WriteOptions& options, std::string_view key,
                     std::string_view value) = 0;
  // Deletes are allowed even when the tenant is over its quota.
  virtual Status Delete(const WriteOptions& options, std::string_view key) = 0;
  // Applies the batch atomically. A batch holding only deletes is allowed
  // over quota; one holding puts is checked against the quota. A batch over
  // kMaxWriteBytes is InvalidArgument.
  virtual Status Write(const WriteOptions& options,
                       const WriteBatch& batch) = 0;

  // NotFound when the key is absent.
  virtual Status Get(const ReadOptions& options, std::string_view key,
                     std::string* value) = 0;

  // Never null. Errors (for example a dropped tenant) surface through
  // Iterator::status() with Valid() false.
  virtual std::unique_ptr<Iterator> NewIterator(const ReadOptions& options) = 0;

  // Takes a snapshot. On error *snapshot is left null.
  virtual Status GetSnapshot(std::shared_ptr<const Snapshot>* snapshot) = 0;

  // Flushes the memtable to an (encrypted) table file and waits for it.
  virtual Status Flush() = 0;
  // Compacts all of the tenant's data and waits.
  virtual Status Compact() = 0;

 protected:
  Tenant() = default;
};

}  // namespace coffer

#endif  // COFFER_INCLUDE_COFFER_TENANT_H_
