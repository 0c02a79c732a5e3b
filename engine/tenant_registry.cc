// Copyright (c) Coffer authors.

#include "engine/tenant_registry.h"

#include <algorithm>
#include <thread>

namespace coffer {

TenantRegistry::TenantRegistry(size_t max_open, Opener opener)
    : max_open_(max_open > 0 ? max_open : 1), opener_(std::move(opener)) {}

TenantRegistry::~TenantRegistry() { CloseAll(); }

Status TenantRegistry::OpenInstanceLocked(
    const std::shared_ptr<TenantSlot>& slot,
    std::unique_lock<std::mutex>& lock) {
  // The previous instance may be mid-close on another thread (its last
  // reference just went): RocksDB allows one instance per directory. While
  // waiting, another caller may open it, or the tenant may go away.
  for (;;) {
    if (slot->db != nullptr) return Status::OK();
    if (auto alive = slot->live.lock()) {
      slot->db = std::move(alive);
      return Status::OK();
    }
    if (slot->dropped.load()) {
      return Status::NotFound("tenant '" + slot->id + "' was dropped");
    }
    if (slot->revoked.load()) {
      return Status::KeyRevoked("tenant '" + slot->id +
                                "' is offline: its key was revoked");
    }
    if (slot->instances == 0) break;
    slot->cv.wait(lock);
  }
  std::shared_ptr<TenantDb> opened;
  Status s = opener_(*slot, &opened);
  if (!s.ok()) return s;
  slot->instances++;
  opens_.fetch_add(1);
  std::weak_ptr<TenantSlot> weak = slot;
  TenantDb* raw = opened.get();
  // Closing happens in this deleter, on whichever thread lets go last; the
  // slot hears when it is done.
  slot->db = std::shared_ptr<TenantDb>(
      raw, [instance = std::move(opened), weak](TenantDb*) mutable {
        instance.reset();
        if (auto s = weak.lock()) {
          std::lock_guard<std::mutex> guard(s->mu);
          s->instances--;
          s->cv.notify_all();
        }
      });
  slot->live = slot->db;
  return Status::OK();
}

Status TenantRegistry::Pin(const std::shared_ptr<TenantSlot>& slot,
                           std::shared_ptr<TenantDb>* db) {
  bool opened = false;
  {
    std::unique_lock<std::mutex> lock(slot->mu);
    slot->cv.wait(lock, [&] { return !slot->reopening; });
    if (slot->dropped.load()) {
      return Status::NotFound("tenant '" + slot->id + "' was dropped");
    }
    if (slot->revoked.load()) {
      return Status::KeyRevoked("tenant '" + slot->id +
                                "' is offline: its key was revoked or its "
                                "master key is unavailable");
    }
    if (slot->db == nullptr) {
      // An evicted instance may still be alive in a straggling reference;
      // RocksDB would refuse a second instance on the same directory.
      slot->db = slot->live.lock();
      if (slot->db == nullptr) {
        Status s = OpenInstanceLocked(slot, lock);
        if (!s.ok()) return s;
      }
      opened = true;
    }
    *db = slot->db;
  }
  slot->last_use.store(clock_.fetch_add(1) + 1, std::memory_order_relaxed);
  if (opened) {
    List(slot);
    EvictIdle(slot.get());
  }
  return Status::OK();
}

void TenantRegistry::List(const std::shared_ptr<TenantSlot>& slot) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!slot->listed) {
    slot->listed = true;
    open_.push_back(slot);
  }
}

