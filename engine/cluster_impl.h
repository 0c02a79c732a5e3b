// Copyright (c) Coffer authors.
//
// ClusterImpl: the Cluster behind the public API. Owns the directory lock,
// the catalog, the shared resources and the tenant registry.
//
// Locking: mu_ guards the catalog and the tenant map (administrative
// operations). Data operations never take mu_: a handle holds its tenant's
// slot and pins the open database through the registry.

#ifndef COFFER_ENGINE_CLUSTER_IMPL_H_
#define COFFER_ENGINE_CLUSTER_IMPL_H_

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "coffer/cluster.h"
#include "engine/audit_log.h"
#include "engine/catalog.h"
#include "engine/dir_lock.h"
#include "engine/tenant_db.h"
#include "engine/tenant_registry.h"
#include "rocksdb/write_batch.h"

namespace coffer {

class Shipper;

class ClusterImpl final : public Cluster {
 public:
  // Opens `dir`; when `create` is non-null, first creates a cluster there.
  static Status OpenOrCreate(const std::string& dir,
                             const ClusterOptions* create,
                             const OpenOptions& open_options,
                             std::shared_ptr<KeyProvider> keys,
                             std::unique_ptr<Cluster>* result);
  ~ClusterImpl() override;

  ClusterInfo Describe() const override;
  Status GetStats(ClusterStats* stats) override;
  Status CreateTenant(std::string_view id,
                      const TenantOptions& options) override;
  Status DropTenant(std::string_view id, DropReport* report) override;
  std::vector<std::string> ListTenants() const override;
  Status DescribeTenant(std::string_view id, TenantInfo* info) override;
  Status SetTenantQuota(std::string_view id, uint64_t quota) override;
  Status GetTenant(std::string_view id,
                   std::unique_ptr<Tenant>* tenant) override;
  Status ReadAudit(uint64_t since_unix_micros,
                   std::vector<AuditEntry>* entries) const override;
  Status VerifyAudit(AuditVerification* result) override;

  Status RotateMasterKey(const std::string& new_key_id,
                         MasterRotationReport* report) override;
  Status RotateTenantKey(std::string_view id, bool rekey,
                         KeyRotationReport* report) override;
  Status RevokeTenantKey(std::string_view id, std::string_view reason) override;
  Status RestoreTenantKey(std::string_view id) override;
  Status GetKeyStatus(std::string_view id, TenantKeyStatus* status) override;
  Status GetReplicationStatus(ReplicationStatus* status) override;
  Status Promote(PromotionReport* report) override;
  Status Rejoin(const std::string& new_primary) override;
  Status Switchover(SwitchoverReport* report) override;
  // Switchover steps (the shipper drives them): writes stop and the target
  // is recorded; then, once the target is the primary at `epoch`, this
  // cluster becomes its replica.
  Status BeginSwitchover(const std::string& target);
  Status FinishSwitchover(const std::string& target, uint64_t epoch);
  std::string switchover_to() const;

  // For tenant handles: the open database of `slot`. KeyRevoked while the
  // tenant is revoked or its master key is unavailable.
  Status Pin(const std::shared_ptr<TenantSlot>& slot,
             std::shared_ptr<TenantDb>* db);
  // For a write, flush or compaction on *db after RocksDB stopped taking
  // writes (a failed log write, flush or compaction: see
  // TenantDb::stopped): clears the error in place, or else closes and
  // reopens the tenant and pins the new instance into *db. Fails with the
  // error while it persists (a disk that is still full), reads unaffected.
  Status ResumeTenant(const std::shared_ptr<TenantSlot>& slot,
                      std::shared_ptr<TenantDb>* db);
  // QuotaExceeded if writing `adding` more bytes to the tenant would take it
  // or the cluster over quota. Refreshes the tenant's measured usage.
  Status CheckQuota(TenantSlot& slot, const TenantDb& db, uint64_t adding);
  // ReadOnly on a replica: client writes and administrative changes go to
  // the primary.
  Status CheckWritable() const;
  // LagExceeded when the tenant's oldest unacknowledged write is older than
  // its RPO bound (after waiting up to rpo_wait_ms for the replica).
  Status CheckRpo(TenantSlot& slot);
  // After a client write committed at `commit_micros` (tenant handles).
  // A client batch committed; `committed` is the batch as RocksDB wrote it.
  // Ends the write's TenantSlot::commits.pushing count.
  void OnWrite(TenantSlot& slot, uint64_t seq, uint64_t commit_micros,
               const rocksdb::WriteBatch& committed);

