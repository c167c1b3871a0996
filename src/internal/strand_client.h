// SPDX-License-Identifier: Apache-2.0
//
// src/internal/strand_client.h: what every feed client's Impl (WsClient,
// MqttClient) needs to live on one strand of the caller's io_context. Not API.
//
//   StrandClient<Derived, Stats>
//                          CRTP base of a client's Impl: the strand, the
//                          injected clock, timers whose stale waits are void
//                          (sequence numbers), every asynchronous operation
//                          counted so that stop() knows when nothing of the
//                          client runs any more, the `done` callbacks of
//                          stop(), a work guard while a credentials fetch is
//                          outstanding, and the state with its on_state call.
//                          Also the reconnect cycle both clients share: the
//                          backoff, breaker, subscriptions and gap tracker,
//                          the strand's counters and their published
//                          snapshot, start()/stop()/unwant()/resubscribe(),
//                          the first attempt, the breaker's gate on every
//                          attempt, the wait for the next one after a loss,
//                          and the stable timer once live. And the
//                          credentials: fetched for each login (fresh ones
//                          after a rejection), refreshed before they expire.
//   StatsSnapshot<Stats>   what stats() returns from any thread: the strand's
//                          counters copied under a mutex.
//   FrameCounters          the per-frame counters, atomics bumped on the hot
//                          path (possibly off the strand) and read by stats().
//   next_refresh_time()    when to refresh credentials before they expire.
//
// Derived must provide, all called on the strand (it may keep them private
// and befriend its base):
//   void attempt();          start a connection attempt (begins with
//                            begin_attempt())
//   void drive();            act on the subscriptions (want/unwant/...)
//   void on_stop_started();  close its transport (stop() was just processed)
// and may provide void on_start() (start() was just processed, once) and
// bool on_credentials_refreshed() (see refresh_credentials()). It holds
// `provider_` (a CredentialsProvider) and `options_` with refresh_lead and
// auth_refresh_cooldown.
//
// Thread safety: everything but StatsSnapshot and FrameCounters is used on
// the strand only.
#pragma once

#include <algorithm>
#include <atomic>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>  // std::mutex, not absl::Mutex: Debian builds Abseil without TSan hooks
#include <optional>
#include <string>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "feedkit/backoff.h"
#include "feedkit/circuit_breaker.h"
#include "feedkit/clock.h"
#include "feedkit/connection.h"
#include "feedkit/epoch.h"
#include "feedkit/subscription_set.h"

namespace feedkit::internal {

namespace net = boost::asio;
using Strand = net::strand<net::io_context::executor_type>;

// The longest single timer wait (keeps time arithmetic far from overflow).
inline constexpr Duration kMaxWait = std::chrono::hours(24 * 365);

// A timer on the client's strand. Every arm and cancel bumps `seq`, so a
// wait that has already completed but not yet run is void too.
struct StrandTimer {
  // `runs_while_stopping`: may be armed after stop() (to bound a close).
  explicit StrandTimer(const Strand& strand, bool runs_while_stopping = false)
      : timer(strand), runs_while_stopping(runs_while_stopping) {}
  net::steady_timer timer;
  std::uint64_t seq = 0;
  const bool runs_while_stopping;
};

// Returns when to refresh credentials that expire at `expires`: `lead`
// before, but at most one refresh per max(cooldown, 1 s) after the last one
// (`last_request`, or SteadyTime{} for none), so a provider that keeps
// returning nearly expired credentials cannot make the client spin. Returns
// SteadyTime::max() for credentials that never expire.
inline SteadyTime next_refresh_time(SteadyTime expires, Duration lead,
                                    Duration cooldown,
                                    SteadyTime last_request) {
  if (expires == SteadyTime::max()) return SteadyTime::max();
  const Duration floor = std::max<Duration>(cooldown, std::chrono::seconds(1));
  SteadyTime at = expires - lead;
  if (last_request != SteadyTime{}) at = std::max(at, last_request + floor);
  return at;
}

// The counters bumped per frame. Relaxed atomics: each is a count on its own.
struct FrameCounters {
  std::atomic<std::uint64_t> frames_in{0};
  std::atomic<std::uint64_t> frames_out{0};
  std::atomic<std::uint64_t> data_frames{0};
  std::atomic<std::uint64_t> parse_errors{0};
  std::atomic<std::uint64_t> late_frames{0};

  static void bump(std::atomic<std::uint64_t>& counter) {
    counter.fetch_add(1, std::memory_order_relaxed);
  }

