// Copyright (c) Coffer authors.
//
// The audit trail: what is recorded, and that every kind of tampering is
// detected by VerifyAudit.

#include <gmock/gmock.h>

#include <fstream>
#include <iterator>
#include <sstream>

#include "coffer/coffer.h"
#include "tests/testutil.h"

namespace coffer {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line + "\n");
  return out;
}

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l;
  return out;
}

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_file_ = dir_.Sub("master.key");
    data_ = dir_.Sub("data");
    test::WriteKeyFile(key_file_);
    ASSERT_OK(NewFileKeyProvider(key_file_, &keys_));
    ClusterOptions o;
    o.cluster_id = "c1";
    o.region = "r1";
    o.geography = "g1";
    o.limits.max_tenants = 2;
    OpenOptions open;
    open.principal = "svc-billing";
    std::unique_ptr<Cluster> c;
    ASSERT_OK(Cluster::Create(data_, o, open, keys_, &c));
    ASSERT_OK(c->CreateTenant("acme", TenantOptions()));
    ASSERT_OK(c->CreateTenant("globex", TenantOptions()));
    EXPECT_TRUE(c->CreateTenant("third", TenantOptions()).IsTenantLimit());
    ASSERT_OK(c->SetTenantQuota("acme", 1 << 20));
    std::unique_ptr<Tenant> t;
    ASSERT_OK(c->GetTenant("globex", &t));
    ASSERT_OK(t->Put(WriteOptions(), "secret-user-key", "secret-user-value"));
    t.reset();
    ASSERT_OK(c->DropTenant("globex", nullptr));
  }

  std::unique_ptr<Cluster> Open() {
    std::unique_ptr<Cluster> c;
    OpenOptions open;
    open.principal = "svc-billing";
    Status s = Cluster::Open(data_, open, keys_, &c);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return c;
  }

  Status Verify() {
    auto c = Open();
    AuditVerification v;
    return c ? c->VerifyAudit(&v) : Status::IOError("no cluster");
  }

  test::TempDir dir_;
  std::string key_file_, data_;
  std::shared_ptr<KeyProvider> keys_;
};

TEST_F(AuditTest, RecordsWhoDidWhatAndOutcome) {
  auto c = Open();
  std::vector<AuditEntry> entries;
  ASSERT_OK(c->ReadAudit(0, &entries));
  std::vector<std::string> seen;
  for (const AuditEntry& e : entries) {
    EXPECT_EQ("svc-billing", e.actor);
    EXPECT_GT(e.unix_micros, 0u);
    seen.push_back(e.action + " " + e.target + " " + e.outcome);
  }
  EXPECT_THAT(
      seen, ::testing::ElementsAre(
                "cluster.init cluster:c1 OK", "tenant.create tenant:acme OK",
                "tenant.create tenant:globex OK",
                "tenant.create tenant:third TenantLimit",
                "tenant.quota tenant:acme OK", "tenant.drop tenant:globex OK"));
  for (size_t i = 0; i < entries.size(); ++i) EXPECT_EQ(i + 1, entries[i].seq);
  EXPECT_NE(std::string::npos, entries.back().detail.find("crypto-shred"));
  AuditVerification v;
  ASSERT_OK(c->VerifyAudit(&v));
  EXPECT_EQ(entries.size(), v.entries);
  // No user key or value ever reaches the log.
  const std::string log = ReadFile(data_ + "/AUDIT");
  EXPECT_EQ(std::string::npos, log.find("secret-user"));
}

TEST_F(AuditTest, SinceFiltersByTime) {
  auto c = Open();
  std::vector<AuditEntry> all, later;
  ASSERT_OK(c->ReadAudit(0, &all));
  ASSERT_OK(c->ReadAudit(all.back().unix_micros, &later));
  ASSERT_FALSE(later.empty());
  EXPECT_LT(later.size(), all.size());
  EXPECT_EQ(all.back().seq, later.back().seq);
}

TEST_F(AuditTest, EditIsDetected) {
  std::string log = ReadFile(data_ + "/AUDIT");
  size_t at = log.find("tenant:acme");
  ASSERT_NE(std::string::npos, at);
  log.replace(at, 11, "tenant:acmf");
  WriteFile(data_ + "/AUDIT", log);
  Status s = Verify();
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(std::string::npos, s.message().find("entry 2")) << s.ToString();
}

