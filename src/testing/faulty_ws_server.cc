// SPDX-License-Identifier: Apache-2.0
#include "feedkit/testing/faulty_ws_server.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <cassert>
#include <charconv>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>  // std::mutex, not absl::Mutex: Debian builds Abseil without TSan hooks
#include <optional>
#include <set>
#include <system_error>
#include <type_traits>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "feedkit/testing/test_certificate.h"
#include "internal/server_thread.h"

namespace feedkit::testing {
namespace internal {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
namespace websocket = boost::beast::websocket;
using tcp = boost::asio::ip::tcp;

// Flood and stream frames are encoded by the server itself and appended to a
// session's send buffer; a flood refills the buffer while it holds less than
// this many bytes, so one socket write carries thousands of frames.
constexpr std::size_t kFloodHighWater = 512 * 1024;
// Stream frames are not sent to a session holding more than this many unsent
// bytes (a client that stopped reading); they are lost for that session.
constexpr std::size_t kStreamMaxBuffered = 64 * 1024 * 1024;
// Time limit on Beast's WebSocket accept and close handshakes.
constexpr auto kWsHandshakeTimeout = std::chrono::seconds(2);

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             SteadyClock::now().time_since_epoch())
      .count();
}

// Appends one unmasked, final WebSocket text frame (server → client) whose
// payload `write_payload(out)` appends, without a temporary: the payload is
// written after a 2-byte header, which is widened in place when the payload
// is 126 bytes or more.
template <class WritePayload>
void append_text_frame_with(std::string& out, WritePayload&& write_payload) {
  const std::size_t at = out.size();
  out.append(2, '\0');
  write_payload(out);
  const std::size_t n = out.size() - at - 2;
  out[at] = static_cast<char>(0x81);
  if (n < 126) {
    out[at + 1] = static_cast<char>(n);
    return;
  }
  char header[9];  // 127 and a 64-bit length
  std::size_t len = 0;
  if (n <= 0xFFFF) {
    header[len++] = static_cast<char>(126);
    header[len++] = static_cast<char>((n >> 8) & 0xFF);
    header[len++] = static_cast<char>(n & 0xFF);
  } else {
    header[len++] = static_cast<char>(127);
    for (int shift = 56; shift >= 0; shift -= 8) {
      header[len++] =
          static_cast<char>((static_cast<std::uint64_t>(n) >> shift) & 0xFF);
    }
  }
  out.replace(at + 1, 1, header, len);
}

void append_text_frame(std::string& out, std::string_view payload) {
  append_text_frame_with(out, [&](std::string& o) { o.append(payload); });
}

// A stream layer between Beast's WebSocket stream and the socket (or TLS
// stream) that buffers every write in user space and keeps exactly one socket
// write outstanding. It serializes Beast's own writes (handshake response,
// pongs, close) with the frames the server encodes itself, and lets a flood go
// out thousands of frames per system call. Writes from Beast complete at once
// (after a post) once their bytes are buffered. In discard mode (a stalled
// session) everything written is dropped, Beast's pongs included.
template <class Next>
class CoalescingStream {
 public:
  using executor_type = typename Next::executor_type;

  template <class... Args>
  explicit CoalescingStream(Args&&... args)
      : next_(std::forward<Args>(args)...) {}

  executor_type get_executor() noexcept { return next_.get_executor(); }
  Next& next_layer() noexcept { return next_; }
  const Next& next_layer() const noexcept { return next_; }

  template <class MutableBuffers, class Handler>
  auto async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    return next_.async_read_some(buffers, std::forward<Handler>(handler));
  }

  template <class ConstBuffers, class Handler>
  auto async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    return net::async_initiate<Handler, void(beast::error_code, std::size_t)>(
        [this](auto h, const ConstBuffers& b) {
          beast::error_code ec = error_;
          std::size_t n = 0;
          if (!ec) {
            n = net::buffer_size(b);
            if (!discard_) {
              for (auto it = net::buffer_sequence_begin(b);
                   it != net::buffer_sequence_end(b); ++it) {
                const net::const_buffer cb = *it;
                out_.append(static_cast<const char*>(cb.data()), cb.size());
              }
              flush();
            }
          }
          net::post(next_.get_executor(),
                    beast::bind_front_handler(std::move(h), ec, n));
        },
        handler, buffers);
  }

  // The session that owns this stream (kept alive by an outstanding write)
  // and what to call whenever a socket write completes.
  void set_owner(std::weak_ptr<void> owner, std::function<void()> on_written) {
    owner_ = std::move(owner);
    on_written_ = std::move(on_written);
  }

  // Bytes appended here are sent after everything written before; call
  // flush() after appending.
  std::string& out() { return out_; }
  std::size_t buffered() const { return out_.size() + inflight_.size(); }
  bool discarding() const { return discard_; }
  // Bytes buffered before discarding began still go out: they were sent as
  // far as the server is concerned (and logged so).
  void set_discard(bool discard) { discard_ = discard; }

  // Starts a socket write of everything buffered, unless one is running.
  void flush() {
    if (writing_ || out_.empty() || error_) return;
    writing_ = true;
    inflight_.swap(out_);
    out_.clear();
    net::async_write(
        next_, net::buffer(inflight_),
        [this, owner = owner_.lock()](beast::error_code ec, std::size_t) {
          writing_ = false;
          inflight_.clear();
          if (ec) {
            error_ = ec;
            out_.clear();
            return;
          }
          flush();
          if (on_written_) on_written_();
        });
  }

 private:
  Next next_;
  std::string out_;       // waiting for the next socket write
  std::string inflight_;  // being written
  bool writing_ = false;
  bool discard_ = false;
  beast::error_code error_;  // the first write error; later writes fail
  std::weak_ptr<void> owner_;
  std::function<void()> on_written_;
};

// Beast tears a WebSocket connection down through these (found by ADL).
template <class Next>
void teardown(beast::role_type role, CoalescingStream<Next>& stream,
              beast::error_code& ec) {
  using beast::websocket::teardown;
  teardown(role, stream.next_layer(), ec);
}

template <class Next, class Handler>
void async_teardown(beast::role_type role, CoalescingStream<Next>& stream,
                    Handler&& handler) {
  using beast::websocket::async_teardown;
  async_teardown(role, stream.next_layer(), std::forward<Handler>(handler));
}

