// SPDX-License-Identifier: Apache-2.0
//
// feedkit/subscription_set.h
//
// A SubscriptionSet tracks, for one connection, which keys (opaque strings
// such as "H0STCNT0|005930" or "proto/topic/bidofferv3/PTT") the caller wants
// and what the broker has confirmed, and says which subscribe/unsubscribe
// frames to send, in order, paced by a RateLimiter and within a cap:
//
//   waiting --subscribe sent--> pending --ack / ALREADY IN--> confirmed
//   pending --reject--> rejected    (permanent; kept, reported; want() re-arms)
//   pending --MAX SUBSCRIBE OVER--> over_cap    (and the cap is learned)
//   pending --no reply in confirm_timeout--> waiting (retried), and after
//           max_attempts --> unconfirmed    (kept and reported)
//   any --on_disconnected()--> waiting ("lost" if it was confirmed)
//   unwant(): --unsubscribe sent--> unsubscribing --reply/timeout--> removed
//
// Guarantees:
//  - After on_connected(now, /*broker_keeps_state=*/true) (KIS, Kiwoom: the
//    server may still hold the old session's registrations) every wanted key
//    is UNSUBSCRIBED first and only then subscribed: no subscribe is emitted
//    while any unsubscribe is still due. With false, only subscribes.
//  - ALREADY IN SUBSCRIBE is a confirmation (counted in already_subscribed),
//    never a failure (the 2026-01-15 incident lost 4.8 h of ticks to that).
//  - A wanted key is never forgotten: what cannot be confirmed (unconfirmed,
//    over_cap, rejected) is reported in stats() and by key, stays wanted,
//    and is tried again on the next connection (rejected: after want()).
//  - Frames are bounded: at most max_attempts subscribes per key and
//    connection, at most one unsubscribe per key and connection (plus one
//    per resubscribe()), and never more than the RateLimiter allows.
//  - At most cap() keys hold a slot (pending, confirmed, unconfirmed, or
//    unsubscribing); the cap is max_per_connection (KIS documents 41), lowered
//    by a MAX SUBSCRIBE OVER reply to the number of keys then confirmed.
//
// Sharding spreads keys over several connections (one SubscriptionSet each):
// balanced within one key, at most the cap per connection, deterministic
// (a stable FNV-1a hash, never std::hash), and sticky: adding a key moves no
// existing key, removing one moves at most one.
//
// Reads no clock, starts no thread, never blocks: callers pass `now` and own
// the timer (next_action_time()). Allocates on want() and for the keys it
// reports (rare, small). Thread safety: thread-compatible (use it on the
// connection's strand); Sharding is immutable and thread-safe.
//
// Example:
//   auto subs = feedkit::SubscriptionSet::create({}, now).value();
//   subs.want("H0STCNT0|005930");
//   subs.on_connected(now, /*broker_keeps_state=*/true);     // logged in
//   subs.next_actions(now, actions);   // send each; then on_ack(key, now) …
//   timer.expires_at(subs.next_action_time(now));            // call again
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"  // absl::string_view is not std:: here
#include "feedkit/clock.h"
#include "feedkit/rate_limiter.h"

namespace feedkit {

enum class SubscriptionState : std::uint8_t {
  waiting,        // wanted; nothing in flight on this connection (yet/again)
  pending,        // subscribe sent, no reply yet
  confirmed,      // acknowledged (or ALREADY IN SUBSCRIBE) on this connection
  rejected,       // the broker refused it for good (invalid key, …)
  unconfirmed,    // no reply after max_attempts subscribes on this connection
  over_cap,       // does not fit under cap() on this connection
  unsubscribing,  // unwanted; unsubscribe due or awaiting its reply
};

// Returns the snake_case name of `state` ("over_cap", …).
constexpr std::string_view to_string(SubscriptionState state) noexcept {
  switch (state) {
    case SubscriptionState::waiting:
      return "waiting";
    case SubscriptionState::pending:
      return "pending";
    case SubscriptionState::confirmed:
      return "confirmed";
    case SubscriptionState::rejected:
      return "rejected";
    case SubscriptionState::unconfirmed:
      return "unconfirmed";
    case SubscriptionState::over_cap:
      return "over_cap";
    case SubscriptionState::unsubscribing:
      return "unsubscribing";
  }
  return "unknown";
}

// One frame the caller should send now.
struct SubscriptionAction {
  enum class Kind : std::uint8_t { subscribe, unsubscribe };
  Kind kind = Kind::subscribe;
  std::string key;

