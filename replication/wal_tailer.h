// Copyright (c) Coffer authors.
//
// WalTailer: reads one tenant's write batches from its write-ahead log, in
// order, without ever skipping one.
//
// RocksDB's GetUpdatesSince (7.8.3) can return an OK iterator positioned
// *after* a gap when the wanted sequence was already purged (the silent loss
// Rocksplicator #599 hit). The tailer checks that the first batch covers the
// wanted sequence and that every batch starts where the previous one ended;
// anything else is reported as a gap, which the caller answers with a reseed,
// never a skip. TryAgain (the iterator ran past its snapshot of log files)
// just means a new iterator next time.
//
// A tailer kept across calls follows the log as it grows without seeking
// again (reading from the start of a log file costs as much as the file).
//
// Thread-safety: not thread-safe; one tailer per tenant stream.

#ifndef COFFER_REPLICATION_WAL_TAILER_H_
#define COFFER_REPLICATION_WAL_TAILER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "coffer/status.h"
#include "engine/commit_queue.h"
#include "rocksdb/db.h"
#include "rocksdb/transaction_log.h"

namespace coffer {

class WalTailer {
 public:
  // `db` must outlive the tailer; its WAL must be retained long enough
  // (WAL_ttl_seconds / WAL_size_limit_MB) for the stream to catch up.
  explicit WalTailer(rocksdb::DB* db) : db_(db) {}
  WalTailer(const WalTailer&) = delete;
  WalTailer& operator=(const WalTailer&) = delete;

  // Appends to *out the batches starting exactly at `next_seq` (the first
  // sequence the consumer does not have), stopping after `max_bytes` of batch
  // data or at the end of the log. An empty result means caught up.
  // Returns Status::NotFound with a message starting "gap:" when the log no
  // longer holds `next_seq` (purged): the consumer must be reseeded.
  Status Read(uint64_t next_seq, size_t max_bytes,
              std::vector<CommittedBatch>* out);

 private:
  Status ReadOnce(uint64_t next_seq, size_t max_bytes,
                  std::vector<CommittedBatch>* out);

  rocksdb::DB* const db_;
  std::unique_ptr<rocksdb::TransactionLogIterator> iter_;
  uint64_t expected_ = 0;  // next sequence iter_ will yield
  // iter_ points at a batch not yet returned; otherwise it reached the end
  // of the log and Next() looks for batches appended since.
  bool positioned_ = false;
};

// True if `s` is the tailer's gap report.
bool IsWalGap(const Status& s);

}  // namespace coffer

#endif  // COFFER_REPLICATION_WAL_TAILER_H_
