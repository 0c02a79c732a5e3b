// Copyright (c) Coffer authors.
//
// `coffer demo`: shows, with real checks, what Coffer promises. It creates a
// cluster with three tenants in a scratch directory, writes and reads through
// the library API, and checks tenant isolation, quotas, encryption at rest
// (no plaintext in any file), the wrong-key refusal, the directory lock, the
// key lifecycle (rekey, master-key rotation, revocation), the audit trail,
// and replication to a passive replica daemon on loopback.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "coffer/cluster.h"
#include "coffer/key_provider.h"
#include "coffer/replication.h"
#include "tools/cli_common.h"
#include "tools/commands.h"
#include "tools/demo_certs.h"
#include "tools/plaintext_scan.h"

extern char** environ;

namespace coffer::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kTenants[] = {"acme", "globex", "initech"};
constexpr const char* kSmallTenant = "initech";
constexpr uint64_t kSmallQuota = 64 << 10;
constexpr int kRecordsPerTenant = 200;
constexpr int kMaxQuotaWrites = 10000;  // gives up: the quota never hit
constexpr size_t kBulkValueSize = 1024;
constexpr int kLogOnlyRecords = 20;
constexpr size_t kPiece = 32;
constexpr const char* kSharedKey = "config/plan";
constexpr int kShippedRecords = 500;  // per tenant, written while shipping

using Records = std::map<std::string, std::string>;

// Runs `argv` with stdout discarded; returns its exit status (or -1) and
// its standard error in *err.
int RunChild(const std::vector<std::string>& args, std::string* err) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  posix_spawn_file_actions_addclose(&actions, fds[1]);
  std::vector<char*> argv;
  for (const std::string& arg : args) {
    argv.push_back(const_cast<char*>(arg.c_str()));
  }
  argv.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc == 0) {
    char buf[4096];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof(buf))) > 0) err->append(buf, n);
  }
  close(fds[0]);
  int wstatus = 0;
  if (rc != 0 || waitpid(pid, &wstatus, 0) != pid || !WIFEXITED(wstatus)) {
    return -1;
  }
  return WEXITSTATUS(wstatus);
}

class Demo {
 public:
  explicit Demo(std::string root)
      : root_(std::move(root)),
        data_dir_(root_ + "/data"),
        key_file_(root_ + "/keys/master.key"),
        new_key_file_(root_ + "/keys/master-2.key"),
        rng_(std::random_device()()) {}

  // Runs the steps in order; stops at the first that fails. Closes the
  // cluster before returning.
  bool Run() {
    const bool passed = GenerateKey() && CreateCluster() && CreateTenants() &&
                        WriteAndRead() && CheckIsolation() && CheckQuota() &&
                        FlushAndCompact() && CheckNoPlaintext() &&
                        CheckWrongKey() && CheckBusy() && RekeyTenant() &&
                        RotateMasterKey() && RevokeTenant() && ShowAudit() &&
                        TamperAudit() && StartReplica() && ShipToReplica() &&
                        CheckReplica() && RegionOutage() && PromoteReplica() &&
                        VerifyNewPrimary() && RejoinOldPrimary() &&
                        FinalScan();
    cluster_.reset();
    StopReplicaDaemon();
    return passed;
  }
  ~Demo() {
    StopReplicaDaemon();
    if (workload_pid_ > 0) {
      kill(workload_pid_, SIGKILL);
      waitpid(workload_pid_, nullptr, 0);
    }
  }
  int steps() const { return step_; }
  const std::string& failure() const { return failure_; }

 private:
  void Step(const std::string& title) {
    std::printf("\n%d. %s\n", ++step_, title.c_str());
  }
  void Note(const std::string& text) { std::printf("   %s\n", text.c_str()); }
  bool Failed(const std::string& what) {
    failure_ = "step " + std::to_string(step_) + ": " + what;
    std::printf("   FAILED: %s\n", what.c_str());
    return false;
  }
  bool Failed(const std::string& what, const Status& s) {
    return Failed(what + ": " + s.ToString());
  }

