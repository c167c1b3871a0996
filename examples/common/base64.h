// SPDX-License-Identifier: Apache-2.0
//
// examples/common/base64.h
//
// Standard base64 (RFC 4648 §4, alphabet A-Z a-z 0-9 + /) decoding and
// lower-case hex encoding, for the codecs' crypto inputs and outputs (KIS
// encrypted frames, the Settrade app secret and login signature).
//
// Decoding is strict: no whitespace, no other alphabet, '=' only as final
// padding. Never reads outside its input; never throws.
//
// Thread safety: thread-safe (pure functions).
//
// Example:
//   std::string bytes;
//   if (!examples::base64_decode("QUJD", bytes)) return reject();   // "ABC"
//   examples::hex_encode("\x01\xff");                             // "01ff"
#pragma once

#include <string>
#include <string_view>

namespace examples {

enum class Base64Padding : bool {
  required,  // the length must be a multiple of 4 (KIS frames)
  optional,  // missing '=' are tolerated (Settrade app secrets lack them)
};

// Decodes `in` into `out` (replacing its contents). Returns false, with
// `out` unspecified, for anything but base64 with the given padding rule.
bool base64_decode(std::string_view in, std::string& out,
                   Base64Padding padding = Base64Padding::required);

// Returns the lower-case hex of `bytes`.
std::string hex_encode(std::string_view bytes);

}  // namespace examples
