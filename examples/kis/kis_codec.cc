// SPDX-License-Identifier: Apache-2.0
#include "kis/kis_codec.h"

#include <openssl/crypto.h>  // OPENSSL_cleanse

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base64.h"
#include "common/subscription_key.h"

namespace examples::kis {

std::string_view to_string(KisError error) noexcept {
  switch (error) {
    case KisError::none:
      return "none";
    case KisError::empty_frame:
      return "empty_frame";
    case KisError::bad_header:
      return "bad_header";
    case KisError::bad_count:
      return "bad_count";
    case KisError::unsupported_tr_id:
      return "unsupported_tr_id";
    case KisError::no_cipher:
      return "no_cipher";
    case KisError::bad_base64:
      return "bad_base64";
    case KisError::decrypt_failed:
      return "decrypt_failed";
    case KisError::field_count_mismatch:
      return "field_count_mismatch";
    case KisError::too_few_fields:
      return "too_few_fields";
    case KisError::bad_symbol:
      return "bad_symbol";
    case KisError::bad_time:
      return "bad_time";
    case KisError::bad_price:
      return "bad_price";
    case KisError::bad_quantity:
      return "bad_quantity";
    case KisError::bad_json:
      return "bad_json";
    case KisError::bad_control:
      return "bad_control";
  }
  return "unknown";
}

std::string_view to_string(ControlKind kind) noexcept {
  switch (kind) {
    case ControlKind::subscribed:
      return "subscribed";
    case ControlKind::unsubscribed:
      return "unsubscribed";
    case ControlKind::already_subscribed:
      return "already_subscribed";
    case ControlKind::not_subscribed:
      return "not_subscribed";
    case ControlKind::max_subscriptions:
      return "max_subscriptions";
    case ControlKind::appkey_in_use:
      return "appkey_in_use";
    case ControlKind::invalid_approval:
      return "invalid_approval";
    case ControlKind::request_rejected:
      return "request_rejected";
    case ControlKind::server_error:
      return "server_error";
    case ControlKind::pingpong:
      return "pingpong";
    case ControlKind::other:
      return "other";
  }
  return "unknown";
}

namespace {

constexpr std::size_t kMaxTrIdLength = 16;
constexpr std::size_t kMaxCiphers = 64;  // bounds what hostile replies cost

bool is_tr_id(std::string_view text) noexcept {
  if (text.empty() || text.size() > kMaxTrIdLength) return false;
  return std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
           (c >= 'a' && c <= 'z');
  });
}

// --- Requests ---

// Returns the broker's error_code (printable, bounded) for an error message.
std::string describe_error_code(json::Value root) {
  std::string out;
  for (std::string_view field : {"error_code", "msg_cd", "rt_cd"}) {
    if (std::optional<std::string_view> code = root[field].plain_string()) {
      out.append(" (").append(field).append(" ");
      append_printable(out, *code, 32);
      out += ')';
      break;
    }
  }
  return out;
}

// --- Data frames ---

// A record's fields, the first kStoredFields of them (the layouts need 54).
constexpr std::size_t kStoredFields = 64;
using Fields = std::array<std::string_view, kStoredFields>;

// Maps a shared field error to the codec's reason.
KisError to_kis_error(FieldError error) noexcept {
  switch (error) {
    case FieldError::none:
      return KisError::none;
    case FieldError::price:
      return KisError::bad_price;
    case FieldError::quantity:
      return KisError::bad_quantity;
  }
  return KisError::bad_quantity;
}

// H0STCNT0 (§1.7): 0 symbol, 1 time, 2 price, 12 volume, 13 cumulative
// volume, 21 CCLD_DVSN, 33 business date.
KisError read_trade(const Fields& f, bool aggressor_from_ccld_dvsn,
                    std::vector<MarketEvent>& out) {
  Trade trade;
  const std::optional<Symbol> symbol = Symbol::from(f[0]);
  if (!symbol) return KisError::bad_symbol;
  trade.symbol = *symbol;
  const std::optional<std::int32_t> seconds = parse_hhmmss(f[1]);
  if (!seconds) return KisError::bad_time;
  trade.time.seconds = *seconds;
  if (!f[33].empty()) {
    const std::optional<std::int32_t> date = parse_yyyymmdd(f[33]);
    if (!date) return KisError::bad_time;
    trade.time.date = *date;
  }
  const std::optional<Price> price = parse_price(f[2]);
  if (!price || price->is_negative() || price->is_zero()) {
    return KisError::bad_price;
  }
  trade.price = *price;
  const std::optional<std::int64_t> volume = parse_int(f[12]);
  if (!volume || *volume < 0) return KisError::bad_quantity;
  trade.volume = *volume;
  if (!read_optional_quantity(f[13], trade.cumulative_volume)) {
    return KisError::bad_quantity;
  }
  if (aggressor_from_ccld_dvsn) {
    trade.aggressor = f[21] == "1"   ? Side::buy
                      : f[21] == "5" ? Side::sell
                                     : Side::unknown;
  }
  out.emplace_back(trade);
  return KisError::none;
}

