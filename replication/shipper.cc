// Copyright (c) Coffer authors.

#include "replication/shipper.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <vector>

#include "engine/clock.h"
#include "engine/cluster_impl.h"
#include "engine/thread_name.h"
#include "replication/admin_channel.h"
#include "replication/batch_inspect.h"
#include "rocksdb/db.h"
#include "replication/chain.h"
#include "replication/status_file.h"
#include "replication/tls_channel.h"
#include "replication/wal_tailer.h"
#include "rocksdb/utilities/checkpoint.h"

namespace coffer {

namespace {

namespace fs = std::filesystem;

constexpr uint32_t kProtocolVersion = 1;
constexpr int kHelloTimeoutMs = 10000;
constexpr int kMaxReconnectDelayMs = 5000;
constexpr auto kHeartbeatInterval = std::chrono::seconds(1);
constexpr size_t kSeedChunkBytes = size_t{1} << 20;
constexpr char kCheckpointDir[] = "checkpoint";
constexpr auto kHotHold = std::chrono::milliseconds(10000);
constexpr auto kHotIdle = std::chrono::milliseconds(200);
// How long a round that caught up waits before the next (see Session).
constexpr auto kLinger = std::chrono::microseconds(1000);
// How long a sequence missing from the CommitQueue is waited for while
// writers are still pushing, before it is read from the log. A writer
// descheduled between its commit and its push (a few ms on a busy machine)
// must not send the stream to the log: reading the log's tail again starts
// from the beginning of its current file.
constexpr auto kGapWait = std::chrono::milliseconds(50);

}  // namespace

Shipper::Shipper(ClusterImpl* cluster, ReplicationOptions options)
    : cluster_(cluster),
      options_(std::move(options)),
      queue_budget_(std::make_shared<CommitQueueBudget>(
          static_cast<int64_t>(options_.commit_queue_bytes))) {}

Shipper::~Shipper() { Stop(); }

Status Shipper::Start() {
  std::string host;
  int port = 0;
  Status s = ParseAddress(options_.replica_address, &host, &port);
  if (!s.ok()) return s;
  TlsConfig config{options_.tls.cert_file, options_.tls.key_file,
                   options_.tls.ca_file};
  s = TlsContext::Create(config, /*server=*/false, &tls_);
  if (!s.ok()) return s;
  // Until the replica reports its positions, the last ones this cluster
  // wrote down stand in (so a restarted primary does not report lag 0).
  ReplicationStatus last;
  if (ReadReplicationStatusFile(cluster_->dir(), &last).ok() &&
      last.role == "primary") {
    std::lock_guard<std::mutex> lock(mu_);
    for (const TenantReplicationStatus& t : last.tenants) {
      Stream& st = streams_[t.tenant];
      st.acked_seq = t.applied_seq;
      st.acked_commit = t.applied_commit_unix_micros;
      st.primary_seq = t.primary_seq;
      st.primary_commit = t.primary_commit_unix_micros;
      st.known = true;
    }
  }
  status_writer_ = std::make_unique<StatusFileWriter>(
      cluster_->dir(), [this](ReplicationStatus* st) { FillStatus(st); });
  // `coffer switchover` reaches this process here.
  s = AdminListener::Start(
      cluster_->dir(),
      [this](const replpb::AdminRequest& request,
             replpb::AdminResponse* response) {
        HandleAdmin(request, response);
      },
      &admin_);
  if (!s.ok()) {
    status_writer_.reset();
    return s;
  }
  thread_ = std::thread([this] { Run(); });
  if (!cluster_->switchover_to().empty()) {
    // A switchover was under way when this primary stopped: finish it as
    // soon as the replica is connected (writes stay off meanwhile).
    resume_switchover_ = std::thread([this] {
      for (;;) {
        {
          std::unique_lock<std::mutex> lock(mu_);
          cv_.wait_for(lock, std::chrono::milliseconds(100),
                       [this] { return stopping() || connected_; });
          if (stopping()) return;
          if (!connected_) continue;
        }
        SwitchoverReport report;
        Status s = cluster_->Switchover(&report);
        if (s.ok() || cluster_->is_replica() || stopping()) return;
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, std::chrono::seconds(1),
                     [this] { return stopping(); });
      }
    });
  }
  return Status::OK();
}

void Shipper::Stop() {
  admin_.reset();
  stop_ = true;
  cv_.notify_all();
  if (resume_switchover_.joinable()) resume_switchover_.join();
  if (thread_.joinable()) thread_.join();
  status_writer_.reset();  // writes a last "stopped" status
  for (const auto& slot : cluster_->LiveSlots()) slot->commits.Clear();
}

void Shipper::Queue(TenantSlot& slot, const rocksdb::WriteBatch& committed,
                    uint64_t commit_micros) {
  if (options_.commit_queue_bytes == 0) return;
  slot.commits.Push(queue_budget_, committed.Data(), commit_micros);
}

void Shipper::NotifyWrite(TenantSlot& slot) {
  if (slot.repl_dirty.exchange(true)) return;  // already queued
  {
    std::lock_guard<std::mutex> lock(mu_);
    dirty_.insert(slot.id);
  }
  cv_.notify_all();
}

void Shipper::NotifyTenantChanged(const std::string& id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    changed_.insert(id);
    dirty_.insert(id);
  }
  cv_.notify_all();
}

