// Copyright (c) Coffer authors.
//
// Tenant ids and sizes given by users are validated before anything touches
// the disk.

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "coffer/coffer.h"
#include "tests/testutil.h"

namespace coffer::test {
namespace {

// Printable form of an id for failure messages (shows NULs and length).
std::string Show(const std::string& id) {
  std::string out = "\"";
  for (char c : id) {
    if (c == '\0') {
      out += "\\0";
    } else {
      out += c;
    }
  }
  if (out.size() > 40) out = out.substr(0, 20) + "...";
  return out + "\" (" + std::to_string(id.size()) + " bytes)";
}

std::vector<std::string> InvalidIds() {
  return {
      "../x",
      "",
      std::string(1024, 'a'),
      std::string("ab\0cd", 5),
      std::string("\0", 1),
      "Acme",
      "acmE",
      "a/b",
      "/abs",
      "-lead",
      "_lead",
      " space",
      "trailing ",
      "a.b",
      ".",
      "..",
      "a\nb",
      "caf\xc3\xa9",
      std::string(64, 'a'),
      "a" + std::string(63, 'b'),
  };
}

std::vector<std::string> ValidIds() {
  return {"a",
          "0",
          "a-b_c",
          "9lives",
          "x_",
          "y-",
          std::string(63, 'a'),
          "z" + std::string(62, '9')};
}

TEST(ValidateIdTest, Table) {
  for (const std::string& id : InvalidIds()) {
    Status s = ValidateId("tenant", id);
    EXPECT_TRUE(s.IsInvalidArgument()) << Show(id) << " -> " << s.ToString();
    // The message says which kind of id is wrong.
    EXPECT_NE(s.message().find("tenant"), std::string::npos)
        << Show(id) << " -> " << s.ToString();
  }
  for (const std::string& id : ValidIds()) {
    EXPECT_OK(ValidateId("tenant", id));
  }
  Status s = ValidateId("region", "EU-WEST");
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.message().find("region"), std::string::npos) << s.ToString();
}

TEST(ParseSizeTest, Valid) {
  struct Case {
    const char* text;
    uint64_t bytes;
  };
  const Case cases[] = {
      {"0", 0},
      {"1", 1},
      {"4096", 4096},
      {"64KiB", 64 * 1024},
      {"10MiB", 10ull << 20},
      {"1GiB", 1ull << 30},
      {"1K", 1024},
      {"2M", 2ull << 20},
      {"3G", 3ull << 30},
      {"1KB", 1024},
      {"5MB", 5ull << 20},
      {"2GB", 2ull << 30},
      {"0KiB", 0},
      {"18446744073709551615", UINT64_MAX},
      {"17179869183GiB", (17179869183ull) << 30},  // 2^64 - 2^30
  };
  for (const Case& c : cases) {
    uint64_t bytes = 12345;
    Status s = ParseSize(c.text, &bytes);
    EXPECT_TRUE(s.ok()) << c.text << " -> " << s.ToString();
    EXPECT_EQ(bytes, c.bytes) << c.text;
  }
}

TEST(ParseSizeTest, Invalid) {
  // The header: anything other than a decimal number with an optional
  // K/M/G, KB/MB/GB or KiB/MiB/GiB suffix is InvalidArgument, including
  // overflow. So whitespace, signs, fractions and unknown units are errors.
  const std::string cases[] = {
      "",
      "12XB",
      "-1",
      "+1",
      "1.5GiB",
      "99999999999999999999",
      "18446744073709551616",
      "18446744073709551615GiB",
      "17179869184GiB",        // exactly 2^64
      "18014398509481984KiB",  // 2^64
      "GiB",
      "K",
      "1 GiB",
      " 1",
      "1 ",
      "0x10",
      "1e3",
      "1GiBx",
      "1iB",
      "1Gi",
      std::string("1\0", 2),
  };
  for (const std::string& text : cases) {
    uint64_t bytes = 0;
    Status s = ParseSize(text, &bytes);
    EXPECT_TRUE(s.IsInvalidArgument())
        << Show(text) << " -> " << s.ToString() << " bytes=" << bytes;
  }
  // The message says what is wrong with a fraction (not "unknown unit").
  uint64_t bytes = 0;
  Status s = ParseSize("1.5MiB", &bytes);
  EXPECT_NE(std::string::npos, s.ToString().find("is not a whole number"))
      << s.ToString();
}

class TenantIdClusterTest : public ClusterTest {
 protected:
  void SetUp() override {
    ClusterTest::SetUp();
    ASSERT_OK(CreateCluster());
  }
};

TEST_F(TenantIdClusterTest, InvalidIdsCreateNothing) {
  const std::vector<std::string> tree_before = ListTreeRecursive(data_dir_);
  const FileTree files_before = ReadTree(data_dir_);
  ASSERT_FALSE(tree_before.empty());
  for (const std::string& id : InvalidIds()) {
    Status s = cluster_->CreateTenant(id, TenantOptions());
    EXPECT_TRUE(s.IsInvalidArgument()) << Show(id) << " -> " << s.ToString();
    TenantOptions with_quota;
    with_quota.quota = 1 << 20;
    s = cluster_->CreateTenant(id, with_quota);
    EXPECT_TRUE(s.IsInvalidArgument()) << Show(id) << " -> " << s.ToString();
  }
  EXPECT_EQ(ListTreeRecursive(data_dir_), tree_before);
  // The catalog is not rewritten (the audit trail may record the attempts).
  EXPECT_EQ(DiffTrees(files_before, ReadTree(data_dir_), kAuditFiles), "");
  EXPECT_TRUE(cluster_->ListTenants().empty());
  ClusterStats stats;
  ASSERT_OK(cluster_->GetStats(&stats));
  EXPECT_EQ(stats.tenants, 0u);

  // Still true after a restart: no half-made tenant shows up.
  ASSERT_OK(ReopenCluster());
  EXPECT_TRUE(cluster_->ListTenants().empty());
  EXPECT_EQ(ListTreeRecursive(data_dir_), tree_before);
}

TEST_F(TenantIdClusterTest, ValidIdsAreAccepted) {
  std::vector<std::string> ids = ValidIds();
  for (const std::string& id : ids) {
    ASSERT_OK(cluster_->CreateTenant(id, TenantOptions()));
    std::unique_ptr<Tenant> t;
    ASSERT_OK(cluster_->GetTenant(id, &t));
    EXPECT_EQ(t->id(), id);
    ASSERT_OK(t->Put(WriteOptions(), "k", "v-" + id));
    EXPECT_EQ(GetValue(t.get(), "k"), "v-" + id);
    TenantInfo info;
    ASSERT_OK(cluster_->DescribeTenant(id, &info));
    EXPECT_EQ(info.id, id);
  }
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(cluster_->ListTenants(), ids);
  Status dup = cluster_->CreateTenant("a", TenantOptions());
  EXPECT_TRUE(dup.IsAlreadyExists()) << dup.ToString();

  ASSERT_OK(ReopenCluster());
  EXPECT_EQ(cluster_->ListTenants(), ids);
  for (const std::string& id : ids) {
    std::unique_ptr<Tenant> t;
    ASSERT_OK(cluster_->GetTenant(id, &t));
    EXPECT_EQ(GetValue(t.get(), "k"), "v-" + id);
  }
}

TEST_F(TenantIdClusterTest, LookupsValidateIds) {
  ASSERT_OK(cluster_->CreateTenant("exists", TenantOptions()));
  const FileTree before = ReadTree(data_dir_);
  for (const std::string& id : InvalidIds()) {
    std::unique_ptr<Tenant> t;
    Status s = cluster_->GetTenant(id, &t);
    EXPECT_TRUE(s.IsInvalidArgument())
        << "GetTenant " << Show(id) << " -> " << s.ToString();
    EXPECT_EQ(t, nullptr);
    DropReport report;
    s = cluster_->DropTenant(id, &report);
    EXPECT_TRUE(s.IsInvalidArgument())
        << "DropTenant " << Show(id) << " -> " << s.ToString();
    TenantInfo info;
    s = cluster_->DescribeTenant(id, &info);
    EXPECT_TRUE(s.IsInvalidArgument())
        << "DescribeTenant " << Show(id) << " -> " << s.ToString();
    s = cluster_->SetTenantQuota(id, 1 << 20);
    EXPECT_TRUE(s.IsInvalidArgument())
        << "SetTenantQuota " << Show(id) << " -> " << s.ToString();
  }
  // A well-formed id that does not exist.
  for (const std::string& id : {std::string("missing"), std::string("exist")}) {
    std::unique_ptr<Tenant> t;
    Status s = cluster_->GetTenant(id, &t);
    EXPECT_TRUE(s.IsNotFound()) << "GetTenant " << id << " -> " << s.ToString();
    s = cluster_->DropTenant(id, nullptr);
    EXPECT_TRUE(s.IsNotFound())
        << "DropTenant " << id << " -> " << s.ToString();
    TenantInfo info;
    s = cluster_->DescribeTenant(id, &info);
    EXPECT_TRUE(s.IsNotFound())
        << "DescribeTenant " << id << " -> " << s.ToString();
    s = cluster_->SetTenantQuota(id, 1 << 20);
    EXPECT_TRUE(s.IsNotFound())
        << "SetTenantQuota " << id << " -> " << s.ToString();
  }
  EXPECT_EQ(cluster_->ListTenants(), std::vector<std::string>{"exists"});
  // Nothing on disk changed apart from the existing tenant's own database
  // (which may have been opened): the catalog is untouched.
  const FileTree after = ReadTree(data_dir_);
  ASSERT_EQ(before.count("CLUSTER"), 1u);
  EXPECT_EQ(before.at("CLUSTER"), after.at("CLUSTER"));
  for (const auto& [path, bytes] : after) {
    EXPECT_TRUE(before.count(path) != 0 ||
                std::count(kAuditFiles.begin(), kAuditFiles.end(), path) != 0 ||
                path.rfind("tenants/exists/", 0) == 0)
        << "new file " << path;
  }
  std::vector<std::string> tenant_dirs;
  for (const std::string& entry : ListTreeRecursive(data_dir_ + "/tenants")) {
    if (std::count(entry.begin(), entry.end(), '/') == 1 &&
        entry.back() == '/') {
      tenant_dirs.push_back(entry);
    }
  }
  EXPECT_EQ(tenant_dirs, std::vector<std::string>{"exists/"});
}

TEST(ClusterIdTest, CreateRejectsBadIdentity) {
  TempDir tmp;
  WriteKeyFile(tmp.Sub("master.key"));
  std::shared_ptr<KeyProvider> keys = LoadKeys(tmp.Sub("master.key"));
  ASSERT_NE(keys, nullptr);
  struct Case {
    std::string cluster_id, region, geography;
  };
  const Case cases[] = {
      {"", "eu-west-1", "eu"},
      {"Bad", "eu-west-1", "eu"},
      {"c1", "", "eu"},
      {"c1", "eu-west-1", ""},
      {"c1", "EU", "eu"},
      {"c1", "eu-west-1", "e/u"},
      {std::string(64, 'c'), "r", "g"},
      {"../c", "r", "g"},
  };
  int n = 0;
  for (const Case& c : cases) {
    ClusterOptions options;
    options.cluster_id = c.cluster_id;
    options.region = c.region;
    options.geography = c.geography;
    std::unique_ptr<Cluster> cluster;
    const std::string dir = tmp.Sub("d" + std::to_string(n++));
    Status s = Cluster::Create(dir, options, OpenOptions(), keys, &cluster);
    EXPECT_TRUE(s.IsInvalidArgument())
        << Show(c.cluster_id) << "/" << Show(c.region) << "/"
        << Show(c.geography) << " -> " << s.ToString();
    EXPECT_EQ(cluster, nullptr);
    // No cluster was left behind.
    Status o = Cluster::Open(dir, OpenOptions(), keys, &cluster);
    EXPECT_FALSE(o.ok()) << "a cluster exists after a rejected Create";
  }
}

}  // namespace
}  // namespace coffer::test
