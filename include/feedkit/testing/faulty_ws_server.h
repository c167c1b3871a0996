// SPDX-License-Identifier: Apache-2.0
//
// feedkit/testing/faulty_ws_server.h
//
// FaultyWsServer is a real WebSocket server (Boost.Beast, ws:// or wss://)
// on a free loopback port, whose behaviour a test scripts, so that every
// fault a feed can have is rehearsed on real sockets: serve frames at a
// rate; close; reset the TCP connection; stall silently (socket open,
// nothing sent); delay, hang or refuse the handshake; answer a subscribe with
// ALREADY IN SUBSCRIBE, or MAX SUBSCRIBE OVER after N; reject a login; send
// malformed frames; flood; silently lose or mute one key's data. It records
// every frame each client connection sent. It runs on its own thread and
// io_context, started by start() and joined by the destructor.
//
// It speaks LineProtocol (feedkit/testing/line_protocol.h), a small text
// protocol with the shape of KIS and Kiwoom:
//   client → server: "LOGIN <secret>", "SUB <key>", "UNSUB <key>"
//   server → client: "LOGIN_OK", "AUTH_FAIL", "ACK <key>", "ALREADY <key>",
//                    "MAXSUB <key>", "REJECT <key> <reason>", "UNACK <key>",
//                    "PING <n>" (the client answers "PONG <n>"), "BUSY",
//                    "NOTICE <text>", "DATA <key> <seq> <payload>"
//
// Data goes only where it was asked for: DATA frames for a key reach the
// sessions that hold it (answered ACK or ALREADY on that connection, and not
// UNSUBbed since). Sequence numbers are per key and server-wide, so after a
// reconnect the jump in seq is exactly what the outage lost. Every DATA
// payload is "t=<ns>", the steady-clock send time (parse_sent_time()).
//
// Thread safety: thread-safe. Script changes apply to what happens next;
// every action has taken effect on the server thread when it returns. The
// counters are updated before the client can see the event (the 101 or 503
// response is counted before it is written; a frame is recorded before it is
// answered), but a frame the client sent is recorded only once the server
// read it: use wait_for().
//
// Example:
//   auto server = feedkit::testing::FaultyWsServer::start().value();
//   server->set_keeps_subscriptions(true);        // like KIS after a drop
//   ... connect a WsClient to server->url() ...
//   server->reset_all();                          // TCP RST mid-stream
//   ASSERT_TRUE(server->wait_for(
//       [&] { return server->connections_accepted() == 2; }, 5s));
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "feedkit/clock.h"

namespace feedkit::testing {

struct FaultyWsServerOptions {
  bool tls = false;       // serve wss:// with cert_file/key_file
  std::string cert_file;  // PEM certificate chain
  std::string key_file;   // PEM private key
};

enum class HandshakeMode {
  accept,  // normal WebSocket upgrade
  refuse,  // answer the upgrade with HTTP 503 and close
  hang,    // accept TCP, never answer the upgrade
  delay,   // answer after the delay given to set_handshake()
};

class FaultyWsServer {
 public:
  // Starts listening on 127.0.0.1 at a free port. Returns an error if the
  // socket or the TLS files cannot be set up.
  static absl::StatusOr<std::unique_ptr<FaultyWsServer>> start(
      FaultyWsServerOptions options = {});

  // Closes every connection (no close frame), ends the streams and joins the
  // server thread; returns within about half a second whatever the clients
  // do (a hung handshake or a client that stopped reading included).
  ~FaultyWsServer();
  FaultyWsServer(const FaultyWsServer&) = delete;
  FaultyWsServer& operator=(const FaultyWsServer&) = delete;

  std::uint16_t port() const;
  // "ws://127.0.0.1:PORT/" (or "wss://localhost:PORT/" with TLS).
  std::string url() const;

