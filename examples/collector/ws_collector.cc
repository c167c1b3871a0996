// SPDX-License-Identifier: Apache-2.0
#include "collector/ws_collector.h"

#include <chrono>

namespace examples {

void add_ws_broker_flags(Flags& flags, std::string_view env_prefix,
                         std::string_view broker) {
  const std::string prefix(env_prefix);
  flags.add({.name = "rest-url",
             .help = std::string(broker) + " REST base (key/token endpoint)",
             .env = prefix + "_REST_URL",
             .required = true});
  flags.add({.name = "ws-url",
             .help = std::string(broker) + " realtime WebSocket URL",
             .env = prefix + "_WS_URL",
             .required = true});
  flags.add({.name = "appkey",
             .help = "app key",
             .env = prefix + "_APPKEY",
             .required = true,
             .secret = true});
  flags.add({.name = "appsecret",
             .help = "app secret",
             .env = prefix + "_APPSECRET",
             .required = true,
             .secret = true});
  flags.add({.name = "idle-timeout-ms",
             .help = "reconnect after this long with no frame at all "
                     "(data or heartbeat)",
             .default_value = "30000"});
  flags.add({.name = "ca-file", .help = "PEM bundle to trust for https/wss"});
}

absl::StatusOr<WsBrokerEndpoints> ws_broker_flags(const Flags& flags) {
  auto idle = flags.integer("idle-timeout-ms", 100, 3'600'000);
  if (!idle.ok()) return idle.status();
  return WsBrokerEndpoints{
      .rest_url = flags.get("rest-url"),
      .ws_url = flags.get("ws-url"),
      .appkey = flags.get("appkey"),
      .appsecret = flags.get("appsecret"),
      .ca_file = flags.get("ca-file"),
      .idle_timeout = std::chrono::milliseconds(*idle),
  };
}

}  // namespace examples
