// Copyright (c) Coffer authors.
//
// The engine on a failing disk (tests/fault_fs.h under engine/storage.h):
// every operation either succeeds durably or returns an error; after a power
// loss every tenant reopens consistent, with every synced write; a full disk
// gives a clear error and Coffer recovers by itself once space returns. The
// last test fills a real (tmpfs) file system.

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "coffer/coffer.h"
#include "engine/storage.h"
#include "engine/tenant_db.h"
#include "tests/fault_fs.h"
#include "tests/testutil.h"

namespace coffer::test {
namespace {

using Op = FaultFs::Op;

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// Installs a FaultFs under the engine for the life of the test.
class FaultFsTest : public ClusterTest {
 protected:
  void SetUp() override {
    fs_ = std::make_shared<FaultFs>();
    SetBaseFileSystemForTesting(fs_);
    ClusterTest::SetUp();
  }
  void TearDown() override {
    cluster_.reset();
    SetBaseFileSystemForTesting(nullptr);
    ClusterTest::TearDown();
  }

  static OpenOptions Quiet() {
    OpenOptions o;
    o.maintenance_interval_ms = 0;
    o.tenant_write_buffer_bytes = 256 << 10;
    return o;
  }

  // Closes the cluster, drops what the disk had not made durable, reopens.
  Status LosePowerAndReopen() {
    cluster_.reset();
    rocksdb::IOStatus io = fs_->SimulatePowerLoss();
    if (!io.ok()) return Status::IOError("power loss: " + io.ToString());
    return ReopenCluster(Quiet());
  }

  std::unique_ptr<Tenant> Get(const std::string& id) {
    std::unique_ptr<Tenant> t;
    Status s = cluster_->GetTenant(id, &t);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return t;
  }

