// Copyright (c) Coffer authors.
//
// The catalog survives a process killed in the middle of updating it, and a
// damaged catalog record is reported, never silently replaced.
//
// The crashing process is a real child: the test forks and re-executes its
// own binary with COFFER_CRASH_CHILD set, which makes a static initializer
// below run the child's loop instead of the tests (a clean exec, so the
// child does not inherit the parent's RocksDB threads). The child reports
// each operation on a pipe before it starts ("c"/"q"/"d") and after it
// returned OK ("C"/"Q"/"D"/"P"); the parent SIGKILLs it at a random moment
// and checks that everything reported done is durable.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "coffer/coffer.h"
#include "tests/testutil.h"

namespace coffer::test {
namespace {

// ---- the child --------------------------------------------------------------

void Report(int fd, const std::string& line) {
  std::string l = line + "\n";
  // One write per line (< PIPE_BUF), so lines never interleave or tear.
  ssize_t n = ::write(fd, l.data(), l.size());
  (void)n;
}

[[noreturn]] void ChildMain(const std::string& mode) {
  const char* dir = std::getenv("COFFER_CRASH_DIR");
  const char* key = std::getenv("COFFER_CRASH_KEY");
  const char* fd_text = std::getenv("COFFER_CRASH_FD");
  const char* tag = std::getenv("COFFER_CRASH_TAG");
  if (!dir || !key || !fd_text || !tag) _exit(3);
  const int fd = std::atoi(fd_text);
  std::shared_ptr<KeyProvider> keys;
  Status s = NewFileKeyProvider(key, &keys);
  std::unique_ptr<Cluster> cluster;
  if (s.ok()) s = Cluster::Open(dir, OpenOptions(), keys, &cluster);
  if (!s.ok()) {
    Report(fd, "E open " + s.ToString());
    _exit(2);
  }
  Report(fd, "O");
  std::vector<std::string> tenants = cluster->ListTenants();
  std::mt19937 rng(static_cast<unsigned>(std::atoi(tag) * 7919 + getpid()));
  int created = 0;
  for (int i = 0;; ++i) {
    const int op = static_cast<int>(rng() % 8);
    if (op < 3 && created < 20) {
      const std::string id = "r" + std::string(tag) + "-" + std::to_string(i);
      Report(fd, "c " + id);
      s = cluster->CreateTenant(id, TenantOptions());
      if (!s.ok()) {
        Report(fd, "E create " + id + " " + s.ToString());
        continue;
      }
      Report(fd, "C " + id);
      tenants.push_back(id);
      ++created;
      if (i % 2 == 0) {
        std::unique_ptr<Tenant> t;
        s = cluster->GetTenant(id, &t);
        WriteOptions sync;
        sync.sync = true;
        if (s.ok()) s = t->Put(sync, "k", id);
        if (s.ok()) {
          Report(fd, "P " + id);
        } else {
          Report(fd, "E put " + id + " " + s.ToString());
        }
      }
    } else if (op == 7 && mode == "drop" && tenants.size() > 3) {
      const size_t at = rng() % tenants.size();
      const std::string id = tenants[at];
      Report(fd, "d " + id);
      s = cluster->DropTenant(id, nullptr);
      if (!s.ok()) {
        Report(fd, "E drop " + id + " " + s.ToString());
        continue;
      }
      Report(fd, "D " + id);
      tenants.erase(tenants.begin() + at);
    } else if (!tenants.empty()) {
      const std::string id = tenants[rng() % tenants.size()];
      const uint64_t quota = (1 + rng() % 100000) * 4096;
      Report(fd, "q " + id + " " + std::to_string(quota));
      s = cluster->SetTenantQuota(id, quota);
      if (!s.ok()) {
        Report(fd, "E quota " + id + " " + s.ToString());
        continue;
      }
      Report(fd, "Q " + id + " " + std::to_string(quota));
    }
  }
}

int MaybeRunChild() {
  const char* mode = std::getenv("COFFER_CRASH_CHILD");
  if (mode != nullptr) ChildMain(mode);
  return 0;
}

[[maybe_unused]] const int kChildHook = MaybeRunChild();

// ---- the parent -------------------------------------------------------------

// A running child process and the lines it reported.
class Child {
 public:
  Child(const std::string& mode, const std::string& dir, const std::string& key,
        int tag) {
    int fds[2];
    if (::pipe(fds) != 0) std::abort();
    // Everything execve needs is built before fork: the parent may have
    // threads, so the child calls nothing but execve and _exit.
    std::vector<std::string> env_strings = {
        "COFFER_CRASH_CHILD=" + mode, "COFFER_CRASH_DIR=" + dir,
        "COFFER_CRASH_KEY=" + key, "COFFER_CRASH_FD=" + std::to_string(fds[1]),
        "COFFER_CRASH_TAG=" + std::to_string(tag)};
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::strncmp(*e, "COFFER_CRASH_", 13) != 0) env_strings.push_back(*e);
    }
    std::vector<char*> envp;
    for (std::string& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::string self = "/proc/self/exe";
    std::string arg0 = "catalog_crash_child";
    char* argv[] = {arg0.data(), nullptr};
    pid_ = ::fork();
    if (pid_ < 0) std::abort();
    if (pid_ == 0) {
      ::close(fds[0]);
      ::execve(self.c_str(), argv, envp.data());
      _exit(127);
    }
    ::close(fds[1]);
    fd_ = fds[0];
  }
  ~Child() {
    if (pid_ > 0) Kill();
    if (fd_ >= 0) ::close(fd_);
  }

