// Copyright (c) Coffer authors.
//
// Replication between two clusters in one process: a primary shipping every
// tenant's write-ahead log to a passive replica over mutually authenticated
// TLS. Convergence under concurrent writers and restarts of either side, lag
// reporting, the tenant lifecycle, reseeds when the log no longer holds what
// the replica needs, who is refused (geography, identity, CA), a hostile peer
// holding a valid certificate, and no plaintext on the replica.

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "coffer/coffer.h"
#include "engine/catalog.h"
#include "engine/storage.h"
#include "replication/chain.h"
#include "replication/frame.h"
#include "replication/proto/replication.pb.h"
#include "replication/tls_channel.h"
#include "rocksdb/comparator.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "tests/fault_fs.h"
#include "tests/family_id.h"
#include "tests/testutil.h"

namespace coffer {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr auto kWaitLimit = std::chrono::seconds(30);

// RawTlsPeer below writes to sockets the replica may have closed, which
// raises SIGPIPE. The library protects itself (checked with the default
// disposition by ChildProcessTest.RestartsDoNotKillAnApplicationWithSigpipe).
const bool kSigpipeIgnored = [] {
  return ::signal(SIGPIPE, SIG_IGN) != SIG_ERR;
}();

// Polls `done` every 20 ms until it holds or `limit` passes.
bool WaitFor(const std::function<bool()>& done,
             steady_clock::duration limit = kWaitLimit) {
  const auto deadline = steady_clock::now() + limit;
  for (;;) {
    if (done()) return true;
    if (steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(20));
  }
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ",") + s;
  return out;
}

// Audit entries of `cluster` with `action`.
std::vector<AuditEntry> AuditOf(Cluster* cluster, const std::string& action) {
  std::vector<AuditEntry> all, out;
  Status s = cluster->ReadAudit(0, &all);
  EXPECT_TRUE(s.ok()) << s.ToString();
  for (AuditEntry& e : all) {
    if (e.action == action) out.push_back(std::move(e));
  }
  return out;
}

// The whole audit trail of `cluster`, one entry a line (failure messages).
std::string AuditText(Cluster* cluster) {
  std::vector<AuditEntry> all;
  Status s = cluster->ReadAudit(0, &all);
  std::string out = s.ok() ? "" : s.ToString() + "\n";
  for (const AuditEntry& e : all) {
    out += "  " + e.action + " " + e.target + " " + e.outcome + " " + e.detail +
           "\n";
  }
  return out;
}

const TenantReplicationStatus* FindTenant(const ReplicationStatus& st,
                                          const std::string& id) {
  for (const TenantReplicationStatus& t : st.tenants) {
    if (t.tenant == id) return &t;
  }
  return nullptr;
}

std::string Describe(const ReplicationStatus& st) {
  std::ostringstream out;
  out << st.role << " " << st.cluster_id << " connection=" << st.connection
      << " peer=" << st.peer_cluster_id << " reseeds=" << st.reseeds
      << " connects=" << st.connects << " last_error='" << st.last_error << "'";
  for (const TenantReplicationStatus& t : st.tenants) {
    out << "\n  " << t.tenant << ": " << t.state
        << " primary_seq=" << t.primary_seq << " applied_seq=" << t.applied_seq
        << " lag_seqs=" << t.lag_seqs << " lag_seconds=" << t.lag_seconds
        << " reseeds=" << t.reseeds;
  }
  return out.str();
}

// The tenant's latest sequence number, from the database itself (the
// replication status only knows what this process wrote or read).
Status LatestSequence(Cluster* cluster, const std::string& id, uint64_t* seq) {
  std::unique_ptr<Tenant> t;
  Status s = cluster->GetTenant(id, &t);
  std::shared_ptr<const Snapshot> snap;
  if (s.ok()) s = t->GetSnapshot(&snap);
  if (s.ok()) *seq = snap->sequence();
  return s;
}

// Key-by-key differences between two scans; "" when equal.
std::string DiffMaps(const std::string& what,
                     const std::map<std::string, std::string>& want,
                     const std::map<std::string, std::string>& got) {
  std::ostringstream out;
  int shown = 0;
  size_t differing = 0;
  auto note = [&](const std::string& line) {
    differing++;
    if (shown++ < 5) out << "  " << what << ": " << line << "\n";
  };
  auto w = want.begin();
  auto g = got.begin();
  while (w != want.end() || g != got.end()) {
    if (g == got.end() || (w != want.end() && w->first < g->first)) {
      note("missing key '" + w->first.substr(0, 40) + "'");
      ++w;
    } else if (w == want.end() || g->first < w->first) {
      note("extra key '" + g->first.substr(0, 40) + "'");
      ++g;
    } else {
      if (w->second != g->second) {
        note("key '" + w->first.substr(0, 40) + "' has value '" +
             g->second.substr(0, 40) + "', expected '" +
             w->second.substr(0, 40) + "'");
      }
      ++w;
      ++g;
    }
  }
  if (differing == 0) return "";
  out << "  " << what << ": " << differing << " keys differ (" << want.size()
      << " expected, " << got.size() << " present)\n";
  return out.str();
}

std::map<std::string, std::string> ScanTenant(Cluster* cluster,
                                              const std::string& id) {
  std::unique_ptr<Tenant> t;
  Status s = cluster->GetTenant(id, &t);
  EXPECT_TRUE(s.ok()) << id << ": " << s.ToString();
  if (!s.ok()) return {};
  return test::ScanAll(t.get());
}

// "" when a replica's key versions follow its primary's: the same current
// version, none the primary lacks (so none it retired), and none of
// `retired`. The replica may hold fewer: versions no file of its own needs.
std::string FollowsKeys(const TenantKeyStatus& primary,
                        const TenantKeyStatus& replica,
                        const std::vector<uint32_t>& retired) {
  std::vector<uint32_t> p, r;
  for (const KeyVersionInfo& k : primary.versions) p.push_back(k.version);
  for (const KeyVersionInfo& k : replica.versions) r.push_back(k.version);
  std::string out;
  if (primary.current_version != replica.current_version) {
    out += "current version " + std::to_string(replica.current_version) +
           ", primary's " + std::to_string(primary.current_version) + "; ";
  }
  for (uint32_t v : r) {
    if (std::find(p.begin(), p.end(), v) == p.end() ||
        std::find(retired.begin(), retired.end(), v) != retired.end()) {
      out += "version " + std::to_string(v) + " survives; ";
    }
  }
  if (out.empty()) return "";
  return out + "primary " + ::testing::PrintToString(p) + ", replica " +
         ::testing::PrintToString(r);
}

// A valid RocksDB write batch of one Put.
std::string OnePutBatch(const std::string& key, const std::string& value) {
  rocksdb::WriteBatch wb;
  rocksdb::Status rs = wb.Put(key, value);
  EXPECT_TRUE(rs.ok()) << rs.ToString();
  return wb.Data();
}

// ---- numbered streams -------------------------------------------------------
//
// Batch i of a tenant puts "n/<i>" and "last" (both valued "<tenant>#<i>"),
// every 10th deletes "n/<i-5>" and every 100th deletes the range
// [n/<i-99>, n/<i-90>). The expected contents are kept alongside, so a batch
// that is lost, applied twice or out of order shows up as a missing key, a
// resurrected key or a wrong "last".
class NumberedStreams {
 public:
  NumberedStreams() = default;
  NumberedStreams(const NumberedStreams&) = delete;
  NumberedStreams& operator=(const NumberedStreams&) = delete;
  ~NumberedStreams() { Stop(); }

  static std::string Key(uint64_t i) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "n/%08llu",
                  static_cast<unsigned long long>(i));
    return buf;
  }
  static std::string Value(const std::string& tenant, uint64_t i) {
    return tenant + "#" + std::to_string(i) + "#" + std::string(i % 37, 'v');
  }

  Status WriteNext(Tenant* t) {
    const std::string& id = t->id();
    const uint64_t i = next_[id];
    auto& model = expected_[id];
    WriteBatch b;
    b.Put(Key(i), Value(id, i));
    b.Put("last", Value(id, i));
    if (i % 10 == 9) b.Delete(Key(i - 5));
    if (i % 100 == 99) b.DeleteRange(Key(i - 99), Key(i - 90));
    Status s = t->Write(WriteOptions(), b);
    if (!s.ok()) return s;
    model[Key(i)] = Value(id, i);
    model["last"] = Value(id, i);
    if (i % 10 == 9) model.erase(Key(i - 5));
    if (i % 100 == 99) {
      model.erase(model.lower_bound(Key(i - 99)),
                  model.lower_bound(Key(i - 90)));
    }
    next_[id] = i + 1;
    return s;
  }

  // Writes round-robin to `tenants` of `cluster` on a thread until Stop().
  void Start(Cluster* cluster, const std::vector<std::string>& tenants) {
    stop_ = false;
    thread_ = std::thread([this, cluster, tenants] {
      std::vector<std::unique_ptr<Tenant>> handles(tenants.size());
      for (size_t i = 0; i < tenants.size(); ++i) {
        if (!cluster->GetTenant(tenants[i], &handles[i]).ok()) {
          errors_++;
          return;
        }
      }
      for (uint64_t n = 0; !stop_.load(); ++n) {
        Status s = WriteNext(handles[n % handles.size()].get());
        if (!s.ok()) {
          errors_++;
          last_error_ = s.ToString();
        }
        if (n % 8 == 7)
          std::this_thread::sleep_for(std::chrono::microseconds(400));
      }
    });
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  // After Stop().
  const std::map<std::string, std::string>& expected(const std::string& id) {
    return expected_[id];
  }
  uint64_t written(const std::string& id) { return next_[id]; }
  int errors() const { return errors_.load(); }
  const std::string& last_error() const { return last_error_; }

 private:
  std::map<std::string, uint64_t> next_;
  std::map<std::string, std::map<std::string, std::string>> expected_;
  std::atomic<bool> stop_{false};
  std::atomic<int> errors_{0};
  std::string last_error_;
  std::thread thread_;
};

// A TLS client writing raw bytes, for frames TlsChannel never sends.
class RawTlsPeer {
 public:
  RawTlsPeer() = default;
  RawTlsPeer(const RawTlsPeer&) = delete;
  RawTlsPeer& operator=(const RawTlsPeer&) = delete;
  ~RawTlsPeer() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
  }

  Status Connect(const TlsContext& context, int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 ||
        ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      return Status::IOError("connect");
    }
    struct timeval tv = {5, 0};  // reads and writes never hang the test
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    ssl_ = SSL_new(context.get());
    if (ssl_ == nullptr || SSL_set_fd(ssl_, fd_) != 1 ||
        SSL_connect(ssl_) != 1) {
      return Status::IOError("TLS handshake");
    }
    return Status::OK();
  }

  Status Write(const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      int n = SSL_write(ssl_, bytes.data() + off,
                        static_cast<int>(bytes.size() - off));
      if (n <= 0) return Status::IOError("write");
      off += static_cast<size_t>(n);
    }
    return Status::OK();
  }

  Status Send(const replpb::Envelope& e) {
    std::string frame;
    Status s = EncodeFrame(e.SerializeAsString(), &frame);
    return s.ok() ? Write(frame) : s;
  }

  // The next message; IOError once the peer closed (or after 5 s).
  Status Read(replpb::Envelope* e) {
    for (;;) {
      std::string payload;
      bool have = false;
      Status s = decoder_.Next(&payload, &have);
      if (!s.ok()) return s;
      if (have) {
        return e->ParseFromString(payload) ? Status::OK()
                                           : Status::Corruption("parse");
      }
      char buf[16384];
      int n = SSL_read(ssl_, buf, sizeof(buf));
      if (n <= 0) return Status::IOError("closed");
      decoder_.Feed(std::string_view(buf, static_cast<size_t>(n)));
    }
  }

 private:
  int fd_ = -1;
  SSL* ssl_ = nullptr;
  FrameDecoder decoder_;
};

class ReplicationTest : public ::testing::Test {
 protected:
  // One CA ("ca") for clusters c1, c2 (the replica), c3 and other; a second
  // CA ("ca2") that also issued a "c1" certificate.
  static void SetUpTestSuite() {
    ASSERT_TRUE(kSigpipeIgnored);
    certs_ = new test::TempDir();
    const std::string script =
        std::string(COFFER_SOURCE_DIR) + "/tools/gen_test_certs.sh";
    ASSERT_EQ(0, std::system(("bash " + script + " " + certs_->Sub("ca") +
                              " c1 c2 c3 other")
                                 .c_str()));
    ASSERT_EQ(
        0, std::system(
               ("bash " + script + " " + certs_->Sub("ca2") + " c1").c_str()));
  }
  static void TearDownTestSuite() {
    delete certs_;
    certs_ = nullptr;
  }

