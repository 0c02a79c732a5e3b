// Copyright (c) Coffer authors.
//
// Mutually authenticated TLS 1.3 connections carrying framed replication
// messages. Both sides present a certificate signed by the configured CA;
// a peer without one, or with one from another CA, fails the handshake.
// The certificate's common name identifies the peer cluster; the caller
// checks it against the cluster id the peer claims in its Hello.
//
// Thread-safety: a TlsContext may be shared; a TlsChannel is used by one
// thread at a time.
//
// Writing to a connection the peer closed would raise SIGPIPE (OpenSSL
// writes to the socket with write(2)): every OpenSSL call here blocks
// SIGPIPE in its thread and discards one it raised, so embedding processes
// need not ignore SIGPIPE. Coffer's own threads block it once for good
// (KeepSigpipeBlocked) and skip the four signal-mask system calls per
// call.

#ifndef COFFER_REPLICATION_TLS_CHANNEL_H_
#define COFFER_REPLICATION_TLS_CHANNEL_H_

#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <string>

#include "coffer/status.h"
#include "replication/frame.h"
#include "replication/proto/replication.pb.h"

namespace coffer {

// Blocks SIGPIPE in the calling thread for the rest of its life (Coffer's
// own shipping and serving threads, which only ever write to sockets
// through TlsChannel): a SIGPIPE raised later stays pending and harmless.
void KeepSigpipeBlocked();

struct TlsConfig {
  std::string cert_file;  // PEM certificate of this cluster
  std::string key_file;   // its private key
  std::string ca_file;    // PEM CA that signs the peers' certificates
};

class TlsContext {
 public:
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // InvalidArgument naming the file when a certificate, key or CA cannot be
  // loaded, or the key does not match the certificate.
  static Status Create(const TlsConfig& config, bool server,
                       std::unique_ptr<TlsContext>* result);
  SSL_CTX* get() const { return ctx_; }

 private:
  explicit TlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
};

class TlsChannel {
 public:
  ~TlsChannel();
  TlsChannel(const TlsChannel&) = delete;
  TlsChannel& operator=(const TlsChannel&) = delete;

  // Connects to "host:port" and completes the handshake; with a non-empty
  // `expected_peer`, the server's certificate must name it.
  static Status Connect(const TlsContext& context, const std::string& address,
                        const std::string& expected_peer, int timeout_ms,
                        std::unique_ptr<TlsChannel>* result);
  // Completes the server side of the handshake on an accepted socket (takes
  // ownership of `fd`).
  static Status Accept(const TlsContext& context, int fd, int timeout_ms,
                       std::unique_ptr<TlsChannel>* result);

  Status Send(const replpb::Envelope& message);
  // Sends frames already encoded with EncodeFrame, in one write where the
  // transport allows (many small messages, one system call).
  Status SendFrames(const std::string& frames);
  // Waits up to `timeout_ms` for the next message. IOError on a closed or
  // timed-out connection, Corruption on a damaged frame or message.
  Status Receive(replpb::Envelope* message, int timeout_ms);
  // Like Receive, but a timeout is not an error: OK with *got = false.
  Status TryReceive(replpb::Envelope* message, int timeout_ms, bool* got);
  // TryReceive, waiting until `deadline` (to the nanosecond) at most.
  Status TryReceiveUntil(replpb::Envelope* message,
                         std::chrono::steady_clock::time_point deadline,
                         bool* got);

  // Common name of the peer's (verified) certificate.
  const std::string& peer_name() const { return peer_name_; }

 private:
  TlsChannel(SSL* ssl, int fd) : ssl_(ssl), fd_(fd) {}
  Status Handshake(bool server, int timeout_ms);

  SSL* ssl_;
  int fd_;
  std::string peer_name_;
  FrameDecoder decoder_;
};

// A listening TCP socket.
class TlsListener {
 public:
  ~TlsListener();
  TlsListener(const TlsListener&) = delete;
  TlsListener& operator=(const TlsListener&) = delete;

  // "host:port"; port 0 picks a free one (see port()).
  static Status Listen(const std::string& address,
                       std::unique_ptr<TlsListener>* result);
  // Waits up to `timeout_ms` for a connection, then up to
  // `handshake_timeout_ms` for its handshake. IOError "timeout" when none
  // came. A failed handshake's error names the peer's address.
  Status Accept(const TlsContext& context, int timeout_ms,
                std::unique_ptr<TlsChannel>* channel,
                int handshake_timeout_ms = 10000);
  int port() const { return port_; }

 private:
  TlsListener(int fd, int port) : fd_(fd), port_(port) {}
  int fd_;
  int port_;
};

// Splits "host:port". InvalidArgument on anything else.
Status ParseAddress(const std::string& address, std::string* host, int* port);

}  // namespace coffer

#endif  // COFFER_REPLICATION_TLS_CHANNEL_H_
