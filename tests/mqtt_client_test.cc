// Test that header file is self-contained.
#include "feedkit/mqtt_client.h"

#include <arpa/inet.h>  // free_port()
#include <gtest/gtest.h>
#include <mqtt/async_client.h>  // the tests' own publisher
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>  // getpid, for unique certificate directories

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "feedkit/dispatcher.h"
#include "feedkit/epoch.h"
#include "feedkit/testing/mosquitto_broker.h"
#include "feedkit/testing/tcp_fault_proxy.h"
#include "feedkit/testing/test_certificate.h"
#include "feedkit/testing/ws_tcp_bridge.h"
#include "support/client_harness.h"

// Every test runs a real mosquitto (MosquittoBroker) on loopback, often
// behind a TcpFaultProxy or a WsTcpBridge, and an MqttClient on an
// io_context of its own thread. Conditions are waited for, never slept for:
// client-side ones with the Recorder below (fed by the client's callbacks) or
// by polling stats() in Recorder::wait_for_stats (re-checked on every
// callback and every 5 ms). Measured times are printed as "[ measure ] ..."
// lines.

namespace feedkit {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::LinkMode;
using testing::measure;
using testing::MosquittoBroker;
using testing::MosquittoBrokerOptions;
using testing::ms_of;
using testing::TcpFaultProxy;
using testing::WsTcpBridge;

constexpr Duration kWait = seconds(10);  // the most any condition may take

// Collects what the client's callbacks report, for the test thread.
class Recorder : public testing::ClientRecorder {
 public:
  Recorder() : ClientRecorder(kWait) {}

  MqttClientCallbacks callbacks(
      std::function<void(std::string_view, std::string_view, SteadyTime,
                         std::uint64_t)>
          also_on_message = {}) {
    MqttClientCallbacks cb;
    cb.on_message = [this, also_on_message](std::string_view topic,
                                            std::string_view payload,
                                            SteadyTime t, std::uint64_t epoch) {
      {
        std::lock_guard lock(mu_);
        ++messages_[std::string(topic)];
        ++total_;
        check_epoch_locked(epoch);
      }
      if (also_on_message) also_on_message(topic, payload, t, epoch);
      cv_.notify_all();
    };
    cb.on_rejected = [this](std::string_view topic, std::string_view reason) {
      {
        std::lock_guard lock(mu_);
        rejected_.emplace_back(topic, reason);
      }
      cv_.notify_all();
    };
    record_lifecycle(cb);
    return cb;
  }

  // Accessors for use inside wait() predicates (the lock is held there).
  std::uint64_t total_locked() const { return total_; }
  std::uint64_t messages_locked(const std::string& topic) const {
    auto it = messages_.find(topic);
    return it == messages_.end() ? 0 : it->second;
  }
  std::size_t rejected_locked() const { return rejected_.size(); }

  // Snapshots for the test thread.
  std::uint64_t total() const {
    std::lock_guard lock(mu_);
    return total_;
  }
  std::uint64_t messages(const std::string& topic) const {
    std::lock_guard lock(mu_);
    return messages_locked(topic);
  }
  std::vector<std::pair<std::string, std::string>> rejected() const {
    std::lock_guard lock(mu_);
    return rejected_;
  }

 private:
  std::map<std::string, std::uint64_t> messages_;
  std::uint64_t total_ = 0;
  std::vector<std::pair<std::string, std::string>> rejected_;
};

// A plain Paho client that publishes QoS 0 messages straight to the broker
// (not through the proxy), optionally as a steady stream on its own thread.
class Publisher {
 public:
  explicit Publisher(const std::string& uri, std::string user = "",
                     std::string password = "")
      : client_(uri, "feedkit-test-pub-" + std::to_string(next_id()),
                // Paho refuses a publish beyond 100 queued ones by default.
                mqtt::create_options(MQTTVERSION_3_1_1, 1 << 20)) {
    mqtt::connect_options o;
    o.set_mqtt_version(MQTTVERSION_3_1_1);
    o.set_clean_session(true);
    if (!user.empty()) {
      o.set_user_name(user);
      o.set_password(password);
    }
    try {
      client_.connect(o)->wait_for(seconds(10));
      connected_ = client_.is_connected();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "publisher: " << e.what();
    }
    EXPECT_TRUE(connected_) << "publisher could not connect";
  }

  ~Publisher() {
    stop_stream();
    try {
      if (client_.is_connected()) client_.disconnect()->wait_for(seconds(5));
    } catch (const std::exception&) {
    }
  }

  // Returns false if Paho refused (e.g. the broker went away).
  bool publish(const std::string& topic, const std::string& payload) {
    try {
      client_.publish(topic, payload.data(), payload.size(), 0, false);
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }

  // Publishes `n` messages to `topic` as fast as Paho takes them.
  void flood(const std::string& topic, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      if (!publish(topic, "m" + std::to_string(i))) {
        ADD_FAILURE() << "publisher refused message " << i;
        return;
      }
    }
  }

  // Publishes to `topic` every `period` on a thread until stop_stream().
  void stream(std::string topic, Duration period = milliseconds(2)) {
    streaming_ = true;
    streamer_ = std::thread([this, topic = std::move(topic), period] {
      std::uint64_t i = 0;
      while (streaming_.load()) {
        (void)publish(topic, std::to_string(i++));
        std::this_thread::sleep_for(period);  // pacing a source, not a wait
      }
    });
  }
  void stop_stream() {
    streaming_ = false;
    if (streamer_.joinable()) streamer_.join();
  }

 private:
  static int next_id() {
    static std::atomic<int> id{0};
    return ++id;
  }

