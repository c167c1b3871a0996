// Test that header file is self-contained.
#include "settrade/settrade_codec.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/base64.h"
#include "common/json_reader.h"
#include "settrade_realtime.pb.h"
#include "support/broker_samples.h"
#include "support/count_allocations.h"

// Sample payloads are those of reference/broker-protocols.md §3.6 (encoded
// with google.type.Money and decode-checked there), plus snapshots built
// with the generated classes of settrade_realtime.proto.

namespace examples::settrade {
namespace {

using samples::kSettradeBidOfferHex;
using samples::kSettradeInfoHex;

constexpr std::string_view kTopic = "proto/topic/bidofferv3/AOT";

std::string from_hex(std::string_view hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(
        std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  }
  return out;
}

Price price(std::string_view text) { return *parse_price(text); }

void set_money(pb::Money* money, std::int64_t units, std::int32_t nanos) {
  money->set_units(units);
  money->set_nanos(nanos);
}

std::string money_units_first(std::int64_t units, std::int32_t nanos) {
  pb::MoneyUnitsFirst money;
  money.set_units(units);
  money.set_nanos(nanos);
  return money.SerializeAsString();
}

SettradeCodec make_codec(SettradeCodecOptions options = {}) {
  return SettradeCodec::create(options).value();
}

// Decodes one payload that must be accepted.
Book decode_ok(SettradeCodec& codec, std::string_view payload,
               std::string_view topic = kTopic) {
  std::vector<MarketEvent> events;
  const auto result = codec.decode_bid_offer(topic, payload, events);
  EXPECT_TRUE(result.ok()) << to_string(result.error);
  if (events.size() != 1) return {};
  return std::get<Book>(events[0]);
}

// --- Payloads
// -------------------------------------------------------------------

TEST(SettradeCodec, DecodesTheReferenceBidOffer) {
  SettradeCodec codec = make_codec();
  const Book b = decode_ok(codec, from_hex(kSettradeBidOfferHex));
  EXPECT_EQ(b.symbol.view(), "AOT");
  EXPECT_EQ(b.bids[0], (Level{price("61.25"), 10000}));
  EXPECT_EQ(b.asks[0], (Level{price("61.5"), 25300}));
  for (std::size_t i = 1; i < kBookDepth; ++i) {
    EXPECT_EQ(b.bids[i], Level{}) << i;  // omitted on the wire: zero
    EXPECT_EQ(b.asks[i], Level{}) << i;
  }
  EXPECT_EQ(b.bid_condition, QuoteCondition::normal);
  EXPECT_EQ(b.ask_condition, QuoteCondition::normal);
  EXPECT_EQ(b.time, ExchangeTime{});  // BidOfferV3 carries no time
  EXPECT_EQ(b.cumulative_volume, std::nullopt);
  EXPECT_EQ(codec.stats().books, 1u);
}

TEST(SettradeCodec, OurProtoReadsTheReferenceInfoPayload) {
  // The schema check for the numbering the bid/offer decoder shares.
  pb::InfoV3 info;
  ASSERT_TRUE(info.ParseFromString(from_hex(kSettradeInfoHex)));
  EXPECT_EQ(info.symbol(), "AOT");
  EXPECT_EQ(info.high().units(), 62);
  EXPECT_EQ(info.low().units(), 60);
  EXPECT_EQ(info.low().nanos(), 750'000'000);
  EXPECT_EQ(info.last().nanos(), 250'000'000);
  EXPECT_EQ(info.total_volume(), 12'345'600);
  EXPECT_EQ(info.change().units(), 0);
  EXPECT_EQ(info.change().nanos(), 500'000'000);
  EXPECT_EQ(info.total_value().units(), 756'123'456);
  EXPECT_EQ(info.market_status(), 5);
}

TEST(SettradeCodec, DecodesAFullSnapshotBuiltWithTheTypedMessage) {
  pb::BidOfferV3 message;
  message.set_symbol("PTT");
  const auto* descriptor = message.GetDescriptor();
  const auto* reflection = message.GetReflection();
  for (int i = 1; i <= 10; ++i) {
    const std::string n = std::to_string(i);
    // bid 33.75 − 0.25·(i−1), ask 34.00 + 0.25·(i−1); volumes 1000·i, 2000·i.
    const std::int64_t bid_quarters = 135 - (i - 1);
    const std::int64_t ask_quarters = 136 + (i - 1);
    set_money(static_cast<pb::Money*>(reflection->MutableMessage(
                  &message, descriptor->FindFieldByName("bid_price" + n))),
              bid_quarters / 4,
              static_cast<std::int32_t>(bid_quarters % 4) * 250'000'000);
    set_money(static_cast<pb::Money*>(reflection->MutableMessage(
                  &message, descriptor->FindFieldByName("ask_price" + n))),
              ask_quarters / 4,
              static_cast<std::int32_t>(ask_quarters % 4) * 250'000'000);
    reflection->SetInt64(
        &message, descriptor->FindFieldByName("bid_volume" + n), 1000 * i);
    reflection->SetInt64(
        &message, descriptor->FindFieldByName("ask_volume" + n), 2000 * i);
  }
  message.set_bid_flag(pb::NORMAL);
  message.set_ask_flag(pb::NORMAL);
  SettradeCodec codec = make_codec();
  const Book b = decode_ok(codec, message.SerializeAsString(),
                           "proto/topic/bidofferv3/PTT");
  EXPECT_EQ(b.symbol.view(), "PTT");
  for (std::size_t i = 0; i < kBookDepth; ++i) {
    const auto n = static_cast<std::int64_t>(i);
    EXPECT_EQ(b.bids[i].price, Price::from_nanos((135 - n) * 250'000'000)) << i;
    EXPECT_EQ(b.asks[i].price, Price::from_nanos((136 + n) * 250'000'000)) << i;
    EXPECT_EQ(b.bids[i].quantity, 1000 * (n + 1));
    EXPECT_EQ(b.asks[i].quantity, 2000 * (n + 1));
  }
  EXPECT_EQ(b.bids[0].price, price("33.75"));
  EXPECT_EQ(b.asks[9].price, price("36.25"));
}

TEST(SettradeCodec, ReadsOmittedFieldsAsZero) {
  SettradeCodec codec = make_codec();
  // Everything omitted, even the symbol: the topic names it.
  const Book empty = decode_ok(codec, "");
  EXPECT_EQ(empty.symbol.view(), "AOT");
  EXPECT_EQ(empty.bids[0], Level{});
  EXPECT_EQ(empty.bid_condition, QuoteCondition::unspecified);

  pb::BidOfferV3 message;
  message.mutable_bid_price1()->set_units(62);           // nanos omitted
  message.mutable_ask_price1()->set_nanos(500'000'000);  // units omitted
  message.mutable_bid_price2();                          // an empty Money: 0
  message.set_ask_volume1(7);                            // bid_volume1 omitted
  const Book b = decode_ok(codec, message.SerializeAsString());
  EXPECT_EQ(b.bids[0], (Level{price("62"), 0}));
  EXPECT_EQ(b.asks[0], (Level{price("0.5"), 7}));
  EXPECT_EQ(b.bids[1], Level{});
}

TEST(SettradeCodec, MapsAuctionFlags) {
  pb::BidOfferV3 message;
  message.set_symbol("AOT");
  message.set_bid_flag(pb::ATO);
  message.set_ask_flag(pb::ATC);
  message.set_bid_volume1(500);  // auction: volume without a price
  SettradeCodec codec = make_codec();
  Book b = decode_ok(codec, message.SerializeAsString());
  EXPECT_EQ(b.bid_condition, QuoteCondition::opening_auction);
  EXPECT_EQ(b.ask_condition, QuoteCondition::closing_auction);
  EXPECT_EQ(b.bids[0], (Level{Price(), 500}));
  pb::BidOfferV3Wire unknown;
  unknown.set_bid_flag(9);
  b = decode_ok(codec, unknown.SerializeAsString());
  EXPECT_EQ(b.bid_condition, QuoteCondition::unspecified);
}

TEST(SettradeCodec, SwitchesTheMoneyNumbering) {
  pb::BidOfferV3Wire message;
  message.set_symbol("AOT");
  message.set_bid_price1(money_units_first(61, 250'000'000));
  message.set_ask_price1(money_units_first(61, 500'000'000));
  message.set_bid_volume1(10000);
  const std::string units_first_payload = message.SerializeAsString();

  SettradeCodec units_first =
      make_codec({.money_layout = MoneyLayout::units_first});
  const Book b = decode_ok(units_first, units_first_payload);
  EXPECT_EQ(b.bids[0], (Level{price("61.25"), 10000}));
  EXPECT_EQ(b.asks[0].price, price("61.5"));

  // The wrong choice is counted, not turned into wrong prices.
  std::vector<MarketEvent> events;
  SettradeCodec google = make_codec();
  EXPECT_EQ(google.decode_bid_offer(kTopic, units_first_payload, events).error,
            SettradeError::money_layout_mismatch);
  EXPECT_EQ(
      units_first
          .decode_bid_offer(kTopic, from_hex(kSettradeBidOfferHex), events)
          .error,
      SettradeError::money_layout_mismatch);
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(google.stats().rejected[SettradeError::money_layout_mismatch], 1u);
}

TEST(SettradeCodec, RejectsBadPayloadsWithTheirReason) {
  const auto with = [](auto&& edit) {
    pb::BidOfferV3 message;
    message.set_symbol("AOT");
    edit(message);
    return message.SerializeAsString();
  };
  const std::string reference = from_hex(kSettradeBidOfferHex);
  struct Case {
    std::string topic;
    std::string payload;
    SettradeError error;
  };
  const Case cases[] = {
      {"proto/topic/infov3/AOT", reference, SettradeError::bad_topic},
      {"proto/topic/bidofferv3/", reference, SettradeError::bad_topic},
      {"proto/topic/bidofferv3/AOT/x", reference, SettradeError::bad_topic},
      {std::string(kTopic), reference.substr(0, reference.size() - 2),
       SettradeError::bad_protobuf},
      {std::string(kTopic), "\xff\xff\xff", SettradeError::bad_protobuf},
      {std::string(kTopic),
       std::string(SettradeCodec::kMaxPayloadBytes + 1, '\0'),
       SettradeError::too_large},
      {"proto/topic/bidofferv3/PTT", reference, SettradeError::symbol_mismatch},
      {std::string(kTopic),
       with([](pb::BidOfferV3& m) { m.set_symbol("A OT"); }),
       SettradeError::symbol_mismatch},
      {"proto/topic/bidofferv3/A OT",
       with([](pb::BidOfferV3& m) { m.set_symbol("A OT"); }),
       SettradeError::bad_symbol},
      {std::string(kTopic), with([](pb::BidOfferV3& m) {
         set_money(m.mutable_bid_price3(), 1, 1'000'000'000);
       }),
       SettradeError::bad_money},
      {std::string(kTopic), with([](pb::BidOfferV3& m) {
         set_money(m.mutable_ask_price7(), 1, -5);
       }),
       SettradeError::bad_money},
      {std::string(kTopic), with([](pb::BidOfferV3& m) {
         set_money(m.mutable_ask_price7(), INT64_MAX, 0);
       }),
       SettradeError::bad_money},
      {std::string(kTopic), with([](pb::BidOfferV3& m) {
         set_money(m.mutable_bid_price10(), -1, 0);
       }),
       SettradeError::bad_price},
      {std::string(kTopic),
       with([](pb::BidOfferV3& m) { m.set_ask_volume6(-1); }),
       SettradeError::bad_volume},
  };
  SettradeCodec codec = make_codec();
  for (const Case& c : cases) {
    std::vector<MarketEvent> events;
    EXPECT_EQ(codec.decode_bid_offer(c.topic, c.payload, events).error, c.error)
        << c.topic << " " << to_string(c.error);
    EXPECT_TRUE(events.empty());
  }
  EXPECT_EQ(codec.stats().rejected.total(), std::size(cases));
  EXPECT_EQ(codec.stats().messages, std::size(cases));
}

TEST(SettradeCodec, TakesThePayloadSymbolWhenMatchingIsOff) {
  SettradeCodec codec = make_codec({.require_symbol_match = false});
  const Book b = decode_ok(codec, from_hex(kSettradeBidOfferHex),
                           "proto/topic/bidofferv3/OTHER");
  EXPECT_EQ(b.symbol.view(), "AOT");
}

TEST(SettradeCodec, DecodingAllocatesNothingOnceWarm) {
  SettradeCodec codec = make_codec();
  const std::string payload = from_hex(kSettradeBidOfferHex);
  std::vector<MarketEvent> events;
  events.reserve(1);
  ASSERT_TRUE(codec.decode_bid_offer(kTopic, payload, events).ok());
  feedkit::testing::AllocationCounter allocations;
  for (int i = 0; i < 100; ++i) {
    events.clear();
    ASSERT_TRUE(codec.decode_bid_offer(kTopic, payload, events).ok());
  }
  EXPECT_EQ(allocations.count(), 0);
}

// --- REST and connection
// ------------------------------------------------------

// A P-256 key made at test-writing time with
//   openssl ecparam -name prime256v1 -genkey -noout -out key.pem
// kAppSecret is its private scalar in base64 (as the Settrade console gives
// it); kPublicKeyDer the SubjectPublicKeyInfo (openssl ec -pubout), base64.
constexpr std::string_view kAppSecret =
    "g1wqlEC2wIeEpxzOOF+ZvpwW9ewHDkDWK/0iqSpLcQw=";
constexpr std::string_view kPublicKeyDer =
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqRs1gYJR0Rd35fRHJp8fY/AFe74lRaYl/"
    "sid3jGeGc9tESEhYGiUjLoSmWjilslcmrfYYQHoceOtcrIADv2CIA==";

// Returns true if `hex_signature` is a valid DER ECDSA signature of
// `message` under the test key.
bool verifies(std::string_view message, std::string_view hex_signature) {
  std::string der;
  if (!base64_decode(kPublicKeyDer, der)) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())), &EVP_PKEY_free);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                              &EVP_MD_CTX_free);
  const std::string signature = from_hex(hex_signature);
  return key && ctx &&
         EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr,
                              key.get()) == 1 &&
         EVP_DigestVerify(
             ctx.get(),
             reinterpret_cast<const unsigned char*>(signature.data()),
             signature.size(),
             reinterpret_cast<const unsigned char*>(message.data()),
             message.size()) == 1;
}

