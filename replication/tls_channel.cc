// Copyright (c) Coffer authors.

#include "replication/tls_channel.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>

#include "replication/fd_wait.h"

namespace coffer {

namespace {

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown TLS error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

// Set by KeepSigpipeBlocked: this thread blocks SIGPIPE for good.
thread_local bool t_sigpipe_blocked = false;

// Blocks SIGPIPE in the calling thread while OpenSSL writes to a socket the
// peer may have closed (OpenSSL uses write(2), which raises SIGPIPE for the
// writing thread), and discards a SIGPIPE raised meanwhile. Processes
// embedding Coffer need not ignore SIGPIPE themselves. Nothing to do in a
// thread that called KeepSigpipeBlocked.
class ScopedNoSigpipe {
 public:
  ScopedNoSigpipe() {
    if (t_sigpipe_blocked) return;
    active_ = true;
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
  }
  ~ScopedNoSigpipe() {
    if (!active_) return;
    if (!was_pending_) {
      sigset_t pending;
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        const struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_, nullptr, &zero) < 0 && errno == EINTR) {
        }
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  ScopedNoSigpipe(const ScopedNoSigpipe&) = delete;
  ScopedNoSigpipe& operator=(const ScopedNoSigpipe&) = delete;

 private:
  sigset_t pipe_;
  sigset_t old_;
  bool active_ = false;
  bool was_pending_ = false;
};

}  // namespace

void KeepSigpipeBlocked() {
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  t_sigpipe_blocked = true;
}

Status ParseAddress(const std::string& address, std::string* host, int* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= address.size()) {
    return Status::InvalidArgument("address '" + address +
                                   "' is not HOST:PORT");
  }
  *host = address.substr(0, colon);
  int p = 0;
  for (char c : address.substr(colon + 1)) {
    if (c < '0' || c > '9' || p > 65535) {
      return Status::InvalidArgument("address '" + address +
                                     "' has a bad port");
    }
    p = p * 10 + (c - '0');
  }
  if (p > 65535) {
    return Status::InvalidArgument("address '" + address + "' has a bad port");
  }
  *port = p;
  return Status::OK();
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

Status TlsContext::Create(const TlsConfig& config, bool server,
                          std::unique_ptr<TlsContext>* result) {
  SSL_CTX* ctx =
      SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (ctx == nullptr) return Status::IOError("cannot create a TLS context");
  std::unique_ptr<TlsContext> c(new TlsContext(ctx));
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  // Read whatever the socket holds in one system call rather than a record
  // header and then its body (TryReceive calls SSL_read before it waits on
  // the socket, so data buffered by OpenSSL is never left waiting).
  SSL_CTX_set_read_ahead(ctx, 1);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                     nullptr);
  if (SSL_CTX_load_verify_locations(ctx, config.ca_file.c_str(), nullptr) !=
      1) {
    return Status::InvalidArgument("cannot load TLS CA " + config.ca_file +
                                   ": " + OpenSslError());
  }
  if (SSL_CTX_use_certificate_chain_file(ctx, config.cert_file.c_str()) != 1) {
    return Status::InvalidArgument("cannot load TLS certificate " +
                                   config.cert_file + ": " + OpenSslError());
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, config.key_file.c_str(),
                                  SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    return Status::InvalidArgument("cannot load TLS key " + config.key_file +
                                   " (or it does not match " +
                                   config.cert_file + "): " + OpenSslError());
  }
  *result = std::move(c);
  return Status::OK();
}

TlsChannel::~TlsChannel() {
  if (ssl_ != nullptr) {
    ScopedNoSigpipe no_sigpipe;
    SSL_shutdown(ssl_);
    SSL_free(ssl_);
  }
  if (fd_ >= 0) ::close(fd_);
}

Status TlsChannel::Handshake(bool server, int timeout_ms) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    int r;
    {
      ScopedNoSigpipe no_sigpipe;
      r = server ? SSL_accept(ssl_) : SSL_connect(ssl_);
    }
    if (r == 1) break;
    int err = SSL_get_error(ssl_, r);
    if ((err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) &&
        WaitFdUntil(fd_, err == SSL_ERROR_WANT_WRITE, deadline)) {
      continue;
    }
    const long verify = SSL_get_verify_result(ssl_);
    std::string why = verify != X509_V_OK
                          ? X509_verify_cert_error_string(verify)
                          : OpenSslError();
    return Status::PermissionDenied("TLS handshake failed: " + why);
  }
  X509* peer = SSL_get1_peer_certificate(ssl_);
  if (peer == nullptr) {
    return Status::PermissionDenied("TLS peer presented no certificate");
  }
  char cn[256] = {0};
  X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn,
                            sizeof(cn));
  X509_free(peer);
  peer_name_ = cn;
  return Status::OK();
}

Status TlsChannel::Connect(const TlsContext& context,
                           const std::string& address,
                           const std::string& expected_peer, int timeout_ms,
                           std::unique_ptr<TlsChannel>* result) {
  std::string host;
  int port = 0;
  Status s = ParseAddress(address, &host, &port);
  if (!s.ok()) return s;
  struct addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  struct addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) !=
      0) {
    return Status::IOError("cannot resolve " + host);
  }
  int fd = -1;
  std::string err = "no address";
  for (struct addrinfo* a = res; a != nullptr; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                  a->ai_protocol);
    if (fd < 0) continue;
    int r = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (r != 0 && errno == EINPROGRESS && WaitFd(fd, true, timeout_ms)) {
      int so = 0;
      socklen_t len = sizeof(so);
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &len);
      r = so == 0 ? 0 : -1;
      errno = so;
    }
    if (r == 0) break;
    err = std::strerror(errno);
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res);
  if (fd < 0)
    return Status::IOError("cannot connect to " + address + ": " + err);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  SSL* ssl = SSL_new(context.get());
  std::unique_ptr<TlsChannel> ch(new TlsChannel(ssl, fd));
  if (ssl == nullptr || SSL_set_fd(ssl, fd) != 1) {
    return Status::IOError("cannot set up TLS: " + OpenSslError());
  }
  if (!expected_peer.empty()) SSL_set1_host(ssl, expected_peer.c_str());
  s = ch->Handshake(/*server=*/false, timeout_ms);
  if (!s.ok()) return s;
  *result = std::move(ch);
  return Status::OK();
}

