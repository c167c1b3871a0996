// Test that header file is self-contained.
#include "kis/kis_codec.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/strings/str_join.h"
#include "kis/kis_protocol.h"
#include "support/broker_samples.h"
#include "support/count_allocations.h"

// Sample frames are those of reference/broker-protocols.md §1.12 (the
// 46-field H0STCNT0 record, the 59-field H0STASP0 record, the control
// replies and the AES vector), plus variants built from them.

namespace examples::kis {
namespace {

using feedkit::FrameKind;

using samples::kKisAlreadySubscribed;
using samples::kKisBookRecord;
using samples::kKisCipherIv;
using samples::kKisCipherKey;
using samples::kKisEncryptedTradePayload;
using samples::kKisPingPong;
using samples::kKisReferenceNoticeFrame;
using samples::kKisReferenceNoticePlaintext;
using samples::kKisSubscribeSuccess;
using samples::kKisTradeRecord;

// Returns `record` with field `index` replaced by `value`.
std::string with_field(std::string_view record, std::size_t index,
                       std::string_view value) {
  std::vector<std::string> fields(1);
  for (char c : record) {
    if (c == '^') {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  fields.at(index) = std::string(value);
  return absl::StrJoin(fields, "^");
}

std::string frame(std::string_view tr_id, int count, std::string_view payload,
                  char enc = '0') {
  char digits[8];
  std::snprintf(digits, sizeof digits, "%03d", count);
  return std::string(1, enc) + "|" + std::string(tr_id) + "|" + digits + "|" +
         std::string(payload);
}

std::string reply(std::string_view tr_id, std::string_view tr_key,
                  std::string_view rt_cd, std::string_view msg_cd,
                  std::string_view msg1) {
  return R"({"header":{"tr_id":")" + std::string(tr_id) + R"(","tr_key":")" +
         std::string(tr_key) + R"(","encrypt":"N"},"body":{"rt_cd":")" +
         std::string(rt_cd) + R"(","msg_cd":")" + std::string(msg_cd) +
         R"(","msg1":")" + std::string(msg1) + R"("}})";
}

KisCodec make_codec(KisCodecOptions options = {}) {
  absl::StatusOr<KisCodec> codec = KisCodec::create(std::move(options));
  EXPECT_TRUE(codec.ok()) << codec.status();
  return *std::move(codec);
}

const Trade& trade_at(const std::vector<MarketEvent>& events, std::size_t i) {
  return std::get<Trade>(events.at(i));
}
const Book& book_at(const std::vector<MarketEvent>& events, std::size_t i) {
  return std::get<Book>(events.at(i));
}

// --- Data frames ----------------------------------------------------------

TEST(KisCodec, DecodesReferenceTradeFrame) {
  KisCodec codec = make_codec();
  std::vector<MarketEvent> events;
  const auto result =
      codec.decode(frame("H0STCNT0", 1, kKisTradeRecord), events);
  ASSERT_TRUE(result.ok()) << to_string(result.error);
  EXPECT_EQ(result.events, 1u);
  const Trade& t = trade_at(events, 0);
  EXPECT_EQ(t.symbol.view(), "005930");
  EXPECT_EQ(t.time.seconds, 9 * 3600 + 30 * 60 + 15);
  EXPECT_EQ(t.time.date, 20260715);
  EXPECT_EQ(t.price, *Price::from_units(71500));
  EXPECT_EQ(t.volume, 120);
  EXPECT_EQ(t.cumulative_volume, 3521047);
  EXPECT_EQ(t.aggressor, Side::unknown);  // CCLD_DVSN is unverified: off
  EXPECT_EQ(codec.stats().trades, 1u);
  EXPECT_EQ(codec.stats().decoded_frames, 1u);
}

TEST(KisCodec, ReadsAggressorFromCcldDvsnOnlyWhenEnabled) {
  KisCodec codec = make_codec({.aggressor_from_ccld_dvsn = true});
  std::vector<MarketEvent> events;
  ASSERT_TRUE(codec.decode(frame("H0STCNT0", 1, kKisTradeRecord), events).ok());
  ASSERT_TRUE(
      codec
          .decode(frame("H0STCNT0", 1, with_field(kKisTradeRecord, 21, "5")),
                  events)
          .ok());
  ASSERT_TRUE(
      codec
          .decode(frame("H0STCNT0", 1, with_field(kKisTradeRecord, 21, "3")),
                  events)
          .ok());
  EXPECT_EQ(trade_at(events, 0).aggressor, Side::buy);
  EXPECT_EQ(trade_at(events, 1).aggressor, Side::sell);
  EXPECT_EQ(trade_at(events, 2).aggressor, Side::unknown);
}

