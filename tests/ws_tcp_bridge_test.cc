// Test that header file is self-contained.
#include "feedkit/testing/ws_tcp_bridge.h"

#include <gtest/gtest.h>
#include <mqtt/async_client.h>
#include <stdlib.h>  // mkdtemp
#include <sys/socket.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange
#include <vector>

#include "feedkit/testing/mosquitto_broker.h"
#include "feedkit/testing/test_certificate.h"

namespace feedkit::testing {
namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
namespace websocket = boost::beast::websocket;
using tcp = boost::asio::ip::tcp;
using namespace std::chrono_literals;

constexpr auto kLong = 10s;  // anything that should happen does by then

// A Paho C++ client with blocking helpers that never wait forever.
class PahoClient {
 public:
  explicit PahoClient(const std::string& url)
      : client_(url, "feedkit-bridge-test-" + std::to_string(next_id_++)) {
    client_.set_connection_lost_handler(
        [this](const std::string&) { lost_ = true; });
    client_.start_consuming();
  }
  ~PahoClient() {
    try {
      if (client_.is_connected()) client_.disconnect()->wait_for(2s);
    } catch (const mqtt::exception&) {
    }
  }

  // Returns true once connected, with `authorization` as the upgrade's
  // Authorization header (none if empty) and `ca_file` as the TLS trust
  // store (wss://).
  bool connect(const std::string& authorization = "",
               const std::string& ca_file = "") {
    // MQTT 3.1.1 only: by default Paho retries a refused connect as MQTT
    // 3.1, a second upgrade request.
    auto options = mqtt::connect_options_builder()
                       .mqtt_version(MQTTVERSION_3_1_1)
                       .clean_session(true)
                       .connect_timeout(kLong)
                       .finalize();
    if (!authorization.empty()) {
      options.set_http_headers({{"Authorization", authorization}});
    }
    if (!ca_file.empty()) {
      options.set_ssl(mqtt::ssl_options_builder()
                          .trust_store(ca_file)
                          .enable_server_cert_auth(true)
                          .verify(true)
                          .finalize());
    }
    try {
      return client_.connect(options)->wait_for(kLong);
    } catch (const mqtt::exception&) {
      return false;
    }
  }

  bool subscribe(const std::string& filter, int qos = 0) {
    return client_.subscribe(filter, qos)->wait_for(kLong);
  }

  bool publish(const std::string& topic, const std::string& payload) {
    return client_.publish(topic, payload.data(), payload.size(), 1, false)
        ->wait_for(kLong);
  }

  // Returns the next message's payload, or nullopt after kLong. (Paho
  // queues an empty message when the connection is lost: skipped.)
  std::optional<std::string> receive() {
    const SteadyTime deadline = SteadyClock::now() + kLong;
    mqtt::const_message_ptr msg;
    while (client_.try_consume_message_until(&msg, deadline)) {
      if (msg) return msg->to_string();
    }
    return std::nullopt;
  }

  bool lost() const { return lost_; }

 private:
  static inline std::atomic<int> next_id_{0};
  mqtt::async_client client_;
  std::atomic<bool> lost_{false};
};

// Makes blocking reads on `socket` give up after kLong.
void limit_reads(tcp::socket& socket) {
  const timeval timeout{10, 0};
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout,
               sizeof(timeout));
}

// Byte i of the test pattern.
char pattern(std::size_t i) { return static_cast<char>('a' + i % 23); }

std::string pattern_bytes(std::size_t n) {
  std::string out(n, '\0');
  for (std::size_t i = 0; i < n; ++i) out[i] = pattern(i);
  return out;
}

// Sends a WebSocket upgrade request for /mqtt with `headers` and returns the
// response (result 0 if none came within kLong).
http::response<http::string_body> upgrade(
    std::uint16_t port,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  net::io_context ioc;
  tcp::socket socket(ioc);
  http::response<http::string_body> response;
  response.result(0);
  beast::error_code ec;
  socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return response;
  limit_reads(socket);
  http::request<http::empty_body> request(http::verb::get, "/mqtt", 11);
  request.set(http::field::host, "127.0.0.1");
  request.set(http::field::upgrade, "websocket");
  request.set(http::field::connection, "Upgrade");
  request.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
  request.set(http::field::sec_websocket_version, "13");
  for (const auto& [name, value] : headers) request.set(name, value);
  http::write(socket, request, ec);
  beast::flat_buffer buffer;
  if (!ec) http::read(socket, buffer, response, ec);
  return response;
}

// A raw WebSocket client of the bridge and the target's side of its
// session, both blocking.
struct RawSession {
  websocket::stream<tcp::socket> client;
  tcp::socket server;
};

