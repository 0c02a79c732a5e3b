// Copyright (c) Coffer authors.
//
// Key lifecycle of a cluster: master-key rotation, data-key rotation and
// rekey, revocation, key status, and the background maintenance that
// enforces key age and notices master keys that became unavailable.

#include <dirent.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "engine/clock.h"
#include "engine/cluster_impl.h"
#include "engine/record_file.h"
#include "replication/shipper.h"
#include "rocksdb/convenience.h"
#include "rocksdb/file_system.h"

namespace coffer {

namespace {

constexpr auto kRekeyWait = std::chrono::seconds(5);

std::string Join(const std::vector<uint32_t>& v) {
  std::string out;
  for (uint32_t x : v) out += (out.empty() ? "" : ",") + std::to_string(x);
  return "[" + out + "]";
}

// Rewrites `path` through `fs`, so it is encrypted under the current key.
Status RewriteFile(rocksdb::FileSystem* fs, const std::string& path) {
  std::string data;
  rocksdb::IOStatus io = rocksdb::ReadFileToString(fs, path, &data);
  if (io.IsNotFound()) return Status::OK();
  const std::string tmp = path + ".rekey";
  if (io.ok()) io = rocksdb::WriteStringToFile(fs, data, tmp, /*sync=*/true);
  if (io.ok()) io = fs->RenameFile(tmp, path, rocksdb::IOOptions(), nullptr);
  Status s = FromRocks(io, "rewrite of " + path);
  // The old version is destroyed next: the rename must be durable first.
  if (s.ok()) s = SyncDir(path.substr(0, path.rfind('/')));
  return s;
}

}  // namespace

Status ClusterImpl::Pin(const std::shared_ptr<TenantSlot>& slot,
                        std::shared_ptr<TenantDb>* db) {
  if (slot->key_lost.load()) {
    std::string key_id;
    {
      std::lock_guard<std::mutex> lock(slot->mu);
      key_id = slot->body.master_key_id();
    }
    if (!keys_->HasKey(key_id)) {
      return Status::KeyRevoked("tenant '" + slot->id +
                                "' is offline: its master key " + key_id +
                                " is not available");
    }
    if (slot->key_lost.exchange(false)) {
      Audit("key.available", "tenant:" + slot->id, Status::OK(),
            "master key " + key_id + " is available again")
          .PermitUncheckedError();
    }
  }
  return registry_->Pin(slot, db);
}

Status ClusterImpl::RotateMasterKey(const std::string& new_key_id,
                                    MasterRotationReport* report) {
  MasterRotationReport local;
  MasterRotationReport* r = report != nullptr ? report : &local;
  Status s = CheckWritable();
  if (s.ok()) s = DoRotateMasterKey(new_key_id, r);
  if (s.ok()) {
    for (const std::string& id : ListTenants()) {
      Changed(id, s).PermitUncheckedError();  // only tells the shipper
    }
  }
  return Audit("key.rotate_master", "cluster:" + catalog_->cluster_id(), s,
               r->from_key_id == new_key_id
                   ? "already on " + new_key_id + "; nothing to re-wrap"
                   : "from " + r->from_key_id + " to " + new_key_id + ", " +
                         std::to_string(r->tenants_rewrapped) +
                         " tenants re-wrapped");
}

Status ClusterImpl::DoRotateMasterKey(const std::string& new_key_id,
                                      MasterRotationReport* r) {
  const auto start = std::chrono::steady_clock::now();
  *r = MasterRotationReport();
  std::string old_id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    old_id = catalog_->master_key_id();
    r->from_key_id = old_id;
    r->to_key_id = new_key_id;
    if (!encrypted_)
      return Status::NotSupported("cluster is in plaintext mode");
    const std::string resuming = catalog_->rotating_to();
    if (!resuming.empty() && resuming != new_key_id) {
      return Status::InvalidArgument(
          "a rotation to master key " + resuming +
          " is under way; finish it with that key first");
    }
    if (new_key_id == old_id) {
      // Already done (say, by a run that finished just before it was
      // killed): succeed, so that retrying is always safe.
      for (auto& [id, slot] : tenants_) {
        std::lock_guard<std::mutex> slot_lock(slot->mu);
        if (slot->body.master_key_id() != new_key_id) r->tenants_with_own_key++;
      }
      return Status::OK();
    }
    if (!keys_->HasKey(new_key_id) || !keys_->HasKey(old_id)) {
      return Status::InvalidArgument(
          "master-key rotation needs both keys: open the cluster with a "
          "provider holding " +
          old_id + " and " + new_key_id);
    }
    if (!corrupt_.empty()) {
      // Their keys could not be re-wrapped, and finishing would strand them
      // under a key the operator is about to throw away.
      std::string ids;
      for (const auto& [id, status] : corrupt_) ids += " " + id;
      return Status::Corruption(
          "records of tenants" + ids +
          " are unreadable; repair or drop them before rotating the master "
          "key");
    }
    // 1. Both keys open the catalog; tenants created from now on use the
    //    new key.
    Status s = catalog_->BeginMasterRotation(new_key_id);
    if (!s.ok()) return s;
  }
  // 2. Every tenant on the old key moves to the new one, one atomic record
  //    replacement each. mu_ is taken per tenant, so other administrative
  //    calls interleave; tenants stay open (their data keys do not change).
  for (;;) {
    std::vector<std::shared_ptr<TenantSlot>> pending;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& [id, slot] : tenants_) {
        std::lock_guard<std::mutex> slot_lock(slot->mu);
        if (slot->body.master_key_id() == old_id) pending.push_back(slot);
      }
    }
    if (pending.empty()) break;
    for (const auto& slot : pending) {
      std::lock_guard<std::mutex> lock(mu_);
      if (slot->dropped.load()) continue;
      catalogpb::TenantBody body;
      {
        std::lock_guard<std::mutex> slot_lock(slot->mu);
        body = slot->body;
      }
      if (body.master_key_id() != old_id) continue;
      for (catalogpb::DataKey& k : *body.mutable_keys()) {
        SecretKey dek;
        std::string wrapped;
        Status s = catalog_->UnwrapDataKey(slot->id, k.version(), old_id,
                                           k.wrapped(), &dek,
                                           body.home_cluster_id());
        if (s.ok()) {
          s = catalog_->WrapDataKey(slot->id, k.version(), new_key_id, dek,
                                    &wrapped, body.home_cluster_id());
        }
        if (!s.ok()) return s;
        k.set_wrapped(wrapped);
      }
      body.set_master_key_id(new_key_id);
      Status s = catalog_->SaveTenant(body);
      if (!s.ok()) return s;
      std::lock_guard<std::mutex> slot_lock(slot->mu);
      slot->body = body;
    }
  }
  // 3. Only the new key opens the catalog.
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, slot] : tenants_) {
    std::lock_guard<std::mutex> slot_lock(slot->mu);
    if (slot->body.master_key_id() == new_key_id) {
      r->tenants_rewrapped++;
    } else {
      r->tenants_with_own_key++;
    }
  }
  Status s = catalog_->FinishMasterRotation();
  r->micros = MicrosSince(start);
  return s;
}