void Shipper::SetConnection(const std::string& state,
                            const std::string& error) {
  std::string previous_error;
  {
    std::lock_guard<std::mutex> lock(mu_);
    connection_ = state;
    connected_ = state == "connected";
    previous_error = last_error_;
    if (!error.empty()) last_error_ = error;
  }
  // Each distinct failure is recorded once, not once per retry.
  if (!error.empty() && error != previous_error && state != "fenced") {
    cluster_
        ->RecordAudit(state == "refused" ? "replication.refused"
                                         : "replication.disconnected",
                      "peer:" + options_.replica_address,
                      Status::IOError(error), "")
        .PermitUncheckedError();
  }
}

void Shipper::Survey() {
  // Each tenant's latest sequence, exactly (an open reads it), for the lag
  // a primary reports before (or without) its replica.
  for (const auto& slot : cluster_->LiveSlots()) {
    if (stopping()) return;
    if (slot->seq_known.load() || slot->revoked.load()) continue;
    std::shared_ptr<TenantDb> db;
    if (!cluster_->Pin(slot, &db).ok()) continue;
    const uint64_t latest = db->db()->GetLatestSequenceNumber();
    std::lock_guard<std::mutex> lock(mu_);
    Stream& st = streams_[slot->id];
    st.primary_seq = std::max(st.primary_seq, latest);
    st.known = true;
  }
}

void Shipper::Run() {
  NameThisThread("coffer-ship");
  KeepSigpipeBlocked();
  int delay = std::max<uint32_t>(options_.reconnect_delay_ms, 10);
  bool surveyed = false;
  while (!stopping()) {
    if (cluster_->is_replica()) {
      SetConnection("switched-over", "");  // the replica is the primary now
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping(); });
      break;
    }
    if (cluster_->fenced()) {
      // A fenced primary ships nothing: its replica has moved on.
      SetConnection("fenced", "");
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping(); });
      break;
    }
    const auto started = std::chrono::steady_clock::now();
    Status s = Session();
    if (stopping()) break;
    if (!surveyed && !s.ok()) {
      Survey();  // the replica is away: learn what it lacks meanwhile
      surveyed = true;
    }
    if (s.IsFenced()) {
      SetConnection("fenced", s.ToString());
      continue;
    }
    if (!s.ok()) {
      SetConnection(s.IsPermissionDenied() ? "refused" : "connecting",
                    s.ToString());
    }
    // A session that ran a while earns a quick reconnect.
    if (std::chrono::steady_clock::now() - started > std::chrono::seconds(10)) {
      delay = std::max<uint32_t>(options_.reconnect_delay_ms, 10);
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(delay),
                 [this] { return stopping(); });
    delay = std::min(delay * 2, kMaxReconnectDelayMs);
  }
  std::lock_guard<std::mutex> lock(mu_);
  connected_ = false;
  connection_ = "stopped";
}

Status Shipper::Handshake(TlsChannel* channel, replpb::HelloReply* reply) {
  replpb::Envelope hello;
  replpb::Hello* h = hello.mutable_hello();
  h->set_protocol_version(kProtocolVersion);
  h->set_cluster_id(cluster_->cluster_id());
  h->set_region(cluster_->region());
  h->set_geography(cluster_->geography());
  h->set_epoch(cluster_->epoch());
  h->set_role("primary");
  Status s = channel->Send(hello);
  if (!s.ok()) return s;
  replpb::Envelope answer;
  s = channel->Receive(&answer, kHelloTimeoutMs);
  if (!s.ok()) return s;
  if (!answer.has_hello_reply()) {
    return Status::Corruption(
        "replica answered the hello with another message");
  }
  *reply = answer.hello_reply();
  if (reply->has_replica() && reply->replica().epoch() > cluster_->epoch() &&
      reply->replica().role() == "primary" &&
      cluster_->switchover_to() == reply->replica().cluster_id()) {
    // A switchover whose answer was lost: the target did become primary.
    Status s = cluster_->FinishSwitchover(reply->replica().cluster_id(),
                                          reply->replica().epoch());
    if (!s.ok()) return s;
    return Status::IOError("switched over to '" +
                           reply->replica().cluster_id() + "'");
  }
  if (reply->has_replica() && reply->replica().epoch() > cluster_->epoch()) {
    // Someone was promoted past this primary: stop taking writes at once.
    const replpb::Hello& peer = reply->replica();
    const std::string how = "learned from '" + peer.cluster_id() + "' (" +
                            peer.role() + ") in the replication handshake" +
                            (reply->reason().empty() ? std::string()
                                                     : ": " + reply->reason());
    cluster_->Fence(peer.epoch(), peer.cluster_id(), how)
        .PermitUncheckedError();
    return Status::Fenced("'" + peer.cluster_id() + "' is at epoch " +
                          std::to_string(peer.epoch()) + ", above this " +
                          "primary's " + std::to_string(cluster_->epoch()) +
                          "; this cluster is fenced");
  }
  if (!reply->accepted()) {
    return Status::PermissionDenied(
        "replica " + channel->peer_name() +
        " refused this primary: " + reply->reason());
  }
  const replpb::Hello& r = reply->replica();
  std::string refusal;
  if (r.cluster_id() != channel->peer_name()) {
    refusal = "replica's certificate names '" + channel->peer_name() +
              "' but it says it is '" + r.cluster_id() + "'";
  } else if (!options_.replica_cluster_id.empty() &&
             r.cluster_id() != options_.replica_cluster_id) {
    refusal = "replica is '" + r.cluster_id() + "', expected '" +
              options_.replica_cluster_id + "'";
  } else if (r.geography() != cluster_->geography()) {
    refusal = "replica '" + r.cluster_id() + "' is in geography '" +
              r.geography() + "', this primary in '" + cluster_->geography() +
              "'; data may only be replicated within its geography";
  } else if (r.role() != "replica") {
    refusal =
        "peer '" + r.cluster_id() + "' is a " + r.role() + ", not a replica";
  }
  if (!refusal.empty()) {
    replpb::Envelope error;
    error.mutable_error()->set_reason(refusal);
    channel->Send(error).PermitUncheckedError();
    return Status::PermissionDenied(refusal);
  }
  return Status::OK();
}

