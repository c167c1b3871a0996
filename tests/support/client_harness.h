// SPDX-License-Identifier: Apache-2.0
//
// tests/support/client_harness.h
//
// What the feed-client tests (ws_client_test, mqtt_client_test) share:
//
//   ms_of(), measure()    a duration in ms, and a "[ measure  ]" line.
//   ClientRecorder        records a client's state changes and gaps, counts
//                         data delivered out of epoch, and waits on them. A
//                         test's Recorder derives from it, adds its data
//                         callback and calls record_lifecycle(cb).
//   ClientRunner<C, R>    an io_context on its own thread, recorder R and
//                         client C (WsClient or MqttClient): start(), run(),
//                         wait_live(), stop_and_join() (which fails the test
//                         if stop() or run() do not finish within 3 s). A
//                         test's Harness derives from it, owns the server
//                         and creates client_; its destructor calls finish()
//                         so that the client stops while the server runs.
//
// Thread safety: the recorder's callbacks run on the io_context's thread;
// everything else is called by the test thread.
//
// Example:
//   class Recorder : public testing::ClientRecorder {
//    public:
//     Recorder() : ClientRecorder(kWait) {}
//     WsClientCallbacks callbacks() {
//       WsClientCallbacks cb;
//       cb.on_data = ...;  // lock mu_, count, check_epoch_locked(epoch)
//       record_lifecycle(cb);
//       return cb;
//     }
//   };
//   class Harness : public testing::ClientRunner<WsClient, Recorder> {...};
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange
#include <vector>

#include "feedkit/clock.h"
#include "feedkit/connection.h"
#include "feedkit/epoch.h"

namespace feedkit::testing {

inline double ms_of(Duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

inline void measure(const char* what, Duration d) {
  std::printf("[ measure  ] %s: %.1f ms\n", what, ms_of(d));
  std::fflush(stdout);
}

class ClientRecorder {
 public:
  struct StateChange {
    ConnectionState from;
    ConnectionState to;
    SteadyTime at;
  };

  // `default_wait`: the timeout of wait() and wait_for_stats() without one.
  explicit ClientRecorder(Duration default_wait)
      : default_wait_(default_wait) {}

  // Blocks until `pred()` (called under the recorder's lock) holds or
  // `timeout` passes; returns whether it held.
  template <class Pred>
  bool wait(Pred pred) {
    return wait(pred, default_wait_);
  }
  template <class Pred>
  bool wait(Pred pred, Duration timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return pred(); });
  }

  // Blocks until `pred(client.stats())` holds, re-checking on every callback
  // and at least every 5 ms (stats counters change without a callback).
  template <class Client, class Pred>
  bool wait_for_stats(const Client& client, Pred pred) {
    return wait_for_stats(client, pred, default_wait_);
  }
  template <class Client, class Pred>
  bool wait_for_stats(const Client& client, Pred pred, Duration timeout) {
    const SteadyTime deadline = SteadyClock::now() + timeout;
    std::unique_lock lock(mu_);
    while (true) {
      lock.unlock();
      const bool ok = pred(client.stats());
      lock.lock();
      if (ok) return true;
      if (SteadyClock::now() >= deadline) return false;
      cv_.wait_for(lock, std::chrono::milliseconds(5));
    }
  }

  // Accessors for use inside wait() predicates (the lock is held there).
  const std::vector<GapEvent>& gaps_locked() const { return gaps_; }
  ConnectionState state_locked() const {
    return states_.empty() ? ConnectionState::disconnected : states_.back().to;
  }
  bool reached_locked(ConnectionState s) const {
    for (const auto& c : states_) {
      if (c.to == s) return true;
    }
    return false;
  }

  // Snapshots for the test thread.
  std::vector<SteadyTime> times_to(ConnectionState s) const {
    std::lock_guard lock(mu_);
    std::vector<SteadyTime> out;
    for (const auto& c : states_) {
      if (c.to == s) out.push_back(c.at);
    }
    return out;
  }
  std::vector<StateChange> states() const {
    std::lock_guard lock(mu_);
    return states_;
  }
  std::vector<GapEvent> gaps() const {
    std::lock_guard lock(mu_);
    return gaps_;
  }
  std::uint64_t out_of_epoch() const {
    std::lock_guard lock(mu_);
    return out_of_epoch_;
  }

