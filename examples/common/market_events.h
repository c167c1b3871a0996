// SPDX-License-Identifier: Apache-2.0
//
// examples/common/market_events.h
//
// The typed market events that the KIS, Kiwoom and Settrade example codecs
// produce, and the small field parsers they share.
//
//   Price         fixed point: an integer count of 1e-9 currency units (KRW,
//                 THB). Chosen over double because it is exact for every
//                 wire format here (KIS and Kiwoom send integer won, Settrade
//                 sends google.type.Money {units, nanos}, i.e. exactly this
//                 scale), compares and hashes exactly (book diffs, dedup) and
//                 prints back the decimal it came from. Range ±9.2e9 units.
//   Symbol        the instrument code, held inline (at most 31 bytes of
//                 printable ASCII), so events are trivially copyable and
//                 never allocate.
//   ExchangeTime  the venue's own timestamp, in venue-local time (KST for
//                 KRX): a date and a time of day, each absent when the feed
//                 does not carry it (Settrade bid/offer carries neither).
//   Trade         one execution: price, this trade's volume, the venue's
//                 cumulative volume (the simulator makes it grow strictly,
//                 so gaps are measurable) and the aggressor when known.
//   Book          a 10-level snapshot: bids[0] and asks[0] are the best; an
//                 empty level is {0, 0}.
//   MarketEvent   std::variant<Trade, Book>, in wire order.
//
// The parsers read ASCII decimal text with std::from_chars, never allocate,
// never throw and never read outside the view they are given.
//
// Thread safety: plain values; the free functions are thread-safe.
//
// Example:
//   std::optional<Price> p = examples::parse_price("-20800");   // -20800
//   if (p) trade.price = p->abs();                   // Kiwoom: sign vs close
//   trade.time.seconds = examples::parse_hhmmss("093015").value_or(-1);
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

namespace examples {

class Price {
 public:
  static constexpr std::int64_t kScale = 1'000'000'000;  // units per 1.0

  constexpr Price() = default;
  // Returns `nanos` / 1e9 currency units.
  static constexpr Price from_nanos(std::int64_t nanos) noexcept {
    Price p;
    p.nanos_ = nanos;
    return p;
  }
  // Returns `units` whole currency units, or nullopt when out of range.
  static std::optional<Price> from_units(std::int64_t units) noexcept;
  // Returns units + nanos·1e-9 (google.type.Money), or nullopt when nanos
  // is outside (-1e9, 1e9), the signs of units and nanos differ, or the
  // value is out of range.
  static std::optional<Price> from_money(std::int64_t units,
                                         std::int32_t nanos) noexcept;

  constexpr std::int64_t nanos() const noexcept { return nanos_; }
  constexpr bool is_zero() const noexcept { return nanos_ == 0; }
  constexpr bool is_negative() const noexcept { return nanos_ < 0; }
  // Returns |price| (never overflows: out-of-range values are never built).
  constexpr Price abs() const noexcept {
    return from_nanos(nanos_ < 0 ? -nanos_ : nanos_);
  }
  double to_double() const noexcept {
    return static_cast<double>(nanos_) / static_cast<double>(kScale);
  }
  // Returns the shortest exact decimal: "71500", "61.25", "-0.5".
  std::string to_string() const;

  friend constexpr auto operator<=>(Price, Price) noexcept = default;

 private:
  std::int64_t nanos_ = 0;
};

class Symbol {
 public:
  static constexpr std::size_t kCapacity = 31;

  constexpr Symbol() = default;
  // Returns the symbol, or nullopt when `text` is empty, longer than
  // kCapacity or holds anything but printable ASCII without spaces.
  static std::optional<Symbol> from(std::string_view text) noexcept;

  std::string_view view() const noexcept { return {chars_.data(), size_}; }
  bool empty() const noexcept { return size_ == 0; }

  friend bool operator==(const Symbol& a, const Symbol& b) noexcept {
    return a.view() == b.view();
  }

