// tests/support/codec_robustness.h
//
// What the broker codecs' robustness tests share (the seeded stand-in for
// libFuzzer, whose targets are examples/<broker>/fuzz_<broker>.cc):
//
//   FrameMutator      turns valid seed frames into a reproducible stream of
//                     damaged ones: bit flips, random and "interesting"
//                     bytes, inserted tokens (separators, signs, huge
//                     numbers, JSON fragments), deleted, duplicated and
//                     truncated ranges, fields (between separators)
//                     replaced, splices of two seeds and, rarely, noise. Most
//                     inputs stay close to valid, so they reach deep into the
//                     parsers.
//   expect_valid()    the invariants every accepted event must hold.
//   ReasonTally<N>    the test's own count per rejection reason, compared
//                     with the codec's stats at the end, and printed.
//   seconds_since()   the run's duration, for the printed measure.
//
// Example:
//   FrameMutator mutator({kTradeFrame, kBookFrame}, kTokens, /*seed=*/1);
//   for (int i = 0; i < kInputs; ++i) codec.decode(mutator.next(), events);
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/market_events.h"

namespace examples::testing {

class FrameMutator {
 public:
  // `seeds`: valid frames; `tokens`: format-specific fragments worth
  // inserting; `seed`: makes the stream reproducible.
  FrameMutator(std::vector<std::string> seeds, std::vector<std::string> tokens,
               std::uint64_t seed)
      : seeds_(std::move(seeds)), tokens_(std::move(tokens)), rng_(seed) {}

  // Returns the next input: a seed (1 in 16 unchanged) with 1-4 mutations.
  std::string next() {
    std::string frame = seeds_[pick(seeds_.size())];
    if (pick(16) == 0) return frame;
    const std::size_t mutations = 1 + pick(4);
    for (std::size_t i = 0; i < mutations; ++i) mutate(frame);
    return frame;
  }

 private:
  std::size_t pick(std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_);
  }
  char random_byte() { return static_cast<char>(pick(256)); }

  void mutate(std::string& frame) {
    static constexpr char kInterestingBytes[] = "^|\"{}[],:-+.09 \\\0\xff";
    // Separators, signs, digits, quotes, a NUL and a non-ASCII byte.
    static constexpr std::string_view kInteresting(
        kInterestingBytes, sizeof kInterestingBytes - 1);
    const std::size_t at = frame.empty() ? 0 : pick(frame.size() + 1);
    switch (pick(13)) {
      case 0:  // flip one bit
        if (!frame.empty()) {
          frame[pick(frame.size())] ^= static_cast<char>(1 << pick(8));
        }
        break;
      case 1:  // replace a byte
        if (!frame.empty()) frame[pick(frame.size())] = random_byte();
        break;
      case 2:  // replace a byte with a separator, sign, digit, …
        if (!frame.empty()) {
          frame[pick(frame.size())] = kInteresting[pick(kInteresting.size())];
        }
        break;
      case 3: {  // insert random bytes
        std::string bytes(1 + pick(8), '\0');
        for (char& c : bytes) c = random_byte();
        frame.insert(at, bytes);
        break;
      }
      case 4:  // insert a token
      case 5:
        frame.insert(at, tokens_[pick(tokens_.size())]);
        break;
      case 6:  // delete a range
        if (at < frame.size()) frame.erase(at, 1 + pick(16));
        break;
      case 7:  // duplicate a range
        if (at < frame.size()) {
          const std::string range = frame.substr(at, 1 + pick(64));
          frame.insert(pick(frame.size() + 1), range);
        }
        break;
      case 8:  // truncate
        frame.resize(at);
        break;
      case 9: {  // splice with another seed
        const std::string& other = seeds_[pick(seeds_.size())];
        frame = frame.substr(0, at) + other.substr(pick(other.size() + 1));
        break;
      }
      case 10:  // replace one field (between separators) with a token
      case 11:
        replace_field(frame, at);
        break;
      default:  // noise, rarely
        if (pick(8) == 0) {
          frame.assign(pick(256), '\0');
          for (char& c : frame) c = random_byte();
        } else if (!frame.empty()) {
          frame[pick(frame.size())] = kInteresting[pick(kInteresting.size())];
        }
        break;
    }
  }

