// Test that header file is self-contained.
#include "feedkit/testing/tcp_fault_proxy.h"

#include <gtest/gtest.h>
#include <mqtt/async_client.h>
#include <poll.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include "feedkit/testing/mosquitto_broker.h"

namespace feedkit::testing {
namespace {

namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;
using error_code = boost::system::error_code;
using namespace std::chrono_literals;

constexpr auto kLong = 10s;  // anything that should happen does by then

// Blocks until `fd` is readable (data, EOF or an error) or `timeout` passes.
bool readable(int fd, Duration timeout) {
  pollfd p{fd, POLLIN, 0};
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count();
  return ::poll(&p, 1, static_cast<int>(ms)) == 1;
}

// Reads exactly `n` bytes, each within kLong; returns what it got.
std::string read_bytes(tcp::socket& socket, std::size_t n) {
  std::string out;
  char buf[64 * 1024];
  while (out.size() < n && readable(socket.native_handle(), kLong)) {
    error_code ec;
    const std::size_t got = socket.read_some(
        net::buffer(buf, std::min(sizeof(buf), n - out.size())), ec);
    if (ec) break;
    out.append(buf, got);
  }
  return out;
}

// Waits for the socket's next read to fail; returns its error (eof,
// connection_reset), or would_block if nothing came within kLong.
error_code read_error(tcp::socket& socket) {
  if (!readable(socket.native_handle(), kLong)) {
    return net::error::would_block;
  }
  char byte;
  error_code ec;
  socket.read_some(net::buffer(&byte, 1), ec);
  return ec;
}

// Byte i of the test pattern.
char pattern(std::size_t i) { return static_cast<char>('a' + i % 23); }

// Writes the test pattern without blocking until the socket would block
// (every buffer on the way is full); returns how many bytes it wrote.
std::size_t write_until_blocked(tcp::socket& socket) {
  socket.non_blocking(true);
  std::string chunk(64 * 1024, '\0');
  std::size_t total = 0;
  while (true) {
    for (std::size_t i = 0; i < chunk.size(); ++i)
      chunk[i] = pattern(total + i);
    error_code ec;
    const std::size_t n = socket.write_some(net::buffer(chunk), ec);
    if (ec == net::error::would_block) break;
    if (ec) ADD_FAILURE() << ec.message();
    if (ec) break;
    total += n;
  }
  socket.non_blocking(false);
  return total;
}

bool is_pattern(const std::string& bytes) {
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] != pattern(i)) return false;
  }
  return true;
}

// A target server and clients connected to it through a TcpFaultProxy; every
// socket is blocking and owned by the test thread.
class TcpFaultProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    target_.open(tcp::v4());
    target_.bind(tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    target_.listen();
    auto proxy =
        TcpFaultProxy::start({.target_port = target_.local_endpoint().port()});
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    proxy_ = *std::move(proxy);
  }

  // A connected pair: the client's socket and the target's accepted one.
  struct Pair {
    tcp::socket client;
    tcp::socket server;
  };

  std::optional<Pair> connect() {
    tcp::socket client(ioc_);
    error_code ec;
    client.connect(
        tcp::endpoint(net::ip::make_address("127.0.0.1"), proxy_->port()), ec);
    if (ec || !readable(target_.native_handle(), kLong)) return std::nullopt;
    tcp::socket server = target_.accept(ec);
    if (ec) return std::nullopt;
    return Pair{std::move(client), std::move(server)};
  }

  net::io_context ioc_;
  tcp::acceptor target_{ioc_};
  std::unique_ptr<TcpFaultProxy> proxy_;
};

TEST_F(TcpFaultProxyTest, PassesBytesBothWaysAndCountsThem) {
  auto link = connect();
  ASSERT_TRUE(link);
  net::write(link->client, net::buffer(std::string("hello")));
  EXPECT_EQ(read_bytes(link->server, 5), "hello");
  net::write(link->server, net::buffer(std::string("world!")));
  EXPECT_EQ(read_bytes(link->client, 6), "world!");

  // 4 MiB each way at once: more than any socket buffer on the way.
  const std::size_t big = 4 * 1024 * 1024;
  std::string payload(big, '\0');
  for (std::size_t i = 0; i < big; ++i) payload[i] = pattern(i);
  std::thread up([&] { net::write(link->client, net::buffer(payload)); });
  std::thread down([&] { net::write(link->server, net::buffer(payload)); });
  const std::string at_server = read_bytes(link->server, big);
  const std::string at_client = read_bytes(link->client, big);
  up.join();
  down.join();
  EXPECT_EQ(at_server.size(), big);
  EXPECT_TRUE(is_pattern(at_server));
  EXPECT_EQ(at_client.size(), big);
  EXPECT_TRUE(is_pattern(at_client));

  EXPECT_TRUE(proxy_->wait_for(
      [&] {
        return proxy_->bytes_to_target() == 5 + big &&
               proxy_->bytes_to_client() == 6 + big;
      },
      kLong));
  EXPECT_EQ(proxy_->connections_accepted(), 1u);
  EXPECT_EQ(proxy_->open_links(), 1u);
}

