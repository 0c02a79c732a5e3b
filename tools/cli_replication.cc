// Copyright (c) Coffer authors.
//
// Replication subcommands: `replica serve` (the passive replica daemon),
// `replication status` and `metrics` (Prometheus text). Status and metrics
// read DIR/REPLICATION, which the running primary or replica rewrites every
// second, so they work while that process holds the directory.

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "coffer/cluster.h"
#include "coffer/replication.h"
#include "replication/batch_inspect.h"
#include "replication/rollback.h"
#include "rocksdb/write_batch.h"
#include "tools/cli_common.h"
#include "tools/commands.h"

namespace coffer::cli {
namespace {

std::string Seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", s);
  return buf;
}

void LogLine(const std::string& line) {
  std::fprintf(stderr, "coffer replica: %s %s\n",
               FormatUnixMicrosExact(NowUnixMicros()).c_str(), line.c_str());
  std::fflush(stderr);
}

// --data (required) and a master key that is needed only in one case
// (`when`): a command that first tries a running process's admin channel.
void AddOptionalClusterArgs(CLI::App* cmd, ClusterArgs* args,
                            const std::string& when) {
  cmd->add_option("--data", args->data, "Data directory")
      ->envname("COFFER_DATA")
      ->required();
  cmd->add_option("--key-file", args->key_file,
                  "Master key file (" + when + ")")
      ->envname("COFFER_KEY_FILE");
  cmd->add_option("--key-dir", args->key_dir,
                  "Directory of master keys instead of --key-file")
      ->envname("COFFER_KEY_DIR");
  cmd->add_option("--default-key-id", args->default_key_id,
                  "With --key-dir: id of the cluster's master key")
      ->default_str("master");
}

void RegisterServe(CLI::App* replica, Runner* run) {
  struct Args {
    ClusterArgs cluster;
    ReplicaServerOptions options;
    std::string port_file;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = replica->add_subcommand(
      "serve",
      "Runs the passive replica daemon. It listens on --listen for its "
      "primary (TLS 1.3, both sides present certificates signed by --tls-ca; "
      "a certificate's common name is its cluster id), applies each shipped "
      "batch atomically to the tenant's own encrypted database with its "
      "position, and follows the primary's tenant creates, drops "
      "(crypto-shred) and key changes. The replica needs the primary's "
      "master keys (--key-file or --key-dir) because data keys arrive "
      "wrapped. Refused peers are logged on stderr and audited. Runs until "
      "SIGTERM or SIGINT; everything acknowledged is durable.");
  AddClusterArgs(cmd, &args->cluster);
  cmd->add_option("--listen", args->options.listen_address,
                  "HOST:PORT to listen on (port 0 picks a free one)")
      ->type_name("HOST:PORT")
      ->required();
  AddTlsArgs(cmd, &args->options.tls, /*required=*/true);
  cmd->add_option("--primary-id", args->options.primary_cluster_id,
                  "Accept only this primary cluster (default: the first one "
                  "accepted, recorded for good); a replica already paired "
                  "with another refuses to start")
      ->type_name("ID");
  cmd->add_option("--port-file", args->port_file,
                  "Write the port listened on to this file once serving "
                  "(failing to write it stops the daemon)")
      ->type_name("FILE");
  OnRun(cmd, run, [args] {
    // Signals are taken by sigwait below, not by whichever thread runs.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    std::unique_ptr<Cluster> cluster;
    Status s = OpenCluster(args->cluster, &cluster);
    args->options.log = LogLine;
    // After a promotion through the admin channel the daemon exits, so the
    // application can open the new primary.
    args->options.on_promoted = [] { ::kill(::getpid(), SIGTERM); };
    std::unique_ptr<ReplicaServer> server;
    if (s.ok()) s = ReplicaServer::Start(cluster.get(), args->options, &server);
    if (!s.ok()) return Fail("replica serve", s);
    const ClusterInfo info = cluster->Describe();
    if (!args->port_file.empty()) {
      // Written whole, then renamed: a reader never sees half a number. A
      // supervisor waits for this file, so failing to write it is fatal.
      const std::string tmp = args->port_file + ".tmp";
      bool written = false;
      {
        std::ofstream out(tmp);
        out << server->port() << "\n";
        out.close();
        written = static_cast<bool>(out);
      }
      const int err = errno;
      if (!written || std::rename(tmp.c_str(), args->port_file.c_str()) != 0) {
        const std::string why = std::strerror(written ? errno : err);
        std::remove(tmp.c_str());
        return Fail("replica serve",
                    Status::IOError("cannot write the port file " +
                                    args->port_file + ": " + why));
      }
    }
    if (info.role == "replica") {
      LogLine("serving replica '" + info.cluster_id + "' (geography " +
              info.geography + ", epoch " + std::to_string(info.epoch) +
              ") on port " + std::to_string(server->port()) + "; primary: " +
              (info.primary_cluster_id.empty() ? std::string("not yet paired")
                                               : info.primary_cluster_id));
    } else {
      LogLine("cluster '" + info.cluster_id + "' is a primary (epoch " +
              std::to_string(info.epoch) + "): serving on port " +
              std::to_string(server->port()) +
              " only to fence stale primaries that connect");
    }
    int sig = 0;
    sigwait(&stop, &sig);
    if (cluster->Describe().role != info.role) {
      LogLine("promoted to primary at epoch " +
              std::to_string(cluster->Describe().epoch) +
              "; exiting so the application can open it");
    } else {
      LogLine(std::string("stopping on ") +
              (sig == SIGINT ? "SIGINT" : "SIGTERM"));
    }
    server->Stop();
    server.reset();
    cluster.reset();
    return kExitOk;
  });
}

std::string TenantJson(const TenantReplicationStatus& t) {
  return JsonObject()
      .AddString("tenant", t.tenant)
      .AddNumber("primary_seq", t.primary_seq)
      .AddNumber("applied_seq", t.applied_seq)
      .AddNumber("lag_seqs", t.lag_seqs)
      .AddRaw("lag_seconds", Seconds(t.lag_seconds))
      .AddNumber("primary_commit_unix_micros", t.primary_commit_unix_micros)
      .AddNumber("applied_commit_unix_micros", t.applied_commit_unix_micros)
      .AddRaw("retention_headroom_seconds",
              std::to_string(t.retention_headroom_seconds))
      .AddString("state", t.state)
      .AddNumber("reseeds", t.reseeds)
      .str();
}

bool CaughtUp(const ReplicationStatus& st) {
  if (st.connection != "connected") return false;
  for (const TenantReplicationStatus& t : st.tenants) {
    if (t.state != "caught-up") return false;
  }
  return true;
}

void PrintStatus(const ReplicationStatus& st, bool json) {
  const double age =
      st.as_of_unix_micros != 0 && NowUnixMicros() > st.as_of_unix_micros
          ? (NowUnixMicros() - st.as_of_unix_micros) / 1e6
          : 0;
  if (json) {
    std::string tenants = "[";
    for (size_t i = 0; i < st.tenants.size(); ++i) {
      tenants += (i ? "," : "") + TenantJson(st.tenants[i]);
    }
    tenants += "]";
    std::printf(
        "%s\n",
        JsonObject()
            .AddString("role", st.role)
            .AddString("cluster_id", st.cluster_id)
            .AddNumber("epoch", st.epoch)
            .AddString("connection", st.connection)
            .AddString("peer_cluster_id", st.peer_cluster_id)
            .AddString("peer_address", st.peer_address)
            .AddString("last_error", st.last_error)
            .AddNumber("wal_retention_seconds", st.wal_retention_seconds)
            .AddNumber("batches", st.batches)
            .AddNumber("batches_from_log", st.batches_from_log)
            .AddNumber("bytes", st.bytes)
            .AddNumber("reseeds", st.reseeds)
            .AddNumber("connects", st.connects)
            .AddNumber("as_of_unix_micros", st.as_of_unix_micros)
            .AddString("fenced_by", st.fenced_by)
            .AddNumber("fenced_by_epoch", st.fenced_by_epoch)
            .AddString("switchover_to", st.switchover_to)
            .AddBool("writes_stopped",
                     !st.fenced_by.empty() || !st.switchover_to.empty())
            .AddString("promoted_from", st.promoted_from)
            .AddNumber("promoted_unix_micros", st.promoted_unix_micros)
            .AddRaw("status_age_seconds", Seconds(age))
            .AddBool("caught_up", CaughtUp(st))
            .AddRaw("tenants", tenants)
            .str()
            .c_str());
    return;
  }
  PrintField("cluster", st.cluster_id + " (" + st.role + ", epoch " +
                            std::to_string(st.epoch) + ")");
  if (!st.fenced_by.empty()) {
    PrintField("FENCED", "'" + st.fenced_by + "' is the primary at epoch " +
                             std::to_string(st.fenced_by_epoch) +
                             "; this cluster takes no writes");
  }
  if (!st.switchover_to.empty()) {
    PrintField("SWITCHOVER", "to '" + st.switchover_to +
                                 "' under way: this cluster takes no writes "
                                 "until it completes (retry it)");
  }
  if (!st.promoted_from.empty() || st.promoted_unix_micros != 0) {
    PrintField("promoted", "from '" + st.promoted_from + "' at " +
                               FormatUnixMicrosExact(st.promoted_unix_micros) +
                               " (receipt: coffer replication receipt)");
  }
  std::string peer = "peer ";
  peer += st.peer_cluster_id.empty() ? "(not yet known)" : st.peer_cluster_id;
  if (!st.peer_address.empty()) {
    peer += st.role == "primary" ? " at " : ", listening on ";
    peer += st.peer_address;
  }
  PrintField("connection", st.connection + " — " + peer);
  PrintField("as of", FormatUnixMicrosExact(st.as_of_unix_micros) + " (" +
                          Seconds(age) + " s ago)");
    if (st.wal_retention_seconds != 0) {
    PrintField("wal retention", std::to_string(st.wal_retention_seconds) + " s");
  }
  PrintField(st.role == "primary" ? "shipped" : "applied",
             std::to_string(st.batches) + " batches" +
                 (st.role == "primary"
                      ? " (" + std::to_string(st.batches_from_log) +
                            " read back from the log)"
                      : std::string()) +
                 ", " + FormatBytes(st.bytes) + ", " +
                 std::to_string(st.reseeds) + " reseeds, " +
                 std::to_string(st.connects) + " connects");
  if (!st.last_error.empty()) PrintField("last error", st.last_error);
  PrintField("caught up", CaughtUp(st) ? "yes" : "no");
  std::printf("\n%-24s %12s %12s %9s %9s %10s  %s\n", "TENANT", "PRIMARY-SEQ",
              "APPLIED-SEQ", "LAG-SEQS", "LAG-S", "HEADROOM-S", "STATE");
  for (const TenantReplicationStatus& t : st.tenants) {
    std::printf("%-24s %12llu %12llu %9llu %9s %10s  %s\n", t.tenant.c_str(),
                static_cast<unsigned long long>(t.primary_seq),
                static_cast<unsigned long long>(t.applied_seq),
                static_cast<unsigned long long>(t.lag_seqs),
                Seconds(t.lag_seconds).c_str(),
                st.role == "primary"
                    ? std::to_string(t.retention_headroom_seconds).c_str()
                    : "-",
                t.state.c_str());
  }
}

void RegisterStatus(CLI::App* replication, Runner* run) {
  struct Args {
    std::string data;
    bool json = false;
    double wait = -1;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = replication->add_subcommand(
      "status",
      "Shows where replication stands, on a primary or a replica: the "
      "connection, and per tenant the primary's latest sequence, the "
      "replica's applied sequence, the lag in sequences and in seconds (0 "
      "when caught up; computed from the commit time each batch carries), "
      "the write-ahead log retention headroom and the state. Reads the "
      "status the running process writes to DIR/REPLICATION every second "
      "(no key needed; 'stopped' when that process is gone).");
  cmd->add_option("--data", args->data, "Data directory")
      ->envname("COFFER_DATA")
      ->required();
  cmd->add_flag("--json", args->json, "Print one JSON object");
  cmd->add_option("--wait-caught-up", args->wait,
                  "Wait up to this many seconds until connected with every "
                  "tenant caught up; exit 1 if that does not happen")
      ->type_name("SECONDS")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            char* end = nullptr;
            const double v = std::strtod(text.c_str(), &end);
            if (text.empty() || *end != '\0' || !std::isfinite(v) || v < 0 ||
                v > 1e6) {
              return "'" + text + "' is not a number of seconds from 0 to "
                     "1000000";
            }
            return "";
          },
          ""));
  OnRun(cmd, run, [args] {
    ReplicationStatus st;
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(static_cast<int64_t>(
                              std::max(0.0, args->wait) * 1000));
    Status s;
    for (;;) {
      s = ReadReplicationStatusFile(args->data, &st);
      if (args->wait < 0 || (s.ok() && CaughtUp(st)) ||
          std::chrono::steady_clock::now() >= deadline) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    if (!s.ok()) return Fail("replication status", s);
    PrintStatus(st, args->json);
    if (args->wait >= 0 && !CaughtUp(st)) {
      return FailWith("replication status",
                      "not caught up after " + Seconds(args->wait) + " s");
    }
    return kExitOk;
  });
}

// Prometheus label value: backslash, quote and newline escaped.
std::string Label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

void RegisterMetrics(CLI::App* app, Runner* run) {
  auto data = std::make_shared<std::string>();
  CLI::App* cmd = app->add_subcommand(
      "metrics",
      "Prints replication metrics in the Prometheus text format (the same "
      "figures as 'coffer replication status'), for a node exporter's "
      "textfile collector or a scrape wrapper.");
  cmd->add_option("--data", *data, "Data directory")
      ->envname("COFFER_DATA")
      ->required();
  OnRun(cmd, run, [data] {
    ReplicationStatus st;
    Status s = ReadReplicationStatusFile(*data, &st);
    if (!s.ok()) return Fail("metrics", s);
    const std::string base = "cluster=\"" + Label(st.cluster_id) +
                             "\",role=\"" + Label(st.role) + "\"";
    std::string out;
    auto family = [&](const char* name, const char* type, const char* help) {
      out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name +
             " " + type + "\n";
    };
    auto sample = [&](const char* name, const std::string& labels,
                      const std::string& value) {
      out += std::string(name) + "{" + labels + "} " + value + "\n";
    };
    const double age = NowUnixMicros() > st.as_of_unix_micros
                           ? (NowUnixMicros() - st.as_of_unix_micros) / 1e6
                           : 0;
    family("coffer_replication_connected", "gauge",
           "1 while connected to the peer cluster.");
    sample("coffer_replication_connected", base,
           st.connection == "connected" ? "1" : "0");
    family("coffer_replication_epoch", "gauge", "Epoch of this cluster.");
    sample("coffer_replication_epoch", base, std::to_string(st.epoch));
    family("coffer_replication_fenced", "gauge",
           "1 when a higher epoch exists and this cluster takes no writes.");
    sample("coffer_replication_fenced", base,
           st.fenced_by.empty() ? "0" : "1");
    family("coffer_replication_writes_stopped", "gauge",
           "1 while this primary takes no writes (fenced, or a switchover "
           "under way).");
    sample("coffer_replication_writes_stopped", base,
           st.fenced_by.empty() && st.switchover_to.empty() ? "0" : "1");
    family("coffer_replication_status_age_seconds", "gauge",
           "Age of the status these figures come from.");
    sample("coffer_replication_status_age_seconds", base, Seconds(age));
    family("coffer_replication_batches_total", "counter",
           "Batches shipped (primary) or applied (replica).");
    sample("coffer_replication_batches_total", base,
           std::to_string(st.batches));
    if (st.role == "primary") {
      family("coffer_replication_batches_from_log_total", "counter",
             "Of the batches shipped, those read back from the write-ahead "
             "log (catching up) rather than from memory.");
      sample("coffer_replication_batches_from_log_total", base,
             std::to_string(st.batches_from_log));
    }
    family("coffer_replication_bytes_total", "counter",
           "Batch and reseed bytes shipped or applied.");
    sample("coffer_replication_bytes_total", base, std::to_string(st.bytes));
    family("coffer_replication_reseeds_total", "counter",
           "Tenants reseeded from a checkpoint.");
    sample("coffer_replication_reseeds_total", base,
           std::to_string(st.reseeds));
    family("coffer_replication_connects_total", "counter",
           "Connections established.");
    sample("coffer_replication_connects_total", base,
           std::to_string(st.connects));
    struct Gauge {
      const char* name;
      const char* help;
      std::string (*value)(const TenantReplicationStatus&);
    };
    const Gauge gauges[] = {
        {"coffer_replication_primary_seq", "Latest sequence on the primary.",
         [](const TenantReplicationStatus& t) {
           return std::to_string(t.primary_seq);
         }},
        {"coffer_replication_applied_seq",
         "Sequence the replica has durably applied.",
         [](const TenantReplicationStatus& t) {
           return std::to_string(t.applied_seq);
         }},
        {"coffer_replication_lag_seqs", "Sequences not yet applied.",
         [](const TenantReplicationStatus& t) {
           return std::to_string(t.lag_seqs);
         }},
        {"coffer_replication_lag_seconds",
         "Age of the oldest write the replica lacks (0 when caught up).",
         [](const TenantReplicationStatus& t) {
           return Seconds(t.lag_seconds);
         }},
        {"coffer_replication_retention_headroom_seconds",
         "Seconds until the oldest write the replica lacks leaves log "
         "retention (then it needs a reseed).",
         [](const TenantReplicationStatus& t) {
           return std::to_string(t.retention_headroom_seconds);
         }},
    };
    for (const Gauge& g : gauges) {
      if (st.role != "primary" &&
          std::string(g.name) ==
              "coffer_replication_retention_headroom_seconds") {
        continue;
      }
      family(g.name, "gauge", g.help);
      for (const TenantReplicationStatus& t : st.tenants) {
        sample(g.name, base + ",tenant=\"" + Label(t.tenant) + "\"",
               g.value(t));
      }
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    return kExitOk;
  });
}

void PrintReceipt(const PromotionReport& r, bool json) {
  if (json) {
    std::string tenants = "[";
    for (size_t i = 0; i < r.tenants.size(); ++i) {
      const TenantLossReceipt& t = r.tenants[i];
      tenants +=
          (i ? "," : "") +
          JsonObject()
              .AddString("tenant", t.tenant)
              .AddNumber("promoted_at_seq", t.promoted_at_seq)
              .AddNumber("promoted_at_commit_unix_micros",
                         t.promoted_at_commit_unix_micros)
              .AddNumber("primary_seq_heard", t.primary_seq_heard)
              .AddNumber("primary_commit_heard_unix_micros",
                         t.primary_commit_heard_unix_micros)
              .AddNumber("writes_beyond", t.writes_beyond)
              .AddRaw("seconds_beyond", Seconds(t.seconds_beyond))
              .str();
    }
    tenants += "]";
    std::printf("%s\n", JsonObject()
                            .AddString("cluster_id", r.cluster_id)
                            .AddString("former_primary", r.former_primary)
                            .AddNumber("old_epoch", r.old_epoch)
                            .AddNumber("new_epoch", r.new_epoch)
                            .AddNumber("unix_micros", r.unix_micros)
                            .AddNumber("micros", r.micros)
                            .AddString("via", r.via)
                            .AddNumber("writes_beyond", r.writes_beyond)
                            .AddRaw("tenants", tenants)
                            .str()
                            .c_str());
    return;
  }
  std::printf(
      "promoted cluster %s to primary: epoch %llu -> %llu, former primary "
      "'%s', at %s (%s, %.1f ms)\n",
      r.cluster_id.c_str(), static_cast<unsigned long long>(r.old_epoch),
      static_cast<unsigned long long>(r.new_epoch), r.former_primary.c_str(),
      FormatUnixMicrosExact(r.unix_micros).c_str(), r.via.c_str(),
      r.micros / 1000.0);
  std::printf("\nloss receipt: the promotion point of each tenant, and what "
              "the old primary had beyond it as far as this replica heard\n");
  std::printf("%-24s %12s  %-27s %12s %13s %14s\n", "TENANT", "PROMOTED-AT",
              "COMMIT-TIME", "HEARD-SEQ", "WRITES-BEYOND", "SECONDS-BEYOND");
  for (const TenantLossReceipt& t : r.tenants) {
    std::printf("%-24s %12llu  %-27s %12llu %13llu %14s\n", t.tenant.c_str(),
                static_cast<unsigned long long>(t.promoted_at_seq),
                t.promoted_at_commit_unix_micros == 0
                    ? "-"
                    : FormatUnixMicrosExact(t.promoted_at_commit_unix_micros)
                          .c_str(),
                static_cast<unsigned long long>(t.primary_seq_heard),
                static_cast<unsigned long long>(t.writes_beyond),
                Seconds(t.seconds_beyond).c_str());
  }
  std::printf("\ntotal: %llu writes known beyond the promotion point "
              "(writes the old primary took after its last batch reached "
              "this replica are not known here)\n",
              static_cast<unsigned long long>(r.writes_beyond));
}

void RegisterPromote(CLI::App* app, Runner* run) {
  struct Args {
    ClusterArgs cluster;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app->add_subcommand(
      "promote",
      "Forced promotion of a replica (its primary is unreachable): raises "
      "the epoch and makes it a primary that takes writes. If its daemon "
      "runs, the daemon is told over the local admin channel "
      "(DIR/admin.sock), stops applying, promotes and exits so the "
      "application can open the new primary; otherwise the directory is "
      "promoted directly (the master key is then needed). Prints the loss "
      "receipt: per tenant the promotion point (last applied sequence and "
      "its commit time) and how many writes, and how many seconds of writes, "
      "the old primary had beyond it as far as this replica heard. A stale "
      "primary that later reaches a server of this cluster is fenced.");
  AddOptionalClusterArgs(cmd, &args->cluster,
                         "only when no daemon runs");
  cmd->add_flag("--json", args->json, "Print the receipt as one JSON object");
  OnRun(cmd, run, [args] {
    PromotionReport report;
    Status s = PromoteReplica(args->cluster.data, ToolOpenOptions().principal,
                              &report);
    if (s.IsNotFound()) {
      if (args->cluster.key_file.empty() && args->cluster.key_dir.empty()) {
        return FailWith("promote",
                        "no replica daemon runs in " + args->cluster.data +
                            "; give --key-file (or --key-dir) to promote the "
                            "directory itself");
      }
      if (args->cluster.default_key_id.empty()) {
        args->cluster.default_key_id = "master";
      }
      std::unique_ptr<Cluster> cluster;
      s = OpenCluster(args->cluster, &cluster);
      if (s.ok()) s = cluster->Promote(&report);
    }
    if (!s.ok()) return Fail("promote", s);
    PrintReceipt(report, args->json);
    return kExitOk;
  });
}

void RegisterReceipt(CLI::App* replication, Runner* run) {
  struct Args {
    std::string data;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = replication->add_subcommand(
      "receipt",
      "Prints the loss receipt of the last promotion of the cluster "
      "(DIR/PROMOTION; no key needed).");
  cmd->add_option("--data", args->data, "Data directory")
      ->envname("COFFER_DATA")
      ->required();
  cmd->add_flag("--json", args->json, "Print one JSON object");
  OnRun(cmd, run, [args] {
    PromotionReport report;
    Status s = ReadPromotionReport(args->data, &report);
    if (!s.ok()) return Fail("replication receipt", s);
    PrintReceipt(report, args->json);
    return kExitOk;
  });
}

void RegisterSwitchover(CLI::App* app, Runner* run) {
  struct Args {
    ClusterArgs cluster;
    std::string replica;
    TlsFiles tls;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app->add_subcommand(
      "switchover",
      "Planned switchover with zero data loss, asked of the process running "
      "the primary in --data (an application with replication configured, "
      "such as 'coffer workload') over its local admin channel: the primary "
      "stops taking writes (Fenced), ships everything, waits until its "
      "replica has applied it all, the replica becomes the primary at the "
      "next epoch (its daemon exits so the new application can open it) and "
      "the old primary becomes its replica (serve it with 'coffer replica "
      "serve'; its tenants resume without a reseed). If anything fails "
      "midway the old primary stays write-stopped, never two writable "
      "primaries; running it again completes it. When no process runs the "
      "primary (for example after one died mid-switchover), give "
      "--replicate-to, the TLS files and the master key: the command opens "
      "the primary itself, connects to the replica and switches over.");
  AddOptionalClusterArgs(cmd, &args->cluster,
                         "only without a running primary process");
  cmd->add_option("--replicate-to", args->replica,
                  "The replica's HOST:PORT (only without a running primary "
                  "process)")
      ->type_name("HOST:PORT");
  AddTlsArgs(cmd, &args->tls, /*required=*/false);
  cmd->add_flag("--json", args->json, "Print one JSON object");
  OnRun(cmd, run, [args] {
    SwitchoverReport report;
    Status s = SwitchoverPrimary(args->cluster.data,
                                 ToolOpenOptions().principal, &report);
    if (s.IsNotFound() && !args->replica.empty()) {
      // No process holds the primary: open it here, shipping to the replica.
      if (args->cluster.default_key_id.empty()) {
        args->cluster.default_key_id = "master";
      }
      std::shared_ptr<KeyProvider> keys;
      s = OpenKeyProvider(args->cluster, &keys);
      OpenOptions options = ToolOpenOptions();
      options.replication.replica_address = args->replica;
      options.replication.tls = args->tls;
      std::unique_ptr<Cluster> cluster;
      if (s.ok()) {
        s = Cluster::Open(args->cluster.data, options, std::move(keys),
                          &cluster);
      }
      ReplicationStatus st;
      for (int i = 0; s.ok() && i < 300; ++i) {
        s = cluster->GetReplicationStatus(&st);
        if (!s.ok() || st.connection == "connected" || st.role == "replica") {
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      if (s.ok() && cluster->Describe().role == "replica") {
        // A switchover recorded earlier completed as the cluster opened.
        const ClusterInfo info = cluster->Describe();
        report.new_primary = info.primary_cluster_id;
        report.new_epoch = info.epoch;
      } else if (s.ok() && st.connection != "connected") {
        s = Status::IOError("cannot reach the replica at " + args->replica +
                            " (" + st.connection + ": " + st.last_error + ")");
      } else if (s.ok()) {
        s = cluster->Switchover(&report);
        if (!s.ok() && cluster->Describe().role == "replica") {
          const ClusterInfo info = cluster->Describe();
          report.new_primary = info.primary_cluster_id;
          report.new_epoch = info.epoch;
          s = Status::OK();
        }
      }
    }
    if (!s.ok()) return Fail("switchover", s);
    if (args->json) {
      std::printf("%s\n",
                  JsonObject()
                      .AddString("new_primary", report.new_primary)
                      .AddNumber("new_epoch", report.new_epoch)
                      .AddNumber("tenants", report.tenants)
                      .AddNumber("write_pause_micros", report.write_pause_micros)
                      .str()
                      .c_str());
    } else {
      std::printf(
          "switched over: %s is the primary at epoch %llu, this cluster its "
          "replica; %llu tenants, writes paused %.1f ms, nothing lost\n",
          report.new_primary.c_str(),
          static_cast<unsigned long long>(report.new_epoch),
          static_cast<unsigned long long>(report.tenants),
          report.write_pause_micros / 1000.0);
    }
    return kExitOk;
  });
}

void RegisterRejoin(CLI::App* app, Runner* run) {
  struct Args {
    ClusterArgs cluster;
    std::string primary;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app->add_subcommand(
      "rejoin",
      "Makes a former primary (typically fenced after a failover) a replica "
      "of the new primary; then run 'coffer replica serve' on it and let the "
      "new primary ship to it. When the new primary connects, each tenant is "
      "reconciled against its fork point: a tenant whose history ends "
      "exactly there resumes without a reseed; one with writes beyond it "
      "has them saved to an encrypted rollback file (see 'coffer rollback'), "
      "is emptied and is taken again from the new primary. Nothing is "
      "discarded silently. A fenced cluster rejoins only the cluster that "
      "fenced it.");
  AddClusterArgs(cmd, &args->cluster);
  cmd->add_option("--primary-id", args->primary, "Cluster id of the new primary")
      ->type_name("ID")
      ->required();
  OnRun(cmd, run, [args] {
    std::unique_ptr<Cluster> cluster;
    Status s = OpenCluster(args->cluster, &cluster);
    if (s.ok()) s = cluster->Rejoin(args->primary);
    if (!s.ok()) return Fail("rejoin", s);
    const ClusterInfo info = cluster->Describe();
    std::printf(
        "cluster %s is now a replica of %s (it was a primary at epoch %llu); "
        "start 'coffer replica serve' on it\n",
        info.cluster_id.c_str(), args->primary.c_str(),
        static_cast<unsigned long long>(info.epoch));
    return kExitOk;
  });
}

// Prints one write batch's operations as JSON lines.
class BatchPrinter : public rocksdb::WriteBatch::Handler {
 public:
  BatchPrinter(uint64_t seq, uint64_t commit) : seq_(seq), commit_(commit) {}
  rocksdb::Status PutCF(uint32_t cf, const rocksdb::Slice& key,
                        const rocksdb::Slice& value) override {
    if (cf == 0) Print("put", key, &value);
    return rocksdb::Status::OK();
  }
  rocksdb::Status DeleteCF(uint32_t cf, const rocksdb::Slice& key) override {
    if (cf == 0) Print("delete", key, nullptr);
    return rocksdb::Status::OK();
  }
  rocksdb::Status SingleDeleteCF(uint32_t cf,
                                 const rocksdb::Slice& key) override {
    if (cf == 0) Print("delete", key, nullptr);
    return rocksdb::Status::OK();
  }
  rocksdb::Status DeleteRangeCF(uint32_t cf, const rocksdb::Slice& begin,
                                const rocksdb::Slice& end) override {
    if (cf == 0) Print("delete_range", begin, &end);
    return rocksdb::Status::OK();
  }
  rocksdb::Status MergeCF(uint32_t, const rocksdb::Slice&,
                          const rocksdb::Slice&) override {
    return rocksdb::Status::OK();
  }
  uint64_t ops() const { return ops_; }

 private:
  void Print(const char* op, const rocksdb::Slice& key,
             const rocksdb::Slice* value) {
    JsonObject o;
    o.AddNumber("seq", seq_ + ops_)
        .AddNumber("commit_unix_micros", commit_)
        .AddString("op", op)
        .AddString("key", std::string_view(key.data(), key.size()));
    if (value != nullptr) {
      o.AddString(std::string(op) == "delete_range" ? "end" : "value",
                  std::string_view(value->data(), value->size()));
    }
    std::printf("%s\n", o.str().c_str());
    ops_++;
  }
  uint64_t seq_;
  uint64_t commit_;
  uint64_t ops_ = 0;
};

void RegisterRollback(CLI::App* app, Runner* run) {
  struct Args {
    ClusterArgs cluster;
    std::string data;
    std::string tenant;
    std::string file;
    bool json = false;
  };
  CLI::App* rollback = app->add_subcommand(
      "rollback",
      "Reads the rollback files a rejoin wrote: rollback show | export.");
  rollback->require_subcommand(1);

  auto show = std::make_shared<Args>();
  CLI::App* cmd = rollback->add_subcommand(
      "show",
      "Lists the rollback files in DIR/rollback (no key needed): per file "
      "the tenant, the new primary and its epoch, the fork sequence, the "
      "kind ('batches': the writes after the fork, from the log; "
      "'snapshot': the tenant's whole contents, when its log no longer held "
      "them) and when it was written.");
  cmd->add_option("--data", show->data, "Data directory")
      ->envname("COFFER_DATA")
      ->required();
  cmd->add_option("--tenant", show->tenant, "Only this tenant's files")
      ->type_name("T");
  cmd->add_flag("--json", show->json, "Print a JSON array");
  OnRun(cmd, run, [show] {
    std::vector<RollbackFileInfo> files;
    std::vector<Status> unreadable;
    Status s = ListRollbackFiles(show->data, show->tenant, &files, &unreadable);
    if (!s.ok()) return Fail("rollback show", s);
    // A damaged file is reported (and fails the command) after the others
    // are listed, rather than hiding them all.
    auto report_unreadable = [&unreadable]() {
      for (const Status& bad : unreadable) Fail("rollback show", bad);
      return unreadable.empty() ? kExitOk : kExitFailed;
    };
    if (show->json) {
      std::string out = "[";
      for (size_t i = 0; i < files.size(); ++i) {
        const replpb::RollbackHeader& h = files[i].header;
        out += (i ? "," : "") +
               JsonObject()
                   .AddString("file", files[i].path)
                   .AddString("tenant", h.tenant())
                   .AddString("cluster_id", h.cluster_id())
                   .AddString("new_primary", h.new_primary())
                   .AddNumber("epoch", h.epoch())
                   .AddNumber("fork_seq", h.fork_seq())
                   .AddNumber("local_latest_seq", h.local_latest_seq())
                   .AddString("kind", h.kind())
                   .AddNumber("created_unix_micros", h.created_unix_micros())
                   .str();
      }
      std::printf("%s]\n", out.c_str());
      return report_unreadable();
    }
    if (files.empty() && unreadable.empty()) {
      std::printf("no rollback files\n");
    }
    for (const RollbackFileInfo& f : files) {
      const replpb::RollbackHeader& h = f.header;
      std::printf(
          "%s\n  tenant %s, written %s by %s rejoining %s (epoch %llu): %s "
          "after sequence %llu (up to %llu)\n",
          f.path.c_str(), h.tenant().c_str(),
          FormatUnixMicrosExact(h.created_unix_micros()).c_str(),
          h.cluster_id().c_str(), h.new_primary().c_str(),
          static_cast<unsigned long long>(h.epoch()),
          h.kind() == "batches" ? "the writes"
                                : "a snapshot of the contents (log purged)",
          static_cast<unsigned long long>(h.fork_seq()),
          static_cast<unsigned long long>(h.local_latest_seq()));
    }
    return report_unreadable();
  });

  auto exp = std::make_shared<Args>();
  cmd = rollback->add_subcommand(
      "export",
      "Decrypts a tenant's rollback files (or one --file) and prints every "
      "write in them as JSON lines on stdout: seq, commit time, op (put, "
      "delete, delete_range; or record for a snapshot), key and value. The "
      "output holds the tenant's data in plaintext: direct it somewhere "
      "safe. Needs the master key.");
  AddClusterArgs(cmd, &exp->cluster);
  cmd->add_option("--tenant", exp->tenant, "Tenant id")
      ->type_name("T")
      ->required();
  cmd->add_option("--file", exp->file, "Only this rollback file")
      ->type_name("FILE");
  OnRun(cmd, run, [exp] {
    std::shared_ptr<KeyProvider> keys;
    Status s = OpenKeyProvider(exp->cluster, &keys);
    std::vector<RollbackFileInfo> files;
    std::vector<Status> unreadable;
    if (s.ok()) {
      s = ListRollbackFiles(exp->cluster.data, exp->tenant, &files,
                            &unreadable);
    }
    if (!s.ok()) return Fail("rollback export", s);
    if (files.empty() && unreadable.empty()) {
      return FailWith("rollback export",
                      "no rollback files of tenant '" + exp->tenant + "'");
    }
    size_t exported = 0;
    for (const RollbackFileInfo& f : files) {
      if (!exp->file.empty() && f.path != exp->file &&
          f.path.substr(f.path.rfind('/') + 1) != exp->file) {
        continue;
      }
      ++exported;
      Status bad_entry;
      s = ReadRollbackFile(f.path, keys.get(),
                           [&](const replpb::RollbackEntry& e) {
                             if (!bad_entry.ok()) return;
                             if (!e.batch().empty()) {
                               // Only batches a primary writes are
                               // iterated (others trip RocksDB asserts).
                               BatchSummary summary;
                               bad_entry = InspectBatch(e.batch(), &summary);
                               if (!bad_entry.ok()) return;
                               rocksdb::WriteBatch batch(e.batch());
                               BatchPrinter printer(e.seq(),
                                                    e.commit_unix_micros());
                               batch.Iterate(&printer).PermitUncheckedError();
                               return;
                             }
                             std::printf(
                                 "%s\n",
                                 JsonObject()
                                     .AddString("op", "record")
                                     .AddString("key", e.key())
                                     .AddString("value", e.value())
                                     .str()
                                     .c_str());
                           });
      if (s.ok() && !bad_entry.ok()) {
        s = Status::Corruption(f.path + ": " + bad_entry.message());
      }
      if (!s.ok()) return Fail("rollback export", s);
    }
    if (!unreadable.empty()) {
      // Its tenant is unknown: it may hold this tenant's writes.
      for (const Status& bad : unreadable) Fail("rollback export", bad);
      return kExitFailed;
    }
    if (exported == 0) {
      // A mistyped --file must not look like "no divergent writes".
      return FailWith("rollback export",
                      "no rollback file '" + exp->file + "' of tenant '" +
                          exp->tenant + "' in " + exp->cluster.data +
                          "/rollback (see 'coffer rollback show')");
    }
    return kExitOk;
  });
}

}  // namespace

void RegisterReplicationCommands(CLI::App* app, Runner* run) {
  CLI::App* replica = app->add_subcommand(
      "replica", "Runs the passive replica daemon: replica serve.");
  replica->require_subcommand(1);
  RegisterServe(replica, run);
  CLI::App* replication = app->add_subcommand(
      "replication", "Shows replication status: replication status.");
  replication->require_subcommand(1);
  RegisterStatus(replication, run);
  RegisterReceipt(replication, run);
  RegisterMetrics(app, run);
  RegisterPromote(app, run);
  RegisterRejoin(app, run);
  RegisterSwitchover(app, run);
  RegisterRollback(app, run);
}

}  // namespace coffer::cli
