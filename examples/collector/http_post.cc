// SPDX-License-Identifier: Apache-2.0
#include "collector/http_post.h"

#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"

namespace examples {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

struct Url {
  bool tls = false;
  std::string host;
  std::string port;
  std::string target;
};

absl::StatusOr<Url> parse_url(std::string_view url) {
  Url u;
  std::string_view rest;
  if (url.substr(0, 7) == "http://") {
    rest = url.substr(7);
  } else if (url.substr(0, 8) == "https://") {
    u.tls = true;
    rest = url.substr(8);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("URL '", std::string(url), "': not http:// or https://"));
  }
  const std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  u.target =
      slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  const std::size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos &&
      authority.find(']') == std::string_view::npos) {
    u.port = std::string(authority.substr(colon + 1));
    authority = authority.substr(0, colon);
  } else {
    u.port = u.tls ? "443" : "80";
  }
  u.host = std::string(authority);
  if (u.host.empty() || u.port.empty() ||
      u.port.find_first_not_of("0123456789") != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("URL '", std::string(url), "': bad host or port"));
  }
  return u;
}

absl::Status failed(std::string_view what, const beast::error_code& ec) {
  if (ec == beast::error::timeout) {
    return absl::DeadlineExceededError(
        absl::StrCat("HTTP POST: ", std::string(what), " timed out"));
  }
  return absl::UnavailableError(
      absl::StrCat("HTTP POST: ", std::string(what), ": ", ec.message()));
}

// Runs request → response on `stream` (a tcp_stream or ssl_stream), with the
// deadline already set on the lowest layer.
template <class Stream>
absl::StatusOr<HttpResponse> exchange(
    net::io_context& ioc, Stream& stream,
    const http::request<http::string_body>& req) {
  beast::error_code ec;
  http::response<http::string_body> res;
  beast::flat_buffer buffer;
  http::async_write(stream, req, [&](beast::error_code e, std::size_t) {
    ec = e;
    if (e) return;
    http::async_read(stream, buffer, res,
                     [&](beast::error_code e2, std::size_t) { ec = e2; });
  });
  ioc.restart();
  ioc.run();
  if (ec) return failed("exchange", ec);
  return HttpResponse{static_cast<int>(res.result_int()),
                      std::move(res.body())};
}

}  // namespace

absl::StatusOr<HttpResponse> http_post_json(std::string_view url,
                                            std::string_view body,
                                            const HttpPostOptions& options) {
  auto u = parse_url(url);
  if (!u.ok()) return u.status();
  net::io_context ioc;
  beast::tcp_stream tcp_stream(ioc);
  tcp_stream.expires_after(options.timeout);
  tcp::resolver resolver(ioc);
  beast::error_code ec;
  const auto endpoints = resolver.resolve(u->host, u->port, ec);
  if (ec) return failed("resolve " + u->host, ec);
  tcp_stream.async_connect(endpoints,
                           [&](beast::error_code e, auto) { ec = e; });
  ioc.run();
  if (ec) return failed("connect " + u->host, ec);

  const http::verb method = http::string_to_verb(options.method);
  if (method == http::verb::unknown) {
    return absl::InvalidArgumentError("HTTP method '" + options.method +
                                      "' is not one");
  }
  http::request<http::string_body> req{method, u->target, 11};
  req.set(http::field::host, u->host);
  if (method != http::verb::get) {
    req.set(http::field::content_type, "application/json; charset=UTF-8");
  }
  for (const auto& [name, value] : options.headers) req.set(name, value);
  req.body() = std::string(body);
  req.prepare_payload();

  if (!u->tls) return exchange(ioc, tcp_stream, req);

  ssl::context tls(ssl::context::tls_client);
  tls.set_verify_mode(ssl::verify_peer);
  if (options.ca_file.empty()) {
    tls.set_default_verify_paths(ec);
  } else {
    tls.load_verify_file(options.ca_file, ec);
  }
  if (ec) return failed("TLS trust store", ec);
  beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp_stream), tls);
  if (!SSL_set_tlsext_host_name(stream.native_handle(), u->host.c_str())) {
    return absl::InternalError("HTTP POST: SNI setup failed");
  }
  stream.set_verify_callback(ssl::host_name_verification(u->host));
  stream.async_handshake(ssl::stream_base::client,
                         [&](beast::error_code e) { ec = e; });
  ioc.restart();
  ioc.run();
  if (ec) return failed("TLS handshake with " + u->host, ec);
  return exchange(ioc, stream, req);
}

feedkit::CredentialsProvider blocking_credentials(
    std::function<absl::StatusOr<feedkit::Credentials>(bool force_refresh)>
        fetch) {
  struct Cache {
    std::mutex mu;
    std::optional<feedkit::Credentials> last;
  };
  auto cache = std::make_shared<Cache>();
  return [fetch = std::move(fetch), cache](bool force_refresh, auto done) {
    {
      std::lock_guard<std::mutex> lock(cache->mu);
      if (cache->last && !force_refresh &&
          cache->last->expires_at - feedkit::SteadyClock::now() >
              std::chrono::minutes(1)) {
        return done(*cache->last);
      }
    }
    std::thread([fetch, cache, force_refresh, done = std::move(done)] {
      absl::StatusOr<feedkit::Credentials> result = fetch(force_refresh);
      {
        std::lock_guard<std::mutex> lock(cache->mu);
        if (result.ok()) {
          cache->last = *result;
        } else {
          cache->last.reset();
        }
      }
      done(std::move(result));
    }).detach();
  };
}

}  // namespace examples
