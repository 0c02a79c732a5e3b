// Copyright (c) Coffer authors.
//
// ReplicaServer: the passive side of replication. An accept thread completes
// TLS handshakes (mutual authentication) and checks each primary's Hello:
// its certificate must name the cluster it claims to be, it must be of this
// replica's geography, and it must be the primary this replica is paired
// with. Refusals are logged and audited. An accepted primary gets a session
// thread (a newer accepted connection replaces an older one, so a restarted
// primary need not wait for its dead connection to time out).
//
// Apply: each batch is checked (tenant known, sequence continuous with the
// position, chain hash, parses, only the user and system column families)
// and written to the tenant's own encrypted database in one atomic write
// together with the new position. Acknowledgements are sent only after the
// tenant's log is synced, so an acknowledged batch survives a crash; the
// position and the data can never disagree, so a restart neither loses nor
// repeats a batch. A session ends with every applied batch synced.

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "coffer/replication.h"
#include "engine/clock.h"
#include "engine/cluster_impl.h"
#include "engine/record_file.h"
#include "engine/thread_name.h"
#include "replication/admin_channel.h"
#include "replication/batch_inspect.h"
#include "replication/chain.h"
#include "replication/rollback.h"
#include "replication/wal_tailer.h"
#include "replication/status_file.h"
#include "replication/tls_channel.h"

namespace coffer {

namespace {

namespace fs = std::filesystem;

constexpr uint32_t kProtocolVersion = 1;
constexpr int kPollMs = 100;
constexpr int kHelloTimeoutMs = 10000;
constexpr size_t kAckEvery = 256;  // batches applied before acks go out
constexpr auto kAckDelay = std::chrono::milliseconds(20);
constexpr auto kInstallWait = std::chrono::seconds(10);
constexpr size_t kGroupBatches = 256;            // batches applied at once
constexpr size_t kGroupBytes = size_t{4} << 20;

// Copies a batch's operations except those on the replication records.
class RecordFilter : public rocksdb::WriteBatch::Handler {
 public:
  RecordFilter(rocksdb::WriteBatch* out,
               std::vector<rocksdb::ColumnFamilyHandle*> families)
      : out_(out), families_(std::move(families)) {}
  rocksdb::Status PutCF(uint32_t cf, const rocksdb::Slice& key,
                        const rocksdb::Slice& value) override {
    if (Skip(cf, key)) return rocksdb::Status::OK();
    return out_->Put(families_[cf], key, value);
  }
  rocksdb::Status DeleteCF(uint32_t cf, const rocksdb::Slice& key) override {
    if (Skip(cf, key)) return rocksdb::Status::OK();
    return out_->Delete(families_[cf], key);
  }
  rocksdb::Status SingleDeleteCF(uint32_t cf,
                                 const rocksdb::Slice& key) override {
    return DeleteCF(cf, key);
  }
  rocksdb::Status DeleteRangeCF(uint32_t cf, const rocksdb::Slice& begin,
                                const rocksdb::Slice& end) override {
    if (cf >= families_.size()) return rocksdb::Status::Corruption("family");
    return out_->DeleteRange(families_[cf], begin, end);
  }
  void LogData(const rocksdb::Slice& blob) override {
    out_->PutLogData(blob).PermitUncheckedError();
  }

 private:
  bool Skip(uint32_t cf, const rocksdb::Slice& key) const {
    return cf >= families_.size() ||
           (cf != 0 &&
            IsReplicationRecord(std::string_view(key.data(), key.size())));
  }
  rocksdb::WriteBatch* out_;
  std::vector<rocksdb::ColumnFamilyHandle*> families_;
};

bool ValidSeedFileName(const std::string& name) {
  if (name.empty() || name.size() > 255 || name == "." || name == "..") {
    return false;
  }
  return name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos && name != kSeededMarker;
}

std::string HostOf(const std::string& message) {
  // "peer 1.2.3.4:5678: ..." → "1.2.3.4"
  if (message.rfind("peer ", 0) != 0) return "unknown";
  const size_t end = message.find(':', 5);
  return end == std::string::npos ? "unknown" : message.substr(5, end - 5);
}

class ReplicaServerImpl final : public ReplicaServer {
 public:
  ReplicaServerImpl(ClusterImpl* cluster, ReplicaServerOptions options)
      : cluster_(cluster), options_(std::move(options)) {}
  ~ReplicaServerImpl() override { Stop(); }

  Status Init();
  int port() const override { return listener_->port(); }
  void Stop() override;

 private:
  // One tenant as this replica stands. Guarded by mu_.
  struct Position {
    uint64_t applied_seq = 0;
    uint64_t applied_commit = 0;
    uint64_t epoch = 0;
    std::string chain;
    uint64_t primary_seq = 0;  // latest the primary said it had
    uint64_t primary_commit = 0;
    bool reseeding = false;
    uint64_t reseeds = 0;
    uint64_t created = 0;  // the tenant's creation time (its incarnation)
    // A former primary's tenant not yet reconciled with the new primary's
    // fork point; local_latest is its own latest sequence.
    bool rejoining = false;
    uint64_t local_latest = 0;
  };
  // A reseed being received.
  struct Seed {
    std::string tenant;
    uint64_t epoch = 0;
    uint64_t commit = 0;
    fs::path dir;
    std::string file;  // being written
    int fd = -1;
    uint64_t file_bytes = 0;
    uint32_t files = 0;
    uint64_t bytes = 0;
  };

  void Log(const std::string& line) {
    if (options_.log) options_.log(line);
  }
  void Refuse(TlsChannel* channel, const std::string& peer,
              const std::string& reason);
  void StopSession();
  // This cluster's Hello (in replies, also refusals: a stale primary learns
  // the epoch from it).
  void FillHello(replpb::Hello* hello);
  Status PromoteNow(PromotionReport* report);
  void HandleAdmin(const replpb::AdminRequest& request,
                   replpb::AdminResponse* response);
  void AcceptLoop();
  void Serve(std::unique_ptr<TlsChannel> channel, std::string primary);
  Status Session(TlsChannel* channel, const std::string& primary);
  // Checks a primary's Hello; empty if accepted, else why not.
  std::string CheckHello(const replpb::Hello& hello,
                         const std::string& cert_name);
  Status Positions(replpb::HelloReply* reply);
  // Loads the position of `tenant` from its database (if not cached).
  Status LoadPosition(const std::shared_ptr<TenantSlot>& slot);
  // Applies consecutive batches of one tenant in one atomic write with the
  // new position, each checked first; nothing is applied if one fails.
  Status ApplyBatches(const std::vector<replpb::Batch>& group);
  Status ApplyEvent(const replpb::TenantEvent& event,
                    const std::string& primary);
  Status SeedBegin(const replpb::SeedBegin& begin);
  Status SeedChunk(const replpb::SeedChunk& chunk);
  Status SeedEnd(TlsChannel* channel, const replpb::SeedEnd& end);
  Status Reconcile(TlsChannel* channel, const replpb::Fork& fork);
  // A planned switchover: promotes if every tenant is at the primary's
  // final sequence, and answers.
  Status PromoteBySwitchover(TlsChannel* channel,
                             const replpb::Promote& request);
  // Writes the tenant's writes after `after_seq` (or, if its log no longer
  // holds them, its whole contents) to a rollback file.
  Status ExportRollback(const std::shared_ptr<TenantSlot>& slot,
                        uint64_t after_seq, uint64_t epoch,
                        std::string* path, uint64_t* entries);
  // Empties a tenant's database (its record and keys stay).
  Status EmptyTenant(const std::shared_ptr<TenantSlot>& slot);
  // Before a rejoining tenant is dropped or replaced: its data is saved.
  Status SaveBeforeDiscard(const std::shared_ptr<TenantSlot>& slot,
                           const std::string& why);
  void AbandonSeed();
  // Syncs the logs of tenants with unacknowledged batches; sends their acks
  // when `channel` is non-null.
  Status FlushAcks(TlsChannel* channel);
  void FillStatus(ReplicationStatus* status);
  replpb::TenantPosition ToProto(const std::string& tenant,
                                 const Position& p) const;

