// Copyright (c) Coffer authors.
//
// Asynchronous replication of every tenant's write-ahead log from a primary
// cluster to a passive replica cluster in a paired region of the same
// geography.
//
// The primary ships in the background once OpenOptions::replication names the
// replica; writes never wait for it. The replica runs a ReplicaServer (the
// `coffer replica serve` daemon embeds one): it applies each batch atomically
// together with its position, takes no client writes (ReadOnly), and follows
// the primary's tenant lifecycle (create, drop as crypto-shred, key changes;
// keys travel only wrapped, so the replica needs the same master keys).
//
// Example (primary):
//   coffer::OpenOptions o;
//   o.replication.replica_address = "10.1.2.3:7400";
//   o.replication.tls = {"/etc/coffer/c1.crt", "/etc/coffer/c1.key",
//                        "/etc/coffer/ca.crt"};
//   s = coffer::Cluster::Open("/var/lib/coffer", o, keys, &cluster);
//
// Example (replica):
//   coffer::ReplicaServerOptions r;
//   r.listen_address = "0.0.0.0:7400";
//   r.tls = {...};
//   std::unique_ptr<coffer::ReplicaServer> server;
//   s = coffer::ReplicaServer::Start(replica_cluster.get(), r, &server);

#ifndef COFFER_INCLUDE_COFFER_REPLICATION_H_
#define COFFER_INCLUDE_COFFER_REPLICATION_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "coffer/status.h"