  // The certificate of `name` issued by `ca`; every side trusts only "ca".
  static TlsFiles Tls(const std::string& name, const std::string& ca = "ca") {
    const std::string dir = certs_->Sub(ca);
    return {dir + "/" + name + ".pem", dir + "/" + name + ".key",
            certs_->Sub("ca") + "/ca.pem"};
  }

  static ClusterOptions Identity(const std::string& id,
                                 const std::string& geography, bool replica) {
    ClusterOptions o;
    o.cluster_id = id;
    o.region = geography + "-1";
    o.geography = geography;
    o.replica = replica;
    return o;
  }

  void SetUp() override {
    key_file_ = tmp_.Sub("master.key");
    test::WriteKeyFile(key_file_);
    keys_ = test::LoadKeys(key_file_);
    ASSERT_NE(nullptr, keys_);
    primary_dir_ = tmp_.Sub("primary");
    replica_dir_ = tmp_.Sub("replica");
  }

  void TearDown() override {
    server_.reset();
    primary_.reset();
    replica_.reset();
  }

  // ---- the replica ----

  static OpenOptions ReplicaOpenOptions() {
    OpenOptions o;
    o.maintenance_interval_ms = 0;
    return o;
  }

  Status CreateReplica(const std::string& geography = "eu") {
    return Cluster::Create(replica_dir_, Identity("c2", geography, true),
                           ReplicaOpenOptions(), keys_, &replica_);
  }

  // Closes the replica cluster (stopping its server first) and opens it.
  Status ReopenReplica() {
    server_.reset();
    replica_.reset();
    return Cluster::Open(replica_dir_, ReplicaOpenOptions(), keys_, &replica_);
  }

  // Serves the replica on `port` (0: any free one, remembered in port_).
  Status StartServer(int port = 0) {
    ReplicaServerOptions o;
    o.listen_address = "127.0.0.1:" + std::to_string(port);
    o.tls = Tls("c2");
    o.log = [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(log_mu_);
      log_.push_back(line);
    };
    Status s = ReplicaServer::Start(replica_.get(), o, &server_);
    if (s.ok()) port_ = server_->port();
    return s;
  }

  void StopServer() { server_.reset(); }

  // The last lines the replica server logged.
  std::string RecentLog() {
    std::lock_guard<std::mutex> lock(log_mu_);
    std::string out;
    const size_t from = log_.size() > 8 ? log_.size() - 8 : 0;
    for (size_t i = from; i < log_.size(); ++i) out += "\n  log: " + log_[i];
    return out;
  }

  // ---- the primary ----

  OpenOptions PrimaryOptions(const std::string& cert = "c1",
                             const std::string& ca = "ca") const {
    OpenOptions o;
    o.maintenance_interval_ms = 0;
    o.replication.replica_address = "127.0.0.1:" + std::to_string(port_);
    o.replication.tls = Tls(cert, ca);
    o.replication.reconnect_delay_ms = 50;
    return o;
  }

  Status CreatePrimary(const OpenOptions& o) {
    return Cluster::Create(primary_dir_, Identity("c1", "eu", false), o, keys_,
                           &primary_);
  }

  // A replica serving on a free port and a primary (PrimaryOptions())
  // shipping to it, with `tenants` created on the primary.
  Status StartPair(std::initializer_list<std::string> tenants = {}) {
    Status s = CreateReplica();
    if (s.ok()) s = StartServer();
    if (s.ok()) s = CreatePrimary(PrimaryOptions());
    for (const std::string& t : tenants) {
      if (s.ok()) s = primary_->CreateTenant(t, TenantOptions());
    }
    return s;
  }

  // Destroys the primary (if open) and opens its directory with `o`.
  Status ReopenPrimary(const OpenOptions& o) {
    primary_.reset();
    return Cluster::Open(primary_dir_, o, keys_, &primary_);
  }

  // n records "<prefix><i>" -> value of `value_bytes` in batches of 16.
  void Fill(const std::string& tenant, int n, const std::string& prefix,
            size_t value_bytes = 40) {
    std::unique_ptr<Tenant> t;
    ASSERT_OK(primary_->GetTenant(tenant, &t));
    WriteBatch b;
    for (int i = 0; i < n; ++i) {
      b.Put(prefix + std::to_string(i),
            prefix + std::to_string(i) + "=" + test::RandomString(value_bytes));
      if (b.Count() == 16 || i == n - 1) {
        ASSERT_OK(t->Write(WriteOptions(), b));
        b.Clear();
      }
    }
  }

  // Lets running writers go on for at least `ms` and `count` more writes
  // (a slow build, say under ThreadSanitizer, writes far fewer in the same
  // time; at most a minute).
  static void KeepWriting(const std::atomic<uint64_t>& writes, int ms,
                          uint64_t count) {
    const uint64_t target = writes.load() + count;
    std::this_thread::sleep_for(milliseconds(ms));
    const auto deadline = steady_clock::now() + std::chrono::seconds(60);
    while (writes.load() < target && steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(10));
    }
  }

  // `threads` writers put, delete, and write batches (with range deletes)
  // to random tenants of `ids` until *stop; each write that fails counts in
  // *errors. Returns the threads; every write counts in *writes.
  std::vector<std::thread> StartWriters(const std::vector<std::string>& ids,
                                        int threads, std::atomic<bool>* stop,
                                        std::atomic<int>* errors,
                                        std::atomic<uint64_t>* writes) {
    std::vector<std::thread> out;
    for (int w = 0; w < threads; ++w) {
      out.emplace_back([this, ids, w, stop, errors, writes] {
        std::vector<std::unique_ptr<Tenant>> t(ids.size());
        for (size_t i = 0; i < ids.size(); ++i) {
          if (!primary_->GetTenant(ids[i], &t[i]).ok()) (*errors)++;
        }
        std::mt19937 rng(w * 104729 + 7);
        for (uint64_t n = 0; !stop->load(); ++n) {
          Tenant* tenant = t[rng() % ids.size()].get();
          if (tenant == nullptr) return;
          const std::string key = "k" + std::to_string(rng() % 5000);
          const std::string value = "w" + std::to_string(w) + "/" +
                                    std::to_string(n) + "/" +
                                    test::RandomString(rng() % 200);
          Status s;
          if (n % 5 == 4) {
            WriteBatch b;
            b.Put(key, value);
            b.Delete(key + "x");
            b.DeleteRange(key + "a", key + "b");
            s = tenant->Write(WriteOptions(), b);
          } else if (n % 7 == 6) {
            s = tenant->Delete(WriteOptions(), key);
          } else {
            s = tenant->Put(WriteOptions(), key, value);
          }
          if (!s.ok()) (*errors)++;
          (*writes)++;
        }
      });
    }
    return out;
  }

  // ---- convergence ----

  // "" when the primary is connected, every tenant caught up with the
  // replica holding each tenant's latest sequence, and both list the same
  // tenants; else what is missing.
  std::string CaughtUpNow() {
    ReplicationStatus st;
    Status s = primary_->GetReplicationStatus(&st);
    if (!s.ok()) return s.ToString();
    if (st.connection != "connected") return Describe(st);
    const std::vector<std::string> ids = primary_->ListTenants();
    if (st.tenants.size() != ids.size()) return Describe(st);
    for (const std::string& id : ids) {
      const TenantReplicationStatus* t = FindTenant(st, id);
      if (t == nullptr || t->state != "caught-up") return Describe(st);
      uint64_t latest = 0;
      s = LatestSequence(primary_.get(), id, &latest);
      if (!s.ok()) return id + ": " + s.ToString();
      if (t->applied_seq < latest) {
        return "tenant " + id + " reported caught-up at " +
               std::to_string(t->applied_seq) + " but its latest sequence is " +
               std::to_string(latest) + "\n" + Describe(st);
      }
    }
    if (replica_->ListTenants() != ids) {
      return "tenants: primary [" + Join(ids) + "], replica [" +
             Join(replica_->ListTenants()) + "]";
    }
    return "";
  }

  // Waits up to 30 s for CaughtUpNow(); "" on success.
  std::string WaitCaughtUp() {
    std::string why;
    if (WaitFor([&] { return (why = CaughtUpNow()).empty(); })) return "";
    return "not caught up after 30 s: " + why + RecentLog();
  }

  // Differences between the primary's and the replica's tenants and their
  // contents, read with iterators; "" when identical.
  std::string DiffContents() {
    std::string out;
    const std::vector<std::string> ids = primary_->ListTenants();
    const std::vector<std::string> rids = replica_->ListTenants();
    if (ids != rids) {
      out += "tenants: primary [" + Join(ids) + "], replica [" + Join(rids) +
             "]\n";
    }
    for (const std::string& id : ids) {
      if (std::find(rids.begin(), rids.end(), id) == rids.end()) continue;
      out += DiffMaps(id, ScanTenant(primary_.get(), id),
                      ScanTenant(replica_.get(), id));
    }
    return out;
  }

  // Waits for convergence, stops the replica server (port_ stays known for
  // a restart) and compares every tenant key by key.
  void ExpectConverged() {
    const std::string wait = WaitCaughtUp();
    ASSERT_EQ("", wait);
    StopServer();
    EXPECT_EQ("", DiffContents());
  }

  static test::TempDir* certs_;
  test::TempDir tmp_;
  std::string key_file_, primary_dir_, replica_dir_;
  std::shared_ptr<KeyProvider> keys_;
  std::unique_ptr<Cluster> replica_;
  std::unique_ptr<ReplicaServer> server_;
  std::unique_ptr<Cluster> primary_;
  int port_ = 0;
  std::mutex log_mu_;
  std::vector<std::string> log_;
};

test::TempDir* ReplicationTest::certs_ = nullptr;

// ---- 1. convergence ---------------------------------------------------------

TEST_F(ReplicationTest, ConcurrentWritersConverge) {
  ASSERT_OK(StartPair());
  constexpr int kTenants = 4;
  std::vector<std::string> ids;
  for (int i = 0; i < kTenants; ++i) {
    ids.push_back("t" + std::to_string(i));
    ASSERT_OK(primary_->CreateTenant(ids.back(), TenantOptions()));
  }

  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::atomic<uint64_t> writes{0}, range_deletes{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      std::vector<std::unique_ptr<Tenant>> t(kTenants);
      for (int i = 0; i < kTenants; ++i) {
        if (!primary_->GetTenant(ids[i], &t[i]).ok()) errors++;
      }
      std::mt19937 rng(w * 7919 + 1);
      auto key = [&](uint32_t k) {
        char buf[16];
        std::snprintf(buf, sizeof(buf), "k%05u", k);
        return std::string(buf);
      };
      for (uint64_t n = 0; !stop.load(); ++n) {
        Tenant* tenant = t[rng() % kTenants].get();
        if (tenant == nullptr) break;
        const uint32_t k = rng() % 2900;  // k + 60 stays in order
        const std::string value = "w" + std::to_string(w) + "/" +
                                  std::to_string(n) + "/" +
                                  test::RandomString(rng() % 120);
        Status s;
        switch (rng() % 10) {
          case 0:
          case 1:
          case 2:
          case 3:
            s = tenant->Put(WriteOptions(), key(k), value);
            break;
          case 4:
          case 5:
            s = tenant->Delete(WriteOptions(), key(k));
            break;
          case 6:
          case 7:
          case 8: {
            WriteBatch b;
            for (int j = 0; j < 5; ++j) b.Put(key(k + j * 11), value);
            b.Delete(key(k + 3));
            s = tenant->Write(WriteOptions(), b);
            break;
          }
          default: {
            WriteBatch b;
            b.DeleteRange(key(k), key(k + 40));
            b.Put(key(k + 45), value);
            s = tenant->Write(WriteOptions(), b);
            range_deletes++;
            break;
          }
        }
        if (!s.ok()) errors++;
        writes++;
        if (n % 16 == 15)
          std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    });
  }
  std::this_thread::sleep_for(milliseconds(1500));
  stop = true;
  for (std::thread& t : writers) t.join();
  EXPECT_EQ(0, errors.load());
  EXPECT_GT(writes.load(), 1000u);
  EXPECT_GT(range_deletes.load(), 10u);

  ASSERT_EQ("", WaitCaughtUp());
  ReplicationStatus p, r;
  ASSERT_OK(primary_->GetReplicationStatus(&p));
  // The replica's own view while its server runs.
  ASSERT_OK(replica_->GetReplicationStatus(&r));
  EXPECT_EQ("primary", p.role);
  EXPECT_EQ("replica", r.role);
  EXPECT_EQ("connected", p.connection);
  EXPECT_EQ("connected", r.connection);
  EXPECT_EQ("c2", p.peer_cluster_id);
  EXPECT_EQ("c1", r.peer_cluster_id);
  EXPECT_GT(p.batches, 0u);
  EXPECT_EQ(1u, p.connects);
  EXPECT_EQ(p.batches, r.batches) << "every shipped batch applied once";
  EXPECT_EQ(0u, p.reseeds);
  ASSERT_EQ(static_cast<size_t>(kTenants), p.tenants.size()) << Describe(p);
  ASSERT_EQ(static_cast<size_t>(kTenants), r.tenants.size()) << Describe(r);
  for (const std::string& id : ids) {
    const TenantReplicationStatus* pt = FindTenant(p, id);
    const TenantReplicationStatus* rt = FindTenant(r, id);
    ASSERT_NE(nullptr, pt);
    ASSERT_NE(nullptr, rt);
    uint64_t latest = 0;
    ASSERT_OK(LatestSequence(primary_.get(), id, &latest));
    EXPECT_EQ(latest, pt->primary_seq) << id;
    EXPECT_EQ(pt->primary_seq, pt->applied_seq) << id;
    EXPECT_EQ(0u, pt->lag_seqs) << id;
    EXPECT_EQ(0.0, pt->lag_seconds) << id;
    EXPECT_EQ("caught-up", pt->state) << id;
    EXPECT_EQ(latest, rt->applied_seq) << id << "\n" << Describe(r);
    EXPECT_EQ(rt->primary_seq, rt->applied_seq) << id;
    EXPECT_EQ(0u, rt->lag_seqs) << id;
    EXPECT_EQ(0.0, rt->lag_seconds) << id;
    EXPECT_EQ("caught-up", rt->state) << id;
    EXPECT_EQ(pt->applied_commit_unix_micros, rt->applied_commit_unix_micros)
        << id;
  }
  StopServer();
  EXPECT_EQ("", DiffContents());
  for (const std::string& id : ids) {
    EXPECT_FALSE(ScanTenant(replica_.get(), id).empty()) << id;
  }
}

