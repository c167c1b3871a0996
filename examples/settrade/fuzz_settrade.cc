// SPDX-License-Identifier: Apache-2.0
//
// libFuzzer entry point for the Settrade codec: every input is a BidOfferV3
// payload decoded with both Money numberings; the first byte picks a
// damaged topic now and then. Built only with Clang; run e.g.
// `fuzz_settrade -max_total_time=60 corpus/` (ctest does not run it;
// tests/settrade_codec_robustness_test.cc is the seeded stand-in).
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "settrade/settrade_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  using namespace examples::settrade;
  static SettradeCodec google = SettradeCodec::create().value();
  static SettradeCodec units_first =
      SettradeCodec::create({.money_layout = MoneyLayout::units_first}).value();
  static std::vector<examples::MarketEvent> events;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string_view topic =
      size > 0 && data[0] == 0xff
          ? std::string_view("proto/topic/bidofferv3/")
          : std::string_view("proto/topic/bidofferv3/AOT");
  events.clear();
  (void)google.decode_bid_offer(topic, input, events);
  (void)units_first.decode_bid_offer(topic, input, events);
  return 0;
}