  mqtt::async_client client_;
  bool connected_ = false;
  std::atomic<bool> streaming_{false};
  std::thread streamer_;
};

// Small timeouts so that every fault resolves quickly. Not the connect
// timeout: Paho notices a new connection's progress on its receive thread's
// 1 s poll cycle, so a connect can take 1-2 s while another Paho connection
// (the tests' publisher) is open.
MqttClientOptions test_options(const std::string& uri) {
  MqttClientOptions o;
  o.uri = uri;
  o.credential_use = CredentialUse::none;
  o.connect_timeout = seconds(5);
  o.keepalive = seconds(5);
  o.stable_after = milliseconds(100);
  o.backoff = {
      .initial = milliseconds(20), .multiplier = 1.6, .max = milliseconds(200)};
  o.breaker = CircuitBreakerOptions::suggested();  // trips only after 100 calls
  o.breaker.wait_in_open = milliseconds(200);
  o.subscriptions = {.max_per_connection = 100,
                     .confirm_timeout = milliseconds(1000),
                     .max_attempts = 3,
                     .pacing = {.rate_per_second = 1000, .burst = 100}};
  return o;
}

CredentialsProvider fixed_secret(std::string secret) {
  return [secret](bool, std::function<void(absl::StatusOr<Credentials>)> done) {
    done(Credentials{secret, SteadyTime::max()});
  };
}

// A broker, optionally a proxy in front of it, an io_context on its own
// thread and a client.
class Harness : public testing::ClientRunner<MqttClient, Recorder> {
 public:
  explicit Harness(MosquittoBrokerOptions broker_options = {},
                   bool start_broker = true) {
    auto broker = start_broker ? MosquittoBroker::start(broker_options)
                               : MosquittoBroker::prepare(broker_options);
    EXPECT_TRUE(broker.ok()) << broker.status();
    if (broker.ok()) broker_ = *std::move(broker);
  }

  ~Harness() { finish(); }  // the client stops while the broker runs

  MosquittoBroker& broker() { return *broker_; }

  // Starts a TcpFaultProxy in front of the broker; returns its URI.
  std::string proxy_uri() {
    auto proxy = TcpFaultProxy::start({.target_port = broker_->port()});
    EXPECT_TRUE(proxy.ok()) << proxy.status();
    proxy_ = *std::move(proxy);
    return proxy_->url();
  }
  TcpFaultProxy& proxy() { return *proxy_; }

  void make_client(MqttClientOptions options,
                   CredentialsProvider credentials = {},
                   MqttClientCallbacks callbacks = {}) {
    if (!callbacks.on_message) callbacks = rec_.callbacks();
    auto created = MqttClient::create(
        ioc_, std::move(options), std::move(credentials), std::move(callbacks));
    ASSERT_TRUE(created.ok()) << created.status();
    client_ = *std::move(created);
  }

 private:
  std::unique_ptr<MosquittoBroker> broker_;
  std::unique_ptr<TcpFaultProxy> proxy_;
};

// A broker with users: "feed" may only use prices/#; "pub" may do anything.
MosquittoBrokerOptions users_broker() {
  MosquittoBrokerOptions o;
  o.users = {{.name = "feed",
              .password = "feed-pw",
              .topics = {{.filter = "prices/#"}}},
             {.name = "pub", .password = "pub-pw"}};
  return o;
}

// Publishes to `topic` until the client received `n` more messages on it.
bool publish_until_received(Harness& h, Publisher& pub,
                            const std::string& topic, std::uint64_t n) {
  const std::uint64_t target = h.rec().messages(topic) + n;
  for (int round = 0; round < 200; ++round) {
    for (int i = 0; i < 5; ++i) (void)pub.publish(topic, "x");
    if (h.rec().wait([&] { return h.rec().messages_locked(topic) >= target; },
                     milliseconds(50))) {
      return true;
    }
  }
  return false;
}

// ---------------------------------------------------------------------------

TEST(MqttClient, CreateRejectsInvalidOptions) {
  boost::asio::io_context ioc;
  Recorder rec;
  auto make = [&](MqttClientOptions o,
                  CredentialsProvider p = fixed_secret("x")) {
    return MqttClient::create(ioc, std::move(o), std::move(p), rec.callbacks());
  };
  MqttClientOptions o = test_options("tcp://127.0.0.1:1883");
  EXPECT_TRUE(make(o).ok());
  for (const char* uri : {"http://127.0.0.1/", "tcp://", "tcp://:1883",
                          "tcp://h:0", "tcp://h:99999", "tcp://user:pw@h:1883",
                          "127.0.0.1:1883", "tcp://h:1883/path"}) {
    MqttClientOptions bad = o;
    bad.uri = uri;
    EXPECT_EQ(make(bad).status().code(), absl::StatusCode::kInvalidArgument)
        << uri;
  }
  for (const char* uri : {"ssl://h:8883", "ws://h/mqtt", "wss://h:443/mqtt",
                          "mqtt://h", "mqtts://[::1]:8883"}) {
    MqttClientOptions good = o;
    good.uri = uri;
    EXPECT_TRUE(make(good).ok()) << uri;
  }
  auto expect_invalid = [&](MqttClientOptions bad, const char* field) {
    auto r = make(std::move(bad));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << field;
    EXPECT_NE(r.status().message().find(field), std::string_view::npos)
        << r.status();
  };
  MqttClientOptions bad = o;
  bad.keepalive = seconds(70'000);
  expect_invalid(bad, "keepalive");
  bad = o;
  bad.qos = 3;
  expect_invalid(bad, "qos");
  bad = o;
  bad.connect_timeout = milliseconds(0);
  expect_invalid(bad, "connect_timeout");
  bad = o;
  bad.credential_use = CredentialUse::password;  // no username
  expect_invalid(bad, "username");
  bad = o;
  bad.credential_use = CredentialUse::bearer_header;  // tcp: no upgrade
  expect_invalid(bad, "ws://");
  bad = o;
  bad.probe_topic = "a/#/b";
  expect_invalid(bad, "probe_topic");
  bad = o;
  bad.subscriptions.max_attempts = 0;
  expect_invalid(bad, "subscriptions");
  // A header value (a bearer token) is never quoted in an error.
  bad = o;
  bad.uri = "ws://h/mqtt";
  bad.headers = {{"X-Token", "TOPSECRET\r\nX: y"}};
  auto r = make(bad);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message().find("TOPSECRET"), std::string_view::npos);
  // The path (which may hold a token) is never quoted either.
  bad = o;
  bad.uri = "wss://h:0/mqtt?token=TOPSECRET";
  r = make(bad);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message().find("TOPSECRET"), std::string_view::npos);
  // Missing pieces: a provider (unless credential_use is none), on_message.
  bad = o;
  bad.credential_use = CredentialUse::password;
  bad.username = "u";
  EXPECT_FALSE(make(bad, {}).ok());
  EXPECT_TRUE(make(o, {}).ok());  // none: no provider needed
  EXPECT_FALSE(MqttClient::create(ioc, o, fixed_secret("x"), {}).ok());
}