  ClusterImpl* const cluster_;
  const ReplicaServerOptions options_;
  std::unique_ptr<TlsContext> tls_;
  std::unique_ptr<TlsListener> listener_;
  std::string listening_on_;  // host:port actually bound
  std::atomic<bool> stop_{false};
  std::thread accept_thread_;
  std::thread session_thread_;
  std::atomic<bool> session_stop_{false};
  std::unique_ptr<StatusFileWriter> status_writer_;
  std::unique_ptr<AdminListener> admin_;
  bool stopped_ = false;
  std::atomic<bool> promoting_{false};
  bool promoted_by_switchover_ = false;  // session thread only
  std::mutex session_mu_;  // starting and joining session_thread_

  std::mutex mu_;
  std::map<std::string, Position> positions_;  // guarded by mu_
  std::set<std::string> pending_;              // guarded by mu_: to ack
  bool connected_ = false;                     // guarded by mu_
  std::string peer_;                           // guarded by mu_
  std::string last_error_;                     // guarded by mu_
  uint64_t batches_ = 0;                       // guarded by mu_
  uint64_t bytes_ = 0;                         // guarded by mu_
  uint64_t reseeds_ = 0;                       // guarded by mu_
  uint64_t connects_ = 0;                      // guarded by mu_
  Seed seed_;                                  // session thread only
};

Status ReplicaServerImpl::Init() {
  TlsConfig config{options_.tls.cert_file, options_.tls.key_file,
                   options_.tls.ca_file};
  Status s = TlsContext::Create(config, /*server=*/true, &tls_);
  if (s.ok()) s = TlsListener::Listen(options_.listen_address, &listener_);
  if (!s.ok()) return s;
  std::string host;
  int unused = 0;
  ParseAddress(options_.listen_address, &host, &unused).PermitUncheckedError();
  listening_on_ = host + ":" + std::to_string(listener_->port());
  cluster_->SetReplicationStatusSource(
      [this](ReplicationStatus* st) { FillStatus(st); });
  if (cluster_->is_replica()) {
    cluster_->SetPromoteHandler(
        [this](PromotionReport* report) { return PromoteNow(report); });
    s = AdminListener::Start(
        cluster_->dir(),
        [this](const replpb::AdminRequest& request,
               replpb::AdminResponse* response) {
          HandleAdmin(request, response);
        },
        &admin_);
    if (!s.ok()) {
      cluster_->SetPromoteHandler(nullptr);
      cluster_->SetReplicationStatusSource(nullptr);
      return s;
    }
  }
  status_writer_ = std::make_unique<StatusFileWriter>(
      cluster_->dir(), [this](ReplicationStatus* st) { FillStatus(st); });
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  return Status::OK();
}

void ReplicaServerImpl::Stop() {
  if (stopped_) return;
  stopped_ = true;
  stop_ = true;
  admin_.reset();
  if (accept_thread_.joinable()) accept_thread_.join();
  StopSession();
  cluster_->SetPromoteHandler(nullptr);
  cluster_->SetReplicationStatusSource(nullptr);
  status_writer_.reset();
}

void ReplicaServerImpl::Refuse(TlsChannel* channel, const std::string& peer,
                               const std::string& reason) {
  Log("refused " + peer + ": " + reason);
  cluster_
      ->RecordAudit("replication.refused", "peer:" + peer,
                    Status::PermissionDenied(reason), "")
      .PermitUncheckedError();
  if (channel != nullptr) {
    replpb::Envelope reply;
    reply.mutable_hello_reply()->set_accepted(false);
    reply.mutable_hello_reply()->set_reason(reason);
    FillHello(reply.mutable_hello_reply()->mutable_replica());
    channel->Send(reply).PermitUncheckedError();
  }
  std::lock_guard<std::mutex> lock(mu_);
  last_error_ = "refused " + peer + ": " + reason;
}

std::string ReplicaServerImpl::CheckHello(const replpb::Hello& h,
                                          const std::string& cert_name) {
  if (h.protocol_version() != kProtocolVersion) {
    return "protocol version " + std::to_string(h.protocol_version()) +
           " is not supported (this replica speaks " +
           std::to_string(kProtocolVersion) + ")";
  }
  if (h.role() != "primary") return "peer is a " + h.role() + ", not a primary";
  if (!cluster_->is_replica()) {
    const uint64_t mine = cluster_->epoch();
    if (h.epoch() > mine) {
      // The peer was promoted past this cluster: this one is the stale one.
      cluster_
          ->Fence(h.epoch(), h.cluster_id(),
                  "learned from primary '" + h.cluster_id() +
                      "' connecting to this cluster's server")
          .PermitUncheckedError();
      return "cluster '" + cluster_->cluster_id() + "' is fenced by '" +
             h.cluster_id() + "' (epoch " + std::to_string(h.epoch()) +
             "); rejoin it as a replica ('coffer rejoin') to receive data";
    }
    if (h.epoch() == mine) {
      return "both '" + cluster_->cluster_id() + "' and '" + h.cluster_id() +
             "' are primaries at epoch " + std::to_string(mine) +
             "; promote or rejoin one of them";
    }
    // A promoted cluster: whoever still thinks it is the primary is stale.
    return "cluster '" + cluster_->cluster_id() + "' is the primary at epoch " +
           std::to_string(mine) + "; '" + h.cluster_id() + "' (epoch " +
           std::to_string(h.epoch()) +
           ") is a stale primary and must stop taking writes";
  }
  if (promoting_.load()) return "this replica is being promoted";
  if (h.cluster_id() != cert_name) {
    return "certificate names '" + cert_name + "' but the peer says it is '" +
           h.cluster_id() + "' (wrong cluster identity)";
  }
  if (h.cluster_id() == cluster_->cluster_id()) {
    return "peer claims this replica's own cluster id";
  }
  if (h.geography() != cluster_->geography()) {
    return "primary '" + h.cluster_id() + "' is in geography '" +
           h.geography() + "', this replica in '" + cluster_->geography() +
           "'; data may only be replicated within its geography";
  }
  if (!options_.primary_cluster_id.empty() &&
      h.cluster_id() != options_.primary_cluster_id) {
    return "wrong cluster identity: expected primary '" +
           options_.primary_cluster_id + "', not '" + h.cluster_id() + "'";
  }
  const std::string paired = cluster_->primary_cluster_id();
  if (!paired.empty() && paired != h.cluster_id()) {
    return "wrong cluster identity: this replica is paired with primary '" +
           paired + "', not '" + h.cluster_id() + "'";
  }
  if (h.epoch() < cluster_->epoch()) {
    return "primary '" + h.cluster_id() + "' is at epoch " +
           std::to_string(h.epoch()) + ", below this replica's " +
           std::to_string(cluster_->epoch()) + " (a stale primary)";
  }
  return "";
}

void ReplicaServerImpl::AcceptLoop() {
  NameThisThread("coffer-accept");
  KeepSigpipeBlocked();
  while (!stop_.load()) {
    std::unique_ptr<TlsChannel> channel;
    Status s = listener_->Accept(*tls_, kPollMs, &channel);
    if (!s.ok()) {
      if (s.message() == "timeout") continue;
      // A peer without a certificate from our CA, or not speaking TLS.
      const std::string host = HostOf(s.message());
      Log("refused connection: " + s.message());
      cluster_->RecordAudit("replication.refused", "peer:" + host, s, "")
          .PermitUncheckedError();
      std::lock_guard<std::mutex> lock(mu_);
      last_error_ = s.message();
      continue;
    }
    replpb::Envelope hello;
    s = channel->Receive(&hello, kHelloTimeoutMs);
    if (!s.ok() || !hello.has_hello()) {
      Refuse(nullptr, channel->peer_name(),
             s.ok() ? "first message is not a hello" : s.ToString());
      continue;
    }
    const std::string refusal = CheckHello(hello.hello(), channel->peer_name());
    if (!refusal.empty()) {
      Refuse(channel.get(), channel->peer_name(), refusal);
      continue;
    }
    // A newer connection from the primary replaces the old one.
    std::lock_guard<std::mutex> session_lock(session_mu_);
    if (promoting_.load()) {
      Refuse(channel.get(), channel->peer_name(),
             "this replica is being promoted");
      continue;
    }
    session_stop_ = true;
    if (session_thread_.joinable()) session_thread_.join();
    session_stop_ = false;
    const std::string primary = hello.hello().cluster_id();
    if (hello.hello().epoch() > cluster_->epoch()) {
      // The primary moved on (a switchover or a rejoin): follow its epoch.
      Status e = cluster_->AdoptEpoch(hello.hello().epoch());
      if (!e.ok()) {
        Refuse(channel.get(), primary, "cannot record epoch: " + e.ToString());
        continue;
      }
    }
    if (cluster_->primary_cluster_id().empty()) {
      Status p = cluster_->SetPrimaryClusterId(primary);
      cluster_
          ->RecordAudit("replication.pair", "peer:" + primary, p,
                        "replica paired with primary '" + primary + "'")
          .PermitUncheckedError();
      if (!p.ok()) {
        Refuse(channel.get(), primary,
               "cannot record the pairing: " + p.ToString());
        continue;
      }
    }
    session_thread_ = std::thread(
        [this, primary](std::unique_ptr<TlsChannel> ch) {
          Serve(std::move(ch), primary);
        },
        std::move(channel));
  }
}

void ReplicaServerImpl::StopSession() {
  std::lock_guard<std::mutex> lock(session_mu_);
  session_stop_ = true;
  if (session_thread_.joinable()) session_thread_.join();
}

void ReplicaServerImpl::FillHello(replpb::Hello* me) {
  me->set_protocol_version(kProtocolVersion);
  me->set_cluster_id(cluster_->cluster_id());
  me->set_region(cluster_->region());
  me->set_geography(cluster_->geography());
  me->set_epoch(cluster_->epoch());
  me->set_role(cluster_->is_replica() ? "replica" : "primary");
}

Status ReplicaServerImpl::PromoteNow(PromotionReport* report) {
  if (promoting_.exchange(true)) {
    return Status::Busy("a promotion is already under way");
  }
  // Stop applying; everything applied is synced when the session ends.
  StopSession();
  std::vector<TenantLossReceipt> receipts;
  for (const auto& slot : cluster_->LiveSlots()) {
    TenantLossReceipt r;
    r.tenant = slot->id;
    if (!slot->revoked.load()) {
      Status s = LoadPosition(slot);
      if (!s.ok()) {
        promoting_ = false;
        return s;
      }
      std::lock_guard<std::mutex> lock(mu_);
      const Position& p = positions_[slot->id];
      r.promoted_at_seq = p.applied_seq;
      r.promoted_at_commit_unix_micros = p.applied_commit;
      r.primary_seq_heard = p.primary_seq;
      r.primary_commit_heard_unix_micros = p.primary_commit;
    }
    receipts.push_back(std::move(r));
  }
  Status s = cluster_->FinishPromotion(std::move(receipts), "daemon", report);
  if (!s.ok()) {
    promoting_ = false;
    return s;
  }
  Log("promoted: epoch " + std::to_string(report->old_epoch) + " -> " +
      std::to_string(report->new_epoch) + "; " +
      std::to_string(report->writes_beyond) +
      " writes known beyond the promotion point");
  // Now a primary: hellos get refused with the new epoch (stale primaries
  // fence themselves).
  promoting_ = false;
  if (options_.on_promoted) options_.on_promoted();
  return Status::OK();
}

void ReplicaServerImpl::HandleAdmin(const replpb::AdminRequest& request,
                                    replpb::AdminResponse* response) {
  if (request.command() != "promote") {
    response->set_ok(false);
    response->set_error("InvalidArgument: unknown admin command '" +
                        request.command().substr(0, 40) + "'");
    return;
  }
  Log("promotion requested by " + request.actor().substr(0, 80) +
      " over the admin channel");
  PromotionReport report;
  Status s = cluster_->Promote(&report);
  response->set_ok(s.ok());
  if (!s.ok()) {
    response->set_error(s.ToString());
    return;
  }
  PromotionToRecord(report, response->mutable_promotion());
}

void ReplicaServerImpl::Serve(std::unique_ptr<TlsChannel> channel,
                              std::string primary) {
  NameThisThread("coffer-replica");
  KeepSigpipeBlocked();
  {
    std::lock_guard<std::mutex> lock(mu_);
    connected_ = true;
    peer_ = primary;
    connects_++;
  }
  Log("primary '" + primary + "' connected");
  Status s = Session(channel.get(), primary);
  if (promoted_by_switchover_) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      connected_ = false;
    }
    Log("switchover: this cluster is now the primary; '" + primary +
        "' becomes its replica");
    if (options_.on_promoted) options_.on_promoted();
    return;
  }
  AbandonSeed();
  // Whatever was applied is made durable before anyone is told of it.
  Status f = FlushAcks(nullptr);
  if (s.ok()) s = f;
  if (!s.ok() && !stop_.load() && !session_stop_.load()) {
    replpb::Envelope error;
    error.mutable_error()->set_reason(s.ToString());
    channel->Send(error).PermitUncheckedError();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    connected_ = false;
    if (!s.ok()) last_error_ = s.ToString();
  }
  const std::string why = s.ok() ? "closed" : "closed: " + s.ToString();
  Log("primary '" + primary + "' " + why);
  if (!s.ok() && !s.IsIOError()) {
    // Protocol violations are security-relevant; dropped links are not.
    cluster_
        ->RecordAudit("replication.rejected", "peer:" + primary, s,
                      "connection closed, nothing further applied")
        .PermitUncheckedError();
  }
}

