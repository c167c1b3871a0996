// SPDX-License-Identifier: Apache-2.0
//
// feedkit/prometheus_bridge.h  (target feedkit::prometheus)
//
// PrometheusBridge exports the stats snapshots of feedkit components as
// Prometheus metrics. The user registers each component once, by name, with a
// function that returns its snapshot; every scrape (Collect()) calls those
// functions and turns the snapshots into metric families, so the values are
// as fresh as the scrape and nothing runs between scrapes:
//
//   add_connection("kis-0", ...)  ConnectionStats (WsClient, MqttClient):
//                                 state, epoch, connects, reconnects,
//                                 disconnects by reason, frames, parse
//                                 errors, subscriptions by state, backoff,
//                                 and its breaker as breaker="kis-0"
//   add_dispatcher("ticks", ...)  DispatcherStats: counters, depth, drops by
//                                 reason, fill ratio, time spent full
//   add_feed_health("kis", ...)   FeedHealthStats: symbols by state, the
//                                 feed's state, in_session, the last event
//                                 and the last evaluation as Unix timestamps
//   add_breaker("token", ...)     CircuitBreakerStats: state, transitions
//   add_escalation("kis-0", ...)  EscalationStats: every rung counted
//   add_symbol_health("kis", ...) opt-in per-symbol series (one per symbol
//                                 and state); nothing else has a symbol label
//
// Names: `feedkit_<component>_<what>[_<unit>]`; counters (monotonic) end in
// `_total`, durations are `_seconds`, times are `_timestamp_seconds` (Unix).
// An enum (connection, breaker, feed state) is a state set: one gauge per
// possible value, 1 for the current one and 0 for the others, so
// `feedkit_breaker_state{state="open"} == 1` needs no lookup table. Each
// component's series carry one label naming it: connection, dispatcher, feed,
// breaker (escalation: connection). Metrics added to registry() are exported
// alongside. The full list is in the README, section "Observability".
//
// Why pull on scrape, not a periodic update(): the values are read at the
// moment Prometheus asks (no second-old copies, no timer, no thread), and a
// collector that is never scraped pays nothing.
//
// Thread safety: thread-safe. Registration and Collect() may run on any
// threads concurrently (Collect() runs on StatusServer's thread). Snapshot
// functions are called from the thread that scrapes, one scrape at a time,
// so each must be thread-safe: WsClient::stats() and Dispatcher::stats() are;
// for a thread-compatible component (FeedHealth, EscalationLadder, a
// CircuitBreaker) let the thread that owns it publish() its stats into a
// SnapshotCell and register the cell's reader(). A snapshot function must
// not call back into the bridge, and what it refers to must outlive the
// bridge.
//
// Example:
//   feedkit::PrometheusBridge bridge;
//   bridge.add_connection("kis-0", [client] { return client->stats(); });
//   bridge.add_dispatcher("ticks", [&d] { return d->stats(); });
//   feedkit::SnapshotCell<feedkit::FeedHealthStats> health_stats;
//   bridge.add_feed_health("kis", health_stats.reader());
//   // consumer thread, after each evaluate():
//   health_stats.publish(health.stats());
#pragma once

#include <cstddef>
#include <functional>
#include <mutex>  // std::mutex, not absl::Mutex: Debian builds Abseil without TSan hooks
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "feedkit/circuit_breaker.h"
#include "feedkit/clock.h"
#include "feedkit/connection.h"
#include "feedkit/dispatcher.h"
#include "feedkit/escalation.h"
#include "feedkit/feed_health.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "prometheus/registry.h"

namespace feedkit {

// The latest value of something one thread owns, for readers on other
// threads: the owner publish()es (e.g. FeedHealth::stats() after each
// evaluate()), a scrape get()s. Holds `T{}` until the first publish().
//
// Thread safety: thread-safe. Memory ordering: a publish() happens-before
// every get() that returns its value.
template <class T>
class SnapshotCell {
 public:
  SnapshotCell() = default;
  explicit SnapshotCell(T initial) : value_(std::move(initial)) {}
  SnapshotCell(const SnapshotCell&) = delete;
  SnapshotCell& operator=(const SnapshotCell&) = delete;

  // Replaces the value. Thread-safe. Copies under a short lock.
  void publish(T value) {
    std::lock_guard lock(mu_);
    value_ = std::move(value);
  }

  // Returns a copy of the latest value. Thread-safe.
  T get() const {
    std::lock_guard lock(mu_);
    return value_;
  }

  // Returns a function that get()s this cell, which must outlive it.
  std::function<T()> reader() const {
    return [this] { return get(); };
  }

