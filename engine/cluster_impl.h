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

#include "coffer/cluster.h"
#include "engine/audit_log.h"
#include "engine/catalog.h"
#include "engine/dir_lock.h"
#include "engine/tenant_db.h"
#include "engine/tenant_registry.h"

namespace coffer {

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

  // For tenant handles: the open database of `slot`. KeyRevoked while the
  // tenant is revoked or its master key is unavailable.
  Status Pin(const std::shared_ptr<TenantSlot>& slot,
             std::shared_ptr<TenantDb>* db);
  // QuotaExceeded if writing `adding` more bytes to the tenant would take it
  // or the cluster over quota. Refreshes the tenant's measured usage.
  Status CheckQuota(TenantSlot& slot, const TenantDb& db, uint64_t adding);

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
};

// "tenant:<id>", the audit target of a tenant.
std::string TenantTarget(std::string_view id);

// A handle to one tenant (tenant_handle.cc).
std::unique_ptr<Tenant> NewTenantHandle(ClusterImpl* cluster,
                                        std::shared_ptr<TenantSlot> slot);

}  // namespace coffer

#endif  // COFFER_ENGINE_CLUSTER_IMPL_H_