  // Copies the counts into `s`.
  void fill(ConnectionStats& s) const {
    s.frames_in = frames_in.load(std::memory_order_relaxed);
    s.frames_out = frames_out.load(std::memory_order_relaxed);
    s.data_frames = data_frames.load(std::memory_order_relaxed);
    s.parse_errors = parse_errors.load(std::memory_order_relaxed);
    s.late_frames_discarded = late_frames.load(std::memory_order_relaxed);
  }
};

// The last published stats and the time the state was entered. Thread-safe.
template <class Stats>
class StatsSnapshot {
 public:
  void store(const Stats& stats, SteadyTime state_since) {
    std::lock_guard lock(mu_);
    stats_ = stats;
    state_since_ = state_since;
  }

  // Returns the stats with time_in_state at `now` and the frame counters.
  Stats load(SteadyTime now, const FrameCounters& frames) const {
    Stats s;
    SteadyTime since;
    {
      std::lock_guard lock(mu_);
      s = stats_;
      since = state_since_;
    }
    s.time_in_state = std::max(Duration::zero(), now - since);
    frames.fill(s);
    return s;
  }

 private:
  mutable std::mutex mu_;
  Stats stats_ ABSL_GUARDED_BY(mu_);
  SteadyTime state_since_ ABSL_GUARDED_BY(mu_){};
};

template <class Derived, class Stats>
class StrandClient : public std::enable_shared_from_this<Derived> {
 public:
  StrandClient(net::io_context& ioc, Clock& clock,
               std::function<void(ConnectionState, ConnectionState)> on_state,
               Backoff backoff, CircuitBreaker breaker, SubscriptionSet subs)
      : ioc_(ioc),
        strand_(net::make_strand(ioc)),
        clock_(clock),
        on_state_(std::move(on_state)),
        state_since_(clock.now()),
        backoff_(std::move(backoff)),
        breaker_(std::move(breaker)),
        subs_(std::move(subs)),
        backoff_timer_(strand_),
        stable_timer_(strand_),
        refresh_timer_(strand_) {}

  // --- Public entry points (any thread): post to the strand. ---------------

  void start() {
    post([](Derived& self) { self.do_start(); });
  }
  void stop(std::function<void()> done) {
    post([done = std::move(done)](Derived& self) mutable {
      self.do_stop(std::move(done));
    });
  }
  void unwant(std::string key) {
    post([key = std::move(key)](Derived& self) {
      if (self.stopping_) return;
      self.subs_.unwant(key);
      self.drive();
      self.publish();
    });
  }
  void resubscribe(std::string key) {
    post([key = std::move(key)](Derived& self) {
      if (self.stopping_) return;
      self.subs_.resubscribe(key);
      self.drive();
      self.publish();
    });
  }

  // Posts `f(derived)` to the strand, keeping the client alive until it ran.
  // Any thread.
  template <class F>
  void post(F f) {
    net::post(strand_, [self = this->shared_from_this(),
                        f = std::move(f)]() mutable { f(*self); });
  }

  // Runs stop(): closes the transport (Derived::on_stop_started), cancels
  // nothing else (Derived does), and calls `done` once nothing of the client
  // runs any more; later calls' `done` run once stopping has finished.
  void do_stop(std::function<void()> done) {
    if (done) dones_.push_back(std::move(done));
    if (state_ == ConnectionState::stopped) {
      run_dones();
      return;
    }
    if (stopping_) return;
    stopping_ = true;
    work_.reset();  // a provider that never answers must not keep run() going
    derived().on_stop_started();
    maybe_finish_stop();
  }

 protected:
  Derived& derived() { return static_cast<Derived&>(*this); }

  void on_start() {}                                // Derived's hides it
  bool on_credentials_refreshed() { return true; }  // Derived's hides it

  // Copies the strand-side counters and state into the snapshot stats()
  // returns.
  void publish() {
    Stats s = counters_;  // the strand's counters; the rest below
    s.state = state_;
    s.epoch = gaps_.epoch().current();
    s.subscriptions = subs_.stats();
    s.breaker = breaker_.stats(clock_.now());
    s.backoff = backoff_.stats();
    snapshot_.store(s, state_since_);
  }

  // start(): the first attempt, now or after the backoff's first delay.
  void do_start() {
    if (stopping_ || started_) return;
    started_ = true;
    derived().on_start();
    const SteadyTime now = clock_.now();
    const SteadyTime at = backoff_.first_attempt_at(now);
    attempt_started_ = now;
    if (at > now) {
      set_state(ConnectionState::backoff);
      arm(backoff_timer_, at, [this] { derived().attempt(); });
      publish();
      return;
    }
    derived().attempt();
  }

  // Begins an attempt at `now`: takes the breaker's permit and counts the
  // attempt, or (breaker open) counts the rejection, waits in backoff until
  // the breaker lets an attempt through, and returns false.
  bool begin_attempt(SteadyTime now) {
    permit_ = breaker_.try_acquire(now);
    if (!permit_) {
      ++counters_.breaker_rejections;
      const Duration wait = std::clamp<Duration>(
          breaker_.retry_after(now), std::chrono::milliseconds(1), kMaxWait);
      set_state(ConnectionState::backoff);
      arm(backoff_timer_, now + wait, [this] { derived().attempt(); });
      publish();
      return false;
    }
    attempt_started_ = now;
    ++counters_.connect_attempts;
    return true;
  }

