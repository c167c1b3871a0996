// Test that header file is self-contained.
#include "feedkit/subscription_set.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "feedkit/testing/fake_clock.h"

namespace feedkit {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Kind = SubscriptionAction::Kind;
using Actions = std::vector<SubscriptionAction>;

constexpr SteadyTime kT0 = testing::FakeClock::kEpoch;

// Pacing loose enough that it never gets in the way of a test.
constexpr RateLimiterOptions kNoPacing = {.rate_per_second = 1e6, .burst = 1e6};

SubscriptionSet make(SubscriptionSetOptions options = {.pacing = kNoPacing}) {
  return SubscriptionSet::create(options, kT0).value();
}

std::vector<std::string> symbols(int n) {
  std::vector<std::string> keys;
  for (int i = 0; i < n; ++i) {
    keys.push_back("H0STCNT0|" + std::to_string(5930 + i));
  }
  return keys;
}

std::vector<std::string> keys_of(const Actions& actions, Kind kind) {
  std::vector<std::string> keys;
  for (const auto& a : actions) {
    if (a.kind == kind) keys.push_back(a.key);
  }
  return keys;
}

// A KIS-like broker: registrations per session up to `cap`, "ALREADY IN
// SUBSCRIBE" for a key it holds, "MAX SUBSCRIBE OVER" beyond the cap. With
// keeps_state it keeps the registrations across reconnects, as the server did
// in the 2026-01-15 incident.
class FakeBroker {
 public:
  FakeBroker(bool keeps_state, std::size_t cap)
      : keeps_state_(keeps_state), cap_(cap) {}

  void connect() {
    if (!keeps_state_) held_.clear();
  }

  void answer(SubscriptionSet& subs, const Actions& actions, SteadyTime now) {
    for (const auto& a : actions) {
      ++frames_;
      if (a.kind == Kind::unsubscribe) {
        held_.erase(a.key);
        (void)subs.on_unsubscribed(a.key, now);
      } else if (held_.count(a.key) != 0) {
        (void)subs.on_already_subscribed(a.key, now);
      } else if (held_.size() >= cap_) {
        (void)subs.on_max_subscriptions(a.key, now);
      } else {
        held_.insert(a.key);
        (void)subs.on_ack(a.key, now);
      }
    }
  }

  // Calls next_actions() and answers at every next_action_time() until the
  // set settles; returns every action in order. Fails after 1000 rounds.
  Actions drive(SubscriptionSet& subs, SteadyTime& now) {
    Actions all, batch;
    for (int round = 0; round < 1000; ++round) {
      subs.next_actions(now, batch);
      answer(subs, batch, now);
      all.insert(all.end(), batch.begin(), batch.end());
      if (subs.settled()) return all;
      now = std::max(now, subs.next_action_time(now));
    }
    ADD_FAILURE() << "the subscription set never settled";
    return all;
  }

  const std::set<std::string>& held() const { return held_; }
  int frames() const { return frames_; }