TEST(KisCodec, DecodesEveryRecordOfAMultiRecordFrame) {
  KisCodec codec = make_codec();
  std::vector<std::string> records;
  for (int i = 0; i < 4; ++i) {
    std::string r = with_field(kKisTradeRecord, 0, "00059" + std::to_string(i));
    r = with_field(r, 12, std::to_string(100 + i));
    records.push_back(with_field(r, 13, std::to_string(3521047 + 100 * i)));
  }
  std::vector<MarketEvent> events;
  const auto result =
      codec.decode(frame("H0STCNT0", 4, absl::StrJoin(records, "^")), events);
  ASSERT_TRUE(result.ok()) << to_string(result.error);
  ASSERT_EQ(result.events, 4u);
  for (int i = 0; i < 4; ++i) {
    const Trade& t = trade_at(events, static_cast<std::size_t>(i));
    EXPECT_EQ(t.symbol.view(), "00059" + std::to_string(i));
    EXPECT_EQ(t.volume, 100 + i);
    EXPECT_EQ(t.cumulative_volume, 3521047 + 100 * i);
  }
  EXPECT_EQ(codec.stats().trades, 4u);
}

TEST(KisCodec, RejectsFieldsThatDoNotSplitIntoCountRecords) {
  KisCodec codec = make_codec();
  std::vector<MarketEvent> events;
  // Three records announced, two present: 92 fields.
  const std::string payload =
      std::string(kKisTradeRecord) + "^" + std::string(kKisTradeRecord);
  EXPECT_EQ(codec.decode(frame("H0STCNT0", 3, payload), events).error,
            KisError::field_count_mismatch);
  // Two records announced, one present: 46 fields = 2 × 23, too few.
  EXPECT_EQ(codec.decode(frame("H0STCNT0", 2, kKisTradeRecord), events).error,
            KisError::too_few_fields);
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(codec.stats().rejected[KisError::field_count_mismatch], 1u);
  EXPECT_EQ(codec.stats().rejected[KisError::too_few_fields], 1u);
}

TEST(KisCodec, RejectsTheWholeFrameWhenOneRecordIsBad) {
  KisCodec codec = make_codec();
  std::vector<MarketEvent> events;
  ASSERT_TRUE(codec.decode(frame("H0STCNT0", 1, kKisTradeRecord), events).ok());
  const std::string payload = std::string(kKisTradeRecord) + "^" +
                              with_field(kKisTradeRecord, 2, "71a00");
  const auto result = codec.decode(frame("H0STCNT0", 2, payload), events);
  EXPECT_EQ(result.error, KisError::bad_price);
  EXPECT_EQ(result.events, 0u);
  EXPECT_EQ(events.size(), 1u);  // the earlier event only
  EXPECT_EQ(codec.stats().trades, 1u);
}

TEST(KisCodec, DecodesReferenceBookFrame) {
  KisCodec codec = make_codec();
  std::vector<MarketEvent> events;
  const auto result =
      codec.decode(frame("H0STASP0", 1, kKisBookRecord), events);
  ASSERT_TRUE(result.ok()) << to_string(result.error);
  const Book& b = book_at(events, 0);
  EXPECT_EQ(b.symbol.view(), "005930");
  EXPECT_EQ(b.time.seconds, 9 * 3600 + 30 * 60 + 15);
  EXPECT_EQ(b.asks[0], (Level{*Price::from_units(71600), 12000}));
  EXPECT_EQ(b.asks[9], (Level{*Price::from_units(72500), 2000}));
  EXPECT_EQ(b.bids[0], (Level{*Price::from_units(71500), 15000}));
  EXPECT_EQ(b.bids[9], (Level{*Price::from_units(70600), 3000}));
  EXPECT_EQ(b.total_ask_quantity, 71200);
  EXPECT_EQ(b.total_bid_quantity, 67100);
  EXPECT_EQ(b.cumulative_volume, 3521047);
  EXPECT_EQ(codec.stats().books, 1u);
}

