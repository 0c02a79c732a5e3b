// Copyright (c) Coffer authors.
//
// workload and verify: an embedding application for operators' drills and
// for tests. `coffer workload` writes a deterministic, verifiable stream of
// records to N tenants and appends one line to an ack log for every write the
// cluster acknowledged; `coffer verify` reads the log back and checks that
// every tenant still holds exactly what was acknowledged. Kill a process,
// fail over to a replica or restore a backup in between, and verify says
// what was lost or damaged.
//
// The records and the ack log are described in tools/workload_format.h. Each
// tenant's writes are issued and acknowledged in order, by one thread. Each
// ack line is written with one write(2) right after the acknowledgement, on a
// descriptor opened with O_APPEND, so the lines of concurrent writers never
// interleave and a killed process loses at most the line of the write in
// flight (whose record is then "extra": present but not acknowledged). Both
// commands ignore a torn last line; workload cuts it off before appending.

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "coffer/cluster.h"
#include "coffer/replication.h"
#include "coffer/tenant.h"
#include "tools/cli_common.h"
#include "tools/commands.h"
#include "tools/workload_format.h"

namespace coffer::cli {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t kMaxTenants = 1000;  // <prefix>-000 .. <prefix>-999
constexpr size_t kMaxWriterThreads = 4;
constexpr auto kRetryDelay = std::chrono::milliseconds(100);
constexpr auto kProgressInterval = std::chrono::seconds(5);
// Problems verify prints per tenant; the rest are only counted.
constexpr size_t kMaxProblemsShown = 10;

// The ack log of a running workload: a descriptor opened with O_APPEND and
// locked against a second workload. Append is thread-safe (one write(2) per
// line, atomic for O_APPEND).
class AckLogWriter {
 public:
  AckLogWriter() = default;
  ~AckLogWriter() {
    if (fd_ >= 0) close(fd_);
  }
  AckLogWriter(const AckLogWriter&) = delete;
  AckLogWriter& operator=(const AckLogWriter&) = delete;

  // Opens (creating with mode 0644) and locks `path`, then reads it into
  // *contents and cuts off a torn last line. Busy if another workload has it.
  Status Open(const std::string& path, AckLogContents* contents) {
    path_ = path;
    fd_ = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) return Error("cannot open");
    if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK) {
        return Status::Busy("ack log " + path +
                            " is in use by another workload");
      }
      return Error("cannot lock");
    }
    Status s = ReadAckLog(path, contents);
    if (s.ok() && contents->torn_tail &&
        ftruncate(fd_, static_cast<off_t>(contents->complete_bytes)) != 0) {
      return Error("cannot cut the torn last line of");
    }
    return s;
  }

  Status Append(std::string_view tenant, uint64_t n) {
    const std::string line =
        std::string(tenant) + " " + std::to_string(n) + "\n";
    const ssize_t written = write(fd_, line.data(), line.size());
    if (written == static_cast<ssize_t>(line.size())) return Status::OK();
    if (written >= 0) errno = ENOSPC;
    return Error("cannot append to");
  }

 private:
  Status Error(std::string_view what) const {
    // Not strerror: writer threads call this concurrently.
    return Status::IOError(std::string(what) + " the ack log " + path_ + ": " +
                           std::generic_category().message(errno));
  }

  std::string path_;
  int fd_ = -1;
};

// ---- workload --------------------------------------------------------------

struct WorkloadArgs {
  ClusterArgs cluster;
  uint64_t tenants = 0;
  uint64_t rate = 0;      // writes per second in total; 0 = unlimited
  uint64_t duration = 0;  // seconds; 0 = until SIGINT or SIGTERM
  uint64_t value_size = 100;
  std::string tenant_prefix = "wl";
  std::string replicate_to;
  TlsFiles tls;
  uint64_t rpo_bound_ms = 0;
  uint64_t rpo_wait_ms = 0;
  std::string ack_log;
  bool sync = false;
  bool json = false;
  uint64_t rotate_every_ms = 0;  // 0 = no data-key rotation
  uint64_t rekey_every = 0;      // every k-th rotation rekeys; 0 = never
};