  bool operator==(const SubscriptionAction&) const = default;
};

struct SubscriptionSetOptions {
  // Most keys one connection may hold (pending, confirmed, unconfirmed or
  // unsubscribing); >= 1. KIS documents 41 registrations per session; raise
  // it for brokers without a cap.
  std::size_t max_per_connection = 41;
  // How long a subscribe (or an unsubscribe of an unwanted key) may wait for
  // its reply before it counts as timed out; > 0.
  Duration confirm_timeout = std::chrono::seconds(5);
  // Subscribes sent per key and connection before it is reported
  // unconfirmed; >= 1.
  int max_attempts = 3;
  // Pacing of all frames (subscribe and unsubscribe alike): one token each.
  // The seed collector spaced KIS subscribes 0.2-0.5 s apart.
  RateLimiterOptions pacing = {.rate_per_second = 5, .burst = 5};

  static SubscriptionSetOptions suggested() noexcept { return {}; }

  // Returns OK, or kInvalidArgument naming the first field out of range.
  absl::Status validate() const;
};

// A snapshot. Key counts are by state now; the rest count since create().
struct SubscriptionStats {
  std::uint64_t desired = 0;  // wanted keys (every state but unsubscribing)
  std::uint64_t waiting = 0;
  std::uint64_t pending = 0;
  std::uint64_t confirmed = 0;
  std::uint64_t rejected = 0;
  std::uint64_t unconfirmed = 0;
  std::uint64_t over_cap = 0;
  std::uint64_t unsubscribing = 0;  // unwanted keys not yet removed
  // Wanted keys that were confirmed when a connection dropped and are not
  // confirmed again since (lost_keys()).
  std::uint64_t lost = 0;

  std::uint64_t connections = 0;  // on_connected() calls
  std::uint64_t disconnects = 0;  // on_disconnected() calls while connected
  std::uint64_t subscribes_sent = 0;
  std::uint64_t unsubscribes_sent = 0;
  std::uint64_t acks = 0;  // on_ack() accepted
  // ALREADY IN SUBSCRIBE replies: each is a confirmation too.
  std::uint64_t already_subscribed = 0;
  std::uint64_t retries = 0;   // subscribes re-sent on the same connection
  std::uint64_t timeouts = 0;  // subscribes unanswered within confirm_timeout
  std::uint64_t retryable_errors = 0;
  std::uint64_t rejections = 0;
  std::uint64_t max_subscription_replies = 0;  // MAX SUBSCRIBE OVER
  std::uint64_t unsubscribe_acks = 0;
  std::uint64_t unsubscribe_timeouts = 0;  // unwanted keys removed unanswered
  // Replies for unknown keys, for keys not subscribed on this connection, or
  // while disconnected (late frames of an old connection): ignored.
  std::uint64_t unexpected_replies = 0;

  std::uint64_t cap = 0;                     // cap() now
  std::optional<std::uint64_t> learned_cap;  // from MAX SUBSCRIBE OVER
  Duration max_confirm_latency{0};  // the slowest subscribe → confirmation
  // From on_connected() until settled() on the last connection that settled.
  Duration last_restore_time{0};
};

class SubscriptionSet {
 public:
  // Returns an empty, disconnected set, or kInvalidArgument if `options` are
  // out of range. The pacing bucket starts full at `start`.
  static absl::StatusOr<SubscriptionSet> create(SubscriptionSetOptions options,
                                                SteadyTime start) {
    if (absl::Status s = options.validate(); !s.ok()) return s;
    absl::StatusOr<RateLimiter> limiter =
        RateLimiter::create(options.pacing, start);
    if (!limiter.ok()) return limiter.status();
    return SubscriptionSet(options, *std::move(limiter));
  }

  // Adds `key` to the wanted set (subscribed by the next next_actions() once
  // connected). Also re-arms a rejected key and cancels a pending unwant().
  // Returns true if anything changed.
  bool want(std::string_view key) {
    if (Entry* e = find(key)) {
      if (!e->wanted) {
        // Its unsubscribe, if already sent, precedes the new subscribe.
        e->wanted = true;
        e->state = SubscriptionState::waiting;
        e->attempts = 0;
        return true;
      }
      if (e->state != SubscriptionState::rejected) return false;
      e->state = SubscriptionState::waiting;
      e->attempts = 0;
      e->reject_reason.clear();
      return true;
    }
    index_.emplace(std::string(key), entries_.size());
    Entry entry;
    entry.key = std::string(key);
    entries_.push_back(std::move(entry));
    return true;
  }

