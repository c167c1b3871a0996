// Test that header file is self-contained.
#include "feedkit/feed_health.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ostream>
#include <string>
#include <vector>

#include "feedkit/testing/fake_clock.h"
#include "feedkit/trading_calendar.h"

namespace feedkit {

// Readable gtest failure messages.
void PrintTo(HealthState s, std::ostream* os) { *os << to_string(s); }
void PrintTo(SymbolId id, std::ostream* os) {
  *os << "#" << static_cast<std::uint32_t>(id);
}
void PrintTo(const HealthTransition& t, std::ostream* os) {
  *os << "{";
  if (t.is_feed()) {
    *os << "feed";
  } else {
    PrintTo(t.symbol, os);
  }
  *os << " " << to_string(t.from) << "->" << to_string(t.to) << " at "
      << t.at.time_since_epoch().count() << "ns}";
}

namespace {

using namespace std::chrono_literals;
using std::chrono::sys_days;
using std::chrono::year_month_day;
using Transitions = std::vector<HealthTransition>;

constexpr SteadyTime kT0 = testing::FakeClock::kEpoch;
constexpr Duration kNs(1);

// 2026-01-14 is a Wednesday; 01-16 a Friday, 01-17 and 01-18 the weekend.
constexpr year_month_day kWed{std::chrono::year(2026), std::chrono::January,
                              std::chrono::day(14)};
constexpr year_month_day kThu{std::chrono::year(2026), std::chrono::January,
                              std::chrono::day(15)};
constexpr year_month_day kFri{std::chrono::year(2026), std::chrono::January,
                              std::chrono::day(16)};
constexpr year_month_day kSat{std::chrono::year(2026), std::chrono::January,
                              std::chrono::day(17)};
constexpr year_month_day kSun{std::chrono::year(2026), std::chrono::January,
                              std::chrono::day(18)};
constexpr year_month_day kMon{std::chrono::year(2026), std::chrono::January,
                              std::chrono::day(19)};
static_assert(std::chrono::weekday(sys_days(kWed)) == std::chrono::Wednesday);
static_assert(std::chrono::weekday(sys_days(kSat)) == std::chrono::Saturday);

// Wall-clock time `h:m:s` on local date `day` in a zone `offset` east of UTC.
WallTime local(year_month_day day, int h, int m, int s,
               std::chrono::hours offset) {
  return WallTime(sys_days(day) + std::chrono::hours(h) +
                  std::chrono::minutes(m) + std::chrono::seconds(s) - offset);
}
WallTime kst(year_month_day day, int h, int m, int s = 0) {
  return local(day, h, m, s, 9h);
}
WallTime ict(year_month_day day, int h, int m, int s = 0) {
  return local(day, h, m, s, 7h);
}

// The steady time that goes with wall time `w`: both clocks move together.
SteadyTime steady(WallTime w) {
  return kT0 +
         std::chrono::duration_cast<Duration>(w - WallTime(sys_days(kWed)));
}

// Options for tests without a calendar: no grace, so thresholds show plainly.
// Suspect after 12 s, stale after 24 s, feed stale after 5 s.
FeedHealthOptions no_grace() {
  FeedHealthOptions o;
  o.open_grace = Duration::zero();
  return o;
}

FeedHealth make(FeedHealthOptions o = no_grace(),
                const TradingCalendar* calendar = nullptr) {
  return FeedHealth::create(o, calendar).value();
}

Transitions eval(FeedHealth& h, SteadyTime now) {
  Transitions out;
  h.evaluate(now, out);
  return out;
}

Transitions eval_at(FeedHealth& h, WallTime w) {
  Transitions out;
  h.evaluate(steady(w), w, out);
  return out;
}

HealthTransition symbol_event(SymbolId id, HealthState from, HealthState to,
                              SteadyTime at) {
  return {id, from, to, at};
}
HealthTransition feed_event(HealthState from, HealthState to, SteadyTime at) {
  return {kFeedId, from, to, at};
}

SessionCalendar krx() {
  return SessionCalendar::create(SessionCalendarOptions::krx()).value();
}
SessionCalendar set() {
  return SessionCalendar::create(SessionCalendarOptions::thailand_set())
      .value();
}

// ---------------------------------------------------------------- options

TEST(FeedHealth, RejectsInvalidOptionsNamingTheField) {
  struct Case {
    FeedHealthOptions options;
    std::string field;
  };
  std::vector<Case> cases;
  auto add = [&](std::string field, auto mutate) {
    FeedHealthOptions o;
    mutate(o);
    cases.push_back({o, field});
  };
  add("expected_interval", [](auto& o) { o.expected_interval = 0s; });
  add("expected_interval", [](auto& o) { o.expected_interval = 24h * 8; });
  add("suspect_factor", [](auto& o) { o.suspect_factor = 0.9; });
  add("suspect_factor", [](auto& o) { o.suspect_factor = std::nan(""); });
  add("stale_factor", [](auto& o) { o.stale_factor = 1.1; });  // < 1.2
  add("feed_timeout", [](auto& o) { o.feed_timeout = -1s; });
  add("open_grace", [](auto& o) { o.open_grace = -1ns; });
  add("open_grace", [](auto& o) { o.open_grace = 25h; });
  add("recover_after", [](auto& o) { o.recover_after = 0; });
  for (const Case& c : cases) {
    absl::Status s = c.options.validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_NE(s.message().find(c.field), std::string::npos) << s.message();
    EXPECT_FALSE(FeedHealth::create(c.options).ok()) << c.field;
  }
  EXPECT_TRUE(FeedHealthOptions::suggested().validate().ok());
  EXPECT_EQ(FeedHealthOptions::suggested().symbol_timeout(), 24s);
}

TEST(FeedHealth, RejectsAnOutOfRangeSymbolTimeout) {
  FeedHealth h = make();
  SymbolId a = h.expect("A");
  absl::Status s = h.set_symbol_timeout(a, 0s);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("timeout"), std::string::npos);
  EXPECT_NE(s.message().find("A"), std::string::npos);
  EXPECT_EQ(h.symbol_timeout(a), 24s);  // unchanged
}

// ---------------------------------------------------------------- registry

TEST(FeedHealth, ExpectHandsOutDenseIdsAndIsIdempotent) {
  FeedHealth h = make();
  SymbolId a = h.expect("005930");
  SymbolId b = h.expect("000660");
  EXPECT_EQ(static_cast<std::uint32_t>(a), 0u);
  EXPECT_EQ(static_cast<std::uint32_t>(b), 1u);
  EXPECT_EQ(h.expect("005930"), a);
  EXPECT_EQ(h.size(), 2u);
  EXPECT_EQ(h.name(b), "000660");
  EXPECT_EQ(h.find(std::string("000660")), b);
  EXPECT_EQ(h.find("035720"), std::nullopt);
}

TEST(FeedHealth, RecordByNameUpdatesTheExpectedSymbol) {
  FeedHealth h = make();
  SymbolId a = h.expect("A");
  EXPECT_TRUE(h.record(std::string_view("A"), kT0 + 3s));
  EXPECT_EQ(h.last_received(a), kT0 + 3s);
  EXPECT_EQ(h.stats().records, 1u);
}

TEST(FeedHealth, UnknownNameIsCountedAndDroppedButKeepsTheFeedAlive) {
  FeedHealth h = make();
  h.expect("A");
  eval(h, kT0);
  EXPECT_FALSE(h.record("ZZZ", kT0 + 1s));
  EXPECT_EQ(h.size(), 1u);
  EXPECT_EQ(h.find("ZZZ"), std::nullopt);
  FeedHealthStats st = h.stats();
  EXPECT_EQ(st.unexpected_records, 1u);
  EXPECT_EQ(st.records, 0u);
  EXPECT_EQ(st.last_record, kT0 + 1s);
  // The feed as a whole did receive something.
  EXPECT_EQ(h.feed_state(kT0 + 6s), HealthState::fresh);
  EXPECT_EQ(h.feed_state(kT0 + 6s + kNs), HealthState::stale);
}

TEST(FeedHealth, AutoExpectRegistersAnUnknownName) {
  FeedHealthOptions o = no_grace();
  o.auto_expect_unknown = true;
  FeedHealth h = make(o);
  EXPECT_TRUE(h.record("NEW", kT0));
  ASSERT_TRUE(h.find("NEW").has_value());
  EXPECT_EQ(h.last_received(*h.find("NEW")), kT0);
  EXPECT_EQ(h.stats().auto_expected, 1u);
  EXPECT_EQ(h.stats().unexpected_records, 0u);
  EXPECT_TRUE(h.record("NEW", kT0 + 1s));
  EXPECT_EQ(h.stats().auto_expected, 1u);
  EXPECT_EQ(h.size(), 1u);
}

// ---------------------------------------------------------------- thresholds

TEST(FeedHealth, SuspectOnlyWhenSilenceExceedsTheSuspectThreshold) {
  FeedHealth h = make();
  SymbolId a = h.expect("A");
  eval(h, kT0);
  h.record(a, kT0);
  EXPECT_EQ(h.state(a, kT0 + 12s - kNs), HealthState::fresh);
  EXPECT_EQ(h.state(a, kT0 + 12s), HealthState::fresh);
  EXPECT_EQ(h.state(a, kT0 + 12s + kNs), HealthState::suspect);
}

TEST(FeedHealth, StaleOnlyWhenSilenceExceedsTheTimeout) {
  FeedHealth h = make();
  SymbolId a = h.expect("A");
  eval(h, kT0);
  h.record(a, kT0);
  EXPECT_EQ(h.state(a, kT0 + 24s - kNs), HealthState::suspect);
  EXPECT_EQ(h.state(a, kT0 + 24s), HealthState::suspect);
  EXPECT_EQ(h.state(a, kT0 + 24s + kNs), HealthState::stale);
}

TEST(FeedHealth, SilenceCountsFromTheReceiveTimeNotTheRecordCall) {
  FeedHealth h = make();
  SymbolId a = h.expect("A");
  eval(h, kT0);
  // Recorded late (queue delay): the receive time is what counts.
  h.record(a, kT0 + 1s);
  EXPECT_EQ(h.state(a, kT0 + 25s + kNs), HealthState::stale);
  // An out-of-order older receive time never moves it back.
  h.record(a, kT0 + 20s);
  h.record(a, kT0 + 5s);
  EXPECT_EQ(h.last_received(a), kT0 + 20s);
  EXPECT_EQ(h.state(a, kT0 + 44s), HealthState::suspect);
}

TEST(FeedHealth, PerSymbolTimeoutOverridesTheDefault) {
  FeedHealth h = make();
  SymbolId liquid = h.expect("LIQUID");
  SymbolId rare = h.expect("RARE");
  ASSERT_TRUE(h.set_symbol_timeout(rare, 60s).ok());
  EXPECT_EQ(h.symbol_timeout(rare), 60s);
  eval(h, kT0);
  h.record(liquid, kT0);
  h.record(rare, kT0);
  EXPECT_EQ(h.state(liquid, kT0 + 25s), HealthState::stale);
  EXPECT_EQ(h.state(rare, kT0 + 25s), HealthState::fresh);
  // The suspect threshold keeps the default proportion: 60 s x 1.2 / 2.4.
  EXPECT_EQ(h.state(rare, kT0 + 30s), HealthState::fresh);
  EXPECT_EQ(h.state(rare, kT0 + 30s + kNs), HealthState::suspect);
  EXPECT_EQ(h.state(rare, kT0 + 60s), HealthState::suspect);
  EXPECT_EQ(h.state(rare, kT0 + 60s + kNs), HealthState::stale);
}

TEST(FeedHealth, FeedGoesStaleWhenNoSymbolTicks) {
  FeedHealth h = make();  // feed_timeout 5 s, symbols stale after 24 s
  SymbolId a = h.expect("A");
  eval(h, kT0);
  h.record(a, kT0);
  EXPECT_EQ(
      eval(h, kT0),
      (Transitions{
          feed_event(HealthState::never_seen, HealthState::fresh, kT0),
          symbol_event(a, HealthState::never_seen, HealthState::fresh, kT0)}));
  EXPECT_TRUE(eval(h, kT0 + 5s).empty());
  EXPECT_EQ(eval(h, kT0 + 5s + kNs),
            Transitions{feed_event(HealthState::fresh, HealthState::stale,
                                   kT0 + 5s + kNs)});
  EXPECT_EQ(h.state(a, kT0 + 5s + kNs), HealthState::fresh);
  EXPECT_EQ(h.stats().feed, HealthState::stale);
}

TEST(FeedHealth, FeedTimeoutIsIndependentOfSymbolTimeouts) {
  FeedHealth h = make();
  SymbolId busy = h.expect("BUSY");
  SymbolId quiet = h.expect("QUIET");
  eval(h, kT0);
  h.record(quiet, kT0);
  for (int s = 0; s <= 30; ++s) h.record(busy, kT0 + std::chrono::seconds(s));
  eval(h, kT0 + 30s);
  EXPECT_EQ(h.state(quiet, kT0 + 30s), HealthState::stale);
  EXPECT_EQ(h.state(busy, kT0 + 30s), HealthState::fresh);
  EXPECT_EQ(h.feed_state(kT0 + 30s), HealthState::fresh);
}

// ---------------------------------------------------------------- never seen

TEST(FeedHealth, NeverSeenSymbolIsReportedNotHidden) {
  FeedHealth h = make();
  SymbolId a = h.expect("A");
  SymbolId b = h.expect("B");
  eval(h, kT0);
  h.record(a, kT0);
  EXPECT_EQ(eval(h, kT0 + 1s).size(), 2u);  // the feed and A become fresh
  EXPECT_EQ(h.state(b, kT0 + 1s), HealthState::never_seen);
  EXPECT_EQ(h.never_seen_symbols(), std::vector<SymbolId>{b});
  FeedHealthStats st = h.stats();
  EXPECT_EQ(st.never_seen, 1u);
  EXPECT_EQ(st.fresh, 1u);
  EXPECT_EQ(st.never_received, 1u);
  EXPECT_FALSE(h.last_received(b).has_value());

  h.record(b, kT0 + 2s);
  EXPECT_EQ(eval(h, kT0 + 2s),
            Transitions{symbol_event(b, HealthState::never_seen,
                                     HealthState::fresh, kT0 + 2s)});
  EXPECT_TRUE(h.never_seen_symbols().empty());
}

TEST(FeedHealth, NeverSeenSymbolGoesStaleWhenItNeverArrives) {
  FeedHealth h = make();
  SymbolId a = h.expect("A");
  eval(h, kT0);  // monitoring starts: silence counts from here
  EXPECT_EQ(h.state(a, kT0 + 12s), HealthState::never_seen);
  EXPECT_EQ(eval(h, kT0 + 12s + kNs),
            (Transitions{feed_event(HealthState::never_seen, HealthState::stale,
                                    kT0 + 12s + kNs),
                         symbol_event(a, HealthState::never_seen,
                                      HealthState::suspect, kT0 + 12s + kNs)}));
  EXPECT_EQ(eval(h, kT0 + 24s + kNs),
            Transitions{symbol_event(a, HealthState::suspect,
                                     HealthState::stale, kT0 + 24s + kNs)});
  EXPECT_EQ(h.stale_symbols(kT0 + 25s), std::vector<SymbolId>{a});
  EXPECT_EQ(h.never_seen_symbols(), std::vector<SymbolId>{a});
  EXPECT_EQ(h.stats().never_received, 1u);
}

// ---------------------------------------------------------------- events

TEST(FeedHealth, EmitsOneEventPerTransition) {
  FeedHealth h = make();
  SymbolId a = h.expect("A");
  eval(h, kT0);
  h.record(a, kT0);
  eval(h, kT0);
  EXPECT_TRUE(eval(h, kT0 + 1s).empty());
  EXPECT_EQ(eval(h, kT0 + 13s).size(), 2u);  // feed stale, A suspect
  EXPECT_TRUE(eval(h, kT0 + 14s).empty());
  EXPECT_TRUE(eval(h, kT0 + 20s).empty());
  EXPECT_EQ(eval(h, kT0 + 25s),
            Transitions{symbol_event(a, HealthState::suspect,
                                     HealthState::stale, kT0 + 25s)});
  EXPECT_TRUE(eval(h, kT0 + 26s).empty());
  EXPECT_TRUE(eval(h, kT0 + 600s).empty());
  EXPECT_EQ(h.stats().transitions, 3u);  // never_seen->fresh->suspect->stale
  EXPECT_EQ(h.stats().feed_transitions, 2u);
}

TEST(FeedHealth, SkippedBandGivesASingleEvent) {
  FeedHealth h = make();
  SymbolId a = h.expect("A");
  eval(h, kT0);
  h.record(a, kT0);
  eval(h, kT0);
  Transitions out = eval(h, kT0 + 30s);  // never evaluated while suspect
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1],
            symbol_event(a, HealthState::fresh, HealthState::stale, kT0 + 30s));
}