// H0STASP0 (§1.8): 0 symbol, 1 time, 3-12 asks, 13-22 bids, 23-32 ask
// quantities, 33-42 bid quantities, 43/44 totals, 53 cumulative volume.
KisError read_book(const Fields& f, std::vector<MarketEvent>& out) {
  Book book;
  const std::optional<Symbol> symbol = Symbol::from(f[0]);
  if (!symbol) return KisError::bad_symbol;
  book.symbol = *symbol;
  const std::optional<std::int32_t> seconds = parse_hhmmss(f[1]);
  if (!seconds) return KisError::bad_time;
  book.time.seconds = *seconds;
  for (std::size_t i = 0; i < kBookDepth; ++i) {
    const FieldError ask =
        read_level(f[3 + i], f[23 + i], PriceSign::reject, book.asks[i]);
    if (ask != FieldError::none) return to_kis_error(ask);
    const FieldError bid =
        read_level(f[13 + i], f[33 + i], PriceSign::reject, book.bids[i]);
    if (bid != FieldError::none) return to_kis_error(bid);
  }
  for (auto [text, target] : {std::pair{f[43], &book.total_ask_quantity},
                              std::pair{f[44], &book.total_bid_quantity},
                              std::pair{f[53], &book.cumulative_volume}}) {
    if (!read_optional_quantity(text, *target)) return KisError::bad_quantity;
  }
  out.emplace_back(book);
  return KisError::none;
}

// --- Control frames ---

struct MessageCode {
  std::string_view code;
  ControlKind kind;
};
constexpr MessageCode kMessageCodes[] = {
    {"OPSP0000", ControlKind::subscribed},
    {"OPSP0001", ControlKind::unsubscribed},
    {"OPSP0002", ControlKind::already_subscribed},
    {"OPSP0003", ControlKind::not_subscribed},
    {"OPSP0007", ControlKind::server_error},
    {"OPSP0008", ControlKind::max_subscriptions},
    {"OPSP0009", ControlKind::server_error},
    {"OPSP0011", ControlKind::invalid_approval},
    {"OPSP8991", ControlKind::request_rejected},
    {"OPSP8992", ControlKind::request_rejected},
    {"OPSP8996", ControlKind::appkey_in_use},
    {"OPSP8997", ControlKind::request_rejected},
    {"OPSP8998", ControlKind::request_rejected},
};

ControlKind kind_of(std::string_view rt_cd, std::string_view msg_cd,
                    std::string_view msg1) noexcept {
  for (const MessageCode& entry : kMessageCodes) {
    if (entry.code == msg_cd) return entry.kind;
  }
  // OPSP9990-9999: JSON PARSING ERROR of our request.
  if (msg_cd.size() == 8 && msg_cd.substr(0, 7) == "OPSP999") {
    return ControlKind::request_rejected;
  }
  // Unknown codes: the official samples' text checks.
  if (msg1 == "ALREADY IN SUBSCRIBE") return ControlKind::already_subscribed;
  if (rt_cd == "0") {
    if (msg1.substr(0, 5) == "UNSUB") return ControlKind::unsubscribed;
    if (msg1 == "SUBSCRIBE SUCCESS") return ControlKind::subscribed;
    return ControlKind::other;
  }
  return ControlKind::server_error;
}

}  // namespace

// --- Requests
// -----------------------------------------------------------------

std::string approval_request_body(std::string_view appkey,
                                  std::string_view appsecret) {
  std::string body = R"({"grant_type":"client_credentials","appkey":)";
  json::append_quoted(body, appkey);
  body += R"(,"secretkey":)";
  json::append_quoted(body, appsecret);
  body += '}';
  return body;
}

