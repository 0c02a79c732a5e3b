// Copyright (c) Coffer authors.
//
// Key lifecycle: data-key rotation and rekey, revocation, tenant-owned master
// keys, master-key rotation (including a writer killed mid-rotation) and
// crypto-shredding.

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <thread>

#include "coffer/coffer.h"
#include "engine/catalog.h"
#include "engine/tenant_db.h"
#include "tests/testutil.h"

namespace coffer {
namespace {

namespace fs = std::filesystem;

ClusterOptions Options() {
  ClusterOptions o;
  o.cluster_id = "c1";
  o.region = "r1";
  o.geography = "g1";
  return o;
}

std::string Get(Tenant* t, const std::string& key) {
  std::string v;
  Status s = t->Get(ReadOptions(), key, &v);
  return s.ok() ? v : s.ToString();
}

class KeyLifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = dir_.Sub("data");
    key_file_ = dir_.Sub("master.key");
    test::WriteKeyFile(key_file_);
    ASSERT_OK(NewFileKeyProvider(key_file_, &keys_));
  }

  std::unique_ptr<Cluster> Create(const OpenOptions& open = OpenOptions()) {
    std::unique_ptr<Cluster> c;
    Status s = Cluster::Create(data_, Options(), open, keys_, &c);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return c;
  }

  std::unique_ptr<Cluster> Open(std::shared_ptr<KeyProvider> keys,
                                Status* status = nullptr) {
    std::unique_ptr<Cluster> c;
    Status s = Cluster::Open(data_, OpenOptions(), std::move(keys), &c);
    if (status != nullptr)
      *status = s;
    else
      EXPECT_TRUE(s.ok()) << s.ToString();
    return c;
  }

  void Fill(Cluster* c, const std::string& tenant, int n,
            const std::string& tag) {
    std::unique_ptr<Tenant> t;
    ASSERT_OK(c->GetTenant(tenant, &t));
    for (int i = 0; i < n; ++i) {
      ASSERT_OK(t->Put(WriteOptions(), tag + std::to_string(i),
                       "value-" + tag + std::to_string(i)));
    }
    ASSERT_OK(t->Flush());
  }

  void ExpectFilled(Cluster* c, const std::string& tenant, int n,
                    const std::string& tag) {
    std::unique_ptr<Tenant> t;
    ASSERT_OK(c->GetTenant(tenant, &t));
    for (int i = 0; i < n; ++i) {
      ASSERT_EQ("value-" + tag + std::to_string(i),
                Get(t.get(), tag + std::to_string(i)));
    }
  }

  test::TempDir dir_;
  std::string data_, key_file_;
  std::shared_ptr<KeyProvider> keys_;
};

TEST_F(KeyLifecycleTest, RotationMakesNewFilesUseTheNewVersion) {
  auto c = Create();
  ASSERT_OK(c->CreateTenant("acme", TenantOptions()));
  Fill(c.get(), "acme", 100, "a");
  KeyRotationReport r;
  ASSERT_OK(c->RotateTenantKey("acme", /*rekey=*/false, &r));
  EXPECT_EQ(2u, r.new_version);
  EXPECT_TRUE(r.versions_retired.empty());  // old files still use version 1
  Fill(c.get(), "acme", 100, "b");
  TenantKeyStatus st;
  ASSERT_OK(c->GetKeyStatus("acme", &st));
  EXPECT_EQ(2u, st.current_version);
  ASSERT_EQ(2u, st.versions.size());
  EXPECT_GT(st.versions[0].files, 0u);  // version 1: the first table file
  EXPECT_GT(st.versions[1].files, 0u);  // version 2: the new table file, WAL
  ExpectFilled(c.get(), "acme", 100, "a");
  ExpectFilled(c.get(), "acme", 100, "b");
  c.reset();
  c = Open(keys_);
  ExpectFilled(c.get(), "acme", 100, "a");
  ExpectFilled(c.get(), "acme", 100, "b");
}