  // --- For replication (replication/); see engine/replication_host.cc ---

  const std::string& dir() const { return dir_; }
  const std::string& cluster_id() const { return catalog_->cluster_id(); }
  bool is_replica() const { return replica_.load(); }
  uint64_t epoch() const;
  std::string region() const;
  std::string geography() const;
  // A replica's paired primary; empty until the first one connected.
  std::string primary_cluster_id() const;
  Status SetPrimaryClusterId(const std::string& id);
  uint64_t wal_retention_seconds() const { return wal_retention_seconds_; }
  const SharedResources& shared() const { return *shared_; }
  TenantRegistry* registry() const { return registry_.get(); }

  // Every live tenant (not dropped, record readable), sorted by id.
  std::vector<std::shared_ptr<TenantSlot>> LiveSlots() const;
  // The live tenant `id`, or null.
  std::shared_ptr<TenantSlot> FindSlot(const std::string& id) const;
  static catalogpb::TenantBody BodyOf(TenantSlot& slot);
  // The data keys of `body`, unwrapped.
  Status BuildKeyring(const std::string& id, const catalogpb::TenantBody& body,
                      std::shared_ptr<Keyring>* keyring);

  // Replica: creates or updates a tenant from its primary's catalog body
  // (wrapped keys kept as they are, bound to `home_cluster`). Checks every
  // key unwraps first; follows a rekey (versions the primary destroyed) by
  // rekeying here too. *what says what changed, for the audit trail.
  Status ApplyReplicatedTenant(const catalogpb::TenantBody& body,
                               const std::string& home_cluster,
                               std::string* what);
  // Replica: crypto-shreds a tenant its primary dropped.
  Status DropReplicatedTenant(const std::string& id, DropReport* report);

  // Appends to the audit trail (see Audit below).
  Status RecordAudit(const std::string& action, const std::string& target,
                     const Status& outcome, const std::string& detail) {
    return Audit(action, target, outcome, detail);
  }
  // Where the status of a running replica server comes from, and who
  // promotes while it runs; null to detach.
  void SetReplicationStatusSource(
      std::function<void(ReplicationStatus*)> source);
  void SetPromoteHandler(std::function<Status(PromotionReport*)> handler);

  // --- Failover (engine/failover.cc) ---

  // Makes this replica a primary at the next epoch with the given receipts
  // (exact positions, in the old primary's numbering). Writes DIR/PROMOTION,
  // then the catalog; audited.
  Status FinishPromotion(std::vector<TenantLossReceipt> receipts,
                         const std::string& via, PromotionReport* report);
  // Learned that `by` is a primary at `epoch`, above this cluster's: stops
  // taking writes at once and for good (persisted) until it rejoins.
  Status Fence(uint64_t epoch, const std::string& by, const std::string& how);
  bool fenced() const { return fenced_.load(); }
  // Role, epoch, fencing and promotion fields of a status.
  void FillFailoverStatus(ReplicationStatus* status) const;
  // A replica follows its primary's (higher) epoch.
  Status AdoptEpoch(uint64_t epoch);
  uint64_t rejoin_from_epoch() const;
  KeyProvider* keys() const { return keys_.get(); }
  std::string master_key_id() const;
  // At the first open of a tenant after its cluster was promoted: records
  // where the old primary's history ends and this cluster's begins (for a
  // rejoin of the old primary).
  Status RecordForkPoint(const std::string& id, const TenantDb& db);
  // Before a write to a tenant that was open when its cluster was promoted.
  Status RecordPendingFork(TenantSlot& slot, const TenantDb& db);

 private:
  ClusterImpl() = default;