class SessionBase;

// A stream() in progress: publishes data frames for `key` at a fixed rate.
struct StreamJob {
  StreamJob(net::io_context& ioc, std::string k)
      : key(std::move(k)), timer(ioc) {}
  std::string key;
  Duration period{0};  // per record, at rate multiplier 1
  bool unlimited = true;
  std::size_t remaining = 0;  // records
  std::uint64_t frames = 0;   // published so far (indexes the pattern)
  SteadyTime next_due;
  net::steady_timer timer;
  std::uint64_t generation = 0;  // a timer wait of an older one is stale
  bool stopped = false;
};

}  // namespace internal

// Everything below runs on the server thread unless it says it locks `mu_`.
class FaultyWsServer::Impl {
 public:
  explicit Impl(FaultyWsServerOptions options)
      : options_(std::move(options)),
        dialect_(options_.dialect ? options_.dialect
                                  : std::make_shared<LineDialect>()) {}

  absl::Status open();
  void shutdown();  // from the destructor

  // --- Server thread ---------------------------------------------------------
  void do_accept();
  void on_accepted(internal::tcp::socket socket);
  void on_session_end(internal::SessionBase* session, bool was_open);
  void publish(const std::string& key, std::size_t records);
  void start_stream(std::string key, double frames_per_second,
                    std::size_t count);
  void tick(const std::shared_ptr<internal::StreamJob>& job);
  void arm(const std::shared_ptr<internal::StreamJob>& job);
  std::size_t records_for_next_frame(const internal::StreamJob& job) const;
  void start_burst(double multiplier, Duration duration);
  void stop_streams_io();
  std::vector<std::shared_ptr<internal::SessionBase>> live_sessions() const;
  // Returns the open sessions other than `except` that hold the account.
  std::vector<std::shared_ptr<internal::SessionBase>> account_holders(
      const internal::SessionBase* except) const;

  // --- Locks mu_ -------------------------------------------------------------
  // With mu_ held: whether `secret` is accepted at `now`.
  bool secret_accepted(const std::string& secret, SteadyTime now) const {
    if (any_secret_) return true;
    auto it = secrets_.find(secret);
    return it != secrets_.end() && now < it->second;
  }
  void record(std::size_t connection, std::string frame);
  void count_handshake();
  void count_refused();

  FaultyWsServerOptions options_;
  // The wire format; used on the server thread only.
  const std::shared_ptr<ServerDialect> dialect_;
  std::uint16_t port_ = 0;

  mutable std::mutex mu_;  // guards the script and observation below
  // Script.
  HandshakeMode handshake_mode_ = HandshakeMode::accept;
  Duration handshake_delay_{0};
  bool any_secret_ = true;                     // no secret check at all
  std::map<std::string, SteadyTime> secrets_;  // accepted, until
  bool keeps_subscriptions_ = false;
  bool ghost_subscriptions_ = false;  // UNSUB does not release kept keys
  std::size_t max_subscriptions_ = 0;
  std::map<std::string, std::string> rejects_;
  bool answer_subscriptions_ = true;
  bool answer_logins_ = true;
  Duration app_ping_{0};
  std::size_t max_missed_pings_ = 0;
  SessionConflict conflict_ = SessionConflict::none;
  SteadyTime occupied_until_{};                        // occupy_account()
  std::map<std::string, std::set<std::string>> kept_;  // secret → keys held
  // Observation.
  std::size_t connections_accepted_ = 0;
  std::size_t handshakes_completed_ = 0;
  std::size_t handshakes_refused_ = 0;
  std::size_t open_sessions_ = 0;
  std::vector<std::vector<std::string>> received_;
  std::deque<ConnectionLog> logs_;  // per connection; stable addresses

  std::atomic<bool> stopping_{false};

  // Declared before the io_context so that they outlive the handlers it
  // destroys.
  std::optional<internal::net::ssl::context> ssl_;
  internal::ServerThread server_thread_{mu_};
  internal::tcp::acceptor acceptor_{server_thread_.ioc()};
  std::vector<std::shared_ptr<internal::SessionBase>> sessions_;
  std::map<std::string, std::shared_ptr<internal::StreamJob>> streams_;
  std::map<std::string, std::uint64_t, std::less<>>
      last_seq_;                                 // per key, server-wide
  std::vector<std::size_t> records_pattern_{1};  // set_records_per_frame()
  double rate_multiplier_ = 1.0;                 // burst()
  std::uint64_t burst_generation_ = 0;
  internal::net::steady_timer burst_timer_{server_thread_.ioc()};
  std::string frame_;  // publish(): the frame every subscriber gets
};

namespace internal {

// One accepted TCP connection: TLS and WebSocket handshakes as scripted, then
// LineProtocol. Lives on the server thread; kept alive by its handlers and by
// Impl::sessions_ until it ends.
class SessionBase : public std::enable_shared_from_this<SessionBase> {
 public:
  using Impl = FaultyWsServer::Impl;

  SessionBase(Impl& server, std::size_t index, ConnectionLog& log)
      : server_(server),
        index_(index),
        log_(log),
        ping_timer_(server.server_thread_.ioc()),
        delay_timer_(server.server_thread_.ioc()) {}
  virtual ~SessionBase() = default;
  SessionBase(const SessionBase&) = delete;
  SessionBase& operator=(const SessionBase&) = delete;

  virtual void start(HandshakeMode mode, Duration delay) = 0;
  // Sends a close frame (closes the TCP connection if not yet upgraded).
  virtual void close_ws() = 0;
  // Closes with SO_LINGER {1, 0}: the peer gets a TCP RST.
  virtual void reset() = 0;
  // Closes the socket (server shutdown).
  virtual void shut() = 0;

  // Returns true once the upgrade was accepted and until the session ends or
  // starts closing: the sessions the actions apply to.
  bool selectable() const { return upgraded_ && !ended_ && !closing_; }
  bool holds(std::string_view key) const {
    return subs_.find(key) != subs_.end() && muted_.find(key) == muted_.end();
  }
  std::size_t index() const { return index_; }
  // Whether the session holds the account (see SessionConflict).
  bool holds_account() const { return claimed_ && selectable(); }
  // Adds the keys this session holds to what its secret keeps after it ends
  // (keys subscribed before set_keeps_subscriptions(true) included).
  // Under server_.mu_.
  void keep_held_keys(std::map<std::string, std::set<std::string>>& kept) {
    kept[secret_].insert(subs_.begin(), subs_.end());
  }
  // The broker silently lost `key`: no frame, no more data until a new SUB.
  void lose(const std::string& key) { subs_.erase(key); }
  // The broker stops sending `key` here for good, SUB answered as usual.
  void mute(const std::string& key) { muted_.insert(key); }