void TenantRegistry::EvictIdle(const TenantSlot* keep) {
  std::vector<std::shared_ptr<TenantDb>> closing;
  {
    std::lock_guard<std::mutex> lock(mu_);
    while (open_.size() > max_open_) {
      // Least recently used slot that is not in use.
      size_t victim = open_.size();
      uint64_t oldest = UINT64_MAX;
      for (size_t i = 0; i < open_.size(); ++i) {
        TenantSlot* s = open_[i].get();
        if (s == keep) continue;
        uint64_t t = s->last_use.load(std::memory_order_relaxed);
        if (t < oldest) {
          std::lock_guard<std::mutex> slot_lock(s->mu);
          if (s->db != nullptr && s->db.use_count() == 1) {
            oldest = t;
            victim = i;
          }
        }
      }
      if (victim == open_.size()) break;  // everything is busy
      TenantSlot* s = open_[victim].get();
      {
        std::lock_guard<std::mutex> slot_lock(s->mu);
        if (s->db == nullptr || s->db.use_count() != 1) continue;
        closing.push_back(std::move(s->db));
        s->db = nullptr;
      }
      open_[victim]->listed = false;
      open_[victim] = std::move(open_.back());
      open_.pop_back();
      closes_.fetch_add(1);
    }
  }
  // Closing waits for background work: do it outside every lock.
  closing.clear();
}

void TenantRegistry::Forget(const std::shared_ptr<TenantSlot>& slot) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = std::find(open_.begin(), open_.end(), slot);
  if (it != open_.end()) open_.erase(it);
  slot->listed = false;
}

Status TenantRegistry::TakeIdle(const std::shared_ptr<TenantSlot>& slot,
                                std::chrono::milliseconds wait,
                                std::shared_ptr<TenantDb>* out) {
  std::shared_ptr<TenantDb> db;
  {
    std::lock_guard<std::mutex> lock(slot->mu);
    db = slot->live.lock();
    slot->db = nullptr;
  }
  Forget(slot);
  slot->idle_wanted++;
  struct Done {
    TenantSlot& slot;
    ~Done() { slot.idle_wanted--; }
  } done{*slot};
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (db != nullptr && db.use_count() > 1) {
    if (std::chrono::steady_clock::now() >= deadline) {
      {
        std::lock_guard<std::mutex> lock(slot->mu);
        slot->db = db;
      }
      List(slot);
      return Status::Busy("tenant '" + slot->id +
                          "' is still in use (open iterators or snapshots, or "
                          "another administrative operation); retry later");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  *out = std::move(db);
  return Status::OK();
}

Status TenantRegistry::CloseForDrop(const std::shared_ptr<TenantSlot>& slot,
                                    std::chrono::milliseconds wait) {
  std::shared_ptr<TenantDb> db;
  return TakeIdle(slot, wait, &db);  // db closes as it goes out of scope
}

Status TenantRegistry::Reopen(const std::shared_ptr<TenantSlot>& slot,
                              std::chrono::milliseconds wait) {
  {
    std::lock_guard<std::mutex> lock(slot->mu);
    slot->reopening = true;
  }
  auto done = [&] {
    std::lock_guard<std::mutex> lock(slot->mu);
    slot->reopening = false;
    slot->cv.notify_all();
  };
  std::shared_ptr<TenantDb> db;
  Status s = TakeIdle(slot, wait, &db);
  if (!s.ok()) {
    done();
    return s;
  }
  db.reset();  // closes the database
  {
    std::unique_lock<std::mutex> lock(slot->mu);
    s = OpenInstanceLocked(slot, lock);
  }
  if (s.ok()) List(slot);
  done();
  return s;
}

void TenantRegistry::Evict(const std::shared_ptr<TenantSlot>& slot) {
  std::shared_ptr<TenantDb> db;
  {
    std::lock_guard<std::mutex> lock(slot->mu);
    db = std::move(slot->db);
    slot->db = nullptr;
  }
  Forget(slot);
}

void TenantRegistry::CloseAll() {
  std::vector<std::shared_ptr<TenantSlot>> slots;
  {
    std::lock_guard<std::mutex> lock(mu_);
    slots.swap(open_);
    for (auto& slot : slots) slot->listed = false;
  }
  for (auto& slot : slots) {
    std::shared_ptr<TenantDb> db;
    {
      std::lock_guard<std::mutex> lock(slot->mu);
      db = std::move(slot->db);
      slot->db = nullptr;
    }
  }
}

size_t TenantRegistry::open_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return open_.size();
}

}  // namespace coffer
