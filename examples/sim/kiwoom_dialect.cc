// SPDX-License-Identifier: Apache-2.0
#include "sim/kiwoom_dialect.h"

#include <charconv>
#include <chrono>
#include <iterator>
#include <optional>

#include "common/json_reader.h"

namespace examples::sim {
namespace {

using feedkit::testing::ClientRequest;
using feedkit::testing::KeyOutcome;
using feedkit::testing::SubscribeOutcome;

constexpr std::string_view kCapMessage = "등록 종목수 초과";  // too many items
constexpr std::string_view kNotLoggedIn = "LOGIN 후 사용 가능합니다";
constexpr std::string_view kInUse = "동일한 App key로 접속 중입니다";

std::string reply(std::string_view trnm, int code, std::string_view message) {
  std::string out = R"({"trnm":)";
  json::append_quoted(out, trnm);
  out += R"(,"return_code":)";
  append_int(out, code);
  out += R"(,"return_msg":)";
  json::append_quoted(out, message);
  out += '}';
  return out;
}

std::string system_message(std::string_view code, std::string_view message) {
  std::string out = R"({"trnm":"SYSTEM","code":)";
  json::append_quoted(out, code);
  out += R"(,"message":)";
  json::append_quoted(out, message);
  out += '}';
  return out;
}

struct KeyParts {
  std::string_view type;
  std::string_view item;
};
KeyParts split(std::string_view key) {
  const std::size_t bar = key.find('|');
  if (bar == std::string_view::npos) return {{}, key};
  return {key.substr(0, bar), key.substr(bar + 1)};
}

// "<fid>":"<value>" members, comma-separated.
class Values {
 public:
  explicit Values(std::string& out) : out_(out) { out_ += '{'; }
  ~Values() { out_ += '}'; }
  Values(const Values&) = delete;
  Values& operator=(const Values&) = delete;

  std::string& field(std::string_view fid) {
    if (!first_) out_ += ',';
    first_ = false;
    out_ += '"';
    out_ += fid;
    out_ += R"(":")";
    return out_;
  }
  void text(std::string_view fid, std::string_view value) {
    field(fid) += value;
    out_ += '"';
  }
  void number(std::string_view fid, std::int64_t value) {
    append_int(field(fid), value);
    out_ += '"';
  }
  void signed_number(std::string_view fid, std::int64_t value) {
    append_signed(field(fid), value);
    out_ += '"';
  }
  // A price signed against the previous close, as Kiwoom sends them.
  void price(std::string_view fid, const PriceBasis& basis,
             std::int64_t value) {
    std::string& o = field(fid);
    if (value > basis.previous_close) o += '+';
    if (value < basis.previous_close) o += '-';
    append_int(o, value);
    out_ += '"';
  }