// Batches just committed ship from memory (not read back from the log),
// a rekey's marker too (the log holding it goes with the old key: reading
// it from there cost a reseed); what memory does not hold — here the
// backlog a previous primary process left — ships from the log. The replica
// ends up with exactly the primary's contents either way.
TEST_F(ReplicationTest, ShipsFromMemoryAndFromTheLogWhereMemoryLacks) {
  ASSERT_OK(StartPair());
  const std::vector<std::string> ids = {"m0", "m1", "m2"};
  for (const std::string& id : ids) {
    ASSERT_OK(primary_->CreateTenant(id, TenantOptions()));
  }
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::atomic<uint64_t> writes{0};
  std::vector<std::thread> writers = StartWriters(ids, 3, &stop, &errors, &writes);
  std::this_thread::sleep_for(milliseconds(700));
  // A rekey while the writers go on: its marker record never passes
  // through the write path, and the tenant's log switches.
  KeyRotationReport rekey;
  ASSERT_OK(primary_->RotateTenantKey("m1", /*rekey=*/true, &rekey));
  KeepWriting(writes, 500, 1200);
  stop = true;
  for (std::thread& t : writers) t.join();
  EXPECT_EQ(0, errors.load());
  ASSERT_EQ("", WaitCaughtUp());
  ReplicationStatus p;
  ASSERT_OK(primary_->GetReplicationStatus(&p));
  EXPECT_GT(writes.load(), 1000u);
  EXPECT_EQ(0u, p.reseeds) << Describe(p);
  EXPECT_LT(p.batches_from_log * 4, p.batches)
      << "most batches ship from memory: " << p.batches_from_log << " of "
      << p.batches << " from the log";

  // The replica away while writes go on, then this primary process ends:
  // the next one finds the backlog in the log only.
  const int port = port_;
  StopServer();
  stop = false;
  writers = StartWriters(ids, 2, &stop, &errors, &writes);
  KeepWriting(writes, 300, 1200);
  stop = true;
  for (std::thread& t : writers) t.join();
  EXPECT_EQ(0, errors.load());
  ASSERT_OK(ReopenPrimary(PrimaryOptions()));
  ASSERT_OK(StartServer(port));
  ASSERT_EQ("", WaitCaughtUp());
  ASSERT_OK(primary_->GetReplicationStatus(&p));
  EXPECT_GT(p.batches, 1000u);
  EXPECT_EQ(p.batches, p.batches_from_log) << "the backlog is in the log only";
  const uint64_t backlog = p.batches;
  // Once caught up, new writes ship from memory again.
  stop = false;
  writers = StartWriters(ids, 2, &stop, &errors, &writes);
  KeepWriting(writes, 300, 1200);
  stop = true;
  for (std::thread& t : writers) t.join();
  EXPECT_EQ(0, errors.load());
  ExpectConverged();
  ASSERT_OK(primary_->GetReplicationStatus(&p));
  EXPECT_EQ(0u, p.reseeds) << Describe(p);
  EXPECT_GT(p.batches, backlog + 1000);
  EXPECT_LT((p.batches_from_log - backlog) * 4, p.batches - backlog)
      << p.batches_from_log - backlog << " of " << p.batches - backlog
      << " new batches from the log";
}

// With no memory for committed batches everything ships from the log, read
// while writers keep appending to it; with a little, the stream keeps
// switching between memory and the log (most pushes dropped). Both
// converge, nothing skipped or repeated.
TEST_F(ReplicationTest, ConvergesFromTheLogAloneAndFromATinyQueue) {
  for (size_t queue_bytes : {size_t{0}, size_t{4096}}) {
    SCOPED_TRACE("commit_queue_bytes " + std::to_string(queue_bytes));
    primary_.reset();
    server_.reset();
    replica_.reset();
    std::filesystem::remove_all(primary_dir_);
    std::filesystem::remove_all(replica_dir_);
    ASSERT_OK(CreateReplica());
    ASSERT_OK(StartServer());
    OpenOptions o = PrimaryOptions();
    o.replication.commit_queue_bytes = queue_bytes;
    ASSERT_OK(CreatePrimary(o));
    const std::vector<std::string> ids = {"q0", "q1"};
    for (const std::string& id : ids) {
      ASSERT_OK(primary_->CreateTenant(id, TenantOptions()));
    }
    std::atomic<bool> stop{false};
    std::atomic<int> errors{0};
    std::atomic<uint64_t> writes{0};
    std::vector<std::thread> writers =
        StartWriters(ids, 4, &stop, &errors, &writes);
    KeepWriting(writes, 1000, 1200);
    stop = true;
    for (std::thread& t : writers) t.join();
    EXPECT_EQ(0, errors.load());
    EXPECT_GT(writes.load(), 1000u);
    ASSERT_EQ("", WaitCaughtUp());
    ReplicationStatus p, r;
    ASSERT_OK(primary_->GetReplicationStatus(&p));
    ASSERT_OK(replica_->GetReplicationStatus(&r));
    EXPECT_EQ(p.batches, r.batches) << "every shipped batch applied once";
    if (queue_bytes == 0) {
      EXPECT_EQ(p.batches, p.batches_from_log);
    } else {
      EXPECT_GT(p.batches_from_log, 0u);
      EXPECT_LT(p.batches_from_log, p.batches);
    }
    ExpectConverged();
  }
}

// A batch the primary refuses is not half applied, does not stop later
// writes, and never reaches the replica: a range whose end sorts before its
// begin is refused before anything is logged.
TEST_F(ReplicationTest, RefusedBatchNeitherAppliesNorShips) {
  ASSERT_OK(StartPair({"t0"}));
  Fill("t0", 10, "k");
  ASSERT_EQ("", WaitCaughtUp());
  std::unique_ptr<Tenant> t;
  ASSERT_OK(primary_->GetTenant("t0", &t));
  WriteBatch b;
  b.Put("half", "applied");
  b.DeleteRange("z", "a");
  Status s = t->Write(WriteOptions(), b);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_EQ("NOT_FOUND", test::GetValue(t.get(), "half"))
      << "a refused batch was partly applied";
  s = t->Put(WriteOptions(), "after", "v");
  ASSERT_TRUE(s.ok()) << "a refused batch stopped every later write: "
                      << s.ToString();
  ASSERT_NO_FATAL_FAILURE(ExpectConverged());
  std::unique_ptr<Tenant> r;
  ASSERT_OK(replica_->GetTenant("t0", &r));
  EXPECT_EQ("v", test::GetValue(r.get(), "after"));
  EXPECT_EQ("NOT_FOUND", test::GetValue(r.get(), "half"));
}

// Writes are capped at kMaxWriteBytes so that every log record fits one
// replication frame: the largest allowed writes, from several writers at once
// (RocksDB merges concurrent writes into one log record), replicate; one byte
// more is refused before anything is logged, and replication goes on.
TEST_F(ReplicationTest, WritesUpToTheCapReplicateAndLargerAreRefused) {
  ASSERT_OK(StartPair({"big"}));
  std::unique_ptr<Tenant> t;
  ASSERT_OK(primary_->GetTenant("big", &t));
  std::vector<std::thread> writers;
  std::atomic<int> failures{0};
  for (int w = 0; w < 3; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < 2; ++i) {
        // Key + value + the batch's own encoding stay under the cap.
        const std::string key = "w" + std::to_string(w) + "-" + std::to_string(i);
        const std::string value(kMaxWriteBytes - 64, char('a' + w));
        if (!t->Put(WriteOptions(), key, value).ok()) ++failures;
        if (!t->Put(WriteOptions(), key + "-small", "s").ok()) ++failures;
      }
    });
  }
  for (std::thread& th : writers) th.join();
  ASSERT_EQ(0, failures.load());

  const std::string over(kMaxWriteBytes, 'x');
  Status s = t->Put(WriteOptions(), "over", over);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(std::string::npos, s.message().find("exceeds the limit"))
      << s.ToString();
  WriteBatch many;
  for (int i = 0; i < 9; ++i) many.Put("m" + std::to_string(i), over.substr(0, 1 << 20));
  s = t->Write(WriteOptions(), many);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_EQ("NOT_FOUND", test::GetValue(t.get(), "over"));
  EXPECT_EQ("NOT_FOUND", test::GetValue(t.get(), "m0"));

  ASSERT_OK(t->Put(WriteOptions(), "after", "v"));
  ASSERT_NO_FATAL_FAILURE(ExpectConverged());
  std::unique_ptr<Tenant> r;
  ASSERT_OK(replica_->GetTenant("big", &r));
  EXPECT_EQ(std::string(kMaxWriteBytes - 64, 'b'), test::GetValue(r.get(), "w1-1"));
  EXPECT_EQ("v", test::GetValue(r.get(), "after"));
}

// The shipper's memory and the replica's backlog are bounded by the window:
// a replica that reads but never acknowledges receives at most
// max_unacked_bytes plus one message, the primary's writes never wait for
// it, and an acknowledgement opens the window again.
TEST_F(ReplicationTest, UnacknowledgedBytesStayWithinTheWindow) {
  std::unique_ptr<TlsContext> server_tls;
  const TlsFiles f = Tls("c2");
  ASSERT_OK(TlsContext::Create({f.cert_file, f.key_file, f.ca_file},
                               /*server=*/true, &server_tls));
  std::unique_ptr<TlsListener> listener;
  ASSERT_OK(TlsListener::Listen("127.0.0.1:0", &listener));
  port_ = listener->port();

  constexpr size_t kWindow = 256 << 10;
  constexpr size_t kMessage = 32 << 10;
  std::atomic<uint64_t> received{0};  // batch payload bytes
  std::atomic<uint64_t> last_end{0};
  std::atomic<uint64_t> created{0};
  std::atomic<bool> ack{false};
  std::atomic<bool> stop{false};
  std::atomic<bool> served{false};
  std::thread fake_replica([&] {
    std::unique_ptr<TlsChannel> ch;
    if (!listener->Accept(*server_tls, 10000, &ch).ok()) return;
    replpb::Envelope m;
    if (!ch->Receive(&m, 5000).ok() || !m.has_hello()) return;
    replpb::Envelope reply;
    replpb::HelloReply* r = reply.mutable_hello_reply();
    r->set_accepted(true);
    *r->mutable_replica() = m.hello();
    r->mutable_replica()->set_cluster_id("c2");
    r->mutable_replica()->set_role("replica");
    if (!ch->Send(reply).ok()) return;
    served = true;
    while (!stop.load()) {
      bool got = false;
      replpb::Envelope in;
      if (!ch->TryReceive(&in, 50, &got).ok()) return;
      if (got && in.has_tenant_event()) {
        catalogpb::TenantBody body;
        if (body.ParseFromString(in.tenant_event().tenant_body())) {
          created = body.created_unix_micros();
        }
      }
      if (got && in.has_batch()) {
        received += in.batch().data().size();
        last_end = in.batch().first_seq() + in.batch().count() - 1;
      }
      if (ack.exchange(false)) {
        replpb::Envelope a;
        replpb::TenantPosition* p = a.mutable_ack()->mutable_position();
        p->set_tenant("w");
        p->set_applied_seq(last_end.load());
        p->set_tenant_created_unix_micros(created.load());
        if (!ch->Send(a).ok()) return;
      }
    }
  });
  struct Join {
    std::thread* t;
    std::atomic<bool>* stop;
    ~Join() {
      *stop = true;
      t->join();
    }
  } join{&fake_replica, &stop};

  OpenOptions o = PrimaryOptions();
  o.replication.max_unacked_bytes = kWindow;
  o.replication.max_message_bytes = kMessage;
  ASSERT_OK(CreatePrimary(o));
  ASSERT_TRUE(WaitFor([&] { return served.load(); }));
  ASSERT_OK(primary_->CreateTenant("w", TenantOptions()));
  // 4 MiB in 1 KiB values, 16 to a batch: 16 times the window.
  Fill("w", 4096, "k", 1000);
  ASSERT_TRUE(WaitFor([&] { return received.load() >= kWindow; }))
      << "received " << received.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const uint64_t batch_bytes = 16 * 1100;  // one batch, with its keys
  EXPECT_LE(received.load(), kWindow + kMessage + batch_bytes);

  const uint64_t before = received.load();
  ack = true;
  EXPECT_TRUE(WaitFor([&] { return received.load() > before + kWindow / 2; }))
      << "the window did not open after an acknowledgement: "
      << received.load() << " bytes after " << before;
}

