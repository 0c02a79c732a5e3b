// Copyright (c) Coffer authors.

#include "engine/cluster_impl.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "engine/clock.h"
#include "engine/record_file.h"
#include "engine/storage.h"
#include "replication/shipper.h"

namespace coffer {

namespace {

namespace fs = std::filesystem;

constexpr uint32_t kFirstKeyVersion = 1;
constexpr auto kDropWait = std::chrono::seconds(10);
constexpr auto kResumeWait = std::chrono::seconds(2);
// A stopped tenant is reopened only with at least this much free space: a
// reopen on a full disk would fail, and reads would fail with it.
constexpr uint64_t kMinFreeBytesToReopen = uint64_t{1} << 20;

std::string RealPath(const std::string& path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) != nullptr ? buf : path;
}

// PermissionDenied when the master key file lies inside the data directory,
// where anyone with a copy of the disk would have both.
Status CheckKeyOutside(const std::string& dir, const KeyProvider& keys) {
  const std::string root = RealPath(dir) + "/";
  for (const std::string& location : keys.Locations()) {
    if ((RealPath(location) + "/").rfind(root, 0) == 0) {
      return Status::PermissionDenied(
          "master key " + location + " lies inside data directory " + dir +
          "; keep keys outside the data they protect");
    }
  }
  return Status::OK();
}

std::string Quote(std::string_view id) { return "'" + std::string(id) + "'"; }

}  // namespace

Status Cluster::Create(const std::string& dir, const ClusterOptions& options,
                       const OpenOptions& open_options,
                       std::shared_ptr<KeyProvider> keys,
                       std::unique_ptr<Cluster>* result) {
  return ClusterImpl::OpenOrCreate(dir, &options, open_options, std::move(keys),
                                   result);
}

Status Cluster::Open(const std::string& dir, const OpenOptions& open_options,
                     std::shared_ptr<KeyProvider> keys,
                     std::unique_ptr<Cluster>* result) {
  return ClusterImpl::OpenOrCreate(dir, nullptr, open_options, std::move(keys),
                                   result);
}

Status ClusterImpl::OpenOrCreate(const std::string& dir,
                                 const ClusterOptions* create,
                                 const OpenOptions& open_options,
                                 std::shared_ptr<KeyProvider> keys,
                                 std::unique_ptr<Cluster>* result) {
  if (keys == nullptr) return Status::InvalidArgument("no key provider given");
  if (dir.empty()) return Status::InvalidArgument("data directory is empty");
  std::unique_ptr<ClusterImpl> c(new ClusterImpl());
  Status s = c->Init(dir, create, open_options, std::move(keys));
  if (!s.ok()) return s;
  *result = std::move(c);
  return Status::OK();
}

