// SPDX-License-Identifier: Apache-2.0
#include "feedkit/status_server.h"

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cassert>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>  // std::mutex, not absl::Mutex: Debian builds Abseil without TSan hooks
#include <optional>
#include <string_view>
#include <thread>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "prometheus/metric_family.h"
#include "prometheus/text_serializer.h"

namespace feedkit {
namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;

// stop() waits this long for the server thread to finish after every socket
// is closed, then stops the io_context.
constexpr auto kStopGrace = std::chrono::milliseconds(500);
// After a failed accept (out of file descriptors, say) the next one waits
// this long, so the error does not become a busy loop.
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(100);
// A GET has no body; one sent anyway is read (up to this) and ignored.
constexpr std::uint64_t kMaxBodyBytes = 64 * 1024;
// After an error response the connection is half-closed and what the client
// still sends is read and dropped for at most this long, so the response is
// not lost to a TCP reset.
constexpr auto kLingerTime = std::chrono::seconds(1);

constexpr const char* kMetricsContentType =
    "text/plain; version=0.0.4; charset=utf-8";

std::string seconds_text(Duration d) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f",
                std::chrono::duration<double>(d).count());
  return buf;
}

// Returns `s` as a JSON string literal, quotes included.
std::string json_string(absl::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x",
                        static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

struct NamedCheck {
  std::string name;
  HealthCheck check;
};

enum class CheckType { liveness, readiness };

constexpr const char* to_string(CheckType type) {
  return type == CheckType::liveness ? "liveness" : "readiness";
}

struct CheckResult {
  std::string name;
  CheckType type;
  absl::Status status;
};

// Runs a check; one that throws fails (the server thread must not die).
absl::Status run_check(const HealthCheck& check) {
  try {
    return check();
  } catch (...) {
    return absl::InternalError("the check threw an exception");
  }
}

// {"status":"<status>","checks":[{"name":…,"type":…,"ok":…,"reason":…}]}
std::string checks_json(const char* status,
                        const std::vector<CheckResult>& results) {
  std::string out =
      absl::StrCat("{\"status\":", json_string(status), ",\"checks\":[");
  for (std::size_t i = 0; i < results.size(); ++i) {
    const CheckResult& r = results[i];
    absl::StrAppend(&out, i == 0 ? "" : ",", "{\"name\":", json_string(r.name),
                    ",\"type\":", json_string(to_string(r.type)),
                    ",\"ok\":", r.status.ok() ? "true" : "false");
    if (!r.status.ok()) {
      absl::StrAppend(&out, ",\"reason\":", json_string(r.status.message()));
    }
    out += '}';
  }
  out += "]}\n";
  return out;
}

// Returns true for a parser error about the request's bytes (not a closed,
// reset or timed-out connection, and not a request cut short by EOF).
bool is_malformed_request(const beast::error_code& ec) {
  return ec &&
         ec.category() == make_error_code(http::error::bad_method).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

Response make_response(http::status status, const char* content_type,
                       std::string body) {
  Response res{status, 11};
  res.set(http::field::server, "feedkit");
  res.set(http::field::content_type, content_type);
  res.set(http::field::cache_control, "no-store");
  res.body() = std::move(body);
  return res;
}

}  // namespace

// --- Impl -------------------------------------------------------------------

// Everything named *_io runs on the server thread only.
class StatusServer::Impl {
 public:
  Impl(StatusServerOptions options, const ::prometheus::Collectable* metrics)
      : options_(std::move(options)), metrics_(metrics) {}

  absl::Status open();
  void stop();

  std::uint16_t port() const { return port_; }
  const StatusServerOptions& options() const { return options_; }

  absl::Status add_check(CheckType type, std::string name, HealthCheck check);

  // Server thread: what a session calls.
  Response respond_io(const Request& request);
  void session_ended_io(const void* session) { sessions_.erase(session); }
  void count_io(std::string_view endpoint, http::status status) {
    ++requests_[{std::string(endpoint), static_cast<int>(status)}];
  }

 private:
  class Session;

  void do_accept_io();
  std::vector<CheckResult> run_checks_io(bool readiness_too) const;
  std::string metrics_text_io() const;

  const StatusServerOptions options_;
  const ::prometheus::Collectable* const metrics_;
  std::uint16_t port_ = 0;

  // Pending handlers own sessions (and their sockets); they are destroyed
  // with ioc_, after stop() joined the thread. A Session's destructor
  // touches nothing of Impl.
  net::io_context ioc_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
  tcp::acceptor acceptor_{ioc_};
  net::steady_timer accept_retry_{ioc_};
  std::thread thread_;

  // Server thread only.
  std::map<const void*, std::weak_ptr<Session>> sessions_;
  std::map<std::pair<std::string, int>, std::uint64_t> requests_;

  mutable std::mutex checks_mu_;
  std::vector<NamedCheck> liveness_ ABSL_GUARDED_BY(checks_mu_);
  std::vector<NamedCheck> readiness_ ABSL_GUARDED_BY(checks_mu_);

  std::mutex stop_mu_;  // one stop() at a time
  std::mutex done_mu_;
  std::condition_variable done_cv_;
  bool thread_done_ ABSL_GUARDED_BY(done_mu_) = false;
};

// One client connection: read a request, answer it, repeat while kept alive.
class StatusServer::Impl::Session
    : public std::enable_shared_from_this<Session> {
 public:
  Session(Impl& server, tcp::socket socket)
      : server_(server), stream_(std::move(socket)) {}

  void start() { read_request(); }

  // Closes the socket: pending operations end with operation_aborted.
  void close() {
    closed_ = true;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

 private:
  void read_request() {
    parser_.emplace();
    parser_->header_limit(
        static_cast<std::uint32_t>(server_.options().max_header_bytes));
    parser_->body_limit(kMaxBodyBytes);
    stream_.expires_after(server_.options().request_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) {
          self->on_read(ec);
        });
  }

  void on_read(beast::error_code ec) {
    if (closed_) return end();
    if (ec == http::error::header_limit) {
      return send_error(http::status::request_header_fields_too_large);
    }
    if (ec == http::error::body_limit) {
      return send_error(http::status::payload_too_large);
    }
    if (is_malformed_request(ec)) {
      return send_error(http::status::bad_request);
    }
    if (ec) return end();  // closed, reset, timed out or aborted
    const Request& request = parser_->get();
    Response response = server_.respond_io(request);
    response.keep_alive(request.keep_alive());
    send(std::move(response));
  }

  void send(Response response) {
    response_ = std::move(response);
    response_.prepare_payload();
    stream_.expires_after(server_.options().request_timeout);
    http::async_write(
        stream_, response_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) {
          if (ec || self->closed_) return self->end();
          if (!self->response_.keep_alive()) {
            return self->linger();
          }
          self->read_request();
        });
  }

  // Answers a request that cannot be read, then closes the connection.
  void send_error(http::status status) {
    server_.count_io("invalid", status);
    const auto reason = http::obsolete_reason(status);
    Response response = make_response(
        status, "text/plain; charset=utf-8",
        absl::StrCat(absl::string_view(reason.data(), reason.size()), "\n"));
    response.keep_alive(false);
    send(std::move(response));
  }

  // Half-closes, then reads and drops what the client still sends until it
  // closes or kLingerTime passes, so it reads the response before any reset.
  void linger() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kLingerTime);
    drain();
  }

  void drain() {
    stream_.async_read_some(
        net::buffer(drain_buffer_),
        [self = shared_from_this()](beast::error_code ec, std::size_t) {
          if (ec || self->closed_) return self->end();
          self->drain();
        });
  }

  void end() {
    if (!ended_) {
      ended_ = true;
      beast::error_code ignored;
      stream_.socket().close(ignored);
      server_.session_ended_io(this);
    }
  }

  Impl& server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Response response_;
  char drain_buffer_[1024];
  bool closed_ = false;
  bool ended_ = false;
};

