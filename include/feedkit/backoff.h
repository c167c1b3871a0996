// SPDX-License-Identifier: Apache-2.0
//
// feedkit/backoff.h
//
// A Backoff schedules reconnect attempts to one broker with gRPC's connection
// backoff: delays of initial, initial×multiplier, … capped at `max`, then
// jittered, and measured between attempt STARTS (a connect that took 3 s of a
// 4 s delay leaves 1 s to wait; one that took longer leaves none).
//
// Delay k, with envelope e_k = min(max, initial × multiplier^k):
//   none          e_k
//   proportional  uniform[e_k × (1 − jitter), e_k × (1 + jitter)]  (gRPC)
//   full          uniform[0, e_k]                                  (AWS)
//   decorrelated  min(max, uniform[initial, 3 × previous delay])   (AWS)
//
// Jitter applies after the cap (with ±20 % the waits at a 120 s cap range
// 96..144 s) and to the first delay too, so clients cut off together
// disperse. Decorrelated mode ignores `multiplier`.
//
// Episodes and reset: the schedule only grows until the caller says the
// connection is STABLE (report_stable(), or reset_if_stable() once it has
// been live for `stable_after`). A connect that succeeds and then drops, or a
// refused login, is just another failed attempt: the delay keeps growing (the
// seed adapter restarted at its minimum after every refused CONNACK, a tight
// retry storm). After a reset, the next attempt starts at once (a stable
// connection that drops is reconnected immediately) and the schedule restarts
// at `initial`.
//
// Attempt budget: an optional AttemptBudget, shared by every connection to
// one venue, allows at most `max_attempts` attempt starts in any `window`;
// when it is spent, the attempt time is pushed to the earliest time it allows.
//
// Backoff reads no clock, starts no thread, never blocks, and never allocates
// after create() (a shared AttemptBudget rarely may). It draws from its own
// std::mt19937_64: seed 0 (default) takes a seed from std::random_device so
// processes disperse; any other seed gives a reproducible sequence.
//
// Thread safety: Backoff is thread-compatible (one per connection, used on
// its strand). AttemptBudget is thread-safe.
//
// Example:
//   auto b = feedkit::Backoff::create(BackoffOptions::suggested()).value();
//   SteadyTime at = b.first_attempt_at(now);  // connect at `at` (`started`)
//   at = b.next_attempt_at(started, now);     // after a failure or a drop
//   b.report_stable();                        // logged in, data flowing
#pragma once

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>  // std::mutex, not absl::Mutex: Debian builds Abseil without TSan hooks
#include <random>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "feedkit/clock.h"

namespace feedkit {

// ---------------------------------------------------------------------------
// AttemptBudget: at most N attempt starts in any window, across connections.
// ---------------------------------------------------------------------------

struct AttemptBudgetOptions {
  // Attempt starts allowed in any window, across all sharers; 1..100000.
  std::size_t max_attempts = 20;
  // Length of the sliding window; > 0.
  Duration window = std::chrono::seconds(60);

  // Returns 20 attempts per minute: with the suggested backoff one connection
  // makes about 8 attempts in its first minute, so this lets two or three
  // connections to one venue recover at full speed and stops a storm.
  static AttemptBudgetOptions suggested() noexcept { return {}; }

  // Returns OK, or kInvalidArgument naming the first field out of range.
  absl::Status validate() const;
};

struct AttemptBudgetStats {
  std::uint64_t granted = 0;   // attempts booked by reserve()
  std::uint64_t deferred = 0;  // bookings pushed later than asked
  Duration deferred_for{0};    // total time bookings were pushed later
  std::size_t pending = 0;     // bookings kept (recent enough to matter)
};

// Books attempt start times so that no window of length `window` (half-open,
// [t, t + window)) ever holds more than `max_attempts` of them, whatever order
// the connections book in. Thread-safe. Never blocks beyond a short internal
// lock; allocates only when more than 2 × max_attempts bookings are pending.
class AttemptBudget {
 public:
  // Returns a budget to share (pass it in BackoffOptions::budget), or
  // kInvalidArgument if `options` are out of range.
  static absl::StatusOr<std::shared_ptr<AttemptBudget>> create(
      AttemptBudgetOptions options) {
    if (absl::Status s = options.validate(); !s.ok()) return s;
    return std::shared_ptr<AttemptBudget>(new AttemptBudget(options));
  }

