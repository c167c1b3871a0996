// SPDX-License-Identifier: Apache-2.0
//
// examples/sim/broker_sim.h
//
// BrokerSim is one simulated broker on loopback, the engine of feedkit-sim:
// a FaultyWsServer speaking the broker's realtime wire format (KisDialect,
// KiwoomDialect) and a LoopbackHttpServer serving its REST key/token
// endpoint, publishing every symbol's trades (and books) at a set rate, with
// the fault script's commands applied on demand.
//
//   REST      KIS: POST /oauth2/Approval {"grant_type":"client_credentials",
//             "appkey","secretkey"} → {"approval_key"}; Kiwoom: POST
//             /oauth2/token → {"token","expires_dt" (KST),"token_type":
//             "bearer","return_code":0,"return_msg"}. Wrong credentials are
//             refused (KIS 403 with error_code; Kiwoom return_code 3). Each
//             call issues a new secret, accepted until token_ttl or an
//             expire_token; the WebSocket accepts nothing else.
//   realtime  KIS: ws://127.0.0.1:P/tryitout (any path), keys
//             "H0STCNT0|<symbol>" and "H0STASP0|<symbol>"; a second session
//             of the app key is refused (OPSP8996). Kiwoom:
//             ws://127.0.0.1:P/api/dostk/websocket (any path), keys
//             "0B|<symbol>" and "0D|<symbol>"; a new login kicks the old
//             session (SYSTEM R10001).
//   data      trade seq n of a symbol has volume v(n) and cumulative volume
//             C(n) (sim/market.h), server-wide: within a connection the
//             trades a client receives are consecutive; after an outage the
//             jump in C is exactly the volume lost. Frames carry 1 or more
//             records following `records_per_frame`.
//   record    report() / report_jsonl(): for each connection and key what
//             was sent (frames, records, first/last seq, and for trades the
//             first/last cumulative volume), so a collector's output can be
//             checked against it connection by connection. Never a secret.
//             Also one {"type":"fault","at_s","command"} line per command
//             apply() played, and the start as Unix ns ("started_unix_ns" in
//             the ready and summary lines) to join the collector's clock.
//
// Settrade: Broker::settrade keeps the LoopbackHttpServer (login and
// dispatcher-token endpoints), apply() and the report format, and delegates
// the rest to SettradeSim (sim/settrade_sim.h): BidOfferV3 books through a
// real mosquitto behind a WsTcpBridge (wss, bearer), no trades, no
// FaultyWsServer (server() must not be called; ws_port is not used).
//
// Thread safety: thread-safe (the servers run on their own threads).
//
// Example:
//   auto sim = examples::sim::BrokerSim::start(
//       {.broker = examples::sim::Broker::kis, .symbols = {"005930"}}).value();
//   ... a collector against sim->rest_url() and sim->ws_url() ...
//   sim->apply({.action = examples::sim::FaultAction::close});
//   std::cout << sim->report_jsonl();
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "feedkit/clock.h"
#include "feedkit/testing/faulty_ws_server.h"
#include "feedkit/testing/loopback_http_server.h"
#include "sim/fault_script.h"

namespace examples::sim {

class SettradeSim;

enum class Broker : std::uint8_t { kis, kiwoom, settrade };

// "kis" / "kiwoom" / "settrade".
std::string_view to_string(Broker broker) noexcept;

struct BrokerSimOptions {
  Broker broker = Broker::kis;
  std::vector<std::string> symbols = {"005930"};  // 1-12 letters or digits
  double trade_rate = 10.0;  // trades per second per symbol; > 0
  double book_rate = 1.0;    // books per second per symbol; >= 0 (0: none)
  // Records per data frame, in turn (each 1-10); trades keep trade_rate.
  std::vector<std::size_t> records_per_frame = {1, 1, 1, 2, 1, 1, 1, 3};
  std::string appkey = "SIMAPPKEY";        // REST credentials the sim
  std::string secretkey = "SIMSECRETKEY";  // accepts (secret: never shown)
  feedkit::Duration token_ttl = std::chrono::hours(24);        // > 0
  feedkit::Duration ping_interval = std::chrono::seconds(10);  // 0: none
  // A session that leaves this many pings in a row unanswered is closed
  // (Kiwoom: after SYSTEM R10002). 0: pings need no answer.
  std::size_t max_missed_pings = 0;
  std::uint16_t ws_port = 0;     // 0: a free port
  std::uint16_t rest_port = 0;   // 0: a free port
  int start_seconds = 9 * 3600;  // exchange time (KST) at the start