TEST(KisCodec, AcceptsBooksWithExtraTrailingFields) {
  // Live frames carry 62 fields (KMID_* appended); accept any extra.
  KisCodec codec = make_codec();
  const std::string live = std::string(kKisBookRecord) + "^71550^1200^1";
  std::vector<MarketEvent> events;
  ASSERT_TRUE(codec.decode(frame("H0STASP0", 1, live), events).ok());
  const std::string two = live + "^" + with_field(live, 0, "000660");
  const auto result = codec.decode(frame("H0STASP0", 2, two), events);
  ASSERT_TRUE(result.ok()) << to_string(result.error);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(book_at(events, 0).asks, book_at(events, 1).asks);
  EXPECT_EQ(book_at(events, 2).symbol.view(), "000660");
  EXPECT_EQ(book_at(events, 2).cumulative_volume, 3521047);
}

TEST(KisCodec, RejectsRecordsShorterThanTheirLayout) {
  KisCodec codec = make_codec();
  std::vector<MarketEvent> events;
  const std::string_view trade45 =
      kKisTradeRecord.substr(0, kKisTradeRecord.rfind('^'));
  const std::string_view book58 =
      kKisBookRecord.substr(0, kKisBookRecord.rfind('^'));
  EXPECT_EQ(codec.decode(frame("H0STCNT0", 1, trade45), events).error,
            KisError::too_few_fields);
  EXPECT_EQ(codec.decode(frame("H0STASP0", 1, book58), events).error,
            KisError::too_few_fields);
}

TEST(KisCodec, ReadsEmptyBookFieldsAsAbsent) {
  KisCodec codec = make_codec();
  std::string record(kKisBookRecord);
  record = with_field(record, 12, "");  // ask 10 price
  record = with_field(record, 32, "");  // ask 10 quantity
  record = with_field(record, 53, "");  // cumulative volume
  std::vector<MarketEvent> events;
  ASSERT_TRUE(codec.decode(frame("H0STASP0", 1, record), events).ok());
  EXPECT_EQ(book_at(events, 0).asks[9], Level{});
  EXPECT_EQ(book_at(events, 0).cumulative_volume, std::nullopt);
}

TEST(KisCodec, RejectsBadFieldsWithTheirReason) {
  struct Case {
    std::string_view tr_id;
    std::string_view record;
    std::size_t field;
    std::string_view value;
    KisError error;
  };
  const Case cases[] = {
      {"H0STCNT0", kKisTradeRecord, 0, "", KisError::bad_symbol},
      {"H0STCNT0", kKisTradeRecord, 0, "00 5930", KisError::bad_symbol},
      {"H0STCNT0", kKisTradeRecord, 1, "093060", KisError::bad_time},
      {"H0STCNT0", kKisTradeRecord, 1, "", KisError::bad_time},
      {"H0STCNT0", kKisTradeRecord, 33, "20261301", KisError::bad_time},
      {"H0STCNT0", kKisTradeRecord, 2, "", KisError::bad_price},
      {"H0STCNT0", kKisTradeRecord, 2, "0", KisError::bad_price},
      {"H0STCNT0", kKisTradeRecord, 2, "-71500", KisError::bad_price},
      {"H0STCNT0", kKisTradeRecord, 12, "-1", KisError::bad_quantity},
      {"H0STCNT0", kKisTradeRecord, 12, "1e3", KisError::bad_quantity},
      {"H0STCNT0", kKisTradeRecord, 13, "99999999999999999999",
       KisError::bad_quantity},
      {"H0STASP0", kKisBookRecord, 3, "71,600", KisError::bad_price},
      {"H0STASP0", kKisBookRecord, 13, "-1", KisError::bad_price},
      {"H0STASP0", kKisBookRecord, 40, "x", KisError::bad_quantity},
      {"H0STASP0", kKisBookRecord, 44, "-5", KisError::bad_quantity},
  };
  KisCodec codec = make_codec();
  for (const Case& c : cases) {
    std::vector<MarketEvent> events;
    const auto result = codec.decode(
        frame(c.tr_id, 1, with_field(c.record, c.field, c.value)), events);
    EXPECT_EQ(result.error, c.error)
        << c.tr_id << " field " << c.field << " = '" << c.value << "'";
    EXPECT_TRUE(events.empty());
  }
  EXPECT_EQ(codec.stats().rejected.total(), std::size(cases));
}

