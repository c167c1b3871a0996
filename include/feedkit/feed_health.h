// SPDX-License-Identifier: Apache-2.0
//
// feedkit/feed_health.h
//
// FeedHealth tells whether a market-data feed, and each expected symbol on it,
// is still delivering. It keeps the newest receive time (SteadyTime: the time
// the frame arrived, not the time the consumer polled it) of the feed and of
// every symbol registered with expect(), and classifies each one:
//
//   never_seen  expected, nothing received yet (reported, never hidden)
//   fresh       silent for at most suspect_factor x expected_interval
//   suspect     silent longer than that                 (probe, snapshot)
//   stale       silent longer than its timeout: stale_factor x
//               expected_interval, or set_symbol_timeout()  (resubscribe)
//   suspended   outside a trading session, or halt()ed: no alarms
//
// Silence is strictly greater than a threshold: a gap equal to it is not yet
// suspect or stale. The feed as a whole goes stale after `feed_timeout` with
// no record of any symbol, independently of symbol timeouts (it has no
// suspect band). A TradingCalendar (feedkit/trading_calendar.h) suspends
// everything outside sessions; when a session opens (and when monitoring
// starts, and when a halted symbol resumes) silence is counted from that
// moment, and nothing may go suspect or stale until `open_grace` has passed.
// A never-seen symbol ages the same way, so one that never arrives goes
// never_seen -> suspect -> stale and is still listed by never_seen_symbols().
//
// evaluate() returns exactly one HealthTransition per state change. Worse
// states are entered at once; leaving suspect or stale (hysteresis) takes
// `recover_after` records that arrive before the symbol's silence crosses its
// current state's threshold again. A session boundary moves every symbol into
// or out of suspended, one transition each.
//
// Reads no clock (callers pass `now`, and the wall time for the calendar),
// starts no thread, never blocks. record() never allocates and costs an
// array store by SymbolId, one hash lookup by name; unknown names are counted
// and dropped unless `auto_expect_unknown`. evaluate() allocates only to grow
// the caller's vector.
//
// Thread safety: thread-compatible (the consumer thread records and
// evaluates; a shared object needs external synchronization).
//
// Example:
//   auto health = feedkit::FeedHealth::create({}, &krx_calendar).value();
//   feedkit::SymbolId samsung = health.expect("005930");
//   health.record(samsung, event.recv_time);           // per event
//   health.evaluate(now, wall_now, transitions);        // e.g. every second
#pragma once

#include <algorithm>
#include <array>
#include <cassert>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "feedkit/clock.h"
#include "feedkit/trading_calendar.h"

namespace feedkit {

enum class HealthState : std::uint8_t {
  never_seen,  // expected, no record yet, still within its allowance
  fresh,       // silent for at most the suspect threshold
  suspect,     // silent longer than the suspect threshold
  stale,       // silent longer than the timeout
  suspended,   // outside a session or halted: no alarms
};

// Returns "never_seen", "fresh", "suspect", "stale" or "suspended".
constexpr std::string_view to_string(HealthState s) {
  switch (s) {
    case HealthState::never_seen:
      return "never_seen";
    case HealthState::fresh:
      return "fresh";
    case HealthState::suspect:
      return "suspect";
    case HealthState::stale:
      return "stale";
    case HealthState::suspended:
      return "suspended";
  }
  return "unknown";
}

// A dense symbol number handed out by FeedHealth::expect(): 0, 1, 2, ...
enum class SymbolId : std::uint32_t {};

// The SymbolId of transitions of the feed as a whole.
inline constexpr SymbolId kFeedId =
    static_cast<SymbolId>(std::numeric_limits<std::uint32_t>::max());

// One state change, returned by FeedHealth::evaluate().
struct HealthTransition {
  SymbolId symbol = kFeedId;  // kFeedId for the feed as a whole
  HealthState from = HealthState::never_seen;
  HealthState to = HealthState::never_seen;
  SteadyTime at{};  // the `now` of the evaluate() that saw it

