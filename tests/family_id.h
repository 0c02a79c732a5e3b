// Copyright (c) Coffer authors.
//
// A RocksDB column family handle that carries only an id, for tests that
// build write batches for a family (the system one, or one a primary never
// writes) without opening a database.

#ifndef COFFER_TESTS_FAMILY_ID_H_
#define COFFER_TESTS_FAMILY_ID_H_

#include <cstdint>
#include <string>

#include "rocksdb/comparator.h"
#include "rocksdb/db.h"

namespace coffer::test {

class FamilyId final : public rocksdb::ColumnFamilyHandle {
 public:
  explicit FamilyId(uint32_t id) : id_(id) {}
  const std::string& GetName() const override { return name_; }
  uint32_t GetID() const override { return id_; }
  rocksdb::Status GetDescriptor(rocksdb::ColumnFamilyDescriptor*) override {
    return rocksdb::Status::NotSupported();
  }
  const rocksdb::Comparator* GetComparator() const override {
    return rocksdb::BytewiseComparator();
  }

 private:
  uint32_t id_;
  std::string name_ = "family-" + std::to_string(id_);
};

}  // namespace coffer::test

#endif  // COFFER_TESTS_FAMILY_ID_H_
