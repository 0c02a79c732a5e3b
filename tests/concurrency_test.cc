// Copyright (c) Coffer authors.
//
// Many threads on many tenants at once; snapshots give consistent views.

#include <algorithm>
#include <atomic>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "coffer/coffer.h"
#include "tests/testutil.h"

namespace coffer::test {
namespace {

constexpr int kTenants = 4;
constexpr int kWriters = 8;
constexpr int kKeysPerWriter = 3000;

std::string TenantName(int i) { return "tenant" + std::to_string(i); }

std::string Key(int writer, int j) {
  char buf[32];
  snprintf(buf, sizeof(buf), "w%02d/%06d", writer, j);
  return buf;
}

// Deterministic value, so readers can check anything they find.
std::string Value(int writer, int j, int generation = 0) {
  std::string v = "v" + std::to_string(generation) + ":" + Key(writer, j) + ":";
  while (v.size() < 100) v += static_cast<char>('a' + (j + v.size()) % 26);
  return v;
}

class ConcurrencyTest : public ClusterTest {
 protected:
  void SetUp() override {
    ClusterTest::SetUp();
    ASSERT_OK(CreateCluster());
    for (int i = 0; i < kTenants; ++i) {
      ASSERT_OK(cluster_->CreateTenant(TenantName(i), TenantOptions()));
      std::unique_ptr<Tenant> t;
      ASSERT_OK(cluster_->GetTenant(TenantName(i), &t));
      tenants_.push_back(std::move(t));
    }
  }
  void TearDown() override {
    tenants_.clear();
    ClusterTest::TearDown();
  }
  // Writer w writes to tenant w % kTenants.
  Tenant* TenantOf(int writer) { return tenants_[writer % kTenants].get(); }

  std::vector<std::unique_ptr<Tenant>> tenants_;
};

TEST_F(ConcurrencyTest, WritersAndReadersOnManyTenants) {
  // progress[w]: writes of w that completed; started[w]: writes w began.
  std::atomic<int> progress[kWriters];
  std::atomic<int> started[kWriters];
  for (auto& p : progress) p = 0;
  for (auto& p : started) p = 0;
  std::atomic<int> writers_done{0};
  std::atomic<int> bad_reads{0};
  std::atomic<int> write_errors{0};
  std::atomic<bool> snapshot_taken{false};
  std::atomic<long> reads{0};

  // Snapshot of tenant0 taken mid-way, with the writers' progress around it.
  std::shared_ptr<const Snapshot> snap;
  int before[kWriters] = {0};
  int after[kWriters] = {0};

  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      Tenant* t = TenantOf(w);
      for (int j = 0; j < kKeysPerWriter; ++j) {
        // Writer 0 is still writing when the snapshot is taken: it waits at
        // two thirds until then (and races with it in between).
        if (w == 0 && j == 2 * kKeysPerWriter / 3) {
          while (!snapshot_taken.load() && write_errors.load() == 0) {
            std::this_thread::yield();
          }
        }
        Status s;
        started[w].store(j + 1, std::memory_order_release);
        if (j % 10 == 9) {
          // Some writes go through batches.
          WriteBatch b;
          b.Put(Key(w, j), Value(w, j));
          s = t->Write(WriteOptions(), b);
        } else {
          s = t->Put(WriteOptions(), Key(w, j), Value(w, j));
        }
        if (!s.ok()) {
          ++write_errors;
          ADD_FAILURE() << "writer " << w << ": " << s.ToString();
          break;
        }
        progress[w].store(j + 1, std::memory_order_release);
      }
      ++writers_done;
    });
  }
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&, r] {
      std::mt19937 rng(r);
      while (writers_done.load() < kWriters) {
        int w = rng() % kWriters;
        int done = progress[w].load(std::memory_order_acquire);
        if (done == 0) continue;
        int j = rng() % done;
        // Completed writes are visible with their exact value.
        std::string got = GetValue(TenantOf(w), Key(w, j));
        if (got != Value(w, j)) {
          if (bad_reads++ < 5) {
            ADD_FAILURE() << Key(w, j) << " in " << TenantOf(w)->id()
                          << ": got " << got;
          }
        }
        // The other tenants never have this writer's keys.
        Tenant* other = tenants_[(w + 1) % kTenants].get();
        if (GetValue(other, Key(w, j)) != "NOT_FOUND") ++bad_reads;
        // A short scan sees only this tenant's writers and exact values.
        if (rng() % 16 == 0) {
          ReadOptions ro;
          ro.prefix = Key(w, 0).substr(0, 4);
          std::unique_ptr<Iterator> it = TenantOf(w)->NewIterator(ro);
          int n = 0;
          for (it->SeekToFirst(); it->Valid() && n < 100; it->Next(), ++n) {
            std::string k(it->key());
            int jj = std::stoi(k.substr(4));
            if (std::string(it->value()) != Value(w, jj)) ++bad_reads;
          }
          if (!it->status().ok()) ++bad_reads;
        }
        ++reads;
      }
    });
  }

  // Take the snapshot when writers are about half-way.
  while (progress[0].load() < kKeysPerWriter / 2 && write_errors.load() == 0) {
    std::this_thread::yield();
  }
  for (int w = 0; w < kWriters; ++w) before[w] = progress[w].load();
  Status snap_status = tenants_[0]->GetSnapshot(&snap);
  snapshot_taken = true;
  for (int w = 0; w < kWriters; ++w) after[w] = started[w].load();

  for (auto& th : threads) th.join();
  ASSERT_EQ(write_errors.load(), 0);
  EXPECT_EQ(bad_reads.load(), 0);
  EXPECT_GT(reads.load(), 0);

  // Every write is visible afterwards with the right value, and each tenant
  // holds exactly the keys of its writers.
  for (int i = 0; i < kTenants; ++i) {
    std::map<std::string, std::string> want;
    for (int w = i; w < kWriters; w += kTenants) {
      for (int j = 0; j < kKeysPerWriter; ++j) want[Key(w, j)] = Value(w, j);
    }
    std::map<std::string, std::string> got = ScanAll(tenants_[i].get());
    EXPECT_EQ(got.size(), want.size()) << TenantName(i);
    EXPECT_TRUE(got == want) << TenantName(i) << " holds the wrong data";
    for (int w = i; w < kWriters; w += kTenants) {
      for (int j = 0; j < kKeysPerWriter; j += 97) {
        EXPECT_EQ(GetValue(tenants_[i].get(), Key(w, j)), Value(w, j));
      }
    }
  }

  // The snapshot: for each writer of tenant0 (writers 0 and 4), it shows
  // exactly a prefix 0..m-1 of that writer's keys, with m between the
  // progress seen just before and just after the snapshot was taken.
  ASSERT_OK(snap_status);
  ASSERT_NE(snap, nullptr);
  Tenant* t0 = tenants_[0].get();
  std::set<std::string> snap_keys_by_get;
  for (int w = 0; w < kWriters; w += kTenants) {
    int m = 0;
    while (m < kKeysPerWriter &&
           GetValue(t0, Key(w, m), snap.get()) == Value(w, m)) {
      snap_keys_by_get.insert(Key(w, m));
      ++m;
    }
    EXPECT_GE(m, before[w]) << "writer " << w;
    EXPECT_LE(m, after[w]) << "writer " << w;
    if (w == 0) {
      EXPECT_LT(m, kKeysPerWriter) << "snapshot was not taken mid-way";
    }
    for (int j = m; j < kKeysPerWriter; ++j) {
      ASSERT_EQ(GetValue(t0, Key(w, j), snap.get()), "NOT_FOUND")
          << "writer " << w << " key " << j << " (prefix ends at " << m << ")";
    }
  }
  // An iterator at the snapshot sees exactly that key set.
  ReadOptions at_snap;
  at_snap.snapshot = snap.get();
  std::map<std::string, std::string> snap_scan = ScanAll(t0, at_snap);
  std::set<std::string> snap_keys_by_scan;
  for (const auto& [k, v] : snap_scan) snap_keys_by_scan.insert(k);
  EXPECT_EQ(snap_keys_by_scan, snap_keys_by_get);

  // Overwrites and deletes after the snapshot are invisible through it.
  ASSERT_OK(t0->Put(WriteOptions(), Key(0, 0), "overwritten"));
  ASSERT_OK(t0->Delete(WriteOptions(), Key(0, 1)));
  ASSERT_OK(t0->Put(WriteOptions(), "zzz-new", "new"));
  ASSERT_OK(t0->Flush());
  EXPECT_EQ(GetValue(t0, Key(0, 0), snap.get()), Value(0, 0));
  EXPECT_EQ(GetValue(t0, Key(0, 1), snap.get()), Value(0, 1));
  EXPECT_EQ(GetValue(t0, "zzz-new", snap.get()), "NOT_FOUND");
  EXPECT_EQ(GetValue(t0, Key(0, 0)), "overwritten");
  EXPECT_TRUE(ScanAll(t0, at_snap) == snap_scan);
  snap.reset();
}