absl::Status StatusServer::Impl::open() {
  beast::error_code ec;
  const net::ip::address address = net::ip::make_address(options_.address, ec);
  const tcp::endpoint endpoint(address, options_.port);
  if (!ec) acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("StatusServer: cannot listen on ", options_.address, ":",
                     options_.port, ": ", ec.message()));
  }
  port_ = acceptor_.local_endpoint().port();
  work_.emplace(ioc_.get_executor());
  do_accept_io();
  thread_ = std::thread([this] {
    ioc_.run();
    std::lock_guard lock(done_mu_);
    thread_done_ = true;
    done_cv_.notify_all();
  });
  return absl::OkStatus();
}

void StatusServer::Impl::stop() {
  std::lock_guard stop_lock(stop_mu_);
  if (!thread_.joinable()) return;
  assert(std::this_thread::get_id() != thread_.get_id() &&
         "StatusServer::stop() must not be called from a check");
  net::post(ioc_, [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
    accept_retry_.cancel();
    for (const auto& [key, weak] : std::map(sessions_)) {
      if (auto session = weak.lock()) session->close();
    }
  });
  work_.reset();
  {
    std::unique_lock lock(done_mu_);
    done_cv_.wait_for(lock, kStopGrace, [&] { return thread_done_; });
  }
  ioc_.stop();  // a lingering socket's timer may still be pending
  thread_.join();
}