TEST(MqttClient, ConnectsSubscribesAndDeliversWithEpochOne) {
  Harness h;
  h.make_client(test_options(h.broker().url()));
  h.start({"prices/A", "prices/B"});
  Publisher pub(h.broker().url());
  ASSERT_TRUE(h.wait_live());
  pub.flood("prices/A", 20);
  pub.flood("prices/B", 5);
  pub.flood("other/C", 5);  // not subscribed
  ASSERT_TRUE(h.rec().wait([&] {
    return h.rec().messages_locked("prices/A") == 20 &&
           h.rec().messages_locked("prices/B") == 5;
  }));
  const MqttClientStats s = h.client().stats();
  EXPECT_EQ(s.epoch, 1u);
  EXPECT_EQ(s.connects, 1u);
  EXPECT_EQ(s.reconnects, 0u);
  EXPECT_EQ(s.connect_attempts, 1u);
  EXPECT_EQ(s.subscriptions.confirmed, 2u);
  EXPECT_EQ(s.subscriptions.subscribes_sent, 2u);
  EXPECT_EQ(s.data_frames, 25u);
  EXPECT_GE(s.frames_in, 25u + 3u);  // + CONNACK and two SUBACKs
  EXPECT_GE(s.frames_out, 3u);       // CONNECT and two SUBSCRIBEs
  EXPECT_EQ(s.late_frames_discarded, 0u);
  EXPECT_EQ(h.rec().messages("other/C"), 0u);
  EXPECT_TRUE(h.rec().gaps().empty());
  EXPECT_EQ(h.rec().out_of_epoch(), 0u);
  h.stop_and_join();
}

TEST(MqttClient, BrokerKilledAndRestartedReconnectsResubscribesWithOneGap) {
  Harness h;
  h.make_client(test_options(h.broker().url()));
  h.start({"prices/A", "prices/B"});
  {
    Publisher pub(h.broker().url());
    ASSERT_TRUE(h.wait_live());
    ASSERT_TRUE(publish_until_received(h, pub, "prices/A", 10));
  }
  const SteadyTime killed_at = SteadyClock::now();
  h.broker().kill();
  ASSERT_TRUE(h.rec().wait(
      [&] { return h.rec().state_locked() == ConnectionState::backoff; }));
  ASSERT_TRUE(h.broker().restart().ok()) << h.broker().log_tail();
  {
    Publisher pub(h.broker().url());
    ASSERT_TRUE(h.rec().wait([&] { return !h.rec().gaps_locked().empty(); }));
    ASSERT_TRUE(h.wait_live());
    ASSERT_TRUE(publish_until_received(h, pub, "prices/A", 10));
    ASSERT_TRUE(publish_until_received(h, pub, "prices/B", 10));
  }
  const auto gaps = h.rec().gaps();
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_EQ(gaps[0].reason, GapReason::network);
  EXPECT_EQ(gaps[0].old_epoch, 1u);
  EXPECT_EQ(gaps[0].new_epoch, 2u);
  EXPECT_GE(gaps[0].disconnected_at, killed_at);
  EXPECT_GT(gaps[0].resumed_at, gaps[0].disconnected_at);
  EXPECT_EQ(gaps[0].subscriptions_lost,
            (std::vector<std::string>{"prices/A", "prices/B"}));
  const MqttClientStats s = h.client().stats();
  EXPECT_EQ(s.epoch, 2u);
  EXPECT_EQ(s.reconnects, 1u);
  EXPECT_EQ(s.disconnects_network, 1u);
  EXPECT_EQ(s.subscriptions.confirmed, 2u);
  EXPECT_EQ(s.subscriptions.subscribes_sent, 4u);  // both, on each connection
  EXPECT_EQ(h.rec().out_of_epoch(), 0u);
  measure("broker kill -> connection lost -> live again (incl. restart)",
          gaps[0].resumed_at - killed_at);
  h.stop_and_join();
}

TEST(MqttClient, BrokerDownAtFirstConnectIsRetriedUntilItIsUp) {
  Harness h({}, /*start_broker=*/false);  // the port is chosen, nothing runs
  h.make_client(test_options(h.broker().url()));
  h.start({"prices/A"});
  ASSERT_TRUE(h.rec().wait_for_stats(h.client(), [](const MqttClientStats& s) {
    return s.handshake_failures >= 3;
  }));
  EXPECT_EQ(h.client().stats().connects, 0u);
  ASSERT_TRUE(h.broker().restart().ok()) << h.broker().log_tail();
  Publisher pub(h.broker().url());
  ASSERT_TRUE(h.wait_live());
  ASSERT_TRUE(publish_until_received(h, pub, "prices/A", 5));
  const MqttClientStats s = h.client().stats();
  EXPECT_EQ(s.epoch, 1u);  // the first connection: no gap
  EXPECT_EQ(s.connects, 1u);
  EXPECT_TRUE(h.rec().gaps().empty());
  EXPECT_GE(s.backoff.attempts, 3u);
  h.stop_and_join();
}

