// SPDX-License-Identifier: Apache-2.0
#include "settrade/settrade_codec.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>

#include <array>
#include <climits>
#include <initializer_list>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base64.h"
#include "common/json_reader.h"
#include "settrade_realtime.pb.h"

namespace examples::settrade {

std::string_view to_string(SettradeError error) noexcept {
  switch (error) {
    case SettradeError::none:
      return "none";
    case SettradeError::bad_topic:
      return "bad_topic";
    case SettradeError::too_large:
      return "too_large";
    case SettradeError::bad_protobuf:
      return "bad_protobuf";
    case SettradeError::bad_symbol:
      return "bad_symbol";
    case SettradeError::symbol_mismatch:
      return "symbol_mismatch";
    case SettradeError::money_layout_mismatch:
      return "money_layout_mismatch";
    case SettradeError::bad_money:
      return "bad_money";
    case SettradeError::bad_price:
      return "bad_price";
    case SettradeError::bad_volume:
      return "bad_volume";
  }
  return "unknown";
}

namespace {

constexpr std::string_view kProductionBase = "https://open-api.settrade.com";
constexpr std::string_view kUatBase = "https://open-api-test.settrade.com";

// --- OpenSSL ownership ---

template <auto Free>
struct Deleter {
  template <class T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};
using BigNum = std::unique_ptr<BIGNUM, Deleter<BN_clear_free>>;
using EcGroup = std::unique_ptr<EC_GROUP, Deleter<EC_GROUP_free>>;
using EcPoint = std::unique_ptr<EC_POINT, Deleter<EC_POINT_free>>;
using ParamBuilder =
    std::unique_ptr<OSSL_PARAM_BLD, Deleter<OSSL_PARAM_BLD_free>>;
using Params = std::unique_ptr<OSSL_PARAM, Deleter<OSSL_PARAM_free>>;
using PkeyContext = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX_free>>;
using Pkey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using DigestContext = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX_free>>;

// Wipes a string holding key material when it goes out of scope.
struct Wiped {
  std::string bytes;
  ~Wiped() { OPENSSL_cleanse(bytes.data(), bytes.size()); }
};

absl::Status bad_secret(std::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("Settrade app_secret is not a base64 P-256 private key: ",
                   std::string(why)));
}

// Returns the P-256 key pair of private scalar `scalar` (big-endian).
absl::StatusOr<Pkey> p256_key(std::string_view scalar) {
  BigNum priv(BN_bin2bn(reinterpret_cast<const unsigned char*>(scalar.data()),
                        static_cast<int>(scalar.size()), nullptr));
  EcGroup group(EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1));
  if (!priv || !group) return absl::InternalError("OpenSSL: out of memory");
  if (BN_is_zero(priv.get()) ||
      BN_cmp(priv.get(), EC_GROUP_get0_order(group.get())) >= 0) {
    return bad_secret("the scalar is outside [1, n)");
  }
  EcPoint pub(EC_POINT_new(group.get()));
  std::array<unsigned char, 65> pub_bytes{};  // uncompressed: 04 || x || y
  if (!pub ||
      EC_POINT_mul(group.get(), pub.get(), priv.get(), nullptr, nullptr,
                   nullptr) != 1 ||
      EC_POINT_point2oct(group.get(), pub.get(), POINT_CONVERSION_UNCOMPRESSED,
                         pub_bytes.data(), pub_bytes.size(),
                         nullptr) != pub_bytes.size()) {
    return absl::InternalError("OpenSSL: cannot derive the P-256 public key");
  }
  ParamBuilder builder(OSSL_PARAM_BLD_new());
  if (!builder ||
      OSSL_PARAM_BLD_push_utf8_string(builder.get(), OSSL_PKEY_PARAM_GROUP_NAME,
                                      "prime256v1", 0) != 1 ||
      OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_PRIV_KEY,
                             priv.get()) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(builder.get(), OSSL_PKEY_PARAM_PUB_KEY,
                                       pub_bytes.data(),
                                       pub_bytes.size()) != 1) {
    return absl::InternalError("OpenSSL: cannot build the key parameters");
  }
  Params params(OSSL_PARAM_BLD_to_param(builder.get()));
  PkeyContext context(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* key = nullptr;
  if (!params || !context || EVP_PKEY_fromdata_init(context.get()) != 1 ||
      EVP_PKEY_fromdata(context.get(), &key, EVP_PKEY_KEYPAIR, params.get()) !=
          1) {
    return absl::InternalError("OpenSSL: cannot import the P-256 key");
  }
  return Pkey(key);
}