absl::StatusOr<std::string> parse_approval_response(std::string_view body) {
  json::Document doc;
  if (json::JsonError e = doc.parse(body); e != json::JsonError::none) {
    return absl::InvalidArgumentError(
        absl::StrCat("KIS approval response is not JSON (",
                     std::string(to_string(e)), ", ", body.size(), " bytes)"));
  }
  const json::Value root = doc.root();
  const std::optional<std::string> key = root["approval_key"].decoded_string();
  if (!key || key->empty()) {
    return absl::NotFoundError(
        absl::StrCat("KIS approval response has no approval_key",
                     describe_error_code(root)));
  }
  return *key;
}

std::string subscription_request(std::string_view approval_key,
                                 std::string_view tr_id,
                                 std::string_view tr_key, TrType type,
                                 char custtype) {
  std::string frame = R"({"header":{"approval_key":)";
  json::append_quoted(frame, approval_key);
  frame += R"(,"custtype":)";
  json::append_quoted(frame, std::string_view(&custtype, 1));
  frame +=
      type == TrType::subscribe ? R"(,"tr_type":"1")" : R"(,"tr_type":"2")";
  frame += R"(,"content-type":"utf-8"},"body":{"input":{"tr_id":)";
  json::append_quoted(frame, tr_id);
  frame += R"(,"tr_key":)";
  json::append_quoted(frame, tr_key);
  frame += "}}}";
  return frame;
}

std::string subscription_key(std::string_view tr_id, std::string_view tr_key) {
  return join_key(tr_id, tr_key);
}

std::optional<KeyParts> split_subscription_key(std::string_view key) noexcept {
  const auto parts = split_key(key);
  if (!parts) return std::nullopt;
  return KeyParts{parts->first, parts->second};
}

// --- Frames
// -------------------------------------------------------------------

KisError parse_data_frame(std::string_view frame, DataFrame& out) noexcept {
  if (frame.empty()) return KisError::empty_frame;
  if (frame.size() < 2 || (frame[0] != '0' && frame[0] != '1') ||
      frame[1] != '|') {
    return KisError::bad_header;
  }
  const std::size_t tr_end = frame.find('|', 2);
  if (tr_end == std::string_view::npos) return KisError::bad_header;
  const std::string_view tr_id = frame.substr(2, tr_end - 2);
  if (!is_tr_id(tr_id)) return KisError::bad_header;
  const std::size_t count_end = frame.find('|', tr_end + 1);
  if (count_end == std::string_view::npos) return KisError::bad_header;
  const std::string_view count_text =
      frame.substr(tr_end + 1, count_end - tr_end - 1);
  const std::optional<std::int64_t> count = parse_int(count_text);
  if (count_text.empty() || count_text.size() > 4 || count_text[0] == '+' ||
      count_text[0] == '-' || !count || *count < 1) {
    return KisError::bad_count;
  }
  const std::string_view payload = frame.substr(count_end + 1);
  if (payload.empty()) return KisError::too_few_fields;
  out.encrypted = frame[0] == '1';
  out.tr_id = tr_id;
  out.count = static_cast<std::size_t>(*count);
  out.payload = payload;
  return KisError::none;
}

// --- KisCodec
// -----------------------------------------------------------------

absl::Status KisCodecOptions::validate() const {
  std::vector<std::string_view> seen;
  for (const auto* list : {&trade_tr_ids, &book_tr_ids}) {
    for (const std::string& tr_id : *list) {
      if (!is_tr_id(tr_id)) {
        std::string shown;
        append_printable(shown, tr_id, 32);
        return absl::InvalidArgumentError(
            absl::StrCat("KisCodecOptions: tr_id \"", shown,
                         "\" must be 1-16 ASCII letters and digits"));
      }
      if (std::find(seen.begin(), seen.end(), tr_id) != seen.end()) {
        return absl::InvalidArgumentError("KisCodecOptions: tr_id \"" + tr_id +
                                          "\" is listed twice");
      }
      seen.push_back(tr_id);
    }
  }
  return absl::OkStatus();
}

void KisCodec::CipherContextDeleter::operator()(
    EVP_CIPHER_CTX* ctx) const noexcept {
  EVP_CIPHER_CTX_free(ctx);
}

