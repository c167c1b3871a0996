// Test that header file is self-contained.
#include "kiwoom/kiwoom_codec.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "kiwoom/kiwoom_protocol.h"
#include "support/broker_samples.h"
#include "support/count_allocations.h"

// Sample frames are those of reference/broker-protocols.md §2.9 (the 0B
// trade with all its FIDs, LOGIN/REG/PING/SYSTEM frames), plus a full 0D
// book built from the FID table of §2.6 (the reference elides it).

namespace examples::kiwoom {
namespace {

using feedkit::FrameKind;

using samples::kKiwoomBookEntry;
using samples::kKiwoomTradeEntry;

std::string real(std::string_view entries) {
  return R"({"trnm":"REAL","data":[)" + std::string(entries) + "]}";
}

// A 0D entry: asks 20800 + 50·i (signed like the feed: -, +, -, …), bids
// 20750 − 50·i, quantities 100·(i+1) and 200·(i+1), totals and changes.
std::map<int, std::string> book_values() {
  std::map<int, std::string> v;
  v[21] = "165207";
  for (int i = 0; i < 10; ++i) {
    const char* sign = i % 2 == 0 ? "-" : "+";
    v[41 + i] = sign + std::to_string(20800 + 50 * i);
    v[51 + i] = sign + std::to_string(20750 - 50 * i);
    v[61 + i] = std::to_string(100 * (i + 1));
    v[71 + i] = std::to_string(200 * (i + 1));
    v[81 + i] = "-" + std::to_string(i);
    v[91 + i] = "+" + std::to_string(i);
  }
  v[121] = "5500";
  v[122] = "-1036021";
  v[125] = "11000";
  v[126] = "+1062126";
  v[23] = "20850";
  v[24] = "332941";
  v[13] = "30379650";
  return v;
}

std::string book_entry(const std::map<int, std::string>& values,
                       std::string_view item = "005930") {
  std::string out = R"({"type":"0D","name":"주식호가잔량","item":")" +
                    std::string(item) + R"(","values":{)";
  bool first = true;
  for (const auto& [fid, value] : values) {
    if (!first) out += ',';
    first = false;
    out += '"' + std::to_string(fid) + R"(":")" + value + '"';
  }
  return out + "}}";
}

// kKiwoomTradeEntry with FID `fid`'s value replaced.
std::string trade_entry_with(std::string_view fid, std::string_view value) {
  std::string entry(kKiwoomTradeEntry);
  const std::string key = "\"" + std::string(fid) + "\":\"";
  const std::size_t at = entry.find(key);
  EXPECT_NE(at, std::string::npos) << fid;
  const std::size_t begin = at + key.size();
  entry.replace(begin, entry.find('"', begin) - begin, value);
  return entry;
}

KiwoomCodec make_codec() { return KiwoomCodec::create().value(); }

const Trade& trade_at(const std::vector<MarketEvent>& events, std::size_t i) {
  return std::get<Trade>(events.at(i));
}
const Book& book_at(const std::vector<MarketEvent>& events, std::size_t i) {
  return std::get<Book>(events.at(i));
}

Price won(std::int64_t units) { return *Price::from_units(units); }

// --- REAL frames ------------------------------------------------------------

TEST(KiwoomCodec, DecodesReferenceTradeEntry) {
  KiwoomCodec codec = make_codec();
  std::vector<MarketEvent> events;
  const auto result = codec.decode(real(kKiwoomTradeEntry), events);
  ASSERT_TRUE(result.ok()) << to_string(result.error);
  ASSERT_EQ(result.events, 1u);
  const Trade& t = trade_at(events, 0);
  EXPECT_EQ(t.symbol.view(), "005930");
  EXPECT_EQ(t.time.seconds, 16 * 3600 + 52 * 60 + 8);
  EXPECT_EQ(t.time.date, 0);          // not in the feed
  EXPECT_EQ(t.price, won(20800));     // "-20800": below the previous close
  EXPECT_EQ(t.volume, 82);            // "+82"
  EXPECT_EQ(t.aggressor, Side::buy);  // '+' = buy-initiated
  EXPECT_EQ(t.cumulative_volume, 30379732);
  EXPECT_EQ(codec.stats().trades, 1u);
}

TEST(KiwoomCodec, ReadsTheAggressorFromTheSignOfFid15) {
  KiwoomCodec codec = make_codec();
  std::vector<MarketEvent> events;
  ASSERT_TRUE(codec.decode(real(trade_entry_with("15", "-7")), events).ok());
  ASSERT_TRUE(codec.decode(real(trade_entry_with("15", "7")), events).ok());
  EXPECT_EQ(trade_at(events, 0).aggressor, Side::sell);
  EXPECT_EQ(trade_at(events, 0).volume, 7);
  EXPECT_EQ(trade_at(events, 1).aggressor, Side::unknown);
}

TEST(KiwoomCodec, DecodesAFullBookEntry) {
  ASSERT_EQ(book_entry(book_values()), kKiwoomBookEntry);  // the same entry
  KiwoomCodec codec = make_codec();
  std::vector<MarketEvent> events;
  const auto result = codec.decode(real(kKiwoomBookEntry), events);
  ASSERT_TRUE(result.ok()) << to_string(result.error);
  const Book& b = book_at(events, 0);
  EXPECT_EQ(b.symbol.view(), "005930");
  EXPECT_EQ(b.time.seconds, 16 * 3600 + 52 * 60 + 7);
  for (std::size_t i = 0; i < kBookDepth; ++i) {
    const auto n = static_cast<std::int64_t>(i);
    EXPECT_EQ(b.asks[i], (Level{won(20800 + 50 * n), 100 * (n + 1)})) << i;
    EXPECT_EQ(b.bids[i], (Level{won(20750 - 50 * n), 200 * (n + 1)})) << i;
  }
  EXPECT_EQ(b.total_ask_quantity, 5500);
  EXPECT_EQ(b.total_bid_quantity, 11000);
  EXPECT_EQ(b.cumulative_volume, 30379650);
}

TEST(KiwoomCodec, DecodesEveryEntryOfAMultiEntryFrame) {
  KiwoomCodec codec = make_codec();
  const std::string other_item =
      std::string(kKiwoomTradeEntry)
          .replace(kKiwoomTradeEntry.find("005930"), 6, "000660");
  const std::string frame = real(
      std::string(kKiwoomTradeEntry) + "," + book_entry(book_values()) + "," +
      R"({"type":"0C","name":"주식우선호가","item":"005930","values":{"27":"-20800"}},)" +
      other_item);
  std::vector<MarketEvent> events;
  const auto result = codec.decode(frame, events);
  ASSERT_TRUE(result.ok()) << to_string(result.error);
  ASSERT_EQ(result.events, 3u);
  EXPECT_EQ(trade_at(events, 0).symbol.view(), "005930");
  EXPECT_EQ(book_at(events, 1).symbol.view(), "005930");
  EXPECT_EQ(trade_at(events, 2).symbol.view(), "000660");
  EXPECT_EQ(codec.stats().skipped_entries, 1u);
  EXPECT_EQ(codec.stats().trades, 2u);
  EXPECT_EQ(codec.stats().books, 1u);
}

TEST(KiwoomCodec, ReadsEmptyValuesAsAbsent) {
  KiwoomCodec codec = make_codec();
  std::vector<MarketEvent> events;
  ASSERT_TRUE(codec.decode(real(trade_entry_with("13", "")), events).ok());
  ASSERT_TRUE(codec.decode(real(trade_entry_with("20", "")), events).ok());
  std::map<int, std::string> values = book_values();
  values[50] = "";  // ask 10 price
  values[70] = "";  // ask 10 quantity
  values.erase(125);
  values.erase(21);
  ASSERT_TRUE(codec.decode(real(book_entry(values)), events).ok());
  EXPECT_EQ(trade_at(events, 0).cumulative_volume, std::nullopt);
  EXPECT_EQ(trade_at(events, 1).time.seconds, -1);
  EXPECT_EQ(book_at(events, 2).asks[9], Level{});
  EXPECT_EQ(book_at(events, 2).total_bid_quantity, std::nullopt);
  EXPECT_EQ(book_at(events, 2).time.seconds, -1);
}

TEST(KiwoomCodec, RejectsMalformedFramesWithTheirReason) {
  std::map<int, std::string> bad_level = book_values();
  bad_level[61] = "x";
  std::map<int, std::string> bad_book_price = book_values();
  bad_book_price[55] = "+2O750";
  const std::pair<std::string, KiwoomError> cases[] = {
      {"", KiwoomError::bad_json},
      {R"({"trnm":"REAL","data":[)", KiwoomError::bad_json},
      {R"({"data":[]})", KiwoomError::no_trnm},
      {R"({"trnm":"LOGIN","return_code":0})", KiwoomError::not_real},
      {R"({"trnm":"REAL"})", KiwoomError::bad_data},
      {R"({"trnm":"REAL","data":{}})", KiwoomError::bad_data},
      {real("5"), KiwoomError::bad_entry},
      {real(R"({"item":"005930","values":{}})"), KiwoomError::bad_entry},
      {real(R"({"type":"0B","values":{}})"), KiwoomError::bad_entry},
      {real(R"({"type":"0B","item":"005930","values":[]})"),
       KiwoomError::bad_entry},
      {real(R"({"type":"0B","item":"005930","values":{"10":-20800}})"),
       KiwoomError::bad_value},
      {real(R"({"type":"0B","item":"","values":{"10":"1","15":"1"}})"),
       KiwoomError::bad_symbol},
      {real(trade_entry_with("20", "256000")), KiwoomError::bad_time},
      {real(trade_entry_with("10", "")), KiwoomError::bad_price},
      {real(trade_entry_with("10", "0")), KiwoomError::bad_price},
      {real(trade_entry_with("10", "--20800")), KiwoomError::bad_price},
      {real(trade_entry_with("15", "")), KiwoomError::bad_quantity},
      {real(trade_entry_with("13", "-5")), KiwoomError::bad_quantity},
      {real(book_entry(bad_level)), KiwoomError::bad_quantity},
      {real(book_entry(bad_book_price)), KiwoomError::bad_price},
  };
  KiwoomCodec codec = make_codec();
  for (const auto& [frame, error] : cases) {
    std::vector<MarketEvent> events;
    const auto result = codec.decode(frame, events);
    EXPECT_EQ(result.error, error) << frame;
    EXPECT_TRUE(events.empty()) << frame;
  }
  EXPECT_EQ(codec.stats().rejected.total(), std::size(cases));
  EXPECT_EQ(codec.stats().decoded_frames, 0u);
}

TEST(KiwoomCodec, RejectsTheWholeFrameWhenOneEntryIsBad) {
  KiwoomCodec codec = make_codec();
  std::vector<MarketEvent> events;
  const auto result = codec.decode(
      real(std::string(kKiwoomTradeEntry) + "," + trade_entry_with("10", "x")),
      events);
  EXPECT_EQ(result.error, KiwoomError::bad_price);
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(codec.stats().trades, 0u);
}

TEST(KiwoomCodec, DecodingAllocatesNothingOnceWarm) {
  KiwoomCodec codec = make_codec();
  const std::string frame =
      real(std::string(kKiwoomTradeEntry) + "," + book_entry(book_values()));
  std::vector<MarketEvent> events;
  events.reserve(4);
  ASSERT_TRUE(codec.decode(frame, events).ok());  // grows the token buffer
  feedkit::testing::AllocationCounter allocations;
  for (int i = 0; i < 100; ++i) {
    events.clear();
    ASSERT_TRUE(codec.decode(frame, events).ok());
  }
  EXPECT_EQ(allocations.count(), 0);
}

// --- Other frames
// -------------------------------------------------------------

TEST(KiwoomCodec, ReadsRepliesPingsAndSystemMessages) {
  KiwoomCodec codec = make_codec();
  Message m = codec.read(R"({"trnm":"LOGIN","return_code":0,"return_msg":""})");
  EXPECT_EQ(m.kind, MessageKind::login);
  EXPECT_EQ(m.return_code, 0);
  m = codec.read(R"({"trnm":"REG","return_code":"1","return_msg":"x"})");
  EXPECT_EQ(m.kind, MessageKind::reg);
  EXPECT_EQ(m.return_code, 1);  // a string is accepted too
  EXPECT_EQ(m.return_msg, "x");
  EXPECT_EQ(codec.read(R"({"trnm":"REMOVE","return_code":0})").kind,
            MessageKind::remove);
  EXPECT_EQ(codec.read(R"({"trnm":"PING"})").kind, MessageKind::ping);
  EXPECT_EQ(codec.read("PING").kind, MessageKind::ping);
  EXPECT_EQ(codec.read(real(kKiwoomTradeEntry)).kind, MessageKind::real);
  const std::string kicked =
      R"({"trnm":"SYSTEM","code":"R10001","message":"동일한 App key로 접속이 되었습니다. 기존 세션은 종료가 됩니다"})";
  m = codec.read(kicked);
  EXPECT_EQ(m.kind, MessageKind::system);
  EXPECT_EQ(m.code, "R10001");
  EXPECT_EQ(codec.read(R"({"trnm":"CNSRLST","data":[]})").kind,
            MessageKind::other);
  EXPECT_EQ(codec.stats().pings, 2u);
  EXPECT_EQ(codec.stats().system_messages, 1u);

  EXPECT_EQ(codec.read(R"({"trnm":"REG"})").error,
            KiwoomError::bad_return_code);
  EXPECT_EQ(codec.read(R"({"trnm":"LOGIN","return_code":"zero"})").error,
            KiwoomError::bad_return_code);
  EXPECT_EQ(codec.read(R"({"trnm":5})").error, KiwoomError::no_trnm);
  EXPECT_EQ(codec.read("PONG").error, KiwoomError::bad_json);
  EXPECT_EQ(codec.stats().rejected.total(), 4u);
  EXPECT_EQ(codec.stats().messages, 12u);
}

TEST(KiwoomCodec, RecognisesTokenRejectionsByCodeOrText) {
  KiwoomCodec codec = make_codec();
  const auto login = [&](std::string_view body) { return codec.read(body); };
  EXPECT_TRUE(is_token_rejection(
      login(R"({"trnm":"LOGIN","return_code":8005,"return_msg":""})")));
  EXPECT_TRUE(is_token_rejection(login(
      R"({"trnm":"LOGIN","return_code":805004,"return_msg":"토큰 인증에 실패했습니다 [CODE=8005, MESSAGE=Token이 유효하지 않습니다]"})")));
  EXPECT_TRUE(is_token_rejection(
      login(R"({"trnm":"LOGIN","return_code":"8103","return_msg":""})")));
  EXPECT_FALSE(is_token_rejection(
      login(R"({"trnm":"LOGIN","return_code":1,"return_msg":"busy"})")));
  EXPECT_FALSE(is_token_rejection(
      login(R"({"trnm":"LOGIN","return_code":0,"return_msg":"CODE=8005"})")));
  EXPECT_FALSE(is_token_rejection(
      login(R"({"trnm":"REG","return_code":8005,"return_msg":""})")));
}

// --- Requests
// -------------------------------------------------------------------

TEST(KiwoomRequests, BuildsTokenLoginAndRegistrationFrames) {
  EXPECT_EQ(token_request_body("APPKEY", "SECRET"),
            R"({"grant_type":"client_credentials","appkey":"APPKEY",)"
            R"("secretkey":"SECRET"})");
  EXPECT_EQ(login_frame("WQJCwyqInphKnR3bSRtB9NE1lv"),
            R"({"trnm":"LOGIN","token":"WQJCwyqInphKnR3bSRtB9NE1lv"})");
  EXPECT_EQ(registration_frame(Registration::reg, {"005930"}, {"0B", "0D"}),
            R"({"trnm":"REG","grp_no":"1","refresh":"1","data":[{"item":)"
            R"(["005930"],"type":["0B","0D"]}]})");
  EXPECT_EQ(registration_frame(Registration::remove, {"005930"}, {"0B"},
                               {.grp_no = "12", .refresh = "0"}),
            R"({"trnm":"REMOVE","grp_no":"12","data":[{"item":["005930"],)"
            R"("type":["0B"]}]})");
  EXPECT_EQ(subscription_key("0B", "005930_AL"), "0B|005930_AL");
  const auto parts = split_subscription_key("0g|005930");
  ASSERT_TRUE(parts);
  EXPECT_EQ(parts->type, "0g");
  EXPECT_EQ(parts->item, "005930");
  EXPECT_FALSE(split_subscription_key("0B"));
}

TEST(KiwoomRequests, ValidatesRegistrationOptions) {
  EXPECT_TRUE(RegistrationOptions{}.validate().ok());
  EXPECT_FALSE((RegistrationOptions{.grp_no = ""}).validate().ok());
  EXPECT_FALSE((RegistrationOptions{.grp_no = "12345"}).validate().ok());
  EXPECT_FALSE((RegistrationOptions{.grp_no = "a"}).validate().ok());
  EXPECT_FALSE((RegistrationOptions{.refresh = "2"}).validate().ok());
}

TEST(KiwoomRequests, ParsesTheTokenAndItsKstExpiry) {
  const auto token = parse_token_response(
      R"({"expires_dt":"20241107083713","token_type":"bearer",)"
      R"("token":"WQJCwyqInphKnR3bSRtB9NE1lv","return_code":0,)"
      R"("return_msg":"정상적으로 처리되었습니다"})");
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->token, "WQJCwyqInphKnR3bSRtB9NE1lv");
  EXPECT_EQ(token->expires_dt, "20241107083713");
  // 2024-11-07 08:37:13 KST = 2024-11-06 23:37:13 UTC.
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(
                token->expires_at.time_since_epoch())
                .count(),
            1730936233);
}

