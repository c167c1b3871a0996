// SPDX-License-Identifier: Apache-2.0
#include "sim/market.h"

#include <charconv>
#include <chrono>
#include <cstdlib>

namespace examples::sim {
namespace {

constexpr std::uint64_t kPeriod = 97;  // v(seq) repeats every 97 trades

// prefix[r] = v(1) + … + v(r) for r < kPeriod; kPeriodSum = one full period.
struct VolumeTable {
  std::uint64_t prefix[kPeriod] = {};
  std::uint64_t period_sum = 0;
  constexpr VolumeTable() {
    std::uint64_t sum = 0;
    for (std::uint64_t r = 1; r < kPeriod; ++r) {
      sum += trade_volume(r);
      prefix[r] = sum;
    }
    period_sum = sum + trade_volume(kPeriod);
  }
};
constexpr VolumeTable kVolumes;

}  // namespace

std::uint64_t cumulative_volume(std::uint64_t seq) noexcept {
  return (seq / kPeriod) * kVolumes.period_sum + kVolumes.prefix[seq % kPeriod];
}

PriceBasis basis_for(std::string_view symbol) noexcept {
  // FNV-1a of the code: a stable price level per symbol.
  std::uint64_t hash = 1469598103934665603ull;
  for (char c : symbol) {
    hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  }
  PriceBasis basis;
  const std::int64_t level =
      10'000 + static_cast<std::int64_t>(hash % 80'000);  // 10,000 … 89,999
  basis.tick = level >= 50'000 ? 100 : level >= 20'000 ? 50 : 10;
  basis.previous_close = level / basis.tick * basis.tick;
  return basis;
}

std::int64_t trade_price(const PriceBasis& basis, std::uint64_t seq) noexcept {
  const auto phase = static_cast<std::int64_t>(seq % 80);  // 0 … 79
  const std::int64_t offset = phase < 40 ? phase - 20 : 60 - phase;
  return basis.previous_close + offset * basis.tick;
}

char change_sign(const PriceBasis& basis, std::int64_t price) noexcept {
  if (price > basis.previous_close) return '2';
  if (price < basis.previous_close) return '5';
  return '3';
}

MarketClock::MarketClock(feedkit::SteadyTime origin, int start_seconds,
                         std::string date, double speed)
    : origin_ns_(std::chrono::duration_cast<std::chrono::nanoseconds>(
                     origin.time_since_epoch())
                     .count()),
      start_seconds_(start_seconds),
      date_(std::move(date)),
      speed_(speed) {}

std::string MarketClock::today_kst() {
  using namespace std::chrono;
  const auto kst = floor<days>(system_clock::now() + hours(9));
  const year_month_day ymd(kst);
  char out[9];
  const int y = static_cast<int>(ymd.year());
  const unsigned m = static_cast<unsigned>(ymd.month());
  const unsigned d = static_cast<unsigned>(ymd.day());
  const unsigned values[] = {static_cast<unsigned>(y), m, d};
  const int widths[] = {4, 2, 2};
  int at = 0;
  for (int i = 0; i < 3; ++i) {
    unsigned v = values[i];
    for (int w = widths[i] - 1; w >= 0; --w) {
      out[at + w] = static_cast<char>('0' + v % 10);
      v /= 10;
    }
    at += widths[i];
  }
  return std::string(out, 8);
}

void MarketClock::hhmmss(std::int64_t steady_ns, char out[6]) const noexcept {
  const double elapsed =
      static_cast<double>(steady_ns - origin_ns_) / 1e9 * speed_;
  std::int64_t seconds = start_seconds_ + static_cast<std::int64_t>(elapsed);
  seconds = ((seconds % 86'400) + 86'400) % 86'400;
  const std::int64_t parts[] = {seconds / 3600, seconds / 60 % 60,
                                seconds % 60};
  for (int i = 0; i < 3; ++i) {
    out[2 * i] = static_cast<char>('0' + parts[i] / 10);
    out[2 * i + 1] = static_cast<char>('0' + parts[i] % 10);
  }
}

std::string MarketClock::datetime(std::int64_t steady_ns) const {
  char time[6];
  hhmmss(steady_ns, time);
  return date_ + std::string(time, 6);
}

void append_int(std::string& out, std::int64_t value) {
  char buf[24];
  const char* end = std::to_chars(buf, buf + sizeof(buf), value).ptr;
  out.append(buf, static_cast<std::size_t>(end - buf));
}

void append_signed(std::string& out, std::int64_t value) {
  if (value > 0) out.push_back('+');
  append_int(out, value);
}

void append_hundredths(std::string& out, std::int64_t hundredths) {
  if (hundredths < 0) out.push_back('-');
  const std::int64_t magnitude = std::llabs(hundredths);
  append_int(out, magnitude / 100);
  out.push_back('.');
  out.push_back(static_cast<char>('0' + magnitude % 100 / 10));
  out.push_back(static_cast<char>('0' + magnitude % 10));
}

}  // namespace examples::sim
