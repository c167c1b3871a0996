// SPDX-License-Identifier: Apache-2.0
//
// examples/collector/json_lines.h
//
// The collectors' output: JSON Lines, one event per line, the same for every
// broker (the collector contract in the README):
//
//   {"type":"trade","broker":"kis","epoch":2,"symbol":"005930",
//    "exch_time":"09:30:15","price":71500,"volume":120,"cum_volume":3521047,
//    "recv_ns":1784075415123456789}
//   {"type":"book","broker":"kis","epoch":2,"symbol":"005930",
//    "exch_time":"09:30:15","bids":[[71500,15000],…],"asks":[[71600,12000],…],
//    "recv_ns":…}
//   {"type":"gap","broker":"kis","old_epoch":1,"new_epoch":2,
//    "reason":"stall","down_ms":312.5,"dropped_before":0,
//    "subscriptions_lost":2}
//
// Prices are exact decimals (no float rounding); `exch_time` is venue-local
// "HH:MM:SS" (with "YYYY-MM-DDT" in front when the feed has the date), or
// null; `cum_volume` is null when the feed does not carry it; `recv_ns` is
// the receive time in Unix nanoseconds. A book lists only non-empty levels.
//
// Thread safety: thread-compatible (the consumer thread writes).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "common/market_events.h"
#include "feedkit/epoch.h"

namespace examples {

class JsonLinesWriter {
 public:
  // Writes to `out` (not owned; stdout or an opened file).
  JsonLinesWriter(std::FILE* out, std::string broker);

  void trade(const Trade& trade, std::uint64_t epoch, std::int64_t recv_ns);
  void book(const Book& book, std::uint64_t epoch, std::int64_t recv_ns);
  // `dropped_before`: events of the old connection the queue dropped.
  void gap(const feedkit::GapEvent& gap, std::uint64_t dropped_before);

  // Flushes what is buffered; returns false if the stream has failed
  // (e.g. a full disk), which the caller reports.
  bool flush();
  std::uint64_t lines() const { return lines_; }

 private:
  void begin(std::string_view type);
  void end();

  std::FILE* out_;
  std::string broker_;  // JSON-escaped once
  std::string line_;    // reused
  std::uint64_t lines_ = 0;
};

}  // namespace examples