TEST(KiwoomRequests, ReportsTokenErrorsWithoutSecrets) {
  const auto refused = parse_token_response(
      R"({"return_code":3,"return_msg":"앱키 오류","token":"LEAKED"})");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(refused.status().message().find("앱키 오류"), std::string::npos);
  EXPECT_EQ(refused.status().message().find("LEAKED"), std::string::npos);
  const auto no_expiry = parse_token_response(
      R"({"token":"LEAKED","return_code":0,"expires_dt":"2024110708"})");
  ASSERT_FALSE(no_expiry.ok());
  EXPECT_EQ(no_expiry.status().message().find("LEAKED"), std::string::npos);
  EXPECT_FALSE(parse_token_response("token=LEAKED").ok());
  EXPECT_EQ(
      parse_token_response("token=LEAKED").status().message().find("LEAKED"),
      std::string::npos);
  EXPECT_FALSE(parse_token_response(R"({"return_code":0})").ok());
}

// --- KiwoomProtocol
// -------------------------------------------------------------

struct ProtocolFixture {
  explicit ProtocolFixture(KiwoomProtocolOptions options = {})
      : protocol(KiwoomProtocol::create(codec, std::move(options)).value()) {}
  std::shared_ptr<KiwoomCodec> codec =
      std::make_shared<KiwoomCodec>(KiwoomCodec::create().value());
  std::unique_ptr<KiwoomProtocol> protocol;
  feedkit::Credentials credentials{.secret = "TOKEN-1"};
};