  AttemptBudget(const AttemptBudget&) = delete;
  AttemptBudget& operator=(const AttemptBudget&) = delete;

  // Books one attempt at the earliest time >= max(`earliest`, `now`) that
  // the budget allows, and returns that time. Sharers must pass `now` from
  // one steady clock; a `now` more than one window older than the latest seen
  // is treated as (latest − window). Thread-safe.
  [[nodiscard]] SteadyTime reserve(SteadyTime earliest, SteadyTime now) {
    std::lock_guard lock(mu_);
    const SteadyTime asked = std::max(earliest, now);
    advance_locked(now);
    const SteadyTime at =
        earliest_allowed_locked(std::max(asked, floor_locked()));
    grants_.insert(std::upper_bound(grants_.begin(), grants_.end(), at), at);
    ++stats_.granted;
    if (at > asked) {
      ++stats_.deferred;
      stats_.deferred_for += at - asked;
    }
    return at;
  }

  // Returns the time reserve(`earliest`, `now`) would return, without
  // booking. Thread-safe.
  SteadyTime next_allowed(SteadyTime earliest, SteadyTime now) const {
    std::lock_guard lock(mu_);
    SteadyTime asked = std::max(earliest, now);
    if (has_latest_) asked = std::max(asked, floor_locked());
    return earliest_allowed_locked(asked);
  }

  // Returns a snapshot of the counters. Thread-safe.
  AttemptBudgetStats stats() const {
    std::lock_guard lock(mu_);
    AttemptBudgetStats s = stats_;
    s.pending = grants_.size();
    return s;
  }

  const AttemptBudgetOptions& options() const { return options_; }

 private:
  explicit AttemptBudget(AttemptBudgetOptions options) : options_(options) {
    grants_.reserve(2 * options.max_attempts);
  }

  // A run of max_attempts consecutive bookings lo..hi (sorted) fills a window
  // together with a new booking s exactly when hi − lo < window and
  // hi − window < s < lo + window. Both bounds grow along the runs, so one
  // pass that jumps past each blocking run finds the earliest s.
  SteadyTime earliest_allowed_locked(SteadyTime s) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const std::size_t n = options_.max_attempts;
    const Duration w = options_.window;
    for (std::size_t i = 0; i + n <= grants_.size(); ++i) {
      const SteadyTime lo = grants_[i];
      const SteadyTime hi = grants_[i + n - 1];
      if (hi - lo < w && s > hi - w && s < lo + w) s = lo + w;
    }
    return s;
  }

  // Moves the budget's notion of the present to `now` (never backwards) and
  // forgets bookings no later request can share a window with: requests are
  // never earlier than floor_locked(), so bookings before floor − window go.
  void advance_locked(SteadyTime now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    latest_ = has_latest_ ? std::max(latest_, now) : now;
    has_latest_ = true;
    const SteadyTime horizon = floor_locked() - options_.window;
    auto end = std::find_if(grants_.begin(), grants_.end(),
                            [&](SteadyTime g) { return g > horizon; });
    grants_.erase(grants_.begin(), end);
  }

  // Returns the earliest time a request may be booked at.
  SteadyTime floor_locked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return latest_ - options_.window;
  }

  const AttemptBudgetOptions options_;
  mutable std::mutex mu_;
  std::vector<SteadyTime> grants_ ABSL_GUARDED_BY(mu_);  // sorted bookings
  SteadyTime latest_ ABSL_GUARDED_BY(mu_){};  // the latest `now` seen
  bool has_latest_ ABSL_GUARDED_BY(mu_) = false;
  AttemptBudgetStats stats_ ABSL_GUARDED_BY(mu_);
};

// ---------------------------------------------------------------------------
// Backoff
// ---------------------------------------------------------------------------

enum class JitterMode {
  none,          // the envelope exactly: clients retry in lockstep
  proportional,  // envelope ± jitter × envelope (gRPC)
  full,          // uniform [0, envelope] (AWS "full jitter")
  decorrelated,  // min(max, uniform [initial, 3 × previous]) (AWS)
};