Status TlsChannel::Accept(const TlsContext& context, int fd, int timeout_ms,
                          std::unique_ptr<TlsChannel>* result) {
  SSL* ssl = SSL_new(context.get());
  std::unique_ptr<TlsChannel> ch(new TlsChannel(ssl, fd));
  if (ssl == nullptr || SSL_set_fd(ssl, fd) != 1) {
    return Status::IOError("cannot set up TLS: " + OpenSslError());
  }
  Status s = ch->Handshake(/*server=*/true, timeout_ms);
  if (!s.ok()) return s;
  *result = std::move(ch);
  return Status::OK();
}

Status TlsChannel::Send(const replpb::Envelope& message) {
  std::string frame;
  Status s = EncodeFrame(message.SerializeAsString(), &frame);
  if (!s.ok()) return s;
  return SendFrames(frame);
}

Status TlsChannel::SendFrames(const std::string& frame) {
  size_t off = 0;
  while (off < frame.size()) {
    ScopedNoSigpipe no_sigpipe;
    int n = SSL_write(ssl_, frame.data() + off,
                      static_cast<int>(frame.size() - off));
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    int err = SSL_get_error(ssl_, n);
    if ((err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) &&
        WaitFd(fd_, err == SSL_ERROR_WANT_WRITE, 10000)) {
      continue;
    }
    return Status::IOError("replication connection to " + peer_name_ +
                           " broke while sending");
  }
  return Status::OK();
}

Status TlsChannel::Receive(replpb::Envelope* message, int timeout_ms) {
  bool got = false;
  Status s = TryReceive(message, timeout_ms, &got);
  if (s.ok() && !got) {
    return Status::IOError("timeout waiting for " +
                           (peer_name_.empty() ? "peer" : peer_name_));
  }
  return s;
}

Status TlsChannel::TryReceive(replpb::Envelope* message, int timeout_ms,
                              bool* got) {
  return TryReceiveUntil(message,
                         std::chrono::steady_clock::now() +
                             std::chrono::milliseconds(timeout_ms),
                         got);
}

Status TlsChannel::TryReceiveUntil(
    replpb::Envelope* message, std::chrono::steady_clock::time_point deadline,
    bool* got) {
  *got = false;
  for (;;) {
    std::string payload;
    bool have = false;
    Status s = decoder_.Next(&payload, &have);
    if (!s.ok()) return s;
    if (have) {
      if (!message->ParseFromString(payload)) {
        return Status::Corruption("replication message from " + peer_name_ +
                                  " does not parse");
      }
      *got = true;
      return Status::OK();
    }
    char buf[65536];
    int n;
    {
      ScopedNoSigpipe no_sigpipe;  // a read may write (key updates, alerts)
      n = SSL_read(ssl_, buf, sizeof(buf));
    }
    if (n > 0) {
      decoder_.Feed(std::string_view(buf, static_cast<size_t>(n)));
      continue;
    }
    int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      if (WaitFdUntil(fd_, err == SSL_ERROR_WANT_WRITE, deadline)) {
        continue;
      }
      return Status::OK();  // timed out
    }
    return Status::IOError("replication connection to " + peer_name_ +
                           " closed");
  }
}

TlsListener::~TlsListener() { ::close(fd_); }

Status TlsListener::Listen(const std::string& address,
                           std::unique_ptr<TlsListener>* result) {
  std::string host;
  int port = 0;
  Status s = ParseAddress(address, &host, &port);
  if (!s.ok()) return s;
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (host == "0.0.0.0" || host == "*") {
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
  } else if (host == "localhost") {
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  } else if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return Status::InvalidArgument("listen address '" + host +
                                   "' is not an IPv4 address");
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Status::IOError("cannot create a socket");
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(fd, 16) != 0) {
    std::string err = std::strerror(errno);
    ::close(fd);
    return Status::IOError("cannot listen on " + address + ": " + err);
  }
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  result->reset(new TlsListener(fd, ntohs(addr.sin_port)));
  return Status::OK();
}

Status TlsListener::Accept(const TlsContext& context, int timeout_ms,
                           std::unique_ptr<TlsChannel>* channel,
                           int handshake_timeout_ms) {
  if (!WaitFd(fd_, false, timeout_ms)) return Status::IOError("timeout");
  struct sockaddr_in peer = {};
  socklen_t peer_len = sizeof(peer);
  int fd = ::accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &peer_len,
                     SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0)
    return Status::IOError(std::string("accept: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  char ip[INET_ADDRSTRLEN] = "?";
  ::inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof(ip));
  const std::string from =
      std::string(ip) + ":" + std::to_string(ntohs(peer.sin_port));
  Status s = TlsChannel::Accept(context, fd, handshake_timeout_ms, channel);
  if (!s.ok() && s.IsPermissionDenied()) {
    return Status::PermissionDenied("peer " + from + ": " + s.message());
  }
  if (!s.ok()) return Status::IOError("peer " + from + ": " + s.message());
  return s;
}

}  // namespace coffer
