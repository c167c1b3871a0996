// SPDX-License-Identifier: Apache-2.0
//
// examples/sim/market.h
//
// The simulated market of feedkit-sim: what every trade and book of a symbol
// holds, as pure functions of the record's sequence number (server-wide, per
// symbol, 1, 2, …), so that what the simulator sent can be recomputed
// anywhere: in its record file, in tests, in a collector's loss report.
//
//   trade_volume(seq)       v(seq) = 1 + (31·seq mod 97): 1 … 97 shares
//   cumulative_volume(seq)  C(seq) = v(1) + … + v(seq), in O(1)
//   trade_price(basis, seq) a triangle wave of ±20 ticks around the previous
//                           close; buy-initiated unless seq is a multiple of 3
//   MarketClock             the exchange time (KST) of a steady time
//
// Continuity: consecutive trades of one symbol satisfy
// C(prev) + v(cur) == C(cur); after an outage C jumps by exactly the volume
// of the trades lost (C(first after) − v(first after) − C(last before)).
//
// Thread safety: the free functions are pure; MarketClock is immutable after
// construction (thread-safe).
//
// Example:
//   const auto basis = examples::sim::basis_for("005930");
//   std::int64_t price = examples::sim::trade_price(basis, 42);
//   std::uint64_t cum = examples::sim::cumulative_volume(42);
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "feedkit/clock.h"

namespace examples::sim {

// The volume of the seq-th trade of a symbol: 1 … 97.
constexpr std::uint64_t trade_volume(std::uint64_t seq) noexcept {
  return 1 + (31 * (seq % 97)) % 97;
}

// The volume of trades 1 … seq of a symbol (0 for seq 0).
std::uint64_t cumulative_volume(std::uint64_t seq) noexcept;

// Whether the seq-th trade was buyer-initiated.
constexpr bool buyer_initiated(std::uint64_t seq) noexcept {
  return seq % 3 != 0;
}

// A symbol's fixed prices, derived from its code.
struct PriceBasis {
  std::int64_t previous_close = 0;  // KRW
  std::int64_t tick = 0;            // KRX tick size at that price
  std::int64_t high() const { return previous_close + 20 * tick; }
  std::int64_t low() const { return previous_close - 20 * tick; }
  std::int64_t open() const { return previous_close + tick; }
};
PriceBasis basis_for(std::string_view symbol) noexcept;

// The price of the seq-th trade: within [basis.low(), basis.high()].
std::int64_t trade_price(const PriceBasis& basis, std::uint64_t seq) noexcept;

// KRX price change sign code: 2 up, 3 unchanged, 5 down (vs previous close).
char change_sign(const PriceBasis& basis, std::int64_t price) noexcept;

// Maps steady time to exchange time: the simulator's start (`origin`) is
// `start_seconds` after midnight KST on `date` (YYYYMMDD), and exchange time
// runs `speed` times as fast as the steady clock.
class MarketClock {
 public:
  MarketClock(feedkit::SteadyTime origin, int start_seconds, std::string date,
              double speed = 1.0);

  // Returns today's date in KST as YYYYMMDD (reads the system clock).
  static std::string today_kst();

  // Writes the exchange time of `steady_ns` (nanoseconds since the steady
  // clock's epoch) as HHMMSS into out[0..5]. Never allocates.
  void hhmmss(std::int64_t steady_ns, char out[6]) const noexcept;
  // Returns YYYYMMDDHHMMSS for `steady_ns`.
  std::string datetime(std::int64_t steady_ns) const;
  const std::string& date() const noexcept { return date_; }

 private:
  std::int64_t origin_ns_ = 0;
  int start_seconds_ = 0;
  std::string date_;
  double speed_ = 1.0;
};

// Appends `value` in decimal. Never allocates beyond `out`'s growth.
void append_int(std::string& out, std::int64_t value);
// Appends `value` with an explicit sign ("+12", "-3", "0").
void append_signed(std::string& out, std::int64_t value);
// Appends hundredths as a decimal with two places ("1.05", "-0.70").
void append_hundredths(std::string& out, std::int64_t hundredths);

}  // namespace examples::sim
