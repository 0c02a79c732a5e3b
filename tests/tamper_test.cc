// Copyright (c) Coffer authors.
//
// On-disk tampering: every kind of file under a data directory (a tenant's
// table files, write-ahead log, MANIFEST, CURRENT, OPTIONS and IDENTITY; the
// TENANT, CLUSTER and AUDIT files) has a bit flipped, is truncated, is
// replaced by another file of its kind, or has garbage appended. A re-executed
// copy of this binary then opens the cluster and reads everything back: every
// Get, a full scan of every tenant and an audit verification. Each case
// checks that the reader survived, that no read returned a value other than
// the one last written, and that an error names the file (or at least the
// tenant and the kind of file) it is about. The few changes the format
// cannot notice are asserted as the documented behaviour (README.md, "What
// tampering Coffer detects").

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "coffer/coffer.h"
#include "tests/testutil.h"

namespace coffer::test {
namespace {

namespace fs = std::filesystem;

// ---- the data every case starts from ----------------------------------------

const std::vector<std::string> kTenants = {"alpha", "beta", "gamma"};

// Writes, in order: generation 1 puts a/0000..a/0149 and is flushed (the first
// table file); generation 2 overwrites a/0000..a/0049 and puts b/0000..b/0149
// and is flushed (the second table file); generation 3 overwrites a/0000..
// a/0009 and b/0000..b/0009 and puts c/0000..c/0059, synced, and stays in the
// write-ahead log. A stale generation of a key is as wrong as garbage.
struct KeyHistory {
  std::string key;
  std::vector<int> generations;  // ascending; the last one is current
};

std::vector<KeyHistory> History() {
  std::map<std::string, std::vector<int>> h;
  char key[16];
  for (int i = 0; i < 150; ++i) {
    std::snprintf(key, sizeof(key), "a/%04d", i);
    h[key].push_back(1);
    if (i < 50) h[key].push_back(2);
    if (i < 10) h[key].push_back(3);
    std::snprintf(key, sizeof(key), "b/%04d", i);
    h[key].push_back(2);
    if (i < 10) h[key].push_back(3);
  }
  for (int i = 0; i < 60; ++i) {
    std::snprintf(key, sizeof(key), "c/%04d", i);
    h[key].push_back(3);
  }
  std::vector<KeyHistory> out;
  for (auto& [k, g] : h) out.push_back({k, g});
  return out;
}

// 120 printable bytes without long runs, unique to (tenant, key, generation).
std::string ValueOf(const std::string& tenant, const std::string& key,
                    int generation) {
  std::string v = tenant + "|" + key + "|g" + std::to_string(generation) + "|";
  uint64_t x = std::hash<std::string>()(v) | 1;
  while (v.size() < 120) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    v.push_back("abcdefghijklmnopqrstuvwxyz0123456789"[x % 36]);
  }
  return v;
}

// ---- the reader (child process) ---------------------------------------------
//
// With COFFER_TAMPER_DIR set, the static initializer below opens the cluster
// in that directory with the key file COFFER_TAMPER_KEY, reads everything,
// writes its findings to COFFER_TAMPER_OUT as lines "<what> <field>=<value>
// ..." and exits 0. A crash or a hang is seen by the parent.

std::string OneLine(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

struct ReadCounts {
  int ok = 0, missing = 0, stale = 0, wrong = 0, errors = 0;
  std::string first_error;
  void Error(const Status& s) {
    if (errors++ == 0) first_error = OneLine(s.ToString());
  }
  // Classifies `value` read for `h` in `tenant`.
  void Value(const std::string& tenant, const KeyHistory& h,
             const std::string& value) {
    if (value == ValueOf(tenant, h.key, h.generations.back())) {
      ++ok;
      return;
    }
    for (int g : h.generations) {
      if (value == ValueOf(tenant, h.key, g)) {
        ++stale;
        return;
      }
    }
    ++wrong;
  }
  std::string Line() const {
    return "ok=" + std::to_string(ok) + " missing=" + std::to_string(missing) +
           " stale=" + std::to_string(stale) +
           " wrong=" + std::to_string(wrong) +
           " errors=" + std::to_string(errors) + " error=" + first_error;
  }
};

void ReadTenant(Cluster* cluster, const std::string& id, std::ostream& out) {
  std::unique_ptr<Tenant> t;
  Status s = cluster->GetTenant(id, &t);
  if (!s.ok()) {
    out << "tenant " << id << " status=" << OneLine(s.ToString()) << "\n";
    return;
  }
  const std::vector<KeyHistory> history = History();
  ReadCounts get;
  for (const KeyHistory& h : history) {
    std::string value;
    s = t->Get(ReadOptions(), h.key, &value);
    if (s.IsNotFound()) {
      ++get.missing;
    } else if (!s.ok()) {
      get.Error(s);
    } else {
      get.Value(id, h, value);
    }
  }
  out << "get " << id << " " << get.Line() << "\n";

  ReadCounts scan;
  std::map<std::string, const KeyHistory*> by_key;
  for (const KeyHistory& h : history) by_key[h.key] = &h;
  std::unique_ptr<Iterator> it = t->NewIterator(ReadOptions());
  size_t seen = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto found = by_key.find(std::string(it->key()));
    if (found == by_key.end()) {
      if (!std::string_view(it->key()).starts_with("\x01")) ++scan.wrong;
      continue;
    }
    ++seen;
    scan.Value(id, *found->second, std::string(it->value()));
  }
  if (!it->status().ok()) scan.Error(it->status());
  scan.missing = static_cast<int>(history.size() - seen);
  out << "scan " << id << " " << scan.Line() << "\n";
}

void RunReader(const char* dir) {
  const std::string out_path = std::getenv("COFFER_TAMPER_OUT");
  std::ofstream out(out_path);
  std::shared_ptr<KeyProvider> keys;
  Status s = NewFileKeyProvider(std::getenv("COFFER_TAMPER_KEY"), &keys);
  std::unique_ptr<Cluster> cluster;
  if (s.ok()) s = Cluster::Open(dir, OpenOptions(), keys, &cluster);
  out << "open status=" << OneLine(s.ToString()) << "\n";
  if (s.ok()) {
    for (const std::string& id : kTenants) ReadTenant(cluster.get(), id, out);
    AuditVerification audit;
    s = cluster->VerifyAudit(&audit);
    out << "audit status=" << OneLine(s.ToString()) << "\n";
  }
  out << "end\n";
  out.close();
  cluster.reset();
  _exit(0);
}

int MaybeRunReader() {
  if (const char* dir = std::getenv("COFFER_TAMPER_DIR")) RunReader(dir);
  return 0;
}

[[maybe_unused]] const int kReaderHook = MaybeRunReader();

// What the reader found, or how it died.
struct Outcome {
  bool exited = false;  // exited normally with status 0 and wrote "end"
  std::string how;      // otherwise: the signal, exit status or timeout
  std::string open;     // status of Cluster::Open
  std::string audit;    // status of VerifyAudit
  std::map<std::string, std::map<std::string, std::string>> get, scan;
  std::map<std::string, std::string> tenant_status;  // GetTenant failures
  std::string text;                                  // the raw report

