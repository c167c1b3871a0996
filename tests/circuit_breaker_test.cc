// Test that header file is self-contained.
#include "feedkit/circuit_breaker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>
#include <ostream>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "feedkit/testing/fake_clock.h"
#include "support/count_allocations.h"

namespace feedkit {

std::ostream& operator<<(std::ostream& os, CircuitState state) {
  return os << to_string(state);
}
std::ostream& operator<<(std::ostream& os, TransitionReason r) {
  return os << to_string(r);
}

namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;
using testing::FakeClock;

constexpr SteadyTime kT0 = FakeClock::kEpoch;  // a whole second

// The metrics tuple resilience4j's CircuitBreakerStateMachineTest asserts
// after every call.
struct Metrics {
  CircuitState state;
  double failure_rate;
  std::uint64_t buffered;
  std::uint64_t failed;
  std::uint64_t successful;
  std::uint64_t not_permitted;
  bool operator==(const Metrics&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Metrics& m) {
  return os << "{" << m.state << ", rate " << m.failure_rate << ", buffered "
            << m.buffered << ", failed " << m.failed << ", ok " << m.successful
            << ", not permitted " << m.not_permitted << "}";
}

Metrics metrics(CircuitBreaker& b, SteadyTime now) {
  const CircuitBreakerStats s = b.stats(now);
  return {s.state,        s.failure_rate,     s.buffered_calls,
          s.failed_calls, s.successful_calls, s.not_permitted_calls};
}

// resilience4j's test setup, with a count window: 50 %, 5 calls minimum,
// 4 half-open probes, 5 s open, 1 s half-open maximum.
CircuitBreakerOptions spec_options() {
  return {.window_size = 5,
          .minimum_calls = 5,
          .failure_rate_threshold = 50.0,
          .wait_in_open = seconds(5),
          .permitted_calls_in_half_open = 4,
          .max_wait_in_half_open = seconds(1)};
}

CircuitBreaker make(const CircuitBreakerOptions& options) {
  return CircuitBreaker::create(options).value();
}

// Acquires a permit (which must be granted) and records the outcome at once.
void call(CircuitBreaker& b, SteadyTime now, bool success) {
  auto permit = b.try_acquire(now);
  ASSERT_TRUE(permit.has_value()) << "call rejected in " << b.state(now);
  b.record(*permit, now, success);
}

void trip(CircuitBreaker& b, SteadyTime now) {
  for (int i = 0; i < 5; ++i) call(b, now, false);
  ASSERT_EQ(b.state(now), CircuitState::open);
}

// A breaker tripped at kT0, so half_open is due at kT0 + 5 s.
CircuitBreaker make_open() {
  CircuitBreaker b = make(spec_options());
  trip(b, kT0);
  return b;
}

struct TransitionLog {
  std::vector<CircuitTransition> events;
  void attach(CircuitBreaker& b) {
    b.add_listener([this](const CircuitTransition& t) { events.push_back(t); });
  }
};

// ---- Options ---------------------------------------------------------------

TEST(CircuitBreaker, SuggestedOptionsAreTheReferenceDefaults) {
  const CircuitBreakerOptions o = CircuitBreakerOptions::suggested();
  EXPECT_TRUE(o.validate().ok());
  EXPECT_EQ(o.window_type, SlidingWindowType::count_based);
  EXPECT_EQ(o.window_size, 100u);
  EXPECT_EQ(o.minimum_calls, 100u);
  EXPECT_EQ(o.failure_rate_threshold, 50.0);
  EXPECT_EQ(o.consecutive_failure_threshold, 0u);
  EXPECT_EQ(o.slow_call_duration, Duration::zero());  // slow calls off
  EXPECT_EQ(o.slow_call_rate_threshold, 100.0);
  EXPECT_EQ(o.wait_in_open, seconds(60));
  EXPECT_EQ(o.permitted_calls_in_half_open, 10u);
  EXPECT_EQ(o.max_wait_in_half_open,
            seconds(60));  // bounded, unlike resilience4j
}

TEST(CircuitBreaker, ValidateNamesTheFieldAndTheValue) {
  struct Case {
    CircuitBreakerOptions options;
    std::string field;
    std::string value;
  };
  const std::vector<Case> cases = {
      {{.window_size = 0}, "window_size", "got 0"},
      {{.window_size = 1'000'001}, "window_size", "got 1000001"},
      {{.window_type = SlidingWindowType::time_based, .window_size = 86'401},
       "window_size",
       "got 86401"},
      {{.minimum_calls = 0}, "minimum_calls", "got 0"},
      {{.failure_rate_threshold = 0}, "failure_rate_threshold", "got 0"},
      {{.failure_rate_threshold = 100.5},
       "failure_rate_threshold",
       "got 100.5"},
      {{.slow_call_duration = seconds(-1)}, "slow_call_duration", "got -1s"},
      {{.slow_call_rate_threshold = -3}, "slow_call_rate_threshold", "got -3"},
      {{.wait_in_open = Duration::zero()}, "wait_in_open", "got 0"},
      {{.permitted_calls_in_half_open = 0},
       "permitted_calls_in_half_open",
       "got 0"},
      {{.max_wait_in_half_open = Duration::zero()},
       "max_wait_in_half_open",
       "got 0"},
  };
  for (const Case& c : cases) {
    const absl::Status s = c.options.validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_NE(s.message().find("CircuitBreakerOptions::" + c.field),
              std::string::npos)
        << s.message();
    EXPECT_NE(s.message().find(c.value), std::string::npos) << s.message();
    EXPECT_FALSE(CircuitBreaker::create(c.options).ok()) << c.field;
  }
}

TEST(CircuitBreaker, AcceptsBoundaryOptions) {
  EXPECT_TRUE((CircuitBreakerOptions{.window_size = 1,
                                     .minimum_calls = 1,
                                     .failure_rate_threshold = 100,
                                     .slow_call_rate_threshold = 100,
                                     .permitted_calls_in_half_open = 1})
                  .validate()
                  .ok());
  EXPECT_TRUE(
      (CircuitBreakerOptions{.window_type = SlidingWindowType::time_based,
                             .window_size = 86'400})
          .validate()
          .ok());
}

// ---- Closed: the failure-rate rule ----------------------------------------

TEST(CircuitBreaker, TripsAtExactlyTheThresholdOnceMinimumCallsAreIn) {
  CircuitBreaker b = make({.window_size = 5,
                           .minimum_calls = 5,
                           .failure_rate_threshold = 60.0,
                           .wait_in_open = seconds(5)});
  // resilience4j's example: 3 errors then 2 successes -> open at exactly 60 %.
  call(b, kT0, false);
  EXPECT_EQ(metrics(b, kT0), (Metrics{CircuitState::closed, -1, 1, 1, 0, 0}));
  call(b, kT0, false);
  EXPECT_EQ(metrics(b, kT0), (Metrics{CircuitState::closed, -1, 2, 2, 0, 0}));
  call(b, kT0, false);
  EXPECT_EQ(metrics(b, kT0), (Metrics{CircuitState::closed, -1, 3, 3, 0, 0}));
  call(b, kT0, true);
  EXPECT_EQ(metrics(b, kT0), (Metrics{CircuitState::closed, -1, 4, 3, 1, 0}));
  auto fifth = b.try_acquire(kT0);
  ASSERT_TRUE(fifth);
  b.record_success(*fifth, kT0);
  // Entering open starts a fresh window; the trip is visible in the state.
  EXPECT_EQ(metrics(b, kT0), (Metrics{CircuitState::open, -1, 0, 0, 0, 0}));
  EXPECT_FALSE(b.try_acquire(kT0));
  EXPECT_EQ(metrics(b, kT0), (Metrics{CircuitState::open, -1, 0, 0, 0, 1}));
}

TEST(CircuitBreaker, StaysClosedJustBelowTheThreshold) {
  CircuitBreaker b = make(
      {.window_size = 5, .minimum_calls = 5, .failure_rate_threshold = 60.0});
  call(b, kT0, false);
  call(b, kT0, false);
  call(b, kT0, true);
  call(b, kT0, true);
  call(b, kT0, true);
  EXPECT_EQ(metrics(b, kT0), (Metrics{CircuitState::closed, 40.0, 5, 2, 3, 0}));
}

TEST(CircuitBreaker, NeverTripsBelowMinimumCallsEvenAtFullFailure) {
  CircuitBreaker b = make({.window_size = 10, .minimum_calls = 5});
  for (int i = 1; i <= 4; ++i) {
    call(b, kT0, false);
    EXPECT_EQ(metrics(b, kT0),
              (Metrics{CircuitState::closed, -1, std::uint64_t(i),
                       std::uint64_t(i), 0, 0}));
  }
  call(b, kT0, false);
  EXPECT_EQ(b.state(kT0), CircuitState::open);
}

TEST(CircuitBreaker, CountWindowForgetsTheOldestCall) {
  CircuitBreaker b = make(
      {.window_size = 4, .minimum_calls = 4, .failure_rate_threshold = 50.0});
  call(b, kT0, false);
  call(b, kT0, true);
  call(b, kT0, true);
  call(b, kT0, true);
  EXPECT_EQ(metrics(b, kT0), (Metrics{CircuitState::closed, 25.0, 4, 1, 3, 0}));
  call(b, kT0, true);  // evicts the failure
  EXPECT_EQ(metrics(b, kT0), (Metrics{CircuitState::closed, 0.0, 4, 0, 4, 0}));
  call(b, kT0, false);
  EXPECT_EQ(metrics(b, kT0), (Metrics{CircuitState::closed, 25.0, 4, 1, 3, 0}));
  call(b, kT0, false);
  EXPECT_EQ(b.state(kT0), CircuitState::open);  // 2 of the last 4
}

TEST(CircuitBreaker, MinimumCallsIsClampedToACountWindow) {
  CircuitBreaker b = make({.window_size = 3, .minimum_calls = 100});
  call(b, kT0, false);
  call(b, kT0, true);
  EXPECT_EQ(b.state(kT0), CircuitState::closed);
  call(b, kT0, false);
  EXPECT_EQ(b.state(kT0), CircuitState::open);  // 2 of 3 >= 50 %
}

// ---- Closed: the consecutive-failure rule ---------------------------------

TEST(CircuitBreaker, OpensAfterThresholdConsecutiveFailures) {
  CircuitBreaker b =
      make({.consecutive_failure_threshold = 3});  // rate needs 100 calls
  TransitionLog log;
  log.attach(b);
  call(b, kT0, false);
  call(b, kT0, false);
  EXPECT_EQ(b.stats(kT0).consecutive_failures, 2u);
  EXPECT_EQ(b.state(kT0), CircuitState::closed);
  call(b, kT0, false);
  EXPECT_EQ(b.state(kT0), CircuitState::open);
  ASSERT_EQ(log.events.size(), 1u);
  EXPECT_EQ(log.events[0].reason, TransitionReason::consecutive_failures);
}

TEST(CircuitBreaker, SuccessResetsTheConsecutiveFailureCount) {
  CircuitBreaker b = make({.consecutive_failure_threshold = 3});
  call(b, kT0, false);
  call(b, kT0, false);
  call(b, kT0, true);
  EXPECT_EQ(b.stats(kT0).consecutive_failures, 0u);
  call(b, kT0, false);
  call(b, kT0, false);
  EXPECT_EQ(b.state(kT0), CircuitState::closed);
  call(b, kT0, false);
  EXPECT_EQ(b.state(kT0), CircuitState::open);
}

// ---- Closed: the time-based window ----------------------------------------

CircuitBreakerOptions time_window_options() {
  return {.window_type = SlidingWindowType::time_based,
          .window_size = 10,  // seconds
          .minimum_calls = 3,
          .failure_rate_threshold = 50.0};
}

TEST(CircuitBreaker, TimeWindowTripsOnCallsWithinTheWindow) {
  CircuitBreaker b = make(time_window_options());
  call(b, kT0, false);
  call(b, kT0 + seconds(4), true);
  EXPECT_EQ(metrics(b, kT0 + seconds(4)),
            (Metrics{CircuitState::closed, -1, 2, 1, 1, 0}));
  call(b, kT0 + milliseconds(9'999), false);  // the first call is still in
  EXPECT_EQ(b.state(kT0 + milliseconds(9'999)), CircuitState::open);
}

TEST(CircuitBreaker, TimeWindowForgetsCallsOlderThanTheWindow) {
  CircuitBreaker b = make(time_window_options());
  call(b, kT0, false);
  call(b, kT0 + milliseconds(500), false);
  // Ten seconds on, both failures have left: 1 of 3 fails, not 3 of 5.
  call(b, kT0 + seconds(10), true);
  EXPECT_EQ(metrics(b, kT0 + seconds(10)),
            (Metrics{CircuitState::closed, -1, 1, 0, 1, 0}));
  call(b, kT0 + seconds(10), true);
  call(b, kT0 + seconds(10), false);
  EXPECT_EQ(metrics(b, kT0 + seconds(10)),
            (Metrics{CircuitState::closed, 100.0 / 3, 3, 1, 2, 0}));
}

TEST(CircuitBreaker, TimeWindowExpiresBucketByBucketOnRead) {
  CircuitBreaker b = make({.window_type = SlidingWindowType::time_based,
                           .window_size = 10,
                           .minimum_calls = 4,
                           .failure_rate_threshold = 90.0});
  call(b, kT0, false);
  call(b, kT0 + seconds(2), true);
  call(b, kT0 + seconds(2), true);
  EXPECT_EQ(metrics(b, kT0 + milliseconds(9'999)),
            (Metrics{CircuitState::closed, -1, 3, 1, 2, 0}));
  // Second 0 leaves the window at 10 s; second 2 at 12 s. Read only.
  EXPECT_EQ(metrics(b, kT0 + seconds(10)),
            (Metrics{CircuitState::closed, -1, 2, 0, 2, 0}));
  EXPECT_EQ(metrics(b, kT0 + seconds(12)),
            (Metrics{CircuitState::closed, -1, 0, 0, 0, 0}));
  // Old failures cannot combine with new ones after expiry.
  call(b, kT0 + seconds(30), false);
  call(b, kT0 + seconds(30), false);
  call(b, kT0 + seconds(30), false);
  EXPECT_EQ(metrics(b, kT0 + seconds(30)),
            (Metrics{CircuitState::closed, -1, 3, 3, 0, 0}));
}

TEST(CircuitBreaker, TimeWindowSkippingMoreThanItsLengthEmptiesIt) {
  CircuitBreaker b = make({.window_type = SlidingWindowType::time_based,
                           .window_size = 3,
                           .minimum_calls = 2,
                           .failure_rate_threshold = 100.0});
  call(b, kT0, false);
  call(b, kT0 + seconds(1000), true);
  EXPECT_EQ(metrics(b, kT0 + seconds(1000)),
            (Metrics{CircuitState::closed, -1, 1, 0, 1, 0}));
}

// ---- Slow calls
// --------------------------------------------------------------

CircuitBreakerOptions slow_options() {
  return {.window_size = 4,
          .minimum_calls = 4,
          .failure_rate_threshold = 50.0,
          .slow_call_duration = seconds(4),
          .slow_call_rate_threshold = 50.0};
}

TEST(CircuitBreaker, SlowCallRateTripsEvenWhenEveryCallSucceeds) {
  CircuitBreaker b = make(slow_options());
  TransitionLog log;
  log.attach(b);
  for (int i = 0; i < 2; ++i) {
    auto p = b.try_acquire(kT0);
    ASSERT_TRUE(p);
    b.record_success(*p, kT0 + seconds(5));  // slow
  }
  call(b, kT0 + seconds(5), true);
  EXPECT_EQ(b.stats(kT0 + seconds(5)).slow_calls, 2u);
  auto p = b.try_acquire(kT0 + seconds(5));
  ASSERT_TRUE(p);
  b.record(*p, kT0 + seconds(5), true, seconds(1));  // fast, caller-measured
  EXPECT_EQ(b.state(kT0 + seconds(5)), CircuitState::open);
  ASSERT_EQ(log.events.size(), 1u);
  EXPECT_EQ(log.events[0].reason, TransitionReason::slow_call_rate_exceeded);
}

TEST(CircuitBreaker, CallLastingExactlySlowCallDurationIsSlow) {
  CircuitBreaker b = make(slow_options());
  auto p = b.try_acquire(kT0);
  ASSERT_TRUE(p);
  b.record_success(*p, kT0 + seconds(4) - nanoseconds(1));
  EXPECT_EQ(b.stats(kT0 + seconds(4)).slow_calls, 0u);
  p = b.try_acquire(kT0);
  ASSERT_TRUE(p);
  b.record_success(*p, kT0 + seconds(4));
  const CircuitBreakerStats s = b.stats(kT0 + seconds(4));
  EXPECT_EQ(s.slow_calls, 1u);
  EXPECT_EQ(s.buffered_calls, 2u);
}

TEST(CircuitBreaker, SlowCallsAreNotTrackedByDefault) {
  CircuitBreaker b = make({.window_size = 2, .minimum_calls = 2});
  for (int i = 0; i < 2; ++i) {
    auto p = b.try_acquire(kT0);
    ASSERT_TRUE(p);
    b.record_success(*p, kT0 + std::chrono::hours(1));
  }
  const CircuitBreakerStats s = b.stats(kT0);
  EXPECT_EQ(s.state, CircuitState::closed);
  EXPECT_EQ(s.slow_calls, 0u);
  EXPECT_EQ(s.slow_call_rate, 0.0);
}

// ---- Open and half-open ----------------------------------------------------

TEST(CircuitBreaker, OpenRejectsAndCountsEveryCall) {
  CircuitBreaker b = make_open();
  for (int i = 1; i <= 3; ++i) {
    EXPECT_FALSE(b.try_acquire(kT0 + seconds(i)));
    EXPECT_EQ(metrics(b, kT0 + seconds(i)),
              (Metrics{CircuitState::open, -1, 0, 0, 0, std::uint64_t(i)}));
  }
  EXPECT_EQ(b.retry_after(kT0 + seconds(3)), seconds(2));
}

TEST(CircuitBreaker, MovesToHalfOpenOnReadOnceTheWaitHasElapsed) {
  CircuitBreaker b = make_open();
  TransitionLog log;
  log.attach(b);
  EXPECT_EQ(b.state(kT0 + seconds(5) - nanoseconds(1)), CircuitState::open);
  EXPECT_TRUE(log.events.empty());
  // A read alone makes the transition; nobody called try_acquire().
  EXPECT_EQ(b.state(kT0 + seconds(5)), CircuitState::half_open);
  ASSERT_EQ(log.events.size(), 1u);
  EXPECT_EQ(log.events[0].from, CircuitState::open);
  EXPECT_EQ(log.events[0].to, CircuitState::half_open);
  EXPECT_EQ(log.events[0].at, kT0 + seconds(5));
  EXPECT_EQ(log.events[0].reason, TransitionReason::wait_in_open_elapsed);
}

TEST(CircuitBreaker, StatsReadAlsoMovesToHalfOpen) {
  CircuitBreaker b = make_open();
  const CircuitBreakerStats s = b.stats(kT0 + seconds(6));
  EXPECT_EQ(s.state, CircuitState::half_open);
  EXPECT_EQ(s.half_open_permits_left, 4u);
}

TEST(CircuitBreaker, AdmitsExactlyKProbesInHalfOpen) {
  CircuitBreaker b = make_open();
  const SteadyTime t = kT0 + seconds(5);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(b.try_acquire(t)) << "probe " << i;
  EXPECT_FALSE(b.try_acquire(t));
  EXPECT_FALSE(b.try_acquire(t));
  EXPECT_EQ(metrics(b, t), (Metrics{CircuitState::half_open, -1, 0, 0, 0, 2}));
  EXPECT_EQ(b.stats(t).half_open_permits_left, 0u);
}

TEST(CircuitBreaker, ProbesBelowThresholdCloseWithAFreshWindow) {
  CircuitBreaker b = make_open();
  TransitionLog log;
  log.attach(b);
  const SteadyTime t = kT0 + seconds(5);
  std::vector<CircuitBreaker::Permit> probes;
  for (int i = 0; i < 4; ++i) probes.push_back(*b.try_acquire(t));
  b.record_failure(probes[0], t);
  EXPECT_EQ(metrics(b, t), (Metrics{CircuitState::half_open, -1, 1, 1, 0, 0}));
  b.record_success(probes[1], t);
  EXPECT_EQ(metrics(b, t), (Metrics{CircuitState::half_open, -1, 2, 1, 1, 0}));
  b.record_success(probes[2], t);
  EXPECT_EQ(metrics(b, t), (Metrics{CircuitState::half_open, -1, 3, 1, 2, 0}));
  b.record_success(probes[3], t);  // 25 % < 50 %
  EXPECT_EQ(metrics(b, t), (Metrics{CircuitState::closed, -1, 0, 0, 0, 0}));
  ASSERT_EQ(log.events.size(), 2u);
  EXPECT_EQ(log.events[1].reason, TransitionReason::probes_passed);
}

TEST(CircuitBreaker, ProbesAtThresholdReopenForAnotherWait) {
  CircuitBreaker b = make_open();
  const SteadyTime t = kT0 + seconds(5);
  call(b, t, true);
  call(b, t, false);
  call(b, t, true);
  EXPECT_EQ(b.state(t), CircuitState::half_open);
  call(b, t + milliseconds(10), false);  // 2 of 4 = 50 %
  EXPECT_EQ(b.state(t + milliseconds(10)), CircuitState::open);
  EXPECT_EQ(b.retry_after(t + milliseconds(10)), seconds(5));
  EXPECT_EQ(b.state(t + milliseconds(10) + seconds(5)),
            CircuitState::half_open);
}

TEST(CircuitBreaker, ProbesDecideOnSlowCallsToo) {
  CircuitBreakerOptions o = slow_options();
  o.permitted_calls_in_half_open = 2;
  CircuitBreaker b = make(o);
  TransitionLog log;
  log.attach(b);
  for (int i = 0; i < 4; ++i) call(b, kT0, false);
  const SteadyTime t = kT0 + seconds(60);
  ASSERT_EQ(b.state(t), CircuitState::half_open);
  auto p1 = b.try_acquire(t);
  auto p2 = b.try_acquire(t);
  ASSERT_TRUE(p1 && p2);
  b.record_success(*p1, t + milliseconds(10));
  b.record_success(*p2, t + seconds(4));  // slow: 1 of 2 = 50 %
  EXPECT_EQ(b.state(t + seconds(4)), CircuitState::open);
  EXPECT_EQ(log.events.back().reason,
            TransitionReason::slow_call_rate_exceeded);
}

TEST(CircuitBreaker, HungProbeIsReleasedByTheMaxHalfOpenWait) {
  CircuitBreaker b = make_open();
  TransitionLog log;
  log.attach(b);
  const SteadyTime t = kT0 + seconds(5);
  std::vector<CircuitBreaker::Permit> probes;
  for (int i = 0; i < 4; ++i) probes.push_back(*b.try_acquire(t));
  EXPECT_FALSE(b.try_acquire(t));  // probes used up, none reports
  EXPECT_EQ(b.state(t + seconds(1) - nanoseconds(1)), CircuitState::half_open);
  EXPECT_EQ(b.state(t + seconds(1)), CircuitState::open);
  ASSERT_EQ(log.events.size(), 2u);
  EXPECT_EQ(log.events[1].from, CircuitState::half_open);
  EXPECT_EQ(log.events[1].to, CircuitState::open);
  EXPECT_EQ(log.events[1].reason,
            TransitionReason::max_wait_in_half_open_elapsed);
  // A new probe cycle follows the open wait, with K fresh permits.
  const SteadyTime t2 = t + seconds(6);
  EXPECT_EQ(b.state(t2), CircuitState::half_open);
  EXPECT_EQ(b.stats(t2).half_open_permits_left, 4u);
  // The hung probe finally answers: late, and it decides nothing.
  b.record_success(probes[0], t2);
  const CircuitBreakerStats s = b.stats(t2);
  EXPECT_EQ(s.state, CircuitState::half_open);
  EXPECT_EQ(s.late_results, 1u);
  EXPECT_EQ(s.buffered_calls, 0u);
}

TEST(CircuitBreaker, RetryAfterCoversHungProbesInTheWorstCase) {
  CircuitBreaker b = make_open();
  const SteadyTime t = kT0 + seconds(5);
  EXPECT_EQ(b.retry_after(t), Duration::zero());  // half_open with probes left
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(b.try_acquire(t));
  EXPECT_EQ(b.retry_after(t + milliseconds(200)),
            milliseconds(800) + seconds(5));
}

TEST(CircuitBreaker, ReleasedProbeGivesItsPermitBack) {
  CircuitBreaker b = make_open();
  const SteadyTime t = kT0 + seconds(5);
  std::vector<CircuitBreaker::Permit> probes;
  for (int i = 0; i < 4; ++i) probes.push_back(*b.try_acquire(t));
  EXPECT_FALSE(b.try_acquire(t));
  b.release(probes[3], t);  // cancelled: neither success nor failure
  EXPECT_EQ(b.stats(t).half_open_permits_left, 1u);
  EXPECT_EQ(b.stats(t).released_permits, 1u);
  auto again = b.try_acquire(t);
  ASSERT_TRUE(again);
  for (int i = 0; i < 3; ++i) b.record_success(probes[i], t);
  EXPECT_EQ(b.state(t), CircuitState::half_open);  // 3 of 4 results
  b.record_success(*again, t);
  EXPECT_EQ(b.state(t), CircuitState::closed);
}

TEST(CircuitBreaker, ReleaseNeverCreatesMoreThanKProbes) {
  CircuitBreaker b = make_open();
  const SteadyTime t = kT0 + seconds(5);
  auto p = b.try_acquire(t);
  ASSERT_TRUE(p);
  b.release(*p, t);
  b.release(*p, t);  // a second release of the same permit gives nothing back
  EXPECT_EQ(b.stats(t).half_open_permits_left, 4u);
}

// ---- Late results ----------------------------------------------------------

TEST(CircuitBreaker, ResultsOfCallsAdmittedBeforeATripNeverTransition) {
  CircuitBreaker b = make(spec_options());
  TransitionLog log;
  log.attach(b);
  std::vector<CircuitBreaker::Permit> in_flight;
  for (int i = 0; i < 10; ++i) in_flight.push_back(*b.try_acquire(kT0));
  for (int i = 0; i < 5; ++i) b.record_failure(in_flight[i], kT0);
  ASSERT_EQ(b.state(kT0), CircuitState::open);
  // Five successes of calls admitted while closed arrive while open.
  for (int i = 5; i < 10; ++i) {
    b.record_success(in_flight[i], kT0 + milliseconds(i));
    const CircuitBreakerStats s = b.stats(kT0 + milliseconds(i));
    EXPECT_EQ(s.state, CircuitState::open);
    EXPECT_EQ(s.late_results, std::uint64_t(i - 4));
    EXPECT_EQ(s.buffered_calls, 0u);
  }
  EXPECT_EQ(log.events.size(), 1u);
}

TEST(CircuitBreaker, LateFailuresCannotReopenAClosedBreaker) {
  CircuitBreaker b = make(spec_options());
  std::vector<CircuitBreaker::Permit>
      old;  // admitted in the first closed period
  for (int i = 0; i < 5; ++i) old.push_back(*b.try_acquire(kT0));
  trip(b, kT0);
  const SteadyTime t = kT0 + seconds(5);
  for (int i = 0; i < 4; ++i) call(b, t, true);
  ASSERT_EQ(b.state(t), CircuitState::closed);
  // Five failures would trip this window (5 calls, 50 %), but they are late.
  for (const auto& p : old) b.record_failure(p, t);
  const CircuitBreakerStats s = b.stats(t);
  EXPECT_EQ(s.state, CircuitState::closed);
  EXPECT_EQ(s.late_results, 5u);
  EXPECT_EQ(s.buffered_calls, 0u);
  EXPECT_EQ(s.consecutive_failures, 0u);
  EXPECT_NE(old[0].generation(), b.try_acquire(t)->generation());
}

// ---- Manual states
// -----------------------------------------------------------

TEST(CircuitBreaker, ForcedOpenRejectsEverythingAndNeverLeavesByItself) {
  CircuitBreaker b = make(spec_options());
  b.transition_to_forced_open(kT0);
  for (int i = 0; i < 3; ++i)
    EXPECT_FALSE(b.try_acquire(kT0 + std::chrono::hours(i)));
  EXPECT_EQ(metrics(b, kT0 + std::chrono::hours(24)),
            (Metrics{CircuitState::forced_open, -1, 0, 0, 0, 3}));
  EXPECT_EQ(b.retry_after(kT0), Duration::max());
}

TEST(CircuitBreaker, DisabledAdmitsEverythingAndRecordsNothing) {
  CircuitBreaker b = make(spec_options());
  b.transition_to_disabled(kT0);
  for (int i = 0; i < 50; ++i) call(b, kT0, false);
  const CircuitBreakerStats s = b.stats(kT0);
  EXPECT_EQ(s.state, CircuitState::disabled);
  EXPECT_EQ(s.buffered_calls, 0u);
  EXPECT_EQ(s.consecutive_failures, 0u);
  EXPECT_EQ(s.not_permitted_calls, 0u);
  EXPECT_EQ(s.transitions, 1u);
}

TEST(CircuitBreaker, MetricsOnlyRecordsButNeverTrips) {
  CircuitBreakerOptions o = spec_options();
  o.consecutive_failure_threshold = 2;
  CircuitBreaker b = make(o);
  b.transition_to_metrics_only(kT0);
  call(b, kT0, true);
  for (int i = 0; i < 4; ++i) call(b, kT0, false);
  EXPECT_EQ(metrics(b, kT0),
            (Metrics{CircuitState::metrics_only, 80.0, 5, 4, 1, 0}));
  EXPECT_EQ(b.stats(kT0).consecutive_failures, 4u);
  EXPECT_EQ(b.stats(kT0).transitions, 1u);
}

TEST(CircuitBreaker, ManualTransitionToTheCurrentStateIsANoOp) {
  CircuitBreaker b = make(spec_options());
  TransitionLog log;
  log.attach(b);
  call(b, kT0, false);
  b.transition_to_closed(kT0);
  EXPECT_TRUE(log.events.empty());
  EXPECT_EQ(b.stats(kT0).buffered_calls, 1u);
}

TEST(CircuitBreaker, ResetClosesAndClearsTheWindowFromAnyState) {
  CircuitBreaker b = make_open();
  TransitionLog log;
  log.attach(b);
  EXPECT_FALSE(b.try_acquire(kT0));
  b.reset(kT0 + seconds(1));
  EXPECT_EQ(metrics(b, kT0 + seconds(1)),
            (Metrics{CircuitState::closed, -1, 0, 0, 0, 1}));
  ASSERT_EQ(log.events.size(), 1u);
  EXPECT_EQ(log.events[0].reason, TransitionReason::reset);
  // From closed too: the window is cleared and the reset is reported.
  call(b, kT0 + seconds(1), false);
  call(b, kT0 + seconds(1), false);
  b.reset(kT0 + seconds(2));
  EXPECT_EQ(b.stats(kT0 + seconds(2)).buffered_calls, 0u);
  EXPECT_EQ(b.stats(kT0 + seconds(2)).consecutive_failures, 0u);
  ASSERT_EQ(log.events.size(), 2u);
  EXPECT_EQ(log.events[1].from, CircuitState::closed);
  EXPECT_EQ(log.events[1].to, CircuitState::closed);
}

// ---- Listeners -------------------------------------------------------------

TEST(CircuitBreaker, ListenerIsCalledOncePerTransitionThroughAFullCycle) {
  CircuitBreaker b = make(spec_options());
  TransitionLog log;
  int second_listener_calls = 0;
  log.attach(b);
  b.add_listener([&](const CircuitTransition&) { ++second_listener_calls; });

  trip(b, kT0);  // closed -> open
  EXPECT_EQ(b.state(kT0 + seconds(5)),
            CircuitState::half_open);  // -> half_open
  EXPECT_EQ(b.state(kT0 + seconds(5)), CircuitState::half_open);  // no repeat
  for (int i = 0; i < 4; ++i) call(b, kT0 + seconds(5), false);   // -> open
  EXPECT_EQ(b.state(kT0 + seconds(10)),
            CircuitState::half_open);  // -> half_open
  EXPECT_EQ(b.state(kT0 + seconds(11)),
            CircuitState::open);  // max wait -> open
  for (int i = 0; i < 4; ++i)
    call(b, kT0 + seconds(16), true);  // half_open -> closed
  b.transition_to_metrics_only(kT0 + seconds(17));
  b.transition_to_disabled(kT0 + seconds(18));
  b.transition_to_forced_open(kT0 + seconds(19));
  b.reset(kT0 + seconds(20));

  using S = CircuitState;
  using R = TransitionReason;
  const std::vector<std::tuple<S, S, SteadyTime, R>> expected = {
      {S::closed, S::open, kT0, R::failure_rate_exceeded},
      {S::open, S::half_open, kT0 + seconds(5), R::wait_in_open_elapsed},
      {S::half_open, S::open, kT0 + seconds(5), R::failure_rate_exceeded},
      {S::open, S::half_open, kT0 + seconds(10), R::wait_in_open_elapsed},
      {S::half_open, S::open, kT0 + seconds(11),
       R::max_wait_in_half_open_elapsed},
      {S::open, S::half_open, kT0 + seconds(16), R::wait_in_open_elapsed},
      {S::half_open, S::closed, kT0 + seconds(16), R::probes_passed},
      {S::closed, S::metrics_only, kT0 + seconds(17), R::manual},
      {S::metrics_only, S::disabled, kT0 + seconds(18), R::manual},
      {S::disabled, S::forced_open, kT0 + seconds(19), R::manual},
      {S::forced_open, S::closed, kT0 + seconds(20), R::reset},
  };
  ASSERT_EQ(log.events.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const CircuitTransition& e = log.events[i];
    EXPECT_EQ(std::make_tuple(e.from, e.to, e.at, e.reason), expected[i])
        << "transition " << i;
  }
  EXPECT_EQ(second_listener_calls, static_cast<int>(expected.size()));
  EXPECT_EQ(b.stats(kT0 + seconds(20)).transitions, expected.size());
}

// ---- Allocation ------------------------------------------------------------

TEST(CircuitBreaker, HotPathNeverAllocates) {
  for (SlidingWindowType type :
       {SlidingWindowType::count_based, SlidingWindowType::time_based}) {
    CircuitBreaker b = make({.window_type = type,
                             .window_size = 10,
                             .minimum_calls = 5,
                             .failure_rate_threshold = 60.0,
                             .wait_in_open = seconds(5),
                             .permitted_calls_in_half_open = 2,
                             .max_wait_in_half_open = seconds(1)});
    int opens = 0;
    int closes = 0;
    b.add_listener([&](const CircuitTransition& e) {
      opens += e.to == CircuitState::open ? 1 : 0;
      closes += e.to == CircuitState::closed ? 1 : 0;
    });
    SteadyTime t = kT0;
    long allocations = 0;
    {
      testing::AllocationCounter counter;
      for (int i = 0; i < 10'000; ++i) {
        t += milliseconds(7);
        if (auto p = b.try_acquire(t))
          b.record(*p, t, i % 3 == 0);  // 2 of 3 fail
        (void)b.stats(t);
      }
      allocations = counter.count();
    }
    EXPECT_EQ(allocations, 0);
    EXPECT_GT(opens, 1);  // the loop went through trips, probes and closes
    EXPECT_GT(closes, 0);
  }
}

// ---- Registry --------------------------------------------------------------

TEST(CircuitBreakerRegistry, ReturnsTheSameInstanceByName) {
  CircuitBreakerRegistry registry;
  CircuitBreaker* kis = registry.get_or_create("kis", spec_options()).value();
  CircuitBreaker* kiwoom =
      registry.get_or_create("kiwoom", spec_options()).value();
  EXPECT_NE(kis, kiwoom);
  EXPECT_EQ(registry.get_or_create("kis", spec_options()).value(), kis);
  EXPECT_EQ(registry.find("kis"), kis);
  EXPECT_EQ(registry.find("settrade"), nullptr);
  EXPECT_EQ(registry.size(), 2u);
  trip(*kis, kT0);
  EXPECT_EQ(registry.find("kis")->state(kT0), CircuitState::open);
}

TEST(CircuitBreakerRegistry, RejectsInvalidOptionsAndEmptyNames) {
  CircuitBreakerRegistry registry;
  auto bad = registry.get_or_create("kis", {.minimum_calls = 0});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("minimum_calls"), std::string::npos);
  EXPECT_EQ(registry.find("kis"), nullptr);
  EXPECT_EQ(registry.get_or_create("", spec_options()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry.size(), 0u);
}

TEST(CircuitBreakerRegistry, RejectsDifferentOptionsForAnExistingName) {
  CircuitBreakerRegistry registry;
  ASSERT_TRUE(registry.get_or_create("kis", spec_options()).ok());
  CircuitBreakerOptions other = spec_options();
  other.wait_in_open = seconds(6);
  auto clash = registry.get_or_create("kis", other);
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(clash.status().message().find("kis"), std::string::npos);
}

TEST(CircuitBreakerRegistry, ForEachVisitsEveryBreakerInNameOrder) {
  CircuitBreakerRegistry registry;
  for (const char* name : {"settrade", "kis", "kiwoom"}) {
    ASSERT_TRUE(registry.get_or_create(name, spec_options()).ok());
  }
  trip(*registry.find("kiwoom"), kT0);
  std::vector<std::string> seen;
  std::vector<CircuitState> states;
  registry.for_each([&](std::string_view name, CircuitBreaker& b) {
    seen.emplace_back(name);
    states.push_back(b.state(kT0));
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"kis", "kiwoom", "settrade"}));
  EXPECT_EQ(states,
            (std::vector<CircuitState>{CircuitState::closed, CircuitState::open,
                                       CircuitState::closed}));
}

}  // namespace
}  // namespace feedkit
