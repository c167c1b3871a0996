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
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>  // std::mutex, not absl::Mutex: Debian builds Abseil without TSan hooks
#include <optional>
#include <set>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "feedkit/testing/test_certificate.h"

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
// The destructor waits this long for the server thread to finish its work
// after every socket is closed, then stops the io_context.
constexpr auto kShutdownGrace = std::chrono::milliseconds(500);

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             SteadyClock::now().time_since_epoch())
      .count();
}

// Appends one unmasked, final WebSocket text frame (server → client).
void append_text_frame_header(std::string& out, std::size_t n) {
  out.push_back(static_cast<char>(0x81));
  if (n < 126) {
    out.push_back(static_cast<char>(n));
  } else if (n <= 0xFFFF) {
    out.push_back(static_cast<char>(126));
    out.push_back(static_cast<char>((n >> 8) & 0xFF));
    out.push_back(static_cast<char>(n & 0xFF));
  } else {
    out.push_back(static_cast<char>(127));
    for (int shift = 56; shift >= 0; shift -= 8) {
      out.push_back(
          static_cast<char>((static_cast<std::uint64_t>(n) >> shift) & 0xFF));
    }
  }
}

void append_text_frame(std::string& out, std::string_view payload) {
  append_text_frame_header(out, payload.size());
  out.append(payload);
}

// Appends the frame "DATA <key> <seq> t=<sent_ns>" without a temporary.
void append_data_frame(std::string& out, std::string_view key,
                       std::uint64_t seq, std::int64_t sent_ns) {
  char seq_buf[24];
  char ns_buf[24];
  const std::size_t seq_len = static_cast<std::size_t>(
      std::to_chars(seq_buf, seq_buf + sizeof(seq_buf), seq).ptr - seq_buf);
  const std::size_t ns_len = static_cast<std::size_t>(
      std::to_chars(ns_buf, ns_buf + sizeof(ns_buf), sent_ns).ptr - ns_buf);
  append_text_frame_header(out, 5 + key.size() + 1 + seq_len + 3 + ns_len);
  out.append("DATA ");
  out.append(key);
  out.push_back(' ');
  out.append(seq_buf, seq_len);
  out.append(" t=");
  out.append(ns_buf, ns_len);
}

// The frames send_malformed() cycles through; LineProtocol classifies each
// as malformed.
constexpr std::string_view kMalformed[] = {
    "DATA A not-a-number t=0",  // DATA with a bad sequence number
    "GARBAGE",                  // unknown verb
    "",                         // empty frame
    "ACK",                      // a reply without its key
    "DATA",                     // DATA without fields
};

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
  void set_discard(bool discard) {
    discard_ = discard;
    if (discard) out_.clear();
  }

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

// A stream() in progress: publishes DATA frames for `key` at a fixed rate.
struct StreamJob {
  StreamJob(net::io_context& ioc, std::string k)
      : key(std::move(k)), timer(ioc) {}
  std::string key;
  Duration period{0};
  bool unlimited = true;
  std::size_t remaining = 0;
  SteadyTime next_due;
  net::steady_timer timer;
  bool stopped = false;
};

}  // namespace internal

// Everything below runs on the server thread unless it says it locks `mu_`.
class FaultyWsServer::Impl {
 public:
  explicit Impl(FaultyWsServerOptions options) : options_(std::move(options)) {}

  absl::Status open();
  void run_thread();
  void shutdown();  // from the destructor

  // Runs `fn` on the server thread and waits for it.
  void run_on_io(const std::function<void()>& fn);

  // --- Server thread ---------------------------------------------------------
  void do_accept();
  void on_accepted(internal::tcp::socket socket);
  void on_session_end(internal::SessionBase* session, bool was_open);
  void publish(const std::string& key);
  void start_stream(std::string key, double frames_per_second,
                    std::size_t count);
  void tick(const std::shared_ptr<internal::StreamJob>& job);
  void stop_streams_io();
  std::vector<std::shared_ptr<internal::SessionBase>> live_sessions() const;

