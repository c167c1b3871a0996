// SPDX-License-Identifier: Apache-2.0
#include "sim/kis_dialect.h"

#include <cctype>
#include <chrono>
#include <iterator>
#include <optional>

#include "common/json_reader.h"

namespace examples::sim {
namespace {

using feedkit::testing::ClientRequest;

// The AES key and iv KIS sends with every SUBSCRIBE SUCCESS (the quote TRs
// are not encrypted, but the reply carries them anyway).
constexpr std::string_view kOutput =
    R"(,"output":{"iv":"0123456789abcdef","key":"abcdefghijklmnopabcdefghijklmnop"})";

struct KeyParts {
  std::string_view tr_id;
  std::string_view tr_key;
};
KeyParts split(std::string_view key) {
  const std::size_t bar = key.find('|');
  if (bar == std::string_view::npos) return {key, {}};
  return {key.substr(0, bar), key.substr(bar + 1)};
}

// A JSON control reply, as KIS sends for every request.
std::string control(std::string_view tr_id, std::string_view tr_key, bool ok,
                    std::string_view msg_cd, std::string_view msg1,
                    bool with_output = false) {
  std::string out = R"({"header":{"tr_id":)";
  json::append_quoted(out, tr_id);
  out += R"(,"tr_key":)";
  json::append_quoted(out, tr_key);
  out += R"(,"encrypt":"N"},"body":{"rt_cd":)";
  out += ok ? R"("0")" : R"("1")";
  out += R"(,"msg_cd":)";
  json::append_quoted(out, msg_cd);
  out += R"(,"msg1":)";
  json::append_quoted(out, msg1);
  if (with_output) out += kOutput;
  out += "}}";
  return out;
}

std::string control(std::string_view key, bool ok, std::string_view msg_cd,
                    std::string_view msg1, bool with_output = false) {
  const KeyParts parts = split(key);
  return control(parts.tr_id, parts.tr_key, ok, msg_cd, msg1, with_output);
}

ClientRequest bad_request(std::string_view tr_id, std::string_view tr_key,
                          std::string_view msg_cd, std::string_view msg1) {
  ClientRequest request;
  request.reply = control(tr_id, tr_key, false, msg_cd, msg1);
  return request;
}

bool valid_tr_key(std::string_view tr_key) {
  if (tr_key.empty() || tr_key.size() > 12) return false;
  for (char c : tr_key) {
    if (!std::isalnum(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

void append_caret(std::string& out, std::int64_t value) {
  out.push_back('^');
  append_int(out, value);
}
void append_caret(std::string& out, std::string_view text) {
  out.push_back('^');
  out.append(text);
}

}  // namespace

ClientRequest KisDialect::read(std::string_view frame) {
  json::Document doc;
  if (doc.parse(frame) != json::JsonError::none) {
    return bad_request("", "", "OPSP9999",
                       "JSON PARSING ERROR : invalid json format");
  }
  const json::Value root = doc.root();
  const json::Value header = root["header"];
  if (!header.is(json::Type::object)) {
    return bad_request("", "", "OPSP9998",
                       "JSON PARSING ERROR : header not found");
  }
  if (header["tr_id"].plain_string() ==
      std::optional<std::string_view>("PINGPONG")) {
    ClientRequest request;
    request.kind = ClientRequest::Kind::heartbeat;
    return request;
  }
  const json::Value input = root["body"]["input"];
  if (!root["body"].is(json::Type::object)) {
    return bad_request("", "", "OPSP9997",
                       "JSON PARSING ERROR : body not found");
  }
  if (!input.is(json::Type::object)) {
    return bad_request("", "", "OPSP9996",
                       "JSON PARSING ERROR : input not found");
  }
  const std::string tr_id = input["tr_id"].decoded_string().value_or("");
  const std::optional<std::string> tr_key = input["tr_key"].decoded_string();
  if (!tr_key) {
    return bad_request(tr_id, "", "OPSP9995",
                       "JSON PARSING ERROR : tr_key not found");
  }
  const auto tr_type = header["tr_type"].plain_string();
  if (tr_type != std::optional<std::string_view>("1") &&
      tr_type != std::optional<std::string_view>("2")) {
    return bad_request(tr_id, *tr_key, "OPSP8997",
                       "JSON PARSING ERROR : invalid tr_type");
  }
  const auto custtype = header["custtype"].plain_string();
  if (custtype != std::optional<std::string_view>("P") &&
      custtype != std::optional<std::string_view>("B")) {
    return bad_request(tr_id, *tr_key, "OPSP8998",
                       "JSON PARSING ERROR : invalid custtype");
  }
  if (tr_id != kKisTradeTrId && tr_id != kKisBookTrId) {
    return bad_request(tr_id, *tr_key, "OPSP8991",
                       "SUBSCRIBE ERROR : invalid tr_id");
  }
  if (!valid_tr_key(*tr_key)) {
    return bad_request(tr_id, *tr_key, "OPSP8992",
                       "SUBSCRIBE ERROR : invalid tr_key");
  }
  ClientRequest request;
  request.kind = *tr_type == "1" ? ClientRequest::Kind::subscribe
                                 : ClientRequest::Kind::unsubscribe;
  request.keys.push_back(tr_id + "|" + *tr_key);
  request.secret = header["approval_key"].decoded_string().value_or("");
  return request;
}

std::string KisDialect::ping(std::uint64_t) {
  std::string out = R"({"header":{"tr_id":"PINGPONG","datetime":")";
  const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       feedkit::SteadyClock::now().time_since_epoch())
                       .count();
  out += clock_.datetime(now);
  out += R"("}})";
  return out;
}