TEST(KisCodec, RejectsMalformedHeaders) {
  const std::string record(kKisTradeRecord);
  const std::pair<std::string, KisError> cases[] = {
      {"", KisError::empty_frame},
      {"0", KisError::bad_header},
      {"2|H0STCNT0|001|" + record, KisError::bad_header},
      {"0H0STCNT0|001|" + record, KisError::bad_header},
      {"0|H0STCNT0", KisError::bad_header},
      {"0||001|" + record, KisError::bad_header},
      {"0|H0ST CNT0|001|" + record, KisError::bad_header},
      {"0|H0STCNT0|001", KisError::bad_header},
      {"0|H0STCNT0||" + record, KisError::bad_count},
      {"0|H0STCNT0|000|" + record, KisError::bad_count},
      {"0|H0STCNT0|-01|" + record, KisError::bad_count},
      {"0|H0STCNT0|+01|" + record, KisError::bad_count},
      {"0|H0STCNT0|12345|" + record, KisError::bad_count},
      {"0|H0STCNT0|0x1|" + record, KisError::bad_count},
      {"0|H0STCNT0|001|", KisError::too_few_fields},
      {"0|H0STCNI0|001|" + record, KisError::unsupported_tr_id},
  };
  KisCodec codec = make_codec();
  for (const auto& [text, error] : cases) {
    std::vector<MarketEvent> events;
    EXPECT_EQ(codec.decode(text, events).error, error) << text;
  }
  EXPECT_EQ(codec.stats().data_frames, std::size(cases));
  EXPECT_EQ(codec.stats().decoded_frames, 0u);
}

TEST(KisCodec, DecodesExtraTrIdsListedInOptions) {
  KisCodec codec = make_codec(
      {.trade_tr_ids = {"H0STCNT0", "H0UNCNT0"}, .book_tr_ids = {"H0UNASP0"}});
  std::vector<MarketEvent> events;
  EXPECT_TRUE(codec.decode(frame("H0UNCNT0", 1, kKisTradeRecord), events).ok());
  EXPECT_TRUE(codec.decode(frame("H0UNASP0", 1, kKisBookRecord), events).ok());
  EXPECT_EQ(codec.decode(frame("H0STASP0", 1, kKisBookRecord), events).error,
            KisError::unsupported_tr_id);
}

TEST(KisCodecOptions, RejectsBadOrDuplicateTrIds) {
  EXPECT_FALSE(KisCodec::create({.trade_tr_ids = {""}}).ok());
  EXPECT_FALSE(KisCodec::create({.trade_tr_ids = {"H0ST|CNT0"}}).ok());
  const auto duplicate = KisCodec::create({.book_tr_ids = {"H0STCNT0"}});
  ASSERT_FALSE(duplicate.ok());
  EXPECT_NE(duplicate.status().message().find("H0STCNT0"), std::string::npos);
}

TEST(KisCodec, DecodingAPlainFrameAllocatesNothingOnceWarm) {
  KisCodec codec = make_codec();
  const std::string trades =
      frame("H0STCNT0", 2,
            std::string(kKisTradeRecord) + "^" + std::string(kKisTradeRecord));
  const std::string book = frame("H0STASP0", 1, kKisBookRecord);
  std::vector<MarketEvent> events;
  events.reserve(8);
  feedkit::testing::AllocationCounter allocations;
  for (int i = 0; i < 100; ++i) {
    events.clear();
    ASSERT_TRUE(codec.decode(trades, events).ok());
    ASSERT_TRUE(codec.decode(book, events).ok());
  }
  EXPECT_EQ(allocations.count(), 0);
}

// --- Encryption -----------------------------------------------------------