  // --- Locks mu_ -------------------------------------------------------------
  void changed() {  // with mu_ held
    ++version_;
    cv_.notify_all();
  }
  void record(std::size_t connection, std::string frame);
  void count_handshake();
  void count_refused();

  FaultyWsServerOptions options_;
  std::uint16_t port_ = 0;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::uint64_t version_ = 0;
  bool thread_done_ = false;
  // Script.
  HandshakeMode handshake_mode_ = HandshakeMode::accept;
  Duration handshake_delay_{0};
  std::string accepted_secret_;
  bool keeps_subscriptions_ = false;
  std::size_t max_subscriptions_ = 0;
  std::map<std::string, std::string> rejects_;
  bool answer_subscriptions_ = true;
  bool answer_logins_ = true;
  Duration app_ping_{0};
  std::map<std::string, std::set<std::string>> kept_;  // secret → keys held
  // Observation.
  std::size_t connections_accepted_ = 0;
  std::size_t handshakes_completed_ = 0;
  std::size_t handshakes_refused_ = 0;
  std::size_t open_sessions_ = 0;
  std::vector<std::vector<std::string>> received_;

  std::atomic<bool> stopping_{false};

  // Declared before the io_context so that they outlive the handlers it
  // destroys.
  std::optional<internal::net::ssl::context> ssl_;
  internal::net::io_context ioc_{1};
  std::optional<internal::net::executor_work_guard<
      internal::net::io_context::executor_type>>
      work_;
  internal::tcp::acceptor acceptor_{ioc_};
  std::vector<std::shared_ptr<internal::SessionBase>> sessions_;
  std::map<std::string, std::shared_ptr<internal::StreamJob>> streams_;
  std::map<std::string, std::uint64_t> last_seq_;  // per key, server-wide
  std::thread thread_;
};

namespace internal {

// One accepted TCP connection: TLS and WebSocket handshakes as scripted, then
// LineProtocol. Lives on the server thread; kept alive by its handlers and by
// Impl::sessions_ until it ends.
class SessionBase : public std::enable_shared_from_this<SessionBase> {
 public:
  using Impl = FaultyWsServer::Impl;

