// SPDX-License-Identifier: Apache-2.0
//
// src/mqtt_client.cc: feedkit::MqttClient on Eclipse Paho's asynchronous C
// client, MQTTAsync 1.3 (feedkit/mqtt_client.h).
//
// Why the C API: Paho C keeps a pointer to the WebSocket upgrade headers
// until the upgrade, which happens after MQTTAsync_connect() returned, and
// Paho C++ 1.2's async_client::connect() hands it a pointer into a copy of
// the options that it destroys on return (a use-after-free at the upgrade:
// no bearer header is possible through it). The C API also spares the hot
// path the C++ wrapper's per-message copies (topic, payload, shared_ptr).
//
// Structure: MqttClient owns a shared_ptr<Impl>. The state machine lives on
// one strand of the caller's io_context (internal::StrandClient, shared with
// WsClient); public methods post to it. Each connection attempt gets a fresh
// Session: a Paho client handle, the contexts of its pending operations and
// its WebSocket headers, tagged with the attempt's id.
//
// Paho's threads reach the client only through the Gate, under its mutex,
// and only while the gate is open (stop() and ~Impl close it):
//   - control events (CONNACK, connect failure, connection lost, SUBACK,
//     UNSUBACK, MQTT 5 DISCONNECT) are posted to the strand with the
//     session's id; the strand ignores events of a session that is no longer
//     the current one;
//   - messages are delivered right there on Paho's receive thread (the hot
//     path: stamp, check, call on_message), and only if their session is the
//     live one. The strand switches the live session and calls on_gap under
//     the same mutex, so no message of an older connection is ever delivered
//     after the GapEvent of a newer one.
// Nothing calls into Paho while holding the gate's mutex: Paho runs its
// callbacks holding its own global mutex, and its API takes that mutex.
//
// Paho clients are destroyed on the strand when their session ends (never
// inside a Paho callback), which takes about 0.1-0.3 ms: feedkit keeps one
// idle, never-connected Paho handle while any MqttClient exists
// (PahoThreadsHold). Without it, destroying the last Paho client stops
// Paho's two process-wide threads and waits for them (about 0.1 s, up to
// 1 s), and a client created meanwhile by another connection could be left
// without threads.
//
// Paho's receive thread polls its sockets with a 1 s timeout and adds a new
// socket only between polls, so each step of a new connection can wait up to
// about 1 s while other Paho connections are idle: connects take 0.01-2 s.
//
// Who owns which timeout:
//   - connect_timeout: a phase timer of ours from the attempt's start
//     (credentials fetch included); Paho's own connect timeout is set 1 s
//     longer, in whole seconds, as a backstop.
//   - keepalive: Paho sends PINGREQ; our liveness timer probes after
//     keepalive/2 of silence and declares a stall after keepalive (the lazy
//     deadline of WsClient's idle timer: the receive path only stores a time).
//   - subscription confirmations and pacing, backoff, breaker waits,
//     stable_after, the credentials refresh: timers of ours.
#include "feedkit/mqtt_client.h"

#include <MQTTAsync.h>  // Paho C (Paho C++ 1.2 cannot keep WebSocket headers)

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>  // std::mutex, not absl::Mutex: Debian builds Abseil without TSan hooks
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "internal/strand_client.h"
#include "internal/url.h"