 private:
  bool keeps_state_;
  std::size_t cap_;
  std::set<std::string> held_;
  int frames_ = 0;
};

// Subscribes everything on a first connection (answered by `broker`), drops
// it, and connects again: the state every reconnect test starts from.
void first_connection_then_reconnect(SubscriptionSet& subs, FakeBroker& broker,
                                     SteadyTime now, bool broker_keeps_state) {
  subs.on_connected(now, broker_keeps_state);
  broker.drive(subs, now);
  subs.on_disconnected(now);
  subs.on_connected(now, broker_keeps_state);
  broker.connect();
}

TEST(SubscriptionSet, RejectsInvalidOptions) {
  auto no_cap = SubscriptionSet::create({.max_per_connection = 0}, kT0);
  ASSERT_FALSE(no_cap.ok());
  EXPECT_EQ(no_cap.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(no_cap.status().message().find("max_per_connection"),
            std::string::npos);

  auto no_timeout =
      SubscriptionSet::create({.confirm_timeout = Duration::zero()}, kT0);
  ASSERT_FALSE(no_timeout.ok());
  EXPECT_NE(no_timeout.status().message().find("confirm_timeout"),
            std::string::npos);

  auto no_attempts = SubscriptionSet::create({.max_attempts = 0}, kT0);
  ASSERT_FALSE(no_attempts.ok());
  EXPECT_NE(no_attempts.status().message().find("max_attempts"),
            std::string::npos);

  auto bad_pacing =
      SubscriptionSet::create({.pacing = {.rate_per_second = 0}}, kT0);
  ASSERT_FALSE(bad_pacing.ok());
  EXPECT_NE(bad_pacing.status().message().find("pacing"), std::string::npos);
  EXPECT_TRUE(SubscriptionSetOptions::suggested().validate().ok());
}

TEST(SubscriptionSet, SendsNothingWhileDisconnected) {
  auto subs = make();
  EXPECT_TRUE(subs.want("A"));
  EXPECT_FALSE(subs.want("A"));  // already wanted
  Actions actions;
  EXPECT_EQ(subs.next_actions(kT0, actions), 0u);
  EXPECT_EQ(subs.next_action_time(kT0), SteadyTime::max());
  EXPECT_EQ(subs.state("A"), SubscriptionState::waiting);
  EXPECT_FALSE(subs.settled());
}

TEST(SubscriptionSet, SubscribesEveryWantedKeyInOrderOnFirstConnection) {
  auto subs = make();
  for (const auto& k : symbols(4)) subs.want(k);
  subs.on_connected(kT0, /*broker_keeps_state=*/false);
  Actions actions;
  ASSERT_EQ(subs.next_actions(kT0, actions), 4u);
  EXPECT_EQ(keys_of(actions, Kind::subscribe), symbols(4));
  EXPECT_EQ(subs.stats().pending, 4u);
  for (const auto& k : symbols(4)) EXPECT_TRUE(subs.on_ack(k, kT0));
  EXPECT_TRUE(subs.settled());
  EXPECT_EQ(subs.stats().confirmed, 4u);
  EXPECT_EQ(subs.next_action_time(kT0), SteadyTime::max());
}

TEST(SubscriptionSet, ReconnectUnsubscribesEveryKeyBeforeAnySubscribe) {
  // Pacing of 2 frames at once, so the order must hold across calls too.
  auto subs = make({.pacing = {.rate_per_second = 10, .burst = 2}});
  const auto keys = symbols(5);
  for (const auto& k : keys) subs.want(k);
  FakeBroker broker(/*keeps_state=*/true, 41);
  SteadyTime now = kT0;
  subs.on_connected(now, true);
  broker.connect();
  broker.drive(subs, now);
  subs.on_disconnected(now);
  now += seconds(3);

  subs.on_connected(now, /*broker_keeps_state=*/true);
  broker.connect();
  const Actions actions = broker.drive(subs, now);
  ASSERT_EQ(actions.size(), 10u);
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(actions[i].kind, Kind::unsubscribe) << i;
    EXPECT_EQ(actions[i].key, keys[i]);
    EXPECT_EQ(actions[5 + i].kind, Kind::subscribe) << i;
    EXPECT_EQ(actions[5 + i].key, keys[i]);
  }
  EXPECT_EQ(subs.stats().confirmed, 5u);
  EXPECT_EQ(subs.stats().already_subscribed, 0u);  // cleaned up first
}

TEST(SubscriptionSet, ReconnectOnlySubscribesWhenBrokerKeepsNoState) {
  auto subs = make();
  for (const auto& k : symbols(3)) subs.want(k);
  FakeBroker broker(/*keeps_state=*/false, 41);
  SteadyTime now = kT0;
  first_connection_then_reconnect(subs, broker, now,
                                  /*broker_keeps_state=*/false);
  const Actions actions = broker.drive(subs, now);
  EXPECT_EQ(keys_of(actions, Kind::subscribe), symbols(3));
  EXPECT_TRUE(keys_of(actions, Kind::unsubscribe).empty());
  EXPECT_EQ(subs.stats().confirmed, 3u);
}

// Regression, 2026-01-15: the collector reconnected without unsubscribing,
// the KIS server still held every registration and answered ALREADY IN
// SUBSCRIBE; the collector treated that as a failure, retried 3 times, gave
// up, and 4.8 hours of ticks were lost. Here the set is configured like the
// seed (no unsubscribe on reconnect), so every subscribe hits ALREADY IN.
TEST(SubscriptionSet, Incident20260115AlreadyInSubscribeOnReconnectConfirms) {
  auto subs = make({.confirm_timeout = seconds(5),
                    .max_attempts = 3,
                    .pacing = {.rate_per_second = 5, .burst = 5}});
  const auto keys = symbols(30);
  for (const auto& k : keys) subs.want(k);
  FakeBroker broker(/*keeps_state=*/true, 41);
  SteadyTime now = kT0;
  subs.on_connected(now, /*broker_keeps_state=*/false);
  broker.drive(subs, now);
  subs.on_disconnected(now);
  now += seconds(5);

  subs.on_connected(now, /*broker_keeps_state=*/false);
  broker.connect();  // keeps all 30 registrations
  const Actions actions = broker.drive(subs, now);

  SubscriptionStats s = subs.stats();
  EXPECT_EQ(s.confirmed, 30u);  // nothing given up
  EXPECT_EQ(s.already_subscribed, 30u);
  EXPECT_EQ(s.unconfirmed + s.rejected + s.over_cap + s.lost, 0u);
  EXPECT_EQ(s.retries, 0u);
  EXPECT_EQ(s.timeouts, 0u);
  EXPECT_EQ(actions.size(), 30u);  // bounded: one subscribe per key
  EXPECT_EQ(broker.frames(), 60);  // both connections, nothing more
  // And nothing more later: no retry storm.
  now += seconds(60);
  Actions later;
  EXPECT_EQ(subs.next_actions(now, later), 0u);
  EXPECT_EQ(subs.next_action_time(now), SteadyTime::max());
}

TEST(SubscriptionSet, Incident20260115UnsubscribeFirstAvoidsAlreadyIn) {
  auto subs = make();
  for (const auto& k : symbols(30)) subs.want(k);
  FakeBroker broker(/*keeps_state=*/true, 41);
  SteadyTime now = kT0;
  first_connection_then_reconnect(subs, broker, now,
                                  /*broker_keeps_state=*/true);
  const Actions actions = broker.drive(subs, now);
  EXPECT_EQ(actions.size(), 60u);  // 30 unsubscribes, then 30 subscribes
  EXPECT_EQ(subs.stats().confirmed, 30u);
  EXPECT_EQ(subs.stats().already_subscribed, 0u);
  EXPECT_EQ(broker.held().size(), 30u);
}

TEST(SubscriptionSet, PacesFramesThroughTheRateLimiter) {
  auto subs = make({.pacing = {.rate_per_second = 2, .burst = 3}});
  const auto keys = symbols(6);
  for (const auto& k : keys) subs.want(k);
  subs.on_connected(kT0, false);
  Actions actions;
  EXPECT_EQ(subs.next_actions(kT0, actions), 3u);  // the burst
  EXPECT_EQ(keys_of(actions, Kind::subscribe),
            std::vector<std::string>(keys.begin(), keys.begin() + 3));
  EXPECT_EQ(subs.next_actions(kT0, actions), 0u);  // no token left
  EXPECT_EQ(subs.state(keys[3]), SubscriptionState::waiting);
  const SteadyTime next = subs.next_action_time(kT0);
  EXPECT_EQ(next, kT0 + milliseconds(500));  // one token at 2/s
  EXPECT_EQ(subs.next_actions(next - milliseconds(1), actions), 0u);
  ASSERT_EQ(subs.next_actions(next, actions), 1u);
  EXPECT_EQ(actions[0].key, keys[3]);
  ASSERT_EQ(subs.next_actions(next + seconds(1), actions), 2u);
  EXPECT_EQ(actions[1].key, keys[5]);
  EXPECT_EQ(subs.stats().subscribes_sent, 6u);
}

TEST(SubscriptionSet, UnansweredSubscribeIsRetriedThenReportedUnconfirmed) {
  auto subs = make(
      {.confirm_timeout = seconds(5), .max_attempts = 3, .pacing = kNoPacing});
  subs.want("A");
  subs.want("B");
  subs.on_connected(kT0, false);
  Actions actions;
  ASSERT_EQ(subs.next_actions(kT0, actions), 2u);
  ASSERT_TRUE(subs.on_ack("B", kT0 + milliseconds(20)));
  EXPECT_EQ(subs.next_action_time(kT0), kT0 + seconds(5));

  int subscribes_of_a = 1;
  SteadyTime now = kT0;
  for (int round = 0; round < 10; ++round) {
    const SteadyTime next = subs.next_action_time(now);
    if (next == SteadyTime::max()) break;
    now = next;
    subs.next_actions(now, actions);
    subscribes_of_a +=
        static_cast<int>(keys_of(actions, Kind::subscribe).size());
    for (const auto& a : actions) EXPECT_EQ(a.key, "A");
  }
  EXPECT_EQ(subscribes_of_a, 3);  // max_attempts, then no more
  EXPECT_EQ(now, kT0 + seconds(15));
  EXPECT_EQ(subs.state("A"), SubscriptionState::unconfirmed);
  EXPECT_EQ(subs.unconfirmed_keys(), std::vector<std::string>{"A"});
  SubscriptionStats s = subs.stats();
  EXPECT_EQ(s.timeouts, 3u);
  EXPECT_EQ(s.retries, 2u);
  EXPECT_EQ(s.unconfirmed, 1u);
  EXPECT_EQ(s.desired, 2u);  // still wanted: reported, never forgotten
  EXPECT_TRUE(subs.settled());

  // The next connection tries it again.
  subs.on_disconnected(now);
  subs.on_connected(now + seconds(1), false);
  subs.next_actions(now + seconds(1), actions);
  EXPECT_EQ(keys_of(actions, Kind::subscribe),
            (std::vector<std::string>{"A", "B"}));
}

TEST(SubscriptionSet, LateAckAfterTimeoutStillConfirms) {
  auto subs = make(
      {.confirm_timeout = seconds(5), .max_attempts = 1, .pacing = kNoPacing});
  subs.want("A");
  subs.on_connected(kT0, false);
  Actions actions;
  subs.next_actions(kT0, actions);
  subs.next_actions(kT0 + seconds(6), actions);
  ASSERT_EQ(subs.state("A"), SubscriptionState::unconfirmed);
  EXPECT_TRUE(subs.on_ack("A", kT0 + seconds(7)));
  EXPECT_EQ(subs.state("A"), SubscriptionState::confirmed);
  EXPECT_EQ(subs.stats().max_confirm_latency, seconds(7));
}

TEST(SubscriptionSet, MaxSubscribeOverLearnsTheCapAndReportsTheRest) {
  auto subs = make();
  const auto keys = symbols(6);
  for (const auto& k : keys) subs.want(k);
  FakeBroker broker(/*keeps_state=*/false, /*cap=*/3);
  SteadyTime now = kT0;
  subs.on_connected(now, false);
  broker.drive(subs, now);

  SubscriptionStats s = subs.stats();
  EXPECT_EQ(s.confirmed, 3u);
  EXPECT_EQ(s.over_cap, 3u);
  EXPECT_EQ(s.max_subscription_replies, 3u);
  ASSERT_TRUE(s.learned_cap.has_value());
  EXPECT_EQ(*s.learned_cap, 3u);
  EXPECT_EQ(subs.cap(), 3u);
  EXPECT_EQ(subs.over_cap_keys(),
            std::vector<std::string>(keys.begin() + 3, keys.end()));
  EXPECT_EQ(s.desired, 6u);  // reported, not forgotten
  // No retry loop against the cap.
  Actions actions;
  EXPECT_EQ(subs.next_actions(now + seconds(60), actions), 0u);
  EXPECT_EQ(subs.next_action_time(now + seconds(60)), SteadyTime::max());

  // The next connection sends only as many as the learned cap.
  subs.on_disconnected(now);
  subs.on_connected(now, false);
  broker.connect();
  const Actions again = broker.drive(subs, now);
  EXPECT_EQ(keys_of(again, Kind::subscribe),
            std::vector<std::string>(keys.begin(), keys.begin() + 3));
  EXPECT_EQ(subs.stats().over_cap, 3u);
  EXPECT_EQ(subs.stats().max_subscription_replies, 3u);  // no new OVER
}

TEST(SubscriptionSet, OverCapKeyTakesTheSlotAnUnwantFrees) {
  auto subs = make();
  for (const auto& k : symbols(4)) subs.want(k);
  FakeBroker broker(/*keeps_state=*/false, /*cap=*/3);
  SteadyTime now = kT0;
  subs.on_connected(now, false);
  broker.drive(subs, now);
  ASSERT_EQ(subs.over_cap_keys(), std::vector<std::string>{symbols(4)[3]});

  EXPECT_TRUE(subs.unwant(symbols(4)[0]));
  const Actions actions = broker.drive(subs, now);
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions[0], (SubscriptionAction{Kind::unsubscribe, symbols(4)[0]}));
  EXPECT_EQ(actions[1], (SubscriptionAction{Kind::subscribe, symbols(4)[3]}));
  EXPECT_EQ(subs.stats().confirmed, 3u);
  EXPECT_FALSE(subs.state(symbols(4)[0]).has_value());  // removed on reply
}

