// Copyright (c) Coffer authors.
//
// Tenant quotas, the cluster quota and the tenant count limit.

#include <cstdio>
#include <string>
#include <vector>

#include "coffer/coffer.h"
#include "tests/testutil.h"

namespace coffer::test {
namespace {

constexpr uint64_t kQuota = 64 * 1024;
constexpr size_t kValueSize = 1024;

std::string Key(int i) {
  char buf[32];
  snprintf(buf, sizeof(buf), "key%06d", i);
  return buf;
}

// Deterministic 1 KiB value for key i, so later reads can be checked.
std::string Value(const std::string& tenant, int i) {
  std::string seed = tenant + "/" + std::to_string(i) + "/";
  std::string v;
  while (v.size() < kValueSize) v += seed;
  v.resize(kValueSize);
  return v;
}

class QuotaTest : public ClusterTest {
 protected:
  // Puts 1 KiB values until one fails; returns how many succeeded, and the
  // failing status in *failure. Gives up (failing the test) after `cap`.
  int FillUntilFailure(Tenant* t, Status* failure, int first = 0,
                       int cap = 10000) {
    for (int i = first; i < first + cap; ++i) {
      Status s = t->Put(WriteOptions(), Key(i), Value(t->id(), i));
      if (!s.ok()) {
        *failure = s;
        return i - first;
      }
    }
    ADD_FAILURE() << "no Put failed after " << cap << " values in " << t->id();
    return cap;
  }
};

TEST_F(QuotaTest, PutFailsAtTenantQuotaAndDataSurvives) {
  ASSERT_OK(CreateCluster());
  TenantOptions topts;
  topts.quota = kQuota;
  ASSERT_OK(cluster_->CreateTenant("small", topts));
  std::unique_ptr<Tenant> t;
  ASSERT_OK(cluster_->GetTenant("small", &t));
  TenantInfo info;
  ASSERT_OK(cluster_->DescribeTenant("small", &info));
  EXPECT_EQ(info.quota, kQuota);
  EXPECT_TRUE(info.quota_overridden);

  Status failure;
  const int n = FillUntilFailure(t.get(), &failure);
  EXPECT_TRUE(failure.IsQuotaExceeded()) << failure.ToString();
  std::printf("[ info     ] %d x 1 KiB values fit in a 64 KiB quota: %s\n", n,
              failure.ToString().c_str());
  // The quota is what the user can store, give or take bookkeeping: at
  // least half of 64 KiB of values fit, and not much more than 64 KiB.
  EXPECT_GE(n, 32) << "only " << n << " KiB of values fit in a 64 KiB quota";
  EXPECT_LE(n, 70) << n << " KiB of values fit in a 64 KiB quota";
  // The message names the tenant.
  EXPECT_NE(failure.message().find("small"), std::string::npos)
      << failure.ToString();
  // The failed Put stored nothing.
  EXPECT_EQ(GetValue(t.get(), Key(n)), "NOT_FOUND");
  // It keeps failing.
  Status again = t->Put(WriteOptions(), Key(n), Value("small", n));
  EXPECT_TRUE(again.IsQuotaExceeded()) << again.ToString();
  ASSERT_OK(cluster_->DescribeTenant("small", &info));
  EXPECT_GT(info.used_bytes, 0u);

  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(GetValue(t.get(), Key(i)), Value("small", i)) << i;
  }
  EXPECT_EQ(ScanAll(t.get()).size(), static_cast<size_t>(n));

  t.reset();
  ASSERT_OK(ReopenCluster());
  ASSERT_OK(cluster_->GetTenant("small", &t));
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(GetValue(t.get(), Key(i)), Value("small", i)) << i;
  }
  EXPECT_EQ(GetValue(t.get(), Key(n)), "NOT_FOUND");
  ASSERT_OK(cluster_->DescribeTenant("small", &info));
  EXPECT_EQ(info.quota, kQuota);
  EXPECT_TRUE(info.quota_overridden);
  EXPECT_GT(info.used_bytes, 0u);
  // Still full after the restart: another 64 values cannot all fit.
  Status after_reopen;
  FillUntilFailure(t.get(), &after_reopen, n, 64);
  EXPECT_TRUE(after_reopen.IsQuotaExceeded()) << after_reopen.ToString();
}

