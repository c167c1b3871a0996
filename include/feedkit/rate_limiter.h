// SPDX-License-Identifier: Apache-2.0
//
// feedkit/rate_limiter.h
//
// A RateLimiter paces outgoing requests (subscribe frames, token REST calls)
// with a token bucket: it holds up to `burst` tokens, refills continuously at
// `rate_per_second`, and starts full. A request of n tokens (n may be
// fractional) proceeds only if n tokens are there; the bucket never goes
// negative and never stores more than `burst` (a long idle earns one burst,
// not a flood).
//
//   try_acquire(now, n)      takes n tokens and returns true, or takes nothing
//   next_available(now, n)   the earliest time try_acquire(n) would succeed:
//                            `now` if it would now; SteadyTime::max() if
//                            n > burst (it never will)
//
// Time going backwards is safe: an earlier `now` than any seen before refills
// nothing and the bucket keeps its state. Reads no clock, starts no thread,
// never blocks, never allocates.
//
// Thread safety: thread-compatible (a shared limiter needs external
// synchronization, e.g. the connection's strand).
//
// Example:
//   auto limiter = feedkit::RateLimiter::create(
//       {.rate_per_second = 5, .burst = 5}, now).value();
//   if (limiter.try_acquire(now)) send(subscribe_frame);
//   else timer.expires_at(limiter.next_available(now));
#pragma once

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "feedkit/clock.h"

namespace feedkit {

struct RateLimiterOptions {
  // Sustained refill rate, in tokens per second; finite, > 0.
  double rate_per_second = 10;
  // Bucket size, in tokens: the most that can be taken at once; finite, >= 1.
  double burst = 10;

  // Returns 10 tokens/s with a burst of 10 (one second's worth, as Guava's
  // SmoothBursty): a sane pace for subscribe frames to one broker.
  static RateLimiterOptions suggested() noexcept { return {}; }

  // Returns OK, or kInvalidArgument naming the first field out of range.
  absl::Status validate() const;
};

struct RateLimiterStats {
  std::uint64_t acquired = 0;  // try_acquire() calls that succeeded
  std::uint64_t rejected = 0;  // try_acquire() calls that took nothing
  double tokens_acquired = 0;  // tokens taken by the successful calls
  std::uint64_t drained = 0;   // drain() calls
};

class RateLimiter {
 public:
  // Returns a limiter whose bucket is full at `start`, or kInvalidArgument if
  // `options` are out of range.
  static absl::StatusOr<RateLimiter> create(RateLimiterOptions options,
                                            SteadyTime start) {
    if (absl::Status s = options.validate(); !s.ok()) return s;
    return RateLimiter(options, start);
  }

  // Takes `tokens` (>= 0, may be fractional) and returns true if at least that
  // many are available at `now`; otherwise takes nothing and returns false.
  // Always false if `tokens` > burst. Never blocks. Never allocates.
  [[nodiscard]] bool try_acquire(SteadyTime now, double tokens = 1.0) {
    assert(tokens >= 0 &&
           "RateLimiter::try_acquire needs a non-negative token count");
    refill(now);
    if (tokens > options_.burst || !enough(tokens_, tokens)) {
      ++stats_.rejected;
      return false;
    }
    tokens_ = std::max(0.0, tokens_ - tokens);
    ++stats_.acquired;
    stats_.tokens_acquired += tokens;
    return true;
  }

