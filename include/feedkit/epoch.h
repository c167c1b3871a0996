// SPDX-License-Identifier: Apache-2.0
//
// feedkit/epoch.h
//
// Connection epochs and gap events: how a consumer learns that the feed was
// interrupted, for how long, why, and which data came from which connection.
//
//   ConnectionEpoch  a counter: 0 before the first connection, then +1 each
//                    time a new connection is up and logged in, BEFORE any
//                    data from it is delivered. is_current(e) rejects (and
//                    counts) late frames of older connections.
//   Stamped<T>       an event with its epoch and steady receive time.
//   GapEvent         the in-band marker of one connection boundary: old and
//                    new epoch, when the old connection went away, when the
//                    new one resumed, why, and the subscriptions lost. It is
//                    default-constructible and nothrow-movable, so it can be
//                    the Dispatcher's never-dropped control event (push it
//                    with Producer::push_control(), in order with the data).
//   GapTracker       owns the epoch and records disconnects, so that every
//                    boundary after the first connection yields exactly one
//                    GapEvent and the epoch only ever advances with one.
//
// Nothing here reads a clock, starts a thread or blocks: callers pass `now`.
// ConnectionEpoch never allocates; GapEvent allocates only for its list of
// lost subscriptions (a rare event).
//
// Thread safety: ConnectionEpoch is thread-safe (frames may be checked on a
// Paho thread while another thread advances it). GapTracker is
// thread-compatible, except for its epoch(), which is thread-safe.
//
// Example:
//   feedkit::GapTracker gaps;
//   gaps.on_disconnected(now, feedkit::GapReason::network);   // link dropped
//   if (auto gap = gaps.on_connected(now, subs.lost_keys()))  // logged in
//     producer.push_control(Event(std::move(*gap)));          // before data
//   if (gaps.epoch().is_current(e)) producer.try_push(...);   // per frame
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "feedkit/clock.h"

namespace feedkit {

// Why a connection ended. The names (to_string) are the values written to
// journals and metrics labels.
enum class GapReason : std::uint8_t {
  unknown,           // not recorded (on_connected() without on_disconnected())
  network,           // the link failed: reset, EOF, connect/handshake failure
  stall,             // the link looked alive but carried no data (watchdog)
  server_close,      // the broker closed the session (close frame, DISCONNECT)
  token,             // credentials expired or were rotated (planned reconnect)
  manual,            // the application asked for it
  session_replaced,  // another session took over (KIS OPSP8996, Kiwoom R10001)
  protocol_error,    // frames the client could not make sense of
};

inline constexpr std::size_t kGapReasonCount = 8;
static_assert(static_cast<std::size_t>(GapReason::protocol_error) + 1 ==
                  kGapReasonCount,
              "kGapReasonCount must follow the last GapReason");

// Returns the snake_case name of `reason` ("network", "server_close", …).
constexpr std::string_view to_string(GapReason reason) noexcept {
  switch (reason) {
    case GapReason::unknown:
      return "unknown";
    case GapReason::network:
      return "network";
    case GapReason::stall:
      return "stall";
    case GapReason::server_close:
      return "server_close";
    case GapReason::token:
      return "token";
    case GapReason::manual:
      return "manual";
    case GapReason::session_replaced:
      return "session_replaced";
    case GapReason::protocol_error:
      return "protocol_error";
  }
  return "unknown";
}

// An event with the epoch of the connection it came from and the steady time
// the frame was received (not the time it was polled).
template <class T>
struct Stamped {
  T payload{};
  std::uint64_t epoch = 0;
  SteadyTime recv_time{};
};

// One connection boundary. Pushed through the dispatcher as a control event
// after the last data of `old_epoch` and before the first data of
// `new_epoch`.
struct GapEvent {
  std::uint64_t old_epoch = 0;
  std::uint64_t new_epoch = 0;
  // When the old connection was lost. For a stall, the time of the last frame
  // received, so that down_time() covers the silence.
  SteadyTime disconnected_at{};
  // When the new connection was up and logged in (data may flow from here).
  SteadyTime resumed_at{};
  GapReason reason = GapReason::unknown;
  // Subscriptions that were live on the old connection and are not restored
  // yet at `resumed_at` (SubscriptionSet::lost_keys()); their progress after
  // that is in the SubscriptionSet's stats.
  std::vector<std::string> subscriptions_lost;

  // Returns resumed_at - disconnected_at, or zero if the times are reversed.
  Duration down_time() const noexcept {
    return std::max(Duration::zero(), resumed_at - disconnected_at);
  }

  bool operator==(const GapEvent&) const = default;
};

static_assert(std::is_nothrow_move_constructible_v<GapEvent> &&
                  std::is_nothrow_move_assignable_v<GapEvent> &&
                  std::is_default_constructible_v<GapEvent>,
              "GapEvent must be a valid Dispatcher control event");

struct ConnectionEpochStats {
  std::uint64_t current = 0;         // the epoch now (0: never connected)
  std::uint64_t discarded_late = 0;  // is_current() calls that returned false
};

// The epoch of the current connection. Starts at 0 (no connection yet).
class ConnectionEpoch {
 public:
  ConnectionEpoch() = default;
  ConnectionEpoch(const ConnectionEpoch&) = delete;
  ConnectionEpoch& operator=(const ConnectionEpoch&) = delete;