Status Shipper::Session() {
  // Whatever ends the session, no tenant stays pinned by it.
  struct ReleaseAll {
    Shipper* shipper;
    ~ReleaseAll() { shipper->ReleaseHot(/*all=*/true); }
  } release_all{this};
  std::unique_ptr<TlsChannel> channel;
  Status s = TlsChannel::Connect(
      *tls_, options_.replica_address, options_.replica_cluster_id,
      static_cast<int>(options_.connect_timeout_ms), &channel);
  if (!s.ok()) return s;
  replpb::HelloReply reply;
  s = Handshake(channel.get(), &reply);
  if (!s.ok()) return s;

  const std::vector<std::shared_ptr<TenantSlot>> slots = cluster_->LiveSlots();
  {
    std::lock_guard<std::mutex> lock(mu_);
    // What the primary knows of itself carries over; the replica's side
    // comes from its reply.
    std::map<std::string, Stream> previous;
    previous.swap(streams_);
    unacked_bytes_ = 0;
    for (const replpb::TenantPosition& p : reply.positions()) {
      Stream& st = streams_[p.tenant()];
      st.acked_seq = st.sent_seq = p.applied_seq();
      st.acked_commit = p.applied_commit_unix_micros();
      st.sent_chain = p.chain_hash();
      st.on_replica = true;
      st.incarnation = p.tenant_created_unix_micros();
      if (p.rejoining()) {
        st.fork_pending = true;
        st.reseeding = true;  // no data until the fork is reconciled
      }
      changed_.insert(p.tenant());  // dropped here? then DROP there
    }
    for (const auto& slot : slots) {
      streams_[slot->id];
      dirty_.insert(slot->id);
      changed_.insert(slot->id);
    }
    for (auto& [id, st] : streams_) {
      auto it = previous.find(id);
      if (it == previous.end()) continue;
      st.primary_seq = it->second.primary_seq;
      st.primary_commit = it->second.primary_commit;
      st.known = it->second.known;
      st.reseeds = it->second.reseeds;
      st.last_commit = it->second.last_commit;
    }
    peer_cluster_id_ = reply.replica().cluster_id();
    connects_++;
  }
  SetConnection("connected", "");
  cluster_
      ->RecordAudit("replication.connect",
                    "peer:" + reply.replica().cluster_id(), Status::OK(),
                    "shipping to " + options_.replica_address + ", " +
                        std::to_string(reply.positions_size()) +
                        " tenants there")
      .PermitUncheckedError();

  auto last_send = std::chrono::steady_clock::now();
  while (!stopping() && !cluster_->is_replica()) {
    const auto round_start = std::chrono::steady_clock::now();
    uint64_t batches_before = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      batches_before = batches_;
    }
    bool behind = false;  // a tenant has more to ship right away
    s = SendEvents(channel.get());
    if (s.ok()) s = SendForks(channel.get());
    if (s.ok()) s = SendPromote(channel.get());
    if (!s.ok()) return s;

    std::vector<std::string> todo;
    {
      std::lock_guard<std::mutex> lock(mu_);
      todo.assign(dirty_.begin(), dirty_.end());
      dirty_.clear();
    }
    for (const std::string& id : todo) {
      if (stopping()) break;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (unacked_bytes_ >= options_.max_unacked_bytes) {
          dirty_.insert(id);  // window full: later
          continue;
        }
      }
      // Writes from now on queue the tenant again.
      if (auto slot = cluster_->FindSlot(id)) slot->repl_dirty = false;
      bool more = false;
      s = ShipTenant(channel.get(), id, &more);
      if (!s.ok()) return s;
      last_send = std::chrono::steady_clock::now();
      if (more) {
        behind = true;
        std::lock_guard<std::mutex> lock(mu_);
        dirty_.insert(id);
      }
      // Keep acknowledgements flowing while shipping many tenants.
      replpb::Envelope message;
      bool got = false;
      s = channel->TryReceive(&message, 0, &got);
      if (s.ok() && got) s = HandleMessage(message);
      if (!s.ok()) return s;
    }

    ReleaseHot(/*all=*/false);
    bool idle = false;
    bool waiting = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      waiting = unacked_bytes_ > 0;
      for (const auto& [id, st] : streams_) waiting |= st.reseeding;
      idle = dirty_.empty() && changed_.empty();
      if (idle && !waiting) {
        cv_.wait_for(lock, std::chrono::milliseconds(50), [this] {
          return stopping() || !dirty_.empty() || !changed_.empty();
        });
      }
    }
    if (idle &&
        std::chrono::steady_clock::now() - last_send > kHeartbeatInterval) {
      replpb::Envelope beat;
      beat.mutable_heartbeat()->set_unix_micros(NowMicros());
      s = channel->Send(beat);
      if (!s.ok()) return s;
      last_send = std::chrono::steady_clock::now();
    }
    bool window_full = false;
    bool shipped = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      window_full = unacked_bytes_ >= options_.max_unacked_bytes;
      shipped = batches_ != batches_before;
    }
    // Idle with acknowledgements due, or a full window: wait for acks
    // instead of spinning.
    int wait_ms = (idle && waiting) ? 20 : window_full ? 5 : 0;
    for (;;) {
      replpb::Envelope message;
      bool got = false;
      s = channel->TryReceive(&message, wait_ms, &got);
      if (!s.ok()) return s;
      if (!got) break;
      s = HandleMessage(message);
      if (!s.ok()) return s;
      wait_ms = 0;
    }
    // Coalescing: a round that shipped everything there was waits until
    // kLinger after its start (reading acknowledgements meanwhile), so the
    // next one carries what the writers add in that time in fewer, larger
    // messages and writes. A round that left a tenant behind does not wait.
    if (shipped && !behind) {
      const auto until = round_start + kLinger;
      while (!stopping() && std::chrono::steady_clock::now() < until) {
        replpb::Envelope message;
        bool got = false;
        s = channel->TryReceiveUntil(&message, until, &got);
        if (s.ok() && got) s = HandleMessage(message);
        if (!s.ok()) return s;
      }
    }
  }
  return Status::OK();
}

