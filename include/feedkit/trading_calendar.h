// SPDX-License-Identifier: Apache-2.0
//
// feedkit/trading_calendar.h
//
// A TradingCalendar answers one question for FeedHealth: is the market in a
// trading session at this wall-clock time, and if so, when did that session
// open and when does it close? SessionCalendar is the data-driven
// implementation: a fixed UTC offset (no daylight saving), the sessions of a
// regular trading day as local [open, close) times of day, the trading
// weekdays, holidays, and special days with their own sessions. Built in:
//
//   SessionCalendarOptions::krx()           KRX, UTC+9: 09:00-15:30, Mon-Fri
//   SessionCalendarOptions::thailand_set()  SET, UTC+7: 10:00-12:30 and
//                                           14:00-16:30, Mon-Fri
//
// Holidays are data, not knowledge: the built-ins list none, so the caller
// adds each year's exchange holidays, and special days such as KRX's 10:00
// open on the first trading day of the year. Sessions are continuous trading
// only: pre-open and pre-close auctions lie outside them (but KRX's 15:20-15:30
// closing call lies inside 09:00-15:30: trades pause there while books still
// update; a trades-only feed may end its session at 15:20). A session never
// crosses local midnight.
//
// Reads no clock (callers pass the wall time), starts no thread, never blocks.
// status() never allocates.
//
// Thread safety: SessionCalendar is immutable after create(), hence
// thread-safe. Every TradingCalendar implementation must make status()
// thread-safe: one calendar may serve many FeedHealth objects.
//
// Example:
//   auto options = feedkit::SessionCalendarOptions::krx();
//   options.holidays = {2026y / 2 / 17d};  // Seollal
//   auto krx = feedkit::SessionCalendar::create(options).value();
//   feedkit::SessionStatus s = krx.status(std::chrono::system_clock::now());
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace feedkit {

// Wall-clock (UTC) time: what calendars speak. Staleness itself is judged on
// SteadyTime (feedkit/clock.h).
using WallTime = std::chrono::system_clock::time_point;

// The answer of TradingCalendar::status().
struct SessionStatus {
  bool in_session = false;  // a trading session is open at the queried time
  WallTime opened_at{};     // when that session opened; in_session only
  WallTime closes_at{};     // when that session closes; in_session only
};

class TradingCalendar {
 public:
  virtual ~TradingCalendar() = default;

  // Returns whether a session is open at wall time `t` (open <= t < close)
  // and, if so, its bounds. Thread-safe. Never blocks.
  virtual SessionStatus status(WallTime t) const = 0;
};

// One session of a trading day, in local time of day: [open, close).
struct SessionWindow {
  std::chrono::minutes open{0};   // since local midnight; in [0, 24h)
  std::chrono::minutes close{0};  // since local midnight; in (open, 24h]
};

// A local date whose sessions differ from a regular trading day's.
struct SpecialDay {
  std::chrono::year_month_day date;  // local date; must be a valid date
  // That day's sessions: sorted, non-overlapping. Empty: closed all day.
  std::vector<SessionWindow> sessions;
};

struct SessionCalendarOptions {
  // A label for error messages, e.g. "KRX".
  std::string name;
  // Local time = UTC + utc_offset, all year (no DST); within [-18h, +18h].
  std::chrono::minutes utc_offset{0};
  // A regular trading day's sessions: at least one; sorted by open time,
  // non-overlapping (one may open when the previous one closes).
  std::vector<SessionWindow> sessions;
  // The weekdays with regular sessions: at least one, each valid.
  std::vector<std::chrono::weekday> trading_days = {
      std::chrono::Monday, std::chrono::Tuesday, std::chrono::Wednesday,
      std::chrono::Thursday, std::chrono::Friday};
  // Local dates with no session at all; valid dates, in any order.
  std::vector<std::chrono::year_month_day> holidays;
  // Local dates with other sessions (they win over trading_days); valid,
  // distinct dates, none of them also a holiday.
  std::vector<SpecialDay> special_days;

  // Returns the Korea Exchange regular session: 09:00-15:30 KST (UTC+9, no
  // DST), Monday to Friday, no holidays listed.
  static SessionCalendarOptions krx() {
    using std::chrono::hours;
    using std::chrono::minutes;
    SessionCalendarOptions o;
    o.name = "KRX";
    o.utc_offset = hours(9);
    o.sessions = {{hours(9), hours(15) + minutes(30)}};
    return o;
  }

  // Returns the Stock Exchange of Thailand sessions: morning 10:00-12:30 and
  // afternoon 14:00-16:30 ICT (UTC+7), Monday to Friday, no holidays listed.
  // The afternoon opened at 14:30 until SET moved it on 2024-03-25; the
  // pre-open (09:30-10:00, 13:30-14:00) and pre-close (16:30 to a random
  // 16:35-16:40 close) auctions are outside.
  static SessionCalendarOptions thailand_set() {
    using std::chrono::hours;
    using std::chrono::minutes;
    SessionCalendarOptions o;
    o.name = "SET";
    o.utc_offset = hours(7);
    o.sessions = {{hours(10), hours(12) + minutes(30)},
                  {hours(14), hours(16) + minutes(30)}};
    return o;
  }

  // Returns krx(): the market feedkit's adapters start with.
  static SessionCalendarOptions suggested() { return krx(); }

  // Returns OK, or kInvalidArgument naming the first field out of range.
  absl::Status validate() const;
};

class SessionCalendar final : public TradingCalendar {
 public:
  // Returns a calendar, or kInvalidArgument if `options` are out of range.
  static absl::StatusOr<SessionCalendar> create(
      SessionCalendarOptions options) {
    if (absl::Status s = options.validate(); !s.ok()) return s;
    return SessionCalendar(std::move(options));
  }

  // Returns whether a session is open at `t` and its bounds. O(log n) in the
  // number of holidays and special days. Thread-safe. Never blocks. Never
  // allocates.
  SessionStatus status(WallTime t) const override {
    using namespace std::chrono;
    const auto local = time_point_cast<system_clock::duration>(t) + offset_;
    const sys_days day = floor<days>(local);
    const auto time_of_day = local - day;
    for (const SessionWindow& w : sessions_on(day)) {
      if (time_of_day >= w.open && time_of_day < w.close) {
        return {true, WallTime(day + w.open - offset_),
                WallTime(day + w.close - offset_)};
      }
    }
    return {};
  }

  // Returns the sessions of local date `day` (empty if closed). Thread-safe.
  std::span<const SessionWindow> sessions_on(std::chrono::sys_days day) const {
    auto special =
        std::lower_bound(special_days_.begin(), special_days_.end(), day,
                         [](const SpecialDay& s, std::chrono::sys_days d) {
                           return std::chrono::sys_days(s.date) < d;
                         });
    if (special != special_days_.end() &&
        std::chrono::sys_days(special->date) == day) {
      return special->sessions;
    }
    if (std::binary_search(holidays_.begin(), holidays_.end(), day)) return {};
    const unsigned weekday = std::chrono::weekday(day).c_encoding();
    if ((trading_days_ & (1u << weekday)) == 0) return {};
    return options_.sessions;
  }

  const SessionCalendarOptions& options() const { return options_; }

 private:
  explicit SessionCalendar(SessionCalendarOptions options)
      : options_(std::move(options)),
        offset_(options_.utc_offset),
        special_days_(options_.special_days) {
    for (const auto& d : options_.holidays) holidays_.emplace_back(d);
    std::sort(holidays_.begin(), holidays_.end());
    std::sort(special_days_.begin(), special_days_.end(),
              [](const SpecialDay& a, const SpecialDay& b) {
                return std::chrono::sys_days(a.date) <
                       std::chrono::sys_days(b.date);
              });
    for (const auto& w : options_.trading_days) {
      trading_days_ |= 1u << w.c_encoding();
    }
  }

  SessionCalendarOptions options_;
  std::chrono::minutes offset_;
  std::vector<std::chrono::sys_days> holidays_;  // sorted
  std::vector<SpecialDay> special_days_;         // sorted by date
  unsigned trading_days_ = 0;                    // bit c_encoding() per day
};

namespace internal {

inline std::string format_time_of_day(std::chrono::minutes m) {
  const auto count = m.count();
  const auto abs = count < 0 ? -count : count;
  return absl::StrCat(count < 0 ? "-" : "", abs / 60, ":",
                      abs % 60 < 10 ? "0" : "", abs % 60);
}

inline std::string format_date(const std::chrono::year_month_day& d) {
  return absl::StrCat(static_cast<int>(d.year()), "-",
                      static_cast<unsigned>(d.month()), "-",
                      static_cast<unsigned>(d.day()));
}

// Returns OK if `sessions` are in range, sorted and non-overlapping.
inline absl::Status validate_sessions(std::span<const SessionWindow> sessions,
                                      const std::string& field) {
  using std::chrono::hours;
  for (std::size_t i = 0; i < sessions.size(); ++i) {
    const SessionWindow& w = sessions[i];
    if (w.open < hours(0) || w.open >= hours(24)) {
      return absl::InvalidArgumentError(
          absl::StrCat("SessionCalendarOptions::", field, "[", i,
                       "].open must be in [00:00, 24:00), got ",
                       format_time_of_day(w.open)));
    }
    if (w.close <= w.open || w.close > hours(24)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "SessionCalendarOptions::", field, "[", i,
          "].close must be after open (", format_time_of_day(w.open),
          ") and at most 24:00, got ", format_time_of_day(w.close)));
    }
    if (i > 0 && w.open < sessions[i - 1].close) {
      return absl::InvalidArgumentError(absl::StrCat(
          "SessionCalendarOptions::", field, "[", i, "] opens at ",
          format_time_of_day(w.open), ", before ", field, "[", i - 1,
          "] closes at ", format_time_of_day(sessions[i - 1].close),
          ": sessions must be sorted and must not overlap"));
    }
  }
  return absl::OkStatus();
}

}  // namespace internal