  // Removes `key` from the wanted set: if the broker may hold it, an
  // unsubscribe is sent first and the key is dropped on its reply (or after
  // confirm_timeout). Returns false if `key` was not wanted.
  bool unwant(std::string_view key) {
    Entry* e = find(key);
    if (e == nullptr || !e->wanted) return false;
    e->wanted = false;
    if (!connected_) {
      // The next on_connected() unsubscribes it if the broker keeps state.
      e->state = SubscriptionState::unsubscribing;
      if (!e->sent_ever) erase(key);
      return true;
    }
    const bool on_server = e->state == SubscriptionState::pending ||
                           e->state == SubscriptionState::confirmed ||
                           e->state == SubscriptionState::unconfirmed ||
                           (e->state == SubscriptionState::waiting &&
                            e->attempts > 0);  // a timed-out subscribe
    if (!on_server && !e->needs_unsubscribe) {
      erase(key);
      return true;
    }
    e->state = SubscriptionState::unsubscribing;
    e->needs_unsubscribe = true;
    return true;
  }

  // Unsubscribes and subscribes `key` again on this connection, with fresh
  // attempts (the escalation step for a stale symbol; also re-arms an
  // unconfirmed, over_cap or rejected key). A key whose subscribe is in
  // flight (pending) or about to be sent (waiting) is left as it is: its
  // reply or timeout decides, and an unsubscribe now would only cut the data
  // its reply is about to start. Returns false if `key` is not wanted or the
  // set is disconnected.
  bool resubscribe(std::string_view key) {
    Entry* e = find(key);
    if (e == nullptr || !e->wanted || !connected_) return false;
    if (e->state == SubscriptionState::pending ||
        e->state == SubscriptionState::waiting) {
      return true;
    }
    e->state = SubscriptionState::waiting;
    e->attempts = 0;
    e->needs_unsubscribe = true;
    e->reject_reason.clear();
    return true;
  }

  // Records that a new connection is up and logged in at `now`. Every wanted
  // key not rejected is to be subscribed again; if `broker_keeps_state`, every
  // one is unsubscribed first (and so is every unwanted key the broker may
  // still hold). A learned cap of 0 is raised to 1, so one key probes again.
  void on_connected(SteadyTime now, bool broker_keeps_state) {
    if (connected_) on_disconnected(now);
    connected_ = true;
    restoring_ = true;
    connected_at_ = now;
    ++stats_.connections;
    if (learned_cap_ && *learned_cap_ == 0) learned_cap_ = 1;
    for (Entry& e : entries_) {
      e.attempts = 0;
      if (!e.wanted) {
        e.state = SubscriptionState::unsubscribing;
        e.needs_unsubscribe = true;
      } else if (e.state != SubscriptionState::rejected) {
        e.state = SubscriptionState::waiting;
        e.needs_unsubscribe = broker_keeps_state;
      }
    }
    if (!broker_keeps_state) erase_if([](const Entry& e) { return !e.wanted; });
  }

  // Records that the connection is gone. Confirmed keys become lost; every
  // wanted key not rejected waits for the next connection. `now` is the time
  // of the loss (unused today beyond the contract's symmetry).
  void on_disconnected([[maybe_unused]] SteadyTime now) {
    if (!connected_) return;
    connected_ = false;
    restoring_ = false;
    ++stats_.disconnects;
    for (Entry& e : entries_) {
      e.attempts = 0;
      e.needs_unsubscribe = false;
      if (!e.wanted) continue;
      if (e.state == SubscriptionState::confirmed) e.was_live = true;
      if (e.state != SubscriptionState::rejected) {
        e.state = SubscriptionState::waiting;
      }
    }
    erase_if([](const Entry& e) { return !e.wanted && !e.sent_ever; });
  }

  // Replaces the contents of `out` with the frames to send now, in order, and
  // returns their number: first every due unsubscribe, and only when none is
  // left, subscribes (wanted keys in the order they were first wanted) while
  // cap() allows; keys beyond it become over_cap. Each frame takes one pacing
  // token; when none is left it stops (call again at next_action_time()).
  // Also expires unanswered frames. Empty while disconnected.
  std::size_t next_actions(SteadyTime now,
                           std::vector<SubscriptionAction>& out) {
    out.clear();
    if (!connected_) return 0;
    expire(now);
    bool unsubscribes_left = false;
    for (Entry& e : entries_) {
      if (!e.needs_unsubscribe) continue;
      if (!limiter_.try_acquire(now)) {
        unsubscribes_left = true;
        break;
      }
      out.push_back({SubscriptionAction::Kind::unsubscribe, e.key});
      ++stats_.unsubscribes_sent;
      e.needs_unsubscribe = false;
      e.sent_at = now;  // an unwanted key now awaits the reply
    }
    if (!unsubscribes_left) {
      std::size_t used = slots_used();
      const std::size_t limit = cap();
      for (Entry& e : entries_) {
        if (!e.wanted || (e.state != SubscriptionState::waiting &&
                          e.state != SubscriptionState::over_cap)) {
          continue;
        }
        if (e.attempts >= options_.max_attempts) {
          e.state = SubscriptionState::unconfirmed;
          continue;
        }
        if (used >= limit) {
          e.state = SubscriptionState::over_cap;
          continue;
        }
        if (!limiter_.try_acquire(now)) break;
        out.push_back({SubscriptionAction::Kind::subscribe, e.key});
        ++stats_.subscribes_sent;
        if (e.attempts > 0) ++stats_.retries;
        ++e.attempts;
        e.state = SubscriptionState::pending;
        e.sent_at = now;
        e.sent_ever = true;
        ++used;
      }
    }
    note_if_settled(now);
    return out.size();
  }