  // Returns the earliest time at which try_acquire(that time, `tokens`) would
  // succeed if nothing else is taken meanwhile: `now` if it would succeed now,
  // SteadyTime::max() if `tokens` > burst (it never will). Rounded up to the
  // next nanosecond, so the returned time always suffices. Never blocks.
  SteadyTime next_available(SteadyTime now, double tokens = 1.0) const {
    assert(tokens >= 0 &&
           "RateLimiter::next_available needs a non-negative token count");
    if (tokens > options_.burst) return SteadyTime::max();
    const double have = tokens_at(now);
    if (enough(have, tokens)) return now;
    // Refill resumes from the latest time seen, which is later than `now` if
    // time went backwards; it does not suffice there.
    const Duration::rep from = std::max(now, last_).time_since_epoch().count();
    const double guess_ns =
        std::ceil((tokens - have) / options_.rate_per_second * 1e9);
    // 2^62 ns is 146 years: anything longer is "never".
    if (!(guess_ns < 0x1p62)) return SteadyTime::max();
    // Whether try_acquire() would succeed at `t`: false at `from`, monotone in
    // t. The formula's guess is off by rounding only; bracket the first `t`
    // where it holds around the guess, then bisect, so the answer is exact to
    // the nanosecond whatever the rate.
    auto suffices = [&](Duration::rep t) {
      return enough(tokens_at(SteadyTime(Duration(t))), tokens);
    };
    const Duration::rep kMax = SteadyTime::max().time_since_epoch().count();
    const Duration::rep guess =
        saturating_add(from, static_cast<Duration::rep>(guess_ns));
    Duration::rep lo = from;   // does not suffice
    Duration::rep hi = guess;  // suffices (once the loops below are done)
    if (suffices(guess)) {
      for (Duration::rep step = 1;; step = saturating_add(step, step)) {
        const Duration::rep t = saturating_add(guess, -step);
        if (t <= from) break;
        if (!suffices(t)) {
          lo = t;
          break;
        }
        hi = t;
      }
    } else {
      for (Duration::rep step = 1;; step = saturating_add(step, step)) {
        lo = hi;
        hi = saturating_add(guess, step);
        if (suffices(hi)) break;
        if (hi == kMax) return SteadyTime::max();
      }
    }
    while (hi - lo > 1) {
      const Duration::rep mid = lo + (hi - lo) / 2;
      (suffices(mid) ? hi : lo) = mid;
    }
    return SteadyTime(Duration(hi));
  }

  // Returns the tokens available at `now` (0..burst). Never blocks.
  double available(SteadyTime now) const { return tokens_at(now); }

  // Empties the bucket at `now`, e.g. after the venue answered "too many
  // requests": refill starts again from zero. Never blocks.
  void drain(SteadyTime now) {
    refill(now);
    tokens_ = 0;
    ++stats_.drained;
  }

  // Returns a snapshot of the counters. Never blocks.
  RateLimiterStats stats() const { return stats_; }

  const RateLimiterOptions& options() const { return options_; }

 private:
  // Absorbs floating-point rounding so that next_available() is exact.
  static constexpr double kTolerance = 1e-12;  // times burst

  RateLimiter(RateLimiterOptions options, SteadyTime start)
      : options_(options), tokens_(options.burst), last_(start) {}

  bool enough(double have, double want) const {
    return have >= want - kTolerance * options_.burst;
  }

  // Returns the tokens at `now` without changing state: none are added for a
  // `now` earlier than the latest time seen; never more than burst.
  double tokens_at(SteadyTime now) const {
    if (now <= last_) return tokens_;
    const double refill =
        elapsed_seconds(last_, now) * options_.rate_per_second;
    return std::min(options_.burst, tokens_ + refill);
  }

  void refill(SteadyTime now) {
    if (now <= last_) return;  // time went backwards or stood still: no refill
    tokens_ = tokens_at(now);
    last_ = now;
  }

  static Duration::rep saturating_add(Duration::rep a, Duration::rep b) {
    Duration::rep sum = 0;
    if (__builtin_add_overflow(a, b, &sum)) {
      return b > 0 ? std::numeric_limits<Duration::rep>::max()
                   : std::numeric_limits<Duration::rep>::min();
    }
    return sum;
  }

  // Returns (to - from) in seconds for from < to, without overflowing when the
  // two are far apart (e.g. SteadyTime::min() and max()).
  static double elapsed_seconds(SteadyTime from, SteadyTime to) {
    const Duration::rep a = from.time_since_epoch().count();
    const Duration::rep b = to.time_since_epoch().count();
    Duration::rep diff = 0;
    if (__builtin_sub_overflow(b, a, &diff))
      return std::numeric_limits<double>::infinity();
    return static_cast<double>(diff) * 1e-9;
  }

  RateLimiterOptions options_;
  double tokens_;    // tokens at last_, in [0, burst]
  SteadyTime last_;  // the latest `now` seen; refill is counted from here
  RateLimiterStats stats_;
};

inline absl::Status RateLimiterOptions::validate() const {
  if (!(rate_per_second > 0) || !std::isfinite(rate_per_second)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "RateLimiterOptions::rate_per_second must be finite and > 0, got ",
        rate_per_second));
  }
  if (!(burst >= 1) || !std::isfinite(burst)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "RateLimiterOptions::burst must be finite and >= 1, got ", burst));
  }
  return absl::OkStatus();
}

}  // namespace feedkit