TEST_F(AuditTest, ActorEditIsDetected) {
  std::string log = ReadFile(data_ + "/AUDIT");
  size_t at = log.rfind("svc-billing");
  log.replace(at, 11, "someone-els");
  WriteFile(data_ + "/AUDIT", log);
  EXPECT_TRUE(Verify().IsCorruption());
}

TEST_F(AuditTest, DeletedEntryIsDetected) {
  auto lines = Lines(ReadFile(data_ + "/AUDIT"));
  lines.erase(lines.begin() + 3);
  WriteFile(data_ + "/AUDIT", Join(lines));
  Status s = Verify();
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
}

TEST_F(AuditTest, ReorderIsDetected) {
  auto lines = Lines(ReadFile(data_ + "/AUDIT"));
  std::swap(lines[1], lines[2]);
  WriteFile(data_ + "/AUDIT", Join(lines));
  EXPECT_TRUE(Verify().IsCorruption());
}

TEST_F(AuditTest, TruncationAfterVerificationIsDetected) {
  ASSERT_OK(Verify());  // anchors the head
  auto lines = Lines(ReadFile(data_ + "/AUDIT"));
  lines.resize(3);
  WriteFile(data_ + "/AUDIT", Join(lines));
  Status s = Verify();
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(std::string::npos, s.message().find("truncated")) << s.ToString();
}

TEST_F(AuditTest, RollbackToOlderCopyIsDetected) {
  ASSERT_OK(Verify());
  const std::string old_copy = ReadFile(data_ + "/AUDIT");
  {
    auto c = Open();
    ASSERT_OK(c->CreateTenant("newco", TenantOptions()));
    AuditVerification v;
    ASSERT_OK(c->VerifyAudit(&v));
  }
  WriteFile(data_ + "/AUDIT", old_copy);
  Status s = Verify();
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
}

TEST_F(AuditTest, ForgedAppendedEntryIsDetected) {
  auto lines = Lines(ReadFile(data_ + "/AUDIT"));
  std::string forged = lines.back();
  const std::string seq = "\"seq\":" + std::to_string(lines.size());
  forged.replace(forged.find(seq), seq.size(),
                 "\"seq\":" + std::to_string(lines.size() + 1));
  lines.push_back(forged);
  WriteFile(data_ + "/AUDIT", Join(lines));
  Status s = Verify();
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
}

TEST_F(AuditTest, WrongKeyAttemptIsRecordedWhenKeyReturns) {
  const std::string other = dir_.Sub("other.key");
  test::WriteKeyFile(other);
  std::shared_ptr<KeyProvider> wrong;
  ASSERT_OK(NewFileKeyProvider(other, &wrong));
  std::unique_ptr<Cluster> c;
  ASSERT_TRUE(Cluster::Open(data_, OpenOptions(), wrong, &c).IsWrongKey());
  c = Open();
  std::vector<AuditEntry> entries;
  ASSERT_OK(c->ReadAudit(0, &entries));
  ASSERT_FALSE(entries.empty());
  EXPECT_EQ("cluster.open", entries.back().action);
  EXPECT_EQ("WrongKey", entries.back().outcome);
  EXPECT_NE(std::string::npos, entries.back().detail.find("[unauthenticated]"));
  AuditVerification v;
  ASSERT_OK(c->VerifyAudit(&v));
  EXPECT_EQ(1u, v.unauthenticated);
}

TEST_F(AuditTest, TornTailFromCrashIsDroppedAndRecorded) {
  std::string log = ReadFile(data_ + "/AUDIT");
  WriteFile(data_ + "/AUDIT", log + "{\"seq\":99,\"time\":12");
  auto c = Open();
  std::vector<AuditEntry> entries;
  ASSERT_OK(c->ReadAudit(0, &entries));
  EXPECT_EQ("audit.repair", entries.back().action);
  AuditVerification v;
  EXPECT_OK(c->VerifyAudit(&v));
}

}  // namespace
}  // namespace coffer