TEST(SettradeRest, SignsTheLoginWithTheAppSecret) {
  const auto signature =
      login_signature("APPID", kAppSecret, "", 1752550000123);
  ASSERT_TRUE(signature.ok()) << signature.status();
  EXPECT_TRUE(verifies("APPID..1752550000123", *signature));
  EXPECT_FALSE(verifies("APPID..1752550000124", *signature));
  // The console's secret may lack its base64 padding.
  const std::string unpadded(kAppSecret.substr(0, kAppSecret.size() - 1));
  const auto again = login_signature("APPID", unpadded, "p", 5);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(verifies("APPID.p.5", *again));
}

TEST(SettradeRest, BuildsTheLoginBody) {
  const auto body = login_request_body("APPID", kAppSecret, "", 1752550000123);
  ASSERT_TRUE(body.ok()) << body.status();
  json::Document doc;
  ASSERT_EQ(doc.parse(*body), json::JsonError::none);
  EXPECT_EQ(doc.root()["apiKey"].plain_string(), "APPID");
  EXPECT_EQ(doc.root()["params"].plain_string(), "");
  EXPECT_EQ(doc.root()["timestamp"].plain_string(), "1752550000123");
  const auto signature = doc.root()["signature"].plain_string();
  ASSERT_TRUE(signature);
  EXPECT_TRUE(verifies("APPID..1752550000123", *signature));
  EXPECT_EQ(body->find(kAppSecret), std::string::npos);
}