TEST(KisCodec, DecryptsEncryptedFramesWithTheKeyOfTheSubscribeReply) {
  KisCodec codec = make_codec();
  const std::string encrypted =
      frame("H0STCNT0", 1, kKisEncryptedTradePayload, '1');
  std::vector<MarketEvent> events;
  EXPECT_EQ(codec.decode(encrypted, events).error, KisError::no_cipher);

  const Control control = codec.read_control(kKisSubscribeSuccess);
  ASSERT_EQ(control.error, KisError::none);
  EXPECT_EQ(control.kind, ControlKind::subscribed);
  EXPECT_TRUE(control.cipher_learned);
  EXPECT_TRUE(codec.has_cipher("H0STCNT0"));

  const auto result = codec.decode(encrypted, events);
  ASSERT_TRUE(result.ok()) << to_string(result.error);
  ASSERT_TRUE(codec.decode(frame("H0STCNT0", 1, kKisTradeRecord), events).ok());
  ASSERT_EQ(events.size(), 2u);
  const Trade& decrypted = trade_at(events, 0);
  const Trade& plain = trade_at(events, 1);
  EXPECT_EQ(decrypted.symbol, plain.symbol);
  EXPECT_EQ(decrypted.price, plain.price);
  EXPECT_EQ(decrypted.volume, plain.volume);
  EXPECT_EQ(decrypted.cumulative_volume, plain.cumulative_volume);
  EXPECT_EQ(decrypted.time, plain.time);
  EXPECT_EQ(codec.stats().encrypted_frames, 1u);
}

TEST(KisCodec, DecryptsTheReferenceNoticeVector) {
  KisCodec codec = make_codec();
  ASSERT_TRUE(codec.set_cipher("H0STCNI0", kKisCipherKey, kKisCipherIv).ok());
  DataFrame header;
  ASSERT_EQ(parse_data_frame(kKisReferenceNoticeFrame, header), KisError::none);
  EXPECT_TRUE(header.encrypted);
  std::string plaintext;
  ASSERT_EQ(codec.decrypt(header.tr_id, header.payload, plaintext),
            KisError::none);
  EXPECT_EQ(plaintext, kKisReferenceNoticePlaintext);
}

TEST(KisCodec, RejectsCiphertextThatDoesNotDecrypt) {
  KisCodec codec = make_codec();
  ASSERT_TRUE(codec.set_cipher("H0STCNT0", kKisCipherKey, kKisCipherIv).ok());
  std::vector<MarketEvent> events;
  const std::string payload(kKisEncryptedTradePayload);
  EXPECT_EQ(
      codec.decode(frame("H0STCNT0", 1, "not base64!", '1'), events).error,
      KisError::bad_base64);
  EXPECT_EQ(codec.decode(frame("H0STCNT0", 1, "QUJD", '1'), events).error,
            KisError::decrypt_failed);  // 3 bytes: not a whole block
  // Last block replaced: the PKCS#7 padding no longer checks out.
  const std::string tampered =
      payload.substr(0, payload.size() - 24) + "AAAAAAAAAAAAAAAAAAAAAA==";
  EXPECT_EQ(codec.decode(frame("H0STCNT0", 1, tampered, '1'), events).error,
            KisError::decrypt_failed);
  // A different key.
  ASSERT_TRUE(codec
                  .set_cipher("H0STCNT0", "bbcdefghijklmnopabcdefghijklmnop",
                              kKisCipherIv)
                  .ok());
  EXPECT_NE(codec.decode(frame("H0STCNT0", 1, payload, '1'), events).error,
            KisError::none);
  EXPECT_TRUE(events.empty());
}

TEST(KisCodec, SetCipherChecksLengthsWithoutShowingTheKey) {
  KisCodec codec = make_codec();
  const absl::Status s = codec.set_cipher("H0STCNT0", "secret-key-123", "iv");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message().find("secret-key-123"), std::string::npos);
  EXPECT_FALSE(codec.has_cipher("H0STCNT0"));
  ASSERT_TRUE(codec.set_cipher("H0STCNT0", kKisCipherKey, kKisCipherIv).ok());
  codec.clear_ciphers();
  EXPECT_FALSE(codec.has_cipher("H0STCNT0"));
}

// --- Control frames -------------------------------------------------------

