// Test that header file is self-contained.
#include "feedkit/prometheus_bridge.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "feedkit/testing/fake_clock.h"
#include "feedkit/trading_calendar.h"
#include "feedkit/ws_client.h"
#include "prometheus/check_names.h"
#include "prometheus/counter.h"
#include "support/bridge_sources.h"

// The bridge is checked on the metric families it returns (no HTTP here:
// tests/status_server_test.cc scrapes a real server). Time is a FakeClock.

namespace feedkit {
namespace {

using ::prometheus::MetricFamily;
using ::prometheus::MetricType;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Labels = std::map<std::string, std::string>;

const MetricFamily* find_family(const std::vector<MetricFamily>& families,
                                const std::string& name) {
  for (const auto& f : families) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

// Returns the value of the sample of `name` whose labels are exactly
// `labels`, or nullopt.
std::optional<double> sample(const std::vector<MetricFamily>& families,
                             const std::string& name, const Labels& labels) {
  const MetricFamily* f = find_family(families, name);
  if (f == nullptr) return std::nullopt;
  for (const auto& m : f->metric) {
    Labels got;
    for (const auto& l : m.label) got[l.name] = l.value;
    if (got != labels) continue;
    return f->type == MetricType::Counter ? m.counter.value : m.gauge.value;
  }
  return std::nullopt;
}

// Every label name used by any sample.
std::set<std::string> label_names(const std::vector<MetricFamily>& families) {
  std::set<std::string> out;
  for (const auto& f : families) {
    for (const auto& m : f.metric) {
      for (const auto& l : m.label) out.insert(l.name);
    }
  }
  return out;
}

double unix_seconds(WallTime t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

// Monday 2026-01-19 at `hh:mm` KST (UTC+9) as wall time.
WallTime kst(int hh, int mm) {
  using namespace std::chrono;
  return sys_days{2026y / January / 19} + hours(hh - 9) + minutes(mm);
}

ConnectionStats sample_connection() {
  ConnectionStats s;
  s.state = ConnectionState::backoff;
  s.time_in_state = milliseconds(1500);
  s.epoch = 3;
  s.connects = 3;
  s.reconnects = 2;
  s.disconnects_stall = 1;
  s.disconnects_server_close = 1;
  s.parse_errors = 4;
  s.subscriptions.desired = 6;
  s.subscriptions.confirmed = 5;
  s.subscriptions.pending = 1;
  s.subscriptions.rejections = 2;
  s.backoff.current_delay = milliseconds(250);
  s.breaker.state = CircuitState::open;
  s.breaker.transitions = 1;
  return s;
}

TEST(PrometheusBridge, ExportsConnectionStateAsStateSetAndDisconnectsByReason) {
  PrometheusBridge bridge;
  const ConnectionStats s = sample_connection();
  ASSERT_TRUE(bridge.add_connection("kis-0", [&] { return s; }).ok());
  const auto families = bridge.Collect();

  const MetricFamily* state = find_family(families, "feedkit_connection_state");
  ASSERT_NE(state, nullptr);
  EXPECT_EQ(state->type, MetricType::Gauge);
  EXPECT_EQ(state->metric.size(), 7u);  // one per ConnectionState
  double ones = 0;
  for (const auto& m : state->metric) ones += m.gauge.value;
  EXPECT_EQ(ones, 1);
  const Labels c{{"connection", "kis-0"}};
  EXPECT_EQ(sample(families, "feedkit_connection_state",
                   {{"connection", "kis-0"}, {"state", "backoff"}}),
            1);
  EXPECT_EQ(sample(families, "feedkit_connection_state",
                   {{"connection", "kis-0"}, {"state", "live"}}),
            0);
  EXPECT_EQ(sample(families, "feedkit_connection_epoch", c), 3);
  EXPECT_EQ(sample(families, "feedkit_connection_reconnects_total", c), 2);
  EXPECT_EQ(sample(families, "feedkit_connection_time_in_state_seconds", c),
            1.5);
  EXPECT_EQ(sample(families, "feedkit_connection_parse_errors_total", c), 4);
  EXPECT_EQ(sample(families, "feedkit_connection_disconnects_total",
                   {{"connection", "kis-0"}, {"reason", "stall"}}),
            1);
  EXPECT_EQ(sample(families, "feedkit_connection_disconnects_total",
                   {{"connection", "kis-0"}, {"reason", "server_close"}}),
            1);
  EXPECT_EQ(sample(families, "feedkit_connection_disconnects_total",
                   {{"connection", "kis-0"}, {"reason", "network"}}),
            0);
  // Subscriptions and backoff carry the connection label ...
  EXPECT_EQ(sample(families, "feedkit_subscriptions",
                   {{"connection", "kis-0"}, {"state", "pending"}}),
            1);
  EXPECT_EQ(sample(families, "feedkit_subscriptions",
                   {{"connection", "kis-0"}, {"state", "confirmed"}}),
            5);
  EXPECT_EQ(sample(families, "feedkit_subscription_replies_total",
                   {{"connection", "kis-0"}, {"reply", "rejected"}}),
            2);
  EXPECT_EQ(sample(families, "feedkit_backoff_delay_seconds", c), 0.25);
  // ... and the connection's breaker is breaker=<connection name>.
  EXPECT_EQ(sample(families, "feedkit_breaker_state",
                   {{"breaker", "kis-0"}, {"state", "open"}}),
            1);
  EXPECT_EQ(sample(families, "feedkit_breaker_transitions_total",
                   {{"breaker", "kis-0"}}),
            1);
  // Unknown breaker rates are absent, not -1.
  EXPECT_EQ(find_family(families, "feedkit_breaker_failure_rate_percent"),
            nullptr);
}

TEST(PrometheusBridge, ReadsSnapshotsAtEachScrape) {
  PrometheusBridge bridge;
  ConnectionStats s;
  ASSERT_TRUE(bridge.add_connection("c", [&] { return s; }).ok());
  const Labels c{{"connection", "c"}};
  EXPECT_EQ(sample(bridge.Collect(), "feedkit_connection_epoch", c), 0);
  s.epoch = 2;
  s.reconnects = 1;
  const auto families = bridge.Collect();
  EXPECT_EQ(sample(families, "feedkit_connection_epoch", c), 2);
  EXPECT_EQ(sample(families, "feedkit_connection_reconnects_total", c), 1);
}

TEST(PrometheusBridge, TakesWsClientStatsAsConnectionStats) {
  PrometheusBridge bridge;
  WsClientStats ws;
  ws.reconnects = 7;
  ws.notices = 9;  // WebSocket-only: not exported
  ASSERT_TRUE(bridge.add_connection("ws", [&] { return ws; }).ok());
  EXPECT_EQ(sample(bridge.Collect(), "feedkit_connection_reconnects_total",
                   {{"connection", "ws"}}),
            7);
}

TEST(PrometheusBridge, CountsDispatcherDropsByReason) {
  auto newest = Dispatcher<int>::create(
                    {.capacity = 4, .overflow = OverflowPolicy::drop_newest})
                    .value();
  auto oldest = Dispatcher<int>::create(
                    {.capacity = 4, .overflow = OverflowPolicy::drop_oldest})
                    .value();
  for (auto* d : {newest.get(), oldest.get()}) {
    auto producer = d->make_producer().value();
    for (int i = 0; i < 10; ++i) (void)producer.try_push(i);
    std::vector<Polled<int>> batch;
    d->poll(batch, 2, milliseconds(0));
  }
  PrometheusBridge bridge;
  ASSERT_TRUE(
      bridge.add_dispatcher("newest", [&] { return newest->stats(); }).ok());
  ASSERT_TRUE(
      bridge.add_dispatcher("oldest", [&] { return oldest->stats(); }).ok());
  const auto families = bridge.Collect();

  for (const char* name : {"newest", "oldest"}) {
    const Labels d{{"dispatcher", name}};
    EXPECT_EQ(sample(families, "feedkit_dispatcher_offered_total", d), 10);
    // accepted = offered - dropped, either way
    EXPECT_EQ(sample(families, "feedkit_dispatcher_accepted_total", d), 4);
    EXPECT_EQ(sample(families, "feedkit_dispatcher_polled_total", d), 2);
    EXPECT_EQ(sample(families, "feedkit_dispatcher_depth", d), 2);
    EXPECT_EQ(sample(families, "feedkit_dispatcher_capacity", d), 4);
    EXPECT_EQ(sample(families, "feedkit_dispatcher_fill_ratio", d), 0.5);
  }
  auto dropped = [&](const char* dispatcher, const char* reason) {
    return sample(families, "feedkit_dispatcher_dropped_total",
                  {{"dispatcher", dispatcher}, {"reason", reason}});
  };
  EXPECT_EQ(dropped("newest", "full"), 6);
  EXPECT_EQ(dropped("newest", "evicted"), 0);
  EXPECT_EQ(dropped("oldest", "full"), 0);
  EXPECT_EQ(dropped("oldest", "evicted").value_or(0) +
                dropped("oldest", "contended").value_or(0),
            6);
  EXPECT_EQ(find_family(families, "feedkit_dispatcher_dropped_total")->type,
            MetricType::Counter);
}

TEST(PrometheusBridge, ExportsFeedHealthWithSessionAndUnixTimestamps) {
  testing::FakeClock clock;
  const auto krx =
      SessionCalendar::create(SessionCalendarOptions::krx()).value();
  FeedHealthOptions o;
  o.expected_interval = seconds(10);  // stale after 24 s
  o.feed_timeout = seconds(60);
  o.open_grace = seconds(0);
  auto health = FeedHealth::create(o, &krx).value();
  const SymbolId a = health.expect("A");
  const SymbolId b = health.expect("B");
  health.expect("C");  // never received
  std::vector<HealthTransition> transitions;
  health.evaluate(clock.now(), kst(10, 0), transitions);
  health.record(a, clock.now());
  clock.advance(seconds(20));
  health.record(b, clock.now());
  clock.advance(seconds(10));  // A silent 30 s: stale; B 10 s: fresh
  health.evaluate(clock.now(), kst(10, 0) + seconds(30), transitions);

  PrometheusBridge bridge(clock);
  SnapshotCell<FeedHealthStats> cell;
  cell.publish(health.stats());
  ASSERT_TRUE(bridge.add_feed_health("kis", cell.reader()).ok());
  const double before = unix_seconds(std::chrono::system_clock::now());
  auto families = bridge.Collect();
  const double after = unix_seconds(std::chrono::system_clock::now());

  const Labels f{{"feed", "kis"}};
  auto state = [&](const char* s) {
    return sample(families, "feedkit_feed_symbols",
                  {{"feed", "kis"}, {"state", s}});
  };
  EXPECT_EQ(sample(families, "feedkit_feed_in_session", f), 1);
  EXPECT_EQ(sample(families, "feedkit_feed_expected_symbols", f), 3);
  EXPECT_EQ(state("stale"), 2);  // A, and C (never seen, aged 30 s)
  EXPECT_EQ(state("fresh"), 1);
  EXPECT_EQ(sample(families, "feedkit_feed_never_received_symbols", f), 1);
  EXPECT_EQ(sample(families, "feedkit_feed_state",
                   {{"feed", "kis"}, {"state", "fresh"}}),
            1);
  // The newest event (B's) was 10 s before the scrape's steady time.
  const auto last =
      sample(families, "feedkit_feed_last_event_timestamp_seconds", f);
  ASSERT_TRUE(last);
  EXPECT_GE(*last, before - 10 - 0.01);
  EXPECT_LE(*last, after - 10 + 0.01);
  const auto evaluated =
      sample(families, "feedkit_feed_last_evaluation_timestamp_seconds", f);
  ASSERT_TRUE(evaluated);
  EXPECT_GE(*evaluated, before - 0.01);
  EXPECT_LE(*evaluated, after + 0.01);

  // After the close: suspended, out of session.
  health.evaluate(clock.now(), kst(15, 30), transitions);
  cell.publish(health.stats());
  families = bridge.Collect();
  EXPECT_EQ(sample(families, "feedkit_feed_in_session", f), 0);
  EXPECT_EQ(state("suspended"), 3);
  EXPECT_EQ(state("stale"), 0);
}

TEST(PrometheusBridge, NeverSeenFeedHasZeroTimestamps) {
  PrometheusBridge bridge;
  ASSERT_TRUE(
      bridge.add_feed_health("f", [] { return FeedHealthStats{}; }).ok());
  const auto families = bridge.Collect();
  EXPECT_EQ(sample(families, "feedkit_feed_last_event_timestamp_seconds",
                   {{"feed", "f"}}),
            0);
  EXPECT_EQ(sample(families, "feedkit_feed_last_evaluation_timestamp_seconds",
                   {{"feed", "f"}}),
            0);
}

TEST(PrometheusBridge, HasNoSymbolLabelsUnlessAsked) {
  testing::FakeClock clock;
  auto health = FeedHealth::create({}).value();
  const SymbolId a = health.expect("005930");
  health.expect("000660");
  health.record(a, clock.now());
  std::vector<HealthTransition> transitions;
  health.evaluate(clock.now(), transitions);

  PrometheusBridge bridge(clock);
  SnapshotCell<FeedHealthStats> stats;
  stats.publish(health.stats());
  ASSERT_TRUE(bridge.add_feed_health("kis", stats.reader()).ok());
  EXPECT_EQ(label_names(bridge.Collect()).count("symbol"), 0u);

  SnapshotCell<std::vector<SymbolHealth>> symbols;
  symbols.publish(symbol_health(health, clock.now()));
  ASSERT_TRUE(bridge.add_symbol_health("kis", symbols.reader()).ok());
  const auto families = bridge.Collect();
  EXPECT_EQ(find_family(families, "feedkit_symbol_state")->metric.size(),
            2u * 5u);  // 2 symbols x 5 states
  EXPECT_EQ(sample(families, "feedkit_symbol_state",
                   {{"feed", "kis"}, {"symbol", "005930"}, {"state", "fresh"}}),
            1);
  EXPECT_EQ(
      sample(families, "feedkit_symbol_state",
             {{"feed", "kis"}, {"symbol", "000660"}, {"state", "never_seen"}}),
      1);
  EXPECT_EQ(sample(families, "feedkit_symbol_last_event_timestamp_seconds",
                   {{"feed", "kis"}, {"symbol", "000660"}}),
            0);
  EXPECT_GT(*sample(families, "feedkit_symbol_last_event_timestamp_seconds",
                    {{"feed", "kis"}, {"symbol", "005930"}}),
            0);
}

TEST(PrometheusBridge, ExportsStandaloneBreakerStateAndTransitions) {
  testing::FakeClock clock;
  CircuitBreakerOptions o;
  o.consecutive_failure_threshold = 2;
  auto breaker = CircuitBreaker::create(o).value();
  for (int i = 0; i < 2; ++i) {
    auto permit = breaker.try_acquire(clock.now());
    ASSERT_TRUE(permit);
    breaker.record(*permit, clock.now(), /*success=*/false);
  }
  SnapshotCell<CircuitBreakerStats> cell;
  cell.publish(breaker.stats(clock.now()));
  PrometheusBridge bridge(clock);
  ASSERT_TRUE(bridge.add_breaker("token", cell.reader()).ok());
  const auto families = bridge.Collect();
  EXPECT_EQ(find_family(families, "feedkit_breaker_state")->metric.size(), 6u);
  EXPECT_EQ(sample(families, "feedkit_breaker_state",
                   {{"breaker", "token"}, {"state", "open"}}),
            1);
  EXPECT_EQ(sample(families, "feedkit_breaker_state",
                   {{"breaker", "token"}, {"state", "closed"}}),
            0);
  EXPECT_EQ(sample(families, "feedkit_breaker_transitions_total",
                   {{"breaker", "token"}}),
            1);
}

TEST(PrometheusBridge, ExportsEveryEscalationRung) {
  EscalationStats s;
  s.resubscribes = 4;
  s.reconnects = 2;
  s.exhausted = 1;
  s.recovered_after_resubscribe = 3;
  s.climbing = 1;
  PrometheusBridge bridge;
  ASSERT_TRUE(bridge.add_escalation("kis-0", [&] { return s; }).ok());
  const auto families = bridge.Collect();
  const Labels c{{"connection", "kis-0"}};
  EXPECT_EQ(sample(families, "feedkit_escalation_resubscribes_total", c), 4);
  EXPECT_EQ(sample(families, "feedkit_escalation_reconnects_total", c), 2);
  EXPECT_EQ(sample(families, "feedkit_escalation_exhausted_total", c), 1);
  EXPECT_EQ(sample(families, "feedkit_escalation_recovered_total",
                   {{"connection", "kis-0"}, {"rung", "resubscribe"}}),
            3);
  EXPECT_EQ(sample(families, "feedkit_escalation_climbing_symbols", c), 1);
}

TEST(PrometheusBridge, RejectsEmptyAndDuplicateRegistrations) {
  PrometheusBridge bridge;
  auto conn = [] { return ConnectionStats{}; };
  auto breaker = [] { return CircuitBreakerStats{}; };
  EXPECT_EQ(bridge.add_connection("", conn).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bridge.add_connection("c", nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bridge.add_dispatcher("d", nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(bridge.add_connection("c", conn).ok());
  EXPECT_EQ(bridge.add_connection("c", conn).code(),
            absl::StatusCode::kAlreadyExists);
  // A connection's breaker is breaker="c": a standalone "c" would collide.
  const absl::Status clash = bridge.add_breaker("c", breaker);
  EXPECT_EQ(clash.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(clash.message().find("'c'"), absl::string_view::npos);
  ASSERT_TRUE(bridge.add_breaker("b", breaker).ok());
  EXPECT_EQ(bridge.add_connection("b", conn).code(),
            absl::StatusCode::kAlreadyExists);
  // Other labels are separate name spaces.
  EXPECT_TRUE(
      bridge.add_escalation("c", [] { return EscalationStats{}; }).ok());
  EXPECT_TRUE(
      bridge.add_feed_health("c", [] { return FeedHealthStats{}; }).ok());
  EXPECT_TRUE(
      bridge.add_symbol_health("c", [] { return std::vector<SymbolHealth>{}; })
          .ok());
}

TEST(PrometheusBridge, ExportsTheUsersRegistryAfterFeedkitFamilies) {
  PrometheusBridge bridge;
  ASSERT_TRUE(
      bridge.add_connection("c", [] { return ConnectionStats{}; }).ok());
  auto& family = ::prometheus::BuildCounter()
                     .Name("collector_lines_written_total")
                     .Help("Lines written.")
                     .Register(bridge.registry());
  family.Add({}).Increment(3);
  const auto families = bridge.Collect();
  ASSERT_FALSE(families.empty());
  EXPECT_EQ(families.back().name, "collector_lines_written_total");
  EXPECT_EQ(sample(families, "collector_lines_written_total", {}), 3);
}

TEST(PrometheusBridge, NamesFollowPrometheusConventions) {
  PrometheusBridge bridge;
  ConnectionStats c = sample_connection();
  c.subscriptions.learned_cap = 20;
  c.breaker.failure_rate = 50;
  c.breaker.slow_call_rate = 0;
  testing::add_every_source(bridge, c);
  const auto families = bridge.Collect();
  EXPECT_GE(families.size(), 70u);

  std::set<std::string> names;
  for (const auto& f : families) {
    SCOPED_TRACE(f.name);
    EXPECT_TRUE(names.insert(f.name).second) << "family listed twice";
    EXPECT_TRUE(::prometheus::CheckMetricName(f.name));
    EXPECT_EQ(f.name.rfind("feedkit_", 0), 0u);
    EXPECT_FALSE(f.help.empty());
    const bool total = f.name.size() > 6 &&
                       f.name.compare(f.name.size() - 6, 6, "_total") == 0;
    EXPECT_EQ(total, f.type == MetricType::Counter)
        << "counters, and only counters, end in _total";
    EXPECT_TRUE(f.type == MetricType::Counter || f.type == MetricType::Gauge);
    std::set<Labels> series;
    for (const auto& m : f.metric) {
      Labels labels;
      for (const auto& l : m.label) {
        EXPECT_TRUE(::prometheus::CheckLabelName(l.name)) << l.name;
        labels[l.name] = l.value;
      }
      EXPECT_TRUE(series.insert(labels).second) << "a series listed twice";
    }
  }
}

TEST(PrometheusBridge, SerializesTheTextFormatWithEscapedNames) {
  PrometheusBridge bridge;
  ConnectionStats s;
  s.reconnects = 2;
  ASSERT_TRUE(bridge.add_connection("kis-0", [&] { return s; }).ok());
  ASSERT_TRUE(bridge.add_connection("a\"b\\c\nd", [&] { return s; }).ok());
  const std::string text = bridge.serialize();
  EXPECT_NE(text.find("# TYPE feedkit_connection_reconnects_total counter\n"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE feedkit_connection_epoch gauge\n"),
            std::string::npos);
  EXPECT_NE(
      text.find(
          "feedkit_connection_reconnects_total{connection=\"kis-0\"} 2\n"),
      std::string::npos);
  EXPECT_NE(text.find("connection=\"a\\\"b\\\\c\\nd\""), std::string::npos);
  EXPECT_EQ(text.find("a\"b"), std::string::npos);  // never unescaped
}

TEST(PrometheusBridge, RegistersWhileScrapingFromAnotherThread) {
  PrometheusBridge bridge;
  constexpr int kSources = 200;
  std::thread registrar([&] {
    for (int i = 0; i < kSources; ++i) {
      ConnectionStats s;
      s.epoch = static_cast<std::uint64_t>(i);
      ASSERT_TRUE(
          bridge.add_connection("c" + std::to_string(i), [s] { return s; })
              .ok());
    }
  });
  std::size_t last_seen = 0;
  while (last_seen < kSources) {
    const auto families = bridge.Collect();
    const MetricFamily* f = find_family(families, "feedkit_connection_epoch");
    const std::size_t seen = f ? f->metric.size() : 0;
    EXPECT_GE(seen, last_seen);  // sources never disappear
    last_seen = seen;
  }
  registrar.join();
  EXPECT_EQ(sample(bridge.Collect(), "feedkit_connection_epoch",
                   {{"connection", "c199"}}),
            199);
}

TEST(SnapshotCell, ReaderReturnsTheLatestPublishedValue) {
  SnapshotCell<EscalationStats> cell;
  const auto read = cell.reader();
  EXPECT_EQ(read().reconnects, 0u);
  EscalationStats s;
  s.reconnects = 5;
  cell.publish(s);
  EXPECT_EQ(read().reconnects, 5u);
  EXPECT_EQ(cell.get().reconnects, 5u);
}

}  // namespace
}  // namespace feedkit