Status ClusterImpl::Init(const std::string& dir, const ClusterOptions* create,
                         const OpenOptions& open_options,
                         std::shared_ptr<KeyProvider> keys) {
  dir_ = dir;
  keys_ = std::move(keys);
  const std::string cluster_file = dir + "/" + kClusterFile;
  struct stat st;
  if (create != nullptr) {
    Status s = ValidateId("cluster", create->cluster_id);
    if (s.ok()) s = ValidateId("region", create->region);
    if (s.ok()) s = ValidateId("geography", create->geography);
    if (!s.ok()) return s;
    if (create->limits.max_tenants == 0) {
      return Status::InvalidArgument("max_tenants must be at least 1");
    }
    if (::stat(cluster_file.c_str(), &st) == 0) {
      return Status::AlreadyExists("directory " + dir +
                                   " already holds a Coffer cluster");
    }
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return Status::IOError("cannot create data directory " + dir + ": " +
                             std::strerror(errno));
    }
  } else if (::stat(cluster_file.c_str(), &st) != 0) {
    return Status::NotFound("no Coffer cluster in " + dir +
                            " (create one with: coffer init)");
  }
  Status s = CheckKeyOutside(dir, *keys_);
  if (!s.ok()) return s;
  s = DirLock::Acquire(dir, &lock_);
  if (!s.ok()) return s;

  principal_ = open_options.principal;
  if (principal_.empty()) {
    struct passwd* pw = ::getpwuid(::geteuid());
    principal_ =
        pw != nullptr ? pw->pw_name : "uid-" + std::to_string(::geteuid());
  }
  if (create != nullptr) {
    if (open_options.plaintext_for_benchmarks &&
        open_options.rocksdb_ctr_for_benchmarks) {
      return Status::InvalidArgument(
          "plaintext_for_benchmarks and rocksdb_ctr_for_benchmarks exclude "
          "each other");
    }
    s = Catalog::Create(dir, *create, open_options.plaintext_for_benchmarks,
                        open_options.rocksdb_ctr_for_benchmarks, keys_,
                        &catalog_);
  } else {
    s = Catalog::Load(dir, keys_, &catalog_);
  }
  if (s.IsWrongKey()) {
    AuditLog::RecordUnauthenticated(dir, principal_, "cluster.open", "cluster",
                                    Status::CodeName(s.code()), s.message());
  }
  if (!s.ok()) return s;
  s = AuditLog::Open(dir, catalog_->catalog_key(), &audit_);
  if (!s.ok()) return s;
  if (create != nullptr) {
    s = Audit("cluster.init", "cluster:" + create->cluster_id, Status::OK(),
              "region " + create->region + ", geography " + create->geography +
                  ", max tenants " +
                  std::to_string(create->limits.max_tenants));
    if (!s.ok()) return s;
  }
  encrypted_ = !catalog_->cluster().plaintext_for_benchmarks();
  rocksdb_ctr_ = catalog_->cluster().rocksdb_ctr_for_benchmarks();
  if (rocksdb_ctr_ != open_options.rocksdb_ctr_for_benchmarks) {
    return Status::InvalidArgument(
        "cluster in " + dir + " was created " +
        (rocksdb_ctr_ ? "with" : "without") +
        " the RocksDB CTR benchmark baseline; open it the same way");
  }
  if (encrypted_ == open_options.plaintext_for_benchmarks) {
    return Status::InvalidArgument(
        "cluster in " + dir + " was created " +
        (encrypted_ ? "encrypted" : "in plaintext benchmark mode") +
        "; it cannot be opened in the other mode");
  }
  cluster_quota_ = catalog_->cluster().cluster_quota();

  std::map<std::string, catalogpb::TenantBody> bodies;
  std::vector<std::string> orphans;
  s = catalog_->LoadTenants(&bodies, &corrupt_, &orphans);
  if (!s.ok()) return s;
  for (const std::string& id : orphans) {
    // Nothing in a directory without a record can be decrypted (its keys
    // lived only in the record): finish the crashed create or drop.
    DropReport removed;
    s = RemoveTenantFiles(id, &removed);
    Status a = Audit("tenant.cleanup", TenantTarget(id), s,
                     "directory without a tenant record removed, " +
                         std::to_string(removed.files_removed) + " files");
    if (!a.ok()) return a;
  }
  for (auto& [id, body] : bodies) {
    if (body.state() == catalogpb::TenantBody::DROPPING) {
      // A drop that crashed after destroying the keys: finish it.
      s = RemoveTenantFiles(id, nullptr);
      if (!s.ok()) return s;
      continue;
    }
    auto slot = std::make_shared<TenantSlot>(id);
    slot->quota = EffectiveQuota(body);
    slot->revoked = body.revoked();
    slot->used_bytes = OnDiskUsage(catalog_->TenantDbDir(id), encrypted_);
    cluster_used_ += slot->used_bytes.load();
    slot->body = std::move(body);
    tenants_[id] = std::move(slot);
  }

  replica_ = catalog_->cluster().role() == "replica";
  fenced_ = catalog_->cluster().fenced();
  {
    std::lock_guard<std::mutex> lock(mu_);
    CacheForkInfoLocked();
  }
  switching_ = !catalog_->cluster().switchover_to().empty();
  OpenOptions effective = open_options;
  const bool shipping = !open_options.replication.replica_address.empty();
  if (shipping && replica_) {
    return Status::InvalidArgument(
        "cluster '" + catalog_->cluster_id() +
        "' is a passive replica; only a primary ships to a replica");
  }
  // A rejoining former primary keeps its logs: they hold what it may have
  // to export as rollback.
  if ((shipping || catalog_->cluster().rejoin_from_epoch() != 0) &&
      effective.wal_retention_seconds == 0) {
    effective.wal_retention_seconds = kDefaultShippingRetentionSeconds;
  }
  wal_retention_seconds_ = effective.wal_retention_seconds;
  rpo_bound_ms_ = open_options.replication.rpo_bound_ms;
  rpo_wait_ms_ = open_options.replication.rpo_wait_ms;
  shared_ = std::make_unique<SharedResources>(effective);
  registry_ = std::make_unique<TenantRegistry>(
      open_options.max_open_tenants,
      [this](TenantSlot& slot, std::shared_ptr<TenantDb>* db) {
        return OpenTenantDb(slot, db);
      });
  if (open_options.maintenance_interval_ms > 0) {
    maintenance_ = std::thread([this] { MaintenanceLoop(); });
  }
  if (shipping) {
    shipper_ = std::make_unique<Shipper>(this, open_options.replication);
    s = shipper_->Start();
    if (!s.ok()) return s;
  }
  return Status::OK();
}