TEST(SubscriptionSet, ConfiguredCapLimitsSubscribesAndReportsOverCap) {
  auto subs = make({.max_per_connection = 2, .pacing = kNoPacing});
  for (const auto& k : symbols(3)) subs.want(k);
  subs.on_connected(kT0, false);
  Actions actions;
  ASSERT_EQ(subs.next_actions(kT0, actions), 2u);
  EXPECT_EQ(subs.over_cap_keys(), std::vector<std::string>{symbols(3)[2]});
  EXPECT_FALSE(subs.stats().learned_cap.has_value());
  EXPECT_EQ(subs.stats().cap, 2u);
}

TEST(SubscriptionSet, LearnedCapOfZeroProbesOneKeyOnNextConnection) {
  auto subs = make();
  for (const auto& k : symbols(3)) subs.want(k);
  FakeBroker broker(/*keeps_state=*/false, /*cap=*/0);
  SteadyTime now = kT0;
  subs.on_connected(now, false);
  broker.drive(subs, now);
  EXPECT_EQ(subs.cap(), 0u);
  EXPECT_EQ(subs.stats().over_cap, 3u);

  subs.on_disconnected(now);
  subs.on_connected(now, false);
  const Actions actions = broker.drive(subs, now);
  EXPECT_EQ(actions.size(), 1u);  // one probe, not a storm
  EXPECT_EQ(subs.stats().over_cap, 3u);
}

