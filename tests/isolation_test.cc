// Copyright (c) Coffer authors.
//
// One tenant's operations never see or touch another tenant's data, through
// any API, and its bytes never land in another tenant's files.

#include <atomic>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "coffer/coffer.h"
#include "tests/testutil.h"

namespace coffer::test {
namespace {

namespace fs = std::filesystem;

class IsolationTest : public ClusterTest {
 protected:
  void SetUp() override {
    ClusterTest::SetUp();
    ASSERT_OK(CreateCluster());
    ASSERT_OK(cluster_->CreateTenant("alpha", TenantOptions()));
    ASSERT_OK(cluster_->CreateTenant("beta", TenantOptions()));
    ASSERT_OK(cluster_->GetTenant("alpha", &a_));
    ASSERT_OK(cluster_->GetTenant("beta", &b_));
    ASSERT_EQ(a_->id(), "alpha");
    ASSERT_EQ(b_->id(), "beta");
  }
  void TearDown() override {
    a_.reset();
    b_.reset();
    ClusterTest::TearDown();
  }

  // Writes the same keys to both tenants with distinct values; returns
  // key -> {alpha value, beta value}.
  std::map<std::string, std::pair<std::string, std::string>> WriteShared(
      int n, const std::string& prefix) {
    std::map<std::string, std::pair<std::string, std::string>> kv;
    for (int i = 0; i < n; ++i) {
      std::string key = prefix + std::to_string(1000 + i);
      std::string va = "A-" + RandomString(24);
      std::string vb = "B-" + RandomString(24);
      EXPECT_OK(a_->Put(WriteOptions(), key, va));
      EXPECT_OK(b_->Put(WriteOptions(), key, vb));
      kv[key] = {va, vb};
    }
    return kv;
  }

