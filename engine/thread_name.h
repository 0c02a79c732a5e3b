// Copyright (c) Coffer authors.
//
// Names Coffer's background threads, so that `top -H`, `perf` and debuggers
// show which one is busy (RocksDB names its own "rocksdb:high"/"rocksdb:low").

#ifndef COFFER_ENGINE_THREAD_NAME_H_
#define COFFER_ENGINE_THREAD_NAME_H_

#include <pthread.h>

namespace coffer {

// `name` is at most 15 characters (the kernel's limit); longer is cut.
inline void NameThisThread(const char* name) {
  char shortened[16] = {};
  for (int i = 0; i < 15 && name[i] != '\0'; ++i) shortened[i] = name[i];
  pthread_setname_np(pthread_self(), shortened);
}

}  // namespace coffer

#endif  // COFFER_ENGINE_THREAD_NAME_H_
