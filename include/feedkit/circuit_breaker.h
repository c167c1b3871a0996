// SPDX-License-Identifier: Apache-2.0
//
// feedkit/circuit_breaker.h
//
// A CircuitBreaker stops calling an upstream that keeps failing (a broker's
// gateway, a token endpoint, a reconnect loop) and lets a few probes through
// after a cool-down. It is resilience4j's state machine:
//
//   closed ----> open       failure rate >= threshold (the window holds at
//                           least minimum_calls), slow-call rate >= threshold,
//                           or N consecutive failures
//   open ------> half_open  wait_in_open elapsed, seen by the next call
//                           (a read such as state(now) included)
//   half_open -> closed     all K probe results in, both rates below threshold
//   half_open -> open       all K probe results in, a rate at/above threshold;
//                           or max_wait_in_half_open elapsed (a probe hung)
//
// forced_open (rejects all), disabled (admits all, records nothing) and
// metrics_only (admits all, records, never trips) are entered and left only
// through transition_to_*() and reset().
//
// Every transition starts a fresh window and a new generation. Each result is
// recorded against the Permit that admitted its call: a permit from an earlier
// generation (its call was admitted before a transition) is counted in
// `late_results` and never moves the window or the state. Every call that
// takes `now` advances time-driven transitions first, reads included.
//
// Reads no clock, starts no thread, never blocks, never throws, and never
// allocates after construction (add_listener() aside): callers pass `now`.
//
// Thread safety: CircuitBreaker is thread-compatible (distinct objects are
// safe; a shared one needs external synchronization). CircuitBreakerRegistry
// is thread-safe. Listeners run synchronously on the caller's thread, inside
// the call that made the transition; they must not block, throw, or call back
// into the same breaker.
//
// Example:
//   auto breaker = feedkit::CircuitBreaker::create(
//       {.consecutive_failure_threshold = 5}).value();
//   if (auto permit = breaker.try_acquire(clock.now())) {
//     breaker.record(*permit, clock.now(), session.connect().ok());
//   }  // else rejected: try again after breaker.retry_after(clock.now())
#pragma once

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"  // FormatDuration, for validate() messages
#include "feedkit/clock.h"