TEST(FeedHealth, RecoveryWaitsForRecoverAfterRecords) {
  FeedHealth h = make();  // recover_after = 2
  SymbolId a = h.expect("A");
  SymbolId other = h.expect("OTHER");
  eval(h, kT0);
  h.record(a, kT0);
  eval(h, kT0 + 30s);
  ASSERT_EQ(h.state(a, kT0 + 30s), HealthState::stale);

  h.record(a, kT0 + 31s);
  h.record(other, kT0 + 31s);  // other symbols' records do not count
  Transitions out = eval(h, kT0 + 31s);
  EXPECT_EQ(h.state(a, kT0 + 31s), HealthState::stale);
  for (const auto& t : out) EXPECT_NE(t.symbol, a);

  h.record(a, kT0 + 32s);
  out = eval(h, kT0 + 32s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0],
            symbol_event(a, HealthState::stale, HealthState::fresh, kT0 + 32s));
}

TEST(FeedHealth, RecoverAfterOneRecoversOnTheFirstRecord) {
  FeedHealthOptions o = no_grace();
  o.recover_after = 1;
  FeedHealth h = make(o);
  SymbolId a = h.expect("A");
  eval(h, kT0);
  h.record(a, kT0);
  eval(h, kT0 + 30s);
  h.record(a, kT0 + 31s);
  EXPECT_EQ(
      eval(h, kT0 + 31s),
      (Transitions{
          feed_event(HealthState::stale, HealthState::fresh, kT0 + 31s),
          symbol_event(a, HealthState::stale, HealthState::fresh, kT0 + 31s)}));
}