Status ReplicaServerImpl::Session(TlsChannel* channel,
                                  const std::string& primary) {
  replpb::Envelope reply;
  replpb::HelloReply* r = reply.mutable_hello_reply();
  Status s = Positions(r);
  if (!s.ok()) return s;
  r->set_accepted(true);
  FillHello(r->mutable_replica());
  s = channel->Send(reply);
  if (!s.ok()) return s;
  cluster_
      ->RecordAudit("replication.connect", "peer:" + primary, Status::OK(),
                    "primary connected")
      .PermitUncheckedError();

  auto last_heard = std::chrono::steady_clock::now();
  auto first_pending = last_heard;
  size_t applied = 0;
  // A message read while gathering a group of batches, handled next.
  replpb::Envelope stashed;
  bool have_stashed = false;
  while (!stop_.load() && !session_stop_.load()) {
    replpb::Envelope message;
    bool got = false;
    bool have_pending;
    {
      std::lock_guard<std::mutex> lock(mu_);
      have_pending = !pending_.empty();
    }
    if (have_stashed) {
      message.Swap(&stashed);
      have_stashed = false;
      got = true;
    } else {
      s = channel->TryReceive(&message, have_pending ? 0 : kPollMs, &got);
      if (!s.ok()) return s;
    }
    const auto now = std::chrono::steady_clock::now();
    if (!got) {
      if (have_pending) {
        s = FlushAcks(channel);
        if (!s.ok()) return s;
        applied = 0;
      } else if (now - last_heard >
                 std::chrono::milliseconds(options_.idle_timeout_ms)) {
        return Status::IOError("primary '" + primary + "' silent for " +
                               std::to_string(options_.idle_timeout_ms) +
                               " ms");
      }
      continue;
    }
    last_heard = now;
    switch (message.body_case()) {
      case replpb::Envelope::kBatch: {
        if (applied == 0) first_pending = now;
        // Batches of the same tenant already here go in one write.
        std::vector<replpb::Batch> group;
        size_t bytes = message.batch().data().size();
        group.push_back(std::move(*message.mutable_batch()));
        while (group.size() < kGroupBatches && bytes < kGroupBytes) {
          bool more = false;
          s = channel->TryReceive(&stashed, 0, &more);
          if (!s.ok()) return s;
          if (!more) break;
          if (!stashed.has_batch() ||
              stashed.batch().tenant() != group.front().tenant()) {
            have_stashed = true;
            break;
          }
          bytes += stashed.batch().data().size();
          group.push_back(std::move(*stashed.mutable_batch()));
        }
        s = ApplyBatches(group);
        applied += group.size();
        break;
      }
      case replpb::Envelope::kTenantEvent:
        // Acks first: a drop must not strand acknowledgements.
        s = FlushAcks(channel);
        applied = 0;
        if (s.ok()) s = ApplyEvent(message.tenant_event(), primary);
        break;
      case replpb::Envelope::kSeedBegin:
        s = SeedBegin(message.seed_begin());
        break;
      case replpb::Envelope::kSeedChunk:
        s = SeedChunk(message.seed_chunk());
        break;
      case replpb::Envelope::kSeedEnd:
        s = SeedEnd(channel, message.seed_end());
        break;
      case replpb::Envelope::kHeartbeat:
        break;
      case replpb::Envelope::kPromote:
        s = FlushAcks(channel);
        applied = 0;
        if (s.ok()) s = PromoteBySwitchover(channel, message.promote());
        if (s.ok() && promoted_by_switchover_) return Status::OK();
        break;
      case replpb::Envelope::kFork:
        s = FlushAcks(channel);
        applied = 0;
        if (s.ok()) s = Reconcile(channel, message.fork());
        break;
      case replpb::Envelope::kError:
        return Status::IOError("primary closed the connection: " +
                               message.error().reason());
      default:
        return Status::InvalidArgument(
            "unexpected message from the primary (body " +
            std::to_string(message.body_case()) + ")");
    }
    if (!s.ok()) return s;
    if (applied >= kAckEvery ||
        (applied > 0 && now - first_pending > kAckDelay)) {
      s = FlushAcks(channel);
      if (!s.ok()) return s;
      applied = 0;
    }
  }
  return Status::OK();
}