inline absl::Status SessionCalendarOptions::validate() const {
  using std::chrono::hours;
  if (utc_offset < -hours(18) || utc_offset > hours(18)) {
    return absl::InvalidArgumentError(
        absl::StrCat("SessionCalendarOptions::utc_offset must be within "
                     "[-18h, +18h], got ",
                     utc_offset.count(), " min"));
  }
  if (sessions.empty()) {
    return absl::InvalidArgumentError(
        "SessionCalendarOptions::sessions must list at least one session, "
        "got none");
  }
  if (absl::Status s = internal::validate_sessions(sessions, "sessions");
      !s.ok()) {
    return s;
  }
  if (trading_days.empty()) {
    return absl::InvalidArgumentError(
        "SessionCalendarOptions::trading_days must list at least one weekday, "
        "got none");
  }
  for (std::size_t i = 0; i < trading_days.size(); ++i) {
    if (!trading_days[i].ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "SessionCalendarOptions::trading_days[", i,
          "] is not a weekday, got ", trading_days[i].c_encoding()));
    }
  }
  for (std::size_t i = 0; i < holidays.size(); ++i) {
    if (!holidays[i].ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "SessionCalendarOptions::holidays[", i, "] is not a valid date, got ",
          internal::format_date(holidays[i])));
    }
  }
  for (std::size_t i = 0; i < special_days.size(); ++i) {
    const SpecialDay& day = special_days[i];
    if (!day.date.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "SessionCalendarOptions::special_days[", i,
          "].date is not a valid date, got ", internal::format_date(day.date)));
    }
    if (absl::Status s = internal::validate_sessions(
            day.sessions, absl::StrCat("special_days[", i, "].sessions"));
        !s.ok()) {
      return s;
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (special_days[j].date == day.date) {
        return absl::InvalidArgumentError(absl::StrCat(
            "SessionCalendarOptions::special_days[", i, "].date ",
            internal::format_date(day.date), " repeats special_days[", j, "]"));
      }
    }
    if (std::find(holidays.begin(), holidays.end(), day.date) !=
        holidays.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "SessionCalendarOptions::special_days[", i, "].date ",
          internal::format_date(day.date),
          " is also a holiday; list it once (a special day with no sessions "
          "is closed)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace feedkit
