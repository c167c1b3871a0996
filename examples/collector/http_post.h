// SPDX-License-Identifier: Apache-2.0
//
// examples/collector/http_post.h
//
// One blocking HTTP(S) POST of a JSON body, for the brokers' token and
// approval-key endpoints (KIS POST /oauth2/Approval, Kiwoom POST
// /oauth2/token). https:// verifies the server's certificate and host name
// against the system trust store (or `ca_file`). Everything has a deadline.
// Errors say what failed (resolve, connect, TLS, status code) and never
// include the request body, which holds the app secret.
//
// Blocking: call it off the client's strand (a credentials provider runs it
// on a thread of its own and calls `done` from there).
//
// Thread safety: thread-safe (no shared state).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "feedkit/connection.h"

namespace examples {

struct HttpResponse {
  int status = 0;
  std::string body;
};

struct HttpPostOptions {
  std::chrono::milliseconds timeout{10'000};  // the whole exchange
  std::string ca_file;                        // https: PEM bundle to trust
  std::vector<std::pair<std::string, std::string>> headers;
  std::string method = "POST";  // "GET" sends no content type (and no body)
};

// POSTs `body` (Content-Type: application/json) to `url` (http:// or
// https://host[:port]/path), or sends options.method (GET with an empty
// body for the brokers' token lookups). Returns the response (any status), or
// an error for a bad URL, a network or TLS failure or a timeout.
absl::StatusOr<HttpResponse> http_post_json(
    std::string_view url, std::string_view body,
    const HttpPostOptions& options = {});

// Returns a CredentialsProvider that runs `fetch` (blocking: an
// http_post_json() call and its parsing) on a thread of its own and hands
// the result to the client from there, so the client's strand never waits.
// The last credentials are reused while they have more than a minute left
// and no refresh is forced (a rejection): one REST call per key lifetime,
// not per reconnect, as the brokers' own samples do.
feedkit::CredentialsProvider blocking_credentials(
    std::function<absl::StatusOr<feedkit::Credentials>(bool force_refresh)>
        fetch);

}  // namespace examples