  // Reads what the child wrote for up to `ms` milliseconds, or until EOF.
  // Returns false at EOF.
  bool Drain(int ms) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (true) {
      int left = static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(
              deadline - std::chrono::steady_clock::now())
              .count());
      if (left < 0) left = 0;
      pollfd p{fd_, POLLIN, 0};
      int r = ::poll(&p, 1, left);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return true;
      char buf[4096];
      ssize_t n = ::read(fd_, buf, sizeof(buf));
      if (n <= 0) return false;
      out_.append(buf, static_cast<size_t>(n));
      if (left == 0) return true;
    }
  }

  // Waits (up to 20 s) for the child to report that it opened the cluster.
  bool WaitOpened() {
    for (int i = 0; i < 400; ++i) {
      if (out_.rfind("O\n", 0) == 0) return true;
      if (!Drain(50)) return out_.rfind("O\n", 0) == 0;
    }
    return false;
  }

  // SIGKILL, reap, and read the rest. Returns the wait status.
  int Kill() {
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    while (Drain(1000)) {
    }
    return status;
  }

  std::vector<std::string> Lines() const {
    std::vector<std::string> lines;
    std::istringstream in(out_);
    std::string line;
    // A last line without '\n' was cut by the kill; ignore it.
    while (std::getline(in, line)) {
      if (!in.eof()) lines.push_back(line);
    }
    return lines;
  }
  const std::string& output() const { return out_; }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string out_;
};

// What the parent knows each tenant must look like.
struct Expected {
  std::optional<uint64_t> quota;     // last SetTenantQuota that returned
                                     // (none: no override)
  std::optional<uint64_t> inflight;  // one that may or may not have landed
  bool has_value = false;            // "k" was written with sync
};

class CatalogCrashTest : public ClusterTest {
 protected:
  void SetUp() override {
    ClusterTest::SetUp();
    // The cluster is created, then closed, before any child runs.
    ASSERT_OK(CreateCluster());
    ASSERT_OK(cluster_->CreateTenant("seed-a", TenantOptions()));
    ASSERT_OK(cluster_->CreateTenant("seed-b", TenantOptions()));
    cluster_.reset();
    expected_["seed-a"];
    expected_["seed-b"];
  }

  // Runs one child, kills it after a random 50-500 ms, then checks the
  // cluster in this process.
  void CrashOnce(const std::string& mode, int round, std::mt19937& rng) {
    Child child(mode, data_dir_, key_path_, round);
    ASSERT_TRUE(child.WaitOpened())
        << "child did not open the cluster: " << child.output();
    // While the child lives, the directory is Busy for us.
    {
      std::unique_ptr<Cluster> second;
      Status busy = Cluster::Open(data_dir_, OpenOptions(), keys_, &second);
      EXPECT_TRUE(busy.IsBusy()) << busy.ToString();
    }
    const int delay_ms = 50 + static_cast<int>(rng() % 451);
    child.Drain(delay_ms);
    const int wstatus = child.Kill();
    ASSERT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL)
        << "child ended by itself: " << child.output();

