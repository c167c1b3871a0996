// SPDX-License-Identifier: Apache-2.0
#include "feedkit/testing/server_dialect.h"

#include <charconv>
#include <cstring>
#include <initializer_list>
#include <iterator>

namespace feedkit::testing {
namespace {

// Concatenates `parts` (absl::StrCat does not take std::string_view with
// this Abseil).
std::string cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view p : parts) out.append(p);
  return out;
}

}  // namespace

std::vector<std::string> ServerDialect::subscribe_replies(
    const ClientRequest&, std::span<const KeyOutcome> outcomes) {
  std::vector<std::string> frames;
  frames.reserve(outcomes.size());
  for (const KeyOutcome& o : outcomes) {
    switch (o.outcome) {
      case SubscribeOutcome::subscribed:
        frames.push_back(subscribed(o.key));
        break;
      case SubscribeOutcome::already:
        frames.push_back(already(o.key));
        break;
      case SubscribeOutcome::max_subscriptions:
        frames.push_back(max_subscriptions(o.key));
        break;
      case SubscribeOutcome::rejected:
        frames.push_back(rejected(o.key, o.reason));
        break;
      case SubscribeOutcome::auth_failed:
        frames.push_back(auth_failed(o.key));
        break;
      case SubscribeOutcome::in_use:
        frames.push_back(in_use(o.key));
        break;
    }
  }
  return frames;
}

std::vector<std::string> ServerDialect::unsubscribe_replies(
    const ClientRequest& request, const std::vector<bool>& held) {
  std::vector<std::string> frames;
  frames.reserve(request.keys.size());
  for (std::size_t i = 0; i < request.keys.size(); ++i) {
    frames.push_back(unsubscribed(request.keys[i], i < held.size() && held[i]));
  }
  return frames;
}

// --- LineDialect ------------------------------------------------------------

ClientRequest LineDialect::read(std::string_view frame) {
  ClientRequest request;
  auto rest_after = [&](std::string_view verb) -> std::optional<std::string> {
    if (frame.substr(0, verb.size()) != verb) return std::nullopt;
    return std::string(frame.substr(verb.size()));
  };
  if (frame == "LOGIN") {
    request.kind = ClientRequest::Kind::login;
    request.secret = std::string();
  } else if (auto secret = rest_after("LOGIN ")) {
    request.kind = ClientRequest::Kind::login;
    request.secret = std::move(secret);
  } else if (auto key = rest_after("SUB "); key && !key->empty()) {
    request.kind = ClientRequest::Kind::subscribe;
    request.keys.push_back(std::move(*key));
  } else if (auto key = rest_after("UNSUB "); key && !key->empty()) {
    request.kind = ClientRequest::Kind::unsubscribe;
    request.keys.push_back(std::move(*key));
  } else if (frame.substr(0, 5) == "PONG ") {
    request.kind = ClientRequest::Kind::heartbeat;
  }
  return request;
}

std::string LineDialect::ping(std::uint64_t n) {
  return "PING " + std::to_string(n);
}
std::string LineDialect::notice(std::string_view text) {
  return cat({"NOTICE ", text});
}
std::string LineDialect::subscribed(std::string_view key) {
  return cat({"ACK ", key});
}
std::string LineDialect::already(std::string_view key) {
  return cat({"ALREADY ", key});
}
std::string LineDialect::max_subscriptions(std::string_view key) {
  return cat({"MAXSUB ", key});
}
std::string LineDialect::rejected(std::string_view key,
                                  std::string_view reason) {
  return cat({"REJECT ", key, " ", reason});
}
std::string LineDialect::auth_failed(std::string_view) { return "AUTH_FAIL"; }
std::string LineDialect::in_use(std::string_view) { return "BUSY"; }
std::string LineDialect::unsubscribed(std::string_view key, bool) {
  return cat({"UNACK ", key});
}

void LineDialect::append_data(std::string& out, std::string_view key,
                              std::uint64_t first_seq, std::size_t,
                              std::int64_t sent_ns) {
  // "DATA <key> <seq> t=<ns>" with one resize and copies (the flood's inner
  // loop; resize grows the capacity geometrically).
  char seq[24];
  char ns[24];
  const auto seq_len = static_cast<std::size_t>(
      std::to_chars(seq, seq + sizeof(seq), first_seq).ptr - seq);
  const auto ns_len = static_cast<std::size_t>(
      std::to_chars(ns, ns + sizeof(ns), sent_ns).ptr - ns);
  const std::size_t at = out.size();
  out.resize(at + 5 + key.size() + 1 + seq_len + 3 + ns_len);
  char* p = out.data() + at;
  auto put = [&p](const char* data, std::size_t n) {
    std::memcpy(p, data, n);
    p += n;
  };
  put("DATA ", 5);
  put(key.data(), key.size());
  put(" ", 1);
  put(seq, seq_len);
  put(" t=", 3);
  put(ns, ns_len);
}

std::string LineDialect::malformed(std::size_t i) {
  // Each is malformed for LineProtocol.
  static constexpr std::string_view kSamples[] = {
      "DATA A not-a-number t=0",  // DATA with a bad sequence number
      "GARBAGE",                  // unknown verb
      "",                         // empty frame
      "ACK",                      // a reply without its key
      "DATA",                     // DATA without fields
  };
  return std::string(kSamples[i % std::size(kSamples)]);
}

}  // namespace feedkit::testing