  std::shared_ptr<FaultFs> fs_;
};

WriteOptions Synced() {
  WriteOptions o;
  o.sync = true;
  return o;
}

// ---- the model itself ----

TEST(FaultFsModel, PowerLossKeepsOnlyWhatWasMadeDurable) {
  TempDir tmp;
  FaultFs fs;
  const rocksdb::IOOptions io;
  const std::string dir = tmp.path();
  std::unique_ptr<rocksdb::FSDirectory> d;
  ASSERT_TRUE(fs.NewDirectory(dir, io, &d, nullptr).ok());
  auto write = [&](const std::string& name, const std::string& synced,
                   const std::string& unsynced) {
    std::unique_ptr<rocksdb::FSWritableFile> f;
    ASSERT_TRUE(fs.NewWritableFile(dir + "/" + name, {}, &f, nullptr).ok());
    ASSERT_TRUE(f->Append(synced, io, nullptr).ok());
    ASSERT_TRUE(f->Sync(io, nullptr).ok());
    ASSERT_TRUE(f->Append(unsynced, io, nullptr).ok());
    ASSERT_TRUE(f->Close(io, nullptr).ok());
  };
  write("durable", "old", "");
  ASSERT_TRUE(d->Fsync(io, nullptr).ok());
  write("tail", "kept", "-lost");
  ASSERT_TRUE(d->Fsync(io, nullptr).ok());
  write("unnamed", "synced data", "");  // directory never fsynced after
  write("durable.tmp", "new", "");
  ASSERT_TRUE(fs.RenameFile(dir + "/durable.tmp", dir + "/durable", io,
                            nullptr)
                  .ok());
  EXPECT_EQ(ReadFileBytes(dir + "/durable"), "new");
  // Budget and rules.
  fs.SetSpaceBudget(2);
  std::unique_ptr<rocksdb::FSWritableFile> f;
  ASSERT_TRUE(fs.NewWritableFile(dir + "/full", {}, &f, nullptr).ok());
  EXPECT_TRUE(f->Append("abc", io, nullptr).IsNoSpace());
  fs.RaiseSpaceBudget(10);
  EXPECT_TRUE(f->Append("abc", io, nullptr).ok());
  fs.FailOp(FaultFs::Op::kSync, "fu*", 1, 1);
  EXPECT_TRUE(f->Sync(io, nullptr).ok());
  EXPECT_FALSE(f->Sync(io, nullptr).ok());
  EXPECT_TRUE(f->Sync(io, nullptr).ok());
  fs.CutPowerAfter(1);
  EXPECT_FALSE(f->Append("x", io, nullptr).ok());
  EXPECT_TRUE(fs.power_cut());
  f->Close(io, nullptr).PermitUncheckedError();
  f.reset();

  ASSERT_TRUE(fs.SimulatePowerLoss().ok());
  EXPECT_EQ(ReadFileBytes(dir + "/durable"), "old");  // rename undone
  EXPECT_EQ(ReadFileBytes(dir + "/tail"), "kept");     // tail dropped
  EXPECT_FALSE(std::filesystem::exists(dir + "/unnamed"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/durable.tmp"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/full"));
}

// ---- write-ahead log ----------------------------------------------------------

TEST_F(FaultFsTest, FailedLogWriteOrSyncNeverReportsSuccess) {
  for (Op op : {Op::kWrite, Op::kSync}) {
    SCOPED_TRACE(op == Op::kWrite ? "log write" : "log sync");
    ASSERT_OK(CreateCluster(ClusterLimits(), Quiet()));
    ASSERT_OK(cluster_->CreateTenant("acme", TenantOptions()));
    std::unique_ptr<Tenant> t = Get("acme");
    // Every 7th append or sync of a log fails, from the 5th on.
    std::map<std::string, std::string> acked;
    int failed = 0;
    for (int round = 0; round < 4; ++round) {
      fs_->FailOp(op, "*.log", 4, 1);
      for (int i = 0; i < 10; ++i) {
        const std::string k = "k" + std::to_string(round) + "-" +
                              std::to_string(i);
        const std::string v = RandomString(100);
        Status s = t->Put(Synced(), k, v);
        if (s.ok()) {
          acked[k] = v;
        } else {
          ++failed;
          EXPECT_TRUE(s.IsIOError()) << s.ToString();
          EXPECT_TRUE(Contains(s.message(), "tenant 'acme'")) << s.ToString();
        }
      }
      fs_->ClearFaults();
    }
    EXPECT_GE(failed, 4);
    EXPECT_GE(fs_->injected(), 4u);
    // The tenant took writes again without a reopen, then lost power.
    EXPECT_GT(acked.size(), 30u);
    t.reset();
    ASSERT_OK(LosePowerAndReopen());
    t = Get("acme");
    for (const auto& [k, v] : acked) EXPECT_EQ(GetValue(t.get(), k), v) << k;
    t.reset();
    cluster_.reset();
    std::filesystem::remove_all(data_dir_);
  }
}

// After a log write fails with a plain I/O error RocksDB stops the database
// for good; the engine resumes (or reopens) it on the next write.
TEST_F(FaultFsTest, WritesResumeAfterAnIoErrorWithoutReopen) {
  ASSERT_OK(CreateCluster(ClusterLimits(), Quiet()));
  ASSERT_OK(cluster_->CreateTenant("acme", TenantOptions()));
  std::unique_ptr<Tenant> t = Get("acme");
  ASSERT_OK(t->Put(WriteOptions(), "before", "1"));
  fs_->FailOp(Op::kWrite, "*.log", 0, 1);
  Status s = t->Put(WriteOptions(), "failed", "x");
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.message(), "injected write failure")) << s.ToString();
  ASSERT_OK(t->Put(Synced(), "after", "2"));
  ASSERT_OK(t->Flush());
  EXPECT_EQ(GetValue(t.get(), "before"), "1");
  EXPECT_EQ(GetValue(t.get(), "after"), "2");
  t.reset();
  ASSERT_OK(LosePowerAndReopen());
  t = Get("acme");
  EXPECT_EQ(GetValue(t.get(), "before"), "1");
  EXPECT_EQ(GetValue(t.get(), "after"), "2");
}

// ---- catalog records -----------------------------------------------------------

struct RecordFault {
  const char* name;
  Op op;
  const char* pattern;
};