  // The connection is up: the breaker counts the attempt a success.
  void record_connected(SteadyTime now) {
    if (permit_) {
      breaker_.record_success(*permit_, now);
      permit_.reset();
    }
  }

  // Live at `now`: the backoff resets once live for `stable_after`.
  void go_live(SteadyTime now, Duration stable_after) {
    set_state(ConnectionState::live);
    if (stable_after == Duration::zero()) {
      backoff_.report_stable();
      return;
    }
    arm(stable_timer_, now + stable_after, [this] {
      backoff_.report_stable();
      publish();
    });
  }

  // The connection (already closed, its disconnect counted) was lost at
  // `lost_at` for `reason`: the breaker counts a failure, the gap opens, the
  // subscriptions are reset, and the next attempt waits for the backoff.
  void wait_for_next_attempt(GapReason reason, SteadyTime lost_at,
                             SteadyTime now) {
    if (permit_) {
      breaker_.record_failure(*permit_, now);
      permit_.reset();
    }
    gaps_.on_disconnected(lost_at, reason);
    subs_.on_disconnected(now);
    const SteadyTime at = backoff_.next_attempt_at(attempt_started_, now);
    set_state(ConnectionState::backoff);
    arm(backoff_timer_, at, [this] { derived().attempt(); });
    publish();
  }

  // From on_stop_started(): no next attempt, the permit back to the breaker,
  // nothing left pending in the subscriptions' stats.
  void end_attempts(SteadyTime now) {
    cancel(backoff_timer_);
    if (permit_) {
      breaker_.release(*permit_, now);
      permit_.reset();
    }
    subs_.on_disconnected(now);
  }

  // Returns `f` bound to the strand and counted in pending_ops_ until it has
  // run. Every asynchronous operation of the client goes through here.
  template <class F>
  auto wrap(F f) {
    ++pending_ops_;
    return net::bind_executor(strand_,
                              [self = this->shared_from_this(),
                               f = std::move(f)](auto&&... args) mutable {
                                --self->pending_ops_;
                                f(std::forward<decltype(args)>(args)...);
                                self->maybe_finish_stop();
                              });
  }

  // Arms `t` to run `f` on the strand at `at` (clock_'s time, converted to a
  // wait so that an injected clock cannot make it spin). A later arm or
  // cancel() voids the wait, even one that has already completed. Does
  // nothing once stopping, unless `t` runs while stopping.
  template <class F>
  void arm(StrandTimer& t, SteadyTime at, F f) {
    if (stopping_ && !t.runs_while_stopping) return;
    const std::uint64_t seq = ++t.seq;
    const SteadyTime now = clock_.now();
    const Duration wait =
        at <= now ? Duration::zero() : std::min(kMaxWait, at - now);
    t.timer.expires_after(wait);
    t.timer.async_wait(wrap([this, &t, seq, f = std::move(f)](
                                const boost::system::error_code& ec) mutable {
      if (ec || seq != t.seq) return;
      f();
    }));
  }

  void cancel(StrandTimer& t) {
    ++t.seq;
    t.timer.cancel();
  }

  // Moves to `to`, publishes (so stats() agrees with what on_state reports)
  // and calls on_state.
  void set_state(ConnectionState to) {
    if (to == state_) return;
    const ConnectionState from = state_;
    state_ = to;
    state_since_ = clock_.now();
    publish();
    if (on_state_) on_state_(from, to);
  }

  // Calls `provider(force, done)`; its answer comes back to
  // `on_answer(result)` on the strand, from whatever thread calls `done`
  // (a second `done` is posted too: on_answer must ignore it). Until the
  // answer arrives the io_context is kept running, unless stop() comes first.
  template <class F>
  void fetch_credentials(const CredentialsProvider& provider, bool force,
                         F on_answer) {
    ++fetches_outstanding_;
    if (!work_) work_.emplace(net::make_work_guard(ioc_));
    std::weak_ptr<Derived> weak = this->weak_from_this();
    provider(force, [weak, on_answer](absl::StatusOr<Credentials> result) {
      std::shared_ptr<Derived> self = weak.lock();
      if (!self) return;
      net::post(self->strand_,
                [self, on_answer, result = std::move(result)]() mutable {
                  if (self->fetches_outstanding_ > 0)
                    --self->fetches_outstanding_;
                  if (self->fetches_outstanding_ == 0) self->work_.reset();
                  on_answer(std::move(result));
                });
    });
  }

