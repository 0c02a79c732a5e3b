// Copyright (c) Coffer authors.

#include "coffer/tenant.h"

namespace coffer {

void WriteBatch::Put(std::string_view key, std::string_view value) {
  ops_.push_back({OpType::kPut, std::string(key), std::string(value)});
  put_bytes_ += key.size() + value.size();
  bytes_ += key.size() + value.size();
}

void WriteBatch::Delete(std::string_view key) {
  ops_.push_back({OpType::kDelete, std::string(key), std::string()});
  bytes_ += key.size();
}

void WriteBatch::DeleteRange(std::string_view begin, std::string_view end) {
  ops_.push_back({OpType::kDeleteRange, std::string(begin), std::string(end)});
  bytes_ += begin.size() + end.size();
}

void WriteBatch::Clear() {
  ops_.clear();
  put_bytes_ = 0;
  bytes_ = 0;
}

}  // namespace coffer
