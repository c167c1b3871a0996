// SPDX-License-Identifier: Apache-2.0
//
// src/ws_client.cc: feedkit::WsClient on Boost.Beast (feedkit/ws_client.h).
//
// Structure: WsClient owns a shared_ptr<Impl>. All of Impl's state lives on
// one strand of the caller's io_context (internal::StrandClient, shared with
// MqttClient: timers, counted operations, stop()); public methods post to
// it. Each
// connection attempt gets a fresh Conn (resolver + websocket stream, plain or
// TLS): a handler captures the Impl and its Conn, and does nothing when that
// Conn is no longer the current one, so no completion of an old connection
// (a late frame, a pending close frame, IXWebSocket #495) can reach a new one.
//
// Who owns which timeout:
//   - connect_timeout (resolve + TCP connect) and handshake_timeout (TLS +
//     WebSocket handshakes): one phase timer of ours per attempt; on expiry
//     it closes the socket, and the pending operation fails.
//   - Beast's websocket timeout option: handshake_timeout = ours, to bound
//     the WebSocket handshake and any close handshake Beast runs by itself
//     (answering a server's close frame); idle_timeout = none and
//     keep_alive_pings = false: Beast never closes an idle stream and never
//     pings on its own, so Beast's idle logic cannot fight ours.
//   - login_timeout, idle_timeout, ping_interval/pong_timeout, subscription
//     confirmations and pacing, backoff, breaker waits, stable_after and the
//     credentials refresh: timers of ours. The idle deadline is lazy (a frame
//     only stores its time; the timer re-arms at last_frame + idle_timeout),
//     so the read path never touches a timer. Only messages count as inbound
//     frames; WebSocket ping/pong control frames do not (a zombie server that
//     answers pings but sends no data is still detected: nautilus #3907).
//
// stop(): sets `stopping_`, cancels every timer (each arm carries a sequence
// number, so a wait that already completed is ignored too), releases the
// work guard held for an outstanding credentials fetch, and closes the
// connection (a close handshake capped at 1 s, then the socket). Every
// asynchronous operation is started through wrap(), which counts it in
// `pending_ops_`; when the count reaches zero while stopping, the client
// moves to `stopped` and runs the `done` callbacks. Every path that could
// start a connection checks `stopping_` first, on the strand, so no
// reconnect can start after stop() has been processed.
#include "feedkit/ws_client.h"

#include <openssl/ssl.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <cctype>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>  // std::mutex, not absl::Mutex: Debian builds Abseil without TSan hooks
#include <optional>
#include <string>
#include <string_view>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange
#include <vector>

#include "absl/strings/str_cat.h"
#include "internal/strand_client.h"
#include "internal/url.h"

