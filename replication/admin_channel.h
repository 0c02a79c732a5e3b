// Copyright (c) Coffer authors.
//
// The local admin channel of a running replica daemon: a Unix socket at
// DIR/admin.sock (mode 0600, inside the 0700 data directory, so only the
// data directory's owner reaches it). One framed AdminRequest, one framed
// AdminResponse per connection. `coffer promote` uses it to promote a
// replica whose daemon holds the directory.

#ifndef COFFER_REPLICATION_ADMIN_CHANNEL_H_
#define COFFER_REPLICATION_ADMIN_CHANNEL_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "coffer/status.h"
#include "replication/proto/replication.pb.h"

namespace coffer {

inline constexpr char kAdminSocket[] = "admin.sock";

// Sends `request` to the daemon of `data_dir`. NotFound if no daemon
// listens there.
Status AdminCall(const std::string& data_dir,
                 const replpb::AdminRequest& request,
                 replpb::AdminResponse* response, int timeout_ms);

class AdminListener {
 public:
  using Handler = std::function<void(const replpb::AdminRequest&,
                                     replpb::AdminResponse*)>;
  // Listens on DIR/admin.sock (replacing a stale socket file) and serves
  // requests on a thread of its own until destroyed.
  static Status Start(const std::string& data_dir, Handler handler,
                      std::unique_ptr<AdminListener>* result);
  ~AdminListener();
  AdminListener(const AdminListener&) = delete;
  AdminListener& operator=(const AdminListener&) = delete;

 private:
  AdminListener(int fd, std::string path, Handler handler);
  void Run();

  const int fd_;
  const std::string path_;
  const Handler handler_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace coffer

#endif  // COFFER_REPLICATION_ADMIN_CHANNEL_H_
