// SPDX-License-Identifier: Apache-2.0
//
// libFuzzer entry point for the Kiwoom codec: every input goes through
// KiwoomCodec::decode() and KiwoomProtocol::classify(). Built only with
// Clang; run e.g. `fuzz_kiwoom -max_total_time=60 corpus/` (ctest does not
// run it; tests/kiwoom_codec_robustness_test.cc is the seeded stand-in).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "kiwoom/kiwoom_codec.h"
#include "kiwoom/kiwoom_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  using namespace examples::kiwoom;
  static auto codec =
      std::make_shared<KiwoomCodec>(KiwoomCodec::create().value());
  static auto protocol = KiwoomProtocol::create(codec).value();
  static std::vector<examples::MarketEvent> events;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  (void)protocol->subscribe_frame("0B|005930", feedkit::Credentials{});
  events.clear();
  (void)codec->decode(input, events);
  (void)protocol->classify(input);
  return 0;
}
