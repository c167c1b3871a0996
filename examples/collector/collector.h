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
// number of the old connection's events the queue dropped before it.
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
//   collector->attach(control);
//   return collector->run();
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
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
  feedkit::FeedHealthOptions health;
  feedkit::EscalationOptions escalation;
};

// Declares the flags every collector has: --symbols, --out, --queue,
// --duration, --expected-interval-ms, --quiet.
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
  std::uint64_t gaps = 0;
  std::uint64_t dropped = 0;  // by the Dispatcher (slow consumer)
  std::uint64_t resubscribes = 0;
  std::uint64_t ladder_reconnects = 0;
  std::uint64_t write_errors = 0;
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

  // The client to watch and drive; call before run().
  void attach(FeedControl control);

  // Installs SIGINT and SIGTERM handlers that call request_stop().
  static void stop_on_signals();
  static void request_stop() noexcept;

  // Runs the consumer loop until stopped; then stops the client, drains,
  // flushes and returns the exit code: 0, or 1 if the output failed.
  int run();

  CollectorSummary summary() const { return summary_; }

 private:
  explicit Collector(CollectorOptions options);
  void consume(std::vector<feedkit::Polled<CollectorEvent>>& batch);
  void check_health(feedkit::SteadyTime now);
  void print_status(feedkit::SteadyTime now);
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
};

}  // namespace examples