TEST_F(QuotaTest, DeletesWorkOverQuotaBatchesWithPutsFailWhole) {
  ASSERT_OK(CreateCluster());
  TenantOptions topts;
  topts.quota = kQuota;
  ASSERT_OK(cluster_->CreateTenant("small", topts));
  std::unique_ptr<Tenant> t;
  ASSERT_OK(cluster_->GetTenant("small", &t));
  Status failure;
  const int n = FillUntilFailure(t.get(), &failure);
  ASSERT_TRUE(failure.IsQuotaExceeded()) << failure.ToString();
  ASSERT_GE(n, 10);

  // A single delete.
  ASSERT_OK(t->Delete(WriteOptions(), Key(0)));
  EXPECT_EQ(GetValue(t.get(), Key(0)), "NOT_FOUND");

  // A delete-only batch, with a range delete.
  WriteBatch deletes;
  deletes.Delete(Key(1));
  deletes.Delete(Key(2));
  deletes.DeleteRange(Key(3), Key(5));
  ASSERT_OK(t->Write(WriteOptions(), deletes));
  for (int i = 1; i < 5; ++i) EXPECT_EQ(GetValue(t.get(), Key(i)), "NOT_FOUND");
  EXPECT_EQ(GetValue(t.get(), Key(5)), Value("small", 5));

  // A batch with deletes and puts that would go over the quota applies
  // nothing: the delete does not happen either.
  WriteBatch mixed;
  mixed.Delete(Key(6));
  for (int i = 0; i < 8; ++i) {
    mixed.Put("new" + std::to_string(i), std::string(8 * 1024, 'n'));
  }
  Status s = t->Write(WriteOptions(), mixed);
  EXPECT_TRUE(s.IsQuotaExceeded()) << s.ToString();
  EXPECT_EQ(GetValue(t.get(), Key(6)), Value("small", 6));
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(GetValue(t.get(), "new" + std::to_string(i)), "NOT_FOUND");
  }
  // The remaining data is intact.
  for (int i = 5; i < n; ++i) {
    ASSERT_EQ(GetValue(t.get(), Key(i)), Value("small", i)) << i;
  }
}

TEST_F(QuotaTest, RaisingTheQuotaLetsWritesContinue) {
  ASSERT_OK(CreateCluster());
  TenantOptions topts;
  topts.quota = kQuota;
  ASSERT_OK(cluster_->CreateTenant("grow", topts));
  std::unique_ptr<Tenant> t;
  ASSERT_OK(cluster_->GetTenant("grow", &t));
  Status failure;
  const int n = FillUntilFailure(t.get(), &failure);
  ASSERT_TRUE(failure.IsQuotaExceeded()) << failure.ToString();

  ASSERT_OK(cluster_->SetTenantQuota("grow", 1 << 20));
  TenantInfo info;
  ASSERT_OK(cluster_->DescribeTenant("grow", &info));
  EXPECT_EQ(info.quota, 1u << 20);
  EXPECT_TRUE(info.quota_overridden);
  // Another 64 KiB fit now; the old handle sees the new quota.
  for (int i = n; i < n + 64; ++i) {
    ASSERT_OK(t->Put(WriteOptions(), Key(i), Value("grow", i)));
  }
  // And the raised quota is enforced too.
  Status later;
  const int m = FillUntilFailure(t.get(), &later, n + 64, 4000);
  EXPECT_TRUE(later.IsQuotaExceeded()) << later.ToString();
  EXPECT_LE(n + 64 + m, 1100);

  // Lowering below usage blocks puts but not deletes.
  ASSERT_OK(cluster_->SetTenantQuota("grow", 4096));
  Status blocked = t->Put(WriteOptions(), "one-more", "x");
  EXPECT_TRUE(blocked.IsQuotaExceeded()) << blocked.ToString();
  EXPECT_OK(t->Delete(WriteOptions(), Key(0)));

  // 0 removes the limit.
  ASSERT_OK(cluster_->SetTenantQuota("grow", 0));
  ASSERT_OK(cluster_->DescribeTenant("grow", &info));
  EXPECT_EQ(info.quota, 0u);
  EXPECT_OK(t->Put(WriteOptions(), "one-more", "x"));

  for (int i = 1; i < n + 64; ++i) {
    ASSERT_EQ(GetValue(t.get(), Key(i)), Value("grow", i)) << i;
  }
}

