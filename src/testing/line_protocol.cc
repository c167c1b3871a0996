// SPDX-License-Identifier: Apache-2.0
#include "feedkit/testing/line_protocol.h"

#include <charconv>
#include <system_error>
#include <utility>

namespace feedkit::testing {
namespace {

// Splits off the first space-separated token of `s` (advancing `s` past the
// space that ends it, if any).
std::string_view next_token(std::string_view& s) {
  const std::size_t space = s.find(' ');
  std::string_view token = s.substr(0, space);
  s = space == std::string_view::npos ? std::string_view()
                                      : s.substr(space + 1);
  return token;
}

bool parse_u64(std::string_view s, std::uint64_t& out) {
  if (s.empty()) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

Classified make(FrameKind kind, std::string key = {}, std::string reason = {},
                std::string reply = {}) {
  Classified c;
  c.kind = kind;
  c.key = std::move(key);
  c.reason = std::move(reason);
  c.reply = std::move(reply);
  return c;
}

}  // namespace

std::optional<LineData> parse_line_data(std::string_view frame) noexcept {
  constexpr std::string_view kVerb = "DATA ";
  if (frame.substr(0, kVerb.size()) != kVerb) return std::nullopt;
  std::string_view rest = frame.substr(kVerb.size());
  LineData d;
  d.key = next_token(rest);
  if (d.key.empty()) return std::nullopt;
  if (!parse_u64(next_token(rest), d.seq)) return std::nullopt;
  d.payload = rest;
  return d;
}

std::optional<SteadyTime> parse_sent_time(std::string_view payload) noexcept {
  std::size_t at = 0;
  if (payload.substr(0, 2) != "t=") {
    at = payload.find(" t=");
    if (at == std::string_view::npos) return std::nullopt;
    ++at;
  }
  std::string_view digits = payload.substr(at + 2);
  digits = digits.substr(0, digits.find(' '));
  std::uint64_t ns = 0;
  if (!parse_u64(digits, ns)) return std::nullopt;
  return SteadyTime(
      std::chrono::duration_cast<Duration>(std::chrono::nanoseconds(ns)));
}

std::vector<std::string> LineProtocol::login_frames(
    const Credentials& credentials) {
  return {"LOGIN " + credentials.secret};
}

std::string LineProtocol::subscribe_frame(std::string_view key,
                                          const Credentials&) {
  return std::string("SUB ").append(key);
}

std::string LineProtocol::unsubscribe_frame(std::string_view key,
                                            const Credentials&) {
  return std::string("UNSUB ").append(key);
}

Classified LineProtocol::classify(std::string_view frame) {
  if (parse_line_data(frame)) return make(FrameKind::data);
  std::string_view rest = frame;
  const std::string_view verb = next_token(rest);
  // Verbs without fields.
  if (verb == "LOGIN_OK") return make(FrameKind::login_ok);
  if (verb == "AUTH_FAIL") return make(FrameKind::auth_rejected);
  if (verb == "BUSY") return make(FrameKind::busy);
  if (verb == "NOTICE") return make(FrameKind::notice, {}, std::string(rest));
  // Verbs with a key (or a number) first.
  const std::string_view key = next_token(rest);
  if (key.empty()) return make(FrameKind::malformed);
  if (verb == "ACK") return make(FrameKind::subscribe_ack, std::string(key));
  if (verb == "ALREADY") {
    return make(FrameKind::already_subscribed, std::string(key));
  }
  if (verb == "MAXSUB") {
    return make(FrameKind::max_subscriptions, std::string(key));
  }
  if (verb == "UNACK")
    return make(FrameKind::unsubscribe_ack, std::string(key));
  if (verb == "REJECT") {
    return make(FrameKind::subscribe_reject, std::string(key),
                std::string(rest));
  }
  if (verb == "PING") {
    return make(FrameKind::heartbeat, {}, {}, std::string("PONG ").append(key));
  }
  return make(FrameKind::malformed);
}

}  // namespace feedkit::testing