// Returns a raw WebSocket client upgraded by the bridge at `port`.
websocket::stream<tcp::socket> connect_raw(net::io_context& ioc,
                                           std::uint16_t port) {
  websocket::stream<tcp::socket> client(ioc);
  client.next_layer().connect(
      tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  limit_reads(client.next_layer());
  client.handshake("127.0.0.1", "/any/path");
  return client;
}

// Opens a session through the bridge at `port` to the test's `target`.
RawSession open_raw_session(net::io_context& ioc, tcp::acceptor& target,
                            std::uint16_t port) {
  websocket::stream<tcp::socket> client = connect_raw(ioc, port);
  tcp::socket server = target.accept();  // connected before the 101
  limit_reads(server);
  return {std::move(client), std::move(server)};
}

// Reads binary messages until `n` bytes came; returns them.
std::string read_messages(websocket::stream<tcp::socket>& client,
                          std::size_t n) {
  std::string out;
  beast::flat_buffer message;
  while (out.size() < n) {
    beast::error_code ec;
    client.read(message, ec);
    if (ec) {
      ADD_FAILURE() << ec.message();
      break;
    }
    EXPECT_TRUE(client.got_binary());
    EXPECT_LE(message.size(), 64u * 1024);  // one chunk from the target
    out += beast::buffers_to_string(message.data());
    message.consume(message.size());
  }
  return out;
}

// A broker and a bridge in front of it.
class WsTcpBridgeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Room for a whole flood per subscriber: mosquitto drops what exceeds it.
    auto broker = MosquittoBroker::start({.max_queued_messages = 100'000});
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = *std::move(broker);
  }

  // Starts bridge_ with `options`, aimed at broker_.
  void start_bridge(WsTcpBridgeOptions options = {}) {
    options.target_port = broker_->port();
    auto bridge = WsTcpBridge::start(std::move(options));
    ASSERT_TRUE(bridge.ok()) << bridge.status();
    bridge_ = *std::move(bridge);
  }

  std::unique_ptr<MosquittoBroker> broker_;
  std::unique_ptr<WsTcpBridge> bridge_;
};

TEST_F(WsTcpBridgeTest, CarriesMqttOverWsAndRecordsTheUpgradeHeaders) {
  start_bridge();
  EXPECT_EQ(bridge_->url(),
            "ws://127.0.0.1:" + std::to_string(bridge_->port()) + "/mqtt");
  PahoClient client(bridge_->url());
  ASSERT_TRUE(client.connect("Bearer token-1")) << broker_->log_tail();
  ASSERT_TRUE(client.subscribe("prices/#"));
  ASSERT_TRUE(client.publish("prices/PTT", "34.25"));
  EXPECT_EQ(client.receive(), "34.25");

  EXPECT_EQ(bridge_->last_header("authorization"), "Bearer token-1");
  const std::vector<UpgradeRequest> requests = bridge_->upgrade_requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].target, "/mqtt");
  EXPECT_EQ(requests[0].header("Sec-WebSocket-Protocol"), "mqtt");
  EXPECT_EQ(bridge_->upgrades_completed(), 1u);
  EXPECT_EQ(bridge_->open_sessions(), 1u);
  EXPECT_GT(bridge_->bytes_to_target(), 0u);
  EXPECT_GT(bridge_->bytes_to_client(), 0u);
}

TEST_F(WsTcpBridgeTest, CarriesMqttOverWss) {
  std::string dir =
      (std::filesystem::temp_directory_path() / "feedkit-bridge-test-XXXXXX")
          .string();
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  auto cert = make_test_certificate(dir);
  ASSERT_TRUE(cert.ok()) << cert.status();
  start_bridge({.tls = true,
                .cert_file = cert->cert_file,
                .key_file = cert->key_file,
                .required_bearer = "secret-token"});
  EXPECT_EQ(bridge_->url(),
            "wss://localhost:" + std::to_string(bridge_->port()) + "/mqtt");

  PahoClient client(bridge_->url());
  ASSERT_TRUE(client.connect("Bearer secret-token", cert->cert_file))
      << broker_->log_tail();
  ASSERT_TRUE(client.subscribe("t"));
  ASSERT_TRUE(client.publish("t", "over tls"));
  EXPECT_EQ(client.receive(), "over tls");
  EXPECT_EQ(bridge_->last_header("Authorization"), "Bearer secret-token");
  std::filesystem::remove_all(dir);
}