TEST_F(QuotaTest, DefaultQuotaAppliesAndOverrideSurvivesReopen) {
  ClusterLimits limits;
  limits.default_tenant_quota = kQuota;
  ASSERT_OK(CreateCluster(limits));
  EXPECT_EQ(cluster_->Describe().limits.default_tenant_quota, kQuota);
  ASSERT_OK(cluster_->CreateTenant("plain", TenantOptions()));
  TenantOptions big;
  big.quota = 1 << 20;
  ASSERT_OK(cluster_->CreateTenant("big", big));
  ASSERT_OK(cluster_->CreateTenant("later", TenantOptions()));
  ASSERT_OK(cluster_->SetTenantQuota("later", 3 << 20));

  TenantInfo info;
  ASSERT_OK(cluster_->DescribeTenant("plain", &info));
  EXPECT_EQ(info.quota, kQuota);
  EXPECT_FALSE(info.quota_overridden);

  // The default is enforced on a tenant without an override.
  std::unique_ptr<Tenant> t;
  ASSERT_OK(cluster_->GetTenant("plain", &t));
  Status failure;
  FillUntilFailure(t.get(), &failure, 0, 200);
  EXPECT_TRUE(failure.IsQuotaExceeded()) << failure.ToString();
  t.reset();

  ASSERT_OK(ReopenCluster());
  EXPECT_EQ(cluster_->Describe().limits.default_tenant_quota, kQuota);
  ASSERT_OK(cluster_->DescribeTenant("plain", &info));
  EXPECT_EQ(info.quota, kQuota);
  EXPECT_FALSE(info.quota_overridden);
  ASSERT_OK(cluster_->DescribeTenant("big", &info));
  EXPECT_EQ(info.quota, 1u << 20);
  EXPECT_TRUE(info.quota_overridden);
  ASSERT_OK(cluster_->DescribeTenant("later", &info));
  EXPECT_EQ(info.quota, 3u << 20);
  EXPECT_TRUE(info.quota_overridden);

  // An override is enforced after the restart: "big" takes more than the
  // default.
  ASSERT_OK(cluster_->GetTenant("big", &t));
  for (int i = 0; i < 200; ++i) {
    ASSERT_OK(t->Put(WriteOptions(), Key(i), Value("big", i)));
  }
}

