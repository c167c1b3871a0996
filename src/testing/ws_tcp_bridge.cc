// SPDX-License-Identifier: Apache-2.0
#include "feedkit/testing/ws_tcp_bridge.h"

#include <algorithm>
#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <mutex>  // std::mutex, not absl::Mutex: Debian builds Abseil without TSan hooks
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "internal/server_thread.h"

namespace feedkit::testing {
namespace internal_bridge {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
namespace websocket = boost::beast::websocket;
using tcp = boost::asio::ip::tcp;

// Time limit on the TLS handshake, the HTTP request and the WebSocket
// accept and close handshakes.
constexpr auto kHandshakeTimeout = std::chrono::seconds(10);
// The most read from the target at once: one binary message.
constexpr std::size_t kChunkBytes = 64 * 1024;

// Returns true if the comma-separated `offered` list holds `protocol`.
bool offers(beast::string_view offered, std::string_view protocol) {
  for (absl::string_view item :
       absl::StrSplit(absl::string_view(offered.data(), offered.size()), ',')) {
    const absl::string_view name = absl::StripAsciiWhitespace(item);
    if (std::string_view(name.data(), name.size()) == protocol) return true;
  }
  return false;
}

// Returns true if `authorization` is "Bearer <token>" (scheme in any case).
bool has_bearer(beast::string_view authorization, const std::string& token) {
  const absl::string_view value(authorization.data(), authorization.size());
  constexpr absl::string_view kScheme = "bearer ";
  return value.size() == kScheme.size() + token.size() &&
         absl::StartsWithIgnoreCase(value, kScheme) &&
         value.substr(kScheme.size()) == token;
}

class SessionBase;

}  // namespace internal_bridge

// Everything below runs on the bridge thread unless it says it locks `mu_`.
class WsTcpBridge::Impl {
 public:
  explicit Impl(WsTcpBridgeOptions options) : options_(std::move(options)) {}

  absl::Status open();
  void shutdown();  // from the destructor
  void do_accept();
  void on_accepted(internal_bridge::tcp::socket socket);
  void on_session_end(internal_bridge::SessionBase* session);

  const WsTcpBridgeOptions options_;
  std::uint16_t port_ = 0;
  internal_bridge::tcp::endpoint target_;

  mutable std::mutex mu_;  // guards the observed state below
  std::string required_bearer_;
  std::size_t connections_accepted_ = 0;
  std::size_t upgrades_completed_ = 0;
  std::size_t upgrades_unauthorized_ = 0;
  std::size_t target_failures_ = 0;
  std::size_t open_sessions_ = 0;
  std::uint64_t bytes_to_target_ = 0;
  std::uint64_t bytes_to_client_ = 0;
  std::vector<UpgradeRequest> requests_;

  bool stopping_ = false;  // bridge thread only

  // Declared before the io_context so that they outlive the handlers it
  // destroys.
  std::optional<internal_bridge::net::ssl::context> ssl_;
  internal::ServerThread server_thread_{mu_};
  internal_bridge::tcp::acceptor acceptor_{server_thread_.ioc()};
  std::vector<std::shared_ptr<internal_bridge::SessionBase>> sessions_;
};

namespace internal_bridge {

class SessionBase : public std::enable_shared_from_this<SessionBase> {
 public:
  virtual ~SessionBase() = default;
  virtual void start() = 0;
  virtual void close() = 0;  // close frame to the client, FIN to the target
  virtual void shut() = 0;   // closes every socket at once
};

// One client connection: handshakes, then the relay. Lives on the bridge
// thread; kept alive by its handlers and by Impl::sessions_ until it ends.
template <class Next>
class Session final : public SessionBase {
 public:
  using Impl = WsTcpBridge::Impl;
  static constexpr bool kTls = !std::is_same_v<Next, beast::tcp_stream>;

  template <class... Args>
  Session(Impl& bridge, Args&&... args)
      : bridge_(bridge),
        ws_(std::forward<Args>(args)...),
        target_(bridge.server_thread_.ioc()) {}

  void start() override {
    beast::get_lowest_layer(ws_).expires_after(kHandshakeTimeout);
    if constexpr (kTls) {
      ws_.next_layer().async_handshake(net::ssl::stream_base::server,
                                       [self = self()](beast::error_code ec) {
                                         if (ec) return self->end();
                                         self->read_request();
                                       });
    } else {
      read_request();
    }
  }

