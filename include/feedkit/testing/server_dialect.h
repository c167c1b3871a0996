// SPDX-License-Identifier: Apache-2.0
//
// feedkit/testing/server_dialect.h
//
// ServerDialect is the wire format a FaultyWsServer speaks. The server keeps
// the broker's behaviour (sessions, logins, subscriptions, streams, faults);
// the dialect only knows bytes: it reads each client frame into a
// ClientRequest and writes every frame the server sends.
//
//   read(frame)            → login(secret) | subscribe(keys[, secret]) |
//                            unsubscribe(keys[, secret]) | heartbeat |
//                            unknown (recorded; answered with `reply` if set)
//   login_ok() …           → one frame per server event; "" = the broker has
//                            no such frame (nothing is sent)
//   subscribe_replies()    → the answer to one subscribe request, given each
//                            key's outcome (one frame per key by default; a
//                            broker that answers a request once overrides it)
//   append_data()          → one data frame of `records` consecutive records
//                            of a key (seq first … first + records − 1)
//
// LineDialect speaks LineProtocol (feedkit/testing/line_protocol.h) and is
// FaultyWsServer's default. The simulated brokers (examples/sim) bring KIS
// and Kiwoom dialects.
//
// A secret carried by a request (`ClientRequest::secret`) is checked by the
// server like a login's; it must never appear in a reply, a reason or a log.
//
// Thread safety: a dialect belongs to one server; the server calls it on its
// own thread only, one call at a time, so a dialect may keep state (e.g. the
// last trade of each symbol for its books).
//
// Example (a dialect for a JSON broker, abridged):
//   class MyDialect final : public feedkit::testing::ServerDialect {
//     ClientRequest read(std::string_view frame) override { … }
//     std::string login_ok() override { return R"({"login":"ok"})"; }
//     void append_data(std::string& out, std::string_view key,
//                      std::uint64_t first_seq, std::size_t records,
//                      std::int64_t sent_ns) override { … }
//     …
//   };
//   feedkit::testing::FaultyWsServerOptions options;
//   options.dialect = std::make_shared<MyDialect>();
//   auto server = feedkit::testing::FaultyWsServer::start(options).value();
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace feedkit::testing {

// What one client frame asks the server for.
struct ClientRequest {
  enum class Kind : std::uint8_t {
    login,        // present `secret`
    subscribe,    // hold `keys`
    unsubscribe,  // release `keys`
    heartbeat,    // an answer to a server ping
    unknown,      // anything else: recorded; `reply` (if any) is sent back
  };
  Kind kind = Kind::unknown;
  std::vector<std::string> keys;  // subscribe, unsubscribe: one or more
  // login: always; subscribe/unsubscribe: set when the broker carries the
  // credential in every request (KIS's approval_key), checked like a login.
  std::optional<std::string> secret;
  std::string reply;  // unknown: the broker's answer (e.g. a parse error)
};

// How the server answered one key of a subscribe request.
enum class SubscribeOutcome : std::uint8_t {
  subscribed,         // newly held
  already,            // already held (this connection or kept): still held
  max_subscriptions,  // over the connection's cap: not held
  rejected,           // set_reject(): not held
  auth_failed,        // the request's secret is not accepted, or no login
                      // where the dialect requires one: not held
  in_use,             // another session holds the account: not held
};

struct KeyOutcome {
  std::string_view key;
  SubscribeOutcome outcome = SubscribeOutcome::subscribed;
  std::string_view reason;  // rejected: the reason set_reject() gave
};

class ServerDialect {
 public:
  virtual ~ServerDialect() = default;

  // --- Client frames -------------------------------------------------------
  // Returns what `frame` (a text frame the client sent) asks for.
  virtual ClientRequest read(std::string_view frame) = 0;
  // true: a subscribe before an accepted login is answered auth_failed
  // (Kiwoom: LOGIN first). Default false.
  virtual bool requires_login() const { return false; }

  // --- Session frames ("" = none) -----------------------------------------
  virtual std::string login_ok() = 0;
  virtual std::string login_failed() = 0;  // the secret is not accepted
  // A login refused because another session holds the account
  // (SessionConflict::reject_newcomer).
  virtual std::string login_in_use() = 0;
  // Sent to a session that another session's login took over
  // (SessionConflict::kick_incumbent) just before the server closes it.
  virtual std::string kicked() = 0;
  // Sent to a session whose secret was revoked just before the server closes
  // it (FaultyWsServer::revoke_secrets()).
  virtual std::string token_expired() = 0;
  // The n-th application ping (1, 2, …) of a session.
  virtual std::string ping(std::uint64_t n) = 0;
  // Sent to a session that left too many pings unanswered just before the
  // server closes it (FaultyWsServer::set_max_missed_pings()). Default: none.
  virtual std::string missed_pings() { return {}; }
  virtual std::string notice(std::string_view text) = 0;

  // --- Subscription replies ------------------------------------------------
  // Returns the frames answering a subscribe request whose keys got
  // `outcomes` (same order as request.keys). The default answers each key
  // with the per-key frame below; a broker that answers a request once
  // (Kiwoom's REG) overrides it.
  virtual std::vector<std::string> subscribe_replies(
      const ClientRequest& request, std::span<const KeyOutcome> outcomes);
  // Returns the frames answering an unsubscribe request; `held[i]` says
  // whether request.keys[i] was held. Default: unsubscribed() per key.
  virtual std::vector<std::string> unsubscribe_replies(
      const ClientRequest& request, const std::vector<bool>& held);

  virtual std::string subscribed(std::string_view key) = 0;
  virtual std::string already(std::string_view key) = 0;
  virtual std::string max_subscriptions(std::string_view key) = 0;
  virtual std::string rejected(std::string_view key,
                               std::string_view reason) = 0;
  virtual std::string auth_failed(std::string_view key) = 0;
  virtual std::string in_use(std::string_view key) = 0;
  virtual std::string unsubscribed(std::string_view key, bool was_held) = 0;

  // --- Data ----------------------------------------------------------------
  // The most records one data frame may carry (>= 1); the server clamps the
  // records-per-frame pattern to it.
  virtual std::size_t max_records_per_frame() const { return 1; }
  // Appends the payload of one data frame for `key` holding `records`
  // (1 … max_records_per_frame()) records with seqs first_seq, first_seq + 1,
  // …, sent at `sent_ns` (steady clock, nanoseconds since its epoch). Called
  // once per frame and session on the hot path: append, do not allocate.
  virtual void append_data(std::string& out, std::string_view key,
                           std::uint64_t first_seq, std::size_t records,
                           std::int64_t sent_ns) = 0;
  // Returns the i-th malformed sample (the server cycles i = 0, 1, …): a
  // frame the client's protocol must count as malformed and skip.
  virtual std::string malformed(std::size_t i) = 0;
};

// The dialect of LineProtocol (see feedkit/testing/line_protocol.h):
//   client: "LOGIN <secret>", "SUB <key>", "UNSUB <key>", "PONG <n>"
//   server: "LOGIN_OK", "AUTH_FAIL" (also for a revoked secret), "BUSY" (login
//           in use, key in use), "NOTICE kicked" (taken over), "ACK <key>",
//           "ALREADY <key>", "MAXSUB <key>", "REJECT <key> <reason>",
//           "UNACK <key>", "PING <n>", "NOTICE <text>",
//           "DATA <key> <seq> t=<sent_ns>"; one record per frame.
class LineDialect final : public ServerDialect {
 public:
  ClientRequest read(std::string_view frame) override;
  std::string login_ok() override { return "LOGIN_OK"; }
  std::string login_failed() override { return "AUTH_FAIL"; }
  std::string login_in_use() override { return "BUSY"; }
  std::string kicked() override { return "NOTICE kicked"; }
  std::string token_expired() override { return "AUTH_FAIL"; }
  std::string ping(std::uint64_t n) override;
  std::string notice(std::string_view text) override;
  std::string subscribed(std::string_view key) override;
  std::string already(std::string_view key) override;
  std::string max_subscriptions(std::string_view key) override;
  std::string rejected(std::string_view key, std::string_view reason) override;
  std::string auth_failed(std::string_view key) override;
  std::string in_use(std::string_view key) override;
  std::string unsubscribed(std::string_view key, bool was_held) override;
  void append_data(std::string& out, std::string_view key,
                   std::uint64_t first_seq, std::size_t records,
                   std::int64_t sent_ns) override;
  // "DATA A not-a-number t=0", "GARBAGE", "", "ACK", "DATA".
  std::string malformed(std::size_t i) override;
};

}  // namespace feedkit::testing