// A flag the writers wait on, so that a stop ends their sleeps at once.
class StopSignal {
 public:
  void Stop() {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    cv_.notify_all();
  }
  bool stopped() {
    std::lock_guard<std::mutex> lock(mu_);
    return stopped_;
  }
  // Sleeps until `deadline` or a stop; true if stopped.
  bool WaitUntil(Clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_until(lock, deadline, [this] { return stopped_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
};

struct WorkloadTenant {
  std::string id;
  std::unique_ptr<Tenant> handle;
  uint64_t resumed_after = 0;           // last n in the ack log at the start
  std::atomic<uint64_t> last_acked{0};  // written by its one writer only
};

// One run of `coffer workload`. Run() is called once, from the main thread,
// with SIGINT and SIGTERM blocked in every thread (see RegisterWorkload).
class Workload {
 public:
  explicit Workload(const WorkloadArgs& args) : args_(args) {}

  // Returns the exit code.
  int Run();

 private:
  Status Setup();
  // Writes to `mine` in turn until stopped, at `ops_per_second` (0: as fast
  // as possible).
  void Writer(std::vector<WorkloadTenant*> mine, double ops_per_second);
  // With --rotate-every: rotates the data key of one tenant after another,
  // every rotate_every_ms, until stopped.
  void Rotator();
  // Waits for the duration, a signal or a fatal error; prints progress.
  void AwaitStop(Clock::time_point start);
  // Prints one error line on stderr.
  void Report(std::string_view message);
  // Stops every writer; the run fails with the first such `message`.
  void StopWithError(std::string message);
  int PrintSummary(double seconds);

  const WorkloadArgs& args_;
  // Declared before the tenants: their handles must be released first.
  std::unique_ptr<Cluster> cluster_;
  std::vector<WorkloadTenant> tenants_;
  AckLogWriter ack_log_;
  StopSignal stop_;
  std::atomic<uint64_t> acked_{0};
  std::atomic<uint64_t> failures_{0};
  std::atomic<uint64_t> rotations_{0};
  std::string stopped_by_ = "duration";  // main thread only
  std::mutex mu_;                        // guards fatal_ and stderr lines
  std::string fatal_;                    // why the run failed; empty if not
  std::atomic<bool> switch_reported_{false};
};

Status Workload::Setup() {
  std::shared_ptr<KeyProvider> keys;
  Status s = OpenKeyProvider(args_.cluster, &keys);
  if (!s.ok()) return s;
  OpenOptions options = ToolOpenOptions();
  if (!args_.replicate_to.empty()) {
    options.replication.replica_address = args_.replicate_to;
    options.replication.tls = args_.tls;
    options.replication.rpo_bound_ms = args_.rpo_bound_ms;
    options.replication.rpo_wait_ms = args_.rpo_wait_ms;
  }
  s = Cluster::Open(args_.cluster.data, options, std::move(keys), &cluster_);
  if (!s.ok()) return s;

  AckLogContents log;
  s = ack_log_.Open(args_.ack_log, &log);
  if (!s.ok()) return s;

  tenants_ = std::vector<WorkloadTenant>(args_.tenants);
  for (uint64_t i = 0; i < args_.tenants; ++i) {
    WorkloadTenant& t = tenants_[i];
    char suffix[24];
    std::snprintf(suffix, sizeof(suffix), "-%03llu",
                  static_cast<unsigned long long>(i));
    t.id = args_.tenant_prefix + suffix;
    // An existing tenant is used as it is (also on a cluster that takes no
    // writes now: its writers then report why).
    s = cluster_->GetTenant(t.id, &t.handle);
    if (s.IsNotFound()) {
      s = cluster_->CreateTenant(t.id, TenantOptions());
      if (s.IsAlreadyExists()) s = Status::OK();
      if (s.ok()) s = cluster_->GetTenant(t.id, &t.handle);
    }
    if (!s.ok()) return s;
    const auto it = log.last_n.find(t.id);
    t.resumed_after = it == log.last_n.end() ? 0 : it->second;
    t.last_acked = t.resumed_after;
  }
  return Status::OK();
}

void Workload::Report(std::string_view message) {
  std::lock_guard<std::mutex> lock(mu_);
  FailWith("workload", message);
}

void Workload::StopWithError(std::string message) {
  std::lock_guard<std::mutex> lock(mu_);
  if (fatal_.empty()) fatal_ = std::move(message);
  stop_.Stop();
}

void Workload::Writer(std::vector<WorkloadTenant*> mine,
                      double ops_per_second) {
  WriteOptions write_options;
  write_options.sync = args_.sync;
  const auto interval = std::chrono::nanoseconds(
      ops_per_second > 0 ? static_cast<int64_t>(1e9 / ops_per_second) : 0);
  Clock::time_point next = Clock::now();
  size_t turn = 0;
  while (!stop_.stopped()) {
    if (interval.count() > 0) {
      if (stop_.WaitUntil(next)) break;
      // Catch up after a short stall, but never burst for more than a second.
      next = std::max(next + interval, Clock::now() - std::chrono::seconds(1));
    }
    WorkloadTenant& t = *mine[turn];
    const uint64_t n = t.last_acked + 1;
    if (n > kWorkloadMaxN) {
      StopWithError("tenant '" + t.id + "' has reached write " +
                    std::to_string(kWorkloadMaxN) + ", the last one");
      break;
    }
    Status s = t.handle->Put(write_options, RecordKey(n),
                             WorkloadValue(t.id, n, args_.value_size));
    const auto what = [&] {
      return "tenant '" + t.id + "' write " + std::to_string(n) + ": ";
    };
    if (s.ok()) {
      s = ack_log_.Append(t.id, n);
      if (!s.ok()) {
        // The record is stored but not logged: verify reports it as extra.
        StopWithError(s.ToString());
        break;
      }
      t.last_acked = n;
      ++acked_;
      turn = (turn + 1) % mine.size();
      continue;
    }
    if (s.IsFenced() && cluster_->Describe().role == "primary" &&
        s.message().find("switching over") != std::string::npos) {
      // A planned switchover is under way: this process keeps the primary
      // open so that it can complete, and stops once it has.
      if (!switch_reported_.exchange(true)) {
        Report(what() + s.ToString() + "; waiting for it to complete");
      }
      if (stop_.WaitUntil(Clock::now() + kRetryDelay)) break;
      continue;
    }
    if (s.IsReadOnly() || s.IsFenced()) {
      StopWithError(what() + s.ToString() + "; stopped");
      break;
    }
    // Retry the same n, so that each tenant's writes stay contiguous. The
    // other tenants of this thread wait meanwhile.
    ++failures_;
    Report(what() + s.ToString());
    if (stop_.WaitUntil(Clock::now() + kRetryDelay)) break;
  }
}

void Workload::Rotator() {
  const auto interval = std::chrono::milliseconds(args_.rotate_every_ms);
  uint64_t count = 0;
  while (!stop_.WaitUntil(Clock::now() + interval)) {
    WorkloadTenant& t = tenants_[count % tenants_.size()];
    ++count;
    const bool rekey = args_.rekey_every > 0 && count % args_.rekey_every == 0;
    const std::string what = std::string(rekey ? "rekey" : "rotation") +
                             " of tenant '" + t.id + "'";
    {
      // The lines let a test that kills this process tell whether the kill
      // landed inside a rotation.
      std::lock_guard<std::mutex> lock(mu_);
      std::fprintf(stderr, "workload: %s: started\n", what.c_str());
    }
    KeyRotationReport report;
    Status s = cluster_->RotateTenantKey(t.id, rekey, &report);
    if (!s.ok()) {
      ++failures_;
      Report(what + ": " + s.ToString());
      continue;
    }
    ++rotations_;
    std::lock_guard<std::mutex> lock(mu_);
    std::fprintf(stderr, "workload: %s: done, version %u\n", what.c_str(),
                 report.new_version);
  }
}

void Workload::AwaitStop(Clock::time_point start) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  const bool timed = args_.duration > 0;
  const Clock::time_point deadline =
      start + std::chrono::seconds(args_.duration);
  const bool progress = !timed || args_.duration > 5;
  Clock::time_point next_progress = start + kProgressInterval;
  uint64_t acked_at_last_progress = 0;
  for (;;) {
    if (stop_.stopped()) {  // a writer hit a fatal error
      stopped_by_ = "error";
      return;
    }
    const Clock::time_point now = Clock::now();
    if (timed && now >= deadline) return;
    if (progress && now >= next_progress) {
      const uint64_t acked = acked_;
      char line[160];
      std::snprintf(
          line, sizeof(line),
          "workload: %llds: %llu writes acked (%.1f ops/s in the last %llds), "
          "%llu failures\n",
          static_cast<long long>(
              std::chrono::duration_cast<std::chrono::seconds>(now - start)
                  .count()),
          static_cast<unsigned long long>(acked),
          static_cast<double>(acked - acked_at_last_progress) /
              static_cast<double>(kProgressInterval.count()),
          static_cast<long long>(kProgressInterval.count()),
          static_cast<unsigned long long>(failures_.load()));
      {
        std::lock_guard<std::mutex> lock(mu_);
        std::fputs(line, stderr);
      }
      acked_at_last_progress = acked;
      next_progress += kProgressInterval;
    }
    auto wait = std::chrono::nanoseconds(std::chrono::milliseconds(100));
    if (timed) wait = std::min(wait, deadline - now);
    timespec timeout{};
    timeout.tv_sec = 0;
    timeout.tv_nsec = static_cast<long>(wait.count());
    const int signal = sigtimedwait(&signals, nullptr, &timeout);
    if (signal == SIGINT || signal == SIGTERM) {
      stopped_by_ = signal == SIGINT ? "SIGINT" : "SIGTERM";
      return;
    }
  }
}

int Workload::Run() {
  Status s = Setup();
  if (!s.ok()) return Fail("workload", s);

  // Tenant i goes to thread i % threads; each thread takes its share of
  // the rate.
  const size_t threads = std::min<size_t>(tenants_.size(), kMaxWriterThreads);
  std::vector<std::vector<WorkloadTenant*>> shares(threads);
  for (size_t i = 0; i < tenants_.size(); ++i) {
    shares[i % threads].push_back(&tenants_[i]);
  }
  const Clock::time_point start = Clock::now();
  std::vector<std::thread> writers;
  for (std::vector<WorkloadTenant*>& share : shares) {
    const double rate = static_cast<double>(args_.rate) *
                        static_cast<double>(share.size()) /
                        static_cast<double>(tenants_.size());
    writers.emplace_back(&Workload::Writer, this, std::move(share), rate);
  }
  if (args_.rotate_every_ms > 0) writers.emplace_back(&Workload::Rotator, this);
  AwaitStop(start);
  stop_.Stop();
  for (std::thread& writer : writers) writer.join();
  const double seconds =
      std::chrono::duration<double>(Clock::now() - start).count();
  return PrintSummary(seconds);
}

int Workload::PrintSummary(double seconds) {
  const uint64_t acked = acked_;
  const double ops = seconds > 0 ? static_cast<double>(acked) / seconds : 0;
  char seconds_text[32];
  char ops_text[32];
  std::snprintf(seconds_text, sizeof(seconds_text), "%.3f", seconds);
  std::snprintf(ops_text, sizeof(ops_text), "%.1f", ops);
  if (args_.json) {
    std::string tenants;
    for (const WorkloadTenant& t : tenants_) {
      if (!tenants.empty()) tenants += ",";
      tenants += JsonObject()
                     .AddString("tenant", t.id)
                     .AddNumber("first_n", t.resumed_after + 1)
                     .AddNumber("last_n", t.last_acked)
                     .AddNumber("acked", t.last_acked - t.resumed_after)
                     .str();
    }
    std::printf("%s\n", JsonObject()
                            .AddNumber("acked", acked)
                            .AddNumber("failures", failures_.load())
                            .AddNumber("rotations", rotations_.load())
                            .AddRaw("seconds", seconds_text)
                            .AddRaw("ops_per_second", ops_text)
                            .AddString("stopped_by", stopped_by_)
                            .AddString("ack_log", args_.ack_log)
                            .AddRaw("tenants", "[" + tenants + "]")
                            .str()
                            .c_str());
  } else {
    PrintField("writes acked", std::to_string(acked));
    PrintField("failures", std::to_string(failures_.load()));
    PrintField("key rotations", std::to_string(rotations_.load()));
    PrintField("seconds", seconds_text);
    PrintField("ops/s", ops_text);
    PrintField("stopped by", stopped_by_);
    for (const WorkloadTenant& t : tenants_) {
      PrintField("tenant " + t.id,
                 "last n " + std::to_string(t.last_acked) + " (" +
                     std::to_string(t.last_acked - t.resumed_after) +
                     " this run)");
    }
  }
  std::fflush(stdout);
  std::lock_guard<std::mutex> lock(mu_);
  return fatal_.empty() ? kExitOk : FailWith("workload", fatal_);
}

// Accepts a --tenant-prefix P that makes valid tenant ids P-000..P-999.
CLI::Validator TenantPrefixArg() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        Status s = ValidateId("tenant", text + "-000");
        return s.ok() ? std::string() : s.message();
      },
      "");
}