TEST_F(FaultFsTest, FailedRecordUpdateLeavesOldOrNewRecord) {
  const RecordFault faults[] = {
      {"tmp write", Op::kWrite, "TENANT.tmp"},
      {"tmp fsync", Op::kSync, "TENANT.tmp"},
      {"rename", Op::kRename, "TENANT"},
      {"tmp create", Op::kCreate, "TENANT.tmp"},
  };
  for (const RecordFault& f : faults) {
    SCOPED_TRACE(f.name);
    ASSERT_OK(CreateCluster(ClusterLimits(), Quiet()));
    ASSERT_OK(cluster_->CreateTenant("acme", TenantOptions()));
    std::unique_ptr<Tenant> t = Get("acme");
    ASSERT_OK(t->Put(Synced(), "k", "v"));
    t.reset();
    const uint64_t injected_before = fs_->injected();

    // Create.
    fs_->FailOp(f.op, f.pattern, 0, 1);
    Status s = cluster_->CreateTenant("globex", TenantOptions());
    ASSERT_FALSE(s.ok());
    EXPECT_TRUE(Contains(s.message(), "TENANT")) << s.ToString();
    // Quota change.
    fs_->FailOp(f.op, f.pattern, 0, 1);
    s = cluster_->SetTenantQuota("acme", 12345);
    ASSERT_FALSE(s.ok());
    EXPECT_TRUE(Contains(s.message(), "/tenants/acme/TENANT")) << s.ToString();
    TenantInfo info;
    ASSERT_OK(cluster_->DescribeTenant("acme", &info));
    EXPECT_NE(info.quota, 12345u);  // not applied in memory either
    // Key rotation.
    fs_->FailOp(f.op, f.pattern, 0, 1);
    KeyRotationReport report;
    s = cluster_->RotateTenantKey("acme", /*rekey=*/false, &report);
    ASSERT_FALSE(s.ok());
    EXPECT_TRUE(Contains(s.message(), "/tenants/acme/TENANT")) << s.ToString();
    EXPECT_EQ(fs_->injected() - injected_before, 3u);

    ASSERT_OK(LosePowerAndReopen());
    // Never torn: every record reads; each is the old or the new version.
    const std::vector<std::string> ids = cluster_->ListTenants();
    EXPECT_TRUE(ids == std::vector<std::string>{"acme"} ||
                ids == (std::vector<std::string>{"acme", "globex"}));
    ASSERT_OK(cluster_->DescribeTenant("acme", &info));
    EXPECT_TRUE(info.quota == 12345u || info.quota == uint64_t{1} << 30)
        << info.quota;
    EXPECT_TRUE(info.key_version == 1 || info.key_version == 2);
    t = Get("acme");
    EXPECT_EQ(GetValue(t.get(), "k"), "v");
    ASSERT_OK(t->Put(Synced(), "k2", "v2"));
    // The failed operations can simply be repeated.
    ASSERT_OK(cluster_->SetTenantQuota("acme", 12345));
    ASSERT_OK(cluster_->RotateTenantKey("acme", false, nullptr));
    if (ids.size() == 1) ASSERT_OK(cluster_->CreateTenant("globex", {}));
    ASSERT_OK(LosePowerAndReopen());
    ASSERT_OK(cluster_->DescribeTenant("acme", &info));
    EXPECT_EQ(info.quota, 12345u);
    EXPECT_EQ(GetValue(Get("acme").get(), "k2"), "v2");
    EXPECT_EQ(cluster_->ListTenants().size(), 2u);
    cluster_.reset();
    std::filesystem::remove_all(data_dir_);
  }
}

// A directory fsync that fails after the rename: the caller hears of it, and
// the power loss that follows may keep either version.
TEST_F(FaultFsTest, FailedDirectoryFsyncAfterRename) {
  ASSERT_OK(CreateCluster(ClusterLimits(), Quiet()));
  ASSERT_OK(cluster_->CreateTenant("acme", TenantOptions()));
  fs_->FailOp(Op::kSync, "acme", 0, 1);  // the directory tenants/acme
  Status s = cluster_->SetTenantQuota("acme", 777);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.message(), "cannot fsync directory")) << s.ToString();
  EXPECT_TRUE(Contains(s.message(), "/tenants/acme")) << s.ToString();
  ASSERT_OK(LosePowerAndReopen());
  TenantInfo info;
  ASSERT_OK(cluster_->DescribeTenant("acme", &info));
  EXPECT_EQ(info.quota, uint64_t{1} << 30);  // the rename was undone
}