  // --- Credentials ----------------------------------------------------------

  // Asks the provider for a login's credentials: fresh ones once after
  // force_refresh_next(). `on_answer(result)` runs on the strand, once, for
  // the latest request only, and never once stopping. (Adopt a good answer
  // with adopt_credentials().)
  template <class F>
  void request_login_credentials(F on_answer) {
    const bool force = std::exchange(force_refresh_next_, false);
    if (force) {
      ++counters_.credential_refreshes;
      last_forced_refresh_ = clock_.now();
      publish();
    }
    const std::uint64_t seq = ++credentials_seq_;
    fetch_credentials(
        derived().provider_, force,
        [this, seq, on_answer](absl::StatusOr<Credentials> result) mutable {
          if (stopping_ || seq != credentials_seq_) return;
          ++credentials_seq_;  // a second `done` is ignored
          on_answer(std::move(result));
        });
  }

  // The broker refused the credentials at `now`: the next login asks for
  // fresh ones, at most once per auth_refresh_cooldown.
  void force_refresh_next(SteadyTime now) {
    if (last_forced_refresh_ == SteadyTime{} ||
        now - last_forced_refresh_ >=
            derived().options_.auth_refresh_cooldown) {
      force_refresh_next_ = true;
    }
  }

  // Makes `c` the current credentials and arms their refresh.
  void adopt_credentials(Credentials c) {
    credentials_ = std::move(c);
    arm_refresh();
  }

  net::io_context& ioc_;
  Strand strand_;
  Clock& clock_;
  const std::function<void(ConnectionState, ConnectionState)> on_state_;
  ConnectionState state_ = ConnectionState::disconnected;
  SteadyTime state_since_{};
  bool stopping_ = false;

  Backoff backoff_;
  CircuitBreaker breaker_;
  SubscriptionSet subs_;
  GapTracker gaps_;
  StrandTimer backoff_timer_;  // next attempt (backoff or breaker wait)
  StrandTimer stable_timer_;   // live for stable_after → report_stable()
  StrandTimer refresh_timer_;  // credentials, refresh_lead before expiry
  Credentials credentials_;    // the latest adopted
  bool started_ = false;
  std::optional<CircuitBreaker::Permit> permit_;
  SteadyTime attempt_started_{};
  Stats counters_;  // the strand's counters (published by publish())

  // Read by stats() from any thread.
  StatsSnapshot<Stats> snapshot_;
  FrameCounters frames_;

 private:
  // Arms the refresh `refresh_lead` before the credentials expire (at most
  // one refresh per max(auth_refresh_cooldown, 1 s), so a provider that
  // keeps returning near-expired credentials cannot make it spin).
  void arm_refresh() {
    const SteadyTime at = next_refresh_time(
        credentials_.expires_at, derived().options_.refresh_lead,
        derived().options_.auth_refresh_cooldown, last_refresh_request_);
    if (at == SteadyTime::max()) {
      cancel(refresh_timer_);
      return;
    }
    arm(refresh_timer_, at, [this] { refresh_credentials(); });
  }

  // Fetches fresh credentials between logins. A good answer becomes the
  // current credentials, then Derived's on_credentials_refreshed() may act on
  // them (false: it dropped the connection, whose next login re-arms). A
  // failed refresh keeps the old credentials and tries again later.
  void refresh_credentials() {
    if (stopping_) return;
    last_refresh_request_ = clock_.now();
    ++counters_.credential_refreshes;
    publish();
    const std::uint64_t seq = ++refresh_seq_;
    fetch_credentials(derived().provider_, true,
                      [this, seq](absl::StatusOr<Credentials> result) {
                        if (stopping_ || seq != refresh_seq_) return;
                        ++refresh_seq_;
                        if (result.ok()) {
                          credentials_ = *std::move(result);
                          if (!derived().on_credentials_refreshed()) return;
                        }
                        arm_refresh();
                      });
  }

  void maybe_finish_stop() {
    if (!stopping_ || pending_ops_ != 0 || state_ == ConnectionState::stopped)
      return;
    set_state(ConnectionState::stopped);
    publish();
    run_dones();
  }

  void run_dones() {
    std::vector<std::function<void()>> dones = std::move(dones_);
    dones_.clear();
    for (auto& done : dones) done();
  }

  std::size_t pending_ops_ = 0;
  std::vector<std::function<void()>> dones_;
  std::size_t fetches_outstanding_ = 0;
  std::uint64_t credentials_seq_ = 0;  // the latest login fetch
  std::uint64_t refresh_seq_ = 0;      // the latest refresh fetch
  bool force_refresh_next_ = false;
  SteadyTime last_forced_refresh_{};
  SteadyTime last_refresh_request_{};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
};

}  // namespace feedkit::internal
