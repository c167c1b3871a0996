// Test that header file is self-contained.
#include "feedkit/status_server.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange
#include <variant>
#include <vector>

#include "feedkit/dispatcher.h"
#include "feedkit/feed_health.h"
#include "feedkit/prometheus_bridge.h"
#include "feedkit/testing/fake_clock.h"
#include "feedkit/testing/faulty_ws_server.h"
#include "feedkit/testing/line_protocol.h"
#include "feedkit/ws_client.h"
#include "support/bridge_sources.h"
#include "support/tick_client.h"

// Every test scrapes a real StatusServer over HTTP on loopback. The client
// side is Asio: raw bytes in, everything the server sends until it closes
// (or a deadline) out, parsed by Beast. Conditions on real I/O are polled
// with a generous deadline (wait_until), never slept for and then asserted.
// The end-to-end tests wire a collector the way a real one is wired:
// FaultyWsServer → WsClient → Dispatcher → consumer thread → FeedHealth,
// exported through a PrometheusBridge.

namespace feedkit {
namespace {

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::FaultyWsServer;

constexpr Duration kWait = seconds(10);  // the most any condition may take

// --- An HTTP client ----------------------------------------------------------

struct Exchange {
  std::string received;  // every byte the server sent
  bool closed = false;   // the server closed (or reset) the connection
};

// Connects to 127.0.0.1:port, sends `bytes` and collects what comes back
// until the server closes the connection or `timeout` passes.
Exchange send_raw(std::uint16_t port, const std::string& bytes,
                  Duration timeout = kWait) {
  net::io_context ioc;
  tcp::socket socket(ioc);
  Exchange out;
  std::array<char, 4096> buf;
  std::function<void()> read_more = [&] {
    socket.async_read_some(net::buffer(buf), [&](auto ec, std::size_t n) {
      out.received.append(buf.data(), n);
      if (ec) {
        out.closed = true;
        return;
      }
      read_more();
    });
  };
  socket.async_connect(
      {net::ip::make_address("127.0.0.1"), port}, [&](auto ec) {
        if (ec) {
          out.closed = true;
          return;
        }
        net::async_write(socket, net::buffer(bytes), [](auto, std::size_t) {});
        read_more();
      });
  ioc.run_for(timeout);
  return out;
}

struct HttpResult {
  unsigned status = 0;  // 0: no complete response
  std::string content_type;
  std::string allow;
  std::string body;
};

// Reads the responses in `raw`, in order.
std::vector<HttpResult> parse_responses(const std::string& raw) {
  std::vector<HttpResult> out;
  boost::beast::flat_buffer buffer;
  net::buffer_copy(buffer.prepare(raw.size()), net::buffer(raw));
  buffer.commit(raw.size());
  while (buffer.size() > 0) {
    http::response_parser<http::string_body> parser;
    parser.eager(true);
    boost::beast::error_code ec;
    const std::size_t used = parser.put(buffer.data(), ec);
    if (ec || !parser.is_done()) break;
    buffer.consume(used);
    const auto& res = parser.get();
    out.push_back({res.result_int(),
                   std::string(res[http::field::content_type]),
                   std::string(res[http::field::allow]), res.body()});
  }
  return out;
}

HttpResult request(std::uint16_t port, const std::string& target,
                   const std::string& method = "GET") {
  const Exchange e = send_raw(
      port, method + " " + target +
                " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  auto responses = parse_responses(e.received);
  return responses.empty() ? HttpResult{} : responses.front();
}

// One scrape of /metrics: series ("name{labels}" as written) → value, and
// the family names declared by # TYPE lines.
struct Scrape {
  std::map<std::string, double> series;
  std::set<std::string> families;
  std::string text;

  // Returns the value of `series`, or -1 if it is absent.
  double operator[](const std::string& key) const {
    auto it = series.find(key);
    return it == series.end() ? -1 : it->second;
  }
};

Scrape scrape(std::uint16_t port) {
  Scrape s;
  const HttpResult r = request(port, "/metrics");
  EXPECT_EQ(r.status, 200u);
  s.text = r.body;
  std::istringstream lines(r.body);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("# TYPE ", 0) == 0) {
      s.families.insert(line.substr(7, line.find(' ', 7) - 7));
    } else if (!line.empty() && line[0] != '#') {
      const std::size_t space = line.rfind(' ');
      s.series[line.substr(0, space)] = std::stod(line.substr(space + 1));
    }
  }
  return s;
}

// Polls `condition` (every 10 ms) until it holds or kWait passes.
bool wait_until(const std::function<bool()>& condition,
                Duration timeout = kWait) {
  const SteadyTime deadline = SteadyClock::now() + timeout;
  while (!condition()) {
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(10));  // real I/O: poll
  }
  return true;
}