TEST(FeedHealth, RecoveryRunStartsOverWhenSilenceReturns) {
  FeedHealth h = make();  // recover_after = 2
  SymbolId a = h.expect("A");
  eval(h, kT0);
  h.record(a, kT0);
  eval(h, kT0 + 30s);  // stale
  h.record(a, kT0 + 31s);
  eval(h, kT0 + 31s);  // one record: not yet
  eval(h, kT0 + 56s);  // silent past the timeout again: the run is void
  h.record(a, kT0 + 57s);
  eval(h, kT0 + 57s);
  EXPECT_EQ(h.state(a, kT0 + 57s), HealthState::stale);
  h.record(a, kT0 + 58s);
  EXPECT_EQ(h.state(a, kT0 + 58s), HealthState::fresh);
}

// A symbol ticking every 30 s against a 24 s timeout, evaluated ten times a
// second for 10 minutes: every cycle really passes fresh, suspect and stale.
int count_symbol_events(std::uint32_t recover_after, Transitions* all) {
  FeedHealthOptions o = no_grace();
  o.recover_after = recover_after;
  FeedHealth h = make(o);
  SymbolId a = h.expect("A");
  Transitions out;
  int events = 0;
  for (Duration t = 0s; t <= 600s; t += 100ms) {
    if (t % 30s == 0s) h.record(a, kT0 + t);
    h.evaluate(kT0 + t, out);
    for (const auto& e : out) {
      if (e.symbol != a) continue;
      ++events;
      all->push_back(e);
    }
  }
  return events;
}

