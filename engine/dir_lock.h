// Copyright (c) Coffer authors.
//
// An exclusive advisory lock on a data directory (flock on DIR/LOCK), held for
// the lifetime of the object. The kernel releases it when the process dies, so
// a crash never leaves a stale lock behind.

#ifndef COFFER_ENGINE_DIR_LOCK_H_
#define COFFER_ENGINE_DIR_LOCK_H_

#include <memory>
#include <string>

#include "coffer/status.h"

namespace coffer {

class DirLock {
 public:
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

  // Busy when another process (or another Cluster in this process) holds it.
  static Status Acquire(const std::string& dir, std::unique_ptr<DirLock>* lock);

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace coffer

#endif  // COFFER_ENGINE_DIR_LOCK_H_