absl::StatusOr<KisCodec> KisCodec::create(KisCodecOptions options) {
  if (absl::Status s = options.validate(); !s.ok()) return s;
  KisCodec codec(std::move(options));
  if (codec.cipher_context_ == nullptr) {
    return absl::InternalError("KisCodec: EVP_CIPHER_CTX_new failed");
  }
  return codec;
}

KisCodec::KisCodec(KisCodecOptions options)
    : options_(std::move(options)), cipher_context_(EVP_CIPHER_CTX_new()) {}

KisCodec::KisCodec(KisCodec&&) noexcept = default;
KisCodec& KisCodec::operator=(KisCodec&&) noexcept = default;

KisCodec::~KisCodec() { clear_ciphers(); }

KisCodec::Layout KisCodec::layout_of(std::string_view tr_id) const noexcept {
  const auto listed = [&](const std::vector<std::string>& ids) {
    return std::find(ids.begin(), ids.end(), tr_id) != ids.end();
  };
  if (listed(options_.trade_tr_ids)) return Layout::trade;
  if (listed(options_.book_tr_ids)) return Layout::book;
  return Layout::none;
}

DecodeResult<KisError> KisCodec::decode(std::string_view frame,
                                        std::vector<MarketEvent>& out) {
  ++stats_.data_frames;
  const std::size_t before = out.size();
  const KisError error = decode_frame(frame, out);
  if (error != KisError::none) {
    out.erase(out.begin() + static_cast<std::ptrdiff_t>(before), out.end());
    stats_.rejected.add(error);
    return {error, 0};
  }
  ++stats_.decoded_frames;
  if (frame.front() == '1') ++stats_.encrypted_frames;
  for (std::size_t i = before; i < out.size(); ++i) {
    ++(std::holds_alternative<Trade>(out[i]) ? stats_.trades : stats_.books);
  }
  return {KisError::none, out.size() - before};
}

KisError KisCodec::decode_frame(std::string_view frame,
                                std::vector<MarketEvent>& out) {
  DataFrame header;
  if (KisError e = parse_data_frame(frame, header); e != KisError::none) {
    return e;
  }
  const Layout layout = layout_of(header.tr_id);
  if (layout == Layout::none) return KisError::unsupported_tr_id;
  if (!header.encrypted) {
    return decode_records(layout, header.count, header.payload, out);
  }
  if (KisError e = decrypt(header.tr_id, header.payload, plaintext_);
      e != KisError::none) {
    return e;
  }
  return decode_records(layout, header.count, plaintext_, out);
}

KisError KisCodec::decode_records(Layout layout, std::size_t count,
                                  std::string_view payload,
                                  std::vector<MarketEvent>& out) const {
  const std::size_t total = static_cast<std::size_t>(std::count(
                                payload.begin(), payload.end(), '^')) +
                            1;
  if (total % count != 0) return KisError::field_count_mismatch;
  const std::size_t per_record = total / count;
  if (per_record < (layout == Layout::trade ? kTradeFields : kBookFields)) {
    return KisError::too_few_fields;
  }
  Fields fields;
  std::size_t pos = 0;
  for (std::size_t record = 0; record < count; ++record) {
    for (std::size_t i = 0; i < per_record; ++i) {
      std::size_t end = payload.find('^', pos);
      if (end == std::string_view::npos) end = payload.size();
      if (i < kStoredFields) fields[i] = payload.substr(pos, end - pos);
      pos = std::min(end + 1, payload.size());
    }
    const KisError e =
        layout == Layout::trade
            ? read_trade(fields, options_.aggressor_from_ccld_dvsn, out)
            : read_book(fields, out);
    if (e != KisError::none) return e;
  }
  return KisError::none;
}

KisError KisCodec::decrypt(std::string_view tr_id, std::string_view base64,
                           std::string& plaintext) {
  const Cipher* cipher = find_cipher(tr_id);
  if (cipher == nullptr) return KisError::no_cipher;
  if (!base64_decode(base64, ciphertext_)) return KisError::bad_base64;
  constexpr std::size_t kBlock = 16;
  if (ciphertext_.empty() || ciphertext_.size() % kBlock != 0 ||
      ciphertext_.size() > static_cast<std::size_t>(INT32_MAX) - kBlock) {
    return KisError::decrypt_failed;
  }
  EVP_CIPHER_CTX* ctx = cipher_context_.get();
  plaintext.resize(ciphertext_.size() + kBlock);
  auto* in = reinterpret_cast<const unsigned char*>(ciphertext_.data());
  auto* out = reinterpret_cast<unsigned char*>(plaintext.data());
  int written = 0, final_written = 0;
  const bool ok =
      EVP_DecryptInit_ex2(ctx, EVP_aes_256_cbc(), cipher->key.data(),
                          cipher->iv.data(), nullptr) == 1 &&
      EVP_DecryptUpdate(ctx, out, &written, in,
                        static_cast<int>(ciphertext_.size())) == 1 &&
      EVP_DecryptFinal_ex(ctx, out + written, &final_written) == 1;
  if (!ok) {
    plaintext.clear();
    return KisError::decrypt_failed;
  }
  plaintext.resize(static_cast<std::size_t>(written + final_written));
  return KisError::none;
}