  int Count(const std::string& kind, const std::string& tenant,
            const std::string& field) const {
    const auto& m = kind == "get" ? get : scan;
    auto t = m.find(tenant);
    if (t == m.end()) return 0;
    auto f = t->second.find(field);
    return f == t->second.end() ? 0 : std::atoi(f->second.c_str());
  }
  std::string Error(const std::string& kind, const std::string& tenant) const {
    const auto& m = kind == "get" ? get : scan;
    auto t = m.find(tenant);
    if (t == m.end()) return "";
    auto f = t->second.find("error");
    return f == t->second.end() ? "" : f->second;
  }
  // Whether every tenant read back completely and exactly.
  bool AllIntact() const {
    if (open != "OK") return false;
    for (const std::string& id : kTenants) {
      if (tenant_status.count(id)) return false;
      for (const char* kind : {"get", "scan"}) {
        if (Count(kind, id, "ok") != static_cast<int>(History().size())) {
          return false;
        }
      }
    }
    return true;
  }
};

Outcome Parse(const std::string& text) {
  Outcome o;
  o.text = text;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line == "end") o.exited = true;
    if (line.starts_with("open status=")) o.open = line.substr(12);
    if (line.starts_with("audit status=")) o.audit = line.substr(13);
    std::istringstream words(line);
    std::string kind, tenant;
    words >> kind >> tenant;
    if (kind == "tenant") {
      o.tenant_status[tenant] = line.substr(line.find("status=") + 7);
    }
    if (kind != "get" && kind != "scan") continue;
    auto& fields = (kind == "get" ? o.get : o.scan)[tenant];
    const size_t err = line.find(" error=");
    const std::string counts = line.substr(0, err);
    std::istringstream cw(counts);
    std::string w;
    while (cw >> w) {
      const size_t eq = w.find('=');
      if (eq != std::string::npos) fields[w.substr(0, eq)] = w.substr(eq + 1);
    }
    if (err != std::string::npos) fields["error"] = line.substr(err + 7);
  }
  return o;
}

Outcome RunReaderProcess(const std::string& dir, const std::string& key,
                         const std::string& out_path) {
  std::vector<std::string> env = {"COFFER_TAMPER_DIR=" + dir,
                                  "COFFER_TAMPER_KEY=" + key,
                                  "COFFER_TAMPER_OUT=" + out_path};
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string arg0 = "tamper_reader";
  char* argv[] = {arg0.data(), nullptr};
  const pid_t pid = ::fork();
  if (pid < 0) std::abort();
  if (pid == 0) {
    ::execve("/proc/self/exe", argv, envp.data());
    _exit(127);
  }
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool timed_out = false;
  while (::waitpid(pid, &status, WNOHANG) != pid) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::ifstream in(out_path);
  std::stringstream text;
  text << in.rdbuf();
  Outcome o = Parse(text.str());
  if (timed_out) {
    o.exited = false;
    o.how = "hung (killed after 60 s)";
  } else if (WIFSIGNALED(status)) {
    o.exited = false;
    o.how = std::string("killed by signal ") + strsignal(WTERMSIG(status));
  } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    o.exited = false;
    o.how = "exit status " + std::to_string(WEXITSTATUS(status));
  }
  return o;
}