  // Sends one text frame unless stalled.
  void send(std::string_view text) {
    if (!can_send()) return;
    internal::append_text_frame(open_ ? out() : pre_open_, text);
    if (open_) flush();
  }
  // Sends a reply of the dialect's, unless it has no such frame ("").
  void reply(std::string_view text) {
    if (!text.empty()) send(text);
  }

  // Sends `frame` (a complete WebSocket frame holding `records` records of
  // `key` from `first_seq` on) unless stalled or too far behind; logs it.
  void send_data_frame(std::string_view key, std::string_view frame,
                       std::uint64_t first_seq, std::size_t records) {
    if (!can_send() || buffered() > kStreamMaxBuffered) return;
    (open_ ? out() : pre_open_).append(frame);
    log_data(key, first_seq, records, 1);
    if (open_) flush();
  }

  void add_flood(const std::string& key, std::uint64_t first,
                 std::size_t count) {
    if (!can_send() || count == 0) return;
    floods_.push_back({key, first, first + count});
    pump();
  }
  void clear_floods() { floods_.clear(); }

  void send_malformed(std::size_t count) {
    if (!can_send()) return;
    for (std::size_t i = 0; i < count; ++i) {
      send(server_.dialect_->malformed(malformed_sent_++));
    }
    std::lock_guard<std::mutex> lock(server_.mu_);
    log_.malformed_sent += count;
  }

  // Stalls until resume() with the same generation (see stall_all()).
  std::uint64_t stall() {
    if (ended_) return stall_generation_;
    stalled_ = true;
    floods_.clear();
    stop_pings();
    set_discard(true);
    return ++stall_generation_;
  }
  void resume(std::uint64_t generation) {
    if (!stalled_ || generation != stall_generation_ || ended_ || closing_) {
      return;
    }
    stalled_ = false;
    set_discard(false);
    Duration interval;
    {
      std::lock_guard<std::mutex> lock(server_.mu_);
      interval = server_.app_ping_;
    }
    restart_pings(interval);
  }

  void restart_pings(Duration interval) {
    stop_pings();
    ping_interval_ = interval;
    if (interval > Duration::zero() && open_ && can_send()) {
      schedule_ping(ping_generation_);
    }
  }

  // Another session took the account over: tells this one and closes it.
  void kick() {
    claimed_ = false;
    reply(server_.dialect_->kicked());
    close_ws();
  }
  // The secret this session presented was revoked: tells it and closes it.
  void expire() {
    claimed_ = false;
    reply(server_.dialect_->token_expired());
    close_ws();
  }

  // A WebSocket pong or a text answer to a ping arrived.
  void count_heartbeat() {
    unanswered_pings_ = 0;
    std::lock_guard<std::mutex> lock(server_.mu_);
    ++log_.heartbeats_received;
    server_.server_thread_.changed();
  }

 protected:
  virtual std::string& out() = 0;
  virtual std::size_t buffered() const = 0;
  virtual void flush() = 0;
  virtual void set_discard(bool discard) = 0;
  virtual void close_socket(bool reset) = 0;

  bool can_send() const { return !ended_ && !closing_ && !stalled_; }

  // Writes the flood frames while the send buffer is below the high water
  // mark; called again whenever a socket write completes.
  void pump() {
    if (!open_ || !can_send() || floods_.empty()) return;
    bool wrote = false;
    ServerDialect& dialect = *server_.dialect_;
    while (!floods_.empty() && buffered() < kFloodHighWater) {
      Flood& f = floods_.front();
      const std::uint64_t first = f.next;
      for (int i = 0; i < 256 && f.next != f.end; ++i, ++f.next) {
        const std::int64_t now = steady_ns();
        internal::append_text_frame_with(out(), [&](std::string& o) {
          dialect.append_data(o, f.key, f.next, 1, now);
        });
      }
      log_data(f.key, first, f.next - first, f.next - first);
      wrote = true;
      if (f.next == f.end) floods_.pop_front();
    }
    if (wrote) flush();
  }

  // The upgrade was accepted (counted when the response is written, so a
  // client that saw it finds the counters updated).
  void on_upgrading() {
    upgraded_ = true;
    server_.count_handshake();
  }

  // The WebSocket is open: sends what actions queued meanwhile.
  void on_open() {
    open_ = true;
    if (!pre_open_.empty()) {
      out().append(pre_open_);
      pre_open_.clear();
      flush();
    }
    Duration interval;
    {
      std::lock_guard<std::mutex> lock(server_.mu_);
      interval = server_.app_ping_;
    }
    restart_pings(interval);
    pump();
  }

  void on_frame(std::string frame);

  void end() {
    if (ended_) return;
    ended_ = true;
    stop_pings();
    delay_timer_.cancel();
    floods_.clear();
    close_socket(false);
    server_.on_session_end(this, upgraded_);
  }

  void begin_closing() {
    closing_ = true;
    stalled_ = false;
    set_discard(false);
    floods_.clear();
    stop_pings();
  }

  Impl& server_;
  const std::size_t index_;
  ConnectionLog& log_;  // in server_.logs_; guarded by server_.mu_
  net::steady_timer ping_timer_;
  net::steady_timer delay_timer_;
  bool upgraded_ = false;  // the 101 response is on its way
  bool open_ = false;      // Beast's accept completed
  bool closing_ = false;
  bool stalled_ = false;
  bool ended_ = false;

 private:
  struct Flood {
    std::string key;
    std::uint64_t next;
    std::uint64_t end;
  };
  // How a login or a secret-carrying subscribe may take the account.
  enum class Claim { granted, in_use, granted_then_kicked };