std::unique_ptr<StatusServer> make_server(
    const ::prometheus::Collectable* metrics = nullptr,
    StatusServerOptions options = {}) {
  auto server = StatusServer::create(std::move(options), metrics);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

// --- The server on its own
// ----------------------------------------------------

TEST(StatusServer, CreateRejectsInvalidOptionsNamingTheField) {
  auto field_of = [](StatusServerOptions o) {
    const absl::Status s = StatusServer::create(std::move(o)).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    return std::string(s.message());
  };
  StatusServerOptions o;
  o.address = "localhost";  // a name, not an address
  EXPECT_NE(field_of(o).find("address"), std::string::npos);
  o.address = "0.0.0.0";  // every interface: must be asked for
  EXPECT_NE(field_of(o).find("loopback"), std::string::npos);
  o = {};
  o.request_timeout = milliseconds(0);
  EXPECT_NE(field_of(o).find("request_timeout"), std::string::npos);
  o = {};
  o.max_connections = 0;
  EXPECT_NE(field_of(o).find("max_connections"), std::string::npos);
  o = {};
  o.max_header_bytes = 10;
  EXPECT_NE(field_of(o).find("max_header_bytes"), std::string::npos);
  EXPECT_TRUE(StatusServerOptions::suggested().validate().ok());
}

TEST(StatusServer, CreateFailsOnATakenPort) {
  auto first = make_server();
  ASSERT_TRUE(first);
  EXPECT_NE(first->port(), 0);
  EXPECT_EQ(first->url(), "http://127.0.0.1:" + std::to_string(first->port()));
  StatusServerOptions o;
  o.port = first->port();
  const absl::Status s = StatusServer::create(o).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(s.message().find(std::to_string(first->port())),
            absl::string_view::npos);
}

TEST(StatusServer, ServesTheThreeEndpointsAndNothingElse) {
  PrometheusBridge bridge;
  ASSERT_TRUE(
      bridge.add_connection("c", [] { return ConnectionStats{}; }).ok());
  auto server = make_server(&bridge);
  ASSERT_TRUE(server);
  const std::uint16_t port = server->port();

  const HttpResult metrics = request(port, "/metrics?debug=1");
  EXPECT_EQ(metrics.status, 200u);
  EXPECT_EQ(metrics.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(metrics.body.find("feedkit_connection_state{connection=\"c\""),
            std::string::npos);

  const HttpResult health = request(port, "/health");
  EXPECT_EQ(health.status, 200u);
  EXPECT_EQ(health.content_type, "application/json");
  EXPECT_EQ(health.body, "{\"status\":\"ok\",\"checks\":[]}\n");
  const HttpResult ready = request(port, "/ready");
  EXPECT_EQ(ready.status, 200u);
  EXPECT_EQ(ready.body, "{\"status\":\"ready\",\"checks\":[]}\n");

  EXPECT_EQ(request(port, "/").status, 404u);
  EXPECT_EQ(request(port, "/metricsx").status, 404u);
  EXPECT_EQ(request(port, "/../etc/passwd").status, 404u);
  for (const char* method : {"POST", "PUT", "DELETE", "HEAD", "BREW"}) {
    const HttpResult r = request(port, "/metrics", method);
    EXPECT_EQ(r.status, 405u) << method;
    EXPECT_EQ(r.allow, "GET") << method;
  }
  // Every answer is counted by endpoint and code.
  const Scrape s = scrape(port);
  EXPECT_EQ(s["feedkit_status_requests_total{code=\"404\",endpoint=\"other\"}"],
            3);
  EXPECT_EQ(
      s["feedkit_status_requests_total{code=\"405\",endpoint=\"metrics\"}"], 5);
  EXPECT_EQ(
      s["feedkit_status_requests_total{code=\"200\",endpoint=\"health\"}"], 1);
}

TEST(StatusServer, HealthAndReadyFollowTheirChecks) {
  testing::FakeClock clock;
  Heartbeat loop(clock);
  bool connected = false;
  auto server = make_server();
  ASSERT_TRUE(server);
  ASSERT_TRUE(
      server->add_liveness_check("consumer", loop.check(seconds(5))).ok());
  ASSERT_TRUE(server
                  ->add_readiness_check("broker",
                                        [&]() -> absl::Status {
                                          if (connected)
                                            return absl::OkStatus();
                                          return absl::UnavailableError(
                                              "not \"connected\"");
                                        })
                  .ok());
  const std::uint16_t port = server->port();

  // Alive, not ready: /health 200, /ready 503 naming the check and why.
  EXPECT_EQ(request(port, "/health").status, 200u);
  HttpResult ready = request(port, "/ready");
  EXPECT_EQ(ready.status, 503u);
  EXPECT_EQ(ready.body,
            "{\"status\":\"not_ready\",\"checks\":["
            "{\"name\":\"consumer\",\"type\":\"liveness\",\"ok\":true},"
            "{\"name\":\"broker\",\"type\":\"readiness\",\"ok\":false,"
            "\"reason\":\"not \\\"connected\\\"\"}]}\n");
  connected = true;  // the server thread reads it only during a request
  EXPECT_EQ(request(port, "/ready").status, 200u);

  // The loop stops beating: both fail; it beats again: both pass.
  clock.advance(seconds(6));
  const HttpResult health = request(port, "/health");
  EXPECT_EQ(health.status, 503u);
  EXPECT_NE(health.body.find("\"status\":\"failing\""), std::string::npos);
  EXPECT_NE(health.body.find("no beat for 6.0 s (limit 5.0 s)"),
            std::string::npos);
  EXPECT_EQ(request(port, "/ready").status, 503u);
  const Scrape s = scrape(port);
  EXPECT_EQ(s["feedkit_status_check{check=\"consumer\",type=\"liveness\"}"], 0);
  EXPECT_EQ(s["feedkit_status_check{check=\"broker\",type=\"readiness\"}"], 1);
  loop.beat();
  EXPECT_EQ(request(port, "/health").status, 200u);
  EXPECT_EQ(request(port, "/ready").status, 200u);

  // A check that throws fails; the server goes on.
  ASSERT_TRUE(server
                  ->add_liveness_check("thrower",
                                       []() -> absl::Status {
                                         throw std::runtime_error("boom");
                                       })
                  .ok());
  const HttpResult thrown = request(port, "/health");
  EXPECT_EQ(thrown.status, 503u);
  EXPECT_NE(thrown.body.find("threw"), std::string::npos);
}

TEST(StatusServer, RejectsEmptyAndDuplicateChecks) {
  auto server = make_server();
  ASSERT_TRUE(server);
  auto ok = [] { return absl::OkStatus(); };
  EXPECT_EQ(server->add_liveness_check("", ok).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(server->add_readiness_check("x", nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(server->add_liveness_check("x", ok).ok());
  EXPECT_EQ(server->add_liveness_check("x", ok).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(server->add_readiness_check("x", ok).ok());  // other type
}

TEST(StatusServer, AnswersBadRequestsOrClosesAndKeepsServing) {
  StatusServerOptions o;
  o.request_timeout = milliseconds(300);
  o.max_header_bytes = 4096;
  auto server = make_server(nullptr, o);
  ASSERT_TRUE(server);
  const std::uint16_t port = server->port();
  auto status_of = [](const Exchange& e) {
    auto r = parse_responses(e.received);
    return r.empty() ? 0u : r.front().status;
  };

  // Not HTTP at all (a TLS ClientHello, binary zeros, a bad request line).
  for (const std::string& junk :
       {std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11),
        std::string(64, '\0'), std::string("GET\r\n\r\n"),
        std::string("GET /metrics HTTP/9.9\r\n\r\n"),
        std::string("GET /metrics HTTP/1.1\r\nBad Header\r\n\r\n")}) {
    const Exchange e = send_raw(port, junk);
    EXPECT_TRUE(e.closed);
    EXPECT_EQ(status_of(e), 400u);  // answered before the close
  }
  // A header over max_header_bytes: 431, then closed.
  const Exchange huge = send_raw(
      port, "GET /metrics HTTP/1.1\r\nX-Big: " + std::string(64 * 1024, 'a') +
                "\r\n\r\n");
  EXPECT_TRUE(huge.closed);
  EXPECT_EQ(status_of(huge), 431u);
  // A body over the limit on a GET: 413, then closed.
  const Exchange body = send_raw(
      port, "GET /metrics HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n" +
                std::string(100 * 1024, 'b'));
  EXPECT_TRUE(body.closed);
  EXPECT_EQ(status_of(body), 413u);
  // Silent and half-sent requests are closed after request_timeout.
  for (const char* partial : {"", "GET /metr", "GET /metrics HTTP/1.1\r\n"}) {
    const SteadyTime start = SteadyClock::now();
    const Exchange e = send_raw(port, partial, seconds(5));
    EXPECT_TRUE(e.closed) << partial;
    EXPECT_TRUE(e.received.empty()) << partial;
    EXPECT_LT(SteadyClock::now() - start, seconds(4)) << partial;
  }
  // Still serving, and the bad ones were counted.
  const Scrape s = scrape(port);
  EXPECT_EQ(
      s["feedkit_status_requests_total{code=\"400\",endpoint=\"invalid\"}"], 5);
  EXPECT_EQ(
      s["feedkit_status_requests_total{code=\"431\",endpoint=\"invalid\"}"], 1);
  EXPECT_EQ(
      s["feedkit_status_requests_total{code=\"413\",endpoint=\"invalid\"}"], 1);
  EXPECT_EQ(request(port, "/health").status, 200u);
}

TEST(StatusServer, KeepsAConnectionAliveForPipelinedRequests) {
  auto server = make_server();
  ASSERT_TRUE(server);
  const Exchange e =
      send_raw(server->port(),
               "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
               "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
               "GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(e.closed);
  const auto responses = parse_responses(e.received);
  ASSERT_EQ(responses.size(), 3u);
  EXPECT_EQ(responses[0].status, 200u);
  EXPECT_EQ(responses[1].status, 404u);
  EXPECT_EQ(responses[2].status, 200u);
}

TEST(StatusServer, ClosesConnectionsOverTheLimit) {
  StatusServerOptions o;
  o.max_connections = 2;
  auto server = make_server(nullptr, o);
  ASSERT_TRUE(server);
  net::io_context ioc;
  const tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"),
                               server->port());
  std::vector<tcp::socket> idle;
  for (int i = 0; i < 2; ++i) {
    idle.emplace_back(ioc).connect(endpoint);
  }
  // Both idle connections are accepted and held: a third one is closed
  // unanswered.
  ASSERT_TRUE(wait_until([&] {
    const Exchange e =
        send_raw(server->port(), "GET /health HTTP/1.1\r\n\r\n", seconds(5));
    return e.closed && e.received.empty();
  }));
  idle.clear();  // closing them frees the slots
  EXPECT_TRUE(wait_until(
      [&] { return request(server->port(), "/health").status == 200; }));
}

TEST(StatusServer, StopsPromptlyWithConnectionsOpen) {
  auto server = make_server();
  ASSERT_TRUE(server);
  net::io_context ioc;
  const tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"),
                               server->port());
  tcp::socket idle(ioc);
  idle.connect(endpoint);
  tcp::socket half(ioc);
  half.connect(endpoint);
  net::write(half, net::buffer(std::string("GET /metrics HTTP/1.1\r\n")));
  ASSERT_EQ(request(server->port(), "/health").status, 200u);

  const SteadyTime start = SteadyClock::now();
  server->stop();
  EXPECT_LT(SteadyClock::now() - start, seconds(1));
  server->stop();  // idempotent
  // The open connections were closed by the server.
  boost::system::error_code ec;
  std::array<char, 16> buf;
  idle.read_some(net::buffer(buf), ec);
  EXPECT_TRUE(ec);
  half.read_some(net::buffer(buf), ec);
  EXPECT_TRUE(ec);
}

TEST(StatusServer, ServesOnIpv6Loopback) {
  StatusServerOptions o;
  o.address = "::1";
  auto created = StatusServer::create(o);
  if (created.status().code() == absl::StatusCode::kUnavailable) {
    GTEST_SKIP() << "no IPv6 loopback here: " << created.status();
  }
  ASSERT_TRUE(created.ok()) << created.status();
  const std::string url = (*created)->url();
  EXPECT_EQ(url, "http://[::1]:" + std::to_string((*created)->port()));
  net::io_context ioc;
  tcp::socket socket(ioc);
  socket.connect({net::ip::make_address("::1"), (*created)->port()});
  net::write(socket,
             net::buffer(std::string("GET /health HTTP/1.1\r\nConnection: "
                                     "close\r\n\r\n")));
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(socket, buffer, res);
  EXPECT_EQ(res.result_int(), 200u);
}

// --- Readiness checks on their own ------------------------------------------

TEST(ConnectionReady, NamesTheStateOrTheUnconfirmedKeys) {
  ConnectionStats s;
  s.state = ConnectionState::backoff;
  s.epoch = 2;
  const HealthCheck check = connection_ready([&] { return s; });
  absl::Status r = check();
  EXPECT_EQ(r.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(r.message().find("state backoff"), absl::string_view::npos);
  s.state = ConnectionState::live;
  s.subscriptions.desired = 40;
  s.subscriptions.confirmed = 37;
  s.subscriptions.pending = 2;
  s.subscriptions.rejected = 1;
  r = check();
  EXPECT_EQ(r.message(),
            "3 of 40 subscriptions not confirmed: 2 pending, 1 rejected");
  s.subscriptions.confirmed = 40;
  EXPECT_TRUE(check().ok());
}

TEST(FeedReady, FailsOnAStaleFeedOrTooManyStaleSymbols) {
  FeedHealthStats s;
  const HealthCheck strict = feed_ready([&] { return s; });
  const HealthCheck lenient = feed_ready([&] { return s; }, 2);
  EXPECT_EQ(strict().message(), "feed health not evaluated yet");
  const SteadyTime t0 = testing::FakeClock::kEpoch;
  s.evaluated_at = t0 + seconds(12);
  s.symbols = 10;
  s.feed = HealthState::never_seen;  // subscribed, nothing delivered yet
  EXPECT_EQ(strict().message(), "no event received yet");
  EXPECT_EQ(lenient().message(), "no event received yet");
  s.last_record = t0;
  s.symbols = 10;
  s.feed = HealthState::stale;
  EXPECT_EQ(strict().message(), "feed stale: no event for 12.0 s");
  s.feed = HealthState::fresh;
  s.stale = 2;
  EXPECT_EQ(strict().message(), "2 of 10 symbols stale (at most 0 allowed)");
  EXPECT_TRUE(lenient().ok());
  s.stale = 0;
  s.feed = HealthState::suspended;  // outside a session: nothing expected
  EXPECT_TRUE(strict().ok());
}

// --- End to end: a collector on a FaultyWsServer --------------------------

using testing::Tick;
using Event = testing::TickEvent;

struct CollectorOptions {
  std::size_t capacity = 4096;
  Duration idle_timeout = seconds(3);  // silence → reconnect
  Duration heartbeat_limit = seconds(3);
  std::string secret = "s3cret-never-in-metrics";
};

// client → Dispatcher → consumer thread → FeedHealth, exported by a bridge
// and served by a StatusServer, as a collector program would wire them.
class Collector {
 public:
  explicit Collector(CollectorOptions o = {}) : options_(std::move(o)) {
    server_ = FaultyWsServer::start().value();
    server_->set_accepted_secret(options_.secret);
    dispatcher_ =
        Dispatcher<Event>::create({.capacity = options_.capacity,
                                   .overflow = OverflowPolicy::drop_oldest})
            .value();
    producer_.emplace(dispatcher_->make_producer().value());
    FeedHealthOptions h;
    h.expected_interval = milliseconds(20);  // 4 frames at 200/s
    h.suspect_factor = 2;
    h.stale_factor = 5;  // a symbol is stale after 100 ms of silence
    h.feed_timeout = milliseconds(500);
    h.open_grace = milliseconds(0);
    health_.emplace(FeedHealth::create(h).value());
    a_ = health_->expect("A");
    b_ = health_->expect("B");

    WsClientOptions w = testing::tick_client_options(server_->url());
    w.idle_timeout =
        std::chrono::duration_cast<milliseconds>(options_.idle_timeout);
    w.breaker.wait_in_open = milliseconds(200);
    client_ = testing::make_tick_client(ioc_, w, options_.secret, *producer_);

    EXPECT_TRUE(
        bridge_.add_connection("c0", [c = client_] { return c->stats(); })
            .ok());
    EXPECT_TRUE(
        bridge_.add_dispatcher("d0", [this] { return dispatcher_->stats(); })
            .ok());
    EXPECT_TRUE(bridge_.add_feed_health("f0", health_stats_.reader()).ok());
    status_ = make_server(&bridge_);
    EXPECT_TRUE(status_
                    ->add_liveness_check(
                        "consumer", heartbeat_.check(options_.heartbeat_limit))
                    .ok());
    EXPECT_TRUE(status_
                    ->add_readiness_check("c0", connection_ready([c = client_] {
                                            return c->stats();
                                          }))
                    .ok());
    EXPECT_TRUE(
        status_->add_readiness_check("f0", feed_ready(health_stats_.reader()))
            .ok());
  }

  ~Collector() {
    status_->stop();  // its thread reads everything below
    {
      std::lock_guard lock(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    if (consumer_.joinable()) consumer_.join();
    testing::stop_tick_client(client_.get(), ioc_, runner_, kWait);
  }

  FaultyWsServer& server() { return *server_; }
  WsClient& client() { return *client_; }
  Dispatcher<Event>& dispatcher() { return *dispatcher_; }
  std::uint16_t port() const { return status_->port(); }

  // Starts the client, the consumer and 200 frames/s for keys A and B.
  void start() {
    client_->want("A");
    client_->want("B");
    client_->start();
    runner_ = std::thread([this] { ioc_.run(); });
    consumer_ = std::thread([this] { consume(); });
    server_->stream("A", 200);
    server_->stream("B", 200);
  }

  // The consumer stops polling (and beating) until resume().
  void pause() {
    std::lock_guard lock(mu_);
    paused_ = true;
  }
  void resume() {
    {
      std::lock_guard lock(mu_);
      paused_ = false;
    }
    cv_.notify_all();
  }

 private:
  void consume() {
    std::vector<Polled<Event>> batch;
    std::vector<HealthTransition> transitions;
    while (true) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return quit_ || !paused_; });
        if (quit_) return;
      }
      batch.clear();
      dispatcher_->poll(batch, 256, milliseconds(5));
      for (const auto& e : batch) {
        if (const auto* tick = std::get_if<Tick>(&e.value)) {
          health_->record(tick->is_a ? a_ : b_, tick->recv_time);
        }
      }
      health_->evaluate(SteadyClock::now(), transitions);
      health_stats_.publish(health_->stats());
      heartbeat_.beat();
    }
  }

  CollectorOptions options_;
  std::unique_ptr<FaultyWsServer> server_;
  std::unique_ptr<Dispatcher<Event>> dispatcher_;
  std::optional<Dispatcher<Event>::Producer> producer_;
  std::optional<FeedHealth> health_;  // consumer thread only
  SymbolId a_{}, b_{};
  SnapshotCell<FeedHealthStats> health_stats_;
  Heartbeat heartbeat_;
  boost::asio::io_context ioc_;
  std::shared_ptr<WsClient> client_;
  PrometheusBridge bridge_;
  std::unique_ptr<StatusServer> status_;
  std::thread runner_;
  std::thread consumer_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool paused_ = false;
  bool quit_ = false;
};

const std::string kLive =
    "feedkit_connection_state{connection=\"c0\",state=\"live\"}";
const std::string kEpoch = "feedkit_connection_epoch{connection=\"c0\"}";
const std::string kReconnects =
    "feedkit_connection_reconnects_total{connection=\"c0\"}";
std::string disconnects(const char* reason) {
  return std::string(
             "feedkit_connection_disconnects_total{connection=\"c0\","
             "reason=\"") +
         reason + "\"}";
}
std::string feed_symbols(const char* state) {
  return std::string("feedkit_feed_symbols{feed=\"f0\",state=\"") + state +
         "\"}";
}

// Waits until one scrape satisfies `pred`; returns that scrape (or the last).
Scrape scrape_until(std::uint16_t port,
                    const std::function<bool(const Scrape&)>& pred,
                    bool* held) {
  Scrape last;
  *held = wait_until([&] {
    last = scrape(port);
    return pred(last);
  });
  return last;
}

TEST(StatusServerWithCollector, EpochAndReconnectsMoveAsTheServerDrops) {
  Collector c;
  c.start();
  bool held = false;
  Scrape s = scrape_until(
      c.port(),
      [](const Scrape& s) {
        return s[kLive] == 1 && s[kEpoch] == 1 &&
               s["feedkit_feed_records_total{feed=\"f0\"}"] > 20;
      },
      &held);
  ASSERT_TRUE(held) << s.text;
  EXPECT_EQ(s[kReconnects], 0);
  EXPECT_EQ(s["feedkit_subscriptions{connection=\"c0\",state=\"confirmed\"}"],
            2);
  const double frames =
      s["feedkit_connection_data_frames_total{connection=\"c0\"}"];
  EXPECT_GT(frames, 0);

  c.server().close_all();  // WebSocket close from the broker
  s = scrape_until(
      c.port(),
      [](const Scrape& s) {
        return s[kEpoch] == 2 && s[kReconnects] == 1 && s[kLive] == 1;
      },
      &held);
  ASSERT_TRUE(held) << s.text;
  EXPECT_EQ(s[disconnects("server_close")], 1);
  EXPECT_EQ(s[disconnects("network")], 0);

  c.server().reset_all();  // TCP reset
  s = scrape_until(
      c.port(),
      [](const Scrape& s) {
        return s[kEpoch] == 3 && s[kReconnects] == 2 && s[kLive] == 1;
      },
      &held);
  ASSERT_TRUE(held) << s.text;
  EXPECT_EQ(s[disconnects("network")], 1);
  // One gap marker per boundary went through the dispatcher, never dropped.
  EXPECT_EQ(s["feedkit_dispatcher_controls_pushed_total{dispatcher=\"d0\"}"],
            2);
  EXPECT_GT(s["feedkit_connection_data_frames_total{connection=\"c0\"}"],
            frames);
}

TEST(StatusServerWithCollector, ReadyIsFalseDuringAStallAndTrueAfterRecovery) {
  Collector c;
  c.start();
  ASSERT_TRUE(
      wait_until([&] { return request(c.port(), "/ready").status == 200; }));

  c.server().stall_all();  // socket open, nothing sent
  HttpResult not_ready;
  ASSERT_TRUE(wait_until([&] {
    not_ready = request(c.port(), "/ready");
    return not_ready.status == 503;
  }));
  EXPECT_NE(not_ready.body.find("\"status\":\"not_ready\""), std::string::npos);
  // The symbols go stale first (100 ms of silence), while the connection is
  // still live (idle timeout 3 s).
  const std::string f0_fails =
      "{\"name\":\"f0\",\"type\":\"readiness\",\"ok\":false,\"reason\":";
  // (A and B go stale a few milliseconds apart: 1 or 2 of them.)
  EXPECT_NE(not_ready.body.find(f0_fails + "\""), std::string::npos)
      << not_ready.body;
  EXPECT_NE(not_ready.body.find(" of 2 symbols stale (at most 0 allowed)\"}"),
            std::string::npos)
      << not_ready.body;
  // Then the feed as a whole (500 ms).
  ASSERT_TRUE(wait_until([&] {
    not_ready = request(c.port(), "/ready");
    return not_ready.body.find(f0_fails + "\"feed stale: no event for") !=
           std::string::npos;
  })) << not_ready.body;
  // The process is alive all along.
  EXPECT_EQ(request(c.port(), "/health").status, 200u);
  bool held = false;
  Scrape s = scrape_until(
      c.port(), [](const Scrape& s) { return s[feed_symbols("stale")] == 2; },
      &held);
  EXPECT_TRUE(held) << s.text;

  // The idle timeout reconnects; data flows again; ready again.
  ASSERT_TRUE(
      wait_until([&] { return request(c.port(), "/ready").status == 200; }));
  s = scrape(c.port());
  EXPECT_EQ(s[disconnects("stall")], 1);
  EXPECT_EQ(s["feedkit_connection_stalls_total{connection=\"c0\"}"], 1);
  EXPECT_EQ(s[kEpoch], 2);
  EXPECT_EQ(s[feed_symbols("stale")], 0);
}

TEST(StatusServerWithCollector,
     DropsAreCountedAndHealthFailsWhileConsumerIsStuck) {
  CollectorOptions o;
  o.capacity = 64;
  o.heartbeat_limit = milliseconds(500);
  Collector c(o);
  c.start();
  ASSERT_TRUE(
      wait_until([&] { return request(c.port(), "/ready").status == 200; }));

  c.pause();  // the consumer loop hangs
  c.server().flood("A", 5000);
  bool held = false;
  const std::string evicted =
      "feedkit_dispatcher_dropped_total{dispatcher=\"d0\",reason=\"evicted\"}";
  Scrape s = scrape_until(
      c.port(),
      [&](const Scrape& s) {
        return s[evicted] > 0 &&
               s["feedkit_dispatcher_depth{dispatcher=\"d0\"}"] == 64;
      },
      &held);
  ASSERT_TRUE(held) << s.text;
  EXPECT_EQ(s["feedkit_dispatcher_fill_ratio{dispatcher=\"d0\"}"], 1);
  EXPECT_GT(s["feedkit_dispatcher_full_seconds_total{dispatcher=\"d0\"}"], 0);
  HttpResult health;
  ASSERT_TRUE(wait_until([&] {
    health = request(c.port(), "/health");
    return health.status == 503;
  }));
  EXPECT_NE(health.body.find("\"name\":\"consumer\""), std::string::npos);
  EXPECT_NE(health.body.find("no beat for"), std::string::npos);
  s = scrape(c.port());
  EXPECT_EQ(s["feedkit_status_check{check=\"consumer\",type=\"liveness\"}"], 0);
  // The whole flood reaches the client before the consumer wakes (on a
  // loaded machine it may still be on its way).
  ASSERT_TRUE(
      wait_until([&] { return c.client().stats().data_frames >= 5000; }));

  c.resume();
  ASSERT_TRUE(
      wait_until([&] { return request(c.port(), "/health").status == 200; }));
  // Once the flood is over and drained, the scrape agrees with the
  // dispatcher's own counters exactly.
  c.server().stop_streams();
  s = scrape_until(
      c.port(),
      [](const Scrape& s) {
        return s["feedkit_dispatcher_depth{dispatcher=\"d0\"}"] == 0;
      },
      &held);
  ASSERT_TRUE(held);
  const DispatcherStats d = c.dispatcher().stats();
  s = scrape(c.port());
  EXPECT_EQ(s[evicted], static_cast<double>(d.dropped_evicted));
  EXPECT_EQ(s["feedkit_dispatcher_offered_total{dispatcher=\"d0\"}"],
            static_cast<double>(d.offered));
  EXPECT_GE(d.dropped(), 5000u - 64u - 200u);  // most of the flood
}

TEST(StatusServerWithCollector, TheLoginSecretNeverAppears) {
  CollectorOptions o;
  o.secret = "s3cret-PROM-LEAK-4242";
  Collector c(o);
  c.start();
  ASSERT_TRUE(
      wait_until([&] { return request(c.port(), "/ready").status == 200; }));
  auto outputs = [&] {
    return request(c.port(), "/metrics").body +
           request(c.port(), "/ready").body + request(c.port(), "/health").body;
  };
  std::string seen = outputs();
  // Now every login is refused: the failures show, the secret does not.
  c.server().set_accepted_secret("another-one");
  c.server().close_all();
  bool held = false;
  const Scrape s = scrape_until(
      c.port(),
      [](const Scrape& s) {
        return s["feedkit_connection_login_failures_total{connection="
                 "\"c0\"}"] >= 2;
      },
      &held);
  ASSERT_TRUE(held) << s.text;
  const HttpResult ready = request(c.port(), "/ready");
  EXPECT_EQ(ready.status, 503u);
  seen += outputs() + ready.body;
  EXPECT_EQ(seen.find(o.secret), std::string::npos);
  EXPECT_EQ(seen.find("PROM-LEAK"), std::string::npos);
}

// --- The deploy files refer only to metrics that exist --------------------

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << "cannot read " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(StatusServer, AlertsAndDashboardUseOnlyExportedMetrics) {
  PrometheusBridge bridge;
  ConnectionStats c;
  c.subscriptions.learned_cap = 20;  // optional families present
  c.breaker.failure_rate = 10;
  c.breaker.slow_call_rate = 0;
  testing::add_every_source(bridge, c);
  auto server = make_server(&bridge);
  ASSERT_TRUE(server);
  ASSERT_TRUE(
      server->add_liveness_check("l", [] { return absl::OkStatus(); }).ok());
  ASSERT_EQ(request(server->port(), "/health").status, 200u);  // counted
  const Scrape s = scrape(server->port());
  ASSERT_TRUE(s.families.count("feedkit_status_requests_total"));

  const std::filesystem::path root =
      std::filesystem::path(__FILE__).parent_path().parent_path() / "deploy";
  const std::regex metric("feedkit_[a-z0-9_]*[a-z0-9]");
  for (const char* file :
       {"prometheus/alerts.yml", "prometheus/alerts_test.yml",
        "grafana/feedkit-dashboard.json"}) {
    const std::string text = read_text(root / file);
    std::set<std::string> used;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), metric);
         it != std::sregex_iterator(); ++it) {
      used.insert(it->str());
    }
    EXPECT_GT(used.size(), 5u) << file;
    for (const std::string& name : used) {
      EXPECT_TRUE(s.families.count(name))
          << file << " uses " << name << ", which nothing exports";
    }
  }
}

}  // namespace
}  // namespace feedkit