Status ClusterImpl::RotateTenantKey(std::string_view id, bool rekey,
                                    KeyRotationReport* report) {
  KeyRotationReport local;
  KeyRotationReport* r = report != nullptr ? report : &local;
  Status s = CheckWritable();
  if (s.ok()) s = Changed(id, DoRotateTenantKey(id, rekey, r));
  return Audit(rekey ? "key.rekey" : "key.rotate", TenantTarget(id), s,
               "new version " + std::to_string(r->new_version) + ", retired " +
                   Join(r->versions_retired));
}

Status ClusterImpl::DoRotateTenantKey(std::string_view id, bool rekey,
                                      KeyRotationReport* r) {
  const auto start = std::chrono::steady_clock::now();
  *r = KeyRotationReport();
  r->tenant = std::string(id);
  std::shared_ptr<TenantSlot> slot;
  // Released after mu_: dropping the last reference closes the database.
  std::shared_ptr<TenantDb> live;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Status s = FindSlotLocked(id, &slot);
    if (!s.ok()) return s;
    if (!encrypted_)
      return Status::NotSupported("cluster is in plaintext mode");
    if (rocksdb_ctr_) {
      // The baseline provider has no per-file key versions to rotate.
      return Status::NotSupported(
          "key rotation is not available in the RocksDB CTR benchmark mode");
    }
    if (slot->revoked.load()) {
      return Status::KeyRevoked("tenant '" + slot->id +
                                "' is revoked; restore it before rotating");
    }
    catalogpb::TenantBody body;
    {
      std::lock_guard<std::mutex> slot_lock(slot->mu);
      body = slot->body;
    }
    if (!keys_->HasKey(body.master_key_id())) {
      return Status::KeyRevoked("tenant '" + slot->id +
                                "' is offline: its master key " +
                                body.master_key_id() + " is not available");
    }
    uint32_t version = 0;
    for (const catalogpb::DataKey& k : body.keys()) {
      version = std::max(version, k.version());
    }
    ++version;
    SecretKey dek;
    std::string wrapped;
    s = SecretKey::Random(&dek);
    if (s.ok()) {
      s = catalog_->WrapDataKey(slot->id, version, body.master_key_id(), dek,
                                &wrapped, body.home_cluster_id());
    }
    if (!s.ok()) return s;
    catalogpb::DataKey* k = body.add_keys();
    k->set_version(version);
    k->set_wrapped(wrapped);
    k->set_created_unix_micros(NowMicros());
    body.set_current_key_version(version);
    s = catalog_->SaveTenant(body);
    if (!s.ok()) return s;
    // The open instance (if any) learns the key too.
    {
      std::lock_guard<std::mutex> slot_lock(slot->mu);
      slot->body = body;
      live = slot->live.lock();
    }
    if (live != nullptr) live->keyring()->Add(version, dek, true);
    r->new_version = version;
  }
  live.reset();  // outside mu_; a rekey below needs the instance idle
  Status s;
  if (rekey) {
    s = Rekey(slot);
    r->rekeyed = s.ok();
  }
  if (s.ok()) s = RetireUnusedVersions(slot, &r->versions_retired);
  TenantKeyStatus status;
  if (s.ok()) s = GetKeyStatus(id, &status);
  r->versions = status.versions;
  r->micros = MicrosSince(start);
  return s;
}

