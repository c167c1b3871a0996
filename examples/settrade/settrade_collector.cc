// SPDX-License-Identifier: Apache-2.0
//
// settrade_collector: collects Settrade Open API v2 10-level books
// (BidOfferV3 on proto/topic/bidofferv3/{SYMBOL}) into JSON Lines, following
// the collector contract (README).
//
//   login       POST {--rest-url}/api/oam/v1/{broker}/broker-apps/
//               {--app-code}/login, signed with the app secret (ECDSA P-256)
//               → access token (kept until it expires or is refused)
//   dispatcher  GET {--rest-url}/api/dispatcher/v3/{broker}/token with the
//               access token → hosts and the dispatcher token, on every
//               connect (a refused access token: log in again, once)
//   MQTT        feedkit::MqttClient over wss://{hosts[0]}:443/api/
//               dispatcher/v3/{broker}/mqtt (or --ws-url), the dispatcher
//               token as "Authorization: Bearer" on the WebSocket upgrade,
//               MQTT 3.1.1, QoS 0, every topic subscribed again per connect
//   payloads    SettradeCodec (--money-layout) → Book → examples::Collector
//
// Broker id SANDBOX is UAT (https://open-api-test.settrade.com, broker 098).
//
// Usage:
//   settrade_collector --symbols AOT,PTT --out books.jsonl
//       --broker-id SANDBOX --app-code ALGO
//   (SETTRADE_APP_ID and SETTRADE_APP_SECRET in the environment)
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange
#include <vector>

#include "collector/collector.h"
#include "collector/flags.h"
#include "collector/http_post.h"
#include "feedkit/mqtt_client.h"
#include "settrade/settrade_codec.h"

namespace {

namespace settrade = examples::settrade;
using feedkit::SteadyClock;

void declare_flags(examples::Flags& flags) {
  examples::add_collector_flags(flags);
  flags.add({.name = "broker-id",
             .help = "broker id (SANDBOX: UAT with broker 098)",
             .env = "SETTRADE_BROKER_ID",
             .default_value = "SANDBOX"});
  flags.add({.name = "app-code",
             .help = "application code (the console's app_code)",
             .env = "SETTRADE_APP_CODE",
             .required = true});
  flags.add({.name = "app-id",
             .help = "application id (the login's apiKey)",
             .env = "SETTRADE_APP_ID",
             .required = true,
             .secret = true});
  flags.add({.name = "app-secret",
             .help = "application secret (base64 P-256 private key)",
             .env = "SETTRADE_APP_SECRET",
             .required = true,
             .secret = true});
  flags.add({.name = "rest-url",
             .help = "REST base (default: the broker id's environment)",
             .env = "SETTRADE_REST_URL"});
  flags.add({.name = "ws-url",
             .help = "MQTT WebSocket URL (default: wss://{hosts[0]}:443/"
                     "api/dispatcher/v3/{broker}/mqtt from the dispatcher)",
             .env = "SETTRADE_WS_URL"});
  flags.add({.name = "money-layout",
             .help = "Money numbering: google (units=2, nanos=3) or "
                     "units-first (units=1, nanos=2) [unverified]",
             .default_value = "google"});
  flags.add({.name = "keepalive-s",
             .help = "MQTT keepalive; a link silent this long is a stall",
             .default_value = "30"});
  flags.add({.name = "ca-file", .help = "PEM bundle to trust for https/wss"});
}

struct Account {
  std::string rest_url;   // no trailing slash
  std::string broker_id;  // as in paths (SANDBOX → 098)
  std::string app_code;
  std::string app_id;      // secret
  std::string app_secret;  // secret
  std::string ca_file;
};

// Logs in and fetches a dispatcher token per connect, on a thread of its own
// (the calls block); keeps the access token until it expires or is refused.
class TokenSource : public std::enable_shared_from_this<TokenSource> {
 public:
  explicit TokenSource(Account account) : account_(std::move(account)) {}

