// SPDX-License-Identifier: Apache-2.0
//
// feedkit/clock.h
//
// The one time vocabulary of feedkit: `SteadyTime` (std::chrono::steady_clock)
// for timeouts, backoff and staleness, and `Clock`, a tiny interface for the
// few components that must read time themselves. Primitives never read a clock:
// they take `now` as an argument.
//
//   SteadyTime now = feedkit::Clock::steady().now();
//
// Thread safety: every Clock implementation is thread-safe.
#pragma once

#include <chrono>

namespace feedkit {

using SteadyClock = std::chrono::steady_clock;
using SteadyTime = SteadyClock::time_point;
using Duration = SteadyClock::duration;  // nanoseconds

class Clock {
 public:
  virtual ~Clock() = default;

  // Returns the current steady time. Thread-safe. Never blocks.
  virtual SteadyTime now() const = 0;

  // Returns the process-wide clock backed by std::chrono::steady_clock.
  static Clock& steady();
};

namespace internal {
class RealSteadyClock final : public Clock {
 public:
  SteadyTime now() const override { return SteadyClock::now(); }
};
}  // namespace internal

inline Clock& Clock::steady() {
  static internal::RealSteadyClock clock;  // stateless; constant-initialized
  return clock;
}

}  // namespace feedkit