  // Replaces the text between the separators around `at` ('^', '|', a
  // quote, ':' …) with a token or a random number: damage that keeps the
  // frame's shape, so it reaches the field parsers.
  void replace_field(std::string& frame, std::size_t at) {
    static constexpr std::string_view kSeparators = "^|\",:{}[]";
    if (frame.empty()) return;
    at = std::min(at, frame.size() - 1);
    const std::size_t before = frame.find_last_of(kSeparators, at);
    const std::size_t begin = before == std::string::npos ? 0 : before + 1;
    std::size_t end = frame.find_first_of(kSeparators, begin);
    if (end == std::string::npos) end = frame.size();
    std::string value;
    switch (pick(3)) {
      case 0:
        value = tokens_[pick(tokens_.size())];
        break;
      case 1:
        value = std::to_string(static_cast<std::int64_t>(rng_()) >> pick(64));
        break;
      default:  // empty
        break;
    }
    frame.replace(begin, end - begin, value);
  }

  std::vector<std::string> seeds_;
  std::vector<std::string> tokens_;
  std::mt19937_64 rng_;
};

// Checks what every accepted event must satisfy, whatever the input was.
inline void expect_valid(const MarketEvent& event) {
  EXPECT_FALSE(symbol_of(event).empty());
  for (char c : symbol_of(event)) {
    EXPECT_TRUE(c > ' ' && c <= '~') << static_cast<int>(c);
  }
  if (const auto* trade = std::get_if<Trade>(&event)) {
    EXPECT_GT(trade->price, Price());
    EXPECT_GE(trade->volume, 0);
    EXPECT_GE(trade->cumulative_volume.value_or(0), 0);
    EXPECT_GE(trade->time.seconds, -1);
    EXPECT_LT(trade->time.seconds, 86400);
    return;
  }
  const Book& book = std::get<Book>(event);
  for (const auto* side : {&book.bids, &book.asks}) {
    for (const Level& level : *side) {
      EXPECT_GE(level.price, Price());
      EXPECT_GE(level.quantity, 0);
    }
  }
  EXPECT_GE(book.time.seconds, -1);
  EXPECT_LT(book.time.seconds, 86400);
}

// The test's own count per reason (index 0 = accepted).
template <std::size_t N>
struct ReasonTally {
  std::array<std::uint64_t, N> count{};

  template <class Reason>
  void add(Reason reason) {
    ++count.at(static_cast<std::size_t>(reason));
  }
  std::uint64_t accepted() const { return count[0]; }
  std::uint64_t rejected() const {
    std::uint64_t sum = 0;
    for (std::size_t i = 1; i < N; ++i) sum += count[i];
    return sum;
  }
  std::size_t distinct_reasons() const {
    std::size_t n = 0;
    for (std::size_t i = 1; i < N; ++i) n += count[i] > 0 ? 1 : 0;
    return n;
  }

  // Prints the run's "[ measure  ]" lines: inputs, time, decoded and
  // rejected counts (`extra` appended to that line), then each reason's
  // count (named by to_string(Reason), found by argument-dependent lookup).
  template <class Reason>
  void print(int inputs, double seconds, const std::string& extra = "") const {
    std::printf(
        "[ measure  ] %d inputs in %.1f s: %llu decoded, %llu rejected "
        "(%zu reasons)%s\n",
        inputs, seconds, static_cast<unsigned long long>(accepted()),
        static_cast<unsigned long long>(rejected()), distinct_reasons(),
        extra.c_str());
    for (std::size_t r = 1; r < N; ++r) {
      std::printf("[ measure  ]   %s: %llu\n",
                  std::string(to_string(static_cast<Reason>(r))).c_str(),
                  static_cast<unsigned long long>(count[r]));
    }
  }
};

// Seconds since `start`, for the measure line.
inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace examples::testing