void StatusServer::Impl::do_accept_io() {
  acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      accept_retry_.expires_after(kAcceptRetryDelay);
      accept_retry_.async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec) do_accept_io();
      });
      return;
    }
    if (sessions_.size() >= options_.max_connections) {
      beast::error_code ignored;
      socket.close(ignored);  // over the limit: closed at once
    } else {
      auto session = std::make_shared<Session>(*this, std::move(socket));
      sessions_.emplace(session.get(), session);
      session->start();
    }
    do_accept_io();
  });
}

absl::Status StatusServer::Impl::add_check(CheckType type, std::string name,
                                           HealthCheck check) {
  if (name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "StatusServer: the ", to_string(type), " check name is empty"));
  }
  if (!check) {
    return absl::InvalidArgumentError(absl::StrCat("StatusServer: the ",
                                                   to_string(type), " check '",
                                                   name, "' has no function"));
  }
  std::lock_guard lock(checks_mu_);
  std::vector<NamedCheck>& list =
      type == CheckType::liveness ? liveness_ : readiness_;
  for (const NamedCheck& c : list) {
    if (c.name == name) {
      return absl::AlreadyExistsError(absl::StrCat("StatusServer: a ",
                                                   to_string(type), " check '",
                                                   name, "' already exists"));
    }
  }
  list.push_back({std::move(name), std::move(check)});
  return absl::OkStatus();
}

std::vector<CheckResult> StatusServer::Impl::run_checks_io(
    bool readiness_too) const {
  std::vector<NamedCheck> checks;  // copied: run without the lock
  std::size_t liveness_count = 0;
  {
    std::lock_guard lock(checks_mu_);
    checks = liveness_;
    liveness_count = checks.size();
    if (readiness_too) {
      checks.insert(checks.end(), readiness_.begin(), readiness_.end());
    }
  }
  std::vector<CheckResult> results;
  results.reserve(checks.size());
  for (std::size_t i = 0; i < checks.size(); ++i) {
    results.push_back(
        {std::move(checks[i].name),
         i < liveness_count ? CheckType::liveness : CheckType::readiness,
         run_check(checks[i].check)});
  }
  return results;
}