TEST(FeedHealth, FlappingInputGivesOneEventPerRealTransition) {
  Transitions all;
  // recover_after = 1: the first tick, then 20 cycles of fresh -> suspect ->
  // stale -> fresh, the last one ending fresh at 600 s.
  EXPECT_EQ(count_symbol_events(1, &all), 1 + 20 * 3);
  for (std::size_t i = 1; i < all.size(); ++i) {
    EXPECT_EQ(all[i].from, all[i - 1].to);  // a consistent chain
    EXPECT_NE(all[i].from, all[i].to);
  }
  // recover_after = 2: one tick per cycle is never enough to recover, so the
  // symbol stays stale after its first decline: three events in all.
  all.clear();
  EXPECT_EQ(count_symbol_events(2, &all), 3);
  EXPECT_EQ(all.back().to, HealthState::stale);
}

TEST(FeedHealth, SteadyTicksAfterAnOutageRecoverOnce) {
  FeedHealth h = make();
  SymbolId a = h.expect("A");
  Transitions out;
  int recoveries = 0;
  for (Duration t = 0s; t <= 300s; t += 500ms) {
    const bool outage = t > 10s && t < 60s;
    if (!outage) h.record(a, kT0 + t);
    h.evaluate(kT0 + t, out);
    for (const auto& e : out) {
      if (e.symbol == a && e.to == HealthState::fresh &&
          e.from == HealthState::stale) {
        ++recoveries;
      }
    }
  }
  EXPECT_EQ(recoveries, 1);
  EXPECT_EQ(h.stats().transitions, 4u);  // never_seen, suspect, stale, fresh
}