// A replica whose disk fails a log write (an I/O error RocksDB does not
// recover from by itself) stops that tenant; the session ends and, when the
// primary reconnects, the replica resumes the tenant before applying, so
// replication goes on without a restart of either side.
TEST_F(ReplicationTest, ReplicaResumesATenantStoppedByAFailedLogWrite) {
  auto fs = std::make_shared<test::FaultFs>();
  SetBaseFileSystemForTesting(fs);
  struct Restore {
    std::function<void()> undo;
    ~Restore() { undo(); }
  } restore{[this] {
    server_.reset();
    primary_.reset();
    replica_.reset();
    SetBaseFileSystemForTesting(nullptr);
  }};
  ASSERT_OK(StartPair({"t0"}));
  Fill("t0", 20, "before");
  ASSERT_EQ("", WaitCaughtUp());
  const std::string replica_logs = replica_dir_ + "/tenants/t0/db/*.log";
  fs->FailOp(test::FaultFs::Op::kWrite, replica_logs, /*skip=*/0, /*times=*/2);
  Fill("t0", 200, "during");
  ASSERT_TRUE(WaitFor([&] { return fs->injected() >= 2; }))
      << "the replica's log writes did not fail";
  Fill("t0", 20, "after");
  ASSERT_NO_FATAL_FAILURE(ExpectConverged());
}

// ---- 2. lag -----------------------------------------------------------------

TEST_F(ReplicationTest, LagIsReportedWhileTheReplicaIsAway) {
  ASSERT_OK(StartPair({"t0", "t1"}));
  Fill("t0", 20, "a");
  Fill("t1", 20, "a");
  ASSERT_EQ("", WaitCaughtUp());
  const int port = port_;
  StopServer();

  std::unique_ptr<Tenant> t;
  ASSERT_OK(primary_->GetTenant("t0", &t));
  for (int i = 0; i < 100; ++i) {
    ASSERT_OK(t->Put(WriteOptions(), "b" + std::to_string(i), "v"));
  }
  std::this_thread::sleep_for(milliseconds(1200));
  ReplicationStatus st;
  ASSERT_OK(primary_->GetReplicationStatus(&st));
  EXPECT_NE("connected", st.connection) << Describe(st);
  const TenantReplicationStatus* t0 = FindTenant(st, "t0");
  ASSERT_NE(nullptr, t0) << Describe(st);
  EXPECT_GE(t0->lag_seqs, 100u) << Describe(st);
  EXPECT_EQ(t0->primary_seq - t0->applied_seq, t0->lag_seqs);
  EXPECT_GE(t0->lag_seconds, 1.0) << Describe(st);
  EXPECT_LT(t0->lag_seconds, 30.0) << Describe(st);
  EXPECT_EQ("waiting", t0->state);
  // The write the replica lacks leaves the log's retention that much sooner.
  EXPECT_LE(t0->retention_headroom_seconds,
            static_cast<int64_t>(st.wal_retention_seconds) - 1);
  // The tenant without new writes shows no lag.
  const TenantReplicationStatus* t1 = FindTenant(st, "t1");
  ASSERT_NE(nullptr, t1);
  EXPECT_EQ(0u, t1->lag_seqs);
  EXPECT_EQ(0.0, t1->lag_seconds);
  EXPECT_EQ("waiting", t1->state);

  ASSERT_OK(StartServer(port));
  EXPECT_EQ(port, port_);
  ASSERT_NO_FATAL_FAILURE(ExpectConverged());
  ASSERT_OK(primary_->GetReplicationStatus(&st));
  t0 = FindTenant(st, "t0");
  ASSERT_NE(nullptr, t0);
  EXPECT_EQ(0u, t0->lag_seqs);
  EXPECT_EQ(0.0, t0->lag_seconds);
  std::unique_ptr<Tenant> r;
  ASSERT_OK(replica_->GetTenant("t0", &r));
  EXPECT_EQ("v", test::GetValue(r.get(), "b99"));
}

// A promoted cluster that rejoins as a replica shows no promotion any more
// (it showed "promoted from 'c1' at 1970-01-01": the time was cleared, the
// former primary not).
TEST_F(ReplicationTest, RejoinClearsAnEarlierPromotion) {
  ASSERT_OK(StartPair({"t0"}));
  Fill("t0", 20, "a");
  ASSERT_EQ("", WaitCaughtUp());
  StopServer();
  primary_.reset();
  PromotionReport report;
  ASSERT_OK(replica_->Promote(&report));
  ReplicationStatus st;
  ASSERT_OK(replica_->GetReplicationStatus(&st));
  EXPECT_EQ("c1", st.promoted_from);
  EXPECT_NE(0u, st.promoted_unix_micros);
  ASSERT_OK(replica_->Rejoin("c1"));
  ASSERT_OK(replica_->GetReplicationStatus(&st));
  EXPECT_EQ("replica", st.role);
  EXPECT_EQ("", st.promoted_from);
  EXPECT_EQ(0u, st.promoted_unix_micros);
}

// A primary restarted while its replica is away still knows how far behind
// the replica is: the log on disk holds writes the replica never
// acknowledged.
TEST_F(ReplicationTest, LagIsReportedAfterThePrimaryRestarts) {
  ASSERT_OK(StartPair({"t0"}));
  Fill("t0", 20, "a");
  ASSERT_EQ("", WaitCaughtUp());
  const int port = port_;
  StopServer();
  Fill("t0", 160, "b");  // 10 batches of 16
  ASSERT_OK(ReopenPrimary(PrimaryOptions()));

  ReplicationStatus st;
  ASSERT_OK(primary_->GetReplicationStatus(&st));
  const TenantReplicationStatus* t0 = FindTenant(st, "t0");
  ASSERT_NE(nullptr, t0) << Describe(st);
  EXPECT_EQ("waiting", t0->state);
  uint64_t latest = 0;
  ASSERT_OK(LatestSequence(primary_.get(), "t0", &latest));
  EXPECT_GE(t0->primary_seq, latest) << Describe(st);
  EXPECT_GE(t0->lag_seqs, 160u)
      << "a restarted primary reports no lag for writes its replica lacks\n"
      << Describe(st);

  ASSERT_OK(StartServer(port));
  ASSERT_NO_FATAL_FAILURE(ExpectConverged());
}

// ---- 3. replica restarts ----------------------------------------------------

TEST_F(ReplicationTest, ReplicaRestartsMidStreamLoseAndRepeatNothing) {
  ASSERT_OK(StartPair());
  const std::vector<std::string> ids = {"a", "b"};
  for (const std::string& id : ids) {
    ASSERT_OK(primary_->CreateTenant(id, TenantOptions()));
  }
  NumberedStreams writer;
  writer.Start(primary_.get(), ids);
  const int port = port_;
  auto connects = [&] {
    ReplicationStatus st;
    EXPECT_OK(primary_->GetReplicationStatus(&st));
    return st.connection == "connected" ? st.connects : 0;
  };
  // Server only; then server and cluster object, twice. Each restart
  // interrupts a session that is streaming.
  for (int round = 0; round < 3; ++round) {
    uint64_t before = 0;
    ASSERT_TRUE(WaitFor([&] { return (before = connects()) > 0; }));
    std::this_thread::sleep_for(milliseconds(300));
    StopServer();
    std::this_thread::sleep_for(milliseconds(100));
    if (round > 0) ASSERT_OK(ReopenReplica());
    ASSERT_OK(StartServer(port));
    ASSERT_TRUE(WaitFor([&] { return connects() > before; }))
        << "the primary did not reconnect" << RecentLog();
  }
  std::this_thread::sleep_for(milliseconds(300));
  writer.Stop();
  EXPECT_EQ(0, writer.errors()) << writer.last_error();
  ASSERT_NO_FATAL_FAILURE(ExpectConverged());
  for (const std::string& id : ids) {
    EXPECT_GT(writer.written(id), 200u) << id;
    EXPECT_EQ("", DiffMaps(id + " on the replica", writer.expected(id),
                           ScanTenant(replica_.get(), id)));
    std::unique_ptr<Tenant> r;
    ASSERT_OK(replica_->GetTenant(id, &r));
    EXPECT_EQ(NumberedStreams::Value(id, writer.written(id) - 1),
              test::GetValue(r.get(), "last"));
  }
  ReplicationStatus st;
  ASSERT_OK(primary_->GetReplicationStatus(&st));
  EXPECT_GE(st.connects, 4u) << Describe(st);
  EXPECT_EQ(0u, st.reseeds) << "restarts must resume, not reseed";
}

// ---- 4. primary restarts ----------------------------------------------------

TEST_F(ReplicationTest, PrimaryRestartsMidStreamLoseAndRepeatNothing) {
  ASSERT_OK(StartPair());
  const std::vector<std::string> ids = {"a", "b", "c"};
  for (const std::string& id : ids) {
    ASSERT_OK(primary_->CreateTenant(id, TenantOptions()));
  }
  NumberedStreams writer;
  for (int round = 0; round < 3; ++round) {
    writer.Start(primary_.get(), ids);
    std::this_thread::sleep_for(milliseconds(400));
    writer.Stop();
    // Closed with batches not yet shipped or acknowledged.
    ASSERT_OK(ReopenPrimary(PrimaryOptions()));
  }
  writer.Start(primary_.get(), ids);
  std::this_thread::sleep_for(milliseconds(300));
  writer.Stop();
  EXPECT_EQ(0, writer.errors()) << writer.last_error();
  ASSERT_NO_FATAL_FAILURE(ExpectConverged());
  for (const std::string& id : ids) {
    EXPECT_GT(writer.written(id), 100u) << id;
    EXPECT_EQ("", DiffMaps(id + " on the replica", writer.expected(id),
                           ScanTenant(replica_.get(), id)));
  }
  ReplicationStatus st;
  ASSERT_OK(primary_->GetReplicationStatus(&st));
  EXPECT_EQ(0u, st.reseeds) << "a restarted primary resumes from the log";
}

// ---- 5. tenant lifecycle ----------------------------------------------------

