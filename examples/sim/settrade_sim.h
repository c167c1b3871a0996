// SPDX-License-Identifier: Apache-2.0
//
// examples/sim/settrade_sim.h
//
// SettradeSim is the Settrade engine of feedkit-sim (`--broker settrade`):
// what BrokerSim delegates to when options.broker is Broker::settrade. MQTT
// does not fit a FaultyWsServer dialect, so the realtime side is a real
// mosquitto behind a WebSocket gateway, on loopback:
//
//   client ──wss──▶ TcpFaultProxy ──▶ WsTcpBridge ──tcp──▶ tap ──▶ mosquitto
//                   (reset)           (TLS, bearer,        (record,   ▲
//                                      close)               stall)    │
//   publisher (this process, plain tcp: one ws Paho per process) ─────┘
//
//   REST      on BrokerSim's LoopbackHttpServer (on_rest()):
//             POST /api/oam/v1/{broker}/broker-apps/{app_code}/login with
//             {"apiKey","params","signature","timestamp"}: apiKey must be the
//             app id (options.appkey) and signature the ECDSA P-256 signature
//             of "{apiKey}.{params}.{timestamp}" under the app secret
//             (options.secretkey, base64 private scalar) → 200
//             {"token_type":"Bearer","access_token","refresh_token",
//             "expires_in"}; else 401 {"code":"E401","message":…} (the
//             reference names no error shape; parse_login_response reads
//             "code"). GET /api/dispatcher/v3/{broker}/token with
//             "Authorization: Bearer <access token>" → {"hosts":
//             ["127.0.0.1"],"token":<dispatcher token>}; else 401.
//   realtime  wss://localhost:P/api/dispatcher/v3/{broker}/mqtt (ws_url();
//             the port is not 443, so collectors need a URL override and
//             ca_file() to trust): the upgrade must carry "Authorization:
//             Bearer <current dispatcher token>" (else HTTP 401), then MQTT
//             3.1.1 to mosquitto (anonymous, clean sessions, QoS 0).
//   tokens    access tokens live token_ttl; there is one dispatcher token at
//             a time, replaced after token_ttl or by expire_token, which also
//             closes every session (the gateway drops connections whose token
//             expired, as lumduan asserts) and voids every access token.
//   data      one BidOfferV3 per symbol at book_rate on
//             proto/topic/bidofferv3/{SYM}, serialized with the generated
//             classes: 10 levels around a per-symbol price in 0.25 ticks,
//             zero fields omitted as the real feed does (whole prices have no
//             nanos, bid levels 9-10 are empty in every third book, the
//             flags are UNDEFINED in every fifth). BidOfferV3 has no sequence
//             field, so the book's per-symbol sequence number n (1, 2, …)
//             is the quantity of ask level 10 (ask_volume10 = n, the last
//             ask of the decoded Book): continuity is checkable per symbol.
//   record    connection_logs(): one ConnectionLog per gateway session (the
//             tap sees each session's TCP connection to mosquitto), per
//             topic the PUBLISH packets mosquitto sent it (first/last n),
//             malformed ones counted apart; BrokerSim formats it as for KIS.
//
// Faults (apply()): close = the gateway closes every session (WebSocket
// close frame); reset = TCP RST to every client; stall [s] = the tap stops
// forwarding on the open sessions (what mosquitto sends meanwhile is lost
// for them, not recorded; the client's packets wait) for s seconds (0: until
// they end); expire_token (above); burst m s = rate × m for s seconds;
// malformed n = n garbage payloads published on the symbols' topics in turn
// (each reaches every subscriber). keep_subscriptions, max_subscriptions
// and appkey_in_use have no MQTT meaning: check_script() rejects them and
// apply() ignores them.
//
// Thread safety: thread-safe (the servers, tap and publisher run on their
// own threads).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "feedkit/clock.h"
#include "feedkit/testing/faulty_ws_server.h"
#include "feedkit/testing/loopback_http_server.h"
#include "sim/fault_script.h"

namespace examples::sim {

struct BrokerSimOptions;

// Returns OK, or kInvalidArgument "<name>:<line>: <command> has no meaning
// for settrade" for the first command SettradeSim cannot play.
absl::Status check_settrade_script(const std::vector<FaultCommand>& commands,
                                   std::string_view name = "script");

class SettradeSim {
 public:
  // Starts mosquitto, the tap, the gateway, the proxy and the publisher, or
  // returns why not (kInvalidArgument: book_rate must be > 0;
  // kUnavailable / kNotFound: mosquitto, openssl or a port).
  static absl::StatusOr<std::unique_ptr<SettradeSim>> start(
      const BrokerSimOptions& options);
  virtual ~SettradeSim() = default;

  // The REST endpoints (above); counts each token issued in `issued`.
  virtual feedkit::testing::HttpResponse on_rest(
      const feedkit::testing::HttpRequest& request,
      std::atomic<std::uint64_t>& issued) = 0;
  virtual std::string ws_url() const = 0;  // wss://localhost:P/api/…/mqtt
  virtual std::uint16_t ws_port() const = 0;
  virtual std::string ca_file() const = 0;  // the gateway's certificate
  virtual void apply(const FaultCommand& command, double speed) = 0;
  // What each session was sent, in the order the sessions opened.
  virtual std::vector<feedkit::testing::ConnectionLog> connection_logs()
      const = 0;
  // Books published so far for `symbol` (its last n).
  virtual std::uint64_t books_published(std::string_view symbol) const = 0;
};

}  // namespace examples::sim