// --- JSON replies ---

// Returns the first of `names` that is a non-empty string in `object`.
std::optional<std::string> first_string(
    json::Value object, std::initializer_list<std::string_view> names) {
  for (std::string_view name : names) {
    std::optional<std::string> value = object[name].decoded_string();
    if (value && !value->empty()) return value;
  }
  return std::nullopt;
}

// Returns an integer sent as a number or as a string of one.
std::optional<std::int64_t> integer_of(json::Value value) noexcept {
  if (std::optional<std::int64_t> number = value.integer()) return number;
  if (std::optional<std::string_view> text = value.plain_string()) {
    return parse_int(*text);
  }
  return std::nullopt;
}

absl::StatusOr<json::Value> parse_reply(json::Document& doc,
                                        std::string_view what,
                                        std::string_view body) {
  if (json::JsonError e = doc.parse(body); e != json::JsonError::none) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Settrade ", std::string(what), " reply is not JSON (",
        std::string(json::to_string(e)), ", ", body.size(), " bytes)"));
  }
  return doc.root();
}

// " (code X)" when the broker sent an error code; bounded and printable.
std::string describe_code(json::Value root) {
  const std::optional<std::string> code = first_string(root, {"code"});
  if (!code) return {};
  std::string out = " (code ";
  append_printable(out, *code, 32);
  out += ')';
  return out;
}

// --- Payloads ---

using MoneyField = const std::string& (pb::BidOfferV3Wire::*)() const;
using VolumeField = std::int64_t (pb::BidOfferV3Wire::*)() const;
using W = pb::BidOfferV3Wire;

constexpr std::array<MoneyField, kBookDepth> kBidPrices = {
    &W::bid_price1, &W::bid_price2, &W::bid_price3, &W::bid_price4,
    &W::bid_price5, &W::bid_price6, &W::bid_price7, &W::bid_price8,
    &W::bid_price9, &W::bid_price10};
constexpr std::array<MoneyField, kBookDepth> kAskPrices = {
    &W::ask_price1, &W::ask_price2, &W::ask_price3, &W::ask_price4,
    &W::ask_price5, &W::ask_price6, &W::ask_price7, &W::ask_price8,
    &W::ask_price9, &W::ask_price10};
constexpr std::array<VolumeField, kBookDepth> kBidVolumes = {
    &W::bid_volume1, &W::bid_volume2, &W::bid_volume3, &W::bid_volume4,
    &W::bid_volume5, &W::bid_volume6, &W::bid_volume7, &W::bid_volume8,
    &W::bid_volume9, &W::bid_volume10};
constexpr std::array<VolumeField, kBookDepth> kAskVolumes = {
    &W::ask_volume1, &W::ask_volume2, &W::ask_volume3, &W::ask_volume4,
    &W::ask_volume5, &W::ask_volume6, &W::ask_volume7, &W::ask_volume8,
    &W::ask_volume9, &W::ask_volume10};

QuoteCondition condition_of(std::int32_t flag) noexcept {
  switch (flag) {
    case pb::NORMAL:
      return QuoteCondition::normal;
    case pb::ATO:
      return QuoteCondition::opening_auction;
    case pb::ATC:
      return QuoteCondition::closing_auction;
    default:
      return QuoteCondition::unspecified;
  }
}

// True if parsing kept fields the message does not declare (for a Money: a
// sign that the other numbering was on the wire).
bool has_unknown_fields(const google::protobuf::Message& message) {
  return !message.GetReflection()->GetUnknownFields(message).empty();
}