  std::unique_ptr<Tenant> a_;
  std::unique_ptr<Tenant> b_;
};

TEST_F(IsolationTest, SameKeysDifferentValues) {
  auto kv = WriteShared(100, "k/");
  for (const auto& [key, values] : kv) {
    EXPECT_EQ(GetValue(a_.get(), key), values.first) << key;
    EXPECT_EQ(GetValue(b_.get(), key), values.second) << key;
  }
  // A second handle to the same tenant sees the same data.
  std::unique_ptr<Tenant> a2;
  ASSERT_OK(cluster_->GetTenant("alpha", &a2));
  EXPECT_EQ(GetValue(a2.get(), kv.begin()->first), kv.begin()->second.first);
}

TEST_F(IsolationTest, KeyOnlyInOneTenantIsNotFoundInTheOther) {
  ASSERT_OK(a_->Put(WriteOptions(), "only-in-alpha", "secret-a"));
  ASSERT_OK(b_->Put(WriteOptions(), "only-in-beta", "secret-b"));
  EXPECT_EQ(GetValue(a_.get(), "only-in-alpha"), "secret-a");
  EXPECT_EQ(GetValue(b_.get(), "only-in-alpha"), "NOT_FOUND");
  EXPECT_EQ(GetValue(a_.get(), "only-in-beta"), "NOT_FOUND");
  // Also after both are flushed to table files.
  ASSERT_OK(a_->Flush());
  ASSERT_OK(b_->Flush());
  EXPECT_EQ(GetValue(b_.get(), "only-in-alpha"), "NOT_FOUND");
  EXPECT_EQ(GetValue(a_.get(), "only-in-beta"), "NOT_FOUND");
}

TEST_F(IsolationTest, IteratorsSeeOnlyOwnKeys) {
  auto shared = WriteShared(50, "p/");
  std::map<std::string, std::string> want_a, want_b;
  for (const auto& [k, v] : shared) {
    want_a[k] = v.first;
    want_b[k] = v.second;
  }
  for (int i = 0; i < 20; ++i) {
    std::string ka = "p/a-only-" + std::to_string(i);
    std::string kb = "p/b-only-" + std::to_string(i);
    std::string kq = "q/b-only-" + std::to_string(i);
    ASSERT_OK(a_->Put(WriteOptions(), ka, "va" + std::to_string(i)));
    ASSERT_OK(b_->Put(WriteOptions(), kb, "vb" + std::to_string(i)));
    ASSERT_OK(b_->Put(WriteOptions(), kq, "vq" + std::to_string(i)));
    want_a[ka] = "va" + std::to_string(i);
    want_b[kb] = "vb" + std::to_string(i);
    want_b[kq] = "vq" + std::to_string(i);
  }
  // Half of the data in table files, half in memtables.
  ASSERT_OK(a_->Flush());
  ASSERT_OK(b_->Put(WriteOptions(), "a", "b-first"));
  want_b["a"] = "b-first";

  EXPECT_EQ(ScanAll(a_.get()), want_a);
  EXPECT_EQ(ScanAll(b_.get()), want_b);

  // Prefix.
  ReadOptions prefix;
  prefix.prefix = "p/";
  std::map<std::string, std::string> want_a_p, want_b_p;
  for (const auto& [k, v] : want_a) {
    if (k.rfind("p/", 0) == 0) want_a_p[k] = v;
  }
  for (const auto& [k, v] : want_b) {
    if (k.rfind("p/", 0) == 0) want_b_p[k] = v;
  }
  EXPECT_EQ(ScanAll(a_.get(), prefix), want_a_p);
  EXPECT_EQ(ScanAll(b_.get(), prefix), want_b_p);

  // A prefix that exists only in beta is empty in alpha.
  ReadOptions q;
  q.prefix = "q/";
  EXPECT_TRUE(ScanAll(a_.get(), q).empty());
  EXPECT_EQ(ScanAll(b_.get(), q).size(), 20u);

  // Bounds: [p/a, p/c) covers p/a-only-* in alpha and p/b-only-* in beta.
  ReadOptions bounds;
  bounds.lower_bound = "p/a";
  bounds.upper_bound = "p/c";
  std::map<std::string, std::string> got_a = ScanAll(a_.get(), bounds);
  std::map<std::string, std::string> got_b = ScanAll(b_.get(), bounds);
  EXPECT_EQ(got_a.size(), 20u);
  EXPECT_EQ(got_b.size(), 20u);
  for (const auto& [k, v] : got_a) {
    EXPECT_EQ(k.rfind("p/a-only-", 0), 0u) << k;
    EXPECT_EQ(want_a[k], v);
  }
  for (const auto& [k, v] : got_b) {
    EXPECT_EQ(k.rfind("p/b-only-", 0), 0u) << k;
    EXPECT_EQ(want_b[k], v);
  }

  // Reverse iteration and seeks stay inside the tenant as well.
  std::unique_ptr<Iterator> it = a_->NewIterator(ReadOptions());
  it->SeekToLast();
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(std::string(it->key()), want_a.rbegin()->first);
  it->Seek("q/");  // beta has q/ keys; alpha has nothing at or after q/
  EXPECT_FALSE(it->Valid());
  it->SeekForPrev("p/b-only-zzz");  // alpha's last key <= that is p/a-only-9
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(std::string(it->key()), "p/a-only-9");
  int backwards = 0;
  for (it->SeekToLast(); it->Valid(); it->Prev()) {
    EXPECT_EQ(want_a.count(std::string(it->key())), 1u) << it->key();
    ++backwards;
  }
  EXPECT_OK(it->status());
  EXPECT_EQ(backwards, static_cast<int>(want_a.size()));
}

TEST_F(IsolationTest, DeleteInOneLeavesTheOther) {
  auto kv = WriteShared(20, "d/");
  for (const auto& [key, values] : kv)
    ASSERT_OK(a_->Delete(WriteOptions(), key));
  WriteBatch range;
  range.DeleteRange("a", "z");
  ASSERT_OK(a_->Write(WriteOptions(), range));
  for (const auto& [key, values] : kv) {
    EXPECT_EQ(GetValue(a_.get(), key), "NOT_FOUND");
    EXPECT_EQ(GetValue(b_.get(), key), values.second);
  }
  EXPECT_TRUE(ScanAll(a_.get()).empty());
  EXPECT_EQ(ScanAll(b_.get()).size(), kv.size());
}

TEST_F(IsolationTest, WriteBatchAppliesToOneTenantOnly) {
  ASSERT_OK(a_->Put(WriteOptions(), "gone", "x"));
  ASSERT_OK(b_->Put(WriteOptions(), "gone", "y"));
  WriteBatch batch;
  batch.Put("b1", "v1");
  batch.Put("b2", "v2");
  batch.Delete("gone");
  batch.Put("b3", "v3");
  ASSERT_OK(a_->Write(WriteOptions(), batch));
  EXPECT_EQ(GetValue(a_.get(), "b1"), "v1");
  EXPECT_EQ(GetValue(a_.get(), "b2"), "v2");
  EXPECT_EQ(GetValue(a_.get(), "b3"), "v3");
  EXPECT_EQ(GetValue(a_.get(), "gone"), "NOT_FOUND");
  EXPECT_EQ(GetValue(b_.get(), "b1"), "NOT_FOUND");
  EXPECT_EQ(GetValue(b_.get(), "gone"), "y");
}

TEST_F(IsolationTest, InvalidBatchAppliesNothing) {
  // Empty keys are InvalidArgument; a batch holding one must not apply its
  // other operations.
  ASSERT_OK(a_->Put(WriteOptions(), "keep", "kept"));
  WriteBatch batch;
  batch.Put("x1", "v1");
  batch.Delete("keep");
  batch.Put("", "empty-key");
  batch.Put("x2", "v2");
  Status s = a_->Write(WriteOptions(), batch);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_EQ(GetValue(a_.get(), "x1"), "NOT_FOUND");
  EXPECT_EQ(GetValue(a_.get(), "x2"), "NOT_FOUND");
  EXPECT_EQ(GetValue(a_.get(), "keep"), "kept");
  Status p = a_->Put(WriteOptions(), "", "v");
  EXPECT_TRUE(p.IsInvalidArgument()) << p.ToString();
}

TEST_F(IsolationTest, BatchesAreSeenWhole) {
  // A writer commits {x=i, y=i} batches; readers at a snapshot and iterators
  // must never see x and y differ.
  std::atomic<bool> stop{false};
  std::atomic<int> torn{0};
  std::atomic<int> reads{0};
  WriteBatch init;
  init.Put("x", "0");
  init.Put("y", "0");
  ASSERT_OK(a_->Write(WriteOptions(), init));
  std::thread writer([&] {
    for (int i = 1; i <= 2000; ++i) {
      WriteBatch b;
      b.Put("x", std::to_string(i));
      b.Put("y", std::to_string(i));
      EXPECT_OK(a_->Write(WriteOptions(), b));
    }
    stop = true;
  });
  std::thread reader([&] {
    while (!stop) {
      std::shared_ptr<const Snapshot> snap;
      Status s = a_->GetSnapshot(&snap);
      if (!s.ok() || snap == nullptr) {
        ADD_FAILURE() << s.ToString();
        break;
      }
      if (GetValue(a_.get(), "x", snap.get()) !=
          GetValue(a_.get(), "y", snap.get())) {
        ++torn;
      }
      std::map<std::string, std::string> all = ScanAll(a_.get());
      if (all["x"] != all["y"]) ++torn;
      ++reads;
    }
  });
  writer.join();
  reader.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(GetValue(a_.get(), "x"), "2000");
  EXPECT_EQ(GetValue(b_.get(), "x"), "NOT_FOUND");
}

TEST_F(IsolationTest, DroppingOneLeavesTheOtherIntact) {
  auto kv = WriteShared(100, "k/");
  ASSERT_OK(a_->Flush());
  ASSERT_OK(b_->Flush());
  auto more = WriteShared(20, "m/");  // unflushed in both
  a_.reset();
  ASSERT_OK(cluster_->DropTenant("alpha", nullptr));
  EXPECT_EQ(cluster_->ListTenants(), std::vector<std::string>{"beta"});
  for (const auto& [key, values] : kv) {
    EXPECT_EQ(GetValue(b_.get(), key), values.second) << key;
  }
  for (const auto& [key, values] : more) {
    EXPECT_EQ(GetValue(b_.get(), key), values.second) << key;
  }
  EXPECT_EQ(ScanAll(b_.get()).size(), kv.size() + more.size());
  ASSERT_OK(b_->Put(WriteOptions(), "after-drop", "ok"));
  EXPECT_EQ(GetValue(b_.get(), "after-drop"), "ok");
  // And after a restart.
  b_.reset();
  ASSERT_OK(ReopenCluster());
  ASSERT_OK(cluster_->GetTenant("beta", &b_));
  for (const auto& [key, values] : kv) {
    EXPECT_EQ(GetValue(b_.get(), key), values.second) << key;
  }
  EXPECT_EQ(GetValue(b_.get(), "after-drop"), "ok");
}

TEST_F(IsolationTest, OtherTenantsFilesNeverHoldItsValues) {
  std::vector<std::string> a_values;
  for (int i = 0; i < 200; ++i) {
    std::string key = "key-" + std::to_string(i);
    std::string va = RandomString(32);
    a_values.push_back(va);
    ASSERT_OK(a_->Put(WriteOptions(), key, va));
    ASSERT_OK(b_->Put(WriteOptions(), key, RandomString(32)));
  }
  ASSERT_OK(a_->Flush());
  ASSERT_OK(b_->Flush());
  ASSERT_OK(b_->Compact());
  // The layout the scan relies on: each tenant's files in its own directory,
  // with at least one table file after the flush.
  auto has_sst = [](const std::string& dir) {
    for (const std::string& f : ListFilesRecursive(dir)) {
      if (f.size() > 4 && f.substr(f.size() - 4) == ".sst") return true;
    }
    return false;
  };
  ASSERT_TRUE(fs::is_directory(TenantDir("alpha") + "/db"));
  ASSERT_TRUE(has_sst(TenantDir("alpha"))) << "no table file under alpha";
  ASSERT_TRUE(has_sst(TenantDir("beta"))) << "no table file under beta";
  for (const std::string& v : a_values) {
    std::vector<std::string> hits = FilesContaining(TenantDir("beta"), v);
    EXPECT_TRUE(hits.empty()) << "alpha's value found in " << hits.front();
  }
  // Still true once the cluster is closed (final flushes, WAL, MANIFEST).
  a_.reset();
  b_.reset();
  cluster_.reset();
  FileTree beta = ReadTree(TenantDir("beta"));
  ASSERT_FALSE(beta.empty());
  for (const std::string& v : a_values) {
    for (const auto& [path, bytes] : beta) {
      EXPECT_EQ(bytes.find(v), std::string::npos)
          << "alpha's value in " << path;
    }
  }
}

}  // namespace
}  // namespace coffer::test