// ---- the pristine cluster and its older copies ------------------------------

struct Pristine {
  TempDir tmp;
  std::string key_path;
  FileTree tree;  // everything under data/, after the last write
  // Relative path -> bytes of a file as it was earlier.
  std::map<std::string, std::string> older;
};

Pristine* g_pristine = nullptr;

void Write(Tenant* t, const std::string& tenant, int generation, bool sync) {
  WriteOptions wo;
  wo.sync = sync;
  for (const KeyHistory& h : History()) {
    for (int g : h.generations) {
      if (g != generation) continue;
      ASSERT_OK(t->Put(wo, h.key, ValueOf(tenant, h.key, g)));
    }
  }
}

void BuildPristine() {
  auto* p = new Pristine();
  p->key_path = p->tmp.Sub("master.key");
  WriteKeyFile(p->key_path);
  const std::string data = p->tmp.Sub("data");
  std::shared_ptr<KeyProvider> keys = LoadKeys(p->key_path);
  std::unique_ptr<Cluster> cluster;
  ASSERT_OK(Cluster::Create(data, TestClusterOptions(), OpenOptions(), keys,
                            &cluster));
  p->older["CLUSTER"] = ReadFileBytes(data + "/CLUSTER");
  p->older["AUDIT"] = ReadFileBytes(data + "/AUDIT");
  for (const std::string& id : kTenants) {
    ASSERT_OK(cluster->CreateTenant(id, TenantOptions()));
    std::unique_ptr<Tenant> t;
    ASSERT_OK(cluster->GetTenant(id, &t));
    Write(t.get(), id, 1, false);
    ASSERT_OK(t->Flush());
  }
  // Older copies: alpha's record before its key rotation, beta's before a
  // quota change, and alpha's MANIFEST and CURRENT after one table file.
  const std::string alpha_db = data + "/tenants/alpha/db/";
  p->older["tenants/alpha/TENANT"] = ReadFileBytes(data + "/tenants/alpha/TENANT");
  p->older["tenants/beta/TENANT"] = ReadFileBytes(data + "/tenants/beta/TENANT");
  for (const auto& e : fs::directory_iterator(alpha_db)) {
    const std::string name = e.path().filename();
    if (name.starts_with("MANIFEST-") || name == "CURRENT") {
      p->older["tenants/alpha/db/" + name] = ReadFileBytes(e.path());
    }
  }
  KeyRotationReport rotation;
  ASSERT_OK(cluster->RotateTenantKey("alpha", false, &rotation));
  ASSERT_OK(cluster->SetTenantQuota("beta", 1 << 30));
  for (const std::string& id : kTenants) {
    std::unique_ptr<Tenant> t;
    ASSERT_OK(cluster->GetTenant(id, &t));
    Write(t.get(), id, 2, false);
    ASSERT_OK(t->Flush());
  }
  for (const std::string& id : kTenants) {
    std::unique_ptr<Tenant> t;
    ASSERT_OK(cluster->GetTenant(id, &t));
    Write(t.get(), id, 3, true);
  }
  AuditVerification audit;
  ASSERT_OK(cluster->VerifyAudit(&audit));
  cluster.reset();
  p->tree = ReadTree(data);
  g_pristine = p;
}

// ---- cases ------------------------------------------------------------------

// A data directory made from the pristine one, to be tampered with.
class Scratch {
 public:
  Scratch() {
    for (const auto& [rel, bytes] : g_pristine->tree) {
      const std::string path = Data() + "/" + rel;
      fs::create_directories(fs::path(path).parent_path());
      WriteFileBytes(path, bytes);
    }
  }
  std::string Data() const { return tmp_.Sub("data"); }
  std::string Path(const std::string& rel) const { return Data() + "/" + rel; }
  Outcome Read() const {
    return RunReaderProcess(Data(), g_pristine->key_path, tmp_.Sub("report"));
  }

 private:
  TempDir tmp_;
};

// Files of a tenant's db/ whose names satisfy `pred`, sorted by name.
std::vector<std::string> DbFiles(const std::string& tenant,
                                 const std::function<bool(const std::string&)>& pred) {
  std::vector<std::string> out;
  const std::string prefix = "tenants/" + tenant + "/db/";
  for (const auto& [rel, bytes] : g_pristine->tree) {
    if (!rel.starts_with(prefix)) continue;
    const std::string name = rel.substr(prefix.size());
    if (name.find('/') == std::string::npos && pred(name)) out.push_back(rel);
  }
  return out;
}

bool IsSst(const std::string& n) { return n.ends_with(".sst"); }
bool IsWal(const std::string& n) { return n.ends_with(".log"); }
bool IsManifest(const std::string& n) { return n.starts_with("MANIFEST-"); }
bool IsCurrent(const std::string& n) { return n == "CURRENT"; }
bool IsOptions(const std::string& n) {
  return n.starts_with("OPTIONS-") && !n.ends_with(".dbtmp");
}
bool IsIdentity(const std::string& n) { return n == "IDENTITY"; }