TEST_F(FaultFsTest, FailedClusterRecordUpdate) {
  ASSERT_OK(CreateCluster(ClusterLimits(), Quiet()));
  AuditVerification v;
  ASSERT_OK(cluster_->VerifyAudit(&v));  // anchors the audit head in CLUSTER
  for (const RecordFault& f :
       {RecordFault{"fsync", Op::kSync, "CLUSTER.tmp"},
        RecordFault{"rename", Op::kRename, "CLUSTER"}}) {
    SCOPED_TRACE(f.name);
    fs_->FailOp(f.op, f.pattern, 0, 1);
    Status s = cluster_->VerifyAudit(&v);
    ASSERT_FALSE(s.ok());
    EXPECT_TRUE(Contains(s.message(), "/CLUSTER")) << s.ToString();
    ASSERT_OK(LosePowerAndReopen());
    ASSERT_OK(cluster_->VerifyAudit(&v));
  }
}

// ---- reads ----------------------------------------------------------------------

TEST_F(FaultFsTest, FailedReadsStayWithinTheirTenant) {
  ASSERT_OK(CreateCluster(ClusterLimits(), Quiet()));
  for (const char* id : {"alpha", "beta"}) {
    ASSERT_OK(cluster_->CreateTenant(id, TenantOptions()));
    std::unique_ptr<Tenant> t = Get(id);
    ASSERT_OK(t->Put(WriteOptions(), "k", std::string("v-") + id));
    ASSERT_OK(t->Flush());
  }
  ASSERT_OK(ReopenCluster(Quiet()));  // empty block cache

  // A table file of alpha cannot be read.
  fs_->FailOp(Op::kRead, "*/tenants/alpha/db/*.sst");
  std::unique_ptr<Tenant> alpha = Get("alpha");
  std::unique_ptr<Tenant> beta = Get("beta");
  std::string v;
  Status s = alpha->Get(ReadOptions(), "k", &v);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_TRUE(Contains(s.message(), "tenant 'alpha'")) << s.ToString();
  EXPECT_TRUE(Contains(s.message(), ".sst")) << s.ToString();
  EXPECT_EQ(GetValue(beta.get(), "k"), "v-beta");
  fs_->ClearFaults();
  EXPECT_EQ(GetValue(alpha.get(), "k"), "v-alpha");

  // alpha's MANIFEST cannot be read when it opens.
  alpha.reset();
  beta.reset();
  ASSERT_OK(ReopenCluster(Quiet()));
  fs_->FailOp(Op::kRead, "*/tenants/alpha/db/MANIFEST-*");
  alpha = Get("alpha");
  beta = Get("beta");
  s = alpha->Get(ReadOptions(), "k", &v);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.message(), "cannot open tenant 'alpha'"))
      << s.ToString();
  EXPECT_TRUE(Contains(s.message(), "MANIFEST-")) << s.ToString();
  s = alpha->Put(WriteOptions(), "k2", "v");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(GetValue(beta.get(), "k"), "v-beta");
  ASSERT_OK(beta->Put(WriteOptions(), "k2", "v"));
  // Once the disk reads again the tenant opens on its next use.
  fs_->ClearFaults();
  EXPECT_EQ(GetValue(alpha.get(), "k"), "v-alpha");

  // A catalog record that cannot be read at open: that tenant is reported,
  // the others serve.
  alpha.reset();
  beta.reset();
  cluster_.reset();
  fs_->FailOp(Op::kRead, "*/tenants/alpha/TENANT");
  ASSERT_OK(ReopenCluster(Quiet()));
  std::unique_ptr<Tenant> t;
  s = cluster_->GetTenant("alpha", &t);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.message(), "/tenants/alpha/TENANT")) << s.ToString();
  EXPECT_EQ(GetValue(Get("beta").get(), "k2"), "v");
}

// ---- power loss -------------------------------------------------------------------

// One run of a workload over three tenants that loses power after `cut`
// mutating disk operations (never, for 0), and what it acknowledged.
struct Acked {
  std::map<std::string, std::map<std::string, std::string>> synced;
  std::map<std::string, std::vector<std::vector<std::string>>> batches;
  std::set<std::string> tenants;
};