TEST(FeedHealth, StaleSymbolsListsOnlyStaleOnes) {
  FeedHealth h = make();
  std::vector<SymbolId> ids;
  for (int i = 0; i < 10; ++i) ids.push_back(h.expect(std::to_string(i)));
  eval(h, kT0);
  for (int i = 0; i < 10; ++i) {
    // Even ids last ticked at 0 s, odd ids at 20 s.
    h.record(ids[i], kT0 + (i % 2 == 0 ? 0s : 20s));
  }
  std::vector<SymbolId> stale;
  h.stale_symbols(kT0 + 30s, stale);
  EXPECT_EQ(stale,
            (std::vector<SymbolId>{ids[0], ids[2], ids[4], ids[6], ids[8]}));
  h.stale_symbols(kT0 + 10s, stale);
  EXPECT_TRUE(stale.empty());
}

// ---------------------------------------------------------------- halts, grace

TEST(FeedHealth, HaltSuspendsAndResumeStartsAGrace) {
  FeedHealthOptions o = no_grace();
  o.open_grace = 60s;
  FeedHealth h = make(o);
  SymbolId a = h.expect("A");
  SymbolId b = h.expect("B");
  eval(h, kT0);
  h.record(a, kT0);
  h.record(b, kT0);
  h.halt(a);
  Transitions out = eval(h, kT0 + 1s);
  EXPECT_NE(std::find(out.begin(), out.end(),
                      symbol_event(a, HealthState::never_seen,
                                   HealthState::suspended, kT0 + 1s)),
            out.end());
  for (Duration t = 2s; t < 600s; t += 1s) {
    h.record(b, kT0 + t);
    EXPECT_TRUE(eval(h, kT0 + t).empty()) << "at " << t.count();
  }
  h.resume(a, kT0 + 600s);
  EXPECT_EQ(eval(h, kT0 + 600s),
            Transitions{symbol_event(a, HealthState::suspended,
                                     HealthState::fresh, kT0 + 600s)});
  EXPECT_EQ(h.state(a, kT0 + 660s), HealthState::fresh);  // in the grace
  EXPECT_EQ(h.state(a, kT0 + 660s + kNs), HealthState::stale);
}

TEST(FeedHealth, SymbolExpectedLateGetsItsOwnAllowance) {
  FeedHealthOptions o = no_grace();
  o.open_grace = 60s;
  FeedHealth h = make(o);
  SymbolId early = h.expect("EARLY");
  eval(h, kT0);
  eval(h, kT0 + 600s);
  ASSERT_EQ(h.state(early, kT0 + 600s), HealthState::stale);
  // Subscribed ten minutes in: not overdue at once.
  SymbolId late = h.expect("LATE");
  EXPECT_EQ(h.state(late, kT0 + 601s), HealthState::never_seen);
  for (const auto& t : eval(h, kT0 + 601s)) EXPECT_NE(t.symbol, late);
  EXPECT_EQ(h.state(late, kT0 + 660s), HealthState::never_seen);
  EXPECT_EQ(h.state(late, kT0 + 660s + kNs), HealthState::stale);
}

TEST(FeedHealth, MonitoringStartWithoutCalendarHasAGrace) {
  FeedHealth h = make(FeedHealthOptions::suggested());  // grace 60 s
  SymbolId a = h.expect("A");
  EXPECT_TRUE(eval(h, kT0).empty());
  EXPECT_TRUE(eval(h, kT0 + 60s).empty());
  EXPECT_EQ(h.state(a, kT0 + 60s), HealthState::never_seen);
  EXPECT_EQ(eval(h, kT0 + 60s + kNs),
            (Transitions{feed_event(HealthState::never_seen, HealthState::stale,
                                    kT0 + 60s + kNs),
                         symbol_event(a, HealthState::never_seen,
                                      HealthState::stale, kT0 + 60s + kNs)}));
}

