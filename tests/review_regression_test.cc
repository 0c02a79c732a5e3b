// Copyright (c) Coffer authors.
//
// Regression tests for defects found in review: a data directory that is
// not quite what Coffer wrote must never cost data or be silently accepted.

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "coffer/coffer.h"
#include "engine/proto/catalog.pb.h"
#include "engine/record_file.h"
#include "engine/tenant_db.h"
#include "replication/proto/replication.pb.h"
#include "replication/rollback.h"
#include "tests/testutil.h"

namespace coffer {
namespace {

namespace fs = std::filesystem;

class ReviewRegressionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = dir_.Sub("data");
    key_file_ = dir_.Sub("master.key");
    test::WriteKeyFile(key_file_);
    ASSERT_OK(NewFileKeyProvider(key_file_, &keys_));
  }
  Status Create(const OpenOptions& open = OpenOptions()) {
    ClusterOptions o;
    o.cluster_id = "c1";
    o.region = "r1";
    o.geography = "g1";
    return Cluster::Create(data_, o, open, keys_, &cluster_);
  }
  Status Reopen(const OpenOptions& open = OpenOptions(),
                std::shared_ptr<KeyProvider> keys = nullptr) {
    cluster_.reset();
    return Cluster::Open(data_, open, keys ? keys : keys_, &cluster_);
  }

  test::TempDir dir_;
  std::string data_, key_file_;
  std::shared_ptr<KeyProvider> keys_;
  std::unique_ptr<Cluster> cluster_;
};

// Open removes tenant directories without a record (a killed create or
// drop), but never follows a symbolic link out of the data directory and
// never touches entries that are not named like a tenant.
TEST_F(ReviewRegressionTest, OrphanCleanupStaysInsideTheDataDirectory) {
  ASSERT_OK(Create());
  const std::string victim = dir_.Sub("victim");
  fs::create_directories(victim + "/db");
  std::ofstream(victim + "/db/precious") << "do not delete";
  fs::create_directory_symlink(victim, data_ + "/tenants/linked");
  fs::create_directories(data_ + "/tenants/lost+found");
  std::ofstream(data_ + "/tenants/lost+found/file") << "x";
  fs::create_directories(data_ + "/tenants/orphan/db");
  std::ofstream(data_ + "/tenants/orphan/TENANT.tmp") << "half a record";
  ASSERT_OK(Reopen());
  EXPECT_TRUE(fs::exists(victim + "/db/precious"));
  EXPECT_TRUE(fs::exists(data_ + "/tenants/lost+found/file"));
  EXPECT_FALSE(fs::exists(data_ + "/tenants/orphan"));
  EXPECT_EQ(std::vector<std::string>{}, cluster_->ListTenants());
}

// Master-key rotation refuses to finish while some tenant record cannot be
// read: its keys would stay under the key being retired.
TEST_F(ReviewRegressionTest, MasterRotationRefusesWithUnreadableRecord) {
  ASSERT_OK(Create());
  ASSERT_OK(cluster_->CreateTenant("good", TenantOptions()));
  ASSERT_OK(cluster_->CreateTenant("bad", TenantOptions()));
  cluster_.reset();
  const std::string record = data_ + "/tenants/bad/TENANT";
  std::string bytes = test::ReadFileBytes(record);
  std::string damaged = bytes;
  damaged[damaged.size() / 2] ^= 1;
  std::ofstream(record, std::ios::binary | std::ios::trunc) << damaged;

  const std::string next_file = dir_.Sub("next.key");
  test::WriteKeyFile(next_file);
  std::shared_ptr<KeyProvider> next;
  ASSERT_OK(NewFileKeyProvider(next_file, &next));
  ASSERT_OK(Reopen(OpenOptions(), NewCompositeKeyProvider({keys_, next})));
  Status s = cluster_->RotateMasterKey(next->DefaultKeyId(), nullptr);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(std::string::npos, s.message().find("bad")) << s.ToString();
  // Nothing moved: the old key alone still opens everything once repaired.
  cluster_.reset();
  std::ofstream(record, std::ios::binary | std::ios::trunc) << bytes;
  ASSERT_OK(Reopen());
  std::unique_ptr<Tenant> t;
  ASSERT_OK(cluster_->GetTenant("bad", &t));
  ASSERT_OK(t->Put(WriteOptions(), "k", "v"));
}

// The clear header of CLUSTER is bound into its sealed body: pointing new
// tenants at another master key id is detected even with a valid checksum.
TEST_F(ReviewRegressionTest, EditedClusterHeaderIsDetected) {
  ASSERT_OK(Create());
  cluster_.reset();
  std::string payload;
  ASSERT_OK(ReadRecordFile(data_ + "/CLUSTER", &payload));
  catalogpb::ClusterRecord record;
  ASSERT_TRUE(record.ParseFromString(payload));
  record.mutable_header()->set_master_key_id("attacker-known-key");
  ASSERT_OK(WriteRecordFile(data_ + "/CLUSTER", record.SerializeAsString()));
  Status s = Reopen();
  EXPECT_TRUE(s.IsCorruption() || s.IsWrongKey()) << s.ToString();
}

