// Copyright (c) Coffer authors.
//
// Building blocks of replication: frames, the write-ahead log tailer, the
// queue of committed batches and batch merging.

#include <atomic>
#include <random>
#include <thread>

#include "engine/commit_queue.h"
#include "engine/tenant_db.h"
#include "replication/batch_inspect.h"
#include "replication/frame.h"
#include "replication/proto/replication.pb.h"
#include "replication/wal_tailer.h"
#include "rocksdb/write_batch.h"
#include "tests/testutil.h"

namespace coffer {
namespace {

TEST(FrameTest, RoundTripsInAnyChunking) {
  std::string stream;
  std::vector<std::string> payloads = {"", "a", std::string(100000, 'x')};
  replpb::Envelope env;
  env.mutable_hello()->set_cluster_id("c1");
  env.mutable_hello()->set_epoch(7);
  payloads.push_back(env.SerializeAsString());
  for (const auto& p : payloads) ASSERT_OK(EncodeFrame(p, &stream));
  std::mt19937 rng(3);
  FrameDecoder d;
  std::vector<std::string> got;
  for (size_t pos = 0; pos < stream.size();) {
    size_t n = std::min<size_t>(1 + rng() % 5000, stream.size() - pos);
    d.Feed(std::string_view(stream).substr(pos, n));
    pos += n;
    for (;;) {
      std::string p;
      bool have = false;
      ASSERT_OK(d.Next(&p, &have));
      if (!have) break;
      got.push_back(p);
    }
  }
  EXPECT_EQ(payloads, got);
  replpb::Envelope back;
  ASSERT_TRUE(back.ParseFromString(got.back()));
  EXPECT_EQ(7u, back.hello().epoch());
}

TEST(FrameTest, CorruptionAndOversizeAreRejected) {
  std::string frame;
  ASSERT_OK(EncodeFrame("payload bytes", &frame));
  for (size_t i = 0; i < frame.size(); ++i) {
    if (i >= 4 && i < 8) continue;  // length bytes: covered below
    std::string bad = frame;
    bad[i] ^= 0x10;
    FrameDecoder d;
    d.Feed(bad);
    std::string p;
    bool have = false;
    Status s = d.Next(&p, &have);
    EXPECT_FALSE(s.ok() && have) << "flip at byte " << i << " accepted";
  }
  // A truncated frame is never delivered.
  FrameDecoder t;
  t.Feed(std::string_view(frame).substr(0, frame.size() - 1));
  std::string p;
  bool have = true;
  ASSERT_OK(t.Next(&p, &have));
  EXPECT_FALSE(have);
  // A length beyond the cap is refused before anything is buffered for it.
  std::string huge = frame.substr(0, 4) + std::string("\xff\xff\xff\x7f", 4) +
                     std::string(8, '\0');
  FrameDecoder h;
  h.Feed(huge);
  EXPECT_TRUE(h.Next(&p, &have).IsInvalidArgument());
  std::string too_big(kMaxFramePayload + 1, 'x');
  std::string out;
  EXPECT_TRUE(EncodeFrame(too_big, &out).IsInvalidArgument());
}

class WalTailerTest : public ::testing::Test {
 protected:
  void Open(uint64_t retention_seconds) {
    OpenOptions o;
    o.wal_retention_seconds = retention_seconds;
    shared_ = std::make_unique<SharedResources>(o);
    ASSERT_OK(
        TenantDb::Open("t", dir_.Sub("db"), nullptr, false, *shared_, &db_));
  }
  void Put(int i) {
    ASSERT_TRUE(db_->db()
                    ->Put(rocksdb::WriteOptions(), "k" + std::to_string(i),
                          "v" + std::to_string(i))
                    .ok());
  }
  void Flush() { ASSERT_TRUE(db_->db()->Flush(rocksdb::FlushOptions()).ok()); }

