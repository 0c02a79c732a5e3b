// Copyright (c) Coffer authors.
//
// DIR/REPLICATION: the replication status a running primary or replica
// writes about once a second (atomically, with a checksum), so that
// `coffer replication status` and `coffer metrics` can report it while that
// process holds the directory. It holds cluster and tenant ids, sequences,
// times and counters: never keys or values.

#ifndef COFFER_REPLICATION_STATUS_FILE_H_
#define COFFER_REPLICATION_STATUS_FILE_H_

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "coffer/replication.h"
#include "coffer/status.h"

namespace coffer {

inline constexpr char kReplicationStatusFile[] = "REPLICATION";

Status WriteReplicationStatusFile(const std::string& data_dir,
                                  const ReplicationStatus& status);

// Calls `fill` and writes its result every `interval_ms` until destroyed;
// writes once more on the way out.
class StatusFileWriter {
 public:
  StatusFileWriter(std::string data_dir,
                   std::function<void(ReplicationStatus*)> fill,
                   int interval_ms = 1000);
  ~StatusFileWriter();
  StatusFileWriter(const StatusFileWriter&) = delete;
  StatusFileWriter& operator=(const StatusFileWriter&) = delete;

 private:
  void Run();

  const std::string dir_;
  const std::function<void(ReplicationStatus*)> fill_;
  const int interval_ms_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace coffer

#endif  // COFFER_REPLICATION_STATUS_FILE_H_