std::string KisDialect::subscribed(std::string_view key) {
  return control(key, true, "OPSP0000", "SUBSCRIBE SUCCESS", true);
}
std::string KisDialect::already(std::string_view key) {
  return control(key, false, "OPSP0002", "ALREADY IN SUBSCRIBE");
}
std::string KisDialect::max_subscriptions(std::string_view key) {
  return control(key, false, "OPSP0008", "MAX SUBSCRIBE OVER");
}
std::string KisDialect::rejected(std::string_view key,
                                 std::string_view reason) {
  return control(key, false, "OPSP0009",
                 reason.empty() ? "SUBSCRIBE ERROR : mci send failed" : reason);
}
std::string KisDialect::auth_failed(std::string_view key) {
  return control(key, false, "OPSP0011", "invalid approval : NOT FOUND");
}
std::string KisDialect::in_use(std::string_view key) {
  return control(key, false, "OPSP8996", "ALREADY IN USE appkey");
}
std::string KisDialect::unsubscribed(std::string_view key, bool was_held) {
  return was_held
             ? control(key, true, "OPSP0001", "UNSUBSCRIBE SUCCESS")
             : control(key, false, "OPSP0003", "UNSUBSCRIBE ERROR(not found!)");
}

void KisDialect::append_data(std::string& out, std::string_view key,
                             std::uint64_t first_seq, std::size_t records,
                             std::int64_t sent_ns) {
  const KeyParts parts = split(key);
  char time[6];
  clock_.hhmmss(sent_ns, time);
  out += "0|";
  out += parts.tr_id;
  out.push_back('|');
  out.push_back(static_cast<char>('0' + records / 100 % 10));
  out.push_back(static_cast<char>('0' + records / 10 % 10));
  out.push_back(static_cast<char>('0' + records % 10));
  out.push_back('|');
  const bool trade = parts.tr_id == kKisTradeTrId;
  for (std::size_t i = 0; i < records; ++i) {
    if (i > 0) out.push_back('^');
    if (trade) {
      append_trade(out, parts.tr_key, first_seq + i, time);
    } else {
      append_book(out, parts.tr_key, first_seq + i, time);
    }
  }
  if (trade) {
    auto it = last_trade_.find(parts.tr_key);
    if (it == last_trade_.end()) {
      it = last_trade_.emplace(std::string(parts.tr_key), 0).first;
    }
    it->second = first_seq + records - 1;
  }
}