TEST(MqttClient, RefusedLoginRefreshesCredentialsOnceThenBacksOff) {
  Harness h(users_broker());
  std::atomic<int> plain_calls{0}, forced_calls{0};
  CredentialsProvider provider =
      [&](bool force, std::function<void(absl::StatusOr<Credentials>)> done) {
        ++(force ? forced_calls : plain_calls);
        done(Credentials{"wrong-password", SteadyTime::max()});
      };
  MqttClientOptions o = test_options(h.broker().url());
  o.credential_use = CredentialUse::password;
  o.username = "feed";
  o.auth_refresh_cooldown = seconds(30);
  o.backoff = {
      .initial = milliseconds(20), .multiplier = 4, .max = milliseconds(2000)};
  h.make_client(o, provider);
  h.start({"prices/A"});
  ASSERT_TRUE(h.rec().wait_for_stats(h.client(), [](const MqttClientStats& s) {
    return s.login_failures >= 3;
  }));
  const MqttClientStats s = h.client().stats();
  EXPECT_EQ(forced_calls.load(), 1);  // once, then the cooldown holds
  EXPECT_GE(plain_calls.load(), 2);
  EXPECT_EQ(s.credential_refreshes, 1u);
  EXPECT_GE(s.disconnects_token, 3u);
  EXPECT_EQ(s.handshake_failures, 0u);
  EXPECT_EQ(s.epoch, 0u);
  // The refused logins never reset the backoff: the schedule keeps growing
  // (20 ms, x4, ±20 %: the 3rd delay is 320 ms ± 20 %; a reset would start
  // again at 20 ms).
  EXPECT_GE(s.backoff.episode_attempts, 3u);
  EXPECT_EQ(s.backoff.resets, 0u);
  EXPECT_GE(s.backoff.current_delay, milliseconds(250));
  // The secret appears nowhere in the stats' names or the broker's log.
  EXPECT_EQ(h.broker().log_tail(200).find("wrong-password"), std::string::npos);
  h.stop_and_join();
}

TEST(MqttClient, RefusedLoginThenForcedRefreshLogsIn) {
  Harness h(users_broker());
  std::atomic<int> forced_calls{0};
  CredentialsProvider provider =
      [&](bool force, std::function<void(absl::StatusOr<Credentials>)> done) {
        if (force) ++forced_calls;
        // Answered from another thread, as after a REST call.
        std::thread([force, done] {
          done(Credentials{force ? "feed-pw" : "stale", SteadyTime::max()});
        }).detach();
      };
  MqttClientOptions o = test_options(h.broker().url());
  o.credential_use = CredentialUse::password;
  o.username = "feed";
  h.make_client(o, provider);
  h.start({"prices/A"});
  ASSERT_TRUE(h.wait_live());
  const MqttClientStats s = h.client().stats();
  EXPECT_EQ(forced_calls.load(), 1);
  EXPECT_EQ(s.login_failures, 1u);
  EXPECT_EQ(s.disconnects_token, 1u);
  EXPECT_EQ(s.epoch, 1u);  // the first successful login: no gap
  EXPECT_TRUE(h.rec().gaps().empty());
  h.stop_and_join();
}

// Returns how long each stay in `backoff` lasted (until the next attempt).
std::vector<Duration> backoff_waits(const Recorder& rec) {
  std::vector<Duration> waits;
  SteadyTime since{};
  bool in_backoff = false;
  for (const auto& c : rec.states()) {
    if (c.to == ConnectionState::backoff) {
      since = c.at;
      in_backoff = true;
    }
    if (c.to == ConnectionState::connecting && in_backoff) {
      waits.push_back(c.at - since);
      in_backoff = false;
    }
  }
  return waits;
}

TEST(MqttClient, BreakerOpensOnRepeatedRefusalsAndProbes) {
  Harness h(users_broker());
  MqttClientOptions o = test_options(h.broker().url());
  o.credential_use = CredentialUse::password;
  o.username = "feed";
  o.backoff = {.initial = milliseconds(10), .max = milliseconds(20)};
  o.breaker.consecutive_failure_threshold = 2;
  o.breaker.wait_in_open = milliseconds(400);
  o.breaker.permitted_calls_in_half_open = 1;
  h.make_client(o, fixed_secret("wrong-password"));
  h.start({"prices/A"});
  ASSERT_TRUE(h.rec().wait_for_stats(h.client(), [](const MqttClientStats& s) {
    return s.connect_attempts >= 4;
  }));
  const MqttClientStats s = h.client().stats();
  EXPECT_GE(s.breaker_rejections, 1u);
  EXPECT_GE(s.breaker.transitions, 3u);  // open, half-open, open, ...
  // Two refusals open the breaker; from then on each attempt is a probe
  // that waits wait_in_open, not a backoff retry 10-20 ms later.
  const std::vector<Duration> waits = backoff_waits(h.rec());
  ASSERT_GE(waits.size(), 3u);
  EXPECT_LT(waits[0], milliseconds(200));  // backoff (10 ms) + slack
  for (std::size_t k = 1; k < 3; ++k) {
    EXPECT_GE(waits[k], milliseconds(350)) << "wait " << k;
    measure("breaker open: wait before the probe", waits[k]);
  }
  h.stop_and_join();
}

TEST(MqttClient, StalledLinkIsDetectedWithinOneAndAHalfKeepalives) {
  Harness h;
  MqttClientOptions o = test_options(h.proxy_uri());
  o.keepalive = seconds(2);
  h.make_client(o);
  h.start({"prices/A"});
  Publisher pub(h.broker().url());  // straight to the broker
  ASSERT_TRUE(h.wait_live());
  pub.stream("prices/A");
  ASSERT_TRUE(h.rec().wait([&] { return h.rec().total_locked() >= 50; }));
  const SteadyTime stalled_at = SteadyClock::now();
  h.proxy().set_link_mode(0, LinkMode::stall);
  ASSERT_TRUE(h.rec().wait([&] { return !h.rec().gaps_locked().empty(); }))
      << "stalls " << h.client().stats().stalls_detected << " probes "
      << h.client().stats().probes_sent << " state "
      << to_string(h.client().stats().state) << " attempts "
      << h.client().stats().connect_attempts << " links "
      << h.proxy().connections_accepted();
  const GapEvent gap = h.rec().gaps()[0];
  EXPECT_EQ(gap.reason, GapReason::stall);
  std::optional<SteadyTime> detected;
  for (const auto& c : h.rec().states()) {
    if (c.from == ConnectionState::live && c.to == ConnectionState::backoff) {
      detected = c.at;
      break;
    }
  }
  ASSERT_TRUE(detected.has_value());
  const Duration since_stall = *detected - stalled_at;
  const Duration since_last_packet = *detected - gap.disconnected_at;
  measure("keepalive 2 s: stall -> detected", since_stall);
  measure("keepalive 2 s: last packet -> detected", since_last_packet);
  EXPECT_GE(since_last_packet, o.keepalive);
  EXPECT_LE(since_stall, o.keepalive * 3 / 2);
  const MqttClientStats s = h.client().stats();
  EXPECT_EQ(s.stalls_detected, 1u);
  EXPECT_EQ(s.disconnects_stall, 1u);
  // And it recovers by itself on a new link, with the data flowing again.
  ASSERT_TRUE(h.wait_live());
  const std::uint64_t before = h.rec().total();
  ASSERT_TRUE(
      h.rec().wait([&] { return h.rec().total_locked() >= before + 20; }));
  EXPECT_EQ(h.client().stats().epoch, 2u);
  EXPECT_EQ(h.rec().out_of_epoch(), 0u);
  pub.stop_stream();
  h.stop_and_join();
}