TEST(FeedHealth, StatsCountStatesAndMapTheLastRecordToWallTime) {
  FeedHealth h = make();
  SymbolId a = h.expect("A");
  SymbolId b = h.expect("B");
  h.expect("C");
  FeedHealthStats st = h.stats();
  EXPECT_EQ(st.never_seen, 3u);  // before any evaluate()
  EXPECT_FALSE(st.last_record.has_value());
  EXPECT_FALSE(st.last_record_wall().has_value());

  const WallTime wall = WallTime(sys_days(kWed)) + 12h;
  Transitions out;
  h.evaluate(kT0, wall, out);
  h.record(a, kT0 + 10s);
  h.record(b, kT0);
  h.evaluate(kT0 + 20s, wall + 20s, out);
  st = h.stats();
  EXPECT_EQ(st.symbols, 3u);
  EXPECT_EQ(st.fresh, 1u);    // A: 10 s
  EXPECT_EQ(st.suspect, 2u);  // B: 20 s; C: never seen, 20 s since the start
  EXPECT_EQ(st.never_seen, 0u);
  EXPECT_EQ(st.never_received, 1u);
  EXPECT_EQ(st.records, 2u);
  EXPECT_EQ(st.evaluations, 2u);
  EXPECT_TRUE(st.in_session);
  EXPECT_EQ(st.feed, HealthState::stale);  // 10 s > feed_timeout
  EXPECT_EQ(st.last_record, kT0 + 10s);
  EXPECT_EQ(st.evaluated_at, kT0 + 20s);
  EXPECT_EQ(st.last_record_wall(), wall + 10s);
}

// ---------------------------------------------------------------- calendar

TEST(SessionCalendar, KrxIsOpenFrom0900To1530Kst) {
  SessionCalendar c = krx();
  EXPECT_FALSE(c.status(kst(kWed, 8, 59, 59)).in_session);
  SessionStatus s = c.status(kst(kWed, 9, 0));
  EXPECT_TRUE(s.in_session);
  EXPECT_EQ(s.opened_at, kst(kWed, 9, 0));
  EXPECT_EQ(s.opened_at, WallTime(sys_days(kWed)));  // 00:00 UTC
  EXPECT_EQ(s.closes_at, kst(kWed, 15, 30));
  EXPECT_TRUE(c.status(kst(kWed, 15, 29, 59)).in_session);
  EXPECT_FALSE(c.status(kst(kWed, 15, 30)).in_session);
  EXPECT_TRUE(c.status(kst(kWed, 15, 30) - 1ns).in_session);
}

TEST(SessionCalendar, WeekendIsClosed) {
  SessionCalendar c = krx();
  EXPECT_TRUE(c.status(kst(kFri, 10, 0)).in_session);
  EXPECT_FALSE(c.status(kst(kSat, 10, 0)).in_session);
  EXPECT_FALSE(c.status(kst(kSun, 10, 0)).in_session);
  EXPECT_TRUE(c.status(kst(kMon, 10, 0)).in_session);
}

TEST(SessionCalendar, TradingDayIsTheLocalDate) {
  // East of UTC: a session just after local midnight, Monday to Friday.
  SessionCalendarOptions east = SessionCalendarOptions::krx();
  east.sessions = {{0h, 2h}};
  SessionCalendar c = SessionCalendar::create(east).value();
  // Sunday 15:30 UTC is Monday 00:30 KST; Friday 15:30 UTC is Saturday.
  EXPECT_TRUE(c.status(WallTime(sys_days(kSun)) + 15h + 30min).in_session);
  EXPECT_FALSE(c.status(WallTime(sys_days(kFri)) + 15h + 30min).in_session);
  SessionStatus s = c.status(WallTime(sys_days(kSun)) + 15h + 30min);
  EXPECT_EQ(s.opened_at, kst(kMon, 0, 0));
  EXPECT_EQ(s.opened_at, WallTime(sys_days(kSun)) + 15h);

  // West of UTC: a late-evening session.
  SessionCalendarOptions west = SessionCalendarOptions::krx();
  west.utc_offset = -5h;
  west.sessions = {{20h, 23h}};
  SessionCalendar w = SessionCalendar::create(west).value();
  // Saturday 02:00 UTC is Friday 21:00 local; Monday 02:00 UTC is Sunday.
  EXPECT_TRUE(w.status(WallTime(sys_days(kSat)) + 2h).in_session);
  EXPECT_FALSE(w.status(WallTime(sys_days(kMon)) + 2h).in_session);
}

TEST(SessionCalendar, SetHasALunchBreak) {
  SessionCalendar c = set();
  EXPECT_FALSE(c.status(ict(kWed, 9, 59, 59)).in_session);
  SessionStatus morning = c.status(ict(kWed, 12, 29, 59));
  EXPECT_TRUE(morning.in_session);
  EXPECT_EQ(morning.opened_at, ict(kWed, 10, 0));
  EXPECT_FALSE(c.status(ict(kWed, 12, 30)).in_session);
  EXPECT_FALSE(c.status(ict(kWed, 13, 59, 59)).in_session);
  SessionStatus afternoon = c.status(ict(kWed, 14, 0));
  EXPECT_TRUE(afternoon.in_session);
  EXPECT_EQ(afternoon.opened_at, ict(kWed, 14, 0));
  EXPECT_EQ(afternoon.closes_at, ict(kWed, 16, 30));
  EXPECT_FALSE(c.status(ict(kWed, 16, 30)).in_session);
}

