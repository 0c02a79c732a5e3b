// Copyright (c) Coffer authors.
//
// Cluster: one data directory on one node hosting many tenants, within the
// limits it was created with. Owns the shared resources every tenant uses (a
// block cache, a memtable budget, background threads) and opens tenants on
// first use, closing idle ones beyond OpenOptions::max_open_tenants.
//
// Example:
//   std::shared_ptr<coffer::KeyProvider> keys;
//   coffer::Status s = coffer::NewFileKeyProvider("/etc/coffer/master.key",
//   &keys); coffer::ClusterOptions copts; copts.cluster_id = "c1"; copts.region
//   = "eu-west-1"; copts.geography = "eu"; std::unique_ptr<coffer::Cluster>
//   cluster; if (s.ok()) s = coffer::Cluster::Create("/var/lib/coffer", copts,
//                                           coffer::OpenOptions(), keys,
//                                           &cluster);
//   if (s.ok()) s = cluster->CreateTenant("acme", coffer::TenantOptions());
//
// Thread-safety: all methods are safe for concurrent use. A directory is
// opened by one process at a time (an exclusive lock; a second open gets
// Busy). Destroying the Cluster closes every tenant; handles, iterators and
// snapshots must be released first.

#ifndef COFFER_INCLUDE_COFFER_CLUSTER_H_
#define COFFER_INCLUDE_COFFER_CLUSTER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/audit.h"
#include "coffer/key_provider.h"
#include "coffer/options.h"
#include "coffer/replication.h"
#include "coffer/status.h"
#include "coffer/tenant.h"

