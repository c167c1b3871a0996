// Test that header file is self-contained.
#include "feedkit/backoff.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "feedkit/testing/fake_clock.h"

namespace feedkit {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;
using testing::FakeClock;

constexpr SteadyTime kStart = FakeClock::kEpoch;
constexpr Duration kOneNs{1};

Backoff make(BackoffOptions options) {
  return Backoff::create(std::move(options)).value();
}

std::shared_ptr<AttemptBudget> make_budget(std::size_t max_attempts,
                                           Duration window) {
  return AttemptBudget::create({.max_attempts = max_attempts, .window = window})
      .value();
}

// Returns true if no half-open window of length `window` holds more than
// `max_attempts` of `times`.
::testing::AssertionResult within_budget(std::vector<SteadyTime> times,
                                         std::size_t max_attempts,
                                         Duration window) {
  std::sort(times.begin(), times.end());
  for (std::size_t i = 0; i + max_attempts < times.size(); ++i) {
    if (times[i + max_attempts] - times[i] < window) {
      return ::testing::AssertionFailure()
             << max_attempts + 1 << " attempts within "
             << nanoseconds(times[i + max_attempts] - times[i]).count()
             << " ns, starting at index " << i;
    }
  }
  return ::testing::AssertionSuccess();
}

void expect_invalid(const BackoffOptions& options, const std::string& field) {
  absl::Status s = options.validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << field;
  EXPECT_NE(s.message().find(field), std::string::npos) << s.message();
  EXPECT_FALSE(Backoff::create(options).ok()) << field;
}

TEST(Backoff, RejectsInvalidOptionsNamingTheField) {
  expect_invalid({.initial = Duration::zero()}, "initial");
  expect_invalid({.multiplier = 0.5}, "multiplier");
  expect_invalid({.multiplier = std::nan("")}, "multiplier");
  expect_invalid({.initial = seconds(10), .max = seconds(5)}, "max");
  expect_invalid({.jitter = 1.5}, "jitter");
  expect_invalid({.jitter = -0.1}, "jitter");
  expect_invalid({.jitter_mode = static_cast<JitterMode>(42)}, "jitter_mode");
  expect_invalid({.stable_after = seconds(-1)}, "stable_after");
  EXPECT_TRUE(BackoffOptions::suggested().validate().ok());
}

TEST(Backoff, SuggestedOptionsAreGrpcDefaults) {
  BackoffOptions o = BackoffOptions::suggested();
  EXPECT_EQ(o.initial, seconds(1));
  EXPECT_DOUBLE_EQ(o.multiplier, 1.6);
  EXPECT_EQ(o.max, seconds(120));
  EXPECT_EQ(o.jitter_mode, JitterMode::proportional);
  EXPECT_DOUBLE_EQ(o.jitter, 0.2);
  EXPECT_EQ(o.budget, nullptr);
}

TEST(AttemptBudget, RejectsInvalidOptionsNamingTheField) {
  auto none = AttemptBudget::create({.max_attempts = 0});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(none.status().message().find("max_attempts"), std::string::npos);

  auto no_window = AttemptBudget::create({.window = Duration::zero()});
  ASSERT_FALSE(no_window.ok());
  EXPECT_NE(no_window.status().message().find("window"), std::string::npos);
}

TEST(Backoff, FollowsTheGrpcScheduleWithoutJitter) {
  Backoff b = make({.jitter_mode = JitterMode::none});
  // 1.6^k seconds, capped at 120 s from the 12th delay on.
  const std::vector<std::int64_t> expected_ns = {
      1'000'000'000,  1'600'000'000,  2'560'000'000,   4'096'000'000,
      6'553'600'000,  10'485'760'000, 16'777'216'000,  26'843'545'600,
      42'949'672'960, 68'719'476'736, 109'951'162'778, 120'000'000'000,
      120'000'000'000};
  for (std::size_t i = 0; i < expected_ns.size(); ++i) {
    EXPECT_NEAR(static_cast<double>(b.next_delay().count()),
                static_cast<double>(expected_ns[i]), 1.0)
        << "delay " << i;
  }
}

TEST(Backoff, MatchesGrpcNoJitterDeadlines) {
  // grpc test/core/backoff/backoff_test.cc NoJitterBackOff: each attempt
  // starts at the previous deadline and fails at once.
  Backoff b = make({.initial = milliseconds(2),
                    .multiplier = 2.0,
                    .max = milliseconds(513),
                    .jitter_mode = JitterMode::none});
  SteadyTime started = kStart;
  std::vector<std::int64_t> deadlines_ms;
  for (int i = 0; i < 12; ++i) {
    started = b.next_attempt_at(started, started);
    deadlines_ms.push_back(
        std::chrono::duration_cast<milliseconds>(started - kStart).count());
  }
  EXPECT_EQ(deadlines_ms,
            (std::vector<std::int64_t>{2, 6, 14, 30, 62, 126, 254, 510, 1022,
                                       1535, 2048, 2561}));
}

TEST(Backoff, ConstantWhenMultiplierIsOne) {
  Backoff b = make({.initial = milliseconds(250),
                    .multiplier = 1.0,
                    .jitter_mode = JitterMode::none});
  for (int i = 0; i < 10'000; ++i) ASSERT_EQ(b.next_delay(), milliseconds(250));
}

// Returns the un-jittered envelopes of the first `n` delays.
std::vector<double> envelopes_ns(const BackoffOptions& o, int n) {
  std::vector<double> out;
  double e = static_cast<double>(o.initial.count());
  for (int i = 0; i < n; ++i) {
    out.push_back(e);
    e = std::min(static_cast<double>(o.max.count()), e * o.multiplier);
  }
  return out;
}

TEST(Backoff, ProportionalJitterStaysWithinBounds) {
  const BackoffOptions o{.initial = milliseconds(500),
                         .multiplier = 1.6,
                         .max = seconds(120),
                         .jitter_mode = JitterMode::proportional,
                         .jitter = 0.2,
                         .seed = 7};
  Backoff b = make(o);
  const std::vector<double> env = envelopes_ns(o, 10'000);
  for (double e : env) {
    const double d = static_cast<double>(b.next_delay().count());
    ASSERT_GE(d, e * 0.8 - 1);
    ASSERT_LE(d, e * 1.2 + 1);
  }
}

TEST(Backoff, FullJitterStaysWithinBounds) {
  const BackoffOptions o{.initial = milliseconds(500),
                         .max = seconds(30),
                         .jitter_mode = JitterMode::full,
                         .seed = 8};
  Backoff b = make(o);
  for (double e : envelopes_ns(o, 10'000)) {
    const double d = static_cast<double>(b.next_delay().count());
    ASSERT_GE(d, 0.0);
    ASSERT_LE(d, e + 1);
  }
}

TEST(Backoff, DecorrelatedJitterStaysWithinBounds) {
  const BackoffOptions o{.initial = milliseconds(100),
                         .max = seconds(20),
                         .jitter_mode = JitterMode::decorrelated,
                         .seed = 9};
  Backoff b = make(o);
  const double base = 1e8;
  const double cap = 2e10;
  double previous = base;
  for (int i = 0; i < 10'000; ++i) {
    const double d = static_cast<double>(b.next_delay().count());
    ASSERT_GE(d, base - 1) << i;
    ASSERT_LE(d, std::min(cap, 3 * previous) + 1) << i;
    previous = d;
  }
}

TEST(Backoff, CapIsNeverExceededBeyondJitter) {
  const BackoffOptions o{
      .initial = seconds(1), .max = seconds(10), .jitter = 0.2, .seed = 10};
  Backoff b = make(o);
  Duration lo = Duration::max();
  Duration hi = Duration::zero();
  for (int i = 0; i < 10'000; ++i) {
    const Duration d = b.next_delay();
    ASSERT_LE(d, seconds(12));
    if (i >= 10) {  // at the cap from the 6th delay on
      lo = std::min(lo, d);
      hi = std::max(hi, d);
    }
  }
  // The jitter really spreads the capped delays over the whole ±20 %.
  EXPECT_LT(lo, milliseconds(8'100));
  EXPECT_GE(lo, seconds(8));
  EXPECT_GT(hi, milliseconds(11'900));
}

TEST(Backoff, JittersTheFirstDelayToo) {
  std::vector<Duration> firsts;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    Backoff b = make({.seed = seed});
    firsts.push_back(b.next_delay());
  }
  std::sort(firsts.begin(), firsts.end());
  EXPECT_LT(firsts.front(),
            firsts.back());  // clients cut off together disperse
  EXPECT_GE(firsts.front(), milliseconds(800));
  EXPECT_LE(firsts.back(), milliseconds(1200));
}

std::vector<Duration> draws(Backoff& b, int n) {
  std::vector<Duration> out;
  for (int i = 0; i < n; ++i) out.push_back(b.next_delay());
  return out;
}

TEST(Backoff, SameSeedGivesSameSequence) {
  for (JitterMode mode :
       {JitterMode::proportional, JitterMode::full, JitterMode::decorrelated}) {
    Backoff a = make({.jitter_mode = mode, .seed = 42});
    Backoff b = make({.jitter_mode = mode, .seed = 42});
    Backoff c = make({.jitter_mode = mode, .seed = 43});
    const std::vector<Duration> da = draws(a, 50);
    EXPECT_EQ(da, draws(b, 50));
    EXPECT_NE(da, draws(c, 50));
  }
}

TEST(Backoff, SeedZeroDrawsAFreshSeed) {
  Backoff a = make({.jitter_mode = JitterMode::full});
  Backoff b = make({.jitter_mode = JitterMode::full});
  EXPECT_NE(draws(a, 20), draws(b, 20));
}

TEST(Backoff, ConnectThenDropLoopKeepsGrowing) {
  // Each attempt connects, logs in, then is dropped (or refused) 300 ms after
  // it started, before the connection is ever reported stable.
  Backoff b = make({.jitter_mode = JitterMode::none});
  SteadyTime started = b.first_attempt_at(kStart);
  Duration previous = Duration::zero();
  for (int i = 0; i < 20; ++i) {
    const SteadyTime dropped = started + milliseconds(300);
    const SteadyTime next = b.next_attempt_at(started, dropped);
    const Duration delay = b.stats().current_delay;
    EXPECT_GE(delay, previous) << "attempt " << i;
    EXPECT_EQ(next - started, delay) << "attempt " << i;
    previous = delay;
    started = next;
  }
  EXPECT_EQ(previous, seconds(120));
  EXPECT_EQ(b.stats().resets, 0u);
  EXPECT_EQ(b.stats().episode_attempts, 21u);
}

TEST(Backoff, RefusedLoginDoesNotRestartAtTheMinimum) {
  // The seed's bug: a refused CONNACK after a successful TCP connect started
  // over at 1 s with an immediate attempt. Here only report_stable() resets.
  Backoff b = make({.jitter_mode = JitterMode::none});
  SteadyTime started = kStart;
  for (int i = 0; i < 5; ++i) started = b.next_attempt_at(started, started);
  // TCP and WebSocket connected (not stable), then the login was refused.
  const SteadyTime refused = started + milliseconds(50);
  const SteadyTime next = b.next_attempt_at(started, refused);
  EXPECT_EQ(next - started, nanoseconds(10'485'760'000));
  EXPECT_GT(next, refused);
}

TEST(Backoff, ResetAfterStableReturnsToInitial) {
  Backoff b = make({.jitter_mode = JitterMode::none});
  SteadyTime started = kStart;
  for (int i = 0; i < 6; ++i) started = b.next_attempt_at(started, started);
  ASSERT_GT(b.stats().current_delay, seconds(6));

  b.report_stable();
  EXPECT_EQ(b.stats().resets, 1u);
  EXPECT_EQ(b.stats().episode_attempts, 0u);
  // The stable connection drops an hour later: reconnect at once ...
  const SteadyTime dropped = started + std::chrono::hours(1);
  started = b.next_attempt_at(started, dropped);
  EXPECT_EQ(started, dropped);
  // ... and if that fails, the schedule starts again at `initial`.
  const SteadyTime next = b.next_attempt_at(started, started);
  EXPECT_EQ(next - started, seconds(1));
  EXPECT_EQ(b.next_attempt_at(next, next) - next, milliseconds(1600));
}

TEST(Backoff, ReportingStableTwiceCountsOneReset) {
  Backoff b = make({.jitter_mode = JitterMode::none});
  (void)b.next_delay();
  b.report_stable();
  b.report_stable();
  EXPECT_EQ(b.stats().resets, 1u);
  EXPECT_EQ(b.next_delay(), Duration::zero());  // the drop: reconnect at once
  EXPECT_EQ(b.next_delay(), seconds(1));
}

TEST(Backoff, ResetIfStableWaitsForStableAfter) {
  Backoff b =
      make({.jitter_mode = JitterMode::none, .stable_after = seconds(30)});
  for (int i = 0; i < 4; ++i) (void)b.next_delay();
  const SteadyTime live = kStart;
  EXPECT_FALSE(b.reset_if_stable(live, live + seconds(29)));
  EXPECT_EQ(b.stats().resets, 0u);
  EXPECT_EQ(b.next_delay(), nanoseconds(6'553'600'000));  // still growing

  EXPECT_TRUE(b.reset_if_stable(live, live + seconds(30)));
  EXPECT_EQ(b.stats().resets, 1u);
  EXPECT_EQ(b.next_delay(), Duration::zero());
  EXPECT_EQ(b.next_delay(), seconds(1));
}

TEST(Backoff, MeasuresTheDelayFromTheAttemptStart) {
  Backoff b = make({.initial = seconds(4),
                    .multiplier = 1.0,
                    .jitter_mode = JitterMode::none});
  // A connect that failed after 3 s leaves 1 s to wait, not 4 s.
  const SteadyTime started = kStart;
  const SteadyTime failed = started + seconds(3);
  const SteadyTime next = b.next_attempt_at(started, failed);
  EXPECT_EQ(next, started + seconds(4));
  EXPECT_EQ(next - failed, seconds(1));
}

TEST(Backoff, LongAttemptLeavesNothingToWait) {
  Backoff b = make({.initial = seconds(4),
                    .multiplier = 1.0,
                    .jitter_mode = JitterMode::none});
  // A connect that timed out after 20 s: the next attempt starts at once,
  // never in the past.
  const SteadyTime failed = kStart + seconds(20);
  EXPECT_EQ(b.next_attempt_at(kStart, failed), failed);
}

TEST(Backoff, FirstAttemptIsImmediateAndDrawsNoDelay) {
  Backoff b = make({.jitter_mode = JitterMode::none});
  EXPECT_EQ(b.first_attempt_at(kStart), kStart);
  EXPECT_EQ(b.stats().attempts, 1u);
  EXPECT_EQ(b.stats().current_delay, Duration::zero());
  EXPECT_EQ(b.next_attempt_at(kStart, kStart), kStart + seconds(1));
}

TEST(Backoff, CountsAttemptsAcrossResets) {
  Backoff b = make({.jitter_mode = JitterMode::none});
  SteadyTime t = b.first_attempt_at(kStart);
  t = b.next_attempt_at(t, t);
  t = b.next_attempt_at(t, t);
  b.report_stable();
  t = b.next_attempt_at(t, t + seconds(60));
  BackoffStats s = b.stats();
  EXPECT_EQ(s.attempts, 4u);
  EXPECT_EQ(s.episode_attempts, 1u);
  EXPECT_EQ(s.resets, 1u);
  EXPECT_EQ(s.next_envelope, seconds(1));
}

TEST(AttemptBudget, AllowsMaxAttemptsThenDefersToTheWindowEdge) {
  auto budget = make_budget(3, seconds(10));
  auto at = [&](Duration d) { return budget->reserve(kStart + d, kStart + d); };
  EXPECT_EQ(at(seconds(0)), kStart);
  EXPECT_EQ(at(seconds(1)), kStart + seconds(1));
  EXPECT_EQ(at(seconds(2)), kStart + seconds(2));
  EXPECT_EQ(budget->next_allowed(kStart + seconds(3), kStart + seconds(3)),
            kStart + seconds(10));
  EXPECT_EQ(at(seconds(3)), kStart + seconds(10));
  EXPECT_EQ(at(seconds(3)), kStart + seconds(11));
  AttemptBudgetStats s = budget->stats();
  EXPECT_EQ(s.granted, 5u);
  EXPECT_EQ(s.deferred, 2u);
  EXPECT_EQ(s.deferred_for, seconds(15));
}

TEST(AttemptBudget, NeverBooksBeforeNow) {
  auto budget = make_budget(3, seconds(10));
  EXPECT_EQ(budget->reserve(kStart, kStart + seconds(4)), kStart + seconds(4));
  EXPECT_EQ(budget->stats().deferred, 0u);
}

TEST(AttemptBudget, FarFutureBookingDoesNotDelayEarlierOnes) {
  // A connection at the 120 s cap books far ahead; another connection's
  // attempt a second from now is not held back by it.
  auto budget = make_budget(2, seconds(60));
  EXPECT_EQ(budget->reserve(kStart + seconds(120), kStart),
            kStart + seconds(120));
  EXPECT_EQ(budget->reserve(kStart + seconds(1), kStart + milliseconds(10)),
            kStart + seconds(1));
  EXPECT_EQ(budget->reserve(kStart + seconds(2), kStart + milliseconds(20)),
            kStart + seconds(2));
  // [2 s, 62 s) holds two already; from 61 s on, [1 s, 61 s) no longer
  // holds both, and 61 s shares [61 s, 121 s) with the 120 s booking only.
  EXPECT_EQ(budget->reserve(kStart + seconds(3), kStart + milliseconds(30)),
            kStart + seconds(61));
}

TEST(AttemptBudget, OutOfOrderBookingsStillRespectTheWindow) {
  auto budget = make_budget(4, seconds(10));
  std::mt19937_64 rng(1);
  std::vector<SteadyTime> granted;
  SteadyTime now = kStart;
  for (int i = 0; i < 2'000; ++i) {
    now += milliseconds(rng() % 6'000);
    // Connections book ahead of a shared clock, in any order, each seeing
    // `now` a little late (its strand ran behind).
    const SteadyTime seen = now - milliseconds(rng() % 8'000);
    const SteadyTime want = seen + milliseconds(rng() % 5'000);
    const SteadyTime at = budget->reserve(want, seen);
    ASSERT_GE(at, want);
    granted.push_back(at);
  }
  EXPECT_TRUE(within_budget(granted, 4, seconds(10)));
  EXPECT_GT(budget->stats().deferred, 0u);
  EXPECT_LE(budget->stats().pending, 16u);  // old bookings are forgotten
}

TEST(Backoff, BudgetSharedByTwoBackoffsLimitsTotalAttempts) {
  auto budget = make_budget(4, seconds(10));
  const BackoffOptions o{.initial = seconds(1),
                         .multiplier = 1.0,
                         .jitter_mode = JitterMode::none,
                         .budget = budget};
  std::vector<Backoff> conns = {make(o), make(o)};
  std::vector<SteadyTime> next = {conns[0].first_attempt_at(kStart),
                                  conns[1].first_attempt_at(kStart)};
  std::vector<SteadyTime> starts;
  const SteadyTime end = kStart + seconds(60);
  // Every attempt fails at once; run whichever connection is due first.
  while (true) {
    const std::size_t i = next[0] <= next[1] ? 0 : 1;
    if (next[i] >= end) break;
    starts.push_back(next[i]);
    next[i] = conns[i].next_attempt_at(next[i], next[i]);
  }
  // Unbudgeted, the two would make 120 attempts in 60 s.
  EXPECT_EQ(starts.size(), 24u);
  EXPECT_TRUE(within_budget(starts, 4, seconds(10)));
  EXPECT_GT(conns[0].stats().budget_deferred, 0u);
  EXPECT_GT(conns[1].stats().budget_deferred, 0u);
  EXPECT_GT(conns[0].stats().budget_deferred_for, Duration::zero());
}

TEST(AttemptBudget, BooksTheEarliestAllowedTime) {
  // Brute force: every earlier candidate (the asked time, or a time where an
  // old booking leaves a window) would overfill some window.
  const Duration w = seconds(10);
  auto budget = make_budget(3, w);
  std::mt19937_64 rng(2);
  std::vector<SteadyTime> granted;
  SteadyTime now = kStart;
  for (int i = 0; i < 400; ++i) {
    now += milliseconds(rng() % 4'000);
    const SteadyTime asked = now + milliseconds(rng() % 8'000);
    const SteadyTime at = budget->reserve(asked, now);
    std::vector<SteadyTime> near;  // bookings that can share a window
    for (SteadyTime g : granted) {
      if (g > asked - w && g < at + w) near.push_back(g);
    }
    std::vector<SteadyTime> candidates = {asked};
    for (SteadyTime g : near) candidates.push_back(g + w);
    for (SteadyTime c : candidates) {
      if (c < asked || c >= at) continue;
      std::vector<SteadyTime> with = near;
      with.push_back(c);
      ASSERT_FALSE(within_budget(with, 3, w))
          << "booking " << i << " could have been "
          << nanoseconds(at - c).count() << " ns earlier";
    }
    granted.push_back(at);
  }
  EXPECT_TRUE(within_budget(granted, 3, w));
  EXPECT_GT(budget->stats().deferred, 10u);
}

TEST(AttemptBudget, IsThreadSafe) {
  auto budget = make_budget(5, seconds(1));
  constexpr int kThreads = 4;
  constexpr int kPerThread = 300;
  std::vector<std::vector<SteadyTime>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const SteadyTime now = kStart + milliseconds(i);
        got[t].push_back(budget->reserve(now, now));
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<SteadyTime> all;
  for (auto& v : got) all.insert(all.end(), v.begin(), v.end());
  EXPECT_EQ(budget->stats().granted,
            static_cast<std::uint64_t>(kThreads * kPerThread));
  EXPECT_TRUE(within_budget(all, 5, seconds(1)));
}

TEST(Backoff, IsACopyableValueType) {
  Backoff a = make({.seed = 5});
  (void)a.next_delay();
  Backoff b = a;  // copies the RNG state too
  EXPECT_EQ(a.next_delay(), b.next_delay());
}

}  // namespace
}  // namespace feedkit