  void on_login(const ClientRequest& request,
                std::vector<std::string>& replies);
  void on_subscribe(const ClientRequest& request,
                    std::vector<std::string>& replies);
  void on_unsubscribe(const ClientRequest& request,
                      std::vector<std::string>& replies);
  // Decides whether this session may hold the account as `secret` (already
  // accepted), with server_.mu_ held; collects the sessions to kick.
  Claim claim(const std::string& secret, SteadyTime now);

  void log_data(std::string_view key, std::uint64_t first_seq,
                std::uint64_t records, std::uint64_t frames) {
    std::lock_guard<std::mutex> lock(server_.mu_);
    auto it = log_.data.find(key);
    if (it == log_.data.end()) {
      it = log_.data.emplace(std::string(key), SentKeyLog{}).first;
    }
    SentKeyLog& k = it->second;
    if (k.records == 0) k.first_seq = first_seq;
    k.frames += frames;
    k.records += records;
    k.last_seq = first_seq + records - 1;
  }

  void stop_pings() {
    ++ping_generation_;
    ping_timer_.cancel();
  }

  void schedule_ping(std::uint64_t generation) {
    ping_timer_.expires_after(ping_interval_);
    ping_timer_.async_wait(
        [self = shared_from_this(), this, generation](beast::error_code ec) {
          if (ec || generation != ping_generation_ || !can_send()) return;
          std::size_t max_missed = 0;
          {
            std::lock_guard<std::mutex> lock(server_.mu_);
            max_missed = server_.max_missed_pings_;
          }
          if (max_missed != 0 && unanswered_pings_ >= max_missed) {
            reply(server_.dialect_->missed_pings());
            return close_ws();
          }
          ++unanswered_pings_;
          const std::string ping = server_.dialect_->ping(++pings_sent_);
          if (!ping.empty()) {
            send(ping);
            std::lock_guard<std::mutex> lock(server_.mu_);
            ++log_.pings_sent;
          }
          schedule_ping(generation);
        });
  }

  std::string secret_;    // of the last accepted login or subscribe
  bool claimed_ = false;  // holds the account (see SessionConflict)
  std::set<std::string, std::less<>> subs_;   // keys this connection holds
  std::set<std::string, std::less<>> muted_;  // held keys it never sends
  std::deque<Flood> floods_;
  std::string pre_open_;  // frames queued before the upgrade completed
  Duration ping_interval_{0};
  std::uint64_t ping_generation_ = 0;
  std::uint64_t pings_sent_ = 0;
  std::uint64_t unanswered_pings_ = 0;  // since the last heartbeat answer
  std::uint64_t stall_generation_ = 0;
  std::size_t malformed_sent_ = 0;
  // Sessions a claim() decided to kick, once the replies are sent.
  std::vector<std::shared_ptr<SessionBase>> to_kick_;
  bool kick_self_ = false;
};

void SessionBase::on_frame(std::string frame) {
  ClientRequest request = server_.dialect_->read(frame);
  std::vector<std::string> replies;
  switch (request.kind) {
    case ClientRequest::Kind::login:
      on_login(request, replies);
      break;
    case ClientRequest::Kind::subscribe:
      on_subscribe(request, replies);
      break;
    case ClientRequest::Kind::unsubscribe:
      on_unsubscribe(request, replies);
      break;
    case ClientRequest::Kind::heartbeat:
      count_heartbeat();
      break;
    case ClientRequest::Kind::unknown:
      replies.push_back(std::move(request.reply));
      break;
  }
  // Recorded after the subscription state changed and before the answer is
  // sent, so a test that saw the frame recorded sees its effect.
  server_.record(index_, std::move(frame));
  for (const std::string& r : replies) reply(r);
  for (const auto& other : std::exchange(to_kick_, {})) other->kick();
  if (std::exchange(kick_self_, false)) kick();
}

SessionBase::Claim SessionBase::claim(const std::string& secret,
                                      SteadyTime now) {
  const bool occupied = now < server_.occupied_until_;
  const SessionConflict conflict = server_.conflict_;
  if (conflict == SessionConflict::kick_incumbent) {
    for (auto& other : server_.account_holders(this)) {
      to_kick_.push_back(std::move(other));
    }
  } else if (occupied || (conflict == SessionConflict::reject_newcomer &&
                          !server_.account_holders(this).empty())) {
    return Claim::in_use;
  }
  secret_ = secret;
  claimed_ = true;
  return occupied ? Claim::granted_then_kicked : Claim::granted;
}

void SessionBase::on_login(const ClientRequest& request,
                           std::vector<std::string>& replies) {
  ServerDialect& dialect = *server_.dialect_;
  const std::string secret = request.secret.value_or(std::string());
  std::lock_guard<std::mutex> lock(server_.mu_);
  if (!server_.answer_logins_) return;  // no answer, nothing changes
  const SteadyTime now = SteadyClock::now();
  if (!server_.secret_accepted(secret, now)) {
    replies.push_back(dialect.login_failed());
    return;
  }
  switch (claim(secret, now)) {
    case Claim::in_use:
      replies.push_back(dialect.login_in_use());
      return;
    case Claim::granted_then_kicked:
      kick_self_ = true;
      break;
    case Claim::granted:
      break;
  }
  replies.push_back(dialect.login_ok());
}

void SessionBase::on_subscribe(const ClientRequest& request,
                               std::vector<std::string>& replies) {
  std::lock_guard<std::mutex> lock(server_.mu_);
  // No answer, no state change: the client's confirmation times out.
  if (!server_.answer_subscriptions_) return;
  std::optional<SubscribeOutcome> denied;
  if (server_.dialect_->requires_login() && !claimed_) {
    denied = SubscribeOutcome::auth_failed;
  } else if (request.secret) {  // the broker carries the credential in requests
    const SteadyTime now = SteadyClock::now();
    if (!server_.secret_accepted(*request.secret, now)) {
      denied = SubscribeOutcome::auth_failed;
    } else if (!claimed_ || secret_ != *request.secret) {
      switch (claim(*request.secret, now)) {
        case Claim::in_use:
          denied = SubscribeOutcome::in_use;
          break;
        case Claim::granted_then_kicked:
          kick_self_ = true;
          break;
        case Claim::granted:
          break;
      }
    }
  }
  std::set<std::string>& kept = server_.kept_[secret_];
  std::vector<KeyOutcome> outcomes;
  outcomes.reserve(request.keys.size());
  for (const std::string& key : request.keys) {
    KeyOutcome& o = outcomes.emplace_back();
    o.key = key;
    if (denied) {
      o.outcome = *denied;
    } else if (auto it = server_.rejects_.find(key);
               it != server_.rejects_.end()) {
      o.outcome = SubscribeOutcome::rejected;
      o.reason = it->second;
    } else if (subs_.count(key) != 0 ||
               (server_.keeps_subscriptions_ && kept.count(key) != 0)) {
      subs_.insert(key);
      o.outcome = SubscribeOutcome::already;
      ++log_.already_answers;
    } else if (server_.max_subscriptions_ != 0 &&
               subs_.size() >= server_.max_subscriptions_) {
      o.outcome = SubscribeOutcome::max_subscriptions;
    } else {
      subs_.insert(key);
      if (server_.keeps_subscriptions_) kept.insert(key);
      o.outcome = SubscribeOutcome::subscribed;
    }
  }
  for (std::string& frame :
       server_.dialect_->subscribe_replies(request, outcomes)) {
    replies.push_back(std::move(frame));
  }
}

void SessionBase::on_unsubscribe(const ClientRequest& request,
                                 std::vector<std::string>& replies) {
  std::vector<bool> held;
  held.reserve(request.keys.size());
  {
    std::lock_guard<std::mutex> lock(server_.mu_);
    // A broker that carries the credential in requests keeps subscriptions
    // under it even before this connection presented it otherwise.
    const std::string& account = request.secret ? *request.secret : secret_;
    auto kept = server_.kept_.find(account);
    for (const std::string& key : request.keys) {
      bool was_held = subs_.erase(key) != 0;
      if (server_.keeps_subscriptions_ && kept != server_.kept_.end()) {
        was_held =
            (server_.ghost_subscriptions_ ? kept->second.count(key)
                                          : kept->second.erase(key)) != 0 ||
            was_held;
      }
      held.push_back(was_held);
    }
  }
  for (std::string& frame :
       server_.dialect_->unsubscribe_replies(request, held)) {
    replies.push_back(std::move(frame));
  }
}

template <class Next>
class Session final : public SessionBase {
 public:
  static constexpr bool kTls = !std::is_same_v<Next, beast::tcp_stream>;