replpb::TenantPosition ReplicaServerImpl::ToProto(const std::string& tenant,
                                                  const Position& p) const {
  replpb::TenantPosition out;
  out.set_tenant(tenant);
  out.set_applied_seq(p.applied_seq);
  out.set_chain_hash(p.chain);
  out.set_epoch(p.epoch);
  out.set_applied_commit_unix_micros(p.applied_commit);
  out.set_tenant_created_unix_micros(p.created);
  out.set_primary_latest_seq(std::max(p.primary_seq, p.applied_seq));
  out.set_primary_latest_commit_unix_micros(
      std::max(p.primary_commit, p.applied_commit));
  out.set_rejoining(p.rejoining);
  out.set_rejoin_latest_seq(p.local_latest);
  return out;
}

Status ReplicaServerImpl::LoadPosition(
    const std::shared_ptr<TenantSlot>& slot) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (positions_.count(slot->id) != 0) return Status::OK();
  }
  Position p;
  std::error_code ec;
  if (!std::filesystem::exists(
          std::filesystem::path(cluster_->dir()) / kTenantsDir / slot->id /
              kTenantDbDir,
          ec) &&
      !ec) {
    // Never written here: nothing applied, no need to create it now.
    p.created = ClusterImpl::BodyOf(*slot).created_unix_micros();
    std::lock_guard<std::mutex> lock(mu_);
    positions_.emplace(slot->id, std::move(p));
    return Status::OK();
  }
  std::shared_ptr<TenantDb> db;
  Status s = cluster_->Pin(slot, &db);
  if (!s.ok()) return s;
  uint64_t stored_heard_seq = 0;
  uint64_t stored_heard_commit = 0;
  replpb::TenantPosition stored;
  bool found = false;
  s = ReadReplicaPosition(*db, slot->id, &stored, &found);
  if (!s.ok()) return s;
  if (found) {
    p.applied_seq = stored.applied_seq();
    p.chain = stored.chain_hash();
    p.epoch = stored.epoch();
    p.applied_commit = stored.applied_commit_unix_micros();
    stored_heard_seq = stored.primary_latest_seq();
    stored_heard_commit = stored.primary_latest_commit_unix_micros();
  }
  p.primary_seq = std::max(p.applied_seq, stored_heard_seq);
  p.primary_commit = std::max(p.applied_commit, stored_heard_commit);
  p.created = ClusterImpl::BodyOf(*slot).created_unix_micros();
  const uint64_t rejoin_epoch = cluster_->rejoin_from_epoch();
  // A tenant with no writes of its own has nothing to reconcile.
  if (rejoin_epoch != 0 && (!found || p.epoch <= rejoin_epoch) &&
      db->db()->GetLatestSequenceNumber() > 0) {
    p.rejoining = true;
    p.local_latest = db->db()->GetLatestSequenceNumber();
    p.applied_seq = 0;
    p.chain.clear();
  }
  std::lock_guard<std::mutex> lock(mu_);
  positions_.emplace(slot->id, std::move(p));
  return Status::OK();
}

Status ReplicaServerImpl::Positions(replpb::HelloReply* reply) {
  for (const auto& slot : cluster_->LiveSlots()) {
    if (slot->revoked.load()) continue;  // offline: cannot be read
    Status s = LoadPosition(slot);
    if (!s.ok()) return s;
    std::lock_guard<std::mutex> lock(mu_);
    *reply->add_positions() = ToProto(slot->id, positions_[slot->id]);
  }
  return Status::OK();
}

