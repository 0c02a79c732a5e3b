// Copyright (c) Coffer authors.
//
// Mutually authenticated TLS 1.3 replication channels: who is let in; the
// socket waits under them; and the local admin channel's deadlines.

#include "replication/tls_channel.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <thread>

#include "replication/admin_channel.h"
#include "replication/fd_wait.h"
#include "tests/testutil.h"

namespace coffer {
namespace {

class TlsChannelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    const std::string script =
        std::string(COFFER_SOURCE_DIR) + "/tools/gen_test_certs.sh";
    ASSERT_EQ(0, std::system(("bash " + script + " " + dir_->Sub("ca1") +
                              " primary replica")
                                 .c_str()));
    ASSERT_EQ(
        0,
        std::system(
            ("bash " + script + " " + dir_->Sub("ca2") + " primary").c_str()));
  }
  static void TearDownTestSuite() { delete dir_; }

  static TlsConfig Config(const std::string& ca, const std::string& name) {
    return {dir_->Sub(ca) + "/" + name + ".pem",
            dir_->Sub(ca) + "/" + name + ".key", dir_->Sub("ca1") + "/ca.pem"};
  }

  void SetUp() override {
    ASSERT_OK(TlsContext::Create(Config("ca1", "replica"), true, &server_));
    ASSERT_OK(TlsListener::Listen("127.0.0.1:0", &listener_));
    address_ = "127.0.0.1:" + std::to_string(listener_->port());
  }

  // Accepts one connection on a thread; returns its outcome.
  std::future<Status> AcceptOne(std::unique_ptr<TlsChannel>* channel) {
    return std::async(std::launch::async, [this, channel] {
      return listener_->Accept(*server_, 5000, channel);
    });
  }

  // Connects as "primary" of the first CA to the listener (as "replica").
  Status ConnectPrimary(std::unique_ptr<TlsChannel>* server_side,
                        std::unique_ptr<TlsChannel>* client_side) {
    std::unique_ptr<TlsContext> client;
    Status s = TlsContext::Create(Config("ca1", "primary"), false, &client);
    if (!s.ok()) return s;
    auto accepted = AcceptOne(server_side);
    s = TlsChannel::Connect(*client, address_, "replica", 5000, client_side);
    Status ss = accepted.get();
    return s.ok() ? ss : s;
  }

  static test::TempDir* dir_;
  std::unique_ptr<TlsContext> server_;
  std::unique_ptr<TlsListener> listener_;
  std::string address_;
};

test::TempDir* TlsChannelTest::dir_ = nullptr;

TEST_F(TlsChannelTest, MutualAuthenticationCarriesMessages) {
  std::unique_ptr<TlsChannel> server_side, client_side;
  ASSERT_OK(ConnectPrimary(&server_side, &client_side));
  EXPECT_EQ("replica", client_side->peer_name());
  EXPECT_EQ("primary", server_side->peer_name());

  replpb::Envelope hello;
  hello.mutable_hello()->set_cluster_id("primary");
  hello.mutable_hello()->set_epoch(3);
  ASSERT_OK(client_side->Send(hello));
  replpb::Envelope got;
  ASSERT_OK(server_side->Receive(&got, 5000));
  EXPECT_EQ(3u, got.hello().epoch());
  // A large message crosses many TLS records.
  replpb::Envelope big;
  big.mutable_batch()->set_data(test::RandomString(3 << 20));
  ASSERT_OK(server_side->Send(big));
  ASSERT_OK(client_side->Receive(&got, 5000));
  EXPECT_EQ(big.batch().data(), got.batch().data());
  // Nothing more: a receive times out instead of hanging.
  Status s = client_side->Receive(&got, 100);
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  // The peer closing is an error, not a message.
  server_side.reset();
  s = client_side->Receive(&got, 2000);
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
}

