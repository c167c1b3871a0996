// SPDX-License-Identifier: Apache-2.0
//
// feedkit/testing/ws_tcp_bridge.h
//
// WsTcpBridge is a WebSocket server (Boost.Beast, ws:// or wss://) on a free
// loopback port that carries each session's binary messages to a TCP server
// and back: MQTT over WebSockets in front of a mosquitto that has no
// WebSocket listener (Debian's 2.0.11), for a client such as Paho that
// connects to "ws://127.0.0.1:PORT/mqtt" or "wss://localhost:PORT/mqtt" the
// way it would to a broker's gateway (Settrade's MQTT over WSS).
//
// Per connection: (TLS handshake,) read the HTTP upgrade request, record it,
// then
//   not an upgrade                            → 400, close
//   required_bearer set and the request's
//   Authorization is not "Bearer <token>"     → 401, close (counted)
//   the TCP connection to the target fails    → 502, close (counted)
//   else → 101 Switching Protocols, answering the subprotocol "mqtt" when
//   the client offers it (Paho needs it), and relay: every WebSocket message
//   (binary or text) is written to the TCP connection, every chunk read from
//   it is sent as one binary message, until either side closes; then the
//   other side is closed too (a close frame towards the client).
// The request path is not checked (any path is accepted).
//
// Every upgrade request is recorded (target and headers, the 401 ones too),
// so a test can assert what the client sent, Authorization included: the
// recorded values are the client's own and may be secrets, so never print
// them in a production log; the bridge itself logs nothing.
//
// It runs on its own thread and io_context, started by start() and joined by
// the destructor.
//
// Paho C 1.3.11 (Debian 12) keeps its WebSocket receive buffers in
// process-wide statics (WebSocket.c: in_frames, frame_buffer), so two
// ws:// or wss:// Paho connections receiving at the same time in one process
// corrupt each other's MQTT streams (repeated, reordered, lost messages). The
// bridge carries any number of sessions, but a test should have one Paho
// WebSocket client receiving at a time.
//
// Thread safety: thread-safe. Actions have taken effect on the bridge
// thread when they return. A request is recorded before it is answered.
//
// Example:
//   auto broker = feedkit::testing::MosquittoBroker::start().value();
//   auto bridge = feedkit::testing::WsTcpBridge::start(
//       {.target_port = broker->port(), .required_bearer = "tok"}).value();
//   // Paho: uri bridge->url() ("ws://127.0.0.1:PORT/mqtt"), and
//   // connect_options::set_http_headers({{"Authorization", "Bearer tok"}})
//   EXPECT_EQ(bridge->last_header("Authorization"), "Bearer tok");
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "feedkit/clock.h"

namespace feedkit::testing {

// Every member has an initializer, so designated initializers may name any
// subset (g++'s -Wmissing-field-initializers).
struct WsTcpBridgeOptions {
  std::string target_host = "127.0.0.1";  // an IP address
  std::uint16_t target_port = 0;          // must be set
  bool tls = false;         // serve wss:// with cert_file and key_file
  std::string cert_file{};  // PEM certificate chain
  std::string key_file{};   // PEM private key
  // Non-empty: an upgrade must carry "Authorization: Bearer <this>", else
  // it is answered 401. Can be changed later with set_required_bearer().
  std::string required_bearer{};

  // Returns OK, or InvalidArgument naming the bad field and value (never a
  // token).
  absl::Status validate() const;
};

// One recorded upgrade request.
struct UpgradeRequest {
  std::string target;  // request target, e.g. "/mqtt"
  std::vector<std::pair<std::string, std::string>> headers;  // in order

  // Returns the value of the first header named `name` (case-insensitive),
  // or nullopt.
  std::optional<std::string> header(const std::string& name) const;
};

class WsTcpBridge {
 public:
  // Starts listening on 127.0.0.1 at a free port. Returns InvalidArgument for
  // bad options or TLS files, Unavailable if the socket cannot be set up.
  static absl::StatusOr<std::unique_ptr<WsTcpBridge>> start(
      WsTcpBridgeOptions options);

  // Closes every connection (no close frame) and joins the bridge thread;
  // returns within about half a second whatever the peers do.
  ~WsTcpBridge();
  WsTcpBridge(const WsTcpBridge&) = delete;
  WsTcpBridge& operator=(const WsTcpBridge&) = delete;

  std::uint16_t port() const;
  // "ws://127.0.0.1:PORT/mqtt" (or "wss://localhost:PORT/mqtt" with TLS:
  // the test certificate's name).
  std::string url() const;

  // --- Script and actions ----------------------------------------------------
  // Sets the token later upgrades must carry ("" : none); open sessions are
  // not affected (close_all() ends them, as a gateway does on token expiry).
  void set_required_bearer(std::string token);
  // Closes every session: a WebSocket close frame (1000) to the client and a
  // FIN to the target.
  void close_all();

  // --- Observation -----------------------------------------------------------
  std::size_t connections_accepted() const;   // TCP accepts
  std::size_t upgrades_completed() const;     // 101 sent
  std::size_t upgrades_unauthorized() const;  // 401 sent
  std::size_t target_failures() const;        // 502 sent
  std::size_t open_sessions() const;          // upgraded, not yet ended
  std::uint64_t bytes_to_target() const;      // relayed client → target
  std::uint64_t bytes_to_client() const;      // relayed target → client
  // Every upgrade request so far, in arrival order.
  std::vector<UpgradeRequest> upgrade_requests() const;
  // The value of header `name` in the last upgrade request, or nullopt (no
  // request yet, or it had no such header).
  std::optional<std::string> last_header(const std::string& name) const;
  // Blocks until `condition` holds (re-checked whenever the bridge's state
  // changes, and at least every 10 ms) or `timeout` passes; returns whether
  // it held.
  bool wait_for(const std::function<bool()>& condition, Duration timeout) const;

  class Impl;

 private:
  explicit WsTcpBridge(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace feedkit::testing
