// Copyright (c) Coffer authors.
//
// The cluster's side of replication: the write path's notifications to the
// shipper, the read-only rule of a replica, and the tenant lifecycle a
// replica follows from its primary (create, key changes, crypto-shred).

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "engine/clock.h"
#include "engine/cluster_impl.h"
#include "engine/record_file.h"
#include "replication/shipper.h"

namespace coffer {

namespace {

namespace fs = std::filesystem;

bool HasVersion(const catalogpb::TenantBody& body, uint32_t version) {
  for (const catalogpb::DataKey& k : body.keys()) {
    if (k.version() == version) return true;
  }
  return false;
}

}  // namespace

Status FinishSeedInstall(const std::string& tenant_dir) {
  const fs::path stage = fs::path(tenant_dir) / kSeedDir;
  const fs::path db = fs::path(tenant_dir) / kTenantDbDir;
  std::error_code ec;
  if (fs::exists(db / kSeededMarker, ec)) {
    // Crashed right after the swap: the marker alone is left to remove.
    fs::remove(db / kSeededMarker, ec);
    if (ec)
      return Status::IOError("cannot remove " + (db / kSeededMarker).string());
    return SyncDir(db.string());
  }
  if (!fs::exists(stage, ec)) return Status::OK();
  if (!fs::exists(stage / kSeededMarker, ec)) {
    // An interrupted transfer: its files are incomplete; the primary sends
    // the tenant again.
    fs::remove_all(stage, ec);
    if (ec) return Status::IOError("cannot remove " + stage.string());
    return SyncDir(tenant_dir);
  }
  fs::remove_all(db, ec);
  if (!ec) fs::rename(stage, db, ec);
  if (ec) {
    return Status::IOError("cannot install reseeded database in " + tenant_dir +
                           ": " + ec.message());
  }
  Status s = SyncDir(tenant_dir);
  if (!s.ok()) return s;
  fs::remove(db / kSeededMarker, ec);
  if (ec)
    return Status::IOError("cannot remove " + (db / kSeededMarker).string());
  return SyncDir(db.string());
}

Status ClusterImpl::CheckWritable() const {
  if (switching_.load()) {
    return Status::Fenced("cluster '" + catalog_->cluster_id() +
                          "' is switching over to '" + switchover_to() +
                          "' and takes no writes (retrying the switchover "
                          "completes it)");
  }
  if (fenced_.load()) {
    std::lock_guard<std::mutex> lock(mu_);
    const catalogpb::ClusterBody& b = catalog_->cluster();
    return Status::Fenced(
        "cluster '" + catalog_->cluster_id() + "' is fenced: '" +
        b.fenced_by_cluster() + "' is the primary at epoch " +
        std::to_string(b.fenced_by_epoch()) + " (this cluster is at " +
        std::to_string(b.epoch()) + "); it takes no writes until it rejoins "
        "as a replica");
  }
  if (!replica_.load()) return Status::OK();
  const std::string primary = primary_cluster_id();
  return Status::ReadOnly("cluster '" + catalog_->cluster_id() +
                          "' is a passive replica" +
                          (primary.empty() ? "" : " of '" + primary + "'") +
                          "; write to its primary");
}

Status ClusterImpl::CheckRpo(TenantSlot& slot) {
  if (shipper_ == nullptr) return Status::OK();
  uint64_t bound = rpo_bound_ms_;
  {
    std::lock_guard<std::mutex> lock(slot.mu);
    if (slot.body.rpo_bound_set()) bound = slot.body.rpo_bound_ms();
  }
  if (bound == 0) return Status::OK();
  const uint64_t deadline = NowMicros() + rpo_wait_ms_ * 1000;
  for (;;) {
    const uint64_t since = slot.unacked_since.load();
    const uint64_t now = NowMicros();
    if (since == 0 || now < since || now - since <= bound * 1000) {
      return Status::OK();
    }
    if (now >= deadline) {
      char age[32];
      std::snprintf(age, sizeof(age), "%.3f", (now - since) / 1e6);
      return Status::LagExceeded(
          "tenant '" + slot.id +
          "': its oldest write not yet acknowledged by the replica is " + age +
          " s old, past its RPO bound of " + std::to_string(bound) +
          " ms; writes resume once the replica catches up");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

void ClusterImpl::OnWrite(TenantSlot& slot, uint64_t seq,
                          uint64_t commit_micros,
                          const rocksdb::WriteBatch& committed) {
  if (shipper_ != nullptr) shipper_->Queue(slot, committed, commit_micros);
  slot.commits.pushing.fetch_sub(1);
  uint64_t prev = slot.latest_seq.load(std::memory_order_relaxed);
  while (prev < seq && !slot.latest_seq.compare_exchange_weak(prev, seq)) {
  }
  prev = slot.latest_commit.load(std::memory_order_relaxed);
  while (prev < commit_micros &&
         !slot.latest_commit.compare_exchange_weak(prev, commit_micros)) {
  }
  uint64_t none = 0;
  slot.unacked_since.compare_exchange_strong(none, commit_micros);
  if (shipper_ != nullptr) shipper_->NotifyWrite(slot);
}

Status ClusterImpl::Changed(std::string_view id, Status s) {
  if (s.ok() && shipper_ != nullptr) {
    shipper_->NotifyTenantChanged(std::string(id));
  }
  return s;
}

uint64_t ClusterImpl::epoch() const {
  std::lock_guard<std::mutex> lock(mu_);
  return catalog_->cluster().epoch();
}

std::string ClusterImpl::region() const {
  std::lock_guard<std::mutex> lock(mu_);
  return catalog_->cluster().region();
}

std::string ClusterImpl::geography() const {
  std::lock_guard<std::mutex> lock(mu_);
  return catalog_->cluster().geography();
}

std::string ClusterImpl::primary_cluster_id() const {
  std::lock_guard<std::mutex> lock(mu_);
  return catalog_->cluster().primary_cluster_id();
}

Status ClusterImpl::SetPrimaryClusterId(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  catalogpb::ClusterBody body = catalog_->cluster();
  body.set_primary_cluster_id(id);
  return catalog_->SaveCluster(body);
}

std::vector<std::shared_ptr<TenantSlot>> ClusterImpl::LiveSlots() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<TenantSlot>> slots;
  slots.reserve(tenants_.size());
  for (const auto& [id, slot] : tenants_) {
    if (!slot->dropped.load()) slots.push_back(slot);
  }
  return slots;  // tenants_ is a sorted map
}

std::shared_ptr<TenantSlot> ClusterImpl::FindSlot(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tenants_.find(id);
  if (it == tenants_.end() || it->second->dropped.load()) return nullptr;
  return it->second;
}

catalogpb::TenantBody ClusterImpl::BodyOf(TenantSlot& slot) {
  std::lock_guard<std::mutex> lock(slot.mu);
  return slot.body;
}

Status ClusterImpl::BuildKeyring(const std::string& id,
                                 const catalogpb::TenantBody& body,
                                 std::shared_ptr<Keyring>* keyring) {
  auto ring = std::make_shared<Keyring>();
  const std::string& key_id = body.master_key_id();
  if (!keys_->HasKey(key_id)) {
    return Status::KeyRevoked("tenant '" + id +
                              "' is offline: its master key " + key_id +
                              " is not available");
  }
  for (const catalogpb::DataKey& k : body.keys()) {
    SecretKey key;
    Status s = catalog_->UnwrapDataKey(id, k.version(), key_id, k.wrapped(),
                                       &key, body.home_cluster_id());
    if (s.IsWrongKey()) {
      Audit("key.check_failed", TenantTarget(id), s, "tenant open")
          .PermitUncheckedError();
    }
    if (!s.ok()) return s;
    ring->Add(k.version(), key, k.version() == body.current_key_version());
  }
  *keyring = std::move(ring);
  return Status::OK();
}

Status ClusterImpl::ApplyReplicatedTenant(const catalogpb::TenantBody& in,
                                          const std::string& home_cluster,
                                          std::string* what) {
  Status s = ValidateId("tenant", in.tenant_id());
  if (!s.ok()) return s;
  if (!replica_.load()) {
    return Status::InvalidArgument("cluster '" + catalog_->cluster_id() +
                                   "' is not a replica");
  }
  if (in.state() != catalogpb::TenantBody::ACTIVE) {
    return Status::InvalidArgument("tenant '" + in.tenant_id() +
                                   "' arrived in a dropping state");
  }
  const std::string id = in.tenant_id();
  catalogpb::TenantBody body = in;
  if (body.home_cluster_id().empty()) body.set_home_cluster_id(home_cluster);
  // The keys stay wrapped as the primary wrapped them; check this replica
  // can unwrap them before taking the tenant on.
  std::shared_ptr<Keyring> incoming;
  if (encrypted_) {
    if (!keys_->HasKey(body.master_key_id())) {
      return Status::WrongKey(
          "cannot take tenant '" + id +
          "': its data keys are wrapped by "
          "master key " +
          body.master_key_id() +
          ", which this replica's key provider does not hold (a replica "
          "needs its primary's master keys)");
    }
    s = BuildKeyring(id, body, &incoming);
    if (!s.ok()) return s;
  }

  std::shared_ptr<TenantSlot> slot;
  std::shared_ptr<TenantDb> live;
  bool primary_retired = false;
  bool became_revoked = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (corrupt_.count(id) != 0) return corrupt_[id];
    auto it = tenants_.find(id);
    if (it == tenants_.end()) {
      const uint32_t max = catalog_->cluster().max_tenants();
      if (tenants_.size() + corrupt_.size() >= max) {
        return Status::TenantLimit("replica '" + catalog_->cluster_id() +
                                   "' already holds its maximum of " +
                                   std::to_string(max) + " tenants");
      }
      std::error_code ec;
      fs::remove_all(catalog_->TenantDir(id), ec);
      if (ec) {
        return Status::IOError("cannot clear leftover directory " +
                               catalog_->TenantDir(id) + ": " + ec.message());
      }
      s = catalog_->SaveTenant(body);
      if (!s.ok()) return s;
      auto created = std::make_shared<TenantSlot>(id);
      created->quota = EffectiveQuota(body);
      created->revoked = body.revoked();
      created->body = body;
      tenants_[id] = std::move(created);
      *what = "created, key versions " + std::to_string(body.keys_size());
      return Status::OK();
    }
    slot = it->second;
    if (slot->dropped.load()) {
      return Status::Busy("tenant '" + id + "' is being dropped");
    }
    const catalogpb::TenantBody old = BodyOf(*slot);
    // Versions the primary no longer has were destroyed there by a rekey;
    // this replica's own files may still use them until it rekeys too.
    catalogpb::TenantBody merged = body;
    for (const catalogpb::DataKey& k : old.keys()) {
      if (!HasVersion(merged, k.version())) {
        *merged.add_keys() = k;
        primary_retired = true;
      }
    }
    std::sort(merged.mutable_keys()->begin(), merged.mutable_keys()->end(),
              [](const catalogpb::DataKey& a, const catalogpb::DataKey& b) {
                return a.version() < b.version();
              });
    const bool same = merged.SerializeAsString() == old.SerializeAsString();
    if (same && !primary_retired) {
      *what = "unchanged";
      return Status::OK();
    }
    // Same record but versions the primary retired: the retirement below
    // still has to happen (a record seen mid-rekey, then the final one).
    if (!same) s = catalog_->SaveTenant(merged);
    if (!s.ok()) return s;
    became_revoked = merged.revoked() && !old.revoked();
    {
      std::lock_guard<std::mutex> slot_lock(slot->mu);
      slot->body = merged;
      live = slot->live.lock();
    }
    slot->quota = EffectiveQuota(merged);
    slot->revoked = merged.revoked();
    *what = "key version " + std::to_string(merged.current_key_version());
    if (merged.revoked() != old.revoked()) {
      *what += merged.revoked() ? ", revoked" : ", restored";
    }
    if (merged.quota_overridden() != old.quota_overridden() ||
        merged.quota() != old.quota()) {
      *what += ", quota " + std::to_string(merged.quota());
    }
  }
  // The open instance learns new versions (new files use the current one).
  if (live != nullptr && incoming != nullptr) {
    for (const catalogpb::DataKey& k : body.keys()) {
      SecretKey key;
      if (incoming->Get(k.version(), &key)) {
        live->keyring()->Add(k.version(), key,
                             k.version() == body.current_key_version());
      }
    }
  }
  live.reset();
  if (became_revoked) registry_->Evict(slot);
  if (primary_retired && !slot->revoked.load()) {
    // Follow the primary's rekey: rewrite every file under the current
    // version, then destroy the versions no file needs.
    s = Rekey(slot);
    std::vector<uint32_t> retired;
    if (s.ok()) s = RetireUnusedVersions(slot, &retired);
    if (!s.ok()) return s;
    *what +=
        ", rekeyed, retired " + std::to_string(retired.size()) + " versions";
  }
  return Status::OK();
}

Status ClusterImpl::DropReplicatedTenant(const std::string& id,
                                         DropReport* report) {
  return DoDropTenant(id, report);
}

void ClusterImpl::SetReplicationStatusSource(
    std::function<void(ReplicationStatus*)> source) {
  std::lock_guard<std::mutex> lock(status_source_mu_);
  status_source_ = std::move(source);
}

void ClusterImpl::FillFailoverStatus(ReplicationStatus* status) const {
  std::lock_guard<std::mutex> lock(mu_);
  const catalogpb::ClusterBody& b = catalog_->cluster();
  status->role = b.role();
  status->cluster_id = catalog_->cluster_id();
  status->epoch = b.epoch();
  if (b.fenced()) {
    status->fenced_by = b.fenced_by_cluster();
    status->fenced_by_epoch = b.fenced_by_epoch();
  }
  status->promoted_from = b.promoted_from();
  status->switchover_to = b.switchover_to();
  status->promoted_unix_micros = b.promoted_unix_micros();
}

Status ClusterImpl::GetReplicationStatus(ReplicationStatus* status) {
  *status = ReplicationStatus();
  if (shipper_ != nullptr) {
    shipper_->FillStatus(status);
    return Status::OK();
  }
  {
    std::lock_guard<std::mutex> lock(status_source_mu_);
    if (status_source_) {
      status_source_(status);
      return Status::OK();
    }
  }
  FillFailoverStatus(status);
  status->connection = fenced_.load() ? "fenced" : "off";
  status->peer_cluster_id = primary_cluster_id();
  status->wal_retention_seconds = wal_retention_seconds_;
  status->as_of_unix_micros = NowMicros();
  return Status::OK();
}

}  // namespace coffer
