// SPDX-License-Identifier: Apache-2.0
#include "feedkit/testing/tcp_fault_proxy.h"

#include <array>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cassert>
#include <deque>
#include <mutex>  // std::mutex, not absl::Mutex: Debian builds Abseil without TSan hooks
#include <string>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange
#include <vector>

#include "absl/strings/str_cat.h"
#include "internal/server_thread.h"

namespace feedkit::testing {
namespace internal_proxy {

namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;
using error_code = boost::system::error_code;

// One read: the most a stalled direction holds in the proxy.
constexpr std::size_t kChunkBytes = 64 * 1024;
// A direction stops reading while this much waits to be written (delay).
constexpr std::size_t kMaxQueuedBytes = 4 * 1024 * 1024;
// After a cut, what the peers still send is read and discarded (closing a
// socket with unread bytes would send RST instead of FIN) until they close
// or this long has passed.
constexpr auto kCutLinger = std::chrono::seconds(2);

class Link;

}  // namespace internal_proxy

// Everything below runs on the proxy thread unless it says it locks `mu_`.
class TcpFaultProxy::Impl {
 public:
  explicit Impl(TcpFaultProxyOptions options) : options_(std::move(options)) {}

  absl::Status open();
  absl::Status listen();  // on port_ (0: a free port)
  void shutdown();        // from the destructor
  void do_accept();
  void on_accepted(internal_proxy::tcp::socket socket);
  // Runs `fn` on the link numbered `link`, if it exists.
  void with_link(std::size_t link,
                 const std::function<void(internal_proxy::Link&)>& fn);
  void for_each_link(const std::function<void(internal_proxy::Link&)>& fn);

  const TcpFaultProxyOptions options_;
  std::uint16_t port_ = 0;
  internal_proxy::tcp::endpoint target_;

  mutable std::mutex mu_;  // guards the counters below
  std::size_t connections_accepted_ = 0;
  std::size_t open_links_ = 0;
  std::size_t target_failures_ = 0;
  std::uint64_t bytes_to_target_ = 0;
  std::uint64_t bytes_to_client_ = 0;

  // Proxy thread only.
  LinkMode new_mode_ = LinkMode::pass;
  Duration new_delay_{0};
  bool stopping_ = false;

  internal::ServerThread server_thread_{mu_};
  internal_proxy::tcp::acceptor acceptor_{server_thread_.ioc()};
  std::vector<std::shared_ptr<internal_proxy::Link>> links_;  // by number
};

namespace internal_proxy {

// One accepted connection and its connection to the target: two directions,
// each reading from one socket into a queue and writing the queue to the
// other. Lives on the proxy thread; kept alive by its handlers and by
// Impl::links_.
class Link : public std::enable_shared_from_this<Link> {
 public:
  using Impl = TcpFaultProxy::Impl;

  Link(Impl& proxy, tcp::socket client, LinkMode mode, Duration delay)
      : proxy_(proxy),
        client_(std::move(client)),
        target_(proxy.server_thread_.ioc()),
        linger_timer_(proxy.server_thread_.ioc()),
        up_(client_, target_, &Impl::bytes_to_target_,
            proxy.server_thread_.ioc()),
        down_(target_, client_, &Impl::bytes_to_client_,
              proxy.server_thread_.ioc()),
        mode_(mode),
        delay_(delay) {}

  void start() {
    target_.async_connect(
        proxy_.target_,
        [self = shared_from_this(), this](error_code ec) { on_connected(ec); });
  }

  void set_mode(LinkMode mode, Duration delay) {
    mode_ = mode;
    delay_ = delay;
    if (state_ != State::forwarding) return;
    pump(up_);
    pump(down_);
  }

