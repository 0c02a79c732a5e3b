// Copyright (c) Coffer authors.

#include "replication/wal_tailer.h"

#include "engine/tenant_db.h"
#include "rocksdb/write_batch.h"

namespace coffer {

namespace {

Status Gap(uint64_t wanted, uint64_t found) {
  return Status::NotFound(
      "gap: the write-ahead log no longer holds sequence " +
      std::to_string(wanted) +
      (found != 0 ? " (next available " + std::to_string(found) + ")"
                  : std::string(" (no log file holds it)")) +
      "; the replica must be reseeded");
}

}  // namespace

bool IsWalGap(const Status& s) {
  return s.IsNotFound() && s.message().rfind("gap:", 0) == 0;
}

Status WalTailer::Read(uint64_t next_seq, size_t max_bytes,
                       std::vector<CommittedBatch>* out) {
  bool kept = iter_ != nullptr && expected_ == next_seq;
  Status s = ReadOnce(next_seq, max_bytes, out);
  if (kept && IsWalGap(s)) {
    // An iterator kept across calls can lose its place in the log: at the
    // end of what was written, RocksDB's log reader drops a record it found
    // half written and resumes after it. Only a new iterator, which finds
    // the sequence afresh, may report a gap.
    iter_.reset();
    s = ReadOnce(expected_, max_bytes, out);  // after what this call read
  }
  return s;
}

Status WalTailer::ReadOnce(uint64_t next_seq, size_t max_bytes,
                           std::vector<CommittedBatch>* out) {
  // A sequence at or below the latest was written to the log before it was
  // published: from here on, not finding it means it was purged.
  if (next_seq > db_->GetLatestSequenceNumber()) return Status::OK();
  bool fresh = false;
  if (iter_ == nullptr || expected_ != next_seq) {
    iter_.reset();
    rocksdb::TransactionLogIterator::ReadOptions ro(/*verify_checksums=*/true);
    rocksdb::Status rs = db_->GetUpdatesSince(next_seq, &iter_, ro);
    if (rs.IsNotFound()) return Gap(next_seq, 0);  // no log file holds it
    if (!rs.ok()) return FromRocks(rs, "reading the write-ahead log");
    expected_ = next_seq;
    fresh = true;
    positioned_ = true;
  } else if (!positioned_) {
    iter_->Next();  // reads what was appended since the end was reached
    positioned_ = true;
  }
  const size_t had = out->size();
  size_t bytes = 0;
  for (; iter_->Valid() && bytes < max_bytes; iter_->Next()) {
    rocksdb::BatchResult r = iter_->GetBatch();
    const uint64_t seq = r.sequence;
    const uint32_t count = r.writeBatchPtr->Count();
    if (fresh) {
      // The first batch must cover the wanted sequence and start there:
      // positions are always batch boundaries.
      fresh = false;
      if (seq != next_seq) {
        iter_.reset();
        return Gap(next_seq, seq);
      }
    } else if (seq != expected_) {
      iter_.reset();
      return Gap(expected_, seq);
    }
    CommittedBatch b;
    b.first_seq = seq;
    b.count = count;
    b.data = r.writeBatchPtr->Data();
    bytes += b.data.size();
    out->push_back(std::move(b));
    expected_ = seq + count;
  }
  if (fresh) {
    // A new iterator that yields nothing at all does not hold next_seq.
    rocksdb::Status rs = iter_->status();
    iter_.reset();
    if (!rs.ok() && !rs.IsTryAgain() && !rs.IsNotFound() &&
        !rs.IsCorruption()) {
      return FromRocks(rs, "reading the write-ahead log");
    }
    return Gap(next_seq, 0);
  }
  if (!iter_->Valid()) {
    rocksdb::Status rs = iter_->status();
    // At the end of what the log holds, the iterator says TryAgain when the
    // database's latest sequence moved past the last batch read: usually a
    // write that landed meanwhile, which the next Next() reads from where
    // this one stopped. When a call makes no progress at all, the rest is
    // in a log file the iterator does not know (the log switched) or the
    // iterator lost its place (see Read): a new iterator then, which reads
    // that file from its start. (Replacing it at every TryAgain re-read the
    // current log file from its start several times a second under a
    // steady write load.)
    if (rs.ok() || (rs.IsTryAgain() && out->size() > had)) {
      positioned_ = false;  // at the end: keep following this log
      return Status::OK();
    }
    iter_.reset();  // TryAgain (a new log file): a new iterator next time
    if (!rs.ok() && !rs.IsTryAgain() && !rs.IsNotFound()) {
      if (rs.IsCorruption() && out->empty()) return Gap(next_seq, 0);
      return FromRocks(rs, "reading the write-ahead log");
    }
  }
  return Status::OK();
}

}  // namespace coffer
