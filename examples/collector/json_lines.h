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
//    "subscriptions_lost":2,"disconnected_ns":…,"resumed_ns":…}
//   {"type":"gap","broker":"kis","old_epoch":2,"new_epoch":2,
//    "reason":"volume_jump","symbol":"005930","missing_volume":1234,
//    "down_ms":812.0,"dropped_before":0,"disconnected_ns":…,"resumed_ns":…}
//
// A gap line with two epochs is an outage: the connection was lost
// (`reason`, a feedkit::GapReason) at `disconnected_ns` (for a stall, the
// last frame) and data flowed again from `resumed_ns`. A `volume_jump` line
// is a loss inside one connection: a symbol's cumulative volume grew by
// `missing_volume` more than the trades received between two of its trades
// (received at `disconnected_ns` and `resumed_ns`): a broker-side gap too
// short to trip a watchdog, or events the queue dropped (`dropped_before`:
// the queue's drops since the previous gap line).
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
  // `dropped_before`: events of the old connection the queue dropped; the
  // times are the gap's, in Unix ns.
  void gap(const feedkit::GapEvent& gap, std::uint64_t dropped_before,
           std::int64_t disconnected_ns, std::int64_t resumed_ns);
  // A loss inside connection `epoch` (see above).
  struct VolumeJump {
    std::uint64_t epoch = 0;
    std::string_view symbol;
    std::int64_t missing_volume = 0;
    std::int64_t last_ns = 0;  // the trade before the jump
    std::int64_t next_ns = 0;  // the trade after it
    std::uint64_t dropped_before = 0;
  };
  void volume_jump(const VolumeJump& jump);

  // Flushes what is buffered; returns false if the stream has failed
  // (e.g. a full disk), which the caller reports.
  bool flush();
  std::uint64_t lines() const { return lines_; }

 private:
  void begin(std::string_view type);
  void end_gap(double down_ms, std::uint64_t dropped_before,
               std::int64_t disconnected_ns, std::int64_t resumed_ns);
  void end();

  std::FILE* out_;
  std::string broker_;  // JSON-escaped once
  std::string line_;    // reused
  std::uint64_t lines_ = 0;
};

}  // namespace examples
