// SPDX-License-Identifier: Apache-2.0
//
// examples/common/subscription_key.h
//
// The two-part subscription keys the broker codecs hand to SubscriptionSet:
// "<first>|<second>" (KIS: tr_id|tr_key, Kiwoom: type|item).
//
//   join_key(first, second)  "<first>|<second>"
//   split_key(key)           both parts, split at the first '|', when both
//                            are non-empty; nullopt otherwise
//
// Thread safety: pure functions. split_key's views point into `key`.
//
// Example:
//   examples::join_key("H0STCNT0", "005930");   // "H0STCNT0|005930"
//   examples::split_key("0B|005930")->second;    // "005930"
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace examples {

inline std::string join_key(std::string_view first, std::string_view second) {
  std::string key(first);
  key.append("|").append(second);
  return key;
}

inline std::optional<std::pair<std::string_view, std::string_view>> split_key(
    std::string_view key) noexcept {
  const std::size_t bar = key.find('|');
  if (bar == 0 || bar == std::string_view::npos || bar + 1 == key.size()) {
    return std::nullopt;
  }
  return std::pair(key.substr(0, bar), key.substr(bar + 1));
}

}  // namespace examples