namespace feedkit {

namespace {

namespace net = boost::asio;

const internal::UrlScheme kMqttSchemes[] = {
    {"tcp", "1883", false}, {"ssl", "8883", true},   {"ws", "80", false},
    {"wss", "443", true},   {"mqtt", "1883", false}, {"mqtts", "8883", true}};

bool is_websocket(const internal::ParsedUrl& url) {
  return url.scheme == "ws" || url.scheme == "wss";
}

bool uses_password(CredentialUse use) {
  return use == CredentialUse::password ||
         use == CredentialUse::password_and_bearer_header;
}

bool uses_bearer(CredentialUse use) {
  return use == CredentialUse::bearer_header ||
         use == CredentialUse::password_and_bearer_header;
}

// The URI handed to Paho: tcp/ssl/ws/wss, an explicit port, and the path
// for WebSocket URIs only.
std::string paho_uri(const internal::ParsedUrl& url) {
  const std::string scheme = url.scheme == "mqtt"    ? "tcp"
                             : url.scheme == "mqtts" ? "ssl"
                                                     : url.scheme;
  const bool ipv6 = url.host.find(':') != std::string::npos;
  std::string uri = absl::StrCat(scheme, "://", ipv6 ? "[" : "", url.host,
                                 ipv6 ? "]" : "", ":", url.port);
  if (is_websocket(url)) absl::StrAppend(&uri, url.target);
  return uri;
}

// Returns "" if `filter` is a valid MQTT topic filter, else why not: 1 to
// 65535 bytes, no NUL, '#' only as the whole last level, '+' only as a
// whole level. (A broker drops the connection of a client that subscribes
// with an invalid filter, so want() must never let one through.)
std::string topic_filter_error(std::string_view filter) {
  if (filter.empty()) return "empty topic filter";
  if (filter.size() > 65535) return "topic filter longer than 65535 bytes";
  if (filter.find('\0') != std::string_view::npos)
    return "topic filter contains NUL";
  std::size_t start = 0;
  while (true) {
    const std::size_t end = filter.find('/', start);
    const std::string_view level = filter.substr(
        start,
        end == std::string_view::npos ? std::string_view::npos : end - start);
    if (level.find('#') != std::string_view::npos &&
        (level != "#" || end != std::string_view::npos)) {
      return "'#' must be the whole last level of a topic filter";
    }
    if (level.find('+') != std::string_view::npos && level != "+") {
      return "'+' must be a whole level of a topic filter";
    }
    if (end == std::string_view::npos) return "";
    start = end + 1;
  }
}

// MQTT 3.1.1 CONNACK return codes 1..5 and MQTT 5 CONNACK reason codes
// (>= 0x80) as Paho reports them in a connect failure; Paho's own errors
// are negative.
bool is_broker_refusal(int code) { return code > 0; }

// "Bad user name or password" or "not authorised" (3.1.1: 4, 5; MQTT 5:
// 0x86 bad user name or password, 0x87 not authorized, 0x8C bad
// authentication method).
bool is_auth_refusal(int code) {
  return code == 4 || code == 5 || code == 0x86 || code == 0x87 || code == 0x8C;
}

// Holds one idle, never-connected Paho handle while any MqttClient exists
// (see the file comment), so that Paho's threads keep running between
// connections. The last one to go destroys it: Paho then stops its threads,
// which blocks that destructor for about 0.1 s (up to 1 s). Creation and
// destruction are serialized, so no MqttClient creates a Paho client while
// Paho stops its threads.
class PahoThreadsHold {
 public:
  PahoThreadsHold() {
    std::lock_guard lock(mu());
    if (holders()++ == 0) {
      MQTTAsync_createOptions create = MQTTAsync_createOptions_initializer;
      // If Paho refuses, nothing is lost but promptness.
      if (MQTTAsync_createWithOptions(&idle(), "tcp://127.0.0.1:1",
                                      "feedkit-idle",
                                      MQTTCLIENT_PERSISTENCE_NONE, nullptr,
                                      &create) != MQTTASYNC_SUCCESS) {
        idle() = nullptr;
      }
    }
  }
  ~PahoThreadsHold() {
    std::lock_guard lock(mu());
    if (--holders() == 0 && idle() != nullptr) MQTTAsync_destroy(&idle());
  }
  PahoThreadsHold(const PahoThreadsHold&) = delete;
  PahoThreadsHold& operator=(const PahoThreadsHold&) = delete;

 private:
  static std::mutex& mu() {
    static std::mutex m;
    return m;
  }
  static std::size_t& holders() {
    static std::size_t n = 0;
    return n;
  }
  static MQTTAsync& idle() {
    static MQTTAsync handle = nullptr;
    return handle;
  }
};

// What Paho reports to the strand.
struct PahoEvent {
  enum class Kind : std::uint8_t {
    connected,          // CONNACK accepted
    connect_failed,     // `code`: Paho error (< 0) or CONNACK refusal (> 0)
    lost,               // connection lost
    server_disconnect,  // MQTT 5 DISCONNECT from the broker (`code`)
    subscribed,
    subscribe_failed,  // `code`: 0x80 (3.1.1), reason code (5), Paho error
    unsubscribed,
    unsubscribe_failed,
  };
  Kind kind = Kind::lost;
  std::uint64_t session = 0;
  std::string topic;
  int code = 0;
};

}  // namespace

absl::Status MqttClientOptions::validate() const {
  absl::StatusOr<internal::ParsedUrl> url =
      internal::parse_url(uri, "MqttClientOptions::uri", kMqttSchemes);
  if (!url.ok()) return url.status();
  const bool websocket = is_websocket(*url);
  auto invalid = [](auto&&... parts) {
    return absl::InvalidArgumentError(
        absl::StrCat("MqttClientOptions::", parts...));
  };
  if (!websocket && url->target != "/") {
    return invalid("uri has a path, but only ws:// and wss:// take one");
  }
  auto ms = [](std::chrono::milliseconds d) {
    return absl::StrCat(d.count(), " ms");
  };
  if (connect_timeout <= std::chrono::milliseconds::zero()) {
    return invalid("connect_timeout must be > 0, got ", ms(connect_timeout));
  }
  for (const auto& [field, d] :
       {std::pair{"refresh_lead", refresh_lead},
        std::pair{"auth_refresh_cooldown", auth_refresh_cooldown},
        std::pair{"stable_after", stable_after}}) {
    if (d < std::chrono::milliseconds::zero()) {
      return invalid(field, " must be >= 0, got ", ms(d));
    }
  }
  if (keepalive.count() < 0 || keepalive.count() > 65535) {
    return invalid("keepalive must be in 0..65535 s, got ", keepalive.count(),
                   " s");
  }
  if (qos < 0 || qos > 2) return invalid("qos must be 0, 1 or 2, got ", qos);
  if (client_id.size() > 65535 || client_id.find('\0') != std::string::npos) {
    return invalid("client_id must be up to 65535 bytes without NUL");
  }
  if (username.find('\0') != std::string::npos) {
    return invalid("username must not contain NUL");
  }
  if (uses_password(credential_use) && username.empty()) {
    return invalid(
        "username must be set when credential_use puts the secret in the "
        "MQTT password");
  }
  if (uses_bearer(credential_use) && !websocket) {
    return invalid(
        "credential_use puts the secret in a WebSocket header, but uri is "
        "not ws:// or wss://");
  }
  if (!headers.empty() && !websocket) {
    return invalid("headers need a ws:// or wss:// uri");
  }
  for (const auto& [name, value] : headers) {
    // Values may hold a bearer token: they are checked, never quoted.
    if (name.empty() || name.find_first_of(":\r\n \t") != std::string::npos) {
      return invalid("headers has an invalid name \"", name.substr(0, 64),
                     "\"");
    }
    if (value.find_first_of("\r\n") != std::string::npos) {
      return invalid("headers value of \"", name, "\" contains CR or LF");
    }
    if (uses_bearer(credential_use) &&
        absl::AsciiStrToLower(name) == "authorization") {
      return invalid(
          "headers must not set Authorization when credential_use sends "
          "the bearer header");
    }
  }
  if (!probe_topic.empty()) {
    if (std::string why = topic_filter_error(probe_topic); !why.empty()) {
      return invalid("probe_topic: ", why);
    }
  }
  auto nested = [](const char* field, absl::Status s) {
    if (s.ok()) return s;
    return absl::Status(s.code(), absl::StrCat("MqttClientOptions::", field,
                                               ": ", s.message()));
  };
  if (absl::Status s = nested("backoff", backoff.validate()); !s.ok()) return s;
  if (absl::Status s = nested("breaker", breaker.validate()); !s.ok()) return s;
  if (absl::Status s = nested("subscriptions", subscriptions.validate());
      !s.ok())
    return s;
  return absl::OkStatus();
}

// The only way Paho's threads reach an Impl (see the file comment).
struct MqttGate {
  explicit MqttGate(Clock& clock) : clock(clock) {}