namespace coffer {

// Checks a tenant (or cluster, region, geography) id against
// [a-z0-9][a-z0-9_-]{0,62}. InvalidArgument names what is wrong.
Status ValidateId(std::string_view kind, std::string_view id);

// Parses "4096", "64KiB", "10MiB", "1GiB" (also "K"/"M"/"G", "KB"/"MB"/"GB"
// as binary units). InvalidArgument on anything else, including overflow.
Status ParseSize(std::string_view text, uint64_t* bytes);

struct TenantInfo {
  std::string id;
  uint64_t created_unix_micros = 0;
  uint64_t quota = 0;  // effective quota in bytes (0 = none)
  bool quota_overridden = false;
  uint64_t used_bytes = 0;   // on-disk live tables + unflushed memtable
  uint32_t key_version = 0;  // current data-key version
  std::string master_key_id;
  bool open = false;  // database currently open in this process
};

struct ClusterInfo {
  std::string cluster_id;
  std::string region;
  std::string geography;
  std::string role;  // "primary" or "replica"
  uint64_t epoch = 0;
  // A replica: the primary it was paired with (empty until the first one
  // connects).
  std::string primary_cluster_id;
  ClusterLimits limits;
  std::string data_dir;
};

struct ClusterStats {
  uint64_t tenants = 0;
  uint64_t open_tenants = 0;
  uint64_t used_bytes = 0;         // sum over tenants
  uint64_t block_cache_usage = 0;  // bytes
  uint64_t memtable_usage = 0;     // bytes under the shared budget
  uint64_t tenant_opens = 0;       // database opens since Cluster::Open
  uint64_t tenant_closes = 0;      // idle closes since Cluster::Open
};

// One data-key version of a tenant.
struct KeyVersionInfo {
  uint32_t version = 0;
  uint64_t created_unix_micros = 0;
  uint64_t files = 0;  // files of the tenant encrypted under this version
};

// The key state of one tenant. Never holds key bytes.
struct TenantKeyStatus {
  std::string tenant;
  std::string master_key_id;    // the master key wrapping its data keys
  bool own_master_key = false;  // a tenant-owned key, not the cluster's
  bool master_key_available = false;
  uint32_t current_version = 0;
  bool revoked = false;
  std::string revoke_reason;
  std::vector<KeyVersionInfo> versions;
};

struct KeyRotationReport {
  std::string tenant;
  uint32_t new_version = 0;
  bool rekeyed = false;                    // remaining files were rewritten
  std::vector<uint32_t> versions_retired;  // destroyed: no file needs them
  std::vector<KeyVersionInfo> versions;    // what remains
  uint64_t micros = 0;
};

struct MasterRotationReport {
  std::string from_key_id;
  std::string to_key_id;
  uint64_t tenants_rewrapped = 0;
  uint64_t tenants_with_own_key = 0;  // untouched: they use their own key
  uint64_t micros = 0;
};

// What dropping a tenant destroyed.
struct DropReport {
  std::string tenant;
  uint64_t files_removed = 0;
  uint64_t bytes_removed = 0;
  std::vector<uint32_t> key_versions_destroyed;
  uint64_t micros = 0;
};

class Cluster {
 public:
  virtual ~Cluster() = default;
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Creates a cluster in `dir` (created if missing; must not already hold a
  // cluster). AlreadyExists if it does; InvalidArgument for bad ids;
  // PermissionDenied when the key provider's file lies inside `dir`.
  static Status Create(const std::string& dir, const ClusterOptions& options,
                       const OpenOptions& open_options,
                       std::shared_ptr<KeyProvider> keys,
                       std::unique_ptr<Cluster>* result);

  // Opens an existing cluster. NotFound if `dir` holds none; Busy if another
  // process has it open; WrongKey if `keys` cannot unwrap its catalog
  // (nothing is modified, except that the failed attempt is appended to
  // DIR/AUDIT.pending for the audit trail); Corruption if the catalog fails
  // its checksum.
  static Status Open(const std::string& dir, const OpenOptions& open_options,
                     std::shared_ptr<KeyProvider> keys,
                     std::unique_ptr<Cluster>* result);

  virtual ClusterInfo Describe() const = 0;
  virtual Status GetStats(ClusterStats* stats) = 0;

  // Creates a tenant with a fresh random 256-bit data key. InvalidArgument
  // for a bad id (nothing is created on disk), AlreadyExists, TenantLimit.
  virtual Status CreateTenant(std::string_view id,
                              const TenantOptions& options) = 0;

  // Crypto-shreds a tenant: its data keys are destroyed (durably) first, then
  // its files. Waits for the tenant's in-flight operations to finish; later
  // calls through old handles fail with NotFound. `report` may be null.
  virtual Status DropTenant(std::string_view id, DropReport* report) = 0;

  // Ids of all tenants, sorted.
  virtual std::vector<std::string> ListTenants() const = 0;
  virtual Status DescribeTenant(std::string_view id, TenantInfo* info) = 0;

  // Sets a tenant's quota override (0 = no limit).
  virtual Status SetTenantQuota(std::string_view id, uint64_t quota) = 0;

  // A handle to a tenant. NotFound if it does not exist.
  virtual Status GetTenant(std::string_view id,
                           std::unique_ptr<Tenant>* tenant) = 0;

  // --- Key lifecycle (every call is recorded in the audit trail) ---

  // Re-wraps the catalog key and the data keys of every tenant that uses the
  // cluster's master key under master key `new_key_id`, online: tenants stay
  // open and no data is rewritten. The key provider the cluster was opened
  // with must hold both keys (NewCompositeKeyProvider). A crash at any point
  // leaves every tenant readable with the old or the new key (with both,
  // everything); calling it again completes the rotation. Afterwards the old
  // key is no longer needed.
  virtual Status RotateMasterKey(const std::string& new_key_id,
                                 MasterRotationReport* report) = 0;

  // Gives the tenant a new data-key version; new files use it at once. With
  // `rekey`, also rewrites every remaining file (flush, full compaction, a
  // reopen for new log and manifest files) and destroys each version no file
  // needs any more. Busy if iterators or snapshots keep the tenant in use.
  virtual Status RotateTenantKey(std::string_view id, bool rekey,
                                 KeyRotationReport* report) = 0;

  // Takes the tenant (and only it) offline at once: every later call fails
  // with KeyRevoked, open iterators stop, and its keys leave memory. Persists
  // across restarts until RestoreTenantKey. Nothing is deleted.
  virtual Status RevokeTenantKey(std::string_view id,
                                 std::string_view reason) = 0;
  virtual Status RestoreTenantKey(std::string_view id) = 0;

  virtual Status GetKeyStatus(std::string_view id, TenantKeyStatus* status) = 0;

  // Audit entries recorded at or after `since_unix_micros` (0: all), oldest
  // first, as stored (use VerifyAudit to check them). An entry that does not
  // parse appears as action "audit.unreadable" with seq 0.
  virtual Status ReadAudit(uint64_t since_unix_micros,
                           std::vector<AuditEntry>* entries) const = 0;
  // Verifies the whole audit chain and anchors its head for the next
  // verification. Corruption names the first entry that fails.
  virtual Status VerifyAudit(AuditVerification* result) = 0;

  // --- Replication (coffer/replication.h) ---

  // Where replication of every tenant stands, as this side sees it; role
  // "primary" with connection "off" when replication is not configured.
  virtual Status GetReplicationStatus(ReplicationStatus* status) = 0;

  // Forced promotion of a replica whose daemon is not running (with a
  // running daemon use PromoteReplica): raises the epoch, makes this cluster
  // a primary that takes writes, records the loss receipt in DIR/PROMOTION
  // and the audit trail. InvalidArgument if it is not a replica.
  virtual Status Promote(PromotionReport* report) = 0;

  // Makes this former primary (typically fenced after a failover) a replica
  // of `new_primary`. When the new primary connects, each tenant is
  // reconciled: one whose history ends exactly at the new primary's fork
  // point resumes without a reseed; one with writes beyond it has them
  // exported to an encrypted rollback file (DIR/rollback/, see `coffer
  // rollback`), is emptied and taken again from the new primary. Nothing is
  // discarded silently. InvalidArgument if already a replica, or if this
  // cluster was fenced by a cluster other than `new_primary`.
  virtual Status Rejoin(const std::string& new_primary) = 0;

  // Planned switchover with zero data loss, on a primary that ships to a
  // connected replica: stops taking writes (Fenced), ships everything, waits
  // until the replica has applied it all, has the replica become the primary
  // at the next epoch, and becomes its replica (as after Rejoin, its tenants
  // then resume without a reseed). If anything fails midway this cluster
  // stays a primary that takes no writes (never two writable primaries);
  // calling it again completes the switchover. Afterwards close the cluster
  // and serve it as a replica; the new primary's application ships to it.
  virtual Status Switchover(SwitchoverReport* report) = 0;

 protected:
  Cluster() = default;
};

}  // namespace coffer

#endif  // COFFER_INCLUDE_COFFER_CLUSTER_H_