Status ClusterImpl::Rekey(const std::shared_ptr<TenantSlot>& slot) {
  const std::string context = "rekey of tenant '" + slot->id + "'";
  {
    std::shared_ptr<TenantDb> db;
    Status s = Pin(slot, &db);
    if (!s.ok()) return s;
    // The marker makes the flush switch logs even with nothing else pending,
    // so no write-ahead log under an old key survives. It ships from memory
    // like a client write: the log that holds it goes with the old key.
    slot->commits.pushing.fetch_add(1);
    bool queued = false;
    s = db->FlushAll("rekey", std::to_string(db->keyring()->current()),
                     [&](const rocksdb::WriteBatch& marker) {
                       if (shipper_ != nullptr) {
                         shipper_->Queue(*slot, marker, 0);
                       }
                       queued = true;
                       slot->commits.pushing.fetch_sub(1);
                       if (shipper_ != nullptr) shipper_->NotifyWrite(*slot);
                     });
    if (!queued) slot->commits.pushing.fetch_sub(1);
    rocksdb::CompactRangeOptions co;
    co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    for (rocksdb::ColumnFamilyHandle* cf :
         {db->db()->DefaultColumnFamily(), db->system()}) {
      if (s.ok()) {
        s = FromRocks(db->db()->CompactRange(co, cf, nullptr, nullptr),
                      context);
      }
    }
    // IDENTITY is written once at creation and never again by RocksDB.
    if (s.ok()) {
      s = RewriteFile(db->fs(), catalog_->TenantDbDir(slot->id) + "/IDENTITY");
    }
    if (!s.ok()) return s;
  }
  // A reopen starts a new MANIFEST, WAL and info log under the new key.
  Status s = registry_->Reopen(slot, kRekeyWait);
  if (!s.ok()) return s;
  std::shared_ptr<TenantDb> db;
  s = Pin(slot, &db);
  if (!s.ok()) return s;
  // RocksDB keeps the two newest OPTIONS files; the older of them predates
  // the reopen. Persisting the options once more replaces it.
  s = FromRocks(db->db()->SetOptions({{"disable_auto_compactions", "false"}}),
                context);
  if (!s.ok()) return s;
  // Rotated-out info logs are diagnostics only; those under old keys go.
  const uint32_t current = db->keyring()->current();
  const std::string dir = catalog_->TenantDbDir(slot->id);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return Status::IOError("cannot list " + dir);
  std::vector<std::string> old_logs;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind("LOG.old", 0) == 0) old_logs.push_back(dir + "/" + name);
  }
  ::closedir(d);
  for (const std::string& path : old_logs) {
    std::string prefix;
    FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) continue;
    prefix.resize(kFilePrefixBytes);
    size_t n = std::fread(prefix.data(), 1, prefix.size(), f);
    std::fclose(f);
    FilePrefixInfo info;
    if (n != prefix.size() || !ParseFilePrefix(prefix, &info).ok() ||
        info.key_version != current) {
      std::remove(path.c_str());
    }
  }
  return Status::OK();
}