TEST(KisCodec, ClassifiesControlRepliesByMsgCd) {
  struct Case {
    std::string frame;
    ControlKind kind;
  };
  const Case cases[] = {
      {std::string(kKisSubscribeSuccess), ControlKind::subscribed},
      {reply("H0STCNT0", "005930", "0", "OPSP0001", "UNSUBSCRIBE SUCCESS"),
       ControlKind::unsubscribed},
      {std::string(kKisAlreadySubscribed), ControlKind::already_subscribed},
      {reply("H0STCNT0", "005930", "1", "OPSP0003",
             "UNSUBSCRIBE ERROR(not found!)"),
       ControlKind::not_subscribed},
      {reply("H0STCNT0", "005930", "1", "OPSP0007", "SUBSCRIBE INTERNAL ERROR"),
       ControlKind::server_error},
      {reply("H0STCNT0", "005930", "1", "OPSP0008", "MAX SUBSCRIBE OVER"),
       ControlKind::max_subscriptions},
      {reply("H0STCNT0", "005930", "1", "OPSP0011",
             "invalid approval : NOT FOUND"),
       ControlKind::invalid_approval},
      {reply("H0STCNT0", "005930", "1", "OPSP8991",
             "SUBSCRIBE ERROR : invalid tr_id"),
       ControlKind::request_rejected},
      {reply("H0STCNT0", "005930", "1", "OPSP8996", "ALREADY IN USE appkey"),
       ControlKind::appkey_in_use},
      {reply("", "", "1", "OPSP9995", "JSON PARSING ERROR : body not found"),
       ControlKind::request_rejected},
      // Unknown codes fall back on the official samples' text checks.
      {reply("H0STCNT0", "005930", "0", "OPSP0100", "UNSUBSCRIBE SUCCESS"),
       ControlKind::unsubscribed},
      {reply("H0STCNT0", "005930", "1", "OPSP0101", "ALREADY IN SUBSCRIBE"),
       ControlKind::already_subscribed},
      {reply("H0STCNT0", "005930", "0", "OPSP0102", "SOMETHING"),
       ControlKind::other},
      {reply("H0STCNT0", "005930", "1", "OPSP0103", "SOMETHING"),
       ControlKind::server_error},
      {std::string(kKisPingPong), ControlKind::pingpong},
  };
  KisCodec codec = make_codec();
  for (const Case& c : cases) {
    const Control control = codec.read_control(c.frame);
    ASSERT_EQ(control.error, KisError::none) << c.frame;
    EXPECT_EQ(control.kind, c.kind)
        << c.frame << " → " << to_string(control.kind);
  }
  EXPECT_EQ(codec.stats().control_frames, std::size(cases));
  EXPECT_EQ(codec.stats().pingpongs, 1u);
  const std::string already_frame =
      reply("H0STASP0", "000660", "1", "OPSP0002", "ALREADY IN SUBSCRIBE");
  const Control already = codec.read_control(already_frame);  // views into it
  EXPECT_EQ(already.tr_id, "H0STASP0");
  EXPECT_EQ(already.tr_key, "000660");
  EXPECT_EQ(already.rt_cd, "1");
  EXPECT_FALSE(already.cipher_learned);
}

TEST(KisCodec, RejectsMalformedControlFrames) {
  const std::pair<std::string_view, KisError> cases[] = {
      {"{", KisError::bad_json},
      {R"({"header":{"tr_id":"H0STCNT0"}} trailing)", KisError::bad_json},
      {"[]", KisError::bad_control},
      {R"({"body":{"rt_cd":"0"}})", KisError::bad_control},
      {R"({"header":{"tr_id":7},"body":{}})", KisError::bad_control},
      {R"({"header":{"tr_id":"H0STCNT0","tr_key":"005930"}})",
       KisError::bad_control},  // no body
  };
  KisCodec codec = make_codec();
  for (const auto& [text, error] : cases) {
    EXPECT_EQ(codec.read_control(text).error, error) << text;
  }
  EXPECT_EQ(codec.stats().rejected.total(), std::size(cases));
}

TEST(KisCodec, IgnoresOutputKeysOfTheWrongLength) {
  KisCodec codec = make_codec();
  const Control control = codec.read_control(
      R"({"header":{"tr_id":"H0STCNT0","tr_key":"005930","encrypt":"N"},)"
      R"("body":{"rt_cd":"0","msg_cd":"OPSP0000","msg1":"SUBSCRIBE SUCCESS",)"
      R"("output":{"iv":"short","key":"abc"}}})");
  EXPECT_EQ(control.kind, ControlKind::subscribed);
  EXPECT_FALSE(control.cipher_learned);
  EXPECT_FALSE(codec.has_cipher("H0STCNT0"));
}

// --- Requests -------------------------------------------------------------