  Clock& clock;  // stamps messages before the lock is taken
  std::mutex mu;
  MqttClient::Impl* impl ABSL_GUARDED_BY(mu) = nullptr;  // null: closed

  void event(PahoEvent ev);
  void message(std::uint64_t session, std::string_view topic,
               std::string_view payload);
};

namespace {

// One connection attempt: a Paho client of its own, the contexts of its
// pending operations and the WebSocket headers Paho reads at the upgrade.
// Created and destroyed on the strand; its callbacks run on Paho's threads
// (or inside the destructor) and only talk to the gate.
class Session {
 public:
  Session(std::uint64_t id, std::shared_ptr<MqttGate> gate, bool v5)
      : id_(id), gate_(std::move(gate)), v5_(v5) {}

  // Paho closes the socket (sending DISCONNECT if connected) and fails the
  // pending operations, calling back into this session: it must go first.
  // Contexts Paho drops without a callback go with ops_.
  ~Session() {
    if (handle_ != nullptr) MQTTAsync_destroy(&handle_);
  }

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  std::uint64_t id() const { return id_; }

  // Each returns Paho's code: MQTTASYNC_SUCCESS (0) or an error (< 0).
  int create(const std::string& uri, const std::string& client_id) {
    MQTTAsync_createOptions create = MQTTAsync_createOptions_initializer;
    create.MQTTVersion = v5_ ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
    int rc = MQTTAsync_createWithOptions(
        &handle_, uri.c_str(), client_id.c_str(), MQTTCLIENT_PERSISTENCE_NONE,
        nullptr, &create);
    if (rc != MQTTASYNC_SUCCESS) return rc;
    rc = MQTTAsync_setCallbacks(handle_, this, &Session::on_lost,
                                &Session::on_message, nullptr);
    if (rc == MQTTASYNC_SUCCESS && v5_) {
      rc = MQTTAsync_setDisconnected(handle_, this, &Session::on_disconnect);
    }
    return rc;
  }

  // Keeps `headers` for Paho, which reads them at the WebSocket upgrade,
  // long after connect() returned (Paho C++ 1.2 loses them: its connect()
  // hands Paho C a pointer into a copy it destroys on return).
  void set_headers(std::vector<std::pair<std::string, std::string>> headers) {
    header_strings_ = std::move(headers);
    header_array_.clear();
    for (const auto& [name, value] : header_strings_) {
      header_array_.push_back({name.c_str(), value.c_str()});
    }
    header_array_.push_back({nullptr, nullptr});
  }
  const MQTTAsync_nameValue* headers() const {
    return header_strings_.empty() ? nullptr : header_array_.data();
  }

  int connect(MQTTAsync_connectOptions& options) {
    Op* op =
        new_op(PahoEvent::Kind::connected, PahoEvent::Kind::connect_failed, {});
    options.context = op;
    if (v5_) {
      options.onSuccess5 = &Session::on_success5;
      options.onFailure5 = &Session::on_failure5;
    } else {
      options.onSuccess = &Session::on_success;
      options.onFailure = &Session::on_failure;
    }
    const int rc = MQTTAsync_connect(handle_, &options);
    if (rc != MQTTASYNC_SUCCESS) take(op);
    return rc;
  }

  int subscribe(const std::string& topic, int qos) {
    Op* op = new_op(PahoEvent::Kind::subscribed,
                    PahoEvent::Kind::subscribe_failed, topic);
    MQTTAsync_responseOptions options = response_options(op);
    const int rc = MQTTAsync_subscribe(handle_, topic.c_str(), qos, &options);
    if (rc != MQTTASYNC_SUCCESS) take(op);
    return rc;
  }

