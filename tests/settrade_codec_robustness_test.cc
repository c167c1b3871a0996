// Test that header file is self-contained.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "settrade/settrade_codec.h"
#include "settrade_realtime.pb.h"
#include "support/broker_samples.h"
#include "support/codec_robustness.h"

// Feeds a reproducible stream of damaged BidOfferV3 payloads (and, now and
// then, damaged topics), derived from valid ones, to
// SettradeCodec::decode_bid_offer() with both Money numberings: nothing may
// crash (the ASan/UBSan build checks every access), every accepted book
// must be valid, and every input must be either accepted or counted under
// exactly one reason, the codec's counters matching the test's own.

namespace examples::settrade {
namespace {

constexpr int kInputs = 120'000;
constexpr std::string_view kTopic = "proto/topic/bidofferv3/AOT";

std::string from_hex(std::string_view hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(
        std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  }
  return out;
}

std::vector<std::string> seeds() {
  pb::BidOfferV3 full;
  full.set_symbol("AOT");
  full.mutable_bid_price1()->set_units(61);
  full.mutable_bid_price1()->set_nanos(250'000'000);
  full.mutable_ask_price10()->set_units(64);
  full.mutable_ask_price10()->set_currency_code("THB");
  full.set_bid_volume10(123456789);
  full.set_ask_volume5(1);
  full.set_bid_flag(pb::ATO);
  full.set_ask_flag(pb::ATC);
  pb::MoneyUnitsFirst units_first;
  units_first.set_units(61);
  units_first.set_nanos(500'000'000);
  pb::BidOfferV3Wire alternative;
  alternative.set_symbol("AOT");
  alternative.set_bid_price1(units_first.SerializeAsString());
  alternative.set_ask_volume1(25300);
  pb::BidOfferV3 negative;  // rejected as it is; mutations may fix it
  negative.mutable_bid_price2()->set_units(-1);
  negative.set_ask_volume3(-5);
  return {from_hex(samples::kSettradeBidOfferHex), full.SerializeAsString(),
          alternative.SerializeAsString(), "", negative.SerializeAsString()};
}

TEST(SettradeCodecRobustness,
     EveryDamagedPayloadIsDecodedOrCountedNeverACrash) {
  SettradeCodec google = SettradeCodec::create().value();
  SettradeCodec units_first =
      SettradeCodec::create({.money_layout = MoneyLayout::units_first}).value();
  // Tokens: varint tags of Money and volume fields, long varints, lengths.
  testing::FrameMutator payloads(
      seeds(),
      {std::string("\x12\x00", 2), "\x12\x07\x10\x3d\x18\x80\xe5\x9a\x77",
       "\x08\x3d", "\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
       "\x18\x80\x94\xeb\xdc\x03",
       "\x60\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "\xb0\x01\x09",
       "\x0a\x20", "\xff\xff\xff\xff\x0f", "\x1a\x7f"},
      /*seed=*/20260717);
  testing::FrameMutator topics({std::string(kTopic)}, {"/", "x", ""},
                               /*seed=*/7);
  testing::ReasonTally<kSettradeErrorCount> tally;
  std::vector<MarketEvent> events;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kInputs; ++i) {
    const std::string payload = payloads.next();
    const std::string topic = i % 10 == 0 ? topics.next() : std::string(kTopic);
    SettradeCodec& codec = i % 2 == 0 ? google : units_first;
    events.clear();
    const auto result = codec.decode_bid_offer(topic, payload, events);
    tally.add(result.error);
    ASSERT_EQ(result.ok(), result.error == SettradeError::none);
    ASSERT_EQ(result.events, events.size());
    ASSERT_EQ(events.size(), result.ok() ? 1u : 0u);
    if (result.ok()) testing::expect_valid(events[0]);
  }
  const double seconds = testing::seconds_since(start);
  EXPECT_EQ(google.stats().messages + units_first.stats().messages,
            static_cast<std::uint64_t>(kInputs));
  EXPECT_EQ(google.stats().books + units_first.stats().books, tally.accepted());
  for (std::size_t r = 1; r < kSettradeErrorCount; ++r) {
    const auto reason = static_cast<SettradeError>(r);
    EXPECT_EQ(
        google.stats().rejected[reason] + units_first.stats().rejected[reason],
        tally.count[r])
        << to_string(reason);
  }
  EXPECT_GT(tally.accepted(), kInputs / 50u);
  EXPECT_GE(tally.distinct_reasons(), 8u);
  tally.print<SettradeError>(kInputs, seconds);
}

}  // namespace
}  // namespace examples::settrade
