// SPDX-License-Identifier: Apache-2.0
//
// feedkit/testing/loopback_http_server.h
//
// LoopbackHttpServer is a small real HTTP/1.1 server (Boost.Beast, plain
// http://) on a loopback port that answers every request with a handler the
// test or simulator supplies: the REST endpoints brokers issue keys and
// tokens from (KIS POST /oauth2/Approval, Kiwoom POST /oauth2/token,
// Settrade's login and dispatcher token). It is separate from the WebSocket
// server on purpose: real brokers serve REST and realtime on different
// endpoints, a REST outage is scripted independently (set_available()), the
// WebSocket server's connection numbering stays one per feed connection, and
// the MQTT broker of the Settrade simulator (a real mosquitto) has no HTTP
// side at all.
//
// Keep-alive connections are served in order, one request at a time; a
// connection idle for 30 s is closed. Request bodies above 1 MiB are refused
// (the connection is closed). Nothing is logged: request bodies carry
// secrets.
//
// Thread safety: thread-safe. The handler runs on the server's own thread,
// one call at a time; it must not block for long. start() starts the thread;
// the destructor closes every connection and joins it.
//
// Example:
//   auto rest = feedkit::testing::LoopbackHttpServer::start(
//       [](const feedkit::testing::HttpRequest& r) {
//         if (r.method != "POST" || r.target != "/oauth2/token") {
//           return feedkit::testing::HttpResponse{.status = 404};
//         }
//         return feedkit::testing::HttpResponse{.body = R"({"token":"T"})"};
//       }).value();
//   std::string base = rest->url();   // "http://127.0.0.1:PORT"
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace feedkit::testing {

struct HttpRequest {
  std::string method;  // "GET", "POST", …
  std::string target;  // path and query, e.g. "/oauth2/token"
  std::vector<std::pair<std::string, std::string>> headers;  // as received
  std::string body;

  // Returns the first header named `name` (case-insensitive), or "".
  std::string_view header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json;charset=UTF-8";
  std::string body;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

class LoopbackHttpServer {
 public:
  // Starts listening on 127.0.0.1:`port` (0: a free port). Returns
  // kInvalidArgument without a handler, kUnavailable if the port cannot be
  // bound.
  static absl::StatusOr<std::unique_ptr<LoopbackHttpServer>> start(
      HttpHandler handler, std::uint16_t port = 0);

  ~LoopbackHttpServer();
  LoopbackHttpServer(const LoopbackHttpServer&) = delete;
  LoopbackHttpServer& operator=(const LoopbackHttpServer&) = delete;

  std::uint16_t port() const;
  // "http://127.0.0.1:PORT" (no trailing slash).
  std::string url() const;

  // false: every request is answered 503 without calling the handler (a
  // REST outage). Default true. Thread-safe.
  void set_available(bool available);
  // Requests answered so far (503s included). Thread-safe.
  std::size_t requests() const;

  class Impl;

 private:
  explicit LoopbackHttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace feedkit::testing