  test::TempDir dir_;
  std::unique_ptr<SharedResources> shared_;
  std::unique_ptr<TenantDb> db_;
};

TEST_F(WalTailerTest, ShipsEveryBatchInOrderAcrossLogSwitches) {
  Open(3600);
  WalTailer tailer(db_->db());
  uint64_t next = 1;
  int seen = 0;
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 100; ++i) Put(round * 100 + i);
    rocksdb::WriteBatch multi;  // a batch of three operations
    ASSERT_TRUE(multi.Put("a", "1").ok());
    ASSERT_TRUE(multi.Put("b", "2").ok());
    ASSERT_TRUE(multi.Delete("c").ok());
    ASSERT_TRUE(db_->db()->Write(rocksdb::WriteOptions(), &multi).ok());
    Flush();  // a new log file each round
    for (;;) {
      std::vector<CommittedBatch> out;
      ASSERT_OK(tailer.Read(next, 64 << 10, &out));
      if (out.empty()) break;
      for (const CommittedBatch& b : out) {
        ASSERT_EQ(next, b.first_seq);
        rocksdb::WriteBatch wb(b.data);
        ASSERT_EQ(b.count, static_cast<uint32_t>(wb.Count()));
        next = b.first_seq + b.count;
        ++seen;
      }
    }
  }
  EXPECT_EQ(505, seen);
  EXPECT_EQ(db_->db()->GetLatestSequenceNumber() + 1, next);
}

TEST_F(WalTailerTest, PurgedLogIsAGapNeverASkip) {
  Open(0);  // no retention: logs go as soon as their data is flushed
  for (int i = 0; i < 50; ++i) Put(i);
  Flush();
  for (int i = 50; i < 60; ++i) Put(i);
  WalTailer tailer(db_->db());
  std::vector<CommittedBatch> out;
  Status s = tailer.Read(1, 1 << 20, &out);
  EXPECT_TRUE(IsWalGap(s)) << s.ToString();
  EXPECT_TRUE(out.empty()) << "shipped " << out.size()
                           << " batches from after the gap";
  // From a sequence still in the log, tailing works.
  ASSERT_OK(tailer.Read(51, 1 << 20, &out));
  ASSERT_EQ(10u, out.size());
  EXPECT_EQ(51u, out[0].first_seq);
}

TEST_F(WalTailerTest, CaughtUpReadsNothingThenContinues) {
  Open(3600);
  WalTailer tailer(db_->db());
  std::vector<CommittedBatch> out;
  ASSERT_OK(tailer.Read(1, 1 << 20, &out));
  EXPECT_TRUE(out.empty());
  Put(1);
  ASSERT_OK(tailer.Read(1, 1 << 20, &out));
  ASSERT_EQ(1u, out.size());
  out.clear();
  ASSERT_OK(tailer.Read(2, 1 << 20, &out));
  EXPECT_TRUE(out.empty());
  Put(2);
  Put(3);
  ASSERT_OK(tailer.Read(2, 1 << 20, &out));
  ASSERT_EQ(2u, out.size());
  EXPECT_EQ(3u, out[1].first_seq);
}

// A tailer following a log that writers keep appending to reads every batch
// once, in order, never reporting a gap: it keeps its iterator when RocksDB
// answers TryAgain after a read that made progress (a write landed between
// the end of what it read and its check of the latest sequence), and a kept
// iterator that loses its place is replaced, not taken for a gap.
TEST_F(WalTailerTest, FollowsConcurrentWritersWithoutSeekingAgain) {
  Open(3600);
  constexpr int kWriters = 2;
  constexpr int kPerWriter = 5000;
  std::atomic<int> done{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < kPerWriter; ++i) {
        rocksdb::WriteBatch b;
        b.Put("w" + std::to_string(w) + "/" + std::to_string(i), "v");
        if (i % 7 == 0) b.Delete("x" + std::to_string(i));
        EXPECT_TRUE(db_->db()->Write(rocksdb::WriteOptions(), &b).ok());
      }
      done++;
    });
  }
  WalTailer tailer(db_->db());
  uint64_t next = 1;
  uint64_t reads = 0;
  for (;;) {
    const bool finished = done.load() == kWriters;
    std::vector<CommittedBatch> out;
    ASSERT_OK(tailer.Read(next, 1 << 20, &out));
    ++reads;
    // Let the writers get ahead, so most reads end at a log still growing.
    std::this_thread::sleep_for(std::chrono::microseconds(100));
    for (const CommittedBatch& b : out) {
      ASSERT_EQ(next, b.first_seq);
      next = b.first_seq + b.count;
    }
    if (finished && next > db_->db()->GetLatestSequenceNumber()) break;
  }
  for (std::thread& t : writers) t.join();
  const uint64_t ops = kWriters * (kPerWriter + (kPerWriter + 6) / 7);
  EXPECT_EQ(ops + 1, next);
  EXPECT_GT(reads, 10u);
}