    // Replay the child's log into what must hold now.
    std::set<std::string> created, maybe_created, dropped, maybe_dropped;
    std::string last_started;  // the last op begun, maybe unfinished
    int errors = 0;
    int ops = 0;
    for (const std::string& line : child.Lines()) {
      if (line.empty() || line == "O") continue;
      const char kind = line[0];
      std::istringstream fields(line.substr(2));
      std::string id;
      fields >> id;
      if (kind == 'E') {
        if (errors++ < 5) ADD_FAILURE() << "child: " << line;
        continue;
      }
      ++ops;
      if (kind == 'c') {
        maybe_created.insert(id);
      } else if (kind == 'C') {
        maybe_created.erase(id);
        created.insert(id);
        expected_[id] = Expected();
      } else if (kind == 'P') {
        expected_[id].has_value = true;
      } else if (kind == 'q') {
        uint64_t q = 0;
        fields >> q;
        expected_[id].inflight = q;
      } else if (kind == 'Q') {
        uint64_t q = 0;
        fields >> q;
        expected_[id].quota = q;
        expected_[id].inflight.reset();
      } else if (kind == 'd') {
        maybe_dropped.insert(id);
      } else if (kind == 'D') {
        maybe_dropped.erase(id);
        dropped.insert(id);
        created.erase(id);
        expected_.erase(id);
      }
    }
    total_ops_ += ops;
    const std::string when = "round " + std::to_string(round);
    for (const std::string& id : created) history_[id] += when + ": created; ";
    for (const std::string& id : dropped) history_[id] += when + ": dropped; ";
    for (const std::string& id : maybe_created) {
      history_[id] += when + ": killed while creating; ";
    }
    for (const std::string& id : maybe_dropped) {
      history_[id] += when + ": killed while dropping; ";
    }

    const auto verify_start = std::chrono::steady_clock::now();
    std::unique_ptr<Cluster> cluster;
    Status s = Cluster::Open(data_dir_, OpenOptions(), keys_, &cluster);
    ASSERT_TRUE(s.ok()) << "round " << round << " (killed after " << delay_ms
                        << " ms, " << ops << " ops): " << s.ToString();
    const std::vector<std::string> listed = cluster->ListTenants();
    const std::set<std::string> listed_set(listed.begin(), listed.end());
    for (const std::string& id : created) {
      if (maybe_dropped.count(id) != 0) continue;
      EXPECT_EQ(listed_set.count(id), 1u)
          << "round " << round << ": tenant " << id
          << " was created (CreateTenant returned OK) but is gone";
    }
    for (const std::string& id : dropped) {
      EXPECT_EQ(listed_set.count(id), 0u)
          << "round " << round << ": dropped tenant " << id << " is back";
    }
    for (const auto& [id, want] : expected_) {
      if (maybe_dropped.count(id) != 0) continue;
      EXPECT_EQ(listed_set.count(id), 1u)
          << "round " << round << ": tenant " << id << " is missing";
    }
    // Every tenant listed is whole: describable, readable, writable.
    for (const std::string& id : listed) {
      const bool known = expected_.count(id) != 0;
      EXPECT_TRUE(known || maybe_created.count(id) != 0)
          << "round " << round << ": unexpected tenant " << id;
      TenantInfo info;
      Status d = cluster->DescribeTenant(id, &info);
      EXPECT_TRUE(d.ok()) << "round " << round << ": DescribeTenant " << id
                          << ": " << d.ToString();
      if (d.ok() && known) {
        // The quota is the last acknowledged one (no override if none was
        // acknowledged), or the one in flight when the child died.
        const Expected& want = expected_[id];
        const bool as_acknowledged =
            want.quota.has_value()
                ? (info.quota_overridden && info.quota == *want.quota)
                : !info.quota_overridden;
        const bool as_inflight = want.inflight.has_value() &&
                                 info.quota_overridden &&
                                 info.quota == *want.inflight;
        EXPECT_TRUE(as_acknowledged || as_inflight)
            << "round " << round << ": tenant " << id << " quota " << info.quota
            << (info.quota_overridden ? " (override)" : "") << ", acknowledged "
            << (want.quota ? std::to_string(*want.quota) : "none")
            << ", in flight "
            << (want.inflight ? std::to_string(*want.inflight) : "none");
      }
      std::unique_ptr<Tenant> t;
      Status g = cluster->GetTenant(id, &t);
      if (!g.ok()) {
        ADD_FAILURE() << "round " << round << ": GetTenant " << id << ": "
                      << g.ToString();
        continue;
      }
      if (known && expected_[id].has_value) {
        EXPECT_EQ(GetValue(t.get(), "k"), id)
            << "round " << round << ": synced write lost";
      }
      const std::string probe = "probe" + std::to_string(round);
      EXPECT_OK(t->Put(WriteOptions(), probe, id));
      EXPECT_EQ(GetValue(t.get(), probe), id) << "round " << round;
    }
    // Tenants that ended up existing after an unfinished create or drop are
    // known from now on; unfinished drops that did complete are forgotten.
    for (const std::string& id : maybe_created) {
      if (listed_set.count(id) != 0) expected_[id];
    }
    for (const std::string& id : maybe_dropped) {
      if (listed_set.count(id) == 0) expected_.erase(id);
    }
    if (std::getenv("COFFER_TEST_VERBOSE") != nullptr) {
      std::printf(
          "[ round %d ] killed after %d ms, %d ops, %zu tenants, "
          "verified in %.0f ms\n",
          round, delay_ms, ops, listed.size(),
          std::chrono::duration<double, std::milli>(
              std::chrono::steady_clock::now() - verify_start)
              .count());
    }
    for (auto& [id, want] : expected_) {
      if (want.inflight.has_value()) {
        TenantInfo info;
        if (cluster->DescribeTenant(id, &info).ok()) {
          want.quota =
              info.quota_overridden ? std::optional(info.quota) : std::nullopt;
        }
        want.inflight.reset();
      }
    }
  }

  std::map<std::string, Expected> expected_;
  std::map<std::string, std::string> history_;  // id -> what happened to it
  int total_ops_ = 0;
};