  template <class... Args>
  Session(Impl& server, std::size_t index, ConnectionLog& log, Args&&... args)
      : SessionBase(server, index, log), ws_(std::forward<Args>(args)...) {}

  void start(HandshakeMode mode, Duration delay) override {
    ws_.next_layer().set_owner(weak_from_this(), [this] { pump(); });
    mode_ = mode;
    delay_ = delay;
    if (mode == HandshakeMode::hang) return;  // never read, never answer
    if constexpr (kTls) {
      ws_.next_layer().next_layer().async_handshake(
          net::ssl::stream_base::server,
          [self = shared_from_this(), this](beast::error_code ec) {
            if (ec) return end();
            read_request();
          });
    } else {
      read_request();
    }
  }

  void close_ws() override {
    if (ended_ || closing_) return;
    if (!upgraded_) return end();
    begin_closing();
    // Beast may not start a close before its accept completed.
    if (open_) start_close();
  }

  void reset() override {
    if (ended_) return;
    close_socket(true);
    end();
  }

  void shut() override { end(); }

 protected:
  std::string& out() override { return ws_.next_layer().out(); }
  std::size_t buffered() const override { return ws_.next_layer().buffered(); }
  void flush() override { ws_.next_layer().flush(); }
  void set_discard(bool discard) override {
    ws_.next_layer().set_discard(discard);
  }
  void close_socket(bool reset) override {
    auto& socket = beast::get_lowest_layer(ws_).socket();
    beast::error_code ignored;
    if (reset) socket.set_option(net::socket_base::linger(true, 0), ignored);
    socket.close(ignored);
  }

 private:
  void read_request() {
    http::async_read(
        ws_.next_layer(), http_buffer_, request_,
        [self = shared_from_this(), this](beast::error_code ec, std::size_t) {
          if (ec) return end();
          on_request();
        });
  }

  void on_request() {
    if (!websocket::is_upgrade(request_)) {
      return refuse(http::status::bad_request);
    }
    if (mode_ == HandshakeMode::refuse) {
      server_.count_refused();
      return refuse(http::status::service_unavailable);
    }
    if (mode_ == HandshakeMode::delay && delay_ > Duration::zero()) {
      delay_timer_.expires_after(delay_);
      delay_timer_.async_wait(
          [self = shared_from_this(), this](beast::error_code ec) {
            if (ec || ended_) return;
            accept();
          });
      return;
    }
    accept();
  }

  // Answers the upgrade with `status` and closes the connection.
  void refuse(http::status status) {
    response_.result(status);
    response_.version(request_.version());
    response_.set(http::field::server, "FaultyWsServer");
    response_.body() = "refused by the test script\n";
    response_.keep_alive(false);
    response_.prepare_payload();
    // Straight to the socket (or TLS stream): nothing else writes now.
    http::async_write(
        ws_.next_layer().next_layer(), response_,
        [self = shared_from_this(), this](beast::error_code, std::size_t) {
          beast::error_code ignored;
          beast::get_lowest_layer(ws_).socket().shutdown(
              tcp::socket::shutdown_send, ignored);
          end();
        });
  }

  void accept() {
    ws_.set_option(websocket::stream_base::timeout{
        kWsHandshakeTimeout, websocket::stream_base::none(), false});
    ws_.set_option(
        websocket::stream_base::decorator([](websocket::response_type& res) {
          res.set(http::field::server, "FaultyWsServer");
        }));
    // A pong frame answers a ping as well as a text echo does (KIS clients
    // do either).
    ws_.control_callback(
        [this](websocket::frame_type kind, beast::string_view) {
          if (kind == websocket::frame_type::pong) count_heartbeat();
        });
    on_upgrading();
    ws_.async_accept(request_,
                     [self = shared_from_this(), this](beast::error_code ec) {
                       if (ec) return end();
                       if (ended_) return;
                       on_open();
                       if (closing_) return start_close();
                       read_frame();
                     });
  }

  void start_close() {
    ws_.async_close(
        websocket::close_code::normal,
        [self = shared_from_this(), this](beast::error_code) { end(); });
  }