  bool is_feed() const { return symbol == kFeedId; }
  friend bool operator==(const HealthTransition&,
                         const HealthTransition&) = default;
};

struct FeedHealthOptions {
  // The longest normal gap between two events of one symbol in a session;
  // the default for every symbol. In (0, 7 days].
  Duration expected_interval = std::chrono::seconds(10);
  // Suspect after suspect_factor x expected_interval of silence. In [1, 1000].
  double suspect_factor = 1.2;
  // Stale (the symbol timeout) after stale_factor x expected_interval of
  // silence. In [suspect_factor, 1000].
  double stale_factor = 2.4;
  // The feed as a whole is stale after this long with no record of any
  // symbol (expected or not) in a session. In (0, 7 days].
  Duration feed_timeout = std::chrono::seconds(5);
  // After a session opens, monitoring starts or a symbol resumes, nothing may
  // go suspect or stale for this long. In [0, 1 day].
  Duration open_grace = std::chrono::seconds(60);
  // Records needed to leave suspect or stale, each arriving before the
  // silence crosses the current state's threshold again. In [1, 1,000,000];
  // 1 recovers on the first record.
  std::uint32_t recover_after = 2;
  // What record(name) does with a name never expect()ed: false counts it
  // (unexpected_records) and drops it; true expect()s it (allocates).
  bool auto_expect_unknown = false;

  // Returns the defaults: a 10 s expected interval (suspect after 12 s, stale
  // after 24 s), feed timeout 5 s, grace 60 s, recovery after 2 records.
  static FeedHealthOptions suggested() noexcept { return {}; }

  // Returns the stale threshold of a symbol with no override.
  Duration symbol_timeout() const {
    return Duration(static_cast<Duration::rep>(std::llround(
        static_cast<double>(expected_interval.count()) * stale_factor)));
  }

  // Returns OK, or kInvalidArgument naming the first field out of range.
  absl::Status validate() const;
};

// A snapshot. Per-state counts and `feed` are as of the last evaluate()
// (before the first one, every symbol counts as never_seen).
struct FeedHealthStats {
  std::size_t symbols = 0;  // expected symbols
  std::size_t never_seen = 0;
  std::size_t fresh = 0;
  std::size_t suspect = 0;
  std::size_t stale = 0;
  std::size_t suspended = 0;
  std::size_t never_received = 0;  // expected, no record yet (any state)
  HealthState feed = HealthState::never_seen;  // the feed as a whole
  bool in_session = false;                     // at the last evaluate()
  std::uint64_t records = 0;                   // records of expected symbols
  std::uint64_t unexpected_records = 0;    // records of unknown names, dropped
  std::uint64_t auto_expected = 0;         // symbols expect()ed by record(name)
  std::uint64_t transitions = 0;           // symbol transitions returned
  std::uint64_t feed_transitions = 0;      // feed transitions returned
  std::uint64_t evaluations = 0;           // evaluate() calls
  std::optional<SteadyTime> last_record;   // newest receive time of any record
  std::optional<SteadyTime> evaluated_at;  // `now` of the last evaluate()
  std::optional<WallTime> evaluated_at_wall;  // its wall time, if one was given

  // Returns last_record as wall-clock time (for a "last event" Unix
  // timestamp gauge), mapped through the last evaluate()'s pair of steady and
  // wall times; nullopt if either is missing.
  std::optional<WallTime> last_record_wall() const {
    if (!last_record || !evaluated_at || !evaluated_at_wall) return {};
    return *evaluated_at_wall - std::chrono::duration_cast<WallTime::duration>(
                                    *evaluated_at - *last_record);
  }
};

class FeedHealth {
 public:
  // Returns a monitor, or kInvalidArgument if `options` are out of range.
  // `calendar` (nullable: always in session) must outlive the monitor.
  static absl::StatusOr<FeedHealth> create(
      FeedHealthOptions options, const TradingCalendar* calendar = nullptr) {
    if (absl::Status s = options.validate(); !s.ok()) return s;
    return FeedHealth(options, calendar);
  }