TEST(SettradeRest, RejectsSecretsThatAreNoP256KeyWithoutShowingThem) {
  const std::string zero = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
  // n, the group order: one past the largest valid scalar.
  const std::string order = "/////wAAAAD//////////7zm+q2nF56E87nKwvxjJVE=";
  const std::string too_long =
      std::string(kAppSecret.substr(0, 40)) + "AAAAAAAA";
  for (const std::string& secret :
       {std::string("not base64!"), zero, order, too_long}) {
    const auto signature = login_signature("APPID", secret, "", 1);
    ASSERT_FALSE(signature.ok()) << secret;
    EXPECT_EQ(signature.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(signature.status().message().find(secret), std::string::npos);
  }
}

TEST(SettradeRest, ParsesLoginRepliesInBothSpellings) {
  auto token = parse_login_response(
      R"({"token_type":"Bearer","access_token":"A","refresh_token":"R",)"
      R"("expires_in":3600})");
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->token_type, "Bearer");
  EXPECT_EQ(token->access_token, "A");
  EXPECT_EQ(token->refresh_token, "R");
  EXPECT_EQ(token->expires_in, 3600);
  token = parse_login_response(R"({"accessToken":"B","expiresIn":"60"})");
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->access_token, "B");
  EXPECT_EQ(token->token_type, "Bearer");
  EXPECT_EQ(token->expires_in, 60);

  const auto refused = parse_login_response(
      R"({"code":"OAM-401","message":"bad signature SECRETSIG"})");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("OAM-401"), std::string::npos);
  EXPECT_EQ(refused.status().message().find("SECRETSIG"), std::string::npos);
  EXPECT_FALSE(
      parse_login_response(R"({"access_token":"A","expires_in":-1})").ok());
  EXPECT_FALSE(parse_login_response("access_token=A").ok());
}

