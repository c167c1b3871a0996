// SPDX-License-Identifier: Apache-2.0
#include "feedkit/testing/loopback_http_server.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <chrono>
#include <mutex>  // std::mutex, not absl::Mutex: Debian builds Abseil without TSan hooks
#include <optional>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "internal/server_thread.h"

namespace feedkit::testing {
namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;

constexpr auto kIdleTimeout = std::chrono::seconds(30);
constexpr std::uint64_t kBodyLimit = 1 << 20;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::string_view HttpRequest::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (iequals(key, name)) return value;
  }
  return {};
}

class LoopbackHttpServer::Impl {
 public:
  explicit Impl(HttpHandler handler) : handler_(std::move(handler)) {}

  absl::Status open(std::uint16_t port);
  void stop();
  void do_accept();

  HttpHandler handler_;
  std::uint16_t port_ = 0;
  std::atomic<bool> available_{true};
  std::atomic<std::size_t> requests_{0};
  std::mutex mu_;  // only for server_thread_: there is no wait_for() here
  internal::ServerThread server_thread_{mu_};
  tcp::acceptor acceptor_{server_thread_.ioc()};
};

namespace {

// One connection: read a request, answer it, until the client closes or
// asks to. Kept alive by its own handlers.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(LoopbackHttpServer::Impl& server, tcp::socket socket)
      : server_(server), stream_(std::move(socket)) {}

  void read() {
    parser_.emplace();
    parser_->body_limit(kBodyLimit);
    stream_.expires_after(kIdleTimeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) {
          if (ec) return self->close();
          self->answer(self->parser_->release());
        });
  }

 private:
  void answer(http::request<http::string_body> request) {
    HttpResponse response;
    if (!server_.available_) {
      response.status = 503;
      response.body = R"({"error":"service unavailable, simulated"})";
    } else {
      HttpRequest r;
      r.method = std::string(request.method_string());
      r.target = std::string(request.target());
      for (const auto& field : request) {
        r.headers.emplace_back(std::string(field.name_string()),
                               std::string(field.value()));
      }
      r.body = std::move(request.body());
      response = server_.handler_(r);
    }
    ++server_.requests_;
    response_ = {};
    response_.result(static_cast<unsigned>(response.status));
    response_.version(request.version());
    response_.set(http::field::server, "feedkit LoopbackHttpServer");
    response_.set(http::field::content_type, response.content_type);
    response_.keep_alive(request.keep_alive());
    response_.body() = std::move(response.body);
    response_.prepare_payload();
    http::async_write(
        stream_, response_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) {
          if (ec || !self->response_.keep_alive()) return self->close();
          self->read();
        });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.socket().close(ignored);
  }

  LoopbackHttpServer::Impl& server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
};

}  // namespace

absl::Status LoopbackHttpServer::Impl::open(std::uint16_t port) {
  absl::StatusOr<std::uint16_t> bound = server_thread_.listen_and_start(
      acceptor_, port, "LoopbackHttpServer", [this] { do_accept(); });
  if (!bound.ok()) return bound.status();
  port_ = *bound;
  return absl::OkStatus();
}

void LoopbackHttpServer::Impl::do_accept() {
  acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted) return;
    if (!ec) std::make_shared<HttpSession>(*this, std::move(socket))->read();
    do_accept();
  });
}

void LoopbackHttpServer::Impl::stop() {
  // No grace: stopping the io_context abandons every handler; destroying it
  // (after the join) closes the sessions' sockets.
  server_thread_.stop({}, Duration::zero());
}

absl::StatusOr<std::unique_ptr<LoopbackHttpServer>> LoopbackHttpServer::start(
    HttpHandler handler, std::uint16_t port) {
  if (!handler) {
    return absl::InvalidArgumentError(
        "LoopbackHttpServer: handler must not be empty");
  }
  auto impl = std::make_unique<Impl>(std::move(handler));
  if (absl::Status s = impl->open(port); !s.ok()) return s;
  return std::unique_ptr<LoopbackHttpServer>(
      new LoopbackHttpServer(std::move(impl)));
}

LoopbackHttpServer::LoopbackHttpServer(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

LoopbackHttpServer::~LoopbackHttpServer() { impl_->stop(); }

std::uint16_t LoopbackHttpServer::port() const { return impl_->port_; }

std::string LoopbackHttpServer::url() const {
  return absl::StrCat("http://127.0.0.1:", impl_->port_);
}

void LoopbackHttpServer::set_available(bool available) {
  impl_->available_ = available;
}

std::size_t LoopbackHttpServer::requests() const { return impl_->requests_; }

}  // namespace feedkit::testing