TEST_F(WsTcpBridgeTest, WrongOrMissingBearerIsRefusedWith401) {
  start_bridge({.required_bearer = "good"});
  EXPECT_FALSE(PahoClient(bridge_->url()).connect("Bearer bad"));
  EXPECT_EQ(bridge_->upgrades_unauthorized(), 1u);
  EXPECT_EQ(bridge_->last_header("Authorization"), "Bearer bad");

  EXPECT_EQ(upgrade(bridge_->port(), {}).result(), http::status::unauthorized);
  EXPECT_EQ(
      upgrade(bridge_->port(), {{"Authorization", "Basic good"}}).result(),
      http::status::unauthorized);
  EXPECT_EQ(bridge_->upgrades_unauthorized(), 3u);
  EXPECT_EQ(bridge_->upgrades_completed(), 0u);

  EXPECT_TRUE(PahoClient(bridge_->url()).connect("Bearer good"));
  bridge_->set_required_bearer("rotated");
  EXPECT_FALSE(PahoClient(bridge_->url()).connect("Bearer good"));
  EXPECT_EQ(bridge_->upgrades_unauthorized(), 4u);
}

TEST_F(WsTcpBridgeTest, AnswersTheMqttSubprotocolOnlyWhenOffered) {
  start_bridge();
  auto offered =
      upgrade(bridge_->port(), {{"Sec-WebSocket-Protocol", "wamp, mqtt"}});
  EXPECT_EQ(offered.result(), http::status::switching_protocols);
  EXPECT_EQ(offered[http::field::sec_websocket_protocol], "mqtt");

  auto plain = upgrade(bridge_->port(), {});
  EXPECT_EQ(plain.result(), http::status::switching_protocols);
  EXPECT_EQ(plain.count(http::field::sec_websocket_protocol), 0u);
}

TEST_F(WsTcpBridgeTest, TargetDownIsAnswered502) {
  start_bridge();
  broker_->kill();
  EXPECT_EQ(upgrade(bridge_->port(), {}).result(), http::status::bad_gateway);
  EXPECT_EQ(bridge_->target_failures(), 1u);

  ASSERT_TRUE(broker_->restart().ok()) << broker_->log_tail();
  EXPECT_TRUE(PahoClient(bridge_->url()).connect());
}

TEST_F(WsTcpBridgeTest, KilledBrokerEndsTheSession) {
  start_bridge();
  PahoClient client(bridge_->url());
  ASSERT_TRUE(client.connect());
  broker_->kill();
  EXPECT_TRUE(bridge_->wait_for(
      [&] { return client.lost() && bridge_->open_sessions() == 0; }, kLong));
}

TEST_F(WsTcpBridgeTest, CloseAllEndsEverySession) {
  start_bridge();
  PahoClient paho(bridge_->url());
  ASSERT_TRUE(paho.connect());
  net::io_context ioc;
  websocket::stream<tcp::socket> raw = connect_raw(ioc, bridge_->port());
  EXPECT_EQ(bridge_->open_sessions(), 2u);

  bridge_->close_all();
  beast::flat_buffer message;
  beast::error_code ec;
  raw.read(message, ec);
  EXPECT_EQ(ec, websocket::error::closed);
  EXPECT_EQ(raw.reason().code, websocket::close_code::normal);
  EXPECT_TRUE(bridge_->wait_for(
      [&] { return paho.lost() && bridge_->open_sessions() == 0; }, kLong));
}

// Many MQTT packets per WebSocket message, and a packet larger than one
// message, in order and complete. One WebSocket subscriber only: Paho C
// 1.3.11 keeps its WebSocket receive buffers in process-wide statics
// (WebSocket.c: in_frames, frame_buffer), so two ws:// connections receiving
// at once in one process corrupt each other's streams (seen here as
// repeated and reordered messages). The bridge itself carries several
// sessions at once: RelaysBytesUnchangedOnEverySessionThenCloses.
TEST_F(WsTcpBridgeTest, RelaysAFloodInOrder) {
  start_bridge();
  PahoClient subscriber(bridge_->url());
  ASSERT_TRUE(subscriber.connect());
  ASSERT_TRUE(subscriber.subscribe("flood", 1));
  PahoClient publisher(broker_->url());  // straight to mosquitto
  ASSERT_TRUE(publisher.connect());
  constexpr int kMessages = 2000;
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_TRUE(publisher.publish("flood", "seq=" + std::to_string(i)));
  }
  const std::string big(200 * 1024, 'b');  // > one 64 KiB relay chunk
  ASSERT_TRUE(publisher.publish("flood", big));

  for (int i = 0; i < kMessages; ++i) {
    ASSERT_EQ(subscriber.receive(), "seq=" + std::to_string(i));
  }
  EXPECT_EQ(subscriber.receive(), big);
}