std::string StatusServer::Impl::metrics_text_io() const {
  using ::prometheus::ClientMetric;
  using ::prometheus::MetricFamily;
  using ::prometheus::MetricType;
  std::vector<MetricFamily> families;
  if (metrics_ != nullptr) families = metrics_->Collect();

  MetricFamily checks{"feedkit_status_check",
                      "1 while the /health or /ready check passes, else 0.",
                      MetricType::Gauge,
                      {}};
  for (const CheckResult& r : run_checks_io(/*readiness_too=*/true)) {
    ClientMetric& m = checks.metric.emplace_back();
    m.label = {{"check", r.name}, {"type", std::string(to_string(r.type))}};
    m.gauge.value = r.status.ok() ? 1 : 0;
  }
  if (!checks.metric.empty()) families.push_back(std::move(checks));

  MetricFamily requests{"feedkit_status_requests_total",
                        "HTTP requests answered, by endpoint and status code.",
                        MetricType::Counter,
                        {}};
  for (const auto& [key, count] : requests_) {
    ClientMetric& m = requests.metric.emplace_back();
    m.label = {{"code", std::to_string(key.second)}, {"endpoint", key.first}};
    m.counter.value = static_cast<double>(count);
  }
  if (!requests.metric.empty()) families.push_back(std::move(requests));
  return ::prometheus::TextSerializer().Serialize(families);
}

Response StatusServer::Impl::respond_io(const Request& request) {
  const auto target = request.target();
  std::string_view path(target.data(), target.size());
  path = path.substr(0, path.find('?'));
  std::string_view endpoint = "other";
  if (path == "/metrics" || path == "/health" || path == "/ready") {
    endpoint = path.substr(1);
  }
  auto answer = [&](http::status status, const char* content_type,
                    std::string body) {
    count_io(endpoint, status);
    return make_response(status, content_type, std::move(body));
  };
  if (endpoint == "other") {
    return answer(http::status::not_found, "text/plain; charset=utf-8",
                  "not found: try /metrics, /health or /ready\n");
  }
  if (request.method() != http::verb::get) {
    Response res = answer(http::status::method_not_allowed,
                          "text/plain; charset=utf-8", "only GET\n");
    res.set(http::field::allow, "GET");
    return res;
  }
  if (endpoint == "metrics") {
    try {
      return answer(http::status::ok, kMetricsContentType, metrics_text_io());
    } catch (const std::exception&) {  // a user collectable threw
      return answer(http::status::internal_server_error,
                    "text/plain; charset=utf-8", "collecting metrics failed\n");
    }
  }
  const bool ready = endpoint == "ready";
  const std::vector<CheckResult> results = run_checks_io(ready);
  const bool ok = std::all_of(results.begin(), results.end(),
                              [](const auto& r) { return r.status.ok(); });
  const char* status =
      ok ? (ready ? "ready" : "ok") : (ready ? "not_ready" : "failing");
  return answer(ok ? http::status::ok : http::status::service_unavailable,
                "application/json", checks_json(status, results));
}

// --- StatusServer -----------------------------------------------------------