TEST_F(QuotaTest, ClusterQuotaSpansTenants) {
  ClusterLimits limits;
  limits.cluster_quota = 128 * 1024;
  limits.default_tenant_quota = 1 << 20;
  ASSERT_OK(CreateCluster(limits));
  EXPECT_EQ(cluster_->Describe().limits.cluster_quota, 128u * 1024);
  ASSERT_OK(cluster_->CreateTenant("one", TenantOptions()));
  ASSERT_OK(cluster_->CreateTenant("two", TenantOptions()));
  std::unique_ptr<Tenant> t1, t2;
  ASSERT_OK(cluster_->GetTenant("one", &t1));
  ASSERT_OK(cluster_->GetTenant("two", &t2));

  // Alternate between the tenants until a Put fails.
  int written = 0;
  Status failure;
  for (int i = 0; i < 1000 && failure.ok(); ++i) {
    Tenant* t = (i % 2 == 0) ? t1.get() : t2.get();
    failure = t->Put(WriteOptions(), Key(i), Value(t->id(), i));
    if (failure.ok()) ++written;
  }
  EXPECT_TRUE(failure.IsQuotaExceeded()) << failure.ToString();
  std::printf("[ info     ] %d x 1 KiB values fit in a 128 KiB cluster: %s\n",
              written, failure.ToString().c_str());
  // Each tenant holds well under its own 1 MiB quota.
  EXPECT_GE(written, 64) << "only " << written << " KiB fit in 128 KiB";
  EXPECT_LE(written, 140) << written << " KiB fit in 128 KiB";
  TenantInfo i1, i2;
  ASSERT_OK(cluster_->DescribeTenant("one", &i1));
  ASSERT_OK(cluster_->DescribeTenant("two", &i2));
  EXPECT_LT(i1.used_bytes, i1.quota);
  EXPECT_LT(i2.used_bytes, i2.quota);
  // Both tenants are blocked now, and a new tenant is too.
  Status s1 = t1->Put(WriteOptions(), "more", std::string(kValueSize, 'm'));
  Status s2 = t2->Put(WriteOptions(), "more", std::string(kValueSize, 'm'));
  EXPECT_TRUE(s1.IsQuotaExceeded()) << s1.ToString();
  EXPECT_TRUE(s2.IsQuotaExceeded()) << s2.ToString();
  ASSERT_OK(cluster_->CreateTenant("three", TenantOptions()));
  std::unique_ptr<Tenant> t3;
  ASSERT_OK(cluster_->GetTenant("three", &t3));
  Status s3 = t3->Put(WriteOptions(), "more", std::string(4 * kValueSize, 'm'));
  EXPECT_TRUE(s3.IsQuotaExceeded()) << s3.ToString();
  ClusterStats stats;
  ASSERT_OK(cluster_->GetStats(&stats));
  EXPECT_GT(stats.used_bytes, 0u);
  // Everything written is there.
  for (int i = 0; i < written; ++i) {
    Tenant* t = (i % 2 == 0) ? t1.get() : t2.get();
    ASSERT_EQ(GetValue(t, Key(i)), Value(t->id(), i)) << i;
  }
  // Dropping a tenant frees cluster space.
  t2.reset();
  ASSERT_OK(cluster_->DropTenant("two", nullptr));
  EXPECT_OK(t1->Put(WriteOptions(), "more", std::string(kValueSize, 'm')));
}

TEST_F(QuotaTest, MaxTenants) {
  ClusterLimits limits;
  limits.max_tenants = 3;
  ASSERT_OK(CreateCluster(limits));
  ASSERT_OK(cluster_->CreateTenant("t1", TenantOptions()));
  ASSERT_OK(cluster_->CreateTenant("t2", TenantOptions()));
  ASSERT_OK(cluster_->CreateTenant("t3", TenantOptions()));
  const std::vector<std::string> tree = ListTreeRecursive(data_dir_);
  Status s = cluster_->CreateTenant("t4", TenantOptions());
  EXPECT_TRUE(s.IsTenantLimit()) << s.ToString();
  EXPECT_EQ(cluster_->ListTenants().size(), 3u);
  std::unique_ptr<Tenant> t;
  s = cluster_->GetTenant("t4", &t);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  // A duplicate id is still AlreadyExists, not TenantLimit.
  s = cluster_->CreateTenant("t1", TenantOptions());
  EXPECT_TRUE(s.IsAlreadyExists()) << s.ToString();

  // The limit is persisted.
  ASSERT_OK(ReopenCluster());
  EXPECT_EQ(cluster_->Describe().limits.max_tenants, 3u);
  s = cluster_->CreateTenant("t4", TenantOptions());
  EXPECT_TRUE(s.IsTenantLimit()) << s.ToString();

  ASSERT_OK(cluster_->DropTenant("t2", nullptr));
  ASSERT_OK(cluster_->CreateTenant("t4", TenantOptions()));
  EXPECT_EQ(cluster_->ListTenants(),
            (std::vector<std::string>{"t1", "t3", "t4"}));
  s = cluster_->CreateTenant("t5", TenantOptions());
  EXPECT_TRUE(s.IsTenantLimit()) << s.ToString();
  ASSERT_OK(cluster_->GetTenant("t4", &t));
  ASSERT_OK(t->Put(WriteOptions(), "k", "v"));
  EXPECT_EQ(GetValue(t.get(), "k"), "v");
}

}  // namespace
}  // namespace coffer::test
