// SPDX-License-Identifier: Apache-2.0
#include "common/market_events.h"

#include <charconv>
#include <limits>
#include <system_error>

namespace examples {
namespace {

constexpr std::int64_t kMaxUnits =
    std::numeric_limits<std::int64_t>::max() / Price::kScale;

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

bool all_digits(std::string_view text) noexcept {
  for (char c : text) {
    if (!is_digit(c)) return false;
  }
  return !text.empty();
}

// Parses digits only (no sign): from_chars alone would accept a '-'.
std::optional<std::int64_t> parse_digits(std::string_view text) noexcept {
  if (!all_digits(text)) return std::nullopt;
  std::int64_t value = 0;
  const auto [end, ec] =
      std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

// Splits a leading '+' or '-' off `text`; returns true if it was '-'.
bool take_sign(std::string_view& text) noexcept {
  if (text.empty()) return false;
  if (text.front() == '+' || text.front() == '-') {
    const bool negative = text.front() == '-';
    text.remove_prefix(1);
    return negative;
  }
  return false;
}

}  // namespace

std::optional<Price> Price::from_units(std::int64_t units) noexcept {
  if (units > kMaxUnits || units < -kMaxUnits) return std::nullopt;
  return from_nanos(units * kScale);
}

std::optional<Price> Price::from_money(std::int64_t units,
                                       std::int32_t nanos) noexcept {
  if (nanos <= -kScale || nanos >= kScale) return std::nullopt;
  if ((units > 0 && nanos < 0) || (units < 0 && nanos > 0)) {
    return std::nullopt;
  }
  const std::optional<Price> whole = from_units(units);
  if (!whole) return std::nullopt;
  // |units| <= kMaxUnits leaves room for |nanos| < kScale only when the sum
  // stays in range; check before adding.
  if (nanos > 0 &&
      whole->nanos_ > std::numeric_limits<std::int64_t>::max() - nanos) {
    return std::nullopt;
  }
  if (nanos < 0 &&
      whole->nanos_ < std::numeric_limits<std::int64_t>::min() - nanos) {
    return std::nullopt;
  }
  return from_nanos(whole->nanos_ + nanos);
}

std::string Price::to_string() const {
  const bool negative = nanos_ < 0;
  // |min| is not representable, but out-of-range values are never built.
  const std::uint64_t magnitude = negative
                                      ? 0 - static_cast<std::uint64_t>(nanos_)
                                      : static_cast<std::uint64_t>(nanos_);
  const std::uint64_t scale = static_cast<std::uint64_t>(kScale);
  std::string out = negative ? "-" : "";
  out += std::to_string(magnitude / scale);
  std::uint64_t fraction = magnitude % scale;
  if (fraction != 0) {
    std::string digits = std::to_string(fraction);
    digits.insert(0, 9 - digits.size(), '0');
    while (digits.back() == '0') digits.pop_back();
    out += '.';
    out += digits;
  }
  return out;
}

std::optional<Symbol> Symbol::from(std::string_view text) noexcept {
  if (text.empty() || text.size() > kCapacity) return std::nullopt;
  Symbol symbol;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c <= ' ' || c > '~') return std::nullopt;
    symbol.chars_[i] = c;
  }
  symbol.size_ = static_cast<std::uint8_t>(text.size());
  return symbol;
}

std::optional<Price> parse_price(std::string_view text) noexcept {
  const bool negative = take_sign(text);
  const std::size_t dot = text.find('.');
  const std::string_view whole = text.substr(0, dot);
  const std::optional<std::int64_t> units = parse_digits(whole);
  if (!units || *units > kMaxUnits) return std::nullopt;
  std::int64_t nanos = 0;
  if (dot != std::string_view::npos) {
    const std::string_view fraction = text.substr(dot + 1);
    if (fraction.size() > 9 || !all_digits(fraction)) return std::nullopt;
    nanos = *parse_digits(fraction);
    for (std::size_t i = fraction.size(); i < 9; ++i) nanos *= 10;
  }
  const std::optional<Price> p = Price::from_money(*units, 0);
  if (!p || p->nanos() > std::numeric_limits<std::int64_t>::max() - nanos) {
    return std::nullopt;
  }
  const std::int64_t value = p->nanos() + nanos;
  return Price::from_nanos(negative ? -value : value);
}

std::optional<std::int64_t> parse_int(std::string_view text) noexcept {
  const bool negative = take_sign(text);
  if (!all_digits(text)) return std::nullopt;
  // Parse the magnitude unsigned so that int64 min is accepted exactly.
  std::uint64_t magnitude = 0;
  const auto [end, ec] =
      std::from_chars(text.data(), text.data() + text.size(), magnitude);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  constexpr std::uint64_t kMax =
      static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (!negative) {
    if (magnitude > kMax) return std::nullopt;
    return static_cast<std::int64_t>(magnitude);
  }
  if (magnitude > kMax + 1) return std::nullopt;
  return magnitude == kMax + 1 ? std::numeric_limits<std::int64_t>::min()
                               : -static_cast<std::int64_t>(magnitude);
}

std::optional<std::int32_t> parse_hhmmss(std::string_view text) noexcept {
  if (text.size() != 6 || !all_digits(text)) return std::nullopt;
  const auto two = [&](std::size_t at) {
    return (text[at] - '0') * 10 + (text[at + 1] - '0');
  };
  const int hours = two(0), minutes = two(2), seconds = two(4);
  if (hours > 23 || minutes > 59 || seconds > 59) return std::nullopt;
  return hours * 3600 + minutes * 60 + seconds;
}

std::optional<std::int32_t> parse_yyyymmdd(std::string_view text) noexcept {
  if (text.size() != 8) return std::nullopt;
  const std::optional<std::int64_t> value = parse_digits(text);
  if (!value) return std::nullopt;
  const std::int64_t month = *value / 100 % 100, day = *value % 100;
  if (month < 1 || month > 12 || day < 1 || day > 31) return std::nullopt;
  return static_cast<std::int32_t>(*value);
}

FieldError read_level(std::string_view price_text, std::string_view quantity,
                      PriceSign sign, Level& level) noexcept {
  if (!price_text.empty()) {
    const std::optional<Price> price = parse_price(price_text);
    if (!price) return FieldError::price;
    if (price->is_negative() && sign == PriceSign::reject) {
      return FieldError::price;
    }
    level.price = price->abs();
  }
  if (!quantity.empty()) {
    const std::optional<std::int64_t> q = parse_int(quantity);
    if (!q || *q < 0) return FieldError::quantity;
    level.quantity = *q;
  }
  return FieldError::none;
}

bool read_optional_quantity(std::string_view text,
                            std::optional<std::int64_t>& out) noexcept {
  out.reset();
  if (text.empty()) return true;
  const std::optional<std::int64_t> value = parse_int(text);
  if (!value || *value < 0) return false;
  out = value;
  return true;
}

void append_printable(std::string& out, std::string_view text,
                      std::size_t max_bytes) {
  if (text.size() > max_bytes) {
    std::size_t cut = max_bytes;
    // Do not split a UTF-8 sequence: back up over continuation bytes.
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) {
      --cut;
    }
    text = text.substr(0, cut);
  }
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    out += (byte < 0x20 || byte == 0x7F || c == '"' || c == '\\') ? '?' : c;
  }
}

}  // namespace examples