 private:
  std::array<char, kCapacity> chars_{};
  std::uint8_t size_ = 0;
};

struct ExchangeTime {
  std::int32_t date = 0;      // YYYYMMDD, venue-local; 0 = not in the feed
  std::int32_t seconds = -1;  // since venue-local midnight; -1 = not in feed

  bool operator==(const ExchangeTime&) const = default;
};

enum class Side : std::uint8_t { unknown, buy, sell };  // the aggressor

struct Trade {
  Symbol symbol;
  ExchangeTime time;
  Price price;                                    // > 0
  std::int64_t volume = 0;                        // this trade, >= 0
  std::optional<std::int64_t> cumulative_volume;  // the venue's, this session
  Side aggressor = Side::unknown;
};

inline constexpr std::size_t kBookDepth = 10;

struct Level {
  Price price;                // 0 in an empty level (and in auctions)
  std::int64_t quantity = 0;  // >= 0

  bool operator==(const Level&) const = default;
};

// The quote condition of one side of a book (Settrade's bid/ask flag).
enum class QuoteCondition : std::uint8_t {
  unspecified,      // not in the feed (KIS, Kiwoom) or an unknown value
  normal,           // continuous trading
  opening_auction,  // ATO
  closing_auction,  // ATC
};

struct Book {
  Symbol symbol;
  ExchangeTime time;
  std::array<Level, kBookDepth> bids{};  // [0] = best bid
  std::array<Level, kBookDepth> asks{};  // [0] = best ask
  std::optional<std::int64_t> total_bid_quantity;
  std::optional<std::int64_t> total_ask_quantity;
  std::optional<std::int64_t> cumulative_volume;
  QuoteCondition bid_condition = QuoteCondition::unspecified;
  QuoteCondition ask_condition = QuoteCondition::unspecified;
};

using MarketEvent = std::variant<Trade, Book>;

static_assert(std::is_trivially_copyable_v<Trade> &&
                  std::is_trivially_copyable_v<Book>,
              "events are copied through queues; keep them allocation-free");

// Returns the symbol of either event.
inline std::string_view symbol_of(const MarketEvent& event) noexcept {
  return std::visit([](const auto& e) { return e.symbol.view(); }, event);
}

// Returns the value of an optionally signed decimal ("71500", "+82",
// "-20800", "61.25"), or nullopt when `text` is empty, is not exactly such a
// number, has more than 9 fractional digits or is out of range.
std::optional<Price> parse_price(std::string_view text) noexcept;

// Returns the value of an optionally signed ('+' or '-') decimal integer, or
// nullopt when `text` is empty, holds anything else or overflows int64.
std::optional<std::int64_t> parse_int(std::string_view text) noexcept;

// Returns seconds since midnight for "HHMMSS" (HH < 24, MM and SS < 60), or
// nullopt for anything else.
std::optional<std::int32_t> parse_hhmmss(std::string_view text) noexcept;

// Returns the date as the integer YYYYMMDD for "YYYYMMDD" (month 1-12, day
// 1-31), or nullopt for anything else.
std::optional<std::int32_t> parse_yyyymmdd(std::string_view text) noexcept;

// What a negative price in a book level means.
enum class PriceSign : std::uint8_t {
  reject,    // an error (KIS: prices are plain)
  absolute,  // the sign is relative to the previous close (Kiwoom): |price|
};

enum class FieldError : std::uint8_t { none, price, quantity };

// Reads one book level from its price and quantity texts; an empty text is
// 0 (an empty level). Returns which field is bad, if any. Never allocates.
FieldError read_level(std::string_view price, std::string_view quantity,
                      PriceSign sign, Level& level) noexcept;

// Reads a quantity that may be absent: empty text gives nullopt, a
// non-negative integer its value. Returns false for anything else.
bool read_optional_quantity(std::string_view text,
                            std::optional<std::int64_t>& out) noexcept;

// Appends `text` to `out` for a log or error message: at most `max_bytes`,
// control characters and quotes replaced by '?'. For server text only (a
// broker's message), never for secrets.
void append_printable(std::string& out, std::string_view text,
                      std::size_t max_bytes = 120);

}  // namespace examples