TEST(SessionCalendar, HolidaysCloseAndSpecialDaysReplaceTheSessions) {
  SessionCalendarOptions o = SessionCalendarOptions::krx();
  o.holidays = {kThu};
  // A late day: 10:00-16:30 (as KRX on the college entrance exam day).
  o.special_days = {{kFri, {{10h, 16h + 30min}}}, {kSat, {{9h, 12h}}}};
  SessionCalendar c = SessionCalendar::create(o).value();
  EXPECT_TRUE(c.status(kst(kWed, 10, 0)).in_session);
  EXPECT_FALSE(c.status(kst(kThu, 10, 0)).in_session);
  EXPECT_FALSE(c.status(kst(kFri, 9, 30)).in_session);
  SessionStatus late = c.status(kst(kFri, 16, 0));
  EXPECT_TRUE(late.in_session);
  EXPECT_EQ(late.opened_at, kst(kFri, 10, 0));
  EXPECT_TRUE(c.status(kst(kSat, 11, 0)).in_session);  // a special Saturday
}

TEST(SessionCalendar, RejectsInvalidOptionsNamingTheField) {
  struct Case {
    SessionCalendarOptions options;
    std::string field;
  };
  std::vector<Case> cases;
  auto add = [&](std::string field, auto mutate) {
    SessionCalendarOptions o = SessionCalendarOptions::krx();
    mutate(o);
    cases.push_back({o, field});
  };
  add("utc_offset", [](auto& o) { o.utc_offset = 19h; });
  add("sessions", [](auto& o) { o.sessions.clear(); });
  add("sessions[0].close", [](auto& o) { o.sessions = {{10h, 10h}}; });
  add("sessions[0].close", [](auto& o) { o.sessions = {{10h, 25h}}; });
  add("sessions[0].open", [](auto& o) { o.sessions = {{-1h, 10h}}; });
  add("sessions[1]", [](auto& o) { o.sessions = {{9h, 12h}, {11h, 13h}}; });
  add("trading_days", [](auto& o) { o.trading_days.clear(); });
  add("holidays[0]",
      [](auto& o) { o.holidays = {std::chrono::year(2026) / 2 / 30}; });
  add("special_days[1].date", [](auto& o) {
    o.special_days = {{kFri, {}}, {kFri, {}}};
  });
  add("special_days[0].sessions[0]", [](auto& o) {
    o.special_days = {{kFri, {{12h, 11h}}}};
  });
  add("also a holiday", [](auto& o) {
    o.holidays = {kFri};
    o.special_days = {{kFri, {}}};
  });
  for (const Case& c : cases) {
    absl::Status s = c.options.validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_NE(s.message().find(c.field), std::string::npos) << s.message();
    EXPECT_FALSE(SessionCalendar::create(c.options).ok()) << c.field;
  }
  EXPECT_TRUE(SessionCalendarOptions::krx().validate().ok());
  EXPECT_TRUE(SessionCalendarOptions::thailand_set().validate().ok());
}

// ---------------------------------------------------------------- sessions

struct KrxFixture {
  SessionCalendar calendar = krx();
  FeedHealth health = make(FeedHealthOptions::suggested(), &calendar);
  SymbolId a = health.expect("005930");
  SymbolId b = health.expect("000660");
};

TEST(FeedHealth, SessionCloseSuspendsWithoutStaleEvents) {
  KrxFixture f;
  eval_at(f.health, kst(kWed, 15, 0));
  f.health.record(f.a, steady(kst(kWed, 15, 29, 59)));
  f.health.record(f.b, steady(kst(kWed, 15, 29, 59)));
  EXPECT_TRUE(eval_at(f.health, kst(kWed, 15, 29, 59)).size() == 3u);
  const SteadyTime close = steady(kst(kWed, 15, 30));
  EXPECT_EQ(
      eval_at(f.health, kst(kWed, 15, 30)),
      (Transitions{
          feed_event(HealthState::fresh, HealthState::suspended, close),
          symbol_event(f.a, HealthState::fresh, HealthState::suspended, close),
          symbol_event(f.b, HealthState::fresh, HealthState::suspended,
                       close)}));
  // All night, nothing: no stale, no suspect.
  for (WallTime w = kst(kWed, 15, 31); w < kst(kThu, 9, 0); w += 1min) {
    EXPECT_TRUE(eval_at(f.health, w).empty());
    ASSERT_EQ(f.health.state(f.a, steady(w)), HealthState::suspended);
  }
  EXPECT_TRUE(f.health.stale_symbols(steady(kst(kThu, 8, 59))).empty());
  EXPECT_EQ(f.health.stats().suspended, 2u);
  EXPECT_FALSE(f.health.stats().in_session);
}

TEST(FeedHealth, ReopenDoesNotAlarmDuringTheGraceButDoesAfter) {
  KrxFixture f;
  eval_at(f.health, kst(kWed, 15, 0));
  f.health.record(f.a, steady(kst(kWed, 15, 29)));
  eval_at(f.health, kst(kWed, 15, 30));  // closed
  eval_at(f.health, kst(kThu, 8, 59, 59));
  // The first evaluate after the open comes 30 s late: the open itself,
  // 09:00:00, still anchors the grace.
  const SteadyTime t = steady(kst(kThu, 9, 0, 30));
  EXPECT_EQ(
      eval_at(f.health, kst(kThu, 9, 0, 30)),
      (Transitions{
          feed_event(HealthState::suspended, HealthState::fresh, t),
          symbol_event(f.a, HealthState::suspended, HealthState::fresh, t),
          symbol_event(f.b, HealthState::suspended, HealthState::never_seen,
                       t)}));
  EXPECT_TRUE(eval_at(f.health, kst(kThu, 9, 1, 0)).empty());
  // Grace over at 09:01:00; 60 s of silence since the open is past every
  // threshold.
  const WallTime after = kst(kThu, 9, 1, 0) + 1ns;
  Transitions out;
  f.health.evaluate(steady(after), after, out);
  EXPECT_EQ(out,
            (Transitions{feed_event(HealthState::fresh, HealthState::stale,
                                    steady(after)),
                         symbol_event(f.a, HealthState::fresh,
                                      HealthState::stale, steady(after)),
                         symbol_event(f.b, HealthState::never_seen,
                                      HealthState::stale, steady(after))}));
}

