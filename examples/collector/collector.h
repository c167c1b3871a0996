// SPDX-License-Identifier: Apache-2.0
//
// examples/collector/collector.h
//
// The part every collector (KIS, Kiwoom, Settrade) shares: a feed client
// hands decoded events to a bounded Dispatcher; the consumer (run(), on the
// main thread) writes them as JSON Lines, tracks every symbol in FeedHealth,
// climbs the EscalationLadder for stale symbols (resubscribe → reconnect),
// prints a one-line status on stderr every second, and on SIGINT/SIGTERM (or
// --duration) stops the client, drains the queue, flushes and returns 0.
//
//   feed thread:  client → codec → on_event()/on_gap() → Dispatcher
//   main thread:  run(): poll → JsonLinesWriter, FeedHealth → ladder → client
//
// A gap line is written for every GapEvent, in order with the data, with the
// number of the old connection's events the queue dropped before it; the new
// connection gets FeedHealth's open grace before any symbol can go stale, and
// no symbol is resubscribed while the connection is still restoring its
// subscriptions (each key's own reply or timeout decides then).
// Within a connection, a symbol whose cumulative volume grows by more than the
// trades received gets a `volume_jump` gap line (json_lines.h): trades lost
// while connected are never silent.
//
// With a metrics port, /metrics, /health and /ready are served on 127.0.0.1
// (collector_metrics.h).
//
// Thread safety: on_event() and on_gap() share one Dispatcher producer: they
// must never run concurrently (WsClient calls both on its strand; MqttClient
// calls on_message on Paho's thread and on_gap on its strand, serialized by
// its own mutex, which is enough); run() belongs to one consumer thread;
// request_stop() is async-signal-safe and callable from anywhere.
//
// Example (see examples/kis/kis_collector.cc):
//   examples::Flags flags("kis_collector", "...");
//   examples::add_collector_flags(flags);
//   ... parse ...
//   auto collector = examples::Collector::create(
//       examples::collector_options(flags, "kis").value()).value();
//   ... client callbacks call collector->on_event(...) / on_gap(...) ...
//   return examples::run_with(*collector, ioc, client);  // WsClient,
//   MqttClient
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "collector/collector_metrics.h"
#include "collector/flags.h"
#include "collector/json_lines.h"
#include "common/market_events.h"
#include "feedkit/clock.h"
#include "feedkit/connection.h"
#include "feedkit/dispatcher.h"
#include "feedkit/epoch.h"
#include "feedkit/escalation.h"
#include "feedkit/feed_health.h"

namespace examples {

// What the collector needs from a feed client (WsClient, MqttClient): all
// thread-safe.
struct FeedControl {
  std::function<feedkit::ConnectionStats()> stats;
  std::function<void(std::string key)> resubscribe;
  std::function<void(feedkit::GapReason reason)> reconnect;
  // Must call `done` once the client has stopped (any thread).
  std::function<void(std::function<void()> done)> stop;
};

struct CollectorOptions {
  std::string broker;                // "kis", "kiwoom", "settrade"
  std::vector<std::string> symbols;  // as the feed names them
  // The subscription keys of a symbol (for resubscribe); e.g. KIS:
  // {"H0STCNT0|005930", "H0STASP0|005930"}.
  std::function<std::vector<std::string>(std::string_view symbol)> keys_of;
  std::string out_path = "-";  // "-" = stdout
  std::size_t queue_capacity = 65'536;
  feedkit::Duration status_interval = std::chrono::seconds(1);
  feedkit::Duration duration{0};  // > 0: stop after this long
  bool quiet = false;             // no status lines
  // Check each symbol's cumulative volume within a connection (volume_jump
  // gap lines); off for feeds whose cumulative volume counts trades they do
  // not send.
  bool volume_check = true;
  // Serve /metrics, /health and /ready on 127.0.0.1 (0: a free port).
  std::optional<std::uint16_t> metrics_port;
  feedkit::FeedHealthOptions health;
  feedkit::EscalationOptions escalation;
};

// Declares the flags every collector has: --symbols, --out, --queue,
// --duration, --expected-interval-ms, --feed-timeout-ms, --volume-check,
// --metrics-port, --quiet.
void add_collector_flags(Flags& flags);
// Reads them into options for `broker`; kInvalidArgument names a bad flag.
absl::StatusOr<CollectorOptions> collector_options(const Flags& flags,
                                                   std::string broker);

// One decoded event with its connection's epoch and its receive time.
struct Received {
  MarketEvent event;
  std::uint64_t epoch = 0;
  feedkit::SteadyTime recv_time{};
};
using CollectorEvent = std::variant<Received, feedkit::GapEvent>;

struct CollectorSummary {
  std::uint64_t trades = 0;
  std::uint64_t books = 0;
  std::uint64_t gaps = 0;           // outages (connection gap lines)
  std::uint64_t volume_jumps = 0;   // losses inside a connection
  std::int64_t missing_volume = 0;  // their total
  std::uint64_t dropped = 0;        // by the Dispatcher (slow consumer)
  std::uint64_t resubscribes = 0;
  std::uint64_t ladder_reconnects = 0;
  std::uint64_t write_errors = 0;
  std::uint64_t rejected_frames = 0;  // data the codec refused, skipped
  std::uint64_t parse_errors = 0;     // frames the client's protocol could
                                      // not read (ConnectionStats), skipped
};

class Collector {
 public:
  static absl::StatusOr<std::unique_ptr<Collector>> create(
      CollectorOptions options);
  ~Collector();