TEST(SubscriptionSet, RejectedKeyStaysRejectedUntilWantedAgain) {
  auto subs = make();
  subs.want("BAD");
  subs.want("GOOD");
  subs.on_connected(kT0, false);
  Actions actions;
  subs.next_actions(kT0, actions);
  EXPECT_TRUE(subs.on_reject("BAD", "invalid tr_key", kT0));
  EXPECT_TRUE(subs.on_ack("GOOD", kT0));
  EXPECT_EQ(subs.rejected_keys(), std::vector<std::string>{"BAD"});
  EXPECT_EQ(subs.reject_reason("BAD"), "invalid tr_key");
  EXPECT_TRUE(subs.settled());

  subs.on_disconnected(kT0);
  subs.on_connected(kT0, false);
  subs.next_actions(kT0, actions);
  EXPECT_EQ(keys_of(actions, Kind::subscribe),
            std::vector<std::string>{"GOOD"});
  EXPECT_EQ(subs.state("BAD"), SubscriptionState::rejected);

  EXPECT_TRUE(subs.want("BAD"));  // re-armed
  subs.next_actions(kT0, actions);
  EXPECT_EQ(keys_of(actions, Kind::subscribe), std::vector<std::string>{"BAD"});
}

TEST(SubscriptionSet, RetryableErrorRetriesWithinMaxAttempts) {
  auto subs = make({.max_attempts = 2, .pacing = kNoPacing});
  subs.want("A");
  subs.on_connected(kT0, false);
  Actions actions;
  ASSERT_EQ(subs.next_actions(kT0, actions), 1u);
  EXPECT_TRUE(subs.on_retryable_error("A", kT0));
  ASSERT_EQ(subs.next_actions(kT0, actions), 1u);  // retried at once
  EXPECT_TRUE(subs.on_retryable_error("A", kT0));
  EXPECT_EQ(subs.next_actions(kT0, actions), 0u);
  EXPECT_EQ(subs.state("A"), SubscriptionState::unconfirmed);
  EXPECT_EQ(subs.stats().retryable_errors, 2u);
  EXPECT_EQ(subs.stats().retries, 1u);
}