std::string BatchOf(std::initializer_list<std::string> keys, uint64_t seq) {
  rocksdb::WriteBatch b;
  for (const std::string& k : keys) EXPECT_TRUE(b.Put(k, "v" + k).ok());
  std::string rep = b.Data();
  for (int i = 0; i < 8; ++i) rep[i] = static_cast<char>((seq >> (8 * i)) & 0xff);
  return rep;
}

TEST(CommitQueueTest, TakesOnlyWhatContinuesTheStream) {
  auto budget = std::make_shared<CommitQueueBudget>(1 << 20);
  CommitQueue q;
  // Pushed out of order, as concurrent writers do.
  ASSERT_TRUE(q.Push(budget, BatchOf({"c"}, 13), 300));
  ASSERT_TRUE(q.Push(budget, BatchOf({"a", "b"}, 10), 100));
  ASSERT_TRUE(q.Push(budget, BatchOf({"d"}, 15), 500));  // 14 missing
  ASSERT_TRUE(q.Push(budget, BatchOf({"x"}, 12), 200));
  std::vector<CommittedBatch> out;
  // 9 is not queued: nothing, and nothing lost.
  EXPECT_EQ(0u, q.Take(9, 1 << 20, &out));
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(3u, q.Take(10, 1 << 20, &out));  // 10-11, 12, 13; stops at 14
  ASSERT_EQ(3u, out.size());
  EXPECT_EQ(10u, out[0].first_seq);
  EXPECT_EQ(2u, out[0].count);
  EXPECT_EQ(100u, out[0].commit_micros);
  EXPECT_EQ(BatchOf({"a", "b"}, 10), out[0].data);
  EXPECT_EQ(12u, out[1].first_seq);
  EXPECT_EQ(13u, out[2].first_seq);
  out.clear();
  EXPECT_EQ(0u, q.Take(14, 1 << 20, &out));
  // Entries the stream has passed (read from the log meanwhile) go.
  EXPECT_EQ(0u, q.Take(16, 1 << 20, &out));
  EXPECT_EQ(0, budget->used.load());
}

TEST(CommitQueueTest, CompleteFromMarksWhatWillNeverArrive) {
  const std::string rep = BatchOf({"k"}, 1);
  auto budget = std::make_shared<CommitQueueBudget>(2 * (rep.size() + 96));
  CommitQueue q;
  EXPECT_EQ(UINT64_MAX, q.complete_from()) << "nothing known yet";
  ASSERT_TRUE(q.Push(budget, BatchOf({"k"}, 40), 1));
  EXPECT_EQ(40u, q.complete_from()) << "what came before is in the log";
  ASSERT_TRUE(q.Push(budget, BatchOf({"k"}, 41), 1));
  EXPECT_FALSE(q.Push(budget, BatchOf({"k", "l"}, 42), 1));  // over budget
  EXPECT_EQ(44u, q.complete_from());
  q.Clear();
  EXPECT_EQ(UINT64_MAX, q.complete_from());
}

