// SPDX-License-Identifier: Apache-2.0
//
// src/internal/url.h: scheme://host[:port][/path][?query] taken apart for the
// feed clients (ws/wss for WsClient; tcp/ssl/ws/wss for MqttClient), with
// errors that name the options field and quote the scheme, host or port,
// never the path or query (which may carry a token). Not API.
#pragma once

#include <cctype>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace feedkit::internal {

struct UrlScheme {
  const char* name;          // lower case, e.g. "wss"
  const char* default_port;  // e.g. "443"
  bool tls = false;
};

struct ParsedUrl {
  std::string scheme;  // as in UrlScheme::name
  bool tls = false;
  std::string host;         // without brackets for IPv6 literals
  std::string port;         // digits
  std::string host_header;  // Host header value (brackets, port if not default)
  std::string target;       // path and query, starting with '/'
};

// Returns the URL's parts, or kInvalidArgument "`field` ..." naming the part
// that could not be read. `schemes` lists the accepted schemes.
inline absl::StatusOr<ParsedUrl> parse_url(std::string_view url,
                                           const char* field,
                                           std::span<const UrlScheme> schemes) {
  auto invalid = [&](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(field, " ", parts...));
  };
  std::string with_slashes;  // "ws:// or wss://"
  std::string names;         // "ws or wss"
  for (std::size_t i = 0; i < schemes.size(); ++i) {
    const char* sep = i == 0 ? "" : i + 1 < schemes.size() ? ", " : " or ";
    absl::StrAppend(&with_slashes, sep, schemes[i].name, "://");
    absl::StrAppend(&names, sep, schemes[i].name);
  }
  ParsedUrl out;
  const std::size_t sep = url.find("://");
  if (sep == std::string_view::npos) {
    return invalid("must start with ", with_slashes);
  }
  std::string scheme(url.substr(0, sep));
  for (char& ch : scheme)
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  const UrlScheme* matched = nullptr;
  for (const UrlScheme& s : schemes) {
    if (s.name == scheme) matched = &s;
  }
  if (matched == nullptr) {
    return invalid("scheme must be ", names, ", got \"", scheme.substr(0, 16),
                   "\"");
  }
  out.scheme = scheme;
  out.tls = matched->tls;
  std::string_view rest = url.substr(sep + 3);
  const std::size_t end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, end);
  std::string_view target =
      end == std::string_view::npos ? std::string_view() : rest.substr(end);
  if (authority.find('@') != std::string_view::npos) {
    return invalid("must not carry user information (user:password@)");
  }
  std::string_view host;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos)
      return invalid("has an unterminated IPv6 host");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return invalid("has junk after the IPv6 host");
      port = after.substr(1);
      if (port.empty()) return invalid("has an empty port");
    }
  } else {
    const std::size_t colon = authority.rfind(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return invalid("has an empty port");
    }
  }
  if (host.empty()) return invalid("has no host");
  for (char ch : host) {
    if (std::isspace(static_cast<unsigned char>(ch)) || ch == '/' ||
        ch == '\\') {
      return invalid("host \"", std::string(host.substr(0, 64)),
                     "\" is not a host name");
    }
  }
  if (!port.empty()) {
    unsigned long value = 0;  // NOLINT(runtime/int)
    for (char ch : port) {
      if (ch < '0' || ch > '9' || value > 65535) {
        return invalid("port \"", std::string(port.substr(0, 16)),
                       "\" is not a number in 1..65535");
      }
      value = value * 10 +
              static_cast<unsigned long>(ch - '0');  // NOLINT(runtime/int)
    }
    if (value < 1 || value > 65535) {
      return invalid("port \"", std::string(port.substr(0, 16)),
                     "\" is not in 1..65535");
    }
  }
  const std::string_view default_port(matched->default_port);
  out.host = std::string(host);
  out.port = port.empty() ? std::string(default_port) : std::string(port);
  const bool ipv6 = out.host.find(':') != std::string::npos;
  out.host_header = ipv6 ? absl::StrCat("[", out.host, "]") : out.host;
  if (out.port != default_port)
    absl::StrAppend(&out.host_header, ":", out.port);
  if (const std::size_t hash = target.find('#');
      hash != std::string_view::npos) {
    target = target.substr(0, hash);
  }
  // Built as a temporary and moved in: assigning a literal to a std::string
  // here makes g++ 12 -O3 report a false -Wrestrict (GCC PR 105329).
  out.target = target.empty()          ? std::string(1, '/')
               : target.front() == '?' ? absl::StrCat("/", std::string(target))
                                       : std::string(target);
  return out;
}

}  // namespace feedkit::internal
