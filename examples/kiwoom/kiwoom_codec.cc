// SPDX-License-Identifier: Apache-2.0
#include "kiwoom/kiwoom_codec.h"

#include <algorithm>
#include <charconv>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/subscription_key.h"

namespace examples::kiwoom {

std::string_view to_string(KiwoomError error) noexcept {
  switch (error) {
    case KiwoomError::none:
      return "none";
    case KiwoomError::bad_json:
      return "bad_json";
    case KiwoomError::no_trnm:
      return "no_trnm";
    case KiwoomError::not_real:
      return "not_real";
    case KiwoomError::bad_data:
      return "bad_data";
    case KiwoomError::bad_entry:
      return "bad_entry";
    case KiwoomError::bad_value:
      return "bad_value";
    case KiwoomError::bad_symbol:
      return "bad_symbol";
    case KiwoomError::bad_time:
      return "bad_time";
    case KiwoomError::bad_price:
      return "bad_price";
    case KiwoomError::bad_quantity:
      return "bad_quantity";
    case KiwoomError::bad_return_code:
      return "bad_return_code";
  }
  return "unknown";
}

std::string_view to_string(MessageKind kind) noexcept {
  switch (kind) {
    case MessageKind::real:
      return "real";
    case MessageKind::login:
      return "login";
    case MessageKind::reg:
      return "reg";
    case MessageKind::remove:
      return "remove";
    case MessageKind::ping:
      return "ping";
    case MessageKind::system:
      return "system";
    case MessageKind::other:
      return "other";
  }
  return "unknown";
}

namespace {

// FIDs (§2.6).
constexpr int kFidTradeTime = 20;
constexpr int kFidPrice = 10;
constexpr int kFidTradeVolume = 15;  // '+' buy-initiated, '-' sell-initiated
constexpr int kFidCumulativeVolume = 13;
constexpr int kFidQuoteTime = 21;
constexpr int kFidAskPrice1 = 41;     // ..50
constexpr int kFidBidPrice1 = 51;     // ..60
constexpr int kFidAskQuantity1 = 61;  // ..70
constexpr int kFidBidQuantity1 = 71;  // ..80
constexpr int kFidTotalAskQuantity = 121;
constexpr int kFidTotalBidQuantity = 125;

// Returns a return_code sent as an integer or as a string of one.
std::optional<std::int64_t> return_code_of(json::Value value) noexcept {
  if (std::optional<std::int64_t> code = value.integer()) return code;
  if (std::optional<std::string_view> text = value.plain_string()) {
    return parse_int(*text);
  }
  return std::nullopt;
}

std::string_view trim(std::string_view text) noexcept {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\r' ||
                           text.front() == '\n' || text.front() == '\t')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\r' ||
                           text.back() == '\n' || text.back() == '\t')) {
    text.remove_suffix(1);
  }
  return text;
}

// Maps a shared field error to the codec's reason.
KiwoomError to_kiwoom_error(FieldError error) noexcept {
  switch (error) {
    case FieldError::none:
      return KiwoomError::none;
    case FieldError::price:
      return KiwoomError::bad_price;
    case FieldError::quantity:
      return KiwoomError::bad_quantity;
  }
  return KiwoomError::bad_quantity;
}

// Reads an optional "HHMMSS" into `seconds` (-1 when empty).
KiwoomError optional_time(std::string_view text,
                          std::int32_t& seconds) noexcept {
  seconds = -1;
  if (text.empty()) return KiwoomError::none;
  const std::optional<std::int32_t> value = parse_hhmmss(text);
  if (!value) return KiwoomError::bad_time;
  seconds = *value;
  return KiwoomError::none;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
// days_from_civil), valid for the years a token can expire in.
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// Returns "YYYYMMDDHHMMSS" (KST) as a point in time, or nullopt.
std::optional<std::chrono::system_clock::time_point> parse_kst(
    std::string_view text) noexcept {
  if (text.size() != 14) return std::nullopt;
  const std::optional<std::int32_t> date = parse_yyyymmdd(text.substr(0, 8));
  const std::optional<std::int32_t> time = parse_hhmmss(text.substr(8));
  if (!date || !time) return std::nullopt;
  const std::int64_t days =
      days_from_civil(*date / 10000, static_cast<unsigned>(*date / 100 % 100),
                      static_cast<unsigned>(*date % 100));
  constexpr std::int64_t kKstOffsetSeconds = 9 * 3600;
  return std::chrono::system_clock::time_point(
      std::chrono::seconds(days * 86400 + *time - kKstOffsetSeconds));
}

}  // namespace