void FlipBit(const std::string& path, int64_t offset) {
  std::string bytes = ReadFileBytes(path);
  if (offset < 0) offset += static_cast<int64_t>(bytes.size());
  ASSERT_GE(offset, 0);
  ASSERT_LT(offset, static_cast<int64_t>(bytes.size())) << path;
  bytes[offset] ^= 0x10;
  WriteFileBytes(path, bytes);
}

void Truncate(const std::string& path, int64_t size) {
  std::string bytes = ReadFileBytes(path);
  if (size < 0) size += static_cast<int64_t>(bytes.size());
  ASSERT_GE(size, 0);
  bytes.resize(static_cast<size_t>(size));
  WriteFileBytes(path, bytes);
}

void AppendGarbage(const std::string& path) {
  WriteFileBytes(path, ReadFileBytes(path) + RandomString(777));
}

void Replace(const std::string& path, const std::string& bytes) {
  WriteFileBytes(path, bytes);
}

// The message a tenant's reads failed with; empty if none did.
std::string TenantError(const Outcome& o, const std::string& tenant) {
  auto t = o.tenant_status.find(tenant);
  if (t != o.tenant_status.end()) return t->second;
  std::string e = o.Error("get", tenant);
  return e.empty() ? o.Error("scan", tenant) : e;
}

std::string Describe(const Outcome& o) {
  return "reader " + (o.exited ? std::string("exited") : o.how) + "\n" + o.text;
}

// Checks what every case needs: the reader survived and no read of any
// tenant returned a value other than the current one.
void ExpectSafe(const Outcome& o) {
  EXPECT_TRUE(o.exited) << Describe(o);
  for (const std::string& id : kTenants) {
    for (const char* kind : {"get", "scan"}) {
      EXPECT_EQ(o.Count(kind, id, "wrong"), 0) << kind << " " << id << "\n"
                                               << Describe(o);
      EXPECT_EQ(o.Count(kind, id, "stale"), 0) << kind << " " << id << "\n"
                                               << Describe(o);
    }
  }
}

// Tenants other than `tenant` read back intact.
void ExpectOthersIntact(const Outcome& o, const std::string& tenant) {
  for (const std::string& id : kTenants) {
    if (id == tenant) continue;
    for (const char* kind : {"get", "scan"}) {
      EXPECT_EQ(o.Count(kind, id, "ok"), static_cast<int>(History().size()))
          << kind << " " << id << "\n"
          << Describe(o);
    }
  }
}

// The tenant's reads failed (opening it, a Get or the scan) with an error
// naming `needle` (a file name) and the tenant, or the cluster's open did.
void ExpectDetected(const Outcome& o, const std::string& tenant,
                    const std::string& needle) {
  ExpectSafe(o);
  std::string err = o.open != "OK" ? o.open : TenantError(o, tenant);
  ASSERT_FALSE(err.empty()) << "not detected\n" << Describe(o);
  EXPECT_NE(err.find(needle), std::string::npos)
      << "error does not name " << needle << ": " << err;
  if (o.open == "OK") {
    EXPECT_NE(err.find("'" + tenant + "'"), std::string::npos)
        << "error does not name tenant " << tenant << ": " << err;
    ExpectOthersIntact(o, tenant);
  }
}

std::string Name(const std::string& rel) {
  return fs::path(rel).filename().string();
}

class TamperTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (g_pristine == nullptr) BuildPristine();
  }
  static void TearDownTestSuite() {
    delete g_pristine;  // removes its directory
    g_pristine = nullptr;
  }
  void SetUp() override { ASSERT_NE(g_pristine, nullptr); }
};

TEST_F(TamperTest, PristineCopyReadsBackIntact) {
  Scratch s;
  const Outcome o = s.Read();
  ExpectSafe(o);
  EXPECT_TRUE(o.AllIntact()) << Describe(o);
  EXPECT_EQ(o.audit, "OK") << Describe(o);
  // The layout the cases rely on: two table files and a live log each.
  for (const std::string& id : kTenants) {
    EXPECT_GE(DbFiles(id, IsSst).size(), 2u) << id;
    EXPECT_GE(DbFiles(id, IsWal).size(), 1u) << id;
  }
}

// ---- table files -------------------------------------------------------------

// alpha's first table file (generation 1, data key version 1) and second
// (generation 2, version 2).
std::string AlphaSst(size_t i) { return DbFiles("alpha", IsSst).at(i); }

TEST_F(TamperTest, SstBitFlipInPrefixIsDetected) {
  // magic, format version, key version, nonce, key-check MAC.
  for (int64_t offset : {3, 9, 13, 20, 60}) {
    SCOPED_TRACE("offset " + std::to_string(offset));
    Scratch s;
    FlipBit(s.Path(AlphaSst(0)), offset);
    ExpectDetected(s.Read(), "alpha", Name(AlphaSst(0)));
  }
}