TEST(KiwoomProtocol, LogsInWithTheTokenAndReadsTheReply) {
  ProtocolFixture f;
  const std::vector<std::string> login =
      f.protocol->login_frames(f.credentials);
  ASSERT_EQ(login.size(), 1u);
  EXPECT_EQ(login[0], login_frame("TOKEN-1"));
  EXPECT_EQ(f.protocol->classify(R"({"trnm":"LOGIN","return_code":0})").kind,
            FrameKind::login_ok);
  EXPECT_EQ(
      f.protocol
          ->classify(R"({"trnm":"LOGIN","return_code":8005,"return_msg":"x"})")
          .kind,
      FrameKind::auth_rejected);
  const feedkit::Classified other = f.protocol->classify(
      R"({"trnm":"LOGIN","return_code":1,"return_msg":"system busy"})");
  EXPECT_EQ(other.kind, FrameKind::busy);
  EXPECT_EQ(other.reason, "LOGIN 1 system busy");
  EXPECT_EQ(other.reason.find("TOKEN-1"), std::string::npos);
}

TEST(KiwoomProtocol, MatchesRegistrationRepliesToRequestsInOrder) {
  ProtocolFixture f;
  (void)f.protocol->login_frames(f.credentials);
  EXPECT_EQ(f.protocol->subscribe_frame("0B|005930", f.credentials),
            registration_frame(Registration::reg, {"005930"}, {"0B"}));
  (void)f.protocol->unsubscribe_frame("0D|000660", f.credentials);
  (void)f.protocol->subscribe_frame("0D|005930", f.credentials);

  feedkit::Classified what =
      f.protocol->classify(R"({"trnm":"REG","return_code":0})");
  EXPECT_EQ(what.kind, FrameKind::subscribe_ack);
  EXPECT_EQ(what.key, "0B|005930");
  what = f.protocol->classify(R"({"trnm":"REG","return_code":0})");
  EXPECT_EQ(what.kind, FrameKind::subscribe_ack);
  EXPECT_EQ(what.key, "0D|005930");
  what = f.protocol->classify(R"({"trnm":"REMOVE","return_code":1})");
  EXPECT_EQ(what.kind, FrameKind::unsubscribe_ack);
  EXPECT_EQ(what.key, "0D|000660");
  what = f.protocol->classify(R"({"trnm":"REG","return_code":0})");
  EXPECT_EQ(what.kind, FrameKind::notice);  // nothing awaits a reply
  EXPECT_TRUE(what.key.empty());
}