 private:
  mutable std::mutex mu_;
  T value_ ABSL_GUARDED_BY(mu_){};
};

// One symbol for add_symbol_health(): its state and newest receive time.
struct SymbolHealth {
  std::string symbol;
  HealthState state = HealthState::never_seen;
  std::optional<SteadyTime> last_received;
};

// Returns every expected symbol of `health` with its state at `now` (use the
// `now` of the last evaluate()). O(symbols); allocates. Call it on the thread
// that owns `health` and publish the result into a SnapshotCell.
inline std::vector<SymbolHealth> symbol_health(const FeedHealth& health,
                                               SteadyTime now) {
  std::vector<SymbolHealth> out;
  out.reserve(health.size());
  for (std::size_t i = 0; i < health.size(); ++i) {
    const auto id = static_cast<SymbolId>(i);
    out.push_back({std::string(health.name(id)), health.state(id, now),
                   health.last_received(id)});
  }
  return out;
}

namespace internal {
template <class Stats>
using NamedSources =
    std::vector<std::pair<std::string, std::function<Stats()>>>;
}  // namespace internal

class PrometheusBridge final : public ::prometheus::Collectable {
 public:
  // `clock` (steady time, must outlive the bridge) maps the steady receive
  // times in FeedHealthStats to Unix timestamps at each scrape.
  explicit PrometheusBridge(Clock& clock = Clock::steady());
  ~PrometheusBridge() override;
  PrometheusBridge(const PrometheusBridge&) = delete;
  PrometheusBridge& operator=(const PrometheusBridge&) = delete;

  // Each add_*() registers a source named `name` (the value of its label).
  // Returns kInvalidArgument for an empty name or an empty function, and
  // kAlreadyExists for a name already registered for that label (breaker
  // names include connection names: a connection exports its breaker as
  // breaker=<its name>). Thread-safe.

  // A feed client (WsClient, MqttClient; their stats convert to
  // ConnectionStats). Label `connection`.
  absl::Status add_connection(std::string name,
                              std::function<ConnectionStats()> stats);
  // A Dispatcher. Label `dispatcher`.
  absl::Status add_dispatcher(std::string name,
                              std::function<DispatcherStats()> stats);
  // A FeedHealth (through a SnapshotCell). Label `feed`.
  absl::Status add_feed_health(std::string name,
                               std::function<FeedHealthStats()> stats);
  // Per-symbol series for the feed `name` (label `feed`, plus `symbol`):
  // one gauge per symbol and state, and the last event per symbol. Ask for
  // this only with a bounded symbol list: it costs 6 series per symbol.
  absl::Status add_symbol_health(
      std::string name, std::function<std::vector<SymbolHealth>()> symbols);
  // A CircuitBreaker not inside a client (a token endpoint's, say). Label
  // `breaker`.
  absl::Status add_breaker(std::string name,
                           std::function<CircuitBreakerStats()> stats);
  // An EscalationLadder (one per connection). Label `connection`.
  absl::Status add_escalation(std::string name,
                              std::function<EscalationStats()> stats);

  // Returns the registry for the user's own metrics (prometheus::
  // BuildCounter() etc.), exported after feedkit's. Thread-safe (the
  // registry is).
  ::prometheus::Registry& registry() { return registry_; }

  // Returns every metric family: the sources' snapshots, taken now, then the
  // registry's. Families with no samples are left out. Thread-safe; one
  // scrape at a time (others wait).
  std::vector<::prometheus::MetricFamily> Collect() const override;

  // Returns Collect() in the Prometheus text format 0.0.4.
  std::string serialize() const;

 private:
  template <class Stats>
  absl::Status add(internal::NamedSources<Stats>& sources, const char* label,
                   std::string name, std::function<Stats()> stats,
                   bool name_taken) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Clock& clock_;
  ::prometheus::Registry registry_;
  mutable std::mutex mu_;  // held for registration and a whole scrape
  internal::NamedSources<ConnectionStats> connections_ ABSL_GUARDED_BY(mu_);
  internal::NamedSources<DispatcherStats> dispatchers_ ABSL_GUARDED_BY(mu_);
  internal::NamedSources<FeedHealthStats> feeds_ ABSL_GUARDED_BY(mu_);
  internal::NamedSources<std::vector<SymbolHealth>> symbols_
      ABSL_GUARDED_BY(mu_);
  internal::NamedSources<CircuitBreakerStats> breakers_ ABSL_GUARDED_BY(mu_);
  internal::NamedSources<EscalationStats> escalations_ ABSL_GUARDED_BY(mu_);
};

}  // namespace feedkit