  // FIN to both sides; then reads and discards until both closed or
  // kCutLinger passed.
  void cut() {
    if (state_ == State::cutting || state_ == State::ended) return;
    state_ = State::cutting;
    proxy_.server_thread_.update([&] { --proxy_.open_links_; });
    // A target connection still in progress gets its FIN in on_connected().
    error_code ignored;
    client_.shutdown(tcp::socket::shutdown_send, ignored);
    target_.shutdown(tcp::socket::shutdown_send, ignored);
    for (Direction* d : {&up_, &down_}) {
      d->queue.clear();
      d->timer.cancel();
      drain(*d);
    }
    linger_timer_.expires_after(kCutLinger);
    linger_timer_.async_wait([self = shared_from_this(), this](error_code ec) {
      if (!ec) close_sockets(false);
    });
  }

  // RST to both sides.
  void reset() {
    if (state_ == State::ended) return;
    if (state_ != State::cutting)
      proxy_.server_thread_.update([&] { --proxy_.open_links_; });
    close_sockets(true);
  }

  // Closes without a word (proxy shutdown).
  void close() {
    if (state_ == State::ended) return;
    if (state_ != State::cutting)
      proxy_.server_thread_.update([&] { --proxy_.open_links_; });
    close_sockets(false);
  }

 private:
  enum class State { connecting, forwarding, cutting, ended };

  struct Chunk {
    SteadyTime due;
    std::string bytes;
  };

  struct Direction {
    Direction(tcp::socket& f, tcp::socket& t, std::uint64_t Impl::*c,
              net::io_context& ioc)
        : from(f), to(t), counter(c), timer(ioc) {}
    tcp::socket& from;
    tcp::socket& to;
    std::uint64_t Impl::*counter;  // bytes written to `to`
    net::steady_timer timer;       // until the first chunk is due (delay)
    std::array<char, kChunkBytes> buffer;
    std::deque<Chunk> queue;
    std::size_t queued_bytes = 0;
    bool reading = false;
    bool writing = false;
    bool timer_armed = false;
    bool eof = false;      // `from` sent FIN
    bool shut = false;     // FIN forwarded to `to`
    bool drained = false;  // after a cut: `from` closed
  };

  void on_connected(error_code ec) {
    if (state_ == State::cutting && !ec) {
      error_code ignored;
      target_.shutdown(tcp::socket::shutdown_send, ignored);
    }
    if (state_ != State::connecting) return;
    if (ec) {
      proxy_.server_thread_.update([&] { ++proxy_.target_failures_; });
      return reset();
    }
    error_code ignored;
    client_.set_option(tcp::no_delay(true), ignored);
    target_.set_option(tcp::no_delay(true), ignored);
    state_ = State::forwarding;
    pump(up_);
    pump(down_);
  }

  // Reads and writes what the mode allows.
  void pump(Direction& d) {
    if (state_ != State::forwarding || mode_ == LinkMode::stall) return;
    if (!d.reading && !d.eof && d.queued_bytes < kMaxQueuedBytes) read(d);
    if (d.writing) return;
    if (d.queue.empty()) {
      if (d.eof && !d.shut) forward_fin(d);
      return;
    }
    const Chunk& front = d.queue.front();
    if (mode_ == LinkMode::delay && front.due > SteadyClock::now()) {
      if (d.timer_armed) return;
      d.timer_armed = true;
      d.timer.expires_at(front.due);
      d.timer.async_wait([self = shared_from_this(), this, &d](error_code) {
        d.timer_armed = false;
        pump(d);
      });
      return;
    }
    d.writing = true;
    net::async_write(
        d.to, net::buffer(front.bytes),
        [self = shared_from_this(), this, &d](error_code ec, std::size_t n) {
          d.writing = false;
          if (state_ != State::forwarding) return;
          if (ec) return reset();
          proxy_.server_thread_.update([&] { proxy_.*d.counter += n; });
          d.queued_bytes -= d.queue.front().bytes.size();
          d.queue.pop_front();
          pump(d);
        });
  }

  void read(Direction& d) {
    d.reading = true;
    d.from.async_read_some(
        net::buffer(d.buffer),
        [self = shared_from_this(), this, &d](error_code ec, std::size_t n) {
          d.reading = false;
          if (state_ == State::cutting) {
            if (ec) d.drained = true;
            return drain(d);
          }
          if (state_ != State::forwarding) return;
          if (ec == net::error::eof) {
            d.eof = true;
          } else if (ec) {
            return reset();  // the peer reset: so does the other side
          } else {
            d.queue.push_back(
                {SteadyClock::now() + delay_, std::string(d.buffer.data(), n)});
            d.queued_bytes += n;
          }
          pump(d);
        });
  }

