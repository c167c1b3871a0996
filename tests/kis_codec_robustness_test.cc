// Test that header file is self-contained.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "kis/kis_codec.h"
#include "kis/kis_protocol.h"
#include "support/broker_samples.h"
#include "support/codec_robustness.h"

// Feeds a reproducible stream of damaged frames, derived from valid ones,
// to KisCodec::decode() and KisProtocol::classify(): nothing may crash (the
// ASan/UBSan build checks every access), every accepted event must be
// valid, and every input must be either accepted or counted under exactly
// one reason, the codec's counters matching the test's own.

namespace examples::kis {
namespace {

constexpr int kInputs = 120'000;

std::string frame(std::string_view tr_id, std::string_view count,
                  std::string_view payload, char enc = '0') {
  return std::string(1, enc) + "|" + std::string(tr_id) + "|" +
         std::string(count) + "|" + std::string(payload);
}

std::vector<std::string> seeds() {
  using namespace samples;
  const std::string trade(kKisTradeRecord), book(kKisBookRecord);
  return {
      frame("H0STCNT0", "001", trade),
      frame("H0STCNT0", "003", trade + "^" + trade + "^" + trade),
      frame("H0STASP0", "001", book),
      frame("H0STASP0", "001", book + "^71550^1200^1"),
      frame("H0STASP0", "002", book + "^" + book),
      frame("H0STCNT0", "001", kKisEncryptedTradePayload, '1'),
      std::string(kKisReferenceNoticeFrame),
      std::string(kKisSubscribeSuccess),
      std::string(kKisAlreadySubscribed),
      std::string(kKisPingPong),
  };
}

TEST(KisCodecRobustness, EveryDamagedFrameIsDecodedOrCountedNeverACrash) {
  auto codec = std::make_shared<KisCodec>(KisCodec::create().value());
  auto protocol = KisProtocol::create(codec).value();
  testing::FrameMutator mutator(
      seeds(), {"^",        "^^",       "|",        "0|",
                "1|",       "001|",     "999|",     "-",
                "+",        "0",        ".",        "99999999999999999999",
                "H0STASP0", "H0STCNT0", "PINGPONG", "\"",
                "{",        "}",        "[]",       ":",
                ",",        "\\u0000",  "\\",       "null",
                "==",       "/+"},
      /*seed=*/20260715);
  testing::ReasonTally<kKisErrorCount> tally;
  std::vector<MarketEvent> events;
  std::uint64_t events_seen = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kInputs; ++i) {
    // Replies in the corpus may overwrite the key with a damaged one.
    ASSERT_TRUE(codec
                    ->set_cipher("H0STCNT0", samples::kKisCipherKey,
                                 samples::kKisCipherIv)
                    .ok());
    const std::string input = mutator.next();
    events.clear();
    const auto result = codec->decode(input, events);
    tally.add(result.error);
    ASSERT_EQ(result.ok(), result.error == KisError::none);
    ASSERT_EQ(result.events, events.size()) << input;
    if (result.ok()) {
      ASSERT_GE(events.size(), 1u) << input;
      for (const MarketEvent& event : events) testing::expect_valid(event);
    }
    events_seen += events.size();
    const feedkit::Classified what = protocol->classify(input);
    if (what.kind == feedkit::FrameKind::malformed) {
      ASSERT_FALSE(what.reason.empty());
    }
    if (what.kind == feedkit::FrameKind::heartbeat) {
      ASSERT_EQ(what.reply, input);
    }
  }
  const double seconds = testing::seconds_since(start);
  const KisCodecStats& stats = codec->stats();
  EXPECT_EQ(stats.data_frames, static_cast<std::uint64_t>(kInputs));
  EXPECT_EQ(stats.decoded_frames, tally.accepted());
  EXPECT_EQ(stats.decoded_frames + tally.rejected(), stats.data_frames);
  EXPECT_EQ(stats.trades + stats.books, events_seen);
  // decode() rejections, reason by reason (bad_json and bad_control come
  // from classify()'s control frames as well, so they are checked below).
  for (std::size_t r = 1; r < kKisErrorCount; ++r) {
    const auto reason = static_cast<KisError>(r);
    if (reason == KisError::bad_json || reason == KisError::bad_control) {
      continue;
    }
    EXPECT_EQ(stats.rejected[reason], tally.count[r]) << to_string(reason);
  }
  EXPECT_EQ(tally.count[static_cast<std::size_t>(KisError::bad_json)], 0u);
  EXPECT_EQ(stats.rejected.total(), tally.rejected() +
                                        stats.rejected[KisError::bad_json] +
                                        stats.rejected[KisError::bad_control]);
  // The corpus reaches deep: many inputs decode, many reasons show up.
  EXPECT_GT(tally.accepted(), kInputs / 50u);
  EXPECT_GE(tally.distinct_reasons(), 12u);
  EXPECT_GT(stats.encrypted_frames, 0u);
  tally.print<KisError>(kInputs, seconds);
}

}  // namespace
}  // namespace examples::kis
