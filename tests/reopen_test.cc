// Copyright (c) Coffer authors.
//
// Data and tenants persist across restarts; dropping a tenant destroys it
// for good.

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "coffer/coffer.h"
#include "tests/testutil.h"

namespace coffer::test {
namespace {

namespace fs = std::filesystem;

class ReopenTest : public ClusterTest {
 protected:
  void SetUp() override {
    ClusterTest::SetUp();
    ClusterLimits limits;
    limits.max_tenants = 100;
    limits.default_tenant_quota = 8 << 20;
    limits.cluster_quota = 64 << 20;
    ASSERT_OK(CreateCluster(limits));
  }

  // Applies a mix of writes; `model` tracks what the tenant must hold.
  void Mutate(Tenant* t, std::map<std::string, std::string>* model, int round) {
    for (int i = 0; i < 200; ++i) {
      std::string k = "key" + std::to_string(i);
      std::string v = "r" + std::to_string(round) + "-" + RandomString(20);
      ASSERT_OK(t->Put(WriteOptions(), k, v));
      (*model)[k] = v;
    }
    for (int i = 0; i < 200; i += 7) {
      std::string k = "key" + std::to_string(i);
      ASSERT_OK(t->Delete(WriteOptions(), k));
      model->erase(k);
    }
    WriteBatch batch;
    batch.DeleteRange("key15", "key16");  // key15, key150..key159
    batch.Put("batched" + std::to_string(round), "b");
    ASSERT_OK(t->Write(WriteOptions(), batch));
    for (auto it = model->begin(); it != model->end();) {
      it = (it->first >= "key15" && it->first < "key16") ? model->erase(it)
                                                         : std::next(it);
    }
    (*model)["batched" + std::to_string(round)] = "b";
  }
};

TEST_F(ReopenTest, DataAndTenantsPersist) {
  const ClusterInfo info = cluster_->Describe();
  EXPECT_EQ(info.cluster_id, "test-cluster");
  EXPECT_EQ(info.region, "eu-west-1");
  EXPECT_EQ(info.geography, "eu");
  EXPECT_EQ(info.role, "primary");
  std::map<std::string, std::map<std::string, std::string>> model;
  std::map<std::string, uint64_t> created_at;
  for (const char* id : {"acme", "globex", "initech"}) {
    TenantOptions o;
    if (std::string(id) == "globex") o.quota = 2 << 20;
    ASSERT_OK(cluster_->CreateTenant(id, o));
    TenantInfo ti;
    ASSERT_OK(cluster_->DescribeTenant(id, &ti));
    EXPECT_GT(ti.created_unix_micros, 0u);
    created_at[id] = ti.created_unix_micros;
  }
  for (int round = 0; round < 3; ++round) {
    for (const char* id : {"acme", "globex", "initech"}) {
      std::unique_ptr<Tenant> t;
      ASSERT_OK(cluster_->GetTenant(id, &t));
      ASSERT_NO_FATAL_FAILURE(Mutate(t.get(), &model[id], round));
      if (round == 1) ASSERT_OK(t->Flush());  // mix tables and WAL
    }
    ASSERT_OK(ReopenCluster());
    const ClusterInfo again = cluster_->Describe();
    EXPECT_EQ(again.cluster_id, info.cluster_id);
    EXPECT_EQ(again.region, info.region);
    EXPECT_EQ(again.geography, info.geography);
    EXPECT_EQ(again.epoch, info.epoch);
    EXPECT_EQ(again.limits.max_tenants, 100u);
    EXPECT_EQ(again.limits.default_tenant_quota, 8u << 20);
    EXPECT_EQ(again.limits.cluster_quota, 64u << 20);
    EXPECT_EQ(cluster_->ListTenants(),
              (std::vector<std::string>{"acme", "globex", "initech"}));
    for (const char* id : {"acme", "globex", "initech"}) {
      std::unique_ptr<Tenant> t;
      ASSERT_OK(cluster_->GetTenant(id, &t));
      EXPECT_TRUE(ScanAll(t.get()) == model[id]) << id << " round " << round;
      EXPECT_EQ(GetValue(t.get(), "key7"), "NOT_FOUND");
      EXPECT_EQ(GetValue(t.get(), "key155"), "NOT_FOUND");
      TenantInfo ti;
      ASSERT_OK(cluster_->DescribeTenant(id, &ti));
      EXPECT_EQ(ti.created_unix_micros, created_at[id]);
      EXPECT_EQ(ti.quota, std::string(id) == "globex" ? 2u << 20 : 8u << 20);
      EXPECT_GT(ti.key_version, 0u);
      EXPECT_FALSE(ti.master_key_id.empty());
    }
  }
  ClusterStats stats;
  ASSERT_OK(cluster_->GetStats(&stats));
  EXPECT_EQ(stats.tenants, 3u);
}

TEST_F(ReopenTest, CreateAndOpenRefuseTheWrongDirectory) {
  std::unique_ptr<Cluster> other;
  Status s = Cluster::Create(data_dir_, TestClusterOptions(), OpenOptions(),
                             keys_, &other);
  EXPECT_TRUE(s.IsAlreadyExists() || s.IsBusy()) << s.ToString();
  cluster_.reset();
  s = Cluster::Create(data_dir_, TestClusterOptions(), OpenOptions(), keys_,
                      &other);
  EXPECT_TRUE(s.IsAlreadyExists()) << s.ToString();
  fs::create_directories(tmp_.Sub("empty"));
  s = Cluster::Open(tmp_.Sub("empty"), OpenOptions(), keys_, &other);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  s = Cluster::Open(tmp_.Sub("missing"), OpenOptions(), keys_, &other);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_FALSE(fs::exists(tmp_.Sub("missing/CLUSTER")));
}

TEST_F(ReopenTest, DropDestroysTheTenant) {
  ASSERT_OK(cluster_->CreateTenant("doomed", TenantOptions()));
  ASSERT_OK(cluster_->CreateTenant("keeper", TenantOptions()));
  std::unique_ptr<Tenant> doomed, keeper;
  ASSERT_OK(cluster_->GetTenant("doomed", &doomed));
  ASSERT_OK(cluster_->GetTenant("keeper", &keeper));
  for (int i = 0; i < 300; ++i) {
    ASSERT_OK(doomed->Put(WriteOptions(), "k" + std::to_string(i), "doomed"));
    ASSERT_OK(keeper->Put(WriteOptions(), "k" + std::to_string(i), "keeper"));
  }
  ASSERT_OK(doomed->Flush());
  ASSERT_OK(doomed->Put(WriteOptions(), "unflushed", "x"));
  TenantInfo before;
  ASSERT_OK(cluster_->DescribeTenant("doomed", &before));
  ASSERT_TRUE(fs::exists(TenantDir("doomed")));

  DropReport report;
  ASSERT_OK(cluster_->DropTenant("doomed", &report));
  EXPECT_EQ(report.tenant, "doomed");
  EXPECT_GT(report.files_removed, 0u);
  EXPECT_GT(report.bytes_removed, 0u);
  ASSERT_FALSE(report.key_versions_destroyed.empty());
  EXPECT_NE(std::find(report.key_versions_destroyed.begin(),
                      report.key_versions_destroyed.end(), before.key_version),
            report.key_versions_destroyed.end())
      << "the current key version " << before.key_version
      << " is not among those destroyed";
  EXPECT_FALSE(fs::exists(TenantDir("doomed")))
      << "tenants/doomed/ still exists";

  EXPECT_EQ(cluster_->ListTenants(), std::vector<std::string>{"keeper"});
  std::unique_ptr<Tenant> again;
  Status s = cluster_->GetTenant("doomed", &again);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  TenantInfo info;
  s = cluster_->DescribeTenant("doomed", &info);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  s = cluster_->SetTenantQuota("doomed", 1 << 20);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  s = cluster_->DropTenant("doomed", nullptr);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();

  // The old handle fails with NotFound on every call.
  std::string value;
  s = doomed->Get(ReadOptions(), "k1", &value);
  EXPECT_TRUE(s.IsNotFound()) << "Get: " << s.ToString();
  s = doomed->Put(WriteOptions(), "k1", "resurrect");
  EXPECT_TRUE(s.IsNotFound()) << "Put: " << s.ToString();
  s = doomed->Delete(WriteOptions(), "k1");
  EXPECT_TRUE(s.IsNotFound()) << "Delete: " << s.ToString();
  WriteBatch batch;
  batch.Put("k1", "v");
  s = doomed->Write(WriteOptions(), batch);
  EXPECT_TRUE(s.IsNotFound()) << "Write: " << s.ToString();
  std::unique_ptr<Iterator> it = doomed->NewIterator(ReadOptions());
  ASSERT_NE(it, nullptr);
  it->SeekToFirst();
  EXPECT_FALSE(it->Valid());
  EXPECT_TRUE(it->status().IsNotFound()) << it->status().ToString();
  it.reset();
  std::shared_ptr<const Snapshot> snap;
  s = doomed->GetSnapshot(&snap);
  EXPECT_TRUE(s.IsNotFound()) << "GetSnapshot: " << s.ToString();
  EXPECT_EQ(snap, nullptr);
  s = doomed->Flush();
  EXPECT_TRUE(s.IsNotFound()) << "Flush: " << s.ToString();
  EXPECT_FALSE(fs::exists(TenantDir("doomed")))
      << "the old handle recreated it";

  // The other tenant is untouched.
  EXPECT_EQ(GetValue(keeper.get(), "k1"), "keeper");
  EXPECT_EQ(ScanAll(keeper.get()).size(), 300u);

  // Still gone after a restart.
  doomed.reset();
  keeper.reset();
  ASSERT_OK(ReopenCluster());
  EXPECT_EQ(cluster_->ListTenants(), std::vector<std::string>{"keeper"});
  s = cluster_->GetTenant("doomed", &again);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_FALSE(fs::exists(TenantDir("doomed")));

  // Re-creating the id gives an empty tenant.
  ASSERT_OK(cluster_->CreateTenant("doomed", TenantOptions()));
  ASSERT_OK(cluster_->GetTenant("doomed", &again));
  EXPECT_EQ(GetValue(again.get(), "k1"), "NOT_FOUND");
  EXPECT_EQ(GetValue(again.get(), "unflushed"), "NOT_FOUND");
  EXPECT_TRUE(ScanAll(again.get()).empty());
  ASSERT_OK(again->Put(WriteOptions(), "fresh", "start"));
  EXPECT_EQ(GetValue(again.get(), "fresh"), "start");
}

TEST_F(ReopenTest, RecreatedIdIsEmptyAndOldHandlesStayDead) {
  ASSERT_OK(cluster_->CreateTenant("phoenix", TenantOptions()));
  std::unique_ptr<Tenant> old;
  ASSERT_OK(cluster_->GetTenant("phoenix", &old));
  ASSERT_OK(old->Put(WriteOptions(), "secret", "first-life"));
  ASSERT_OK(cluster_->DropTenant("phoenix", nullptr));
  ASSERT_OK(cluster_->CreateTenant("phoenix", TenantOptions()));
  std::unique_ptr<Tenant> fresh;
  ASSERT_OK(cluster_->GetTenant("phoenix", &fresh));
  EXPECT_EQ(GetValue(fresh.get(), "secret"), "NOT_FOUND");
  EXPECT_TRUE(ScanAll(fresh.get()).empty());
  // A handle from the first life does not reach the second one.
  std::string value;
  Status s = old->Get(ReadOptions(), "secret", &value);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  s = old->Put(WriteOptions(), "from-old-handle", "x");
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_EQ(GetValue(fresh.get(), "from-old-handle"), "NOT_FOUND");
}

TEST_F(ReopenTest, DropWithoutReportAndManyTenants) {
  for (int i = 0; i < 20; ++i) {
    const std::string id = "t" + std::to_string(i);
    ASSERT_OK(cluster_->CreateTenant(id, TenantOptions()));
    std::unique_ptr<Tenant> t;
    ASSERT_OK(cluster_->GetTenant(id, &t));
    ASSERT_OK(t->Put(WriteOptions(), "k", id));
  }
  for (int i = 0; i < 20; i += 2) {
    ASSERT_OK(cluster_->DropTenant("t" + std::to_string(i), nullptr));
  }
  ASSERT_OK(ReopenCluster());
  EXPECT_EQ(cluster_->ListTenants().size(), 10u);
  for (int i = 0; i < 20; ++i) {
    const std::string id = "t" + std::to_string(i);
    std::unique_ptr<Tenant> t;
    Status s = cluster_->GetTenant(id, &t);
    if (i % 2 == 0) {
      EXPECT_TRUE(s.IsNotFound()) << id << ": " << s.ToString();
      EXPECT_FALSE(fs::exists(TenantDir(id))) << id;
    } else {
      ASSERT_OK(s);
      EXPECT_EQ(GetValue(t.get(), "k"), id);
    }
  }
}

}  // namespace
}  // namespace coffer::test