  void close() override {
    if (ended_ || closing_) return;
    if (!upgraded_) return end();
    closing_ = true;
    // Beast allows no close before its accept completed, nor while a write
    // is pending: the accept's or the write's handler starts it then.
    if (open_ && !ws_writing_) start_close();
  }

  void shut() override { end(); }

 private:
  std::shared_ptr<Session> self() {
    return std::static_pointer_cast<Session>(shared_from_this());
  }

  void read_request() {
    http::async_read(ws_.next_layer(), http_buffer_, request_,
                     [self = self()](beast::error_code ec, std::size_t) {
                       if (ec) return self->end();
                       self->on_request();
                     });
  }

  void on_request() {
    UpgradeRequest recorded;
    recorded.target = std::string(request_.target());
    for (const auto& field : request_) {
      recorded.headers.emplace_back(std::string(field.name_string()),
                                    std::string(field.value()));
    }
    std::string bearer;
    bridge_.server_thread_.update([&] {
      bridge_.requests_.push_back(std::move(recorded));
      bearer = bridge_.required_bearer_;
    });
    if (!websocket::is_upgrade(request_)) {
      return refuse(http::status::bad_request, "not a WebSocket upgrade\n");
    }
    if (!bearer.empty() &&
        !has_bearer(request_[http::field::authorization], bearer)) {
      bridge_.server_thread_.update([&] { ++bridge_.upgrades_unauthorized_; });
      return refuse(http::status::unauthorized, "bearer token required\n");
    }
    target_.async_connect(
        bridge_.target_, [self = self()](beast::error_code ec) {
          if (self->ended_) return;
          if (ec) {
            self->bridge_.server_thread_.update(
                [&] { ++self->bridge_.target_failures_; });
            return self->refuse(http::status::bad_gateway, "target refused\n");
          }
          self->accept();
        });
  }

  // Answers the upgrade with `status` and closes the connection.
  void refuse(http::status status, const char* body) {
    response_.result(status);
    response_.version(request_.version());
    response_.set(http::field::server, "feedkit WsTcpBridge");
    if (status == http::status::unauthorized) {
      response_.set(http::field::www_authenticate, "Bearer");
    }
    response_.body() = body;
    response_.keep_alive(false);
    response_.prepare_payload();
    http::async_write(ws_.next_layer(), response_,
                      [self = self()](beast::error_code, std::size_t) {
                        beast::error_code ignored;
                        beast::get_lowest_layer(self->ws_).socket().shutdown(
                            tcp::socket::shutdown_send, ignored);
                        self->end();
                      });
  }

  void accept() {
    beast::error_code ignored;
    target_.set_option(tcp::no_delay(true), ignored);
    beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true),
                                                     ignored);
    beast::get_lowest_layer(ws_).expires_never();  // Beast's own timeouts now
    ws_.set_option(websocket::stream_base::timeout{
        kHandshakeTimeout, websocket::stream_base::none(), false});
    const bool mqtt =
        offers(request_[http::field::sec_websocket_protocol], "mqtt");
    ws_.set_option(websocket::stream_base::decorator(
        [mqtt](websocket::response_type& res) {
          res.set(http::field::server, "feedkit WsTcpBridge");
          if (mqtt) res.set(http::field::sec_websocket_protocol, "mqtt");
        }));
    ws_.binary(true);
    ws_.auto_fragment(false);  // one chunk from the target, one frame
    // Counted before the 101 is written, so a client that saw it finds the
    // counters updated.
    upgraded_ = true;
    bridge_.server_thread_.update([&] {
      ++bridge_.upgrades_completed_;
      ++bridge_.open_sessions_;
    });
    ws_.async_accept(request_, [self = self()](beast::error_code ec) {
      if (ec || self->ended_) return self->end();
      self->open_ = true;
      if (self->closing_) return self->start_close();
      self->read_client();
      self->read_target();
    });
  }

  // Client → target: one WebSocket message, then one TCP write.
  void read_client() {
    ws_.async_read(ws_buffer_,
                   [self = self()](beast::error_code ec, std::size_t) {
                     self->on_client_message(ec);
                   });
  }