namespace feedkit {

enum class CircuitState : std::uint8_t {
  closed,        // admits all; records; trips on the rules
  open,          // rejects all until wait_in_open elapses
  half_open,     // admits K probes; their results decide
  forced_open,   // rejects all; records nothing; never leaves by itself
  disabled,      // admits all; records nothing; never leaves by itself
  metrics_only,  // admits all; records; never trips
};

// Returns the enumerator's name ("half_open"), for logs and exporters.
constexpr std::string_view to_string(CircuitState state) noexcept {
  switch (state) {
    case CircuitState::closed:
      return "closed";
    case CircuitState::open:
      return "open";
    case CircuitState::half_open:
      return "half_open";
    case CircuitState::forced_open:
      return "forced_open";
    case CircuitState::disabled:
      return "disabled";
    case CircuitState::metrics_only:
      return "metrics_only";
  }
  return "unknown";
}

enum class SlidingWindowType : std::uint8_t {
  count_based,  // the last `window_size` calls
  time_based,   // the last `window_size` seconds, one bucket per second
};

enum class TransitionReason : std::uint8_t {
  consecutive_failures,           // closed -> open
  failure_rate_exceeded,          // closed or half_open -> open
  slow_call_rate_exceeded,        // closed or half_open -> open
  wait_in_open_elapsed,           // open -> half_open
  probes_passed,                  // half_open -> closed
  max_wait_in_half_open_elapsed,  // half_open -> open (a probe never reported)
  manual,                         // transition_to_*()
  reset,                          // reset()
};

// Returns the enumerator's name ("probes_passed"), for logs and exporters.
constexpr std::string_view to_string(TransitionReason reason) noexcept {
  switch (reason) {
    case TransitionReason::consecutive_failures:
      return "consecutive_failures";
    case TransitionReason::failure_rate_exceeded:
      return "failure_rate_exceeded";
    case TransitionReason::slow_call_rate_exceeded:
      return "slow_call_rate_exceeded";
    case TransitionReason::wait_in_open_elapsed:
      return "wait_in_open_elapsed";
    case TransitionReason::probes_passed:
      return "probes_passed";
    case TransitionReason::max_wait_in_half_open_elapsed:
      return "max_wait_in_half_open_elapsed";
    case TransitionReason::manual:
      return "manual";
    case TransitionReason::reset:
      return "reset";
  }
  return "unknown";
}

// What a listener receives, once per transition.
struct CircuitTransition {
  CircuitState from;
  CircuitState to;
  SteadyTime at;  // the `now` of the call that made the transition
  TransitionReason reason;
};

// Defaults are resilience4j's (reference §0), except max_wait_in_half_open.
struct CircuitBreakerOptions {
  // How the closed-state window is kept.
  SlidingWindowType window_type = SlidingWindowType::count_based;
  // Calls (count_based, 1..1'000'000) or seconds (time_based, 1..86'400).
  std::uint32_t window_size = 100;
  // Calls the window must hold before a rate is computed or can trip; >= 1.
  // A count_based window uses min(minimum_calls, window_size).
  std::uint32_t minimum_calls = 100;
  // Percent of failed calls that trips: rate >= threshold; in (0, 100].
  double failure_rate_threshold = 50.0;
  // Consecutive failures (closed state) that trip regardless of the rate and
  // the minimum; 0 = rule off.
  std::uint32_t consecutive_failure_threshold = 0;
  // A call lasting at least this long (acquire to record) is slow, whether it
  // succeeded or failed; 0 = slow calls are not tracked (the default); >= 0.
  Duration slow_call_duration = Duration::zero();
  // Percent of slow calls that trips: rate >= threshold; in (0, 100]. Used
  // only when slow_call_duration > 0.
  double slow_call_rate_threshold = 100.0;
  // Time spent open before the next call moves the breaker to half_open; > 0.
  Duration wait_in_open = std::chrono::seconds(60);
  // Probes (K) admitted in half_open; all K results decide; >= 1.
  std::uint32_t permitted_calls_in_half_open = 10;
  // Longest stay in half_open: when it elapses with results missing (a hung
  // probe), the breaker reopens and a new probe cycle follows; > 0.
  // resilience4j's default is 0 (unbounded); feedkit bounds it (reference
  // §1.5 rule 5) with 60 s, as long as the default open wait: enough for a
  // connect + login probe, short enough that one hung probe costs a minute.
  Duration max_wait_in_half_open = std::chrono::seconds(60);

  static CircuitBreakerOptions suggested() noexcept { return {}; }

  // Returns OK, or kInvalidArgument naming the first field out of range.
  absl::Status validate() const;

  bool operator==(const CircuitBreakerOptions&) const = default;
};

// A snapshot for dashboards and exporters. The window fields describe the
// current state's window: the sliding window in closed and metrics_only, the
// probes in half_open, and an empty window in the other states.
struct CircuitBreakerStats {
  CircuitState state = CircuitState::closed;
  double failure_rate =
      -1;  // percent of buffered calls that failed; -1 below the minimum
  double slow_call_rate =
      -1;  // percent of buffered calls that were slow; -1 below the minimum
  std::uint64_t buffered_calls = 0;    // results in the window
  std::uint64_t failed_calls = 0;      // of which failed
  std::uint64_t successful_calls = 0;  // of which succeeded
  std::uint64_t slow_calls = 0;  // of which were slow (successes and failures)
  std::uint32_t consecutive_failures = 0;
  std::uint32_t half_open_permits_left = 0;  // probes half_open can still admit
  // Monotonic counters, never reset (reset() included):
  std::uint64_t not_permitted_calls = 0;  // try_acquire() rejections
  std::uint64_t late_results =
      0;  // results whose permit predates the last transition
  std::uint64_t released_permits = 0;  // permits handed back with release()
  std::uint64_t transitions =
      0;  // listener notifications, i.e. every transition
};

namespace internal {

struct CallCounts {
  std::uint64_t calls = 0;
  std::uint64_t failures = 0;
  std::uint64_t slow = 0;

