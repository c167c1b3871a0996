// SPDX-License-Identifier: Apache-2.0
//
// feedkit/status_server.h  (target feedkit::prometheus)
//
// StatusServer is a small HTTP/1.1 server (Boost.Beast) on a loopback port
// that tells Prometheus, an orchestrator and a person with curl how the
// collector is doing:
//
//   GET /metrics  200, Prometheus text format 0.0.4: the bridge's families
//                 (feedkit/prometheus_bridge.h) plus this server's own:
//                 feedkit_status_check{type,check} (1 passing, 0 failing)
//                 and feedkit_status_requests_total{endpoint,code}
//   GET /health   200 while every liveness check passes (the process and its
//                 loops are alive), else 503; JSON body
//   GET /ready    200 while every liveness and readiness check passes
//                 (connected, subscriptions confirmed, feed fresh), else 503;
//                 JSON body saying which check fails and why:
//     {"status":"not_ready","checks":[{"name":"kis-0","type":"readiness",
//      "ok":false,"reason":"state backoff, not live"}, ...]}
//   anything else 404; a method other than GET 405; a malformed request 400
//   and a header over max_header_bytes 431 (then the connection is closed).
//
// A check is a function returning OK or an error whose message says why (it
// must hold no secret). Ready-made ones: Heartbeat::check() (a loop ticked
// recently), connection_ready() and feed_ready(). A check that throws fails.
//
// Threads: the server owns one thread (started by create(), joined by stop()
// and the destructor) with its own io_context, so /health answers even when
// the collector's io_context or consumer loop is wedged (that is what it
// reports), and a slow scrape never delays a feed's frames. Checks and the
// bridge's snapshot functions run on that thread, one request at a time.
// Requests must arrive complete within request_timeout (slow or idle clients
// are closed); at most max_connections are open at once (more are closed at
// accept). stop() returns within about half a second.
//
// Thread safety: thread-safe. Memory ordering: a check added by
// add_*_check() is used by every request that starts after it returned.
//
// Example:
//   feedkit::Heartbeat loop;  // the consumer loop calls loop.beat()
//   auto server =
//       feedkit::StatusServer::create({.port = 9471}, &bridge).value();
//   server->add_liveness_check("consumer", loop.check(5s));
//   server->add_readiness_check(
//       "kis-0", feedkit::connection_ready([c] { return c->stats(); }));
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "feedkit/clock.h"
#include "feedkit/connection.h"
#include "feedkit/feed_health.h"
#include "prometheus/collectable.h"

namespace feedkit {

// Returns OK, or an error whose message says why the check fails.
using HealthCheck = std::function<absl::Status()>;

struct StatusServerOptions {
  // The IP address to listen on: a loopback address (127.0.0.1, ::1) unless
  // allow_non_loopback.
  std::string address = "127.0.0.1";
  // The TCP port; 0 picks a free one (see StatusServer::port()).
  std::uint16_t port = 0;
  // true lets `address` be a non-loopback one (0.0.0.0: every interface).
  // Metrics then leave the host: only behind a firewall.
  bool allow_non_loopback = false;
  // A request (or the next one on a kept-alive connection) must arrive, and
  // its response be taken, within this; else the connection is closed.
  // In [10 ms, 10 min].
  std::chrono::milliseconds request_timeout{10'000};
  // Connections open at once; more are closed as they are accepted.
  // In [1, 10000].
  std::size_t max_connections = 64;
  // The largest request header accepted (431 beyond). In [1 KiB, 1 MiB].
  std::size_t max_header_bytes = 16 * 1024;

  static StatusServerOptions suggested() { return {}; }
  // Returns OK, or kInvalidArgument naming the first bad field and value.
  absl::Status validate() const;
};

class StatusServer {
 public:
  // Listens on options.address:options.port and starts the server thread.
  // `metrics` (nullable: only the server's own families) is what /metrics
  // exports, usually a PrometheusBridge; it must outlive the server. Returns
  // kInvalidArgument for bad options and kUnavailable if the address cannot
  // be bound (the port is taken, say).
  static absl::StatusOr<std::unique_ptr<StatusServer>> create(
      StatusServerOptions options,
      const ::prometheus::Collectable* metrics = nullptr);

  // stop().
  ~StatusServer();
  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;

  // Returns the port it listens on (the one picked when options.port was 0).
  std::uint16_t port() const;
  // Returns "http://127.0.0.1:PORT" (brackets for IPv6).
  std::string url() const;

  // Adds a check named `name` (unique per type). Returns kInvalidArgument for
  // an empty name or function, kAlreadyExists for a taken name.
  // Thread-safe.
  absl::Status add_liveness_check(std::string name, HealthCheck check);
  absl::Status add_readiness_check(std::string name, HealthCheck check);

  // Closes the listener and every connection and joins the server thread.
  // Idempotent. Thread-safe; must not be called from a check.
  void stop();

  class Impl;

 private:
  explicit StatusServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A loop's proof of life: the loop calls beat() every iteration, and check()
// fails once it has not for longer than `max_silence`. Counts from
// construction until the first beat().
//
// Thread safety: thread-safe (beat() is one atomic store; never blocks,
// never allocates).
class Heartbeat {
 public:
  // `clock` must outlive the heartbeat.
  explicit Heartbeat(Clock& clock = Clock::steady());

  // Records that the loop is alive now. Thread-safe. Never blocks.
  void beat() noexcept;

  // Returns the time of the last beat() (construction before the first).
  SteadyTime last() const noexcept;

  // Returns a check that fails with "no beat for X s (limit Y s)" once the
  // last beat is more than `max_silence` old. The heartbeat must outlive it.
  HealthCheck check(Duration max_silence) const;

 private:
  Clock& clock_;
  std::atomic<Duration::rep> last_ns_;
};

// Returns a readiness check for a feed client: ready while its state is live
// and every wanted key is confirmed; otherwise the reason names the state
// ("state backoff, not live") or the keys ("3 of 40 subscriptions not
// confirmed: 2 pending, 1 rejected").
HealthCheck connection_ready(std::function<ConnectionStats()> stats);

// Returns a readiness check for a FeedHealth (stats published by its owner,
// see SnapshotCell): ready when it has been evaluated, the feed has delivered
// at least one event and is not stale, and at most `max_stale_symbols`
// symbols are stale. A feed that is subscribed but has delivered nothing yet
// is not ready: data is not flowing. Outside a trading session everything is
// suspended, hence ready.
HealthCheck feed_ready(std::function<FeedHealthStats()> stats,
                       std::size_t max_stale_symbols = 0);

}  // namespace feedkit
