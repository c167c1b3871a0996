// SPDX-License-Identifier: Apache-2.0
//
// examples/collector/collector_metrics.h
//
// A collector's status endpoints (`--metrics-port`): a feedkit::StatusServer
// on 127.0.0.1 serving
//
//   /metrics  every component through a PrometheusBridge: the connection
//             (state, epoch, reconnects and disconnects by reason,
//             subscriptions, frames, breaker), the dispatcher, FeedHealth
//             and the EscalationLadder, all labelled with the broker
//   /health   the consumer loop beat within the last 5 s
//   /ready    healthy, connected with every subscription confirmed, and the
//             feed fresh (no stale symbol); the JSON body says why not
//
// Built on feedkit::prometheus; when the project was built without
// prometheus-cpp, start() says so and the collector exits 2.
//
// Thread safety: start() and attach_connection() on the main thread before
// the loop; publish() and beat() on the consumer thread; the server's own
// thread reads through thread-safe snapshots.
//
// Example (inside Collector):
//   auto metrics = CollectorMetrics::start(9471, "kis",
//                                          [d] { return d->stats(); });
//   metrics->attach_connection([c] { return c->stats(); });
//   ... every second: metrics->publish(health.stats(), ladder.stats());
//   ... every loop:   metrics->beat();
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "feedkit/connection.h"
#include "feedkit/dispatcher.h"
#include "feedkit/escalation.h"
#include "feedkit/feed_health.h"

namespace examples {

class CollectorMetrics {
 public:
  // Listens on 127.0.0.1:`port` (0: a free port). kUnavailable if the port
  // is taken, kUnimplemented without feedkit::prometheus.
  static absl::StatusOr<std::unique_ptr<CollectorMetrics>> start(
      std::uint16_t port, const std::string& broker,
      std::function<feedkit::DispatcherStats()> dispatcher);
  ~CollectorMetrics();
  CollectorMetrics(const CollectorMetrics&) = delete;
  CollectorMetrics& operator=(const CollectorMetrics&) = delete;

  // Exports the client's stats and makes /ready depend on them.
  void attach_connection(std::function<feedkit::ConnectionStats()> stats);
  // Publishes the consumer thread's components for the next scrape.
  void publish(const feedkit::FeedHealthStats& health,
               const feedkit::EscalationStats& escalation);
  // The consumer loop is alive.
  void beat();
  // "http://127.0.0.1:PORT".
  std::string url() const;

  class Impl;

 private:
  explicit CollectorMetrics(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace examples
