// SPDX-License-Identifier: Apache-2.0
//
// feedkit/escalation.h
//
// EscalationLadder decides what to do about silence that FeedHealth found on
// one connection, one rung at a time, each rung counted:
//
//   a symbol goes stale          → resubscribe it
//   still stale resubscribe_grace later → reconnect its connection
//   still stale reconnect_grace later   → reconnect again, up to
//                                  max_reconnects times, then `exhausted`:
//                                  reported, no more actions for it
//   the whole feed goes stale    → reconnect at once
//   reconnects keep failing      → the client's CircuitBreaker opens and
//                                  probes (WsClient, MqttClient)
//
// A symbol leaves the ladder when it is no longer stale (counted as
// recovered at the rung it reached) or becomes suspended (session closed or
// halted: not counted). Reconnects are coalesced: one issued less than
// `min_reconnect_interval` ago counts for every symbol that asks for one, so
// ten symbols going quiet together cost one reconnect, not ten. The ladder
// gives up on a symbol after `max_reconnects`, so one illiquid or halted
// symbol cannot keep knocking down a connection that carries hundreds of
// healthy ones; it stays stale in FeedHealth (and alarming) until it recovers.
//
// The ladder acts through the caller: step() appends EscalationActions and
// the caller performs them (WsClient::resubscribe(key), ::reconnect(reason)).
// Reads no clock, starts no thread, never blocks. Thread-compatible: the
// thread that evaluates FeedHealth calls step(). Keep one ladder per
// connection and feed it that connection's symbols' transitions.
//
// Example (the consumer thread, every second):
//   health.evaluate(now, wall_now, transitions);
//   ladder.step(transitions, now, actions);
//   for (const auto& a : actions) {
//     if (a.step == feedkit::EscalationStep::resubscribe)
//       client->resubscribe(key_of(a.symbol));
//     else if (a.step == feedkit::EscalationStep::reconnect)
//       client->reconnect(a.reason);
//   }
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "feedkit/clock.h"
#include "feedkit/epoch.h"
#include "feedkit/feed_health.h"

namespace feedkit {

enum class EscalationStep : std::uint8_t {
  resubscribe,  // unsubscribe and subscribe `symbol` again
  reconnect,    // drop the connection and reconnect (`reason`)
  exhausted,    // the ladder gives up on `symbol` (report it; no action)
};

// Returns "resubscribe", "reconnect" or "exhausted".
constexpr std::string_view to_string(EscalationStep step) {
  switch (step) {
    case EscalationStep::resubscribe:
      return "resubscribe";
    case EscalationStep::reconnect:
      return "reconnect";
    case EscalationStep::exhausted:
      return "exhausted";
  }
  return "unknown";
}

struct EscalationAction {
  EscalationStep step = EscalationStep::resubscribe;
  SymbolId symbol = kFeedId;  // the symbol that asked; kFeedId for the feed
  GapReason reason = GapReason::stall;  // for reconnect

  friend bool operator==(const EscalationAction&,
                         const EscalationAction&) = default;
};

struct EscalationOptions {
  // How long a resubscribed symbol may stay stale before its connection is
  // reconnected. Long enough for the broker to answer and the symbol to
  // trade again. In (0, 1 hour].
  Duration resubscribe_grace = std::chrono::seconds(30);
  // How long after a reconnect a symbol may stay stale before the next
  // reconnect (or exhaustion). In (0, 1 hour].
  Duration reconnect_grace = std::chrono::seconds(60);
  // Reconnects one stale symbol may cause before the ladder gives up on it.
  // 0: symbols never cause reconnects (resubscribe, then exhausted). In
  // [0, 100].
  std::uint32_t max_reconnects = 2;
  // Reconnects closer together than this are one (coalesced). In [0, 1 hour].
  Duration min_reconnect_interval = std::chrono::seconds(30);

  static EscalationOptions suggested() noexcept { return {}; }
  // Returns OK, or kInvalidArgument naming the first field out of range.
  absl::Status validate() const;
};

struct EscalationStats {
  std::uint64_t resubscribes = 0;     // resubscribe actions
  std::uint64_t reconnects = 0;       // reconnect actions (for symbols or feed)
  std::uint64_t feed_reconnects = 0;  // of those, for the whole feed
  std::uint64_t coalesced = 0;        // reconnects asked for, not repeated
  std::uint64_t exhausted = 0;        // symbols given up on
  std::uint64_t recovered_after_resubscribe = 0;
  std::uint64_t recovered_after_reconnect = 0;
  std::uint64_t recovered_exhausted = 0;  // recovered after the ladder gave up
  std::size_t climbing = 0;               // symbols on the ladder now
};

class EscalationLadder {
 public:
  // Returns a ladder, or kInvalidArgument for bad options.
  static absl::StatusOr<EscalationLadder> create(
      const EscalationOptions& options = EscalationOptions::suggested()) {
    if (absl::Status s = options.validate(); !s.ok()) return s;
    return EscalationLadder(options);
  }