TEST(SubscriptionSet, DisconnectMarksConfirmedKeysLostUntilConfirmedAgain) {
  auto subs = make();
  subs.want("A");
  subs.want("B");
  subs.want("C");
  subs.on_connected(kT0, false);
  Actions actions;
  subs.next_actions(kT0, actions);
  subs.on_ack("A", kT0);
  subs.on_ack("B", kT0);  // C never confirmed: not lost, it never flowed
  EXPECT_TRUE(subs.lost_keys().empty());

  subs.on_disconnected(kT0 + seconds(1));
  EXPECT_EQ(subs.lost_keys(), (std::vector<std::string>{"A", "B"}));
  EXPECT_EQ(subs.stats().lost, 2u);
  EXPECT_EQ(subs.stats().waiting, 3u);
  EXPECT_EQ(subs.stats().disconnects, 1u);

  subs.on_connected(kT0 + seconds(2), false);
  subs.next_actions(kT0 + seconds(2), actions);
  EXPECT_EQ(actions.size(), 3u);
  subs.on_ack("A", kT0 + seconds(2));
  EXPECT_EQ(subs.lost_keys(), std::vector<std::string>{"B"});
}

TEST(SubscriptionSet, UnwantSendsUnsubscribeAndRemovesOnReply) {
  auto subs = make();
  subs.want("A");
  subs.want("B");
  subs.on_connected(kT0, false);
  Actions actions;
  subs.next_actions(kT0, actions);
  subs.on_ack("A", kT0);
  subs.on_ack("B", kT0);

  EXPECT_TRUE(subs.unwant("A"));
  EXPECT_FALSE(subs.unwant("A"));
  EXPECT_EQ(subs.state("A"), SubscriptionState::unsubscribing);
  EXPECT_FALSE(subs.settled());
  ASSERT_EQ(subs.next_actions(kT0, actions), 1u);
  EXPECT_EQ(actions[0], (SubscriptionAction{Kind::unsubscribe, "A"}));
  EXPECT_TRUE(subs.on_unsubscribed("A", kT0));
  EXPECT_FALSE(subs.state("A").has_value());
  EXPECT_EQ(subs.size(), 1u);
  EXPECT_TRUE(subs.settled());
}