TEST_F(CatalogCrashTest, KilledDuringCreateAndQuotaChanges) {
  std::mt19937 rng(std::random_device{}());
  for (int round = 0; round < 10; ++round) {
    ASSERT_NO_FATAL_FAILURE(CrashOnce("churn", round, rng));
  }
  std::printf(
      "[ info     ] %d acknowledged/started child operations, %zu "
      "tenants\n",
      total_ops_, expected_.size());
  EXPECT_GT(total_ops_, 50) << "the child hardly ran; the test proves little";
}

TEST_F(CatalogCrashTest, KilledDuringDrops) {
  std::mt19937 rng(std::random_device{}());
  for (int round = 0; round < 8; ++round) {
    ASSERT_NO_FATAL_FAILURE(CrashOnce("drop", round, rng));
  }
  // Nothing of a dropped tenant is left behind on disk after recovery.
  std::unique_ptr<Cluster> cluster;
  ASSERT_OK(Cluster::Open(data_dir_, OpenOptions(), keys_, &cluster));
  const std::vector<std::string> listed = cluster->ListTenants();
  const std::set<std::string> listed_set(listed.begin(), listed.end());
  namespace fs = std::filesystem;
  std::vector<std::string> leftovers;
  for (const auto& entry : fs::directory_iterator(data_dir_ + "/tenants")) {
    const std::string name = entry.path().filename().string();
    if (listed_set.count(name) != 0) continue;
    leftovers.push_back(name);
    std::string contents;
    for (const std::string& e : ListTreeRecursive(entry.path().string())) {
      contents += e + " ";
    }
    ADD_FAILURE() << "leftover directory tenants/" << name
                  << " of a tenant that is not listed; history: "
                  << history_[name] << "contents: [" << contents << "]";
  }
  // Whatever is left over must not get in the way of the id's reuse: a
  // tenant created again under that id works and is empty.
  for (const std::string& name : leftovers) {
    Status s = cluster->CreateTenant(name, TenantOptions());
    EXPECT_TRUE(s.ok()) << "re-creating " << name << ": " << s.ToString();
    if (!s.ok()) continue;
    std::unique_ptr<Tenant> t;
    ASSERT_OK(cluster->GetTenant(name, &t));
    EXPECT_EQ(GetValue(t.get(), "k"), "NOT_FOUND") << name;
    EXPECT_TRUE(ScanAll(t.get()).empty()) << name;
    EXPECT_OK(t->Put(WriteOptions(), "k", "reborn"));
    EXPECT_EQ(GetValue(t.get(), "k"), "reborn");
  }
}

