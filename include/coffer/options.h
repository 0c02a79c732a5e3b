// Copyright (c) Coffer authors.
//
// Options for clusters, tenants, reads and writes.
//
// Sizes are in bytes. A quota of 0 means "no limit".

#ifndef COFFER_INCLUDE_COFFER_OPTIONS_H_
#define COFFER_INCLUDE_COFFER_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "coffer/replication.h"

namespace coffer {

class Snapshot;

// Limits of one cluster. Persisted in the cluster catalog at creation.
struct ClusterLimits {
  // Maximum number of tenants; creating one more fails with TenantLimit.
  // Default: 10000
  uint32_t max_tenants = 10000;
  // Storage quota of a tenant without an override: on-disk bytes of its live
  // table files plus its unflushed memtable. Default: 1 GiB
  uint64_t default_tenant_quota = uint64_t{1} << 30;
  // Total bytes all tenants together may hold. Default: 0 (no limit)
  uint64_t cluster_quota = 0;
};

// Identity and limits of a new cluster (Cluster::Create).
struct ClusterOptions {
  // Names this cluster in the catalog, in every wrapped key's associated data
  // and (later) in replication handshakes. Same syntax as a tenant id.
  std::string cluster_id;
  // Region and geography the cluster runs in, e.g. "eu-west-1" / "eu".
  // Replication pairs only clusters of the same geography. Non-empty,
  // same syntax as a tenant id.
  std::string region;
  std::string geography;
  ClusterLimits limits;
  // Creates a passive replica: it takes no client writes (ReadOnly); its
  // tenants and their data arrive from its primary (see ReplicaServer).
  bool replica = false;
};

// Run-time settings of an open cluster; not persisted.
struct OpenOptions {
  // Tenants whose database stays open at once. Opening one more closes the
  // least recently used idle tenant; a tenant in use (an operation, iterator
  // or snapshot in flight) is never closed. Default: 256
  size_t max_open_tenants = 256;
  // One LRU block cache shared by all tenants. Default: 64 MiB
  size_t block_cache_bytes = size_t{64} << 20;
  // One memtable budget shared by all tenants; when exceeded, the largest
  // memtables are flushed. Default: 128 MiB
  size_t write_buffer_budget_bytes = size_t{128} << 20;
  // Memtable size of one tenant before it is flushed. Default: 4 MiB
  size_t tenant_write_buffer_bytes = size_t{4} << 20;
  // Background flush + compaction threads shared by all tenants. Default: 2
  int background_threads = 2;
  // Who is acting, recorded with administrative operations (for example the
  // embedding application's service principal). Default: the OS user name.
  std::string principal;
  // Maximum age of a tenant's current data key: the background maintenance
  // gives an older one a new version (new files use it; old files keep
  // theirs until a rekey or compaction rewrites them). Default: 0 (never)
  uint64_t max_data_key_age_seconds = 0;
  // How often background maintenance runs: key ages, and whether the master
  // keys of open tenants are still available (a tenant whose key vanished
  // from the provider goes offline). 0 turns background maintenance off
  // (no key-age rotation, no key-loss detection). Default: 30000 ms
  uint64_t maintenance_interval_ms = 30000;
  // How long each tenant keeps write-ahead log files after their data is
  // flushed, so a replica that fell behind can catch up from the log instead
  // of a full reseed. 0 deletes them at once, except that a primary with
  // replication configured then keeps them 3600 s. Default: 0
  uint64_t wal_retention_seconds = 0;
  // Ship every tenant's write-ahead log to a passive replica (see
  // coffer/replication.h). Default: off
  ReplicationOptions replication;
  // Benchmarking only: store tenant files in plaintext. Never use in
  // production; Cluster::Open refuses to mix modes on one directory.
  bool plaintext_for_benchmarks = false;
  // Benchmarking only: encrypt tenant files with RocksDB's built-in CTR
  // provider driving an OpenSSL AES block cipher one 16-byte block per call,
  // the baseline Coffer's own cipher stream is compared with. Its IVs come
  // from a clock-seeded LCG: never use it for real data. Same mixing rule.
  bool rocksdb_ctr_for_benchmarks = false;
};

// Per-tenant settings at creation.
struct TenantOptions {
  // Overrides the cluster's default_tenant_quota (0 = no limit).
  std::optional<uint64_t> quota;
  // The tenant's own master key ("bring your own key"): a key id of the
  // cluster's KeyProvider that wraps this tenant's data keys instead of the
  // cluster's master key. Revoking it in the provider takes only this tenant
  // offline. Default: the cluster's master key.
  std::optional<std::string> master_key_id;
  // Bounded RPO of this tenant (see ReplicationOptions::rpo_bound_ms),
  // persisted; 0 turns the cluster's bound off for it. Default: the
  // cluster's.
  std::optional<uint64_t> rpo_bound_ms;
};

struct ReadOptions {
  // Read as of this snapshot (from Tenant::GetSnapshot of the same tenant).
  // Default: the latest state.
  const Snapshot* snapshot = nullptr;
  // Iterators only: visit keys >= lower_bound and < upper_bound.
  std::optional<std::string> lower_bound;
  std::optional<std::string> upper_bound;
  // Iterators only: visit only keys that start with prefix (combined with
  // the bounds above). Default: empty, no restriction.
  std::string prefix;
  // Whether blocks read are added to the shared cache. Default: true
  bool fill_cache = true;
};

struct WriteOptions {
  // fsync the tenant's write-ahead log before returning. Without it a write
  // survives a process crash but may be lost on power failure. Default: false
  bool sync = false;
};

}  // namespace coffer

#endif  // COFFER_INCLUDE_COFFER_OPTIONS_H_
