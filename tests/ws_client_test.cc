// Test that header file is self-contained.
#include "feedkit/ws_client.h"

#include <gtest/gtest.h>
#include <unistd.h>  // getpid, for unique certificate directories

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "feedkit/dispatcher.h"
#include "feedkit/epoch.h"
#include "feedkit/testing/faulty_ws_server.h"
#include "feedkit/testing/line_protocol.h"
#include "feedkit/testing/test_certificate.h"
#include "support/client_harness.h"

// Every test runs a real FaultyWsServer on loopback and a WsClient on an
// io_context of its own thread. Conditions are waited for, never slept for:
// server-side ones with FaultyWsServer::wait_for(), client-side ones with the
// Recorder below (fed by the client's callbacks) or by polling stats() in
// Recorder::wait_for_stats (re-checked on every callback and every 5 ms).
// Measured times are printed as "[ measure ] ..." lines.

namespace feedkit {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::FaultyWsServer;
using testing::HandshakeMode;
using testing::LineProtocol;
using testing::measure;
using testing::ms_of;

constexpr Duration kWait = seconds(8);  // the most any condition may take

// Collects what the client's callbacks report (on the client's strand) for
// the test thread.
class Recorder : public testing::ClientRecorder {
 public:
  Recorder() : ClientRecorder(kWait) {}

  WsClientCallbacks callbacks(
      std::function<void(std::string_view, SteadyTime, std::uint64_t)>
          also_on_data = {}) {
    WsClientCallbacks cb;
    cb.on_data = [this, also_on_data](std::string_view frame, SteadyTime t,
                                      std::uint64_t epoch) {
      {
        std::lock_guard lock(mu_);
        ++data_;
        check_epoch_locked(epoch);
      }
      if (also_on_data) also_on_data(frame, t, epoch);
      cv_.notify_all();
    };
    record_lifecycle(cb);
    return cb;
  }

  std::uint64_t data_locked() const { return data_; }  // in wait() predicates
  std::uint64_t data() const {
    std::lock_guard lock(mu_);
    return data_;
  }

 private:
  std::uint64_t data_ = 0;
};

// Small timeouts so that every fault resolves in milliseconds.
WsClientOptions test_options(const std::string& url) {
  WsClientOptions o;
  o.url = url;
  o.connect_timeout = seconds(1);
  o.handshake_timeout = seconds(1);
  o.login_timeout = seconds(1);
  o.idle_timeout = seconds(3);  // the stall test sets its own
  o.stable_after = milliseconds(100);
  o.backoff = {
      .initial = milliseconds(20), .multiplier = 1.6, .max = milliseconds(200)};
  o.breaker = CircuitBreakerOptions::suggested();  // trips only after 100 calls
  o.breaker.wait_in_open = milliseconds(200);
  o.subscriptions = {.max_per_connection = 41,
                     .confirm_timeout = milliseconds(500),
                     .max_attempts = 3,
                     .pacing = {.rate_per_second = 1000, .burst = 100}};
  return o;
}

CredentialsProvider fixed_secret(std::string secret) {
  return [secret](bool, std::function<void(absl::StatusOr<Credentials>)> done) {
    done(Credentials{secret, SteadyTime::max()});
  };
}

// A server, an io_context on its own thread and a client.
class Harness : public testing::ClientRunner<WsClient, Recorder> {
 public:
  explicit Harness(testing::FaultyWsServerOptions server_options = {}) {
    auto server = FaultyWsServer::start(std::move(server_options));
    EXPECT_TRUE(server.ok()) << server.status();
    if (server.ok()) server_ = *std::move(server);
  }
  ~Harness() { finish(); }  // the client stops while the server runs

  FaultyWsServer& server() { return *server_; }

  void make_client(WsClientOptions options,
                   std::unique_ptr<Protocol> protocol = nullptr,
                   CredentialsProvider credentials = fixed_secret("s3cret"),
                   WsClientCallbacks callbacks = {}) {
    if (!protocol) protocol = std::make_unique<LineProtocol>();
    if (!callbacks.on_data) callbacks = rec_.callbacks();
    auto created =
        WsClient::create(ioc_, std::move(options), std::move(protocol),
                         std::move(credentials), std::move(callbacks));
    ASSERT_TRUE(created.ok()) << created.status();
    client_ = *std::move(created);
  }