Status ReplicaServerImpl::ApplyBatches(
    const std::vector<replpb::Batch>& group) {
  const std::string& id = group.front().tenant();
  std::shared_ptr<TenantSlot> slot = cluster_->FindSlot(id);
  if (slot == nullptr) {
    return Status::InvalidArgument("batch for tenant '" + id.substr(0, 80) +
                                   "', which this replica does not hold");
  }
  Status s = LoadPosition(slot);
  if (!s.ok()) return s;
  Position p;
  {
    std::lock_guard<std::mutex> lock(mu_);
    p = positions_[id];
  }
  const std::string context = "batch for tenant '" + id + "'";
  if (p.reseeding) {
    return Status::InvalidArgument(context + " arrived during its reseed");
  }
  if (p.rejoining) {
    return Status::InvalidArgument(context +
                                   " arrived before its fork was reconciled");
  }
  std::shared_ptr<TenantDb> db;
  s = cluster_->Pin(slot, &db);
  // A tenant stopped by a storage error (a full disk) resumes once the
  // cause is gone, as on a primary.
  if (s.ok() && db->stopped()) s = cluster_->ResumeTenant(slot, &db);
  if (!s.ok()) return s;
  // Every batch is checked against the position the ones before it reach;
  // all of them and the final position then go in one atomic write.
  Position next = p;
  std::vector<const replpb::Batch*> apply;
  bool filter = false;
  uint64_t bytes = 0;
  for (const replpb::Batch& b : group) {
    if (b.tenant() != id) {
      return Status::InvalidArgument("batch group mixes tenants");
    }
    if (b.epoch() < next.epoch) {
      return Status::Fenced(context + " is from epoch " +
                            std::to_string(b.epoch()) + ", below the applied " +
                            std::to_string(next.epoch));
    }
    if (b.epoch() > cluster_->epoch()) {
      // The session's epoch was settled at the handshake; a primary that
      // moved on since reconnects with a new Hello.
      return Status::InvalidArgument(
          context + " claims epoch " + std::to_string(b.epoch()) +
          ", above the session's " + std::to_string(cluster_->epoch()));
    }
    if (b.count() == 0 || b.first_seq() == 0) {
      return Status::InvalidArgument(context +
                                     " consumes no sequence numbers");
    }
    if (b.count() - 1 > UINT64_MAX - b.first_seq()) {
      return Status::InvalidArgument(context + " has a sequence range past 2^64");
    }
    if (b.merged() > b.count()) {
      return Status::InvalidArgument(
          context + " claims " + std::to_string(b.merged()) +
          " merged batches but consumes " + std::to_string(b.count()) +
          " sequence numbers");
    }
    const uint64_t end = b.first_seq() + b.count() - 1;
    if (end <= next.applied_seq) continue;  // a resend: acknowledged again
    if (b.first_seq() != next.applied_seq + 1) {
      return Status::InvalidArgument(
          context + " starts at sequence " + std::to_string(b.first_seq()) +
          " but the replica has applied up to " +
          std::to_string(next.applied_seq) + "; nothing applied");
    }
    if (b.prev_chain_hash() != next.chain) {
      return Status::InvalidArgument(context + " at sequence " +
                                     std::to_string(b.first_seq()) +
                                     " does not continue the replica's chain");
    }
    BatchSummary summary;
    s = InspectBatch(b.data(), &summary);
    if (!s.ok()) return Status::Corruption(context + ": " + s.message());
    if (summary.count != b.count()) {
      return Status::Corruption(context + " claims " +
                                std::to_string(b.count()) +
                                " operations but holds " +
                                std::to_string(summary.count));
    }
    if (summary.max_column_family > db->system()->GetID() ||
        summary.system_range_delete) {
      return Status::InvalidArgument(
          context + " writes outside the tenant's column families");
    }
    filter |= summary.touches_replication_records;
    next.applied_seq = end;
    next.chain = ChainHash(next.chain, b.first_seq(), b.count(), b.data());
    next.epoch = b.epoch();
    next.applied_commit = b.commit_unix_micros();
    next.primary_seq = std::max({next.primary_seq, b.primary_latest_seq(), end});
    next.primary_commit =
        std::max({next.primary_commit, b.primary_latest_commit_unix_micros(),
                  b.commit_unix_micros()});
    bytes += b.data().size();
    apply.push_back(&b);
  }
  if (apply.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.insert(id);
    return Status::OK();
  }
  rocksdb::WriteBatch wb;
  if (filter) {
    // A former replica's log also holds its own replication records: those
    // stay behind.
    RecordFilter records(&wb, {db->db()->DefaultColumnFamily(), db->system()});
    for (const replpb::Batch* b : apply) {
      rocksdb::Status fs = rocksdb::WriteBatch(b->data()).Iterate(&records);
      if (!fs.ok()) return FromRocks(fs, context);
    }
  } else {
    // Concatenated representations: one header (its count the sum), then
    // every batch's records in order.
    std::string rep = apply.front()->data();
    for (size_t i = 1; i < apply.size(); ++i) {
      s = AppendBatch(&rep, apply[i]->data());
      if (!s.ok()) return Status::InvalidArgument(context + ": " + s.message());
    }
    wb = rocksdb::WriteBatch(std::move(rep));
  }
  rocksdb::Status rs = wb.Put(db->system(), kReplicaPositionKey,
                              ToProto(id, next).SerializeAsString());
  if (rs.ok()) rs = db->db()->Write(rocksdb::WriteOptions(), &wb);
  if (!rs.ok()) return FromRocks(rs, context);
  db->AddUnflushed(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  positions_[id] = next;
  pending_.insert(id);
  for (const replpb::Batch* b : apply) {
    batches_ += std::max<uint32_t>(1, b->merged());
  }
  bytes_ += bytes;
  return Status::OK();
}

Status ReplicaServerImpl::FlushAcks(TlsChannel* channel) {
  std::set<std::string> ids;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ids.swap(pending_);
  }
  // Every tenant's acknowledgement goes out in one write.
  std::string frames;
  for (const std::string& id : ids) {
    std::shared_ptr<TenantSlot> slot = cluster_->FindSlot(id);
    if (slot == nullptr) continue;
    std::shared_ptr<TenantDb> db;
    Status s = cluster_->Pin(slot, &db);
    if (s.ok())
      s = FromRocks(db->db()->SyncWAL(), "sync of tenant '" + id + "'");
    if (!s.ok()) return s;
    if (channel == nullptr) continue;
    replpb::Envelope ack;
    {
      std::lock_guard<std::mutex> lock(mu_);
      *ack.mutable_ack()->mutable_position() = ToProto(id, positions_[id]);
    }
    s = EncodeFrame(ack.SerializeAsString(), &frames);
    if (!s.ok()) return s;
  }
  if (frames.empty()) return Status::OK();
  return channel->SendFrames(frames);
}