TEST(SubscriptionSet, UnansweredUnsubscribeDropsTheKeyAfterTimeout) {
  auto subs = make(
      {.confirm_timeout = seconds(5), .max_attempts = 3, .pacing = kNoPacing});
  subs.want("A");
  subs.on_connected(kT0, false);
  Actions actions;
  subs.next_actions(kT0, actions);
  subs.on_ack("A", kT0);
  subs.unwant("A");
  subs.next_actions(kT0, actions);
  EXPECT_EQ(subs.next_action_time(kT0), kT0 + seconds(5));
  subs.next_actions(kT0 + seconds(5), actions);
  EXPECT_FALSE(subs.state("A").has_value());
  EXPECT_EQ(subs.stats().unsubscribe_timeouts, 1u);
}

TEST(SubscriptionSet, UnwantWhileDisconnectedUnsubscribesOnNextConnection) {
  auto subs = make();
  subs.want("A");
  subs.want("B");
  subs.on_connected(kT0, true);
  Actions actions;
  subs.next_actions(kT0, actions);
  subs.on_ack("A", kT0);
  subs.on_ack("B", kT0);
  subs.on_disconnected(kT0);
  EXPECT_TRUE(subs.unwant("A"));
  EXPECT_EQ(subs.size(), 1u);

  subs.on_connected(kT0, /*broker_keeps_state=*/true);
  subs.next_actions(kT0, actions);
  EXPECT_EQ(keys_of(actions, Kind::unsubscribe),
            (std::vector<std::string>{"A", "B"}));
  EXPECT_EQ(keys_of(actions, Kind::subscribe), std::vector<std::string>{"B"});
  EXPECT_TRUE(subs.on_unsubscribed("A", kT0));   // removed
  EXPECT_FALSE(subs.on_unsubscribed("B", kT0));  // cleanup of a wanted key
  EXPECT_FALSE(subs.state("A").has_value());
}

TEST(SubscriptionSet, UnwantOfANeverSentKeyRemovesItAtOnce) {
  auto subs = make();
  subs.want("A");
  EXPECT_TRUE(subs.unwant("A"));
  EXPECT_FALSE(subs.state("A").has_value());
  subs.on_connected(kT0, true);
  Actions actions;
  EXPECT_EQ(subs.next_actions(kT0, actions), 0u);
}

TEST(SubscriptionSet, IgnoresRepliesItDidNotAskFor) {
  auto subs = make();
  subs.want("A");
  EXPECT_FALSE(subs.on_ack("A", kT0));  // disconnected: a late frame
  subs.on_connected(kT0, false);
  EXPECT_FALSE(subs.on_ack("A", kT0));  // nothing sent yet
  EXPECT_FALSE(subs.on_ack("ZZZ", kT0));
  EXPECT_FALSE(subs.on_already_subscribed("ZZZ", kT0));
  EXPECT_FALSE(subs.on_unsubscribed("ZZZ", kT0));
  EXPECT_EQ(subs.stats().unexpected_replies, 5u);
  EXPECT_EQ(subs.state("A"), SubscriptionState::waiting);
}