TEST_F(ReplicationTest, TenantLifecycleFollowsThePrimary) {
  ASSERT_OK(StartPair({"keep"}));
  Fill("keep", 50, "k");
  ASSERT_EQ("", WaitCaughtUp());
  const int port = port_;

  // Create.
  ASSERT_OK(primary_->CreateTenant("life", TenantOptions()));
  EXPECT_TRUE(WaitFor([&] {
    const auto ids = replica_->ListTenants();
    return std::find(ids.begin(), ids.end(), "life") != ids.end();
  })) << Join(replica_->ListTenants());

  // Quota. The tenant is opened first: opening a tenant on a primary while
  // SetTenantQuota runs can deadlock (see
  // AdministrationWhileTenantsOpenDoesNotDeadlock).
  Fill("life", 10, "pre");
  ASSERT_OK(primary_->SetTenantQuota("life", 12345678));
  TenantInfo info;
  EXPECT_TRUE(WaitFor([&] {
    return replica_->DescribeTenant("life", &info).ok() &&
           info.quota_overridden && info.quota == 12345678;
  })) << info.quota;

  // Rotation without rekey: new writes, new version on both sides.
  Fill("life", 90, "a");
  KeyRotationReport rot;
  ASSERT_OK(primary_->RotateTenantKey("life", /*rekey=*/false, &rot));
  EXPECT_EQ(2u, rot.new_version);
  Fill("life", 100, "b");
  ASSERT_NO_FATAL_FAILURE(ExpectConverged());
  auto versions = [](const TenantKeyStatus& st) {
    std::vector<uint32_t> v;
    for (const KeyVersionInfo& k : st.versions) v.push_back(k.version);
    return v;
  };
  TenantKeyStatus pk, rk;
  ASSERT_OK(primary_->GetKeyStatus("life", &pk));
  ASSERT_OK(replica_->GetKeyStatus("life", &rk));
  EXPECT_EQ(2u, rk.current_version);
  EXPECT_EQ(pk.current_version, rk.current_version);
  EXPECT_EQ(versions(pk), versions(rk));
  EXPECT_EQ(pk.master_key_id, rk.master_key_id);
  ASSERT_OK(replica_->DescribeTenant("life", &info));
  EXPECT_EQ(2u, info.key_version);

  // Rekey: the versions the primary retires are retired on the replica
  // too, once no file of its own needs them. (The session is up first; see
  // RetirementIsFollowedAfterAMidRekeyRecord for a rekey racing a new
  // session.)
  ASSERT_OK(StartServer(port));
  ASSERT_EQ("", WaitCaughtUp());
  KeyRotationReport rekey;
  ASSERT_OK(primary_->RotateTenantKey("life", /*rekey=*/true, &rekey));
  EXPECT_EQ(3u, rekey.new_version);
  EXPECT_TRUE(rekey.rekeyed);
  Fill("life", 50, "c");
  ASSERT_OK(primary_->GetKeyStatus("life", &pk));
  EXPECT_EQ(3u, pk.current_version);
  EXPECT_FALSE(rekey.versions_retired.empty());
  ASSERT_EQ("", WaitCaughtUp());
  std::string follows;
  EXPECT_TRUE(WaitFor([&] {
    return replica_->GetKeyStatus("life", &rk).ok() &&
           (follows = FollowsKeys(pk, rk, rekey.versions_retired)).empty();
  })) << follows
      << "\n"
      << AuditText(replica_.get()) << RecentLog();
  StopServer();
  EXPECT_EQ("", DiffContents());
  ASSERT_OK(replica_->GetKeyStatus("life", &rk));
  EXPECT_EQ("", FollowsKeys(pk, rk, rekey.versions_retired));
  EXPECT_EQ(3u, rk.current_version);

  // Drop: crypto-shredded on the replica too.
  ASSERT_OK(StartServer(port));
  DropReport drop;
  ASSERT_OK(primary_->DropTenant("life", &drop));
  // Gone from the list, then its files, then the drop is audited.
  auto replicated_drop = [&] {
    for (const AuditEntry& e : AuditOf(replica_.get(), "tenant.drop")) {
      if (e.target == "tenant:life" && e.outcome == "OK" &&
          e.detail.find("replicated from primary") != std::string::npos) {
        return true;
      }
    }
    return false;
  };
  EXPECT_TRUE(WaitFor(replicated_drop)) << AuditText(replica_.get());
  const std::vector<std::string> left = replica_->ListTenants();
  EXPECT_EQ(left.end(), std::find(left.begin(), left.end(), "life"));
  EXPECT_FALSE(fs::exists(replica_dir_ + "/tenants/life"));
  std::unique_ptr<Tenant> gone;
  EXPECT_TRUE(replica_->GetTenant("life", &gone).IsNotFound());
  // The other tenant is untouched and still streams.
  Fill("keep", 20, "k2");
  ASSERT_NO_FATAL_FAILURE(ExpectConverged());
  EXPECT_EQ((std::vector<std::string>{"keep"}), replica_->ListTenants());
}

// ---- 6. a replica takes no writes -------------------------------------------

TEST_F(ReplicationTest, ReplicaRefusesEveryWrite) {
  ASSERT_OK(StartPair({"t0"}));
  Fill("t0", 30, "k");
  ASSERT_NO_FATAL_FAILURE(ExpectConverged());
  const auto before = ScanTenant(replica_.get(), "t0");
  TenantInfo info_before;
  ASSERT_OK(replica_->DescribeTenant("t0", &info_before));

  for (bool serving : {false, true}) {
    SCOPED_TRACE(serving ? "server running" : "server stopped");
    if (serving) ASSERT_OK(StartServer(port_));
    std::unique_ptr<Tenant> t;
    ASSERT_OK(replica_->GetTenant("t0", &t));
    EXPECT_EQ(before.begin()->second,
              test::GetValue(t.get(), before.begin()->first));
    Status s = t->Put(WriteOptions(), "x", "y");
    EXPECT_TRUE(s.IsReadOnly()) << s.ToString();
    s = t->Delete(WriteOptions(), before.begin()->first);
    EXPECT_TRUE(s.IsReadOnly()) << s.ToString();
    WriteBatch b;
    b.DeleteRange("a", "z");
    s = t->Write(WriteOptions(), b);
    EXPECT_TRUE(s.IsReadOnly()) << s.ToString();
    s = replica_->CreateTenant("new", TenantOptions());
    EXPECT_TRUE(s.IsReadOnly()) << s.ToString();
    s = replica_->DropTenant("t0", nullptr);
    EXPECT_TRUE(s.IsReadOnly()) << s.ToString();
    s = replica_->RotateTenantKey("t0", false, nullptr);
    EXPECT_TRUE(s.IsReadOnly()) << s.ToString();
    s = replica_->RotateTenantKey("t0", true, nullptr);
    EXPECT_TRUE(s.IsReadOnly()) << s.ToString();
    s = replica_->SetTenantQuota("t0", 1);
    EXPECT_TRUE(s.IsReadOnly()) << s.ToString();
    s = replica_->RevokeTenantKey("t0", "no");
    EXPECT_TRUE(s.IsReadOnly()) << s.ToString();
    EXPECT_NE(std::string::npos, s.message().find("replica")) << s.ToString();
  }
  StopServer();
  EXPECT_EQ("", DiffMaps("t0", before, ScanTenant(replica_.get(), "t0")));
  EXPECT_EQ((std::vector<std::string>{"t0"}), replica_->ListTenants());
  EXPECT_FALSE(fs::exists(replica_dir_ + "/tenants/new"));
  TenantInfo info;
  ASSERT_OK(replica_->DescribeTenant("t0", &info));
  EXPECT_EQ(info_before.quota, info.quota);
  EXPECT_EQ(1u, info.key_version);
  TenantKeyStatus ks;
  ASSERT_OK(replica_->GetKeyStatus("t0", &ks));
  EXPECT_FALSE(ks.revoked);
  EXPECT_EQ("replica", replica_->Describe().role);
  EXPECT_EQ("c1", replica_->Describe().primary_cluster_id);

  // A replica does not ship.
  replica_.reset();
  std::unique_ptr<Cluster> shipping_replica;
  Status s =
      Cluster::Open(replica_dir_, PrimaryOptions(), keys_, &shipping_replica);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
}

// ---- 7 and 8. reseeds -------------------------------------------------------

TEST_F(ReplicationTest, LogGapIsAnsweredWithAReseed) {
  // Written before replication was configured, with the log deleted as soon
  // as it is flushed: the log no longer starts at sequence 1.
  OpenOptions plain;
  plain.maintenance_interval_ms = 0;
  plain.tenant_write_buffer_bytes = 64 << 10;
  plain.wal_retention_seconds = 0;
  ASSERT_OK(CreatePrimary(plain));
  ASSERT_OK(primary_->CreateTenant("big", TenantOptions()));
  ASSERT_OK(primary_->CreateTenant("small", TenantOptions()));
  Fill("big", 2048, "g", 1000);  // ~2 MiB
  Fill("small", 10, "s");
  primary_.reset();

  ASSERT_OK(CreateReplica());
  ASSERT_OK(StartServer());
  OpenOptions o = PrimaryOptions();
  o.tenant_write_buffer_bytes = 64 << 10;
  ASSERT_OK(ReopenPrimary(o));
  ASSERT_EQ("", WaitCaughtUp());
  ReplicationStatus st;
  ASSERT_OK(primary_->GetReplicationStatus(&st));
  EXPECT_GE(st.reseeds, 1u) << Describe(st);
  const TenantReplicationStatus* big = FindTenant(st, "big");
  ASSERT_NE(nullptr, big);
  EXPECT_GE(big->reseeds, 1u) << Describe(st);
  const uint64_t reseeds = st.reseeds;
  ReplicationStatus rst;
  ASSERT_OK(replica_->GetReplicationStatus(&rst));
  EXPECT_GE(rst.reseeds, 1u) << Describe(rst);
  StopServer();
  EXPECT_EQ("", DiffContents());
  EXPECT_EQ(2048u, ScanTenant(replica_.get(), "big").size());
  EXPECT_FALSE(AuditOf(replica_.get(), "replication.reseed").empty());
  EXPECT_FALSE(AuditOf(primary_.get(), "replication.reseed").empty());
  EXPECT_FALSE(fs::exists(replica_dir_ + "/tenants/big/seed"));

  // Streaming resumes from the seed's position.
  ASSERT_OK(StartServer(port_));
  Fill("big", 300, "after", 100);
  {
    std::unique_ptr<Tenant> t;
    ASSERT_OK(primary_->GetTenant("big", &t));
    ASSERT_OK(t->Delete(WriteOptions(), "g7"));
  }
  ASSERT_NO_FATAL_FAILURE(ExpectConverged());
  ASSERT_OK(primary_->GetReplicationStatus(&st));
  EXPECT_EQ(reseeds, st.reseeds) << "streamed, not reseeded again";
  std::unique_ptr<Tenant> r;
  ASSERT_OK(replica_->GetTenant("big", &r));
  EXPECT_EQ("NOT_FOUND", test::GetValue(r.get(), "g7"));
}

TEST_F(ReplicationTest, ReplicaFarBehindPastRetentionIsReseeded) {
  ASSERT_OK(CreateReplica());
  ASSERT_OK(StartServer());
  OpenOptions o = PrimaryOptions();
  o.wal_retention_seconds = 1;
  o.tenant_write_buffer_bytes = 64 << 10;
  // The writes made while the replica is away would otherwise still be in
  // memory (commit queue) and ship from there without a reseed.
  o.replication.commit_queue_bytes = 0;
  ASSERT_OK(CreatePrimary(o));
  ASSERT_OK(primary_->CreateTenant("t0", TenantOptions()));
  Fill("t0", 100, "a");
  ASSERT_EQ("", WaitCaughtUp());
  const int port = port_;
  StopServer();
  Fill("t0", 1536, "b", 1000);  // ~1.5 MiB
  std::this_thread::sleep_for(milliseconds(2500));
  Fill("t0", 1024, "c", 1000);  // flushes purge the logs older than 1 s
  ReplicationStatus st;
  ASSERT_OK(primary_->GetReplicationStatus(&st));
  EXPECT_EQ(0u, st.reseeds);
  const TenantReplicationStatus* t0 = FindTenant(st, "t0");
  ASSERT_NE(nullptr, t0);
  EXPECT_LT(t0->retention_headroom_seconds, 0) << Describe(st);

  ASSERT_OK(StartServer(port));
  ASSERT_NO_FATAL_FAILURE(ExpectConverged());
  ASSERT_OK(primary_->GetReplicationStatus(&st));
  EXPECT_GE(st.reseeds, 1u) << Describe(st);
  EXPECT_EQ(100u + 1536 + 1024, ScanTenant(replica_.get(), "t0").size());
}

// ---- 9, 10, 11. who is refused ----------------------------------------------

TEST_F(ReplicationTest, ReplicaInAnotherGeographyIsRefused) {
  ASSERT_OK(CreateReplica("us"));
  ASSERT_OK(StartServer());
  ASSERT_OK(CreatePrimary(PrimaryOptions()));
  ASSERT_OK(primary_->CreateTenant("t0", TenantOptions()));
  Fill("t0", 20, "k");
  ReplicationStatus st;
  EXPECT_TRUE(WaitFor([&] {
    return primary_->GetReplicationStatus(&st).ok() &&
           st.connection == "refused";
  })) << Describe(st);
  EXPECT_NE(std::string::npos, st.last_error.find("geography"))
      << st.last_error;
  EXPECT_EQ(0u, st.connects);
  EXPECT_TRUE(WaitFor(
      [&] { return !AuditOf(replica_.get(), "replication.refused").empty(); }));
  EXPECT_FALSE(AuditOf(primary_.get(), "replication.refused").empty());
  EXPECT_TRUE(replica_->ListTenants().empty()) << Join(replica_->ListTenants());
  EXPECT_EQ("", replica_->Describe().primary_cluster_id);
  EXPECT_FALSE(fs::exists(replica_dir_ + "/tenants/t0"));
}