struct BackoffOptions {
  // First delay, before jitter; > 0.
  Duration initial = std::chrono::seconds(1);
  // Growth of the envelope per failed attempt; finite, >= 1.
  double multiplier = 1.6;
  // Cap on the envelope (jitter may take a delay above it); initial..8760 h.
  Duration max = std::chrono::seconds(120);
  // How delays are spread around the envelope (see the table above).
  JitterMode jitter_mode = JitterMode::proportional;
  // Proportional mode only: ± fraction of the envelope; 0..1.
  double jitter = 0.2;
  // RNG seed; 0: a fresh one from std::random_device at create().
  std::uint64_t seed = 0;
  // reset_if_stable() resets once a connection has been live this long; >= 0.
  Duration stable_after = std::chrono::seconds(30);
  // Optional venue-wide budget shared by every connection to one broker.
  std::shared_ptr<AttemptBudget> budget = nullptr;

  // Returns gRPC's connection-backoff parameters: 1 s, ×1.6, capped at 120 s,
  // ±20 % jitter; stable after 30 s live; no budget.
  static BackoffOptions suggested() noexcept { return {}; }

  // Returns OK, or kInvalidArgument naming the first field out of range.
  absl::Status validate() const;
};

struct BackoffStats {
  std::uint64_t attempts = 0;          // attempts scheduled since create()
  std::uint64_t episode_attempts = 0;  // ... since the last reset
  Duration current_delay{0};           // the last delay drawn (jittered)
  Duration next_envelope{0};           // the envelope of the next draw
  std::uint64_t resets = 0;            // resets that ended an episode
  std::uint64_t budget_deferred = 0;   // attempts the budget pushed later
  Duration budget_deferred_for{0};     // total time they were pushed later
};

class Backoff {
 public:
  // Returns a backoff at the start of its schedule, or kInvalidArgument if
  // `options` are out of range.
  static absl::StatusOr<Backoff> create(BackoffOptions options) {
    if (absl::Status s = options.validate(); !s.ok()) return s;
    return Backoff(std::move(options));
  }

  // Returns when to make the first attempt of an episode (at startup): `now`,
  // or later if the budget is spent. Books the attempt in the budget; draws no
  // delay. Never blocks.
  [[nodiscard]] SteadyTime first_attempt_at(SteadyTime now) {
    stable_ = false;
    return book(now, now);
  }

  // Returns when to start the next attempt, after the attempt that started at
  // `previous_started` failed, or connected and then dropped before being
  // reported stable: previous_started + the next delay, but never before
  // `now` (a long attempt leaves less, or nothing, to wait), and pushed later
  // if the budget is spent. Right after a reset, returns `now` (budget
  // permitting) and draws no delay. Books the attempt in the budget. Never
  // blocks.
  [[nodiscard]] SteadyTime next_attempt_at(SteadyTime previous_started,
                                           SteadyTime now) {
    if (std::exchange(stable_, false)) return book(now, now);
    return book(std::max(now, previous_started + draw()), now);
  }

  // Returns the next delay of the schedule alone (0 right after a reset), for
  // callers that time attempts themselves. Must not be used with a budget:
  // next_attempt_at() books the attempt there. Never blocks.
  [[nodiscard]] Duration next_delay() {
    assert(!options_.budget &&
           "with an AttemptBudget, use next_attempt_at() to book attempts");
    ++stats_.attempts;
    ++stats_.episode_attempts;
    if (std::exchange(stable_, false)) return Duration::zero();
    return draw();
  }

  // Records that the connection is stable (logged in, subscriptions confirmed,
  // data flowing): the schedule restarts at `initial`, and the next attempt
  // after a drop starts at once. Nothing else resets the schedule. Never
  // blocks.
  void report_stable() {
    if (!stable_ && stats_.episode_attempts > 0) ++stats_.resets;
    stable_ = true;
    envelope_ns_ = initial_ns();
    previous_ns_ = initial_ns();
    stats_.episode_attempts = 0;
    stats_.next_envelope = options_.initial;
  }

  // Calls report_stable() and returns true if the connection has been live
  // since `live_since` for at least `stable_after` at `now`; otherwise
  // returns false and changes nothing. Never blocks.
  bool reset_if_stable(SteadyTime live_since, SteadyTime now) {
    if (now - live_since < options_.stable_after) return false;
    report_stable();
    return true;
  }

  // Returns a snapshot of the counters. Never blocks.
  BackoffStats stats() const { return stats_; }

  const BackoffOptions& options() const { return options_; }

 private:
  explicit Backoff(BackoffOptions options)
      : options_(std::move(options)),
        rng_(options_.seed != 0 ? options_.seed : random_seed()),
        envelope_ns_(initial_ns()),
        previous_ns_(initial_ns()) {
    stats_.next_envelope = options_.initial;
  }