  static BrokerSimOptions suggested() { return {}; }
  // Returns OK or kInvalidArgument naming the bad field and value.
  absl::Status validate() const;
};

// What one connection was sent for one key.
struct SentRecord {
  std::size_t connection = 0;
  std::string key;
  std::string symbol;
  bool trade = false;  // trades carry volumes; books do not
  std::uint64_t frames = 0;
  std::uint64_t records = 0;
  std::uint64_t first_seq = 0;
  std::uint64_t last_seq = 0;
  std::uint64_t first_volume = 0;             // v(first_seq), trades
  std::uint64_t first_cumulative_volume = 0;  // C(first_seq), trades
  std::uint64_t last_cumulative_volume = 0;   // C(last_seq), trades
};

class BrokerSim {
 public:
  // Starts both servers and the streams, or returns why not
  // (kInvalidArgument for bad options, kUnavailable for a port).
  static absl::StatusOr<std::unique_ptr<BrokerSim>> start(
      BrokerSimOptions options);
  ~BrokerSim();
  BrokerSim(const BrokerSim&) = delete;
  BrokerSim& operator=(const BrokerSim&) = delete;

  const BrokerSimOptions& options() const { return options_; }
  std::string ws_url() const;    // with the broker's usual path
  std::string rest_url() const;  // "http://127.0.0.1:PORT"
  // The subscription keys of a symbol's trades and books.
  std::string trade_key(std::string_view symbol) const;
  std::string book_key(std::string_view symbol) const;
  // The first line feedkit-sim prints: one JSON object with the broker,
  // both URLs and ports, and the symbols' keys.
  std::string ready_line() const;

  // Applies `command` now (its `at` is ignored; the record notes the time);
  // durations are divided by `speed`. `end` does nothing here (the caller
  // stops).
  void apply(const FaultCommand& command, double speed = 1.0);

  // Secrets issued by the REST endpoint so far.
  std::uint64_t secrets_issued() const { return issued_; }
  // Trades published so far for `symbol` (its last trade seq).
  std::uint64_t trades_published(std::string_view symbol) const;

  // What each connection was sent, per key, in connection order.
  std::vector<SentRecord> report() const;
  // report() as JSON Lines: one {"type":"connection",…} line per connection,
  // one {"type":"sent",…} line per connection and key, then one
  // {"type":"summary",…} line.
  std::string report_jsonl() const;

  feedkit::testing::FaultyWsServer& server() { return *ws_; }
  feedkit::testing::LoopbackHttpServer& rest() { return *rest_; }
  SettradeSim* settrade() { return settrade_.get(); }  // null unless settrade

 private:
  explicit BrokerSim(BrokerSimOptions options);
  feedkit::testing::HttpResponse on_rest(
      const feedkit::testing::HttpRequest& request);
  std::string issue_secret();
  std::vector<feedkit::testing::ConnectionLog> connection_logs() const;

  BrokerSimOptions options_;
  feedkit::SteadyTime started_at_;
  std::int64_t started_unix_ns_ = 0;  // the same instant, system clock
  std::unique_ptr<feedkit::testing::FaultyWsServer> ws_;
  std::unique_ptr<feedkit::testing::LoopbackHttpServer> rest_;
  std::unique_ptr<SettradeSim> settrade_;
  std::atomic<std::uint64_t> issued_{0};
  std::mutex rng_mu_;
  std::uint64_t rng_state_ = 0;
  mutable std::mutex faults_mu_;
  std::vector<std::pair<double, std::string>> faults_;  // at_s, command
};

}  // namespace examples::sim