  Status Init(const std::string& dir, const ClusterOptions* create,
              const OpenOptions& open_options,
              std::shared_ptr<KeyProvider> keys);
  Status OpenTenantDb(TenantSlot& slot, std::shared_ptr<TenantDb>* db);
  Status DoCreateTenant(std::string_view id, const TenantOptions& options);
  Status DoDropTenant(std::string_view id, DropReport* report);
  Status DoSetTenantQuota(std::string_view id, uint64_t quota);
  Status DoRotateMasterKey(const std::string& new_key_id,
                           MasterRotationReport* report);
  Status DoRotateTenantKey(std::string_view id, bool rekey,
                           KeyRotationReport* report);
  // Rewrites every file of the tenant under its current key version.
  Status Rekey(const std::shared_ptr<TenantSlot>& slot);
  // Destroys (durably) the versions no file of the tenant uses any more.
  Status RetireUnusedVersions(const std::shared_ptr<TenantSlot>& slot,
                              std::vector<uint32_t>* retired);
  Status SetRevoked(std::string_view id, bool revoked, std::string_view reason);
  // Tells the shipper (if any) that tenant `id`'s record changed; returns s.
  Status Changed(std::string_view id, Status s);
  void MaintenanceLoop();
  void RunMaintenance();
  // The slot of a valid, existing tenant. REQUIRES: mu_ held.
  Status FindSlotLocked(std::string_view id,
                        std::shared_ptr<TenantSlot>* slot) const;
  // Removes a tenant's directory; counts what it removed.
  Status RemoveTenantFiles(const std::string& id, DropReport* report);
  uint64_t EffectiveQuota(const catalogpb::TenantBody& body) const;
  // Appends to the audit trail; returns `outcome` unchanged, or the audit
  // error when the operation succeeded but could not be recorded.
  Status Audit(const std::string& action, const std::string& target,
               const Status& outcome, const std::string& detail);

  std::string dir_;
  std::string principal_;  // the actor recorded in the audit trail
  std::unique_ptr<DirLock> lock_;
  std::shared_ptr<KeyProvider> keys_;
  bool encrypted_ = true;
  bool rocksdb_ctr_ = false;  // benchmark baseline cipher
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<SharedResources> shared_;
  std::unique_ptr<TenantRegistry> registry_;  // closes tenants before shared_

  mutable std::mutex mu_;
  std::unique_ptr<Catalog> catalog_;  // guarded by mu_
  std::map<std::string, std::shared_ptr<TenantSlot>>
      tenants_;                            // guarded by mu_
  std::map<std::string, Status> corrupt_;  // guarded by mu_
  std::atomic<uint64_t> cluster_used_{0};

  std::mutex maintenance_mu_;
  std::condition_variable maintenance_cv_;
  bool stopping_ = false;  // guarded by maintenance_mu_
  std::thread maintenance_;
  std::atomic<uint64_t> cluster_quota_{0};

  std::atomic<bool> replica_{false};
  std::atomic<bool> fenced_{false};
  std::atomic<bool> switching_{false};  // a switchover stopped writes
  // Copies of the catalog's promotion fields, for RecordForkPoint, which
  // runs under a tenant's lock (the catalog's mu_ is taken before tenant
  // locks elsewhere).
  std::mutex fork_info_mu_;
  uint64_t fork_promoted_ = 0;  // guarded by fork_info_mu_
  uint64_t fork_epoch_ = 0;     // guarded by fork_info_mu_
  std::string fork_former_;     // guarded by fork_info_mu_
  // REQUIRES: mu_ held. Refreshes the copies above from the catalog.
  void CacheForkInfoLocked();
  std::function<Status(PromotionReport*)> promote_handler_;  // status_source_mu_
  uint64_t wal_retention_seconds_ = 0;
  uint64_t rpo_bound_ms_ = 0;  // cluster-wide default
  uint64_t rpo_wait_ms_ = 0;
  std::mutex status_source_mu_;
  std::function<void(ReplicationStatus*)> status_source_;  // guarded
  // Ships to the replica; stopped first when the cluster closes.
  std::unique_ptr<Shipper> shipper_;
};

// A replica's reseed stages the primary's checkpoint in DIR/tenants/<id>/seed
// and marks it complete with the file SEEDED once its position is written;
// the staged database then replaces db/. FinishSeedInstall completes that
// replacement after a crash (a complete stage) or discards an incomplete
// stage. Called before a tenant's database opens.
inline constexpr char kSeedDir[] = "seed";
inline constexpr char kSeededMarker[] = "SEEDED";
Status FinishSeedInstall(const std::string& tenant_dir);

// Default write-ahead log retention of a primary that ships to a replica.
inline constexpr uint64_t kDefaultShippingRetentionSeconds = 3600;

namespace replpb {
class PromotionRecord;
}
// Conversions of a promotion's receipt (engine/failover.cc).
void PromotionToRecord(const PromotionReport& report,
                       replpb::PromotionRecord* record);
void PromotionFromRecord(const replpb::PromotionRecord& record,
                         PromotionReport* report);

// "tenant:<id>", the audit target of a tenant.
std::string TenantTarget(std::string_view id);

// A handle to one tenant (tenant_handle.cc).
std::unique_ptr<Tenant> NewTenantHandle(ClusterImpl* cluster,
                                        std::shared_ptr<TenantSlot> slot);

}  // namespace coffer

#endif  // COFFER_ENGINE_CLUSTER_IMPL_H_