ClusterImpl::~ClusterImpl() {
  shipper_.reset();  // stops shipping before tenants close
  if (maintenance_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(maintenance_mu_);
      stopping_ = true;
    }
    maintenance_cv_.notify_all();
    maintenance_.join();
  }
  if (registry_ != nullptr) registry_->CloseAll();
}

uint64_t ClusterImpl::EffectiveQuota(const catalogpb::TenantBody& body) const {
  return body.quota_overridden() ? body.quota()
                                 : catalog_->cluster().default_tenant_quota();
}

Status ClusterImpl::OpenTenantDb(TenantSlot& slot,
                                 std::shared_ptr<TenantDb>* db) {
  std::shared_ptr<Keyring> keyring;
  if (encrypted_) {
    Status s = BuildKeyring(slot.id, slot.body, &keyring);
    if (!s.ok()) return s;
  }
  // A reseed that crashed after its files were complete is finished first.
  Status s = FinishSeedInstall(catalog_->TenantDir(slot.id));
  if (!s.ok()) return s;
  std::unique_ptr<TenantDb> opened;
  s = TenantDb::Open(slot.id, catalog_->TenantDbDir(slot.id), keyring,
                     rocksdb_ctr_, *shared_, &opened);
  if (!s.ok()) return s;
  if (!replica_.load()) {
    s = RecordForkPoint(slot.id, *opened);
    if (!s.ok()) return s;
    slot.fork_pending = false;
  }
  const uint64_t latest = opened->db()->GetLatestSequenceNumber();
  uint64_t prev = slot.latest_seq.load();
  while (prev < latest && !slot.latest_seq.compare_exchange_weak(prev, latest)) {
  }
  slot.seq_known = true;
  *db = std::move(opened);
  return Status::OK();
}

ClusterInfo ClusterImpl::Describe() const {
  std::lock_guard<std::mutex> lock(mu_);
  const catalogpb::ClusterBody& b = catalog_->cluster();
  ClusterInfo info;
  info.cluster_id = catalog_->cluster_id();
  info.region = b.region();
  info.geography = b.geography();
  info.role = b.role();
  info.epoch = b.epoch();
  info.primary_cluster_id = b.primary_cluster_id();
  info.limits.max_tenants = b.max_tenants();
  info.limits.default_tenant_quota = b.default_tenant_quota();
  info.limits.cluster_quota = b.cluster_quota();
  info.data_dir = dir_;
  return info;
}

Status ClusterImpl::GetStats(ClusterStats* stats) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats->tenants = tenants_.size() + corrupt_.size();
  }
  stats->open_tenants = registry_->open_count();
  stats->used_bytes = cluster_used_.load();
  stats->block_cache_usage = shared_->block_cache->GetUsage();
  stats->memtable_usage = shared_->write_buffers->memory_usage();
  stats->tenant_opens = registry_->opens();
  stats->tenant_closes = registry_->closes();
  return Status::OK();
}

Status ClusterImpl::FindSlotLocked(std::string_view id,
                                   std::shared_ptr<TenantSlot>* slot) const {
  Status s = ValidateId("tenant", id);
  if (!s.ok()) return s;
  auto it = tenants_.find(std::string(id));
  if (it != tenants_.end()) {
    *slot = it->second;
    return Status::OK();
  }
  auto bad = corrupt_.find(std::string(id));
  if (bad != corrupt_.end()) return bad->second;
  return Status::NotFound("tenant " + Quote(id) + " does not exist");
}

std::string TenantTarget(std::string_view id) {
  return "tenant:" + std::string(id.substr(0, 80));
}