TEST_F(TcpFaultProxyTest, StalledLinkDeliversNothingThenEverythingOnPass) {
  auto link = connect();
  ASSERT_TRUE(link);
  net::write(link->client, net::buffer(std::string("x")));
  ASSERT_EQ(read_bytes(link->server, 1), "x");

  proxy_->set_mode(LinkMode::stall);
  const std::size_t written = write_until_blocked(link->client);
  EXPECT_GT(written, 0u);
  // Every buffer up to the proxy is full, and not one byte got through; the
  // sockets are open (no EOF, no reset on either side).
  EXPECT_FALSE(readable(link->server.native_handle(), Duration::zero()));
  EXPECT_FALSE(readable(link->client.native_handle(), Duration::zero()));
  EXPECT_EQ(proxy_->bytes_to_target(), 1u);
  EXPECT_EQ(proxy_->open_links(), 1u);

  proxy_->set_mode(LinkMode::pass);
  const std::string delivered = read_bytes(link->server, written);
  EXPECT_EQ(delivered.size(), written);
  EXPECT_TRUE(is_pattern(delivered));
}

TEST_F(TcpFaultProxyTest, NewLinkModeAppliesOnlyToLaterLinks) {
  auto first = connect();
  ASSERT_TRUE(first);
  proxy_->set_new_link_mode(LinkMode::stall);
  auto second = connect();
  ASSERT_TRUE(second);

  const std::size_t written = write_until_blocked(second->client);
  EXPECT_FALSE(readable(second->server.native_handle(), Duration::zero()));
  net::write(first->client, net::buffer(std::string("still passing")));
  EXPECT_EQ(read_bytes(first->server, 13), "still passing");

  proxy_->set_link_mode(1, LinkMode::pass);
  EXPECT_TRUE(is_pattern(read_bytes(second->server, written)));
}

TEST_F(TcpFaultProxyTest, DelayAddsLatencyBothWays) {
  auto link = connect();
  ASSERT_TRUE(link);
  constexpr Duration kDelay = 300ms;
  proxy_->set_mode(LinkMode::delay, kDelay);

  SteadyTime sent = SteadyClock::now();
  net::write(link->client, net::buffer(std::string("up")));
  EXPECT_EQ(read_bytes(link->server, 2), "up");
  EXPECT_GE(SteadyClock::now() - sent, kDelay);

  sent = SteadyClock::now();
  net::write(link->server, net::buffer(std::string("down")));
  EXPECT_EQ(read_bytes(link->client, 4), "down");
  EXPECT_GE(SteadyClock::now() - sent, kDelay);
}

TEST_F(TcpFaultProxyTest, CutGivesEofToBothSides) {
  auto link = connect();
  ASSERT_TRUE(link);
  proxy_->cut_all();
  EXPECT_EQ(read_error(link->client), net::error::eof);
  EXPECT_EQ(read_error(link->server), net::error::eof);
  EXPECT_EQ(proxy_->open_links(), 0u);
  EXPECT_EQ(proxy_->connections_accepted(), 1u);
}

TEST_F(TcpFaultProxyTest, CutOfAStalledLinkWithUnreadBytesIsStillEof) {
  auto link = connect();
  ASSERT_TRUE(link);
  proxy_->set_mode(LinkMode::stall);
  write_until_blocked(link->client);  // the proxy's socket holds unread bytes
  proxy_->cut(0);
  EXPECT_EQ(read_error(link->client), net::error::eof);
  EXPECT_EQ(read_error(link->server), net::error::eof);
}

TEST_F(TcpFaultProxyTest, ResetGivesConnectionResetToBothSides) {
  auto link = connect();
  ASSERT_TRUE(link);
  proxy_->reset_all();
  EXPECT_EQ(read_error(link->client), net::error::connection_reset);
  EXPECT_EQ(read_error(link->server), net::error::connection_reset);
  EXPECT_EQ(proxy_->open_links(), 0u);
}