 private:
  std::string& out_;
  bool first_ = true;
};

}  // namespace

ClientRequest KiwoomDialect::read(std::string_view frame) {
  ClientRequest request;
  json::Document doc;
  if (doc.parse(frame) != json::JsonError::none) return request;
  const json::Value root = doc.root();
  const std::optional<std::string_view> trnm = root["trnm"].plain_string();
  if (!trnm) return request;
  if (*trnm == "PING") {
    request.kind = ClientRequest::Kind::heartbeat;
  } else if (*trnm == "LOGIN") {
    request.kind = ClientRequest::Kind::login;
    request.secret = root["token"].decoded_string().value_or("");
  } else if (*trnm == "REG" || *trnm == "REMOVE") {
    for (json::Value entry : root["data"].elements()) {
      for (json::Value type : entry["type"].elements()) {
        for (json::Value item : entry["item"].elements()) {
          const auto t = type.decoded_string();
          const auto i = item.decoded_string();
          if (t && i && !t->empty() && !i->empty()) {
            request.keys.push_back(*t + "|" + *i);
          }
        }
      }
    }
    if (request.keys.empty()) {
      request.reply = reply(*trnm, 1, "잘못된 요청입니다 (no item/type)");
      return request;
    }
    request.kind = *trnm == "REG" ? ClientRequest::Kind::subscribe
                                  : ClientRequest::Kind::unsubscribe;
  }
  return request;
}

std::string KiwoomDialect::login_ok() { return reply("LOGIN", 0, ""); }
std::string KiwoomDialect::login_failed() {
  return reply("LOGIN", 8005,
               "토큰 인증에 실패했습니다 [CODE=8005, MESSAGE=Token이 "
               "유효하지 않습니다]");
}
std::string KiwoomDialect::login_in_use() { return reply("LOGIN", 1, kInUse); }
std::string KiwoomDialect::kicked() {
  return system_message("R10001",
                        "동일한 App key로 접속이 되었습니다. 기존 세션은 "
                        "종료가 됩니다");
}
std::string KiwoomDialect::token_expired() {
  return system_message("8005", "Token이 유효하지 않습니다");
}
std::string KiwoomDialect::ping(std::uint64_t) { return R"({"trnm":"PING"})"; }
std::string KiwoomDialect::missed_pings() {
  return system_message("R10002",
                        "사용자 프로그램으로부터 Heartbeat(연결유지) 메시지가 "
                        "오지않아서 접속을 종료합니다");
}
std::string KiwoomDialect::notice(std::string_view text) {
  return system_message("R10000", text);
}

std::vector<std::string> KiwoomDialect::subscribe_replies(
    const ClientRequest&, std::span<const KeyOutcome> outcomes) {
  // One reply per REG: OK, or the first key's failure.
  for (const KeyOutcome& o : outcomes) {
    if (o.outcome != SubscribeOutcome::subscribed &&
        o.outcome != SubscribeOutcome::already) {
      switch (o.outcome) {
        case SubscribeOutcome::max_subscriptions:
          return {max_subscriptions(o.key)};
        case SubscribeOutcome::rejected:
          return {rejected(o.key, o.reason)};
        case SubscribeOutcome::auth_failed:
          return {auth_failed(o.key)};
        default:
          return {in_use(o.key)};
      }
    }
  }
  return {reply("REG", 0, "")};
}

std::vector<std::string> KiwoomDialect::unsubscribe_replies(
    const ClientRequest&, const std::vector<bool>&) {
  return {reply("REMOVE", 0, "")};
}

std::string KiwoomDialect::subscribed(std::string_view) {
  return reply("REG", 0, "");
}
std::string KiwoomDialect::already(std::string_view) {
  return reply("REG", 0, "");
}
std::string KiwoomDialect::max_subscriptions(std::string_view) {
  return reply("REG", 1, kCapMessage);
}
std::string KiwoomDialect::rejected(std::string_view, std::string_view reason) {
  return reply("REG", 1, reason.empty() ? "등록 실패" : reason);
}
std::string KiwoomDialect::auth_failed(std::string_view) {
  return reply("REG", 1, kNotLoggedIn);
}
std::string KiwoomDialect::in_use(std::string_view) {
  return reply("REG", 1, kInUse);
}
std::string KiwoomDialect::unsubscribed(std::string_view, bool) {
  return reply("REMOVE", 0, "");
}

void KiwoomDialect::append_data(std::string& out, std::string_view key,
                                std::uint64_t first_seq, std::size_t records,
                                std::int64_t sent_ns) {
  const KeyParts parts = split(key);
  char time_buf[6];
  clock_.hhmmss(sent_ns, time_buf);
  const std::string_view time(time_buf, 6);
  const bool trade = parts.type == kKiwoomTradeType;
  out += R"({"trnm":"REAL","data":[)";
  for (std::size_t i = 0; i < records; ++i) {
    if (i > 0) out += ',';
    out += R"({"type":)";
    json::append_quoted(out, parts.type);
    out += trade ? R"(,"name":"주식체결","item":)"
                 : R"(,"name":"주식호가잔량","item":)";
    json::append_quoted(out, parts.item);
    out += R"(,"values":)";
    if (trade) {
      append_trade(out, parts.item, first_seq + i, time);
    } else {
      append_book(out, parts.item, first_seq + i, time);
    }
    out += '}';
  }
  out += "]}";
  if (trade) {
    auto it = last_trade_.find(parts.item);
    if (it == last_trade_.end()) {
      it = last_trade_.emplace(std::string(parts.item), 0).first;
    }
    it->second = first_seq + records - 1;
  }
}

// FIDs of a 0B entry (§2.6).
void KiwoomDialect::append_trade(std::string& out, std::string_view item,
                                 std::uint64_t seq, std::string_view time) {
  const PriceBasis basis = basis_for(item);
  const std::int64_t price = trade_price(basis, seq);
  const std::int64_t change = price - basis.previous_close;
  const auto volume = static_cast<std::int64_t>(trade_volume(seq));
  const auto cumulative = static_cast<std::int64_t>(cumulative_volume(seq));
  Values v(out);
  v.text("20", time);
  v.price("10", basis, price);
  v.signed_number("11", change);
  std::string& percent = v.field("12");  // signed, like FID 11
  if (change > 0) percent += '+';
  append_hundredths(percent, change * 10'000 / basis.previous_close);
  out += '"';
  v.price("27", basis, price + basis.tick);
  v.price("28", basis, price);
  v.signed_number("15", buyer_initiated(seq) ? volume : -volume);
  v.number("13", cumulative);
  v.number("14", cumulative * price / 1'000'000);
  v.price("16", basis, basis.open());
  v.price("17", basis, basis.high());
  v.price("18", basis, basis.low());
  const char sign = change_sign(basis, price);
  v.text("25", std::string_view(&sign, 1));
  v.text("26", "0");
  v.text("29", "0");
  v.text("30", "0.00");
  v.text("31", "0.00");
  v.text("32", "0");
  v.text("228", "100.00");
  v.text("290", "2");
  v.text("9081", "1");
}

// FIDs of a 0D entry (§2.6).
void KiwoomDialect::append_book(std::string& out, std::string_view item,
                                std::uint64_t seq, std::string_view time) {
  const PriceBasis basis = basis_for(item);
  std::uint64_t last_trade = 0;
  if (auto it = last_trade_.find(item); it != last_trade_.end()) {
    last_trade = it->second;
  }
  const std::int64_t bid = trade_price(basis, last_trade);
  std::int64_t totals[2] = {0, 0};
  Values v(out);
  v.text("21", time);
  char fid[4];
  auto fid_of = [&](int n) {
    const char* end = std::to_chars(fid, fid + sizeof(fid), n).ptr;
    return std::string_view(fid, static_cast<std::size_t>(end - fid));
  };
  for (int i = 0; i < 10; ++i) {
    const auto ask_q = static_cast<std::int64_t>(
        1000 + (seq * 13 + static_cast<std::uint64_t>(i * 7)) % 50 * 100);
    const auto bid_q = static_cast<std::int64_t>(
        1000 + (seq * 13 + static_cast<std::uint64_t>(i * 7 + 1)) % 50 * 100);
    totals[0] += ask_q;
    totals[1] += bid_q;
    v.price(fid_of(41 + i), basis, bid + (i + 1) * basis.tick);
    v.number(fid_of(61 + i), ask_q);
    v.text(fid_of(81 + i), "0");
    v.price(fid_of(51 + i), basis, bid - i * basis.tick);
    v.number(fid_of(71 + i), bid_q);
    v.text(fid_of(91 + i), "0");
  }
  v.number("121", totals[0]);
  v.text("122", "0");
  v.number("125", totals[1]);
  v.text("126", "0");
  v.number("23", bid);
  v.text("24", "0");
  v.number("13", static_cast<std::int64_t>(cumulative_volume(last_trade)));
}

std::string KiwoomDialect::malformed(std::size_t i) {
  // Each is rejected by a Kiwoom codec: a REAL 0B whose cumulative volume is
  // not a number, broken JSON, an empty frame, no trnm, a REAL whose data is
  // not a list, not JSON at all.
  static constexpr std::string_view kSamples[] = {
      R"({"trnm":"REAL","data":[{"type":"0B","item":"005930","values":{"20":"093015","10":"+71500","15":"+5","13":"abc"}}]})",
      R"({"trnm":)",
      "",
      R"({"data":[]})",
      R"({"trnm":"REAL","data":{}})",
      "not json at all",
  };
  return std::string(kSamples[i % std::size(kSamples)]);
}

}  // namespace examples::sim