// One H0STCNT0 record, 46 fields (§1.7).
void KisDialect::append_trade(std::string& out, std::string_view symbol,
                              std::uint64_t seq, const char (&time)[6]) {
  const PriceBasis basis = basis_for(symbol);
  const std::int64_t price = trade_price(basis, seq);
  const std::int64_t change = price - basis.previous_close;
  const auto volume = static_cast<std::int64_t>(trade_volume(seq));
  const auto cumulative = static_cast<std::int64_t>(cumulative_volume(seq));
  const auto sells = static_cast<std::int64_t>(seq / 3);
  const auto buys = static_cast<std::int64_t>(seq) - sells;
  const std::string_view hhmmss(time, 6);
  out += symbol;              // 0 symbol
  append_caret(out, hhmmss);  // 1 time
  append_caret(out, price);   // 2 price
  out.push_back('^');         // 3 sign
  out.push_back(change_sign(basis, price));
  append_caret(out, change);  // 4 change
  out.push_back('^');         // 5 change %
  append_hundredths(out, change * 10'000 / basis.previous_close);
  append_caret(out, price);                             // 6 weighted avg
  append_caret(out, basis.open());                      // 7 open
  append_caret(out, basis.high());                      // 8 high
  append_caret(out, basis.low());                       // 9 low
  append_caret(out, price + basis.tick);                // 10 best ask
  append_caret(out, price);                             // 11 best bid
  append_caret(out, volume);                            // 12 volume
  append_caret(out, cumulative);                        // 13 cumulative
  append_caret(out, cumulative * price);                // 14 value
  append_caret(out, sells);                             // 15 sell count
  append_caret(out, buys);                              // 16 buy count
  append_caret(out, buys - sells);                      // 17 net buys
  append_caret(out, "105.32");                          // 18 strength
  append_caret(out, cumulative / 3);                    // 19 sell qty
  append_caret(out, cumulative - cumulative / 3);       // 20 buy qty
  append_caret(out, buyer_initiated(seq) ? "1" : "5");  // 21 side
  append_caret(out, "66.67");                           // 22 buy ratio
  append_caret(out, "45.12");                           // 23 vs prev day
  append_caret(out, "090000");                          // 24 open time
  append_caret(out, "2");                               // 25 sign vs open
  append_caret(out, price - basis.open());              // 26 vs open
  append_caret(out, "090000");                          // 27 high time
  append_caret(out, "5");                               // 28 sign vs high
  append_caret(out, price - basis.high());              // 29 vs high
  append_caret(out, "090000");                          // 30 low time
  append_caret(out, "2");                               // 31 sign vs low
  append_caret(out, price - basis.low());               // 32 vs low
  append_caret(out, clock_.date());                     // 33 date
  append_caret(out, "20");                              // 34 session
  append_caret(out, "N");                               // 35 halted
  append_caret(out, 1000 + static_cast<std::int64_t>(seq % 50) * 10);  // 36
  append_caret(out, 1200 + static_cast<std::int64_t>(seq % 40) * 10);  // 37
  append_caret(out, 612'345);               // 38 total ask
  append_caret(out, 701'234);               // 39 total bid
  append_caret(out, "0.60");                // 40 turnover
  append_caret(out, cumulative);            // 41 prev day cum
  append_caret(out, "100.00");              // 42 ratio
  append_caret(out, "0");                   // 43 hour class
  append_caret(out, "0");                   // 44 end class
  append_caret(out, basis.previous_close);  // 45 VI price
}

// One H0STASP0 record, 62 fields (§1.8: 59 plus the three KMID_* fields).
void KisDialect::append_book(std::string& out, std::string_view symbol,
                             std::uint64_t seq, const char (&time)[6]) {
  const PriceBasis basis = basis_for(symbol);
  std::uint64_t last_trade = 0;
  if (auto it = last_trade_.find(symbol); it != last_trade_.end()) {
    last_trade = it->second;
  }
  const std::int64_t bid = trade_price(basis, last_trade);
  out += symbol;                                 // 0 symbol
  append_caret(out, std::string_view(time, 6));  // 1 time
  append_caret(out, "0");                        // 2 hour class
  for (int i = 0; i < 10; ++i) append_caret(out, bid + (i + 1) * basis.tick);
  for (int i = 0; i < 10; ++i) append_caret(out, bid - i * basis.tick);
  std::int64_t total_ask = 0;
  std::int64_t total_bid = 0;
  for (int side = 0; side < 2; ++side) {
    for (int i = 0; i < 10; ++i) {
      const auto q = static_cast<std::int64_t>(
          1000 +
          (seq * 13 + static_cast<std::uint64_t>(i * 7 + side)) % 50 * 100);
      (side == 0 ? total_ask : total_bid) += q;
      append_caret(out, q);  // 23-42 quantities
    }
  }
  append_caret(out, total_ask);  // 43
  append_caret(out, total_bid);  // 44
  append_caret(out, "0");        // 45
  append_caret(out, "0");        // 46
  append_caret(out, bid);        // 47 expected price
  append_caret(out, "0");        // 48
  append_caret(out, "0");        // 49
  append_caret(out, "0");        // 50
  append_caret(out, "3");        // 51
  append_caret(out, "0.00");     // 52
  append_caret(out, static_cast<std::int64_t>(cumulative_volume(last_trade)));
  append_caret(out, "0");  // 54
  append_caret(out, "0");  // 55
  append_caret(out, "0");  // 56
  append_caret(out, "0");  // 57
  append_caret(out, "0");  // 58
  append_caret(out, bid);  // 59 KMID_PRC
  append_caret(out, "0");  // 60
  append_caret(out, "0");  // 61
}

std::string KisDialect::malformed(std::size_t i) {
  // Each is rejected by a KIS codec: too few fields, a bad count, broken
  // JSON, an empty frame, a bad header, an encrypted frame without a
  // cipher, JSON without a header.
  static constexpr std::string_view kSamples[] = {
      "0|H0STCNT0|001|005930^093015^notaprice",
      "0|H0STCNT0|abc|005930",
      R"({"header":{"tr_id":)",
      "",
      "0|H0STCNT0",
      "1|H0STCNI0|001|!!!not-base64!!!",
      R"({"body":{}})",
  };
  return std::string(kSamples[i % std::size(kSamples)]);
}

}  // namespace examples::sim