// A short wait for a message sleeps for all of it: rounding the time left
// down to whole milliseconds made a 1 ms wait return at once, and the
// shipper's coalescing pause spin on the writers' core.
TEST_F(TlsChannelTest, TryReceiveWaitsItsWholeTimeout) {
  std::unique_ptr<TlsChannel> server_side, client_side;
  ASSERT_OK(ConnectPrimary(&server_side, &client_side));
  using Clock = std::chrono::steady_clock;
  for (int ms : {1, 2, 5}) {
    replpb::Envelope got;
    bool have = true;
    const auto start = Clock::now();
    ASSERT_OK(client_side->TryReceive(&got, ms, &have));
    EXPECT_FALSE(have);
    EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(ms)) << ms;
  }
  const auto deadline = Clock::now() + std::chrono::microseconds(1500);
  replpb::Envelope got;
  bool have = true;
  ASSERT_OK(client_side->TryReceiveUntil(&got, deadline, &have));
  EXPECT_FALSE(have);
  EXPECT_GE(Clock::now(), deadline);
  // A message that is there is returned without waiting for the deadline.
  replpb::Envelope beat;
  beat.mutable_heartbeat()->set_unix_micros(42);
  ASSERT_OK(server_side->Send(beat));
  ASSERT_OK(client_side->TryReceiveUntil(
      &got, Clock::now() + std::chrono::seconds(30), &have));
  ASSERT_TRUE(have);
  EXPECT_EQ(42u, got.heartbeat().unix_micros());
}

TEST_F(TlsChannelTest, CertificateFromAnotherCaIsRefused) {
  std::unique_ptr<TlsContext> rogue;
  TlsConfig c = Config("ca2", "primary");
  c.ca_file =
      dir_->Sub("ca1") + "/ca.pem";  // trusts the real CA, not signed by it
  ASSERT_OK(TlsContext::Create(c, false, &rogue));
  std::unique_ptr<TlsChannel> server_side, client_side;
  auto accepted = AcceptOne(&server_side);
  Status cs = TlsChannel::Connect(*rogue, address_, "", 5000, &client_side);
  Status ss = accepted.get();
  EXPECT_TRUE(ss.IsPermissionDenied()) << ss.ToString();
  EXPECT_EQ(nullptr, server_side);
  (void)cs;  // the client may only learn when it next reads
}

TEST_F(TlsChannelTest, PeerWithoutCertificateIsRefused) {
  SSL_CTX* bare = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(bare, TLS1_3_VERSION);
  std::unique_ptr<TlsChannel> server_side;
  auto accepted = AcceptOne(&server_side);
  std::thread client([&] {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(listener_->port()));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
      SSL* ssl = SSL_new(bare);
      SSL_set_fd(ssl, fd);
      SSL_connect(ssl);
      char b;
      SSL_read(ssl, &b, 1);
      SSL_free(ssl);
    }
    ::close(fd);
  });
  Status ss = accepted.get();
  client.join();
  SSL_CTX_free(bare);
  EXPECT_TRUE(ss.IsPermissionDenied()) << ss.ToString();
}

TEST_F(TlsChannelTest, WrongServerNameIsRefusedByTheClient) {
  std::unique_ptr<TlsContext> client;
  ASSERT_OK(TlsContext::Create(Config("ca1", "primary"), false, &client));
  std::unique_ptr<TlsChannel> server_side, client_side;
  auto accepted = AcceptOne(&server_side);
  Status cs = TlsChannel::Connect(*client, address_, "some-other-cluster", 5000,
                                  &client_side);
  EXPECT_TRUE(cs.IsPermissionDenied()) << cs.ToString();
  accepted.wait();
}

TEST_F(TlsChannelTest, PlainTcpGarbageIsRefusedWithoutHarm) {
  std::unique_ptr<TlsChannel> server_side;
  auto accepted = AcceptOne(&server_side);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(listener_->port()));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(0, ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)));
  const char junk[] = "GET / HTTP/1.0\r\n\r\n";
  ASSERT_GT(::write(fd, junk, sizeof(junk)), 0);
  Status ss = accepted.get();
  ::close(fd);
  EXPECT_FALSE(ss.ok());
  // The listener still serves a real peer afterwards.
  std::unique_ptr<TlsChannel> client_side;
  ASSERT_OK(ConnectPrimary(&server_side, &client_side));
}