  int unsubscribe(const std::string& topic) {
    Op* op = new_op(PahoEvent::Kind::unsubscribed,
                    PahoEvent::Kind::unsubscribe_failed, topic);
    MQTTAsync_responseOptions options = response_options(op);
    const int rc = MQTTAsync_unsubscribe(handle_, topic.c_str(), &options);
    if (rc != MQTTASYNC_SUCCESS) take(op);
    return rc;
  }

 private:
  // The context of one pending operation.
  struct Op {
    Session* session;
    PahoEvent::Kind success;
    PahoEvent::Kind failure;
    std::string topic;
  };

  Op* new_op(PahoEvent::Kind success, PahoEvent::Kind failure,
             std::string topic) {
    auto op =
        std::make_unique<Op>(Op{this, success, failure, std::move(topic)});
    Op* raw = op.get();
    std::lock_guard lock(ops_mu_);
    ops_.emplace(raw, std::move(op));
    return raw;
  }

  // Returns the operation's context, no longer held by the session.
  std::unique_ptr<Op> take(Op* op) {
    std::lock_guard lock(ops_mu_);
    auto node = ops_.extract(op);
    return node.empty() ? nullptr : std::move(node.mapped());
  }

  MQTTAsync_responseOptions response_options(Op* op) const {
    MQTTAsync_responseOptions options = MQTTAsync_responseOptions_initializer;
    options.context = op;
    if (v5_) {
      options.onSuccess5 = &Session::on_success5;
      options.onFailure5 = &Session::on_failure5;
    } else {
      options.onSuccess = &Session::on_success;
      options.onFailure = &Session::on_failure;
    }
    return options;
  }

  // Reports the end of operation `context`: `code` is 0 for success, a
  // Paho error (< 0), a CONNACK refusal (3.1.1: 1..5), 0x80 (a 3.1.1 SUBACK
  // failure) or an MQTT 5 reason code (>= 0x80).
  static void finish(void* context, bool ok, int code) {
    Op* op = static_cast<Op*>(context);
    Session* self = op->session;
    std::unique_ptr<Op> owned = self->take(op);
    if (!owned) return;
    self->gate_->event({ok ? owned->success : owned->failure, self->id_,
                        std::move(owned->topic), code});
  }
  static void on_success(void* context, MQTTAsync_successData*) {
    finish(context, true, 0);
  }
  static void on_failure(void* context, MQTTAsync_failureData* data) {
    finish(context, false, data != nullptr ? data->code : MQTTASYNC_FAILURE);
  }
  static void on_success5(void* context, MQTTAsync_successData5*) {
    finish(context, true, 0);
  }
  static void on_failure5(void* context, MQTTAsync_failureData5* data) {
    int code = MQTTASYNC_FAILURE;
    if (data != nullptr) {
      code = data->reasonCode >= 0x80 ? static_cast<int>(data->reasonCode)
                                      : data->code;
    }
    finish(context, false, code);
  }

  static void on_lost(void* context, char*) {
    Session* self = static_cast<Session*>(context);
    self->gate_->event({PahoEvent::Kind::lost, self->id_, {}, 0});
  }
  static void on_disconnect(void* context, MQTTProperties*,
                            enum MQTTReasonCodes reason) {
    Session* self = static_cast<Session*>(context);
    self->gate_->event({PahoEvent::Kind::server_disconnect,
                        self->id_,
                        {},
                        static_cast<int>(reason)});
  }

  // The hot path: one call per message, on Paho's receive thread.
  static int on_message(void* context, char* topic, int topic_len,
                        MQTTAsync_message* msg) {
    Session* self = static_cast<Session*>(context);
    const std::size_t length = topic_len > 0
                                   ? static_cast<std::size_t>(topic_len)
                                   : std::strlen(topic);
    self->gate_->message(
        self->id_, std::string_view(topic, length),
        std::string_view(static_cast<const char*>(msg->payload),
                         static_cast<std::size_t>(msg->payloadlen)));
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    return 1;  // consumed
  }