  static std::uint64_t random_seed() {
    std::random_device device;
    return (static_cast<std::uint64_t>(device()) << 32) ^ device();
  }

  double initial_ns() const {
    return static_cast<double>(options_.initial.count());
  }
  double max_ns() const { return static_cast<double>(options_.max.count()); }

  // Returns a uniform double in [0, 1) from the top 53 bits of one draw.
  double uniform() { return static_cast<double>(rng_() >> 11) * 0x1p-53; }

  // Draws the next delay and advances the schedule.
  Duration draw() {
    double ns = 0;
    switch (options_.jitter_mode) {
      case JitterMode::none:
        ns = envelope_ns_;
        break;
      case JitterMode::proportional:
        ns = envelope_ns_ * (1.0 + options_.jitter * (2.0 * uniform() - 1.0));
        break;
      case JitterMode::full:
        ns = envelope_ns_ * uniform();
        break;
      case JitterMode::decorrelated:
        ns = std::min(max_ns(), initial_ns() + uniform() * (3.0 * previous_ns_ -
                                                            initial_ns()));
        previous_ns_ = ns;
        break;
    }
    envelope_ns_ = options_.jitter_mode == JitterMode::decorrelated
                       ? std::min(max_ns(), 3.0 * previous_ns_)
                       : std::min(max_ns(), envelope_ns_ * options_.multiplier);
    const Duration delay(
        static_cast<Duration::rep>(std::llround(std::max(0.0, ns))));
    stats_.current_delay = delay;
    stats_.next_envelope =
        Duration(static_cast<Duration::rep>(std::llround(envelope_ns_)));
    return delay;
  }

  // Books an attempt wanted at `want` (>= now) in the budget, if any.
  SteadyTime book(SteadyTime want, SteadyTime now) {
    ++stats_.attempts;
    ++stats_.episode_attempts;
    if (!options_.budget) return want;
    const SteadyTime at = options_.budget->reserve(want, now);
    if (at > want) {
      ++stats_.budget_deferred;
      stats_.budget_deferred_for += at - want;
    }
    return at;
  }

  BackoffOptions options_;
  std::mt19937_64 rng_;
  double envelope_ns_;   // none/proportional/full: e_k for the next draw
  double previous_ns_;   // decorrelated: the previous delay (initial at first)
  bool stable_ = false;  // reported stable since the last attempt
  BackoffStats stats_;
};

inline absl::Status AttemptBudgetOptions::validate() const {
  if (max_attempts < 1 || max_attempts > 100'000) {
    return absl::InvalidArgumentError(absl::StrCat(
        "AttemptBudgetOptions::max_attempts must be in [1, 100000], got ",
        max_attempts));
  }
  if (window <= Duration::zero()) {
    return absl::InvalidArgumentError(
        absl::StrCat("AttemptBudgetOptions::window must be > 0, got ",
                     window.count(), " ns"));
  }
  return absl::OkStatus();
}

inline absl::Status BackoffOptions::validate() const {
  if (initial <= Duration::zero()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "BackoffOptions::initial must be > 0, got ", initial.count(), " ns"));
  }
  if (!(multiplier >= 1.0) || !std::isfinite(multiplier)) {
    return absl::InvalidArgumentError(
        absl::StrCat("BackoffOptions::multiplier must be finite and >= 1, got ",
                     multiplier));
  }
  if (max < initial || max > std::chrono::hours(8760)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "BackoffOptions::max must be in [initial (", initial.count(),
        " ns), 8760 h], got ", max.count(), " ns"));
  }
  switch (jitter_mode) {
    case JitterMode::none:
    case JitterMode::proportional:
    case JitterMode::full:
    case JitterMode::decorrelated:
      break;
    default:
      return absl::InvalidArgumentError(
          "BackoffOptions::jitter_mode is not a known mode");
  }
  if (!(jitter >= 0.0 && jitter <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("BackoffOptions::jitter must be in [0, 1], got ", jitter));
  }
  if (stable_after < Duration::zero()) {
    return absl::InvalidArgumentError(
        absl::StrCat("BackoffOptions::stable_after must be >= 0, got ",
                     stable_after.count(), " ns"));
  }
  return absl::OkStatus();
}

}  // namespace feedkit