TEST_F(ReplicationTest, OnlyThePairedPrimaryWithItsOwnCertificateIsAccepted) {
  ASSERT_OK(StartPair({"t0"}));
  Fill("t0", 20, "k");
  ASSERT_EQ("", WaitCaughtUp());
  EXPECT_EQ("c1", replica_->Describe().primary_cluster_id);
  primary_.reset();

  struct Case {
    std::string cluster_id, cert, expect;
  };
  for (const Case& c :
       {Case{"c3", "c3", "paired"}, Case{"c1", "c3", "certificate names"}}) {
    SCOPED_TRACE(c.cluster_id + " with the certificate of " + c.cert);
    const size_t refused_before =
        AuditOf(replica_.get(), "replication.refused").size();
    std::unique_ptr<Cluster> intruder;
    ASSERT_OK(Cluster::Create(tmp_.Sub("intruder-" + c.cluster_id),
                              Identity(c.cluster_id, "eu", false),
                              PrimaryOptions(c.cert), keys_, &intruder));
    ASSERT_OK(intruder->CreateTenant("intruder", TenantOptions()));
    std::unique_ptr<Tenant> t;
    ASSERT_OK(intruder->GetTenant("intruder", &t));
    ASSERT_OK(t->Put(WriteOptions(), "k", "v"));
    t.reset();
    ReplicationStatus st;
    EXPECT_TRUE(WaitFor([&] {
      return intruder->GetReplicationStatus(&st).ok() &&
             st.connection == "refused";
    })) << Describe(st);
    EXPECT_NE(std::string::npos, st.last_error.find(c.expect)) << st.last_error;
    EXPECT_EQ(0u, st.connects);
    std::vector<AuditEntry> refused;
    EXPECT_TRUE(WaitFor([&] {
      refused = AuditOf(replica_.get(), "replication.refused");
      return refused.size() > refused_before;
    }));
    if (refused.size() > refused_before) {
      EXPECT_EQ("peer:" + c.cert, refused.back().target);
      EXPECT_EQ("PermissionDenied", refused.back().outcome);
    }
    intruder.reset();
    EXPECT_EQ((std::vector<std::string>{"t0"}), replica_->ListTenants());
    EXPECT_EQ("c1", replica_->Describe().primary_cluster_id);
  }

  // The paired primary is still welcome.
  ASSERT_OK(ReopenPrimary(PrimaryOptions()));
  Fill("t0", 20, "after");
  ASSERT_NO_FATAL_FAILURE(ExpectConverged());
}

TEST_F(ReplicationTest, CertificateFromAnotherCaIsRefused) {
  ASSERT_OK(CreateReplica());
  ASSERT_OK(StartServer());
  // c1's name, signed by a CA the replica does not trust.
  ASSERT_OK(CreatePrimary(PrimaryOptions("c1", "ca2")));
  ASSERT_OK(primary_->CreateTenant("t0", TenantOptions()));
  Fill("t0", 20, "k");
  std::vector<AuditEntry> refused;
  EXPECT_TRUE(WaitFor([&] {
    refused = AuditOf(replica_.get(), "replication.refused");
    return !refused.empty();
  }));
  ASSERT_FALSE(refused.empty());
  EXPECT_EQ("PermissionDenied", refused.front().outcome);
  std::this_thread::sleep_for(milliseconds(300));  // several attempts
  ReplicationStatus st;
  ASSERT_OK(primary_->GetReplicationStatus(&st));
  EXPECT_NE("connected", st.connection) << Describe(st);
  EXPECT_EQ(0u, st.connects) << Describe(st);
  EXPECT_FALSE(st.last_error.empty());
  EXPECT_TRUE(replica_->ListTenants().empty());
  EXPECT_EQ("", replica_->Describe().primary_cluster_id);
  ReplicationStatus rst;
  ASSERT_OK(replica_->GetReplicationStatus(&rst));
  EXPECT_EQ("listening", rst.connection);
  EXPECT_EQ(0u, rst.connects);
}

// ---- 12. a hostile peer with a valid certificate ----------------------------

class HostilePeerTest : public ReplicationTest {
 protected:
  // Connects as c1 (its real certificate) and completes the handshake.
  Status Connect(std::unique_ptr<TlsChannel>* channel,
                 replpb::HelloReply* reply) {
    std::unique_ptr<TlsContext> context;
    const TlsFiles f = Tls("c1");
    Status s = TlsContext::Create({f.cert_file, f.key_file, f.ca_file},
                                  /*server=*/false, &context);
    if (s.ok()) {
      s = TlsChannel::Connect(*context, "127.0.0.1:" + std::to_string(port_),
                              "c2", 5000, channel);
    }
    if (s.ok()) s = (*channel)->Send(Hello());
    replpb::Envelope answer;
    if (s.ok()) s = (*channel)->Receive(&answer, 5000);
    if (s.ok() && !answer.has_hello_reply()) s = Status::Corruption("reply");
    if (s.ok()) *reply = answer.hello_reply();
    if (s.ok() && !reply->accepted())
      s = Status::PermissionDenied(reply->reason());
    return s;
  }

  replpb::Envelope Hello() const {
    replpb::Envelope e;
    replpb::Hello* h = e.mutable_hello();
    h->set_protocol_version(1);
    h->set_cluster_id("c1");
    h->set_region("eu-1");
    h->set_geography("eu");
    h->set_epoch(replica_->Describe().epoch);
    h->set_role("primary");
    return e;
  }

  static const replpb::TenantPosition* PositionOf(
      const replpb::HelloReply& reply, const std::string& tenant) {
    for (const auto& p : reply.positions()) {
      if (p.tenant() == tenant) return &p;
    }
    return nullptr;
  }

  // The batch that would be applied next: one Put continuing the chain.
  static replpb::Envelope NextBatch(const replpb::TenantPosition& p) {
    replpb::Envelope e;
    replpb::Batch* b = e.mutable_batch();
    b->set_tenant(p.tenant());
    b->set_epoch(p.epoch());
    b->set_first_seq(p.applied_seq() + 1);
    b->set_count(1);
    b->set_data(OnePutBatch("planted", "by-an-intruder"));
    b->set_commit_unix_micros(p.applied_commit_unix_micros() + 1);
    b->set_prev_chain_hash(p.chain_hash());
    b->set_primary_latest_seq(p.applied_seq() + 1);
    return e;
  }

  // A batch the replica already holds: acknowledged again, nothing applied.
  static replpb::Envelope Resend(const replpb::TenantPosition& p) {
    replpb::Envelope e = NextBatch(p);
    e.mutable_batch()->set_first_seq(p.applied_seq());
    return e;
  }

  // "" once the peer closed `channel` (after at most an Error message,
  // whose reason goes to *reason); else what it did instead.
  static std::string Closed(TlsChannel* channel, std::string* reason) {
    for (;;) {
      replpb::Envelope m;
      Status s = channel->Receive(&m, 5000);
      if (!s.ok()) {
        return s.message().find("timeout") != std::string::npos
                   ? "connection still open after 5 s"
                   : "";
      }
      if (!m.has_error()) return "answered " + m.ShortDebugString();
      *reason = m.error().reason();
    }
  }

  size_t Rejections() {
    return AuditOf(replica_.get(), "replication.rejected").size();
  }
};