TEST(CommitQueueTest, TakeStopsAtMaxBytesButMovesOneAtLeast) {
  auto budget = std::make_shared<CommitQueueBudget>(1 << 20);
  CommitQueue q;
  const std::string big = BatchOf({std::string(1000, 'k')}, 1);
  ASSERT_TRUE(q.Push(budget, big, 1));
  ASSERT_TRUE(q.Push(budget, BatchOf({std::string(1000, 'l')}, 2), 2));
  std::vector<CommittedBatch> out;
  EXPECT_EQ(1u, q.Take(1, 10, &out));  // larger than max_bytes: alone
  EXPECT_EQ(1u, q.Take(2, 10, &out));
  EXPECT_EQ(2u, out.size());
}

TEST(CommitQueueTest, BudgetDropsPushesAndIsReturned) {
  const std::string rep = BatchOf({"k"}, 1);
  auto budget = std::make_shared<CommitQueueBudget>(3 * (rep.size() + 96));
  CommitQueue a, b;
  ASSERT_TRUE(a.Push(budget, BatchOf({"k"}, 1), 1));
  ASSERT_TRUE(b.Push(budget, BatchOf({"k"}, 1), 1));
  ASSERT_TRUE(a.Push(budget, BatchOf({"k"}, 2), 1));
  // The budget is shared: the fourth entry is dropped, in either queue.
  EXPECT_FALSE(b.Push(budget, BatchOf({"k"}, 2), 1));
  EXPECT_FALSE(a.Push(budget, BatchOf({"k"}, 3), 1));
  std::vector<CommittedBatch> out;
  EXPECT_EQ(1u, b.Take(1, 1 << 20, &out));
  EXPECT_EQ(0u, b.Take(2, 1 << 20, &out));  // the dropped one: the log has it
  EXPECT_TRUE(b.Push(budget, BatchOf({"k"}, 3), 1));  // room again
  a.Clear();
  {
    CommitQueue c;
    ASSERT_TRUE(c.Push(budget, BatchOf({"k"}, 9), 1));
  }  // a queue that goes returns its memory
  b.Clear();
  EXPECT_EQ(0, budget->used.load());
}

TEST(CommitQueueTest, MalformedBatchesAreNotQueued) {
  auto budget = std::make_shared<CommitQueueBudget>(1 << 20);
  CommitQueue q;
  EXPECT_FALSE(q.Push(budget, "short", 1));
  EXPECT_FALSE(q.Push(budget, BatchOf({"k"}, 0), 1));  // sequence 0
  EXPECT_FALSE(q.Push(budget, BatchOf({}, 5), 1));      // no operation
  EXPECT_FALSE(q.Push(nullptr, BatchOf({"k"}, 5), 1));  // no budget
  EXPECT_EQ(0, budget->used.load());
}

// Merged batches hold the same operations at the same sequence numbers as
// the batches one after the other.
TEST(AppendBatchTest, MergedBatchEqualsTheSequence) {
  std::string rep = BatchOf({"a", "b"}, 7);
  ASSERT_OK(AppendBatch(&rep, BatchOf({"c"}, 9)));
  ASSERT_OK(AppendBatch(&rep, BatchOf({"d", "e", "f"}, 10)));
  EXPECT_EQ(BatchOf({"a", "b", "c", "d", "e", "f"}, 7), rep);
  BatchSummary summary;
  ASSERT_OK(InspectBatch(rep, &summary));
  EXPECT_EQ(6u, summary.count);

  std::string before = rep;
  EXPECT_TRUE(AppendBatch(&rep, "short").IsInvalidArgument());
  std::string tiny = "short";
  EXPECT_TRUE(AppendBatch(&tiny, BatchOf({"a"}, 1)).IsInvalidArgument());
  std::string full = BatchOf({"a"}, 1);
  for (int i = 8; i < 12; ++i) full[i] = static_cast<char>(0xff);
  EXPECT_TRUE(AppendBatch(&full, BatchOf({"a"}, 2)).IsInvalidArgument());
  EXPECT_EQ(before, rep) << "a refused append changes nothing";
}

}  // namespace
}  // namespace coffer