char upper(char c) noexcept { return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c; }

}  // namespace

// --- REST and connection
// ------------------------------------------------------

Environment environment_for(std::string_view broker_id) {
  if (broker_id == "SANDBOX") return {std::string(kUatBase), "098"};
  return {std::string(kProductionBase), std::string(broker_id)};
}

std::string login_path(std::string_view broker_id, std::string_view app_code) {
  std::string path = "/api/oam/v1/";
  path.append(broker_id)
      .append("/broker-apps/")
      .append(app_code)
      .append("/login");
  return path;
}

std::string dispatcher_path(std::string_view broker_id) {
  std::string path = "/api/dispatcher/v3/";
  path.append(broker_id).append("/token");
  return path;
}

namespace {

// Returns the key pair of a base64 app secret (the private scalar).
absl::StatusOr<Pkey> key_of_secret(std::string_view app_secret) {
  Wiped scalar;
  if (!base64_decode(app_secret, scalar.bytes, Base64Padding::optional)) {
    return bad_secret("not base64");
  }
  if (scalar.bytes.size() > 32) return bad_secret("longer than 32 bytes");
  return p256_key(scalar.bytes);
}

// "{app_id}.{params}.{timestamp_ms}": what the login signature covers.
std::string signed_message(std::string_view app_id, std::string_view params,
                           std::int64_t timestamp_ms) {
  std::string message(app_id);
  message.append(".").append(params).append(".").append(
      std::to_string(timestamp_ms));
  return message;
}

// Returns the bytes of lower- or upper-case hex, or nullopt.
std::optional<std::string> hex_decode(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]);
    const int lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> login_signature(std::string_view app_id,
                                            std::string_view app_secret,
                                            std::string_view params,
                                            std::int64_t timestamp_ms) {
  absl::StatusOr<Pkey> key = key_of_secret(app_secret);
  if (!key.ok()) return key.status();
  const std::string message = signed_message(app_id, params, timestamp_ms);
  DigestContext digest(EVP_MD_CTX_new());
  std::size_t size = 0;
  if (!digest ||
      EVP_DigestSignInit_ex(digest.get(), nullptr, "SHA256", nullptr, nullptr,
                            key->get(), nullptr) != 1 ||
      EVP_DigestSign(digest.get(), nullptr, &size,
                     reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1) {
    return absl::InternalError("OpenSSL: ECDSA signing failed");
  }
  std::string signature(size, '\0');
  if (EVP_DigestSign(digest.get(),
                     reinterpret_cast<unsigned char*>(signature.data()), &size,
                     reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1) {
    return absl::InternalError("OpenSSL: ECDSA signing failed");
  }
  signature.resize(size);
  return hex_encode(signature);
}

absl::StatusOr<bool> verify_login_signature(std::string_view app_id,
                                            std::string_view app_secret,
                                            std::string_view params,
                                            std::int64_t timestamp_ms,
                                            std::string_view signature_hex) {
  absl::StatusOr<Pkey> key = key_of_secret(app_secret);
  if (!key.ok()) return key.status();
  const std::optional<std::string> signature = hex_decode(signature_hex);
  if (!signature) return false;
  const std::string message = signed_message(app_id, params, timestamp_ms);
  DigestContext digest(EVP_MD_CTX_new());
  if (!digest ||
      EVP_DigestVerifyInit_ex(digest.get(), nullptr, "SHA256", nullptr, nullptr,
                              key->get(), nullptr) != 1) {
    return absl::InternalError("OpenSSL: cannot set up ECDSA verification");
  }
  return EVP_DigestVerify(
             digest.get(),
             reinterpret_cast<const unsigned char*>(signature->data()),
             signature->size(),
             reinterpret_cast<const unsigned char*>(message.data()),
             message.size()) == 1;
}

absl::StatusOr<std::string> login_request_body(std::string_view app_id,
                                               std::string_view app_secret,
                                               std::string_view params,
                                               std::int64_t timestamp_ms) {
  absl::StatusOr<std::string> signature =
      login_signature(app_id, app_secret, params, timestamp_ms);
  if (!signature.ok()) return signature.status();
  std::string body = R"({"apiKey":)";
  json::append_quoted(body, app_id);
  body += R"(,"params":)";
  json::append_quoted(body, params);
  body += R"(,"signature":)";
  json::append_quoted(body, *signature);
  body += R"(,"timestamp":)";
  json::append_quoted(body, std::to_string(timestamp_ms));
  body += '}';
  return body;
}

absl::StatusOr<AccessToken> parse_login_response(std::string_view body) {
  json::Document doc;
  absl::StatusOr<json::Value> root = parse_reply(doc, "login", body);
  if (!root.ok()) return root.status();
  AccessToken token;
  std::optional<std::string> access =
      first_string(*root, {"access_token", "accessToken"});
  if (!access) {
    return absl::NotFoundError(absl::StrCat(
        "Settrade login reply has no access_token", describe_code(*root)));
  }
  token.access_token = *std::move(access);
  token.refresh_token =
      first_string(*root, {"refresh_token", "refreshToken"}).value_or("");
  token.token_type =
      first_string(*root, {"token_type", "tokenType"}).value_or("Bearer");
  for (std::string_view name : {"expires_in", "expiresIn"}) {
    const json::Value value = (*root)[name];
    if (!value.exists()) continue;
    const std::optional<std::int64_t> seconds = integer_of(value);
    if (!seconds || *seconds < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("Settrade login reply: ", std::string(name),
                       " is not a non-negative integer"));
    }
    token.expires_in = *seconds;
    break;
  }
  return token;
}

absl::StatusOr<DispatcherGrant> parse_dispatcher_response(
    std::string_view body) {
  json::Document doc;
  absl::StatusOr<json::Value> root = parse_reply(doc, "dispatcher", body);
  if (!root.ok()) return root.status();
  DispatcherGrant grant;
  for (const json::Value host : (*root)["hosts"].elements()) {
    std::optional<std::string> name = host.decoded_string();
    if (!name || name->empty()) {
      return absl::InvalidArgumentError(
          "Settrade dispatcher reply: a host is not a non-empty string");
    }
    grant.hosts.push_back(*std::move(name));
  }
  if (grant.hosts.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "Settrade dispatcher reply has no hosts", describe_code(*root)));
  }
  grant.token = first_string(*root, {"token"}).value_or("");
  if (grant.token.empty()) {
    return absl::NotFoundError("Settrade dispatcher reply has no token");
  }
  return grant;
}