// --- Requests
// -----------------------------------------------------------------

std::string token_request_body(std::string_view appkey,
                               std::string_view secretkey) {
  std::string body = R"({"grant_type":"client_credentials","appkey":)";
  json::append_quoted(body, appkey);
  body += R"(,"secretkey":)";
  json::append_quoted(body, secretkey);
  body += '}';
  return body;
}

absl::StatusOr<AccessToken> parse_token_response(std::string_view body) {
  json::Document doc;
  if (json::JsonError e = doc.parse(body); e != json::JsonError::none) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Kiwoom token response is not JSON (", std::string(json::to_string(e)),
        ", ", body.size(), " bytes)"));
  }
  const json::Value root = doc.root();
  const json::Value code_value = root["return_code"];
  const std::optional<std::int64_t> code = return_code_of(code_value);
  if (code_value.exists() && !code) {
    return absl::InvalidArgumentError(
        "Kiwoom token response: return_code is not an integer");
  }
  if (code.value_or(0) != 0) {
    std::string message =
        absl::StrCat("Kiwoom token request refused: return_code ", *code, " ");
    append_printable(message, root["return_msg"].decoded_string().value_or(""));
    return absl::PermissionDeniedError(message);
  }
  AccessToken token;
  token.token = root["token"].decoded_string().value_or("");
  if (token.token.empty()) {
    return absl::InvalidArgumentError("Kiwoom token response has no token");
  }
  token.expires_dt =
      std::string(root["expires_dt"].plain_string().value_or(""));
  const auto expires_at = parse_kst(token.expires_dt);
  if (!expires_at) {
    std::string shown;
    append_printable(shown, token.expires_dt, 32);
    return absl::InvalidArgumentError(
        absl::StrCat("Kiwoom token response: expires_dt \"", shown,
                     "\" is not YYYYMMDDHHMMSS"));
  }
  token.expires_at = *expires_at;
  return token;
}

std::string login_frame(std::string_view token) {
  std::string frame = R"({"trnm":"LOGIN","token":)";
  json::append_quoted(frame, token);
  frame += '}';
  return frame;
}

absl::Status RegistrationOptions::validate() const {
  const bool digits = std::all_of(grp_no.begin(), grp_no.end(),
                                  [](char c) { return c >= '0' && c <= '9'; });
  if (grp_no.empty() || grp_no.size() > 4 || !digits) {
    std::string shown;
    append_printable(shown, grp_no, 16);
    return absl::InvalidArgumentError(absl::StrCat(
        "RegistrationOptions::grp_no must be 1-4 digits, got \"", shown, "\""));
  }
  if (refresh != "0" && refresh != "1") {
    std::string shown;
    append_printable(shown, refresh, 16);
    return absl::InvalidArgumentError(absl::StrCat(
        "RegistrationOptions::refresh must be \"0\" or \"1\", got \"", shown,
        "\""));
  }
  return absl::OkStatus();
}

std::string registration_frame(Registration kind,
                               const std::vector<std::string_view>& items,
                               const std::vector<std::string_view>& types,
                               const RegistrationOptions& options) {
  const auto append_list = [](std::string& out,
                              const std::vector<std::string_view>& list) {
    out += '[';
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (i > 0) out += ',';
      json::append_quoted(out, list[i]);
    }
    out += ']';
  };
  std::string frame = kind == Registration::reg
                          ? R"({"trnm":"REG","grp_no":)"
                          : R"({"trnm":"REMOVE","grp_no":)";
  json::append_quoted(frame, options.grp_no);
  if (kind == Registration::reg) {
    frame += R"(,"refresh":)";
    json::append_quoted(frame, options.refresh);
  }
  frame += R"(,"data":[{"item":)";
  append_list(frame, items);
  frame += R"(,"type":)";
  append_list(frame, types);
  frame += "}]}";
  return frame;
}

std::string subscription_key(std::string_view type, std::string_view item) {
  return join_key(type, item);
}

std::optional<KeyParts> split_subscription_key(std::string_view key) noexcept {
  const auto parts = split_key(key);
  if (!parts) return std::nullopt;
  return KeyParts{parts->first, parts->second};
}