  void add(bool failed, bool slow_call) noexcept {
    ++calls;
    failures += failed ? 1 : 0;
    slow += slow_call ? 1 : 0;
  }
  void subtract(const CallCounts& other) noexcept {
    calls -= other.calls;
    failures -= other.failures;
    slow -= other.slow;
  }
};

// The closed-state window: a ring of per-call outcomes (count_based) or of
// one-second buckets (time_based), with running totals, so recording and
// reading are O(1). Memory is sized once, at construction.
class SlidingWindow {
 public:
  SlidingWindow(SlidingWindowType type, std::uint32_t size)
      : type_(type),
        size_(size),
        outcomes_(type == SlidingWindowType::count_based ? size : 0),
        buckets_(type == SlidingWindowType::time_based ? size : 0) {}

  void record(SteadyTime now, bool failed, bool slow) noexcept {
    dirty_ = true;
    if (type_ == SlidingWindowType::count_based) {
      std::uint8_t& slot = outcomes_[next_];
      if (filled_ == size_) {  // evict the oldest call
        totals_.subtract(
            CallCounts{1, slot & kFailed ? 1u : 0u, slot & kSlow ? 1u : 0u});
      } else {
        ++filled_;
      }
      slot = static_cast<std::uint8_t>((failed ? kFailed : 0) |
                                       (slow ? kSlow : 0));
      if (++next_ == size_) next_ = 0;
    } else {
      buckets_[index(advance(now))].add(failed, slow);
    }
    totals_.add(failed, slow);
  }

  // Drops the calls that have left a time_based window by `now`.
  void expire(SteadyTime now) noexcept {
    if (type_ == SlidingWindowType::time_based) advance(now);
  }

  void clear() noexcept {
    if (!dirty_) return;
    dirty_ = false;
    totals_ = {};
    filled_ = 0;
    next_ = 0;
    has_head_ = false;
    std::fill(buckets_.begin(), buckets_.end(), CallCounts{});
  }

  const CallCounts& totals() const noexcept { return totals_; }

 private:
  static constexpr std::uint8_t kFailed = 1;
  static constexpr std::uint8_t kSlow = 2;

  std::size_t index(std::int64_t second) const noexcept {
    const std::int64_t n = size_;
    return static_cast<std::size_t>(((second % n) + n) % n);
  }

  // Moves the newest bucket to `now`'s second, emptying the buckets it skips;
  // returns the second to record into (never earlier than the newest one).
  std::int64_t advance(SteadyTime now) noexcept {
    const std::int64_t second =
        std::chrono::floor<std::chrono::seconds>(now.time_since_epoch())
            .count();
    if (has_head_ && second <= head_) return head_;
    if (!has_head_) {
      // Empty since construction or clear(): every bucket is already zero.
    } else if (second - head_ >= static_cast<std::int64_t>(size_)) {
      std::fill(buckets_.begin(), buckets_.end(), CallCounts{});
      totals_ = {};
    } else {
      for (std::int64_t s = head_ + 1; s <= second; ++s) {
        CallCounts& bucket = buckets_[index(s)];
        totals_.subtract(bucket);
        bucket = {};
      }
    }
    has_head_ = true;
    head_ = second;
    return second;
  }

  SlidingWindowType type_;
  std::uint32_t size_;
  CallCounts totals_;
  bool dirty_ = false;
  // count_based
  std::vector<std::uint8_t> outcomes_;
  std::uint32_t filled_ = 0;
  std::uint32_t next_ = 0;
  // time_based
  std::vector<CallCounts> buckets_;
  bool has_head_ = false;
  std::int64_t head_ = 0;  // the second of the newest bucket
};

}  // namespace internal

class CircuitBreaker {
 public:
  // Admission to make one call, returned by try_acquire(). Hand it back with
  // record() (or release()) on the same breaker. A cheap value; copyable.
  class Permit {
   public:
    // Returns the breaker generation (transition count) that admitted the call.
    std::uint64_t generation() const noexcept { return generation_; }
    // Returns the `now` passed to try_acquire().
    SteadyTime acquired_at() const noexcept { return acquired_at_; }

   private:
    friend class CircuitBreaker;
    Permit(std::uint64_t generation, SteadyTime acquired_at) noexcept
        : generation_(generation), acquired_at_(acquired_at) {}
    std::uint64_t generation_;
    SteadyTime acquired_at_;
  };

  using Listener = std::function<void(const CircuitTransition&)>;

