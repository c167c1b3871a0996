// SPDX-License-Identifier: Apache-2.0
//
// examples/settrade/settrade_codec.h
//
// The wire codec of Settrade Open API v2 realtime data
// (reference/broker-protocols.md §3): pure functions and one stateful
// decoder, no I/O. The transport is MQTT 3.1.1 over WSS (feedkit::mqtt).
//
//   REST       login_request_body(): {"apiKey","params","signature",
//              "timestamp"} signed with ECDSA P-256 / SHA-256 over
//              "{app_id}.{params}.{timestamp}" (the app secret is the raw
//              private scalar in base64, padding optional); the login reply
//              (snake_case or camelCase, both seen) and the dispatcher reply
//              {"hosts":[…],"token":…}.
//   Connection mqtt_url() = wss://{hosts[0]}:443/api/dispatcher/v3/{broker}/
//              mqtt, with authorization_header() "Bearer <dispatcher token>"
//              on the WebSocket upgrade (not in MQTT username/password).
//   Topics     bid_offer_topic("aot") = "proto/topic/bidofferv3/AOT".
//   Payloads   raw proto3 BidOfferV3 (settrade_realtime.proto):
//              SettradeCodec::decode_bid_offer() → one 10-level Book. Zero
//              values are omitted on the wire (a missing price or volume is
//              0); ATO/ATC flags become QuoteCondition (prices are usually 0
//              then). There is no exchange time in BidOfferV3.
//
// The Money numbering is not settled (§3.4): google.type.Money {units=2,
// nanos=3} (default, recommended) or {units=1, nanos=2} [UNVERIFIED]; choose
// with SettradeCodecOptions::money_layout. A Money that carries fields the
// chosen layout does not have is rejected as money_layout_mismatch, so a
// wrong choice shows up in stats instead of as silently wrong prices (except
// for a units-first Money whose units are 0, which google layout reads as
// units = nanos: verify against a capture).
//
// Guarantees: any payload is either decoded or rejected with exactly one
// SettradeError, counted in stats(); a rejection appends nothing. Never
// throws, never reads outside the payload. Secrets (app secret, tokens)
// never appear in errors or stats.
//
// Thread safety: the free functions are thread-safe; SettradeCodec is
// thread-compatible (use it from one thread, e.g. the MQTT consumer's).
//
// Example:
//   auto codec = examples::settrade::SettradeCodec::create({}).value();
//   std::vector<examples::MarketEvent> events;
//   auto result = codec.decode_bid_offer(message.topic, message.payload,
//   events);
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/codec_stats.h"
#include "common/market_events.h"

namespace examples::settrade {

namespace pb {
class BidOfferV3Wire;  // generated from settrade_realtime.proto
class Money;
class MoneyUnitsFirst;
}  // namespace pb

inline constexpr std::string_view kBidOfferTopicPrefix =
    "proto/topic/bidofferv3/";
// Subscribe errors arrive here; their payload format is unknown (§3.3).
inline constexpr std::string_view kSubscribeErrorTopic =
    "$sys/u/_broker/_uref/error/subscribe";

// --- REST and connection
// ------------------------------------------------------

struct Environment {
  std::string base_url;   // https://open-api.settrade.com or the UAT host
  std::string broker_id;  // as sent in paths
};
// Returns where `broker_id` logs in: "SANDBOX" is UAT
// (https://open-api-test.settrade.com) with broker id "098"; any other id
// is production with itself.
Environment environment_for(std::string_view broker_id);

// Returns /api/oam/v1/{broker_id}/broker-apps/{app_code}/login.
std::string login_path(std::string_view broker_id, std::string_view app_code);
// Returns /api/dispatcher/v3/{broker_id}/token.
std::string dispatcher_path(std::string_view broker_id);

// Returns the hex of the DER ECDSA P-256 signature (SHA-256) of
// "{app_id}.{params}.{timestamp_ms}" with the private scalar `app_secret`
// (base64, padding optional), or kInvalidArgument if the secret is not a
// valid P-256 private key (the message never shows it).
absl::StatusOr<std::string> login_signature(std::string_view app_id,
                                            std::string_view app_secret,
                                            std::string_view params,
                                            std::int64_t timestamp_ms);

// Returns whether `signature_hex` is login_signature()'s signature of
// "{app_id}.{params}.{timestamp_ms}" under `app_secret`'s public key (what a
// server checks; any valid DER ECDSA signature verifies, not only the one
// login_signature() made). Errors as login_signature().
absl::StatusOr<bool> verify_login_signature(std::string_view app_id,
                                            std::string_view app_secret,
                                            std::string_view params,
                                            std::int64_t timestamp_ms,
                                            std::string_view signature_hex);

// Returns the JSON body of POST login_path(): {"apiKey":app_id,
// "params":params,"signature":…,"timestamp":"<ms>"}. Errors as
// login_signature().
absl::StatusOr<std::string> login_request_body(std::string_view app_id,
                                               std::string_view app_secret,
                                               std::string_view params,
                                               std::int64_t timestamp_ms);

struct AccessToken {
  std::string token_type = "Bearer";
  std::string access_token;     // secret
  std::string refresh_token;    // secret; may be empty
  std::int64_t expires_in = 0;  // seconds; 0 = not given
};
// Returns the token of a login reply: token_type, access_token,
// refresh_token, expires_in, or their camelCase forms (accessToken, …),
// which one third-party fake uses [UNVERIFIED]. kInvalidArgument /
// kNotFound otherwise, naming the broker's "code" if it sent one and never
// a token.
absl::StatusOr<AccessToken> parse_login_response(std::string_view body);

struct DispatcherGrant {
  std::vector<std::string> hosts;  // non-empty; connect to hosts[0]
  std::string token;               // secret
};
// Returns the hosts and token of a dispatcher reply, or kInvalidArgument /
// kNotFound.
absl::StatusOr<DispatcherGrant> parse_dispatcher_response(
    std::string_view body);

// Returns "<Token_type> <token>" with the type capitalised ("bearer x" →
// "Bearer x"), for the Authorization header of the WebSocket upgrade.
std::string authorization_header(std::string_view token_type,
                                 std::string_view token);

// Returns wss://{host}:443/api/dispatcher/v3/{broker_id}/mqtt.
std::string mqtt_url(std::string_view host, std::string_view broker_id);

// Returns proto/topic/bidofferv3/{SYMBOL}, the symbol upper-cased.
std::string bid_offer_topic(std::string_view symbol);
// Returns the symbol of a bid/offer topic, or nullopt for any other topic.
std::optional<std::string_view> bid_offer_symbol(
    std::string_view topic) noexcept;

// --- Payloads
// -----------------------------------------------------------------

enum class MoneyLayout : std::uint8_t {
  google_type_money,  // {currency_code=1, units=2, nanos=3}: the SDK's type
  units_first,        // {units=1, nanos=2} [UNVERIFIED]
};

struct SettradeCodecOptions {
  MoneyLayout money_layout = MoneyLayout::google_type_money;
  // Reject a payload whose symbol differs from its topic's. (An empty
  // payload symbol, omitted on the wire, always takes the topic's.)
  bool require_symbol_match = true;