  // Returns hosts[0] of a dispatcher reply (logging in first).
  absl::StatusOr<std::string> first_host() {
    std::lock_guard<std::mutex> lock(mu_);
    auto grant = fetch_grant(false);
    if (!grant.ok()) return grant.status();
    return grant->hosts.front();
  }

  feedkit::CredentialsProvider provider() {
    // The fetch thread keeps this object alive (it may outlast the client).
    return [self = shared_from_this()](bool force_refresh, auto done) {
      std::thread([self, force_refresh, done = std::move(done)] {
        done(self->dispatcher_token(force_refresh));
      }).detach();
    };
  }

 private:
  absl::StatusOr<feedkit::Credentials> dispatcher_token(bool force_refresh) {
    std::lock_guard<std::mutex> lock(mu_);
    auto grant = fetch_grant(force_refresh);
    if (!grant.ok()) return grant.status();
    // The dispatcher token's lifetime is not documented: take the access
    // token's (refreshed refresh_lead before it ends).
    return feedkit::Credentials{std::move(grant->token), access_expires_};
  }

  // Under mu_.
  absl::StatusOr<settrade::DispatcherGrant> fetch_grant(bool force_refresh) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      const bool fresh_login =
          force_refresh || attempt > 0 || access_.access_token.empty() ||
          SteadyClock::now() + std::chrono::seconds(60) >= access_expires_;
      if (fresh_login) {
        if (absl::Status s = login(); !s.ok()) return s;
      }
      examples::HttpPostOptions get;
      get.method = "GET";
      get.ca_file = account_.ca_file;
      get.headers = {
          {"Authorization", settrade::authorization_header(
                                access_.token_type, access_.access_token)}};
      auto reply = examples::http_post_json(
          account_.rest_url + settrade::dispatcher_path(account_.broker_id), "",
          get);
      if (!reply.ok()) return reply.status();
      if (reply->status == 401 && !fresh_login) continue;  // log in again
      if (reply->status != 200) {
        return absl::UnavailableError("dispatcher: HTTP " +
                                      std::to_string(reply->status));
      }
      return settrade::parse_dispatcher_response(reply->body);
    }
    return absl::UnauthenticatedError("dispatcher: access token refused");
  }

  absl::Status login() {
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    auto body = settrade::login_request_body(account_.app_id,
                                             account_.app_secret, "", now_ms);
    if (!body.ok()) return body.status();
    examples::HttpPostOptions options;
    options.ca_file = account_.ca_file;
    auto reply = examples::http_post_json(
        account_.rest_url +
            settrade::login_path(account_.broker_id, account_.app_code),
        *body, options);
    if (!reply.ok()) return reply.status();
    auto token = settrade::parse_login_response(reply->body);
    if (reply->status != 200 || !token.ok()) {
      return absl::UnauthenticatedError(
          "login: HTTP " + std::to_string(reply->status) +
          (token.ok() ? "" : ": " + std::string(token.status().message())));
    }
    access_ = *std::move(token);
    access_expires_ =
        SteadyClock::now() + std::chrono::seconds(access_.expires_in > 0
                                                      ? access_.expires_in
                                                      : 3600);  // not given
    return absl::OkStatus();
  }

  const Account account_;
  std::mutex mu_;  // one fetch at a time
  settrade::AccessToken access_;
  feedkit::SteadyTime access_expires_{};
};

