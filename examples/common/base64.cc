// SPDX-License-Identifier: Apache-2.0
#include "common/base64.h"

#include <cstdint>

namespace examples {
namespace {

int base64_value(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

bool base64_decode(std::string_view in, std::string& out,
                   Base64Padding padding) {
  out.clear();
  // Strip the final padding, then check what is left.
  std::size_t pad = 0;
  while (pad < 2 && pad < in.size() && in[in.size() - 1 - pad] == '=') ++pad;
  if (padding == Base64Padding::required && in.size() % 4 != 0) return false;
  if (padding == Base64Padding::optional && pad > 0 && in.size() % 4 != 0) {
    return false;  // padding present: it must complete the last quantum
  }
  const std::string_view symbols = in.substr(0, in.size() - pad);
  if (symbols.empty() || symbols.size() % 4 == 1) return false;
  out.reserve(symbols.size() / 4 * 3 + 2);
  std::uint32_t bits = 0;
  for (std::size_t i = 0; i < symbols.size(); ++i) {
    const int v = base64_value(symbols[i]);
    if (v < 0) return false;
    bits = (bits << 6) | static_cast<std::uint32_t>(v);
    if (i % 4 == 3) {
      out += static_cast<char>(bits >> 16);
      out += static_cast<char>(bits >> 8);
      out += static_cast<char>(bits);
      bits = 0;
    }
  }
  switch (symbols.size() % 4) {
    case 3:  // 18 bits: 2 bytes
      out += static_cast<char>(bits >> 10);
      out += static_cast<char>(bits >> 2);
      break;
    case 2:  // 12 bits: 1 byte
      out += static_cast<char>(bits >> 4);
      break;
    default:
      break;
  }
  return true;
}

std::string hex_encode(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    out += kDigits[byte >> 4];
    out += kDigits[byte & 0xF];
  }
  return out;
}

}  // namespace examples
