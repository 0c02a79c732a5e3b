// Copyright (c) Coffer authors.
//
// Failover on the cluster's side: forced promotion of a replica (with its
// loss receipt), fencing of a primary that learned of a higher epoch, and
// the per-tenant fork point a promoted cluster records for a later rejoin of
// its old primary.

#include <algorithm>
#include <thread>

#include "engine/clock.h"
#include "engine/cluster_impl.h"
#include "engine/record_file.h"
#include "replication/admin_channel.h"
#include "replication/batch_inspect.h"
#include "replication/proto/replication.pb.h"
#include "replication/shipper.h"

namespace coffer {

namespace {

constexpr char kPromotionFile[] = "PROMOTION";
constexpr int kPromoteTimeoutMs = 60000;
constexpr size_t kOfflineThreads = 4;

}  // namespace

void PromotionToRecord(const PromotionReport& r, replpb::PromotionRecord* out) {
  out->set_cluster_id(r.cluster_id);
  out->set_former_primary(r.former_primary);
  out->set_old_epoch(r.old_epoch);
  out->set_new_epoch(r.new_epoch);
  out->set_unix_micros(r.unix_micros);
  out->set_micros(r.micros);
  out->set_actor(r.via);
  for (const TenantLossReceipt& t : r.tenants) {
    replpb::TenantReceipt* o = out->add_tenants();
    o->set_tenant(t.tenant);
    o->set_promoted_at_seq(t.promoted_at_seq);
    o->set_promoted_at_commit_unix_micros(t.promoted_at_commit_unix_micros);
    o->set_primary_seq_heard(t.primary_seq_heard);
    o->set_primary_commit_heard_unix_micros(
        t.primary_commit_heard_unix_micros);
  }
}

void PromotionFromRecord(const replpb::PromotionRecord& r,
                         PromotionReport* out) {
  *out = PromotionReport();
  out->cluster_id = r.cluster_id();
  out->former_primary = r.former_primary();
  out->old_epoch = r.old_epoch();
  out->new_epoch = r.new_epoch();
  out->unix_micros = r.unix_micros();
  out->micros = r.micros();
  out->via = r.actor();
  for (const replpb::TenantReceipt& o : r.tenants()) {
    TenantLossReceipt t;
    t.tenant = o.tenant();
    t.promoted_at_seq = o.promoted_at_seq();
    t.promoted_at_commit_unix_micros = o.promoted_at_commit_unix_micros();
    t.primary_seq_heard = std::max(o.primary_seq_heard(), t.promoted_at_seq);
    t.primary_commit_heard_unix_micros =
        std::max(o.primary_commit_heard_unix_micros(),
                 t.promoted_at_commit_unix_micros);
    t.writes_beyond = t.primary_seq_heard - t.promoted_at_seq;
    t.seconds_beyond = t.writes_beyond == 0
                           ? 0
                           : (t.primary_commit_heard_unix_micros -
                              t.promoted_at_commit_unix_micros) /
                                 1e6;
    out->writes_beyond += t.writes_beyond;
    out->tenants.push_back(std::move(t));
  }
}

Status ReadPromotionReport(const std::string& data_dir,
                           PromotionReport* report) {
  const std::string path = data_dir + "/" + kPromotionFile;
  std::string bytes;
  Status s = ReadRecordFile(path, &bytes);
  if (s.IsNotFound()) {
    return Status::NotFound("cluster in " + data_dir +
                            " was never promoted");
  }
  if (!s.ok()) return s;
  replpb::PromotionRecord record;
  if (!record.ParseFromString(bytes)) {
    return Status::Corruption(path + " does not parse");
  }
  PromotionFromRecord(record, report);
  return Status::OK();
}

Status PromoteReplica(const std::string& data_dir, const std::string& actor,
                      PromotionReport* report) {
  replpb::AdminRequest request;
  request.set_command("promote");
  request.set_actor(actor);
  replpb::AdminResponse response;
  Status s = AdminCall(data_dir, request, &response, kPromoteTimeoutMs);
  if (!s.ok()) return s;
  if (!response.ok()) {
    const std::string& e = response.error();
    if (e.rfind("InvalidArgument: ", 0) == 0) {
      return Status::InvalidArgument(e.substr(17));
    }
    return Status::IOError("the replica daemon could not promote: " + e);
  }
  PromotionFromRecord(response.promotion(), report);
  return Status::OK();
}

void ClusterImpl::SetPromoteHandler(
    std::function<Status(PromotionReport*)> handler) {
  std::lock_guard<std::mutex> lock(status_source_mu_);
  promote_handler_ = std::move(handler);
}

Status ClusterImpl::Promote(PromotionReport* report) {
  if (!replica_.load()) {
    return Status::InvalidArgument("cluster '" + catalog_->cluster_id() +
                                   "' is a primary; only a replica can be "
                                   "promoted");
  }
  std::function<Status(PromotionReport*)> handler;
  {
    std::lock_guard<std::mutex> lock(status_source_mu_);
    handler = promote_handler_;
  }
  if (handler) return handler(report);
  // No daemon: every tenant's database holds its exact position.
  const std::vector<std::shared_ptr<TenantSlot>> slots = LiveSlots();
  std::vector<TenantLossReceipt> receipts(slots.size());
  std::vector<Status> errors(slots.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < slots.size(); i = next++) {
      receipts[i].tenant = slots[i]->id;
      if (slots[i]->revoked.load()) continue;  // offline: no position known
      std::shared_ptr<TenantDb> db;
      Status s = Pin(slots[i], &db);
      replpb::TenantPosition p;
      bool found = false;
      if (s.ok()) s = ReadReplicaPosition(*db, slots[i]->id, &p, &found);
      if (!s.ok()) {
        errors[i] = s;
        continue;
      }
      receipts[i].promoted_at_seq = p.applied_seq();
      receipts[i].promoted_at_commit_unix_micros =
          p.applied_commit_unix_micros();
      receipts[i].primary_seq_heard = p.primary_latest_seq();
      receipts[i].primary_commit_heard_unix_micros =
          p.primary_latest_commit_unix_micros();
    }
  };
  std::vector<std::thread> threads;
  for (size_t t = 0; t < std::min(kOfflineThreads, slots.size()); ++t) {
    threads.emplace_back(work);
  }
  for (std::thread& t : threads) t.join();
  for (const Status& s : errors) {
    if (!s.ok()) {
      return Audit("replication.promote", "cluster:" + catalog_->cluster_id(),
                   s, "refused: a tenant's position cannot be read");
    }
  }
  return FinishPromotion(std::move(receipts), "offline", report);
}

