// Copyright (c) Coffer authors.
//
// The cluster catalog: identity, role, epoch and limits in DIR/CLUSTER, and
// one record per tenant (quota, master key id, wrapped data keys) in
// DIR/tenants/<id>/TENANT. Records are replaced atomically (record_file.h) and
// their bodies sealed with a catalog key that only the master key unwraps, so
// a reader without the master key learns the cluster id and nothing else, and
// any change to a record is detected.
//
// One record per tenant keeps creating a tenant O(1) in I/O with 10,000
// tenants, where a single catalog file would be rewritten whole each time.
//
// Thread-safety: not thread-safe; the owning cluster serializes calls.

#ifndef COFFER_ENGINE_CATALOG_H_
#define COFFER_ENGINE_CATALOG_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "coffer/key_provider.h"
#include "coffer/options.h"
#include "coffer/status.h"
#include "engine/proto/catalog.pb.h"
#include "engine/secure.h"

namespace coffer {

inline constexpr char kClusterFile[] = "CLUSTER";
inline constexpr char kLockFile[] = "LOCK";
inline constexpr char kTenantsDir[] = "tenants";
inline constexpr char kTenantFile[] = "TENANT";
inline constexpr char kTenantDbDir[] = "db";

class Catalog {
 public:
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  // Writes DIR/CLUSTER for a new cluster and creates DIR/tenants.
  // AlreadyExists if DIR/CLUSTER exists.
  static Status Create(const std::string& dir, const ClusterOptions& options,
                       bool plaintext_for_benchmarks,
                       bool rocksdb_ctr_for_benchmarks,
                       std::shared_ptr<KeyProvider> keys,
                       std::unique_ptr<Catalog>* result);

  // Reads DIR/CLUSTER and unwraps the catalog key. Writes nothing.
  static Status Load(const std::string& dir, std::shared_ptr<KeyProvider> keys,
                     std::unique_ptr<Catalog>* result);

  const std::string& dir() const { return dir_; }
  // Thread-safe: fixed at creation.
  const std::string& cluster_id() const { return cluster_id_; }
  const std::string& master_key_id() const { return header_.master_key_id(); }
  const catalogpb::ClusterBody& cluster() const { return body_; }
  // The key sealing the records; also the root of the audit key.
  const SecretKey& catalog_key() const { return catalog_key_; }
  Status SaveCluster(const catalogpb::ClusterBody& body);

  // Master-key rotation, in three crash-safe steps: Begin adds a wrap of the
  // catalog key under the new key (both keys now open the catalog); the
  // caller re-wraps every tenant's data keys; Finish drops the old wrap and
  // makes the new key the cluster's master key.
  const std::string& rotating_to() const { return header_.rotating_to(); }
  Status BeginMasterRotation(const std::string& new_key_id);
  Status FinishMasterRotation();

  // Reads every tenant record. Records that fail to verify are left on disk
  // untouched and reported in *corrupt as (tenant id, error); directories
  // without a record are listed in *orphans.
  Status LoadTenants(std::map<std::string, catalogpb::TenantBody>* tenants,
                     std::map<std::string, Status>* corrupt,
                     std::vector<std::string>* orphans) const;
  Status LoadTenant(const std::string& id, catalogpb::TenantBody* body) const;
  // Creates DIR/tenants/<id>/ if needed and replaces its record.
  Status SaveTenant(const catalogpb::TenantBody& body);

  std::string TenantDir(const std::string& id) const;
  std::string TenantDbDir(const std::string& id) const;

  // Wraps / unwraps a tenant data key under `master_key_id`, bound to the
  // tenant's home cluster (`home_cluster`, or this cluster when empty), the
  // tenant and the version.
  Status WrapDataKey(const std::string& tenant, uint32_t version,
                     const std::string& master_key_id, const SecretKey& key,
                     std::string* wrapped,
                     const std::string& home_cluster = "") const;
  Status UnwrapDataKey(const std::string& tenant, uint32_t version,
                       const std::string& master_key_id,
                       const std::string& wrapped, SecretKey* key,
                       const std::string& home_cluster = "") const;

 private:
  Catalog() = default;
  // Wraps the catalog key under `key_id` too (no-op if already wrapped).
  Status AddCatalogKeyWrap(const std::string& key_id, bool persist);

  std::string dir_;
  std::string cluster_id_;
  std::shared_ptr<KeyProvider> keys_;
  catalogpb::ClusterHeader header_;
  catalogpb::ClusterBody body_;
  SecretKey catalog_key_;
};

}  // namespace coffer

#endif  // COFFER_ENGINE_CATALOG_H_