absl::Status StatusServerOptions::validate() const {
  beast::error_code ec;
  const net::ip::address ip = net::ip::make_address(address, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat(
        "StatusServerOptions::address must be an IP address, got \"", address,
        "\""));
  }
  if (!ip.is_loopback() && !allow_non_loopback) {
    return absl::InvalidArgumentError(absl::StrCat(
        "StatusServerOptions::address must be a loopback address (127.0.0.1, "
        "::1) unless allow_non_loopback, got \"",
        address, "\""));
  }
  if (request_timeout < std::chrono::milliseconds(10) ||
      request_timeout > std::chrono::minutes(10)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "StatusServerOptions::request_timeout must be in [10 ms, 10 min], got ",
        request_timeout.count(), " ms"));
  }
  if (max_connections < 1 || max_connections > 10'000) {
    return absl::InvalidArgumentError(absl::StrCat(
        "StatusServerOptions::max_connections must be in [1, 10000], got ",
        max_connections));
  }
  if (max_header_bytes < 1024 || max_header_bytes > 1024 * 1024) {
    return absl::InvalidArgumentError(absl::StrCat(
        "StatusServerOptions::max_header_bytes must be in [1024, 1048576], "
        "got ",
        max_header_bytes));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<StatusServer>> StatusServer::create(
    StatusServerOptions options, const ::prometheus::Collectable* metrics) {
  if (absl::Status s = options.validate(); !s.ok()) return s;
  auto impl = std::make_unique<Impl>(std::move(options), metrics);
  if (absl::Status s = impl->open(); !s.ok()) return s;
  return std::unique_ptr<StatusServer>(new StatusServer(std::move(impl)));
}

StatusServer::StatusServer(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

StatusServer::~StatusServer() { stop(); }

std::uint16_t StatusServer::port() const { return impl_->port(); }

std::string StatusServer::url() const {
  const std::string& address = impl_->options().address;
  const bool v6 = address.find(':') != std::string::npos;
  return absl::StrCat("http://", v6 ? "[" : "", address, v6 ? "]" : "", ":",
                      port());
}

absl::Status StatusServer::add_liveness_check(std::string name,
                                              HealthCheck check) {
  return impl_->add_check(CheckType::liveness, std::move(name),
                          std::move(check));
}

absl::Status StatusServer::add_readiness_check(std::string name,
                                               HealthCheck check) {
  return impl_->add_check(CheckType::readiness, std::move(name),
                          std::move(check));
}

void StatusServer::stop() { impl_->stop(); }

// --- Checks -----------------------------------------------------------------

Heartbeat::Heartbeat(Clock& clock)
    : clock_(clock), last_ns_(clock.now().time_since_epoch().count()) {}

void Heartbeat::beat() noexcept {
  last_ns_.store(clock_.now().time_since_epoch().count(),
                 std::memory_order_relaxed);
}

SteadyTime Heartbeat::last() const noexcept {
  return SteadyTime(Duration(last_ns_.load(std::memory_order_relaxed)));
}

HealthCheck Heartbeat::check(Duration max_silence) const {
  return [this, max_silence]() -> absl::Status {
    const Duration silence = clock_.now() - last();
    if (silence <= max_silence) return absl::OkStatus();
    return absl::UnavailableError(
        absl::StrCat("no beat for ", seconds_text(silence), " s (limit ",
                     seconds_text(max_silence), " s)"));
  };
}

HealthCheck connection_ready(std::function<ConnectionStats()> stats) {
  return [stats = std::move(stats)]() -> absl::Status {
    const ConnectionStats s = stats();
    if (s.state != ConnectionState::live) {
      return absl::UnavailableError(absl::StrCat(
          "state ",
          absl::string_view(to_string(s.state).data(),
                            to_string(s.state).size()),
          " for ", seconds_text(s.time_in_state), " s, not live (epoch ",
          s.epoch, ", ", s.reconnects, " reconnects)"));
    }
    const SubscriptionStats& sub = s.subscriptions;
    if (sub.confirmed >= sub.desired) return absl::OkStatus();
    std::vector<std::string> parts;
    auto part = [&](std::uint64_t n, const char* what) {
      if (n > 0) parts.push_back(absl::StrCat(n, " ", what));
    };
    part(sub.waiting, "waiting");
    part(sub.pending, "pending");
    part(sub.unconfirmed, "unconfirmed");
    part(sub.rejected, "rejected");
    part(sub.over_cap, "over the cap");
    return absl::UnavailableError(absl::StrCat(
        sub.desired - sub.confirmed, " of ", sub.desired,
        " subscriptions not confirmed: ", absl::StrJoin(parts, ", ")));
  };
}

HealthCheck feed_ready(std::function<FeedHealthStats()> stats,
                       std::size_t max_stale_symbols) {
  return [stats = std::move(stats), max_stale_symbols]() -> absl::Status {
    const FeedHealthStats s = stats();
    if (!s.evaluated_at) {
      return absl::UnavailableError("feed health not evaluated yet");
    }
    if (s.feed == HealthState::never_seen) {
      return absl::UnavailableError("no event received yet");
    }
    if (s.feed == HealthState::stale) {
      return absl::UnavailableError(
          s.last_record
              ? absl::StrCat("feed stale: no event for ",
                             seconds_text(*s.evaluated_at - *s.last_record),
                             " s")
              : std::string("feed stale: no event received yet"));
    }
    if (s.stale > max_stale_symbols) {
      return absl::UnavailableError(
          absl::StrCat(s.stale, " of ", s.symbols, " symbols stale (at most ",
                       max_stale_symbols, " allowed)"));
    }
    return absl::OkStatus();
  };
}

}  // namespace feedkit