Status ClusterImpl::FinishPromotion(std::vector<TenantLossReceipt> receipts,
                                    const std::string& via,
                                    PromotionReport* report) {
  const auto start = std::chrono::steady_clock::now();
  std::sort(receipts.begin(), receipts.end(),
            [](const TenantLossReceipt& a, const TenantLossReceipt& b) {
              return a.tenant < b.tenant;
            });
  PromotionReport r;
  Status s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    catalogpb::ClusterBody body = catalog_->cluster();
    if (body.role() != "replica") {
      return Status::InvalidArgument("cluster '" + catalog_->cluster_id() +
                                     "' is not a replica");
    }
    replpb::PromotionRecord record;
    r.cluster_id = catalog_->cluster_id();
    r.former_primary = body.primary_cluster_id();
    r.old_epoch = body.epoch();
    r.new_epoch = body.epoch() + 1;
    r.unix_micros = NowMicros();
    r.via = via;
    r.tenants = std::move(receipts);
    PromotionToRecord(r, &record);
    PromotionFromRecord(record, &r);  // derives the losses
    r.micros = MicrosSince(start);
    record.set_micros(r.micros);
    // The receipt first: a crash before the catalog changes leaves a replica
    // that can be promoted again.
    s = WriteRecordFile(dir_ + "/" + kPromotionFile,
                        record.SerializeAsString());
    if (s.ok()) {
      body.set_role("primary");
      body.set_epoch(r.new_epoch);
      body.set_promoted_unix_micros(r.unix_micros);
      body.set_promoted_from(r.former_primary);
      body.set_fenced(false);
      s = catalog_->SaveCluster(body);
    }
    if (s.ok()) replica_ = false;
    CacheForkInfoLocked();
  }
  if (s.ok()) {
    // Each tenant records its fork point at its next open, or before its
    // first write if it is open now: promotion itself touches no tenant.
    for (const auto& slot : LiveSlots()) slot->fork_pending = true;
  }
  if (report != nullptr) *report = r;
  return Audit("replication.promote", "cluster:" + catalog_->cluster_id(), s,
               "forced promotion (" + via + "): epoch " +
                   std::to_string(r.old_epoch) + " -> " +
                   std::to_string(r.new_epoch) + ", former primary '" +
                   r.former_primary + "', " + std::to_string(r.tenants.size()) +
                   " tenants, " + std::to_string(r.writes_beyond) +
                   " writes known beyond the promotion point (receipt in "
                   "PROMOTION)");
}