Status Shipper::SendEvents(TlsChannel* channel) {
  std::vector<std::string> ids;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ids.assign(changed_.begin(), changed_.end());
    changed_.clear();
  }
  for (const std::string& id : ids) {
    replpb::Envelope event;
    replpb::TenantEvent* e = event.mutable_tenant_event();
    e->set_tenant(id);
    std::shared_ptr<TenantSlot> slot = cluster_->FindSlot(id);
    bool on_replica = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = streams_.find(id);
      on_replica = it != streams_.end() && it->second.on_replica;
    }
    catalogpb::TenantBody body;
    if (slot == nullptr) {
      if (!on_replica) continue;
      e->set_kind(replpb::TenantEvent::DROP);
    } else {
      body = ClusterImpl::BodyOf(*slot);
      std::lock_guard<std::mutex> lock(mu_);
      Stream& st = streams_[id];
      if (st.on_replica && st.incarnation != body.created_unix_micros()) {
        // Another tenant of this id: the replica replaces it, and its
        // stream starts from the beginning.
        for (const Inflight& f : st.inflight) unacked_bytes_ -= f.bytes;
        const uint64_t reseeds = st.reseeds;
        st = Stream();
        st.reseeds = reseeds;
        on_replica = false;
      }
      e->set_kind(on_replica ? replpb::TenantEvent::KEYS
                             : replpb::TenantEvent::CREATE);
      e->set_tenant_body(body.SerializeAsString());
    }
    Status s = channel->Send(event);
    if (!s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      changed_.insert(id);
      return s;
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (slot == nullptr) {
      streams_.erase(id);
    } else {
      streams_[id].on_replica = true;
      streams_[id].incarnation = body.created_unix_micros();
    }
  }
  return Status::OK();
}

Status Shipper::SendForks(TlsChannel* channel) {
  std::vector<std::string> ids;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, st] : streams_) {
      if (st.fork_pending && st.on_replica) ids.push_back(id);
    }
  }
  for (const std::string& id : ids) {
    std::shared_ptr<TenantSlot> slot = cluster_->FindSlot(id);
    if (slot == nullptr) continue;  // a DROP went instead
    std::shared_ptr<TenantDb> db;
    Status s = cluster_->Pin(slot, &db);  // an open records the fork point
    if (s.ok() && slot->fork_pending.load()) {
      s = cluster_->RecordPendingFork(*slot, *db);  // open at the promotion
    }
    if (!s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      last_error_ = "tenant '" + id + "': " + s.ToString();
      continue;
    }
    replpb::Envelope message;
    replpb::Fork* f = message.mutable_fork();
    f->set_tenant(id);
    f->set_epoch(cluster_->epoch());
    std::string value;
    replpb::ForkPoint fork;
    std::string peer;
    {
      std::lock_guard<std::mutex> lock(mu_);
      peer = peer_cluster_id_;
    }
    rocksdb::Status rs = db->db()->Get(rocksdb::ReadOptions(), db->system(),
                                       kForkPointKey, &value);
    if (rs.ok() && fork.ParseFromString(value) &&
        fork.former_primary() == peer) {
      f->set_has_fork(true);
      f->set_old_seq(fork.old_seq());
      f->set_local_seq(fork.local_seq());
      f->set_local_commit_unix_micros(fork.old_commit_unix_micros());
    }
    db.reset();
    s = channel->Send(message);
    if (!s.ok()) return s;
    std::lock_guard<std::mutex> lock(mu_);
    streams_[id].fork_pending = false;  // the answer is a seeded ack
  }
  return Status::OK();
}

