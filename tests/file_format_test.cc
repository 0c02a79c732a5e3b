// Copyright (c) Coffer authors.
//
// Structural check of encryption at rest: every file RocksDB writes for a
// tenant (tables, logs, manifest, options, CURRENT, IDENTITY, the info LOG)
// starts with a Coffer prefix that names a key version the tenant has, at
// every stage of a tenant's life. Only the empty LOCK file is exempt.

#include <filesystem>

#include "coffer/coffer.h"
#include "engine/tenant_db.h"
#include "tests/testutil.h"

namespace coffer {
namespace {

namespace fs = std::filesystem;

// Files of the tenant whose first bytes are not a valid Coffer prefix.
std::vector<std::string> Unencrypted(const std::string& db_dir) {
  std::vector<std::string> bad;
  for (const auto& e : fs::directory_iterator(db_dir)) {
    const std::string name = e.path().filename().string();
    if (name == "LOCK") {
      EXPECT_EQ(0u, fs::file_size(e.path()));
      continue;
    }
    // Check this file alone by copying it into an empty scratch directory.
    const fs::path scratch = fs::path(db_dir).parent_path() / "scratch";
    fs::create_directories(scratch);
    fs::copy_file(e.path(), scratch / name,
                  fs::copy_options::overwrite_existing);
    std::map<uint32_t, uint64_t> counts;
    EXPECT_OK(CountFilesByKeyVersion(scratch.string(), &counts));
    fs::remove_all(scratch);
    if (counts.count(0) != 0) bad.push_back(name);
  }
  return bad;
}

TEST(FileFormatTest, EveryTenantFileIsEncryptedAtEveryStage) {
  test::TempDir dir;
  const std::string key_file = dir.Sub("master.key");
  test::WriteKeyFile(key_file);
  std::shared_ptr<KeyProvider> keys;
  ASSERT_OK(NewFileKeyProvider(key_file, &keys));
  ClusterOptions o;
  o.cluster_id = "c1";
  o.region = "r1";
  o.geography = "g1";
  OpenOptions open;
  open.tenant_write_buffer_bytes = 64 << 10;  // several flushes
  std::unique_ptr<Cluster> c;
  ASSERT_OK(Cluster::Create(dir.Sub("data"), o, open, keys, &c));
  ASSERT_OK(c->CreateTenant("acme", TenantOptions()));
  const std::string db_dir = dir.Sub("data") + "/tenants/acme/db";
  std::unique_ptr<Tenant> t;
  ASSERT_OK(c->GetTenant("acme", &t));

  ASSERT_OK(t->Put(WriteOptions(), "k", "v"));
  EXPECT_EQ(std::vector<std::string>{}, Unencrypted(db_dir)) << "after open";
  for (int i = 0; i < 3000; ++i) {
    ASSERT_OK(t->Put(WriteOptions(), "key" + std::to_string(i),
                     test::RandomString(100)));
  }
  ASSERT_OK(t->Flush());
  EXPECT_EQ(std::vector<std::string>{}, Unencrypted(db_dir)) << "after flush";
  ASSERT_OK(t->Compact());
  EXPECT_EQ(std::vector<std::string>{}, Unencrypted(db_dir)) << "compaction";
  ASSERT_OK(c->RotateTenantKey("acme", /*rekey=*/true, nullptr));
  EXPECT_EQ(std::vector<std::string>{}, Unencrypted(db_dir)) << "after rekey";
  t.reset();
  c.reset();
  ASSERT_OK(Cluster::Open(dir.Sub("data"), open, keys, &c));
  ASSERT_OK(c->GetTenant("acme", &t));
  std::string v;
  ASSERT_OK(t->Get(ReadOptions(), "k", &v));
  EXPECT_EQ("v", v);
  EXPECT_EQ(std::vector<std::string>{}, Unencrypted(db_dir)) << "reopen";
  // The info log exists and is one of the encrypted files.
  EXPECT_TRUE(fs::exists(db_dir + "/LOG"));
  EXPECT_TRUE(fs::exists(db_dir + "/LOG.old"));
}

}  // namespace
}  // namespace coffer

namespace coffer {
namespace {

// The benchmark baselines work and cannot be mixed up with real clusters.
TEST(FileFormatTest, BenchmarkModesRoundTripAndRefuseMixing) {
  test::TempDir dir;
  const std::string key_file = dir.Sub("master.key");
  test::WriteKeyFile(key_file);
  std::shared_ptr<KeyProvider> keys;
  ASSERT_OK(NewFileKeyProvider(key_file, &keys));
  ClusterOptions o;
  o.cluster_id = "c1";
  o.region = "r1";
  o.geography = "g1";
  OpenOptions ctr;
  ctr.rocksdb_ctr_for_benchmarks = true;
  std::unique_ptr<Cluster> c;
  ASSERT_OK(Cluster::Create(dir.Sub("data"), o, ctr, keys, &c));
  ASSERT_OK(c->CreateTenant("t", TenantOptions()));
  std::unique_ptr<Tenant> t;
  ASSERT_OK(c->GetTenant("t", &t));
  const std::string value = "baseline-" + test::RandomString(40);
  for (int i = 0; i < 500; ++i) {
    ASSERT_OK(t->Put(WriteOptions(), "k" + std::to_string(i), value));
  }
  ASSERT_OK(t->Flush());
  t.reset();
  c.reset();
  EXPECT_EQ(std::vector<std::string>{},
            test::FilesContaining(dir.Sub("data"), value));
  EXPECT_TRUE(Cluster::Open(dir.Sub("data"), OpenOptions(), keys, &c)
                  .IsInvalidArgument());
  ASSERT_OK(Cluster::Open(dir.Sub("data"), ctr, keys, &c));
  ASSERT_OK(c->GetTenant("t", &t));
  std::string v;
  ASSERT_OK(t->Get(ReadOptions(), "k499", &v));
  EXPECT_EQ(value, v);
  OpenOptions both = ctr;
  both.plaintext_for_benchmarks = true;
  EXPECT_TRUE(
      Cluster::Create(dir.Sub("other"), o, both, keys, &c).IsInvalidArgument());
}

}  // namespace
}  // namespace coffer