Status ClusterImpl::AdoptEpoch(uint64_t epoch) {
  Status s;
  uint64_t old = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    catalogpb::ClusterBody body = catalog_->cluster();
    old = body.epoch();
    if (epoch <= old) return Status::OK();
    body.set_epoch(epoch);
    s = catalog_->SaveCluster(body);
    CacheForkInfoLocked();
  }
  return Audit("replication.epoch", "cluster:" + catalog_->cluster_id(), s,
               "epoch " + std::to_string(old) + " -> " +
                   std::to_string(epoch) + " from the primary");
}

Status ClusterImpl::Rejoin(const std::string& new_primary) {
  Status s = ValidateId("cluster", new_primary);
  uint64_t epoch = 0;
  if (s.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    catalogpb::ClusterBody body = catalog_->cluster();
    if (body.role() == "replica") {
      s = Status::InvalidArgument("cluster '" + catalog_->cluster_id() +
                                  "' is already a replica");
    } else if (new_primary == catalog_->cluster_id()) {
      s = Status::InvalidArgument("a cluster cannot rejoin itself");
    } else if (body.fenced() && !body.fenced_by_cluster().empty() &&
               new_primary != body.fenced_by_cluster()) {
      // The cluster knows who replaced it: a replica of anyone else would
      // refuse that primary, and a replica cannot rejoin again.
      s = Status::InvalidArgument(
          "cluster '" + catalog_->cluster_id() + "' was fenced by '" +
          body.fenced_by_cluster() + "', the primary at epoch " +
          std::to_string(body.fenced_by_epoch()) + "; rejoin it, not '" +
          new_primary + "'");
    } else {
      epoch = body.epoch();
      body.set_role("replica");
      body.set_primary_cluster_id(new_primary);
      body.set_rejoin_from_epoch(body.epoch());
      body.set_fenced(false);
      body.set_promoted_unix_micros(0);
      body.clear_promoted_from();  // a replica again: no promotion to show
      s = catalog_->SaveCluster(body);
      if (s.ok()) {
        replica_ = true;
        fenced_ = false;
      }
      CacheForkInfoLocked();
    }
  }
  return Audit("replication.rejoin", "cluster:" + new_primary, s,
               "former primary at epoch " + std::to_string(epoch) +
                   " becomes a replica of '" + new_primary +
                   "'; tenants are reconciled when it connects");
}

uint64_t ClusterImpl::rejoin_from_epoch() const {
  std::lock_guard<std::mutex> lock(mu_);
  return catalog_->cluster().rejoin_from_epoch();
}

std::string ClusterImpl::master_key_id() const {
  std::lock_guard<std::mutex> lock(mu_);
  return catalog_->master_key_id();
}

Status ClusterImpl::Switchover(SwitchoverReport* report) {
  SwitchoverReport local;
  SwitchoverReport* r = report != nullptr ? report : &local;
  Status s;
  if (replica_.load()) {
    s = Status::InvalidArgument("cluster '" + catalog_->cluster_id() +
                                "' is a replica; switch over from its primary");
  } else if (shipper_ == nullptr) {
    s = Status::InvalidArgument(
        "cluster '" + catalog_->cluster_id() +
        "' does not ship to a replica (OpenOptions::replication)");
  } else if (fenced_.load()) {
    s = Status::Fenced("cluster '" + catalog_->cluster_id() +
                       "' is fenced; it cannot hand over");
  } else {
    s = shipper_->Switchover(r);
  }
  return Audit("replication.switchover",
               "cluster:" + (r->new_primary.empty() ? std::string("?")
                                                    : r->new_primary),
               s,
               "planned switchover: '" + r->new_primary +
                   "' primary at epoch " + std::to_string(r->new_epoch) +
                   ", writes paused " +
                   std::to_string(r->write_pause_micros / 1000) + " ms, " +
                   std::to_string(r->tenants) + " tenants");
}

Status ClusterImpl::BeginSwitchover(const std::string& target) {
  Status s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    catalogpb::ClusterBody body = catalog_->cluster();
    if (body.switchover_to() == target) {
      switching_ = true;
      return Status::OK();  // a retry
    }
    if (!body.switchover_to().empty()) {
      return Status::InvalidArgument("a switchover to '" +
                                     body.switchover_to() +
                                     "' is under way; retry it");
    }
    body.set_switchover_to(target);
    switching_ = true;  // writes stop now
    s = catalog_->SaveCluster(body);
    if (!s.ok()) switching_ = false;
  }
  return Audit("replication.switchover_begin", "cluster:" + target, s,
               "writes stopped; shipping everything to '" + target + "'");
}