  // Registers `symbol` as expected (state never_seen) and returns its id; an
  // already expected symbol keeps its id and state. A symbol expected after
  // monitoring started (a new subscription) gets its own allowance: its
  // silence, and its `open_grace`, count from the last evaluate(). Allocates.
  SymbolId expect(std::string_view symbol) {
    if (auto it = index_.find(key(symbol)); it != index_.end())
      return it->second;
    assert(slots_.size() < static_cast<std::size_t>(kFeedId) &&
           "FeedHealth holds at most 2^32 - 1 symbols");
    const auto id = static_cast<SymbolId>(slots_.size());
    Slot slot;
    slot.suspect_after = default_suspect_after_;
    slot.stale_after = default_stale_after_;
    if (evaluated_) slot.resumed = last_evaluated_;
    slots_.push_back(slot);
    names_.emplace_back(symbol);
    index_.emplace(names_.back(), id);
    return id;
  }

  // Returns the id of an expected symbol, or nullopt. Never allocates.
  std::optional<SymbolId> find(std::string_view symbol) const {
    if (auto it = index_.find(key(symbol)); it != index_.end())
      return it->second;
    return std::nullopt;
  }

  // Returns the name `id` was expected under.
  std::string_view name(SymbolId id) const { return names_[index(id)]; }

  // Returns the number of expected symbols; ids are [0, size()).
  std::size_t size() const { return slots_.size(); }

  // Sets the stale threshold of `id` to `timeout`; its suspect threshold
  // becomes timeout x suspect_factor / stale_factor (the same proportion as
  // the defaults). Returns kInvalidArgument if `timeout` is not in
  // (0, 7000 days]. Takes effect at the next evaluate().
  absl::Status set_symbol_timeout(SymbolId id, Duration timeout) {
    if (timeout <= Duration::zero() || timeout > kMaxThreshold) {
      return absl::InvalidArgumentError(
          absl::StrCat("FeedHealth::set_symbol_timeout(", key(name(id)),
                       "): timeout must be in (0, 7000 days], got ",
                       std::chrono::duration<double>(timeout).count(), " s"));
    }
    Slot& s = slots_[index(id)];
    s.stale_after = timeout;
    s.suspect_after =
        scale(timeout, options_.suspect_factor / options_.stale_factor);
    return absl::OkStatus();
  }

  // Returns the stale threshold of `id`.
  Duration symbol_timeout(SymbolId id) const {
    return slots_[index(id)].stale_after;
  }

  // Suspends `id` (a trading halt): no alarms until resume(). Records still
  // count. Never allocates.
  void halt(SymbolId id) { slots_[index(id)].halted = true; }

  // Ends a halt at `now`: silence counts from `now`, and `open_grace` applies
  // from `now`. Never allocates.
  void resume(SymbolId id, SteadyTime now) {
    Slot& s = slots_[index(id)];
    s.halted = false;
    s.resumed = now;
  }

  // Records an event of `id` received at `recv_time` (the event's receive
  // time, not the poll time). An older time than one already recorded keeps
  // the newer one. Never blocks. Never allocates.
  void record(SymbolId id, SteadyTime recv_time) noexcept {
    Slot& s = slots_[index(id)];
    s.last = std::max(s.last, recv_time);
    ++s.count;
    feed_.last = std::max(feed_.last, recv_time);
    ++records_;
  }

  // Records an event of the symbol named `symbol`. Returns true if it is
  // expected. An unknown name still refreshes the feed as a whole; it is
  // counted in unexpected_records and dropped (returns false), or, with
  // `auto_expect_unknown`, expect()ed and recorded (returns true; allocates).
  // Never blocks. Never allocates for an expected symbol.
  [[nodiscard]] bool record(std::string_view symbol, SteadyTime recv_time) {
    if (auto it = index_.find(key(symbol)); it != index_.end()) {
      record(it->second, recv_time);
      return true;
    }
    if (options_.auto_expect_unknown) {
      ++auto_expected_;
      record(expect(symbol), recv_time);
      return true;
    }
    feed_.last = std::max(feed_.last, recv_time);
    ++unexpected_;
    return false;
  }

