// SPDX-License-Identifier: Apache-2.0
//
// kis_collector: collects KIS realtime trades (H0STCNT0) and 10-level books
// (H0STASP0) into JSON Lines, following the collector contract (README).
//
//   approval key   POST {--rest-url}/oauth2/Approval on every connect
//                  (appkey + appsecret from flags or KIS_APPKEY /
//                  KIS_APPSECRET), refreshed a day later or after a rejection
//   WebSocket      feedkit::WsClient on {--ws-url} with KisProtocol: no
//                  WebSocket pings (KIS drops clients that send them),
//                  unsubscribe-before-subscribe after a reconnect, ALREADY IN
//                  SUBSCRIBE = confirmed, MAX SUBSCRIBE OVER learned,
//                  appkey-in-use backs off, PINGPONG echoed
//   consumer       examples::Collector: JSON Lines, FeedHealth, escalation,
//                  a status line every second, clean stop on SIGINT/SIGTERM
//
// Usage:
//   kis_collector --symbols 005930,000660 --out ticks.jsonl
//       --rest-url https://openapivts.koreainvestment.com:29443
//       --ws-url ws://ops.koreainvestment.com:31000/tryitout
//   (KIS_APPKEY and KIS_APPSECRET in the environment)
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "collector/collector.h"
#include "collector/flags.h"
#include "collector/http_post.h"
#include "feedkit/ws_client.h"
#include "kis/kis_codec.h"
#include "kis/kis_protocol.h"

namespace {

using examples::kis::KisCodec;
using examples::kis::KisProtocol;

void declare_flags(examples::Flags& flags) {
  examples::add_collector_flags(flags);
  flags.add({.name = "rest-url",
             .help = "KIS REST base for the approval key",
             .env = "KIS_REST_URL",
             .required = true});
  flags.add({.name = "ws-url",
             .help = "KIS realtime WebSocket URL",
             .env = "KIS_WS_URL",
             .required = true});
  flags.add({.name = "appkey",
             .help = "app key",
             .env = "KIS_APPKEY",
             .required = true,
             .secret = true});
  flags.add({.name = "appsecret",
             .help = "app secret",
             .env = "KIS_APPSECRET",
             .required = true,
             .secret = true});
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
  flags.add({.name = "idle-timeout-ms",
             .help = "reconnect after this long with no frame at all",
             .default_value = "30000"});
  flags.add({.name = "ca-file", .help = "PEM bundle to trust for https"});
}

// Fetches an approval key on a thread of its own (the call blocks) and
// hands it to `done` from there.
feedkit::CredentialsProvider approval_keys(std::string rest_url,
                                           std::string appkey,
                                           std::string appsecret,
                                           std::string ca_file) {
  return [=](bool /*force_refresh*/, auto done) {
    std::thread([=, done = std::move(done)] {
      examples::HttpPostOptions options;
      options.ca_file = ca_file;
      auto response = examples::http_post_json(
          rest_url + "/oauth2/Approval",
          examples::kis::approval_request_body(appkey, appsecret), options);
      if (!response.ok()) return done(response.status());
      if (response->status != 200) {
        return done(absl::UnavailableError("approval key: HTTP " +
                                           std::to_string(response->status)));
      }
      auto key = examples::kis::parse_approval_response(response->body);
      if (!key.ok()) return done(key.status());
      // No documented validity; the official sample renews daily.
      done(feedkit::Credentials{*std::move(key), feedkit::SteadyClock::now() +
                                                     std::chrono::hours(23)});
    }).detach();
  };
}

int run(int argc, char** argv) {
  examples::Flags flags(
      "kis_collector", "Collects KIS realtime trades and books as JSON Lines.");
  declare_flags(flags);
  if (auto s = flags.parse(argc, argv); !s.ok()) return flags.fail(s);
  auto options = examples::collector_options(flags, "kis");
  if (!options.ok()) return flags.fail(options.status());
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
  auto idle = flags.integer("idle-timeout-ms", 0, 3'600'000);
  if (!idle.ok()) return flags.fail(idle.status());

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
  ws.url = flags.get("ws-url");
  ws.idle_timeout = std::chrono::milliseconds(*idle);
  ws.ping_interval = std::chrono::milliseconds(0);  // KIS wants none
  ws.subscriptions.max_per_connection = 41;         // KIS's documented cap

  examples::Collector& sink = **collector;
  std::vector<examples::MarketEvent> events;
  feedkit::WsClientCallbacks callbacks;
  callbacks.on_data = [&sink, &events, codec](std::string_view frame,
                                              feedkit::SteadyTime recv,
                                              std::uint64_t epoch) {
    events.clear();
    if (!codec->decode(frame, events).ok()) return;  // counted by the codec
    for (const auto& e : events) sink.on_event(e, epoch, recv);
  };
  callbacks.on_gap = [&sink](const feedkit::GapEvent& gap) {
    sink.on_gap(gap);
  };

  boost::asio::io_context ioc;
  auto client = feedkit::WsClient::create(
      ioc, ws, *std::move(protocol),
      approval_keys(flags.get("rest-url"), flags.get("appkey"),
                    flags.get("appsecret"), flags.get("ca-file")),
      callbacks);
  if (!client.ok()) return flags.fail(client.status());
  for (const auto& symbol : options->symbols) {
    for (auto& key : options->keys_of(symbol)) (*client)->want(std::move(key));
  }
  sink.attach({
      .stats = [c = *client] { return feedkit::ConnectionStats(c->stats()); },
      .resubscribe = [c = *client](std::string key) { c->resubscribe(key); },
      .reconnect = [c = *client](feedkit::GapReason r) { c->reconnect(r); },
      .stop = [c = *client](std::function<void()> done) { c->stop(done); },
  });
  examples::Collector::stop_on_signals();
  (*client)->start();
  std::thread io([&ioc] { ioc.run(); });
  const int code = sink.run();
  io.join();  // run() stopped the client: the io_context has no more work

  const examples::kis::KisCodecStats& cs = codec->stats();
  std::uint64_t rejected = 0;
  for (auto n : cs.rejected.by_reason) rejected += n;
  const examples::CollectorSummary s = sink.summary();
  std::fprintf(stderr,
               "[kis] done: trades=%llu books=%llu gaps=%llu drops=%llu "
               "rejected_frames=%llu\n",
               static_cast<unsigned long long>(s.trades),
               static_cast<unsigned long long>(s.books),
               static_cast<unsigned long long>(s.gaps),
               static_cast<unsigned long long>(s.dropped),
               static_cast<unsigned long long>(rejected));
  return code;
}

}  // namespace

int main(int argc, char** argv) { return run(argc, argv); }