namespace feedkit {

namespace {

const internal::UrlScheme kWsSchemes[] = {{"ws", "80", false},
                                          {"wss", "443", true}};

// Returns the URL's parts, or kInvalidArgument naming the part that could
// not be read (never the path or query, which may carry a token).
absl::StatusOr<internal::ParsedUrl> parse_ws_url(std::string_view url) {
  return internal::parse_url(url, "WsClientOptions::url", kWsSchemes);
}

}  // namespace

absl::Status WsClientOptions::validate() const {
  if (absl::StatusOr<internal::ParsedUrl> parsed = parse_ws_url(url);
      !parsed.ok()) {
    return parsed.status();
  }
  auto ms = [](std::chrono::milliseconds d) {
    return absl::StrCat(d.count(), " ms");
  };
  auto positive = [&](const char* field,
                      std::chrono::milliseconds d) -> absl::Status {
    if (d > std::chrono::milliseconds::zero()) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("WsClientOptions::", field, " must be > 0, got ", ms(d)));
  };
  auto non_negative = [&](const char* field,
                          std::chrono::milliseconds d) -> absl::Status {
    if (d >= std::chrono::milliseconds::zero()) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("WsClientOptions::", field, " must be >= 0, got ", ms(d)));
  };
  for (absl::Status s :
       {positive("connect_timeout", connect_timeout),
        positive("handshake_timeout", handshake_timeout),
        positive("login_timeout", login_timeout),
        non_negative("idle_timeout", idle_timeout),
        non_negative("ping_interval", ping_interval),
        non_negative("pong_timeout", pong_timeout),
        non_negative("refresh_lead", refresh_lead),
        non_negative("auth_refresh_cooldown", auth_refresh_cooldown),
        non_negative("stable_after", stable_after)}) {
    if (!s.ok()) return s;
  }
  if (pong_timeout > std::chrono::milliseconds::zero() &&
      ping_interval == std::chrono::milliseconds::zero()) {
    return absl::InvalidArgumentError(
        absl::StrCat("WsClientOptions::pong_timeout needs ping_interval > 0, "
                     "got pong_timeout ",
                     ms(pong_timeout), " with ping_interval 0 ms"));
  }
  if (max_frame_bytes < 1) {
    return absl::InvalidArgumentError(
        "WsClientOptions::max_frame_bytes must be >= 1, got 0");
  }
  for (const auto& [name, value] : headers) {
    // Values may hold a bearer token: they are checked, never quoted.
    const bool bad_name =
        name.empty() || name.find_first_of(":\r\n \t") != std::string::npos;
    if (bad_name) {
      return absl::InvalidArgumentError(
          absl::StrCat("WsClientOptions::headers has an invalid name \"",
                       name.substr(0, 64), "\""));
    }
    if (value.find_first_of("\r\n") != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("WsClientOptions::headers value of \"", name,
                       "\" contains CR or LF"));
    }
  }
  auto nested = [](const char* field, absl::Status s) {
    if (s.ok()) return s;
    return absl::Status(
        s.code(), absl::StrCat("WsClientOptions::", field, ": ", s.message()));
  };
  if (absl::Status s = nested("backoff", backoff.validate()); !s.ok()) return s;
  if (absl::Status s = nested("breaker", breaker.validate()); !s.ok()) return s;
  if (absl::Status s = nested("subscriptions", subscriptions.validate());
      !s.ok())
    return s;
  return absl::OkStatus();
}

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using internal::Strand;
using PlainWs = websocket::stream<beast::tcp_stream>;
using TlsWs = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;

// The longest a close handshake may hold up stop().
constexpr Duration kStopCloseTimeout = std::chrono::seconds(1);
// A WebSocket control frame's payload limit (RFC 6455 §5.5).
constexpr std::size_t kMaxControlPayload = 125;

// One connection attempt: its resolver and a fresh stream. Touched only on
// the strand.
struct Conn {
  Conn(const Strand& strand, ssl::context* tls_context) : resolver(strand) {
    if (tls_context != nullptr) {
      tls = std::make_unique<TlsWs>(strand, *tls_context);
    } else {
      plain = std::make_unique<PlainWs>(strand);
    }
  }

  template <class F>
  void with_ws(F&& f) {
    if (tls) {
      f(*tls);
    } else {
      f(*plain);
    }
  }

  beast::tcp_stream& tcp_layer() {
    return tls ? beast::get_lowest_layer(*tls)
               : beast::get_lowest_layer(*plain);
  }

  // Closes the socket at once: every pending operation completes with an
  // error. Idempotent.
  void close_socket() {
    beast::error_code ignored;
    resolver.cancel();
    tcp_layer().socket().shutdown(tcp::socket::shutdown_both, ignored);
    tcp_layer().socket().close(ignored);
  }

  tcp::resolver resolver;
  std::unique_ptr<PlainWs> plain;
  std::unique_ptr<TlsWs> tls;
  beast::flat_buffer buffer;
  std::deque<std::string> outbox;  // frames to write, in order
  bool writing = false;            // an async_write is pending
  bool control_in_flight = false;  // an async_ping or async_pong is pending
  std::optional<std::string> pending_pong;  // sent when the control slot frees
  bool open = false;                        // the WebSocket handshake completed
  bool login_sent = false;  // login frames queued (login_ok expected)
};
using ConnPtr = std::shared_ptr<Conn>;

}  // namespace

