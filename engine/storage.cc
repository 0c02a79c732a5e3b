// Copyright (c) Coffer authors.

#include "engine/storage.h"

#include <mutex>

namespace coffer {

namespace {

std::mutex& BaseMutex() {
  static std::mutex mu;
  return mu;
}

// Guarded by BaseMutex(); null means the default.
std::shared_ptr<rocksdb::FileSystem>& Override() {
  static std::shared_ptr<rocksdb::FileSystem> fs;
  return fs;
}

}  // namespace

std::shared_ptr<rocksdb::FileSystem> BaseFileSystem() {
  std::lock_guard<std::mutex> lock(BaseMutex());
  const std::shared_ptr<rocksdb::FileSystem>& fs = Override();
  return fs != nullptr ? fs : rocksdb::FileSystem::Default();
}

void SetBaseFileSystemForTesting(std::shared_ptr<rocksdb::FileSystem> fs) {
  std::lock_guard<std::mutex> lock(BaseMutex());
  Override() = std::move(fs);
}

}  // namespace coffer