  static SettradeCodecOptions suggested() { return {}; }
  // Returns OK (every combination is valid); here for the convention.
  absl::Status validate() const { return absl::OkStatus(); }
};

// Why a payload was rejected. Names (to_string) are stable, for stats.
enum class SettradeError : std::uint8_t {
  none,
  bad_topic,              // not proto/topic/bidofferv3/{SYMBOL}
  too_large,              // over kMaxPayloadBytes
  bad_protobuf,           // not a parseable BidOfferV3 (or Money)
  bad_symbol,             // not 1-31 printable ASCII characters
  symbol_mismatch,        // payload symbol ≠ topic symbol
  money_layout_mismatch,  // a Money with fields the chosen layout lacks
  bad_money,              // nanos out of range, signs disagree, or out of range
  bad_price,              // a negative price
  bad_volume,             // a negative volume
};
inline constexpr std::size_t kSettradeErrorCount = 10;
std::string_view to_string(SettradeError error) noexcept;

struct SettradeCodecStats {
  std::uint64_t messages = 0;  // decode_bid_offer() calls
  std::uint64_t books = 0;     // accepted
  RejectCounts<SettradeError, kSettradeErrorCount> rejected;
};

class SettradeCodec {
 public:
  static constexpr std::size_t kMaxPayloadBytes = 1 << 20;

  // Returns a codec, or an error for bad options.
  static absl::StatusOr<SettradeCodec> create(
      SettradeCodecOptions options = SettradeCodecOptions::suggested());

  SettradeCodec(SettradeCodec&&) noexcept;
  SettradeCodec& operator=(SettradeCodec&&) noexcept;
  ~SettradeCodec();

  // Decodes one BidOfferV3 PUBLISH (`topic`, `payload`), appending one Book
  // to `out`; on a rejection appends nothing. Counted in stats().
  DecodeResult<SettradeError> decode_bid_offer(std::string_view topic,
                                               std::string_view payload,
                                               std::vector<MarketEvent>& out);

  const SettradeCodecStats& stats() const noexcept { return stats_; }

 private:
  explicit SettradeCodec(SettradeCodecOptions options);
  SettradeError decode(std::string_view topic, std::string_view payload,
                       Book& book);
  SettradeError read_money(const std::string& bytes, Price& price);

  SettradeCodecOptions options_;
  SettradeCodecStats stats_;
  // Reused messages: no allocation per payload once warm.
  std::unique_ptr<pb::BidOfferV3Wire> wire_;
  std::unique_ptr<pb::Money> money_;
  std::unique_ptr<pb::MoneyUnitsFirst> money_units_first_;
};

}  // namespace examples::settrade