std::string authorization_header(std::string_view token_type,
                                 std::string_view token) {
  std::string header(token_type.empty() ? "Bearer" : token_type);
  header[0] = upper(header[0]);
  header.append(" ").append(token);
  return header;
}

std::string mqtt_url(std::string_view host, std::string_view broker_id) {
  std::string url = "wss://";
  url.append(host)
      .append(":443/api/dispatcher/v3/")
      .append(broker_id)
      .append("/mqtt");
  return url;
}

std::string bid_offer_topic(std::string_view symbol) {
  std::string topic(kBidOfferTopicPrefix);
  for (char c : symbol) topic += upper(c);
  return topic;
}

std::optional<std::string_view> bid_offer_symbol(
    std::string_view topic) noexcept {
  if (topic.substr(0, kBidOfferTopicPrefix.size()) != kBidOfferTopicPrefix) {
    return std::nullopt;
  }
  const std::string_view symbol = topic.substr(kBidOfferTopicPrefix.size());
  if (symbol.empty() || symbol.find('/') != std::string_view::npos) {
    return std::nullopt;
  }
  return symbol;
}

// --- SettradeCodec
// ------------------------------------------------------------

absl::StatusOr<SettradeCodec> SettradeCodec::create(
    SettradeCodecOptions options) {
  if (absl::Status s = options.validate(); !s.ok()) return s;
  return SettradeCodec(options);
}