  // The peer closed its sending side and everything it sent was forwarded:
  // so does the proxy; the link ends when both sides did.
  void forward_fin(Direction& d) {
    d.shut = true;
    error_code ignored;
    d.to.shutdown(tcp::socket::shutdown_send, ignored);
    if (up_.shut && down_.shut) close();
  }

  // After a cut: reads and discards until `d.from` closes; closes the link
  // once both sides did.
  void drain(Direction& d) {
    if (state_ != State::cutting || d.reading) return;
    if (!d.drained && d.from.is_open()) {
      d.reading = true;
      d.from.async_read_some(
          net::buffer(d.buffer),
          [self = shared_from_this(), this, &d](error_code ec, std::size_t) {
            d.reading = false;
            if (ec) d.drained = true;
            drain(d);
          });
      return;
    }
    d.drained = true;
    if (up_.drained && down_.drained) close_sockets(false);
  }

  void close_sockets(bool reset) {
    state_ = State::ended;
    error_code ignored;
    for (tcp::socket* s : {&client_, &target_}) {
      if (reset && s->is_open()) {
        s->set_option(net::socket_base::linger(true, 0), ignored);
      }
      s->close(ignored);
    }
    up_.timer.cancel();
    down_.timer.cancel();
    linger_timer_.cancel();
    up_.queue.clear();
    down_.queue.clear();
  }

  Impl& proxy_;
  tcp::socket client_;
  tcp::socket target_;
  net::steady_timer linger_timer_;
  Direction up_;    // client → target
  Direction down_;  // target → client
  LinkMode mode_;
  Duration delay_;
  State state_ = State::connecting;
};

}  // namespace internal_proxy

absl::Status TcpFaultProxyOptions::validate() const {
  internal_proxy::error_code ec;
  internal_proxy::net::ip::make_address(target_host, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat(
        "TcpFaultProxyOptions: target_host must be an IP address, got \"",
        target_host, "\""));
  }
  if (target_port == 0) {
    return absl::InvalidArgumentError(
        "TcpFaultProxyOptions: target_port must be set, got 0");
  }
  return absl::OkStatus();
}

absl::Status TcpFaultProxy::Impl::open() {
  target_ = internal_proxy::tcp::endpoint(
      internal_proxy::net::ip::make_address(options_.target_host),
      options_.target_port);
  if (absl::Status s = listen(); !s.ok()) return s;
  server_thread_.start();
  return absl::OkStatus();
}

absl::Status TcpFaultProxy::Impl::listen() {
  if (absl::Status s =
          internal::listen_on_loopback(acceptor_, port_, "TcpFaultProxy");
      !s.ok()) {
    return s;
  }
  port_ = acceptor_.local_endpoint().port();
  do_accept();
  return absl::OkStatus();
}

void TcpFaultProxy::Impl::shutdown() {
  server_thread_.stop([this] {
    stopping_ = true;
    internal_proxy::error_code ignored;
    acceptor_.close(ignored);
    for (const auto& link : links_) link->close();
  });
}

void TcpFaultProxy::Impl::do_accept() {
  acceptor_.async_accept([this](internal_proxy::error_code ec,
                                internal_proxy::tcp::socket socket) {
    if (stopping_ || ec == internal_proxy::net::error::operation_aborted) {
      return;
    }
    if (!ec) on_accepted(std::move(socket));
    if (acceptor_.is_open()) do_accept();
  });
}

void TcpFaultProxy::Impl::on_accepted(internal_proxy::tcp::socket socket) {
  auto link = std::make_shared<internal_proxy::Link>(*this, std::move(socket),
                                                     new_mode_, new_delay_);
  links_.push_back(link);
  server_thread_.update([&] {
    ++connections_accepted_;
    ++open_links_;
  });
  link->start();
}