  // Brings every state up to date at steady time `now` and wall time
  // `wall_now` (for the calendar; take both from one reading of the clocks),
  // and replaces the contents of `out` with one transition per state change:
  // the feed's first, then the symbols' in id order. O(symbols). Never
  // blocks. Allocates only to grow `out`.
  void evaluate(SteadyTime now, WallTime wall_now,
                std::vector<HealthTransition>& out) {
    evaluated_at_wall_ = wall_now;
    const SessionStatus status = calendar_ != nullptr
                                     ? calendar_->status(wall_now)
                                     : SessionStatus{.in_session = true};
    evaluate_in(now, status, wall_now, out);
  }

  // The same, without a calendar (create() was given none): always in
  // session; monitoring starts, with its grace, at the first evaluate().
  void evaluate(SteadyTime now, std::vector<HealthTransition>& out) {
    assert(calendar_ == nullptr &&
           "FeedHealth::evaluate: pass wall_now when a calendar is set");
    evaluate_in(now, SessionStatus{.in_session = true}, WallTime{}, out);
  }

  // Returns the state evaluate(now) would give `id` if called next, in the
  // session seen by the last evaluate(). Never allocates.
  HealthState state(SymbolId id, SteadyTime now) const {
    const Slot& s = slots_[index(id)];
    std::uint32_t mark = s.mark;
    return step(s.state, raw_state(s, now), s.count, mark, false);
  }

  // Returns the feed's state as evaluate(now) would if called next.
  HealthState feed_state(SteadyTime now) const {
    std::uint32_t mark = feed_.mark;
    return step(feed_.state, raw_state(feed_, now), feed_count(), mark, false);
  }

  // Returns the newest receive time recorded for `id`, or nullopt.
  std::optional<SteadyTime> last_received(SymbolId id) const {
    const Slot& s = slots_[index(id)];
    if (s.last == kNever) return std::nullopt;
    return s.last;
  }

  // Replaces the contents of `out` with the symbols that are stale at `now`
  // (state(id, now) == stale), in id order. O(symbols). Allocates only to
  // grow `out`.
  void stale_symbols(SteadyTime now, std::vector<SymbolId>& out) const {
    out.clear();
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      const Slot& s = slots_[i];
      std::uint32_t mark = s.mark;
      if (step(s.state, raw_state(s, now), s.count, mark, false) ==
          HealthState::stale) {
        out.push_back(static_cast<SymbolId>(i));
      }
    }
  }
  std::vector<SymbolId> stale_symbols(SteadyTime now) const {
    std::vector<SymbolId> out;
    stale_symbols(now, out);
    return out;
  }