  // Takes the transitions of one FeedHealth::evaluate() (in order) and the
  // time of that evaluation, and appends the actions due now to `out` (which
  // it does not clear). Call it after every evaluate(), even with no
  // transitions: graces run out between transitions.
  void step(std::span<const HealthTransition> transitions, SteadyTime now,
            std::vector<EscalationAction>& out) {
    for (const HealthTransition& t : transitions) apply(t, now, out);
    for (auto& [symbol, climb] : climbing_) {
      if (climb.rung == Rung::exhausted) continue;
      const Duration grace = climb.rung == Rung::resubscribe
                                 ? options_.resubscribe_grace
                                 : options_.reconnect_grace;
      if (now - climb.since < grace) continue;
      if (climb.reconnects >= options_.max_reconnects) {
        climb.rung = Rung::exhausted;
        ++stats_.exhausted;
        out.push_back({EscalationStep::exhausted, symbol, GapReason::stall});
        continue;
      }
      ++climb.reconnects;
      climb.rung = Rung::reconnect;
      climb.since = reconnect(symbol, now, out);
    }
  }

  // The rung `symbol` is on: nullopt if it is not climbing.
  std::optional<EscalationStep> rung(SymbolId symbol) const {
    auto it = climbing_.find(symbol);
    if (it == climbing_.end()) return std::nullopt;
    return it->second.rung;
  }

  EscalationStats stats() const {
    EscalationStats s = stats_;
    s.climbing = climbing_.size();
    return s;
  }

  const EscalationOptions& options() const { return options_; }

 private:
  // A climbing symbol's rung is the last step taken for it.
  using Rung = EscalationStep;
  struct Climb {
    Rung rung = Rung::resubscribe;
    SteadyTime since{};  // when the rung was reached
    std::uint32_t reconnects = 0;
  };

  explicit EscalationLadder(const EscalationOptions& options)
      : options_(options) {}

  void apply(const HealthTransition& t, SteadyTime now,
             std::vector<EscalationAction>& out) {
    if (t.is_feed()) {
      if (t.to == HealthState::stale) {
        const std::size_t before = out.size();
        reconnect(kFeedId, now, out);
        if (out.size() != before) ++stats_.feed_reconnects;
      }
      return;
    }
    if (t.to == HealthState::stale) {
      if (climbing_.contains(t.symbol)) return;
      climbing_[t.symbol] = Climb{Rung::resubscribe, now, 0};
      ++stats_.resubscribes;
      out.push_back({EscalationStep::resubscribe, t.symbol, GapReason::stall});
      return;
    }
    auto it = climbing_.find(t.symbol);
    if (it == climbing_.end()) return;
    if (t.to != HealthState::suspended) {
      switch (it->second.rung) {
        case Rung::resubscribe:
          ++stats_.recovered_after_resubscribe;
          break;
        case Rung::reconnect:
          ++stats_.recovered_after_reconnect;
          break;
        case Rung::exhausted:
          ++stats_.recovered_exhausted;
          break;
      }
    }
    climbing_.erase(it);
  }

  // Asks for a reconnect unless one was asked for within
  // min_reconnect_interval; returns when the reconnect that counts happened.
  SteadyTime reconnect(SymbolId symbol, SteadyTime now,
                       std::vector<EscalationAction>& out) {
    if (last_reconnect_ &&
        now - *last_reconnect_ < options_.min_reconnect_interval) {
      ++stats_.coalesced;
      return *last_reconnect_;
    }
    last_reconnect_ = now;
    ++stats_.reconnects;
    out.push_back({EscalationStep::reconnect, symbol, GapReason::stall});
    return now;
  }

  EscalationOptions options_;
  std::map<SymbolId, Climb> climbing_;  // ordered: actions in symbol order
  std::optional<SteadyTime> last_reconnect_;
  EscalationStats stats_;
};

inline absl::Status EscalationOptions::validate() const {
  using std::chrono::hours;
  const auto invalid = [](const char* field, Duration value,
                          const char* range) {
    return absl::InvalidArgumentError(absl::StrCat(
        "EscalationOptions.", field, " = ",
        std::chrono::duration_cast<std::chrono::milliseconds>(value).count(),
        " ms; must be in ", range));
  };
  if (resubscribe_grace <= Duration::zero() || resubscribe_grace > hours(1)) {
    return invalid("resubscribe_grace", resubscribe_grace, "(0, 1 h]");
  }
  if (reconnect_grace <= Duration::zero() || reconnect_grace > hours(1)) {
    return invalid("reconnect_grace", reconnect_grace, "(0, 1 h]");
  }
  if (min_reconnect_interval < Duration::zero() ||
      min_reconnect_interval > hours(1)) {
    return invalid("min_reconnect_interval", min_reconnect_interval,
                   "[0, 1 h]");
  }
  if (max_reconnects > 100) {
    return absl::InvalidArgumentError(
        absl::StrCat("EscalationOptions.max_reconnects = ", max_reconnects,
                     "; must be in [0, 100]"));
  }
  return absl::OkStatus();
}

}  // namespace feedkit