  // Returns when next_actions() has something to do: `now` or later if a
  // frame is due (when the pacing allows it) or a state must change; the
  // earliest reply deadline if frames are only awaited; SteadyTime::max() if
  // nothing will happen until the next event (want, reply, connect).
  SteadyTime next_action_time(SteadyTime now) const {
    if (!connected_) return SteadyTime::max();
    SteadyTime deadline = SteadyTime::max();
    bool unsubscribe_due = false;
    for (const Entry& e : entries_) {
      if (e.needs_unsubscribe) {
        unsubscribe_due = true;
      } else if (e.state == SubscriptionState::pending ||
                 e.state == SubscriptionState::unsubscribing) {
        deadline = std::min(deadline, e.sent_at + options_.confirm_timeout);
      }
    }
    if (deadline <= now) return now;
    // Subscribes wait until every due unsubscribe is sent.
    if (unsubscribe_due)
      return std::min(deadline, limiter_.next_available(now));
    const bool room = slots_used() < cap();
    bool subscribe_due = false;
    for (const Entry& e : entries_) {
      if (!e.wanted) continue;
      if (e.state == SubscriptionState::waiting) {
        // Without room (or attempts) it only changes state: no token needed.
        if (!room || e.attempts >= options_.max_attempts) return now;
        subscribe_due = true;
      } else if (e.state == SubscriptionState::over_cap && room) {
        subscribe_due = true;
      }
    }
    if (subscribe_due) return std::min(deadline, limiter_.next_available(now));
    return deadline;
  }

  // Records SUBSCRIBE SUCCESS for `key`: confirmed. Returns false (counted
  // in unexpected_replies) if no subscribe of it is outstanding on this
  // connection.
  bool on_ack(std::string_view key, SteadyTime now) {
    return confirm(key, now, /*already=*/false);
  }

  // Records ALREADY IN SUBSCRIBE (KIS OPSP0002) for `key`: the broker holds
  // it, so it is confirmed exactly like on_ack(), and also counted in
  // already_subscribed. Never a failure, never retried.
  bool on_already_subscribed(std::string_view key, SteadyTime now) {
    return confirm(key, now, /*already=*/true);
  }

  // Records a permanent refusal (invalid key, no entitlement): rejected, kept
  // with `reason`, not retried until want() or resubscribe().
  bool on_reject(std::string_view key, std::string_view reason,
                 SteadyTime now) {
    Entry* e = answerable(key);
    if (e == nullptr) return false;
    ++stats_.rejections;
    e->state = SubscriptionState::rejected;
    e->reject_reason = std::string(reason);
    note_if_settled(now);
    return true;
  }

  // Records MAX SUBSCRIBE OVER (KIS OPSP0008) for `key`: it becomes over_cap
  // and the learned cap drops to the number of keys confirmed now (replies
  // come in order, so every earlier subscribe has been answered); later acks
  // beyond it raise it again. The key is retried when a slot frees up, and on
  // every later connection.
  bool on_max_subscriptions(std::string_view key, SteadyTime now) {
    Entry* e = answerable(key);
    if (e == nullptr) return false;
    ++stats_.max_subscription_replies;
    e->state = SubscriptionState::over_cap;
    const std::size_t confirmed = count(SubscriptionState::confirmed);
    if (!learned_cap_ || confirmed < *learned_cap_) learned_cap_ = confirmed;
    note_if_settled(now);
    return true;
  }

