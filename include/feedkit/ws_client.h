// SPDX-License-Identifier: Apache-2.0
//
// feedkit/ws_client.h
//
// WsClient keeps one WebSocket feed connection (ws:// or wss://, Boost.Beast)
// alive and subscribed, and tells its consumer exactly where the data has
// holes. One connection, driven by the caller's io_context on its own strand:
//
//   disconnected → connecting → logging_in → subscribing → live
//        ↑              │             │            │          │
//        └── backoff ←──┴─────────────┴────────────┴──────────┘   (any failure)
//   stop() from any state → stopped
//
// What it guarantees:
//   - Reconnects by itself, paced by Backoff (reset only once the connection
//     has been stable), with a CircuitBreaker around connect + login: a
//     broker that keeps refusing gets probes, not a storm.
//   - Subscriptions through SubscriptionSet: after a reconnect to a broker
//     that keeps server-side state (KIS, Kiwoom) it unsubscribes before it
//     subscribes; ALREADY IN SUBSCRIBE counts as confirmed; every key is
//     confirmed within a timeout or retried a bounded number of times, and
//     what stays unconfirmed is reported in stats, never forgotten.
//   - Every connection has an epoch. on_gap(GapEvent) is called once per
//     boundary, after the new connection is logged in and before any of its
//     data; frames of an older connection are discarded and counted.
//   - Silence is detected: no inbound frame for `idle_timeout` → reconnect
//     (GapReason::stall); WebSocket pings with a pong deadline when enabled.
//   - Timeouts on TCP connect, TLS + WebSocket handshake and login.
//   - Credentials come from the provider on every connect, are refreshed
//     `refresh_lead` before expiry and once after an auth rejection (with a
//     cooldown). Secrets never appear in logs, errors or stats.
//   - stop() is idempotent, completes promptly from any state and never
//     races with a reconnect.
//
// Threads: every callback (Protocol methods, on_data, on_gap, on_state, the
// credentials provider, see feedkit/connection.h) runs on the client's strand
// of the caller's io_context. on_data should only parse and push into a
// Dispatcher. The public methods of WsClient are thread-safe.
//
// Example:
//   boost::asio::io_context ioc;
//   auto client = feedkit::WsClient::create(ioc, options,
//   std::make_unique<KisProtocol>(),
//                                           credentials, callbacks).value();
//   client->want("H0STCNT0|005930");
//   client->start();
//   ioc.run();
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "feedkit/backoff.h"
#include "feedkit/circuit_breaker.h"
#include "feedkit/clock.h"
#include "feedkit/connection.h"
#include "feedkit/epoch.h"
#include "feedkit/subscription_set.h"

