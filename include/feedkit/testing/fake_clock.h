// SPDX-License-Identifier: Apache-2.0
//
// feedkit/testing/fake_clock.h
//
// FakeClock is a Clock whose time moves only when a test says so, so tests of
// timeouts, backoff and staleness need no sleeps.
//
//   feedkit::testing::FakeClock clock;
//   clock.advance(std::chrono::seconds(5));
//   EXPECT_EQ(clock.now(), feedkit::testing::FakeClock::kEpoch + 5s);
//
// Thread safety: thread-safe (now() may race with advance()).
#pragma once

#include <atomic>

#include "feedkit/clock.h"

namespace feedkit::testing {

class FakeClock final : public Clock {
 public:
  // Where every FakeClock starts: an arbitrary, non-zero steady time.
  static constexpr SteadyTime kEpoch = SteadyTime(std::chrono::hours(1000));

  explicit FakeClock(SteadyTime start = kEpoch)
      : ns_(start.time_since_epoch().count()) {}

  // Returns the fake time. Thread-safe. Never blocks.
  SteadyTime now() const override {
    return SteadyTime(Duration(ns_.load(std::memory_order_acquire)));
  }

  // Moves time forward by `d` (which must not be negative). Thread-safe.
  void advance(Duration d) {
    ns_.fetch_add(d.count(), std::memory_order_acq_rel);
  }

  // Sets the time to `t`, which must not be earlier than now(). Thread-safe.
  void set(SteadyTime t) {
    ns_.store(t.time_since_epoch().count(), std::memory_order_release);
  }

 private:
  std::atomic<Duration::rep> ns_;
};

}  // namespace feedkit::testing
