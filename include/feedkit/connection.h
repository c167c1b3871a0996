// SPDX-License-Identifier: Apache-2.0
//
// feedkit/connection.h
//
// What every feedkit feed client (WsClient, MqttClient) has in common: the
// connection state machine, the credentials it asks for on every connect, and
// the counters it reports. Metrics exporters and status lines read
// ConnectionStats and never need to know which transport is underneath.
//
//   disconnected → connecting → logging_in → subscribing → live
//        ↑              │             │            │          │
//        └── backoff ←──┴─────────────┴────────────┴──────────┘   (any failure)
//   stop() from any state → stopped
//
// Counting rules, the same for every client:
//   - connect_attempts: attempts the breaker let through; breaker_rejections:
//     the ones it refused (no socket was opened).
//   - A failure before the transport is up (TCP, TLS, WebSocket or MQTT
//     handshake) is a handshake_failure, not a disconnect. From logging_in on,
//     every lost connection is exactly one disconnect, by reason
//     (count_disconnect()), and a loss in logging_in is also a login_failure.
//   - connects: connections that reached logging_in; reconnects = connects
//     after the first.
//
// Thread safety: plain values (thread-compatible).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "feedkit/backoff.h"
#include "feedkit/circuit_breaker.h"
#include "feedkit/clock.h"
#include "feedkit/epoch.h"
#include "feedkit/subscription_set.h"

namespace feedkit {

enum class ConnectionState {
  disconnected,  // created, not started
  connecting,    // TCP connect, TLS and transport handshakes
  logging_in,    // credentials presented, waiting for the broker's answer
  subscribing,   // logged in; subscriptions being (re)established
  live,          // every wanted key confirmed (or reported), data flowing
  backoff,       // waiting for the next attempt
  stopped,       // stop() completed; final
};

// Returns "disconnected", "connecting", "logging_in", "subscribing", "live",
// "backoff" or "stopped".
constexpr std::string_view to_string(ConnectionState state) {
  switch (state) {
    case ConnectionState::disconnected:
      return "disconnected";
    case ConnectionState::connecting:
      return "connecting";
    case ConnectionState::logging_in:
      return "logging_in";
    case ConnectionState::subscribing:
      return "subscribing";
    case ConnectionState::live:
      return "live";
    case ConnectionState::backoff:
      return "backoff";
    case ConnectionState::stopped:
      return "stopped";
  }
  return "unknown";
}

// Credentials for one connection: an approval key, token or password.
// `secret` is never logged; `expires_at` (steady time; max() = never)
// schedules the refresh.
struct Credentials {
  std::string secret;
  SteadyTime expires_at = SteadyTime::max();
};

// Called at every connect (force_refresh = false) and after an auth
// rejection (true). It must call `done` exactly once, on any thread; it may do
// so later (e.g. after a REST call), never blocking the caller. Each client's
// header says which thread calls it.
using CredentialsProvider = std::function<void(
    bool force_refresh, std::function<void(absl::StatusOr<Credentials>)> done)>;

struct ConnectionStats {
  ConnectionState state = ConnectionState::disconnected;
  Duration time_in_state{0};
  std::uint64_t epoch = 0;
  std::uint64_t connect_attempts = 0;
  std::uint64_t connects = 0;    // connections that reached logging_in
  std::uint64_t reconnects = 0;  // connects after the first
  std::uint64_t disconnects_network = 0;
  std::uint64_t disconnects_server_close = 0;
  std::uint64_t disconnects_stall = 0;  // idle, pong or keepalive timeout
  std::uint64_t disconnects_token = 0;  // auth rejected or expired
  std::uint64_t disconnects_other = 0;
  std::uint64_t stalls_detected = 0;
  std::uint64_t handshake_failures = 0;
  std::uint64_t login_failures = 0;
  std::uint64_t breaker_rejections = 0;  // attempts the open breaker refused
  std::uint64_t credential_refreshes = 0;
  std::uint64_t frames_in = 0;  // frames or messages
  std::uint64_t frames_out = 0;
  std::uint64_t data_frames = 0;
  std::uint64_t parse_errors = 0;  // malformed frames, skipped
  std::uint64_t late_frames_discarded =
      0;  // of an old connection, or data before login
  SubscriptionStats subscriptions;
  CircuitBreakerStats breaker;
  BackoffStats backoff;

  std::uint64_t disconnects() const {
    return disconnects_network + disconnects_server_close + disconnects_stall +
           disconnects_token + disconnects_other;
  }

  // Counts one lost connection under its reason's counter.
  void count_disconnect(GapReason reason) {
    switch (reason) {
      case GapReason::network:
        ++disconnects_network;
        return;
      case GapReason::server_close:
        ++disconnects_server_close;
        return;
      case GapReason::stall:
        ++disconnects_stall;
        return;
      case GapReason::token:
        ++disconnects_token;
        return;
      default:
        ++disconnects_other;
        return;
    }
  }
};

}  // namespace feedkit
