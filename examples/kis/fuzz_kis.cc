// SPDX-License-Identifier: Apache-2.0
//
// libFuzzer entry point for the KIS codec: every input goes through
// KisCodec::decode() and KisProtocol::classify(). Built only with Clang;
// run e.g. `fuzz_kis -max_total_time=60 corpus/` (ctest does not run it;
// tests/kis_codec_robustness_test.cc is the seeded stand-in).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "kis/kis_codec.h"
#include "kis/kis_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  using namespace examples::kis;
  static auto codec = std::make_shared<KisCodec>(KisCodec::create().value());
  static auto protocol = KisProtocol::create(codec).value();
  static std::vector<examples::MarketEvent> events;
  (void)codec->set_cipher("H0STCNT0", "abcdefghijklmnopabcdefghijklmnop",
                          "0123456789abcdef");
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  events.clear();
  (void)codec->decode(input, events);
  (void)protocol->classify(input);
  return 0;
}