TEST(MqttClient, QuietLinkStallIsDetectedByProbes) {
  Harness h;
  MqttClientOptions o = test_options(h.proxy_uri());
  o.keepalive = seconds(1);
  h.make_client(o);
  h.start({"prices/A"});
  ASSERT_TRUE(h.wait_live());
  // No data at all: a healthy quiet link answers the probes and stays up.
  ASSERT_TRUE(h.rec().wait_for_stats(
      h.client(), [](const MqttClientStats& s) { return s.probes_sent >= 2; },
      seconds(10)));
  MqttClientStats s = h.client().stats();
  EXPECT_EQ(s.stalls_detected, 0u);
  EXPECT_EQ(s.connects, 1u);
  EXPECT_EQ(s.state, ConnectionState::live);
  const SteadyTime stalled_at = SteadyClock::now();
  h.proxy().set_link_mode(0, LinkMode::stall);
  ASSERT_TRUE(h.rec().wait([&] { return !h.rec().gaps_locked().empty(); }));
  const Duration took = SteadyClock::now() - stalled_at;
  measure("keepalive 1 s, quiet link: stall -> gap (incl. reconnect)", took);
  EXPECT_EQ(h.rec().gaps()[0].reason, GapReason::stall);
  s = h.client().stats();
  EXPECT_EQ(s.stalls_detected, 1u);
  h.stop_and_join();
}

TEST(MqttClient, AclDeniedTopicIsReportedRejectedWhileOthersFlow) {
  Harness h(users_broker());
  MqttClientOptions o = test_options(h.broker().url());
  o.credential_use = CredentialUse::password;
  o.username = "feed";
  h.make_client(o, fixed_secret("feed-pw"));
  h.start({"prices/A", "secret/B", "prices/C"});
  Publisher pub(h.broker().url(), "pub", "pub-pw");
  ASSERT_TRUE(h.wait_live());
  ASSERT_TRUE(h.rec().wait([&] { return h.rec().rejected_locked() == 1; }));
  const auto rejected = h.rec().rejected();
  EXPECT_EQ(rejected[0].first, "secret/B");
  EXPECT_EQ(rejected[0].second, "SUBACK failure 0x80");
  ASSERT_TRUE(publish_until_received(h, pub, "prices/A", 10));
  ASSERT_TRUE(publish_until_received(h, pub, "prices/C", 10));
  const MqttClientStats s = h.client().stats();
  EXPECT_EQ(s.subscriptions.rejected, 1u);
  EXPECT_EQ(s.subscriptions.rejections, 1u);
  EXPECT_EQ(s.subscriptions.confirmed, 2u);
  EXPECT_EQ(s.subscriptions.subscribes_sent, 3u);  // a refusal is not retried
  EXPECT_EQ(s.connects, 1u);
  EXPECT_EQ(s.state, ConnectionState::live);
  h.stop_and_join();
}

TEST(MqttClient, InvalidTopicFilterIsRefusedByWant) {
  Harness h;
  h.make_client(test_options(h.broker().url()));
  h.start({"prices/A", "bad/#/filter", "a+/b", "$feedkit/probe"});
  ASSERT_TRUE(h.wait_live());
  ASSERT_TRUE(h.rec().wait([&] { return h.rec().rejected_locked() == 3; }));
  const MqttClientStats s = h.client().stats();
  EXPECT_EQ(s.subscriptions.desired, 1u);
  EXPECT_EQ(s.subscriptions.confirmed, 1u);
  EXPECT_EQ(s.connects, 1u);  // the broker never saw the bad filters
  h.stop_and_join();
}

TEST(MqttClient, UnwantUnsubscribesAndTheTopicStops) {
  Harness h;
  h.make_client(test_options(h.broker().url()));
  h.start({"prices/A", "prices/B"});
  Publisher pub(h.broker().url());
  ASSERT_TRUE(h.wait_live());
  ASSERT_TRUE(publish_until_received(h, pub, "prices/B", 3));
  h.client().unwant("prices/B");
  ASSERT_TRUE(h.rec().wait_for_stats(h.client(), [](const MqttClientStats& s) {
    return s.subscriptions.unsubscribe_acks == 1 &&
           s.subscriptions.desired == 1;
  }));
  const std::uint64_t b = h.rec().messages("prices/B");
  pub.flood("prices/B", 20);
  ASSERT_TRUE(publish_until_received(h, pub, "prices/A", 5));  // B is before
  EXPECT_EQ(h.rec().messages("prices/B"), b);
  h.stop_and_join();
}