TEST_F(KeyLifecycleTest, RekeyRetiresEveryOldVersion) {
  auto c = Create();
  ASSERT_OK(c->CreateTenant("acme", TenantOptions()));
  Fill(c.get(), "acme", 200, "a");
  ASSERT_OK(c->RotateTenantKey("acme", false, nullptr));
  Fill(c.get(), "acme", 200, "b");
  KeyRotationReport r;
  ASSERT_OK(c->RotateTenantKey("acme", /*rekey=*/true, &r));
  EXPECT_EQ(3u, r.new_version);
  EXPECT_TRUE(r.rekeyed);
  EXPECT_EQ((std::vector<uint32_t>{1, 2}), r.versions_retired);
  ASSERT_EQ(1u, r.versions.size());
  EXPECT_EQ(3u, r.versions[0].version);
  // Every file of the tenant is on version 3 now.
  std::map<uint32_t, uint64_t> counts;
  ASSERT_OK(CountFilesByKeyVersion(data_ + "/tenants/acme/db", &counts));
  ASSERT_EQ(1u, counts.size()) << "files on versions other than 3 remain";
  EXPECT_EQ(3u, counts.begin()->first);
  ExpectFilled(c.get(), "acme", 200, "a");
  ExpectFilled(c.get(), "acme", 200, "b");
  c.reset();
  c = Open(keys_);
  ExpectFilled(c.get(), "acme", 200, "a");
  TenantKeyStatus st;
  ASSERT_OK(c->GetKeyStatus("acme", &st));
  ASSERT_EQ(1u, st.versions.size());
}

TEST_F(KeyLifecycleTest, RekeyWaitsForNoOneButRefusesWhileIteratorsHold) {
  auto c = Create();
  ASSERT_OK(c->CreateTenant("acme", TenantOptions()));
  Fill(c.get(), "acme", 10, "a");
  std::unique_ptr<Tenant> t;
  ASSERT_OK(c->GetTenant("acme", &t));
  auto it = t->NewIterator(ReadOptions());
  it->SeekToFirst();
  ASSERT_TRUE(it->Valid());
  Status s = c->RotateTenantKey("acme", true, nullptr);
  EXPECT_TRUE(s.IsBusy()) << s.ToString();
  // The tenant still works, and the iterator too.
  it->Next();
  EXPECT_TRUE(it->Valid());
  EXPECT_EQ("value-a1", Get(t.get(), "a1"));
  it.reset();
  ASSERT_OK(c->RotateTenantKey("acme", true, nullptr));
}

TEST_F(KeyLifecycleTest, RevocationTakesOnlyThatTenantOffline) {
  auto c = Create();
  ASSERT_OK(c->CreateTenant("acme", TenantOptions()));
  ASSERT_OK(c->CreateTenant("globex", TenantOptions()));
  Fill(c.get(), "acme", 50, "a");
  std::unique_ptr<Tenant> acme, globex;
  ASSERT_OK(c->GetTenant("acme", &acme));
  ASSERT_OK(c->GetTenant("globex", &globex));
  auto it = acme->NewIterator(ReadOptions());
  it->SeekToFirst();
  ASSERT_TRUE(it->Valid());

  std::atomic<bool> stop{false};
  std::atomic<int> writer_errors{0}, writes{0};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      if (!globex->Put(WriteOptions(), "g" + std::to_string(i), "v").ok()) {
        writer_errors++;
      }
      writes++;
    }
  });
  while (writes < 100) std::this_thread::yield();
  ASSERT_OK(c->RevokeTenantKey("acme", "customer offboarding"));
  std::string v;
  Status s = acme->Get(ReadOptions(), "a1", &v);
  EXPECT_TRUE(s.IsKeyRevoked()) << s.ToString();
  EXPECT_TRUE(acme->Put(WriteOptions(), "x", "y").IsKeyRevoked());
  it->Next();
  EXPECT_FALSE(it->Valid());
  EXPECT_TRUE(it->status().IsKeyRevoked()) << it->status().ToString();
  EXPECT_TRUE(acme->NewIterator(ReadOptions())->status().IsKeyRevoked());
  const int before = writes.load();
  while (writes < before + 100) std::this_thread::yield();
  stop = true;
  writer.join();
  EXPECT_EQ(0, writer_errors.load());
  it.reset();

  TenantKeyStatus st;
  ASSERT_OK(c->GetKeyStatus("acme", &st));
  EXPECT_TRUE(st.revoked);
  EXPECT_EQ("customer offboarding", st.revoke_reason);

  // Revocation survives a restart.
  acme.reset();
  globex.reset();
  c.reset();
  c = Open(keys_);
  ASSERT_OK(c->GetTenant("acme", &acme));
  EXPECT_TRUE(acme->Get(ReadOptions(), "a1", &v).IsKeyRevoked());
  ASSERT_OK(c->RestoreTenantKey("acme"));
  ExpectFilled(c.get(), "acme", 50, "a");
}