  void on_client_message(beast::error_code ec) {
    if (ec || ended_) return end();  // the client closed or failed
    net::async_write(target_, ws_buffer_.data(),
                     [self = self()](beast::error_code ec, std::size_t n) {
                       self->on_target_written(ec, n);
                     });
  }

  void on_target_written(beast::error_code ec, std::size_t n) {
    if (ec || ended_) return end();
    bridge_.server_thread_.update([&] { bridge_.bytes_to_target_ += n; });
    ws_buffer_.consume(n);
    read_client();
  }

  // Target → client: one TCP read, then one binary message.
  void read_target() {
    target_.async_read_some(
        net::buffer(tcp_buffer_),
        [self = self()](beast::error_code ec, std::size_t n) {
          self->on_target_read(ec, n);
        });
  }

  void on_target_read(beast::error_code ec, std::size_t n) {
    if (ended_ || closing_) return;
    if (ec) {  // the target closed or failed: so does the session
      closing_ = true;
      return start_close();
    }
    ws_writing_ = true;
    ws_.async_write(net::buffer(tcp_buffer_.data(), n),
                    [self = self()](beast::error_code ec, std::size_t n) {
                      self->on_client_written(ec, n);
                    });
  }

  void on_client_written(beast::error_code ec, std::size_t n) {
    ws_writing_ = false;
    if (ec || ended_) return end();
    bridge_.server_thread_.update([&] { bridge_.bytes_to_client_ += n; });
    if (closing_) return start_close();  // close_all() waited for this write
    read_target();
  }

  void start_close() {
    if (close_started_) return;
    close_started_ = true;
    beast::error_code ignored;
    target_.shutdown(tcp::socket::shutdown_send, ignored);  // FIN
    ws_.async_close(websocket::close_code::normal,
                    [self = self()](beast::error_code) { self->end(); });
  }

  void end() {
    if (ended_) return;
    ended_ = true;
    beast::error_code ignored;
    target_.close(ignored);
    beast::get_lowest_layer(ws_).socket().close(ignored);
    if (upgraded_)
      bridge_.server_thread_.update([&] { --bridge_.open_sessions_; });
    bridge_.on_session_end(this);
  }

  Impl& bridge_;
  websocket::stream<Next> ws_;
  tcp::socket target_;
  beast::flat_buffer http_buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
  beast::flat_buffer ws_buffer_;
  std::array<char, kChunkBytes> tcp_buffer_;
  bool upgraded_ = false;  // the 101 is on its way
  bool open_ = false;      // Beast's accept completed
  bool ws_writing_ = false;
  bool closing_ = false;
  bool close_started_ = false;
  bool ended_ = false;
};

}  // namespace internal_bridge

std::optional<std::string> UpgradeRequest::header(
    const std::string& name) const {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, name)) return value;
  }
  return std::nullopt;
}

absl::Status WsTcpBridgeOptions::validate() const {
  internal_bridge::beast::error_code ec;
  internal_bridge::net::ip::make_address(target_host, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat(
        "WsTcpBridgeOptions: target_host must be an IP address, got \"",
        target_host, "\""));
  }
  if (target_port == 0) {
    return absl::InvalidArgumentError(
        "WsTcpBridgeOptions: target_port must be set, got 0");
  }
  if (tls && (cert_file.empty() || key_file.empty())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "WsTcpBridgeOptions: tls needs cert_file and key_file, got \"",
        cert_file, "\" and \"", key_file, "\""));
  }
  if (required_bearer.find_first_of(" \r\n") != std::string::npos) {
    return absl::InvalidArgumentError(
        "WsTcpBridgeOptions: required_bearer must hold no space or line "
        "break");
  }
  return absl::OkStatus();
}

// --- Impl --------------------------------------------------------------------

absl::Status WsTcpBridge::Impl::open() {
  if (options_.tls) {
    absl::StatusOr<internal_bridge::net::ssl::context> ssl =
        internal::make_tls_server_context(options_.cert_file, options_.key_file,
                                          "WsTcpBridge");
    if (!ssl.ok()) return ssl.status();
    ssl_.emplace(std::move(*ssl));
  }
  target_ = internal_bridge::tcp::endpoint(
      internal_bridge::net::ip::make_address(options_.target_host),
      options_.target_port);
  required_bearer_ = options_.required_bearer;
  absl::StatusOr<std::uint16_t> port = server_thread_.listen_and_start(
      acceptor_, 0, "WsTcpBridge", [this] { do_accept(); });
  if (!port.ok()) return port.status();
  port_ = *port;
  return absl::OkStatus();
}