Status ClusterImpl::Audit(const std::string& action, const std::string& target,
                          const Status& outcome, const std::string& detail) {
  std::string text = detail;
  if (!outcome.ok()) text += (text.empty() ? "" : "; ") + outcome.message();
  Status s = audit_->Append(principal_, action, target,
                            Status::CodeName(outcome.code()), text);
  if (!outcome.ok()) return outcome;
  if (!s.ok()) {
    return Status::IOError(action + " on " + target +
                           " was done, but could not be recorded in the "
                           "audit trail: " +
                           s.message());
  }
  return Status::OK();
}

Status ClusterImpl::CreateTenant(std::string_view id,
                                 const TenantOptions& options) {
  Status s = CheckWritable();
  if (s.ok()) s = Changed(id, DoCreateTenant(id, options));
  return Audit("tenant.create", TenantTarget(id), s,
               options.quota ? "quota " + std::to_string(*options.quota)
                             : std::string("default quota"));
}

Status ClusterImpl::DoCreateTenant(std::string_view id,
                                   const TenantOptions& options) {
  Status s = ValidateId("tenant", id);
  if (!s.ok()) return s;
  const std::string tid(id);
  std::lock_guard<std::mutex> lock(mu_);
  if (tenants_.count(tid) != 0 || corrupt_.count(tid) != 0) {
    return Status::AlreadyExists("tenant " + Quote(id) + " already exists");
  }
  const uint32_t max = catalog_->cluster().max_tenants();
  if (tenants_.size() + corrupt_.size() >= max) {
    return Status::TenantLimit("cluster '" + catalog_->cluster_id() +
                               "' already holds its maximum of " +
                               std::to_string(max) + " tenants");
  }
  // A directory without a valid record is what a crashed create or drop
  // leaves behind: nothing in it is reachable, so start clean.
  std::error_code ec;
  fs::remove_all(catalog_->TenantDir(tid), ec);
  if (ec) {
    return Status::IOError("cannot clear leftover directory " +
                           catalog_->TenantDir(tid) + ": " + ec.message());
  }

  catalogpb::TenantBody body;
  body.set_tenant_id(tid);
  body.set_created_unix_micros(NowMicros());
  if (options.quota.has_value()) {
    body.set_quota_overridden(true);
    body.set_quota(*options.quota);
  }
  // During a master-key rotation new tenants already use the new key.
  const std::string cluster_key = catalog_->rotating_to().empty()
                                      ? catalog_->master_key_id()
                                      : catalog_->rotating_to();
  body.set_master_key_id(options.master_key_id.value_or(cluster_key));
  if (options.rpo_bound_ms.has_value()) {
    body.set_rpo_bound_set(true);
    body.set_rpo_bound_ms(*options.rpo_bound_ms);
  }
  if (encrypted_ && !keys_->HasKey(body.master_key_id())) {
    return Status::NotFound("master key " + body.master_key_id() +
                            " is not available in the key provider");
  }
  if (encrypted_) {
    SecretKey dek;
    s = SecretKey::Random(&dek);
    std::string wrapped;
    if (s.ok()) {
      s = catalog_->WrapDataKey(tid, kFirstKeyVersion, body.master_key_id(),
                                dek, &wrapped);
    }
    if (!s.ok()) return s;
    catalogpb::DataKey* k = body.add_keys();
    k->set_version(kFirstKeyVersion);
    k->set_wrapped(wrapped);
    k->set_created_unix_micros(body.created_unix_micros());
    body.set_current_key_version(kFirstKeyVersion);
  }
  s = catalog_->SaveTenant(body);
  if (!s.ok()) {
    fs::remove_all(catalog_->TenantDir(tid), ec);
    return s;
  }
  auto slot = std::make_shared<TenantSlot>(tid);
  slot->quota = EffectiveQuota(body);
  slot->body = std::move(body);
  tenants_[tid] = std::move(slot);
  return Status::OK();
}