Status ReplicaServerImpl::ApplyEvent(const replpb::TenantEvent& e,
                                     const std::string& primary) {
  const std::string& id = e.tenant();
  Status s = ValidateId("tenant", id);
  if (!s.ok()) return Status::InvalidArgument("tenant event: " + s.message());
  if (e.kind() == replpb::TenantEvent::DROP) {
    if (std::shared_ptr<TenantSlot> slot = cluster_->FindSlot(id)) {
      s = SaveBeforeDiscard(slot, "dropped on the new primary");
      if (!s.ok()) return s;
    }
    DropReport report;
    s = cluster_->DropReplicatedTenant(id, &report);
    if (s.IsNotFound()) return Status::OK();  // already gone
    {
      std::lock_guard<std::mutex> lock(mu_);
      positions_.erase(id);
    }
    Log("tenant '" + id + "' dropped (crypto-shred) as on the primary");
    return cluster_->RecordAudit(
        "tenant.drop", TenantTarget(id), s,
        "replicated from primary '" + primary + "': crypto-shred, " +
            std::to_string(report.key_versions_destroyed.size()) +
            " key versions destroyed, " + std::to_string(report.files_removed) +
            " files removed");
  }
  if (e.kind() != replpb::TenantEvent::CREATE &&
      e.kind() != replpb::TenantEvent::KEYS) {
    return Status::InvalidArgument("tenant event of unknown kind " +
                                   std::to_string(e.kind()));
  }
  catalogpb::TenantBody body;
  if (!body.ParseFromString(e.tenant_body()) || body.tenant_id() != id) {
    return Status::Corruption("record of tenant '" + id +
                              "' from the primary does not parse");
  }
  std::shared_ptr<TenantSlot> existing = cluster_->FindSlot(id);
  if (existing != nullptr && ClusterImpl::BodyOf(*existing).created_unix_micros() !=
                                 body.created_unix_micros()) {
    // Dropped and created again on the primary while this replica was not
    // told: the old tenant goes (crypto-shred) before the new one arrives.
    s = SaveBeforeDiscard(existing, "replaced by another tenant of this id");
    if (!s.ok()) return s;
    DropReport report;
    s = cluster_->DropReplicatedTenant(id, &report);
    {
      std::lock_guard<std::mutex> lock(mu_);
      positions_.erase(id);
    }
    s = cluster_->RecordAudit(
        "tenant.drop", TenantTarget(id), s,
        "replicated from primary '" + primary +
            "': an earlier tenant of this id was dropped there; crypto-shred, " +
            std::to_string(report.files_removed) + " files removed");
    if (!s.ok()) return s;
  }
  std::string what;
  s = cluster_->ApplyReplicatedTenant(body, primary, &what);
  if (s.ok() && what == "unchanged") return s;
  return cluster_->RecordAudit("replication.tenant", TenantTarget(id), s,
                               "from primary '" + primary + "': " + what);
}

Status ReplicaServerImpl::SeedBegin(const replpb::SeedBegin& begin) {
  AbandonSeed();
  std::shared_ptr<TenantSlot> slot = cluster_->FindSlot(begin.tenant());
  if (slot == nullptr) {
    return Status::InvalidArgument("reseed of tenant '" +
                                   begin.tenant().substr(0, 80) +
                                   "', which this replica does not hold");
  }
  seed_ = Seed();
  seed_.tenant = begin.tenant();
  seed_.epoch = begin.epoch();
  seed_.commit = begin.commit_unix_micros();
  seed_.dir = fs::path(cluster_->dir()) / kTenantsDir / seed_.tenant / kSeedDir;
  std::error_code ec;
  fs::remove_all(seed_.dir, ec);
  fs::create_directories(seed_.dir, ec);
  if (ec) {
    return Status::IOError("cannot create " + seed_.dir.string() + ": " +
                           ec.message());
  }
  std::lock_guard<std::mutex> lock(mu_);
  positions_[seed_.tenant].reseeding = true;
  return Status::OK();
}

Status ReplicaServerImpl::SeedChunk(const replpb::SeedChunk& c) {
  if (seed_.tenant.empty() || c.tenant() != seed_.tenant) {
    return Status::InvalidArgument("reseed data for tenant '" +
                                   c.tenant().substr(0, 80) +
                                   "' outside its reseed");
  }
  if (!ValidSeedFileName(c.file())) {
    return Status::InvalidArgument("reseed file name '" +
                                   c.file().substr(0, 80) + "' is not allowed");
  }
  if (c.file() != seed_.file) {
    if (c.offset() != 0) {
      return Status::InvalidArgument("reseed file " + c.file() +
                                     " does not start at offset 0");
    }
    if (seed_.fd >= 0) {
      if (::fsync(seed_.fd) != 0)
        return Status::IOError("fsync of reseed file");
      ::close(seed_.fd);
    }
    const fs::path path = seed_.dir / c.file();
    seed_.fd =
        ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (seed_.fd < 0) {
      return Status::IOError("cannot create " + path.string() + ": " +
                             std::strerror(errno));
    }
    seed_.file = c.file();
    seed_.file_bytes = 0;
    seed_.files++;
  }
  if (c.offset() != seed_.file_bytes) {
    return Status::InvalidArgument("reseed file " + c.file() + " chunk at " +
                                   std::to_string(c.offset()) + ", expected " +
                                   std::to_string(seed_.file_bytes));
  }
  Status w = WriteAll(seed_.fd, (seed_.dir / c.file()).string(), c.data());
  if (!w.ok()) return w;
  seed_.file_bytes += c.data().size();
  seed_.bytes += c.data().size();
  return Status::OK();
}

Status ReplicaServerImpl::SeedEnd(TlsChannel* channel,
                                  const replpb::SeedEnd& end) {
  const std::string id = seed_.tenant;
  if (id.empty() || end.tenant() != id) {
    return Status::InvalidArgument("end of a reseed that did not begin");
  }
  if (end.files() != seed_.files || end.bytes() != seed_.bytes) {
    return Status::Corruption(
        "reseed of tenant '" + id + "' ended with " +
        std::to_string(seed_.files) + " files / " +
        std::to_string(seed_.bytes) + " bytes, the primary sent " +
        std::to_string(end.files()) + " / " + std::to_string(end.bytes()));
  }
  if (seed_.fd >= 0) {
    if (::fsync(seed_.fd) != 0) return Status::IOError("fsync of reseed file");
    ::close(seed_.fd);
    seed_.fd = -1;
  }
  Status s = SyncDir(seed_.dir.string());
  std::shared_ptr<TenantSlot> slot = cluster_->FindSlot(id);
  if (slot == nullptr) return Status::NotFound("tenant '" + id + "' is gone");
  // Open the staged checkpoint with the tenant's keys, record its position
  // in it, and only then mark it complete.
  Position p;
  {
    std::shared_ptr<Keyring> keyring;
    if (s.ok())
      s = cluster_->BuildKeyring(id, ClusterImpl::BodyOf(*slot), &keyring);
    std::unique_ptr<TenantDb> staged;
    if (s.ok()) {
      s = TenantDb::Open(id, seed_.dir.string(), keyring, false,
                         cluster_->shared(), &staged);
    }
    if (!s.ok()) {
      return Status::Corruption("reseed of tenant '" + id +
                                "' does not open: " + s.message());
    }
    p.applied_seq = staged->db()->GetLatestSequenceNumber();
    p.chain = SeedChainHash(p.applied_seq);
    p.epoch = seed_.epoch;
    p.applied_commit = seed_.commit;
    p.primary_seq = p.applied_seq;
    p.primary_commit = seed_.commit;
    p.created = ClusterImpl::BodyOf(*slot).created_unix_micros();
    rocksdb::WriteOptions wo;
    wo.sync = true;
    // The sender's own replication records stay behind.
    rocksdb::WriteBatch records;
    rocksdb::Status rs = records.Put(staged->system(), kReplicaPositionKey,
                                     ToProto(id, p).SerializeAsString());
    if (rs.ok()) rs = records.Delete(staged->system(), kForkPointKey);
    if (rs.ok()) rs = staged->db()->Write(wo, &records);
    s = FromRocks(rs, "position of reseeded tenant '" + id + "'");
    if (!s.ok()) return s;
  }
  s = WriteRecordFile((seed_.dir / kSeededMarker).string(), "seeded");
  if (s.ok()) s = SyncDir(seed_.dir.string());
  if (!s.ok()) return s;
  // The reopen closes the old database and installs the staged one.
  s = cluster_->registry()->Reopen(slot, kInstallWait);
  if (!s.ok()) return s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t reseeds = positions_[id].reseeds + 1;
    p.reseeds = reseeds;
    positions_[id] = p;
    pending_.erase(id);
    reseeds_++;
  }
  const uint64_t files = seed_.files, bytes = seed_.bytes;
  seed_ = Seed();
  Log("tenant '" + id + "' reseeded at sequence " +
      std::to_string(p.applied_seq));
  s = cluster_->RecordAudit(
      "replication.reseed", TenantTarget(id), Status::OK(),
      "installed the primary's checkpoint at sequence " +
          std::to_string(p.applied_seq) + " (" + std::to_string(files) +
          " files, " + std::to_string(bytes) + " bytes of ciphertext)");
  if (!s.ok()) return s;
  replpb::Envelope ack;
  *ack.mutable_ack()->mutable_position() = ToProto(id, p);
  ack.mutable_ack()->set_seeded(true);
  return channel->Send(ack);
}