SettradeCodec::SettradeCodec(SettradeCodecOptions options)
    : options_(options),
      wire_(std::make_unique<pb::BidOfferV3Wire>()),
      money_(std::make_unique<pb::Money>()),
      money_units_first_(std::make_unique<pb::MoneyUnitsFirst>()) {}

SettradeCodec::SettradeCodec(SettradeCodec&&) noexcept = default;
SettradeCodec& SettradeCodec::operator=(SettradeCodec&&) noexcept = default;
SettradeCodec::~SettradeCodec() = default;

DecodeResult<SettradeError> SettradeCodec::decode_bid_offer(
    std::string_view topic, std::string_view payload,
    std::vector<MarketEvent>& out) {
  ++stats_.messages;
  Book book;
  const SettradeError error = decode(topic, payload, book);
  if (error != SettradeError::none) {
    stats_.rejected.add(error);
    return {error, 0};
  }
  out.emplace_back(book);
  ++stats_.books;
  return {SettradeError::none, 1};
}

SettradeError SettradeCodec::decode(std::string_view topic,
                                    std::string_view payload, Book& book) {
  const std::optional<std::string_view> topic_symbol = bid_offer_symbol(topic);
  if (!topic_symbol) return SettradeError::bad_topic;
  if (payload.size() > kMaxPayloadBytes) return SettradeError::too_large;
  if (!wire_->ParseFromArray(payload.data(),
                             static_cast<int>(payload.size()))) {
    return SettradeError::bad_protobuf;
  }
  const std::string_view payload_symbol = wire_->symbol();
  if (!payload_symbol.empty() && options_.require_symbol_match &&
      payload_symbol != *topic_symbol) {
    return SettradeError::symbol_mismatch;
  }
  const std::optional<Symbol> symbol =
      Symbol::from(payload_symbol.empty() ? *topic_symbol : payload_symbol);
  if (!symbol) return SettradeError::bad_symbol;
  book.symbol = *symbol;
  for (std::size_t i = 0; i < kBookDepth; ++i) {
    for (auto [prices, volumes, level] :
         {std::tuple{&kBidPrices, &kBidVolumes, &book.bids[i]},
          std::tuple{&kAskPrices, &kAskVolumes, &book.asks[i]}}) {
      if (SettradeError e =
              read_money(((*wire_).*(*prices)[i])(), level->price);
          e != SettradeError::none) {
        return e;
      }
      level->quantity = ((*wire_).*(*volumes)[i])();
      if (level->quantity < 0) return SettradeError::bad_volume;
    }
  }
  book.bid_condition = condition_of(wire_->bid_flag());
  book.ask_condition = condition_of(wire_->ask_flag());
  return SettradeError::none;
}

SettradeError SettradeCodec::read_money(const std::string& bytes,
                                        Price& price) {
  price = Price();
  if (bytes.empty()) return SettradeError::none;  // every field was zero
  std::int64_t units = 0;
  std::int32_t nanos = 0;
  const int size = static_cast<int>(bytes.size());
  if (options_.money_layout == MoneyLayout::google_type_money) {
    if (!money_->ParseFromArray(bytes.data(), size)) {
      return SettradeError::bad_protobuf;
    }
    if (has_unknown_fields(*money_)) {
      return SettradeError::money_layout_mismatch;
    }
    units = money_->units();
    nanos = money_->nanos();
  } else {
    if (!money_units_first_->ParseFromArray(bytes.data(), size)) {
      return SettradeError::bad_protobuf;
    }
    if (has_unknown_fields(*money_units_first_)) {
      return SettradeError::money_layout_mismatch;
    }
    units = money_units_first_->units();
    nanos = money_units_first_->nanos();
  }
  const std::optional<Price> value = Price::from_money(units, nanos);
  if (!value) return SettradeError::bad_money;
  if (value->is_negative()) return SettradeError::bad_price;
  price = *value;
  return SettradeError::none;
}

}  // namespace examples::settrade
