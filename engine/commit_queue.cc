// Copyright (c) Coffer authors.

#include "engine/commit_queue.h"

#include <algorithm>

namespace coffer {

namespace {

constexpr size_t kHeaderBytes = 12;  // sequence (8) + count (4)
// What an entry costs besides its data (map node, strings).
constexpr int64_t kEntryOverhead = 96;

uint64_t DecodeLe(std::string_view bytes, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(bytes[i]);
  return v;
}

}  // namespace

bool CommitQueue::Push(const std::shared_ptr<CommitQueueBudget>& budget,
                       std::string_view data, uint64_t commit_micros) {
  if (budget == nullptr || data.size() < kHeaderBytes) return false;
  CommittedBatch e;
  e.first_seq = DecodeLe(data, 8);
  e.count = static_cast<uint32_t>(DecodeLe(data.substr(8), 4));
  if (e.first_seq == 0 || e.count == 0) return false;
  const int64_t cost = static_cast<int64_t>(data.size()) + kEntryOverhead;
  std::lock_guard<std::mutex> lock(mu_);
  if (budget_ != budget) {
    ReleaseLocked(bytes_);  // another shipper's entries
    entries_.clear();
    budget_ = budget;
    complete_from_ = UINT64_MAX;
  }
  if (complete_from_ == UINT64_MAX) complete_from_ = e.first_seq;
  if (budget->used.fetch_add(cost) + cost > budget->limit) {
    budget->used.fetch_sub(cost);
    // This one will never be queued: neither will anything before it.
    complete_from_ = std::max(complete_from_, e.first_seq + e.count);
    return false;
  }
  e.data.assign(data);
  e.commit_micros = commit_micros;
  bytes_ += cost;
  entries_.emplace(e.first_seq, std::move(e));
  return true;
}

size_t CommitQueue::Take(uint64_t next, size_t max_bytes,
                         std::vector<CommittedBatch>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t released = 0;
  auto it = entries_.begin();
  while (it != entries_.end() &&
         it->second.first_seq + it->second.count <= next) {
    released += static_cast<int64_t>(it->second.data.size()) + kEntryOverhead;
    it = entries_.erase(it);
  }
  size_t moved = 0;
  size_t bytes = 0;
  while (it != entries_.end() && it->second.first_seq == next &&
         (moved == 0 || bytes + it->second.data.size() <= max_bytes)) {
    next += it->second.count;
    bytes += it->second.data.size();
    released += static_cast<int64_t>(it->second.data.size()) + kEntryOverhead;
    out->push_back(std::move(it->second));
    it = entries_.erase(it);
    moved++;
  }
  ReleaseLocked(released);
  return moved;
}

uint64_t CommitQueue::complete_from() {
  std::lock_guard<std::mutex> lock(mu_);
  return complete_from_;
}

void CommitQueue::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.clear();
  ReleaseLocked(bytes_);
  complete_from_ = UINT64_MAX;
}

void CommitQueue::ReleaseLocked(int64_t bytes) {
  if (bytes == 0) return;
  bytes_ -= bytes;
  if (budget_ != nullptr) budget_->used.fetch_sub(bytes);
}

}  // namespace coffer