TEST_F(TamperTest, SstBitFlipInPrefixPaddingIsHarmless) {
  // Bytes 80..4095 of the prefix are zero padding that nothing reads.
  Scratch s;
  FlipBit(s.Path(AlphaSst(0)), 2000);
  const Outcome o = s.Read();
  ExpectSafe(o);
  EXPECT_TRUE(o.AllIntact()) << Describe(o);
}

TEST_F(TamperTest, SstBitFlipInBodyIsDetectedByBlockChecksum) {
  // Data blocks, the index or meta blocks, the footer. CTR mode passes the
  // flipped bit through to the plaintext, where RocksDB's block checksum
  // (or the footer's magic number and format) catches it.
  for (int64_t offset : {4096 + 100, 4096 + 5000, -300, -120, -10}) {
    SCOPED_TRACE("offset " + std::to_string(offset));
    Scratch s;
    FlipBit(s.Path(AlphaSst(0)), offset);
    ExpectDetected(s.Read(), "alpha", Name(AlphaSst(0)));
  }
}

TEST_F(TamperTest, SstTruncationIsDetected) {
  for (int64_t size : {0, 100, 4096, -100}) {
    SCOPED_TRACE("size " + std::to_string(size));
    Scratch s;
    Truncate(s.Path(AlphaSst(1)), size);
    ExpectDetected(s.Read(), "alpha", Name(AlphaSst(1)));
  }
}

TEST_F(TamperTest, SstAppendedGarbageIsDetected) {
  Scratch s;
  AppendGarbage(s.Path(AlphaSst(0)));
  ExpectDetected(s.Read(), "alpha", Name(AlphaSst(0)));
}

TEST_F(TamperTest, SstOfAnotherTenantIsDetected) {
  Scratch s;
  const std::string beta = DbFiles("beta", IsSst).at(0);
  Replace(s.Path(AlphaSst(0)), g_pristine->tree.at(beta));
  ExpectDetected(s.Read(), "alpha", Name(AlphaSst(0)));
}

TEST_F(TamperTest, SstsOfOneTenantSwappedAreDetected) {
  Scratch s;
  Replace(s.Path(AlphaSst(0)), g_pristine->tree.at(AlphaSst(1)));
  Replace(s.Path(AlphaSst(1)), g_pristine->tree.at(AlphaSst(0)));
  const Outcome o = s.Read();
  ExpectSafe(o);
  const std::string err = TenantError(o, "alpha");
  EXPECT_TRUE(err.find(Name(AlphaSst(0))) != std::string::npos ||
              err.find(Name(AlphaSst(1))) != std::string::npos)
      << Describe(o);
  ExpectOthersIntact(o, "alpha");
}

// ---- write-ahead log ---------------------------------------------------------

std::string AlphaWal() { return DbFiles("alpha", IsWal).back(); }

TEST_F(TamperTest, WalBitFlipInPrefixIsDetected) {
  for (int64_t offset : {3, 20, 60}) {
    SCOPED_TRACE("offset " + std::to_string(offset));
    Scratch s;
    FlipBit(s.Path(AlphaWal()), offset);
    ExpectDetected(s.Read(), "alpha", Name(AlphaWal()));
  }
}

TEST_F(TamperTest, WalBitFlipInBodyIsDetected) {
  // The first record, one in the middle, the last one: each holds synced,
  // acknowledged writes, so none may be dropped as if it were a torn tail
  // (RocksDB's default recovery mode did that: overwritten keys went back to
  // their older values).
  const int64_t size =
      static_cast<int64_t>(g_pristine->tree.at(AlphaWal()).size());
  for (int64_t offset :
       {int64_t{4096 + 20}, 4096 + (size - 4096) / 2, size - 5}) {
    SCOPED_TRACE("offset " + std::to_string(offset));
    Scratch s;
    FlipBit(s.Path(AlphaWal()), offset);
    const Outcome o = s.Read();
    ExpectDetected(o, "alpha", Name(AlphaWal()));
    EXPECT_NE(TenantError(o, "alpha").find("checksum mismatch"),
              std::string::npos)
        << Describe(o);
  }
}

TEST_F(TamperTest, WalTruncatedInsidePrefixIsDetected) {
  // RocksDB 7.8 asserts on such a file instead of reporting it.
  for (int64_t size : {1, 100, 4095}) {
    SCOPED_TRACE("size " + std::to_string(size));
    Scratch s;
    Truncate(s.Path(AlphaWal()), size);
    const Outcome o = s.Read();
    ExpectDetected(o, "alpha", Name(AlphaWal()));
    EXPECT_NE(TenantError(o, "alpha").find("shorter than its 4096-byte"),
              std::string::npos)
        << Describe(o);
  }
}

TEST_F(TamperTest, WalOfAnotherTenantIsDetected) {
  Scratch s;
  Replace(s.Path(AlphaWal()),
          g_pristine->tree.at(DbFiles("beta", IsWal).back()));
  ExpectDetected(s.Read(), "alpha", Name(AlphaWal()));
}