TEST(SettradeRest, ParsesTheDispatcherReply) {
  const auto grant =
      parse_dispatcher_response(R"({"hosts":["127.0.0.1","h2"],"token":"D"})");
  ASSERT_TRUE(grant.ok()) << grant.status();
  EXPECT_EQ(grant->hosts, (std::vector<std::string>{"127.0.0.1", "h2"}));
  EXPECT_EQ(grant->token, "D");
  EXPECT_FALSE(parse_dispatcher_response(R"({"hosts":[],"token":"D"})").ok());
  EXPECT_FALSE(parse_dispatcher_response(R"({"hosts":[5],"token":"D"})").ok());
  EXPECT_FALSE(parse_dispatcher_response(R"({"hosts":["h"]})").ok());
}

TEST(SettradeRest, BuildsPathsHeadersUrlsAndTopics) {
  const Environment sandbox = environment_for("SANDBOX");
  EXPECT_EQ(sandbox.base_url, "https://open-api-test.settrade.com");
  EXPECT_EQ(sandbox.broker_id, "098");
  EXPECT_EQ(environment_for("023").base_url, "https://open-api.settrade.com");
  EXPECT_EQ(environment_for("023").broker_id, "023");
  EXPECT_EQ(login_path("098", "ALGO"),
            "/api/oam/v1/098/broker-apps/ALGO/login");
  EXPECT_EQ(dispatcher_path("098"), "/api/dispatcher/v3/098/token");
  EXPECT_EQ(authorization_header("bearer", "D"), "Bearer D");
  EXPECT_EQ(authorization_header("", "D"), "Bearer D");
  EXPECT_EQ(mqtt_url("h1", "098"), "wss://h1:443/api/dispatcher/v3/098/mqtt");
  EXPECT_EQ(bid_offer_topic("aot"), "proto/topic/bidofferv3/AOT");
  EXPECT_EQ(bid_offer_symbol("proto/topic/bidofferv3/PTT"), "PTT");
  EXPECT_FALSE(bid_offer_symbol(kSubscribeErrorTopic));
}

}  // namespace
}  // namespace examples::settrade