TEST_F(KeyLifecycleTest, TenantOwnedKeyVanishingTakesOnlyThatTenantOffline) {
  const std::string key_dir = dir_.Sub("keys");
  fs::create_directory(key_dir);
  test::WriteKeyFile(key_dir + "/master.key");
  test::WriteKeyFile(key_dir + "/acme-key.key");
  std::shared_ptr<KeyProvider> keys;
  ASSERT_OK(NewDirectoryKeyProvider(key_dir, "master", &keys));
  OpenOptions open;
  open.maintenance_interval_ms = 20;
  std::unique_ptr<Cluster> c;
  ASSERT_OK(Cluster::Create(data_, Options(), open, keys, &c));
  TenantOptions byok;
  byok.master_key_id = "acme-key";
  ASSERT_OK(c->CreateTenant("acme", byok));
  ASSERT_OK(c->CreateTenant("globex", TenantOptions()));
  TenantOptions missing;
  missing.master_key_id = "nope";
  EXPECT_TRUE(c->CreateTenant("third", missing).IsNotFound());
  Fill(c.get(), "acme", 20, "a");
  TenantKeyStatus st;
  ASSERT_OK(c->GetKeyStatus("acme", &st));
  EXPECT_TRUE(st.own_master_key);
  EXPECT_EQ("acme-key", st.master_key_id);

  // The key leaves the provider (an HSM revoking it): acme goes offline by
  // itself, without any call on the cluster.
  fs::rename(key_dir + "/acme-key.key", dir_.Sub("acme-key.aside"));
  std::unique_ptr<Tenant> acme, globex;
  ASSERT_OK(c->GetTenant("acme", &acme));
  ASSERT_OK(c->GetTenant("globex", &globex));
  std::string v;
  Status s;
  for (int i = 0; i < 500; ++i) {
    s = acme->Get(ReadOptions(), "a1", &v);
    if (s.IsKeyRevoked()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(s.IsKeyRevoked()) << s.ToString();
  ASSERT_OK(globex->Put(WriteOptions(), "k", "v"));
  EXPECT_EQ("v", Get(globex.get(), "k"));

  // Back in the provider: back online, nothing lost.
  fs::rename(dir_.Sub("acme-key.aside"), key_dir + "/acme-key.key");
  ExpectFilled(c.get(), "acme", 20, "a");
  std::vector<AuditEntry> audit;
  ASSERT_OK(c->ReadAudit(0, &audit));
  bool saw_unavailable = false;
  for (const auto& e : audit) saw_unavailable |= e.action == "key.unavailable";
  EXPECT_TRUE(saw_unavailable);
}

TEST_F(KeyLifecycleTest, MasterRotationOnlineThenOldKeyIsUseless) {
  auto c = Create();
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK(c->CreateTenant("t" + std::to_string(i), TenantOptions()));
    Fill(c.get(), "t" + std::to_string(i), 20, "k");
  }
  const std::string new_file = dir_.Sub("new.key");
  test::WriteKeyFile(new_file);
  std::shared_ptr<KeyProvider> fresh;
  ASSERT_OK(NewFileKeyProvider(new_file, &fresh));
  // The cluster's provider lacks the new key.
  EXPECT_TRUE(
      c->RotateMasterKey(fresh->DefaultKeyId(), nullptr).IsInvalidArgument());
  c.reset();
  c = Open(NewCompositeKeyProvider({keys_, fresh}));
  std::unique_ptr<Tenant> t0;
  ASSERT_OK(c->GetTenant("t0", &t0));
  EXPECT_EQ("value-k3", Get(t0.get(), "k3"));  // open during the rotation
  MasterRotationReport r;
  ASSERT_OK(c->RotateMasterKey(fresh->DefaultKeyId(), &r));
  EXPECT_EQ(5u, r.tenants_rewrapped);
  EXPECT_EQ("value-k4", Get(t0.get(), "k4"));
  t0.reset();
  c.reset();
  Status s;
  c = Open(keys_, &s);
  EXPECT_TRUE(s.IsWrongKey()) << s.ToString();
  c = Open(fresh);
  for (int i = 0; i < 5; ++i) {
    ExpectFilled(c.get(), "t" + std::to_string(i), 20, "k");
  }
}

// ---- a child process that rotates the master key while writing -----------

// Run in a re-executed copy of this test binary (a forked copy of a process
// with RocksDB threads could deadlock). Writes keys to tenants t0..t4 from a
// second thread, reporting each acknowledged key on the pipe, while the main
// thread rotates the master key; then keeps writing until killed.
std::atomic<int> acked_writes{0};

[[noreturn]] void RotatingWriterChild() {
  const std::string dir = std::getenv("COFFER_ROT_DIR");
  const int fd = std::atoi(std::getenv("COFFER_ROT_FD"));
  std::shared_ptr<KeyProvider> old_keys, new_keys;
  if (!NewFileKeyProvider(std::getenv("COFFER_ROT_OLD"), &old_keys).ok() ||
      !NewFileKeyProvider(std::getenv("COFFER_ROT_NEW"), &new_keys).ok()) {
    _exit(3);
  }
  std::unique_ptr<Cluster> c;
  if (!Cluster::Open(dir, OpenOptions(),
                     NewCompositeKeyProvider({old_keys, new_keys}), &c)
           .ok()) {
    _exit(4);
  }
  std::vector<std::unique_ptr<Tenant>> tenants(5);
  for (int i = 0; i < 5; ++i) {
    if (!c->GetTenant("t" + std::to_string(i), &tenants[i]).ok()) _exit(5);
  }
  std::thread writer([&] {
    for (int n = 0;; ++n) {
      const std::string key = "w" + std::to_string(n);
      if (!tenants[n % 5]->Put(WriteOptions(), key, "v" + key).ok()) _exit(6);
      const std::string line = std::to_string(n % 5) + " " + key + "\n";
      if (::write(fd, line.data(), line.size()) < 0) _exit(7);
      acked_writes++;
    }
  });
  // The writer is under way before the rotation starts.
  for (int spins = 0; spins < 1000 && acked_writes.load() < 20; ++spins) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (::write(fd, "R\n", 2) != 2) _exit(8);  // the rotation starts now
  c->RotateMasterKey(new_keys->DefaultKeyId(), nullptr).PermitUncheckedError();
  writer.join();  // never returns: the parent kills this process
  _exit(0);
}

const int kRotatingWriterHook = [] {
  if (std::getenv("COFFER_ROT_CHILD") != nullptr) RotatingWriterChild();
  return 0;
}();

// A child rotates the master key over many tenants under concurrent writes
// and is SIGKILLed at a random point. Whatever it left, both keys together
// open every tenant with every acknowledged write, a second rotation
// completes, and then the new key alone suffices.
TEST_F(KeyLifecycleTest, MasterRotationKilledMidwayCompletesOnRetry) {
  constexpr int kTenants = 120;
  {
    auto c = Create();
    for (int i = 0; i < kTenants; ++i) {
      ASSERT_OK(c->CreateTenant("t" + std::to_string(i), TenantOptions()));
    }
    Fill(c.get(), "t0", 10, "k");
    Fill(c.get(), "t59", 10, "k");
  }
  (void)kRotatingWriterHook;
  std::mt19937 rng(std::random_device{}());
  std::string old_file = key_file_;
  int midway = 0;  // rounds killed with the rotation under way
  int acked_total = 0;
  for (int round = 0; round < 12 && (round < 4 || midway == 0); ++round) {
    const std::string new_file =
        dir_.Sub("new" + std::to_string(round) + ".key");
    test::WriteKeyFile(new_file);
    std::shared_ptr<KeyProvider> fresh;
    ASSERT_OK(NewFileKeyProvider(new_file, &fresh));
    auto both = NewCompositeKeyProvider({keys_, fresh});

    int fds[2];
    ASSERT_EQ(0, ::pipe(fds));
    std::vector<std::string> env = {
        "COFFER_ROT_CHILD=1", "COFFER_ROT_DIR=" + data_,
        "COFFER_ROT_OLD=" + old_file, "COFFER_ROT_NEW=" + new_file,
        "COFFER_ROT_FD=" + std::to_string(fds[1])};
    std::vector<char*> envp;
    for (std::string& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    char arg0[] = "rotating_writer";
    char* argv[] = {arg0, nullptr};
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      ::execve("/proc/self/exe", argv, envp.data());
      _exit(127);
    }
    ::close(fds[1]);
    // Wait for the child to start rotating, then kill it a random moment
    // into the rotation (which takes some tens of milliseconds here).
    std::string acked;
    char buf[4096];
    while (acked.find("R\n") == std::string::npos) {
      ssize_t n = ::read(fds[0], buf, sizeof(buf));
      if (n <= 0) break;
      acked.append(buf, static_cast<size_t>(n));
    }
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 60000));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited early: " << status;
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof(buf))) > 0;) {
      acked.append(buf, static_cast<size_t>(n));
    }
    ::close(fds[0]);

    {
      std::unique_ptr<Catalog> catalog;
      ASSERT_OK(Catalog::Load(data_, both, &catalog));
      if (!catalog->rotating_to().empty()) midway++;
    }
    // Every write the child saw acknowledged (full lines only), per tenant.
    auto expect_acked = [&](Cluster* c) {
      std::istringstream lines(acked.substr(0, acked.rfind('\n') + 1));
      std::vector<std::unique_ptr<Tenant>> t(5);
      for (int i = 0; i < 5; ++i) {
        ASSERT_OK(c->GetTenant("t" + std::to_string(i), &t[i]));
      }
      int count = 0;
      for (std::string line; std::getline(lines, line);) {
        if (line == "R") continue;
        const int tenant = line[0] - '0';
        const std::string key = line.substr(2);
        ASSERT_EQ("v" + key, Get(t[tenant].get(), key));
        ++count;
      }
      acked_total += count;
    };
    {
      std::unique_ptr<Cluster> c = Open(both);
      ASSERT_NE(nullptr, c);
      ExpectFilled(c.get(), "t0", 10, "k");
      ExpectFilled(c.get(), "t59", 10, "k");
      expect_acked(c.get());
      MasterRotationReport r;
      ASSERT_OK(c->RotateMasterKey(fresh->DefaultKeyId(), &r));
      // All tenants, or none when the child finished before it was killed.
      EXPECT_TRUE(r.tenants_rewrapped == kTenants || r.tenants_rewrapped == 0)
          << r.tenants_rewrapped;
    }
    std::unique_ptr<Cluster> c = Open(fresh);
    ASSERT_NE(nullptr, c);
    ExpectFilled(c.get(), "t0", 10, "k");
    ExpectFilled(c.get(), "t59", 10, "k");
    expect_acked(c.get());
    for (int i = 0; i < kTenants; i += 7) {
      TenantKeyStatus st;
      ASSERT_OK(c->GetKeyStatus("t" + std::to_string(i), &st));
      EXPECT_EQ(fresh->DefaultKeyId(), st.master_key_id);
    }
    keys_ = fresh;
    old_file = new_file;
  }
  EXPECT_GT(midway, 0) << "no kill landed inside a rotation";
  EXPECT_GT(acked_total, 0) << "the children acknowledged no write";
}

