// The escalation ladder end to end, the way a collector wires it: a WsClient
// on a real FaultyWsServer pushes every DATA frame into a Dispatcher; the
// consumer (this test's thread) polls, records into FeedHealth, evaluates it
// after every poll, steps the EscalationLadder and performs its actions on
// the client. The server breaks one key's data in three ways: silently lost
// (a resubscribe fixes it), muted on the connection (only a reconnect fixes
// it), and never sent again (the ladder must give up, not storm).
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "feedkit/dispatcher.h"
#include "feedkit/escalation.h"
#include "feedkit/feed_health.h"
#include "feedkit/testing/faulty_ws_server.h"
#include "feedkit/testing/line_protocol.h"
#include "feedkit/ws_client.h"
#include "support/tick_client.h"

namespace feedkit {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::FaultyWsServer;

constexpr Duration kWait = seconds(10);
constexpr double kFramesPerSecond = 200;  // per key: one every 5 ms

using testing::Tick;
using Event = testing::TickEvent;

double ms_between(SteadyTime from, SteadyTime to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// A collector in miniature: client → Dispatcher → consumer → FeedHealth →
// EscalationLadder → client.
class Collector {
 public:
  Collector() {
    server_ = FaultyWsServer::start().value();
    dispatcher_ = Dispatcher<Event>::create({.capacity = 4096}).value();
    FeedHealthOptions h;
    h.expected_interval = milliseconds(20);  // 4 frames' worth
    h.suspect_factor = 2;
    h.stale_factor = 5;  // stale after 100 ms of silence
    h.feed_timeout = seconds(2);
    h.open_grace = milliseconds(0);
    h.recover_after = 2;
    health_.emplace(FeedHealth::create(h).value());
    a_ = health_->expect("A");
    b_ = health_->expect("B");
    EscalationOptions e;
    e.resubscribe_grace = milliseconds(400);
    e.reconnect_grace = milliseconds(600);
    e.min_reconnect_interval = milliseconds(100);
    e.max_reconnects = 1;
    ladder_.emplace(EscalationLadder::create(e).value());
  }

  ~Collector() {
    testing::stop_tick_client(client_.get(), ioc_, runner_, kWait);
  }

  FaultyWsServer& server() { return *server_; }
  WsClient& client() { return *client_; }
  const EscalationLadder& ladder() const { return *ladder_; }
  std::uint64_t gaps() const { return gaps_; }
  std::uint64_t ticks_a() const { return ticks_a_; }
  std::uint64_t ticks_b() const { return ticks_b_; }

  void start() {
    auto producer = dispatcher_->make_producer().value();
    producer_.emplace(std::move(producer));
    WsClientOptions o = testing::tick_client_options(server_->url());
    o.idle_timeout = seconds(5);
    client_ = testing::make_tick_client(ioc_, o, "s", *producer_);
    client_->want("A");
    client_->want("B");
    client_->start();
    runner_ = std::thread([this] { ioc_.run(); });
    server_->stream("A", kFramesPerSecond);
    server_->stream("B", kFramesPerSecond);
  }

  // Runs the consumer loop until `done()` or kWait; returns whether it held.
  // Every action of the ladder is performed on the client and remembered,
  // with when it happened.
  template <class Pred>
  bool consume_until(Pred done) {
    const SteadyTime deadline = SteadyClock::now() + kWait;
    std::vector<Polled<Event>> batch;
    std::vector<HealthTransition> transitions;
    std::vector<EscalationAction> actions;
    while (!done()) {
      if (SteadyClock::now() >= deadline) return false;
      batch.clear();
      dispatcher_->poll(batch, 256, milliseconds(5));
      for (const auto& e : batch) {
        if (const auto* tick = std::get_if<Tick>(&e.value)) {
          health_->record(tick->is_a ? a_ : b_, tick->recv_time);
          ++(tick->is_a ? ticks_a_ : ticks_b_);
        } else {
          ++gaps_;
        }
      }
      const SteadyTime now = SteadyClock::now();
      transitions.clear();
      health_->evaluate(now, transitions);
      for (const auto& t : transitions) {
        if (t.symbol == a_ && t.to == HealthState::stale) stale_at_ = now;
        if (t.symbol == a_ && t.from == HealthState::stale) recovered_at_ = now;
      }
      actions.clear();
      ladder_->step(transitions, now, actions);
      for (const auto& a : actions) {
        if (a.symbol == a_) taken_.push_back(a.step);
        if (a.step == EscalationStep::resubscribe) {
          client_->resubscribe(std::string(health_->name(a.symbol)));
        } else if (a.step == EscalationStep::reconnect) {
          client_->reconnect(a.reason);
        }
      }
    }
    return true;
  }

  bool a_is(HealthState s) const {
    return health_->state(a_, SteadyClock::now()) == s;
  }
  // The ladder's steps taken for key A (B may see a blip at a reconnect).
  const std::vector<EscalationStep>& taken() const { return taken_; }
  std::optional<SteadyTime> stale_at() const { return stale_at_; }
  std::optional<SteadyTime> recovered_at() const { return recovered_at_; }
  void forget_times() { stale_at_.reset(), recovered_at_.reset(); }

 private:
  std::unique_ptr<FaultyWsServer> server_;
  std::unique_ptr<Dispatcher<Event>> dispatcher_;
  std::optional<Dispatcher<Event>::Producer> producer_;
  std::optional<FeedHealth> health_;
  std::optional<EscalationLadder> ladder_;
  SymbolId a_{}, b_{};
  boost::asio::io_context ioc_;
  std::shared_ptr<WsClient> client_;
  std::thread runner_;
  std::vector<EscalationStep> taken_;
  std::uint64_t gaps_ = 0, ticks_a_ = 0, ticks_b_ = 0;
  std::optional<SteadyTime> stale_at_, recovered_at_;
};

// Starts the collector and waits until both keys flow.
void start_flowing(Collector& c) {
  c.start();
  ASSERT_TRUE(c.consume_until([&] {
    return c.ticks_a() > 20 && c.ticks_b() > 20 && c.a_is(HealthState::fresh);
  }));
  c.forget_times();
}

TEST(EscalationOverWebSocket, LostSubscriptionIsResubscribedWithoutReconnect) {
  Collector c;
  start_flowing(c);
  const SteadyTime fault = SteadyClock::now();
  c.server().lose_subscription("A");
  ASSERT_TRUE(c.consume_until(
      [&] { return c.ladder().stats().recovered_after_resubscribe == 1; }));

  EXPECT_EQ(c.taken(), std::vector{EscalationStep::resubscribe});
  // Exactly one resubscription went out: UNSUB A then SUB A, on connection 0.
  EXPECT_EQ(c.server().count_received("UNSUB A"), 1u);
  EXPECT_EQ(c.server().count_received("SUB A"), 2u);  // first + resubscribe
  const WsClientStats s = c.client().stats();
  EXPECT_EQ(s.reconnects, 0u);
  EXPECT_EQ(s.epoch, 1u);
  EXPECT_EQ(c.gaps(), 0u);
  ASSERT_TRUE(c.stale_at() && c.recovered_at());
  std::printf(
      "[ measure  ] lost key: stale after %.1f ms, data back after "
      "%.1f ms\n",
      ms_between(fault, *c.stale_at()), ms_between(fault, *c.recovered_at()));
}

TEST(EscalationOverWebSocket, MutedKeyIsFixedByOneReconnect) {
  Collector c;
  start_flowing(c);
  const SteadyTime fault = SteadyClock::now();
  c.server().mute("A");
  ASSERT_TRUE(c.consume_until(
      [&] { return c.ladder().stats().recovered_after_reconnect == 1; }));

  EXPECT_EQ(c.taken(), (std::vector{EscalationStep::resubscribe,
                                    EscalationStep::reconnect}));
  const WsClientStats s = c.client().stats();
  EXPECT_EQ(s.reconnects, 1u);
  EXPECT_EQ(s.disconnects_stall, 1u);
  EXPECT_EQ(s.epoch, 2u);
  EXPECT_EQ(c.gaps(), 1u);  // exactly one GapEvent in-band for the boundary
  ASSERT_TRUE(c.stale_at() && c.recovered_at());
  std::printf(
      "[ measure  ] muted key: stale after %.1f ms, data back after "
      "%.1f ms (resubscribe grace 400 ms)\n",
      ms_between(fault, *c.stale_at()), ms_between(fault, *c.recovered_at()));
}

TEST(EscalationOverWebSocket, KeyThatNeverComesBackIsGivenUpNotStormed) {
  Collector c;
  start_flowing(c);
  c.server().stream("A", kFramesPerSecond, 1);  // one more frame, then none
  ASSERT_TRUE(
      c.consume_until([&] { return c.ladder().stats().exhausted == 1; }));
  // Let B flow a while longer: the ladder must stay quiet.
  const std::uint64_t b_then = c.ticks_b();
  ASSERT_TRUE(c.consume_until([&] { return c.ticks_b() > b_then + 100; }));

  EXPECT_EQ(c.taken(),
            (std::vector{EscalationStep::resubscribe, EscalationStep::reconnect,
                         EscalationStep::exhausted}));
  EXPECT_EQ(c.client().stats().reconnects, 1u);  // max_reconnects = 1
  EXPECT_EQ(c.gaps(), 1u);
  EXPECT_TRUE(c.a_is(HealthState::stale));  // still alarming
}

}  // namespace
}  // namespace feedkit