  // Returns a closed breaker, or kInvalidArgument for invalid `options`.
  static absl::StatusOr<CircuitBreaker> create(CircuitBreakerOptions options) {
    if (absl::Status s = options.validate(); !s.ok()) return s;
    return CircuitBreaker(options);
  }

  CircuitBreaker(CircuitBreaker&&) noexcept = default;
  CircuitBreaker& operator=(CircuitBreaker&&) noexcept = default;
  CircuitBreaker(const CircuitBreaker&) = delete;
  CircuitBreaker& operator=(const CircuitBreaker&) = delete;

  // Returns a permit if a call may proceed at `now`: always in closed,
  // disabled and metrics_only; in half_open while probes are left (K per
  // cycle). Returns nullopt, counted in not_permitted_calls, in open,
  // forced_open and when the probes are used up. Moves open to half_open when
  // wait_in_open has elapsed (that call then takes a probe). Never blocks.
  // Never allocates.
  [[nodiscard]] std::optional<Permit> try_acquire(SteadyTime now) noexcept {
    advance(now);
    switch (state_) {
      case CircuitState::closed:
      case CircuitState::disabled:
      case CircuitState::metrics_only:
        return Permit(generation_, now);
      case CircuitState::half_open:
        if (probe_permits_left_ > 0) {
          --probe_permits_left_;
          return Permit(generation_, now);
        }
        break;
      case CircuitState::open:
      case CircuitState::forced_open:
        break;
    }
    ++not_permitted_;
    return std::nullopt;
  }

  // Records the result of the call admitted by `permit`, which lasted from
  // permit.acquired_at() to `now` (that decides whether it was slow). In
  // closed it may trip the breaker; in half_open the K-th result decides. A
  // permit from an earlier generation only counts in late_results. Records
  // nothing in disabled. Never blocks. Never allocates.
  void record(const Permit& permit, SteadyTime now, bool success) noexcept {
    record(permit, now, success, now - permit.acquired_at_);
  }

  // As above, with the call's duration measured by the caller.
  void record(const Permit& permit, SteadyTime now, bool success,
              Duration call_duration) noexcept {
    advance(now);
    if (permit.generation_ != generation_) {
      ++late_results_;
      return;
    }
    const bool slow =
        slow_calls_tracked() && call_duration >= options_.slow_call_duration;
    switch (state_) {
      case CircuitState::closed:
      case CircuitState::metrics_only:
        window_.record(now, !success, slow);
        consecutive_failures_ = success ? 0 : consecutive_failures_ + 1;
        if (state_ == CircuitState::closed) trip_if_exceeded(now);
        return;
      case CircuitState::half_open:
        probes_.add(!success, slow);
        if (probes_.calls >= options_.permitted_calls_in_half_open)
          decide_probes(now);
        return;
      case CircuitState::disabled:
        return;
      case CircuitState::open:         // no permit of the current generation
      case CircuitState::forced_open:  // exists in these states
        ++late_results_;
        return;
    }
  }

  // Shorthands for record(permit, now, true / false).
  void record_success(const Permit& permit, SteadyTime now) noexcept {
    record(permit, now, true);
  }
  void record_failure(const Permit& permit, SteadyTime now) noexcept {
    record(permit, now, false);
  }

  // Hands back an unused permit (the call was cancelled, or its error is not
  // the upstream's fault): it counts as neither success nor failure, and in
  // half_open the probe slot is returned. Never blocks. Never allocates.
  void release(const Permit& permit, SteadyTime now) noexcept {
    advance(now);
    ++released_;
    if (permit.generation_ == generation_ &&
        state_ == CircuitState::half_open &&
        probe_permits_left_ + probes_.calls <
            options_.permitted_calls_in_half_open) {
      ++probe_permits_left_;
    }
  }

  // Returns the state at `now`, after any transition that time has made due.
  // Never blocks. Never allocates.
  [[nodiscard]] CircuitState state(SteadyTime now) noexcept {
    advance(now);
    return state_;
  }