TEST_F(TlsChannelTest, BadMaterialIsNamed) {
  std::unique_ptr<TlsContext> c;
  TlsConfig bad = Config("ca1", "primary");
  bad.key_file = dir_->Sub("ca1") + "/replica.key";  // does not match the cert
  Status s = TlsContext::Create(bad, false, &c);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(std::string::npos, s.message().find("replica.key"));
  bad = Config("ca1", "primary");
  bad.ca_file = dir_->Sub("nope.pem");
  s = TlsContext::Create(bad, false, &c);
  EXPECT_NE(std::string::npos, s.message().find("nope.pem")) << s.ToString();
  std::string host;
  int port;
  EXPECT_TRUE(ParseAddress("nohost", &host, &port).IsInvalidArgument());
  EXPECT_TRUE(ParseAddress("h:99999", &host, &port).IsInvalidArgument());
  EXPECT_TRUE(ParseAddress("h:1x", &host, &port).IsInvalidArgument());
  ASSERT_OK(ParseAddress("h:443", &host, &port));
  EXPECT_EQ(443, port);
}

TEST(FdWaitTest, WaitsToTheDeadlineToTheNanosecondAndNoLonger) {
  int fds[2];
  ASSERT_EQ(0, ::pipe(fds));
  using Clock = std::chrono::steady_clock;
  // Deadlines a fraction of a millisecond past whole ones: rounding them
  // down to milliseconds returns early (or at once, below 1 ms).
  for (int us : {300, 1500, 2700}) {
    const auto deadline = Clock::now() + std::chrono::microseconds(us);
    EXPECT_FALSE(WaitFdUntil(fds[0], false, deadline)) << us;
    EXPECT_GE(Clock::now(), deadline) << us;
  }
  const auto start = Clock::now();
  EXPECT_FALSE(WaitFd(fds[0], false, 2));
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(2));
  // A past deadline still reports what is ready; ready returns at once.
  EXPECT_FALSE(WaitFdUntil(fds[0], false, Clock::now()));
  EXPECT_TRUE(WaitFdUntil(fds[1], true, Clock::now()));
  ASSERT_EQ(1, ::write(fds[1], "x", 1));
  EXPECT_TRUE(WaitFdUntil(fds[0], false, Clock::now()));
  EXPECT_TRUE(WaitFd(fds[0], false, 30000));
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(AdminChannelTest, AnswersAndWaitsItsWholeTimeoutForASlowDaemon) {
  test::TempDir dir;
  replpb::AdminRequest request;
  replpb::AdminResponse response;
  Status s = AdminCall(dir.path(), request, &response, 1000);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();

  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::unique_ptr<AdminListener> listener;
  ASSERT_OK(AdminListener::Start(
      dir.path(),
      [released](const replpb::AdminRequest& req,
                 replpb::AdminResponse* resp) {
        if (req.command() == "slow") released.wait();
        resp->set_ok(true);
        resp->set_new_primary(req.actor());
      },
      &listener));
  request.set_command("quick");
  request.set_actor("ops");
  ASSERT_OK(AdminCall(dir.path(), request, &response, 30000));
  EXPECT_TRUE(response.ok());
  EXPECT_EQ("ops", response.new_primary());

  // A 3 ms timeout is 3 ms, not 2 ms and a fraction rounded down to 2.
  request.set_command("slow");
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  s = AdminCall(dir.path(), request, &response, 3);
  const auto took = Clock::now() - start;
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_NE(std::string::npos, s.ToString().find("no answer in time"))
      << s.ToString();
  EXPECT_GE(took, std::chrono::milliseconds(3));
  release.set_value();
  listener.reset();
}

}  // namespace
}  // namespace coffer
