// SPDX-License-Identifier: Apache-2.0
//
// examples/common/codec_stats.h
//
// What the example codecs share for accounting: every input a codec reads is
// either accepted or rejected with exactly one reason, an enum whose first
// value is `none` (0) and whose values run 0..N-1.
//
//   DecodeResult<Reason>   the outcome of one decode call: the reason (none
//                          when accepted) and how many events it appended.
//   RejectCounts<Reason,N> a counter per reason, and their total.
//
// Thread safety: plain values (thread-compatible).
//
// Example:
//   examples::RejectCounts<KisError, kKisErrorCount> rejected;
//   if (!result.ok()) rejected.add(result.error);
//   rejected.total();                         // all reasons but none
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <numeric>

namespace examples {

template <class Reason>
struct DecodeResult {
  Reason error{};          // Reason{} (none) when the input was accepted
  std::size_t events = 0;  // events appended (0 when rejected)

  bool ok() const noexcept { return error == Reason{}; }
};

template <class Reason, std::size_t N>
struct RejectCounts {
  std::array<std::uint64_t, N> by_reason{};  // [0] (none) stays 0

  void add(Reason reason) noexcept {
    const auto index = static_cast<std::size_t>(reason);
    if (index != 0 && index < N) ++by_reason[index];
  }
  std::uint64_t operator[](Reason reason) const noexcept {
    const auto index = static_cast<std::size_t>(reason);
    return index < N ? by_reason[index] : 0;
  }
  std::uint64_t total() const noexcept {
    return std::accumulate(by_reason.begin(), by_reason.end(),
                           std::uint64_t{0});
  }
};

}  // namespace examples