  // Records a transient failure (KIS OPSP0007 internal error, an MQTT SUBACK
  // failure worth retrying): the attempt is spent and the key is retried at
  // once (paced), or reported unconfirmed after max_attempts.
  bool on_retryable_error(std::string_view key, SteadyTime now) {
    Entry* e = answerable(key);
    if (e == nullptr || e->state != SubscriptionState::pending) {
      if (e != nullptr) ++stats_.unexpected_replies;
      return false;
    }
    ++stats_.retryable_errors;
    e->state = e->attempts < options_.max_attempts
                   ? SubscriptionState::waiting
                   : SubscriptionState::unconfirmed;
    note_if_settled(now);
    return true;
  }

  // Records an unsubscribe reply for `key` (UNSUBSCRIBE SUCCESS, or "not
  // subscribed", which means the same here). An unwanted key is removed;
  // for a wanted key (the cleanup before re-subscribing) nothing changes.
  // Returns true if a key was removed.
  bool on_unsubscribed(std::string_view key, SteadyTime now) {
    Entry* e = find(key);
    if (e == nullptr) {
      ++stats_.unexpected_replies;
      return false;
    }
    ++stats_.unsubscribe_acks;
    if (e->wanted || e->needs_unsubscribe) return false;
    erase(key);
    if (connected_) note_if_settled(now);
    return true;
  }

  // Returns the state of `key`, or nullopt if the set does not hold it.
  std::optional<SubscriptionState> state(std::string_view key) const {
    const Entry* e = find(key);
    if (e == nullptr) return std::nullopt;
    return e->state;
  }

  // Returns the reason given with the rejection of `key` ("" if none).
  std::string_view reject_reason(std::string_view key) const {
    const Entry* e = find(key);
    return e == nullptr ? std::string_view() : e->reject_reason;
  }

  // Returns the keys in `state`, in the order they were first wanted.
  std::vector<std::string> keys_in(SubscriptionState state) const {
    std::vector<std::string> keys;
    for (const Entry& e : entries_) {
      if (e.state == state) keys.push_back(e.key);
    }
    return keys;
  }
  std::vector<std::string> unconfirmed_keys() const {
    return keys_in(SubscriptionState::unconfirmed);
  }
  std::vector<std::string> over_cap_keys() const {
    return keys_in(SubscriptionState::over_cap);
  }
  std::vector<std::string> rejected_keys() const {
    return keys_in(SubscriptionState::rejected);
  }

  // Returns the wanted keys that were confirmed when a connection dropped and
  // are not confirmed again since: GapEvent::subscriptions_lost.
  std::vector<std::string> lost_keys() const {
    std::vector<std::string> keys;
    for (const Entry& e : entries_) {
      if (is_lost(e)) keys.push_back(e.key);
    }
    return keys;
  }

  // Returns true if connected and nothing is due or awaited: every wanted key
  // is confirmed, rejected, unconfirmed or over_cap (with no slot free for
  // it), and every unwanted key is gone.
  bool settled() const {
    if (!connected_) return false;
    bool over_cap = false;
    for (const Entry& e : entries_) {
      if (e.needs_unsubscribe || !e.wanted ||
          e.state == SubscriptionState::waiting ||
          e.state == SubscriptionState::pending) {
        return false;
      }
      over_cap = over_cap || e.state == SubscriptionState::over_cap;
    }
    return !over_cap || slots_used() >= cap();
  }

  bool connected() const { return connected_; }

  // Returns the number of wanted keys.
  std::size_t size() const {
    return static_cast<std::size_t>(
        std::count_if(entries_.begin(), entries_.end(),
                      [](const Entry& e) { return e.wanted; }));
  }

  // Returns the most keys this connection may hold now: max_per_connection,
  // or the learned cap if lower.
  std::size_t cap() const {
    return std::min(options_.max_per_connection,
                    learned_cap_.value_or(options_.max_per_connection));
  }

  // Returns a snapshot of the key counts and counters. O(keys).
  SubscriptionStats stats() const {
    SubscriptionStats s = stats_;
    for (const Entry& e : entries_) {
      if (e.wanted) ++s.desired;
      if (is_lost(e)) ++s.lost;
      switch (e.state) {
        case SubscriptionState::waiting:
          ++s.waiting;
          break;
        case SubscriptionState::pending:
          ++s.pending;
          break;
        case SubscriptionState::confirmed:
          ++s.confirmed;
          break;
        case SubscriptionState::rejected:
          ++s.rejected;
          break;
        case SubscriptionState::unconfirmed:
          ++s.unconfirmed;
          break;
        case SubscriptionState::over_cap:
          ++s.over_cap;
          break;
        case SubscriptionState::unsubscribing:
          ++s.unsubscribing;
          break;
      }
    }
    s.cap = cap();
    s.learned_cap = learned_cap_;
    return s;
  }

  const SubscriptionSetOptions& options() const { return options_; }

