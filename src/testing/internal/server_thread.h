// SPDX-License-Identifier: Apache-2.0
// ServerThread: the thread, io_context and "something changed" signal shared
// by the loopback test servers (FaultyWsServer, TcpFaultProxy, WsTcpBridge,
// LoopbackHttpServer), with the two set-up steps they share:
// listen_on_loopback() and make_tls_server_context().
//
// What it does:
// - start() runs the io_context on its own thread until stop();
//   run_on_io(fn) runs `fn` there and waits for it (inline when called on
//   that thread).
// - stop(close, grace) posts `close` (the owner closes its acceptor and
//   sockets), lets the thread finish what the closed sockets still owe for up
//   to `grace`, then stops the io_context (a pending timer is abandoned) and
//   joins. Idempotent; the destructor stops without a close.
// - The owner keeps its observed state under its own mutex (given to the
//   constructor) and calls changed() with that mutex held after each change
//   (update(fn) locks, runs `fn`, and calls it). wait_for() evaluates a
//   condition without the lock at every change, and at least every 10 ms,
//   until it holds or the timeout passes.
//
// Thread safety: run_on_io(), changed(), update() and wait_for() from any
// thread; start() and stop() from the owner's thread (not the server
// thread). ioc() is for creating I/O objects and posting work.
//
// Example:
//   mutable std::mutex mu_;
//   std::size_t accepted_ = 0;            // under mu_
//   ServerThread server_thread_{mu_};     // after any ssl::context
//   tcp::acceptor acceptor_{server_thread_.ioc()};
//   ... listen_on_loopback(acceptor_, 0, "MyServer"); server_thread_.start();
//   on accept: server_thread_.update([&] { ++accepted_; });
//   destructor: server_thread_.stop([&] { acceptor_.close(ignored); });
#ifndef FEEDKIT_SRC_TESTING_INTERNAL_SERVER_THREAD_H_
#define FEEDKIT_SRC_TESTING_INTERNAL_SERVER_THREAD_H_

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>  // std::mutex, not absl::Mutex: Debian builds Abseil without TSan hooks
#include <optional>
#include <string>
#include <thread>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "feedkit/clock.h"

namespace feedkit::testing::internal {

// How long stop() lets the server thread finish its work after the owner
// closed every socket, before it stops the io_context.
constexpr auto kShutdownGrace = std::chrono::milliseconds(500);

class ServerThread {
 public:
  // `state_mutex` guards the owner's observed state; it must outlive this.
  explicit ServerThread(std::mutex& state_mutex) : mu_(state_mutex) {}
  ~ServerThread() { stop(); }

  ServerThread(const ServerThread&) = delete;
  ServerThread& operator=(const ServerThread&) = delete;

  boost::asio::io_context& ioc() { return ioc_; }

  void start();
  // Listens `acceptor` on 127.0.0.1:`port` (0: a free port; see
  // listen_on_loopback()), runs `accept` (which starts the first
  // async_accept), then start(); returns the port listened on.
  absl::StatusOr<std::uint16_t> listen_and_start(
      boost::asio::ip::tcp::acceptor& acceptor, std::uint16_t port,
      const char* owner, const std::function<void()>& accept);
  void stop(const std::function<void()>& close = {},
            Duration grace = kShutdownGrace);

  // Runs `fn` on the server thread and waits for it.
  void run_on_io(const std::function<void()>& fn);

  // With the state mutex held: wakes wait_for().
  void changed() {
    ++version_;
    cv_.notify_all();
  }
  // Runs `fn` (which changes the observed state) with the state mutex held,
  // and wakes wait_for().
  void update(const std::function<void()>& fn) {
    std::lock_guard<std::mutex> lock(mu_);
    fn();
    changed();
  }
  bool wait_for(const std::function<bool()>& condition, Duration timeout) const;

 private:
  std::mutex& mu_;
  mutable std::condition_variable cv_;
  std::uint64_t version_ = 0;  // under mu_
  bool thread_done_ = false;   // under mu_

  boost::asio::io_context ioc_{1};
  std::optional<
      boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>
      work_;
  std::thread thread_;
};

// Opens, binds and listens `acceptor` on 127.0.0.1:`port` (0: a free port).
// On failure the acceptor is closed and the error names `owner` and the
// address.
absl::Status listen_on_loopback(boost::asio::ip::tcp::acceptor& acceptor,
                                std::uint16_t port, const char* owner);

// A TLS server context holding `cert_file` and `key_file` (PEM); an error
// naming `owner` and the file that could not be used.
absl::StatusOr<boost::asio::ssl::context> make_tls_server_context(
    const std::string& cert_file, const std::string& key_file,
    const char* owner);

}  // namespace feedkit::testing::internal

#endif  // FEEDKIT_SRC_TESTING_INTERNAL_SERVER_THREAD_H_