Status ReplicaServerImpl::SaveBeforeDiscard(
    const std::shared_ptr<TenantSlot>& slot, const std::string& why) {
  Status s = LoadPosition(slot);
  if (!s.ok()) return s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!positions_[slot->id].rejoining) return Status::OK();
  }
  std::string path;
  uint64_t entries = 0;
  s = ExportRollback(slot, 0, cluster_->epoch(), &path, &entries);
  if (!s.ok()) return s;
  Log("tenant '" + slot->id + "' " + why + ": its data is saved in " + path);
  return cluster_->RecordAudit(
      "replication.rollback", TenantTarget(slot->id), Status::OK(),
      "rejoin: " + why + "; " + std::to_string(entries) +
          " entries saved to " + path);
}

Status ReplicaServerImpl::ExportRollback(
    const std::shared_ptr<TenantSlot>& slot, uint64_t after_seq,
    uint64_t epoch, std::string* path, uint64_t* entries) {
  std::shared_ptr<TenantDb> db;
  Status s = cluster_->Pin(slot, &db);
  if (!s.ok()) return s;
  const uint64_t latest = db->db()->GetLatestSequenceNumber();
  replpb::RollbackHeader header;
  header.set_tenant(slot->id);
  header.set_cluster_id(cluster_->cluster_id());
  header.set_new_primary(cluster_->primary_cluster_id());
  header.set_epoch(epoch);
  header.set_fork_seq(after_seq);
  header.set_local_latest_seq(latest);
  std::unique_ptr<RollbackWriter> writer;
  // First choice: the writes themselves, batch by batch, from the log.
  if (after_seq > 0) {
    header.set_kind("batches");
    s = RollbackWriter::Create(cluster_->dir(), header, cluster_->keys(),
                               cluster_->master_key_id(), &writer);
    if (!s.ok()) return s;
    WalTailer tailer(db->db());
    uint64_t next = after_seq + 1;
    while (s.ok() && next <= latest) {
      std::vector<CommittedBatch> batches;
      s = tailer.Read(next, size_t{4} << 20, &batches);
      if (s.ok() && batches.empty()) s = Status::NotFound("gap: empty read");
      for (CommittedBatch& b : batches) {
        if (!s.ok()) break;
        BatchSummary summary;
        InspectBatch(b.data, &summary).PermitUncheckedError();
        replpb::RollbackEntry e;
        e.set_seq(b.first_seq);
        e.set_commit_unix_micros(summary.commit_micros);
        next = b.first_seq + b.count;
        e.set_batch(std::move(b.data));
        s = writer->Add(std::move(e));
      }
    }
    if (s.ok()) {
      *entries = writer->entries();
      return writer->Finish(path);
    }
    if (!IsWalGap(s) && !s.IsNotFound()) return s;
    writer.reset();  // the log was purged: fall back to the contents
  }
  header.set_kind("snapshot");
  s = RollbackWriter::Create(cluster_->dir(), header, cluster_->keys(),
                             cluster_->master_key_id(), &writer);
  if (!s.ok()) return s;
  std::unique_ptr<rocksdb::Iterator> it(db->db()->NewIterator(
      rocksdb::ReadOptions(), db->db()->DefaultColumnFamily()));
  for (it->SeekToFirst(); s.ok() && it->Valid(); it->Next()) {
    replpb::RollbackEntry e;
    e.set_key(it->key().ToString());
    e.set_value(it->value().ToString());
    s = writer->Add(std::move(e));
  }
  if (s.ok() && !it->status().ok()) {
    s = FromRocks(it->status(), "reading tenant '" + slot->id + "'");
  }
  it.reset();
  if (!s.ok()) return s;
  *entries = writer->entries();
  return writer->Finish(path);
}

Status ReplicaServerImpl::EmptyTenant(const std::shared_ptr<TenantSlot>& slot) {
  // An empty stage marked complete: the reopen installs it (see
  // FinishSeedInstall), and RocksDB creates a new database there.
  const fs::path stage =
      fs::path(cluster_->dir()) / kTenantsDir / slot->id / kSeedDir;
  std::error_code ec;
  fs::remove_all(stage, ec);
  fs::create_directories(stage, ec);
  if (ec) return Status::IOError("cannot create " + stage.string());
  Status s = WriteRecordFile((stage / kSeededMarker).string(), "emptied");
  if (s.ok()) s = SyncDir(stage.string());
  if (s.ok()) s = SyncDir(stage.parent_path().string());
  if (s.ok()) s = cluster_->registry()->Reopen(slot, kInstallWait);
  return s;
}

Status ReplicaServerImpl::PromoteBySwitchover(TlsChannel* channel,
                                              const replpb::Promote& request) {
  replpb::Envelope answer;
  replpb::PromoteReply* reply = answer.mutable_promote_reply();
  std::string refusal;
  std::vector<TenantLossReceipt> receipts;
  for (const replpb::TenantPosition& final : request.finals()) {
    std::shared_ptr<TenantSlot> slot = cluster_->FindSlot(final.tenant());
    Status s = slot == nullptr
                   ? Status::NotFound("tenant '" + final.tenant() +
                                      "' is not on this replica")
                   : LoadPosition(slot);
    if (!s.ok()) {
      refusal = s.ToString();
      break;
    }
    std::lock_guard<std::mutex> lock(mu_);
    const Position& p = positions_[final.tenant()];
    if (p.applied_seq != final.applied_seq() || p.reseeding || p.rejoining) {
      refusal = "tenant '" + final.tenant() + "' is at sequence " +
                std::to_string(p.applied_seq) + ", the primary's final is " +
                std::to_string(final.applied_seq());
      break;
    }
    TenantLossReceipt r;
    r.tenant = final.tenant();
    r.promoted_at_seq = p.applied_seq;
    r.promoted_at_commit_unix_micros = p.applied_commit;
    r.primary_seq_heard = p.applied_seq;
    r.primary_commit_heard_unix_micros = p.applied_commit;
    receipts.push_back(std::move(r));
  }
  if (refusal.empty()) {
    promoting_ = true;
    PromotionReport report;
    Status s = cluster_->FinishPromotion(std::move(receipts), "switchover",
                                         &report);
    promoting_ = false;
    if (s.ok()) {
      reply->set_ok(true);
      reply->set_epoch(report.new_epoch);
      promoted_by_switchover_ = true;
    } else {
      refusal = s.ToString();
    }
  }
  if (!refusal.empty()) {
    reply->set_ok(false);
    reply->set_reason(refusal);
    Log("switchover refused: " + refusal);
  }
  return channel->Send(answer);
}