absl::Status KisCodec::set_cipher(std::string_view tr_id, std::string_view key,
                                  std::string_view iv) {
  Cipher cipher;
  if (key.size() != cipher.key.size() || iv.size() != cipher.iv.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KisCodec::set_cipher: AES-256-CBC needs a 32-byte key and a "
        "16-byte iv, got ",
        key.size(), " and ", iv.size(), " bytes"));
  }
  std::copy(key.begin(), key.end(), cipher.key.begin());
  std::copy(iv.begin(), iv.end(), cipher.iv.begin());
  for (Cipher& existing : ciphers_) {
    if (existing.tr_id == tr_id) {
      existing.key = cipher.key;
      existing.iv = cipher.iv;
      OPENSSL_cleanse(cipher.key.data(), cipher.key.size());
      return absl::OkStatus();
    }
  }
  if (ciphers_.size() >= kMaxCiphers) {
    OPENSSL_cleanse(ciphers_.front().key.data(), ciphers_.front().key.size());
    ciphers_.erase(ciphers_.begin());
  }
  cipher.tr_id = std::string(tr_id);
  ciphers_.push_back(cipher);
  OPENSSL_cleanse(cipher.key.data(), cipher.key.size());
  return absl::OkStatus();
}

bool KisCodec::has_cipher(std::string_view tr_id) const noexcept {
  return find_cipher(tr_id) != nullptr;
}

void KisCodec::clear_ciphers() noexcept {
  for (Cipher& cipher : ciphers_) {
    OPENSSL_cleanse(cipher.key.data(), cipher.key.size());
  }
  ciphers_.clear();
}

const KisCodec::Cipher* KisCodec::find_cipher(
    std::string_view tr_id) const noexcept {
  for (const Cipher& cipher : ciphers_) {
    if (cipher.tr_id == tr_id) return &cipher;
  }
  return nullptr;
}

Control KisCodec::read_control(std::string_view frame) {
  ++stats_.control_frames;
  Control control = classify_control(frame);
  if (control.error != KisError::none) {
    stats_.rejected.add(control.error);
  } else if (control.kind == ControlKind::pingpong) {
    ++stats_.pingpongs;
  }
  return control;
}

Control KisCodec::classify_control(std::string_view frame) {
  Control control;
  if (json_.parse(frame) != json::JsonError::none) {
    control.error = KisError::bad_json;
    return control;
  }
  const json::Value header = json_.root()["header"];
  const std::optional<std::string_view> tr_id = header["tr_id"].plain_string();
  if (!tr_id) {
    control.error = KisError::bad_control;
    return control;
  }
  control.tr_id = *tr_id;
  if (*tr_id == kPingPongTrId) {
    control.kind = ControlKind::pingpong;
    return control;
  }
  const json::Value body = json_.root()["body"];
  if (!body.is(json::Type::object)) {
    control.error = KisError::bad_control;
    return control;
  }
  control.tr_key = header["tr_key"].plain_string().value_or("");
  control.rt_cd = body["rt_cd"].plain_string().value_or("");
  control.msg_cd = body["msg_cd"].plain_string().value_or("");
  control.msg1 = body["msg1"].raw_string().value_or("");
  control.kind = kind_of(control.rt_cd, control.msg_cd, control.msg1);
  if (control.kind == ControlKind::subscribed) {
    const json::Value output = body["output"];
    const std::optional<std::string_view> key = output["key"].plain_string();
    const std::optional<std::string_view> iv = output["iv"].plain_string();
    control.cipher_learned =
        key && iv && is_tr_id(*tr_id) && set_cipher(*tr_id, *key, *iv).ok();
  }
  return control;
}

}  // namespace examples::kis