  // Returns a snapshot at `now`, after any transition that time has made due
  // and after dropping calls that left a time-based window. Never allocates.
  [[nodiscard]] CircuitBreakerStats stats(SteadyTime now) noexcept {
    advance(now);
    window_.expire(now);
    CircuitBreakerStats s;
    s.state = state_;
    const bool half_open = state_ == CircuitState::half_open;
    const internal::CallCounts& c = half_open ? probes_ : window_.totals();
    const std::uint64_t minimum =
        half_open ? std::min(options_.minimum_calls,
                             options_.permitted_calls_in_half_open)
                  : minimum_calls_;
    s.buffered_calls = c.calls;
    s.failed_calls = c.failures;
    s.successful_calls = c.calls - c.failures;
    s.slow_calls = c.slow;
    if (c.calls > 0 && c.calls >= minimum) {
      s.failure_rate = 100.0 * static_cast<double>(c.failures) /
                       static_cast<double>(c.calls);
      s.slow_call_rate =
          100.0 * static_cast<double>(c.slow) / static_cast<double>(c.calls);
    }
    s.consecutive_failures = consecutive_failures_;
    s.half_open_permits_left = half_open ? probe_permits_left_ : 0;
    s.not_permitted_calls = not_permitted_;
    s.late_results = late_results_;
    s.released_permits = released_;
    s.transitions = transitions_;
    return s;
  }

  // Returns how long calls will be rejected if nothing else happens: the rest
  // of wait_in_open when open; Duration::max() when forced_open; in half_open
  // with every probe out, the rest of max_wait_in_half_open plus wait_in_open
  // (the worst case: the probes hang); zero when a call would be admitted now.
  // Never allocates.
  [[nodiscard]] Duration retry_after(SteadyTime now) noexcept {
    advance(now);
    switch (state_) {
      case CircuitState::open:
        return deadline_ - now;
      case CircuitState::forced_open:
        return Duration::max();
      case CircuitState::half_open:
        return probe_permits_left_ > 0
                   ? Duration::zero()
                   : (deadline_ - now) + options_.wait_in_open;
      default:
        return Duration::zero();
    }
  }

  // Move to the named state at `now` (reason `manual`), starting a fresh
  // window; calls admitted before become late. A no-op, with no listener
  // call, when already in that state. Any state may go to any of these.
  void transition_to_closed(SteadyTime now) noexcept {
    manual(CircuitState::closed, now);
  }
  void transition_to_forced_open(SteadyTime now) noexcept {
    manual(CircuitState::forced_open, now);
  }
  void transition_to_disabled(SteadyTime now) noexcept {
    manual(CircuitState::disabled, now);
  }
  void transition_to_metrics_only(SteadyTime now) noexcept {
    manual(CircuitState::metrics_only, now);
  }

  // Returns to closed with a fresh window and no consecutive failures, from
  // any state; always a transition (reason `reset`), even from closed. The
  // monotonic counters in stats() are kept.
  void reset(SteadyTime now) noexcept {
    transition(CircuitState::closed, now, TransitionReason::reset);
  }

  // Adds a listener, called once per transition, synchronously, on the thread
  // of the call that made it. It must not block, throw, or call this breaker.
  // Allocates: call it at setup, not from a listener.
  void add_listener(Listener listener) {
    assert(!notifying_ && "add listeners at setup, not from inside a listener");
    listeners_.push_back(std::move(listener));
  }

  const CircuitBreakerOptions& options() const noexcept { return options_; }

 private:
  explicit CircuitBreaker(const CircuitBreakerOptions& options)
      : options_(options),
        minimum_calls_(
            options.window_type == SlidingWindowType::count_based
                ? std::min(options.minimum_calls, options.window_size)
                : options.minimum_calls),
        window_(options.window_type, options.window_size) {}

  bool slow_calls_tracked() const noexcept {
    return options_.slow_call_duration > Duration::zero();
  }

  bool exceeds(std::uint64_t count, std::uint64_t calls,
               double threshold) const noexcept {
    return 100.0 * static_cast<double>(count) >=
           threshold * static_cast<double>(calls);
  }

  // Makes the transitions that time has made due by `now`. Each lazily entered
  // state starts at `now`, so one call makes at most one transition here.
  void advance(SteadyTime now) noexcept {
    if (state_ == CircuitState::open) {
      if (now >= deadline_) {
        transition(CircuitState::half_open, now,
                   TransitionReason::wait_in_open_elapsed);
      }
    } else if (state_ == CircuitState::half_open) {
      if (now >= deadline_) {
        transition(CircuitState::open, now,
                   TransitionReason::max_wait_in_half_open_elapsed);
      }
    }
  }

