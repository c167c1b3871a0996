// Test that header file is self-contained.
#include "feedkit/rate_limiter.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>

#include "feedkit/testing/fake_clock.h"

namespace feedkit {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;
using testing::FakeClock;

constexpr SteadyTime kStart = FakeClock::kEpoch;

RateLimiter make(double rate, double burst, SteadyTime start = kStart) {
  return RateLimiter::create({.rate_per_second = rate, .burst = burst}, start)
      .value();
}

TEST(RateLimiter, RejectsInvalidOptionsNamingTheField) {
  auto zero_rate =
      RateLimiter::create({.rate_per_second = 0, .burst = 5}, kStart);
  ASSERT_FALSE(zero_rate.ok());
  EXPECT_EQ(zero_rate.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(zero_rate.status().message().find("rate_per_second"),
            std::string::npos);

  auto nan_rate = RateLimiter::create(
      {.rate_per_second = std::nan(""), .burst = 5}, kStart);
  ASSERT_FALSE(nan_rate.ok());
  EXPECT_NE(nan_rate.status().message().find("rate_per_second"),
            std::string::npos);

  auto small_burst =
      RateLimiter::create({.rate_per_second = 1, .burst = 0.5}, kStart);
  ASSERT_FALSE(small_burst.ok());
  EXPECT_EQ(small_burst.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(small_burst.status().message().find("burst"), std::string::npos);
  EXPECT_NE(small_burst.status().message().find("0.5"), std::string::npos);

  EXPECT_TRUE(RateLimiterOptions::suggested().validate().ok());
}

TEST(RateLimiter, StartsFullThenAllowsExactlyTheBurst) {
  RateLimiter limiter = make(2, 5);
  EXPECT_DOUBLE_EQ(limiter.available(kStart), 5.0);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(limiter.try_acquire(kStart)) << i;
  EXPECT_FALSE(limiter.try_acquire(kStart));
  EXPECT_DOUBLE_EQ(limiter.available(kStart), 0.0);
}

TEST(RateLimiter, RefillsAtTheSustainedRateAfterTheBurst) {
  FakeClock clock;
  RateLimiter limiter = make(4, 4, clock.now());  // one token every 250 ms
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(limiter.try_acquire(clock.now()));

  int granted = 0;
  for (int step = 0; step < 100; ++step) {  // 10 s in 100 ms steps
    clock.advance(milliseconds(100));
    while (limiter.try_acquire(clock.now())) ++granted;
  }
  EXPECT_EQ(granted, 40);  // 4 per second for 10 s, no more
  EXPECT_EQ(limiter.stats().acquired, 44u);
}

TEST(RateLimiter, NextAvailableIsExact) {
  RateLimiter limiter = make(4, 2);                   // 250 ms per token
  EXPECT_EQ(limiter.next_available(kStart), kStart);  // full: now
  ASSERT_TRUE(limiter.try_acquire(kStart, 2));
  const SteadyTime one = limiter.next_available(kStart);
  EXPECT_EQ(one, kStart + milliseconds(250));
  EXPECT_EQ(limiter.next_available(kStart, 2), kStart + milliseconds(500));
  // One nanosecond early is not enough; the returned time is.
  EXPECT_FALSE(limiter.try_acquire(one - nanoseconds(1)));
  EXPECT_TRUE(limiter.try_acquire(one));
  EXPECT_FALSE(limiter.try_acquire(one));
}

TEST(RateLimiter, NextAvailableRoundsUpToAWholeNanosecond) {
  RateLimiter limiter = make(3, 1);  // 333,333,333.3 ns per token
  ASSERT_TRUE(limiter.try_acquire(kStart));
  const SteadyTime at = limiter.next_available(kStart);
  EXPECT_EQ(at, kStart + nanoseconds(333'333'334));
  EXPECT_FALSE(limiter.try_acquire(at - nanoseconds(1)));
  EXPECT_TRUE(limiter.try_acquire(at));
}

TEST(RateLimiter, NextAvailableCountsFromPartialTokens) {
  RateLimiter limiter = make(10, 1);
  ASSERT_TRUE(limiter.try_acquire(kStart));
  // 40 ms later 0.4 tokens are there; 0.6 more take 60 ms.
  EXPECT_EQ(limiter.next_available(kStart + milliseconds(40)),
            kStart + milliseconds(100));
}

TEST(RateLimiter, NextAvailableIsTheFirstNanosecondThatSuffices) {
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> log_rate(-3, 4);  // 0.001..10^4/s
  std::uniform_real_distribution<double> unit(0, 1);
  for (int i = 0; i < 2'000; ++i) {
    const double burst = 1 + 99 * unit(rng);
    RateLimiter limiter = make(std::pow(10.0, log_rate(rng)), burst);
    SteadyTime now = kStart;
    ASSERT_TRUE(limiter.try_acquire(now, burst * unit(rng)));
    now += nanoseconds(static_cast<std::int64_t>(unit(rng) * 1e9));
    const double want = burst * unit(rng);
    const SteadyTime at = limiter.next_available(now, want);
    ASSERT_GE(at, now);
    RateLimiter on_time = limiter;
    EXPECT_TRUE(on_time.try_acquire(at, want)) << i;
    if (at > now) {
      RateLimiter early = limiter;
      EXPECT_FALSE(early.try_acquire(at - nanoseconds(1), want)) << i;
    }
  }
}

TEST(RateLimiter, DoesNotStoreMoreThanTheBurstAfterLongIdle) {
  RateLimiter limiter = make(100, 3);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(limiter.try_acquire(kStart));
  const SteadyTime later = kStart + hours(24 * 365);
  EXPECT_DOUBLE_EQ(limiter.available(later), 3.0);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.try_acquire(later)) << i;
  EXPECT_FALSE(limiter.try_acquire(later));
}

TEST(RateLimiter, SurvivesTheLargestPossibleGap) {
  RateLimiter limiter = make(1, 2, SteadyTime::min());
  ASSERT_TRUE(limiter.try_acquire(SteadyTime::min(), 2));
  EXPECT_DOUBLE_EQ(limiter.available(SteadyTime::max()), 2.0);
  EXPECT_TRUE(limiter.try_acquire(SteadyTime::max(), 2));
  EXPECT_EQ(limiter.next_available(SteadyTime::max()), SteadyTime::max());
}

TEST(RateLimiter, TimeGoingBackwardsRefillsNothing) {
  RateLimiter limiter = make(10, 1);
  const SteadyTime t = kStart + seconds(5);
  ASSERT_TRUE(limiter.try_acquire(t));
  // An earlier `now` neither refills nor moves the refill origin back.
  EXPECT_DOUBLE_EQ(limiter.available(kStart), 0.0);
  EXPECT_FALSE(limiter.try_acquire(kStart));
  EXPECT_FALSE(limiter.try_acquire(t - milliseconds(50)));
  // Refill resumes from `t`, the latest time seen: 100 ms after it.
  EXPECT_EQ(limiter.next_available(kStart), t + milliseconds(100));
  EXPECT_FALSE(limiter.try_acquire(t + milliseconds(99)));
  EXPECT_TRUE(limiter.try_acquire(t + milliseconds(100)));
}

TEST(RateLimiter, TakesFractionalTokens) {
  RateLimiter limiter = make(1, 1);
  EXPECT_TRUE(limiter.try_acquire(kStart, 0.25));
  EXPECT_TRUE(limiter.try_acquire(kStart, 0.5));
  EXPECT_DOUBLE_EQ(limiter.available(kStart), 0.25);
  EXPECT_FALSE(limiter.try_acquire(kStart, 0.5));
  EXPECT_EQ(limiter.next_available(kStart, 0.5), kStart + milliseconds(250));
  EXPECT_TRUE(limiter.try_acquire(kStart + milliseconds(250), 0.5));
  EXPECT_DOUBLE_EQ(limiter.stats().tokens_acquired, 1.25);
}

TEST(RateLimiter, FractionalBurstAllowsAFractionalRemainder) {
  RateLimiter limiter = make(1, 2.5);
  EXPECT_TRUE(limiter.try_acquire(kStart, 2));
  EXPECT_TRUE(limiter.try_acquire(kStart, 0.5));
  EXPECT_FALSE(limiter.try_acquire(kStart, 0.1));
}

TEST(RateLimiter, MoreThanTheBurstIsNeverAvailable) {
  RateLimiter limiter = make(10, 3);
  EXPECT_FALSE(limiter.try_acquire(kStart, 3.5));
  EXPECT_FALSE(limiter.try_acquire(kStart + hours(1), 4));
  EXPECT_EQ(limiter.next_available(kStart, 3.5), SteadyTime::max());
  // The refused request took nothing.
  EXPECT_DOUBLE_EQ(limiter.available(kStart + hours(1)), 3.0);
  EXPECT_EQ(limiter.stats().rejected, 2u);
}

TEST(RateLimiter, ZeroTokensAlwaysSucceed) {
  RateLimiter limiter = make(1, 1);
  ASSERT_TRUE(limiter.try_acquire(kStart));
  EXPECT_TRUE(limiter.try_acquire(kStart, 0));
  EXPECT_EQ(limiter.next_available(kStart, 0), kStart);
}

TEST(RateLimiter, DrainEmptiesTheBucket) {
  RateLimiter limiter = make(2, 4);
  limiter.drain(kStart);
  EXPECT_DOUBLE_EQ(limiter.available(kStart), 0.0);
  EXPECT_FALSE(limiter.try_acquire(kStart));
  EXPECT_EQ(limiter.next_available(kStart), kStart + milliseconds(500));
  EXPECT_EQ(limiter.stats().drained, 1u);
}

TEST(RateLimiter, CountsAcquiredAndRejected) {
  RateLimiter limiter = make(1, 2);
  EXPECT_TRUE(limiter.try_acquire(kStart));
  EXPECT_TRUE(limiter.try_acquire(kStart));
  EXPECT_FALSE(limiter.try_acquire(kStart));
  EXPECT_FALSE(limiter.try_acquire(kStart));
  EXPECT_FALSE(limiter.try_acquire(kStart));
  RateLimiterStats s = limiter.stats();
  EXPECT_EQ(s.acquired, 2u);
  EXPECT_EQ(s.rejected, 3u);
  EXPECT_DOUBLE_EQ(s.tokens_acquired, 2.0);
}

TEST(RateLimiter, IsCopyableValueType) {
  RateLimiter a = make(1, 1);
  RateLimiter b = a;
  ASSERT_TRUE(a.try_acquire(kStart));
  EXPECT_TRUE(b.try_acquire(kStart));  // b has its own bucket
}

}  // namespace
}  // namespace feedkit