void RegisterWorkload(CLI::App* app, Runner* run) {
  auto args = std::make_shared<WorkloadArgs>();
  CLI::App* cmd = app->add_subcommand(
      "workload",
      "Writes a verifiable test workload and logs every acknowledged write. "
      "For drills and tests: creates tenants P-000, P-001, ... (--tenants of "
      "them, P = --tenant-prefix) unless they exist, then writes to them "
      "round-robin at --rate writes per second in total, from one thread per "
      "tenant (at most 4), for --duration seconds or until SIGINT or SIGTERM. "
      "Write n (1, 2, 3, ... per tenant, in order) puts key 'wl/' + n as 12 "
      "digits with a value computed from the tenant, n and --value-size. "
      "Right after the cluster acknowledges a write, the line '<tenant> <n>' "
      "is appended to --ack-log, so the log lists only acknowledged writes; "
      "a log that already lists a tenant's writes is continued after its "
      "highest n. A failed write is reported on stderr and retried after 100 "
      "ms; ReadOnly or Fenced (the cluster takes no writes) stops the run with "
      "status 1. At the end it prints the writes acknowledged, the failures, "
      "the rate and each tenant's last n. Check the cluster against the log "
      "with 'coffer verify'.");
  AddClusterArgs(cmd, &args->cluster);
  cmd->add_option("--tenants", args->tenants,
                  "Number of tenants to write to (1-1000)")
      ->transform(CountArg())
      ->check(CLI::Range(uint64_t{1}, kMaxTenants))
      ->type_name("N")
      ->required();
  cmd->add_option("--rate", args->rate,
                  "Writes per second over all tenants; 0 = as fast as possible")
      ->transform(CountArg())
      ->type_name("OPS")
      ->required();
  cmd->add_option("--duration", args->duration,
                  "Seconds to run (at most 1000000000); 0 = until SIGINT or "
                  "SIGTERM")
      ->transform(CountArg())
      ->check(CLI::Range(uint64_t{0}, uint64_t{1'000'000'000}))
      ->type_name("S")
      ->required();
  cmd->add_option("--value-size", args->value_size,
                  "Bytes per value (SIZE, at most 8MiB less 1KiB: one write "
                  "holds at most 8MiB); a value is never "
                  "shorter than its header '<tenant>|<n>|<size>|'")
      ->transform(SizeArg())
      ->check(CLI::Range(uint64_t{1}, kWorkloadMaxValueSize))
      ->type_name("SIZE")
      ->capture_default_str();
  cmd->add_option("--tenant-prefix", args->tenant_prefix,
                  "Tenant ids are P-000, P-001, ...")
      ->check(TenantPrefixArg())
      ->type_name("P")
      ->capture_default_str();
  CLI::Option* replicate =
      cmd->add_option("--replicate-to", args->replicate_to,
                      "Ship the write-ahead logs to the replica serving at "
                      "HOST:PORT (needs --tls-cert, --tls-key and --tls-ca)")
          ->type_name("HOST:PORT");
  AddTlsArgs(cmd, &args->tls, /*required=*/false);
  replicate->needs(cmd->get_option("--tls-cert"));
  cmd->get_option("--tls-cert")->needs(replicate);
  cmd->add_option("--rpo-bound", args->rpo_bound_ms,
                  "With --replicate-to: bounded RPO in ms for every tenant "
                  "without its own (tenant create --rpo-bound); a write then "
                  "fails with LagExceeded (reported, retried) while the "
                  "tenant's oldest unacknowledged write is older")
      ->transform(CountArg())
      ->type_name("MS")
      ->needs(replicate);
  cmd->add_option("--rpo-wait", args->rpo_wait_ms,
                  "With --rpo-bound: how long a write first waits for the "
                  "replica before failing (ms)")
      ->transform(CountArg())
      ->type_name("MS")
      ->needs(replicate);
  cmd->add_option("--ack-log", args->ack_log,
                  "File the acknowledged writes are appended to (created if "
                  "missing)")
      ->type_name("FILE")
      ->required();
  CLI::Option* rotate =
      cmd->add_option(
             "--rotate-every", args->rotate_every_ms,
             "Rotate the data key of one tenant after another (as 'coffer key "
             "rotate' does, while the writes go on) every MS milliseconds; "
             "each rotation prints 'workload: rotation of tenant 'T': "
             "started' and, once complete, '... done, version V' on stderr")
          ->transform(CountArg())
          ->check(CLI::Range(uint64_t{1}, uint64_t{86'400'000}))
          ->type_name("MS");
  cmd->add_option("--rekey-every", args->rekey_every,
                  "With --rotate-every: every K-th rotation is a rekey (also "
                  "rewrites every file of the tenant, as 'coffer key rotate "
                  "--rekey'), reported as 'rekey of tenant ...'")
      ->transform(CountArg())
      ->check(CLI::Range(uint64_t{1}, uint64_t{1'000'000}))
      ->type_name("K")
      ->needs(rotate);
  cmd->add_flag("--sync", args->sync,
                "fsync the write-ahead log before each acknowledgement "
                "(survives power loss; a process kill loses nothing without)");
  cmd->add_flag("--json", args->json,
                "Print the summary as one JSON object: {\"acked\", "
                "\"failures\", \"seconds\", \"ops_per_second\", "
                "\"rotations\", \"stopped_by\", \"ack_log\", \"tenants\": "
                "[{\"tenant\", "
                "\"first_n\", \"last_n\", \"acked\"}...]}");
  OnRun(cmd, run, [args] {
    // Before any thread exists, so that every thread inherits the mask: the
    // signals then wait for sigtimedwait in Workload::AwaitStop instead of
    // killing the process mid-write. Left blocked until exit.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    Workload workload(*args);
    return workload.Run();
  });
}

// ---- verify ----------------------------------------------------------------

// What verify found for one tenant of the ack log.
struct TenantCheck {
  std::string tenant;
  bool exists = true;
  uint64_t acked = 0;    // highest n in the ack log
  uint64_t present = 0;  // records found
  uint64_t missing = 0;  // n <= acked without a record
  uint64_t extra = 0;    // records with n > acked
  uint64_t wrong_values = 0;
  uint64_t holes = 0;  // gaps followed by a record
  uint64_t first_hole = 0;
  uint64_t problem_count = 0;
  std::vector<std::string> problems;  // the first kMaxProblemsShown

  bool ok() const { return wrong_values == 0 && holes == 0; }
  void AddProblem(std::string text) {
    ++problem_count;
    if (problems.size() < kMaxProblemsShown) {
      problems.push_back(std::move(text));
    }
  }
};

Status CheckTenant(Cluster* cluster, TenantCheck* check) {
  std::unique_ptr<Tenant> tenant;
  Status s = cluster->GetTenant(check->tenant, &tenant);
  if (s.IsNotFound()) {
    check->exists = false;
    check->missing = check->acked;
    return Status::OK();
  }
  if (!s.ok()) return s;
  ReadOptions options;
  options.prefix = std::string(kWorkloadKeyPrefix);
  options.fill_cache = false;
  std::unique_ptr<Iterator> it = tenant->NewIterator(options);
  const std::string name = "tenant " + check->tenant;
  uint64_t previous = 0;  // n of the previous record
  uint64_t present_acked = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    uint64_t n = 0;
    if (!ParseRecordKey(it->key(), &n)) {
      ++check->wrong_values;
      check->AddProblem(name + " key '" + EscapeForLine(it->key()) +
                        "': not a workload key");
      continue;
    }
    ++check->present;
    if (n <= check->acked) ++present_acked;
    if (n != previous + 1) {
      if (check->holes++ == 0) check->first_hole = previous + 1;
      const std::string gap = n - 1 == previous + 1
                                  ? " record " + std::to_string(n - 1)
                                  : " records " + std::to_string(previous + 1) +
                                        ".." + std::to_string(n - 1);
      check->AddProblem(name + gap + ": hole (record " + std::to_string(n) +
                        " is present)");
    }
    previous = n;
    if (!IsWorkloadValue(check->tenant, n, it->value())) {
      ++check->wrong_values;
      check->AddProblem(name + " record " + std::to_string(n) +
                        ": wrong value");
    }
  }
  s = it->status();
  if (!s.ok()) return s;
  check->missing = check->acked - present_acked;
  check->extra = check->present - present_acked;
  return Status::OK();
}

std::string CheckLine(const TenantCheck& c) {
  std::string verdict;
  if (!c.exists) {
    verdict = "tenant missing";
  } else if (c.ok()) {
    verdict = "ok";
  } else {
    if (c.wrong_values > 0) {
      verdict = std::to_string(c.wrong_values) + " wrong value(s)";
    }
    if (c.holes > 0) {
      if (!verdict.empty()) verdict += ", ";
      verdict += std::to_string(c.holes) + " hole(s) from record " +
                 std::to_string(c.first_hole);
    }
  }
  return "tenant " + c.tenant + ": acked " + std::to_string(c.acked) +
         ", present " + std::to_string(c.present) + ", missing " +
         std::to_string(c.missing) + ", extra " + std::to_string(c.extra) +
         ", " + verdict;
}

std::string CheckJson(const TenantCheck& c) {
  std::string problems;
  for (const std::string& p : c.problems) {
    if (!problems.empty()) problems += ",";
    problems += JsonString(p);
  }
  return JsonObject()
      .AddString("tenant", c.tenant)
      .AddBool("exists", c.exists)
      .AddNumber("acked", c.acked)
      .AddNumber("present", c.present)
      .AddNumber("missing", c.missing)
      .AddNumber("extra", c.extra)
      .AddNumber("wrong_values", c.wrong_values)
      .AddNumber("holes", c.holes)
      .AddNumber("first_hole", c.first_hole)
      .AddNumber("problems_total", c.problem_count)
      .AddRaw("problems", "[" + problems + "]")
      .AddBool("ok", c.ok())
      .str();
}

struct VerifyArgs {
  ClusterArgs cluster;
  std::string ack_log;
  uint64_t max_missing = 0;
  bool expect_complete = false;
  bool json = false;
};

// Prints verify's report: the problems found and one line per tenant, then
// the total; or, with --json, one object.
void PrintChecks(const VerifyArgs& args, const AckLogContents& log,
                 const std::vector<TenantCheck>& checks,
                 const TenantCheck& total, bool ok) {
  if (args.json) {
    std::string tenants;
    for (const TenantCheck& c : checks) {
      if (!tenants.empty()) tenants += ",";
      tenants += CheckJson(c);
    }
    std::printf("%s\n", JsonObject()
                            .AddString("ack_log", args.ack_log)
                            .AddNumber("lines", log.lines)
                            .AddBool("torn_last_line", log.torn_tail)
                            .AddRaw("tenants", "[" + tenants + "]")
                            .AddNumber("acked", total.acked)
                            .AddNumber("present", total.present)
                            .AddNumber("missing", total.missing)
                            .AddNumber("extra", total.extra)
                            .AddNumber("wrong_values", total.wrong_values)
                            .AddNumber("holes", total.holes)
                            .AddBool("ok", ok)
                            .str()
                            .c_str());
  } else {
    std::printf("ack log %s: %llu line(s)%s\n", args.ack_log.c_str(),
                static_cast<unsigned long long>(log.lines),
                log.torn_tail ? ", and a torn last line (ignored)" : "");
    for (const TenantCheck& c : checks) {
      for (const std::string& p : c.problems) std::printf("%s\n", p.c_str());
      if (c.problem_count > c.problems.size()) {
        std::printf("tenant %s: %llu more problem(s) not shown\n",
                    c.tenant.c_str(),
                    static_cast<unsigned long long>(c.problem_count -
                                                    c.problems.size()));
      }
      std::printf("%s\n", CheckLine(c).c_str());
    }
    std::printf(
        "total: %zu tenant(s), acked %llu, present %llu, missing %llu, "
        "extra %llu, %llu wrong value(s), %llu hole(s)\n",
        checks.size(), static_cast<unsigned long long>(total.acked),
        static_cast<unsigned long long>(total.present),
        static_cast<unsigned long long>(total.missing),
        static_cast<unsigned long long>(total.extra),
        static_cast<unsigned long long>(total.wrong_values),
        static_cast<unsigned long long>(total.holes));
  }
}

void RegisterVerify(CLI::App* app, Runner* run) {
  auto args = std::make_shared<VerifyArgs>();
  CLI::App* cmd = app->add_subcommand(
      "verify",
      "Checks a cluster against the ack log of 'coffer workload'. For every "
      "tenant in --ack-log it reads the tenant's records and checks that they "
      "are exactly writes 1..k, each with its expected value. It prints one "
      "line per tenant: the writes acked (the highest n in the log), present, "
      "missing (acked but absent) and extra (present but never logged, as "
      "when a process is killed between a write and its log line), and a "
      "total. A final log line without a newline is ignored. Exits with "
      "status 1 on a wrong value, a hole, a malformed log line, or more "
      "missing writes in total than --max-missing; missing writes alone are "
      "allowed unless limited. It only reads, so it works on a replica; "
      "while another process has the cluster open it fails with Busy.");
  AddClusterArgs(cmd, &args->cluster);
  cmd->add_option("--ack-log", args->ack_log, "Ack log of 'coffer workload'")
      ->type_name("FILE")
      ->required();
  CLI::Option* max_missing =
      cmd->add_option("--max-missing", args->max_missing,
                      "Fail if more than N acked writes are missing in total; "
                      "default: no limit")
          ->transform(CountArg())
          ->type_name("N");
  cmd->add_flag("--expect-complete", args->expect_complete,
                "Same as --max-missing 0")
      ->excludes(max_missing);
  cmd->add_flag(
      "--json", args->json,
      "Print one JSON object: {\"ack_log\", \"lines\", "
      "\"torn_last_line\", \"tenants\": "
      "[{\"tenant\", \"exists\", \"acked\", \"present\", "
      "\"missing\", \"extra\", \"wrong_values\", \"holes\", "
      "\"first_hole\", \"problems_total\", \"problems\", \"ok\"}...], "
      "\"acked\", \"present\", \"missing\", \"extra\", "
      "\"wrong_values\", \"holes\", \"ok\"}");
  OnRun(cmd, run, [args, max_missing] {
    AckLogContents log;
    Status s = ReadAckLog(args->ack_log, &log);
    if (!s.ok()) return Fail("verify", s);
    std::unique_ptr<Cluster> cluster;
    s = OpenCluster(args->cluster, &cluster);
    if (!s.ok()) return Fail("verify", s);

    std::vector<TenantCheck> checks;
    TenantCheck total;
    for (const auto& [tenant, last_n] : log.last_n) {
      TenantCheck& c = checks.emplace_back();
      c.tenant = tenant;
      c.acked = last_n;
      s = CheckTenant(cluster.get(), &c);
      if (!s.ok()) {
        return FailWith("verify", "tenant " + tenant + ": " + s.ToString());
      }
      total.acked += c.acked;
      total.present += c.present;
      total.missing += c.missing;
      total.extra += c.extra;
      total.wrong_values += c.wrong_values;
      total.holes += c.holes;
    }
    const bool limited = args->expect_complete || max_missing->count() > 0;
    const uint64_t allowed = args->expect_complete ? 0 : args->max_missing;
    const bool too_many_missing = limited && total.missing > allowed;
    const bool ok = total.ok() && !too_many_missing;

    PrintChecks(*args, log, checks, total, ok);
    std::fflush(stdout);
    if (!total.ok()) {
      return FailWith("verify", std::to_string(total.wrong_values) +
                                    " wrong value(s) and " +
                                    std::to_string(total.holes) +
                                    " hole(s) in the tenants' records");
    }
    if (too_many_missing) {
      return FailWith("verify",
                      std::to_string(total.missing) +
                          " acknowledged write(s) missing, more than the " +
                          std::to_string(allowed) + " allowed");
    }
    return kExitOk;
  });
}

}  // namespace

void RegisterWorkloadCommands(CLI::App* app, Runner* run) {
  RegisterWorkload(app, run);
  RegisterVerify(app, run);
}

}  // namespace coffer::cli