// ---- damaged records --------------------------------------------------------

class CorruptRecordTest : public ClusterTest {
 protected:
  void SetUp() override {
    ClusterTest::SetUp();
    ASSERT_OK(CreateCluster());
    for (const char* id : {"alpha", "bravo", "charlie"}) {
      ASSERT_OK(cluster_->CreateTenant(id, TenantOptions()));
      std::unique_ptr<Tenant> t;
      ASSERT_OK(cluster_->GetTenant(id, &t));
      ASSERT_OK(t->Put(WriteOptions(), "k", std::string("v-") + id));
    }
    ASSERT_OK(cluster_->SetTenantQuota("bravo", 1 << 20));
    cluster_.reset();
  }

  // Opens the cluster and checks all three tenants.
  void ExpectHealthy() {
    ASSERT_OK(ReopenCluster());
    for (const char* id : {"alpha", "bravo", "charlie"}) {
      std::unique_ptr<Tenant> t;
      ASSERT_OK(cluster_->GetTenant(id, &t));
      EXPECT_EQ(GetValue(t.get(), "k"), std::string("v-") + id);
    }
    cluster_.reset();
  }
};

TEST_F(CorruptRecordTest, DamagedClusterRecordIsCorruptionAndKept) {
  const std::string path = data_dir_ + "/CLUSTER";
  const std::string good = ReadFileBytes(path);
  ASSERT_GT(good.size(), 16u);
  struct Damage {
    const char* name;
    std::string bytes;
  };
  std::string flipped = good;
  flipped[good.size() / 2] ^= 0x01;
  std::vector<Damage> damages = {
      {"flip middle byte", flipped},
      {"truncate to half", good.substr(0, good.size() / 2)},
      {"truncate last byte", good.substr(0, good.size() - 1)},
      {"truncate to empty", ""},
      {"append a byte", good + "x"},
  };
  for (const Damage& d : damages) {
    WriteFileBytes(path, d.bytes);
    const FileTree before = ReadTree(data_dir_);
    std::unique_ptr<Cluster> cluster;
    Status s = Cluster::Open(data_dir_, OpenOptions(), keys_, &cluster);
    EXPECT_TRUE(s.IsCorruption()) << d.name << ": " << s.ToString();
    EXPECT_EQ(cluster, nullptr);
    EXPECT_NE(s.message().find("CLUSTER"), std::string::npos)
        << d.name << ": the message should name the file: " << s.ToString();
    EXPECT_TRUE(ReadFileBytes(path) == d.bytes)
        << d.name << ": the damaged CLUSTER file was modified or replaced";
    // Nothing else is touched either (an audit entry for the failed open is
    // allowed).
    EXPECT_EQ(DiffTrees(before, ReadTree(data_dir_), kAuditFiles), "")
        << d.name;
  }
  WriteFileBytes(path, good);
  ExpectHealthy();
}

TEST_F(CorruptRecordTest, EveryFlippedByteOfClusterRecordIsDetected) {
  const std::string path = data_dir_ + "/CLUSTER";
  const std::string good = ReadFileBytes(path);
  ASSERT_FALSE(good.empty());
  const size_t step = std::max<size_t>(1, good.size() / 512);
  std::map<std::string, std::vector<size_t>> by_outcome;
  for (size_t at = 0; at < good.size(); at += step) {
    std::string bad = good;
    bad[at] ^= 0x20;
    WriteFileBytes(path, bad);
    std::unique_ptr<Cluster> cluster;
    Status s = Cluster::Open(data_dir_, OpenOptions(), keys_, &cluster);
    cluster.reset();
    if (!s.IsCorruption()) {
      by_outcome[Status::CodeName(s.code())].push_back(at);
    }
    ASSERT_TRUE(ReadFileBytes(path) == bad) << "byte " << at << ": replaced";
  }
  for (const auto& [code, offsets] : by_outcome) {
    std::string list;
    for (size_t i = 0; i < offsets.size() && i < 20; ++i) {
      list += std::to_string(offsets[i]) + " ";
    }
    ADD_FAILURE() << offsets.size() << " flipped byte(s) of " << good.size()
                  << " gave " << code << " instead of Corruption, at offsets "
                  << list;
  }
  WriteFileBytes(path, good);
  ExpectHealthy();
}

