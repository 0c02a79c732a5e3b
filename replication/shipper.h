// Copyright (c) Coffer authors.
//
// Shipper: the primary's side of replication. One background thread keeps a
// TLS connection to the replica and, per tenant, ships the write batches of
// its write-ahead log from the replica's acknowledged position onwards,
// tenant lifecycle events before data, and a reseed from an encrypted
// checkpoint when the log no longer holds what the replica needs. Writes
// never wait for it.
//
// Session: connect → Hello / HelloReply (the replica's identity, geography
// and per-tenant positions) → every tenant's record (CREATE/KEYS) and DROP
// for tenants the replica holds but the primary does not → stream batches,
// at most ReplicationOptions::max_unacked_bytes unacknowledged, reading acks
// as they come. Any error closes the connection; the next session resumes
// from the positions the replica reports, so nothing is skipped or applied
// twice. Tenants are opened only to read their log, one at a time, and not
// kept pinned.
//
// Thread-safety: NotifyWrite / NotifyTenantChanged / FillStatus may be
// called from any thread.

#ifndef COFFER_REPLICATION_SHIPPER_H_
#define COFFER_REPLICATION_SHIPPER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "coffer/replication.h"
#include "coffer/status.h"
#include "engine/commit_queue.h"
#include "replication/proto/replication.pb.h"
#include "rocksdb/write_batch.h"

namespace coffer {

class ClusterImpl;
class AdminListener;
class StatusFileWriter;
class TenantDb;
class WalTailer;
class TlsChannel;
class TlsContext;
struct TenantSlot;

class Shipper {
 public:
  Shipper(ClusterImpl* cluster, ReplicationOptions options);
  ~Shipper();  // Stop()
  Shipper(const Shipper&) = delete;
  Shipper& operator=(const Shipper&) = delete;

  // Loads the TLS material (InvalidArgument naming a bad file or address)
  // and starts shipping in the background.
  Status Start();
  void Stop();

  // A client write committed to `slot` (cheap; from the write path).
  void NotifyWrite(TenantSlot& slot);
  // Keeps the committed batch in the slot's CommitQueue, so that it ships
  // without being read back from the log (dropped over the budget).
  void Queue(TenantSlot& slot, const rocksdb::WriteBatch& committed,
             uint64_t commit_micros);
  // Tenant `id` was created, dropped or had its record changed.
  void NotifyTenantChanged(const std::string& id);

  void FillStatus(ReplicationStatus* status);

  // Drives a planned switchover (Cluster::Switchover).
  Status Switchover(SwitchoverReport* report);

 private:
  // One message on the wire, not yet acknowledged.
  struct Inflight {
    uint64_t end_seq = 0;
    uint64_t batches = 0;  // committed batches merged into it
    uint64_t oldest_commit_micros = 0;  // of its first batch
    uint64_t commit_micros = 0;         // of its last batch
    uint64_t bytes = 0;
  };
  // One tenant's stream, as this session knows it. Guarded by mu_.
  struct Stream {
    uint64_t acked_seq = 0;  // the replica applied everything up to here
    uint64_t acked_commit = 0;
    uint64_t sent_seq = 0;  // batches up to here are on the wire
    std::string sent_chain;
    std::deque<Inflight> inflight;
    uint64_t primary_seq = 0;  // latest sequence seen in the tenant's DB
    uint64_t primary_commit = 0;
    uint64_t last_commit = 0;  // of the last batch read (stamp fallback)
    bool reseeding = false;    // waiting for the replica to install a seed
    bool on_replica = false;   // the replica holds the tenant
    bool fork_pending = false;  // a rejoining replica waits for a Fork
    uint64_t incarnation = 0;  // creation time of the tenant streamed
    uint64_t reseeds = 0;
    // The primary's latest sequence was learned (this session, an earlier
    // status, or the tenant's open): until then its state is "unknown".
    bool known = false;
  };

  // A tenant being streamed keeps its database pinned and its log iterator
  // positioned between rounds (session thread only; a new iterator reads
  // the log file from its start). It lets go after kHotIdle without new
  // data, after kHotHold in any case, and at its next round (at most ~50 ms)
  // when an administrative operation waits for the tenant to be idle
  // (TenantSlot::idle_wanted).
  struct Hot {
    std::shared_ptr<TenantDb> db;
    std::unique_ptr<WalTailer> tailer;
    std::chrono::steady_clock::time_point born;
    std::chrono::steady_clock::time_point last_data;
    // The stream's next sequence was missing from the CommitQueue while a
    // writer was still pushing, since `gap_since`.
    uint64_t gap_next = 0;
    std::chrono::steady_clock::time_point gap_since;
  };
  void ReleaseHot(bool all);

  void Run();
  // Reads every tenant's latest sequence (opening each once).
  void Survey();
  // One connection, until an error or Stop.
  Status Session();
  Status Handshake(TlsChannel* channel, replpb::HelloReply* reply);
  Status SendEvents(TlsChannel* channel);
  // Tells a rejoining former primary each tenant's fork point.
  Status SendForks(TlsChannel* channel);
  // Ships what tenant `id` has beyond what was sent. *more: call again.
  Status ShipTenant(TlsChannel* channel, const std::string& id, bool* more);
  Status Reseed(TlsChannel* channel, const std::shared_ptr<TenantSlot>& slot,
                const std::shared_ptr<TenantDb>& db, Stream* stream);
  Status HandleMessage(const replpb::Envelope& message);
  void UpdateUnackedSince(const std::string& id, const Stream& stream);
  void SetConnection(const std::string& state, const std::string& error);
  bool stopping() const { return stop_.load(); }
  void HandleAdmin(const replpb::AdminRequest& request,
                   replpb::AdminResponse* response);
  // Sends a pending Promote (switchover), if any.
  Status SendPromote(TlsChannel* channel);

  ClusterImpl* const cluster_;
  const ReplicationOptions options_;
  std::unique_ptr<TlsContext> tls_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  // Completes a switchover this cluster persisted but did not finish.
  std::thread resume_switchover_;
  std::unique_ptr<StatusFileWriter> status_writer_;
  std::unique_ptr<AdminListener> admin_;
  // Memory of every tenant's CommitQueue together.
  const std::shared_ptr<CommitQueueBudget> queue_budget_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> dirty_;    // guarded by mu_: may have new batches
  std::set<std::string> changed_;  // guarded by mu_: records to send
  std::map<std::string, Stream> streams_;  // guarded by mu_
  std::map<std::string, Hot> hot_;  // session thread only
  bool connected_ = false;                 // guarded by mu_
  std::string connection_ = "connecting";  // guarded by mu_
  std::string last_error_;                 // guarded by mu_
  std::string peer_cluster_id_;            // guarded by mu_
  uint64_t unacked_bytes_ = 0;             // guarded by mu_
  uint64_t batches_ = 0;                   // guarded by mu_
  uint64_t batches_from_log_ = 0;          // guarded by mu_
  uint64_t bytes_ = 0;                     // guarded by mu_
  uint64_t reseeds_ = 0;                   // guarded by mu_
    uint64_t connects_ = 0;                   // guarded by mu_
  // A switchover's Promote request: to send, sent, answered.
  enum class PromoteState { kNone, kPending, kSent, kDone };
  PromoteState promote_state_ = PromoteState::kNone;  // guarded by mu_
  replpb::Promote promote_request_;                   // guarded by mu_
  replpb::PromoteReply promote_reply_;                // guarded by mu_
  std::mutex switchover_mu_;  // one switchover at a time
};

}  // namespace coffer

#endif  // COFFER_REPLICATION_SHIPPER_H_