TEST_F(TcpFaultProxyTest, ActionsOnOneLinkLeaveTheOthers) {
  auto first = connect();
  auto second = connect();
  auto third = connect();
  ASSERT_TRUE(first && second && third);
  proxy_->cut(0);
  proxy_->reset(1);
  EXPECT_EQ(read_error(first->client), net::error::eof);
  EXPECT_EQ(read_error(second->client), net::error::connection_reset);
  net::write(third->client, net::buffer(std::string("alive")));
  EXPECT_EQ(read_bytes(third->server, 5), "alive");
  EXPECT_EQ(proxy_->open_links(), 1u);
}

TEST_F(TcpFaultProxyTest, RefusingClosesTheListenerAndReopensTheSamePort) {
  auto link = connect();
  ASSERT_TRUE(link);
  const std::uint16_t port = proxy_->port();
  const tcp::endpoint proxy_endpoint(net::ip::make_address("127.0.0.1"), port);

  ASSERT_TRUE(proxy_->set_refusing(true).ok());
  tcp::socket refused(ioc_);
  error_code ec;
  refused.connect(proxy_endpoint, ec);
  EXPECT_EQ(ec, net::error::connection_refused);
  net::write(link->client, net::buffer(std::string("open")));
  EXPECT_EQ(read_bytes(link->server, 4), "open");  // open links carry on

  ASSERT_TRUE(proxy_->set_refusing(false).ok());
  EXPECT_EQ(proxy_->port(), port);
  auto again = connect();
  ASSERT_TRUE(again);
  EXPECT_EQ(proxy_->connections_accepted(), 2u);
}

TEST_F(TcpFaultProxyTest, TargetDownResetsTheClient) {
  target_.close();  // nothing listens at the target any more
  tcp::socket client(ioc_);
  client.connect(
      tcp::endpoint(net::ip::make_address("127.0.0.1"), proxy_->port()));
  EXPECT_EQ(read_error(client), net::error::connection_reset);
  EXPECT_TRUE(
      proxy_->wait_for([&] { return proxy_->target_failures() == 1; }, kLong));
  EXPECT_EQ(proxy_->open_links(), 0u);
}

TEST_F(TcpFaultProxyTest, DestructorReturnsPromptlyWithStalledLinks) {
  auto link = connect();
  ASSERT_TRUE(link);
  proxy_->set_mode(LinkMode::stall);
  write_until_blocked(link->client);
  const SteadyTime before = SteadyClock::now();
  proxy_.reset();
  EXPECT_LT(SteadyClock::now() - before, 2s);
  EXPECT_NE(read_error(link->client), net::error::would_block);  // closed
}

TEST(TcpFaultProxy, InvalidOptionsNameTheField) {
  auto no_port = TcpFaultProxy::start({});
  EXPECT_EQ(no_port.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(no_port.status().message().find("target_port"),
            absl::string_view::npos);
  auto name =
      TcpFaultProxy::start({.target_host = "localhost", .target_port = 1});
  EXPECT_EQ(name.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(name.status().message().find("\"localhost\""),
            absl::string_view::npos);
}

// The use the proxy was made for: an MQTT client on a silent link must
// notice by its keepalive (no PINGRESP), with mosquitto still up.
TEST(TcpFaultProxy, PahoNoticesAStalledLinkByItsKeepalive) {
  auto broker = MosquittoBroker::start();
  ASSERT_TRUE(broker.ok()) << broker.status();
  auto proxy = TcpFaultProxy::start({.target_port = (*broker)->port()});
  ASSERT_TRUE(proxy.ok()) << proxy.status();

  mqtt::async_client client((*proxy)->url(), "feedkit-proxy-keepalive");
  std::atomic<bool> lost{false};
  client.set_connection_lost_handler([&](const std::string&) { lost = true; });
  auto options = mqtt::connect_options_builder()
                     .clean_session(true)
                     .keep_alive_interval(1s)
                     .connect_timeout(kLong)
                     .finalize();
  ASSERT_TRUE(client.connect(options)->wait_for(kLong));

  (*proxy)->set_mode(LinkMode::stall);
  const SteadyTime stalled = SteadyClock::now();
  EXPECT_TRUE((*proxy)->wait_for([&] { return lost.load(); }, kLong));
  EXPECT_GE(SteadyClock::now() - stalled, 1s);
  EXPECT_TRUE((*broker)->running());
}

}  // namespace
}  // namespace feedkit::testing