// A damaged TENANT record is reported as Corruption naming the tenant. The
// engine may refuse to open the cluster, or (better) open it and fail only
// that tenant; either way the other tenants' data is intact and the record
// is left as it is.
void CheckDamagedTenantRecord(const std::string& data_dir,
                              std::shared_ptr<KeyProvider> keys,
                              const std::string& damaged) {
  const std::string path = data_dir + "/tenants/bravo/TENANT";
  std::unique_ptr<Cluster> cluster;
  Status s = Cluster::Open(data_dir, OpenOptions(), keys, &cluster);
  if (!s.ok()) {
    EXPECT_TRUE(s.IsCorruption()) << s.ToString();
    EXPECT_NE(s.message().find("bravo"), std::string::npos) << s.ToString();
    std::printf("[ info     ] damaged TENANT record: Open fails: %s\n",
                s.ToString().c_str());
  } else {
    std::printf("[ info     ] damaged TENANT record: Open succeeds\n");
    for (const char* id : {"alpha", "charlie"}) {
      std::unique_ptr<Tenant> t;
      ASSERT_OK(cluster->GetTenant(id, &t));
      EXPECT_EQ(GetValue(t.get(), "k"), std::string("v-") + id);
      EXPECT_OK(t->Put(WriteOptions(), "k2", "ok"));
      TenantInfo info;
      EXPECT_OK(cluster->DescribeTenant(id, &info));
    }
    TenantInfo info;
    Status d = cluster->DescribeTenant("bravo", &info);
    std::printf("[ info     ] DescribeTenant(bravo): %s\n",
                d.ToString().c_str());
    if (!d.ok()) {
      EXPECT_TRUE(d.IsCorruption()) << d.ToString();
      EXPECT_NE(d.message().find("bravo"), std::string::npos) << d.ToString();
    }
    std::unique_ptr<Tenant> t;
    Status g = cluster->GetTenant("bravo", &t);
    std::printf("[ info     ] GetTenant(bravo): %s\n", g.ToString().c_str());
    Status access = g;
    if (g.ok()) {
      std::string value;
      access = t->Get(ReadOptions(), "k", &value);
      std::printf("[ info     ] Get through handle: %s\n",
                  access.ToString().c_str());
      EXPECT_NE(value, "v-bravo") << "data read through a damaged record";
      Status put = t->Put(WriteOptions(), "k3", "v");
      EXPECT_FALSE(put.ok()) << "write accepted through a damaged record";
      t.reset();
    }
    EXPECT_TRUE(access.IsCorruption()) << access.ToString();
    EXPECT_NE(access.message().find("bravo"), std::string::npos)
        << access.ToString();
    // The tenant is still listed (it is damaged, not gone).
    const std::vector<std::string> listed = cluster->ListTenants();
    EXPECT_NE(std::find(listed.begin(), listed.end(), "bravo"), listed.end());
    cluster.reset();
  }
  EXPECT_TRUE(ReadFileBytes(path) == damaged)
      << "the damaged TENANT record was modified or replaced";
}

TEST_F(CorruptRecordTest, DamagedTenantRecordIsReportedForThatTenant) {
  const std::string path = TenantDir("bravo") + "/TENANT";
  const std::string good = ReadFileBytes(path);
  ASSERT_GT(good.size(), 16u);
  std::string flipped = good;
  flipped[good.size() / 2] ^= 0x01;
  for (const std::string& damaged :
       {flipped, good.substr(0, good.size() / 2), std::string()}) {
    SCOPED_TRACE("damaged record of " + std::to_string(damaged.size()) +
                 " bytes");
    WriteFileBytes(path, damaged);
    ASSERT_NO_FATAL_FAILURE(
        CheckDamagedTenantRecord(data_dir_, keys_, damaged));
  }
  WriteFileBytes(path, good);
  ExpectHealthy();
}

}  // namespace
}  // namespace coffer::test