Status ClusterImpl::RetireUnusedVersions(
    const std::shared_ptr<TenantSlot>& slot, std::vector<uint32_t>* retired) {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<uint32_t, uint64_t> counts;
  Status scan =
      CountFilesByKeyVersion(catalog_->TenantDbDir(slot->id), &counts);
  if (!scan.ok()) return scan;  // retire nothing on a partial view
  if (counts.count(0) != 0) {
    // A file whose version cannot be read might need any version.
    return Status::OK();
  }
  catalogpb::TenantBody body;
  {
    std::lock_guard<std::mutex> slot_lock(slot->mu);
    body = slot->body;
  }
  catalogpb::TenantBody kept = body;
  kept.clear_keys();
  for (const catalogpb::DataKey& k : body.keys()) {
    auto it = counts.find(k.version());
    if (k.version() != body.current_key_version() &&
        (it == counts.end() || it->second == 0)) {
      retired->push_back(k.version());
    } else {
      *kept.add_keys() = k;
    }
  }
  if (retired->empty()) return Status::OK();
  Status s = catalog_->SaveTenant(kept);
  if (!s.ok()) {
    retired->clear();
    return s;
  }
  std::shared_ptr<TenantDb> live;
  {
    std::lock_guard<std::mutex> slot_lock(slot->mu);
    slot->body = kept;
    live = slot->live.lock();
  }
  if (live != nullptr) {
    for (uint32_t v : *retired) live->keyring()->Remove(v);
  }
  return Status::OK();
}

Status ClusterImpl::RevokeTenantKey(std::string_view id,
                                    std::string_view reason) {
  Status s = CheckWritable();
  if (s.ok()) s = Changed(id, SetRevoked(id, true, reason));
  return Audit("key.revoke", TenantTarget(id), s,
               "reason: " + std::string(reason.substr(0, 200)));
}

Status ClusterImpl::RestoreTenantKey(std::string_view id) {
  Status s = CheckWritable();
  if (s.ok()) s = Changed(id, SetRevoked(id, false, ""));
  return Audit("key.restore", TenantTarget(id), s, "");
}

Status ClusterImpl::SetRevoked(std::string_view id, bool revoked,
                               std::string_view reason) {
  std::shared_ptr<TenantSlot> slot;
  std::unique_lock<std::mutex> lock(mu_);
  Status s = FindSlotLocked(id, &slot);
  if (!s.ok()) return s;
  catalogpb::TenantBody body;
  {
    std::lock_guard<std::mutex> slot_lock(slot->mu);
    body = slot->body;
  }
  if (body.revoked() == revoked) {
    return Status::InvalidArgument("tenant '" + slot->id + "' is " +
                                   (revoked ? "already" : "not") + " revoked");
  }
  body.set_revoked(revoked);
  body.set_revoke_reason(std::string(reason));
  s = catalog_->SaveTenant(body);
  if (!s.ok()) return s;
  {
    std::lock_guard<std::mutex> slot_lock(slot->mu);
    slot->body = body;
  }
  slot->revoked = revoked;
  // Offline at once: the database closes (wiping its keys) as soon as the
  // operations already running let go of it.
  lock.unlock();  // a close may wait for background work: not under mu_
  if (revoked) registry_->Evict(slot);
  return Status::OK();
}