TEST(SubscriptionSet, ResubscribeUnsubscribesThenSubscribesOneKey) {
  auto subs = make();
  subs.want("A");
  subs.want("B");
  subs.on_connected(kT0, false);
  Actions actions;
  subs.next_actions(kT0, actions);
  subs.on_ack("A", kT0);
  subs.on_ack("B", kT0);

  EXPECT_TRUE(subs.resubscribe("A"));  // A looks stale
  subs.next_actions(kT0, actions);
  EXPECT_EQ(actions,
            (Actions{{Kind::unsubscribe, "A"}, {Kind::subscribe, "A"}}));
  EXPECT_FALSE(subs.on_unsubscribed("A", kT0));  // still wanted
  EXPECT_TRUE(subs.on_ack("A", kT0));
  EXPECT_EQ(subs.stats().confirmed, 2u);
}

TEST(SubscriptionSet, ResubscribeLeavesASubscribeInFlightAlone) {
  auto subs = make();
  subs.want("A");
  subs.want("B");
  subs.on_connected(kT0, false);
  EXPECT_TRUE(subs.resubscribe("A"));  // waiting: about to be subscribed
  Actions actions;
  subs.next_actions(kT0, actions);
  EXPECT_EQ(actions, (Actions{{Kind::subscribe, "A"}, {Kind::subscribe, "B"}}));
  EXPECT_TRUE(subs.resubscribe("A"));  // pending: its reply decides
  subs.next_actions(kT0, actions);
  EXPECT_TRUE(actions.empty());
  EXPECT_EQ(subs.state("A"), SubscriptionState::pending);
  EXPECT_TRUE(subs.on_ack("A", kT0));
  EXPECT_EQ(subs.state("A"), SubscriptionState::confirmed);
}

TEST(SubscriptionSet, RecordsHowLongRestoringTook) {
  auto subs = make();
  subs.want("A");
  subs.want("B");
  subs.on_connected(kT0, false);
  Actions actions;
  subs.next_actions(kT0, actions);
  subs.on_ack("A", kT0 + milliseconds(100));
  EXPECT_EQ(subs.stats().last_restore_time, Duration::zero());
  subs.on_already_subscribed("B", kT0 + milliseconds(300));
  EXPECT_EQ(subs.stats().last_restore_time, milliseconds(300));
  EXPECT_EQ(subs.stats().max_confirm_latency, milliseconds(300));
}

TEST(SubscriptionState, HasSnakeCaseNames) {
  EXPECT_EQ(to_string(SubscriptionState::over_cap), "over_cap");
  EXPECT_EQ(to_string(SubscriptionState::unconfirmed), "unconfirmed");
}

// --- Sharding --------------------------------------------------------------

Sharding make_sharding(std::size_t connections, std::size_t cap) {
  return Sharding::create(
             {.connections = connections, .max_per_connection = cap})
      .value();
}

std::size_t spread(const ShardAssignment& a) {
  std::size_t lo = SIZE_MAX, hi = 0;
  for (const auto& s : a.shards) {
    lo = std::min(lo, s.size());
    hi = std::max(hi, s.size());
  }
  return hi - lo;
}