TEST_F(KeyLifecycleTest, KeyAgeIsEnforcedInTheBackground) {
  OpenOptions open;
  open.max_data_key_age_seconds = 1;
  open.maintenance_interval_ms = 50;
  auto c = Create(open);
  ASSERT_OK(c->CreateTenant("acme", TenantOptions()));
  Fill(c.get(), "acme", 10, "a");
  TenantKeyStatus st;
  for (int i = 0; i < 100; ++i) {
    ASSERT_OK(c->GetKeyStatus("acme", &st));
    if (st.current_version >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_GE(st.current_version, 2u) << "no rotation after 5 s";
  ExpectFilled(c.get(), "acme", 10, "a");
  // The audit entry follows the rotation it records (the new version is
  // visible a moment before).
  bool rotated = false;
  for (int i = 0; i < 100 && !rotated; ++i) {
    std::vector<AuditEntry> audit;
    ASSERT_OK(c->ReadAudit(0, &audit));
    for (const auto& e : audit) rotated |= e.action == "key.rotate";
    if (!rotated) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(rotated) << "no key.rotate audit entry after 5 s";
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST_F(KeyLifecycleTest, DroppedTenantCannotBeDecryptedFromWhatRemains) {
  auto c = Create();
  ASSERT_OK(c->CreateTenant("acme", TenantOptions()));
  ASSERT_OK(c->CreateTenant("globex", TenantOptions()));
  Fill(c.get(), "acme", 100, "a");
  ASSERT_OK(c->RotateTenantKey("acme", false, nullptr));
  Fill(c.get(), "acme", 100, "b");
  // An attacker's copy of acme's files, taken before the drop.
  const std::string stash = dir_.Sub("stash");
  fs::copy(data_ + "/tenants/acme/db", stash, fs::copy_options::recursive);
  // The wrapped data keys as stored in acme's record.
  std::vector<std::string> wrapped;
  {
    std::unique_ptr<Catalog> catalog;
    ASSERT_OK(Catalog::Load(data_, keys_, &catalog));
    catalogpb::TenantBody body;
    ASSERT_OK(catalog->LoadTenant("acme", &body));
    for (const auto& k : body.keys()) wrapped.push_back(k.wrapped());
  }
  ASSERT_EQ(2u, wrapped.size());
  DropReport report;
  ASSERT_OK(c->DropTenant("acme", &report));
  EXPECT_EQ((std::vector<uint32_t>{1, 2}), report.key_versions_destroyed);
  c.reset();

  // No copy of either wrapped key survives anywhere under the data directory.
  for (const std::string& file : test::ListFilesRecursive(data_)) {
    const std::string bytes = ReadAll(file);
    for (const std::string& w : wrapped) {
      EXPECT_EQ(std::string::npos, bytes.find(w)) << file;
    }
  }
  // And no key the cluster still holds opens the stashed files: put them
  // back under a re-created "acme" (a fresh key) and try to read.
  c = Open(keys_);
  ASSERT_OK(c->CreateTenant("acme", TenantOptions()));
  fs::create_directories(data_ + "/tenants/acme/db");
  fs::copy(stash, data_ + "/tenants/acme/db",
           fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  std::unique_ptr<Tenant> t;
  ASSERT_OK(c->GetTenant("acme", &t));
  std::string v;
  Status s = t->Get(ReadOptions(), "a1", &v);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string::npos, s.ToString().find("key check failed"))
      << s.ToString();
  // globex is untouched by all of this.
  ASSERT_OK(c->GetTenant("globex", &t));
  ASSERT_OK(t->Put(WriteOptions(), "k", "v"));
}

}  // namespace
}  // namespace coffer