  std::string RandomHex(size_t n) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out(n, '0');
    for (char& c : out) c = kHex[rng_() & 15];
    return out;
  }

  // Returns `text` followed by a random token, and remembers the value, the
  // token and, as a log may split a long value, each kPiece bytes of the
  // token, as strings that must never appear in a file.
  std::string SecretValue(const std::string& text, size_t token_size) {
    const std::string token = RandomHex(token_size);
    needles_.push_back(text + token);
    needles_.push_back(token);
    for (size_t i = 0; token.size() > kPiece && i < token.size(); i += kPiece) {
      needles_.push_back(token.substr(i, kPiece));
    }
    return text + token;
  }

  Status Open(std::shared_ptr<KeyProvider> keys) {
    return Cluster::Open(data_dir_, ToolOpenOptions(), std::move(keys),
                         &cluster_);
  }

  bool GetTenant(const std::string& id, std::unique_ptr<Tenant>* tenant) {
    Status s = cluster_->GetTenant(id, tenant);
    return s.ok() || Failed("open tenant " + id, s);
  }

  // Reads back every record written to `ids`; counts those unchanged.
  bool ReadBack(const std::vector<std::string>& ids, size_t* intact,
                size_t* total) {
    *intact = 0;
    *total = 0;
    for (const std::string& id : ids) {
      std::unique_ptr<Tenant> tenant;
      if (!GetTenant(id, &tenant)) return false;
      for (const auto& [key, value] : records_[id]) {
        std::string read;
        ++*total;
        if (tenant->Get(ReadOptions(), key, &read).ok() && read == value) {
          ++*intact;
        }
      }
    }
    return true;
  }

  bool GenerateKey() {
    Step("Generate a master key outside the data directory");
    std::error_code ec;
    fs::create_directories(root_ + "/keys", ec);
    if (ec) return Failed("create " + root_ + "/keys: " + ec.message());
    Status s = GenerateKeyFile(key_file_);
    if (s.ok()) s = NewFileKeyProvider(key_file_, &keys_);
    if (!s.ok()) return Failed("generate " + key_file_, s);
    struct stat st;
    if (stat(key_file_.c_str(), &st) != 0) return Failed("stat " + key_file_);
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", st.st_mode & 07777);
    Note(key_file_ + ": " + std::to_string(st.st_size) + " bytes, mode " +
         mode);
    if ((st.st_mode & 0777) != 0600) return Failed("key file mode is not 0600");
    return true;
  }

  bool CreateCluster() {
    Step("Create cluster 'demo' (region eu-west-1, geography eu)");
    ClusterOptions options;
    options.cluster_id = "demo";
    options.region = "eu-west-1";
    options.geography = "eu";
    Status s = Cluster::Create(data_dir_, options, ToolOpenOptions(), keys_,
                               &cluster_);
    if (!s.ok()) return Failed("create cluster in " + data_dir_, s);
    const ClusterInfo info = cluster_->Describe();
    Note("data directory " + data_dir_ + ", role " + info.role + ", epoch " +
         std::to_string(info.epoch) + ", up to " +
         std::to_string(info.limits.max_tenants) + " tenants of " +
         FormatBytes(info.limits.default_tenant_quota) + " each");
    return true;
  }

  bool CreateTenants() {
    Step("Create three tenants, each with its own data key");
    for (const char* id : kTenants) {
      TenantOptions options;
      if (std::string(id) == kSmallTenant) options.quota = kSmallQuota;
      Status s = cluster_->CreateTenant(id, options);
      if (!s.ok()) return Failed("create tenant " + std::string(id), s);
      TenantInfo info;
      s = cluster_->DescribeTenant(id, &info);
      if (!s.ok()) return Failed("describe tenant " + std::string(id), s);
      Note(std::string(id) + ": data key version " +
           std::to_string(info.key_version) + ", quota " +
           FormatBytes(info.quota));
    }
    const size_t listed = cluster_->ListTenants().size();
    Note("the cluster lists " + std::to_string(listed) + " tenants");
    if (listed != std::size(kTenants)) return Failed("wrong tenant count");
    return true;
  }

  bool WriteAndRead() {
    Step("Write " + std::to_string(kRecordsPerTenant + 1) +
         " records to each tenant and read them back");
    for (const char* id : kTenants) {
      std::unique_ptr<Tenant> tenant;
      if (!GetTenant(id, &tenant)) return false;
      Records& records = records_[id];
      records[kSharedKey] = SecretValue(std::string(id) + " plan ", 16);
      for (int i = 0; i < kRecordsPerTenant; ++i) {
        char key[64];
        std::snprintf(key, sizeof(key), "customer/%s-%05d", id, i);
        needles_.push_back(key);
        records[key] =
            SecretValue(std::string(id) + " confidential record ", 24);
      }
      for (const auto& [key, value] : records) {
        Status s = tenant->Put(WriteOptions(), key, value);
        if (!s.ok()) return Failed("put to " + std::string(id), s);
      }
      size_t matched = 0;
      for (const auto& [key, value] : records) {
        std::string read;
        Status s = tenant->Get(ReadOptions(), key, &read);
        if (!s.ok()) return Failed("get from " + std::string(id), s);
        if (read == value) ++matched;
      }
      Note(std::string(id) + ": wrote " + std::to_string(records.size()) +
           ", read back " + std::to_string(matched) + " identical");
      if (matched != records.size()) return Failed("a value read back differs");
    }
    return true;
  }

  bool CheckIsolation() {
    Step("Check that tenants are isolated from each other");
    for (const char* id : kTenants) {
      std::unique_ptr<Tenant> tenant;
      if (!GetTenant(id, &tenant)) return false;
      std::string value;
      Status s = tenant->Get(ReadOptions(), kSharedKey, &value);
      if (!s.ok()) return Failed("get " + std::string(kSharedKey), s);
      Note(std::string(id) + ": '" + kSharedKey + "' = '" + value + "'");
      if (value != records_[id][kSharedKey]) {
        return Failed("tenant " + std::string(id) + " sees another value");
      }
      size_t own = 0;
      size_t foreign = 0;
      std::unique_ptr<Iterator> it = tenant->NewIterator(ReadOptions());
      for (it->SeekToFirst(); it->Valid(); it->Next()) {
        const auto found = records_[id].find(std::string(it->key()));
        if (found != records_[id].end() && found->second == it->value()) {
          ++own;
        } else {
          ++foreign;
        }
      }
      if (!it->status().ok()) {
        return Failed("scan " + std::string(id), it->status());
      }
      Note(std::string(id) + ": a full scan sees " + std::to_string(own) +
           " of its own keys and " + std::to_string(foreign) + " others");
      if (own != records_[id].size() || foreign != 0) {
        return Failed("scan of " + std::string(id) + " is not its own data");
      }
    }
    std::unique_ptr<Tenant> globex;
    if (!GetTenant("globex", &globex)) return false;
    std::string value;
    Status s = globex->Get(ReadOptions(), "customer/acme-00001", &value);
    Note("globex: Get('customer/acme-00001'), a key of acme -> " +
         (s.ok() ? std::string("found") : s.ToString()));
    if (!s.IsNotFound()) return Failed("globex can read a key of acme");
    return true;
  }

  bool CheckQuota() {
    Step("Fill tenant " + std::string(kSmallTenant) + " up to its " +
         FormatBytes(kSmallQuota) + " quota");
    std::unique_ptr<Tenant> tenant;
    if (!GetTenant(kSmallTenant, &tenant)) return false;
    Records& records = records_[kSmallTenant];
    Status s;
    std::string key;
    int accepted = 0;
    for (; accepted < kMaxQuotaWrites; ++accepted) {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "bulk/%05d", accepted);
      key = buf;
      const std::string prefix = "initech bulk " + key + " ";
      const std::string value =
          SecretValue(prefix, kBulkValueSize - prefix.size());
      s = tenant->Put(WriteOptions(), key, value);
      if (!s.ok()) break;
      records[key] = value;
    }
    Note("accepted " + std::to_string(accepted) + " writes of " +
         FormatBytes(kBulkValueSize) + ", then: " + s.ToString());
    if (!s.IsQuotaExceeded()) return Failed("expected QuotaExceeded");
    std::string value;
    s = tenant->Get(ReadOptions(), key, &value);
    Note("the rejected write stored nothing: Get('" + key + "') -> " +
         s.ToString());
    if (!s.IsNotFound()) return Failed("the rejected value was stored");
    const std::string victim = "bulk/00000";
    s = tenant->Delete(WriteOptions(), victim);
    Note("Delete('" + victim + "') with the quota full -> " + s.ToString());
    if (!s.ok()) return Failed("delete over quota", s);
    s = tenant->Get(ReadOptions(), victim, &value);
    if (!s.IsNotFound()) return Failed("the deleted key is still there");
    records.erase(victim);
    std::unique_ptr<Tenant> acme;
    if (!GetTenant("acme", &acme)) return false;
    const std::string other = SecretValue("acme after the quota test ", 16);
    s = acme->Put(WriteOptions(), "after-quota", other);
    Note("acme is unaffected: Put -> " + s.ToString());
    if (!s.ok()) return Failed("put to acme", s);
    records_["acme"]["after-quota"] = other;
    return true;
  }

  bool FlushAndCompact() {
    Step("Flush and compact every tenant into table files");
    for (const char* id : kTenants) {
      std::unique_ptr<Tenant> tenant;
      if (!GetTenant(id, &tenant)) return false;
      Status s = tenant->Flush();
      if (s.ok()) s = tenant->Compact();
      if (!s.ok()) return Failed("flush and compact " + std::string(id), s);
      TenantInfo info;
      s = cluster_->DescribeTenant(id, &info);
      if (!s.ok()) return Failed("describe tenant " + std::string(id), s);
      Note(std::string(id) + ": " + FormatBytes(info.used_bytes) + " on disk");
    }
    size_t tables = 0;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(data_dir_, ec), end;
         !ec && it != end; it.increment(ec)) {
      if (it->path().extension() == ".sst") ++tables;
    }
    Note(std::to_string(tables) + " table files under " + data_dir_);
    if (tables < std::size(kTenants)) return Failed("too few table files");
    for (const char* id : {"acme", "globex"}) {
      std::unique_ptr<Tenant> tenant;
      if (!GetTenant(id, &tenant)) return false;
      for (int i = 0; i < kLogOnlyRecords; ++i) {
        const std::string key = "late/" + std::to_string(i);
        const std::string value =
            SecretValue(std::string(id) + " written after the flush ", 24);
        Status s = tenant->Put(WriteOptions(), key, value);
        if (!s.ok()) return Failed("put to " + std::string(id), s);
        records_[id][key] = value;
      }
    }
    Note("then wrote " + std::to_string(kLogOnlyRecords) +
         " more records each to acme and globex, held only in their "
         "write-ahead logs");
    return true;
  }

  // Closes the cluster and searches every file for what was written.
  bool ScanClosed(const std::string& when) {
    cluster_.reset();
    PlaintextScan scan;
    Status s = ScanForPlaintext(data_dir_, needles_, &scan);
    if (!s.ok()) return Failed("scan " + data_dir_, s);
    Note(when + ": read " + std::to_string(scan.files) + " files (" +
         FormatBytes(scan.bytes) + ") looking for " +
         std::to_string(needles_.size()) + " keys, values and value tokens");
    Note(std::to_string(scan.hits.size()) + " files contain plaintext");
    for (const std::string& hit : scan.hits) Note("  plaintext in " + hit);
    if (scan.files == 0) return Failed("no files scanned");
    if (!scan.hits.empty()) return Failed("plaintext found at rest");
    return true;
  }

  bool CheckNoPlaintext() {
    Step("Search every byte under the data directory for plaintext");
    if (!ScanClosed("cluster closed")) return false;
    // Control: the same search must find the same data written unencrypted.
    const std::string control_dir = root_ + "/plaintext-control";
    OpenOptions options = ToolOpenOptions();
    options.plaintext_for_benchmarks = true;
    ClusterOptions copts;
    copts.cluster_id = "control";
    copts.region = "eu-west-1";
    copts.geography = "eu";
    std::unique_ptr<Cluster> control;
    std::unique_ptr<Tenant> tenant;
    Status s = Cluster::Create(control_dir, copts, options, keys_, &control);
    if (s.ok()) s = control->CreateTenant("acme", TenantOptions());
    if (s.ok()) s = control->GetTenant("acme", &tenant);
    for (const auto& [key, value] : records_["acme"]) {
      if (s.ok()) s = tenant->Put(WriteOptions(), key, value);
    }
    if (s.ok()) s = tenant->Flush();
    if (s.ok()) s = tenant->Compact();
    tenant.reset();
    control.reset();
    if (!s.ok()) return Failed("write the unencrypted control cluster", s);
    PlaintextScan scan;
    s = ScanForPlaintext(control_dir, needles_, &scan);
    if (!s.ok()) return Failed("scan " + control_dir, s);
    Note(
        "control: the same search over acme's data written with encryption "
        "off finds plaintext in " +
        std::to_string(scan.hits.size()) + " of " + std::to_string(scan.files) +
        " files");
    if (scan.hits.empty()) return Failed("the search cannot see plaintext");
    fs::remove_all(control_dir);
    return true;
  }

  bool CheckWrongKey() {
    Step("Open the cluster with a different master key");
    const std::string wrong_file = root_ + "/keys/other.key";
    std::shared_ptr<KeyProvider> wrong;
    Status s = GenerateKeyFile(wrong_file);
    if (s.ok()) s = NewFileKeyProvider(wrong_file, &wrong);
    if (!s.ok()) return Failed("generate " + wrong_file, s);
    s = Open(wrong);
    Note("with " + wrong_file + " -> " + s.ToString());
    if (!s.IsWrongKey()) return Failed("expected WrongKey");
    s = Open(keys_);
    if (!s.ok()) return Failed("reopen with the right key", s);
    size_t intact = 0;
    size_t total = 0;
    if (!ReadBack({std::begin(kTenants), std::end(kTenants)}, &intact,
                  &total)) {
      return false;
    }
    Note("with the right key -> OK; " + std::to_string(intact) + " of " +
         std::to_string(total) + " records intact");
    if (intact != total) return Failed("records lost or changed");
    return true;
  }

  bool CheckBusy() {
    Step("Open the same directory from a second process while it is open");
    std::string err;
    const int code = RunChild({"/proc/self/exe", "stats", "--data", data_dir_,
                               "--key-file", key_file_},
                              &err);
    while (!err.empty() && err.back() == '\n') err.pop_back();
    Note("'coffer stats' exited with " + std::to_string(code) + ": " + err);
    if (code != kExitFailed || err.find("Busy") == std::string::npos) {
      return Failed("expected the second open to fail with Busy");
    }
    return true;
  }

  // "v1: 12 files, v2: 0 files"
  static std::string Versions(const TenantKeyStatus& status) {
    std::string out;
    for (const KeyVersionInfo& v : status.versions) {
      out += (out.empty() ? "v" : ", v") + std::to_string(v.version) + ": " +
             std::to_string(v.files) + " files";
    }
    return out;
  }

  bool RekeyTenant() {
    Step("Rotate acme's data key and rewrite all its files (rekey)");
    TenantKeyStatus before;
    Status s = cluster_->GetKeyStatus("acme", &before);
    if (!s.ok()) return Failed("key status of acme", s);
    Note("before: current version " + std::to_string(before.current_version) +
         "; " + Versions(before));
    KeyRotationReport report;
    s = cluster_->RotateTenantKey("acme", /*rekey=*/true, &report);
    if (!s.ok()) return Failed("rotate acme's data key", s);
    std::string retired;
    for (uint32_t v : report.versions_retired) {
      retired += (retired.empty() ? "v" : ", v") + std::to_string(v);
    }
    Note("RotateTenantKey(acme, rekey) -> version " +
         std::to_string(report.new_version) + " in " +
         std::to_string(report.micros / 1000) + " ms; retired (destroyed) " +
         (retired.empty() ? "none" : retired));
    TenantKeyStatus after;
    s = cluster_->GetKeyStatus("acme", &after);
    if (!s.ok()) return Failed("key status of acme", s);
    Note("after: current version " + std::to_string(after.current_version) +
         "; " + Versions(after));
    for (const KeyVersionInfo& v : before.versions) {
      if (std::find(report.versions_retired.begin(),
                    report.versions_retired.end(),
                    v.version) == report.versions_retired.end()) {
        return Failed("version " + std::to_string(v.version) + " not retired");
      }
    }
    if (!report.rekeyed || report.new_version <= before.current_version ||
        after.versions.size() != 1 ||
        after.versions[0].version != report.new_version ||
        after.versions[0].files == 0) {
      return Failed("acme's files are not all on the new version");
    }
    size_t intact = 0;
    size_t total = 0;
    if (!ReadBack({"acme"}, &intact, &total)) return false;
    Note("acme: " + std::to_string(intact) + " of " + std::to_string(total) +
         " records intact");
    if (intact != total) return Failed("records lost or changed by the rekey");
    return true;
  }

  bool RotateMasterKey() {
    Step("Rotate the master key to a second key file");
    std::shared_ptr<KeyProvider> new_keys;
    Status s = GenerateKeyFile(new_key_file_);
    if (s.ok()) s = NewFileKeyProvider(new_key_file_, &new_keys);
    if (!s.ok()) return Failed("generate " + new_key_file_, s);
    cluster_.reset();
    s = Open(NewCompositeKeyProvider({keys_, new_keys}));
    if (!s.ok()) return Failed("open with the old and the new key", s);
    MasterRotationReport report;
    s = cluster_->RotateMasterKey(new_keys->DefaultKeyId(), &report);
    if (!s.ok()) return Failed("rotate the master key", s);
    Note("RotateMasterKey: " + report.from_key_id + " -> " + report.to_key_id +
         ", " + std::to_string(report.tenants_rewrapped) +
         " tenants re-wrapped in " + std::to_string(report.micros / 1000) +
         " ms, no data rewritten");
    if (report.tenants_rewrapped != std::size(kTenants)) {
      return Failed("not every tenant was re-wrapped");
    }
    cluster_.reset();
    s = Open(keys_);
    Note("open with the old key alone (" + key_file_ + ") -> " + s.ToString());
    if (!s.IsWrongKey()) return Failed("expected WrongKey");
    s = Open(new_keys);
    if (!s.ok()) return Failed("open with the new key", s);
    keys_ = new_keys;
    size_t intact = 0;
    size_t total = 0;
    if (!ReadBack({std::begin(kTenants), std::end(kTenants)}, &intact,
                  &total)) {
      return false;
    }
    Note("open with the new key (" + new_key_file_ + ") -> OK; " +
         std::to_string(intact) + " of " + std::to_string(total) +
         " records intact");
    if (intact != total) return Failed("records lost or changed");
    return true;
  }

  bool RevokeTenant() {
    Step("Revoke globex's key, then restore it");
    Status s = cluster_->RevokeTenantKey("globex", "demo: suspected leak");
    if (!s.ok()) return Failed("revoke globex", s);
    std::unique_ptr<Tenant> globex;
    std::string value;
    s = cluster_->GetTenant("globex", &globex);
    if (s.ok()) s = globex->Get(ReadOptions(), kSharedKey, &value);
    globex.reset();
    Note("globex: Get('" + std::string(kSharedKey) + "') -> " + s.ToString());
    if (!s.IsKeyRevoked()) return Failed("expected KeyRevoked");
    TenantKeyStatus status;
    s = cluster_->GetKeyStatus("globex", &status);
    if (!s.ok()) return Failed("key status of globex", s);
    Note("globex key status: revoked " +
         std::string(status.revoked ? "yes" : "no") + ", reason '" +
         status.revoke_reason + "'");
    if (!status.revoked) return Failed("globex is not shown revoked");
    std::unique_ptr<Tenant> acme;
    if (!GetTenant("acme", &acme)) return false;
    const std::string other = SecretValue("acme during the revocation ", 16);
    s = acme->Put(WriteOptions(), "during-revocation", other);
    if (s.ok()) s = acme->Get(ReadOptions(), "during-revocation", &value);
    Note("acme is unaffected: Put + Get -> " + s.ToString());
    if (!s.ok() || value != other) return Failed("acme read/write", s);
    records_["acme"]["during-revocation"] = other;
    s = cluster_->RestoreTenantKey("globex");
    if (!s.ok()) return Failed("restore globex", s);
    size_t intact = 0;
    size_t total = 0;
    if (!ReadBack({"globex"}, &intact, &total)) return false;
    Note("restored: globex reads " + std::to_string(intact) + " of " +
         std::to_string(total) + " records intact");
    if (intact != total) return Failed("records lost or changed");
    return true;
  }

  bool ShowAudit() {
    constexpr size_t kShown = 8;
    Step("Show the audit trail and verify its HMAC chain");
    std::vector<AuditEntry> entries;
    Status s = cluster_->ReadAudit(0, &entries);
    if (!s.ok()) return Failed("read the audit trail", s);
    Note(std::to_string(entries.size()) + " entries; the last " +
         std::to_string(std::min(kShown, entries.size())) + ":");
    for (size_t i = entries.size() - std::min(kShown, entries.size());
         i < entries.size(); ++i) {
      const AuditEntry& e = entries[i];
      char line[256];
      std::snprintf(
          line, sizeof(line), "  #%-3llu %-8s %-18s %-15s %s",
          static_cast<unsigned long long>(e.seq),
          EscapeForLine(e.actor).c_str(), EscapeForLine(e.action).c_str(),
          EscapeForLine(e.target).c_str(), EscapeForLine(e.outcome).c_str());
      Note(line);
    }
    for (const char* action :
         {"tenant.create", "key.rekey", "key.rotate_master", "key.revoke",
          "key.restore"}) {
      if (std::none_of(
              entries.begin(), entries.end(),
              [&](const AuditEntry& e) { return e.action == action; })) {
        return Failed("no " + std::string(action) +
                      " entry in the audit trail");
      }
    }
    AuditVerification v;
    s = cluster_->VerifyAudit(&v);
    Note("VerifyAudit -> " + s.ToString() + ": " + std::to_string(v.entries) +
         " entries, head #" + std::to_string(v.head_seq) + ", " +
         std::to_string(v.unauthenticated) +
         " unauthenticated (the wrong-key opens)");
    if (!s.ok()) return Failed("verify the audit trail", s);
    if (v.entries < entries.size()) return Failed("entries missing");
    return true;
  }

  // Overwrites the byte at `offset` of `path` in place.
  static bool PokeByte(const std::string& path, size_t offset, char byte) {
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(offset));
    file.put(byte);
    file.flush();
    return file.good();
  }

  bool TamperAudit() {
    Step("Edit one byte of the audit log, then put it back");
    const std::string path = data_dir_ + "/AUDIT";
    std::ifstream in(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)),
                            std::istreambuf_iterator<char>());
    const std::string field = "\"action\":\"key.revoke\"";
    const size_t at = bytes.find(field);
    if (at == std::string::npos)
      return Failed("no key.revoke entry in " + path);
    const size_t offset = at + field.find("revoke");
    if (!PokeByte(path, offset, 'R')) return Failed("cannot write " + path);
    Note("changed byte " + std::to_string(offset) +
         " of AUDIT: action key.revoke -> key.Revoke");
    AuditVerification v;
    Status s = cluster_->VerifyAudit(&v);
    Note("VerifyAudit -> " + s.ToString());
    const bool detected = s.IsCorruption();
    if (!PokeByte(path, offset, bytes[offset])) {
      return Failed("cannot restore " + path);
    }
    if (!detected) return Failed("expected Corruption");
    s = cluster_->VerifyAudit(&v);
    Note("byte restored: VerifyAudit -> " + s.ToString() + ", " +
         std::to_string(v.entries) + " entries");
    if (!s.ok()) return Failed("verify the restored audit trail", s);
    return true;
  }

  bool FinalScan() {
    Step("Search for plaintext again after all of the above");
    return ScanClosed("cluster closed");
  }

  // Starts `args` in the background with stdout and stderr appended to
  // files; returns its pid, or 0.
  static pid_t Spawn(const std::vector<std::string>& args,
                     const std::string& out, const std::string& err) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_addopen(&actions, 2, err.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0600);
    std::vector<char*> argv;
    for (const std::string& arg : args) {
      argv.push_back(const_cast<char*>(arg.c_str()));
    }
    argv.push_back(nullptr);
    pid_t pid = 0;
    int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(),
                         environ);
    posix_spawn_file_actions_destroy(&actions);
    return rc == 0 ? pid : 0;
  }

  // Starts `coffer replica serve` on `dir` with certificate `name` in the
  // background; its log goes to root_/<log>.
  bool SpawnReplicaDaemon(const std::string& dir = "",
                          const std::string& name = "demo-dr",
                          const std::string& log = "replica.log") {
    const std::string port_file = root_ + "/replica.port";
    std::error_code ec;
    fs::remove(port_file, ec);
    replica_pid_ = Spawn(
        {"/proc/self/exe", "replica", "serve", "--data",
         dir.empty() ? replica_dir_ : dir, "--key-file", new_key_file_,
         "--listen", "127.0.0.1:0", "--tls-cert",
         root_ + "/certs/" + name + ".pem", "--tls-key",
         root_ + "/certs/" + name + ".key", "--tls-ca", root_ + "/certs/ca.pem",
         "--port-file", port_file},
        "/dev/null", root_ + "/" + log);
    if (replica_pid_ == 0) return Failed("cannot start the replica daemon");
    for (int i = 0; i < 200; ++i) {
      std::ifstream in(port_file);
      if (in >> replica_port_) return true;
      int status;
      if (waitpid(replica_pid_, &status, WNOHANG) == replica_pid_) {
        replica_pid_ = 0;
        return Failed("the replica daemon exited; see " + root_ + "/" + log);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return Failed("the replica daemon did not start listening");
  }

  // SIGTERM, then waits; returns the daemon's exit status (-1 if none).
  int StopReplicaDaemon() {
    if (replica_pid_ <= 0) return -1;
    kill(replica_pid_, SIGTERM);
    int status = 0;
    const pid_t pid = replica_pid_;
    replica_pid_ = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
  }

  bool StartReplica() {
    Step("Create replica 'demo-dr' (region eu-north-1, same geography) and "
         "start its daemon");
    std::error_code ec;
    fs::create_directories(root_ + "/certs", ec);
    Status s = WriteDemoCertificates(root_ + "/certs", {"demo", "demo-dr"});
    if (!s.ok()) return Failed("certificates", s);
    Note("throwaway CA and certificates for 'demo' and 'demo-dr' in " +
         root_ + "/certs (TLS 1.3, both sides authenticated)");
    ClusterOptions options;
    options.cluster_id = "demo-dr";
    options.region = "eu-north-1";
    options.geography = "eu";
    options.replica = true;
    std::unique_ptr<Cluster> replica;
    // The replica holds the primary's master key: data keys arrive wrapped.
    s = Cluster::Create(replica_dir_, options, ToolOpenOptions(), keys_,
                        &replica);
    if (!s.ok()) return Failed("create the replica in " + replica_dir_, s);
    replica.reset();
    if (!SpawnReplicaDaemon()) return false;
    Note("'coffer replica serve' is listening on 127.0.0.1:" +
         std::to_string(replica_port_) + " (log: " + root_ + "/replica.log)");
    return true;
  }

  // Polls the primary's replication status until every tenant is caught
  // up, printing the total lag whenever it changes.
  bool WaitCaughtUp(std::chrono::steady_clock::time_point start,
                    ReplicationStatus* status) {
    uint64_t last_total = UINT64_MAX;
    for (int i = 0; i < 600; ++i) {
      Status s = cluster_->GetReplicationStatus(status);
      if (!s.ok()) return Failed("replication status", s);
      uint64_t total = 0;
      double worst = 0;
      bool caught_up = status->connection == "connected";
      for (const TenantReplicationStatus& t : status->tenants) {
        total += t.lag_seqs;
        worst = std::max(worst, t.lag_seconds);
        caught_up = caught_up && t.state == "caught-up";
      }
      if (total != last_total || caught_up) {
        char line[160];
        std::snprintf(line, sizeof(line),
                      "t=%5.2f s  %-10s lag %5llu sequences, oldest "
                      "unacknowledged write %.3f s old",
                      MicrosSinceStart(start) / 1e6,
                      status->connection.c_str(),
                      static_cast<unsigned long long>(total), worst);
        Note(line);
        last_total = total;
      }
      if (caught_up) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return Failed("the replica did not catch up within 12 s (" +
                  status->connection + ", " + status->last_error + ")");
  }

  bool ShipToReplica() {
    Step("Reopen 'demo' shipping to the replica; write " +
         std::to_string(kShippedRecords) +
         " more records to acme and globex; watch the lag fall to zero");
    cluster_.reset();
    OpenOptions options = ToolOpenOptions();
    options.replication.replica_address =
        "127.0.0.1:" + std::to_string(replica_port_);
    options.replication.tls = {root_ + "/certs/demo.pem",
                               root_ + "/certs/demo.key",
                               root_ + "/certs/ca.pem"};
    Status s = Cluster::Open(data_dir_, options, keys_, &cluster_);
    if (!s.ok()) return Failed("open with replication", s);
    auto start = std::chrono::steady_clock::now();
    ReplicationStatus status;
    if (!WaitCaughtUp(start, &status)) return false;
    Note("initial copy: " + std::to_string(status.reseeds) +
         " tenants sent as encrypted checkpoints (their older log was "
         "purged before replication was on), " +
         FormatBytes(status.bytes) + " of ciphertext");
    start = std::chrono::steady_clock::now();
    // initech is full (its quota step); its existing data ships all the same.
    const std::vector<std::string> writers = {"acme", "globex"};
    for (const std::string& id : writers) {
      std::unique_ptr<Tenant> tenant;
      if (!GetTenant(id, &tenant)) return false;
      for (int i = 0; i < kShippedRecords; ++i) {
        char key[64];
        std::snprintf(key, sizeof(key), "order/%s-%05d", id.c_str(), i);
        needles_.push_back(key);
        const std::string value = SecretValue(id + " order ", 16);
        s = tenant->Put(WriteOptions(), key, value);
        if (!s.ok()) return Failed("put to " + id, s);
        records_[id][key] = value;
      }
    }
    Note("wrote " + std::to_string(kShippedRecords * writers.size()) +
         " records in " + std::to_string(MicrosSinceStart(start) / 1000) +
         " ms; writes do not wait for the replica");
    const uint64_t batches_before = status.batches;
    if (!WaitCaughtUp(start, &status)) return false;
    Note("streamed " + std::to_string(status.batches - batches_before) +
         " write batches from the write-ahead logs");
    for (const TenantReplicationStatus& t : status.tenants) {
      Note("  " + t.tenant + ": primary seq " + std::to_string(t.primary_seq) +
           " = applied seq " + std::to_string(t.applied_seq) +
           ", lag 0 s, log retention headroom " +
           std::to_string(t.retention_headroom_seconds) + " s");
    }
    return true;
  }

  bool CheckReplica() {
    Step("Stop the replica daemon and check its copy");
    cluster_.reset();  // the primary stops shipping and closes
    const int code = StopReplicaDaemon();
    Note("replica daemon stopped on SIGTERM, exit status " +
         std::to_string(code));
    if (code != 0) return Failed("the replica daemon failed");
    std::unique_ptr<Cluster> replica;
    Status s = Cluster::Open(replica_dir_, ToolOpenOptions(), keys_, &replica);
    if (!s.ok()) return Failed("open the replica", s);
    size_t intact = 0;
    size_t total = 0;
    for (const auto& [id, records] : records_) {
      std::unique_ptr<Tenant> tenant;
      s = replica->GetTenant(id, &tenant);
      if (!s.ok()) return Failed("tenant " + id + " on the replica", s);
      for (const auto& [key, value] : records) {
        std::string read;
        ++total;
        if (tenant->Get(ReadOptions(), key, &read).ok() && read == value) {
          ++intact;
        }
      }
    }
    Note("replica holds " + std::to_string(intact) + " of " +
         std::to_string(total) + " records, identical");
    if (intact != total) return Failed("the replica's copy differs");
    std::unique_ptr<Tenant> acme;
    s = replica->GetTenant("acme", &acme);
    if (s.ok()) s = acme->Put(WriteOptions(), "x", "y");
    Note("a client write on the replica -> " + s.ToString());
    if (!s.IsReadOnly()) return Failed("expected ReadOnly");
    replica.reset();
    PlaintextScan scan;
    s = ScanForPlaintext(replica_dir_, needles_, &scan);
    if (!s.ok()) return Failed("scan " + replica_dir_, s);
    Note("replica data directory: read " + std::to_string(scan.files) +
         " files (" + FormatBytes(scan.bytes) + "), " +
         std::to_string(scan.hits.size()) + " contain plaintext");
    for (const std::string& hit : scan.hits) Note("  plaintext in " + hit);
    if (scan.files == 0) return Failed("no files scanned");
    if (!scan.hits.empty()) return Failed("plaintext found on the replica");
    return true;
  }

  // Reads a whole file (logs of the child processes).
  static std::string ReadFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)),
                       std::istreambuf_iterator<char>());
  }

  // Runs `args` to completion; its stdout in *out; returns its exit status.
  int RunCapture(const std::vector<std::string>& args, std::string* out) {
    const std::string file = root_ + "/child.out";
    std::error_code ec;
    fs::remove(file, ec);
    pid_t pid = Spawn(args, file, root_ + "/child.err");
    int status = 0;
    if (pid == 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
      return -1;
    }
    *out = ReadFile(file);
    return WEXITSTATUS(status);
  }

  bool RegionOutage() {
    Step("Region outage: a primary process under load is killed (SIGKILL)");
    if (!SpawnReplicaDaemon()) return false;
    const std::string ack_log = root_ + "/acked.log";
    workload_pid_ = Spawn(
        {"/proc/self/exe", "workload", "--data", data_dir_, "--key-file",
         new_key_file_, "--tenants", "3", "--rate", "600", "--duration", "0",
         "--replicate-to", "127.0.0.1:" + std::to_string(replica_port_),
         "--tls-cert", root_ + "/certs/demo.pem", "--tls-key",
         root_ + "/certs/demo.key", "--tls-ca", root_ + "/certs/ca.pem",
         "--ack-log", ack_log},
        "/dev/null", root_ + "/workload.log");
    if (workload_pid_ == 0) return Failed("cannot start 'coffer workload'");
    Note("'coffer workload' (pid " + std::to_string(workload_pid_) +
         ") writes tenants wl-000..wl-002 at 600 writes/s, shipping to the "
         "replica, logging each acknowledged write to acked.log");
    ReplicationStatus status;
    bool streamed = false;
    for (int i = 0; i < 150 && !streamed; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      streamed = ReadReplicationStatusFile(data_dir_, &status).ok() &&
                 status.connection == "connected" && status.batches > 600;
    }
    if (!streamed) return Failed("the primary did not stream to the replica");
    kill(workload_pid_, SIGKILL);
    int ws = 0;
    waitpid(workload_pid_, &ws, 0);
    workload_pid_ = 0;
    std::ifstream in(ack_log);
    size_t lines = 0;
    for (std::string line; std::getline(in, line);) ++lines;
    Note("killed the primary process after " + std::to_string(lines) +
         " acknowledged writes (" + std::to_string(status.batches) +
         " batches shipped when last reported); the replica region is intact");
    return true;
  }

  bool PromoteReplica() {
    Step("Promote the replica: the epoch rises, and a loss receipt");
    PromotionReport report;
    Status s = coffer::PromoteReplica(replica_dir_, "demo", &report);
    if (!s.ok()) return Failed("promote demo-dr", s);
    int ws = 0;
    const pid_t pid = replica_pid_;
    replica_pid_ = 0;
    waitpid(pid, &ws, 0);
    Note("'demo-dr' promoted through its daemon's admin channel in " +
         std::to_string(report.micros / 1000) + " ms: epoch " +
         std::to_string(report.old_epoch) + " -> " +
         std::to_string(report.new_epoch) +
         "; the daemon exited (status " +
         std::to_string(WIFEXITED(ws) ? WEXITSTATUS(ws) : -1) +
         ") so an application can open the new primary");
    for (const TenantLossReceipt& t : report.tenants) {
      if (t.tenant.rfind("wl-", 0) != 0) continue;
      char line[200];
      std::snprintf(line, sizeof(line),
                    "  %s: promoted at sequence %llu (committed %s); %llu "
                    "writes known beyond it",
                    t.tenant.c_str(),
                    static_cast<unsigned long long>(t.promoted_at_seq),
                    FormatUnixMicrosExact(t.promoted_at_commit_unix_micros)
                        .c_str(),
                    static_cast<unsigned long long>(t.writes_beyond));
      Note(line);
      promoted_at_[t.tenant] = t.promoted_at_seq;
    }
    if (promoted_at_.size() != 3) return Failed("receipt lacks wl tenants");
    return true;
  }

  bool VerifyNewPrimary() {
    Step("Check the new primary against every acknowledged write");
    std::string out;
    const int code = RunCapture(
        {"/proc/self/exe", "verify", "--data", replica_dir_, "--key-file",
         new_key_file_, "--ack-log", root_ + "/acked.log"},
        &out);
    std::istringstream lines(out);
    bool prefix_matches = true;
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("tenant ", 0) != 0 && line.rfind("total", 0) != 0) {
        continue;
      }
      Note(line);
      // "tenant wl-000: acked A, present P, ..."
      const size_t colon = line.find(':');
      const size_t present = line.find("present ");
      if (line.rfind("tenant ", 0) == 0 && colon != std::string::npos &&
          present != std::string::npos) {
        const std::string id = line.substr(7, colon - 7);
        const uint64_t n = std::stoull(line.substr(present + 8));
        prefix_matches = prefix_matches && promoted_at_[id] == n;
      }
    }
    Note("'coffer verify' exited " + std::to_string(code) +
         ": every record present is correct and each tenant holds a prefix "
         "of its acknowledged writes, ending exactly at the receipt's "
         "promotion point");
    if (code != 0) return Failed("the new primary fails verification");
    if (!prefix_matches) return Failed("a prefix differs from the receipt");
    std::unique_ptr<Cluster> promoted;
    Status s = Cluster::Open(replica_dir_, ToolOpenOptions(), keys_, &promoted);
    std::unique_ptr<Tenant> tenant;
    if (s.ok()) s = promoted->GetTenant("acme", &tenant);
    if (s.ok()) s = tenant->Put(WriteOptions(), "after-failover", "ok");
    Note("a write on the new primary -> " + s.ToString());
    if (!s.ok()) return Failed("the new primary refuses writes", s);
    return true;
  }

  bool RejoinOldPrimary() {
    Step("The old primary rejoins as a replica of the new one");
    std::unique_ptr<Cluster> old;
    Status s = Cluster::Open(data_dir_, ToolOpenOptions(), keys_, &old);
    if (s.ok()) s = old->Rejoin("demo-dr");
    old.reset();
    if (!s.ok()) return Failed("rejoin demo", s);
    Note("'demo' is now a replica of 'demo-dr'; its daemon starts, and the "
         "new primary ships to it");
    if (!SpawnReplicaDaemon(data_dir_, "demo", "rejoin.log")) return false;
    OpenOptions options = ToolOpenOptions();
    options.replication.replica_address =
        "127.0.0.1:" + std::to_string(replica_port_);
    options.replication.tls = {root_ + "/certs/demo-dr.pem",
                               root_ + "/certs/demo-dr.key",
                               root_ + "/certs/ca.pem"};
    s = Cluster::Open(replica_dir_, options, keys_, &cluster_);
    if (!s.ok()) return Failed("open demo-dr with replication", s);
    ReplicationStatus status;
    if (!WaitCaughtUp(std::chrono::steady_clock::now(), &status)) return false;
    cluster_.reset();
    const int code = StopReplicaDaemon();
    const std::string log = ReadFile(root_ + "/rejoin.log");
    std::istringstream lines(log);
    for (std::string line; std::getline(lines, line);) {
      const size_t at = line.find("tenant '");
      if (at != std::string::npos && line.find("rejoined") != std::string::npos) {
        Note(line.substr(at));
      }
    }
    Note("old primary's daemon stopped, exit status " + std::to_string(code));
    std::unique_ptr<Cluster> replica;
    s = Cluster::Open(data_dir_, ToolOpenOptions(), keys_, &replica);
    std::unique_ptr<Tenant> tenant;
    std::string value;
    if (s.ok()) s = replica->GetTenant("acme", &tenant);
    if (s.ok()) s = tenant->Get(ReadOptions(), "after-failover", &value);
    Note("the new primary's write after the failover is on the old primary: " +
         s.ToString());
    if (!s.ok() || value != "ok") return Failed("rejoin did not converge", s);
    return true;
  }

  static uint64_t MicrosSinceStart(std::chrono::steady_clock::time_point t) {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::steady_clock::now() - t)
            .count());
  }

  const std::string root_;
  const std::string data_dir_;
  const std::string key_file_;
  const std::string new_key_file_;  // the master key after the rotation
  const std::string replica_dir_ = root_ + "/replica";
  pid_t replica_pid_ = 0;  // the replica daemon, while running
  pid_t workload_pid_ = 0;
  std::map<std::string, uint64_t> promoted_at_;  // tenant -> promotion point
  int replica_port_ = 0;
  std::mt19937_64 rng_;
  std::shared_ptr<KeyProvider> keys_;
  std::unique_ptr<Cluster> cluster_;
  std::map<std::string, Records> records_;  // tenant -> what it must hold
  std::vector<std::string> needles_;        // must appear in no file
  int step_ = 0;
  std::string failure_;
};

