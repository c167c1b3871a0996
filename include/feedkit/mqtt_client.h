// SPDX-License-Identifier: Apache-2.0
//
// feedkit/mqtt_client.h
//
// MqttClient keeps one MQTT feed connection (tcp://, ssl://, ws://, wss://;
// Eclipse Paho's C client underneath, its automatic reconnect off) alive and
// subscribed, and tells its consumer exactly where the data has holes. It is
// the sibling of WsClient (feedkit/ws_client.h): the same state machine,
// counters and guarantees, driven by a strand of the caller's io_context.
//
//   disconnected → connecting → subscribing → live
//        ↑              │            │          │
//        └── backoff ←──┴────────────┴──────────┘   (any failure)
//   stop() from any state → stopped
//
// `connecting` covers the credentials fetch and Paho's whole connect (TCP,
// TLS, WebSocket upgrade, CONNECT → CONNACK), which Paho reports as one
// step: there is no separate `logging_in`. A refused CONNACK counts as a
// connect, a login failure and a disconnect (token for "not authorised" or
// "bad user name or password", else server_close); any other failure to
// connect, a failed credentials fetch included, is a handshake failure.
//
// What it guarantees:
//   - Reconnects by itself, paced by Backoff (reset only once the connection
//     has been stable, never by a refused login), with a CircuitBreaker
//     around connect + login; the first connect is retried like any other.
//   - Every attempt uses a fresh Paho client (clean session) and fresh
//     credentials from the provider: the secret as the MQTT password and/or
//     as "Authorization: Bearer <secret>" on the WebSocket upgrade.
//   - Every wanted topic filter is subscribed again on every connection
//     (SubscriptionSet); a SUBACK failure (0x80; MQTT 5: a reason code >=
//     0x80) marks it rejected and reports it (on_rejected, stats) while the
//     other topics flow; an unanswered SUBSCRIBE is retried a bounded number
//     of times, then reported unconfirmed; want() refuses invalid filters.
//   - Every connection has an epoch. on_gap(GapEvent) is called once per
//     boundary, after the CONNACK and before any of the new connection's
//     messages; on_gap and on_message never run concurrently and messages of
//     an older connection are discarded and counted, so one Dispatcher
//     Producer fed by both sees the GapEvent in order with the data.
//   - A dead link is detected within `keepalive` (under the 1.5 × keepalive
//     MQTT allows; Paho alone takes 1.5 to 2.5 ×): after keepalive/2 with
//     nothing received the client sends a probe (an UNSUBSCRIBE of
//     `probe_topic`, which nobody subscribes) whose UNSUBACK proves the
//     link; nothing received for `keepalive` is a stall (GapReason::stall).
//   - Credentials are refreshed `refresh_lead` before they expire and once
//     after a not-authorised refusal (with a cooldown). Secrets never appear
//     in logs, errors or stats.
//   - stop() is idempotent, completes promptly from any state and never
//     races with a reconnect.
//
// Threads: on_message runs on Paho's receive thread; it should only stamp,
// parse and push into a Dispatcher, and must not block or call into Paho.
// on_gap runs on the client's strand, serialized with on_message by a mutex
// whose happens-before orders a push in on_gap before the pushes of the
// next on_message. on_state, on_rejected and the credentials provider run on
// the strand. The public methods are thread-safe.
//
// Paho's two threads are process-wide. feedkit keeps them running while any
// MqttClient exists (one idle Paho handle), so that closing a connection
// never blocks; when the last MqttClient goes, Paho stops them and that
// destructor (or the handler dropping the last reference) blocks for about
// 0.1 s, up to 1 s. Paho notices a new TCP connection only when its receive
// thread's poll (1 s timeout) returns: a connect takes 0.01 to about 1.1 s.
//
// Example:
//   boost::asio::io_context ioc;
//   auto client = feedkit::MqttClient::create(ioc,
//       {.uri = "wss://host/api/dispatcher/v3/098/mqtt",
//        .credential_use = feedkit::CredentialUse::bearer_header},
//       provider, {.on_message = push, .on_gap = push_gap}).value();
//   client->want("proto/topic/bidofferv3/PTT");
//   client->start();
//   ioc.run();
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
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

enum class MqttVersion : std::uint8_t {
  v3_1_1,  // MQTT 3.1.1 (what Settrade's SDK speaks)
  v5,      // MQTT 5
};

// Where the provider's secret goes at each connect.
enum class CredentialUse : std::uint8_t {
  none,           // nowhere: an anonymous broker (the provider is not called)
  password,       // the MQTT password (with MqttClientOptions::username)
  bearer_header,  // "Authorization: Bearer <secret>" on the WebSocket upgrade
  password_and_bearer_header,  // both
};

struct MqttClientCallbacks {
  // A message of the current connection, with its receive time and epoch.
  // Paho's receive thread; `topic` and `payload` are valid during the call.
  // Must not throw (an exception is caught and counted in parse_errors).
  std::function<void(std::string_view topic, std::string_view payload,
                     SteadyTime recv_time, std::uint64_t epoch)>
      on_message;
  // Once per connection boundary, before the new connection's messages. The
  // strand, never concurrently with on_message.
  std::function<void(const GapEvent& gap)> on_gap;
  // Every state change (status lines, metrics). The strand.
  std::function<void(ConnectionState from, ConnectionState to)> on_state;
  // A topic filter the broker refused (SUBACK failure) or want() could not
  // accept (invalid filter), with the reason. The strand.
  std::function<void(std::string_view topic, std::string_view reason)>
      on_rejected;
};

