// SPDX-License-Identifier: Apache-2.0
#include "collector/collector_metrics.h"

#include <chrono>
#include <utility>

#if FEEDKIT_EXAMPLES_HAVE_PROMETHEUS
#include "feedkit/prometheus_bridge.h"
#include "feedkit/status_server.h"
#endif

namespace examples {

#if FEEDKIT_EXAMPLES_HAVE_PROMETHEUS

class CollectorMetrics::Impl {
 public:
  explicit Impl(std::string broker) : broker(std::move(broker)) {}

  std::string broker;
  feedkit::PrometheusBridge bridge;
  feedkit::SnapshotCell<feedkit::FeedHealthStats> health;
  feedkit::SnapshotCell<feedkit::EscalationStats> escalation;
  feedkit::Heartbeat consumer_loop;
  std::unique_ptr<feedkit::StatusServer> server;  // last: stops first
};

absl::StatusOr<std::unique_ptr<CollectorMetrics>> CollectorMetrics::start(
    std::uint16_t port, const std::string& broker,
    std::function<feedkit::DispatcherStats()> dispatcher) {
  auto impl = std::make_unique<Impl>(broker);
  if (auto s = impl->bridge.add_dispatcher(broker, std::move(dispatcher));
      !s.ok()) {
    return s;
  }
  if (auto s = impl->bridge.add_feed_health(broker, impl->health.reader());
      !s.ok()) {
    return s;
  }
  if (auto s = impl->bridge.add_escalation(broker, impl->escalation.reader());
      !s.ok()) {
    return s;
  }
  feedkit::StatusServerOptions options;
  options.port = port;
  auto server = feedkit::StatusServer::create(options, &impl->bridge);
  if (!server.ok()) return server.status();
  impl->server = *std::move(server);
  (void)impl->server->add_liveness_check(
      "consumer", impl->consumer_loop.check(std::chrono::seconds(5)));
  (void)impl->server->add_readiness_check(
      broker, feedkit::feed_ready(impl->health.reader()));
  return std::unique_ptr<CollectorMetrics>(
      new CollectorMetrics(std::move(impl)));
}

void CollectorMetrics::attach_connection(
    std::function<feedkit::ConnectionStats()> stats) {
  (void)impl_->bridge.add_connection(impl_->broker, stats);
  (void)impl_->server->add_readiness_check(impl_->broker + "-connection",
                                           feedkit::connection_ready(stats));
}

void CollectorMetrics::publish(const feedkit::FeedHealthStats& health,
                               const feedkit::EscalationStats& escalation) {
  impl_->health.publish(health);
  impl_->escalation.publish(escalation);
}

void CollectorMetrics::beat() { impl_->consumer_loop.beat(); }

std::string CollectorMetrics::url() const { return impl_->server->url(); }

#else  // built without prometheus-cpp

class CollectorMetrics::Impl {};

absl::StatusOr<std::unique_ptr<CollectorMetrics>> CollectorMetrics::start(
    std::uint16_t, const std::string&,
    std::function<feedkit::DispatcherStats()>) {
  return absl::UnimplementedError(
      "--metrics-port: built without prometheus-cpp (install "
      "prometheus-cpp-dev and rebuild)");
}

void CollectorMetrics::attach_connection(
    std::function<feedkit::ConnectionStats()>) {}
void CollectorMetrics::publish(const feedkit::FeedHealthStats&,
                               const feedkit::EscalationStats&) {}
void CollectorMetrics::beat() {}
std::string CollectorMetrics::url() const { return {}; }

#endif

CollectorMetrics::CollectorMetrics(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
CollectorMetrics::~CollectorMetrics() = default;

}  // namespace examples
