// SPDX-License-Identifier: Apache-2.0
//
// kiwoom_collector: collects Kiwoom realtime trades (0B) and 10-level books
// (0D) into JSON Lines, following the collector contract (README).
//
//   token          POST {--rest-url}/oauth2/token on every connect (appkey +
//                  secretkey from flags or KIWOOM_APPKEY / KIWOOM_APPSECRET),
//                  on a thread of its own; refreshed before expires_dt and
//                  after a rejected LOGIN
//   WebSocket      feedkit::WsClient on {--ws-url} with KiwoomProtocol: LOGIN
//                  first, REG/REMOVE with --grp-no and --refresh,
//                  REMOVE-before-REG after a reconnect, PING echoed, SYSTEM
//                  R10001 (another session took the app key) backs off
//   consumer       examples::Collector: JSON Lines, FeedHealth, escalation,
//                  volume_jump gap lines, a status line every second,
//                  /metrics /health /ready with --metrics-port, clean stop
//                  on SIGINT/SIGTERM
//
// Usage:
//   kiwoom_collector --symbols 005930,000660 --out ticks.jsonl
//       --rest-url https://api.kiwoom.com
//       --ws-url wss://api.kiwoom.com:10000/api/dostk/websocket
//   (KIWOOM_APPKEY and KIWOOM_APPSECRET in the environment)
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "collector/collector.h"
#include "collector/flags.h"
#include "collector/http_post.h"
#include "collector/ws_collector.h"
#include "feedkit/ws_client.h"
#include "kiwoom/kiwoom_codec.h"
#include "kiwoom/kiwoom_protocol.h"

namespace {

namespace kiwoom = examples::kiwoom;

void declare_flags(examples::Flags& flags) {
  examples::add_collector_flags(flags);
  examples::add_ws_broker_flags(flags, "KIWOOM", "Kiwoom");
  flags.add({.name = "books",
             .help = "also collect 10-level books (0D)",
             .default_value = "true",
             .boolean = true});
  flags.add({.name = "grp-no",
             .help = "REG group number (1-4 digits)",
             .default_value = "1"});
}

// POST /oauth2/token (au10001); valid until its expires_dt (KST).
absl::StatusOr<feedkit::Credentials> fetch_token(
    const examples::WsBrokerEndpoints& endpoints) {
  examples::HttpPostOptions options;
  options.ca_file = endpoints.ca_file;
  auto response = examples::http_post_json(
      endpoints.rest_url + "/oauth2/token",
      kiwoom::token_request_body(endpoints.appkey, endpoints.appsecret),
      options);
  if (!response.ok()) return response.status();
  if (response->status != 200) {
    return absl::UnavailableError("token: HTTP " +
                                  std::to_string(response->status));
  }
  auto token = kiwoom::parse_token_response(response->body);
  if (!token.ok()) return token.status();
  const auto valid_for = token->expires_at - std::chrono::system_clock::now();
  return feedkit::Credentials{
      std::move(token->token),
      feedkit::SteadyClock::now() +
          std::chrono::duration_cast<feedkit::Duration>(valid_for)};
}

int run(int argc, char** argv) {
  examples::Flags flags(
      "kiwoom_collector",
      "Collects Kiwoom realtime trades and books as JSON Lines.");
  declare_flags(flags);
  if (auto s = flags.parse(argc, argv); !s.ok()) return flags.fail(s);
  auto options = examples::collector_options(flags, "kiwoom");
  if (!options.ok()) return flags.fail(options.status());
  auto endpoints = examples::ws_broker_flags(flags);
  if (!endpoints.ok()) return flags.fail(endpoints.status());
  const bool books = flags.boolean("books");
  options->keys_of = [books](std::string_view symbol) {
    std::vector<std::string> keys = {
        kiwoom::subscription_key(kiwoom::kTradeType, symbol)};
    if (books) {
      keys.push_back(kiwoom::subscription_key(kiwoom::kBookType, symbol));
    }
    return keys;
  };
  kiwoom::KiwoomProtocolOptions protocol_options;
  protocol_options.registration.grp_no = flags.get("grp-no");

  auto collector = examples::Collector::create(*options);
  if (!collector.ok()) return flags.fail(collector.status());
  auto codec = std::make_shared<kiwoom::KiwoomCodec>(
      kiwoom::KiwoomCodec::create().value());
  auto protocol = kiwoom::KiwoomProtocol::create(codec, protocol_options);
  if (!protocol.ok()) return flags.fail(protocol.status());

  feedkit::WsClientOptions ws;
  ws.url = endpoints->ws_url;
  ws.idle_timeout = endpoints->idle_timeout;
  ws.ping_interval = std::chrono::milliseconds(0);  // the official client's

  boost::asio::io_context ioc;
  auto client = feedkit::WsClient::create(
      ioc, ws, *std::move(protocol),
      examples::blocking_credentials(
          [e = *endpoints](bool) { return fetch_token(e); }),
      examples::decode_into(**collector, codec));
  if (!client.ok()) return flags.fail(client.status());
  return examples::run_with(**collector, ioc, *client);
}

}  // namespace

int main(int argc, char** argv) { return run(argc, argv); }