  SessionBase(Impl& server, std::size_t index)
      : server_(server),
        index_(index),
        ping_timer_(server.ioc_),
        delay_timer_(server.ioc_) {}
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
  bool holds(const std::string& key) const {
    return subs_.count(key) != 0 && muted_.count(key) == 0;
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

  void send_data(const std::string& key, std::uint64_t seq,
                 std::int64_t sent_ns) {
    if (!can_send() || buffered() > kStreamMaxBuffered) return;
    internal::append_data_frame(open_ ? out() : pre_open_, key, seq, sent_ns);
    if (open_) flush();
  }

  void add_flood(const std::string& key, std::uint64_t first,
                 std::size_t count) {
    if (!can_send() || count == 0) return;
    floods_.push_back({key, first, first + count});
    pump();
  }
  void clear_floods() { floods_.clear(); }

  void stall() {
    if (ended_) return;
    stalled_ = true;
    floods_.clear();
    pre_open_.clear();
    stop_pings();
    set_discard(true);
  }

  void restart_pings(Duration interval) {
    stop_pings();
    ping_interval_ = interval;
    if (interval > Duration::zero() && open_ && can_send()) {
      schedule_ping(ping_generation_);
    }
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
    while (!floods_.empty() && buffered() < kFloodHighWater) {
      Flood& f = floods_.front();
      for (int i = 0; i < 256 && f.next != f.end; ++i) {
        internal::append_data_frame(out(), f.key, f.next++, steady_ns());
      }
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

  void stop_pings() {
    ++ping_generation_;
    ping_timer_.cancel();
  }

  void schedule_ping(std::uint64_t generation) {
    ping_timer_.expires_after(ping_interval_);
    ping_timer_.async_wait(
        [self = shared_from_this(), this, generation](beast::error_code ec) {
          if (ec || generation != ping_generation_ || !can_send()) return;
          send(absl::StrCat("PING ", ++pings_sent_));
          schedule_ping(generation);
        });
  }

  std::string secret_;           // of the last accepted LOGIN
  std::set<std::string> subs_;   // keys this connection holds
  std::set<std::string> muted_;  // held keys it never sends (mute())
  std::deque<Flood> floods_;
  std::string pre_open_;  // frames queued before the upgrade completed
  Duration ping_interval_{0};
  std::uint64_t ping_generation_ = 0;
  std::uint64_t pings_sent_ = 0;
};

void SessionBase::on_frame(std::string frame) {
  const std::string_view f = frame;
  std::string reply;
  if (f == "LOGIN" || f.substr(0, 6) == "LOGIN ") {
    const std::string secret(f.size() > 6 ? f.substr(6) : std::string_view());
    bool answer = true;
    bool ok = false;
    {
      std::lock_guard<std::mutex> lock(server_.mu_);
      answer = server_.answer_logins_;
      ok = server_.accepted_secret_.empty() ||
           server_.accepted_secret_ == secret;
    }
    if (answer) {
      if (ok) secret_ = secret;
      reply = ok ? "LOGIN_OK" : "AUTH_FAIL";
    }
  } else if (f.substr(0, 4) == "SUB " && f.size() > 4) {
    const std::string key(f.substr(4));
    std::lock_guard<std::mutex> lock(server_.mu_);
    if (!server_.answer_subscriptions_) {
      // No answer, no state change: the client's confirmation times out.
    } else if (auto it = server_.rejects_.find(key);
               it != server_.rejects_.end()) {
      reply = absl::StrCat("REJECT ", key, " ", it->second);
    } else if (subs_.count(key) != 0 ||
               (server_.keeps_subscriptions_ &&
                server_.kept_[secret_].count(key) != 0)) {
      subs_.insert(key);
      reply = absl::StrCat("ALREADY ", key);
    } else if (server_.max_subscriptions_ != 0 &&
               subs_.size() >= server_.max_subscriptions_) {
      reply = absl::StrCat("MAXSUB ", key);
    } else {
      subs_.insert(key);
      if (server_.keeps_subscriptions_) server_.kept_[secret_].insert(key);
      reply = absl::StrCat("ACK ", key);
    }
  } else if (f.substr(0, 6) == "UNSUB " && f.size() > 6) {
    const std::string key(f.substr(6));
    subs_.erase(key);
    {
      std::lock_guard<std::mutex> lock(server_.mu_);
      if (server_.keeps_subscriptions_) {
        auto it = server_.kept_.find(secret_);
        if (it != server_.kept_.end()) it->second.erase(key);
      }
    }
    reply = absl::StrCat("UNACK ", key);
  }
  // Recorded after the subscription state changed and before the answer is
  // sent, so a test that saw the frame recorded sees its effect.
  server_.record(index_, std::move(frame));
  if (!reply.empty()) send(reply);
}

template <class Next>
class Session final : public SessionBase {
 public:
  static constexpr bool kTls = !std::is_same_v<Next, beast::tcp_stream>;

  template <class... Args>
  Session(Impl& server, std::size_t index, Args&&... args)
      : SessionBase(server, index), ws_(std::forward<Args>(args)...) {}

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
  namespace net = internal::net;
  internal::beast::error_code ec;
  if (options_.tls) {
    ssl_.emplace(net::ssl::context::tls_server);
    ssl_->use_certificate_chain_file(options_.cert_file, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("FaultyWsServer: cannot use cert_file \"",
                       options_.cert_file, "\": ", ec.message()));
    }
    ssl_->use_private_key_file(options_.key_file, net::ssl::context::pem, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("FaultyWsServer: cannot use key_file \"",
                       options_.key_file, "\": ", ec.message()));
    }
  }
  const internal::tcp::endpoint endpoint(net::ip::make_address_v4("127.0.0.1"),
                                         0);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat(
        "FaultyWsServer: cannot listen on 127.0.0.1: ", ec.message()));
  }
  port_ = acceptor_.local_endpoint().port();
  work_.emplace(ioc_.get_executor());
  do_accept();
  thread_ = std::thread([this] { run_thread(); });
  return absl::OkStatus();
}

