// SPDX-License-Identifier: Apache-2.0
#include "internal/server_thread.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <future>

#include "absl/strings/str_cat.h"

namespace feedkit::testing::internal {

void ServerThread::start() {
  work_.emplace(ioc_.get_executor());
  thread_ = std::thread([this] {
    ioc_.run();
    std::lock_guard<std::mutex> lock(mu_);
    thread_done_ = true;
    cv_.notify_all();
  });
}

absl::StatusOr<std::uint16_t> ServerThread::listen_and_start(
    boost::asio::ip::tcp::acceptor& acceptor, std::uint16_t port,
    const char* owner, const std::function<void()>& accept) {
  if (absl::Status s = listen_on_loopback(acceptor, port, owner); !s.ok()) {
    return s;
  }
  accept();
  start();
  return acceptor.local_endpoint().port();
}

void ServerThread::stop(const std::function<void()>& close, Duration grace) {
  if (!thread_.joinable()) return;
  if (close) boost::asio::post(ioc_, close);
  work_.reset();
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, grace, [&] { return thread_done_; });
  }
  ioc_.stop();  // a Beast timer may still be pending: do not wait for it
  thread_.join();
}

void ServerThread::run_on_io(const std::function<void()>& fn) {
  if (std::this_thread::get_id() == thread_.get_id()) return fn();
  std::promise<void> done;
  std::future<void> finished = done.get_future();
  boost::asio::post(ioc_, [&] {
    fn();
    done.set_value();
  });
  finished.wait();
}

bool ServerThread::wait_for(const std::function<bool()>& condition,
                            Duration timeout) const {
  const SteadyTime deadline = SteadyClock::now() + timeout;
  while (true) {
    std::uint64_t seen = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      seen = version_;
    }
    // Evaluated without the lock: the condition reads the owner's state
    // through its own locking getters.
    if (condition()) return true;
    const SteadyTime now = SteadyClock::now();
    if (now >= deadline) return false;
    const Duration wait =
        std::min<Duration>(deadline - now, std::chrono::milliseconds(10));
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, wait, [&] { return version_ != seen; });
  }
}

absl::Status listen_on_loopback(boost::asio::ip::tcp::acceptor& acceptor,
                                std::uint16_t port, const char* owner) {
  namespace net = boost::asio;
  const net::ip::tcp::endpoint endpoint(net::ip::make_address_v4("127.0.0.1"),
                                        port);
  boost::system::error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    boost::system::error_code ignored;
    acceptor.close(ignored);
    return absl::UnavailableError(absl::StrCat(
        owner, ": cannot listen on 127.0.0.1:", port, ": ", ec.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<boost::asio::ssl::context> make_tls_server_context(
    const std::string& cert_file, const std::string& key_file,
    const char* owner) {
  namespace ssl = boost::asio::ssl;
  ssl::context context(ssl::context::tls_server);
  boost::system::error_code ec;
  context.use_certificate_chain_file(cert_file, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat(
        owner, ": cannot use cert_file \"", cert_file, "\": ", ec.message()));
  }
  context.use_private_key_file(key_file, ssl::context::pem, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat(
        owner, ": cannot use key_file \"", key_file, "\": ", ec.message()));
  }
  return context;
}

}  // namespace feedkit::testing::internal