 private:
  std::unique_ptr<FaultyWsServer> server_;
};

// ---------------------------------------------------------------------------

TEST(WsClient, CreateRejectsInvalidOptions) {
  boost::asio::io_context ioc;
  auto make = [&](WsClientOptions o) {
    return WsClient::create(ioc, std::move(o), std::make_unique<LineProtocol>(),
                            fixed_secret("x"), Recorder().callbacks());
  };
  WsClientOptions o = test_options("ws://127.0.0.1:1/");
  EXPECT_TRUE(make(o).ok());
  for (const char* url :
       {"http://127.0.0.1/", "ws://", "ws://:80/", "ws://h:0/", "ws://h:99999/",
        "ws://user:pw@h/", "127.0.0.1:80"}) {
    WsClientOptions bad = o;
    bad.url = url;
    auto r = make(bad);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << url;
  }
  WsClientOptions bad = o;
  bad.ping_interval = milliseconds(0);
  bad.pong_timeout = milliseconds(100);
  EXPECT_EQ(make(bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad = o;
  bad.login_timeout = milliseconds(-1);
  EXPECT_EQ(make(bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad = o;
  bad.subscriptions.max_attempts = 0;
  auto r = make(bad);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("subscriptions"), std::string_view::npos);
  // A header value (a bearer token) is never quoted in an error.
  bad = o;
  bad.headers = {{"Authorization", "Bearer TOPSECRET\r\nX: y"}};
  r = make(bad);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message().find("TOPSECRET"), std::string_view::npos);
  // The query (which may hold a token) is never quoted either.
  bad = o;
  bad.url = "wss://h:0/feed?token=TOPSECRET";
  r = make(bad);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message().find("TOPSECRET"), std::string_view::npos);
  // Missing pieces.
  EXPECT_FALSE(WsClient::create(ioc, o, nullptr, fixed_secret("x"),
                                Recorder().callbacks())
                   .ok());
  EXPECT_FALSE(WsClient::create(ioc, o, std::make_unique<LineProtocol>(), {},
                                Recorder().callbacks())
                   .ok());
  EXPECT_FALSE(WsClient::create(ioc, o, std::make_unique<LineProtocol>(),
                                fixed_secret("x"), {})
                   .ok());
}

TEST(WsClient, LogsInSubscribesAndDeliversDataWithEpochOne) {
  Harness h;
  h.make_client(test_options(h.server().url()));
  h.start({"A", "B", "C"});
  ASSERT_TRUE(h.wait_live());
  h.server().stream("A", 1000, 20);
  ASSERT_TRUE(h.rec().wait([&] { return h.rec().data_locked() >= 20; }));
  const WsClientStats s = h.client().stats();
  EXPECT_EQ(s.epoch, 1u);
  EXPECT_EQ(s.connects, 1u);
  EXPECT_EQ(s.reconnects, 0u);
  EXPECT_EQ(s.subscriptions.confirmed, 3u);
  EXPECT_EQ(s.data_frames, 20u);
  EXPECT_TRUE(h.rec().gaps().empty());
  EXPECT_EQ(h.rec().out_of_epoch(), 0u);
  const auto sent = h.server().received(0);
  ASSERT_FALSE(sent.empty());
  EXPECT_EQ(sent.front(), "LOGIN s3cret");
  // Login, then on a fresh connection to a keeping broker: unsubscribe,
  // subscribe.
  EXPECT_EQ(h.server().count_received("UNSUB "), 3u);
  EXPECT_EQ(h.server().count_received("SUB "), 3u);
  h.stop_and_join();
}

// Closes (close frame) or resets (RST) the server's sessions while it
// streams, and checks one recovery: epoch 2, one GapEvent with `reason`.
void recover_from(void (FaultyWsServer::*fault)(), GapReason reason,
                  const char* label) {
  Harness h;
  h.make_client(test_options(h.server().url()));
  h.start({"A", "B"});
  ASSERT_TRUE(h.wait_live());
  h.server().stream("A", 500);
  ASSERT_TRUE(h.rec().wait([&] { return h.rec().data_locked() >= 10; }));
  const SteadyTime fault_at = SteadyClock::now();
  (h.server().*fault)();
  ASSERT_TRUE(h.rec().wait([&] { return !h.rec().gaps_locked().empty(); }));
  const std::uint64_t data_at_gap = h.rec().data();
  ASSERT_TRUE(
      h.rec().wait([&] { return h.rec().data_locked() >= data_at_gap + 10; }));
  ASSERT_TRUE(h.wait_live());
  const auto gaps = h.rec().gaps();
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_EQ(gaps[0].reason, reason);
  EXPECT_EQ(gaps[0].old_epoch, 1u);
  EXPECT_EQ(gaps[0].new_epoch, 2u);
  EXPECT_GE(gaps[0].disconnected_at, fault_at);
  EXPECT_GT(gaps[0].resumed_at, gaps[0].disconnected_at);
  // Both keys were confirmed when the link went: both are reported lost.
  EXPECT_EQ(gaps[0].subscriptions_lost, (std::vector<std::string>{"A", "B"}));
  const WsClientStats s = h.client().stats();
  EXPECT_EQ(s.epoch, 2u);
  EXPECT_EQ(s.reconnects, 1u);
  EXPECT_EQ(s.subscriptions.confirmed, 2u);
  EXPECT_EQ(h.rec().out_of_epoch(), 0u);
  EXPECT_EQ(s.disconnects_server_close,
            reason == GapReason::server_close ? 1u : 0u);
  EXPECT_EQ(s.disconnects_network, reason == GapReason::network ? 1u : 0u);
  measure(label, gaps[0].resumed_at - fault_at);
  h.stop_and_join();
}

TEST(WsClient, RecoversFromServerCloseWithOneServerCloseGap) {
  recover_from(&FaultyWsServer::close_all, GapReason::server_close,
               "server close -> logged in again (GapEvent.resumed_at)");
}

TEST(WsClient, RecoversFromTcpResetWithOneNetworkGap) {
  recover_from(&FaultyWsServer::reset_all, GapReason::network,
               "TCP reset -> logged in again (GapEvent.resumed_at)");
}

TEST(WsClient, DetectsSilentStallWithinIdleTimeoutPlusTenPercent) {
  Harness h;
  WsClientOptions o = test_options(h.server().url());
  o.idle_timeout = milliseconds(300);
  h.make_client(o);
  h.start({"A"});
  ASSERT_TRUE(h.wait_live());
  h.server().stream("A", 500);
  ASSERT_TRUE(h.rec().wait([&] { return h.rec().data_locked() >= 20; }));
  const SteadyTime stalled_at = SteadyClock::now();
  h.server().stall_all();
  ASSERT_TRUE(h.rec().wait([&] { return !h.rec().gaps_locked().empty(); }));
  const GapEvent gap = h.rec().gaps()[0];
  EXPECT_EQ(gap.reason, GapReason::stall);
  // Detection: the client left `live` for `backoff`.
  std::optional<SteadyTime> detected;
  for (const auto& c : h.rec().states()) {
    if (c.from == ConnectionState::live && c.to == ConnectionState::backoff) {
      detected = c.at;
      break;
    }
  }
  ASSERT_TRUE(detected.has_value());
  const Duration since_stall = *detected - stalled_at;
  const Duration since_last_frame =
      *detected - gap.disconnected_at;  // the last frame
  measure("stall: stall_all() -> detected", since_stall);
  measure("stall: last frame -> detected", since_last_frame);
  // The last frame came just before stall_all(), at most one stream period
  // (2 ms) earlier; the timer fires at last frame + 300 ms.
  EXPECT_GE(since_last_frame, o.idle_timeout);
  EXPECT_LE(since_stall, o.idle_timeout * 11 / 10);  // idle_timeout + 10 %
  const WsClientStats s = h.client().stats();
  EXPECT_EQ(s.stalls_detected, 1u);
  EXPECT_EQ(s.disconnects_stall, 1u);
  ASSERT_TRUE(h.wait_live());  // and it recovers by itself
  h.stop_and_join();
}

TEST(WsClient, PongTimeoutDetectsStallWhenIdleTimeoutIsOff) {
  Harness h;
  WsClientOptions o = test_options(h.server().url());
  o.idle_timeout = milliseconds(0);
  o.ping_interval = milliseconds(50);
  o.pong_timeout = milliseconds(150);
  h.make_client(o);
  h.start({"A"});
  ASSERT_TRUE(h.wait_live());
  // Pings are answered while the server is healthy: no stall for a while.
  ASSERT_TRUE(h.rec().wait_for_stats(h.client(), [](const WsClientStats& s) {
    return s.time_in_state >= milliseconds(400) &&
           s.state == ConnectionState::live;
  }));
  EXPECT_EQ(h.client().stats().stalls_detected, 0u);
  h.server().stall_all();  // the server stops writing: no pongs
  ASSERT_TRUE(h.rec().wait([&] { return !h.rec().gaps_locked().empty(); }));
  EXPECT_EQ(h.rec().gaps()[0].reason, GapReason::stall);
  EXPECT_EQ(h.client().stats().stalls_detected, 1u);
  h.stop_and_join();
}

TEST(WsClient, UnsubscribesBeforeResubscribingWhenBrokerKeepsSubscriptions) {
  Harness h;
  h.server().set_keeps_subscriptions(true);
  h.make_client(test_options(h.server().url()),
                std::make_unique<LineProtocol>(true));
  h.start({"A", "B", "C", "D"});
  ASSERT_TRUE(h.wait_live());
  h.server().reset_all();
  ASSERT_TRUE(h.rec().wait([&] { return !h.rec().gaps_locked().empty(); }));
  ASSERT_TRUE(h.rec().wait_for_stats(h.client(), [](const WsClientStats& s) {
    return s.state == ConnectionState::live && s.subscriptions.confirmed == 4;
  }));
  const auto second = h.server().received(1);
  // Every UNSUB precedes every SUB on the new connection.
  std::size_t last_unsub = 0, first_sub = second.size(), unsubs = 0, subs = 0;
  for (std::size_t i = 0; i < second.size(); ++i) {
    if (second[i].rfind("UNSUB ", 0) == 0) {
      last_unsub = i;
      ++unsubs;
    } else if (second[i].rfind("SUB ", 0) == 0) {
      first_sub = std::min(first_sub, i);
      ++subs;
    }
  }
  EXPECT_EQ(unsubs, 4u);
  EXPECT_EQ(subs, 4u);
  EXPECT_LT(last_unsub, first_sub);
  EXPECT_EQ(h.client().stats().subscriptions.already_subscribed, 0u);
  h.stop_and_join();
}

// The 2026-01-15 incident: a client that does not unsubscribe reconnects to a
// broker that kept its subscriptions; every SUB is answered ALREADY.
TEST(WsClient, AlreadyInSubscribeAfterReconnectConfirmsWithoutStorm) {
  Harness h;
  h.server().set_keeps_subscriptions(true);
  h.make_client(test_options(h.server().url()),
                std::make_unique<LineProtocol>(false));
  const std::vector<std::string> keys = {"A", "B", "C", "D", "E"};
  h.start(keys);
  ASSERT_TRUE(h.wait_live());
  h.server().close_all();
  ASSERT_TRUE(h.rec().wait([&] { return !h.rec().gaps_locked().empty(); }));
  ASSERT_TRUE(h.rec().wait_for_stats(h.client(), [](const WsClientStats& s) {
    return s.state == ConnectionState::live && s.subscriptions.confirmed == 5 &&
           s.subscriptions.already_subscribed == 5;
  }));
  const WsClientStats s = h.client().stats();
  EXPECT_EQ(s.subscriptions.unconfirmed, 0u);
  EXPECT_EQ(s.subscriptions.retries, 0u);
  // No storm: exactly one SUB per key and connection.
  EXPECT_EQ(h.server().count_received("SUB "), 2 * keys.size());
  EXPECT_EQ(h.server().count_received("UNSUB "), 0u);
  // And the data flows on the new connection.
  h.server().stream("C", 1000, 5);
  ASSERT_TRUE(h.rec().wait([&] { return h.rec().data_locked() >= 5; }));
  h.stop_and_join();
}

TEST(WsClient, MaxSubscribeOverLowersTheCapAndReportsTheRest) {
  Harness h;
  h.server().set_max_subscriptions(3);
  h.make_client(test_options(h.server().url()));
  h.start({"A", "B", "C", "D", "E"});
  ASSERT_TRUE(h.wait_live());
  const WsClientStats s = h.client().stats();
  EXPECT_EQ(s.subscriptions.confirmed, 3u);
  EXPECT_EQ(s.subscriptions.over_cap, 2u);
  EXPECT_EQ(s.subscriptions.cap, 3u);
  ASSERT_TRUE(s.subscriptions.learned_cap.has_value());
  EXPECT_EQ(*s.subscriptions.learned_cap, 3u);
  EXPECT_EQ(s.subscriptions.desired, 5u);  // never forgotten
  // Bounded: the over-cap keys are not hammered.
  EXPECT_LE(h.server().count_received("SUB "), 5u);
  EXPECT_EQ(s.reconnects, 0u);
  h.stop_and_join();
}

TEST(WsClient, ResubscribeUnsubscribesAndSubscribesOnTheLiveConnection) {
  Harness h;
  h.make_client(test_options(h.server().url()));
  h.start({"A", "B"});
  ASSERT_TRUE(h.wait_live());
  // A fresh connection to a keeping broker: one UNSUB and one SUB per key.
  EXPECT_EQ(h.server().count_received("UNSUB A"), 1u);
  h.client().resubscribe("A");
  ASSERT_TRUE(h.server().wait_for(
      [&] { return h.server().count_received("SUB A") == 2; }, seconds(5)));
  EXPECT_EQ(h.server().count_received("UNSUB A"), 2u);
  EXPECT_EQ(h.server().count_received("SUB B"), 1u);
  ASSERT_TRUE(h.rec().wait_for_stats(h.client(), [](const WsClientStats& s) {
    return s.subscriptions.confirmed == 2 && s.state == ConnectionState::live;
  }));
  EXPECT_EQ(h.client().stats().connects, 1u);
  h.stop_and_join();
}

TEST(WsClient, UnwantUnsubscribesAndForgetsTheKey) {
  Harness h;
  h.make_client(test_options(h.server().url()));
  h.start({"A", "B"});
  ASSERT_TRUE(h.wait_live());
  h.client().unwant("B");
  ASSERT_TRUE(h.rec().wait_for_stats(h.client(), [](const WsClientStats& s) {
    return s.subscriptions.desired == 1 && s.subscriptions.unsubscribing == 0 &&
           s.subscriptions.unsubscribe_acks >= 3;
  }));
  EXPECT_EQ(h.server().count_received("UNSUB B"), 2u);  // at login, on unwant
  EXPECT_EQ(h.client().stats().subscriptions.confirmed, 1u);
  h.stop_and_join();
}

TEST(WsClient, RefusedHandshakesFollowTheBackoffSchedule) {
  Harness h;
  h.server().set_handshake(HandshakeMode::refuse);
  WsClientOptions o = test_options(h.server().url());
  o.backoff = {.initial = milliseconds(10),
               .multiplier = 2.0,
               .max = milliseconds(30),
               .jitter_mode = JitterMode::none};
  h.make_client(o);
  h.start({"A"});
  constexpr std::size_t kAttempts = 50;
  ASSERT_TRUE(h.rec().wait_for_stats(h.client(), [&](const WsClientStats& s) {
    return s.handshake_failures >= kAttempts;
  }));
  EXPECT_GE(h.server().handshakes_refused(), kAttempts);
  const auto starts = h.rec().times_to(ConnectionState::connecting);
  ASSERT_GE(starts.size(), kAttempts);
  // Delay k (between attempt starts): 10, 20, then 30 ms capped.
  std::vector<Duration> schedule(
      1, Duration::zero());  // attempt k starts here at the earliest
  for (std::size_t k = 1; k < kAttempts; ++k) {
    schedule.push_back(schedule.back() + (k == 1   ? milliseconds(10)
                                          : k == 2 ? milliseconds(20)
                                                   : milliseconds(30)));
  }
  // starts[] are stamped by the state callback, a little after the client
  // took the attempt's time: a stamp the scheduler delays by d makes the gap
  // before it d longer and the gap after it d shorter. So a gap may fall
  // short only by what the gap before it ran over; an attempt that really
  // came early shows no such overrun. (Attempt 0's stamp has no gap before
  // it and carries the first callback's costs: timing starts at attempt 1.)
  const Duration tolerance = milliseconds(1);
  for (std::size_t k = 2; k < kAttempts; ++k) {
    const Duration expected = schedule[k] - schedule[k - 1];
    const Duration gap = starts[k] - starts[k - 1];
    const Duration overrun_before =
        std::max(Duration::zero(), (starts[k - 1] - starts[k - 2]) -
                                       (schedule[k - 1] - schedule[k - 2]));
    EXPECT_GE(gap + overrun_before, expected - tolerance) << "attempt " << k;
  }
  const Duration expected_total = schedule.back() - schedule[1];
  const Duration total = starts[kAttempts - 1] - starts[1];
  measure("50 refused attempts: second -> 50th attempt", total);
  measure("  schedule's sum of delays", expected_total);
  EXPECT_GE(total, expected_total - tolerance);
  EXPECT_LE(total, expected_total * 2 + seconds(1));  // it keeps trying, too
  // No 500 ms window holds more attempts than the schedule allows in one.
  auto most_in_window = [&](std::size_t first, auto start_of) {
    std::size_t most = 0;
    for (std::size_t i = first, j = first; i < kAttempts; ++i) {
      while (j < kAttempts && start_of(j) - start_of(i) < milliseconds(500))
        ++j;
      most = std::max(most, j - i);
    }
    return most;
  };
  const std::size_t allowed =
      most_in_window(0, [&](std::size_t k) { return schedule[k]; });
  EXPECT_LE(most_in_window(1, [&](std::size_t k) { return starts[k]; }),
            allowed);
  EXPECT_EQ(allowed, 18u);  // 0, 10, 30, 60, … 480 ms
  const WsClientStats s = h.client().stats();
  EXPECT_GE(s.handshake_failures, kAttempts);
  EXPECT_EQ(s.connects, 0u);
  EXPECT_EQ(s.epoch, 0u);
  EXPECT_TRUE(h.rec().gaps().empty());
  h.stop_and_join();
}

TEST(WsClient, BreakerOpensAndProbesWhileHandshakesAreRefused) {
  Harness h;
  h.server().set_handshake(HandshakeMode::refuse);
  WsClientOptions o = test_options(h.server().url());
  o.backoff = {.initial = milliseconds(5),
               .multiplier = 1.0,
               .max = milliseconds(5),
               .jitter_mode = JitterMode::none};
  o.breaker.consecutive_failure_threshold = 5;
  o.breaker.wait_in_open = milliseconds(150);
  o.breaker.permitted_calls_in_half_open = 1;
  h.make_client(o);
  h.start({"A"});
  // 5 failures trip it; then 3 probes, each after wait_in_open.
  ASSERT_TRUE(h.server().wait_for(
      [&] { return h.server().handshakes_refused() >= 8; }, seconds(8)));
  const WsClientStats s = h.client().stats();
  EXPECT_GE(s.breaker_rejections, 3u);
  EXPECT_GE(s.breaker.transitions,
            5u);  // closed→open, then open→half_open→open…
  const auto starts = h.rec().times_to(ConnectionState::connecting);
  ASSERT_GE(starts.size(), 8u);
  for (std::size_t k = 1; k < 5; ++k) {
    EXPECT_LT(starts[k] - starts[k - 1], milliseconds(150))
        << "before the trip, attempt " << k;
  }
  for (std::size_t k = 5; k < 8; ++k) {
    EXPECT_GE(starts[k] - starts[k - 1], milliseconds(150)) << "probe " << k;
    measure("breaker: probe spacing", starts[k] - starts[k - 1]);
  }
  h.stop_and_join();
}

TEST(WsClient, AuthRejectedRefreshesCredentialsOnceThenBacksOff) {
  Harness h;
  h.server().set_accepted_secret("fresh");
  std::atomic<int> plain_calls{0}, forced_calls{0};
  CredentialsProvider provider =
      [&](bool force, std::function<void(absl::StatusOr<Credentials>)> done) {
        ++(force ? forced_calls : plain_calls);
        done(Credentials{"stale", SteadyTime::max()});  // never good enough
      };
  WsClientOptions o = test_options(h.server().url());
  o.auth_refresh_cooldown = seconds(30);
  h.make_client(o, nullptr, provider);
  h.start({"A"});
  ASSERT_TRUE(h.rec().wait_for_stats(h.client(), [](const WsClientStats& s) {
    return s.login_failures >= 4;
  }));
  const WsClientStats s = h.client().stats();
  EXPECT_EQ(forced_calls.load(), 1);  // once, then the cooldown holds
  EXPECT_GE(plain_calls.load(), 3);
  EXPECT_EQ(s.credential_refreshes, 1u);
  EXPECT_GE(s.disconnects_token, 4u);
  EXPECT_EQ(s.epoch, 0u);
  // Each retry waits for the backoff (initial 20 ms, ±20 %).
  const auto starts = h.rec().times_to(ConnectionState::connecting);
  ASSERT_GE(starts.size(), 4u);
  for (std::size_t k = 1; k < 4; ++k) {
    EXPECT_GE(starts[k] - starts[k - 1], milliseconds(16)) << "attempt " << k;
  }
  h.stop_and_join();
}

TEST(WsClient, AuthRejectedThenForcedRefreshLogsIn) {
  Harness h;
  h.server().set_accepted_secret("fresh");
  std::atomic<int> forced_calls{0};
  CredentialsProvider provider =
      [&](bool force, std::function<void(absl::StatusOr<Credentials>)> done) {
        if (force) ++forced_calls;
        // Answered from another thread, as after a REST call.
        std::thread([force, done] {
          done(Credentials{force ? "fresh" : "stale", SteadyTime::max()});
        }).detach();
      };
  h.make_client(test_options(h.server().url()), nullptr, provider);
  h.start({"A"});
  ASSERT_TRUE(h.wait_live());
  const WsClientStats s = h.client().stats();
  EXPECT_EQ(forced_calls.load(), 1);
  EXPECT_EQ(s.login_failures, 1u);
  EXPECT_EQ(s.disconnects_token, 1u);
  EXPECT_EQ(s.epoch, 1u);  // the first login: no gap
  EXPECT_TRUE(h.rec().gaps().empty());
  h.stop_and_join();
}

TEST(WsClient, RefreshesCredentialsBeforeTheyExpire) {
  Harness h;
  std::atomic<int> forced_calls{0};
  CredentialsProvider provider =
      [&](bool force, std::function<void(absl::StatusOr<Credentials>)> done) {
        if (force) ++forced_calls;
        done(Credentials{"k", SteadyClock::now() + milliseconds(400)});
      };
  WsClientOptions o = test_options(h.server().url());
  o.refresh_lead = milliseconds(300);  // refresh 100 ms after each fetch
  h.make_client(o, nullptr, provider);
  h.start({"A"});
  ASSERT_TRUE(h.wait_live());
  ASSERT_TRUE(h.rec().wait_for_stats(h.client(), [](const WsClientStats& s) {
    return s.credential_refreshes >= 1;
  }));
  EXPECT_GE(forced_calls.load(), 1);
  const WsClientStats s = h.client().stats();
  EXPECT_EQ(s.connects, 1u);  // refreshed without dropping the connection
  EXPECT_EQ(s.state, ConnectionState::live);
  h.stop_and_join();
}

TEST(WsClient, AnswersHeartbeatsAndCountsNotices) {
  Harness h;
  h.make_client(test_options(h.server().url()));
  h.start({"A"});
  ASSERT_TRUE(h.wait_live());
  h.server().set_app_ping(milliseconds(10));
  ASSERT_TRUE(h.server().wait_for(
      [&] { return h.server().count_received("PONG ") >= 3; }, seconds(5)));
  h.server().send_text("NOTICE maintenance at 18:00");
  ASSERT_TRUE(h.rec().wait_for_stats(
      h.client(), [](const WsClientStats& s) { return s.notices == 1; }));
  EXPECT_EQ(h.client().stats().connects, 1u);
  h.stop_and_join();
}

TEST(WsClient, MalformedFramesAreCountedAndTheConnectionKept) {
  Harness h;
  h.make_client(test_options(h.server().url()));
  h.start({"A"});
  ASSERT_TRUE(h.wait_live());
  h.server().send_malformed(25);
  ASSERT_TRUE(h.rec().wait_for_stats(
      h.client(), [](const WsClientStats& s) { return s.parse_errors == 25; }));
  // Still the same connection, still delivering.
  h.server().flood("A", 10);
  ASSERT_TRUE(h.rec().wait([&] { return h.rec().data_locked() >= 10; }));
  const WsClientStats s = h.client().stats();
  EXPECT_EQ(s.connects, 1u);
  EXPECT_EQ(s.state, ConnectionState::live);
  EXPECT_EQ(
      s.disconnects_network + s.disconnects_other + s.disconnects_server_close,
      0u);
  EXPECT_EQ(h.server().connections_accepted(), 1u);
  h.stop_and_join();
}

TEST(WsClient, DataBeforeLoginOkBelongsToNoEpochAndIsDiscarded) {
  Harness h;
  h.server().set_answer_logins(false);
  h.make_client(test_options(h.server().url()));
  h.start({"A"});
  ASSERT_TRUE(h.server().wait_for(
      [&] { return h.server().count_received("LOGIN") == 1; }, kWait));
  // Logged in to nothing yet: a DATA frame now must not reach on_data.
  h.server().send_text("DATA A 1 t=0");
  h.server().send_text("DATA A 2 t=0");
  ASSERT_TRUE(h.rec().wait_for_stats(h.client(), [](const WsClientStats& s) {
    return s.late_frames_discarded == 2;
  }));
  EXPECT_EQ(h.client().stats().data_frames, 0u);
  EXPECT_EQ(h.client().stats().state, ConnectionState::logging_in);
  // The next login is answered; data flows with epoch 1, nothing late.
  h.server().set_answer_logins(true);
  h.server().stream("A", 500);
  ASSERT_TRUE(h.rec().wait([&] { return h.rec().data_locked() >= 5; }));
  EXPECT_EQ(h.rec().out_of_epoch(), 0u);
  EXPECT_EQ(h.client().stats().late_frames_discarded, 2u);
  h.stop_and_join();
}

TEST(WsClient,
     FloodIntoStalledConsumerDropsInTheDispatcherAndKeepsTheConnection) {
  using Event = std::variant<Stamped<std::string>, GapEvent>;
  auto dispatcher =
      Dispatcher<Event>::create(
          {.capacity = 1000, .overflow = OverflowPolicy::drop_newest})
          .value();
  auto producer =
      dispatcher->make_producer().value();  // used on the client's strand only
  Harness h;
  Recorder& rec = h.rec();
  WsClientCallbacks cb =
      rec.callbacks([&](std::string_view frame, SteadyTime t, std::uint64_t e) {
        (void)producer.try_push(
            Event(Stamped<std::string>{std::string(frame), e, t}));
      });
  auto on_gap = cb.on_gap;
  cb.on_gap = [&, on_gap](const GapEvent& gap) {
    producer.push_control(Event(gap));
    on_gap(gap);
  };
  h.make_client(test_options(h.server().url()), nullptr, fixed_secret("s"), cb);
  h.start({"A"});
  ASSERT_TRUE(h.wait_live());
  constexpr std::size_t kFlood = 20'000;
  h.server().flood("A", kFlood);  // nobody polls the dispatcher
  ASSERT_TRUE(h.rec().wait([&] { return h.rec().data_locked() >= kFlood; },
                           seconds(20)));
  const DispatcherStats d = dispatcher->stats();
  EXPECT_EQ(d.offered, kFlood);
  EXPECT_EQ(d.accepted, 1000u);
  EXPECT_EQ(d.dropped_full, kFlood - 1000);
  EXPECT_LE(d.depth, 1000u);
  EXPECT_LE(d.high_water, 1000u);
  const WsClientStats s = h.client().stats();
  EXPECT_EQ(s.data_frames, kFlood);
  EXPECT_EQ(s.connects, 1u);
  EXPECT_EQ(s.state, ConnectionState::live);
  h.stop_and_join();
}

testing::TestCertificate certificate(const std::string& name) {
  const std::string dir =
      (std::filesystem::path(::testing::TempDir()) /
       ("feedkit_ws_client_test_" + name + std::to_string(::getpid())))
          .string();
  auto cert = testing::make_test_certificate(dir);
  EXPECT_TRUE(cert.ok()) << cert.status();
  return cert.ok() ? *cert : testing::TestCertificate{};
}

TEST(WsClient, WssWithTrustedTestCertificateGoesLive) {
  const testing::TestCertificate cert = certificate("trusted");
  Harness h(
      {.tls = true, .cert_file = cert.cert_file, .key_file = cert.key_file});
  WsClientOptions o = test_options(h.server().url());
  ASSERT_EQ(o.url.rfind("wss://localhost:", 0), 0u) << o.url;
  o.ca_file = cert.cert_file;
  h.make_client(o);
  h.start({"A"});
  ASSERT_TRUE(h.wait_live());
  h.server().stream("A", 1000, 10);
  ASSERT_TRUE(h.rec().wait([&] { return h.rec().data_locked() >= 10; }));
  EXPECT_EQ(h.client().stats().handshake_failures, 0u);
  h.stop_and_join();
}

TEST(WsClient, WssWithUntrustedCertificateIsRefused) {
  const testing::TestCertificate cert = certificate("untrusted");
  const testing::TestCertificate other = certificate("other");
  Harness h(
      {.tls = true, .cert_file = cert.cert_file, .key_file = cert.key_file});
  // Trusting another certificate: refused at every attempt, never live.
  WsClientOptions o = test_options(h.server().url());
  o.ca_file = other.cert_file;
  h.make_client(o);
  h.start({"A"});
  ASSERT_TRUE(h.rec().wait_for_stats(h.client(), [](const WsClientStats& s) {
    return s.handshake_failures >= 3;
  }));
  const WsClientStats s = h.client().stats();
  EXPECT_EQ(s.connects, 0u);
  EXPECT_FALSE(h.rec().wait(
      [&] { return h.rec().reached_locked(ConnectionState::logging_in); },
      Duration::zero()));
  EXPECT_EQ(h.server().handshakes_completed(), 0u);
  h.stop_and_join();
}

TEST(WsClient, WssWithSystemTrustStoreRefusesSelfSignedCertificate) {
  const testing::TestCertificate cert = certificate("system");
  Harness h(
      {.tls = true, .cert_file = cert.cert_file, .key_file = cert.key_file});
  h.make_client(test_options(h.server().url()));  // ca_file empty: system store
  h.start({"A"});
  ASSERT_TRUE(h.rec().wait_for_stats(h.client(), [](const WsClientStats& s) {
    return s.handshake_failures >= 2;
  }));
  EXPECT_EQ(h.client().stats().connects, 0u);
  EXPECT_EQ(h.server().handshakes_completed(), 0u);
  h.stop_and_join();
}

// --- stop() from every state ------------------------------------------------

TEST(WsClient, StopCompletesWhileDisconnected) {
  Harness h;
  h.make_client(test_options(h.server().url()));
  h.mark_stopped();
  boost::asio::io_context& ioc = h.ioc();
  std::atomic<int> done{0};
  h.client().stop([&] { ++done; });
  ioc.run();  // returns once stop() has completed: nothing else is pending
  EXPECT_EQ(done.load(), 1);
  EXPECT_EQ(h.client().stats().state, ConnectionState::stopped);
  // Idempotent: a later stop() completes too, and start() does nothing.
  h.client().stop([&] { ++done; });
  h.client().start();
  ioc.restart();
  ioc.run();
  EXPECT_EQ(done.load(), 2);
  EXPECT_EQ(h.client().stats().connect_attempts, 0u);
  EXPECT_EQ(h.server().connections_accepted(), 0u);
}

TEST(WsClient, StopCompletesWhileConnectingToAHangingHandshake) {
  Harness h;
  h.server().set_handshake(HandshakeMode::hang);
  WsClientOptions o = test_options(h.server().url());
  o.handshake_timeout = seconds(10);
  h.make_client(o);
  h.start({"A"});
  ASSERT_TRUE(h.server().wait_for(
      [&] { return h.server().connections_accepted() == 1; }, seconds(5)));
  EXPECT_EQ(h.client().stats().state, ConnectionState::connecting);
  const Duration took = h.stop_and_join();
  measure("stop() while connecting", took);
  EXPECT_LT(took, milliseconds(500));
  EXPECT_EQ(h.server().connections_accepted(), 1u);  // no reconnect after stop
}

TEST(WsClient, StopCompletesWhileLoggingInWithACredentialsFetchOutstanding) {
  Harness h;
  std::mutex mu;
  std::function<void(absl::StatusOr<Credentials>)> pending;
  CredentialsProvider never =
      [&](bool, std::function<void(absl::StatusOr<Credentials>)> done) {
        std::lock_guard lock(mu);
        pending = std::move(done);  // the REST call never returns
      };
  h.make_client(test_options(h.server().url()), nullptr, never);
  h.start({"A"});
  ASSERT_TRUE(h.rec().wait(
      [&] { return h.rec().state_locked() == ConnectionState::logging_in; }));
  const Duration took = h.stop_and_join();
  measure("stop() while logging in", took);
  EXPECT_LT(took, milliseconds(1500));  // includes the close handshake (≤ 1 s)
  // The answer arrives after stop: ignored.
  std::lock_guard lock(mu);
  ASSERT_TRUE(pending);
  pending(Credentials{"late", SteadyTime::max()});
  EXPECT_EQ(h.client().stats().state, ConnectionState::stopped);
}

TEST(WsClient, StopCompletesWhileSubscribing) {
  Harness h;
  h.server().set_answer_subscriptions(false);
  WsClientOptions o = test_options(h.server().url());
  o.subscriptions.confirm_timeout = seconds(10);
  h.make_client(o);
  h.start({"A", "B"});
  ASSERT_TRUE(h.rec().wait(
      [&] { return h.rec().state_locked() == ConnectionState::subscribing; }));
  ASSERT_TRUE(h.server().wait_for(
      [&] { return h.server().count_received("SUB ") == 2; }, seconds(5)));
  const Duration took = h.stop_and_join();
  measure("stop() while subscribing", took);
  EXPECT_LT(took, milliseconds(1500));
  EXPECT_EQ(h.client().stats().subscriptions.pending,
            0u);  // disconnected: waiting
}

TEST(WsClient, StopCompletesWhileLiveWithACloseHandshake) {
  Harness h;
  h.make_client(test_options(h.server().url()));
  h.start({"A"});
  ASSERT_TRUE(h.wait_live());
  h.server().stream("A", 1000);
  ASSERT_TRUE(h.rec().wait([&] { return h.rec().data_locked() >= 5; }));
  const Duration took = h.stop_and_join();
  measure("stop() while live", took);
  EXPECT_LT(took, milliseconds(500));
  EXPECT_TRUE(h.server().wait_for(
      [&] { return h.server().open_sessions() == 0; }, seconds(2)));
  EXPECT_EQ(h.server().connections_accepted(), 1u);
}

TEST(WsClient, StopCompletesWhileInBackoff) {
  Harness h;
  h.server().set_handshake(HandshakeMode::refuse);
  WsClientOptions o = test_options(h.server().url());
  o.backoff = {.initial = seconds(30), .max = seconds(60)};
  h.make_client(o);
  h.start({"A"});
  ASSERT_TRUE(h.rec().wait(
      [&] { return h.rec().state_locked() == ConnectionState::backoff; }));
  const Duration took = h.stop_and_join();
  measure("stop() while in backoff", took);
  EXPECT_LT(took, milliseconds(500));
  EXPECT_EQ(h.server().connections_accepted(), 1u);
}

TEST(WsClient, StopTwiceCallsBothDones) {
  Harness h;
  h.make_client(test_options(h.server().url()));
  h.start({"A"});
  ASSERT_TRUE(h.wait_live());
  std::atomic<int> first{0};
  h.client().stop([&] { ++first; });
  h.stop_and_join();  // the second stop(); waits for its done and run()
  EXPECT_EQ(first.load(), 1);
}

// --- epochs
// -------------------------------------------------------------------

TEST(WsClient, EpochAdvancesOncePerReconnectWithOneGapEventEach) {
  Harness h;
  h.make_client(test_options(h.server().url()));
  h.start({"A", "B"});
  ASSERT_TRUE(h.wait_live());
  h.server().stream("A", 500);
  constexpr std::size_t kCycles = 6;
  for (std::size_t i = 0; i < kCycles; ++i) {
    ASSERT_TRUE(h.wait_live());
    const std::uint64_t before = h.rec().data();
    ASSERT_TRUE(
        h.rec().wait([&] { return h.rec().data_locked() >= before + 3; }));
    if (i % 2 == 0) {
      h.server().close_all();
    } else {
      h.server().reset_all();
    }
    ASSERT_TRUE(
        h.rec().wait([&] { return h.rec().gaps_locked().size() == i + 1; }));
  }
  ASSERT_TRUE(h.wait_live());
  const auto gaps = h.rec().gaps();
  ASSERT_EQ(gaps.size(), kCycles);
  for (std::size_t i = 0; i < kCycles; ++i) {
    EXPECT_EQ(gaps[i].old_epoch, i + 1);
    EXPECT_EQ(gaps[i].new_epoch, i + 2);
    EXPECT_EQ(gaps[i].reason,
              i % 2 == 0 ? GapReason::server_close : GapReason::network);
  }
  const WsClientStats s = h.client().stats();
  EXPECT_EQ(s.epoch, kCycles + 1);
  EXPECT_EQ(s.reconnects, kCycles);
  EXPECT_EQ(s.connects, kCycles + 1);
  EXPECT_EQ(h.rec().out_of_epoch(), 0u);  // no data before its GapEvent
  h.stop_and_join();
}

TEST(WsClient, ManualReconnectGivesAManualGap) {
  Harness h;
  h.make_client(test_options(h.server().url()));
  h.start({"A"});
  ASSERT_TRUE(h.wait_live());
  h.client().reconnect(GapReason::manual);
  ASSERT_TRUE(h.rec().wait([&] { return h.rec().gaps_locked().size() == 1; }));
  EXPECT_EQ(h.rec().gaps()[0].reason, GapReason::manual);
  ASSERT_TRUE(h.wait_live());
  EXPECT_EQ(h.client().stats().disconnects_other, 1u);
  h.stop_and_join();
}

}  // namespace
}  // namespace feedkit