Status Shipper::ShipTenant(TlsChannel* channel, const std::string& id,
                           bool* more) {
  *more = false;
  std::shared_ptr<TenantSlot> slot = cluster_->FindSlot(id);
  if (slot == nullptr || slot->revoked.load() || slot->key_lost.load()) {
    return Status::OK();  // dropped (an event says so) or offline
  }
  uint64_t next = 0;
  std::string chain;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Stream& st = streams_[id];
    if (st.reseeding || !st.on_replica) {
      if (!st.on_replica) *more = true;  // its record goes first
      return Status::OK();
    }
    next = st.sent_seq + 1;
    chain = st.sent_chain;
  }
  if (slot->seq_known.load() && next > slot->latest_seq.load()) {
    // Nothing new, and no need to open the tenant to know it. (Coffer's own
    // records, such as a rekey's marker, ship with the next client write.)
    std::lock_guard<std::mutex> lock(mu_);
    Stream& st = streams_[id];
    st.primary_seq = std::max(st.primary_seq, slot->latest_seq.load());
    st.known = true;
    UpdateUnackedSince(id, st);
    return Status::OK();
  }
  const auto now = std::chrono::steady_clock::now();
  Hot& hot = hot_[id];
  if (hot.db != nullptr &&
      (now - hot.born > kHotHold || slot->idle_wanted.load() > 0)) {
    hot = Hot();  // let an administrative operation through
  }
  if (hot.db == nullptr) {
    Status s = cluster_->Pin(slot, &hot.db);
    if (!s.ok()) {
      hot_.erase(id);
      if (!s.IsNotFound() && !s.IsKeyRevoked()) {
        std::lock_guard<std::mutex> lock(mu_);
        last_error_ = "tenant '" + id + "': " + s.ToString();
      }
      return Status::OK();
    }
    hot.tailer = std::make_unique<WalTailer>(hot.db->db());
    hot.born = now;
  }
  hot.last_data = now;
  std::shared_ptr<TenantDb> db = hot.db;
  Status s;
  const uint64_t latest = db->db()->GetLatestSequenceNumber();
  {
    std::lock_guard<std::mutex> lock(mu_);
    Stream& st = streams_[id];
    st.primary_seq = std::max(st.primary_seq, latest);
    st.known = true;
  }
  if (next > latest) {
    std::lock_guard<std::mutex> lock(mu_);
    UpdateUnackedSince(id, streams_[id]);
    return Status::OK();
  }
  std::vector<CommittedBatch> batches;
  bool from_log = false;
  if (slot->commits.Take(next, options_.max_message_bytes, &batches) > 0) {
    hot.gap_next = 0;
  } else {
    // `next` is not in memory. Below complete_from() it never will be
    // (written before the first push, e.g. by an earlier process, or
    // dropped over the budget): the log has it. Above, a writer that
    // committed it may not have queued it yet: its NotifyWrite brings this
    // tenant back, so wait for it, for at most kGapWait (Coffer's own
    // records never come, and a steady stream of writers must not hold the
    // stream back).
    if (hot.gap_next != next) {
      hot.gap_next = next;
      hot.gap_since = now;
    }
    if (next >= slot->commits.complete_from() &&
        slot->commits.pushing.load() > 0 && now - hot.gap_since < kGapWait) {
      std::lock_guard<std::mutex> lock(mu_);
      UpdateUnackedSince(id, streams_[id]);
      return Status::OK();
    }
    from_log = true;
    s = hot.tailer->Read(next, options_.max_message_bytes, &batches);
  }
  if (IsWalGap(s)) {
    Stream* st = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      st = &streams_[id];
    }
    hot_.erase(id);
    return Reseed(channel, slot, db, st);
  }
  if (!s.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    last_error_ = "reading the log of tenant '" + id + "': " + s.ToString();
    return Status::OK();
  }
  const uint64_t epoch = cluster_->epoch();
  uint64_t last_commit = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_commit = streams_[id].last_commit;
  }
  // A batch's commit stamp; Coffer's own records carry none and take the
  // time of the batch before them.
  auto stamp_of = [](const CommittedBatch& b) -> uint64_t {
    if (b.commit_micros != 0) return b.commit_micros;  // from the queue
    BatchSummary summary;
    return InspectBatch(b.data, &summary).ok() ? summary.commit_micros : 0;
  };
  auto commit_of = [&last_commit, &stamp_of](const CommittedBatch& b) {
    if (uint64_t stamp = stamp_of(b); stamp != 0) last_commit = stamp;
    return last_commit;
  };
  // Consecutive batches go out merged into one message of at most
  // max_message_bytes (a larger batch alone): one header, the records of
  // each in order, the count their sum, so the replica applies exactly the
  // same operations at the same sequence numbers with one check, one chain
  // link and one frame per message. All of this round's messages go out in
  // one write.
  std::string frames;
  std::vector<Inflight> sent;
  for (size_t i = 0; i < batches.size();) {
    const uint64_t first_seq = batches[i].first_seq;
    const size_t first = i;
    const uint64_t first_commit = commit_of(batches[i]);
    std::string data = std::move(batches[i].data);
    uint64_t count = batches[i].count;
    size_t j = i + 1;
    for (; j < batches.size() &&
           data.size() + batches[j].data.size() <= options_.max_message_bytes;
         ++j) {
      if (!AppendBatch(&data, batches[j].data).ok()) break;
      count += batches[j].count;
    }
    // Stamps of the batches in between do not matter: the last one's is
    // the message's commit time.
    uint64_t commit = first_commit;
    for (size_t k = j - 1; k > i; --k) {
      if (uint64_t stamp = stamp_of(batches[k]); stamp != 0) {
        commit = stamp;
        break;
      }
    }
    last_commit = commit;
    i = j;
    replpb::Envelope message;
    replpb::Batch* m = message.mutable_batch();
    m->set_tenant(id);
    m->set_epoch(epoch);
    m->set_first_seq(first_seq);
    m->set_count(static_cast<uint32_t>(count));  // AppendBatch bounds it
    m->set_commit_unix_micros(commit);
    m->set_prev_chain_hash(chain);
    m->set_primary_latest_seq(latest);
    m->set_primary_latest_commit_unix_micros(
        std::max(slot->latest_commit.load(), commit));
    m->set_merged(static_cast<uint32_t>(j - first));
    chain = ChainHash(chain, first_seq, count, data);
    const uint64_t size = data.size();
    m->set_data(std::move(data));
    s = EncodeFrame(message.SerializeAsString(), &frames);
    if (!s.ok()) return s;
    sent.push_back({first_seq + count - 1, j - first, first_commit, commit,
                    size});
  }
  if (!frames.empty()) {
    s = channel->SendFrames(frames);
    if (!s.ok()) return s;
  }
  std::lock_guard<std::mutex> lock(mu_);
  Stream& st = streams_[id];
  st.last_commit = last_commit;
  for (const Inflight& f : sent) {
    st.sent_seq = f.end_seq;
    st.inflight.push_back(f);
    st.primary_commit = std::max(st.primary_commit, f.commit_micros);
    unacked_bytes_ += f.bytes;
    batches_ += f.batches;
    if (from_log) batches_from_log_ += f.batches;
    bytes_ += f.bytes;
  }
  st.sent_chain = chain;
  if (!sent.empty()) UpdateUnackedSince(id, st);
  // Not everything up to `latest` read yet (or not visible yet): again.
  *more = st.sent_seq < latest;
  return Status::OK();
}