TEST(Sharding, StableHashIsFnv1a64) {
  // Published FNV-1a 64 test vectors: the same in every build and process.
  EXPECT_EQ(internal::stable_hash(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(internal::stable_hash("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(internal::stable_hash("foobar"), 0x85944171f73967e8ULL);
}

TEST(Sharding, RejectsInvalidOptions) {
  auto none = Sharding::create({.connections = 0});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("connections"), std::string::npos);
  auto no_cap = Sharding::create({.max_per_connection = 0});
  ASSERT_FALSE(no_cap.ok());
  EXPECT_NE(no_cap.status().message().find("max_per_connection"),
            std::string::npos);
}

TEST(Sharding, IsDeterministicWhateverTheInputOrder) {
  const Sharding sharding = make_sharding(4, 41);
  auto keys = symbols(100);
  const ShardAssignment first = sharding.assign(keys);
  std::mt19937 rng(7);
  for (int i = 0; i < 5; ++i) {
    std::shuffle(keys.begin(), keys.end(), rng);
    const ShardAssignment again = sharding.assign(keys);
    EXPECT_EQ(again.shards, first.shards);
  }
  // Pinned, so a change of hash or algorithm across builds is caught.
  const ShardAssignment small = make_sharding(2, 41).assign(
      std::vector<std::string>{"005930", "000660", "035420", "051910"});
  EXPECT_EQ(small.shards, (std::vector<std::vector<std::string>>{
                              {"000660", "051910"}, {"005930", "035420"}}));
}

TEST(Sharding, BalancesWithinOneKeyAndRespectsTheCap) {
  for (std::size_t connections = 1; connections <= 7; ++connections) {
    const Sharding sharding = make_sharding(connections, 41);
    for (int n = 0; n <= 200; n += 7) {
      const ShardAssignment a = sharding.assign(symbols(n));
      ASSERT_EQ(a.shards.size(), connections);
      EXPECT_LE(spread(a), 1u) << connections << " " << n;
      for (const auto& s : a.shards) EXPECT_LE(s.size(), 41u);
      EXPECT_EQ(a.assigned() + a.over_cap.size(), static_cast<std::size_t>(n));
    }
  }
}

TEST(Sharding, ReportsKeysBeyondTheCapInInputOrder) {
  const Sharding sharding = make_sharding(2, 3);
  const auto keys = symbols(8);
  const ShardAssignment a = sharding.assign(keys);
  EXPECT_EQ(a.assigned(), 6u);
  EXPECT_EQ(a.over_cap, std::vector<std::string>(keys.begin() + 6, keys.end()));
  for (const auto& s : a.shards) EXPECT_EQ(s.size(), 3u);
}

TEST(Sharding, IgnoresDuplicateKeys) {
  const Sharding sharding = make_sharding(3, 41);
  const ShardAssignment a =
      sharding.assign(std::vector<std::string>{"A", "B", "A", "C", "B"});
  EXPECT_EQ(a.assigned(), 3u);
  EXPECT_TRUE(a.over_cap.empty());
}

// The bound tested: adding a key moves no existing key (it fills a
// least-loaded connection); removing a key moves at most one.
TEST(Sharding, AddingAKeyMovesNoExistingKey) {
  std::mt19937 rng(42);
  for (std::size_t connections : {2u, 3u, 5u}) {
    const Sharding sharding = make_sharding(connections, 100);
    auto keys = symbols(50);
    ShardAssignment a = sharding.assign(keys);
    for (int i = 0; i < 40; ++i) {
      keys.push_back("H0STASP0|" + std::to_string(rng() % 100000));
      const ShardAssignment b = sharding.rebalance(a, keys);
      EXPECT_EQ(b.moved, 0u);
      EXPECT_LE(spread(b), 1u);
      a = b;
    }
  }
}

TEST(Sharding, RemovingAKeyMovesAtMostOneKey) {
  std::mt19937 rng(43);
  for (std::size_t connections : {2u, 3u, 5u}) {
    const Sharding sharding = make_sharding(connections, 100);
    auto keys = symbols(90);
    ShardAssignment a = sharding.assign(keys);
    while (keys.size() > 10) {
      keys.erase(keys.begin() + static_cast<long>(rng() % keys.size()));
      const ShardAssignment b = sharding.rebalance(a, keys);
      EXPECT_LE(b.moved, 1u);
      EXPECT_LE(spread(b), 1u);
      a = b;
    }
  }
}

TEST(Sharding, AddingAConnectionMovesOnlyWhatBalanceNeeds) {
  const auto keys = symbols(30);
  const ShardAssignment two = make_sharding(2, 41).assign(keys);
  const ShardAssignment three = make_sharding(3, 41).rebalance(two, keys);
  EXPECT_EQ(three.moved, 10u);  // 15/15 -> 10/10/10: the minimum
  EXPECT_EQ(spread(three), 0u);
}

TEST(Sharding, LoweredCapShedsKeysToOtherConnectionsOrOverCap) {
  const auto keys = symbols(12);
  const ShardAssignment wide = make_sharding(2, 41).assign(keys);  // 6/6
  const ShardAssignment narrow = make_sharding(2, 5).rebalance(wide, keys);
  EXPECT_EQ(narrow.assigned(), 10u);
  EXPECT_EQ(narrow.over_cap.size(), 2u);
  for (const auto& s : narrow.shards) EXPECT_EQ(s.size(), 5u);
  EXPECT_LE(narrow.moved, 1u);  // only if both shed keys were on one side
}

}  // namespace
}  // namespace feedkit
