// Copyright (c) Coffer authors.
//
// Tenants open on first use and idle ones close beyond max_open_tenants,
// invisibly to callers.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "coffer/coffer.h"
#include "tests/testutil.h"

namespace coffer::test {
namespace {

constexpr int kTenants = 2000;
constexpr size_t kMaxOpen = 64;
constexpr int kOpsPerThread = 150;

std::string TenantName(int i) {
  char buf[16];
  snprintf(buf, sizeof(buf), "t%04d", i);
  return buf;
}
std::string ValueOf(int i) { return "value-of-" + TenantName(i); }

class Timer {
 public:
  explicit Timer(const char* phase) : phase_(phase) {}
  ~Timer() {
    double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_)
            .count();
    std::printf("[ timing   ] %-40s %7.2f s\n", phase_, s);
    std::fflush(stdout);
  }

 private:
  const char* phase_;
  std::chrono::steady_clock::time_point start_ =
      std::chrono::steady_clock::now();
};

class LazyOpenTest : public ClusterTest {
 protected:
  OpenOptions Options() const {
    OpenOptions o;
    o.max_open_tenants = kMaxOpen;
    // Small per-tenant memtables keep 2,000 tenants cheap.
    o.tenant_write_buffer_bytes = 256 << 10;
    return o;
  }

  ClusterStats Stats() {
    ClusterStats stats;
    Status s = cluster_->GetStats(&stats);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return stats;
  }

