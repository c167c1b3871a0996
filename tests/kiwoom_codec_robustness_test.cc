// Test that header file is self-contained.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "kiwoom/kiwoom_codec.h"
#include "kiwoom/kiwoom_protocol.h"
#include "support/broker_samples.h"
#include "support/codec_robustness.h"

// Feeds a reproducible stream of damaged frames, derived from valid ones,
// to KiwoomCodec::decode() and KiwoomProtocol::classify(): nothing may
// crash (the ASan/UBSan build checks every access), every accepted event
// must be valid, and every input must be either accepted or counted under
// exactly one reason, the codec's counters matching the test's own.

namespace examples::kiwoom {
namespace {

constexpr int kInputs = 120'000;

std::string real(std::string_view entries) {
  return R"({"trnm":"REAL","data":[)" + std::string(entries) + "]}";
}

std::vector<std::string> seeds() {
  using samples::kKiwoomBookEntry;
  using samples::kKiwoomTradeEntry;
  const std::string trade(kKiwoomTradeEntry), book(kKiwoomBookEntry);
  return {
      real(trade),
      real(book),
      real(trade + "," + book + "," + trade),
      real(R"({"type":"0C","item":"005930","values":{"27":"-20800"}},)" + book),
      // Rejected as they are; mutations may fix them.
      real(R"({"type":"0B","item":"005930","values":{"10":-20800,"15":"1"}})"),
      R"({"trnm":"REG","return_code":"x"})",
      R"({"trnm":"LOGIN","return_code":0,"return_msg":""})",
      R"({"trnm":"LOGIN","return_code":805004,"return_msg":"[CODE=8005]"})",
      R"({"trnm":"REG","return_code":"0","return_msg":""})",
      R"({"trnm":"REG","return_code":1,"return_msg":"등록 종목수 초과"})",
      R"({"trnm":"REMOVE","return_code":0})",
      R"({"trnm":"PING"})",
      "PING",
      R"({"trnm":"SYSTEM","code":"R10001","message":"동일한 App key로 접속"})",
      R"({"trnm":"SYSTEM","code":"R10002","message":"Heartbeat"})",
  };
}

TEST(KiwoomCodecRobustness, EveryDamagedFrameIsDecodedOrCountedNeverACrash) {
  auto codec = std::make_shared<KiwoomCodec>(KiwoomCodec::create().value());
  auto protocol = KiwoomProtocol::create(codec).value();
  const feedkit::Credentials credentials{.secret = "TOKEN"};
  (void)protocol->login_frames(credentials);
  testing::FrameMutator mutator(seeds(), {"\"",         "\"\"",
                                          "{",          "}",
                                          "[",          "]",
                                          ",",          ":",
                                          "-",          "+",
                                          "0",          ".",
                                          "e9",         "99999999999999999999",
                                          "\"REAL\"",   "\"0B\"",
                                          "\"0D\"",     "\"data\"",
                                          "\"values\"", "\"10\":\"-1\"",
                                          "null",       "true",
                                          "[[[[[[[[",   "\\u0041",
                                          "\\ud800",    "\\",
                                          " "},
                                /*seed=*/20260716);
  testing::ReasonTally<kKiwoomErrorCount> tally;
  std::uint64_t malformed = 0, events_seen = 0;
  std::vector<MarketEvent> events;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kInputs; ++i) {
    if (i % 7 == 0) (void)protocol->subscribe_frame("0B|005930", credentials);
    const std::string input = mutator.next();
    events.clear();
    const auto result = codec->decode(input, events);
    tally.add(result.error);
    ASSERT_EQ(result.ok(), result.error == KiwoomError::none);
    ASSERT_EQ(result.events, events.size()) << input;
    if (result.ok()) {
      for (const MarketEvent& event : events) testing::expect_valid(event);
    }
    events_seen += events.size();
    const feedkit::Classified what = protocol->classify(input);
    if (what.kind == feedkit::FrameKind::malformed) {
      ++malformed;
      ASSERT_FALSE(what.reason.empty());
    }
    if (what.kind == feedkit::FrameKind::heartbeat) {
      ASSERT_EQ(what.reply, input);
    }
  }
  const double seconds = testing::seconds_since(start);
  const KiwoomCodecStats& stats = codec->stats();
  EXPECT_EQ(stats.real_frames, static_cast<std::uint64_t>(kInputs));
  EXPECT_EQ(stats.messages, static_cast<std::uint64_t>(kInputs));
  EXPECT_EQ(stats.decoded_frames, tally.accepted());
  EXPECT_EQ(stats.trades + stats.books, events_seen);
  // Every rejection of either call is counted once: decode()'s by reason,
  // read()'s (classify → malformed) in the total.
  EXPECT_EQ(stats.rejected.total(), tally.rejected() + malformed);
  for (KiwoomError reason :
       {KiwoomError::not_real, KiwoomError::bad_data, KiwoomError::bad_entry,
        KiwoomError::bad_value, KiwoomError::bad_symbol, KiwoomError::bad_time,
        KiwoomError::bad_price, KiwoomError::bad_quantity}) {
    EXPECT_EQ(stats.rejected[reason],
              tally.count[static_cast<std::size_t>(reason)])
        << to_string(reason);
  }
  EXPECT_GT(tally.accepted(), kInputs / 50u);
  EXPECT_GE(tally.distinct_reasons(), 9u);
  tally.print<KiwoomError>(
      kInputs, seconds,
      ", " + std::to_string(malformed) + " malformed for classify()");
}

}  // namespace
}  // namespace examples::kiwoom