  // Replaces the contents of `out` with the expected symbols that have never
  // been recorded, whatever their state, in id order.
  void never_seen_symbols(std::vector<SymbolId>& out) const {
    out.clear();
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].last == kNever) out.push_back(static_cast<SymbolId>(i));
    }
  }
  std::vector<SymbolId> never_seen_symbols() const {
    std::vector<SymbolId> out;
    never_seen_symbols(out);
    return out;
  }

  // Returns a snapshot of the counters. O(symbols). Never allocates.
  FeedHealthStats stats() const {
    FeedHealthStats st;
    st.symbols = slots_.size();
    std::array<std::size_t, 5> by_state{};
    for (const Slot& s : slots_) {
      ++by_state[static_cast<std::size_t>(s.state)];
      if (s.last == kNever) ++st.never_received;
    }
    st.never_seen = by_state[static_cast<std::size_t>(HealthState::never_seen)];
    st.fresh = by_state[static_cast<std::size_t>(HealthState::fresh)];
    st.suspect = by_state[static_cast<std::size_t>(HealthState::suspect)];
    st.stale = by_state[static_cast<std::size_t>(HealthState::stale)];
    st.suspended = by_state[static_cast<std::size_t>(HealthState::suspended)];
    st.feed = feed_.state;
    st.in_session = evaluated_ && session_.in_session;
    st.records = records_;
    st.unexpected_records = unexpected_;
    st.auto_expected = auto_expected_;
    st.transitions = transitions_;
    st.feed_transitions = feed_transitions_;
    st.evaluations = evaluations_;
    if (feed_.last != kNever) st.last_record = feed_.last;
    if (evaluated_) st.evaluated_at = last_evaluated_;
    st.evaluated_at_wall = evaluated_at_wall_;
    return st;
  }

  const FeedHealthOptions& options() const { return options_; }

 private:
  static constexpr SteadyTime kNever = SteadyTime::min();
  static constexpr Duration kMaxThreshold =
      std::chrono::duration_cast<Duration>(std::chrono::hours(24 * 7000));

  // Everything about one symbol, 48 bytes: record() touches one line.
  struct Slot {
    SteadyTime last = kNever;     // newest receive time
    SteadyTime resumed = kNever;  // resume() or late expect(): silence counts
                                  // from it
    Duration suspect_after{0};
    Duration stale_after{0};
    std::uint32_t count = 0;  // records, modulo 2^32
    std::uint32_t mark = 0;   // `count` when the current recovery run began
    HealthState state = HealthState::never_seen;
    bool halted = false;
  };

  // The session as of the last evaluate().
  struct Session {
    bool in_session = true;
    SteadyTime start{};    // the open, or monitoring start, in steady time
    WallTime opened_at{};  // the calendar's opened_at of that session
  };

  FeedHealth(const FeedHealthOptions& options, const TradingCalendar* calendar)
      : options_(options),
        calendar_(calendar),
        default_suspect_after_(
            scale(options.expected_interval, options.suspect_factor)),
        default_stale_after_(options.symbol_timeout()) {
    feed_.suspect_after = options.feed_timeout;  // no suspect band
    feed_.stale_after = options.feed_timeout;
  }

  // Abseil 20220623 as Debian builds it has its own absl::string_view.
  static absl::string_view key(std::string_view s) {
    return absl::string_view(s.data(), s.size());
  }

  static Duration scale(Duration d, double factor) {
    return Duration(static_cast<Duration::rep>(
        std::llround(static_cast<double>(d.count()) * factor)));
  }

  std::size_t index(SymbolId id) const {
    const auto i = static_cast<std::size_t>(id);
    assert(i < slots_.size() && "FeedHealth: pass a SymbolId from expect()");
    return i;
  }

  std::uint32_t feed_count() const {
    return static_cast<std::uint32_t>(records_ + unexpected_);
  }

  static int rank(HealthState s) {
    switch (s) {
      case HealthState::suspect:
        return 1;
      case HealthState::stale:
        return 2;
      default:
        return 0;  // never_seen, fresh
    }
  }

  // Returns the state silence alone gives `s` at `now` (no hysteresis).
  HealthState raw_state(const Slot& s, SteadyTime now) const {
    if (!session_.in_session || s.halted) return HealthState::suspended;
    const bool seen = s.last != kNever;
    const HealthState quiet =
        seen ? HealthState::fresh : HealthState::never_seen;
    // Before the first evaluate(), monitoring has not started: all is quiet.
    if (!evaluated_) return quiet;
    const SteadyTime start = std::max(session_.start, s.resumed);
    if (now - start <= options_.open_grace) return quiet;
    const Duration silence = now - std::max(s.last, start);
    if (silence > s.stale_after) return HealthState::stale;
    if (silence > s.suspect_after) return HealthState::suspect;
    return quiet;
  }

  // Returns the state after `cur` when silence says `raw`, with hysteresis,
  // and updates the recovery mark. `restart`: a new session began.
  HealthState step(HealthState cur, HealthState raw, std::uint32_t count,
                   std::uint32_t& mark, bool restart) const {
    if (raw == HealthState::suspended || restart ||
        cur == HealthState::suspended || cur == HealthState::never_seen ||
        rank(raw) >= rank(cur)) {
      mark = count;  // worse or as bad: a recovery run starts over
      return raw;
    }
    // Better than `cur` (suspect or stale): only after enough records.
    if (count - mark >= options_.recover_after) {
      mark = count;
      return raw;
    }
    return cur;
  }

  void evaluate_in(SteadyTime now, const SessionStatus& status,
                   WallTime wall_now, std::vector<HealthTransition>& out) {
    out.clear();
    bool restart = false;
    if (status.in_session) {
      if (!evaluated_) {
        session_.start = now;  // monitoring starts: counts as an open
      } else if (!session_.in_session ||
                 status.opened_at != session_.opened_at) {
        // A session opened since the last evaluate(): place the open on the
        // steady timeline, not before that evaluate() nor after `now`.
        const Duration since_open =
            std::chrono::duration_cast<Duration>(wall_now - status.opened_at);
        SteadyTime start = now - std::max(since_open, Duration::zero());
        start = std::max(start, last_evaluated_);
        session_.start = std::min(start, now);
        restart = session_.in_session;  // no closed evaluate() in between
      }
      session_.opened_at = status.opened_at;
    }
    session_.in_session = status.in_session;
    evaluated_ = true;
    last_evaluated_ = now;
    ++evaluations_;

    apply(feed_, kFeedId, feed_count(), now, restart, out);
    const std::size_t feed_changes = out.size();
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      Slot& s = slots_[i];
      apply(s, static_cast<SymbolId>(i), s.count, now, restart, out);
    }
    feed_transitions_ += feed_changes;
    transitions_ += out.size() - feed_changes;
  }

  void apply(Slot& s, SymbolId id, std::uint32_t count, SteadyTime now,
             bool restart, std::vector<HealthTransition>& out) {
    const HealthState next =
        step(s.state, raw_state(s, now), count, s.mark, restart);
    if (next != s.state) {
      out.push_back({id, s.state, next, now});
      s.state = next;
    }
  }

  FeedHealthOptions options_;
  const TradingCalendar* calendar_;
  Duration default_suspect_after_;
  Duration default_stale_after_;
  std::vector<Slot> slots_;
  std::vector<std::string> names_;
  absl::flat_hash_map<std::string, SymbolId> index_;
  Slot feed_;  // the feed as a whole: every record, expected or not
  Session session_;
  bool evaluated_ = false;
  SteadyTime last_evaluated_{};
  std::optional<WallTime> evaluated_at_wall_;
  std::uint64_t records_ = 0;
  std::uint64_t unexpected_ = 0;
  std::uint64_t auto_expected_ = 0;
  std::uint64_t transitions_ = 0;
  std::uint64_t feed_transitions_ = 0;
  std::uint64_t evaluations_ = 0;
};