  void trip_if_exceeded(SteadyTime now) noexcept {
    if (options_.consecutive_failure_threshold > 0 &&
        consecutive_failures_ >= options_.consecutive_failure_threshold) {
      transition(CircuitState::open, now,
                 TransitionReason::consecutive_failures);
      return;
    }
    const internal::CallCounts& c = window_.totals();
    if (c.calls < minimum_calls_) return;
    if (exceeds(c.failures, c.calls, options_.failure_rate_threshold)) {
      transition(CircuitState::open, now,
                 TransitionReason::failure_rate_exceeded);
    } else if (slow_calls_tracked() &&
               exceeds(c.slow, c.calls, options_.slow_call_rate_threshold)) {
      transition(CircuitState::open, now,
                 TransitionReason::slow_call_rate_exceeded);
    }
  }

  void decide_probes(SteadyTime now) noexcept {
    if (exceeds(probes_.failures, probes_.calls,
                options_.failure_rate_threshold)) {
      transition(CircuitState::open, now,
                 TransitionReason::failure_rate_exceeded);
    } else if (slow_calls_tracked() &&
               exceeds(probes_.slow, probes_.calls,
                       options_.slow_call_rate_threshold)) {
      transition(CircuitState::open, now,
                 TransitionReason::slow_call_rate_exceeded);
    } else {
      transition(CircuitState::closed, now, TransitionReason::probes_passed);
    }
  }

  void manual(CircuitState to, SteadyTime now) noexcept {
    if (state_ != to) transition(to, now, TransitionReason::manual);
  }

  void transition(CircuitState to, SteadyTime now,
                  TransitionReason reason) noexcept {
    assert(!notifying_ &&
           "a transition listener must not change the breaker's state");
    const CircuitState from = state_;
    state_ = to;
    ++generation_;
    ++transitions_;
    window_.clear();
    probes_ = {};
    consecutive_failures_ = 0;
    probe_permits_left_ = 0;
    if (to == CircuitState::open) {
      deadline_ = now + options_.wait_in_open;
    } else if (to == CircuitState::half_open) {
      deadline_ = now + options_.max_wait_in_half_open;
      probe_permits_left_ = options_.permitted_calls_in_half_open;
    }
    if (listeners_.empty()) return;
    notifying_ = true;
    const CircuitTransition event{from, to, now, reason};
    for (const Listener& listener : listeners_) listener(event);
    notifying_ = false;
  }

  CircuitBreakerOptions options_;
  std::uint32_t minimum_calls_;  // effective: clamped to a count window's size
  internal::SlidingWindow window_;  // closed and metrics_only
  internal::CallCounts probes_;     // half_open results
  CircuitState state_ = CircuitState::closed;
  std::uint32_t probe_permits_left_ = 0;
  std::uint32_t consecutive_failures_ = 0;
  bool notifying_ = false;
  std::uint64_t generation_ = 0;
  SteadyTime
      deadline_{};  // open: half_open is due; half_open: give up on probes
  std::uint64_t not_permitted_ = 0;
  std::uint64_t late_results_ = 0;
  std::uint64_t released_ = 0;
  std::uint64_t transitions_ = 0;
  std::vector<Listener> listeners_;
};

// Breakers by name, for sharing one breaker per upstream and for exporters.
// Breakers live as long as the registry, at stable addresses.
//
// Thread safety: the registry is thread-safe; the breakers it hands out are
// thread-compatible, so a breaker used from several threads (an exporter
// reading stats() included) needs the users' own synchronization.
class CircuitBreakerRegistry {
 public:
  CircuitBreakerRegistry() = default;
  CircuitBreakerRegistry(const CircuitBreakerRegistry&) = delete;
  CircuitBreakerRegistry& operator=(const CircuitBreakerRegistry&) = delete;