void Shipper::ReleaseHot(bool all) {
  const auto now = std::chrono::steady_clock::now();
  for (auto it = hot_.begin(); it != hot_.end();) {
    std::shared_ptr<TenantSlot> slot;
    if (!all && it->second.db != nullptr) slot = cluster_->FindSlot(it->first);
    if (slot == nullptr || slot->idle_wanted.load() > 0 ||
        now - it->second.last_data > kHotIdle ||
        now - it->second.born > kHotHold) {
      it = hot_.erase(it);
    } else {
      ++it;
    }
  }
}

Status Shipper::Reseed(TlsChannel* channel,
                       const std::shared_ptr<TenantSlot>& slot,
                       const std::shared_ptr<TenantDb>& db, Stream* stream) {
  const std::string& id = slot->id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stream->reseeding = true;
    stream->reseeds++;
    reseeds_++;
  }
  cluster_
      ->RecordAudit("replication.reseed", TenantTarget(id), Status::OK(),
                    "the log no longer holds what the replica needs; "
                    "shipping an encrypted checkpoint")
      .PermitUncheckedError();
  // The record first: the checkpoint's files may use any key version.
  replpb::Envelope keys;
  keys.mutable_tenant_event()->set_kind(replpb::TenantEvent::KEYS);
  keys.mutable_tenant_event()->set_tenant(id);
  keys.mutable_tenant_event()->set_tenant_body(
      ClusterImpl::BodyOf(*slot).SerializeAsString());
  Status s = channel->Send(keys);
  if (!s.ok()) return s;

  const fs::path dir =
      fs::path(cluster_->dir()) / kTenantsDir / id / kCheckpointDir;
  std::error_code ec;
  fs::remove_all(dir, ec);
  rocksdb::Checkpoint* raw = nullptr;
  rocksdb::Status rs = rocksdb::Checkpoint::Create(db->db(), &raw);
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  uint64_t seq = 0;
  // Flushes first, so the checkpoint's files hold everything up to seq.
  if (rs.ok()) rs = checkpoint->CreateCheckpoint(dir.string(), 0, &seq);
  if (!rs.ok()) {
    fs::remove_all(dir, ec);
    return FromRocks(rs, "checkpoint of tenant '" + id + "' for a reseed");
  }
  auto cleanup = [&] { fs::remove_all(dir, ec); };
  replpb::Envelope begin;
  begin.mutable_seed_begin()->set_tenant(id);
  begin.mutable_seed_begin()->set_epoch(cluster_->epoch());
  begin.mutable_seed_begin()->set_commit_unix_micros(
      slot->latest_commit.load());
  s = channel->Send(begin);
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  uint64_t total = 0;
  for (const fs::path& file : files) {
    if (!s.ok()) break;
    // The bytes as they lie on disk: ciphertext behind a Coffer prefix.
    std::ifstream in(file, std::ios::binary);
    uint64_t offset = 0;
    std::string chunk(kSeedChunkBytes, '\0');
    bool first = true;
    while (s.ok() && in) {
      in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
      const size_t n = static_cast<size_t>(in.gcount());
      if (n == 0 && !first) break;
      replpb::Envelope piece;
      replpb::SeedChunk* c = piece.mutable_seed_chunk();
      c->set_tenant(id);
      c->set_file(file.filename().string());
      c->set_offset(offset);
      c->set_data(chunk.data(), n);
      s = channel->Send(piece);
      offset += n;
      first = false;
    }
    if (s.ok() && in.bad()) {
      s = Status::IOError("cannot read " + file.string() + " for a reseed");
    }
    total += offset;
  }
  if (s.ok()) {
    replpb::Envelope end;
    end.mutable_seed_end()->set_tenant(id);
    end.mutable_seed_end()->set_files(static_cast<uint32_t>(files.size()));
    end.mutable_seed_end()->set_bytes(total);
    s = channel->Send(end);
  }
  cleanup();
  if (s.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    bytes_ += total;
  }
  return s;
}