TEST(KisRequests, BuildsTheApprovalBodyWithSecretkey) {
  EXPECT_EQ(approval_request_body("APPKEY", "SE\"CRET"),
            R"({"grant_type":"client_credentials","appkey":"APPKEY",)"
            R"("secretkey":"SE\"CRET"})");
}

TEST(KisRequests, ParsesTheApprovalKeyAndHidesBodiesInErrors) {
  const auto key = parse_approval_response(
      R"({"approval_key":"2a9d0c7e-0b4f-4c7e-9a1e-6f1d3c2b5a70"})");
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(*key, "2a9d0c7e-0b4f-4c7e-9a1e-6f1d3c2b5a70");

  const auto refused = parse_approval_response(
      R"({"error_code":"EGW00103","error_description":"bad key MYSECRET"})");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("EGW00103"), std::string::npos);
  EXPECT_EQ(refused.status().message().find("MYSECRET"), std::string::npos);

  const auto not_json = parse_approval_response("approval_key=MYSECRET");
  ASSERT_FALSE(not_json.ok());
  EXPECT_EQ(not_json.status().message().find("MYSECRET"), std::string::npos);
  EXPECT_FALSE(parse_approval_response(R"({"approval_key":""})").ok());
  EXPECT_FALSE(parse_approval_response(R"({"approval_key":5})").ok());
}

TEST(KisRequests, BuildsRegisterAndUnregisterFrames) {
  EXPECT_EQ(
      subscription_request("KEY", "H0STCNT0", "005930", TrType::subscribe),
      R"({"header":{"approval_key":"KEY","custtype":"P","tr_type":"1",)"
      R"("content-type":"utf-8"},"body":{"input":{"tr_id":"H0STCNT0",)"
      R"("tr_key":"005930"}}})");
  const std::string unsubscribe = subscription_request(
      "KEY", "H0STASP0", "000660", TrType::unsubscribe, 'B');
  EXPECT_NE(unsubscribe.find(R"("tr_type":"2")"), std::string::npos);
  EXPECT_NE(unsubscribe.find(R"("custtype":"B")"), std::string::npos);
  EXPECT_NE(unsubscribe.find(R"("tr_key":"000660")"), std::string::npos);
}

TEST(KisRequests, SplitsSubscriptionKeys) {
  const auto parts = split_subscription_key("H0STCNT0|005930");
  ASSERT_TRUE(parts);
  EXPECT_EQ(parts->tr_id, "H0STCNT0");
  EXPECT_EQ(parts->tr_key, "005930");
  EXPECT_EQ(subscription_key("H0STASP0", "000660"), "H0STASP0|000660");
  EXPECT_FALSE(split_subscription_key("H0STCNT0"));
  EXPECT_FALSE(split_subscription_key("|005930"));
  EXPECT_FALSE(split_subscription_key("H0STCNT0|"));
}

// --- KisProtocol ----------------------------------------------------------

struct ProtocolFixture {
  std::shared_ptr<KisCodec> codec =
      std::make_shared<KisCodec>(KisCodec::create().value());
  std::unique_ptr<KisProtocol> protocol = KisProtocol::create(codec).value();
  feedkit::Credentials credentials{.secret = "APPROVAL-KEY-1"};
};