  void read_frame() {
    ws_.async_read(read_buffer_, [self = shared_from_this(), this](
                                     beast::error_code ec, std::size_t) {
      if (ec) return end();
      if (ws_.got_text()) {
        on_frame(beast::buffers_to_string(read_buffer_.data()));
      }
      read_buffer_.consume(read_buffer_.size());
      if (!ended_) read_frame();
    });
  }

  websocket::stream<CoalescingStream<Next>> ws_;
  HandshakeMode mode_ = HandshakeMode::accept;
  Duration delay_{0};
  beast::flat_buffer http_buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
  beast::flat_buffer read_buffer_;
};

}  // namespace internal

// --- Impl
// ---------------------------------------------------------------------

absl::Status FaultyWsServer::Impl::open() {
  if (options_.tls) {
    absl::StatusOr<internal::net::ssl::context> ssl =
        internal::make_tls_server_context(options_.cert_file, options_.key_file,
                                          "FaultyWsServer");
    if (!ssl.ok()) return ssl.status();
    ssl_.emplace(std::move(*ssl));
  }
  absl::StatusOr<std::uint16_t> port = server_thread_.listen_and_start(
      acceptor_, options_.port, "FaultyWsServer", [this] { do_accept(); });
  if (!port.ok()) return port.status();
  port_ = *port;
  return absl::OkStatus();
}

void FaultyWsServer::Impl::shutdown() {
  stopping_ = true;
  server_thread_.stop([this] {
    internal::beast::error_code ignored;
    acceptor_.close(ignored);
    stop_streams_io();
    for (const auto& session : std::vector(sessions_)) session->shut();
    sessions_.clear();
  });
}

void FaultyWsServer::Impl::do_accept() {
  acceptor_.async_accept(
      [this](internal::beast::error_code ec, internal::tcp::socket socket) {
        if (stopping_ || ec == internal::net::error::operation_aborted) return;
        if (!ec) on_accepted(std::move(socket));
        do_accept();
      });
}

void FaultyWsServer::Impl::on_accepted(internal::tcp::socket socket) {
  internal::beast::error_code ignored;
  socket.set_option(internal::tcp::no_delay(true), ignored);
  std::size_t index = 0;
  HandshakeMode mode;
  Duration delay;
  ConnectionLog* log = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    index = connections_accepted_++;
    received_.emplace_back();
    log = &logs_.emplace_back();
    log->accepted_at = SteadyClock::now();
    mode = handshake_mode_;
    delay = handshake_delay_;
    server_thread_.changed();
  }
  std::shared_ptr<internal::SessionBase> session;
  if (ssl_) {
    session = std::make_shared<internal::Session<
        internal::beast::ssl_stream<internal::beast::tcp_stream>>>(
        *this, index, *log, std::move(socket), *ssl_);
  } else {
    session = std::make_shared<internal::Session<internal::beast::tcp_stream>>(
        *this, index, *log, std::move(socket));
  }
  sessions_.push_back(session);
  session->start(mode, delay);
}

void FaultyWsServer::Impl::on_session_end(internal::SessionBase* session,
                                          bool was_open) {
  auto it = std::find_if(sessions_.begin(), sessions_.end(),
                         [&](const auto& s) { return s.get() == session; });
  // Keeps the session alive until this handler returns.
  std::shared_ptr<internal::SessionBase> keep;
  if (it != sessions_.end()) {
    keep = std::move(*it);
    sessions_.erase(it);
  }
  std::lock_guard<std::mutex> lock(mu_);
  logs_[session->index()].ended_at = SteadyClock::now();
  if (keeps_subscriptions_) session->keep_held_keys(kept_);
  if (was_open) --open_sessions_;
  server_thread_.changed();
}

std::vector<std::shared_ptr<internal::SessionBase>>
FaultyWsServer::Impl::live_sessions() const {
  std::vector<std::shared_ptr<internal::SessionBase>> out;
  for (const auto& s : sessions_) {
    if (s->selectable()) out.push_back(s);
  }
  return out;
}

std::vector<std::shared_ptr<internal::SessionBase>>
FaultyWsServer::Impl::account_holders(
    const internal::SessionBase* except) const {
  std::vector<std::shared_ptr<internal::SessionBase>> out;
  for (const auto& s : sessions_) {
    if (s.get() != except && s->holds_account()) out.push_back(s);
  }
  return out;
}

void FaultyWsServer::Impl::publish(const std::string& key,
                                   std::size_t records) {
  std::uint64_t& last = last_seq_[key];
  const std::uint64_t first = last + 1;
  last += records;
  frame_.clear();
  const std::int64_t now = internal::steady_ns();
  for (const auto& s : sessions_) {
    if (!s->selectable() || !s->holds(key)) continue;
    // Encoded once, for the first session that gets it.
    if (frame_.empty()) {
      internal::append_text_frame_with(frame_, [&](std::string& out) {
        dialect_->append_data(out, key, first, records, now);
      });
    }
    s->send_data_frame(key, frame_, first, records);
  }
}

std::size_t FaultyWsServer::Impl::records_for_next_frame(
    const internal::StreamJob& job) const {
  std::size_t n = records_pattern_[job.frames % records_pattern_.size()];
  n = std::clamp<std::size_t>(n, 1, dialect_->max_records_per_frame());
  if (!job.unlimited) n = std::min(n, job.remaining);
  return n;
}

void FaultyWsServer::Impl::start_stream(std::string key,
                                        double frames_per_second,
                                        std::size_t count) {
  if (auto it = streams_.find(key); it != streams_.end()) {
    it->second->stopped = true;
    it->second->timer.cancel();
    streams_.erase(it);
  }
  auto job = std::make_shared<internal::StreamJob>(server_thread_.ioc(), key);
  job->period = std::chrono::duration_cast<Duration>(
      std::chrono::duration<double>(1.0 / frames_per_second));
  if (job->period <= Duration::zero()) job->period = Duration(1);
  job->unlimited = count == 0;
  job->remaining = count;
  job->next_due = SteadyClock::now();
  streams_[key] = job;
  tick(job);
}