 protected:
  // Sets `cb.on_gap` and `cb.on_state` to record here.
  template <class Callbacks>
  void record_lifecycle(Callbacks& cb) {
    cb.on_gap = [this](const GapEvent& gap) {
      {
        std::lock_guard lock(mu_);
        gaps_.push_back(gap);
      }
      cv_.notify_all();
    };
    cb.on_state = [this](ConnectionState from, ConnectionState to) {
      {
        std::lock_guard lock(mu_);
        states_.push_back({from, to, SteadyClock::now()});
      }
      cv_.notify_all();
    };
  }

  // With mu_ held: data must carry the epoch announced last (1 before any
  // gap); counts it otherwise.
  void check_epoch_locked(std::uint64_t epoch) {
    const std::uint64_t expected = gaps_.empty() ? 1 : gaps_.back().new_epoch;
    if (epoch != expected) ++out_of_epoch_;
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;

 private:
  const Duration default_wait_;
  std::vector<GapEvent> gaps_;
  std::vector<StateChange> states_;
  std::uint64_t out_of_epoch_ = 0;
};

template <class Client, class Recorder>
class ClientRunner {
 public:
  ClientRunner() = default;
  ClientRunner(const ClientRunner&) = delete;
  ClientRunner& operator=(const ClientRunner&) = delete;
  ~ClientRunner() { finish(); }

  Recorder& rec() { return rec_; }
  Client& client() { return *client_; }
  boost::asio::io_context& ioc() { return ioc_; }
  // For tests that stop the client and run the io_context themselves.
  void mark_stopped() { stopped_ = true; }

  // Starts the client (wanting `keys` first) and runs the io_context on a
  // thread.
  void start(std::vector<std::string> keys = {}) {
    for (auto& k : keys) client_->want(std::move(k));
    client_->start();
    run();
  }

  void run() {
    runner_ = std::thread([this] {
      ioc_.run();
      {
        std::lock_guard lock(run_mu_);
        run_returned_ = true;
      }
      run_cv_.notify_all();
    });
  }

  bool wait_live() {
    return rec_.wait(
        [&] { return rec_.state_locked() == ConnectionState::live; });
  }
  bool wait_live(Duration timeout) {
    return rec_.wait(
        [&] { return rec_.state_locked() == ConnectionState::live; }, timeout);
  }

  // Calls stop(), waits for its `done` and for run() to return; returns the
  // time from stop() to `done`. Fails the test if either takes over 3 s.
  Duration stop_and_join() {
    using std::chrono::seconds;
    stopped_ = true;
    std::mutex mu;
    std::condition_variable cv;
    int done_calls = 0;
    SteadyTime done_at{};
    const SteadyTime asked = SteadyClock::now();
    client_->stop([&] {
      std::lock_guard lock(mu);
      ++done_calls;
      done_at = SteadyClock::now();
      cv.notify_all();
    });
    {
      std::unique_lock lock(mu);
      EXPECT_TRUE(cv.wait_for(lock, seconds(3), [&] { return done_calls > 0; }))
          << "stop() did not complete";
    }
    {
      std::unique_lock lock(run_mu_);
      EXPECT_TRUE(run_cv_.wait_for(lock, seconds(3), [&] {
        return run_returned_;
      })) << "io_context::run() did not return after stop()";
    }
    if (runner_.joinable()) {
      bool returned;
      {
        std::lock_guard lock(run_mu_);
        returned = run_returned_;
      }
      if (!returned) ioc_.stop();
      runner_.join();
    }
    std::lock_guard lock(mu);
    EXPECT_EQ(done_calls, 1);
    EXPECT_EQ(client_->stats().state, ConnectionState::stopped);
    return done_calls > 0 ? done_at - asked : Duration::max();
  }

 protected:
  // Stops the client (unless the test did) and the io_context's thread.
  // Idempotent; a Harness owning a server calls it first in its destructor.
  void finish() {
    if (client_ && !stopped_) stop_and_join();
    if (runner_.joinable()) {
      ioc_.stop();
      runner_.join();
    }
  }

  boost::asio::io_context ioc_;
  Recorder rec_;
  std::shared_ptr<Client> client_;

 private:
  std::thread runner_;
  std::mutex run_mu_;
  std::condition_variable run_cv_;
  bool run_returned_ = false;
  bool stopped_ = false;
};

}  // namespace feedkit::testing