  // The value stored in tenant i, or what went wrong.
  std::string Read(int i) {
    std::unique_ptr<Tenant> t;
    Status s = cluster_->GetTenant(TenantName(i), &t);
    if (!s.ok()) return s.ToString();
    return GetValue(t.get(), "the-key");
  }
};

TEST_F(LazyOpenTest, TwoThousandTenantsUnderASixtyFourCap) {
  ASSERT_OK(CreateCluster(ClusterLimits(), Options()));
  {
    Timer timer("create 2000 tenants");
    for (int i = 0; i < kTenants; ++i) {
      ASSERT_OK(cluster_->CreateTenant(TenantName(i), TenantOptions()));
    }
  }
  ASSERT_EQ(cluster_->ListTenants().size(), static_cast<size_t>(kTenants));
  EXPECT_LE(Stats().open_tenants, kMaxOpen);
  {
    // First use creates each tenant's database and, past the cap, closes
    // others; that is fsync-bound, so four writers overlap the waits.
    Timer timer("write one key to each (4 threads)");
    std::atomic<int> errors{0};
    std::vector<std::thread> writers;
    for (int w = 0; w < 4; ++w) {
      writers.emplace_back([&, w] {
        for (int i = w; i < kTenants; i += 4) {
          std::unique_ptr<Tenant> t;
          Status s = cluster_->GetTenant(TenantName(i), &t);
          if (s.ok()) s = t->Put(WriteOptions(), "the-key", ValueOf(i));
          if (!s.ok() && errors++ < 5) {
            ADD_FAILURE() << TenantName(i) << ": " << s.ToString();
          }
        }
      });
    }
    for (auto& th : writers) th.join();
    ASSERT_EQ(errors.load(), 0);
  }
  ClusterStats stats = Stats();
  EXPECT_EQ(stats.tenants, static_cast<uint64_t>(kTenants));
  EXPECT_LE(stats.open_tenants, kMaxOpen);
  EXPECT_GT(stats.tenant_closes, 0u);
  // Really closed: 2,000 open databases would hold thousands of files.
  EXPECT_LT(CountOpenFds(), 2000) << "tenant databases are not being closed";

  std::vector<int> order(kTenants);
  for (int i = 0; i < kTenants; ++i) order[i] = i;
  std::mt19937 rng(42);
  for (int pass = 0; pass < 2; ++pass) {
    Timer timer(pass == 0 ? "read all, shuffled, 4 threads (pass 1)"
                          : "read all, shuffled, 4 threads (pass 2)");
    std::shuffle(order.begin(), order.end(), rng);
    const uint64_t opens_before = Stats().tenant_opens;
    // Four readers walk the shuffled order together (each takes every
    // fourth entry); opens are fsync-bound, so this overlaps the waits.
    std::atomic<int> wrong{0};
    std::vector<std::thread> readers;
    for (int w = 0; w < 4; ++w) {
      readers.emplace_back([&, w] {
        for (size_t k = w; k < order.size(); k += 4) {
          const int i = order[k];
          std::string got = Read(i);
          if (got != ValueOf(i) && wrong++ < 5) {
            ADD_FAILURE() << TenantName(i) << ": " << got;
          }
        }
      });
    }
    for (auto& th : readers) th.join();
    EXPECT_EQ(wrong.load(), 0);
    stats = Stats();
    EXPECT_LE(stats.open_tenants, kMaxOpen);
    // A shuffled pass over 2,000 tenants with room for 64 must reopen
    // nearly all of them.
    EXPECT_GE(stats.tenant_opens - opens_before, uint64_t{kTenants} - kMaxOpen);
  }
  EXPECT_LT(CountOpenFds(), 2000);
  {
    // TenantInfo::open agrees with the cap.
    Timer timer("describe all");
    int open = 0;
    for (int i = 0; i < kTenants; ++i) {
      TenantInfo info;
      ASSERT_OK(cluster_->DescribeTenant(TenantName(i), &info));
      if (info.open) ++open;
    }
    EXPECT_LE(open, static_cast<int>(kMaxOpen));
    EXPECT_GT(open, 0);
  }

  {
    // An open iterator keeps its tenant open and working while 200 other
    // tenants come and go.
    Timer timer("iterator across 200 other tenants");
    std::unique_ptr<Tenant> t0;
    ASSERT_OK(cluster_->GetTenant(TenantName(0), &t0));
    for (int k = 0; k < 50; ++k) {
      char key[16];
      snprintf(key, sizeof(key), "it/%03d", k);
      ASSERT_OK(t0->Put(WriteOptions(), key, std::string("iv") + key));
    }
    ReadOptions ro;
    ro.prefix = "it/";
    std::unique_ptr<Iterator> it = t0->NewIterator(ro);
    it->SeekToFirst();
    int seen = 0;
    for (; it->Valid() && seen < 10; it->Next()) ++seen;
    ASSERT_EQ(seen, 10);
    for (int i = 1; i <= 200; ++i) {
      int other = 1 + (i * 7) % (kTenants - 1);
      std::unique_ptr<Tenant> t;
      ASSERT_OK(cluster_->GetTenant(TenantName(other), &t));
      ASSERT_OK(t->Put(WriteOptions(), "touched", "yes"));
      ASSERT_EQ(GetValue(t.get(), "the-key"), ValueOf(other));
    }
    EXPECT_LE(Stats().open_tenants, kMaxOpen);
    for (; it->Valid(); it->Next()) {
      char key[16];
      snprintf(key, sizeof(key), "it/%03d", seen);
      ASSERT_EQ(std::string(it->key()), key);
      ASSERT_EQ(std::string(it->value()), std::string("iv") + key);
      ++seen;
    }
    EXPECT_OK(it->status());
    EXPECT_EQ(seen, 50);
    // Seeking back works too.
    it->Seek("it/025");
    ASSERT_TRUE(it->Valid());
    EXPECT_EQ(std::string(it->key()), "it/025");
    it.reset();
    EXPECT_EQ(GetValue(t0.get(), "the-key"), ValueOf(0));
  }

  {
    // Four threads on random tenants; a monitor watches the open count.
    Timer timer("4 threads x 150 random tenants");
    std::atomic<bool> done{false};
    std::atomic<uint64_t> max_open{0};
    std::atomic<int> errors{0};
    std::thread monitor([&] {
      while (!done) {
        ClusterStats s;
        if (cluster_->GetStats(&s).ok()) {
          uint64_t seen = max_open.load();
          while (s.open_tenants > seen &&
                 !max_open.compare_exchange_weak(seen, s.open_tenants)) {
          }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    });
    std::vector<std::thread> workers;
    for (int w = 0; w < 4; ++w) {
      workers.emplace_back([&, w] {
        std::mt19937 r(w + 100);
        for (int op = 0; op < kOpsPerThread; ++op) {
          int i = r() % kTenants;
          std::unique_ptr<Tenant> t;
          Status s = cluster_->GetTenant(TenantName(i), &t);
          if (!s.ok()) {
            if (errors++ < 5) ADD_FAILURE() << s.ToString();
            continue;
          }
          std::string key = "c/" + std::to_string(w) + "/" + std::to_string(op);
          s = t->Put(WriteOptions(), key, TenantName(i) + key);
          if (!s.ok() && errors++ < 5) ADD_FAILURE() << s.ToString();
          std::string got = GetValue(t.get(), "the-key");
          if (got != ValueOf(i) && errors++ < 5) {
            ADD_FAILURE() << TenantName(i) << ": " << got;
          }
          got = GetValue(t.get(), key);
          if (got != TenantName(i) + key && errors++ < 5) {
            ADD_FAILURE() << TenantName(i) << " " << key << ": " << got;
          }
        }
      });
    }
    for (auto& th : workers) th.join();
    done = true;
    monitor.join();
    EXPECT_EQ(errors.load(), 0);
    // In flight, each of the 4 workers may pin one tenant beyond the cap.
    EXPECT_LE(max_open.load(), kMaxOpen + 4);
    EXPECT_LE(Stats().open_tenants, kMaxOpen);
    // The writes are all there.
    for (int w = 0; w < 4; ++w) {
      std::mt19937 r(w + 100);
      for (int op = 0; op < kOpsPerThread; ++op) {
        int i = r() % kTenants;
        std::string key = "c/" + std::to_string(w) + "/" + std::to_string(op);
        std::unique_ptr<Tenant> t;
        ASSERT_OK(cluster_->GetTenant(TenantName(i), &t));
        EXPECT_EQ(GetValue(t.get(), key), TenantName(i) + key);
      }
    }
  }

  {
    Timer timer("reopen + sample 200");
    ASSERT_OK(ReopenCluster(Options()));
    EXPECT_EQ(cluster_->ListTenants().size(), static_cast<size_t>(kTenants));
    std::mt19937 r(7);
    for (int n = 0; n < 200; ++n) {
      int i = r() % kTenants;
      ASSERT_EQ(Read(i), ValueOf(i));
    }
    ClusterStats s = Stats();
    EXPECT_LE(s.open_tenants, kMaxOpen);
    EXPECT_GT(s.tenant_closes, 0u);
  }
}

// The cap on a small scale, with a snapshot that must keep its tenant open.
TEST_F(LazyOpenTest, SnapshotKeepsTenantUsableUnderATinyCap) {
  OpenOptions o = Options();
  o.max_open_tenants = 4;
  ASSERT_OK(CreateCluster(ClusterLimits(), o));
  for (int i = 0; i < 40; ++i) {
    ASSERT_OK(cluster_->CreateTenant(TenantName(i), TenantOptions()));
    std::unique_ptr<Tenant> t;
    ASSERT_OK(cluster_->GetTenant(TenantName(i), &t));
    ASSERT_OK(t->Put(WriteOptions(), "the-key", ValueOf(i)));
  }
  std::unique_ptr<Tenant> t0;
  ASSERT_OK(cluster_->GetTenant(TenantName(0), &t0));
  std::shared_ptr<const Snapshot> snap;
  ASSERT_OK(t0->GetSnapshot(&snap));
  ASSERT_OK(t0->Put(WriteOptions(), "the-key", "changed"));
  for (int round = 0; round < 3; ++round) {
    for (int i = 1; i < 40; ++i) ASSERT_EQ(Read(i), ValueOf(i));
    EXPECT_LE(Stats().open_tenants, 4u);
    EXPECT_EQ(GetValue(t0.get(), "the-key", snap.get()), ValueOf(0));
    EXPECT_EQ(GetValue(t0.get(), "the-key"), "changed");
  }
  TenantInfo info;
  ASSERT_OK(cluster_->DescribeTenant(TenantName(0), &info));
  EXPECT_TRUE(info.open) << "a tenant with a live snapshot was closed";
  snap.reset();
  // Once released, tenant 0 can be closed like any other.
  for (int i = 1; i < 40; ++i) ASSERT_EQ(Read(i), ValueOf(i));
  ClusterStats s = Stats();
  EXPECT_LE(s.open_tenants, 4u);
  EXPECT_GT(s.tenant_closes, 30u);
  EXPECT_EQ(GetValue(t0.get(), "the-key"), "changed");
}

}  // namespace
}  // namespace coffer::test
