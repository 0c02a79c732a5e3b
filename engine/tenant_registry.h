// Copyright (c) Coffer authors.
//
// TenantRegistry: which tenants have an open database. Tenants open on first
// use; when more than max_open are open, the least recently used idle ones
// close. A database in use (an operation, iterator or snapshot holds a
// reference) is never closed, so the cap may be exceeded while that many
// tenants are busy at once.

#ifndef COFFER_ENGINE_TENANT_REGISTRY_H_
#define COFFER_ENGINE_TENANT_REGISTRY_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "coffer/status.h"
#include "engine/commit_queue.h"
#include "engine/proto/catalog.pb.h"
#include "engine/tenant_db.h"

namespace coffer {

// Everything the cluster knows about one tenant in memory.
struct TenantSlot {
  explicit TenantSlot(std::string tenant_id) : id(std::move(tenant_id)) {}
  TenantSlot(const TenantSlot&) = delete;
  TenantSlot& operator=(const TenantSlot&) = delete;

  const std::string id;
  std::mutex mu;
  std::shared_ptr<TenantDb> db;  // guarded by mu; null while closed
  std::weak_ptr<TenantDb> live;  // guarded by mu; the last instance opened
  catalogpb::TenantBody body;    // guarded by mu; the catalog record
  std::condition_variable cv;    // signalled when reopening or a close ends
  bool reopening = false;        // guarded by mu; pins wait meanwhile
  int instances = 0;             // guarded by mu; open or still closing
  bool listed = false;  // guarded by the registry's mu_: in its open list
  std::atomic<bool> dropped{false};
  // Revoked keys (persisted in the record) or a master key that became
  // unavailable: the tenant is offline, every call fails with KeyRevoked.
  std::atomic<bool> revoked{false};
  // The master key vanished from the provider (not persisted); cleared once
  // the provider has it again.
  std::atomic<bool> key_lost{false};
  std::atomic<uint64_t> last_use{0};
  std::atomic<uint64_t> used_bytes{0};  // last measured usage
  std::atomic<uint64_t> quota{0};       // effective quota, 0 = none
  // Replication (primary): the latest sequence and commit time written in
  // this process, the commit time of the oldest write the replica has not
  // acknowledged (0 = none known), and whether the shipper was told.
  std::atomic<uint64_t> latest_seq{0};
  // latest_seq is exact: the database was opened in this process (the open
  // and every client write since update it).
  std::atomic<bool> seq_known{false};
  std::atomic<uint64_t> latest_commit{0};
  std::atomic<uint64_t> unacked_since{0};
  std::atomic<bool> repl_dirty{false};
  // The cluster was promoted while this tenant's database was open: its
  // fork point is recorded before its first write (fork_mu serializes).
  std::atomic<bool> fork_pending{false};
  std::mutex fork_mu;
  // Administrative operations waiting for every reference to the database
  // to be released (TakeIdle): long-lived holders such as the shipper's
  // log reader let go when this is non-zero.
  std::atomic<int> idle_wanted{0};
  // Replication (primary): batches just committed, for the shipper.
  CommitQueue commits;
};

class TenantRegistry {
 public:
  // Opens a slot's database; called with slot.mu held.
  using Opener =
      std::function<Status(TenantSlot& slot, std::shared_ptr<TenantDb>* db)>;

  TenantRegistry(size_t max_open, Opener opener);
  ~TenantRegistry();
  TenantRegistry(const TenantRegistry&) = delete;
  TenantRegistry& operator=(const TenantRegistry&) = delete;

  // Returns the slot's open database, opening it if needed. NotFound once the
  // tenant is dropped. Thread-safe.
  Status Pin(const std::shared_ptr<TenantSlot>& slot,
             std::shared_ptr<TenantDb>* db);

  // Closes the slot's database for good (the tenant is being dropped): waits
  // up to `wait` for every reference to be released. Busy if some remain; the
  // database then stays open. REQUIRES: slot.dropped is already true.
  Status CloseForDrop(const std::shared_ptr<TenantSlot>& slot,
                      std::chrono::milliseconds wait);

  // Closes the slot's database and opens it again (a key rotation wants a
  // new MANIFEST, WAL and info log). New pins wait meanwhile; in-flight
  // references get up to `wait` to finish, else Busy and nothing changes.
  Status Reopen(const std::shared_ptr<TenantSlot>& slot,
                std::chrono::milliseconds wait);

  // Forgets the slot's database without waiting (the tenant went offline):
  // it closes when the last in-flight reference is released.
  void Evict(const std::shared_ptr<TenantSlot>& slot);

  // Closes every database (cluster shutdown).
  void CloseAll();

  size_t open_count() const;
  uint64_t opens() const { return opens_.load(); }
  uint64_t closes() const { return closes_.load(); }

 private:
  // Closes least recently used idle databases until at most max_open_ are
  // open; never closes `keep`.
  void EvictIdle(const TenantSlot* keep);
  void Forget(const std::shared_ptr<TenantSlot>& slot);
  // Adds the slot to the open list unless it is there already.
  void List(const std::shared_ptr<TenantSlot>& slot);
  // Opens a new instance into slot->db once no older one is still closing.
  // REQUIRES: `lock` holds slot->mu.
  Status OpenInstanceLocked(const std::shared_ptr<TenantSlot>& slot,
                            std::unique_lock<std::mutex>& lock);
  // Takes the slot's live instance out of service and waits up to `wait` for
  // other references to go; on timeout puts it back and returns Busy.
  Status TakeIdle(const std::shared_ptr<TenantSlot>& slot,
                  std::chrono::milliseconds wait,
                  std::shared_ptr<TenantDb>* db);

  const size_t max_open_;
  const Opener opener_;
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<TenantSlot>> open_;  // guarded by mu_
  std::atomic<uint64_t> clock_{0};
  std::atomic<uint64_t> opens_{0};
  std::atomic<uint64_t> closes_{0};
};

}  // namespace coffer

#endif  // COFFER_ENGINE_TENANT_REGISTRY_H_