void FaultyWsServer::Impl::tick(
    const std::shared_ptr<internal::StreamJob>& job) {
  if (job->stopped) return;
  const SteadyTime now = SteadyClock::now();
  // Catches up with every frame due by now (timers wake late), but yields to
  // the other handlers after a while.
  for (int burst = 0; burst < 10'000 && job->next_due <= now &&
                      (job->unlimited || job->remaining > 0);
       ++burst) {
    const std::size_t records = records_for_next_frame(*job);
    publish(job->key, records);
    ++job->frames;
    Duration step = job->period * static_cast<Duration::rep>(records);
    if (rate_multiplier_ != 1.0) {
      step = std::chrono::duration_cast<Duration>(step / rate_multiplier_);
    }
    job->next_due += std::max(step, Duration(1));
    if (!job->unlimited) job->remaining -= records;
  }
  if (!job->unlimited && job->remaining == 0) {
    if (auto it = streams_.find(job->key);
        it != streams_.end() && it->second == job) {
      streams_.erase(it);
    }
    return;
  }
  arm(job);
}

void FaultyWsServer::Impl::arm(
    const std::shared_ptr<internal::StreamJob>& job) {
  const std::uint64_t generation = ++job->generation;
  job->timer.expires_at(job->next_due);
  job->timer.async_wait(
      [this, job, generation](internal::beast::error_code ec) {
        if (ec || stopping_ || generation != job->generation) return;
        tick(job);
      });
}

void FaultyWsServer::Impl::start_burst(double multiplier, Duration duration) {
  rate_multiplier_ = multiplier;
  const std::uint64_t generation = ++burst_generation_;
  // The streams' next frames come sooner at once, not after the old period.
  const SteadyTime now = SteadyClock::now();
  for (auto& [key, job] : streams_) {
    const auto step =
        std::chrono::duration_cast<Duration>(job->period / multiplier);
    if (job->next_due > now + step) {
      job->next_due = now + step;
      arm(job);
    }
  }
  burst_timer_.expires_after(duration);
  burst_timer_.async_wait([this, generation](internal::beast::error_code ec) {
    if (ec || stopping_ || generation != burst_generation_) return;
    rate_multiplier_ = 1.0;
  });
}

void FaultyWsServer::Impl::stop_streams_io() {
  for (auto& [key, job] : streams_) {
    job->stopped = true;
    job->timer.cancel();
  }
  streams_.clear();
  burst_timer_.cancel();
  rate_multiplier_ = 1.0;
}

void FaultyWsServer::Impl::record(std::size_t connection, std::string frame) {
  std::lock_guard<std::mutex> lock(mu_);
  received_[connection].push_back(std::move(frame));
  server_thread_.changed();
}

void FaultyWsServer::Impl::count_handshake() {
  std::lock_guard<std::mutex> lock(mu_);
  ++handshakes_completed_;
  ++open_sessions_;
  server_thread_.changed();
}

void FaultyWsServer::Impl::count_refused() {
  std::lock_guard<std::mutex> lock(mu_);
  ++handshakes_refused_;
  server_thread_.changed();
}

// --- FaultyWsServer ---------------------------------------------------------

absl::StatusOr<std::unique_ptr<FaultyWsServer>> FaultyWsServer::start(
    FaultyWsServerOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  if (absl::Status s = impl->open(); !s.ok()) return s;
  return std::unique_ptr<FaultyWsServer>(new FaultyWsServer(std::move(impl)));
}

FaultyWsServer::FaultyWsServer(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

FaultyWsServer::~FaultyWsServer() { impl_->shutdown(); }

std::uint16_t FaultyWsServer::port() const { return impl_->port_; }

std::string FaultyWsServer::url() const {
  return impl_->options_.tls
             ? absl::StrCat("wss://localhost:", impl_->port_, "/")
             : absl::StrCat("ws://127.0.0.1:", impl_->port_, "/");
}

void FaultyWsServer::set_handshake(HandshakeMode mode, Duration delay) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->handshake_mode_ = mode;
  impl_->handshake_delay_ = delay;
}

void FaultyWsServer::set_accepted_secret(std::string secret) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->secrets_.clear();
  impl_->any_secret_ = secret.empty();
  if (!secret.empty()) impl_->secrets_[std::move(secret)] = SteadyTime::max();
}

void FaultyWsServer::add_accepted_secret(std::string secret,
                                         SteadyTime expires_at) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->any_secret_ = false;
  impl_->secrets_[std::move(secret)] = expires_at;
}

void FaultyWsServer::revoke_secrets() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu_);
    impl_->any_secret_ = false;
    impl_->secrets_.clear();
  }
  impl_->server_thread_.run_on_io([&] {
    for (const auto& s : impl_->account_holders(nullptr)) s->expire();
  });
}

void FaultyWsServer::set_session_conflict(SessionConflict conflict) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->conflict_ = conflict;
}

void FaultyWsServer::occupy_account(Duration duration) {
  bool kick = false;
  {
    std::lock_guard<std::mutex> lock(impl_->mu_);
    impl_->occupied_until_ = SteadyClock::now() + duration;
    kick = impl_->conflict_ == SessionConflict::kick_incumbent;
  }
  if (!kick) return;
  impl_->server_thread_.run_on_io([&] {
    for (const auto& s : impl_->account_holders(nullptr)) s->kick();
  });
}

void FaultyWsServer::set_max_missed_pings(std::size_t n) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->max_missed_pings_ = n;
}

void FaultyWsServer::set_records_per_frame(std::vector<std::size_t> pattern) {
  if (pattern.empty()) pattern = {1};
  impl_->server_thread_.run_on_io(
      [&] { impl_->records_pattern_ = std::move(pattern); });
}

void FaultyWsServer::set_answer_logins(bool answer) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->answer_logins_ = answer;
}

void FaultyWsServer::set_keeps_subscriptions(bool keep, bool ghosts) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->keeps_subscriptions_ = keep;
  impl_->ghost_subscriptions_ = keep && ghosts;
  if (!keep) impl_->kept_.clear();
}

void FaultyWsServer::set_max_subscriptions(std::size_t n) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->max_subscriptions_ = n;
}

void FaultyWsServer::set_reject(std::string key, std::string reason) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->rejects_[std::move(key)] = std::move(reason);
}

void FaultyWsServer::set_answer_subscriptions(bool answer) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->answer_subscriptions_ = answer;
}