TEST(MqttClient, FloodIntoStalledConsumerDropsInTheDispatcherAndKeepsUp) {
  using Event = std::variant<Stamped<std::string>, GapEvent>;
  auto dispatcher =
      Dispatcher<Event>::create(
          {.capacity = 1000, .overflow = OverflowPolicy::drop_newest})
          .value();
  // on_message (Paho's thread) and on_gap (the strand) never run
  // concurrently: one producer serves both.
  auto producer = dispatcher->make_producer().value();
  MosquittoBrokerOptions bo;
  bo.max_queued_messages = 1'000'000;  // the broker must not drop either
  Harness h(bo);
  MqttClientCallbacks cb =
      h.rec().callbacks([&](std::string_view, std::string_view payload,
                            SteadyTime t, std::uint64_t e) {
        (void)producer.try_push(
            Event(Stamped<std::string>{std::string(payload), e, t}));
      });
  auto on_gap = cb.on_gap;
  cb.on_gap = [&, on_gap](const GapEvent& gap) {
    producer.push_control(Event(gap));
    on_gap(gap);
  };
  h.make_client(test_options(h.broker().url()), {}, cb);
  h.start({"flood"});
  Publisher pub(h.broker().url());
  ASSERT_TRUE(h.wait_live());
  constexpr std::size_t kFlood = 10'000;
  pub.flood("flood", kFlood);  // nobody polls the dispatcher
  ASSERT_TRUE(h.rec().wait([&] { return h.rec().total_locked() >= kFlood; },
                           seconds(30)));
  const DispatcherStats d = dispatcher->stats();
  EXPECT_EQ(d.offered, kFlood);
  EXPECT_EQ(d.accepted, 1000u);
  EXPECT_EQ(d.dropped_full, kFlood - 1000);
  EXPECT_LE(d.depth, 1000u);
  EXPECT_LE(d.high_water, 1000u);
  const MqttClientStats s = h.client().stats();
  EXPECT_EQ(s.data_frames, kFlood);
  EXPECT_EQ(s.connects, 1u);
  EXPECT_EQ(s.state, ConnectionState::live);
  h.stop_and_join();
}

TEST(MqttClient, WebSocketThroughTheBridgeCarriesTheBearerHeader) {
  Harness h;
  auto bridge = WsTcpBridge::start(
      {.target_port = h.broker().port(), .required_bearer = "tok-2"});
  ASSERT_TRUE(bridge.ok()) << bridge.status();
  // A provider with a cached token that only a forced refresh replaces (by
  // the next one: tok-1, tok-2, ...). Called on the client's strand.
  std::atomic<int> token{1}, calls{0}, forced_calls{0};
  CredentialsProvider provider = [&](bool force,
                                     std::function<void(
                                         absl::StatusOr<Credentials>)>
                                         done) {
    ++calls;
    if (force) {
      ++forced_calls;
      ++token;
    }
    done(Credentials{"tok-" + std::to_string(token.load()), SteadyTime::max()});
  };
  MqttClientOptions o = test_options((*bridge)->url());
  o.credential_use = CredentialUse::bearer_header;
  o.headers = {{"X-Feed", "settrade"}};
  o.auth_refresh_cooldown = milliseconds(0);
  h.make_client(o, provider);
  h.start({"prices/A"});
  Publisher pub(h.broker().url());
  // tok-1 is refused (HTTP 401), a forced refresh gets tok-2.
  ASSERT_TRUE(h.wait_live());
  ASSERT_TRUE(publish_until_received(h, pub, "prices/A", 10));
  EXPECT_EQ((*bridge)->last_header("Authorization"), "Bearer tok-2");
  EXPECT_EQ((*bridge)->last_header("X-Feed"), "settrade");
  EXPECT_EQ((*bridge)->upgrade_requests().back().target, "/mqtt");
  EXPECT_EQ((*bridge)->upgrades_unauthorized(), 1u);
  EXPECT_EQ(forced_calls.load(), 1);
  EXPECT_EQ(h.client().stats().epoch, 1u);
  // The gateway rotates the token and ends the session (token expiry):
  // tok-2 is refused once, tok-3 gets in; one gap, and the data flows.
  (*bridge)->set_required_bearer("tok-3");
  (*bridge)->close_all();
  ASSERT_TRUE(h.rec().wait([&] { return h.rec().gaps_locked().size() == 1; }));
  ASSERT_TRUE(h.wait_live());
  ASSERT_TRUE(publish_until_received(h, pub, "prices/A", 10));
  EXPECT_EQ((*bridge)->last_header("Authorization"), "Bearer tok-3");
  EXPECT_EQ((*bridge)->upgrades_unauthorized(), 2u);
  EXPECT_EQ(forced_calls.load(), 2);
  EXPECT_GE(calls.load(), 4);  // credentials at every connect
  EXPECT_EQ(h.client().stats().epoch, 2u);
  EXPECT_EQ(h.rec().out_of_epoch(), 0u);
  h.stop_and_join();
}

testing::TestCertificate certificate(const std::string& name) {
  const std::string dir =
      (std::filesystem::path(::testing::TempDir()) /
       ("feedkit_mqtt_client_test_" + name + std::to_string(::getpid())))
          .string();
  auto cert = testing::make_test_certificate(dir);
  EXPECT_TRUE(cert.ok()) << cert.status();
  return cert.ok() ? *cert : testing::TestCertificate{};
}

// Returns a loopback port that was free a moment ago (0 on failure).
std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  std::uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

TEST(MqttClient, SslToATlsListenerVerifiesTheBrokerAndGoesLive) {
  const testing::TestCertificate cert = certificate("ssl");
  const std::uint16_t tls_port = free_port();
  ASSERT_NE(tls_port, 0);
  MosquittoBrokerOptions bo;
  bo.extra_config = {absl::StrCat("listener ", tls_port, " 127.0.0.1"),
                     "certfile " + cert.cert_file, "keyfile " + cert.key_file};
  Harness h(bo);
  MqttClientOptions o =
      test_options(absl::StrCat("ssl://localhost:", tls_port));
  o.ca_file = cert.cert_file;
  h.make_client(o);
  h.start({"prices/A"});
  Publisher pub(h.broker().url());  // the plain listener
  ASSERT_TRUE(h.wait_live()) << h.broker().log_tail();
  ASSERT_TRUE(publish_until_received(h, pub, "prices/A", 10));
  EXPECT_EQ(h.client().stats().handshake_failures, 0u);
  h.stop_and_join();
}