TEST(KiwoomProtocol, ANewConnectionForgetsAwaitedReplies) {
  ProtocolFixture f;
  (void)f.protocol->subscribe_frame("0B|005930", f.credentials);
  (void)f.protocol->login_frames(f.credentials);
  EXPECT_EQ(f.protocol->classify(R"({"trnm":"REG","return_code":0})").kind,
            FrameKind::notice);
}

TEST(KiwoomProtocol, ClassifiesRegistrationFailures) {
  ProtocolFixture f;
  (void)f.protocol->subscribe_frame("0B|005930", f.credentials);
  (void)f.protocol->subscribe_frame("0B|XXXXXX", f.credentials);
  feedkit::Classified what = f.protocol->classify(
      R"({"trnm":"REG","return_code":1,"return_msg":"등록 종목수 초과"})");
  EXPECT_EQ(what.kind, FrameKind::max_subscriptions);
  EXPECT_EQ(what.key, "0B|005930");
  what = f.protocol->classify(
      R"({"trnm":"REG","return_code":1,"return_msg":"종목코드 오류"})");
  EXPECT_EQ(what.kind, FrameKind::subscribe_reject);
  EXPECT_EQ(what.key, "0B|XXXXXX");
  EXPECT_EQ(what.reason, "REG 1 종목코드 오류");

  ProtocolFixture no_marker({.cap_marker = ""});
  (void)no_marker.protocol->subscribe_frame("0B|005930", f.credentials);
  EXPECT_EQ(
      no_marker.protocol
          ->classify(
              R"({"trnm":"REG","return_code":1,"return_msg":"등록 종목수 초과"})")
          .kind,
      FrameKind::subscribe_reject);
}