Status Shipper::HandleMessage(const replpb::Envelope& message) {
  if (message.has_promote_reply()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      promote_reply_ = message.promote_reply();
      promote_state_ = PromoteState::kDone;
    }
    cv_.notify_all();
    return Status::OK();
  }
  if (message.has_error()) {
    return Status::IOError("replica closed the connection: " +
                           message.error().reason());
  }
  if (!message.has_ack()) {
    return Status::Corruption("unexpected message from the replica");
  }
  const replpb::TenantPosition& p = message.ack().position();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = streams_.find(p.tenant());
  if (it == streams_.end()) return Status::OK();  // dropped meanwhile
  Stream& st = it->second;
  if (p.tenant_created_unix_micros() != st.incarnation) {
    return Status::OK();  // about a tenant of this id that was dropped
  }
  if (message.ack().seeded()) {
    for (const Inflight& f : st.inflight) unacked_bytes_ -= f.bytes;
    st.inflight.clear();
    st.reseeding = false;
    st.acked_seq = st.sent_seq = p.applied_seq();
    st.sent_chain = p.chain_hash();
    st.acked_commit = p.applied_commit_unix_micros();
    dirty_.insert(p.tenant());
  } else {
    st.acked_seq = std::max(st.acked_seq, p.applied_seq());
    st.acked_commit = std::max(st.acked_commit, p.applied_commit_unix_micros());
    while (!st.inflight.empty() &&
           st.inflight.front().end_seq <= st.acked_seq) {
      unacked_bytes_ -= st.inflight.front().bytes;
      st.inflight.pop_front();
    }
  }
  UpdateUnackedSince(p.tenant(), st);
  return Status::OK();
}

Status Shipper::SendPromote(TlsChannel* channel) {
  replpb::Envelope message;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (promote_state_ != PromoteState::kPending) return Status::OK();
    *message.mutable_promote() = promote_request_;
    promote_state_ = PromoteState::kSent;
  }
  return channel->Send(message);
}

Status Shipper::Switchover(SwitchoverReport* report) {
  std::lock_guard<std::mutex> one(switchover_mu_);
  const auto start = std::chrono::steady_clock::now();
  std::string target;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!connected_) {
      return Status::IOError(
          "not connected to the replica (" + connection_ +
          (last_error_.empty() ? "" : ": " + last_error_) +
          "); a planned switchover needs it");
    }
    target = peer_cluster_id_;
  }
  report->old_primary = cluster_->cluster_id();
  report->new_primary = target;
  Status s = cluster_->BeginSwitchover(target);
  if (!s.ok()) return s;
  // Writes have stopped: find each tenant's final sequence and wait until
  // the replica has applied exactly that. Computed twice, so a write that
  // passed its check just before the stop is included.
  const auto deadline = start + std::chrono::seconds(60);
  std::map<std::string, uint64_t> finals;
  for (int pass = 0; pass < 2; ++pass) {
    finals.clear();
    for (const auto& slot : cluster_->LiveSlots()) {
      std::shared_ptr<TenantDb> db;
      s = cluster_->Pin(slot, &db);
      if (!s.ok()) return s;
      finals[slot->id] = db->db()->GetLatestSequenceNumber();
      NotifyTenantChanged(slot->id);
    }
    for (;;) {
      bool done = true;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!connected_) {
          return Status::IOError("the replica disconnected during the "
                                 "switchover; this cluster takes no writes, "
                                 "retry to complete it");
        }
        for (const auto& [id, seq] : finals) {
          auto it = streams_.find(id);
          if (it == streams_.end() || it->second.acked_seq < seq ||
              it->second.reseeding) {
            done = false;
          }
        }
      }
      if (done) break;
      if (stopping()) {
        return Status::IOError("the cluster is closing; the switchover "
                               "completes when it is opened again");
      }
      if (std::chrono::steady_clock::now() > deadline) {
        return Status::IOError("the replica did not catch up within 60 s; "
                               "this cluster takes no writes, retry to "
                               "complete the switchover");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    promote_request_.Clear();
    promote_request_.set_epoch(cluster_->epoch() + 1);
    promote_request_.set_from(cluster_->cluster_id());
    for (const auto& [id, seq] : finals) {
      replpb::TenantPosition* p = promote_request_.add_finals();
      p->set_tenant(id);
      p->set_applied_seq(seq);
    }
    promote_state_ = PromoteState::kPending;
  }
  cv_.notify_all();
  replpb::PromoteReply reply;
  {
    std::unique_lock<std::mutex> lock(mu_);
    const bool answered = cv_.wait_until(lock, deadline, [this] {
      return promote_state_ == PromoteState::kDone || !connected_ ||
             stopping();
    });
    if (!answered || promote_state_ != PromoteState::kDone) {
      promote_state_ = PromoteState::kNone;
      return Status::IOError("no answer from the replica to the promotion "
                             "request; this cluster takes no writes, retry "
                             "to complete the switchover");
    }
    promote_state_ = PromoteState::kNone;
    reply = promote_reply_;
  }
  if (!reply.ok()) {
    return Status::IOError("the replica refused to become the primary: " +
                           reply.reason() +
                           "; this cluster takes no writes, retry to "
                           "complete the switchover");
  }
  s = cluster_->FinishSwitchover(target, reply.epoch());
  if (!s.ok()) return s;
  report->new_epoch = reply.epoch();
  report->tenants = finals.size();
  report->write_pause_micros = MicrosSince(start);
  cv_.notify_all();
  return Status::OK();
}