  // Feed side (one thread): never blocks; a full queue drops the oldest
  // event and counts it.
  void on_event(const MarketEvent& event, std::uint64_t epoch,
                feedkit::SteadyTime recv_time);
  void on_gap(const feedkit::GapEvent& gap);
  // A frame the codec rejected (counted and skipped). Thread-safe.
  void on_rejected_frame() noexcept {
    rejected_frames_.fetch_add(1, std::memory_order_relaxed);
  }

  // The client to watch and drive; call before run().
  void attach(FeedControl control);

  // Installs SIGINT and SIGTERM handlers that call request_stop().
  static void stop_on_signals();
  static void request_stop() noexcept;

  // Runs the consumer loop until stopped; then stops the client, drains,
  // flushes and returns the exit code: 0, or 1 if the output failed.
  int run();

  CollectorSummary summary() const { return summary_; }
  const CollectorOptions& options() const { return options_; }

 private:
  explicit Collector(CollectorOptions options);
  void consume(std::vector<feedkit::Polled<CollectorEvent>>& batch);
  void check_volume(const Trade& trade, const Received& r);
  void check_health(feedkit::SteadyTime now);
  // Whether the connection is (re)establishing its subscriptions.
  bool restoring_subscriptions() const;
  void print_status(feedkit::SteadyTime now);
  void print_summary() const;
  std::int64_t unix_ns(feedkit::SteadyTime t) const;

  CollectorOptions options_;
  std::unique_ptr<feedkit::Dispatcher<CollectorEvent>> dispatcher_;
  std::optional<feedkit::Dispatcher<CollectorEvent>::Producer> producer_;
  std::optional<feedkit::FeedHealth> health_;
  std::optional<feedkit::EscalationLadder> ladder_;
  std::FILE* out_ = nullptr;
  std::optional<JsonLinesWriter> writer_;
  FeedControl control_;
  std::vector<feedkit::HealthTransition> transitions_;
  std::vector<feedkit::EscalationAction> actions_;
  std::vector<feedkit::SymbolId> scratch_ids_;
  std::int64_t steady_to_unix_ns_ = 0;
  CollectorSummary summary_;
  std::uint64_t events_at_last_status_ = 0;
  feedkit::SteadyTime last_status_{};
  struct VolumeTrack {
    std::uint64_t epoch = 0;
    std::int64_t cumulative_volume = 0;
    std::int64_t recv_ns = 0;
  };
  struct SymbolHash {
    std::size_t operator()(const Symbol& s) const noexcept {
      return std::hash<std::string_view>{}(s.view());
    }
  };
  absl::flat_hash_map<Symbol, VolumeTrack, SymbolHash> volumes_;
  std::uint64_t drops_reported_ = 0;
  std::atomic<std::uint64_t> rejected_frames_{0};
  std::unique_ptr<CollectorMetrics> metrics_;
};

// The FeedControl of a feed client (WsClient, MqttClient).
template <class Client>
FeedControl control_of(std::shared_ptr<Client> client) {
  return {
      .stats = [client] { return feedkit::ConnectionStats(client->stats()); },
      .resubscribe = [client](std::string key) { client->resubscribe(key); },
      .reconnect = [client](feedkit::GapReason r) { client->reconnect(r); },
      .stop = [client](std::function<void()> done) { client->stop(done); },
  };
}

// Runs `collector` with `client` (WsClient, MqttClient; its callbacks call
// collector.on_event()/on_gap()) on `ioc`: wants every symbol's keys,
// attaches the client, stops on SIGINT/SIGTERM, starts the client, runs `ioc`
// on a thread of its own and the consumer loop on this one. Returns run()'s
// exit code once the client has stopped and the thread has ended.
template <class Client>
int run_with(Collector& collector, boost::asio::io_context& ioc,
             const std::shared_ptr<Client>& client) {
  for (const auto& symbol : collector.options().symbols) {
    for (auto& key : collector.options().keys_of(symbol)) {
      client->want(std::move(key));
    }
  }
  collector.attach(control_of(client));
  Collector::stop_on_signals();
  client->start();
  std::thread io([&ioc] { ioc.run(); });
  const int code = collector.run();
  io.join();  // run() stopped the client: the io_context has no more work
  return code;
}

}  // namespace examples
