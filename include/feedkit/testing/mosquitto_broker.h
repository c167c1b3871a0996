// SPDX-License-Identifier: Apache-2.0
//
// feedkit/testing/mosquitto_broker.h
//
// MosquittoBroker runs a real `mosquitto` (Debian's 2.0.11 package) for an
// integration test: on 127.0.0.1 only, at a free port, from a config it
// writes into a temporary directory of its own (removed by the destructor),
// with persistence off and the broker's log in that directory (log_path(),
// log_tail() for failure messages). The test can kill it (SIGKILL) and start
// it again on the same port, or stop it gracefully.
//
//   users empty      anonymous clients, everything allowed (no auth at all)
//   users given      only those users, with their passwords (else CONNACK 5,
//                    "not authorised"); each may use the topics listed for
//                    it: a subscription outside them gets SUBACK 0x80, a
//                    publish outside them is dropped (a QoS 1 one is still
//                    acknowledged)
//
// Users and topic rules are enforced by mosquitto's dynamic-security plugin
// (shipped in the mosquitto package): mosquitto 2.0.11's classic acl_file
// never refuses a subscription (it only withholds messages), so it cannot
// produce the SUBACK failure a client must handle. Passwords are stored as
// salted PBKDF2-SHA512 hashes (the format of mosquitto_passwd); no password
// ever appears in a file, a command line, a log or an error.
//
// start() and restart() block until the broker logged that it runs and its
// port accepts connections (tens of milliseconds), or return an error
// carrying the tail of mosquitto's log. mosquitto is
// never left behind: the destructor kills and reaps it, and the process is
// started with PR_SET_PDEATHSIG from a thread this object owns, so the kernel
// kills it if the test process dies first (a crash, a ctest timeout). It
// inherits no file descriptor but its log.
//
// Thread safety: thread-safe. Process control (kill, stop, restart) is
// serialized; each call has taken effect when it returns.
//
// Example:
//   auto broker = feedkit::testing::MosquittoBroker::start(
//       {.users = {{.name = "alice", .password = "pw",
//                   .topics = {{.filter = "prices/#"}}}}}).value();
//   client.connect(broker->url());       // "tcp://127.0.0.1:PORT"
//   broker->kill();                      // SIGKILL: connections drop
//   ASSERT_TRUE(broker->restart().ok()) << broker->log_tail();
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "feedkit/clock.h"

namespace feedkit::testing {

// One topic rule of a user: what the user may do with topics matching
// `filter`.
struct MosquittoTopicRule {
  std::string filter{};   // MQTT topic filter; '+' and a final '#' allowed
  bool publish = true;    // may publish to topics matching `filter`
  bool subscribe = true;  // may subscribe with filters that `filter` covers
};

struct MosquittoUser {
  std::string name{};      // MQTT user name: non-empty, printable
  std::string password{};  // any bytes; stored hashed only
  // What the user may do; a user receives every message its subscriptions
  // match. Empty: publish and subscribe anywhere ("#").
  std::vector<MosquittoTopicRule> topics{};
};

// Every member has an initializer, so designated initializers may name any
// subset (g++'s -Wmissing-field-initializers).
struct MosquittoBrokerOptions {
  // Empty: anonymous clients, no authentication. Otherwise only these users
  // may connect (names unique).
  std::vector<MosquittoUser> users{};
  // mosquitto's max_packet_size, in bytes: a client sending a larger packet
  // is disconnected. 0: mosquitto's default (no limit beyond the protocol's).
  std::size_t max_packet_size = 0;
  // mosquitto's max_queued_messages (per client, QoS 1 and 2 beyond those in
  // flight). 0: mosquitto's default (1000).
  std::size_t max_queued_messages = 0;
  // true: log every packet (log_type all). Slows floods down noticeably.
  bool verbose_log = false;
  // Lines appended verbatim to mosquitto.conf (no newline inside a line).
  std::vector<std::string> extra_config{};
  // The mosquitto executable. Empty: /usr/sbin/mosquitto, else `mosquitto`
  // on PATH.
  std::string binary{};
  // The dynamic-security plugin (used when `users` is not empty). Empty:
  // Debian's path, /usr/lib/<multiarch>/mosquitto_dynamic_security.so.
  std::string dynsec_plugin{};
  // How long start() and restart() wait for the broker to accept
  // connections. Must be > 0.
  Duration start_timeout = std::chrono::seconds(10);

  // Returns OK, or InvalidArgument naming the first bad field and value
  // (never a password).
  absl::Status validate() const;
};

class MosquittoBroker {
 public:
  // Writes the config and starts mosquitto at a free port (another port is
  // tried if one was taken meanwhile); returns once the broker accepts
  // connections. Returns InvalidArgument for bad options, NotFound if
  // mosquitto or the plugin is missing, Unavailable (with the log's tail) if
  // mosquitto did not come up within start_timeout.
  static absl::StatusOr<std::unique_ptr<MosquittoBroker>> start(
      MosquittoBrokerOptions options = {});

  // Like start(), but does not start mosquitto: the port is chosen (free at
  // that moment) and connections to it are refused until restart(). For a
  // test whose broker is down at the client's first connect.
  static absl::StatusOr<std::unique_ptr<MosquittoBroker>> prepare(
      MosquittoBrokerOptions options = {});

  // Kills mosquitto (SIGKILL), reaps it and removes the temporary directory.
  ~MosquittoBroker();
  MosquittoBroker(const MosquittoBroker&) = delete;
  MosquittoBroker& operator=(const MosquittoBroker&) = delete;

  std::uint16_t port() const;  // the same for the broker's whole life
  std::string url() const;     // "tcp://127.0.0.1:PORT"
  // The running mosquitto's process id; 0 when it is not running (killed,
  // stopped, prepared, or exited by itself). Thread-safe.
  int pid() const;
  bool running() const { return pid() != 0; }

  // Sends SIGKILL and reaps the process: every connection drops at once, no
  // DISCONNECT or will is sent. Returns at once if it is not running.
  // Blocks until the process is gone.
  void kill();
  // Sends SIGTERM and waits up to 5 s for mosquitto to exit (then SIGKILL):
  // mosquitto closes its connections and logs "terminating". Blocks.
  void stop();
  // Starts mosquitto again with the same config on the same port (the
  // listener sets SO_REUSEADDR, so connections the old process left in
  // TIME_WAIT do not block it); stops it gracefully first if it is running.
  // Also starts a prepared broker. Returns Unavailable with the log's tail if
  // it did not come up (for example, the port was taken meanwhile).
  absl::Status restart();

  std::string dir() const;       // the temporary directory
  std::string log_path() const;  // mosquitto's log (every run appends to it)
  // Returns the last `lines` lines of the log, for failure messages.
  std::string log_tail(std::size_t lines = 30) const;

  class Impl;

 private:
  explicit MosquittoBroker(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace feedkit::testing
