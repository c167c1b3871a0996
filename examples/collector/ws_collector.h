// SPDX-License-Identifier: Apache-2.0
//
// examples/collector/ws_collector.h
//
// What the WebSocket collectors (KIS, Kiwoom) share on top of Collector:
//
//   flags      --rest-url, --ws-url, --appkey, --appsecret (secrets: env
//              <PREFIX>_APPKEY / <PREFIX>_APPSECRET, never echoed),
//              --idle-timeout-ms, --ca-file
//   callbacks  decode_into(): WsClient's on_data decodes each frame with the
//              broker's codec into Collector::on_event() (a rejected frame
//              is counted, never fatal), on_gap into Collector::on_gap()
//
// Thread safety: the callbacks run on the client's strand, one at a time,
// which is what Collector's feed side needs.
//
// Example (see examples/kis/kis_collector.cc):
//   examples::add_ws_broker_flags(flags, "KIS", "KIS");
//   ... parse; auto endpoints = examples::ws_broker_flags(flags).value();
//   auto client = feedkit::WsClient::create(ioc, ws, std::move(protocol),
//       credentials, examples::decode_into(*collector, codec)).value();
//   return examples::run_with(*collector, ioc, client);
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "collector/collector.h"
#include "collector/flags.h"
#include "common/market_events.h"
#include "feedkit/clock.h"
#include "feedkit/ws_client.h"

namespace examples {

struct WsBrokerEndpoints {
  std::string rest_url;
  std::string ws_url;
  std::string appkey;     // secret
  std::string appsecret;  // secret
  std::string ca_file;    // https: PEM bundle to trust ("" = system)
  std::chrono::milliseconds idle_timeout{0};
};

// Declares the flags above; `env_prefix` names the environment fallbacks
// ("KIS" → KIS_APPKEY …), `broker` goes into the help text.
void add_ws_broker_flags(Flags& flags, std::string_view env_prefix,
                         std::string_view broker);
// Reads them; kInvalidArgument names a bad one.
absl::StatusOr<WsBrokerEndpoints> ws_broker_flags(const Flags& flags);

// WsClient callbacks that decode every data frame with `codec` (anything
// with `decode(frame, std::vector<MarketEvent>&)` returning a result with
// ok()) into `sink`, which must outlive the client.
template <class Codec>
feedkit::WsClientCallbacks decode_into(Collector& sink,
                                       std::shared_ptr<Codec> codec) {
  feedkit::WsClientCallbacks callbacks;
  callbacks.on_data = [&sink, codec, events = std::vector<MarketEvent>()](
                          std::string_view frame, feedkit::SteadyTime recv,
                          std::uint64_t epoch) mutable {
    events.clear();
    if (!codec->decode(frame, events).ok()) {
      sink.on_rejected_frame();
      return;
    }
    for (const auto& e : events) sink.on_event(e, epoch, recv);
  };
  callbacks.on_gap = [&sink](const feedkit::GapEvent& gap) {
    sink.on_gap(gap);
  };
  return callbacks;
}

}  // namespace examples
