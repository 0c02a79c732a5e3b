// Copyright (c) Coffer authors.
//
// Building blocks of replication: frames and the write-ahead log tailer.

#include <random>

#include "engine/tenant_db.h"
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
      std::vector<WalBatch> out;
      ASSERT_OK(tailer.Read(next, 64 << 10, &out));
      if (out.empty()) break;
      for (const WalBatch& b : out) {
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
  std::vector<WalBatch> out;
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
  std::vector<WalBatch> out;
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

}  // namespace
}  // namespace coffer