Status ClusterImpl::RemoveTenantFiles(const std::string& id,
                                      DropReport* report) {
  const std::string dir = catalog_->TenantDir(id);
  const std::string record = dir + "/" + kTenantFile;
  std::error_code ec;
  // Data first, the (keyless) record last: a crash in between is finished by
  // the next open.
  if (fs::is_symlink(fs::symlink_status(dir, ec))) {
    return Status::InvalidArgument("tenant directory " + dir +
                                   " is a symbolic link; not removing it");
  }
  std::vector<fs::path> files;
  // Symbolic links inside are removed as links, never followed.
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (fs::is_regular_file(it->symlink_status()) && it->path() != record) {
      files.push_back(it->path());
    }
  }
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return Status::IOError("cannot list " + dir + ": " + ec.message());
  }
  for (const fs::path& f : files) {
    uint64_t size = fs::file_size(f, ec);
    if (ec) size = 0;
    if (!fs::remove(f, ec) || ec) {
      return Status::IOError("cannot remove " + f.string() + ": " +
                             ec.message());
    }
    if (report != nullptr) {
      report->files_removed++;
      report->bytes_removed += size;
    }
  }
  // Then the (now empty) database directories, the record, the directory.
  fs::remove_all(catalog_->TenantDbDir(id), ec);
  if (!ec) fs::remove(record + ".tmp", ec);
  if (!ec) fs::remove(record, ec);
  if (!ec) fs::remove_all(dir, ec);
  if (ec) return Status::IOError("cannot remove " + dir + ": " + ec.message());
  return SyncDir(dir_ + "/" + kTenantsDir);
}

Status ClusterImpl::DropTenant(std::string_view id, DropReport* report) {
  DropReport local;
  DropReport* r = report != nullptr ? report : &local;
  Status s = CheckWritable();
  if (s.ok()) s = Changed(id, DoDropTenant(id, r));
  std::string versions;
  for (uint32_t v : r->key_versions_destroyed) {
    versions += (versions.empty() ? "" : ",") + std::to_string(v);
  }
  return Audit("tenant.drop", TenantTarget(id), s,
               "crypto-shred: key versions [" + versions + "] destroyed, " +
                   std::to_string(r->files_removed) + " files removed");
}

Status ClusterImpl::DoDropTenant(std::string_view id, DropReport* r) {
  const auto start = std::chrono::steady_clock::now();
  std::shared_ptr<TenantSlot> slot;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Status s = FindSlotLocked(id, &slot);
    if (!s.ok()) return s;
    if (slot->dropped.exchange(true)) {
      return Status::NotFound("tenant " + Quote(id) + " is being dropped");
    }
  }
  Status s = registry_->CloseForDrop(slot, kDropWait);
  if (!s.ok()) {
    slot->dropped = false;
    return s;
  }
  *r = DropReport();
  r->tenant = slot->id;
  std::lock_guard<std::mutex> lock(mu_);
  // Crypto-shred: the record loses its wrapped keys (durably) before any file
  // goes, so even a copy of the files taken now cannot be decrypted.
  catalogpb::TenantBody body;
  {
    std::lock_guard<std::mutex> slot_lock(slot->mu);
    body = slot->body;
  }
  for (const catalogpb::DataKey& k : body.keys()) {
    r->key_versions_destroyed.push_back(k.version());
  }
  body.clear_keys();
  body.set_state(catalogpb::TenantBody::DROPPING);
  s = catalog_->SaveTenant(body);
  if (!s.ok()) {
    slot->dropped = false;
    return s;
  }
  {
    std::lock_guard<std::mutex> slot_lock(slot->mu);
    slot->body = body;
  }
  tenants_.erase(slot->id);
  cluster_used_ -= slot->used_bytes.load();
  s = RemoveTenantFiles(slot->id, r);
  r->micros = MicrosSince(start);
  return s;
}

std::vector<std::string> ClusterImpl::ListTenants() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> ids;
  for (const auto& [id, slot] : tenants_) ids.push_back(id);
  for (const auto& [id, status] : corrupt_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

Status ClusterImpl::DescribeTenant(std::string_view id, TenantInfo* info) {
  std::shared_ptr<TenantSlot> slot;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Status s = FindSlotLocked(id, &slot);
    if (!s.ok()) return s;
  }
  std::shared_ptr<TenantDb> db;
  {
    std::lock_guard<std::mutex> lock(slot->mu);
    info->id = slot->id;
    info->created_unix_micros = slot->body.created_unix_micros();
    info->quota_overridden = slot->body.quota_overridden();
    info->key_version = slot->body.current_key_version();
    info->master_key_id = slot->body.master_key_id();
    db = slot->db;
  }
  info->quota = slot->quota.load();
  info->open = db != nullptr;
  info->used_bytes = db != nullptr ? db->UsedBytes() : slot->used_bytes.load();
  return Status::OK();
}