namespace coffer {

class Cluster;

// PEM files of one side of a mutually authenticated TLS 1.3 connection. The
// certificate's common name must be the cluster's id.
struct TlsFiles {
  std::string cert_file;
  std::string key_file;
  std::string ca_file;  // CA that signed the peer's certificate
};

// Shipping from a primary (OpenOptions::replication).
struct ReplicationOptions {
  // "host:port" of the replica's server. Empty: replication off.
  std::string replica_address;
  TlsFiles tls;
  // If set, the replica must be this cluster (certificate and handshake).
  std::string replica_cluster_id;
  // Batch bytes per message, and the most bytes in flight unacknowledged.
  size_t max_message_bytes = size_t{1} << 20;
  size_t max_unacked_bytes = size_t{16} << 20;
  // Memory, shared by all tenants, for batches committed but not yet
  // shipped: the shipper sends those straight from memory instead of
  // reading them back from the encrypted write-ahead log (which costs the
  // primary about 2 µs of CPU per write). Writes beyond it, and the backlog
  // after a reconnect, ship from the log. 0: always from the log.
  size_t commit_queue_bytes = size_t{32} << 20;
  // Bounded RPO: once a tenant's oldest write the replica has not
  // acknowledged is older than this, its writes fail with LagExceeded
  // (other tenants keep writing), which bounds what a forced failover can
  // lose and how far a partitioned primary can diverge. Per-tenant
  // TenantOptions::rpo_bound_ms overrides it. 0: no bound. Default: 0
  uint64_t rpo_bound_ms = 0;
  // With a bound: how long such a write first waits for the replica to
  // catch up before failing. Default: 0 (fail at once)
  uint64_t rpo_wait_ms = 0;
  // Reconnect delay after a failure; doubles up to 5 s.
  uint32_t reconnect_delay_ms = 200;
  uint32_t connect_timeout_ms = 5000;
};

// Where one tenant's replication stands.
struct TenantReplicationStatus {
  std::string tenant;
  // Latest sequence written on the primary (as known on this side) and the
  // sequence the replica has durably applied.
  uint64_t primary_seq = 0;
  uint64_t applied_seq = 0;
  uint64_t lag_seqs = 0;  // primary_seq - applied_seq
  // 0 when caught up; else how old the oldest write the replica lacks is
  // (primary side: now minus its commit time; replica side: the primary's
  // latest commit time minus the last applied batch's, both taken from the
  // commit timestamps each batch carries).
  double lag_seconds = 0;
  uint64_t primary_commit_unix_micros = 0;  // of primary_seq
  uint64_t applied_commit_unix_micros = 0;  // of applied_seq
  // Primary: seconds until the oldest write the replica lacks leaves the
  // write-ahead log retention (then a reseed is needed); the full retention
  // when caught up.
  int64_t retention_headroom_seconds = 0;
  // "caught-up", "streaming", "reseeding", or "waiting" (no connection).
  std::string state;
  uint64_t reseeds = 0;
};

struct ReplicationStatus {
  std::string role;  // "primary" or "replica"
  std::string cluster_id;
  uint64_t epoch = 0;
  // "off" (not configured), "connecting", "connected", "listening" (replica
  // without a primary connected), "refused" (the peer refused or was
  // refused; see last_error), "fenced" (a primary that learned of a higher
  // epoch), "stopped" (read from the status file of a process that is no
  // longer running).
  std::string connection;
  std::string peer_cluster_id;
  std::string peer_address;
  std::string last_error;
  uint64_t wal_retention_seconds = 0;
  uint64_t batches = 0;  // shipped (primary) or applied (replica)
  // Primary: of `batches`, those read back from the write-ahead log (catching
  // up, or Coffer's own records); the others shipped from memory right
  // after their commit.
  uint64_t batches_from_log = 0;
  uint64_t bytes = 0;
  uint64_t reseeds = 0;
  uint64_t connects = 0;
  uint64_t as_of_unix_micros = 0;
  // Set when this cluster learned that `fenced_by` is the primary at a
  // higher epoch: it takes no writes (Fenced) until it rejoins as a replica.
  std::string fenced_by;
  uint64_t fenced_by_epoch = 0;
  // Set while a planned switchover to this replica is under way: this
  // primary takes no writes until it completes.
  std::string switchover_to;
  // Set on a promoted replica.
  std::string promoted_from;
  uint64_t promoted_unix_micros = 0;
  std::vector<TenantReplicationStatus> tenants;  // sorted by id
};

// One tenant's part of a promotion's loss receipt.
struct TenantLossReceipt {
  std::string tenant;
  // The promotion point: the last sequence applied (in the old primary's
  // numbering) and its commit time.
  uint64_t promoted_at_seq = 0;
  uint64_t promoted_at_commit_unix_micros = 0;
  // The most the replica had heard the old primary had. Writes the old
  // primary took after its last batch reached the replica are unknown here.
  uint64_t primary_seq_heard = 0;
  uint64_t primary_commit_heard_unix_micros = 0;
  uint64_t writes_beyond = 0;  // sequences (operations) beyond the point
  double seconds_beyond = 0;   // commit-time span of those writes
};

// What a promotion did (Cluster::Promote, PromoteReplica).
struct PromotionReport {
  std::string cluster_id;
  std::string former_primary;
  uint64_t old_epoch = 0;
  uint64_t new_epoch = 0;
  uint64_t unix_micros = 0;  // when
  uint64_t micros = 0;       // how long it took
  std::vector<TenantLossReceipt> tenants;  // sorted by id
  uint64_t writes_beyond = 0;              // over all tenants
  // "daemon" (done by the running replica daemon) or "offline".
  std::string via;
};

// Promotes the replica in `data_dir`: through the local admin channel of its
// running daemon (DIR/admin.sock) if one runs; NotFound if none does (then
// open the cluster and call Cluster::Promote). `actor` is recorded in the
// audit trail.
Status PromoteReplica(const std::string& data_dir, const std::string& actor,
                      PromotionReport* report);

// The receipt of the last promotion of the cluster in `data_dir`
// (DIR/PROMOTION). NotFound if it was never promoted.
Status ReadPromotionReport(const std::string& data_dir,
                           PromotionReport* report);

// What a planned switchover did (Cluster::Switchover, SwitchoverPrimary).
struct SwitchoverReport {
  std::string old_primary;
  std::string new_primary;
  uint64_t new_epoch = 0;
  uint64_t tenants = 0;
  uint64_t write_pause_micros = 0;  // from writes stopping to completion
};

// Asks the process running the primary in `data_dir` (an application with
// replication configured, e.g. `coffer workload`) to switch over, through
// its local admin channel. NotFound if no such process runs.
Status SwitchoverPrimary(const std::string& data_dir, const std::string& actor,
                         SwitchoverReport* report);

// The passive side: accepts one primary at a time. Started on a cluster that
// is a primary (a promoted replica), it only answers hellos, refusing each
// primary of a lower epoch with its own epoch: that primary fences itself.
struct ReplicaServerOptions {
  // "host:port" to listen on; port 0 picks a free one (see port()).
  std::string listen_address;
  TlsFiles tls;
  // If set, only this primary cluster is accepted. Otherwise the first
  // primary accepted is recorded, and later a different one is refused.
  std::string primary_cluster_id;
  // Receives one line per connection event (accepted, refused, closed and
  // why). Never given keys or values. Default: none.
  std::function<void(const std::string& line)> log;
  // A primary silent this long (it sends heartbeats) is disconnected.
  // Default: 10000 ms
  int idle_timeout_ms = 10000;
  // Called (on a server thread) after the cluster was promoted through the
  // admin channel; the server has stopped serving by then. The daemon exits
  // so that the application can open the new primary. Default: none.
  std::function<void()> on_promoted;
};

class ReplicaServer {
 public:
  // Starts serving `cluster`, which must be a replica (created with
  // ClusterOptions::replica) and must outlive the server. InvalidArgument
  // for a bad address or TLS file, IOError if the address is in use.
  static Status Start(Cluster* cluster, const ReplicaServerOptions& options,
                      std::unique_ptr<ReplicaServer>* result);
  // Stops serving (see Stop).
  virtual ~ReplicaServer() = default;
  ReplicaServer(const ReplicaServer&) = delete;
  ReplicaServer& operator=(const ReplicaServer&) = delete;

  virtual int port() const = 0;
  // Closes the connection and the listener; everything acknowledged is
  // durable. Idempotent.
  virtual void Stop() = 0;

 protected:
  ReplicaServer() = default;
};

// The status a running primary or replica last wrote to DIR/REPLICATION
// (every second), readable while another process holds the directory.
// NotFound if no replication ever ran there; Corruption if the file is
// damaged.
Status ReadReplicationStatusFile(const std::string& data_dir,
                                 ReplicationStatus* status);

}  // namespace coffer

#endif  // COFFER_INCLUDE_COFFER_REPLICATION_H_