class PowerLossTest : public FaultFsTest {
 protected:
  void RunWorkload(uint64_t cut, Acked* acked) {
    ASSERT_OK(CreateCluster(ClusterLimits(), Quiet()));
    if (cut > 0) fs_->CutPowerAfter(cut);
    const std::vector<std::string> ids = {"t0", "t1", "t2"};
    for (const std::string& id : ids) {
      if (cluster_->CreateTenant(id, TenantOptions()).ok()) {
        acked->tenants.insert(id);
      }
    }
    int n = 0;
    for (int round = 0; round < 4; ++round) {
      for (const std::string& id : ids) {
        std::unique_ptr<Tenant> t;
        if (!cluster_->GetTenant(id, &t).ok()) continue;
        for (int i = 0; i < 6; ++i, ++n) {
          const std::string k = "k" + std::to_string(n);
          const std::string v = id + "-" + RandomString(200);
          const bool sync = i % 2 == 0;
          WriteOptions wo;
          wo.sync = sync;
          if (t->Put(wo, k, v).ok() && sync) acked->synced[id][k] = v;
        }
        WriteBatch b;
        std::vector<std::string> keys;
        for (int j = 0; j < 4; ++j) {
          keys.push_back("b" + std::to_string(n) + "-" + std::to_string(j));
          b.Put(keys.back(), "batch" + std::to_string(n));
        }
        Status s = t->Write(Synced(), b);
        // Acknowledged batches must all be there; others all or nothing.
        (*acked).batches[id].push_back(keys);
        if (s.ok()) {
          for (const std::string& k : keys) {
            acked->synced[id][k] = "batch" + std::to_string(n);
          }
        }
        ++n;
        if (round == 1) t->Flush().PermitUncheckedError();
      }
      if (round == 2) {
        cluster_->RotateTenantKey("t1", /*rekey=*/false, nullptr)
            .PermitUncheckedError();
        cluster_->RotateTenantKey("t2", /*rekey=*/true, nullptr)
            .PermitUncheckedError();
      }
    }
  }

  void Check(const Acked& acked) {
    // Every tenant whose creation was acknowledged opens and holds every
    // acknowledged synced write; no read reports corruption.
    const std::vector<std::string> listed = cluster_->ListTenants();
    for (const std::string& id : acked.tenants) {
      SCOPED_TRACE(id);
      EXPECT_NE(std::find(listed.begin(), listed.end(), id), listed.end());
    }
    for (const std::string& id : listed) {
      SCOPED_TRACE(id);
      std::unique_ptr<Tenant> t = Get(id);
      ASSERT_NE(t, nullptr);
      std::map<std::string, std::string> all = ScanAll(t.get());
      auto it = acked.synced.find(id);
      if (it != acked.synced.end()) {
        for (const auto& [k, v] : it->second) {
          auto found = all.find(k);
          ASSERT_NE(found, all.end()) << "synced write " << k << " lost";
          EXPECT_EQ(found->second, v) << k;
        }
      }
      auto b = acked.batches.find(id);
      if (b != acked.batches.end()) {
        for (const std::vector<std::string>& keys : b->second) {
          size_t present = 0;
          for (const std::string& k : keys) present += all.count(k);
          EXPECT_TRUE(present == 0 || present == keys.size())
              << "batch " << keys[0] << " half applied: " << present;
        }
      }
      // Writable again.
      ASSERT_OK(t->Put(Synced(), "after-power-loss", "1"));
    }
  }
};

TEST_F(PowerLossTest, EverySyncedWriteSurvivesAtEveryCutPoint) {
  // A dry run measures how many mutating operations the workload makes.
  Acked full;
  ASSERT_NO_FATAL_FAILURE(RunWorkload(0, &full));
  const uint64_t total = fs_->mutating_ops();
  ASSERT_GT(total, 100u);
  ASSERT_OK(LosePowerAndReopen());
  ASSERT_NO_FATAL_FAILURE(Check(full));
  cluster_.reset();
  std::filesystem::remove_all(data_dir_);

  const int kCuts = 24;
  for (int c = 1; c <= kCuts; ++c) {
    const uint64_t cut = 1 + total * c / (kCuts + 1);
    SCOPED_TRACE("power cut at mutating operation " + std::to_string(cut) +
                 " of " + std::to_string(total));
    Acked acked;
    ASSERT_NO_FATAL_FAILURE(RunWorkload(cut, &acked));
    EXPECT_TRUE(fs_->power_cut());
    Status s = LosePowerAndReopen();
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_NO_FATAL_FAILURE(Check(acked));
    cluster_.reset();
    std::filesystem::remove_all(data_dir_);
  }
}