// Not detectable: a log cut at a record boundary, down to its prefix or to
// nothing, is what a crash before those writes leaves. The writes after the
// cut are gone and keys they overwrote read their previous values; nothing
// else changes and nothing unknown is returned.
TEST_F(TamperTest, WalCutAtRecordBoundaryLosesTheLaterWrites) {
  for (int64_t size : {0, 4096}) {
    SCOPED_TRACE("size " + std::to_string(size));
    Scratch s;
    Truncate(s.Path(AlphaWal()), size);
    const Outcome o = s.Read();
    EXPECT_TRUE(o.exited) << Describe(o);
    EXPECT_EQ(o.open, "OK") << Describe(o);
    // Generation 3 is lost: 60 new keys missing, 20 keys back at generation 2.
    for (const char* kind : {"get", "scan"}) {
      EXPECT_EQ(o.Count(kind, "alpha", "missing"), 60) << Describe(o);
      EXPECT_EQ(o.Count(kind, "alpha", "stale"), 20) << Describe(o);
      EXPECT_EQ(o.Count(kind, "alpha", "wrong"), 0) << Describe(o);
      EXPECT_EQ(o.Count(kind, "alpha", "errors"), 0) << Describe(o);
    }
    ExpectOthersIntact(o, "alpha");
  }
}

// A torn tail: the last record cut short. Dropped as a crash mid-write
// would leave it; everything before it is intact.
TEST_F(TamperTest, WalTornTailDropsOnlyTheLastWrite) {
  Scratch s;
  Truncate(s.Path(AlphaWal()), -10);
  const Outcome o = s.Read();
  EXPECT_TRUE(o.exited) << Describe(o);
  ExpectSafe(o);
  for (const char* kind : {"get", "scan"}) {
    EXPECT_EQ(o.Count(kind, "alpha", "missing"), 1) << Describe(o);
    EXPECT_EQ(o.Count(kind, "alpha", "ok"),
              static_cast<int>(History().size()) - 1)
        << Describe(o);
  }
  ExpectOthersIntact(o, "alpha");
}

// Garbage after the last record decrypts to noise: a record header whose
// length runs past the end is a torn tail (ignored); one that fits fails its
// checksum (the open fails, naming the log). Never a wrong value.
TEST_F(TamperTest, WalAppendedGarbageIsIgnoredOrDetected) {
  for (int round = 0; round < 3; ++round) {
    Scratch s;
    AppendGarbage(s.Path(AlphaWal()));
    const Outcome o = s.Read();
    ExpectSafe(o);
    if (!o.AllIntact()) ExpectDetected(o, "alpha", Name(AlphaWal()));
  }
}

// ---- MANIFEST, CURRENT, OPTIONS, IDENTITY ------------------------------------

std::string AlphaFile(bool (*pred)(const std::string&)) {
  return DbFiles("alpha", pred).back();
}

struct Tampering {
  std::string what;
  std::function<void(const std::string&)> apply;
};

TEST_F(TamperTest, ManifestTamperingIsDetected) {
  const std::string m = AlphaFile(IsManifest);
  const int64_t size = static_cast<int64_t>(g_pristine->tree.at(m).size());
  const std::vector<Tampering> cases = {
      {"flip in prefix", [](const std::string& p) { FlipBit(p, 20); }},
      {"flip in first record",
       [](const std::string& p) { FlipBit(p, 4096 + 30); }},
      {"flip in middle",
       [&](const std::string& p) { FlipBit(p, 4096 + (size - 4096) / 2); }},
      {"flip in last record", [](const std::string& p) { FlipBit(p, -5); }},
      {"truncate to 0", [](const std::string& p) { Truncate(p, 0); }},
      {"truncate inside prefix", [](const std::string& p) { Truncate(p, 100); }},
      {"another tenant's",
       [&](const std::string& p) {
         Replace(p, g_pristine->tree.at(DbFiles("beta", IsManifest).back()));
       }},
  };
  for (const Tampering& c : cases) {
    SCOPED_TRACE(c.what);
    Scratch s;
    c.apply(s.Path(m));
    ExpectDetected(s.Read(), "alpha", "MANIFEST");
  }
}

// Not detectable: the MANIFEST's torn tail is dropped like the WAL's, and an
// older copy of it is a consistent earlier state. RocksDB then deletes the
// table files the older copy does not list: their writes are lost (those
// still in a live log come back) and overwritten keys read older values.
TEST_F(TamperTest, ManifestRollbackIsNotDetected) {
  const std::string m = AlphaFile(IsManifest);
  ASSERT_TRUE(g_pristine->older.count(m)) << "MANIFEST renamed since";
  {
    SCOPED_TRACE("older copy");
    Scratch s;
    Replace(s.Path(m), g_pristine->older.at(m));
    const Outcome o = s.Read();
    EXPECT_TRUE(o.exited) << Describe(o);
    EXPECT_EQ(o.open, "OK") << Describe(o);
    EXPECT_EQ(o.Count("get", "alpha", "wrong"), 0) << Describe(o);
    EXPECT_EQ(o.Count("get", "alpha", "errors"), 0) << Describe(o);
    EXPECT_GT(o.Count("get", "alpha", "stale"), 0) << Describe(o);
    EXPECT_GT(o.Count("get", "alpha", "missing"), 0) << Describe(o);
    ExpectOthersIntact(o, "alpha");
  }
  for (const Tampering& c :
       std::vector<Tampering>{{"drop the tail", [](const std::string& p) { Truncate(p, -5); }},
                              {"append garbage", AppendGarbage}}) {
    SCOPED_TRACE(c.what);
    Scratch s;
    c.apply(s.Path(m));
    const Outcome o = s.Read();
    ExpectSafe(o);
    if (!o.AllIntact()) ExpectDetected(o, "alpha", "MANIFEST");
  }
}