int run(int argc, char** argv) {
  examples::Flags flags(
      "settrade_collector",
      "Collects Settrade realtime 10-level books as JSON Lines.");
  declare_flags(flags);
  if (auto s = flags.parse(argc, argv); !s.ok()) return flags.fail(s);
  auto options = examples::collector_options(flags, "settrade");
  if (!options.ok()) return flags.fail(options.status());
  options->keys_of = [](std::string_view symbol) {
    return std::vector<std::string>{settrade::bid_offer_topic(symbol)};
  };
  settrade::SettradeCodecOptions codec_options;
  const std::string layout = flags.get("money-layout");
  if (layout == "units-first") {
    codec_options.money_layout = settrade::MoneyLayout::units_first;
  } else if (layout != "google") {
    return flags.fail(absl::InvalidArgumentError(
        "--money-layout: wants google or units-first, got '" + layout + "'"));
  }
  auto keepalive = flags.integer("keepalive-s", 1, 65'535);
  if (!keepalive.ok()) return flags.fail(keepalive.status());

  const settrade::Environment env =
      settrade::environment_for(flags.get("broker-id"));
  Account account{
      .rest_url = flags.has("rest-url") ? flags.get("rest-url") : env.base_url,
      .broker_id = env.broker_id,
      .app_code = flags.get("app-code"),
      .app_id = flags.get("app-id"),
      .app_secret = flags.get("app-secret"),
      .ca_file = flags.get("ca-file")};
  while (!account.rest_url.empty() && account.rest_url.back() == '/') {
    account.rest_url.pop_back();
  }
  // A bad secret is a bad flag: found now, not at the first connect.
  if (auto s =
          settrade::login_signature(account.app_id, account.app_secret, "", 0);
      !s.ok()) {
    return flags.fail(absl::InvalidArgumentError(
        "--app-secret: " + std::string(s.status().message())));
  }

  // Declared before the collector, which keeps the client (and its timers
  // on this io_context) until it is destroyed.
  boost::asio::io_context ioc;
  auto collector = examples::Collector::create(*options);
  if (!collector.ok()) return flags.fail(collector.status());
  auto codec = settrade::SettradeCodec::create(codec_options);
  if (!codec.ok()) return flags.fail(codec.status());

  auto tokens = std::make_shared<TokenSource>(account);
  feedkit::MqttClientOptions mqtt;
  if (flags.has("ws-url")) {
    mqtt.uri = flags.get("ws-url");
  } else {
    // The URL is fixed for the client's life: ask the dispatcher for
    // hosts[0] once now (its token is fetched again at each connect).
    auto host = tokens->first_host();
    if (!host.ok()) {
      std::fprintf(stderr, "settrade_collector: %s\n",
                   std::string(host.status().message()).c_str());
      return 1;
    }
    mqtt.uri = settrade::mqtt_url(*host, account.broker_id);
  }
  mqtt.credential_use = feedkit::CredentialUse::bearer_header;
  mqtt.ca_file = account.ca_file;
  mqtt.keepalive = std::chrono::seconds(*keepalive);
  // lumduan: the gateway drops a connection whose token expired.
  mqtt.reconnect_on_refresh = true;
  mqtt.refresh_lead = std::chrono::seconds(100);

  examples::Collector& sink = **collector;
  feedkit::MqttClientCallbacks callbacks;
  callbacks.on_message =
      [&sink, &codec, events = std::vector<examples::MarketEvent>()](
          std::string_view topic, std::string_view payload,
          feedkit::SteadyTime recv, std::uint64_t epoch) mutable {
        events.clear();
        if (!codec->decode_bid_offer(topic, payload, events).ok()) {
          sink.on_rejected_frame();
          return;
        }
        for (const auto& e : events) sink.on_event(e, epoch, recv);
      };
  callbacks.on_gap = [&sink](const feedkit::GapEvent& gap) {
    sink.on_gap(gap);
  };
  callbacks.on_rejected = [](std::string_view topic, std::string_view why) {
    std::fprintf(stderr, "[settrade] subscription refused: %.*s (%.*s)\n",
                 static_cast<int>(topic.size()), topic.data(),
                 static_cast<int>(why.size()), why.data());
  };

  auto client =
      feedkit::MqttClient::create(ioc, mqtt, tokens->provider(), callbacks);
  if (!client.ok()) return flags.fail(client.status());
  return examples::run_with(sink, ioc, *client);
}

}  // namespace

int main(int argc, char** argv) { return run(argc, argv); }