bool is_token_rejection(const Message& login) noexcept {
  constexpr std::int64_t kCodes[] = {8005, 8031, 8103};
  constexpr std::string_view kMarkers[] = {"CODE=8005", "CODE=8031",
                                           "CODE=8103"};
  if (login.kind != MessageKind::login || login.return_code == 0) return false;
  for (std::int64_t code : kCodes) {
    if (login.return_code == code) return true;
  }
  for (std::string_view marker : kMarkers) {
    if (login.return_msg.find(marker) != std::string_view::npos) return true;
  }
  return false;
}

// --- KiwoomCodec
// --------------------------------------------------------------

absl::StatusOr<KiwoomCodec> KiwoomCodec::create() { return KiwoomCodec(); }

Message KiwoomCodec::read(std::string_view frame) {
  ++stats_.messages;
  Message message = classify(frame);
  if (message.error != KiwoomError::none) {
    stats_.rejected.add(message.error);
  } else if (message.kind == MessageKind::ping) {
    ++stats_.pings;
  } else if (message.kind == MessageKind::system) {
    ++stats_.system_messages;
  }
  return message;
}

Message KiwoomCodec::classify(std::string_view frame) {
  Message message;
  if (trim(frame) == "PING") {
    message.kind = MessageKind::ping;
    message.trnm = "PING";
    return message;
  }
  if (json_.parse(frame) != json::JsonError::none) {
    message.error = KiwoomError::bad_json;
    return message;
  }
  const json::Value root = json_.root();
  const std::optional<std::string_view> trnm = root["trnm"].plain_string();
  if (!trnm) {
    message.error = KiwoomError::no_trnm;
    return message;
  }
  message.trnm = *trnm;
  if (*trnm == "REAL") {
    message.kind = MessageKind::real;
  } else if (*trnm == "PING") {
    message.kind = MessageKind::ping;
  } else if (*trnm == "SYSTEM") {
    message.kind = MessageKind::system;
    message.code = root["code"].plain_string().value_or("");
    message.message = root["message"].raw_string().value_or("");
  } else if (*trnm == "LOGIN" || *trnm == "REG" || *trnm == "REMOVE") {
    message.kind = *trnm == "LOGIN" ? MessageKind::login
                   : *trnm == "REG" ? MessageKind::reg
                                    : MessageKind::remove;
    const std::optional<std::int64_t> code =
        return_code_of(root["return_code"]);
    if (!code) {
      message.error = KiwoomError::bad_return_code;
      return message;
    }
    message.return_code = *code;
    message.return_msg = root["return_msg"].raw_string().value_or("");
  }
  return message;
}

DecodeResult<KiwoomError> KiwoomCodec::decode(std::string_view frame,
                                              std::vector<MarketEvent>& out) {
  ++stats_.real_frames;
  const std::size_t before = out.size();
  KiwoomError error = KiwoomError::none;
  if (json_.parse(frame) != json::JsonError::none) {
    error = KiwoomError::bad_json;
  } else {
    error = decode_real(out);
  }
  if (error != KiwoomError::none) {
    out.erase(out.begin() + static_cast<std::ptrdiff_t>(before), out.end());
    stats_.rejected.add(error);
    return {error, 0};
  }
  ++stats_.decoded_frames;
  for (std::size_t i = before; i < out.size(); ++i) {
    ++(std::holds_alternative<Trade>(out[i]) ? stats_.trades : stats_.books);
  }
  return {KiwoomError::none, out.size() - before};
}

KiwoomError KiwoomCodec::decode_real(std::vector<MarketEvent>& out) {
  const json::Value root = json_.root();
  const std::optional<std::string_view> trnm = root["trnm"].plain_string();
  if (!trnm) return KiwoomError::no_trnm;
  if (*trnm != "REAL") return KiwoomError::not_real;
  const json::Value data = root["data"];
  if (!data.is(json::Type::array)) return KiwoomError::bad_data;
  std::uint64_t skipped = 0;
  for (const json::Value entry : data.elements()) {
    const std::optional<std::string_view> type = entry["type"].plain_string();
    if (!type) return KiwoomError::bad_entry;
    if (*type != kTradeType && *type != kBookType) {
      ++skipped;
      continue;
    }
    const std::optional<std::string_view> item = entry["item"].raw_string();
    const json::Value values = entry["values"];
    if (!item || !values.is(json::Type::object)) return KiwoomError::bad_entry;
    if (KiwoomError e = read_values(values); e != KiwoomError::none) return e;
    const KiwoomError e =
        *type == kTradeType ? read_trade(*item, out) : read_book(*item, out);
    if (e != KiwoomError::none) return e;
  }
  stats_.skipped_entries += skipped;
  return KiwoomError::none;
}

