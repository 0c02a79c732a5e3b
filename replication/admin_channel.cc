// Copyright (c) Coffer authors.

#include "replication/admin_channel.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "engine/thread_name.h"
#include "replication/fd_wait.h"
#include "replication/frame.h"

namespace coffer {

namespace {

constexpr int kPollMs = 100;
constexpr int kRequestTimeoutMs = 5000;

Status SocketAddress(const std::string& path, sockaddr_un* addr) {
  std::memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr->sun_path)) {
    return Status::InvalidArgument("admin socket path " + path +
                                   " is too long for a Unix socket");
  }
  std::memcpy(addr->sun_path, path.c_str(), path.size());
  return Status::OK();
}

Status SendMessage(int fd, const google::protobuf::MessageLite& message) {
  std::string frame;
  Status s = EncodeFrame(message.SerializeAsString(), &frame);
  size_t off = 0;
  while (s.ok() && off < frame.size()) {
    ssize_t n = ::send(fd, frame.data() + off, frame.size() - off,
                       MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::IOError("admin channel closed while sending");
    off += static_cast<size_t>(n);
  }
  return s;
}

Status ReceiveMessage(int fd, google::protobuf::MessageLite* message,
                      int timeout_ms) {
  FrameDecoder decoder;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    std::string payload;
    bool have = false;
    Status s = decoder.Next(&payload, &have);
    if (!s.ok()) return s;
    if (have) {
      if (!message->ParseFromString(payload)) {
        return Status::Corruption("admin message does not parse");
      }
      return Status::OK();
    }
    if (!WaitFdUntil(fd, false, deadline)) {
      return Status::IOError("admin channel: no answer in time");
    }
    char buf[65536];
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::IOError("admin channel closed");
    decoder.Feed(std::string_view(buf, static_cast<size_t>(n)));
  }
}

}  // namespace

Status AdminCall(const std::string& data_dir,
                 const replpb::AdminRequest& request,
                 replpb::AdminResponse* response, int timeout_ms) {
  const std::string path = data_dir + "/" + kAdminSocket;
  sockaddr_un addr;
  Status s = SocketAddress(path, &addr);
  if (!s.ok()) return s;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::IOError("cannot create a Unix socket");
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == ENOENT || err == ECONNREFUSED) {
      return Status::NotFound("no replica daemon is running in " + data_dir);
    }
    return Status::IOError("cannot reach the daemon at " + path + ": " +
                           std::strerror(err));
  }
  s = SendMessage(fd, request);
  if (s.ok()) s = ReceiveMessage(fd, response, timeout_ms);
  ::close(fd);
  return s;
}

Status AdminListener::Start(const std::string& data_dir, Handler handler,
                            std::unique_ptr<AdminListener>* result) {
  const std::string path = data_dir + "/" + kAdminSocket;
  sockaddr_un addr;
  Status s = SocketAddress(path, &addr);
  if (!s.ok()) return s;
  // The caller holds the directory lock: a socket file left here is stale.
  ::unlink(path.c_str());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Status::IOError("cannot create a Unix socket");
  const mode_t old = ::umask(0177);  // the socket file is created 0600
  const bool bound =
      ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::umask(old);
  if (!bound || ::listen(fd, 4) != 0) {
    const std::string err = std::strerror(errno);
    ::close(fd);
    return Status::IOError("cannot listen on " + path + ": " + err);
  }
  result->reset(new AdminListener(fd, path, std::move(handler)));
  return Status::OK();
}

AdminListener::AdminListener(int fd, std::string path, Handler handler)
    : fd_(fd), path_(std::move(path)), handler_(std::move(handler)) {
  thread_ = std::thread([this] { Run(); });
}

AdminListener::~AdminListener() {
  stop_ = true;
  thread_.join();
  ::close(fd_);
  ::unlink(path_.c_str());
}

void AdminListener::Run() {
  NameThisThread("coffer-admin");
  while (!stop_.load()) {
    if (!WaitFd(fd_, false, kPollMs)) continue;
    int conn = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) continue;
    replpb::AdminRequest request;
    replpb::AdminResponse response;
    Status s = ReceiveMessage(conn, &request, kRequestTimeoutMs);
    if (s.ok()) {
      handler_(request, &response);
    } else {
      response.set_ok(false);
      response.set_error(s.ToString());
    }
    SendMessage(conn, response).PermitUncheckedError();
    ::close(conn);
  }
}

}  // namespace coffer
