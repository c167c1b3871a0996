// SPDX-License-Identifier: Apache-2.0
//
// kis_collector: collects KIS realtime trades (H0STCNT0) and 10-level books
// (H0STASP0) into JSON Lines, following the collector contract (README).
//
//   approval key   POST {--rest-url}/oauth2/Approval on every connect
//                  (appkey + appsecret from flags or KIS_APPKEY /
//                  KIS_APPSECRET), on a thread of its own
//   WebSocket      feedkit::WsClient on {--ws-url} with KisProtocol: no
//                  WebSocket pings (KIS drops clients that send them),
//                  unsubscribe-before-subscribe after a reconnect, ALREADY IN
//                  SUBSCRIBE = confirmed, MAX SUBSCRIBE OVER learned,
//                  appkey-in-use backs off, PINGPONG echoed
//   consumer       examples::Collector: JSON Lines, FeedHealth, escalation,
//                  volume_jump gap lines, a status line every second,
//                  /metrics /health /ready with --metrics-port, clean stop
//                  on SIGINT/SIGTERM
//
// Usage:
//   kis_collector --symbols 005930,000660 --out ticks.jsonl
//       --rest-url https://openapivts.koreainvestment.com:29443
//       --ws-url ws://ops.koreainvestment.com:31000/tryitout
//   (KIS_APPKEY and KIS_APPSECRET in the environment)
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
#include "kis/kis_codec.h"
#include "kis/kis_protocol.h"

namespace {

using examples::kis::KisCodec;
using examples::kis::KisProtocol;

void declare_flags(examples::Flags& flags) {
  examples::add_collector_flags(flags);
  examples::add_ws_broker_flags(flags, "KIS", "KIS");
  flags.add({.name = "custtype",
             .help = "P (individual) or B (corporate)",
             .default_value = "P"});
  flags.add({.name = "books",
             .help = "also collect 10-level books (H0STASP0)",
             .default_value = "true",
             .boolean = true});
  flags.add({.name = "ping-reply",
             .help = "answer PINGPONG with a text echo or a pong frame",
             .default_value = "text"});
}

// POST /oauth2/Approval; no documented validity, the official sample renews
// daily.
absl::StatusOr<feedkit::Credentials> fetch_approval_key(
    const examples::WsBrokerEndpoints& endpoints) {
  examples::HttpPostOptions options;
  options.ca_file = endpoints.ca_file;
  auto response =
      examples::http_post_json(endpoints.rest_url + "/oauth2/Approval",
                               examples::kis::approval_request_body(
                                   endpoints.appkey, endpoints.appsecret),
                               options);
  if (!response.ok()) return response.status();
  if (response->status != 200) {
    return absl::UnavailableError("approval key: HTTP " +
                                  std::to_string(response->status));
  }
  auto key = examples::kis::parse_approval_response(response->body);
  if (!key.ok()) return key.status();
  return feedkit::Credentials{
      *std::move(key), feedkit::SteadyClock::now() + std::chrono::hours(23)};
}

int run(int argc, char** argv) {
  examples::Flags flags(
      "kis_collector", "Collects KIS realtime trades and books as JSON Lines.");
  declare_flags(flags);
  if (auto s = flags.parse(argc, argv); !s.ok()) return flags.fail(s);
  auto options = examples::collector_options(flags, "kis");
  if (!options.ok()) return flags.fail(options.status());
  auto endpoints = examples::ws_broker_flags(flags);
  if (!endpoints.ok()) return flags.fail(endpoints.status());
  const bool books = flags.boolean("books");
  options->keys_of = [books](std::string_view symbol) {
    std::vector<std::string> keys = {
        examples::kis::subscription_key(examples::kis::kTradeTrId, symbol)};
    if (books) {
      keys.push_back(
          examples::kis::subscription_key(examples::kis::kBookTrId, symbol));
    }
    return keys;
  };
  const std::string custtype = flags.get("custtype");
  const std::string ping_reply = flags.get("ping-reply");
  if (ping_reply != "text" && ping_reply != "pong") {
    return flags.fail(absl::InvalidArgumentError(
        "--ping-reply: wants text or pong, got '" + ping_reply + "'"));
  }

  auto collector = examples::Collector::create(*options);
  if (!collector.ok()) return flags.fail(collector.status());
  auto codec = std::make_shared<KisCodec>(KisCodec::create().value());
  examples::kis::KisProtocolOptions protocol_options;
  protocol_options.custtype = custtype.size() == 1 ? custtype[0] : '?';
  protocol_options.ping_reply = ping_reply == "pong"
                                    ? examples::kis::PingReply::pong_frame
                                    : examples::kis::PingReply::text_echo;
  auto protocol = KisProtocol::create(codec, protocol_options);
  if (!protocol.ok()) return flags.fail(protocol.status());

  feedkit::WsClientOptions ws;
  ws.url = endpoints->ws_url;
  ws.idle_timeout = endpoints->idle_timeout;
  ws.ping_interval = std::chrono::milliseconds(0);  // KIS wants none
  ws.subscriptions.max_per_connection = 41;         // KIS's documented cap

  boost::asio::io_context ioc;
  auto client = feedkit::WsClient::create(
      ioc, ws, *std::move(protocol),
      examples::blocking_credentials(
          [e = *endpoints](bool) { return fetch_approval_key(e); }),
      examples::decode_into(**collector, codec));
  if (!client.ok()) return flags.fail(client.status());
  return examples::run_with(**collector, ioc, *client);
}

}  // namespace

int main(int argc, char** argv) { return run(argc, argv); }
