// Copyright (c) Coffer authors.
//
// replication-bench: what asynchronous replication costs the primary and how
// far the replica trails it. The primary cluster runs in this process; the
// replica is a ReplicaServer on 127.0.0.1 in this process too (both share
// the machine's cores), or with --replica-process a `coffer replica serve`
// child. They talk mutual TLS 1.3 with throwaway certificates. Figures:
//
//  1. fillrandom-style Put throughput with replication off and on, in
//     alternating rounds, each on fresh clusters; the ratio on/off is the
//     median of the per-round pairs.
//  2. Lag while writers run rate-limited at 50% and 90% of the median "on"
//     throughput: Cluster::GetReplicationStatus sampled every --sample-ms,
//     the largest lag_seconds over tenants per sample; and the delay of one
//     write in kTrackEvery, from its Put until the status shows it applied.
//  3. How long the lag takes to return to zero once those writers stop.
//  4. Catch-up after an outage: the replica is stopped while writers run at
//     the 50% rate, then restarted; time and rate (writes/s, MB/s) of the
//     catch-up against the rate the backlog was written at.
//
// Example:
//   replication-bench --seconds 3 --rounds 5 --lag-seconds 10 --outage-seconds 60

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <climits>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "bench/bench_util.h"
#include "coffer/cluster.h"
#include "coffer/replication.h"
#include "tools/demo_certs.h"

namespace coffer::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr char kPrimaryId[] = "bench-primary";
constexpr char kReplicaId[] = "bench-replica";
constexpr int kTrackEvery = 32;  // writes per thread between tracked ones
constexpr double kCatchUpTimeout = 300;

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Binds the calling thread, and the threads and processes it starts later,
// to one CPU.
bool PinTo(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof(set), &set) == 0;
}

// User + system CPU seconds of this process (all threads).
double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec +
         (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct Options {
  double seconds = 3;
  int rounds = 5;
  size_t value_size = 100;
  int tenants = 4;
  int threads = 2;
  int batch = 1;
  uint64_t num = 1000000;
  double lag_seconds = 10;
  double outage_seconds = 60;
  int sample_ms = 10;
  bool replica_process = false;
  bool pin = false;
  std::string coffer;
  std::string dir = "/tmp";
  uint64_t seed = 301;
  bool json = false;
};

// Nearest-rank percentile, p in [0, 100]; 0 when empty.
double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(p / 100 * v.size()));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

std::string TenantId(int i) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "t%03d", i);
  return buf;
}

bool CaughtUp(const ReplicationStatus& st, size_t tenants) {
  if (st.connection != "connected" || st.tenants.size() != tenants) {
    return false;
  }
  for (const TenantReplicationStatus& t : st.tenants) {
    if (t.state != "caught-up") return false;
  }
  return true;
}

uint64_t AppliedSeqs(const ReplicationStatus& st) {
  uint64_t total = 0;
  for (const TenantReplicationStatus& t : st.tenants) total += t.applied_seq;
  return total;
}

uint64_t LagSeqs(const ReplicationStatus& st) {
  uint64_t total = 0;
  for (const TenantReplicationStatus& t : st.tenants) total += t.lag_seqs;
  return total;
}

double MaxLagSeconds(const ReplicationStatus& st) {
  double worst = 0;
  for (const TenantReplicationStatus& t : st.tenants) {
    worst = std::max(worst, t.lag_seconds);
  }
  return worst;
}

// What every pair of the run shares, under one scratch root removed on
// destruction: the master key (the replica needs it: data keys travel
// wrapped) and the certificates (common name = cluster id).
class RunFiles {
 public:
  static Status Create(const std::string& parent,
                       std::unique_ptr<RunFiles>* result) {
    std::string root;
    Status s = MakeScratchDir(parent, &root);
    if (!s.ok()) return s;
    std::unique_ptr<RunFiles> f(new RunFiles());
    f->root_ = root;
    s = GenerateKeyFile(f->key_file());
    std::error_code ec;
    if (s.ok()) s = NewFileKeyProvider(f->key_file(), &f->keys_);
    fs::create_directories(f->root_ + "/certs", ec);
    if (s.ok()) {
      s = cli::WriteDemoCertificates(f->root_ + "/certs",
                                     {kPrimaryId, kReplicaId});
    }
    if (s.ok()) *result = std::move(f);
    return s;
  }
  ~RunFiles() { RemoveScratchDir(root_); }
  RunFiles(const RunFiles&) = delete;
  RunFiles& operator=(const RunFiles&) = delete;

  std::string key_file() const { return root_ + "/master.key"; }
  const std::shared_ptr<KeyProvider>& keys() const { return keys_; }
  TlsFiles Tls(const std::string& name) const {
    const std::string certs = root_ + "/certs/";
    return {certs + name + ".pem", certs + name + ".key", certs + "ca.pem"};
  }
  // A fresh directory for one pair of clusters.
  std::string NewDir() {
    const std::string dir = root_ + "/run-" + std::to_string(++runs_);
    std::error_code ec;
    fs::create_directories(dir, ec);
    return dir;
  }

 private:
  RunFiles() = default;
  std::string root_;
  std::shared_ptr<KeyProvider> keys_;
  int runs_ = 0;
};