void Shipper::HandleAdmin(const replpb::AdminRequest& request,
                          replpb::AdminResponse* response) {
  if (request.command() != "switchover") {
    response->set_ok(false);
    response->set_error("InvalidArgument: this process runs a primary; it "
                        "answers only 'switchover'");
    return;
  }
  SwitchoverReport report;
  Status s = cluster_->Switchover(&report);
  response->set_ok(s.ok());
  if (!s.ok()) {
    response->set_error(s.ToString());
    return;
  }
  response->set_new_primary(report.new_primary);
  response->set_new_epoch(report.new_epoch);
  response->set_write_pause_micros(report.write_pause_micros);
  response->set_tenants(report.tenants);
}

// REQUIRES: mu_ held. Keeps the slot's oldest-unacknowledged commit time
// (lag in seconds, and later bounded RPO) in step with the stream.
void Shipper::UpdateUnackedSince(const std::string& id, const Stream& st) {
  std::shared_ptr<TenantSlot> slot = cluster_->FindSlot(id);
  if (slot == nullptr) return;
  if (!st.inflight.empty()) {
    slot->unacked_since = st.inflight.front().oldest_commit_micros;
  } else if (st.acked_seq >=
             std::max(st.primary_seq, slot->latest_seq.load())) {
    slot->unacked_since = 0;
    // A write that landed meanwhile starts the clock again.
    if (slot->latest_seq.load() > st.acked_seq) {
      uint64_t none = 0;
      slot->unacked_since.compare_exchange_strong(none, NowMicros());
    }
  }
}

void Shipper::FillStatus(ReplicationStatus* status) {
  const std::vector<std::shared_ptr<TenantSlot>> slots = cluster_->LiveSlots();
  const uint64_t now = NowMicros();
  *status = ReplicationStatus();
  cluster_->FillFailoverStatus(status);
  // A primary that switched over is now a replica (its last status says so).
  status->role = cluster_->is_replica() ? "replica" : "primary";
  status->peer_address = options_.replica_address;
  status->wal_retention_seconds = cluster_->wal_retention_seconds();
  status->as_of_unix_micros = now;
  std::lock_guard<std::mutex> lock(mu_);
  status->connection = connection_;
  status->peer_cluster_id = peer_cluster_id_;
  status->last_error = last_error_;
  status->batches = batches_;
  status->batches_from_log = batches_from_log_;
  status->bytes = bytes_;
  status->reseeds = reseeds_;
  status->connects = connects_;
  const int64_t retention =
      static_cast<int64_t>(cluster_->wal_retention_seconds());
  for (const auto& slot : slots) {
    TenantReplicationStatus t;
    t.tenant = slot->id;
    auto it = streams_.find(slot->id);
    const Stream empty;
    const Stream& st = it != streams_.end() ? it->second : empty;
    t.primary_seq = std::max(st.primary_seq, slot->latest_seq.load());
    t.applied_seq = st.acked_seq;
    t.lag_seqs =
        t.primary_seq > t.applied_seq ? t.primary_seq - t.applied_seq : 0;
    t.primary_commit_unix_micros =
        std::max(st.primary_commit, slot->latest_commit.load());
    t.applied_commit_unix_micros = st.acked_commit;
    if (t.lag_seqs > 0) {
      uint64_t since = !st.inflight.empty()
                           ? st.inflight.front().oldest_commit_micros
                                            : slot->unacked_since.load();
      if (since == 0) since = t.primary_commit_unix_micros;
      t.lag_seconds = since != 0 && now > since ? (now - since) / 1e6 : 0;
    }
    t.retention_headroom_seconds =
        retention - static_cast<int64_t>(t.lag_seconds);
    t.reseeds = st.reseeds;
    if (!connected_) {
      t.state = "waiting";
    } else if (!st.known && !slot->seq_known.load()) {
      t.state = "unknown";  // not looked at yet in this session
    } else if (st.reseeding) {
      t.state = "reseeding";
    } else {
      t.state = t.lag_seqs == 0 ? "caught-up" : "streaming";
    }
    status->tenants.push_back(std::move(t));
  }
}

}  // namespace coffer