TEST(KiwoomProtocol, EchoesPingsAndHandlesSystemMessages) {
  ProtocolFixture f;
  const std::string ping = R"({"trnm":"PING"})";
  feedkit::Classified what = f.protocol->classify(ping);
  EXPECT_EQ(what.kind, FrameKind::heartbeat);
  EXPECT_EQ(what.reply, ping);
  EXPECT_EQ(f.protocol->classify("PING").reply, "PING");

  what = f.protocol->classify(
      R"({"trnm":"SYSTEM","code":"R10001","message":"동일한 App key로 접속이 되었습니다"})");
  EXPECT_EQ(what.kind, FrameKind::busy);  // back off, do not kick it back
  EXPECT_TRUE(what.reply.empty());        // never echoed
  what = f.protocol->classify(
      R"({"trnm":"SYSTEM","code":"R10002","message":"Heartbeat"})");
  EXPECT_EQ(what.kind, FrameKind::notice);
  EXPECT_EQ(what.reason, "SYSTEM R10002 Heartbeat");
  EXPECT_TRUE(what.reply.empty());

  EXPECT_EQ(f.protocol->classify(real(kKiwoomTradeEntry)).kind,
            FrameKind::data);
  EXPECT_EQ(f.protocol->classify("{").kind, FrameKind::malformed);
  EXPECT_EQ(f.protocol->classify(R"({"trnm":"CNSRLST"})").kind,
            FrameKind::ignore);
}

TEST(KiwoomProtocolOptions, RejectsBadRegistrationOptions) {
  auto codec = std::make_shared<KiwoomCodec>(KiwoomCodec::create().value());
  EXPECT_FALSE(
      KiwoomProtocol::create(codec, {.registration = {.grp_no = "x"}}).ok());
  EXPECT_FALSE(KiwoomProtocol::create(nullptr).ok());
}

}  // namespace
}  // namespace examples::kiwoom