// Prepares the directory the demo runs in: `dir` if given (it must be empty
// or absent), else a fresh one under /tmp.
Status PrepareRoot(const std::string& dir, std::string* root) {
  if (dir.empty()) {
    char templ[] = "/tmp/coffer-demo-XXXXXX";
    if (mkdtemp(templ) == nullptr) {
      return Status::IOError("cannot create a directory under /tmp");
    }
    *root = templ;
    return Status::OK();
  }
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_empty(dir, ec)) {
    return Status::AlreadyExists(dir +
                                 " is not empty; pass an empty or new "
                                 "directory to --dir");
  }
  fs::create_directories(dir, ec);
  if (!ec) fs::permissions(dir, fs::perms::owner_all, ec);
  if (ec) return Status::IOError("cannot create " + dir + ": " + ec.message());
  *root = fs::absolute(dir).lexically_normal().string();
  return Status::OK();
}

}  // namespace

void RegisterDemoCommand(CLI::App* app, Runner* run) {
  auto dir = std::make_shared<std::string>();
  CLI::App* cmd = app->add_subcommand(
      "demo",
      "Demonstrates Coffer and checks its guarantees. Creates a cluster with "
      "three tenants in a scratch directory, writes and reads "
      "data, and checks tenant isolation, a tenant quota, that no file under "
      "the data directory holds any key or value in plaintext, that a wrong "
      "master key is refused and that a second process cannot open the "
      "directory. Then rekeys a tenant, rotates the master key, revokes and "
      "restores a tenant's key, and shows that the audit trail records it "
      "all and detects an edited byte. Finally starts a replica daemon on "
      "loopback, ships every tenant to it over mutually authenticated TLS, "
      "shows the lag falling to zero, and checks the replica's copy (and "
      "that it holds no plaintext). Then kills a primary process under load, "
      "promotes the replica (loss receipt), verifies the new primary against "
      "every acknowledged write, and rejoins the old primary as its replica "
      "(divergent writes go to encrypted rollback files). Exits 0 only if "
      "every check passes. "
      "The scratch directory is removed afterwards unless --dir names it.");
  cmd->add_option("--dir", *dir,
                  "Run in this empty or new directory and keep it")
      ->type_name("DIR");
  OnRun(cmd, run, [dir] {
    const auto start = std::chrono::steady_clock::now();
    std::string root;
    Status s = PrepareRoot(*dir, &root);
    if (!s.ok()) return Fail("demo", s);
    std::printf("coffer demo: working in %s\n", root.c_str());
    Demo demo(root);
    const bool passed = demo.Run();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    std::printf("\n");
    if (passed) {
      std::printf("All %d steps passed in %.1f s.\n", demo.steps(), seconds);
    }
    if (dir->empty()) {
      std::error_code ec;
      fs::remove_all(root, ec);
      if (ec) {
        std::printf("Could not remove %s: %s.\n", root.c_str(),
                    ec.message().c_str());
      } else {
        std::printf("Removed %s.\n", root.c_str());
      }
    } else {
      std::printf("Kept %s (data in data/, master keys in keys/).\n",
                  root.c_str());
    }
    std::fflush(stdout);
    return passed ? kExitOk : FailWith("demo", "FAILED at " + demo.failure());
  });
}

}  // namespace coffer::cli
