// SPDX-License-Identifier: Apache-2.0
//
// feedkit/testing/faulty_ws_server.h
//
// FaultyWsServer is a real WebSocket server (Boost.Beast, ws:// or wss://)
// on a loopback port, whose behaviour a test scripts, so that every fault a
// feed can have is rehearsed on real sockets: serve frames at a rate (with
// bursts); close; reset the TCP connection; stall silently (socket open,
// nothing sent), for good or for a while; delay, hang or refuse the
// handshake; answer a subscribe with ALREADY IN SUBSCRIBE, or MAX SUBSCRIBE
// OVER after N; reject a login; revoke the secrets it accepted (token
// expiry); refuse or kick a second session of one account (appkey in use);
// send malformed frames; flood; silently lose or mute one key's data. It
// records every frame each client connection sent, and what it sent on each
// connection (data per key: frames, records, first and last seq). It runs on
// its own thread and io_context, started by start() and joined by the
// destructor.
//
// What goes on the wire is a ServerDialect's business
// (feedkit/testing/server_dialect.h); the default, LineDialect, speaks
// LineProtocol (feedkit/testing/line_protocol.h), a small text protocol with
// the shape of KIS and Kiwoom:
//   client → server: "LOGIN <secret>", "SUB <key>", "UNSUB <key>"
//   server → client: "LOGIN_OK", "AUTH_FAIL", "ACK <key>", "ALREADY <key>",
//                    "MAXSUB <key>", "REJECT <key> <reason>", "UNACK <key>",
//                    "PING <n>" (the client answers "PONG <n>"), "BUSY",
//                    "NOTICE <text>", "DATA <key> <seq> <payload>"
// The simulated brokers of examples/sim plug in KIS and Kiwoom dialects.
//
// Data goes only where it was asked for: data frames for a key reach the
// sessions that hold it (answered ACK or ALREADY on that connection, and not
// UNSUBbed since). Sequence numbers are per key and server-wide, so after a
// reconnect the jump in seq is exactly what the outage lost. A frame may
// carry several consecutive records (set_records_per_frame()) if the dialect
// allows it; every LineDialect DATA payload is "t=<ns>", the steady-clock
// send time (parse_sent_time()).
//
// Thread safety: thread-safe. Script changes apply to what happens next;
// every action has taken effect on the server thread when it returns. The
// counters are updated before the client can see the event (the 101 or 503
// response is counted before it is written; a frame is recorded before it is
// answered; data is logged as sent when it is handed to the socket), but a
// frame the client sent is recorded only once the server read it: use
// wait_for().
//
// Example:
//   auto server = feedkit::testing::FaultyWsServer::start().value();
//   server->set_keeps_subscriptions(true);        // like KIS after a drop
//   ... connect a WsClient to server->url() ...
//   server->reset_all();                          // TCP RST mid-stream
//   ASSERT_TRUE(server->wait_for(
//       [&] { return server->connections_accepted() == 2; }, 5s));
//   auto log = server->connection_log(0);         // what connection 0 got
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "feedkit/clock.h"
#include "feedkit/testing/server_dialect.h"