void TcpFaultProxy::Impl::with_link(
    std::size_t link, const std::function<void(internal_proxy::Link&)>& fn) {
  server_thread_.run_on_io([&] {
    if (link < links_.size()) fn(*links_[link]);
  });
}

void TcpFaultProxy::Impl::for_each_link(
    const std::function<void(internal_proxy::Link&)>& fn) {
  server_thread_.run_on_io([&] {
    for (const auto& link : links_) fn(*link);
  });
}

// --- TcpFaultProxy ----------------------------------------------------------

absl::StatusOr<std::unique_ptr<TcpFaultProxy>> TcpFaultProxy::start(
    TcpFaultProxyOptions options) {
  if (absl::Status s = options.validate(); !s.ok()) return s;
  auto impl = std::make_unique<Impl>(std::move(options));
  if (absl::Status s = impl->open(); !s.ok()) return s;
  return std::unique_ptr<TcpFaultProxy>(new TcpFaultProxy(std::move(impl)));
}

TcpFaultProxy::TcpFaultProxy(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

TcpFaultProxy::~TcpFaultProxy() { impl_->shutdown(); }

std::uint16_t TcpFaultProxy::port() const { return impl_->port_; }

std::string TcpFaultProxy::url() const {
  return absl::StrCat("tcp://127.0.0.1:", impl_->port_);
}

void TcpFaultProxy::set_mode(LinkMode mode, Duration delay) {
  assert((mode != LinkMode::delay || delay > Duration::zero()) &&
         "set_mode(): LinkMode::delay needs a delay > 0");
  set_new_link_mode(mode, delay);
  impl_->for_each_link(
      [&](internal_proxy::Link& l) { l.set_mode(mode, delay); });
}

void TcpFaultProxy::set_link_mode(std::size_t link, LinkMode mode,
                                  Duration delay) {
  assert((mode != LinkMode::delay || delay > Duration::zero()) &&
         "set_link_mode(): LinkMode::delay needs a delay > 0");
  impl_->with_link(link,
                   [&](internal_proxy::Link& l) { l.set_mode(mode, delay); });
}

void TcpFaultProxy::set_new_link_mode(LinkMode mode, Duration delay) {
  assert((mode != LinkMode::delay || delay > Duration::zero()) &&
         "set_new_link_mode(): LinkMode::delay needs a delay > 0");
  impl_->server_thread_.run_on_io([&] {
    impl_->new_mode_ = mode;
    impl_->new_delay_ = delay;
  });
}

absl::Status TcpFaultProxy::set_refusing(bool refuse) {
  absl::Status status;
  impl_->server_thread_.run_on_io([&] {
    if (refuse) {
      internal_proxy::error_code ignored;
      impl_->acceptor_.close(ignored);
    } else if (!impl_->acceptor_.is_open()) {
      status = impl_->listen();
    }
  });
  return status;
}

void TcpFaultProxy::cut_all() {
  impl_->for_each_link([](internal_proxy::Link& l) { l.cut(); });
}

void TcpFaultProxy::cut(std::size_t link) {
  impl_->with_link(link, [](internal_proxy::Link& l) { l.cut(); });
}

void TcpFaultProxy::reset_all() {
  impl_->for_each_link([](internal_proxy::Link& l) { l.reset(); });
}

void TcpFaultProxy::reset(std::size_t link) {
  impl_->with_link(link, [](internal_proxy::Link& l) { l.reset(); });
}

std::size_t TcpFaultProxy::connections_accepted() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->connections_accepted_;
}

std::size_t TcpFaultProxy::open_links() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->open_links_;
}

std::size_t TcpFaultProxy::target_failures() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->target_failures_;
}

std::uint64_t TcpFaultProxy::bytes_to_target() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->bytes_to_target_;
}

std::uint64_t TcpFaultProxy::bytes_to_client() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->bytes_to_client_;
}

bool TcpFaultProxy::wait_for(const std::function<bool()>& condition,
                             Duration timeout) const {
  return impl_->server_thread_.wait_for(condition, timeout);
}

}  // namespace feedkit::testing
