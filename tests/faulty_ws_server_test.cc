// Test that header file is self-contained.
#include "feedkit/testing/faulty_ws_server.h"

#include <gtest/gtest.h>
#include <stdlib.h>  // mkdtemp

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange
#include <vector>

#include "feedkit/testing/line_protocol.h"
#include "feedkit/testing/test_certificate.h"

namespace feedkit::testing {
namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
namespace websocket = boost::beast::websocket;
using tcp = boost::asio::ip::tcp;
using namespace std::chrono_literals;

// Long enough for anything that should happen; short enough to wait for
// something that should not.
constexpr Duration kLong = std::chrono::seconds(10);
constexpr Duration kShort = std::chrono::milliseconds(200);

// A minimal Beast client with timeouts: every operation runs the client's
// own io_context until it completes or its time is up. A read that timed out
// stays pending, so the stream stays usable (and open).
template <class NextLayer>
class TestClient {
 public:
  static constexpr bool kTls = !std::is_same_v<NextLayer, beast::tcp_stream>;

  template <class... Args>
  explicit TestClient(Args&... args) : ws_(ioc_, args...) {
    ws_.control_callback(
        [this](websocket::frame_type kind, beast::string_view) {
          if (kind == websocket::frame_type::pong) ++pongs_;
        });
  }