TEST(KisProtocol, ClassifiesFramesForWsClient) {
  ProtocolFixture f;
  struct Case {
    std::string frame;
    FrameKind kind;
    std::string_view key;
  };
  const Case cases[] = {
      {frame("H0STCNT0", 1, kKisTradeRecord), FrameKind::data, ""},
      {"1|H0STCNI0|001|abc", FrameKind::data, ""},
      {std::string(kKisSubscribeSuccess), FrameKind::subscribe_ack,
       "H0STCNT0|005930"},
      {reply("H0STCNT0", "005930", "1", "OPSP0002", "ALREADY IN SUBSCRIBE"),
       FrameKind::already_subscribed, "H0STCNT0|005930"},
      {reply("H0STASP0", "000660", "0", "OPSP0001", "UNSUBSCRIBE SUCCESS"),
       FrameKind::unsubscribe_ack, "H0STASP0|000660"},
      {reply("H0STASP0", "000660", "1", "OPSP0003", "UNSUBSCRIBE ERROR"),
       FrameKind::unsubscribe_ack, "H0STASP0|000660"},
      {reply("H0STCNT0", "035420", "1", "OPSP0008", "MAX SUBSCRIBE OVER"),
       FrameKind::max_subscriptions, "H0STCNT0|035420"},
      {reply("H0STCNT0", "005930", "1", "OPSP8996", "ALREADY IN USE appkey"),
       FrameKind::busy, "H0STCNT0|005930"},
      {reply("H0STCNT0", "005930", "1", "OPSP0011", "invalid approval"),
       FrameKind::auth_rejected, "H0STCNT0|005930"},
      {reply("H0STCNT0", "XXXXXX", "1", "OPSP8992", "invalid tr_key"),
       FrameKind::subscribe_reject, "H0STCNT0|XXXXXX"},
      {reply("H0STCNT0", "005930", "1", "OPSP0009", "mci send failed"),
       FrameKind::notice, "H0STCNT0|005930"},
      {reply("H0STCNT0", "005930", "0", "OPSP0555", "HELLO"), FrameKind::ignore,
       "H0STCNT0|005930"},
      {"not json", FrameKind::malformed, ""},
      {"", FrameKind::malformed, ""},
  };
  for (const Case& c : cases) {
    const feedkit::Classified what = f.protocol->classify(c.frame);
    EXPECT_EQ(what.kind, c.kind) << c.frame;
    EXPECT_EQ(what.key, c.key) << c.frame;
  }
  const feedkit::Classified max = f.protocol->classify(
      reply("H0STCNT0", "035420", "1", "OPSP8996", "ALREADY IN USE appkey"));
  EXPECT_EQ(max.reason, "OPSP8996 ALREADY IN USE appkey");
}

TEST(KisProtocol, EchoesPingPongAsTheExactTextReceived) {
  ProtocolFixture f;
  const std::string ping =
      R"({"header":{"tr_id":"PINGPONG", "datetime":"20260715093100"}})";
  const feedkit::Classified what = f.protocol->classify(ping);
  EXPECT_EQ(what.kind, FrameKind::heartbeat);
  EXPECT_EQ(what.reply, ping);
}

TEST(KisProtocol, RepliesWithAPongFrameWhenAskedTo) {
  auto codec = std::make_shared<KisCodec>(KisCodec::create().value());
  auto protocol =
      KisProtocol::create(codec, {.ping_reply = PingReply::pong_frame});
  ASSERT_TRUE(protocol.ok()) << protocol.status();
  const feedkit::Classified what = (*protocol)->classify(kKisPingPong);
  EXPECT_EQ(what.kind, FrameKind::heartbeat);
  EXPECT_EQ(what.reply, kKisPingPong);
  EXPECT_TRUE(what.reply_as_pong);
  ProtocolFixture text_echo;
  EXPECT_FALSE(text_echo.protocol->classify(kKisPingPong).reply_as_pong);
}

TEST(KisProtocol, PutsTheApprovalKeyInEverySubscriptionFrame) {
  ProtocolFixture f;
  EXPECT_TRUE(f.protocol->login_frames(f.credentials).empty());
  EXPECT_EQ(f.protocol->subscribe_frame("H0STCNT0|005930", f.credentials),
            subscription_request("APPROVAL-KEY-1", "H0STCNT0", "005930",
                                 TrType::subscribe));
  EXPECT_EQ(f.protocol->unsubscribe_frame("H0STASP0|000660", f.credentials),
            subscription_request("APPROVAL-KEY-1", "H0STASP0", "000660",
                                 TrType::unsubscribe));
  EXPECT_TRUE(f.protocol->broker_keeps_subscriptions());
}

TEST(KisProtocol, ANewConnectionForgetsThePreviousKeys) {
  ProtocolFixture f;
  EXPECT_EQ(f.protocol->classify(kKisSubscribeSuccess).kind,
            FrameKind::subscribe_ack);
  EXPECT_TRUE(f.codec->has_cipher("H0STCNT0"));
  (void)f.protocol->login_frames(f.credentials);
  EXPECT_FALSE(f.codec->has_cipher("H0STCNT0"));
}

TEST(KisProtocolOptions, RejectsUnknownCusttype) {
  auto codec = std::make_shared<KisCodec>(KisCodec::create().value());
  EXPECT_FALSE(KisProtocol::create(codec, {.custtype = 'X'}).ok());
  EXPECT_FALSE(KisProtocol::create(nullptr).ok());
}

}  // namespace
}  // namespace examples::kis