  const std::uint64_t id_;
  const std::shared_ptr<MqttGate> gate_;
  const bool v5_;
  MQTTAsync handle_ = nullptr;
  std::vector<std::pair<std::string, std::string>> header_strings_;
  std::vector<MQTTAsync_nameValue> header_array_;
  std::mutex ops_mu_;  // the strand adds, Paho's threads take
  std::unordered_map<Op*, std::unique_ptr<Op>> ops_ ABSL_GUARDED_BY(ops_mu_);
};

}  // namespace

class MqttClient::Impl
    : public internal::StrandClient<MqttClient::Impl, MqttClientStats> {
 public:
  using Base = internal::StrandClient<MqttClient::Impl, MqttClientStats>;
  friend Base;  // calls attempt(), drive(), on_start(), on_stop_started(),
                // on_credentials_refreshed(), reads options_ and provider_

  Impl(net::io_context& ioc, MqttClientOptions options, std::string uri,
       bool tls, CredentialsProvider credentials, MqttClientCallbacks callbacks,
       Clock& clock, Backoff backoff, CircuitBreaker breaker,
       SubscriptionSet subs)
      : Base(ioc, clock, callbacks.on_state, std::move(backoff),
             std::move(breaker), std::move(subs)),
        options_(std::move(options)),
        uri_(std::move(uri)),
        tls_(tls),
        provider_(std::move(credentials)),
        callbacks_(std::move(callbacks)),
        gate_(std::make_shared<MqttGate>(clock)),
        rng_(std::random_device{}()),
        phase_timer_(strand_),
        liveness_timer_(strand_),
        subs_timer_(strand_) {
    {
      std::lock_guard lock(gate_->mu);
      gate_->impl = this;
    }
    publish();
  }

  ~Impl() {
    close_gate();
    session_.reset();
  }

  // --- Public entry points (any thread): post to the strand. ---------------
  // start(), stop(), unwant() and resubscribe() are the base's.

  void want(std::string topic) {
    post([topic = std::move(topic)](Impl& self) {
      if (self.stopping_) return;
      if (std::string why = self.refusal(topic); !why.empty()) {
        if (self.callbacks_.on_rejected)
          self.callbacks_.on_rejected(topic, why);
        return;
      }
      self.subs_.want(topic);
      self.drive();
      self.publish();
    });
  }
  void reconnect(GapReason reason) {
    post([reason](Impl& self) {
      if (self.stopping_ || !self.connected()) return;
      // A stall's outage began with the silence, not with this call.
      self.drop(reason, reason == GapReason::stall ? self.last_inbound()
                                                   : self.clock_.now());
    });
  }

  MqttClientStats stats() const {
    MqttClientStats s = snapshot_.load(clock_.now(), frames_);
    s.frames_in += s.data_frames;  // frames_ counts the control packets only
    return s;
  }

  // --- Called by the gate, under its mutex, on Paho's threads. -------------

  // Hands `ev` to the strand. The handler holds only a weak reference, so no
  // Paho thread ever owns (and might destroy) the Impl.
  void post_event(PahoEvent ev) {
    net::post(strand_, [weak = weak_from_this(), ev = std::move(ev)]() mutable {
      if (std::shared_ptr<Impl> self = weak.lock()) self->on_paho_event(ev);
    });
  }

  void deliver(std::uint64_t session, std::string_view topic,
               std::string_view payload, SteadyTime now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(gate_->mu) {
    if (session != live_session_) {
      internal::FrameCounters::bump(frames_.late_frames);
      return;
    }
    last_inbound_ns_.store(now.time_since_epoch().count(),
                           std::memory_order_relaxed);
    // The gate's mutex serializes the writers: no locked increment needed.
    std::atomic<std::uint64_t>& data = frames_.data_frames;
    data.store(data.load(std::memory_order_relaxed) + 1,
               std::memory_order_relaxed);
    callbacks_.on_message(topic, payload, now, live_epoch_);
  }

  internal::FrameCounters& frames() { return frames_; }

 private:
  // --- StrandClient hooks (strand). -----------------------------------------

  // Paho's events are posted from its threads: keep run() going for them.
  void on_start() { running_.emplace(net::make_work_guard(ioc_)); }

  void on_stop_started() {
    const SteadyTime now = clock_.now();
    running_.reset();
    cancel_connection_timers();
    cancel(refresh_timer_);
    end_attempts(now);
    close_gate();      // no callback from Paho's threads after this
    session_.reset();  // DISCONNECT and close, at once
  }

  // --- Helpers (strand) ------------------------------------------------------

  bool connected() const {
    return state_ == ConnectionState::subscribing ||
           state_ == ConnectionState::live;
  }

  bool current(std::uint64_t session) const {
    return session_ && session_->id() == session && !stopping_;
  }

  void close_gate() {
    std::lock_guard lock(gate_->mu);
    gate_->impl = nullptr;
    live_session_ = 0;
  }

  // Returns why `topic` cannot be wanted ("" if it can).
  std::string refusal(std::string_view topic) const {
    if (std::string why = topic_filter_error(topic); !why.empty()) return why;
    if (!options_.probe_topic.empty() && topic == options_.probe_topic) {
      return "topic filter is the keepalive probe's (probe_topic)";
    }
    return "";
  }

  void cancel_connection_timers() {
    cancel(phase_timer_);
    cancel(liveness_timer_);
    cancel(subs_timer_);
    cancel(stable_timer_);
  }

  SteadyTime last_inbound() const {
    return SteadyTime(
        Duration(last_inbound_ns_.load(std::memory_order_relaxed)));
  }
  // Records a control packet (CONNACK, SUBACK, UNSUBACK) received at `now`.
  void note_inbound(SteadyTime now) {
    last_inbound_ns_.store(now.time_since_epoch().count(),
                           std::memory_order_relaxed);
    internal::FrameCounters::bump(frames_.frames_in);
  }

  // --- Connecting ------------------------------------------------------------

  void attempt() {
    if (stopping_) return;
    const SteadyTime now = clock_.now();
    if (!begin_attempt(now)) return;
    const std::uint64_t id = ++attempt_id_;
    set_state(ConnectionState::connecting);
    publish();
    arm(phase_timer_, now + options_.connect_timeout, [this, id] {
      if (attempt_id_ == id && state_ == ConnectionState::connecting) {
        drop(GapReason::network, clock_.now());
      }
    });
    if (options_.credential_use == CredentialUse::none) {
      return open_session(id);
    }
    request_login_credentials([this, id](absl::StatusOr<Credentials> result) {
      on_credentials(id, std::move(result));
    });
  }

  void on_credentials(std::uint64_t id, absl::StatusOr<Credentials> result) {
    if (id != attempt_id_ || state_ != ConnectionState::connecting) return;
    if (!result.ok()) return drop(GapReason::token, clock_.now());
    adopt_credentials(*std::move(result));
    open_session(id);
  }

  // Creates the attempt's Paho client and starts its connect.
  void open_session(std::uint64_t id) {
    const bool v5 = options_.version == MqttVersion::v5;
    session_ = std::make_unique<Session>(id, gate_, v5);
    std::vector<std::pair<std::string, std::string>> headers = options_.headers;
    if (uses_bearer(options_.credential_use)) {
      headers.emplace_back("Authorization", "Bearer " + credentials_.secret);
    }
    session_->set_headers(std::move(headers));
    int rc = session_->create(uri_, next_client_id());
    if (rc == MQTTASYNC_SUCCESS) {
      MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer;
      MQTTAsync_connectOptions o5 = MQTTAsync_connectOptions_initializer5;
      if (v5) o = o5;
      MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
      fill_connect_options(o, ssl);
      rc = session_->connect(o);
    }
    if (rc != MQTTASYNC_SUCCESS) {
      // Paho refused the URI, an option or the call (its codes hold no
      // secret, but nothing is logged here anyway).
      ++counters_.paho_refusals;
      return drop(GapReason::network, clock_.now());
    }
    internal::FrameCounters::bump(frames_.frames_out);
  }

  std::string next_client_id() {
    if (!options_.client_id.empty()) return options_.client_id;
    return absl::StrCat("feedkit", absl::Hex(rng_(), absl::kZeroPad16));
  }

  // Fills Paho's connect options; `o` and `ssl` must outlive the connect()
  // call (Paho copies them, except the headers the session keeps).
  void fill_connect_options(MQTTAsync_connectOptions& o,
                            MQTTAsync_SSLOptions& ssl) const {
    if (options_.version == MqttVersion::v5) {
      o.MQTTVersion = MQTTVERSION_5;
      o.cleansession = 0;
      o.cleanstart = 1;
    } else {
      o.MQTTVersion = MQTTVERSION_3_1_1;  // never falls back to 3.1
      o.cleansession = 1;
    }
    o.automaticReconnect = 0;  // feedkit reconnects, nobody else
    o.keepAliveInterval = static_cast<int>(options_.keepalive.count());
    // Whole seconds, one more than ours: our phase timer decides.
    o.connectTimeout = static_cast<int>(
        std::chrono::ceil<std::chrono::seconds>(options_.connect_timeout)
            .count() +
        1);
    o.username =
        options_.username.empty() ? nullptr : options_.username.c_str();
    if (uses_password(options_.credential_use)) {
      o.password = nullptr;  // binarypwd: any bytes
      o.binarypwd.data = credentials_.secret.data();
      o.binarypwd.len = static_cast<int>(credentials_.secret.size());
    }
    o.httpHeaders = session_->headers();
    if (tls_) {
      ssl.trustStore =
          options_.ca_file.empty() ? nullptr : options_.ca_file.c_str();
      ssl.enableServerCertAuth = options_.verify_peer ? 1 : 0;
      ssl.verify = options_.verify_peer ? 1 : 0;  // the host name too
      o.ssl = &ssl;
    }
  }

  // --- Paho's events (strand) ------------------------------------------------

  void on_paho_event(const PahoEvent& ev) {
    if (!current(ev.session)) return;  // an older attempt's, or stopping
    const SteadyTime now = clock_.now();
    switch (ev.kind) {
      case PahoEvent::Kind::connected:
        if (state_ == ConnectionState::connecting) logged_in(ev.session, now);
        return;
      case PahoEvent::Kind::connect_failed:
        if (state_ == ConnectionState::connecting) connect_failed(ev.code, now);
        return;
      case PahoEvent::Kind::lost:
        return drop(GapReason::network, now);
      case PahoEvent::Kind::server_disconnect:
        return drop(GapReason::server_close, now);
      case PahoEvent::Kind::subscribed:
        note_inbound(now);
        subs_.on_ack(ev.topic, now);
        break;
      case PahoEvent::Kind::subscribe_failed:
        if (is_broker_refusal(ev.code)) {  // 0x80 or an MQTT 5 reason code
          note_inbound(now);
          const std::string reason =
              absl::StrCat("SUBACK failure 0x", absl::Hex(ev.code));
          if (subs_.on_reject(ev.topic, reason, now) &&
              callbacks_.on_rejected) {
            callbacks_.on_rejected(ev.topic, reason);
          }
        } else {
          subs_.on_retryable_error(ev.topic, now);  // Paho could not send it
        }
        break;
      case PahoEvent::Kind::unsubscribed:
        note_inbound(now);
        if (ev.topic == options_.probe_topic) {
          probe_outstanding_ = false;
          return;
        }
        subs_.on_unsubscribed(ev.topic, now);
        break;
      case PahoEvent::Kind::unsubscribe_failed:
        return;  // the connection is going; the set times the key out
    }
    if (!current(ev.session)) return;  // on_rejected cannot stop us, but
    drive();
    publish();
  }

  // A failed connect: a refusal in the CONNACK (the broker was reached) or a
  // failure before it (TCP, TLS, WebSocket upgrade, timeout).
  void connect_failed(int code, SteadyTime now) {
    if (!is_broker_refusal(code)) {
      // Paho reports a refused WebSocket upgrade (HTTP 401: a stale bearer
      // token) like any network failure: with the secret in the upgrade,
      // one failure asks for fresh credentials (within the cooldown).
      if (uses_bearer(options_.credential_use)) force_refresh_next(now);
      return drop(GapReason::network, now);
    }
    ++counters_.connects;
    if (counters_.connects > 1) ++counters_.reconnects;
    ++counters_.login_failures;
    if (!is_auth_refusal(code)) {
      counters_.count_disconnect(GapReason::server_close);
      return drop(GapReason::server_close, now, /*counted=*/true);
    }
    counters_.count_disconnect(GapReason::token);
    force_refresh_next(now);
    drop(GapReason::token, now, /*counted=*/true);
  }

  void logged_in(std::uint64_t id, SteadyTime now) {
    cancel(phase_timer_);
    ++counters_.connects;
    if (counters_.connects > 1) ++counters_.reconnects;
    record_connected(now);
    note_inbound(now);  // the CONNACK
    probe_outstanding_ = false;
    {
      // The GapEvent and the switch of the live session are one step for
      // the message path: no message of the new connection before the gap,
      // none of an older one after it.
      std::lock_guard lock(gate_->mu);
      std::optional<GapEvent> gap = gaps_.on_connected(now, subs_.lost_keys());
      live_session_ = id;
      live_epoch_ = gaps_.epoch().current();
      if (gap && callbacks_.on_gap) callbacks_.on_gap(*gap);
    }
    subs_.on_connected(now, /*broker_keeps_state=*/false);  // clean session
    set_state(ConnectionState::subscribing);
    arm_liveness(id);
    drive();
    publish();
  }

  // --- Subscriptions ---------------------------------------------------------

  // Sends what the SubscriptionSet says is due, goes live once it settles,
  // and arms the timer for its next action.
  void drive() {
    if (stopping_ || !session_ || !connected()) return;
    const SteadyTime now = clock_.now();
    subs_.next_actions(now, actions_);
    for (const SubscriptionAction& action : actions_) {
      const bool subscribe = action.kind == SubscriptionAction::Kind::subscribe;
      const int rc = subscribe ? session_->subscribe(action.key, options_.qos)
                               : session_->unsubscribe(action.key);
      if (rc == MQTTASYNC_SUCCESS) {
        internal::FrameCounters::bump(frames_.frames_out);
        continue;
      }
      ++counters_.paho_refusals;
      if (subscribe) subs_.on_retryable_error(action.key, now);
    }
    if (state_ == ConnectionState::subscribing && subs_.settled()) go_live(now);
    SteadyTime at = subs_.next_action_time(now);
    if (at == SteadyTime::max()) {
      cancel(subs_timer_);
      return;
    }
    at = std::max(at, now + std::chrono::milliseconds(1));  // never spin
    arm(subs_timer_, at, [this] {
      drive();
      publish();
    });
  }

  void go_live(SteadyTime now) { Base::go_live(now, options_.stable_after); }

  // --- Liveness --------------------------------------------------------------

  bool probing() const {
    return options_.keepalive.count() > 0 && !options_.probe_topic.empty();
  }

  // Arms the liveness timer at the next probe (keepalive/2 after the last
  // inbound packet, if no probe answers for that silence yet) or at the
  // stall deadline (keepalive after it), whichever comes first.
  void arm_liveness(std::uint64_t id) {
    if (!probing()) return;
    const Duration keepalive = options_.keepalive;
    const SteadyTime last = last_inbound();
    SteadyTime at = last + keepalive;
    if (!probe_outstanding_ || probe_sent_at_ < last) {
      at = std::min(at, last + keepalive / 2);
    }
    arm(liveness_timer_, at, [this, id] { check_liveness(id); });
  }

  void check_liveness(std::uint64_t id) {
    if (!current(id) || !connected()) return;
    const Duration keepalive = options_.keepalive;
    const SteadyTime now = clock_.now();
    const SteadyTime last = last_inbound();
    if (now - last >= keepalive) {
      ++counters_.stalls_detected;
      return drop(GapReason::stall, last);
    }
    if (now - last >= keepalive / 2 &&
        (!probe_outstanding_ || probe_sent_at_ < last)) {
      send_probe(now);
    }
    arm_liveness(id);
  }

  // Sends an UNSUBSCRIBE nobody subscribed: its UNSUBACK proves the link.
  void send_probe(SteadyTime now) {
    if (session_->unsubscribe(options_.probe_topic) == MQTTASYNC_SUCCESS) {
      ++counters_.probes_sent;
      internal::FrameCounters::bump(frames_.frames_out);
      probe_outstanding_ = true;
      probe_sent_at_ = now;
    } else {
      ++counters_.paho_refusals;  // the stall deadline still holds
    }
    publish();
  }

  // --- Credentials -----------------------------------------------------------

  // Refreshed credentials are used from the next connect on, at once with
  // reconnect_on_refresh (a token gap). Returns false when it dropped.
  bool on_credentials_refreshed() {
    if (options_.reconnect_on_refresh && connected()) {
      drop(GapReason::token, clock_.now());
      return false;
    }
    return true;
  }

  // --- Failure ---------------------------------------------------------------

  // Ends the current connection (or attempt) for `reason`, first noticed at
  // `lost_at` (for a stall: the last packet received), and schedules the
  // next attempt. `counted`: the caller has counted the loss already.
  void drop(GapReason reason, SteadyTime lost_at, bool counted = false) {
    if (stopping_) return;
    const SteadyTime now = clock_.now();
    const ConnectionState phase = state_;
    {
      std::lock_guard lock(gate_->mu);
      live_session_ = 0;  // nothing of it is delivered any more
    }
    session_.reset();  // closes it (DISCONNECT if still connected)
    cancel_connection_timers();
    if (!counted) {
      if (phase == ConnectionState::connecting) {
        ++counters_.handshake_failures;
      } else {
        counters_.count_disconnect(reason);
      }
    }
    wait_for_next_attempt(reason, lost_at, now);
  }

  // --- State (strand only unless noted) --------------------------------------

  PahoThreadsHold paho_threads_;  // first in, last out: after session_
  const MqttClientOptions options_;
  const std::string uri_;  // as handed to Paho
  const bool tls_;
  const CredentialsProvider provider_;
  const MqttClientCallbacks callbacks_;

  std::vector<SubscriptionAction> actions_;
  const std::shared_ptr<MqttGate> gate_;
  std::mt19937_64 rng_;  // client id suffixes

  internal::StrandTimer phase_timer_;     // connect_timeout
  internal::StrandTimer liveness_timer_;  // keepalive probe and stall
  internal::StrandTimer subs_timer_;      // next_action_time()

  std::unique_ptr<Session> session_;
  std::uint64_t attempt_id_ = 0;
  std::optional<net::executor_work_guard<net::io_context::executor_type>>
      running_;
  bool probe_outstanding_ = false;
  SteadyTime probe_sent_at_{};

  // Guarded by gate_->mu: which session's messages are delivered, and their
  // epoch (0: none).
  std::uint64_t live_session_ = 0;
  std::uint64_t live_epoch_ = 0;

  // Any thread.
  std::atomic<SteadyTime::rep> last_inbound_ns_{0};
};

void MqttGate::event(PahoEvent ev) {
  std::lock_guard lock(mu);
  if (impl != nullptr) impl->post_event(std::move(ev));
}

void MqttGate::message(std::uint64_t session, std::string_view topic,
                       std::string_view payload) {
  const SteadyTime now = clock.now();
  std::lock_guard lock(mu);
  if (impl == nullptr) return;
  try {
    impl->deliver(session, topic, payload, now);
  } catch (...) {
    // on_message must not throw; an exception must not unwind through Paho's
    // C code either: the message counts as one that could not be handled.
    internal::FrameCounters::bump(impl->frames().parse_errors);
  }
}

absl::StatusOr<std::shared_ptr<MqttClient>> MqttClient::create(
    boost::asio::io_context& ioc, MqttClientOptions options,
    CredentialsProvider credentials, MqttClientCallbacks callbacks,
    Clock& clock) {
  if (absl::Status s = options.validate(); !s.ok()) return s;
  if (!credentials && options.credential_use != CredentialUse::none) {
    return absl::InvalidArgumentError(
        "MqttClient::create: credentials provider is empty");
  }
  if (!callbacks.on_message) {
    return absl::InvalidArgumentError(
        "MqttClient::create: callbacks.on_message is empty");
  }
  absl::StatusOr<internal::ParsedUrl> url =
      internal::parse_url(options.uri, "MqttClientOptions::uri", kMqttSchemes);
  if (!url.ok()) return url.status();
  // The client's stable_after is the one that counts (Backoff gets a copy).
  options.backoff.stable_after = options.stable_after;
  absl::StatusOr<Backoff> backoff = Backoff::create(options.backoff);
  if (!backoff.ok()) return backoff.status();
  absl::StatusOr<CircuitBreaker> breaker =
      CircuitBreaker::create(options.breaker);
  if (!breaker.ok()) return breaker.status();
  absl::StatusOr<SubscriptionSet> subs =
      SubscriptionSet::create(options.subscriptions, clock.now());
  if (!subs.ok()) return subs.status();
  auto impl = std::make_shared<Impl>(
      ioc, std::move(options), paho_uri(*url), url->tls, std::move(credentials),
      std::move(callbacks), clock, *std::move(backoff), *std::move(breaker),
      *std::move(subs));
  return std::shared_ptr<MqttClient>(new MqttClient(std::move(impl)));
}

MqttClient::MqttClient(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

// Nothing may keep reconnecting once its owner is gone.
MqttClient::~MqttClient() { impl_->stop({}); }

void MqttClient::start() { impl_->start(); }
void MqttClient::stop(std::function<void()> done) {
  impl_->stop(std::move(done));
}
void MqttClient::want(std::string topic) { impl_->want(std::move(topic)); }
void MqttClient::unwant(std::string topic) { impl_->unwant(std::move(topic)); }
void MqttClient::resubscribe(std::string topic) {
  impl_->resubscribe(std::move(topic));
}
void MqttClient::reconnect(GapReason reason) { impl_->reconnect(reason); }
MqttClientStats MqttClient::stats() const { return impl_->stats(); }

}  // namespace feedkit