Status ClusterImpl::SetTenantQuota(std::string_view id, uint64_t quota) {
  Status s = CheckWritable();
  if (s.ok()) s = Changed(id, DoSetTenantQuota(id, quota));
  return Audit("tenant.quota", TenantTarget(id), s,
               "quota " + std::to_string(quota));
}

Status ClusterImpl::DoSetTenantQuota(std::string_view id, uint64_t quota) {
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<TenantSlot> slot;
  Status s = FindSlotLocked(id, &slot);
  if (!s.ok()) return s;
  catalogpb::TenantBody body;
  {
    std::lock_guard<std::mutex> slot_lock(slot->mu);
    body = slot->body;
  }
  body.set_quota_overridden(true);
  body.set_quota(quota);
  s = catalog_->SaveTenant(body);
  if (!s.ok()) return s;
  {
    std::lock_guard<std::mutex> slot_lock(slot->mu);
    slot->body = body;
  }
  slot->quota = quota;
  return Status::OK();
}

Status ClusterImpl::GetTenant(std::string_view id,
                              std::unique_ptr<Tenant>* tenant) {
  std::shared_ptr<TenantSlot> slot;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Status s = FindSlotLocked(id, &slot);
    if (!s.ok()) return s;
  }
  *tenant = NewTenantHandle(this, std::move(slot));
  return Status::OK();
}

Status ClusterImpl::ReadAudit(uint64_t since_unix_micros,
                              std::vector<AuditEntry>* entries) const {
  return audit_->Read(since_unix_micros, entries);
}

Status ClusterImpl::VerifyAudit(AuditVerification* result) {
  std::lock_guard<std::mutex> lock(mu_);
  catalogpb::ClusterBody body = catalog_->cluster();
  std::string head;
  Status s = audit_->Verify(body.audit_anchor_seq(), body.audit_anchor_mac(),
                            result, &head);
  if (s.ok()) {
    body.set_audit_anchor_seq(result->head_seq);
    body.set_audit_anchor_mac(head);
    s = catalog_->SaveCluster(body);
  }
  // Recorded after the check, so the entry is part of the next one.
  Status a = Audit("audit.verify", "audit", s,
                   std::to_string(result->entries) + " entries");
  return s.ok() ? a : s;
}

Status ClusterImpl::CheckQuota(TenantSlot& slot, const TenantDb& db,
                               uint64_t adding) {
  const uint64_t used = db.UsedBytes();
  const uint64_t before = slot.used_bytes.exchange(used);
  const uint64_t total = cluster_used_.fetch_add(used - before) + used - before;
  const uint64_t quota = slot.quota.load();
  if (quota != 0 && used + adding > quota) {
    return Status::QuotaExceeded(
        "tenant " + Quote(slot.id) + " would exceed its quota of " +
        std::to_string(quota) + " bytes (uses " + std::to_string(used) +
        ", write adds " + std::to_string(adding) +
        "); delete data or raise the quota");
  }
  const uint64_t cluster_quota = cluster_quota_.load();
  if (cluster_quota != 0 && total + adding > cluster_quota) {
    return Status::QuotaExceeded(
        "cluster would exceed its quota of " + std::to_string(cluster_quota) +
        " bytes (uses " + std::to_string(total) + "); delete data");
  }
  return Status::OK();
}

Status ClusterImpl::ResumeTenant(const std::shared_ptr<TenantSlot>& slot,
                                 std::shared_ptr<TenantDb>* db) {
  bool reopen = false;
  Status s = (*db)->Resume(&reopen);
  if (s.ok() || !reopen) return s;
  const std::string db_dir = catalog_->TenantDbDir(slot->id);
  uint64_t free_bytes = 0;
  if (BaseFileSystem()
          ->GetFreeSpace(db_dir, rocksdb::IOOptions(), &free_bytes, nullptr)
          .ok() &&
      free_bytes < kMinFreeBytesToReopen) {
    return s;
  }
  // A fresh instance recovers from what is durable, like after a crash.
  db->reset();
  s = registry_->Reopen(slot, kResumeWait);
  if (s.ok()) s = registry_->Pin(slot, db);
  return s;
}

}  // namespace coffer