// Write-ahead logs archived for replication keep the key version they were
// written with until they expire: a rekey must not destroy it.
TEST_F(ReviewRegressionTest, RekeyKeepsVersionsOfArchivedLogs) {
  OpenOptions open;
  open.wal_retention_seconds = 3600;
  ASSERT_OK(Create(open));
  ASSERT_OK(cluster_->CreateTenant("acme", TenantOptions()));
  std::unique_ptr<Tenant> t;
  ASSERT_OK(cluster_->GetTenant("acme", &t));
  for (int i = 0; i < 100; ++i) {
    ASSERT_OK(t->Put(WriteOptions(), "k" + std::to_string(i), "v"));
  }
  ASSERT_OK(t->Flush());
  t.reset();
  KeyRotationReport r;
  ASSERT_OK(cluster_->RotateTenantKey("acme", /*rekey=*/true, &r));
  std::map<uint32_t, uint64_t> counts;
  ASSERT_OK(CountFilesByKeyVersion(data_ + "/tenants/acme/db", &counts));
  ASSERT_NE(0u, counts.count(1)) << "expected archived logs on version 1";
  EXPECT_EQ(std::vector<uint32_t>{}, r.versions_retired)
      << "version 1 retired while " << counts[1] << " files still use it";
  EXPECT_TRUE(fs::exists(data_ + "/tenants/acme/db/archive"));
  ASSERT_OK(Reopen(open));
  ASSERT_OK(cluster_->GetTenant("acme", &t));
  std::string v;
  ASSERT_OK(t->Get(ReadOptions(), "k42", &v));
}

// A damaged last audit entry does not lock the operator out: the cluster
// opens, records the damage, and verification names it.
TEST_F(ReviewRegressionTest, DamagedAuditTailStillOpens) {
  ASSERT_OK(Create());
  ASSERT_OK(cluster_->CreateTenant("acme", TenantOptions()));
  cluster_.reset();
  std::string log = test::ReadFileBytes(data_ + "/AUDIT");
  log[log.size() - 10] = 'Z';  // inside the last entry's mac
  std::ofstream(data_ + "/AUDIT", std::ios::binary | std::ios::trunc) << log;
  ASSERT_OK(Reopen());
  std::vector<AuditEntry> entries;
  ASSERT_OK(cluster_->ReadAudit(0, &entries));
  EXPECT_EQ("audit.damaged", entries.back().action);
  AuditVerification v;
  Status s = cluster_->VerifyAudit(&v);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  std::unique_ptr<Tenant> t;
  ASSERT_OK(cluster_->GetTenant("acme", &t));
  ASSERT_OK(t->Put(WriteOptions(), "k", "v"));
}

// Key rotation is refused in the RocksDB CTR benchmark mode, whose files
// carry no key version (retiring one would lose everything).
TEST_F(ReviewRegressionTest, NoRotationInRocksDbCtrMode) {
  OpenOptions open;
  open.rocksdb_ctr_for_benchmarks = true;
  ASSERT_OK(Create(open));
  ASSERT_OK(cluster_->CreateTenant("acme", TenantOptions()));
  EXPECT_TRUE(
      cluster_->RotateTenantKey("acme", false, nullptr).IsNotSupported());
}


// A rollback entry whose batch holds a transaction marker (which only someone
// holding the master key could seal into a rollback file) is reported by
// `coffer rollback export` as corrupt; iterating it would abort the process
// on a RocksDB assertion.
TEST(RollbackExportTest, EntryWithATransactionMarkerIsCorruptNotACrash) {
  test::TempDir dir;
  const std::string key_file = dir.Sub("master.key");
  test::WriteKeyFile(key_file);
  std::shared_ptr<KeyProvider> keys;
  ASSERT_OK(NewFileKeyProvider(key_file, &keys));
  const std::string data = dir.Sub("data");
  std::filesystem::create_directories(data);
  replpb::RollbackHeader header;
  header.set_tenant("t");
  header.set_kind("batches");
  std::unique_ptr<RollbackWriter> writer;
  ASSERT_OK(RollbackWriter::Create(data, header, keys.get(),
                                   keys->DefaultKeyId(), &writer));
  replpb::RollbackEntry e;
  e.set_seq(1);
  // A batch header (sequence, count 0) and a begin-prepare marker.
  e.set_batch(std::string(12, '\0') + "\x09");
  ASSERT_OK(writer->Add(std::move(e)));
  std::string path;
  ASSERT_OK(writer->Finish(&path));

  const std::string cmd = std::string(COFFER_CLI_PATH) +
                          " rollback export --data " + data + " --key-file " +
                          key_file + " --tenant t 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(nullptr, p);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by a signal: " << out;
  EXPECT_EQ(1, WEXITSTATUS(status)) << out;
  EXPECT_NE(std::string::npos, out.find("Corruption")) << out;
  EXPECT_NE(std::string::npos, out.find(path)) << out;
}

}  // namespace
}  // namespace coffer