TEST(MqttClient, WssWithTrustedCertificateCarriesTheBearerHeader) {
  const testing::TestCertificate cert = certificate("trusted");
  Harness h;
  auto bridge = WsTcpBridge::start({.target_port = h.broker().port(),
                                    .tls = true,
                                    .cert_file = cert.cert_file,
                                    .key_file = cert.key_file,
                                    .required_bearer = "tok"});
  ASSERT_TRUE(bridge.ok()) << bridge.status();
  MqttClientOptions o = test_options((*bridge)->url());
  ASSERT_EQ(o.uri.rfind("wss://localhost:", 0), 0u) << o.uri;
  o.credential_use = CredentialUse::bearer_header;
  o.ca_file = cert.cert_file;
  h.make_client(o, fixed_secret("tok"));
  h.start({"prices/A"});
  Publisher pub(h.broker().url());
  ASSERT_TRUE(h.wait_live());
  ASSERT_TRUE(publish_until_received(h, pub, "prices/A", 10));
  EXPECT_EQ((*bridge)->last_header("Authorization"), "Bearer tok");
  EXPECT_EQ(h.client().stats().handshake_failures, 0u);
  h.stop_and_join();
}

TEST(MqttClient, WssWithUntrustedCertificateIsRefused) {
  const testing::TestCertificate cert = certificate("untrusted");
  const testing::TestCertificate other = certificate("other");
  Harness h;
  auto bridge = WsTcpBridge::start({.target_port = h.broker().port(),
                                    .tls = true,
                                    .cert_file = cert.cert_file,
                                    .key_file = cert.key_file});
  ASSERT_TRUE(bridge.ok()) << bridge.status();
  MqttClientOptions o = test_options((*bridge)->url());
  o.ca_file = other.cert_file;  // trusts another certificate
  h.make_client(o);
  h.start({"prices/A"});
  ASSERT_TRUE(h.rec().wait_for_stats(h.client(), [](const MqttClientStats& s) {
    return s.handshake_failures >= 2;
  }));
  EXPECT_EQ(h.client().stats().connects, 0u);
  EXPECT_EQ((*bridge)->upgrades_completed(), 0u);
  h.stop_and_join();
}

TEST(MqttClient, RefreshesCredentialsBeforeTheyExpire) {
  Harness h;
  std::atomic<int> forced_calls{0};
  CredentialsProvider provider =
      [&](bool force, std::function<void(absl::StatusOr<Credentials>)> done) {
        if (force) ++forced_calls;
        done(Credentials{"k", SteadyClock::now() + milliseconds(1400)});
      };
  MqttClientOptions o = test_options(h.broker().url());
  o.uri = h.broker().url();
  o.credential_use = CredentialUse::password;
  o.username = "anyone";               // anonymous broker: any password is fine
  o.refresh_lead = milliseconds(300);  // refresh ~1.1 s after each fetch
  o.auth_refresh_cooldown = milliseconds(0);
  h.make_client(o, provider);
  h.start({"prices/A"});
  ASSERT_TRUE(h.wait_live());
  ASSERT_TRUE(h.rec().wait_for_stats(h.client(), [](const MqttClientStats& s) {
    return s.credential_refreshes >= 1;
  }));
  EXPECT_GE(forced_calls.load(), 1);
  const MqttClientStats s = h.client().stats();
  EXPECT_EQ(s.connects, 1u);  // refreshed without dropping the connection
  EXPECT_EQ(s.state, ConnectionState::live);
  h.stop_and_join();
}

TEST(MqttClient, ReconnectOnRefreshGivesATokenGap) {
  Harness h;
  CredentialsProvider provider =
      [&](bool, std::function<void(absl::StatusOr<Credentials>)> done) {
        done(Credentials{"k", SteadyClock::now() + milliseconds(3000)});
      };
  MqttClientOptions o = test_options(h.broker().url());
  o.credential_use = CredentialUse::password;
  o.username = "anyone";
  o.refresh_lead = milliseconds(1000);  // 2 s after each fetch
  o.auth_refresh_cooldown = milliseconds(0);
  o.reconnect_on_refresh = true;
  h.make_client(o, provider);
  h.start({"prices/A"});
  ASSERT_TRUE(h.rec().wait([&] { return h.rec().gaps_locked().size() >= 1; }));
  EXPECT_EQ(h.rec().gaps()[0].reason, GapReason::token);
  ASSERT_TRUE(h.wait_live());
  EXPECT_GE(h.client().stats().disconnects_token, 1u);
  h.stop_and_join();
}

TEST(MqttClient, EpochAdvancesOncePerReconnectWithOneGapEventEach) {
  Harness h;
  h.make_client(test_options(h.proxy_uri()));
  h.start({"prices/A"});
  Publisher pub(h.broker().url());
  pub.stream("prices/A", milliseconds(1));
  constexpr std::size_t kCycles = 2;
  for (std::size_t i = 0; i < kCycles; ++i) {
    ASSERT_TRUE(h.wait_live());
    const std::uint64_t before = h.rec().total();
    ASSERT_TRUE(
        h.rec().wait([&] { return h.rec().total_locked() >= before + 5; }));
    if (i % 2 == 0) {
      h.proxy().cut_all();
    } else {
      h.proxy().reset_all();
    }
    ASSERT_TRUE(
        h.rec().wait([&] { return h.rec().gaps_locked().size() == i + 1; }));
  }
  ASSERT_TRUE(h.wait_live());
  pub.stop_stream();
  const auto gaps = h.rec().gaps();
  ASSERT_EQ(gaps.size(), kCycles);
  for (std::size_t i = 0; i < kCycles; ++i) {
    EXPECT_EQ(gaps[i].old_epoch, i + 1);
    EXPECT_EQ(gaps[i].new_epoch, i + 2);
    EXPECT_EQ(gaps[i].reason, GapReason::network);
  }
  const MqttClientStats s = h.client().stats();
  EXPECT_EQ(s.epoch, kCycles + 1);
  EXPECT_EQ(s.reconnects, kCycles);
  EXPECT_EQ(h.rec().out_of_epoch(), 0u);  // no data before its GapEvent
  h.stop_and_join();
}

TEST(MqttClient, ManualReconnectGivesAManualGap) {
  Harness h;
  h.make_client(test_options(h.broker().url()));
  h.start({"prices/A"});
  ASSERT_TRUE(h.wait_live());
  h.client().reconnect(GapReason::manual);
  ASSERT_TRUE(h.rec().wait([&] { return h.rec().gaps_locked().size() == 1; }));
  EXPECT_EQ(h.rec().gaps()[0].reason, GapReason::manual);
  ASSERT_TRUE(h.wait_live());
  EXPECT_EQ(h.client().stats().disconnects_other, 1u);
  h.stop_and_join();
}

