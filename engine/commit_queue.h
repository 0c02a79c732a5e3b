// Copyright (c) Coffer authors.
//
// CommitQueue: the write batches a primary tenant committed most recently,
// kept in memory so that the shipper sends them without reading them back
// from the encrypted write-ahead log. Reading the log's tail costs a read
// system call, a decryption and a checksum per batch (RocksDB's log reader
// re-reads the partial last block before every record): about 2 µs of the
// primary's CPU per write.
//
// Writers push each committed batch (its representation as RocksDB wrote
// it, whose header holds the batch's first sequence) after their
// DB::Write returns. The shipper takes the entries that continue its stream
// exactly; anything else (an entry never pushed — Coffer's own records, a
// push dropped over the budget, writes from before the process started)
// it reads from the log as before. The queue holds plaintext only in
// memory, like the memtable.
//
// Memory: entries count against a CommitQueueBudget shared by the
// cluster's tenants; a push that would exceed it is dropped.
//
// Thread-safety: all methods may be called from any thread.

#ifndef COFFER_ENGINE_COMMIT_QUEUE_H_
#define COFFER_ENGINE_COMMIT_QUEUE_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace coffer {

// One committed write batch (or several merged), as RocksDB wrote it to the
// log. The shipper gets these from the CommitQueue or from the log itself
// (WalTailer).
struct CommittedBatch {
  uint64_t first_seq = 0;  // sequence of the batch's first operation
  uint32_t count = 0;      // sequence numbers it consumes
  std::string data;        // RocksDB WriteBatch representation (plaintext)
  uint64_t commit_micros = 0;  // its commit stamp when known; 0: read `data`
};

struct CommitQueueBudget {
  explicit CommitQueueBudget(int64_t limit_bytes) : limit(limit_bytes) {}
  const int64_t limit;
  std::atomic<int64_t> used{0};
};

class CommitQueue {
 public:
  CommitQueue() = default;
  ~CommitQueue() { Clear(); }
  CommitQueue(const CommitQueue&) = delete;
  CommitQueue& operator=(const CommitQueue&) = delete;

  // Queues a committed batch. `data`'s header holds its first sequence and
  // count. False (nothing queued) when it is malformed or over `budget`.
  bool Push(const std::shared_ptr<CommitQueueBudget>& budget,
            std::string_view data, uint64_t commit_micros);

  // Forgets entries that end before `next`, then moves to *out the entries
  // that continue from `next` without a hole, up to `max_bytes` of data (at
  // least one). Returns how many it moved; 0 when `next` is not queued.
  size_t Take(uint64_t next, size_t max_bytes,
              std::vector<CommittedBatch>* out);

  // Every batch the write path commits from this sequence on is queued, or
  // about to be (`pushing`), unless it is Coffer's own record: a sequence
  // below it that is missing will never arrive (written before the first
  // push, or dropped over the budget). UINT64_MAX before the first push.
  uint64_t complete_from();

  // Drops every entry.
  void Clear();

  // Writers between DB::Write and the end of their Push (see Shipper): a
  // sequence missing from the queue may still arrive while this is
  // non-zero.
  std::atomic<int> pushing{0};

 private:
  void ReleaseLocked(int64_t bytes);

  std::mutex mu_;
  std::shared_ptr<CommitQueueBudget> budget_;  // guarded by mu_
  std::map<uint64_t, CommittedBatch> entries_;  // guarded by mu_; by first_seq
  int64_t bytes_ = 0;                          // guarded by mu_
  uint64_t complete_from_ = UINT64_MAX;        // guarded by mu_
};

}  // namespace coffer

#endif  // COFFER_ENGINE_COMMIT_QUEUE_H_