class WsClient::Impl
    : public internal::StrandClient<WsClient::Impl, WsClientStats> {
 public:
  using Base = internal::StrandClient<WsClient::Impl, WsClientStats>;
  friend Base;  // calls attempt(), drive(), on_stop_started(), reads
                // options_ and provider_

  Impl(net::io_context& ioc, WsClientOptions options, internal::ParsedUrl url,
       std::unique_ptr<ssl::context> tls_context,
       std::unique_ptr<Protocol> protocol, CredentialsProvider credentials,
       WsClientCallbacks callbacks, Clock& clock, Backoff backoff,
       CircuitBreaker breaker, SubscriptionSet subs)
      : Base(ioc, clock, callbacks.on_state, std::move(backoff),
             std::move(breaker), std::move(subs)),
        options_(std::move(options)),
        url_(std::move(url)),
        tls_context_(std::move(tls_context)),
        protocol_(std::move(protocol)),
        provider_(std::move(credentials)),
        callbacks_(std::move(callbacks)),
        phase_timer_(strand_),
        login_timer_(strand_),
        idle_timer_(strand_),
        ping_timer_(strand_),
        pong_timer_(strand_),
        subs_timer_(strand_),
        close_timer_(strand_, /*runs_while_stopping=*/true) {
    publish();
  }

  // --- Public entry points (any thread): post to the strand. ---------------
  // start(), stop(), unwant() and resubscribe() are the base's.

  void want(std::string key) {
    post([key = std::move(key)](Impl& self) {
      if (self.stopping_) return;
      self.subs_.want(key);
      self.drive();
      self.publish();
    });
  }
  void reconnect(GapReason reason) {
    post([reason](Impl& self) {
      if (self.stopping_ || !self.conn_ || !self.conn_->open) return;
      // A stall's outage began with the silence, not with this call.
      self.drop(reason, reason == GapReason::stall ? self.last_frame_at_
                                                   : self.clock_.now());
    });
  }

  WsClientStats stats() const {
    WsClientStats s = snapshot_.load(clock_.now(), frames_);
    s.notices = notices_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  // --- StrandClient hooks (strand). -----------------------------------------

  // Cancels every timer and closes the connection (stop() was processed).
  void on_stop_started() {
    const SteadyTime now = clock_.now();
    cancel_connection_timers();
    cancel(refresh_timer_);
    end_attempts(now);
    if (ConnPtr c = std::exchange(conn_, nullptr)) {
      if (c->open) {
        // A close frame lets the broker free the session at once (KIS keeps
        // an approval key busy otherwise); the socket goes after 1 s at most.
        arm(close_timer_,
            now + std::min(kStopCloseTimeout,
                           Duration(options_.handshake_timeout)),
            [c] { c->close_socket(); });
        c->with_ws([&](auto& ws) {
          ws.async_close(websocket::close_code::normal,
                         wrap([this, c](beast::error_code) {
                           cancel(close_timer_);
                           c->close_socket();
                         }));
        });
      } else {
        c->close_socket();
      }
    }
  }

  void cancel_connection_timers() {
    cancel(phase_timer_);
    cancel(login_timer_);
    cancel(idle_timer_);
    cancel(ping_timer_);
    cancel(pong_timer_);
    cancel(subs_timer_);
    cancel(stable_timer_);
  }

  bool current(const ConnPtr& c) const { return c && c == conn_ && !stopping_; }

  // --- Connecting ----------------------------------------------------------

  void attempt() {
    if (stopping_) return;
    const SteadyTime now = clock_.now();
    if (!begin_attempt(now)) return;
    auto c = std::make_shared<Conn>(strand_, tls_context_.get());
    conn_ = c;
    set_state(ConnectionState::connecting);
    publish();
    arm(phase_timer_, now + options_.connect_timeout,
        [this, c] { phase_timeout(c); });
    c->resolver.async_resolve(
        url_.host, url_.port,
        wrap([this, c](const beast::error_code& ec,
                       tcp::resolver::results_type results) {
          if (!current(c)) return;
          if (ec) return connect_failed(c);
          c->tcp_layer().async_connect(
              results, wrap([this, c](const beast::error_code& ec2,
                                      const tcp::endpoint&) {
                if (!current(c)) return;
                if (ec2) return connect_failed(c);
                on_tcp_connected(c);
              }));
        }));
  }

  void phase_timeout(const ConnPtr& c) {
    if (!current(c)) return;
    c->close_socket();  // the pending operation completes with an error
  }

  void on_tcp_connected(const ConnPtr& c) {
    arm(phase_timer_, clock_.now() + options_.handshake_timeout,
        [this, c] { phase_timeout(c); });
    if (!c->tls) return ws_handshake(c);
    auto& stream = c->tls->next_layer();
    boost::system::error_code not_ip;
    net::ip::make_address(url_.host, not_ip);
    if (not_ip) {  // SNI carries host names only (RFC 6066)
      SSL_set_tlsext_host_name(stream.native_handle(), url_.host.c_str());
    }
    if (options_.verify_peer) {
      stream.set_verify_mode(ssl::verify_peer);
      stream.set_verify_callback(ssl::host_name_verification(url_.host));
    } else {
      stream.set_verify_mode(ssl::verify_none);
    }
    stream.async_handshake(ssl::stream_base::client,
                           wrap([this, c](const beast::error_code& ec) {
                             if (!current(c)) return;
                             if (ec) return connect_failed(c);
                             ws_handshake(c);
                           }));
  }

  void ws_handshake(const ConnPtr& c) {
    c->with_ws([&](auto& ws) {
      websocket::stream_base::timeout timeouts{};
      timeouts.handshake_timeout = options_.handshake_timeout;
      timeouts.idle_timeout = websocket::stream_base::none();
      timeouts.keep_alive_pings = false;
      ws.set_option(timeouts);
      ws.set_option(websocket::stream_base::decorator(
          [headers = options_.headers](websocket::request_type& request) {
            request.set(beast::http::field::user_agent, "feedkit-ws");
            for (const auto& [name, value] : headers) request.set(name, value);
          }));
      ws.read_message_max(options_.max_frame_bytes);
      ws.auto_fragment(false);
      ws.control_callback([this, raw = c.get()](websocket::frame_type kind,
                                                beast::string_view) {
        if (kind == websocket::frame_type::pong && conn_.get() == raw)
          cancel(pong_timer_);
      });
      ws.async_handshake(url_.host_header, url_.target,
                         wrap([this, c](const beast::error_code& ec) {
                           if (!current(c)) return;
                           if (ec) return connect_failed(c);
                           on_ws_open(c);
                         }));
    });
  }

  // A failed or timed-out resolve, connect, TLS or WebSocket handshake.
  void connect_failed(const ConnPtr&) {
    drop(GapReason::network, clock_.now());
  }

  void on_ws_open(const ConnPtr& c) {
    cancel(phase_timer_);
    const SteadyTime now = clock_.now();
    c->open = true;
    ++counters_.connects;
    if (counters_.connects > 1) ++counters_.reconnects;
    last_frame_at_ = now;
    set_state(ConnectionState::logging_in);
    arm(login_timer_, now + options_.login_timeout, [this, c] {
      if (current(c)) drop(GapReason::network, clock_.now());
    });
    arm_idle(c);
    schedule_ping(c);
    read(c);
    publish();
    request_credentials(c);
  }

  // --- Credentials ---------------------------------------------------------

  // Asks for the login's credentials; the answer comes back to
  // on_credentials() on the strand.
  void request_credentials(const ConnPtr& c) {
    std::weak_ptr<Conn> weak_conn = c;
    request_login_credentials([this, weak_conn](absl::StatusOr<Credentials> r) {
      on_credentials(weak_conn.lock(), std::move(r));
    });
  }

  // Logs in with the credentials (the base refreshes them before they
  // expire: used from the next subscribe frame and login on).
  void on_credentials(const ConnPtr& c, absl::StatusOr<Credentials> result) {
    if (!current(c) || state_ != ConnectionState::logging_in) return;
    if (!result.ok()) return drop(GapReason::token, clock_.now());
    adopt_credentials(*std::move(result));
    std::vector<std::string> frames = protocol_->login_frames(credentials_);
    if (frames.empty()) return logged_in(c);
    c->login_sent = true;
    for (std::string& frame : frames) send(c, std::move(frame));
  }

  // --- Logged in, subscriptions --------------------------------------------

  void logged_in(const ConnPtr& c) {
    const SteadyTime now = clock_.now();
    cancel(login_timer_);
    record_connected(now);
    // The GapEvent goes out before the new connection's first data frame.
    if (std::optional<GapEvent> gap =
            gaps_.on_connected(now, subs_.lost_keys())) {
      if (callbacks_.on_gap) callbacks_.on_gap(*gap);
    }
    epoch_ = gaps_.epoch().current();
    if (!current(c))
      return;  // on_gap cannot stop us synchronously, but be safe
    subs_.on_connected(now, protocol_->broker_keeps_subscriptions());
    set_state(ConnectionState::subscribing);
    drive();
    publish();
  }

  // Sends what the SubscriptionSet says is due, goes live once it settles,
  // and arms the timer for its next action.
  void drive() {
    if (stopping_ || !conn_ ||
        (state_ != ConnectionState::subscribing &&
         state_ != ConnectionState::live)) {
      return;
    }
    const ConnPtr c = conn_;
    const SteadyTime now = clock_.now();
    subs_.next_actions(now, actions_);
    for (const SubscriptionAction& action : actions_) {
      send(c, action.kind == SubscriptionAction::Kind::subscribe
                  ? protocol_->subscribe_frame(action.key, credentials_)
                  : protocol_->unsubscribe_frame(action.key, credentials_));
    }
    if (!current(c)) return;
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

  // --- Reading -------------------------------------------------------------

  void read(const ConnPtr& c) {
    c->with_ws([&](auto& ws) {
      ws.async_read(c->buffer,
                    wrap([this, c](const beast::error_code& ec, std::size_t) {
                      on_read(c, ec);
                    }));
    });
  }

  void on_read(const ConnPtr& c, const beast::error_code& ec) {
    if (!current(c)) {
      if (!ec && !stopping_) internal::FrameCounters::bump(frames_.late_frames);
      return;
    }
    if (ec) {
      GapReason reason = GapReason::network;
      if (ec == websocket::error::closed) {
        reason = GapReason::server_close;
      } else if (ec == websocket::error::message_too_big ||
                 ec == websocket::error::buffer_overflow) {
        internal::FrameCounters::bump(frames_.parse_errors);
        reason = GapReason::protocol_error;
      } else if (ec == websocket::condition::protocol_violation) {
        reason = GapReason::protocol_error;
      }
      return drop(reason, clock_.now());
    }
    const SteadyTime now = clock_.now();
    last_frame_at_ = now;
    internal::FrameCounters::bump(frames_.frames_in);
    const auto bytes = c->buffer.cdata();
    handle_frame(
        c,
        std::string_view(static_cast<const char*>(bytes.data()), bytes.size()),
        now);
    c->buffer.consume(c->buffer.size());
    if (current(c)) read(c);
  }

  void handle_frame(const ConnPtr& c, std::string_view frame, SteadyTime now) {
    Classified what = protocol_->classify(frame);
    switch (what.kind) {
      case FrameKind::data:
        if (state_ == ConnectionState::subscribing ||
            state_ == ConnectionState::live) {
          internal::FrameCounters::bump(frames_.data_frames);
          callbacks_.on_data(frame, now, epoch_);
        } else {
          // Before login_ok the frame belongs to no epoch yet: discarded.
          internal::FrameCounters::bump(frames_.late_frames);
        }
        return;
      case FrameKind::login_ok:
        // Only an answer to our login frames counts (not one sent before).
        if (state_ == ConnectionState::logging_in && c->login_sent)
          logged_in(c);
        return;
      case FrameKind::auth_rejected:
        force_refresh_next(now);
        return drop(GapReason::token, now);
      case FrameKind::subscribe_ack:
        subs_.on_ack(what.key, now);
        break;
      case FrameKind::already_subscribed:
        subs_.on_already_subscribed(what.key, now);
        break;
      case FrameKind::subscribe_reject:
        subs_.on_reject(what.key, what.reason, now);
        break;
      case FrameKind::max_subscriptions:
        subs_.on_max_subscriptions(what.key, now);
        break;
      case FrameKind::unsubscribe_ack:
        subs_.on_unsubscribed(what.key, now);
        break;
      case FrameKind::heartbeat:
        if (what.reply.empty()) return;
        if (what.reply_as_pong && what.reply.size() <= kMaxControlPayload) {
          send_pong(c, std::move(what.reply));
        } else {
          send(c, std::move(what.reply));
        }
        return;
      case FrameKind::notice:
        notices_.fetch_add(1, std::memory_order_relaxed);
        return;
      case FrameKind::busy:
        // The broker asks us to go away for now: a failed attempt.
        return drop(GapReason::server_close, now);
      case FrameKind::ignore:
        return;
      case FrameKind::malformed:
        internal::FrameCounters::bump(frames_.parse_errors);
        return;
    }
    drive();  // a subscription reply: send what is due, maybe go live
    publish();
  }

  // --- Writing -------------------------------------------------------------

  void send(const ConnPtr& c, std::string frame) {
    if (!current(c)) return;
    c->outbox.push_back(std::move(frame));
    if (!c->writing) write_next(c);
  }

  void write_next(const ConnPtr& c) {
    c->writing = true;
    c->with_ws([&](auto& ws) {
      ws.text(true);
      ws.async_write(net::buffer(c->outbox.front()),
                     wrap([this, c](const beast::error_code& ec, std::size_t) {
                       c->writing = false;
                       if (!current(c)) return;
                       if (ec) return drop(GapReason::network, clock_.now());
                       internal::FrameCounters::bump(frames_.frames_out);
                       c->outbox.pop_front();
                       if (!c->outbox.empty()) write_next(c);
                     }));
    });
  }

  // --- Liveness ------------------------------------------------------------

  void arm_idle(const ConnPtr& c) {
    if (options_.idle_timeout == std::chrono::milliseconds::zero()) return;
    arm(idle_timer_, last_frame_at_ + options_.idle_timeout, [this, c] {
      if (!current(c)) return;
      if (clock_.now() - last_frame_at_ < options_.idle_timeout)
        return arm_idle(c);
      ++counters_.stalls_detected;
      drop(GapReason::stall, last_frame_at_);
    });
  }

  void schedule_ping(const ConnPtr& c) {
    if (options_.ping_interval == std::chrono::milliseconds::zero()) return;
    arm(ping_timer_, clock_.now() + options_.ping_interval, [this, c] {
      if (!current(c)) return;
      if (!c->control_in_flight) {
        c->control_in_flight = true;
        c->with_ws([&](auto& ws) {
          ws.async_ping({}, wrap([this, c](const beast::error_code& ec) {
                          control_done(c, ec);
                        }));
        });
        // One deadline at a time: it runs from the oldest unanswered ping.
        if (options_.pong_timeout > std::chrono::milliseconds::zero() &&
            !pong_armed()) {
          pong_deadline_seq_ = pong_timer_.seq + 1;
          arm(pong_timer_, clock_.now() + options_.pong_timeout, [this, c] {
            if (!current(c)) return;
            ++counters_.stalls_detected;
            drop(GapReason::stall, clock_.now());
          });
        }
      }
      schedule_ping(c);
    });
  }

  // Sends a WebSocket pong carrying `payload` (a heartbeat answer). Beast
  // allows one ping or pong at a time: a pong that finds the slot busy waits
  // for it (a newer one replaces it).
  void send_pong(const ConnPtr& c, std::string payload) {
    if (!current(c)) return;
    if (c->control_in_flight) {
      c->pending_pong = std::move(payload);
      return;
    }
    c->control_in_flight = true;
    internal::FrameCounters::bump(frames_.frames_out);
    c->with_ws([&](auto& ws) {
      ws.async_pong(websocket::ping_data(payload.data(), payload.size()),
                    wrap([this, c](const beast::error_code& ec) {
                      control_done(c, ec);
                    }));
    });
  }

  void control_done(const ConnPtr& c, const beast::error_code& ec) {
    c->control_in_flight = false;
    if (!current(c)) return;
    if (ec) return drop(GapReason::network, clock_.now());
    if (c->pending_pong) {
      send_pong(c, *std::exchange(c->pending_pong, std::nullopt));
    }
  }

  bool pong_armed() const { return pong_deadline_seq_ == pong_timer_.seq; }

  // --- Failure -------------------------------------------------------------

  // Ends the current connection (or attempt) for `reason`, first noticed at
  // `lost_at` (for a stall: the last frame), and schedules the next attempt.
  void drop(GapReason reason, SteadyTime lost_at) {
    if (stopping_) return;
    const SteadyTime now = clock_.now();
    const ConnectionState phase = state_;
    if (ConnPtr c = std::exchange(conn_, nullptr)) c->close_socket();
    cancel_connection_timers();
    if (phase == ConnectionState::connecting) {
      ++counters_.handshake_failures;
    } else {
      if (phase == ConnectionState::logging_in) ++counters_.login_failures;
      counters_.count_disconnect(reason);
    }
    wait_for_next_attempt(reason, lost_at, now);
  }

  // --- State (strand only unless noted) --------------------------------------

  const WsClientOptions options_;
  const internal::ParsedUrl url_;
  const std::unique_ptr<ssl::context> tls_context_;
  const std::unique_ptr<Protocol> protocol_;
  const CredentialsProvider provider_;
  const WsClientCallbacks callbacks_;

  std::vector<SubscriptionAction> actions_;

  internal::StrandTimer
      phase_timer_;  // connect_timeout, then handshake_timeout
  internal::StrandTimer login_timer_;
  internal::StrandTimer idle_timer_;
  internal::StrandTimer ping_timer_;
  internal::StrandTimer pong_timer_;
  internal::StrandTimer subs_timer_;   // SubscriptionSet::next_action_time()
  internal::StrandTimer close_timer_;  // caps stop()'s close handshake

  ConnPtr conn_;
  SteadyTime last_frame_at_{};
  std::uint64_t epoch_ = 0;
  std::uint64_t pong_deadline_seq_ = 0;

  std::atomic<std::uint64_t> notices_{0};  // read by stats(), any thread
};

absl::StatusOr<std::shared_ptr<WsClient>> WsClient::create(
    boost::asio::io_context& ioc, WsClientOptions options,
    std::unique_ptr<Protocol> protocol, CredentialsProvider credentials,
    WsClientCallbacks callbacks, Clock& clock) {
  if (absl::Status s = options.validate(); !s.ok()) return s;
  if (!protocol)
    return absl::InvalidArgumentError("WsClient::create: protocol is null");
  if (!credentials)
    return absl::InvalidArgumentError(
        "WsClient::create: credentials provider is empty");
  if (!callbacks.on_data)
    return absl::InvalidArgumentError(
        "WsClient::create: callbacks.on_data is empty");
  absl::StatusOr<internal::ParsedUrl> url = parse_ws_url(options.url);
  if (!url.ok()) return url.status();
  std::unique_ptr<ssl::context> tls_context;
  if (url->tls) {
    tls_context = std::make_unique<ssl::context>(ssl::context::tls_client);
    boost::system::error_code ec;
    tls_context->set_options(
        ssl::context::default_workarounds | ssl::context::no_sslv2 |
            ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
            ssl::context::no_tlsv1_1,
        ec);
    if (options.ca_file.empty()) {
      tls_context->set_default_verify_paths(ec);
      if (ec)
        return absl::InvalidArgumentError(
            "WsClient::create: no default CA paths");
    } else {
      tls_context->load_verify_file(options.ca_file, ec);
      if (ec) {
        return absl::InvalidArgumentError(
            absl::StrCat("WsClientOptions::ca_file \"", options.ca_file,
                         "\" could not be loaded: ", ec.message()));
      }
    }
    tls_context->set_verify_mode(options.verify_peer ? ssl::verify_peer
                                                     : ssl::verify_none);
  }
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
      ioc, std::move(options), *std::move(url), std::move(tls_context),
      std::move(protocol), std::move(credentials), std::move(callbacks), clock,
      *std::move(backoff), *std::move(breaker), *std::move(subs));
  return std::shared_ptr<WsClient>(new WsClient(std::move(impl)));
}

WsClient::WsClient(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

// Nothing may keep reconnecting once its owner is gone.
WsClient::~WsClient() { impl_->stop({}); }

void WsClient::start() { impl_->start(); }
void WsClient::stop(std::function<void()> done) {
  impl_->stop(std::move(done));
}
void WsClient::want(std::string key) { impl_->want(std::move(key)); }
void WsClient::unwant(std::string key) { impl_->unwant(std::move(key)); }
void WsClient::resubscribe(std::string key) {
  impl_->resubscribe(std::move(key));
}
void WsClient::reconnect(GapReason reason) { impl_->reconnect(reason); }
WsClientStats WsClient::stats() const { return impl_->stats(); }

}  // namespace feedkit