OpenOptions BenchOpenOptions() {
  OpenOptions o;
  o.maintenance_interval_ms = 0;
  o.block_cache_bytes = size_t{64} << 20;
  return o;
}

// A primary with `tenants` tenants (each written once, so its database is
// open and the replica holds it) and, when replicating, its replica on
// 127.0.0.1, caught up. Removed on destruction.
class Pair {
 public:
  static Status Create(RunFiles* files, const Options& o, bool replicate,
                       std::unique_ptr<Pair>* result) {
    std::unique_ptr<Pair> p(new Pair(files, o));
    p->dir_ = files->NewDir();
    OpenOptions oo = BenchOpenOptions();
    Status s;
    if (replicate) {
      ClusterOptions r;
      r.cluster_id = kReplicaId;
      r.region = "local-b";
      r.geography = "local";
      r.limits.max_tenants = static_cast<uint32_t>(o.tenants) + 1;
      r.limits.default_tenant_quota = 0;
      r.replica = true;
      s = Cluster::Create(p->dir_ + "/replica", r, BenchOpenOptions(),
                          files->keys(), &p->replica_);
      if (s.ok() && o.replica_process) p->replica_.reset();  // the child's
      if (s.ok()) s = p->StartReplica();
      if (!s.ok()) return s;
      oo.replication.replica_address = "127.0.0.1:" + std::to_string(p->port_);
      oo.replication.tls = files->Tls(kPrimaryId);
      oo.replication.replica_cluster_id = kReplicaId;
    }
    ClusterOptions c;
    c.cluster_id = kPrimaryId;
    c.region = "local-a";
    c.geography = "local";
    c.limits.max_tenants = static_cast<uint32_t>(o.tenants) + 1;
    c.limits.default_tenant_quota = 0;
    s = Cluster::Create(p->dir_ + "/primary", c, oo, files->keys(),
                        &p->primary_);
    ValueGenerator values(o.seed);
    for (int i = 0; s.ok() && i < o.tenants; ++i) {
      std::unique_ptr<Tenant> t;
      s = p->primary_->CreateTenant(TenantId(i), TenantOptions());
      if (s.ok()) s = p->primary_->GetTenant(TenantId(i), &t);
      if (s.ok()) s = t->Put(WriteOptions(), "setup", values.Next(o.value_size));
      p->handles_.push_back(std::move(t));
    }
    double unused;
    if (s.ok() && replicate) s = p->WaitCaughtUp(60, &unused, nullptr);
    if (s.ok()) *result = std::move(p);
    return s;
  }

  ~Pair() {
    handles_.clear();
    primary_.reset();  // stops shipping
    StopReplica().PermitUncheckedError();
    replica_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  Pair(const Pair&) = delete;
  Pair& operator=(const Pair&) = delete;

  Cluster* primary() const { return primary_.get(); }
  Tenant* tenant(int i) const { return handles_[i].get(); }
  int port() const { return port_; }

  // Serves the replica on the port of the first start (the primary's
  // configured address), in this process or as a child.
  Status StartReplica() {
    if (o_.replica_process) return SpawnReplica();
    ReplicaServerOptions so;
    so.listen_address = "127.0.0.1:" + std::to_string(port_);
    so.tls = files_->Tls(kReplicaId);
    so.primary_cluster_id = kPrimaryId;
    Status s = ReplicaServer::Start(replica_.get(), so, &server_);
    if (s.ok()) port_ = server_->port();
    return s;
  }

  // Everything the replica acknowledged is durable; the primary retries.
  Status StopReplica() {
    if (server_ != nullptr) {
      server_->Stop();
      server_.reset();
    }
    if (child_ > 0) {
      ::kill(child_, SIGTERM);
      int status = 0;
      const pid_t pid = child_;
      child_ = 0;
      UnregisterChild(pid);
      if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
          WEXITSTATUS(status) != 0) {
        return Status::IOError("the replica process did not exit cleanly; see " +
                               dir_ + "/replica.log");
      }
    }
    return Status::OK();
  }