TEST_F(ConcurrencyTest, ConcurrentCreateOfOneIdHasOneWinner) {
  for (int round = 0; round < 5; ++round) {
    const std::string id = "race" + std::to_string(round);
    std::atomic<int> ok{0}, exists{0}, other{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 6; ++i) {
      threads.emplace_back([&] {
        Status s = cluster_->CreateTenant(id, TenantOptions());
        if (s.ok()) {
          ++ok;
        } else if (s.IsAlreadyExists()) {
          ++exists;
        } else {
          ++other;
          ADD_FAILURE() << s.ToString();
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(ok.load(), 1) << id;
    EXPECT_EQ(exists.load(), 5) << id;
    EXPECT_EQ(other.load(), 0) << id;
  }
  // Distinct ids from many threads: all created.
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      for (int j = 0; j < 10; ++j) {
        std::string id = "par" + std::to_string(i) + "-" + std::to_string(j);
        EXPECT_OK(cluster_->CreateTenant(id, TenantOptions()));
        std::unique_ptr<Tenant> t;
        EXPECT_OK(cluster_->GetTenant(id, &t));
        if (t) EXPECT_OK(t->Put(WriteOptions(), "k", id));
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(cluster_->ListTenants().size(), kTenants + 5u + 40u);
  tenants_.clear();
  ASSERT_OK(ReopenCluster());
  EXPECT_EQ(cluster_->ListTenants().size(), kTenants + 5u + 40u);
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 10; ++j) {
      std::string id = "par" + std::to_string(i) + "-" + std::to_string(j);
      std::unique_ptr<Tenant> t;
      ASSERT_OK(cluster_->GetTenant(id, &t));
      EXPECT_EQ(GetValue(t.get(), "k"), id);
    }
  }
}

}  // namespace
}  // namespace coffer::test
