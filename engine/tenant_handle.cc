// Copyright (c) Coffer authors.
//
// The Tenant, Iterator and Snapshot behind the public API. Each pins the
// tenant's open database for as long as it needs it, so an idle close can
// never pull a database out from under an operation.

#include <memory>
#include <optional>
#include <string>

#include "engine/clock.h"
#include "engine/cluster_impl.h"
#include "engine/commit_stamp.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"

namespace coffer {

namespace {

rocksdb::Slice ToSlice(std::string_view s) { return {s.data(), s.size()}; }

// The smallest string greater than every string starting with `prefix`, or
// nullopt when there is none (prefix is all 0xff).
std::optional<std::string> PrefixSuccessor(std::string prefix) {
  while (!prefix.empty()) {
    unsigned char last = static_cast<unsigned char>(prefix.back());
    if (last != 0xff) {
      prefix.back() = static_cast<char>(last + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::nullopt;
}

class SnapshotImpl final : public Snapshot {
 public:
  SnapshotImpl(std::shared_ptr<TenantDb> db, const rocksdb::Snapshot* snap)
      : db_(std::move(db)), snap_(snap) {}
  ~SnapshotImpl() override { db_->db()->ReleaseSnapshot(snap_); }
  uint64_t sequence() const override { return snap_->GetSequenceNumber(); }

  const TenantDb* owner() const { return db_.get(); }
  const rocksdb::Snapshot* raw() const { return snap_; }

 private:
  std::shared_ptr<TenantDb> db_;
  const rocksdb::Snapshot* const snap_;
};

class ErrorIterator final : public Iterator {
 public:
  explicit ErrorIterator(Status s) : status_(std::move(s)) {}
  bool Valid() const override { return false; }
  void SeekToFirst() override {}
  void SeekToLast() override {}
  void Seek(std::string_view) override {}
  void SeekForPrev(std::string_view) override {}
  void Next() override {}
  void Prev() override {}
  std::string_view key() const override { return {}; }
  std::string_view value() const override { return {}; }
  Status status() const override { return status_; }

 private:
  Status status_;
};

class IteratorImpl final : public Iterator {
 public:
  IteratorImpl(std::shared_ptr<TenantSlot> slot, std::shared_ptr<TenantDb> db,
               const ReadOptions& options, const rocksdb::Snapshot* snapshot)
      : slot_(std::move(slot)), db_(std::move(db)) {
    std::optional<std::string> lower = options.lower_bound;
    std::optional<std::string> upper = options.upper_bound;
    if (!options.prefix.empty()) {
      if (!lower || *lower < options.prefix) lower = options.prefix;
      std::optional<std::string> end = PrefixSuccessor(options.prefix);
      if (end && (!upper || *end < *upper)) upper = end;
    }
    rocksdb::ReadOptions ro;
    ro.snapshot = snapshot;
    ro.fill_cache = options.fill_cache;
    if (lower) {
      lower_ = std::move(*lower);
      lower_slice_ = lower_;
      ro.iterate_lower_bound = &lower_slice_;
    }
    if (upper) {
      upper_ = std::move(*upper);
      upper_slice_ = upper_;
      ro.iterate_upper_bound = &upper_slice_;
    }
    it_.reset(db_->db()->NewIterator(ro));
  }

  bool Valid() const override { return !offline_ && it_->Valid(); }
  void SeekToFirst() override {
    if (Online()) it_->SeekToFirst();
  }
  void SeekToLast() override {
    if (Online()) it_->SeekToLast();
  }
  void Seek(std::string_view target) override {
    if (Online()) it_->Seek(ToSlice(target));
  }
  void SeekForPrev(std::string_view target) override {
    if (Online()) it_->SeekForPrev(ToSlice(target));
  }
  void Next() override {
    if (Online()) it_->Next();
  }
  void Prev() override {
    if (Online()) it_->Prev();
  }
  std::string_view key() const override {
    rocksdb::Slice k = it_->key();
    return {k.data(), k.size()};
  }
  std::string_view value() const override {
    rocksdb::Slice v = it_->value();
    return {v.data(), v.size()};
  }
  Status status() const override {
    if (offline_) {
      return Status::KeyRevoked("tenant '" + slot_->id +
                                "' went offline while iterating");
    }
    return FromRocks(it_->status(), "tenant '" + db_->tenant_id() + "'");
  }

 private:
  // A revoked tenant stops serving at once, open iterators included.
  bool Online() {
    if (slot_->revoked.load(std::memory_order_relaxed) ||
        slot_->key_lost.load(std::memory_order_relaxed)) {
      offline_ = true;
    }
    return !offline_;
  }

  std::shared_ptr<TenantSlot> slot_;
  bool offline_ = false;
  std::shared_ptr<TenantDb> db_;  // keeps the database open
  std::string lower_, upper_;
  rocksdb::Slice lower_slice_, upper_slice_;
  std::unique_ptr<rocksdb::Iterator> it_;  // destroyed before db_
};

class TenantHandle final : public Tenant {
 public:
  TenantHandle(ClusterImpl* cluster, std::shared_ptr<TenantSlot> slot)
      : cluster_(cluster), slot_(std::move(slot)) {}

  const std::string& id() const override { return slot_->id; }

  Status Put(const WriteOptions& options, std::string_view key,
             std::string_view value) override {
    WriteBatch batch;
    batch.Put(key, value);
    return Write(options, batch);
  }

  Status Delete(const WriteOptions& options, std::string_view key) override {
    WriteBatch batch;
    batch.Delete(key);
    return Write(options, batch);
  }

  Status Write(const WriteOptions& options, const WriteBatch& batch) override {
    Status s = cluster_->CheckWritable();
    if (!s.ok()) return s;
    if (batch.ops().empty()) return Status::OK();  // nothing to commit
    s = cluster_->CheckRpo(*slot_);
    if (!s.ok()) return s;
    rocksdb::WriteBatch wb;
    for (const WriteBatch::Op& op : batch.ops()) {
      if (op.key.empty()) {
        return Status::InvalidArgument("tenant '" + id() +
                                       "': keys must not be empty");
      }
      rocksdb::Status rs;
      switch (op.type) {
        case WriteBatch::OpType::kPut:
          rs = wb.Put(op.key, op.value);
          break;
        case WriteBatch::OpType::kDelete:
          rs = wb.Delete(op.key);
          break;
        case WriteBatch::OpType::kDeleteRange:
          if (op.value < op.key) {
            return Status::InvalidArgument(
                "tenant '" + id() +
                "': a range deletion's end sorts before its begin");
          }
          rs = wb.DeleteRange(op.key, op.value);
          break;
      }
      if (!rs.ok()) return FromRocks(rs, "tenant '" + id() + "'");
    }
    if (wb.GetDataSize() > kMaxWriteBytes) {
      return Status::InvalidArgument(
          "tenant '" + id() + "': a write of " +
          std::to_string(wb.GetDataSize()) + " bytes exceeds the limit of " +
          std::to_string(kMaxWriteBytes) + " (split it into smaller batches)");
    }
    std::shared_ptr<TenantDb> db;
    s = Pin(&db);
    if (!s.ok()) return s;
    if (slot_->fork_pending.load()) {
      s = cluster_->RecordPendingFork(*slot_, *db);
      if (!s.ok()) return s;
    }
    if (batch.PutBytes() > 0) {
      s = cluster_->CheckQuota(*slot_, *db, batch.PutBytes());
      if (!s.ok()) return s;
    }
    // The commit time travels with the batch in the log (for replication).
    const uint64_t commit = NowMicros();
    rocksdb::Status rs = wb.PutLogData(EncodeCommitStamp(commit));
    if (!rs.ok()) return FromRocks(rs, "tenant '" + id() + "'");
    rocksdb::WriteOptions wo;
    wo.sync = options.sync;
    // Until OnWrite has queued it for the shipper (which waits for such
    // writes before it reads a missing sequence from the log).
    slot_->commits.pushing.fetch_add(1);
    s = FromRocks(db->db()->Write(wo, &wb), "tenant '" + id() + "'");
    if (!s.ok()) {
      slot_->commits.pushing.fetch_sub(1);
      return s;
    }
    db->AddUnflushed(batch.Bytes());
    // RocksDB set the batch's header to its first sequence.
    cluster_->OnWrite(*slot_, db->db()->GetLatestSequenceNumber(), commit, wb);
    return s;
  }

  Status Get(const ReadOptions& options, std::string_view key,
             std::string* value) override {
    std::shared_ptr<TenantDb> db;
    Status s = cluster_->Pin(slot_, &db);
    if (!s.ok()) return s;
    rocksdb::ReadOptions ro;
    ro.fill_cache = options.fill_cache;
    s = SnapshotFor(options, *db, &ro.snapshot);
    if (!s.ok()) return s;
    rocksdb::PinnableSlice out;
    rocksdb::Status rs =
        db->db()->Get(ro, db->db()->DefaultColumnFamily(), ToSlice(key), &out);
    if (rs.IsNotFound()) return Status::NotFound("not found");
    if (!rs.ok()) return FromRocks(rs, "tenant '" + id() + "'");
    value->assign(out.data(), out.size());
    return Status::OK();
  }

  std::unique_ptr<Iterator> NewIterator(const ReadOptions& options) override {
    std::shared_ptr<TenantDb> db;
    Status s = cluster_->Pin(slot_, &db);
    const rocksdb::Snapshot* snap = nullptr;
    if (s.ok()) s = SnapshotFor(options, *db, &snap);
    if (!s.ok()) return std::make_unique<ErrorIterator>(s);
    return std::make_unique<IteratorImpl>(slot_, std::move(db), options, snap);
  }

  Status GetSnapshot(std::shared_ptr<const Snapshot>* snapshot) override {
    snapshot->reset();
    std::shared_ptr<TenantDb> db;
    Status s = cluster_->Pin(slot_, &db);
    if (!s.ok()) return s;
    const rocksdb::Snapshot* snap = db->db()->GetSnapshot();
    *snapshot = std::make_shared<SnapshotImpl>(std::move(db), snap);
    return Status::OK();
  }

  Status Flush() override {
    std::shared_ptr<TenantDb> db;
    Status s = Pin(&db);
    if (!s.ok()) return s;
    rocksdb::FlushOptions fo;
    fo.wait = true;
    return FromRocks(db->db()->Flush(fo), "flush of tenant '" + id() + "'");
  }

  Status Compact() override {
    std::shared_ptr<TenantDb> db;
    Status s = Pin(&db);
    if (!s.ok()) return s;
    rocksdb::CompactRangeOptions co;
    co.bottommost_level_compaction =
        rocksdb::BottommostLevelCompaction::kForceOptimized;
    return FromRocks(db->db()->CompactRange(co, nullptr, nullptr),
                     "compaction of tenant '" + id() + "'");
  }

 private:
  // Pins the database for a write, flush or compaction: one that stopped
  // after a storage error (a full disk) is resumed first, so writes
  // continue by themselves once the cause is gone.
  Status Pin(std::shared_ptr<TenantDb>* db) {
    Status s = cluster_->Pin(slot_, db);
    if (s.ok() && (*db)->stopped()) s = cluster_->ResumeTenant(slot_, db);
    return s;
  }

  // The RocksDB snapshot behind options.snapshot; InvalidArgument if it was
  // taken on another tenant (or another open of this one).
  Status SnapshotFor(const ReadOptions& options, const TenantDb& db,
                     const rocksdb::Snapshot** out) const {
    *out = nullptr;
    if (options.snapshot == nullptr) return Status::OK();
    const auto* snap = dynamic_cast<const SnapshotImpl*>(options.snapshot);
    if (snap == nullptr || snap->owner() != &db) {
      return Status::InvalidArgument("tenant '" + id() +
                                     "': snapshot belongs to another tenant");
    }
    *out = snap->raw();
    return Status::OK();
  }

  ClusterImpl* const cluster_;
  const std::shared_ptr<TenantSlot> slot_;
};

}  // namespace

std::unique_ptr<Tenant> NewTenantHandle(ClusterImpl* cluster,
                                        std::shared_ptr<TenantSlot> slot) {
  return std::make_unique<TenantHandle>(cluster, std::move(slot));
}

}  // namespace coffer