void WsTcpBridge::Impl::shutdown() {
  server_thread_.stop([this] {
    stopping_ = true;
    internal_bridge::beast::error_code ignored;
    acceptor_.close(ignored);
    for (const auto& session : std::vector(sessions_)) session->shut();
    sessions_.clear();
  });
}

void WsTcpBridge::Impl::do_accept() {
  acceptor_.async_accept([this](internal_bridge::beast::error_code ec,
                                internal_bridge::tcp::socket socket) {
    if (stopping_ || ec == internal_bridge::net::error::operation_aborted) {
      return;
    }
    if (!ec) on_accepted(std::move(socket));
    do_accept();
  });
}

void WsTcpBridge::Impl::on_accepted(internal_bridge::tcp::socket socket) {
  namespace beast = internal_bridge::beast;
  server_thread_.update([&] { ++connections_accepted_; });
  std::shared_ptr<internal_bridge::SessionBase> session;
  if (ssl_) {
    session = std::make_shared<
        internal_bridge::Session<beast::ssl_stream<beast::tcp_stream>>>(
        *this, std::move(socket), *ssl_);
  } else {
    session = std::make_shared<internal_bridge::Session<beast::tcp_stream>>(
        *this, std::move(socket));
  }
  sessions_.push_back(session);
  session->start();
}

void WsTcpBridge::Impl::on_session_end(internal_bridge::SessionBase* session) {
  auto it = std::find_if(sessions_.begin(), sessions_.end(),
                         [&](const auto& s) { return s.get() == session; });
  if (it == sessions_.end()) return;
  // Keeps the session alive until this handler returns.
  std::shared_ptr<internal_bridge::SessionBase> keep = std::move(*it);
  sessions_.erase(it);
}

// --- WsTcpBridge
// --------------------------------------------------------------

absl::StatusOr<std::unique_ptr<WsTcpBridge>> WsTcpBridge::start(
    WsTcpBridgeOptions options) {
  if (absl::Status s = options.validate(); !s.ok()) return s;
  auto impl = std::make_unique<Impl>(std::move(options));
  if (absl::Status s = impl->open(); !s.ok()) return s;
  return std::unique_ptr<WsTcpBridge>(new WsTcpBridge(std::move(impl)));
}

WsTcpBridge::WsTcpBridge(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

WsTcpBridge::~WsTcpBridge() { impl_->shutdown(); }

std::uint16_t WsTcpBridge::port() const { return impl_->port_; }

std::string WsTcpBridge::url() const {
  return impl_->options_.tls
             ? absl::StrCat("wss://localhost:", impl_->port_, "/mqtt")
             : absl::StrCat("ws://127.0.0.1:", impl_->port_, "/mqtt");
}

void WsTcpBridge::set_required_bearer(std::string token) {
  impl_->server_thread_.update(
      [&] { impl_->required_bearer_ = std::move(token); });
}

void WsTcpBridge::close_all() {
  impl_->server_thread_.run_on_io([&] {
    for (const auto& s : std::vector(impl_->sessions_)) s->close();
  });
}

std::size_t WsTcpBridge::connections_accepted() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->connections_accepted_;
}

std::size_t WsTcpBridge::upgrades_completed() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->upgrades_completed_;
}

std::size_t WsTcpBridge::upgrades_unauthorized() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->upgrades_unauthorized_;
}

std::size_t WsTcpBridge::target_failures() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->target_failures_;
}

std::size_t WsTcpBridge::open_sessions() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->open_sessions_;
}

std::uint64_t WsTcpBridge::bytes_to_target() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->bytes_to_target_;
}

std::uint64_t WsTcpBridge::bytes_to_client() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->bytes_to_client_;
}

std::vector<UpgradeRequest> WsTcpBridge::upgrade_requests() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->requests_;
}

std::optional<std::string> WsTcpBridge::last_header(
    const std::string& name) const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  if (impl_->requests_.empty()) return std::nullopt;
  return impl_->requests_.back().header(name);
}

bool WsTcpBridge::wait_for(const std::function<bool()>& condition,
                           Duration timeout) const {
  return impl_->server_thread_.wait_for(condition, timeout);
}

}  // namespace feedkit::testing