// ---- full disk ------------------------------------------------------------------

// However RocksDB wraps a full disk, the caller reads "disk full". A write
// that waited in a stall while a flush ran out of space gets Incomplete
// holding the flush's error as text, without the NoSpace subcode.
TEST(FromRocksTest, FullDiskSaysSoWhateverItIsWrappedIn) {
  const rocksdb::Status direct =
      rocksdb::Status::NoSpace("While appending to file: 000018.sst");
  const rocksdb::Status stalled = rocksdb::Status::Incomplete(
      "IO error: No space left on device: While appending to file: "
      "000018.sst: No space left on device");
  for (const rocksdb::Status& rs : {direct, stalled}) {
    EXPECT_TRUE(IsNoSpace(rs)) << rs.ToString();
    Status s = FromRocks(rs, "tenant 'acme'");
    EXPECT_TRUE(s.IsIOError()) << s.ToString();
    EXPECT_TRUE(Contains(s.message(), "disk full")) << s.ToString();
    EXPECT_TRUE(Contains(s.message(), "tenant 'acme'")) << s.ToString();
  }
  const rocksdb::Status other =
      rocksdb::Status::Incomplete("IO error: Input/output error");
  EXPECT_FALSE(IsNoSpace(other));
  EXPECT_FALSE(Contains(FromRocks(other, "t").message(), "disk full"));
  EXPECT_FALSE(IsNoSpace(rocksdb::Status::IOError("No space")));
}

TEST_F(FaultFsTest, FullDiskFailsClearlyAndRecoversWhenSpaceReturns) {
  ASSERT_OK(CreateCluster(ClusterLimits(), Quiet()));
  ASSERT_OK(cluster_->CreateTenant("acme", TenantOptions()));
  ASSERT_OK(cluster_->CreateTenant("globex", TenantOptions()));
  std::unique_ptr<Tenant> t = Get("acme");
  std::map<std::string, std::string> acked;
  fs_->SetSpaceBudget(256 << 10);
  Status failure;
  for (int i = 0; i < 1000 && failure.ok(); ++i) {
    const std::string k = "k" + std::to_string(i);
    const std::string v = RandomString(4000);
    Status s = t->Put(WriteOptions{.sync = i % 3 == 0}, k, v);
    if (s.ok()) {
      acked[k] = v;
    } else {
      failure = s;
    }
  }
  ASSERT_FALSE(failure.ok()) << "the disk never filled";
  fs_->SetSpaceBudget(0);  // completely full
  EXPECT_TRUE(failure.IsIOError()) << failure.ToString();
  EXPECT_TRUE(Contains(failure.message(), "disk full")) << failure.ToString();
  EXPECT_TRUE(Contains(failure.message(), "tenant 'acme'"))
      << failure.ToString();
  // Still full: writes, flushes and administrative changes fail cleanly,
  // reads work.
  Status s = t->Put(WriteOptions(), "more", "x");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.message(), "disk full")) << s.ToString();
  s = cluster_->SetTenantQuota("globex", 1 << 20);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.message(), "disk full")) << s.ToString();
  EXPECT_EQ(GetValue(t.get(), acked.begin()->first), acked.begin()->second);

  // Space returns: the very next write succeeds, with no manual step. It
  // does not wait for RocksDB's own recovery, which is pending here (its
  // Resume() answers Busy) and looks at the free space every 5 seconds.
  fs_->ClearSpaceBudget();
  const auto start = std::chrono::steady_clock::now();
  ASSERT_OK(t->Put(Synced(), "after", "1"));
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  std::printf("writes resumed %lld ms after space returned\n",
              static_cast<long long>(waited.count()));
  ASSERT_OK(cluster_->SetTenantQuota("globex", 1 << 20));
  ASSERT_OK(t->Flush());
  std::unique_ptr<Tenant> globex = Get("globex");
  ASSERT_OK(globex->Put(Synced(), "g", "1"));
  t.reset();
  globex.reset();
  ASSERT_OK(LosePowerAndReopen());
  t = Get("acme");
  for (const auto& [k, v] : acked) {
    // Unsynced writes were durable once a later synced one was.
    EXPECT_EQ(GetValue(t.get(), k), v) << k;
  }
  EXPECT_EQ(GetValue(t.get(), "after"), "1");
}