KiwoomError KiwoomCodec::read_values(json::Value values) {
  std::fill(std::begin(values_), std::end(values_), std::string_view());
  for (const json::Value::Member member : values.members()) {
    const std::optional<std::string_view> key = member.key.plain_string();
    int number = -1;
    if (key && !key->empty() && key->size() <= 3) {
      const auto [end, ec] =
          std::from_chars(key->data(), key->data() + key->size(), number);
      if (ec != std::errc() || end != key->data() + key->size()) number = -1;
    }
    if (number < 0 || number > kMaxFid) continue;  // a FID no layout reads
    const std::optional<std::string_view> value = member.value.raw_string();
    if (!value) return KiwoomError::bad_value;
    values_[number] = *value;
  }
  return KiwoomError::none;
}

std::string_view KiwoomCodec::fid(int number) const noexcept {
  return values_[number];
}

KiwoomError KiwoomCodec::read_trade(std::string_view item,
                                    std::vector<MarketEvent>& out) {
  Trade trade;
  const std::optional<Symbol> symbol = Symbol::from(item);
  if (!symbol) return KiwoomError::bad_symbol;
  trade.symbol = *symbol;
  if (KiwoomError e = optional_time(fid(kFidTradeTime), trade.time.seconds);
      e != KiwoomError::none) {
    return e;
  }
  const std::optional<Price> price = parse_price(fid(kFidPrice));
  if (!price || price->is_zero()) return KiwoomError::bad_price;
  trade.price = price->abs();  // signed against the previous close
  const std::string_view volume_text = fid(kFidTradeVolume);
  const std::optional<std::int64_t> volume = parse_int(volume_text);
  if (!volume) return KiwoomError::bad_quantity;
  trade.volume = *volume < 0 ? -*volume : *volume;
  trade.aggressor = volume_text.front() == '+'   ? Side::buy
                    : volume_text.front() == '-' ? Side::sell
                                                 : Side::unknown;
  if (!read_optional_quantity(fid(kFidCumulativeVolume),
                              trade.cumulative_volume)) {
    return KiwoomError::bad_quantity;
  }
  out.emplace_back(trade);
  return KiwoomError::none;
}

KiwoomError KiwoomCodec::read_book(std::string_view item,
                                   std::vector<MarketEvent>& out) {
  Book book;
  const std::optional<Symbol> symbol = Symbol::from(item);
  if (!symbol) return KiwoomError::bad_symbol;
  book.symbol = *symbol;
  if (KiwoomError e = optional_time(fid(kFidQuoteTime), book.time.seconds);
      e != KiwoomError::none) {
    return e;
  }
  for (int i = 0; i < static_cast<int>(kBookDepth); ++i) {
    const auto level = static_cast<std::size_t>(i);
    // Prices are signed against the previous close: |price| is the price.
    const FieldError ask =
        read_level(fid(kFidAskPrice1 + i), fid(kFidAskQuantity1 + i),
                   PriceSign::absolute, book.asks[level]);
    if (ask != FieldError::none) return to_kiwoom_error(ask);
    const FieldError bid =
        read_level(fid(kFidBidPrice1 + i), fid(kFidBidQuantity1 + i),
                   PriceSign::absolute, book.bids[level]);
    if (bid != FieldError::none) return to_kiwoom_error(bid);
  }
  for (auto [number, target] :
       {std::pair{kFidTotalAskQuantity, &book.total_ask_quantity},
        std::pair{kFidTotalBidQuantity, &book.total_bid_quantity},
        std::pair{kFidCumulativeVolume, &book.cumulative_volume}}) {
    if (!read_optional_quantity(fid(number), *target)) {
      return KiwoomError::bad_quantity;
    }
  }
  out.emplace_back(book);
  return KiwoomError::none;
}

}  // namespace examples::kiwoom