namespace feedkit {

// What one incoming text frame is, as the protocol policy reads it.
enum class FrameKind {
  data,                // market data: handed to on_data
  login_ok,            // the broker accepted the login
  auth_rejected,       // the broker refused the credentials (refresh once)
  subscribe_ack,       // `key` is subscribed
  already_subscribed,  // ALREADY IN SUBSCRIBE for `key`: confirmed
  subscribe_reject,    // `key` was refused for good (`reason`)
  max_subscriptions,   // MAX SUBSCRIBE OVER for `key`: the cap is lower
  unsubscribe_ack,     // `key` is unsubscribed
  heartbeat,           // answer with `reply` (e.g. KIS PINGPONG echo)
  notice,              // a server notice worth counting (`reason`)
  busy,                // the broker asks to back off (e.g. appkey in use)
  ignore,              // nothing to do
  malformed,           // could not be read: counted, connection kept
};

struct Classified {
  FrameKind kind = FrameKind::ignore;
  std::string key;     // for subscription replies
  std::string reason;  // for rejects and notices; must hold no secret
  std::string reply;   // for heartbeat: the frame to send back
  // For heartbeat: send `reply` as a WebSocket pong frame (its payload, at
  // most 125 bytes; longer goes as text) instead of a text frame.
  bool reply_as_pong = false;
};

// The broker's wire protocol. Every method runs on the client's strand.
class Protocol {
 public:
  virtual ~Protocol() = default;
  // Returns true if the broker remembers subscriptions across connections
  // (KIS, Kiwoom): then a reconnect unsubscribes every key first.
  virtual bool broker_keeps_subscriptions() const = 0;
  // Returns the frames that log in; none means logged in once connected.
  virtual std::vector<std::string> login_frames(
      const Credentials& credentials) = 0;
  virtual std::string subscribe_frame(std::string_view key,
                                      const Credentials& credentials) = 0;
  virtual std::string unsubscribe_frame(std::string_view key,
                                        const Credentials& credentials) = 0;
  // Reads one incoming text frame.
  virtual Classified classify(std::string_view frame) = 0;
};

struct WsClientCallbacks {
  // A data frame, with its receive time and the epoch of its connection.
  // `frame` points into the read buffer: valid only during the call.
  std::function<void(std::string_view frame, SteadyTime recv_time,
                     std::uint64_t epoch)>
      on_data;
  // Once per connection boundary, before the new connection's data.
  std::function<void(const GapEvent& gap)> on_gap;
  // Every state change (for status lines and metrics).
  std::function<void(ConnectionState from, ConnectionState to)> on_state;
};

struct WsClientOptions {
  std::string url;          // ws://host:port/path or wss://host:port/path
  std::string ca_file;      // wss: PEM bundle to trust; empty = system default
  bool verify_peer = true;  // wss: verify the certificate chain and host name
  std::vector<std::pair<std::string, std::string>>
      headers;  // on the upgrade request
  std::chrono::milliseconds connect_timeout{
      10'000};  // resolve + TCP connect; > 0
  std::chrono::milliseconds handshake_timeout{
      10'000};  // TLS + WebSocket handshakes; > 0
  std::chrono::milliseconds login_timeout{
      10'000};  // credentials + login → login_ok; > 0
  std::chrono::milliseconds idle_timeout{
      30'000};  // no inbound frame → reconnect; 0 = off
  std::chrono::milliseconds ping_interval{0};  // WebSocket ping; 0 = off (KIS)
  std::chrono::milliseconds pong_timeout{
      0};  // with ping_interval: no pong → reconnect
  std::chrono::milliseconds refresh_lead{
      300'000};  // refresh credentials this long before expiry
  std::chrono::milliseconds auth_refresh_cooldown{
      30'000};  // at most one forced refresh per this
  std::chrono::milliseconds stable_after{
      30'000};  // live this long → Backoff resets
                // (replaces backoff.stable_after)
  std::size_t max_frame_bytes =
      1 << 20;  // larger frames: malformed, connection dropped
  BackoffOptions backoff = BackoffOptions::suggested();
  CircuitBreakerOptions breaker = CircuitBreakerOptions::suggested();
  SubscriptionSetOptions subscriptions = SubscriptionSetOptions::suggested();

  static WsClientOptions suggested() { return {}; }
  // Returns OK, or kInvalidArgument naming the first bad field (and the URL
  // scheme, host or port that could not be read).
  absl::Status validate() const;
};

// The common counters (feedkit/connection.h) and what only WebSocket has.
struct WsClientStats : ConnectionStats {
  std::uint64_t notices = 0;  // server notices (FrameKind::notice)
};

class WsClient {
 public:
  // Returns a client, or kInvalidArgument for bad options or a missing
  // protocol, provider or on_data. The client runs on `ioc` (which must
  // outlive it) and reads time from `clock`.
  static absl::StatusOr<std::shared_ptr<WsClient>> create(
      boost::asio::io_context& ioc, WsClientOptions options,
      std::unique_ptr<Protocol> protocol, CredentialsProvider credentials,
      WsClientCallbacks callbacks, Clock& clock = Clock::steady());

  ~WsClient();
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  // Starts connecting. Thread-safe; a second call does nothing.
  void start();

  // Closes the connection, cancels every timer and calls `done` (on the
  // strand) once nothing of the client runs any more. Thread-safe;
  // idempotent (later calls' `done` run once stopping has finished). Never
  // blocks; never races with a reconnect.
  void stop(std::function<void()> done = {});

  // Adds or removes a subscription key. Thread-safe.
  void want(std::string key);
  void unwant(std::string key);

  // Unsubscribes and subscribes `key` again on the live connection (the
  // first step of the escalation ladder for a stale symbol). Thread-safe.
  void resubscribe(std::string key);

  // Drops the connection and reconnects (the next step). For
  // GapReason::stall the GapEvent's disconnected_at is the last frame
  // received (the silence is part of the outage). Thread-safe.
  void reconnect(GapReason reason);

  // Returns a snapshot of the counters. Thread-safe.
  WsClientStats stats() const;

  class Impl;

 private:
  explicit WsClient(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace feedkit