 private:
  struct Entry {
    std::string key;
    SubscriptionState state = SubscriptionState::waiting;
    bool wanted = true;
    bool needs_unsubscribe = false;  // an unsubscribe is due on this connection
    bool sent_ever = false;          // a subscribe was sent on some connection
    bool was_live = false;           // confirmed when a connection dropped
    bool dead = false;     // to be erased (its unsubscribe went unanswered)
    int attempts = 0;      // subscribes sent on this connection
    SteadyTime sent_at{};  // the last frame sent for it
    std::string reject_reason;
  };

  SubscriptionSet(const SubscriptionSetOptions& options, RateLimiter limiter)
      : options_(options), limiter_(std::move(limiter)) {}

  // Debian's Abseil has its own absl::string_view (not std::string_view).
  static absl::string_view to_absl(std::string_view s) {
    return absl::string_view(s.data(), s.size());
  }

  static bool is_lost(const Entry& e) {
    return e.wanted && e.was_live && e.state != SubscriptionState::confirmed;
  }

  Entry* find(std::string_view key) {
    auto it = index_.find(to_absl(key));
    return it == index_.end() ? nullptr : &entries_[it->second];
  }
  const Entry* find(std::string_view key) const {
    auto it = index_.find(to_absl(key));
    return it == index_.end() ? nullptr : &entries_[it->second];
  }

  // Returns the entry if a reply for `key` is expected: wanted, a subscribe
  // sent on this connection and no unsubscribe of it still due. Otherwise
  // counts an unexpected reply and returns nullptr.
  Entry* answerable(std::string_view key) {
    Entry* e = find(key);
    if (e == nullptr || !connected_ || !e->wanted || e->attempts == 0 ||
        e->needs_unsubscribe) {
      ++stats_.unexpected_replies;
      return nullptr;
    }
    return e;
  }

  bool confirm(std::string_view key, SteadyTime now, bool already) {
    Entry* e = answerable(key);
    if (e == nullptr) return false;
    ++(already ? stats_.already_subscribed : stats_.acks);
    if (e->state != SubscriptionState::confirmed) {
      e->state = SubscriptionState::confirmed;
      e->was_live = false;
      stats_.max_confirm_latency =
          std::max(stats_.max_confirm_latency, now - e->sent_at);
      // Replies out of order (or a cap that grew): the broker holds more.
      const std::size_t confirmed = count(SubscriptionState::confirmed);
      if (learned_cap_ && confirmed > *learned_cap_) learned_cap_ = confirmed;
    }
    note_if_settled(now);
    return true;
  }

  // Times out unanswered frames: a subscribe goes back to waiting (retry) or
  // to unconfirmed; an unwanted key's unsubscribe gives up and drops the key.
  void expire(SteadyTime now) {
    bool dropped = false;
    for (Entry& e : entries_) {
      if (e.needs_unsubscribe || now - e.sent_at < options_.confirm_timeout) {
        continue;
      }
      if (e.state == SubscriptionState::pending) {
        ++stats_.timeouts;
        e.state = e.attempts < options_.max_attempts
                      ? SubscriptionState::waiting
                      : SubscriptionState::unconfirmed;
      } else if (!e.wanted) {
        ++stats_.unsubscribe_timeouts;
        e.dead = true;
        dropped = true;
      }
    }
    if (dropped) erase_if([](const Entry& e) { return e.dead; });
  }

  std::size_t count(SubscriptionState state) const {
    return static_cast<std::size_t>(
        std::count_if(entries_.begin(), entries_.end(),
                      [state](const Entry& e) { return e.state == state; }));
  }

  // Keys that hold (or may hold) a slot at the broker on this connection.
  std::size_t slots_used() const {
    return static_cast<std::size_t>(
        std::count_if(entries_.begin(), entries_.end(), [](const Entry& e) {
          return e.state == SubscriptionState::pending ||
                 e.state == SubscriptionState::confirmed ||
                 e.state == SubscriptionState::unconfirmed ||
                 e.state == SubscriptionState::unsubscribing;
        }));
  }

  void note_if_settled(SteadyTime now) {
    if (restoring_ && settled()) {
      restoring_ = false;
      stats_.last_restore_time = now - connected_at_;
    }
  }

  void erase(std::string_view key) {
    auto it = index_.find(to_absl(key));
    if (it == index_.end()) return;
    const std::size_t at = it->second;
    index_.erase(it);
    entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(at));
    for (std::size_t i = at; i < entries_.size(); ++i) {
      index_[entries_[i].key] = i;
    }
  }