TEST_F(TamperTest, CurrentTamperingIsDetected) {
  const std::string c = AlphaFile(IsCurrent);
  const std::vector<Tampering> cases = {
      {"flip in prefix", [](const std::string& p) { FlipBit(p, 20); }},
      {"flip in body", [](const std::string& p) { FlipBit(p, 4096 + 3); }},
      {"flip in file number", [](const std::string& p) { FlipBit(p, -3); }},
      {"truncate to 0", [](const std::string& p) { Truncate(p, 0); }},
      {"truncate inside prefix", [](const std::string& p) { Truncate(p, 100); }},
      {"drop newline", [](const std::string& p) { Truncate(p, -1); }},
      {"append garbage", AppendGarbage},
      {"another tenant's",
       [&](const std::string& p) {
         Replace(p, g_pristine->tree.at(DbFiles("beta", IsCurrent).back()));
       }},
  };
  for (const Tampering& k : cases) {
    SCOPED_TRACE(k.what);
    Scratch s;
    k.apply(s.Path(c));
    const Outcome o = s.Read();
    ExpectSafe(o);
    const std::string err = TenantError(o, "alpha");
    EXPECT_TRUE(err.find("CURRENT") != std::string::npos ||
                err.find("MANIFEST") != std::string::npos)
        << Describe(o);
    EXPECT_NE(err.find("'alpha'"), std::string::npos) << Describe(o);
    ExpectOthersIntact(o, "alpha");
  }
}

// RocksDB never reads OPTIONS files when it opens a database (it writes a
// new one): a change to their contents is harmless and not reported. Only a
// file shorter than its prefix is refused, as for every file.
TEST_F(TamperTest, OptionsTamperingIsHarmless) {
  {
    Scratch s;
    Truncate(s.Path(AlphaFile(IsOptions)), 100);
    ExpectDetected(s.Read(), "alpha", Name(AlphaFile(IsOptions)));
  }
  const std::vector<Tampering> cases = {
      {"flip in prefix", [](const std::string& p) { FlipBit(p, 20); }},
      {"flip in body", [](const std::string& p) { FlipBit(p, 4096 + 100); }},
      {"truncate to 0", [](const std::string& p) { Truncate(p, 0); }},
      {"append garbage", AppendGarbage},
  };
  for (const Tampering& k : cases) {
    SCOPED_TRACE(k.what);
    Scratch s;
    k.apply(s.Path(AlphaFile(IsOptions)));
    const Outcome o = s.Read();
    ExpectSafe(o);
    EXPECT_TRUE(o.AllIntact()) << Describe(o);
  }
}

TEST_F(TamperTest, IdentityTampering) {
  const std::vector<Tampering> detected = {
      {"flip in prefix", [](const std::string& p) { FlipBit(p, 20); }},
      {"truncate inside prefix", [](const std::string& p) { Truncate(p, 100); }},
      {"another tenant's",
       [](const std::string& p) {
         Replace(p, g_pristine->tree.at(DbFiles("beta", IsIdentity).back()));
       }},
  };
  for (const Tampering& k : detected) {
    SCOPED_TRACE(k.what);
    Scratch s;
    k.apply(s.Path(AlphaFile(IsIdentity)));
    ExpectDetected(s.Read(), "alpha", "IDENTITY");
  }
  // The body is the database's id, which data reads never use: a changed,
  // emptied or extended id goes unnoticed (RocksDB writes a new id for an
  // empty file).
  const std::vector<Tampering> harmless = {
      {"flip in body", [](const std::string& p) { FlipBit(p, 4096 + 3); }},
      {"truncate to 0", [](const std::string& p) { Truncate(p, 0); }},
      {"append garbage", AppendGarbage},
  };
  for (const Tampering& k : harmless) {
    SCOPED_TRACE(k.what);
    Scratch s;
    k.apply(s.Path(AlphaFile(IsIdentity)));
    const Outcome o = s.Read();
    ExpectSafe(o);
    EXPECT_TRUE(o.AllIntact()) << Describe(o);
  }
}

// ---- records: TENANT, CLUSTER, AUDIT -----------------------------------------