struct MqttClientOptions {
  // tcp://host:port, ssl://host:port, ws://host:port/path or
  // wss://host:port/path (mqtt:// and mqtts:// are tcp:// and ssl://).
  std::string uri;
  // The MQTT client id. Empty: "feedkit" and 16 random hex digits, new at
  // every connect (a fixed id makes the broker drop an older session of it).
  std::string client_id;
  std::string username;  // MQTT user name; empty: none
  CredentialUse credential_use = CredentialUse::password;
  // Extra headers on the WebSocket upgrade request (ws and wss only).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string ca_file;      // ssl/wss: PEM bundle to trust; empty: system's
  bool verify_peer = true;  // ssl/wss: verify the chain and the host name
  MqttVersion version = MqttVersion::v3_1_1;
  int qos = 0;  // of every subscription; 0..2
  // MQTT keepalive, whole seconds, 0..65535 (0: off, and no stall
  // detection). Paho pings the broker after `keepalive` without sending.
  std::chrono::seconds keepalive{30};
  // Topic filter the keepalive probe unsubscribes; must never be wanted.
  // Empty: no probes, and a dead link is left to Paho's keepalive.
  std::string probe_topic = "$feedkit/probe";
  // Credentials + TCP + TLS + WebSocket upgrade + CONNACK; > 0. Keep it at
  // 5 s or more: Paho notices each step of a new connection on a 1 s poll
  // cycle, so a connect takes up to ~2 s while other Paho connections are
  // open in the process.
  std::chrono::milliseconds connect_timeout{10'000};
  // Refresh credentials this long before they expire; >= 0.
  std::chrono::milliseconds refresh_lead{300'000};
  // At most one refresh forced by a refused login per this; >= 0.
  std::chrono::milliseconds auth_refresh_cooldown{30'000};
  // A refreshed secret is used from the next connect on. true: reconnect at
  // once to use it (GapReason::token), for brokers that drop a connection
  // when the secret it was opened with expires.
  bool reconnect_on_refresh = false;
  // Live this long → Backoff resets (replaces backoff.stable_after); >= 0.
  std::chrono::milliseconds stable_after{30'000};
  BackoffOptions backoff = BackoffOptions::suggested();
  CircuitBreakerOptions breaker = CircuitBreakerOptions::suggested();
  // MQTT brokers have no small per-connection cap: 10,000 topics, 100
  // SUBSCRIBEs per second.
  SubscriptionSetOptions subscriptions = {
      .max_per_connection = 10'000,
      .confirm_timeout = std::chrono::seconds(10),
      .max_attempts = 3,
      .pacing = {.rate_per_second = 100, .burst = 100}};

  static MqttClientOptions suggested() { return {}; }
  // Returns OK, or kInvalidArgument naming the first bad field (and the URI
  // scheme, host or port that could not be read; never a header value).
  absl::Status validate() const;
};

// The common counters (feedkit/connection.h) and what only MQTT has.
struct MqttClientStats : ConnectionStats {
  std::uint64_t probes_sent = 0;    // keepalive probes (UNSUBSCRIBE)
  std::uint64_t paho_refusals = 0;  // Paho API calls that returned an error
};

class MqttClient {
 public:
  // Returns a client, or kInvalidArgument for bad options, a missing
  // provider (unless credential_use is none) or a missing on_message. The
  // client runs on `ioc` (which must outlive it) and reads time from
  // `clock`.
  static absl::StatusOr<std::shared_ptr<MqttClient>> create(
      boost::asio::io_context& ioc, MqttClientOptions options,
      CredentialsProvider credentials, MqttClientCallbacks callbacks,
      Clock& clock = Clock::steady());

  ~MqttClient();
  MqttClient(const MqttClient&) = delete;
  MqttClient& operator=(const MqttClient&) = delete;

  // Starts connecting. Thread-safe; a second call does nothing.
  void start();

  // Disconnects, cancels every timer and calls `done` (on the strand) once
  // nothing of the client runs any more: no callback of it will be called
  // again. Thread-safe; idempotent (later calls' `done` run once stopping
  // has finished). Never blocks.
  void stop(std::function<void()> done = {});

  // Adds or removes a topic filter. An invalid filter is reported through
  // on_rejected and not added. Thread-safe.
  void want(std::string topic);
  void unwant(std::string topic);

  // Unsubscribes and subscribes `topic` again on the live connection (the
  // first step of the escalation ladder for a stale symbol). Thread-safe.
  void resubscribe(std::string topic);

  // Drops the connection and reconnects (the next step). For
  // GapReason::stall the GapEvent's disconnected_at is the last frame
  // received (the silence is part of the outage). Thread-safe.
  void reconnect(GapReason reason);

  // Returns a snapshot of the counters. Thread-safe.
  MqttClientStats stats() const;

  class Impl;

 private:
  explicit MqttClient(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace feedkit