  beast::error_code connect(std::uint16_t port) {
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().connect(
        tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
    return ec;
  }

  // TLS client handshake, verifying the chain and the name "localhost".
  beast::error_code tls_handshake() {
    static_assert(kTls, "tls_handshake() needs a TLS client");
    auto& tls = ws_.next_layer();
    SSL_set_tlsext_host_name(tls.native_handle(), "localhost");
    tls.set_verify_mode(net::ssl::verify_peer);
    tls.set_verify_callback(net::ssl::host_name_verification("localhost"));
    return run([&](auto done) {
      tls.async_handshake(net::ssl::stream_base::client, done);
    });
  }

  beast::error_code handshake(Duration timeout = kLong) {
    return run(
        [&](auto done) {
          ws_.async_handshake(response_, "127.0.0.1", "/", done);
        },
        timeout);
  }

  beast::error_code send(std::string text) {
    out_ = std::move(text);
    ws_.text(true);
    return run([&](auto done) {
      ws_.async_write(net::buffer(out_),
                      [done](beast::error_code ec, std::size_t) { done(ec); });
    });
  }

  beast::error_code ping() {
    return run([&](auto done) { ws_.async_ping({}, done); });
  }

  struct Read {
    beast::error_code ec;  // beast::error::timeout if nothing came in time
    std::string text;
  };

  // Returns the next message, or times out (the read stays pending).
  Read read(Duration timeout = kLong) {
    if (!reading_) {
      reading_ = true;
      read_done_ = false;
      ws_.async_read(buffer_, [this](beast::error_code ec, std::size_t) {
        read_done_ = true;
        read_ec_ = ec;
      });
    }
    if (!run_until(read_done_, timeout)) return {beast::error::timeout, {}};
    reading_ = false;
    Read r{read_ec_, beast::buffers_to_string(buffer_.data())};
    buffer_.consume(buffer_.size());
    return r;
  }

  // Returns the text of the next message, or "<error message>".
  std::string next(Duration timeout = kLong) {
    Read r = read(timeout);
    return r.ec ? "<" + r.ec.message() + ">" : r.text;
  }

  // Sends `frame` and returns the answer.
  std::string exchange(std::string frame) {
    if (auto ec = send(std::move(frame))) return "<send: " + ec.message() + ">";
    return next();
  }

  const websocket::response_type& response() const { return response_; }
  websocket::stream<NextLayer>& ws() { return ws_; }
  int pongs() const { return pongs_; }

 private:
  // Runs the io_context until `flag` is set or `timeout` passes.
  bool run_until(const bool& flag, Duration timeout) {
    const SteadyTime deadline = SteadyClock::now() + timeout;
    ioc_.restart();
    while (!flag) {
      const SteadyTime now = SteadyClock::now();
      if (now >= deadline) return false;
      if (ioc_.run_one_for(deadline - now) == 0 && ioc_.stopped()) {
        ioc_.restart();
        if (!flag) return false;
      }
    }
    return true;
  }

  template <class Start>
  beast::error_code run(Start start, Duration timeout = kLong) {
    auto state = std::make_shared<std::pair<bool, beast::error_code>>();
    start([state](beast::error_code ec) {
      state->first = true;
      state->second = ec;
    });
    if (!run_until(state->first, timeout)) return beast::error::timeout;
    return state->second;
  }

  net::io_context ioc_;
  websocket::stream<NextLayer> ws_;
  websocket::response_type response_;
  beast::flat_buffer buffer_;
  std::string out_;
  bool reading_ = false;
  bool read_done_ = false;
  beast::error_code read_ec_;
  int pongs_ = 0;
};

using Client = TestClient<beast::tcp_stream>;
using TlsClient = TestClient<beast::ssl_stream<beast::tcp_stream>>;

std::unique_ptr<FaultyWsServer> start_server(
    FaultyWsServerOptions options = {}) {
  auto server = FaultyWsServer::start(std::move(options));
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? std::move(server).value() : nullptr;
}

// Returns a client that is connected and upgraded.
std::unique_ptr<Client> open_client(const FaultyWsServer& server) {
  auto client = std::make_unique<Client>();
  EXPECT_FALSE(client->connect(server.port()));
  EXPECT_FALSE(client->handshake());
  return client;
}

// Returns the DATA frame's seq, or 0 if `frame` is not a DATA frame for `key`.
std::uint64_t data_seq(const std::string& frame, std::string_view key) {
  auto d = parse_line_data(frame);
  return d && d->key == key ? d->seq : 0;
}

std::string temp_dir() {
  std::string pattern = ::testing::TempDir() + "feedkit_cert_XXXXXX";
  EXPECT_NE(mkdtemp(pattern.data()), nullptr);
  return pattern;
}

TEST(FaultyWsServer, ListensOnLoopbackAtAFreePort) {
  auto server = start_server();
  ASSERT_NE(server, nullptr);
  EXPECT_NE(server->port(), 0);
  EXPECT_EQ(server->url(),
            "ws://127.0.0.1:" + std::to_string(server->port()) + "/");
  auto client = open_client(*server);
  EXPECT_EQ(server->connections_accepted(), 1u);
  EXPECT_EQ(server->handshakes_completed(), 1u);
  EXPECT_EQ(server->open_sessions(), 1u);
}

TEST(FaultyWsServer, RefusedHandshakeGetsHttp503) {
  auto server = start_server();
  server->set_handshake(HandshakeMode::refuse);
  Client client;
  ASSERT_FALSE(client.connect(server->port()));
  EXPECT_EQ(client.handshake(), websocket::error::upgrade_declined);
  EXPECT_EQ(client.response().result(), http::status::service_unavailable);
  EXPECT_EQ(server->handshakes_refused(), 1u);
  EXPECT_EQ(server->handshakes_completed(), 0u);
  EXPECT_EQ(server->open_sessions(), 0u);
}

TEST(FaultyWsServer, HungHandshakeIsNeverAnswered) {
  auto server = start_server();
  server->set_handshake(HandshakeMode::hang);
  Client client;
  ASSERT_FALSE(client.connect(server->port()));
  EXPECT_EQ(client.handshake(kShort), beast::error::timeout);
  EXPECT_TRUE(server->wait_for(
      [&] { return server->connections_accepted() == 1; }, kLong));
  EXPECT_EQ(server->handshakes_completed(), 0u);
}

TEST(FaultyWsServer, DelayedHandshakeIsAnsweredAfterTheDelay) {
  auto server = start_server();
  server->set_handshake(HandshakeMode::delay, 150ms);
  Client client;
  ASSERT_FALSE(client.connect(server->port()));
  const SteadyTime start = SteadyClock::now();
  EXPECT_FALSE(client.handshake());
  EXPECT_GE(SteadyClock::now() - start, 150ms);
  EXPECT_EQ(server->handshakes_completed(), 1u);
}

TEST(FaultyWsServer, ScriptAppliesToTheNextConnection) {
  auto server = start_server();
  server->set_handshake(HandshakeMode::refuse);
  Client refused;
  ASSERT_FALSE(refused.connect(server->port()));
  EXPECT_EQ(refused.handshake(), websocket::error::upgrade_declined);
  server->set_handshake(HandshakeMode::accept);
  auto client = open_client(*server);
  EXPECT_EQ(server->handshakes_refused(), 1u);
  EXPECT_EQ(server->handshakes_completed(), 1u);
}

TEST(FaultyWsServer, LoginWithAnotherSecretGetsAuthFail) {
  auto server = start_server();
  server->set_accepted_secret("right");
  auto client = open_client(*server);
  EXPECT_EQ(client->exchange("LOGIN wrong"), "AUTH_FAIL");
  EXPECT_EQ(client->exchange("LOGIN right"), "LOGIN_OK");
}

TEST(FaultyWsServer, LoginWithAnySecretIsAcceptedByDefault) {
  auto server = start_server();
  auto client = open_client(*server);
  EXPECT_EQ(client->exchange("LOGIN whatever"), "LOGIN_OK");
}

TEST(FaultyWsServer, UnansweredLoginGetsNoReply) {
  auto server = start_server();
  server->set_answer_logins(false);
  auto client = open_client(*server);
  ASSERT_FALSE(client->send("LOGIN k"));
  EXPECT_EQ(client->read(kShort).ec, beast::error::timeout);
  server->set_answer_logins(true);
  EXPECT_EQ(client->exchange("LOGIN k"), "LOGIN_OK");
}

TEST(FaultyWsServer, SubscribeAndUnsubscribeAreAcknowledged) {
  auto server = start_server();
  auto client = open_client(*server);
  EXPECT_EQ(client->exchange("SUB A"), "ACK A");
  EXPECT_EQ(client->exchange("UNSUB A"), "UNACK A");
  EXPECT_EQ(client->exchange("SUB A"), "ACK A");
}

TEST(FaultyWsServer, SecondSubscribeOnOneConnectionGetsAlready) {
  auto server = start_server();
  auto client = open_client(*server);
  EXPECT_EQ(client->exchange("SUB A"), "ACK A");
  EXPECT_EQ(client->exchange("SUB A"), "ALREADY A");
}

TEST(FaultyWsServer, KeptSubscriptionIsAnsweredAlreadyOnTheNextConnection) {
  auto server = start_server();
  server->set_keeps_subscriptions(true);
  {
    auto first = open_client(*server);
    EXPECT_EQ(first->exchange("LOGIN key"), "LOGIN_OK");
    EXPECT_EQ(first->exchange("SUB A"), "ACK A");
  }
  ASSERT_TRUE(
      server->wait_for([&] { return server->open_sessions() == 0; }, kLong));
  auto second = open_client(*server);
  EXPECT_EQ(second->exchange("LOGIN key"), "LOGIN_OK");
  EXPECT_EQ(second->exchange("SUB A"), "ALREADY A");
  EXPECT_EQ(second->exchange("UNSUB A"), "UNACK A");
  EXPECT_EQ(second->exchange("SUB A"), "ACK A");
}

TEST(FaultyWsServer, KeptSubscriptionsArePerSecret) {
  auto server = start_server();
  server->set_keeps_subscriptions(true);
  {
    auto first = open_client(*server);
    EXPECT_EQ(first->exchange("LOGIN one"), "LOGIN_OK");
    EXPECT_EQ(first->exchange("SUB A"), "ACK A");
  }
  auto second = open_client(*server);
  EXPECT_EQ(second->exchange("LOGIN two"), "LOGIN_OK");
  EXPECT_EQ(second->exchange("SUB A"), "ACK A");
}

TEST(FaultyWsServer, ForgetsSubscriptionsOnDisconnectByDefault) {
  auto server = start_server();
  {
    auto first = open_client(*server);
    EXPECT_EQ(first->exchange("LOGIN key"), "LOGIN_OK");
    EXPECT_EQ(first->exchange("SUB A"), "ACK A");
  }
  auto second = open_client(*server);
  EXPECT_EQ(second->exchange("LOGIN key"), "LOGIN_OK");
  EXPECT_EQ(second->exchange("SUB A"), "ACK A");
}

TEST(FaultyWsServer, SubscribeBeyondTheLimitGetsMaxsub) {
  auto server = start_server();
  server->set_max_subscriptions(2);
  auto client = open_client(*server);
  EXPECT_EQ(client->exchange("SUB A"), "ACK A");
  EXPECT_EQ(client->exchange("SUB B"), "ACK B");
  EXPECT_EQ(client->exchange("SUB C"), "MAXSUB C");
  EXPECT_EQ(client->exchange("UNSUB A"), "UNACK A");
  EXPECT_EQ(client->exchange("SUB C"), "ACK C");
}

TEST(FaultyWsServer, RejectedKeyGetsRejectWithReason) {
  auto server = start_server();
  server->set_reject("X", "no such symbol");
  auto client = open_client(*server);
  EXPECT_EQ(client->exchange("SUB X"), "REJECT X no such symbol");
  EXPECT_EQ(client->exchange("SUB Y"), "ACK Y");
}

TEST(FaultyWsServer, UnansweredSubscribeGetsNoReply) {
  auto server = start_server();
  server->set_answer_subscriptions(false);
  auto client = open_client(*server);
  ASSERT_FALSE(client->send("SUB A"));
  EXPECT_EQ(client->read(kShort).ec, beast::error::timeout);
  EXPECT_EQ(client->exchange("LOGIN k"), "LOGIN_OK");  // still serving
}

TEST(FaultyWsServer, AppPingsAreNumberedAndPongsRecorded) {
  auto server = start_server();
  auto client = open_client(*server);
  server->set_app_ping(20ms);
  EXPECT_EQ(client->next(), "PING 1");
  EXPECT_EQ(client->next(), "PING 2");
  ASSERT_FALSE(client->send("PONG 2"));
  EXPECT_TRUE(server->wait_for(
      [&] { return server->count_received("PONG") == 1; }, kLong));
  server->set_app_ping(Duration::zero());
}

TEST(FaultyWsServer, RecordsFramesPerConnection) {
  auto server = start_server();
  auto first = open_client(*server);
  auto second = open_client(*server);
  ASSERT_FALSE(first->send("HELLO 1"));
  ASSERT_FALSE(second->send("HELLO 2"));
  ASSERT_FALSE(second->send("SUB B"));
  ASSERT_TRUE(
      server->wait_for([&] { return server->count_received("") == 3; }, kLong));
  EXPECT_EQ(server->received(0), std::vector<std::string>{"HELLO 1"});
  EXPECT_EQ(server->received(1),
            (std::vector<std::string>{"HELLO 2", "SUB B"}));
  EXPECT_EQ(server->count_received("HELLO"), 2u);
  EXPECT_TRUE(server->received(2).empty());
}

TEST(FaultyWsServer, SendTextReachesEveryOpenSession) {
  auto server = start_server();
  auto first = open_client(*server);
  auto second = open_client(*server);
  server->send_text("NOTICE hello");
  EXPECT_EQ(first->next(), "NOTICE hello");
  EXPECT_EQ(second->next(), "NOTICE hello");
}

TEST(FaultyWsServer, StreamSendsDataWithSendTimeOnlyToSubscribers) {
  auto server = start_server();
  auto subscriber = open_client(*server);
  auto other = open_client(*server);
  ASSERT_EQ(subscriber->exchange("SUB A"), "ACK A");
  server->stream("A", 1000, 5);
  for (std::uint64_t seq = 1; seq <= 5; ++seq) {
    const std::string frame = subscriber->next();
    ASSERT_EQ(data_seq(frame, "A"), seq) << frame;
    auto sent = parse_sent_time(parse_line_data(frame)->payload);
    ASSERT_TRUE(sent.has_value()) << frame;
    EXPECT_LE(*sent, SteadyClock::now());
    EXPECT_GE(*sent, SteadyClock::now() - kLong);
  }
  EXPECT_EQ(subscriber->read(kShort).ec, beast::error::timeout);  // count done
  EXPECT_EQ(other->read(kShort).ec, beast::error::timeout);  // not subscribed
}

TEST(FaultyWsServer, StreamKeepsItsRate) {
  auto server = start_server();
  auto client = open_client(*server);
  ASSERT_EQ(client->exchange("SUB A"), "ACK A");
  const SteadyTime start = SteadyClock::now();
  server->stream("A", 200, 20);  // 95 ms from the first to the last frame
  for (int i = 0; i < 20; ++i) ASSERT_NE(data_seq(client->next(), "A"), 0u);
  EXPECT_GE(SteadyClock::now() - start, 90ms);
}

TEST(FaultyWsServer, StreamResumesOnANewSessionWithSeqAfterTheGap) {
  auto server = start_server();
  server->stream("A", 500);
  std::uint64_t last_seq = 0;
  {
    auto first = open_client(*server);
    ASSERT_EQ(first->exchange("SUB A"), "ACK A");
    last_seq = data_seq(first->next(), "A");
    ASSERT_NE(last_seq, 0u);
    server->reset_all();
  }
  auto second = open_client(*server);
  ASSERT_EQ(second->exchange("SUB A"), "ACK A");
  EXPECT_GT(data_seq(second->next(), "A"), last_seq);
  server->stop_streams();
}

TEST(FaultyWsServer, StopStreamsEndsTheData) {
  auto server = start_server();
  auto client = open_client(*server);
  ASSERT_EQ(client->exchange("SUB A"), "ACK A");
  server->stream("A", 2000);
  ASSERT_NE(data_seq(client->next(), "A"), 0u);
  server->stop_streams();
  int drained = 0;  // frames already on their way
  while (client->read(kShort).ec != beast::error::timeout)
    ASSERT_LT(++drained, 1000);
}

TEST(FaultyWsServer, FloodSendsEveryFrameInOrder) {
  auto server = start_server();
  auto client = open_client(*server);
  ASSERT_EQ(client->exchange("SUB A"), "ACK A");
  constexpr std::uint64_t kCount = 5000;
  server->flood("A", kCount);
  for (std::uint64_t seq = 1; seq <= kCount; ++seq) {
    ASSERT_EQ(data_seq(client->next(), "A"), seq);
  }
  EXPECT_EQ(client->read(kShort).ec, beast::error::timeout);
}

TEST(FaultyWsServer, MalformedFramesAreMalformedForLineProtocol) {
  auto server = start_server();
  auto client = open_client(*server);
  server->send_malformed(7);
  LineProtocol protocol;
  for (int i = 0; i < 7; ++i) {
    const auto r = client->read();
    ASSERT_FALSE(r.ec) << r.ec.message();
    EXPECT_EQ(protocol.classify(r.text).kind, FrameKind::malformed) << r.text;
  }
}

TEST(FaultyWsServer, CloseAllSendsACloseFrame) {
  auto server = start_server();
  auto client = open_client(*server);
  server->close_all();
  EXPECT_EQ(client->read().ec, websocket::error::closed);
  EXPECT_EQ(client->ws().reason().code, websocket::close_code::normal);
  EXPECT_TRUE(
      server->wait_for([&] { return server->open_sessions() == 0; }, kLong));
}

TEST(FaultyWsServer, ResetAllResetsTheTcpConnection) {
  auto server = start_server();
  auto client = open_client(*server);
  server->reset_all();
  EXPECT_EQ(client->read().ec, net::error::connection_reset);
  EXPECT_EQ(server->open_sessions(), 0u);
}

TEST(FaultyWsServer, ResetAllAlsoResetsHungHandshakes) {
  auto server = start_server();
  server->set_handshake(HandshakeMode::hang);
  Client client;
  ASSERT_FALSE(client.connect(server->port()));
  ASSERT_TRUE(server->wait_for(
      [&] { return server->connections_accepted() == 1; }, kLong));
  server->reset_all();
  EXPECT_EQ(client.handshake(), net::error::connection_reset);
}

TEST(FaultyWsServer, StallAllSendsNothingButKeepsReading) {
  auto server = start_server();
  auto client = open_client(*server);
  ASSERT_EQ(client->exchange("SUB A"), "ACK A");
  server->set_app_ping(10ms);
  server->stream("A", 1000);
  ASSERT_NE(client->next(), "");
  server->stall_all();
  int drained = 0;  // frames already on their way
  while (client->read(kShort).ec != beast::error::timeout)
    ASSERT_LT(++drained, 1000);
  ASSERT_FALSE(client->send("SUB B"));  // recorded, not answered
  EXPECT_TRUE(server->wait_for(
      [&] { return server->count_received("SUB B") == 1; }, kLong));
  EXPECT_EQ(client->read(kShort).ec, beast::error::timeout);
  EXPECT_EQ(server->open_sessions(), 1u);
  server->stop_streams();
}

TEST(FaultyWsServer, StallAllSwallowsWebSocketPongs) {
  auto server = start_server();
  auto client = open_client(*server);
  ASSERT_FALSE(client->ping());
  EXPECT_EQ(client->read(kShort).ec, beast::error::timeout);
  EXPECT_EQ(client->pongs(), 1);
  server->stall_all();
  ASSERT_FALSE(client->ping());
  EXPECT_EQ(client->read(kShort).ec, beast::error::timeout);
  EXPECT_EQ(client->pongs(), 1);
}

TEST(FaultyWsServer, SessionsOpenedAfterAStallAreServed) {
  auto server = start_server();
  auto stalled = open_client(*server);
  server->stall_all();
  auto fresh = open_client(*server);
  EXPECT_EQ(fresh->exchange("SUB A"), "ACK A");
}

TEST(FaultyWsServer, CountsSessionsThatEnd) {
  auto server = start_server();
  { auto client = open_client(*server); }
  EXPECT_TRUE(
      server->wait_for([&] { return server->open_sessions() == 0; }, kLong));
  EXPECT_EQ(server->handshakes_completed(), 1u);
}

TEST(FaultyWsServer, WaitForReturnsFalseAfterTheTimeout) {
  auto server = start_server();
  const SteadyTime start = SteadyClock::now();
  EXPECT_FALSE(server->wait_for([] { return false; }, 50ms));
  EXPECT_GE(SteadyClock::now() - start, 50ms);
}

TEST(FaultyWsServer, DestructorReturnsPromptlyWhateverTheClientsDo) {
  auto server = start_server();
  auto open = open_client(*server);
  ASSERT_EQ(open->exchange("SUB A"), "ACK A");
  server->stream("A", 10'000);
  server->flood("A", 10'000'000);  // the client reads nothing more
  server->set_handshake(HandshakeMode::hang);
  Client hung;
  ASSERT_FALSE(hung.connect(server->port()));
  ASSERT_TRUE(server->wait_for(
      [&] { return server->connections_accepted() == 2; }, kLong));
  const SteadyTime start = SteadyClock::now();
  server.reset();
  EXPECT_LT(SteadyClock::now() - start, 2s);
}

TEST(FaultyWsServer, StartFailsOnMissingCertificateFiles) {
  auto server = FaultyWsServer::start({.tls = true,
                                       .cert_file = "/nonexistent/c.pem",
                                       .key_file = "/nonexistent/k.pem"});
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(server.status().message().find("cert_file"), std::string::npos);
}

TEST(TestCertificate, IsWrittenIntoTheDirectory) {
  auto cert = make_test_certificate(temp_dir());
  ASSERT_TRUE(cert.ok()) << cert.status();
  EXPECT_TRUE(std::filesystem::file_size(cert->cert_file) > 0);
  EXPECT_TRUE(std::filesystem::file_size(cert->key_file) > 0);
}

TEST(FaultyWsServer, ServesWssToAClientThatTrustsTheCertificate) {
  auto cert = make_test_certificate(temp_dir());
  ASSERT_TRUE(cert.ok()) << cert.status();
  auto server = start_server(
      {.tls = true, .cert_file = cert->cert_file, .key_file = cert->key_file});
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->url(),
            "wss://localhost:" + std::to_string(server->port()) + "/");
  net::ssl::context ctx(net::ssl::context::tls_client);
  ctx.load_verify_file(cert->cert_file);
  TlsClient client(ctx);
  ASSERT_FALSE(client.connect(server->port()));
  ASSERT_FALSE(client.tls_handshake());
  ASSERT_FALSE(client.handshake());
  EXPECT_EQ(client.exchange("SUB A"), "ACK A");
  server->flood("A", 100);
  for (std::uint64_t seq = 1; seq <= 100; ++seq) {
    ASSERT_EQ(data_seq(client.next(), "A"), seq);
  }
  server->close_all();
  EXPECT_EQ(client.read().ec, websocket::error::closed);
}

TEST(FaultyWsServer, WssIsRefusedByAClientThatTrustsAnotherCertificate) {
  auto served = make_test_certificate(temp_dir());
  auto trusted = make_test_certificate(temp_dir());
  ASSERT_TRUE(served.ok() && trusted.ok());
  auto server = start_server({.tls = true,
                              .cert_file = served->cert_file,
                              .key_file = served->key_file});
  net::ssl::context ctx(net::ssl::context::tls_client);
  ctx.load_verify_file(trusted->cert_file);
  TlsClient client(ctx);
  ASSERT_FALSE(client.connect(server->port()));
  const beast::error_code ec = client.tls_handshake();
  ASSERT_TRUE(ec);
  EXPECT_EQ(ec.category(), net::error::get_ssl_category()) << ec.message();
  EXPECT_EQ(server->handshakes_completed(), 0u);
}

}  // namespace
}  // namespace feedkit::testing