Status ReplicaServerImpl::Reconcile(TlsChannel* channel,
                                    const replpb::Fork& fork) {
  const std::string& id = fork.tenant();
  std::shared_ptr<TenantSlot> slot = cluster_->FindSlot(id);
  if (slot == nullptr) {
    return Status::InvalidArgument("fork for tenant '" + id.substr(0, 80) +
                                   "', which this replica does not hold");
  }
  Status s = LoadPosition(slot);
  if (!s.ok()) return s;
  Position p;
  {
    std::lock_guard<std::mutex> lock(mu_);
    p = positions_[id];
  }
  if (p.rejoining) {
    Position next;
    next.created = p.created;
    next.epoch = fork.epoch();
    std::string detail;
    if (fork.has_fork() && p.local_latest == fork.old_seq()) {
      // Same history up to the fork: continue in the new primary's
      // numbering, no reseed.
      next.applied_seq = fork.local_seq();
      next.chain = SeedChainHash(fork.local_seq());
      next.applied_commit = fork.local_commit_unix_micros();
      detail = "history matches up to sequence " +
               std::to_string(fork.old_seq()) +
               "; resumed without a reseed at the new primary's sequence " +
               std::to_string(fork.local_seq());
    } else {
      const uint64_t after = fork.has_fork() ? fork.old_seq() : 0;
      std::string path;
      uint64_t entries = 0;
      if (p.local_latest > after) {
        s = ExportRollback(slot, after, fork.epoch(), &path, &entries);
        if (!s.ok()) return s;
      }
      s = EmptyTenant(slot);
      if (!s.ok()) return s;
      detail = p.local_latest > after
                   ? std::to_string(p.local_latest - after) +
                         " sequences written here after the fork (sequence " +
                         std::to_string(after) + ") saved to " + path + " (" +
                         std::to_string(entries) + " entries)"
                   : "behind the fork (sequence " +
                         std::to_string(p.local_latest) + " < " +
                         std::to_string(after) + "), nothing to save";
      detail += "; tenant emptied, taken again from the new primary";
    }
    std::shared_ptr<TenantDb> db;
    s = cluster_->Pin(slot, &db);
    rocksdb::WriteOptions wo;
    wo.sync = true;
    if (s.ok()) {
      s = FromRocks(db->db()->Put(wo, db->system(), kReplicaPositionKey,
                                  ToProto(id, next).SerializeAsString()),
                    "position of tenant '" + id + "'");
    }
    if (!s.ok()) return s;
    next.primary_seq = next.applied_seq;
    next.primary_commit = next.applied_commit;
    {
      std::lock_guard<std::mutex> lock(mu_);
      positions_[id] = next;
      p = next;
    }
    Log("tenant '" + id + "' rejoined: " + detail);
    s = cluster_->RecordAudit("replication.rejoin", TenantTarget(id),
                              Status::OK(), detail);
    if (!s.ok()) return s;
  }
  replpb::Envelope ack;
  *ack.mutable_ack()->mutable_position() = ToProto(id, p);
  ack.mutable_ack()->set_seeded(true);
  return channel->Send(ack);
}

void ReplicaServerImpl::AbandonSeed() {
  if (seed_.fd >= 0) ::close(seed_.fd);
  if (!seed_.tenant.empty()) {
    std::error_code ec;
    fs::remove_all(seed_.dir, ec);
    std::lock_guard<std::mutex> lock(mu_);
    auto it = positions_.find(seed_.tenant);
    if (it != positions_.end()) it->second.reseeding = false;
  }
  seed_ = Seed();
}

void ReplicaServerImpl::FillStatus(ReplicationStatus* status) {
  const std::vector<std::shared_ptr<TenantSlot>> slots = cluster_->LiveSlots();
  *status = ReplicationStatus();
  cluster_->FillFailoverStatus(status);
  status->as_of_unix_micros = NowMicros();
  status->peer_address = listening_on_;
  std::lock_guard<std::mutex> lock(mu_);
  status->connection = connected_ ? "connected" : "listening";
  status->peer_cluster_id =
      peer_.empty() ? cluster_->primary_cluster_id() : peer_;
  status->last_error = last_error_;
  status->batches = batches_;
  status->bytes = bytes_;
  status->reseeds = reseeds_;
  status->connects = connects_;
  for (const auto& slot : slots) {
    TenantReplicationStatus t;
    t.tenant = slot->id;
    auto it = positions_.find(slot->id);
    if (it == positions_.end()) {
      t.state = "unknown";  // not loaded yet: no primary connected so far
      status->tenants.push_back(std::move(t));
      continue;
    }
    const Position& p = it->second;
    t.applied_seq = p.applied_seq;
    t.primary_seq = std::max(p.primary_seq, p.applied_seq);
    t.lag_seqs = t.primary_seq - t.applied_seq;
    t.applied_commit_unix_micros = p.applied_commit;
    t.primary_commit_unix_micros = std::max(p.primary_commit, p.applied_commit);
    if (t.lag_seqs > 0) {
      t.lag_seconds =
          (t.primary_commit_unix_micros - t.applied_commit_unix_micros) / 1e6;
    }
    t.reseeds = p.reseeds;
    if (p.reseeding) {
      t.state = "reseeding";
    } else if (!connected_) {
      t.state = "waiting";
    } else {
      t.state = t.lag_seqs == 0 ? "caught-up" : "streaming";
    }
    status->tenants.push_back(std::move(t));
  }
}

}  // namespace

Status ReplicaServer::Start(Cluster* cluster,
                            const ReplicaServerOptions& options,
                            std::unique_ptr<ReplicaServer>* result) {
  auto* impl = dynamic_cast<ClusterImpl*>(cluster);
  if (impl == nullptr) return Status::InvalidArgument("not a Coffer cluster");
  const std::string paired = impl->primary_cluster_id();
  if (!options.primary_cluster_id.empty() && !paired.empty() &&
      options.primary_cluster_id != paired) {
    // Serving would refuse the very primary asked for, on every connection.
    return Status::InvalidArgument(
        "cluster '" + impl->cluster_id() + "' is the replica of '" + paired +
        "', not of '" + options.primary_cluster_id +
        "' (the primary id given to serve it)");
  }
  auto server = std::make_unique<ReplicaServerImpl>(impl, options);
  Status s = server->Init();
  if (!s.ok()) return s;
  *result = std::move(server);
  return Status::OK();
}

}  // namespace coffer