  // Returns the epoch of the current connection; 0 before the first one.
  // Thread-safe. Never blocks.
  std::uint64_t current() const noexcept {
    return current_.load(std::memory_order_acquire);
  }

  // Starts a new epoch and returns it. Call it when a new connection is up
  // and logged in, before any data from it is delivered (GapTracker does).
  // Thread-safe. Never blocks.
  std::uint64_t advance() noexcept {
    return current_.fetch_add(1, std::memory_order_acq_rel) + 1;
  }

  // Returns true if `epoch` is the current one. Otherwise the frame is late
  // (from an older connection): returns false and counts it in
  // discarded_late. A frame that passed this check just before advance() may
  // still be pushed after the new epoch's GapEvent; consumers that must be
  // exact compare Stamped::epoch with the last GapEvent::new_epoch.
  // Thread-safe. Never blocks.
  [[nodiscard]] bool is_current(std::uint64_t epoch) noexcept {
    if (epoch == current_.load(std::memory_order_acquire)) return true;
    discarded_late_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }

  // Returns how many frames is_current() rejected. Thread-safe.
  std::uint64_t discarded_late() const noexcept {
    return discarded_late_.load(std::memory_order_relaxed);
  }

  // Returns a snapshot of the counters. Thread-safe. Never blocks.
  ConnectionEpochStats stats() const noexcept {
    return {current(), discarded_late()};
  }

 private:
  std::atomic<std::uint64_t> current_{0};
  std::atomic<std::uint64_t> discarded_late_{0};
};

struct GapTrackerStats {
  std::uint64_t gaps = 0;                 // GapEvents built
  Duration total_down_time{0};            // summed GapEvent::down_time()
  Duration longest_down_time{0};          // the largest GapEvent::down_time()
  std::uint64_t ignored_disconnects = 0;  // on_disconnected() calls ignored
  // Boundaries for which on_disconnected() was never called (reason unknown,
  // down time zero): a bug in the caller's state machine worth alarming on.
  std::uint64_t unrecorded_disconnects = 0;
  std::array<std::uint64_t, kGapReasonCount> by_reason{};  // index: reason
};

// Pairs each epoch advance with exactly one GapEvent.
//
//   never connected --on_connected--> connected (epoch 1, no GapEvent)
//   connected --on_disconnected(t, reason)--> down (t and reason kept; later
//        calls are ignored, so failed reconnect attempts keep the first cause)
//   down --on_connected(now)--> connected (epoch +1, GapEvent returned)
class GapTracker {
 public:
  GapTracker() = default;
  GapTracker(const GapTracker&) = delete;
  GapTracker& operator=(const GapTracker&) = delete;

  // Returns the epoch, for stamping and for is_current() on frame threads.
  // Thread-safe (the ConnectionEpoch itself is).
  ConnectionEpoch& epoch() noexcept { return epoch_; }
  const ConnectionEpoch& epoch() const noexcept { return epoch_; }

  // Records that the current connection was lost at `at` for `reason`.
  // Returns true if recorded; false (counted as ignored_disconnects) if no
  // connection is up: before the first connection, or after a disconnect
  // already recorded, e.g. by each failed reconnect attempt. For a stall,
  // pass the time of the last frame. Never allocates.
  bool on_disconnected(SteadyTime at, GapReason reason) noexcept {
    if (!connected_) {
      ++stats_.ignored_disconnects;
      return false;
    }
    connected_ = false;
    disconnected_at_ = at;
    reason_ = reason;
    return true;
  }

  // Records that a new connection is up and logged in at `now`: advances the
  // epoch and returns the GapEvent for the boundary, to be pushed before any
  // data of the new epoch. Returns nullopt for the first connection (there is
  // no gap before it). Without a prior on_disconnected() (a caller's bug) the
  // event still comes, with reason `unknown` and disconnected_at = `now`, and
  // is counted in unrecorded_disconnects.
  [[nodiscard]] std::optional<GapEvent> on_connected(
      SteadyTime now, std::vector<std::string> subscriptions_lost = {}) {
    const std::uint64_t old_epoch = epoch_.current();
    const bool recorded = !connected_;
    connected_ = true;
    const std::uint64_t new_epoch = epoch_.advance();
    if (old_epoch == 0) return std::nullopt;
    if (!recorded) ++stats_.unrecorded_disconnects;
    GapEvent gap;
    gap.old_epoch = old_epoch;
    gap.new_epoch = new_epoch;
    gap.disconnected_at = recorded ? disconnected_at_ : now;
    gap.resumed_at = now;
    gap.reason = recorded ? reason_ : GapReason::unknown;
    gap.subscriptions_lost = std::move(subscriptions_lost);
    const Duration down = gap.down_time();
    ++stats_.gaps;
    stats_.total_down_time += down;
    stats_.longest_down_time = std::max(stats_.longest_down_time, down);
    ++stats_.by_reason[static_cast<std::size_t>(gap.reason)];
    return gap;
  }

  // Returns true between on_connected() and on_disconnected().
  bool connected() const noexcept { return connected_; }

  // Returns a snapshot of the counters. Never blocks.
  GapTrackerStats stats() const noexcept { return stats_; }

 private:
  ConnectionEpoch epoch_;
  bool connected_ = false;
  SteadyTime disconnected_at_{};
  GapReason reason_ = GapReason::unknown;
  GapTrackerStats stats_;
};

}  // namespace feedkit