void FaultyWsServer::Impl::run_thread() {
  ioc_.run();
  std::lock_guard<std::mutex> lock(mu_);
  thread_done_ = true;
  cv_.notify_all();
}

void FaultyWsServer::Impl::shutdown() {
  stopping_ = true;
  internal::net::post(ioc_, [this] {
    internal::beast::error_code ignored;
    acceptor_.close(ignored);
    stop_streams_io();
    for (const auto& session : std::vector(sessions_)) session->shut();
    sessions_.clear();
  });
  work_.reset();
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, internal::kShutdownGrace, [&] { return thread_done_; });
  }
  ioc_.stop();  // a Beast timer may still be pending: do not wait for it
  if (thread_.joinable()) thread_.join();
}

void FaultyWsServer::Impl::run_on_io(const std::function<void()>& fn) {
  if (std::this_thread::get_id() == thread_.get_id()) return fn();
  std::promise<void> done;
  std::future<void> finished = done.get_future();
  internal::net::post(ioc_, [&] {
    fn();
    done.set_value();
  });
  finished.wait();
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
  {
    std::lock_guard<std::mutex> lock(mu_);
    index = connections_accepted_++;
    received_.emplace_back();
    mode = handshake_mode_;
    delay = handshake_delay_;
    changed();
  }
  std::shared_ptr<internal::SessionBase> session;
  if (ssl_) {
    session = std::make_shared<internal::Session<
        internal::beast::ssl_stream<internal::beast::tcp_stream>>>(
        *this, index, std::move(socket), *ssl_);
  } else {
    session = std::make_shared<internal::Session<internal::beast::tcp_stream>>(
        *this, index, std::move(socket));
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
  if (was_open) {
    std::lock_guard<std::mutex> lock(mu_);
    --open_sessions_;
    changed();
  }
}

std::vector<std::shared_ptr<internal::SessionBase>>
FaultyWsServer::Impl::live_sessions() const {
  std::vector<std::shared_ptr<internal::SessionBase>> out;
  for (const auto& s : sessions_) {
    if (s->selectable()) out.push_back(s);
  }
  return out;
}

void FaultyWsServer::Impl::publish(const std::string& key) {
  const std::uint64_t seq = ++last_seq_[key];
  const std::int64_t now = internal::steady_ns();
  for (const auto& s : sessions_) {
    if (s->selectable() && s->holds(key)) s->send_data(key, seq, now);
  }
}

void FaultyWsServer::Impl::start_stream(std::string key,
                                        double frames_per_second,
                                        std::size_t count) {
  if (auto it = streams_.find(key); it != streams_.end()) {
    it->second->stopped = true;
    it->second->timer.cancel();
    streams_.erase(it);
  }
  auto job = std::make_shared<internal::StreamJob>(ioc_, key);
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
    publish(job->key);
    job->next_due += job->period;
    if (!job->unlimited) --job->remaining;
  }
  if (!job->unlimited && job->remaining == 0) {
    if (auto it = streams_.find(job->key);
        it != streams_.end() && it->second == job) {
      streams_.erase(it);
    }
    return;
  }
  job->timer.expires_at(job->next_due);
  job->timer.async_wait([this, job](internal::beast::error_code ec) {
    if (ec || stopping_) return;
    tick(job);
  });
}

void FaultyWsServer::Impl::stop_streams_io() {
  for (auto& [key, job] : streams_) {
    job->stopped = true;
    job->timer.cancel();
  }
  streams_.clear();
}