// ---- ENOSPC on a real file system ----------------------------------------------------

// A tmpfs mounted for one test, unmounted when the object dies.
class TmpfsMount {
 public:
  TmpfsMount(const std::string& dir, const std::string& size) : dir_(dir) {
    std::filesystem::create_directories(dir);
    const std::string opts = "size=" + size + ",mode=0700";
    if (::mount("tmpfs", dir.c_str(), "tmpfs", 0, opts.c_str()) == 0) {
      mounted_ = true;
    } else {
      error_ = std::strerror(errno);
    }
  }
  ~TmpfsMount() {
    if (mounted_ && ::umount2(dir_.c_str(), MNT_DETACH) != 0) {
      ADD_FAILURE() << "cannot unmount " << dir_ << ": "
                    << std::strerror(errno);
    }
  }
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;

  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  std::string dir_;
  bool mounted_ = false;
  std::string error_;
};

class RealDiskFullTest : public ClusterTest {};

TEST_F(RealDiskFullTest, TinyTmpfsFillsAndRecovers) {
  const std::string mnt = tmp_.Sub("disk");
  TmpfsMount mount(mnt, "8m");
  if (!mount.mounted()) {
    GTEST_SKIP() << "cannot mount a tmpfs on " << mnt << ": " << mount.error();
  }
  data_dir_ = mnt + "/data";
  OpenOptions o;
  o.maintenance_interval_ms = 0;
  o.tenant_write_buffer_bytes = 256 << 10;
  ASSERT_OK(CreateCluster(ClusterLimits(), o));
  ASSERT_OK(cluster_->CreateTenant("acme", TenantOptions()));
  std::unique_ptr<Tenant> t;
  ASSERT_OK(cluster_->GetTenant("acme", &t));
  // Most of the disk goes to a file that is not Coffer's.
  const std::string filler = mnt + "/filler";
  {
    std::ofstream out(filler, std::ios::binary);
    const std::string chunk(1 << 20, 'f');
    for (int i = 0; i < 6; ++i) out.write(chunk.data(), chunk.size());
  }
  std::map<std::string, std::string> acked;
  Status failure;
  for (int i = 0; i < 4000 && failure.ok(); ++i) {
    const std::string k = "k" + std::to_string(i);
    const std::string v = RandomString(2000);
    Status s = t->Put(WriteOptions{.sync = true}, k, v);
    if (s.ok()) {
      acked[k] = v;
    } else {
      failure = s;
    }
  }
  ASSERT_FALSE(failure.ok()) << "the tmpfs never filled";
  EXPECT_TRUE(failure.IsIOError()) << failure.ToString();
  EXPECT_TRUE(Contains(failure.message(), "disk full")) << failure.ToString();
  EXPECT_TRUE(Contains(failure.message(), "tenant 'acme'"))
      << failure.ToString();
  std::printf("disk full after %zu acknowledged writes: %s\n", acked.size(),
              failure.ToString().c_str());

  ASSERT_EQ(::unlink(filler.c_str()), 0);
  const auto start = std::chrono::steady_clock::now();
  Status s;
  for (;;) {
    s = t->Put(WriteOptions{.sync = true}, "after", "1");
    if (s.ok()) break;
    ASSERT_LT(std::chrono::steady_clock::now() - start,
              std::chrono::seconds(20))
        << s.ToString();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::printf("writes resumed %lld ms after space returned\n",
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count()));
  t.reset();
  ASSERT_OK(ReopenCluster(o));
  ASSERT_OK(cluster_->GetTenant("acme", &t));
  for (const auto& [k, v] : acked) EXPECT_EQ(GetValue(t.get(), k), v) << k;
  EXPECT_EQ(GetValue(t.get(), "after"), "1");
  t.reset();
  cluster_.reset();
}

}  // namespace
}  // namespace coffer::test