TEST(FeedHealth, SilenceCountsFromTheOpenNotFromYesterday) {
  KrxFixture f;
  eval_at(f.health, kst(kWed, 15, 0));
  f.health.record(f.a, steady(kst(kWed, 15, 29)));
  eval_at(f.health, kst(kWed, 15, 30));
  eval_at(f.health, kst(kThu, 9, 0));
  f.health.record(f.a, steady(kst(kThu, 9, 0, 50)));
  // 09:01:01: grace over, last tick 11 s ago: fresh (yesterday's tick would
  // have been 17.5 h ago).
  EXPECT_EQ(f.health.state(f.a, steady(kst(kThu, 9, 1, 1))),
            HealthState::fresh);
  EXPECT_EQ(f.health.state(f.a, steady(kst(kThu, 9, 1, 3))),
            HealthState::suspect);
}

TEST(FeedHealth, MidSessionStartGetsAGraceToo) {
  KrxFixture f;
  // The collector starts at 11:00, two hours into the session.
  EXPECT_TRUE(eval_at(f.health, kst(kWed, 11, 0)).empty());
  EXPECT_TRUE(eval_at(f.health, kst(kWed, 11, 1)).empty());
  EXPECT_EQ(f.health.state(f.a, steady(kst(kWed, 11, 1))),
            HealthState::never_seen);
  EXPECT_EQ(f.health.state(f.a, steady(kst(kWed, 11, 1) + 1ns)),
            HealthState::stale);
}

TEST(FeedHealth, SetLunchBreakSuspendsThenTheAfternoonOpensWithAGrace) {
  SessionCalendar calendar = set();
  FeedHealth h = make(FeedHealthOptions::suggested(), &calendar);
  SymbolId ptt = h.expect("PTT");
  eval_at(h, ict(kWed, 10, 0));
  for (WallTime w = ict(kWed, 10, 0); w < ict(kWed, 12, 30); w += 1s) {
    h.record(ptt, steady(w));
  }
  eval_at(h, ict(kWed, 12, 29, 59));
  ASSERT_EQ(h.state(ptt, steady(ict(kWed, 12, 29, 59))), HealthState::fresh);
  Transitions out = eval_at(h, ict(kWed, 12, 30));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].to, HealthState::suspended);
  for (WallTime w = ict(kWed, 12, 31); w < ict(kWed, 14, 0); w += 1min) {
    EXPECT_TRUE(eval_at(h, w).empty());
  }
  out = eval_at(h, ict(kWed, 14, 0));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1], symbol_event(ptt, HealthState::suspended,
                                 HealthState::fresh, steady(ict(kWed, 14, 0))));
  EXPECT_TRUE(eval_at(h, ict(kWed, 14, 1)).empty());
  EXPECT_EQ(h.state(ptt, steady(ict(kWed, 14, 1) + 1ns)), HealthState::stale);
}

TEST(FeedHealth, WeekendStaysSuspended) {
  KrxFixture f;
  eval_at(f.health, kst(kFri, 15, 0));
  f.health.record(f.a, steady(kst(kFri, 15, 29)));
  eval_at(f.health, kst(kFri, 15, 30));
  for (WallTime w = kst(kFri, 16, 0); w < kst(kMon, 9, 0); w += 10min) {
    EXPECT_TRUE(eval_at(f.health, w).empty());
  }
  EXPECT_EQ(f.health.state(f.a, steady(kst(kSun, 12, 0))),
            HealthState::suspended);
  EXPECT_EQ(f.health.feed_state(steady(kst(kSat, 12, 0))),
            HealthState::suspended);
  EXPECT_EQ(eval_at(f.health, kst(kMon, 9, 0)).size(), 3u);  // all reopen
}

TEST(FeedHealth, BackToBackSessionsWithoutAClosedEvaluateStartAfresh) {
  SessionCalendar calendar = set();
  FeedHealth h = make(FeedHealthOptions::suggested(), &calendar);
  SymbolId ptt = h.expect("PTT");
  eval_at(h, ict(kWed, 10, 0));
  h.record(ptt, steady(ict(kWed, 10, 0)));
  eval_at(h, ict(kWed, 12, 0));
  ASSERT_EQ(h.stats().stale, 1u);
  // Nobody evaluated over lunch; the afternoon session is a new start.
  Transitions out = eval_at(h, ict(kWed, 14, 0, 30));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1], symbol_event(ptt, HealthState::stale, HealthState::fresh,
                                 steady(ict(kWed, 14, 0, 30))));
  EXPECT_EQ(h.state(ptt, steady(ict(kWed, 14, 1))), HealthState::fresh);
  EXPECT_EQ(h.state(ptt, steady(ict(kWed, 14, 1) + 1ns)), HealthState::stale);
}

}  // namespace
}  // namespace feedkit