  // Returns the breaker called `name`, creating it with `options` if it does
  // not exist. Returns kInvalidArgument for an empty name or invalid options,
  // and kAlreadyExists if `name` exists with different options (one upstream,
  // one configuration). Thread-safe. Allocates when it creates.
  absl::StatusOr<CircuitBreaker*> get_or_create(
      std::string_view name, const CircuitBreakerOptions& options) {
    if (name.empty()) {
      return absl::InvalidArgumentError(
          "CircuitBreakerRegistry: the breaker name is empty");
    }
    if (absl::Status s = options.validate(); !s.ok()) return s;
    std::lock_guard lock(mu_);
    if (auto it = breakers_.find(name); it != breakers_.end()) {
      if (!(it->second.options() == options)) {
        return absl::AlreadyExistsError(
            absl::StrCat("CircuitBreakerRegistry: breaker '",
                         absl::string_view(name.data(), name.size()),
                         "' exists with different options"));
      }
      return &it->second;
    }
    auto created = CircuitBreaker::create(options);
    if (!created.ok()) return created.status();
    auto [it, inserted] =
        breakers_.emplace(std::string(name), *std::move(created));
    return &it->second;
  }

  // Returns the breaker called `name`, or nullptr. Thread-safe.
  CircuitBreaker* find(std::string_view name) {
    std::lock_guard lock(mu_);
    auto it = breakers_.find(name);
    return it == breakers_.end() ? nullptr : &it->second;
  }

  // Returns the number of breakers. Thread-safe.
  std::size_t size() const {
    std::lock_guard lock(mu_);
    return breakers_.size();
  }

  // Calls fn(std::string_view name, CircuitBreaker&) for every breaker, in
  // name order, holding the registry lock: fn must not call the registry.
  // Thread-safe (the registry; see the class comment for the breakers).
  template <class F>
  void for_each(F&& fn) {
    std::lock_guard lock(mu_);
    for (auto& [name, breaker] : breakers_) fn(std::string_view(name), breaker);
  }

 private:
  mutable std::mutex
      mu_;  // not absl::Mutex: Debian builds Abseil without TSan hooks
  std::map<std::string, CircuitBreaker, std::less<>> breakers_
      ABSL_GUARDED_BY(mu_);
};

inline absl::Status CircuitBreakerOptions::validate() const {
  auto invalid = [](const char* field, const char* rule, const auto& got) {
    return absl::InvalidArgumentError(absl::StrCat(
        "CircuitBreakerOptions::", field, " must be ", rule, ", got ", got));
  };
  auto text = [](Duration d) {
    return absl::FormatDuration(absl::FromChrono(d));
  };
  if (window_type != SlidingWindowType::count_based &&
      window_type != SlidingWindowType::time_based) {
    return invalid("window_type", "count_based or time_based",
                   static_cast<int>(window_type));
  }
  if (window_type == SlidingWindowType::count_based &&
      (window_size < 1 || window_size > 1'000'000)) {
    return invalid("window_size",
                   "in [1, 1000000] calls for a count_based window",
                   window_size);
  }
  if (window_type == SlidingWindowType::time_based &&
      (window_size < 1 || window_size > 86'400)) {
    return invalid("window_size",
                   "in [1, 86400] seconds for a time_based window",
                   window_size);
  }
  if (minimum_calls < 1) return invalid("minimum_calls", ">= 1", minimum_calls);
  if (!(failure_rate_threshold > 0 && failure_rate_threshold <= 100)) {
    return invalid("failure_rate_threshold", "in (0, 100] percent",
                   failure_rate_threshold);
  }
  if (slow_call_duration < Duration::zero()) {
    return invalid("slow_call_duration", ">= 0 (0 = off)",
                   text(slow_call_duration));
  }
  if (!(slow_call_rate_threshold > 0 && slow_call_rate_threshold <= 100)) {
    return invalid("slow_call_rate_threshold", "in (0, 100] percent",
                   slow_call_rate_threshold);
  }
  if (wait_in_open <= Duration::zero()) {
    return invalid("wait_in_open", "> 0", text(wait_in_open));
  }
  if (permitted_calls_in_half_open < 1) {
    return invalid("permitted_calls_in_half_open", ">= 1",
                   permitted_calls_in_half_open);
  }
  if (max_wait_in_half_open <= Duration::zero()) {
    return invalid("max_wait_in_half_open", "> 0", text(max_wait_in_half_open));
  }
  return absl::OkStatus();
}

}  // namespace feedkit