  // Polls the primary's status every millisecond until every tenant is
  // caught up. *seconds: how long that took; *connected_after (optional):
  // when the connection first showed "connected".
  Status WaitCaughtUp(double timeout, double* seconds,
                      double* connected_after) {
    const Clock::time_point t0 = Clock::now();
    ReplicationStatus st;
    bool connected = false;
    for (;;) {
      Status s = primary_->GetReplicationStatus(&st);
      if (!s.ok()) return s;
      if (!connected && st.connection == "connected") {
        connected = true;
        if (connected_after != nullptr) *connected_after = Since(t0);
      }
      if (CaughtUp(st, handles_.size())) break;
      if (Since(t0) > timeout) {
        return Status::IOError(
            "the replica did not catch up within " +
            std::to_string(static_cast<int>(timeout)) + " s (connection " +
            st.connection + ", " + std::to_string(LagSeqs(st)) +
            " writes behind" +
            (st.last_error.empty() ? "" : "; last error: " + st.last_error) +
            ")");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    *seconds = Since(t0);
    return Status::OK();
  }

 private:
  Pair(RunFiles* files, const Options& o) : files_(files), o_(o) {}

  // `coffer replica serve` on port_ (0 at first: a free one, read back
  // from its port file); its log goes to DIR/replica.log.
  Status SpawnReplica() {
    const std::string port_file = dir_ + "/replica.port";
    std::error_code ec;
    fs::remove(port_file, ec);
    const TlsFiles tls = files_->Tls(kReplicaId);
    const std::vector<std::string> args = {
        o_.coffer, "replica", "serve", "--data", dir_ + "/replica",
        "--key-file", files_->key_file(),
        "--listen", "127.0.0.1:" + std::to_string(port_),
        "--tls-cert", tls.cert_file, "--tls-key", tls.key_file,
        "--tls-ca", tls.ca_file, "--primary-id", kPrimaryId,
        "--port-file", port_file};
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, (dir_ + "/replica.log").c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0600);
    // This process blocks the signals CleanUpOnSignals waits for; the
    // child must not inherit that.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    if (o_.pin) PinTo(1);  // the child inherits this thread's CPU
    const int rc = posix_spawn(&child_, argv[0], &actions, &attr, argv.data(),
                               environ);
    if (o_.pin) PinTo(0);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      child_ = 0;
      return Status::IOError("cannot run " + o_.coffer + " (see --coffer)");
    }
    RegisterChild(child_);
    for (int i = 0; i < 400; ++i) {
      std::ifstream in(port_file);
      int port = 0;
      if (in >> port && port > 0) {
        port_ = port;
        return Status::OK();
      }
      int status;
      if (waitpid(child_, &status, WNOHANG) == child_) {
        UnregisterChild(child_);
        child_ = 0;
        return Status::IOError("the replica process exited; see " + dir_ +
                               "/replica.log");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return Status::IOError("the replica process did not start listening");
  }

  RunFiles* const files_;
  const Options& o_;
  std::string dir_;
  std::unique_ptr<Cluster> replica_;  // in-process replica only
  std::unique_ptr<ReplicaServer> server_;
  pid_t child_ = 0;
  int port_ = 0;
  std::unique_ptr<Cluster> primary_;
  std::vector<std::unique_ptr<Tenant>> handles_;
};

// Writes whose replication delay is measured exactly: the writer records
// the tenant's sequence after the Put (at or above the write's own, so the
// delay is never underestimated) and when the Put began; the sampler
// records the delay when the status first shows that sequence applied.
class WriteTracker {
 public:
  void Add(int tenant, uint64_t seq, Clock::time_point put_start) {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back({tenant, seq, put_start});
  }
  void Check(const std::vector<uint64_t>& applied, Clock::time_point now) {
    std::lock_guard<std::mutex> lock(mu_);
    auto done = [&](const Write& w) {
      if (applied[w.tenant] < w.seq) return false;
      delays_ms_.push_back(
          std::chrono::duration<double, std::milli>(now - w.start).count());
      return true;
    };
    pending_.erase(std::remove_if(pending_.begin(), pending_.end(), done),
                   pending_.end());
  }
  std::vector<double> delays_ms() {
    std::lock_guard<std::mutex> lock(mu_);
    return delays_ms_;
  }

 private:
  struct Write {
    int tenant;
    uint64_t seq;
    Clock::time_point start;
  };
  std::mutex mu_;
  std::vector<Write> pending_;     // guarded by mu_
  std::vector<double> delays_ms_;  // guarded by mu_
};

// Samples the primary's replication status every `interval_ms` on its own
// thread: the largest lag_seconds over tenants while recording() is on, and
// the tracked writes' delays throughout.
class LagSampler {
 public:
  LagSampler(Cluster* primary, int tenants, int interval_ms,
             WriteTracker* tracker)
      : primary_(primary), tenants_(tenants), interval_(interval_ms),
        tracker_(tracker) {
    for (int i = 0; i < tenants; ++i) index_[TenantId(i)] = i;
    thread_ = std::thread([this] { Run(); });
  }
  ~LagSampler() { Stop(); }
  LagSampler(const LagSampler&) = delete;
  LagSampler& operator=(const LagSampler&) = delete;

  void StopRecording() { recording_ = false; }
  // Joins the thread, then takes one last sample.
  void Stop() {
    if (!thread_.joinable()) return;
    stop_ = true;
    thread_.join();
    Sample();
  }
  const std::vector<double>& lag_ms() const { return lag_ms_; }
  uint64_t max_lag_seqs() const { return max_lag_seqs_; }
  const Status& status() const { return status_; }

 private:
  void Run() {
    Clock::time_point next = Clock::now();
    while (!stop_) {
      Sample();
      next += interval_;
      std::this_thread::sleep_until(next);
    }
  }
  void Sample() {
    ReplicationStatus st;
    Status s = primary_->GetReplicationStatus(&st);
    const Clock::time_point now = Clock::now();
    if (!s.ok()) {
      status_ = s;
      return;
    }
    if (recording_) {
      lag_ms_.push_back(MaxLagSeconds(st) * 1e3);
      max_lag_seqs_ = std::max(max_lag_seqs_, LagSeqs(st));
    }
    std::vector<uint64_t> applied(tenants_, 0);
    for (const TenantReplicationStatus& t : st.tenants) {
      auto it = index_.find(t.tenant);
      if (it != index_.end()) applied[it->second] = t.applied_seq;
    }
    if (tracker_ != nullptr) tracker_->Check(applied, now);
  }

  Cluster* const primary_;
  const int tenants_;
  const std::chrono::milliseconds interval_;
  WriteTracker* const tracker_;
  std::map<std::string, int> index_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> recording_{true};
  // Written by the sampler thread; read after Stop.
  std::vector<double> lag_ms_;
  uint64_t max_lag_seqs_ = 0;
  Status status_;
  std::thread thread_;
};

struct WriteRun {
  uint64_t ops = 0;
  double seconds = 0;
  double cpu_seconds = 0;  // of this process while the writers ran
  uint64_t applied = 0;    // writes the replica acknowledged meanwhile
  double ops_per_sec() const { return seconds > 0 ? ops / seconds : 0; }
  double applied_per_sec() const { return seconds > 0 ? applied / seconds : 0; }
};

struct alignas(64) Counter {
  std::atomic<uint64_t> ops{0};
};

// One writer: random keys of [0, --num) to uniformly chosen tenants, --batch
// Puts per atomic write; at `rate` Puts/s (0: as fast as it can) until
// `stop`.
Status WriterLoop(const Pair& pair, const Options& o, int thread, double rate,
                  Clock::time_point t0, const std::atomic<bool>& stop,
                  WriteTracker* tracker, Counter* counter) {
  Random rng(o.seed * 7919 + thread);
  ValueGenerator values(o.seed + thread);
  char key[kKeyLen];
  WriteBatch batch;
  uint64_t ops = 0, writes = 0;
  while (!stop.load(std::memory_order_relaxed)) {
    if (rate > 0) {
      const double ahead = (ops + o.batch) / rate - Since(t0);
      if (ahead > 0) {
        std::this_thread::sleep_for(
            std::chrono::duration<double>(std::min(ahead, 0.01)));
        continue;
      }
    }
    const int t = static_cast<int>(rng.Uniform(o.tenants));
    const bool track = tracker != nullptr && writes++ % kTrackEvery == 0;
    const Clock::time_point start = track ? Clock::now() : Clock::time_point();
    Status s;
    if (o.batch == 1) {
      FormatKey(rng.Uniform(o.num), key);
      s = pair.tenant(t)->Put(WriteOptions(), std::string_view(key, kKeyLen),
                              values.Next(o.value_size));
    } else {
      batch.Clear();
      for (int i = 0; i < o.batch; ++i) {
        FormatKey(rng.Uniform(o.num), key);
        batch.Put(std::string_view(key, kKeyLen), values.Next(o.value_size));
      }
      s = pair.tenant(t)->Write(WriteOptions(), batch);
    }
    if (!s.ok()) return s;
    if (track) {
      std::shared_ptr<const Snapshot> snap;
      if (pair.tenant(t)->GetSnapshot(&snap).ok()) {
        tracker->Add(t, snap->sequence(), start);
      }
    }
    ops += o.batch;
    counter->ops.store(ops, std::memory_order_relaxed);
  }
  return Status::OK();
}

// Runs --threads writers for `seconds` at `rate` writes/s in total (0:
// unlimited), printing a progress line on stderr every 2 s.
Status RunWriters(const Pair& pair, const Options& o, double seconds,
                  double rate, WriteTracker* tracker, const std::string& label,
                  WriteRun* run) {
  ReplicationStatus st;
  Status s = pair.primary()->GetReplicationStatus(&st);
  if (!s.ok()) return s;
  const uint64_t applied0 = AppliedSeqs(st);
  std::atomic<bool> stop{false};
  std::vector<Counter> counters(o.threads);
  std::vector<Status> results(o.threads);
  std::vector<std::thread> threads;
  const double cpu0 = CpuSeconds();
  const Clock::time_point t0 = Clock::now();
  for (int i = 0; i < o.threads; ++i) {
    threads.emplace_back([&, i] {
      results[i] = WriterLoop(pair, o, i, rate / o.threads, t0, stop, tracker,
                              &counters[i]);
    });
  }
  double next_progress = 2;
  double t = 0;
  while ((t = Since(t0)) < seconds) {
    if (t >= next_progress && seconds > 4) {
      uint64_t ops = 0;
      for (const Counter& c : counters) ops += c.ops.load();
      std::string lag;
      if (pair.primary()->GetReplicationStatus(&st).ok() &&
          st.connection != "off") {
        char buf[96];
        std::snprintf(buf, sizeof(buf), ", replica %s, %" PRIu64
                      " writes behind (%.0f ms)", st.connection.c_str(),
                      LagSeqs(st), MaxLagSeconds(st) * 1e3);
        lag = buf;
      }
      std::fprintf(stderr, "... %s: %.0f/%.0f s, %" PRIu64 " writes%s\n",
                   label.c_str(), t, seconds, ops, lag.c_str());
      next_progress += 2;
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(
        std::min(0.05, std::max(0.0, seconds - t))));
  }
  stop = true;
  for (std::thread& th : threads) th.join();
  run->seconds = Since(t0);
  run->cpu_seconds = CpuSeconds() - cpu0;
  run->ops = 0;
  for (const Counter& c : counters) run->ops += c.ops.load();
  for (const Status& r : results) {
    if (!r.ok()) return r;
  }
  s = pair.primary()->GetReplicationStatus(&st);
  run->applied = AppliedSeqs(st) - applied0;
  return s;
}

// ---- the four measurements -------------------------------------------------

struct ThroughputRound {
  WriteRun off, on;
  double catch_up_seconds = 0;  // after the on-run's writers stopped
};

Status MeasureThroughput(RunFiles* files, const Options& o, int round,
                         ThroughputRound* r) {
  for (int k = 0; k < 2; ++k) {
    const bool on = (round % 2 == 0) == (k == 1);  // off first in odd rounds
    std::unique_ptr<Pair> pair;
    Status s = Pair::Create(files, o, on, &pair);
    const std::string label = "round " + std::to_string(round + 1) + " " +
                              (on ? "on" : "off");
    if (s.ok()) s = RunWriters(*pair, o, o.seconds, 0, nullptr, label,
                               on ? &r->on : &r->off);
    if (s.ok() && on) {
      s = pair->WaitCaughtUp(kCatchUpTimeout, &r->catch_up_seconds, nullptr);
    }
    if (!s.ok()) return s;
  }
  return Status::OK();
}

struct LagRun {
  double load = 0;  // fraction of the maximum rate
  double target_rate = 0;
  WriteRun writes;
  std::vector<double> status_lag_ms;  // one per sample
  std::vector<double> write_delay_ms;  // one per tracked write
  uint64_t max_lag_seqs = 0;
  double drain_seconds = 0;
};

Status MeasureLag(RunFiles* files, const Options& o, double load,
                  double max_rate, LagRun* r) {
  r->load = load;
  r->target_rate = load * max_rate;
  std::unique_ptr<Pair> pair;
  Status s = Pair::Create(files, o, true, &pair);
  if (!s.ok()) return s;
  WriteTracker tracker;
  LagSampler sampler(pair->primary(), o.tenants, o.sample_ms, &tracker);
  char label[64];
  std::snprintf(label, sizeof(label), "lag at %.0f%%", load * 100);
  s = RunWriters(*pair, o, o.lag_seconds, r->target_rate, &tracker, label,
                 &r->writes);
  sampler.StopRecording();
  if (s.ok()) s = pair->WaitCaughtUp(kCatchUpTimeout, &r->drain_seconds, nullptr);
  sampler.Stop();
  if (s.ok()) s = sampler.status();
  r->status_lag_ms = sampler.lag_ms();
  r->write_delay_ms = tracker.delays_ms();
  r->max_lag_seqs = sampler.max_lag_seqs();
  return s;
}

struct OutageRun {
  double target_rate = 0;
  WriteRun writes;  // while the replica was down
  uint64_t backlog_writes = 0;  // behind when the replica came back
  uint64_t shipped_bytes = 0;   // log bytes shipped during the catch-up
  uint64_t reseeds = 0;
  double reconnect_seconds = 0;  // restart until "connected"
  double total_seconds = 0;      // restart until caught up
  double catch_up_seconds() const { return total_seconds - reconnect_seconds; }
  double catch_up_rate() const {
    return catch_up_seconds() > 0 ? backlog_writes / catch_up_seconds() : 0;
  }
};

Status MeasureOutage(RunFiles* files, const Options& o, double rate,
                     OutageRun* r) {
  r->target_rate = rate;
  std::unique_ptr<Pair> pair;
  Status s = Pair::Create(files, o, true, &pair);
  if (s.ok()) s = pair->StopReplica();
  // Let the primary notice, so every write below is part of the backlog.
  ReplicationStatus st;
  const Clock::time_point t0 = Clock::now();
  while (s.ok() && (s = pair->primary()->GetReplicationStatus(&st)).ok() &&
         st.connection == "connected" && Since(t0) < 15) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (s.ok()) s = RunWriters(*pair, o, o.outage_seconds, rate, nullptr,
                             "outage", &r->writes);
  if (s.ok()) s = pair->primary()->GetReplicationStatus(&st);
  if (!s.ok()) return s;
  r->backlog_writes = LagSeqs(st);
  const uint64_t bytes0 = st.bytes, reseeds0 = st.reseeds;
  std::fprintf(stderr, "... outage: %" PRIu64 " writes behind; restarting the "
               "replica\n", r->backlog_writes);
  const Clock::time_point restart = Clock::now();
  s = pair->StartReplica();
  double ignored;
  if (s.ok()) s = pair->WaitCaughtUp(kCatchUpTimeout, &ignored, &r->reconnect_seconds);
  r->total_seconds = Since(restart);
  if (s.ok()) s = pair->primary()->GetReplicationStatus(&st);
  if (!s.ok()) return s;
  r->shipped_bytes = st.bytes - bytes0;
  r->reseeds = st.reseeds - reseeds0;
  return Status::OK();
}

// ---- output ------------------------------------------------------------------

std::string JsonArray(const std::vector<double>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + JsonNumber(v[i]);
  return out + "]";
}

int Main(int argc, char** argv) {
  CleanUpOnSignals();
  Options o;
  CLI::App app{
      "replication-bench: Put throughput with replication off vs on "
      "(alternating rounds, ratio = median of per-round pairs), replication "
      "lag at 50% and 90% of the maximum rate, time to drain the lag, and "
      "catch-up after a replica outage. The primary runs in this process; "
      "the replica is a ReplicaServer on 127.0.0.1 in this process too, or "
      "a `coffer replica serve` child with --replica-process."};
  app.add_option("--seconds", o.seconds, "seconds of each throughput run")
      ->capture_default_str()
      ->check(NumberAtLeast(0.1));
  app.add_option("--rounds", o.rounds, "alternating off/on throughput rounds")
      ->capture_default_str()
      ->check(IntegerIn(1, 1000));
  app.add_option("--value-size", o.value_size,
                 "bytes per value (keys: 16; at most 1 MiB)")
      ->capture_default_str()
      ->check(IntegerIn(1, kMaxValueBytes));
  app.add_option("--tenants", o.tenants, "tenants; each Put picks one at random")
      ->capture_default_str()
      ->check(IntegerIn(1, 10000));
  app.add_option("--threads", o.threads, "writer threads (1..1024)")
      ->capture_default_str()
      ->check(IntegerIn(1, 1024));
  app.add_option("--batch", o.batch,
                 "Puts per atomic write (Tenant::Write); 1: single Puts. "
                 "Rates and ops/sec count Puts")
      ->capture_default_str()
      ->check(IntegerIn(1, 100000));
  app.add_option("--num", o.num, "random keys are drawn from [0, num) per tenant")
      ->capture_default_str()
      ->check(IntegerIn(1, LLONG_MAX));
  app.add_option("--lag-seconds", o.lag_seconds,
                 "seconds of each rate-limited lag run (50% and 90%)")
      ->capture_default_str()
      ->check(NumberAtLeast(0.1));
  app.add_option("--outage-seconds", o.outage_seconds,
                 "seconds the replica is down while writers run at 50%")
      ->capture_default_str()
      ->check(NumberAtLeast(0.1));
  app.add_option("--sample-ms", o.sample_ms, "status sampling interval")
      ->capture_default_str()
      ->check(IntegerIn(1, 60000));
  app.add_flag("--replica-process", o.replica_process,
               "run the replica as a `coffer replica serve` child process "
               "(its own default OpenOptions) instead of in this process");
  app.add_flag("--pin", o.pin,
               "with --replica-process: run this process on CPU 0 and the "
               "replica on CPU 1, a stand-in for separate machines (the "
               "off-runs are on CPU 0 too)");
  app.add_option("--coffer", o.coffer,
                 "the coffer binary for --replica-process (default: "
                 "../coffer next to this binary)");
  app.add_option("--dir", o.dir, "parent of the scratch directory (must exist)")
      ->capture_default_str();
  app.add_option("--seed", o.seed, "seed of keys and values")
      ->capture_default_str()
      ->check(IntegerIn(0, LLONG_MAX));
  app.add_flag("--json", o.json,
               "print one JSON document on stdout; the text goes to stderr");
  const int parsed = ParseCommandLine(app, argc, argv);
  if (parsed >= 0) return parsed;
  if (o.pin && (!o.replica_process || CpuCount() < 2)) {
    std::cerr << "replication-bench: --pin needs --replica-process and at "
                 "least 2 CPUs\n";
    return 2;
  }
  if (o.replica_process && o.coffer.empty()) {
    std::error_code ec;
    o.coffer = (fs::read_symlink("/proc/self/exe", ec).parent_path().parent_path() /
                "coffer").string();
  }
  if (o.replica_process && access(o.coffer.c_str(), X_OK) != 0) {
    std::cerr << "replication-bench: no coffer binary at '" << o.coffer
              << "'; give one with --coffer PATH\n";
    return 2;
  }
  // A write to a connection the peer closed must not kill the process.
  ::signal(SIGPIPE, SIG_IGN);
  if (o.pin && !PinTo(0)) {
    std::cerr << "replication-bench: cannot bind to CPU 0\n";
    return 1;
  }
  std::ostream& text = o.json ? std::cerr : std::cout;
  char buf[512];
  auto line = [&](const char* fmt, auto... args) {
    std::snprintf(buf, sizeof(buf), fmt, args...);
    text << buf << "\n" << std::flush;
  };
  auto fail = [&](const std::string& what, const Status& s) {
    std::cerr << "replication-bench: " << what << ": " << s.ToString() << "\n";
    return 1;
  };
  const Clock::time_point start = Clock::now();
  std::unique_ptr<RunFiles> files;
  Status s = RunFiles::Create(o.dir, &files);
  if (!s.ok()) return fail("setup", s);

  const char* where =
      o.pin ? "replica in a child process (coffer replica serve) on CPU 1, "
              "this process on CPU 0"
      : o.replica_process ? "replica in a child process (coffer replica serve)"
                          : "replica in this process (ReplicaServer)";
  line("replication-bench: %s, %d CPUs; %s on 127.0.0.1, mutual TLS 1.3",
       CpuModel().c_str(), CpuCount(), where);
  line("options: %zu B values, 16 B keys, %d Put(s) per write, %d tenants, %d "
       "threads; %d rounds of %.1f s; lag runs %.1f s; outage %.1f s; status "
       "every %d ms",
       o.value_size, o.batch, o.tenants, o.threads, o.rounds, o.seconds,
       o.lag_seconds, o.outage_seconds, o.sample_ms);

  // 1. Throughput, off vs on.
  std::vector<ThroughputRound> rounds(o.rounds);
  std::vector<double> off_ops, on_ops, ratios, cpu_off, cpu_on, applied,
      applied_share;
  for (int r = 0; r < o.rounds; ++r) {
    s = MeasureThroughput(files.get(), o, r, &rounds[r]);
    if (!s.ok()) return fail("throughput round " + std::to_string(r + 1), s);
    const ThroughputRound& t = rounds[r];
    off_ops.push_back(t.off.ops_per_sec());
    on_ops.push_back(t.on.ops_per_sec());
    ratios.push_back(t.off.ops_per_sec() > 0
                         ? t.on.ops_per_sec() / t.off.ops_per_sec() : 0);
    cpu_off.push_back(t.off.cpu_seconds * 1e6 / std::max<uint64_t>(t.off.ops, 1));
    cpu_on.push_back(t.on.cpu_seconds * 1e6 / std::max<uint64_t>(t.on.ops, 1));
    applied.push_back(t.on.applied_per_sec());
    applied_share.push_back(t.on.ops > 0 ? double(t.on.applied) / t.on.ops : 0);
    line("round %d/%d (%s first): off %.0f ops/sec, on %.0f ops/sec, on/off "
         "%.3f; CPU %.2f vs %.2f us/write; the replica applied %.0f writes/s "
         "meanwhile (%.0f%% of them) and caught up %.2f s after the stop",
         r + 1, o.rounds, r % 2 == 0 ? "off" : "on", off_ops.back(),
         on_ops.back(), ratios.back(), cpu_off.back(), cpu_on.back(),
         applied.back(), applied_share.back() * 100, t.catch_up_seconds);
  }
  const Spread off = SpreadOf(off_ops), on = SpreadOf(on_ops),
               ratio = SpreadOf(ratios), cpu_o = SpreadOf(cpu_off),
               cpu_n = SpreadOf(cpu_on), kept = SpreadOf(applied),
               share = SpreadOf(applied_share);
  line("throughput off     : %.0f ops/sec (median of %d; min %.0f, max %.0f)",
       off.median, o.rounds, off.min, off.max);
  line("throughput on      : %.0f ops/sec (median of %d; min %.0f, max %.0f)",
       on.median, o.rounds, on.min, on.max);
  line("ratio on/off       : median %.3f  min %.3f  max %.3f  (target >= 0.9: %s)",
       ratio.median, ratio.min, ratio.max, ratio.median >= 0.9 ? "met" : "MISSED");
  line("replica kept up    : applied %.0f writes/s while the on-runs wrote "
       "(median; min %.0f, max %.0f): %.0f%% of the writes",
       kept.median, kept.min, kept.max, share.median * 100);
  line("cpu per write      : off %.2f us, on %.2f us (process CPU / writes, "
       "medians; %s)",
       cpu_o.median, cpu_n.median,
       o.replica_process ? "the replica process's work is not counted"
                         : "the in-process replica's work counts in 'on'");

  // 2 + 3. Lag at 50% and 90% of the maximum rate; drain time.
  const double max_rate = on.median;
  std::vector<LagRun> lags(2);
  const double loads[2] = {0.5, 0.9};
  for (int i = 0; i < 2; ++i) {
    s = MeasureLag(files.get(), o, loads[i], max_rate, &lags[i]);
    if (!s.ok()) return fail("lag run", s);
    const LagRun& l = lags[i];
    line("lag at %2.0f%%         : %.0f writes/s asked, %.0f done over %.1f s; "
         "the replica applied %.0f writes/s meanwhile",
         l.load * 100, l.target_rate, l.writes.ops_per_sec(), l.writes.seconds,
         l.writes.applied_per_sec());
    line("  status lag       : P50 %.1f  P99 %.1f  max %.1f ms (%zu samples, "
         "largest over tenants; at most %" PRIu64 " writes behind)",
         Percentile(l.status_lag_ms, 50), Percentile(l.status_lag_ms, 99),
         Percentile(l.status_lag_ms, 100), l.status_lag_ms.size(), l.max_lag_seqs);
    line("  per-write delay  : P50 %.1f  P99 %.1f  max %.1f ms (%zu tracked "
         "writes, Put to applied; +0..%d ms sampling)",
         Percentile(l.write_delay_ms, 50), Percentile(l.write_delay_ms, 99),
         Percentile(l.write_delay_ms, 100), l.write_delay_ms.size(), o.sample_ms);
    line("  drain            : lag back to 0 %.3f s after the writers stopped",
         l.drain_seconds);
  }
  const double p99_half = Percentile(lags[0].status_lag_ms, 99);
  line("target p99 <= 100 ms at 50%%: %s (%.1f ms)",
       p99_half <= 100 ? "met" : "MISSED", p99_half);

  // 4. Outage and catch-up.
  OutageRun out;
  s = MeasureOutage(files.get(), o, 0.5 * max_rate, &out);
  if (!s.ok()) return fail("outage run", s);
  const double write_rate = out.writes.ops_per_sec();
  const double catch_rate = out.catch_up_rate();
  const double mb = out.catch_up_seconds() > 0
                        ? out.shipped_bytes / out.catch_up_seconds() / 1e6 : 0;
  line("outage             : replica down %.1f s while writing %.0f writes/s "
       "(%.0f asked): %" PRIu64 " writes behind",
       out.writes.seconds, write_rate, out.target_rate, out.backlog_writes);
  line("catch-up           : reconnected %.2f s after the restart, caught up "
       "%.2f s later: %.0f writes/s, %.1f MB/s of log (%" PRIu64
       " bytes, %" PRIu64 " reseeds)",
       out.reconnect_seconds, out.catch_up_seconds(), catch_rate, mb,
       out.shipped_bytes, out.reseeds);
  line("ratio catch-up/write rate: %.2f (restart to caught up: %.2f s, %.2f "
       "of the outage)",
       write_rate > 0 ? catch_rate / write_rate : 0, out.total_seconds,
       out.writes.seconds > 0 ? out.total_seconds / out.writes.seconds : 0);
  const double total = Since(start);
  line("total time         : %.1f s", total);
  files.reset();

  if (o.json) {
    std::ostringstream j;
    j << "{\"tool\": \"replication-bench\", \"cpu\": " << JsonString(CpuModel())
      << ", \"cpus\": " << CpuCount()
      << ", \"replica\": "
      << JsonString(o.pin ? "process-pinned"
                          : o.replica_process ? "process" : "in-process")
      << ", \"value_size\": " << o.value_size << ", \"tenants\": " << o.tenants
      << ", \"threads\": " << o.threads << ", \"batch\": " << o.batch
      << ", \"seconds\": " << JsonNumber(o.seconds)
      << ", \"rounds\": " << o.rounds
      << ", \"lag_seconds\": " << JsonNumber(o.lag_seconds)
      << ", \"outage_seconds\": " << JsonNumber(o.outage_seconds)
      << ", \"sample_ms\": " << o.sample_ms
      << ",\n \"throughput\": {\"off_ops_per_sec\": " << JsonArray(off_ops)
      << ", \"on_ops_per_sec\": " << JsonArray(on_ops)
      << ", \"ratios\": " << JsonArray(ratios)
      << ", \"ratio_median\": " << JsonNumber(ratio.median)
      << ", \"ratio_min\": " << JsonNumber(ratio.min)
      << ", \"ratio_max\": " << JsonNumber(ratio.max)
      << ", \"off_median\": " << JsonNumber(off.median)
      << ", \"on_median\": " << JsonNumber(on.median)
      << ", \"cpu_us_per_write_off\": " << JsonArray(cpu_off)
      << ", \"cpu_us_per_write_on\": " << JsonArray(cpu_on)
      << ", \"replica_applied_per_sec\": " << JsonArray(applied)
      << ", \"replica_applied_share\": " << JsonArray(applied_share)
      << "},\n \"lag\": [";
    for (size_t i = 0; i < lags.size(); ++i) {
      const LagRun& l = lags[i];
      j << (i ? ", " : "") << "{\"load\": " << JsonNumber(l.load)
        << ", \"target_rate\": " << JsonNumber(l.target_rate)
        << ", \"rate\": " << JsonNumber(l.writes.ops_per_sec())
        << ", \"replica_applied_per_sec\": " << JsonNumber(l.writes.applied_per_sec())
        << ", \"samples\": " << l.status_lag_ms.size()
        << ", \"status_lag_p50_ms\": " << JsonNumber(Percentile(l.status_lag_ms, 50))
        << ", \"status_lag_p99_ms\": " << JsonNumber(Percentile(l.status_lag_ms, 99))
        << ", \"status_lag_max_ms\": " << JsonNumber(Percentile(l.status_lag_ms, 100))
        << ", \"tracked_writes\": " << l.write_delay_ms.size()
        << ", \"write_delay_p50_ms\": " << JsonNumber(Percentile(l.write_delay_ms, 50))
        << ", \"write_delay_p99_ms\": " << JsonNumber(Percentile(l.write_delay_ms, 99))
        << ", \"write_delay_max_ms\": " << JsonNumber(Percentile(l.write_delay_ms, 100))
        << ", \"max_lag_writes\": " << l.max_lag_seqs
        << ", \"drain_seconds\": " << JsonNumber(l.drain_seconds) << "}";
    }
    j << "],\n \"outage\": {\"seconds\": " << JsonNumber(out.writes.seconds)
      << ", \"target_rate\": " << JsonNumber(out.target_rate)
      << ", \"write_rate\": " << JsonNumber(write_rate)
      << ", \"backlog_writes\": " << out.backlog_writes
      << ", \"reconnect_seconds\": " << JsonNumber(out.reconnect_seconds)
      << ", \"catch_up_seconds\": " << JsonNumber(out.catch_up_seconds())
      << ", \"catch_up_writes_per_sec\": " << JsonNumber(catch_rate)
      << ", \"catch_up_mb_per_sec\": " << JsonNumber(mb)
      << ", \"shipped_bytes\": " << out.shipped_bytes
      << ", \"reseeds\": " << out.reseeds
      << ", \"ratio_catch_up_to_write_rate\": "
      << JsonNumber(write_rate > 0 ? catch_rate / write_rate : 0) << "},\n"
      << " \"total_seconds\": " << JsonNumber(total) << "}\n";
    std::cout << j.str();
  }
  return 0;
}

}  // namespace
}  // namespace coffer::bench

int main(int argc, char** argv) { return coffer::bench::Main(argc, argv); }