// The relay itself, below MQTT (Paho cannot take part: see
// RelaysAFloodInOrder): raw WebSocket clients on one side, a raw TCP server
// on the other, several sessions at once.
TEST(WsTcpBridge, RelaysBytesUnchangedOnEverySessionThenCloses) {
  net::io_context ioc;
  tcp::acceptor target(ioc,
                       tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  auto bridge =
      WsTcpBridge::start({.target_port = target.local_endpoint().port()});
  ASSERT_TRUE(bridge.ok()) << bridge.status();
  constexpr std::size_t kSessions = 3;
  std::vector<RawSession> sessions;
  for (std::size_t i = 0; i < kSessions; ++i) {
    sessions.push_back(open_raw_session(ioc, target, (*bridge)->port()));
  }
  // Session i carries the pattern from offset i: a mix-up would show.
  const auto bytes_of = [](std::size_t i, std::size_t n) {
    return pattern_bytes(n + i).substr(i);
  };

  // Client → target: the messages' bytes, concatenated.
  for (std::size_t i = 0; i < kSessions; ++i) {
    auto& client = sessions[i].client;
    client.binary(true);
    client.write(net::buffer(std::string("abc")));
    client.write(net::buffer(bytes_of(i, 300 * 1024)));
    client.text(true);
    client.write(net::buffer(std::string("xyz")));
  }
  for (std::size_t i = 0; i < kSessions; ++i) {
    std::string at_target(3 + 300 * 1024 + 3, '\0');
    net::read(sessions[i].server, net::buffer(at_target));
    EXPECT_EQ(at_target, "abc" + bytes_of(i, 300 * 1024) + "xyz") << i;
  }

  // Target → client, all sessions at once: binary messages.
  constexpr std::size_t kStream = 1024 * 1024;
  std::vector<std::thread> writers;
  for (std::size_t i = 0; i < kSessions; ++i) {
    writers.emplace_back([&, i] {
      net::write(sessions[i].server, net::buffer(bytes_of(i, kStream)));
    });
  }
  for (std::size_t i = 0; i < kSessions; ++i) {
    EXPECT_EQ(read_messages(sessions[i].client, kStream), bytes_of(i, kStream))
        << i;
  }
  for (auto& writer : writers) writer.join();
  EXPECT_TRUE((*bridge)->wait_for(
      [&] {
        return (*bridge)->bytes_to_target() == kSessions * (300 * 1024 + 6) &&
               (*bridge)->bytes_to_client() == kSessions * kStream;
      },
      kLong));
  EXPECT_EQ((*bridge)->open_sessions(), kSessions);

  // A target closes: its client gets a close frame; the others carry on.
  sessions[0].server.close();
  beast::flat_buffer message;
  beast::error_code ec;
  sessions[0].client.read(message, ec);
  EXPECT_EQ(ec, websocket::error::closed);
  EXPECT_EQ(sessions[0].client.reason().code, websocket::close_code::normal);
  EXPECT_TRUE((*bridge)->wait_for(
      [&] { return (*bridge)->open_sessions() == kSessions - 1; }, kLong));
  net::write(sessions[1].server, net::buffer(std::string("still here")));
  EXPECT_EQ(read_messages(sessions[1].client, 10), "still here");
  EXPECT_EQ((*bridge)->upgrade_requests().at(0).target, "/any/path");
}

TEST(WsTcpBridge, DestructorReturnsPromptlyWithBusySessions) {
  net::io_context ioc;
  tcp::acceptor target(ioc,
                       tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  auto bridge =
      WsTcpBridge::start({.target_port = target.local_endpoint().port()});
  ASSERT_TRUE(bridge.ok()) << bridge.status();
  RawSession session = open_raw_session(ioc, target, (*bridge)->port());
  // The client reads nothing: the bridge's write to it stays pending.
  session.server.non_blocking(true);
  const std::string chunk(64 * 1024, 'x');
  beast::error_code ec;
  while (!ec) session.server.write_some(net::buffer(chunk), ec);
  ASSERT_EQ(ec, net::error::would_block);

  const SteadyTime before = SteadyClock::now();
  bridge->reset();
  EXPECT_LT(SteadyClock::now() - before, 2s);
}

TEST(WsTcpBridge, InvalidOptionsNameTheField) {
  auto no_port = WsTcpBridge::start({});
  EXPECT_EQ(no_port.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(no_port.status().message().find("target_port"),
            absl::string_view::npos);
  auto no_files = WsTcpBridge::start({.target_port = 1, .tls = true});
  EXPECT_EQ(no_files.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(no_files.status().message().find("cert_file"),
            absl::string_view::npos);
  auto bad_files = WsTcpBridge::start({.target_port = 1,
                                       .tls = true,
                                       .cert_file = "/nonexistent/cert.pem",
                                       .key_file = "/nonexistent/key.pem"});
  EXPECT_EQ(bad_files.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad_files.status().message().find("/nonexistent/cert.pem"),
            absl::string_view::npos);
  auto bad_token =
      WsTcpBridge::start({.target_port = 1, .required_bearer = "a b"});
  EXPECT_EQ(bad_token.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad_token.status().message().find("a b"), absl::string_view::npos)
      << "a token must not appear in an error";
}

}  // namespace
}  // namespace feedkit::testing