  template <class Pred>
  void erase_if(Pred pred) {
    auto end = std::remove_if(entries_.begin(), entries_.end(), pred);
    if (end == entries_.end()) return;
    entries_.erase(end, entries_.end());
    index_.clear();
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      index_.emplace(entries_[i].key, i);
    }
  }

  SubscriptionSetOptions options_;
  RateLimiter limiter_;
  std::vector<Entry> entries_;  // in the order keys were first wanted
  absl::flat_hash_map<std::string, std::size_t> index_;  // key → entries_
  bool connected_ = false;
  bool restoring_ = false;  // connected and not yet settled
  SteadyTime connected_at_{};
  std::optional<std::size_t> learned_cap_;
  SubscriptionStats stats_;
};

inline absl::Status SubscriptionSetOptions::validate() const {
  if (max_per_connection < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SubscriptionSetOptions::max_per_connection must be >= 1, got ",
        max_per_connection));
  }
  if (confirm_timeout <= Duration::zero()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SubscriptionSetOptions::confirm_timeout must be > 0, got ",
        confirm_timeout.count(), " ns"));
  }
  if (max_attempts < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("SubscriptionSetOptions::max_attempts must be >= 1, got ",
                     max_attempts));
  }
  if (absl::Status s = pacing.validate(); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("SubscriptionSetOptions::pacing: ", s.message()));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Sharding

namespace internal {

// FNV-1a, 64 bits: the same value in every build, process and platform
// (std::hash and absl::Hash are not; absl::Hash is even seeded per process).
constexpr std::uint64_t stable_hash(std::string_view s) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

// The splitmix64 finalizer: spreads FNV's weak low bits.
constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// The rendezvous (highest-random-weight) score of a key for a shard.
constexpr std::uint64_t rendezvous_weight(std::uint64_t key_hash,
                                          std::size_t shard) noexcept {
  return mix64(key_hash ^ mix64(0x9e3779b97f4a7c15ULL + shard));
}

}  // namespace internal

struct ShardingOptions {
  std::size_t connections = 1;  // connections to spread keys over; 1..4096
  // Most keys per connection; 1..1'000'000 (KIS documents 41).
  std::size_t max_per_connection = 41;

  static ShardingOptions suggested() noexcept { return {}; }

  // Returns OK, or kInvalidArgument naming the first field out of range.
  absl::Status validate() const;
};

// Which keys go on which connection.
struct ShardAssignment {
  std::vector<std::vector<std::string>> shards;  // per connection, sorted
  // Keys beyond connections × max_per_connection: the last ones in the input
  // order (earlier keys have priority). Report them; they are not forgotten
  // by the caller's next rebalance().
  std::vector<std::string> over_cap;
  // Keys assigned to a different connection than in `previous`.
  std::size_t moved = 0;

  // Returns the connection `key` is assigned to, or nullopt. O(keys).
  std::optional<std::size_t> shard_of(std::string_view key) const {
    for (std::size_t i = 0; i < shards.size(); ++i) {
      if (std::binary_search(shards[i].begin(), shards[i].end(), key)) {
        return i;
      }
    }
    return std::nullopt;
  }

  // Returns the number of keys assigned to a connection.
  std::size_t assigned() const {
    std::size_t n = 0;
    for (const auto& s : shards) n += s.size();
    return n;
  }
};

// Spreads keys over connections. Every result is balanced (shard sizes differ
// by at most one), within max_per_connection per shard, and deterministic
// (independent of input order except for which keys are over_cap, and of the
// process: the hash is stable). rebalance() is sticky: keys stay where they
// were in `previous`, so adding one key moves none, removing one moves at
// most one, and a connection added or removed moves only what balance needs.
class Sharding {
 public:
  // Returns a sharding, or kInvalidArgument if `options` are out of range.
  static absl::StatusOr<Sharding> create(ShardingOptions options) {
    if (absl::Status s = options.validate(); !s.ok()) return s;
    return Sharding(options);
  }

  // Returns the assignment of `keys` (duplicates ignored) from scratch.
  ShardAssignment assign(std::span<const std::string> keys) const {
    return rebalance(ShardAssignment{}, keys);
  }