void FaultyWsServer::Impl::record(std::size_t connection, std::string frame) {
  std::lock_guard<std::mutex> lock(mu_);
  received_[connection].push_back(std::move(frame));
  changed();
}

void FaultyWsServer::Impl::count_handshake() {
  std::lock_guard<std::mutex> lock(mu_);
  ++handshakes_completed_;
  ++open_sessions_;
  changed();
}

void FaultyWsServer::Impl::count_refused() {
  std::lock_guard<std::mutex> lock(mu_);
  ++handshakes_refused_;
  changed();
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
  impl_->accepted_secret_ = std::move(secret);
}

void FaultyWsServer::set_answer_logins(bool answer) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->answer_logins_ = answer;
}

void FaultyWsServer::set_keeps_subscriptions(bool keep) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->keeps_subscriptions_ = keep;
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
  impl_->run_on_io([&] {
    for (const auto& s : impl_->live_sessions()) s->restart_pings(interval);
  });
}

void FaultyWsServer::send_text(std::string frame) {
  impl_->run_on_io([&] {
    for (const auto& s : impl_->live_sessions()) s->send(frame);
  });
}

void FaultyWsServer::stream(std::string key, double frames_per_second,
                            std::size_t count) {
  assert(frames_per_second > 0 && "stream(): frames_per_second must be > 0");
  impl_->run_on_io(
      [&] { impl_->start_stream(std::move(key), frames_per_second, count); });
}

void FaultyWsServer::flood(std::string key, std::size_t count) {
  impl_->run_on_io([&] {
    std::uint64_t& last = impl_->last_seq_[key];
    const std::uint64_t first = last + 1;
    last += count;
    for (const auto& s : impl_->live_sessions()) {
      if (s->holds(key)) s->add_flood(key, first, count);
    }
  });
}

void FaultyWsServer::send_malformed(std::size_t count) {
  impl_->run_on_io([&] {
    for (const auto& s : impl_->live_sessions()) {
      for (std::size_t i = 0; i < count; ++i) {
        s->send(internal::kMalformed[i % std::size(internal::kMalformed)]);
      }
    }
  });
}

void FaultyWsServer::close_all() {
  impl_->run_on_io([&] {
    for (const auto& s : std::vector(impl_->sessions_)) s->close_ws();
  });
}

void FaultyWsServer::reset_all() {
  impl_->run_on_io([&] {
    for (const auto& s : std::vector(impl_->sessions_)) s->reset();
  });
}

void FaultyWsServer::stall_all() {
  impl_->run_on_io([&] {
    for (const auto& s : impl_->sessions_) s->stall();
  });
}

void FaultyWsServer::lose_subscription(std::string key) {
  impl_->run_on_io([&] {
    for (const auto& s : impl_->sessions_) s->lose(key);
  });
}

void FaultyWsServer::mute(std::string key) {
  impl_->run_on_io([&] {
    for (const auto& s : impl_->sessions_) s->mute(key);
  });
}

void FaultyWsServer::stop_streams() {
  impl_->run_on_io([&] {
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

bool FaultyWsServer::wait_for(const std::function<bool()>& condition,
                              Duration timeout) const {
  const SteadyTime deadline = SteadyClock::now() + timeout;
  while (true) {
    std::uint64_t seen = 0;
    {
      std::lock_guard<std::mutex> lock(impl_->mu_);
      seen = impl_->version_;
    }
    // Evaluated without the lock: the condition calls the getters above.
    if (condition()) return true;
    const SteadyTime now = SteadyClock::now();
    if (now >= deadline) return false;
    const Duration wait =
        std::min<Duration>(deadline - now, std::chrono::milliseconds(10));
    std::unique_lock<std::mutex> lock(impl_->mu_);
    impl_->cv_.wait_for(lock, wait, [&] { return impl_->version_ != seen; });
  }
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