TEST(MqttClient, Mqtt5SubackFailureAndRefusedLogin) {
  Harness h(users_broker());
  std::atomic<int> forced_calls{0};
  CredentialsProvider provider =
      [&](bool force, std::function<void(absl::StatusOr<Credentials>)> done) {
        if (force) ++forced_calls;
        done(Credentials{force ? "feed-pw" : "stale", SteadyTime::max()});
      };
  MqttClientOptions o = test_options(h.broker().url());
  o.version = MqttVersion::v5;
  o.credential_use = CredentialUse::password;
  o.username = "feed";
  h.make_client(o, provider);
  h.start({"prices/A", "secret/B"});
  Publisher pub(h.broker().url(), "pub", "pub-pw");
  ASSERT_TRUE(h.wait_live());
  ASSERT_TRUE(h.rec().wait([&] { return h.rec().rejected_locked() == 1; }));
  EXPECT_EQ(h.rec().rejected()[0].first, "secret/B");
  EXPECT_EQ(h.rec().rejected()[0].second, "SUBACK failure 0x87");
  const MqttClientStats s = h.client().stats();
  EXPECT_EQ(forced_calls.load(), 1);
  EXPECT_EQ(s.login_failures, 1u);
  EXPECT_EQ(s.disconnects_token, 1u);
  ASSERT_TRUE(publish_until_received(h, pub, "prices/A", 5));
  h.stop_and_join();
}

// --- stop() from every state ------------------------------------------------

TEST(MqttClient, StopCompletesWhileDisconnected) {
  Harness h;
  h.make_client(test_options(h.broker().url()));
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
}

TEST(MqttClient, StopCompletesWhileConnectingToAStalledLink) {
  Harness h;
  const std::string uri = h.proxy_uri();
  h.proxy().set_new_link_mode(LinkMode::stall);  // CONNECT never answered
  MqttClientOptions o = test_options(uri);
  o.connect_timeout = seconds(10);
  h.make_client(o);
  h.start({"prices/A"});
  ASSERT_TRUE(h.proxy().wait_for(
      [&] { return h.proxy().connections_accepted() == 1; }, seconds(5)));
  EXPECT_EQ(h.client().stats().state, ConnectionState::connecting);
  const Duration took = h.stop_and_join();
  measure("stop() while connecting (Paho mid-connect, stalled link)", took);
  EXPECT_LT(took, milliseconds(500));
  EXPECT_EQ(h.proxy().connections_accepted(), 1u);  // no reconnect after stop
}

TEST(MqttClient, StopCompletesWhileFetchingCredentials) {
  Harness h;
  std::mutex mu;
  std::function<void(absl::StatusOr<Credentials>)> pending;
  CredentialsProvider never =
      [&](bool, std::function<void(absl::StatusOr<Credentials>)> done) {
        std::lock_guard lock(mu);
        pending = std::move(done);  // the REST call never returns
      };
  MqttClientOptions o = test_options(h.broker().url());
  o.credential_use = CredentialUse::password;
  o.username = "u";
  h.make_client(o, never);
  h.start({"prices/A"});
  ASSERT_TRUE(h.rec().wait(
      [&] { return h.rec().state_locked() == ConnectionState::connecting; }));
  const Duration took = h.stop_and_join();
  measure("stop() while fetching credentials", took);
  EXPECT_LT(took, milliseconds(500));
  // The answer arrives after stop: ignored.
  std::lock_guard lock(mu);
  ASSERT_TRUE(pending);
  pending(Credentials{"late", SteadyTime::max()});
  EXPECT_EQ(h.client().stats().state, ConnectionState::stopped);
  EXPECT_EQ(h.client().stats().connects, 0u);
}

TEST(MqttClient, StopCompletesWhileSubscribing) {
  Harness h;
  MqttClientOptions o = test_options(h.broker().url());
  o.subscriptions.pacing = {.rate_per_second = 1, .burst = 1};  // 1 per s
  h.make_client(o);
  h.start({"prices/A", "prices/B", "prices/C"});
  ASSERT_TRUE(h.rec().wait(
      [&] { return h.rec().state_locked() == ConnectionState::subscribing; }));
  const Duration took = h.stop_and_join();
  measure("stop() while subscribing", took);
  EXPECT_LT(took, milliseconds(500));
  EXPECT_EQ(h.client().stats().subscriptions.pending, 0u);
}

TEST(MqttClient, StopCompletesWhileLive) {
  Harness h;
  h.make_client(test_options(h.broker().url()));
  h.start({"prices/A"});
  Publisher pub(h.broker().url());
  ASSERT_TRUE(h.wait_live());
  pub.stream("prices/A", milliseconds(1));
  ASSERT_TRUE(h.rec().wait([&] { return h.rec().total_locked() >= 5; }));
  const Duration took = h.stop_and_join();
  measure("stop() while live (messages flowing)", took);
  EXPECT_LT(took, milliseconds(500));
  pub.stop_stream();
  EXPECT_EQ(h.client().stats().connects, 1u);
}

TEST(MqttClient, StopCompletesWhileInBackoff) {
  Harness h({}, /*start_broker=*/false);
  MqttClientOptions o = test_options(h.broker().url());
  o.backoff = {.initial = seconds(30), .max = seconds(60)};
  h.make_client(o);
  h.start({"prices/A"});
  ASSERT_TRUE(h.rec().wait(
      [&] { return h.rec().state_locked() == ConnectionState::backoff; }));
  const Duration took = h.stop_and_join();
  measure("stop() while in backoff", took);
  EXPECT_LT(took, milliseconds(500));
  EXPECT_EQ(h.client().stats().connect_attempts, 1u);
}

TEST(MqttClient, StopTwiceCallsBothDones) {
  Harness h;
  h.make_client(test_options(h.broker().url()));
  h.start({"prices/A"});
  ASSERT_TRUE(h.wait_live());
  std::atomic<int> first{0};
  h.client().stop([&] { ++first; });
  h.stop_and_join();  // the second stop(); waits for its done and run()
  EXPECT_EQ(first.load(), 1);
}

}  // namespace
}  // namespace feedkit