Status ClusterImpl::FinishSwitchover(const std::string& target,
                                     uint64_t epoch) {
  Status s;
  uint64_t old = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    catalogpb::ClusterBody body = catalog_->cluster();
    old = body.epoch();
    body.set_role("replica");
    body.set_primary_cluster_id(target);
    body.set_epoch(std::max(epoch, old));
    body.set_rejoin_from_epoch(old);
    body.set_switchover_to("");
    body.set_fenced(false);
    body.set_promoted_unix_micros(0);
    body.clear_promoted_from();  // a replica again: no promotion to show
    s = catalog_->SaveCluster(body);
    if (s.ok()) {
      replica_ = true;
      switching_ = false;
    }
    CacheForkInfoLocked();
  }
  return Audit("replication.switchover_done", "cluster:" + target, s,
               "now a replica of '" + target + "' at epoch " +
                   std::to_string(epoch) + " (was primary at " +
                   std::to_string(old) + ")");
}

std::string ClusterImpl::switchover_to() const {
  std::lock_guard<std::mutex> lock(mu_);
  return catalog_->cluster().switchover_to();
}

Status SwitchoverPrimary(const std::string& data_dir, const std::string& actor,
                         SwitchoverReport* report) {
  replpb::AdminRequest request;
  request.set_command("switchover");
  request.set_actor(actor);
  replpb::AdminResponse response;
  Status s = AdminCall(data_dir, request, &response, kPromoteTimeoutMs * 2);
  if (s.IsNotFound()) {
    return Status::NotFound("no process running the primary in " + data_dir +
                            " (with replication configured) to switch over");
  }
  if (!s.ok()) return s;
  if (!response.ok()) {
    return Status::IOError("the switchover failed: " + response.error());
  }
  report->new_primary = response.new_primary();
  report->new_epoch = response.new_epoch();
  report->write_pause_micros = response.write_pause_micros();
  report->tenants = response.tenants();
  return Status::OK();
}

Status ClusterImpl::Fence(uint64_t epoch, const std::string& by,
                          const std::string& how) {
  Status s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    catalogpb::ClusterBody body = catalog_->cluster();
    if (body.fenced() && body.fenced_by_epoch() >= epoch) return Status::OK();
    if (epoch <= body.epoch()) return Status::OK();
    body.set_fenced(true);
    body.set_fenced_by_epoch(epoch);
    body.set_fenced_by_cluster(by);
    body.set_fenced_unix_micros(NowMicros());
    // Stop writes at once, even if recording it fails.
    fenced_ = true;
    s = catalog_->SaveCluster(body);
  }
  return Audit("replication.fenced", "cluster:" + by,
               Status::Fenced("'" + by + "' is the primary at epoch " +
                              std::to_string(epoch)),
               how + (s.ok() ? "" : "; not persisted: " + s.ToString()));
}

void ClusterImpl::CacheForkInfoLocked() {
  const catalogpb::ClusterBody& b = catalog_->cluster();
  std::lock_guard<std::mutex> lock(fork_info_mu_);
  fork_promoted_ = b.promoted_unix_micros();
  fork_epoch_ = b.epoch();
  fork_former_ = b.promoted_from();
}

Status ClusterImpl::RecordPendingFork(TenantSlot& slot, const TenantDb& db) {
  std::lock_guard<std::mutex> lock(slot.fork_mu);
  if (!slot.fork_pending.load()) return Status::OK();
  Status s = RecordForkPoint(slot.id, db);
  if (s.ok()) slot.fork_pending = false;
  return s;
}

Status ClusterImpl::RecordForkPoint(const std::string& id, const TenantDb& db) {
  uint64_t epoch = 0;
  std::string former;
  {
    std::lock_guard<std::mutex> lock(fork_info_mu_);
    if (fork_promoted_ == 0) return Status::OK();
    epoch = fork_epoch_;
    former = fork_former_;
  }
  rocksdb::DB* rdb = db.db();
  std::string value;
  rocksdb::Status rs =
      rdb->Get(rocksdb::ReadOptions(), db.system(), kForkPointKey, &value);
  replpb::ForkPoint fork;
  if (rs.ok() && fork.ParseFromString(value) && fork.epoch() >= epoch) {
    return Status::OK();  // recorded at an earlier open
  }
  replpb::TenantPosition position;
  bool found = false;
  Status s = ReadReplicaPosition(db, id, &position, &found);
  if (!s.ok()) return s;
  if (!found) return Status::OK();  // never replicated here
  fork = replpb::ForkPoint();
  fork.set_epoch(epoch);
  fork.set_former_primary(former);
  fork.set_old_seq(position.applied_seq());
  fork.set_local_seq(rdb->GetLatestSequenceNumber());
  fork.set_old_commit_unix_micros(position.applied_commit_unix_micros());
  fork.set_old_chain_hash(position.chain_hash());
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return FromRocks(
      rdb->Put(wo, db.system(), kForkPointKey, fork.SerializeAsString()),
      "fork point of tenant '" + id + "'");
}

}  // namespace coffer