  // --- Script ------------------------------------------------------------
  void set_handshake(HandshakeMode mode, Duration delay = Duration::zero());
  // LOGIN with another secret is answered AUTH_FAIL (the connection stays
  // open). Empty: any secret.
  void set_accepted_secret(std::string secret);
  // false: LOGIN gets no answer at all and changes nothing (login timeouts;
  // a client that stays in logging_in). Default true.
  void set_answer_logins(bool answer);
  // When true, subscriptions survive a dropped connection (per secret), and
  // a SUB for a key still held is answered ALREADY <key>, as KIS does (it
  // also confirms the key on the new connection). UNSUB <key> (always
  // answered UNACK <key>) releases it. false forgets what was kept. A SUB for
  // a key the same connection holds is answered ALREADY in either mode.
  void set_keeps_subscriptions(bool keep);
  // The SUB that would hold more than `n` keys on one connection is answered
  // MAXSUB <key>. 0: no limit.
  void set_max_subscriptions(std::size_t n);
  // SUB <key> is answered REJECT <key> <reason>.
  void set_reject(std::string key, std::string reason);
  // false: SUB gets no answer at all and changes nothing (confirmation
  // timeouts). UNSUB is still answered.
  void set_answer_subscriptions(bool answer);
  // Sends PING <n> every `interval` on every session (0: never); the client
  // must answer PONG <n>.
  void set_app_ping(Duration interval);

  // --- Actions --------------------------------------------------------------
  // An open session is one whose upgrade was accepted and that has not ended
  // or begun closing. Frames are written in order, one socket write at a time.
  void send_text(std::string frame);  // to every open session
  // Publishes DATA frames for `key` at `frames_per_second` (> 0), `count` of
  // them in all (0: until stop_streams()), each to every open session holding
  // `key` at that moment, sessions opened later included: a stream survives
  // close_all(), reset_all() and stall_all(), so a client that reconnects and
  // resubscribes gets data again. A second stream() for `key` replaces the
  // first. Timers wake late by tens of microseconds; frames due meanwhile go
  // out together, each stamped with its own send time.
  void stream(std::string key, double frames_per_second, std::size_t count = 0);
  // `count` DATA frames for `key` (consecutive seqs) to every open session
  // holding `key`, as fast as each socket takes them: many frames per socket
  // write, about 0.5 MiB buffered per session at most.
  void flood(std::string key, std::size_t count);
  // `count` frames that LineProtocol classifies as malformed, to every open
  // session ("DATA A not-a-number t=0", "GARBAGE", "", "ACK", "DATA", …).
  void send_malformed(std::size_t count);
  // WebSocket close frame (code 1000), then TCP close after the client's
  // reply or 2 s. Connections not yet upgraded are just closed.
  void close_all();
  // TCP reset (SO_LINGER {1, 0}, then close), no close frame, on every
  // connection, upgraded or not.
  void reset_all();
  // Stops sending anything on the current sessions: no replies, pings, DATA,
  // not even WebSocket pongs or a close reply (they are discarded). The
  // socket stays open and what the client sends is still recorded. Sessions
  // opened later are normal. close_all() and reset_all() still work.
  void stall_all();
  // The broker silently forgets `key` on every open session: no frame is
  // sent, DATA for it stops, and the client believes it is still subscribed.
  // A new SUB <key> on the session (a resubscribe) is answered ACK and the
  // data flows again. (A subscription kept across connections is kept.)
  void lose_subscription(std::string key);
  // The open sessions never send DATA for `key` again, whatever the client
  // sends (SUB and UNSUB are answered as usual); sessions opened later are
  // normal: only a reconnect brings the data back.
  void mute(std::string key);
  // Ends every stream() and flood() in progress.
  void stop_streams();

  // --- Observation ---------------------------------------------------------
  std::size_t connections_accepted() const;  // TCP accepts
  std::size_t handshakes_completed() const;
  std::size_t handshakes_refused() const;
  std::size_t open_sessions() const;
  // Text frames the client sent on the i-th accepted connection (0-based;
  // empty if there is no such connection).
  std::vector<std::string> received(std::size_t connection) const;
  // Frames received on every connection that start with `prefix`.
  std::size_t count_received(std::string_view prefix) const;
  // Blocks until `condition` holds (re-checked whenever the server's state
  // changes, and at least every 10 ms) or `timeout` passes; returns whether
  // it held.
  bool wait_for(const std::function<bool()>& condition, Duration timeout) const;

  class Impl;

 private:
  explicit FaultyWsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace feedkit::testing