TEST_F(HostilePeerTest, BadBatchesCloseTheConnectionAndApplyNothing) {
  ASSERT_OK(StartPair({"t0"}));
  Fill("t0", 50, "k");
  ASSERT_EQ("", WaitCaughtUp());
  primary_.reset();  // the real primary is away; the intruder has its cert
  const auto contents = ScanTenant(replica_.get(), "t0");
  ASSERT_EQ(50u, contents.size());

  replpb::TenantPosition start;
  {
    std::unique_ptr<TlsChannel> ch;
    replpb::HelloReply reply;
    ASSERT_OK(Connect(&ch, &reply));
    const replpb::TenantPosition* p = PositionOf(reply, "t0");
    ASSERT_NE(nullptr, p);
    ASSERT_GT(p->applied_seq(), 0u);
    EXPECT_EQ(16u, p->chain_hash().size());
    start = *p;
  }

  // Each batch differs from the one the replica would apply next in one
  // way only; `reason` is part of why the replica closes the connection.
  struct Case {
    const char* name;
    std::function<void(replpb::Batch*)> damage;
    const char* reason;
  };
  const std::vector<Case> cases = {
      {"tenant the replica does not hold",
       [](replpb::Batch* b) { b->set_tenant("ghost"); }, "does not hold"},
      {"first_seq skips ahead",
       [](replpb::Batch* b) { b->set_first_seq(b->first_seq() + 2); },
       "starts at sequence"},
      {"garbage data",
       [](replpb::Batch* b) {
         b->set_data("this is not a RocksDB write batch, not at all");
       },
       "does not parse"},
      {"wrong prev_chain_hash",
       [](replpb::Batch* b) { b->set_prev_chain_hash(std::string(16, 'x')); },
       "chain"},
      {"count disagrees with the data",
       [](replpb::Batch* b) { b->set_count(2); }, "operations"},
      {"claims more merged batches than operations",
       [](replpb::Batch* b) { b->set_merged(b->count() + 1); },
       "merged batches"},
      {"writes an unknown column family",
       [](replpb::Batch* b) {
         test::FamilyId other(7);
         rocksdb::WriteBatch wb;
         EXPECT_TRUE(wb.Put(&other, "k", "v").ok());
         b->set_data(wb.Data());
       },
       "column families"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const size_t rejected_before = Rejections();
    std::unique_ptr<TlsChannel> ch;
    replpb::HelloReply reply;
    ASSERT_OK(Connect(&ch, &reply));
    const replpb::TenantPosition* p = PositionOf(reply, "t0");
    ASSERT_NE(nullptr, p);
    EXPECT_EQ(start.applied_seq(), p->applied_seq());
    EXPECT_EQ(start.chain_hash(), p->chain_hash());
    // Control: the session takes this peer's batches (a resend is
    // acknowledged, nothing applied).
    ASSERT_OK(ch->Send(Resend(*p)));
    replpb::Envelope answer;
    ASSERT_OK(ch->Receive(&answer, 5000));
    ASSERT_TRUE(answer.has_ack()) << answer.ShortDebugString();
    EXPECT_EQ(start.applied_seq(), answer.ack().position().applied_seq());

    replpb::Envelope bad = NextBatch(*p);
    c.damage(bad.mutable_batch());
    ASSERT_OK(ch->Send(bad));
    std::string reason;
    EXPECT_EQ("", Closed(ch.get(), &reason));
    EXPECT_NE(std::string::npos, reason.find(c.reason)) << reason;
    EXPECT_TRUE(WaitFor([&] { return Rejections() > rejected_before; }))
        << "protocol violation not audited";
  }

  // A frame whose checksum does not match (TlsChannel never sends one, so
  // this peer writes the bytes itself). It carries the batch the replica
  // would otherwise apply.
  {
    SCOPED_TRACE("frame with a corrupted checksum");
    const size_t rejected_before = Rejections();
    std::unique_ptr<TlsContext> context;
    const TlsFiles f = Tls("c1");
    ASSERT_OK(TlsContext::Create({f.cert_file, f.key_file, f.ca_file},
                                 /*server=*/false, &context));
    RawTlsPeer peer;
    ASSERT_OK(peer.Connect(*context, port_));
    ASSERT_OK(peer.Send(Hello()));
    replpb::Envelope answer;
    ASSERT_OK(peer.Read(&answer));
    ASSERT_TRUE(answer.hello_reply().accepted())
        << answer.hello_reply().reason();
    const replpb::TenantPosition* p = PositionOf(answer.hello_reply(), "t0");
    ASSERT_NE(nullptr, p);
    const replpb::TenantPosition position = *p;
    ASSERT_OK(peer.Send(Resend(position)));
    ASSERT_OK(peer.Read(&answer));
    ASSERT_TRUE(answer.has_ack()) << answer.ShortDebugString();
    std::string frame;
    ASSERT_OK(EncodeFrame(NextBatch(position).SerializeAsString(), &frame));
    frame[8] ^= 0x01;  // bytes [8, 16) hold the payload's checksum
    ASSERT_OK(peer.Write(frame));
    std::string reason;
    Status s;
    while ((s = peer.Read(&answer)).ok()) {
      ASSERT_TRUE(answer.has_error()) << answer.ShortDebugString();
      reason = answer.error().reason();
    }
    EXPECT_EQ("closed", s.message());
    EXPECT_NE(std::string::npos, reason.find("checksum")) << reason;
    EXPECT_TRUE(WaitFor([&] { return Rejections() > rejected_before; }));
  }

  // Nothing was applied: the position, the status and the data are as the
  // real primary left them.
  {
    std::unique_ptr<TlsChannel> ch;
    replpb::HelloReply reply;
    ASSERT_OK(Connect(&ch, &reply));
    const replpb::TenantPosition* p = PositionOf(reply, "t0");
    ASSERT_NE(nullptr, p);
    EXPECT_EQ(start.applied_seq(), p->applied_seq());
    EXPECT_EQ(start.chain_hash(), p->chain_hash());
    EXPECT_EQ(1, reply.positions_size());
  }
  ReplicationStatus rst;
  ASSERT_OK(replica_->GetReplicationStatus(&rst));
  const TenantReplicationStatus* t0 = FindTenant(rst, "t0");
  ASSERT_NE(nullptr, t0) << Describe(rst);
  EXPECT_EQ(start.applied_seq(), t0->applied_seq);
  EXPECT_EQ((std::vector<std::string>{"t0"}), replica_->ListTenants());
  EXPECT_EQ("", DiffMaps("t0", contents, ScanTenant(replica_.get(), "t0")));

  // A batch carrying a position record of its own (in the system family)
  // never sets the replica's position: the replica refuses the batch, or
  // applies it without that record, its position then advanced by exactly
  // this batch.
  {
    SCOPED_TRACE("batch writing the replica's position record");
    std::unique_ptr<TlsChannel> ch;
    replpb::HelloReply reply;
    ASSERT_OK(Connect(&ch, &reply));
    const replpb::TenantPosition* p = PositionOf(reply, "t0");
    ASSERT_NE(nullptr, p);
    replpb::TenantPosition forged = *p;
    forged.set_applied_seq(1000000);
    forged.set_chain_hash(std::string(16, 'f'));
    test::FamilyId system(1);
    rocksdb::WriteBatch wb;
    ASSERT_TRUE(
        wb.Put(&system, "coffer.replica.position", forged.SerializeAsString())
            .ok());
    replpb::Envelope e = NextBatch(*p);
    e.mutable_batch()->set_data(wb.Data());
    const std::string advanced =
        ChainHash(p->chain_hash(), p->applied_seq() + 1, 1, wb.Data());
    ASSERT_OK(ch->Send(e));
    replpb::Envelope answer;
    Status s = ch->Receive(&answer, 5000);
    ch.reset();
    ASSERT_OK(Connect(&ch, &reply));
    const replpb::TenantPosition* now = PositionOf(reply, "t0");
    ASSERT_NE(nullptr, now);
    const bool refused = now->applied_seq() == start.applied_seq() &&
                         now->chain_hash() == start.chain_hash();
    const bool stripped = now->applied_seq() == start.applied_seq() + 1 &&
                          now->chain_hash() == advanced;
    EXPECT_TRUE(refused || stripped)
        << "position now " << now->applied_seq() << " (answer "
        << (s.ok() ? answer.ShortDebugString() : s.ToString()) << ")";
    EXPECT_EQ("", DiffMaps("t0", contents, ScanTenant(replica_.get(), "t0")));
  }

  // The real primary connects and converges afterwards.
  ASSERT_OK(ReopenPrimary(PrimaryOptions()));
  Fill("t0", 30, "after");
  ASSERT_NO_FATAL_FAILURE(ExpectConverged());
  std::unique_ptr<Tenant> r;
  ASSERT_OK(replica_->GetTenant("t0", &r));
  EXPECT_EQ("NOT_FOUND", test::GetValue(r.get(), "planted"));
}

// Every other way a peer with a valid certificate can break the protocol:
// frames over the size cap, messages of no or the wrong type, sequences out
// of order, epochs below or above the session's, a batch labelled with
// another tenant. Each closes the connection with a reason and applies
// nothing; the replica keeps serving and the real primary converges after.
TEST_F(HostilePeerTest, ProtocolViolationsApplyNothingAndServiceGoesOn) {
  ASSERT_OK(StartPair({"t0", "t1"}));
  Fill("t0", 40, "k");
  Fill("t1", 40, "k");
  ASSERT_EQ("", WaitCaughtUp());
  primary_.reset();
  const auto t0_contents = ScanTenant(replica_.get(), "t0");
  const auto t1_contents = ScanTenant(replica_.get(), "t1");
  const uint64_t epoch = replica_->Describe().epoch;
  ASSERT_GE(epoch, 1u);

  std::unique_ptr<TlsContext> context;
  const TlsFiles f = Tls("c1");
  ASSERT_OK(TlsContext::Create({f.cert_file, f.key_file, f.ca_file},
                               /*server=*/false, &context));
  // Opens a session; the positions the replica reported go to *positions.
  auto open = [&](RawTlsPeer* peer,
                  std::map<std::string, replpb::TenantPosition>* positions) {
    Status s = peer->Connect(*context, port_);
    if (s.ok()) s = peer->Send(Hello());
    replpb::Envelope answer;
    if (s.ok()) s = peer->Read(&answer);
    if (s.ok() && !answer.hello_reply().accepted()) {
      s = Status::PermissionDenied(answer.hello_reply().reason());
    }
    for (const auto& p : answer.hello_reply().positions()) {
      (*positions)[p.tenant()] = p;
    }
    return s;
  };
  auto frame_of = [](const std::string& payload) {
    std::string frame;
    EXPECT_OK(EncodeFrame(payload, &frame));
    return frame;
  };
  auto batch = [&](const replpb::TenantPosition& p,
                   const std::function<void(replpb::Batch*)>& damage) {
    replpb::Envelope e = NextBatch(p);
    damage(e.mutable_batch());
    return frame_of(e.SerializeAsString());
  };
  struct Case {
    const char* name;
    // The bytes the peer writes after the handshake.
    std::function<std::string(
        const std::map<std::string, replpb::TenantPosition>&)>
        bytes;
    std::vector<const char*> reasons;  // one of them is in the reason
  };
  const std::vector<Case> cases = {
      {"length over the frame cap",
       [](const auto&) {
         std::string header("CfR1", 4);
         const uint32_t length = kMaxFramePayload + 1;
         for (int i = 0; i < 4; ++i) header.push_back(char(length >> (8 * i)));
         header.append(8, '\0');
         return header;
       },
       {"exceeds the limit"}},
      {"maximum length",
       [](const auto&) {
         std::string header("CfR1", 4);
         header.append(4, '\xff');
         header.append(8, '\0');
         return header;
       },
       {"exceeds the limit"}},
      {"wrong magic",
       [&](const auto&) {
         std::string frame = frame_of(Hello().SerializeAsString());
         frame[0] = 'X';
         return frame;
       },
       {"magic"}},
      {"no message type", [&](const auto&) { return frame_of(""); },
       {"unexpected message"}},
      {"unknown message type (field 99)",
       [&](const auto&) { return frame_of(std::string("\x9a\x06\x00", 3)); },
       {"unexpected message"}},
      {"not a protobuf",
       [&](const auto&) { return frame_of("\xff\xff\xff\xff"); },
       {"does not parse"}},
      {"a second hello",
       [&](const auto&) { return frame_of(Hello().SerializeAsString()); },
       {"unexpected message"}},
      {"an acknowledgement (the replica's message)",
       [&](const auto& pos) {
         replpb::Envelope e;
         *e.mutable_ack()->mutable_position() = pos.at("t0");
         return frame_of(e.SerializeAsString());
       },
       {"unexpected message"}},
      {"batch labelled with another tenant",
       [&](const auto& pos) {
         return batch(pos.at("t0"), [&](replpb::Batch* b) {
           b->set_tenant("t1");
           b->set_data(OnePutBatch("t1-planted", "from-t0"));
         });
       },
       {"starts at sequence", "chain"}},
      {"overlapping sequences",
       [&](const auto& pos) {
         return batch(pos.at("t0"), [](replpb::Batch* b) {
           rocksdb::WriteBatch wb;
           EXPECT_TRUE(wb.Put("o1", "v").ok());
           EXPECT_TRUE(wb.Put("o2", "v").ok());
           b->set_data(wb.Data());
           b->set_first_seq(b->first_seq() - 1);
           b->set_count(2);
         });
       },
       {"starts at sequence"}},
      {"out-of-order: a later batch first",
       [&](const auto& pos) {
         return batch(pos.at("t0"), [](replpb::Batch* b) {
           b->set_first_seq(b->first_seq() + 1);
         });
       },
       {"starts at sequence"}},
      {"sequence range past 2^64",
       [&](const auto& pos) {
         return batch(pos.at("t0"), [](replpb::Batch* b) {
           b->set_first_seq(UINT64_MAX);
           b->set_count(2);
         });
       },
       {"past 2^64"}},
      {"batch from a lower epoch",
       [&](const auto& pos) {
         return batch(pos.at("t0"), [](replpb::Batch* b) {
           b->set_epoch(b->epoch() - 1);
         });
       },
       {"below the applied"}},
      {"batch from a higher epoch than the session's",
       [&](const auto& pos) {
         return batch(pos.at("t0"), [&](replpb::Batch* b) {
           b->set_epoch(epoch + 1);
         });
       },
       {"above the session's"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const size_t rejected_before = Rejections();
    RawTlsPeer peer;
    std::map<std::string, replpb::TenantPosition> positions;
    ASSERT_OK(open(&peer, &positions));
    ASSERT_EQ(2u, positions.size());
    ASSERT_OK(peer.Write(c.bytes(positions)));
    std::string reason;
    replpb::Envelope answer;
    Status s;
    while ((s = peer.Read(&answer)).ok()) {
      ASSERT_TRUE(answer.has_error()) << answer.ShortDebugString();
      reason = answer.error().reason();
    }
    EXPECT_EQ("closed", s.message()) << "the replica kept the connection";
    bool named = false;
    for (const char* r : c.reasons) named |= reason.find(r) != std::string::npos;
    EXPECT_TRUE(named) << "reason: " << reason << RecentLog();
    EXPECT_TRUE(WaitFor([&] { return Rejections() > rejected_before; }))
        << "protocol violation not audited";
  }

  // A hello from a lower epoch is refused at the handshake.
  {
    SCOPED_TRACE("hello from a lower epoch");
    RawTlsPeer peer;
    ASSERT_OK(peer.Connect(*context, port_));
    replpb::Envelope hello = Hello();
    hello.mutable_hello()->set_epoch(epoch - 1);
    ASSERT_OK(peer.Send(hello));
    replpb::Envelope answer;
    ASSERT_OK(peer.Read(&answer));
    EXPECT_FALSE(answer.hello_reply().accepted());
    EXPECT_NE(std::string::npos,
              answer.hello_reply().reason().find("stale primary"))
        << answer.hello_reply().reason();
  }

  // Nothing moved: positions, epoch and data are as the real primary left
  // them.
  {
    RawTlsPeer peer;
    std::map<std::string, replpb::TenantPosition> positions;
    ASSERT_OK(open(&peer, &positions));
    EXPECT_EQ(epoch, positions.at("t0").epoch());
  }
  EXPECT_EQ(epoch, replica_->Describe().epoch);
  EXPECT_EQ("", DiffMaps("t0", t0_contents, ScanTenant(replica_.get(), "t0")));
  EXPECT_EQ("", DiffMaps("t1", t1_contents, ScanTenant(replica_.get(), "t1")));

  // The real primary is served afterwards.
  ASSERT_OK(ReopenPrimary(PrimaryOptions()));
  Fill("t0", 20, "after");
  Fill("t1", 20, "after");
  ASSERT_NO_FATAL_FAILURE(ExpectConverged());
}

// When a session starts (or any other change is announced) while
// RotateTenantKey(rekey) runs on the primary, the shipper sends the tenant's
// record as it stands between saving the new version and retiring the old
// ones, then the final record. This peer sends exactly those two records,
// taken from the primary's catalog: the replica must still retire what the
// primary retired (crypto-shred), as it does when it sees only the final
// record.
TEST_F(HostilePeerTest, RetirementIsFollowedAfterAMidRekeyRecord) {
  ASSERT_OK(StartPair({"life"}));
  Fill("life", 50, "a");
  ASSERT_OK(primary_->RotateTenantKey("life", /*rekey=*/false, nullptr));
  Fill("life", 50, "b");
  ASSERT_EQ("", WaitCaughtUp());
  const int port = port_;
  StopServer();
  auto record = [&](catalogpb::TenantBody* body) {
    std::unique_ptr<Catalog> catalog;
    Status s = Catalog::Load(primary_dir_, keys_, &catalog);
    if (s.ok()) s = catalog->LoadTenant("life", body);
    return s;
  };
  catalogpb::TenantBody before, after;
  ASSERT_OK(record(&before));
  ASSERT_EQ(2, before.keys_size());
  KeyRotationReport rekey;
  ASSERT_OK(primary_->RotateTenantKey("life", /*rekey=*/true, &rekey));
  ASSERT_FALSE(rekey.versions_retired.empty());
  ASSERT_OK(record(&after));
  primary_.reset();
  // The record between the two steps: the new version added, nothing
  // retired yet.
  catalogpb::TenantBody midway = after;
  for (const catalogpb::DataKey& k : before.keys()) {
    bool have = false;
    for (const catalogpb::DataKey& m : midway.keys()) {
      have |= m.version() == k.version();
    }
    if (!have) *midway.add_keys() = k;
  }
  std::sort(midway.mutable_keys()->begin(), midway.mutable_keys()->end(),
            [](const catalogpb::DataKey& a, const catalogpb::DataKey& b) {
              return a.version() < b.version();
            });

  ASSERT_OK(StartServer(port));
  std::unique_ptr<TlsChannel> ch;
  replpb::HelloReply reply;
  ASSERT_OK(Connect(&ch, &reply));
  for (const catalogpb::TenantBody* body : {&midway, &after}) {
    replpb::Envelope e;
    e.mutable_tenant_event()->set_kind(replpb::TenantEvent::KEYS);
    e.mutable_tenant_event()->set_tenant("life");
    e.mutable_tenant_event()->set_tenant_body(body->SerializeAsString());
    ASSERT_OK(ch->Send(e));
  }
  // A resend is acknowledged once both records were handled.
  const replpb::TenantPosition* p = PositionOf(reply, "life");
  ASSERT_NE(nullptr, p);
  ASSERT_OK(ch->Send(Resend(*p)));
  replpb::Envelope answer;
  ASSERT_OK(ch->Receive(&answer, 10000));
  ASSERT_TRUE(answer.has_ack()) << answer.ShortDebugString();
  ch.reset();

  TenantKeyStatus rk, pk;
  ASSERT_OK(replica_->GetKeyStatus("life", &rk));
  pk.current_version = after.current_key_version();
  for (const catalogpb::DataKey& k : after.keys()) {
    pk.versions.push_back({k.version(), 0, 0});
  }
  EXPECT_EQ("", FollowsKeys(pk, rk, rekey.versions_retired))
      << "\nversions the primary retired (crypto-shredded) survive on the "
      << "replica\n"
      << AuditText(replica_.get());

  // The real primary still converges with it.
  ASSERT_OK(ReopenPrimary(PrimaryOptions()));
  Fill("life", 20, "c");
  ASSERT_NO_FATAL_FAILURE(ExpectConverged());
}

// ---- 13. no plaintext on the replica ----------------------------------------

TEST_F(ReplicationTest, ReplicaStoresNoPlaintext) {
  std::map<std::string, std::map<std::string, std::string>> kv;
  std::vector<std::string> needles = {"SECRET-KEY-", "SECRET-VALUE-"};
  auto write_secrets = [&](const std::string& tenant, int n) {
    std::unique_ptr<Tenant> t;
    ASSERT_OK(primary_->GetTenant(tenant, &t));
    WriteBatch b;
    for (int i = 0; i < n; ++i) {
      const std::string key = "SECRET-KEY-" + test::RandomString(40);
      const std::string value = "SECRET-VALUE-" + test::RandomString(40);
      kv[tenant][key] = value;
      // Whole, and their last 32 bytes: table files store most keys after
      // a prefix they share with the previous key.
      for (const std::string& secret : {key, value}) {
        needles.push_back(secret);
        needles.push_back(secret.substr(secret.size() - 32));
      }
      b.Put(key, value);
      if (b.Count() == 20 || i == n - 1) {
        ASSERT_OK(t->Write(WriteOptions(), b));
        b.Clear();
      }
    }
  };
  // "seeded" arrives as a reseed (the primary's encrypted checkpoint files):
  // written before replication was configured, its first log deleted.
  OpenOptions plain;
  plain.maintenance_interval_ms = 0;
  ASSERT_OK(CreatePrimary(plain));
  ASSERT_OK(primary_->CreateTenant("seeded", TenantOptions()));
  ASSERT_NO_FATAL_FAILURE(write_secrets("seeded", 200));
  {
    std::unique_ptr<Tenant> t;
    ASSERT_OK(primary_->GetTenant("seeded", &t));
    ASSERT_OK(t->Flush());
  }
  ASSERT_NO_FATAL_FAILURE(write_secrets("seeded", 50));
  ASSERT_OK(CreateReplica());
  ASSERT_OK(StartServer());
  ASSERT_OK(ReopenPrimary(PrimaryOptions()));
  // "streamed" arrives batch by batch.
  ASSERT_OK(primary_->CreateTenant("streamed", TenantOptions()));
  ASSERT_NO_FATAL_FAILURE(write_secrets("streamed", 300));
  ASSERT_EQ("", WaitCaughtUp());
  ReplicationStatus st;
  ASSERT_OK(primary_->GetReplicationStatus(&st));
  const TenantReplicationStatus* seeded = FindTenant(st, "seeded");
  ASSERT_NE(nullptr, seeded);
  EXPECT_GE(seeded->reseeds, 1u) << Describe(st);
  StopServer();
  for (const auto& [tenant, want] : kv) {
    EXPECT_EQ("", DiffMaps(tenant, want, ScanTenant(replica_.get(), tenant)));
    // On disk in table files as well as in the log.
    std::unique_ptr<Tenant> r;
    ASSERT_OK(replica_->GetTenant(tenant, &r));
    ASSERT_OK(r->Flush());
  }
  replica_.reset();  // everything closed and on disk

  const test::FileTree tree = test::ReadTree(replica_dir_);
  size_t bytes = 0;
  bool saw_table = false, saw_log = false;
  for (const auto& [path, content] : tree) {
    bytes += content.size();
    saw_table |= path.size() > 4 && path.substr(path.size() - 4) == ".sst";
    saw_log |= path.size() > 4 && path.substr(path.size() - 4) == ".log";
    for (const std::string& needle : needles) {
      EXPECT_EQ(std::string::npos, content.find(needle))
          << path << " holds \"" << needle.substr(0, 24) << "...\"";
    }
  }
  EXPECT_TRUE(saw_table);
  EXPECT_TRUE(saw_log);
  EXPECT_GT(bytes, 550u * 80) << "the replica holds less than its data";
}

// ---- scenarios run in a child process ---------------------------------------
//
// Scenarios that may hang (a deadlock) or kill the process (a signal) run in
// a re-executed copy of this binary (a forked copy of a process with RocksDB
// threads could deadlock), so that they fail a test instead of ending the
// run. The child exits 0 when the scenario completed.

// A replica (c2) serving on a free port and a primary (c1) shipping to it,
// in `dir`, with certificates from `certs`/ca.
struct ChildClusters {
  std::unique_ptr<Cluster> replica, primary;
  std::unique_ptr<ReplicaServer> server;
  std::shared_ptr<KeyProvider> keys;
  ReplicaServerOptions server_options;
  OpenOptions primary_options;
  std::string dir;

  void Setup(const std::string& data_dir, const std::string& certs,
             size_t max_open_tenants) {
    dir = data_dir;
    auto tls = [&](const std::string& name) {
      return TlsFiles{certs + "/ca/" + name + ".pem",
                      certs + "/ca/" + name + ".key", certs + "/ca/ca.pem"};
    };
    if (!GenerateKeyFile(dir + "/master.key").ok() ||
        !NewFileKeyProvider(dir + "/master.key", &keys).ok()) {
      _exit(3);
    }
    ClusterOptions identity;
    identity.cluster_id = "c2";
    identity.region = "eu-1";
    identity.geography = "eu";
    identity.replica = true;
    OpenOptions open;
    open.maintenance_interval_ms = 0;
    server_options.listen_address = "127.0.0.1:0";
    server_options.tls = tls("c2");
    if (!Cluster::Create(dir + "/replica", identity, open, keys, &replica)
             .ok() ||
        !ReplicaServer::Start(replica.get(), server_options, &server).ok()) {
      _exit(4);
    }
    server_options.listen_address =
        "127.0.0.1:" + std::to_string(server->port());
    identity.cluster_id = "c1";
    identity.replica = false;
    primary_options = open;
    primary_options.max_open_tenants = max_open_tenants;
    primary_options.replication.replica_address = server_options.listen_address;
    primary_options.replication.tls = tls("c1");
    primary_options.replication.reconnect_delay_ms = 20;
    if (!Cluster::Create(dir + "/primary", identity, primary_options, keys,
                         &primary)
             .ok()) {
      _exit(5);
    }
  }

  [[noreturn]] void Exit() {
    primary.reset();
    server.reset();
    replica.reset();
    _exit(0);
  }
};

// Tenants are created and their quotas set while tenants open: a writer
// reopens them (max_open_tenants 2) and the shipper opens each new one to
// read its log.
[[noreturn]] void AdministrationChild(const std::string& dir,
                                      const std::string& certs) {
  ChildClusters c;
  c.Setup(dir, certs, /*max_open_tenants=*/2);
  std::atomic<bool> stop{false};
  std::atomic<int> created{0};
  std::thread writer([&] {
    for (int n = 0; !stop.load(); ++n) {
      const int have = created.load();
      if (have == 0) continue;
      std::unique_ptr<Tenant> t;
      if (c.primary->GetTenant("t" + std::to_string(n % have), &t).ok()) {
        t->Put(WriteOptions(), "k" + std::to_string(n), "v")
            .PermitUncheckedError();
      }
    }
  });
  for (int i = 0; i < 40; ++i) {
    if (!c.primary->CreateTenant("t" + std::to_string(i), TenantOptions())
             .ok()) {
      _exit(6);
    }
    created = i + 1;
    for (int j = 0; j <= i; j += 3) {
      if (!c.primary->SetTenantQuota("t" + std::to_string(j), 1 << 30).ok()) {
        _exit(7);
      }
    }
  }
  stop = true;
  writer.join();
  c.Exit();
}

// An application that embeds a primary and a replica server and leaves
// SIGPIPE alone (nothing in coffer/replication.h asks otherwise) restarts
// the server and the primary while writing.
[[noreturn]] void RestartsChild(const std::string& dir,
                                const std::string& certs) {
  ::signal(SIGPIPE, SIG_DFL);  // as the application found it
  ChildClusters c;
  c.Setup(dir, certs, /*max_open_tenants=*/256);
  if (!c.primary->CreateTenant("t", TenantOptions()).ok()) _exit(6);
  for (int round = 0; round < 10; ++round) {
    std::unique_ptr<Tenant> t;
    if (!c.primary->GetTenant("t", &t).ok()) _exit(7);
    for (int i = 0; i < 1000; ++i) {
      t->Put(WriteOptions(), "k" + std::to_string(i), std::string(500, 'v'))
          .PermitUncheckedError();
    }
    t.reset();
    if (round % 2 == 0) {
      c.server.reset();
      std::this_thread::sleep_for(milliseconds(30));
      if (!ReplicaServer::Start(c.replica.get(), c.server_options, &c.server)
               .ok()) {
        _exit(8);
      }
    } else {
      c.primary.reset();
      if (!Cluster::Open(dir + "/primary", c.primary_options, c.keys,
                         &c.primary)
               .ok()) {
        _exit(9);
      }
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  c.Exit();
}

const int kChildHook = [] {
  const char* scenario = std::getenv("COFFER_REPL_CHILD");
  const char* dir = std::getenv("COFFER_REPL_CHILD_DIR");
  const char* certs = std::getenv("COFFER_REPL_CHILD_CERTS");
  if (scenario == nullptr || dir == nullptr || certs == nullptr) return 0;
  if (std::string(scenario) == "administration") {
    AdministrationChild(dir, certs);
  }
  if (std::string(scenario) == "restarts") RestartsChild(dir, certs);
  _exit(2);
}();

class ChildProcessTest : public ReplicationTest {
 protected:
  // Runs `scenario` in a child process. True if it ended within `limit`
  // (its wait status in *status); else kills it and returns false.
  bool RunChild(const std::string& scenario, std::chrono::seconds limit,
                int* status) {
    (void)kChildHook;
    const std::string dir = tmp_.Sub("child-" + scenario);
    fs::create_directories(dir);
    std::vector<std::string> env = {
        "COFFER_REPL_CHILD=" + scenario, "COFFER_REPL_CHILD_DIR=" + dir,
        "COFFER_REPL_CHILD_CERTS=" + certs_->path()};
    std::vector<char*> envp;
    for (std::string& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    char arg0[] = "replication_child";
    char* argv[] = {arg0, nullptr};
    const pid_t pid = ::fork();
    if (pid < 0) return false;
    if (pid == 0) {
      ::execve("/proc/self/exe", argv, envp.data());
      _exit(127);
    }
    const bool ended =
        WaitFor([&] { return ::waitpid(pid, status, WNOHANG) == pid; }, limit);
    if (!ended) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, status, 0);
    }
    return ended;
  }
};

TEST_F(ChildProcessTest, AdministrationWhileTenantsOpenDoesNotDeadlock) {
  int status = 0;
  const bool ended =
      RunChild("administration", std::chrono::seconds(15), &status);
  EXPECT_TRUE(ended) << "creating tenants and setting quotas while tenants "
                        "open deadlocked (the child was killed after 15 s)";
  if (ended) {
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "child wait status " << status;
  }
}

TEST_F(ChildProcessTest, RestartsDoNotKillAnApplicationWithSigpipe) {
  int status = 0;
  ASSERT_TRUE(RunChild("restarts", std::chrono::seconds(30), &status))
      << "the child hung";
  EXPECT_FALSE(WIFSIGNALED(status) && WTERMSIG(status) == SIGPIPE)
      << "the application was killed by SIGPIPE";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "child wait status " << status;
}

}  // namespace
}  // namespace coffer