namespace feedkit::testing {

struct FaultyWsServerOptions {
  bool tls = false;       // serve wss:// with cert_file/key_file
  std::string cert_file;  // PEM certificate chain
  std::string key_file;   // PEM private key
  // The wire format; null: LineDialect. Used on the server thread only.
  std::shared_ptr<ServerDialect> dialect = nullptr;
  std::uint16_t port = 0;  // on 127.0.0.1; 0: a free port
};

// What happens when a second session presents the account's credentials
// while one holds them. One server is one account (one app key): every
// secret it accepts belongs to it. A session holds the account from its
// accepted login, or its first subscribe carrying an accepted secret, until
// it ends or starts closing (a stalled session still holds it).
enum class SessionConflict {
  none,             // any number of sessions (the default)
  reject_newcomer,  // the newcomer's login (or subscribe) is answered
                    // login_in_use (or in_use) and changes nothing (KIS)
  kick_incumbent,   // the holder is sent kicked() and closed; the newcomer
                    // logs in (Kiwoom)
};

// Data the server sent for one key on one connection.
struct SentKeyLog {
  std::uint64_t frames = 0;     // data frames
  std::uint64_t records = 0;    // records in them
  std::uint64_t first_seq = 0;  // of the first record sent; 0: none
  std::uint64_t last_seq = 0;   // of the last record sent
};

// One accepted connection, as the server saw it.
struct ConnectionLog {
  SteadyTime accepted_at{};
  SteadyTime ended_at = SteadyTime::max();              // max(): still open
  std::map<std::string, SentKeyLog, std::less<>> data;  // by key
  std::uint64_t pings_sent = 0;
  std::uint64_t malformed_sent = 0;
  std::uint64_t heartbeats_received = 0;  // ping answers: text or pong frame
  std::uint64_t already_answers = 0;      // SUBs answered ALREADY <key>
};

enum class HandshakeMode {
  accept,  // normal WebSocket upgrade
  refuse,  // answer the upgrade with HTTP 503 and close
  hang,    // accept TCP, never answer the upgrade
  delay,   // answer after the delay given to set_handshake()
};

class FaultyWsServer {
 public:
  // Starts listening on 127.0.0.1 at options.port (0: a free port). Returns
  // an error if the socket or the TLS files cannot be set up.
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
  // open). Empty: any secret (the default). A subscribe that carries a
  // secret (ClientRequest::secret) is checked the same way.
  void set_accepted_secret(std::string secret);
  // Accepts `secret` too, until `expires_at` (steady time). If any secret
  // was accepted, from now on only the added ones are.
  void add_accepted_secret(std::string secret,
                           SteadyTime expires_at = SteadyTime::max());
  // Token expiry: no secret is accepted any more (until
  // add_accepted_secret()), and every open session that presented one is
  // sent the dialect's token_expired() frame and closed.
  void revoke_secrets();
  // What a second session of the account gets; see SessionConflict.
  void set_session_conflict(SessionConflict conflict);
  // Appkey in use: another client holds the account for `duration`. With
  // kick_incumbent it kicks every session holding it now and, until the
  // time is up, every session that logs in (right after its login answer);
  // otherwise logins and secret-carrying subscribes are answered
  // login_in_use / in_use meanwhile (open sessions keep going).
  void occupy_account(Duration duration);
  // false: LOGIN gets no answer at all and changes nothing (login timeouts;
  // a client that stays in logging_in). Default true.
  void set_answer_logins(bool answer);
  // When true, subscriptions survive a dropped connection (per secret), and
  // a SUB for a key still held is answered ALREADY <key>, as KIS does (it
  // also confirms the key on the new connection). UNSUB <key> (always
  // answered UNACK <key>) releases it. false forgets what was kept. A SUB for
  // a key the same connection holds is answered ALREADY in either mode.
  // `ghosts` (with keep): a kept key is the old session's ghost, which an
  // UNSUB from another connection does not release (it is answered as if it
  // did), so the next SUB is answered ALREADY even after an unsubscribe.
  void set_keeps_subscriptions(bool keep, bool ghosts = false);
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
  // A session that left `n` pings in a row unanswered (no text answer, no
  // pong frame) when the next is due is sent the dialect's missed_pings()
  // frame and closed. 0 (the default): pings need no answer.
  void set_max_missed_pings(std::size_t n);
  // Stream frames carry pattern[0], pattern[1], … records in turn (each
  // clamped to 1 … the dialect's max_records_per_frame()), spaced so that
  // the record rate stays what stream() asked. Default {1}. An empty
  // pattern means {1}.
  void set_records_per_frame(std::vector<std::size_t> pattern);

  // --- Actions --------------------------------------------------------------
  // An open session is one whose upgrade was accepted and that has not ended
  // or begun closing. Frames are written in order, one socket write at a time.
  void send_text(std::string frame);  // to every open session
  // Publishes DATA frames for `key` at `frames_per_second` (> 0; records
  // per second when frames carry several), `count` of them in all (0: until
  // stop_streams()), each to every open session holding
  // `key` at that moment, sessions opened later included: a stream survives
  // close_all(), reset_all() and stall_all(), so a client that reconnects and
  // resubscribes gets data again. A second stream() for `key` replaces the
  // first. Timers wake late by tens of microseconds; frames due meanwhile go
  // out together, each stamped with its own send time.
  void stream(std::string key, double frames_per_second, std::size_t count = 0);
  // `count` DATA frames for `key` (consecutive seqs, one record each) to
  // every open session holding `key`, as fast as each socket takes them:
  // many frames per socket write, about 0.5 MiB buffered per session at most.
  void flood(std::string key, std::size_t count);
  // `count` of the dialect's malformed samples, to every open session (with
  // LineDialect: "DATA A not-a-number t=0", "GARBAGE", "", "ACK", "DATA", …,
  // each malformed for LineProtocol).
  void send_malformed(std::size_t count);
  // WebSocket close frame (code 1000), then TCP close after the client's
  // reply or 2 s. Connections not yet upgraded are just closed.
  void close_all();
  // TCP reset (SO_LINGER {1, 0}, then close), no close frame, on every
  // connection, upgraded or not.
  void reset_all();
  // Stops sending anything on the current sessions: no replies, pings, DATA,
  // not even WebSocket pongs or a close reply (they are discarded); bytes
  // already handed to the socket still go out. The socket stays open and
  // what the client sends is still recorded. Sessions opened later are
  // normal. close_all() and reset_all() still work. With `resume_after` >
  // 0 the sessions still open then send again (pings, data; what was
  // published meanwhile is lost for them, so their seqs jump).
  void stall_all(Duration resume_after = Duration::zero());
  // Multiplies every stream's rate by `multiplier` (> 0) for `duration`,
  // then restores it (a later burst() replaces an earlier one).
  void burst(double multiplier, Duration duration);
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
  // What the server saw and sent on the i-th accepted connection (empty if
  // there is no such connection); connection_logs(): every connection.
  ConnectionLog connection_log(std::size_t connection) const;
  std::vector<ConnectionLog> connection_logs() const;
  // Data records published for `key` so far (its last seq), server-wide.
  std::uint64_t published(std::string_view key) const;
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
