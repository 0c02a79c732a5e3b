// Copyright (c) Coffer authors.

#include "replication/batch_inspect.h"

#include <algorithm>

#include "engine/commit_stamp.h"
#include "engine/tenant_db.h"
#include "rocksdb/write_batch.h"

namespace coffer {

namespace {

// Record types of RocksDB's write batch format (db/dbformat.h; persistent).
enum RecordType : uint8_t {
  kDeletion = 0x0,
  kValue = 0x1,
  kLogData = 0x3,
  kFamilyDeletion = 0x4,
  kFamilyValue = 0x5,
  kSingleDeletion = 0x7,
  kFamilySingleDeletion = 0x8,
  kFamilyRangeDeletion = 0xE,
  kRangeDeletion = 0xF,
};

bool GetVarint32(std::string_view* in, uint32_t* v) {
  *v = 0;
  for (int shift = 0; shift <= 28 && !in->empty(); shift += 7) {
    const uint8_t b = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    *v |= static_cast<uint32_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

bool SkipString(std::string_view* in) {
  uint32_t len = 0;
  if (!GetVarint32(in, &len) || in->size() < len) return false;
  in->remove_prefix(len);
  return true;
}

// Walks the records before RocksDB's own iteration sees them: RocksDB
// asserts on some well-framed records it does not expect from a replica's
// peer (a commit timestamp that is empty, transaction markers), which aborts
// the process where its assertions are compiled in (as in Debian's
// librocksdb). Only the record types a Coffer primary writes pass.
Status CheckRecordTypes(std::string_view rep) {
  rep.remove_prefix(kWriteBatchHeaderBytes);
  while (!rep.empty()) {
    const uint8_t type = static_cast<uint8_t>(rep.front());
    rep.remove_prefix(1);
    uint32_t family = 0;
    int strings = 0;
    switch (type) {
      case kFamilyDeletion:
      case kFamilySingleDeletion:
        if (!GetVarint32(&rep, &family)) break;
        strings = 1;
        break;
      case kFamilyValue:
      case kFamilyRangeDeletion:
        if (!GetVarint32(&rep, &family)) break;
        strings = 2;
        break;
      case kDeletion:
      case kSingleDeletion:
      case kLogData:
        strings = 1;
        break;
      case kValue:
      case kRangeDeletion:
        strings = 2;
        break;
      default:
        return Status::Corruption("write batch does not parse: record of type " +
                                  std::to_string(type) +
                                  ", which a replica does not apply");
    }
    if (strings == 0) {
      return Status::Corruption("write batch does not parse: bad record");
    }
    for (int i = 0; i < strings; ++i) {
      if (!SkipString(&rep)) {
        return Status::Corruption("write batch does not parse: bad record");
      }
    }
  }
  return Status::OK();
}

class Inspector : public rocksdb::WriteBatch::Handler {
 public:
  explicit Inspector(BatchSummary* summary) : s_(summary) {}

  rocksdb::Status PutCF(uint32_t cf, const rocksdb::Slice& key,
                        const rocksdb::Slice&) override {
    return Op(cf, key);
  }
  rocksdb::Status DeleteCF(uint32_t cf, const rocksdb::Slice& key) override {
    return Op(cf, key);
  }
  rocksdb::Status SingleDeleteCF(uint32_t cf,
                                 const rocksdb::Slice& key) override {
    return Op(cf, key);
  }
  rocksdb::Status DeleteRangeCF(uint32_t cf, const rocksdb::Slice& begin,
                                const rocksdb::Slice& end) override {
    // A range over the system family could cover the position key.
    if (cf != 0) s_->system_range_delete = true;
    if (end.compare(begin) < 0) {
      return rocksdb::Status::Corruption(
          "range deletion whose end sorts before its begin");
    }
    s_->count++;
    s_->max_column_family = std::max(s_->max_column_family, cf);
    return rocksdb::Status::OK();
  }
  rocksdb::Status MergeCF(uint32_t, const rocksdb::Slice&,
                          const rocksdb::Slice&) override {
    return rocksdb::Status::Corruption("batch holds a merge operation");
  }
  rocksdb::Status PutBlobIndexCF(uint32_t, const rocksdb::Slice&,
                                 const rocksdb::Slice&) override {
    return rocksdb::Status::Corruption("batch holds a blob index");
  }
  // RocksDB asserts that these markers' handlers succeed (a failure aborts
  // the process where its assertions are compiled in, as in Debian's
  // librocksdb): note the marker, stop iterating, and let InspectBatch refuse
  // the batch.
  rocksdb::Status MarkBeginPrepare(bool) override { return Marker(); }
  rocksdb::Status MarkEndPrepare(const rocksdb::Slice&) override {
    return Marker();
  }
  rocksdb::Status MarkCommit(const rocksdb::Slice&) override {
    return Marker();
  }
  rocksdb::Status MarkRollback(const rocksdb::Slice&) override {
    return Marker();
  }
  rocksdb::Status MarkNoop(bool) override { return Marker(); }
  bool Continue() override { return !two_phase_marker_; }
  bool two_phase_marker() const { return two_phase_marker_; }

  void LogData(const rocksdb::Slice& blob) override {
    uint64_t micros = 0;
    if (DecodeCommitStamp(std::string_view(blob.data(), blob.size()),
                          &micros)) {
      s_->commit_micros = micros;
    }
  }

 private:
  rocksdb::Status Op(uint32_t cf, const rocksdb::Slice& key) {
    s_->count++;
    s_->max_column_family = std::max(s_->max_column_family, cf);
    if (cf != 0 && IsReplicationRecord(std::string_view(key.data(), key.size()))) {
      s_->touches_replication_records = true;
    }
    return rocksdb::Status::OK();
  }

  rocksdb::Status Marker() {
    two_phase_marker_ = true;
    return rocksdb::Status::OK();
  }

  BatchSummary* s_;
  bool two_phase_marker_ = false;
};

}  // namespace

Status ReadReplicaPosition(const TenantDb& db, const std::string& tenant,
                           replpb::TenantPosition* position, bool* found) {
  *found = false;
  std::string value;
  rocksdb::Status rs = db.db()->Get(rocksdb::ReadOptions(), db.system(),
                                    kReplicaPositionKey, &value);
  if (rs.IsNotFound()) return Status::OK();
  if (!rs.ok()) return FromRocks(rs, "position of tenant '" + tenant + "'");
  if (!position->ParseFromString(value)) {
    return Status::Corruption("position of tenant '" + tenant +
                              "' does not parse");
  }
  *found = true;
  return Status::OK();
}

Status AppendBatch(std::string* rep, std::string_view next) {
  if (rep->size() < kWriteBatchHeaderBytes ||
      next.size() < kWriteBatchHeaderBytes) {
    return Status::InvalidArgument("write batch shorter than its header");
  }
  auto count_of = [](std::string_view b) {
    uint32_t c = 0;
    for (int i = 3; i >= 0; --i) c = (c << 8) | static_cast<uint8_t>(b[8 + i]);
    return c;
  };
  const uint64_t count = uint64_t{count_of(*rep)} + count_of(next);
  if (count > UINT32_MAX) {
    return Status::InvalidArgument("write batches hold more than 2^32 - 1 "
                                   "operations together");
  }
  rep->append(next.substr(kWriteBatchHeaderBytes));
  for (int i = 0; i < 4; ++i) {
    (*rep)[8 + i] = static_cast<char>((count >> (8 * i)) & 0xff);
  }
  return Status::OK();
}

bool IsReplicationRecord(std::string_view key) {
  return key == kReplicaPositionKey || key == kForkPointKey;
}

Status InspectBatch(const std::string& data, BatchSummary* summary) {
  *summary = BatchSummary();
  if (data.size() < kWriteBatchHeaderBytes) {
    return Status::Corruption("write batch of " + std::to_string(data.size()) +
                              " bytes is shorter than its header");
  }
  Status s = CheckRecordTypes(data);
  if (!s.ok()) return s;
  rocksdb::WriteBatch batch(data);
  Inspector inspector(summary);
  rocksdb::Status rs = batch.Iterate(&inspector);
  if (!rs.ok()) {
    return Status::Corruption("write batch does not parse: " + rs.ToString());
  }
  if (inspector.two_phase_marker()) {
    return Status::Corruption("batch holds a two-phase marker");
  }
  if (batch.Count() != summary->count) {
    return Status::Corruption(
        "write batch header counts " + std::to_string(batch.Count()) +
        " operations but holds " + std::to_string(summary->count));
  }
  return Status::OK();
}

}  // namespace coffer