Status ClusterImpl::GetKeyStatus(std::string_view id, TenantKeyStatus* out) {
  std::shared_ptr<TenantSlot> slot;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Status s = FindSlotLocked(id, &slot);
    if (!s.ok()) return s;
  }
  catalogpb::TenantBody body;
  {
    std::lock_guard<std::mutex> lock(slot->mu);
    body = slot->body;
  }
  *out = TenantKeyStatus();
  out->tenant = slot->id;
  out->master_key_id = body.master_key_id();
  {
    std::lock_guard<std::mutex> lock(mu_);  // the catalog header may change
    out->own_master_key = body.master_key_id() != catalog_->master_key_id() &&
                          body.master_key_id() != catalog_->rotating_to();
  }
  out->master_key_available = keys_->HasKey(body.master_key_id());
  out->current_version = body.current_key_version();
  out->revoked = body.revoked();
  out->revoke_reason = body.revoke_reason();
  std::map<uint32_t, uint64_t> counts;
  Status scan =
      CountFilesByKeyVersion(catalog_->TenantDbDir(slot->id), &counts);
  if (!scan.ok()) return scan;
  for (const catalogpb::DataKey& k : body.keys()) {
    KeyVersionInfo v;
    v.version = k.version();
    v.created_unix_micros = k.created_unix_micros();
    auto it = counts.find(k.version());
    v.files = it == counts.end() ? 0 : it->second;
    out->versions.push_back(v);
  }
  return Status::OK();
}

void ClusterImpl::MaintenanceLoop() {
  std::unique_lock<std::mutex> lock(maintenance_mu_);
  const auto interval =
      std::chrono::milliseconds(shared_->options.maintenance_interval_ms);
  while (
      !maintenance_cv_.wait_for(lock, interval, [this] { return stopping_; })) {
    lock.unlock();
    RunMaintenance();
    lock.lock();
  }
}

void ClusterImpl::RunMaintenance() {
  std::vector<std::shared_ptr<TenantSlot>> slots;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, slot] : tenants_) slots.push_back(slot);
  }
  const uint64_t max_age_micros =
      shared_->options.max_data_key_age_seconds * 1000000;
  const uint64_t now = NowMicros();
  for (const auto& slot : slots) {
    if (slot->revoked.load() || slot->dropped.load()) continue;
    catalogpb::TenantBody body;
    bool open;
    {
      std::lock_guard<std::mutex> lock(slot->mu);
      body = slot->body;
      open = slot->db != nullptr;
    }
    // A master key that vanished from the provider takes its tenants
    // offline now, not at their next open.
    if (open && !slot->key_lost.load() &&
        !keys_->HasKey(body.master_key_id())) {
      slot->key_lost = true;
      registry_->Evict(slot);
      Audit("key.unavailable", "tenant:" + slot->id,
            Status::KeyRevoked("master key " + body.master_key_id() +
                               " is not available"),
            "tenant taken offline")
          .PermitUncheckedError();
      continue;
    }
    // A replica follows its primary's key versions.
    if (max_age_micros == 0 || !encrypted_ || replica_.load()) continue;
    uint64_t created = 0;
    for (const catalogpb::DataKey& k : body.keys()) {
      if (k.version() == body.current_key_version()) {
        created = k.created_unix_micros();
      }
    }
    if (created != 0 && now > created && now - created > max_age_micros) {
      RotateTenantKey(slot->id, /*rekey=*/false, nullptr)
          .PermitUncheckedError();  // recorded in the audit trail
    }
  }
}

}  // namespace coffer