void FaultyWsServer::set_app_ping(Duration interval) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu_);
    impl_->app_ping_ = interval;
  }
  impl_->server_thread_.run_on_io([&] {
    for (const auto& s : impl_->live_sessions()) s->restart_pings(interval);
  });
}

void FaultyWsServer::send_text(std::string frame) {
  impl_->server_thread_.run_on_io([&] {
    for (const auto& s : impl_->live_sessions()) s->send(frame);
  });
}

void FaultyWsServer::stream(std::string key, double frames_per_second,
                            std::size_t count) {
  assert(frames_per_second > 0 && "stream(): frames_per_second must be > 0");
  impl_->server_thread_.run_on_io(
      [&] { impl_->start_stream(std::move(key), frames_per_second, count); });
}

void FaultyWsServer::flood(std::string key, std::size_t count) {
  impl_->server_thread_.run_on_io([&] {
    std::uint64_t& last = impl_->last_seq_[key];
    const std::uint64_t first = last + 1;
    last += count;
    for (const auto& s : impl_->live_sessions()) {
      if (s->holds(key)) s->add_flood(key, first, count);
    }
  });
}

void FaultyWsServer::send_malformed(std::size_t count) {
  impl_->server_thread_.run_on_io([&] {
    for (const auto& s : impl_->live_sessions()) s->send_malformed(count);
  });
}

void FaultyWsServer::close_all() {
  impl_->server_thread_.run_on_io([&] {
    for (const auto& s : std::vector(impl_->sessions_)) s->close_ws();
  });
}

void FaultyWsServer::reset_all() {
  impl_->server_thread_.run_on_io([&] {
    for (const auto& s : std::vector(impl_->sessions_)) s->reset();
  });
}

void FaultyWsServer::stall_all(Duration resume_after) {
  impl_->server_thread_.run_on_io([&] {
    std::vector<std::pair<std::weak_ptr<internal::SessionBase>, std::uint64_t>>
        stalled;
    for (const auto& s : impl_->sessions_) stalled.emplace_back(s, s->stall());
    if (resume_after <= Duration::zero()) return;
    auto timer = std::make_shared<internal::net::steady_timer>(
        impl_->server_thread_.ioc());
    timer->expires_after(resume_after);
    timer->async_wait([impl = impl_.get(), timer, stalled = std::move(stalled)](
                          internal::beast::error_code ec) {
      if (ec || impl->stopping_) return;
      for (const auto& [weak, generation] : stalled) {
        if (auto s = weak.lock()) s->resume(generation);
      }
    });
  });
}

void FaultyWsServer::burst(double multiplier, Duration duration) {
  assert(multiplier > 0 && "burst(): multiplier must be > 0");
  impl_->server_thread_.run_on_io(
      [&] { impl_->start_burst(multiplier, duration); });
}

void FaultyWsServer::lose_subscription(std::string key) {
  impl_->server_thread_.run_on_io([&] {
    for (const auto& s : impl_->sessions_) s->lose(key);
  });
}

void FaultyWsServer::mute(std::string key) {
  impl_->server_thread_.run_on_io([&] {
    for (const auto& s : impl_->sessions_) s->mute(key);
  });
}

void FaultyWsServer::stop_streams() {
  impl_->server_thread_.run_on_io([&] {
    impl_->stop_streams_io();
    for (const auto& s : impl_->sessions_) s->clear_floods();
  });
}

std::size_t FaultyWsServer::connections_accepted() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->connections_accepted_;
}

std::size_t FaultyWsServer::handshakes_completed() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->handshakes_completed_;
}

std::size_t FaultyWsServer::handshakes_refused() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->handshakes_refused_;
}

std::size_t FaultyWsServer::open_sessions() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->open_sessions_;
}

std::vector<std::string> FaultyWsServer::received(
    std::size_t connection) const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  if (connection >= impl_->received_.size()) return {};
  return impl_->received_[connection];
}

std::size_t FaultyWsServer::count_received(std::string_view prefix) const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  std::size_t n = 0;
  for (const auto& frames : impl_->received_) {
    for (const auto& f : frames) {
      if (std::string_view(f).substr(0, prefix.size()) == prefix) ++n;
    }
  }
  return n;
}

ConnectionLog FaultyWsServer::connection_log(std::size_t connection) const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  if (connection >= impl_->logs_.size()) return {};
  return impl_->logs_[connection];
}

std::vector<ConnectionLog> FaultyWsServer::connection_logs() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return {impl_->logs_.begin(), impl_->logs_.end()};
}

std::uint64_t FaultyWsServer::published(std::string_view key) const {
  std::uint64_t last = 0;
  impl_->server_thread_.run_on_io([&] {
    auto it = impl_->last_seq_.find(key);
    if (it != impl_->last_seq_.end()) last = it->second;
  });
  return last;
}

bool FaultyWsServer::wait_for(const std::function<bool()>& condition,
                              Duration timeout) const {
  return impl_->server_thread_.wait_for(condition, timeout);
}

// --- make_test_certificate
// ----------------------------------------------------

absl::StatusOr<TestCertificate> make_test_certificate(std::string dir) {
  if (dir.empty() || dir.find('\'') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "make_test_certificate: dir must be non-empty and hold no single "
        "quote, got \"",
        dir, "\""));
  }
  std::error_code fs_error;
  std::filesystem::create_directories(dir, fs_error);
  if (fs_error) {
    return absl::UnavailableError(
        absl::StrCat("make_test_certificate: cannot create \"", dir,
                     "\": ", fs_error.message()));
  }
  TestCertificate cert{dir + "/cert.pem", dir + "/key.pem"};
  const std::string command = absl::StrCat(
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout '", cert.key_file,
      "' -out '", cert.cert_file,
      "' -days 1 -subj /CN=localhost"
      " -addext subjectAltName=DNS:localhost,IP:127.0.0.1 >/dev/null 2>&1");
  const int rc = std::system(command.c_str());
  if (rc != 0 || !std::filesystem::exists(cert.cert_file, fs_error) ||
      !std::filesystem::exists(cert.key_file, fs_error)) {
    return absl::UnavailableError(
        absl::StrCat("make_test_certificate: `openssl req` failed (status ", rc,
                     "); is the openssl command installed?"));
  }
  return cert;
}

}  // namespace feedkit::testing