inline absl::Status FeedHealthOptions::validate() const {
  using std::chrono::hours;
  const auto seconds = [](Duration d) {
    return std::chrono::duration<double>(d).count();
  };
  if (expected_interval <= Duration::zero() ||
      expected_interval > hours(24 * 7)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "FeedHealthOptions::expected_interval must be in (0, 7 days], got ",
        seconds(expected_interval), " s"));
  }
  if (!(suspect_factor >= 1.0 && suspect_factor <= 1000.0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "FeedHealthOptions::suspect_factor must be in [1, 1000], got ",
        suspect_factor));
  }
  if (!(stale_factor >= suspect_factor && stale_factor <= 1000.0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "FeedHealthOptions::stale_factor must be in [suspect_factor (",
        suspect_factor, "), 1000], got ", stale_factor));
  }
  if (feed_timeout <= Duration::zero() || feed_timeout > hours(24 * 7)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "FeedHealthOptions::feed_timeout must be in (0, 7 days], got ",
        seconds(feed_timeout), " s"));
  }
  if (open_grace < Duration::zero() || open_grace > hours(24)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "FeedHealthOptions::open_grace must be in [0, 1 day], got ",
        seconds(open_grace), " s"));
  }
  if (recover_after < 1 || recover_after > 1'000'000) {
    return absl::InvalidArgumentError(absl::StrCat(
        "FeedHealthOptions::recover_after must be in [1, 1000000], got ",
        recover_after));
  }
  return absl::OkStatus();
}

}  // namespace feedkit