  // Returns the assignment of `keys` that keeps every key of `previous` on
  // its connection unless balance or the cap requires otherwise. Newcomers go
  // to the least-loaded connection (ties: highest rendezvous weight), in
  // stable-hash order; then keys move from the fullest to the emptiest
  // connection until sizes differ by at most one. Thread-safe.
  ShardAssignment rebalance(const ShardAssignment& previous,
                            std::span<const std::string> keys) const {
    constexpr std::size_t kUnplaced = std::numeric_limits<std::size_t>::max();
    constexpr std::size_t kOverCap = kUnplaced - 1;
    const std::size_t n = options_.connections;
    const std::size_t cap = options_.max_per_connection;
    ShardAssignment out;

    // 1. Accept the first n × cap distinct keys. Views point into `keys`.
    absl::flat_hash_map<std::string_view, std::size_t> where;
    std::size_t accepted = 0;
    for (const std::string& key : keys) {
      if (where.contains(key)) continue;
      if (accepted < n * cap) {
        where.emplace(key, kUnplaced);
        ++accepted;
      } else {
        where.emplace(key, kOverCap);
        out.over_cap.push_back(key);
      }
    }

    // 2. Keep the previous placements, within the cap.
    std::vector<std::vector<std::string_view>> shards(n);
    for (std::size_t i = 0; i < std::min(n, previous.shards.size()); ++i) {
      for (const std::string& key : previous.shards[i]) {
        auto it = where.find(key);
        if (it == where.end() || it->second != kUnplaced) continue;
        it->second = i;
        shards[i].push_back(it->first);
      }
      if (shards[i].size() > cap) {  // the cap was lowered: shed the excess
        std::sort(shards[i].begin(), shards[i].end(),
                  [i](std::string_view a, std::string_view b) {
                    return by_weight(a, b, i);
                  });
        for (std::size_t k = cap; k < shards[i].size(); ++k) {
          where[shards[i][k]] = kUnplaced;
        }
        shards[i].resize(cap);
      }
    }

    // 3. Place newcomers in a canonical order on the least-loaded shard.
    std::vector<std::pair<std::uint64_t, std::string_view>> newcomers;
    for (const auto& [key, shard] : where) {
      if (shard == kUnplaced) {
        newcomers.emplace_back(internal::stable_hash(key), key);
      }
    }
    std::sort(newcomers.begin(), newcomers.end());
    for (const auto& [hash, key] : newcomers) {
      std::size_t best = 0;
      for (std::size_t i = 1; i < n; ++i) {
        if (std::make_tuple(shards[i].size(),
                            ~internal::rendezvous_weight(hash, i)) <
            std::make_tuple(shards[best].size(),
                            ~internal::rendezvous_weight(hash, best))) {
          best = i;
        }
      }
      shards[best].push_back(key);
    }

    // 4. Balance: move from the fullest to the emptiest shard the key that
    // scores highest there, until sizes differ by at most one.
    while (n > 1) {
      auto size_less = [](const auto& a, const auto& b) {
        return a.size() < b.size();
      };
      auto hi = std::max_element(shards.begin(), shards.end(), size_less);
      auto lo = std::min_element(shards.begin(), shards.end(), size_less);
      if (hi->size() <= lo->size() + 1) break;
      const std::size_t to = static_cast<std::size_t>(lo - shards.begin());
      auto pick = std::min_element(
          hi->begin(), hi->end(), [to](std::string_view a, std::string_view b) {
            return by_weight(a, b, to);
          });
      lo->push_back(*pick);
      hi->erase(pick);
    }

    // 5. Output, sorted; count keys that changed connection.
    absl::flat_hash_map<std::string_view, std::size_t> before;
    for (std::size_t i = 0; i < previous.shards.size(); ++i) {
      for (const std::string& key : previous.shards[i]) before.emplace(key, i);
    }
    out.shards.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      std::sort(shards[i].begin(), shards[i].end());
      out.shards[i].assign(shards[i].begin(), shards[i].end());
      for (std::string_view key : shards[i]) {
        auto it = before.find(key);
        if (it != before.end() && it->second != i) ++out.moved;
      }
    }
    return out;
  }

  const ShardingOptions& options() const { return options_; }

 private:
  explicit Sharding(const ShardingOptions& options) : options_(options) {}

  // Orders keys by descending rendezvous weight for `shard`, then by key.
  static bool by_weight(std::string_view a, std::string_view b,
                        std::size_t shard) {
    const std::uint64_t wa =
        internal::rendezvous_weight(internal::stable_hash(a), shard);
    const std::uint64_t wb =
        internal::rendezvous_weight(internal::stable_hash(b), shard);
    return wa != wb ? wa > wb : a < b;
  }

  ShardingOptions options_;
};

inline absl::Status ShardingOptions::validate() const {
  if (connections < 1 || connections > 4096) {
    return absl::InvalidArgumentError(
        absl::StrCat("ShardingOptions::connections must be in [1, 4096], got ",
                     connections));
  }
  if (max_per_connection < 1 || max_per_connection > 1'000'000) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ShardingOptions::max_per_connection must be in [1, 1000000], got ",
        max_per_connection));
  }
  return absl::OkStatus();
}

}  // namespace feedkit