TEST_F(TamperTest, TenantRecordTamperingIsDetected) {
  const std::string rec = "tenants/alpha/TENANT";
  ASSERT_NE(g_pristine->older.at(rec), g_pristine->tree.at(rec));
  const std::vector<Tampering> cases = {
      {"flip in header", [](const std::string& p) { FlipBit(p, 3); }},
      {"flip in body", [](const std::string& p) { FlipBit(p, 40); }},
      {"flip in checksum", [](const std::string& p) { FlipBit(p, -3); }},
      {"truncate to 0", [](const std::string& p) { Truncate(p, 0); }},
      {"truncate to 10", [](const std::string& p) { Truncate(p, 10); }},
      {"drop tail", [](const std::string& p) { Truncate(p, -5); }},
      {"append garbage", AppendGarbage},
      {"beta's record",
       [](const std::string& p) {
         Replace(p, g_pristine->tree.at("tenants/beta/TENANT"));
       }},
  };
  for (const Tampering& k : cases) {
    SCOPED_TRACE(k.what);
    Scratch s;
    k.apply(s.Path(rec));
    const Outcome o = s.Read();
    ExpectSafe(o);
    EXPECT_EQ(o.open, "OK") << Describe(o);
    const std::string err = TenantError(o, "alpha");
    EXPECT_NE(err.find("alpha/TENANT"), std::string::npos) << Describe(o);
    EXPECT_NE(err.find("Corruption"), std::string::npos) << Describe(o);
    ExpectOthersIntact(o, "alpha");
  }
}

// An older copy of a tenant record is a valid record. Before a key rotation
// it lacks the newer key: the files that use it fail their key check, named.
// Otherwise (here: a quota change undone) nothing notices.
TEST_F(TamperTest, TenantRecordRollback) {
  {
    Scratch s;
    Replace(s.Path("tenants/alpha/TENANT"),
            g_pristine->older.at("tenants/alpha/TENANT"));
    const Outcome o = s.Read();
    ExpectSafe(o);
    const std::string err = TenantError(o, "alpha");
    EXPECT_NE(err.find("no data key version 2"), std::string::npos)
        << Describe(o);
    EXPECT_TRUE(err.find(".log") != std::string::npos ||
                err.find(".sst") != std::string::npos)
        << Describe(o);
    ExpectOthersIntact(o, "alpha");
  }
  {
    Scratch s;
    Replace(s.Path("tenants/beta/TENANT"),
            g_pristine->older.at("tenants/beta/TENANT"));
    const Outcome o = s.Read();
    ExpectSafe(o);
    EXPECT_TRUE(o.AllIntact()) << Describe(o);
  }
}

TEST_F(TamperTest, ClusterRecordTamperingIsDetected) {
  const std::vector<Tampering> cases = {
      {"flip in header", [](const std::string& p) { FlipBit(p, 3); }},
      {"flip in body", [](const std::string& p) { FlipBit(p, 40); }},
      {"truncate to 0", [](const std::string& p) { Truncate(p, 0); }},
      {"drop tail", [](const std::string& p) { Truncate(p, -5); }},
      {"append garbage", AppendGarbage},
  };
  for (const Tampering& k : cases) {
    SCOPED_TRACE(k.what);
    Scratch s;
    k.apply(s.Path("CLUSTER"));
    const Outcome o = s.Read();
    ExpectSafe(o);
    EXPECT_NE(o.open.find("Corruption"), std::string::npos) << Describe(o);
    EXPECT_NE(o.open.find("/CLUSTER"), std::string::npos) << Describe(o);
  }
  // An older copy (here: the one written at creation) is a valid record.
  Scratch s;
  Replace(s.Path("CLUSTER"), g_pristine->older.at("CLUSTER"));
  const Outcome o = s.Read();
  ExpectSafe(o);
  EXPECT_TRUE(o.AllIntact()) << Describe(o);
}

TEST_F(TamperTest, AuditTamperingIsDetectedByAuditVerify) {
  const std::vector<Tampering> detected = {
      {"flip in an entry", [](const std::string& p) { FlipBit(p, 200); }},
      {"truncate to 0", [](const std::string& p) { Truncate(p, 0); }},
      {"older copy",
       [](const std::string& p) { Replace(p, g_pristine->older.at("AUDIT")); }},
  };
  for (const Tampering& k : detected) {
    SCOPED_TRACE(k.what);
    Scratch s;
    k.apply(s.Path("AUDIT"));
    const Outcome o = s.Read();
    ExpectSafe(o);
    EXPECT_TRUE(o.AllIntact()) << Describe(o);  // data is not affected
    EXPECT_NE(o.audit.find("Corruption"), std::string::npos) << Describe(o);
    EXPECT_NE(o.audit.find("/AUDIT"), std::string::npos) << Describe(o);
  }
  // A final line without its newline is what a crash mid-append leaves: it
  // is ignored, as is garbage appended without a newline.
  const std::vector<Tampering> torn = {
      {"drop tail", [](const std::string& p) { Truncate(p, -20); }},
      {"append garbage", AppendGarbage},
  };
  for (const Tampering& k : torn) {
    SCOPED_TRACE(k.what);
    Scratch s;
    k.apply(s.Path("AUDIT"));
    const Outcome o = s.Read();
    ExpectSafe(o);
    EXPECT_TRUE(o.AllIntact()) << Describe(o);
    EXPECT_EQ(o.audit, "OK") << Describe(o);
  }
}

}  // namespace
}  // namespace coffer::test
