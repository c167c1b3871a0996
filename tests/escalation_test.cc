// Test that header file is self-contained.
#include "feedkit/escalation.h"

#include <gtest/gtest.h>

#include <chrono>
#include <vector>

namespace feedkit {
namespace {

using std::chrono::seconds;

constexpr SymbolId kA = static_cast<SymbolId>(0);
constexpr SymbolId kB = static_cast<SymbolId>(1);

SteadyTime at(int s) { return SteadyTime{} + seconds(s); }

HealthTransition goes(SymbolId symbol, HealthState from, HealthState to,
                      int s) {
  return {symbol, from, to, at(s)};
}

EscalationAction resubscribe(SymbolId s) {
  return {EscalationStep::resubscribe, s, GapReason::stall};
}
EscalationAction reconnect(SymbolId s) {
  return {EscalationStep::reconnect, s, GapReason::stall};
}
EscalationAction exhausted(SymbolId s) {
  return {EscalationStep::exhausted, s, GapReason::stall};
}

// Options with round numbers: resubscribe grace 10 s, reconnect grace 20 s,
// reconnects coalesced within 5 s, at most 2 per symbol.
EscalationOptions options() {
  EscalationOptions o;
  o.resubscribe_grace = seconds(10);
  o.reconnect_grace = seconds(20);
  o.min_reconnect_interval = seconds(5);
  o.max_reconnects = 2;
  return o;
}

class LadderTest : public ::testing::Test {
 protected:
  // Steps the ladder at second `s` and returns the actions it asked for.
  std::vector<EscalationAction> step(
      int s, std::vector<HealthTransition> transitions = {}) {
    std::vector<EscalationAction> out;
    ladder_.step(transitions, at(s), out);
    return out;
  }

  EscalationLadder ladder_ = EscalationLadder::create(options()).value();
};

using Actions = std::vector<EscalationAction>;

TEST_F(LadderTest, StaleSymbolIsResubscribedOnce) {
  EXPECT_EQ(step(0, {goes(kA, HealthState::suspect, HealthState::stale, 0)}),
            Actions{resubscribe(kA)});
  EXPECT_EQ(ladder_.rung(kA), EscalationStep::resubscribe);
  // Still stale (a repeated transition, or none) within the grace: nothing.
  EXPECT_EQ(step(1, {goes(kA, HealthState::suspect, HealthState::stale, 1)}),
            Actions{});
  EXPECT_EQ(step(9), Actions{});
  EXPECT_EQ(ladder_.stats().resubscribes, 1u);
  EXPECT_EQ(ladder_.stats().climbing, 1u);
}

TEST_F(LadderTest, NeverSeenSymbolThatGoesStaleClimbsToo) {
  EXPECT_EQ(step(0, {goes(kA, HealthState::never_seen, HealthState::stale, 0)}),
            Actions{resubscribe(kA)});
}

TEST_F(LadderTest, RecoveryAfterResubscribeEndsTheClimb) {
  step(0, {goes(kA, HealthState::suspect, HealthState::stale, 0)});
  EXPECT_EQ(step(3, {goes(kA, HealthState::stale, HealthState::fresh, 3)}),
            Actions{});
  EXPECT_EQ(ladder_.rung(kA), std::nullopt);
  EXPECT_EQ(step(60), Actions{});  // no reconnect later
  const EscalationStats s = ladder_.stats();
  EXPECT_EQ(s.recovered_after_resubscribe, 1u);
  EXPECT_EQ(s.reconnects, 0u);
  EXPECT_EQ(s.climbing, 0u);
}

TEST_F(LadderTest, StillStaleAfterResubscribeGraceReconnectsAtTheGrace) {
  step(0, {goes(kA, HealthState::suspect, HealthState::stale, 0)});
  EXPECT_EQ(step(9), Actions{});
  EXPECT_EQ(step(10), Actions{reconnect(kA)});
  EXPECT_EQ(ladder_.rung(kA), EscalationStep::reconnect);
  EXPECT_EQ(step(12, {goes(kA, HealthState::stale, HealthState::fresh, 12)}),
            Actions{});
  EXPECT_EQ(ladder_.stats().recovered_after_reconnect, 1u);
}

TEST_F(LadderTest, GivesUpAfterMaxReconnectsAndReportsOnce) {
  step(0, {goes(kA, HealthState::suspect, HealthState::stale, 0)});
  EXPECT_EQ(step(10), Actions{reconnect(kA)});
  EXPECT_EQ(step(29), Actions{});
  EXPECT_EQ(step(30), Actions{reconnect(kA)});  // second of max 2
  EXPECT_EQ(step(50), Actions{exhausted(kA)});
  EXPECT_EQ(step(500), Actions{});  // given up: no more actions, ever
  EXPECT_EQ(ladder_.rung(kA), EscalationStep::exhausted);
  EXPECT_EQ(ladder_.stats().exhausted, 1u);
  EXPECT_EQ(ladder_.stats().reconnects, 2u);
  // It still recovers (and a later staleness starts a fresh climb).
  step(600, {goes(kA, HealthState::stale, HealthState::fresh, 600)});
  EXPECT_EQ(ladder_.stats().recovered_exhausted, 1u);
  EXPECT_EQ(
      step(700, {goes(kA, HealthState::suspect, HealthState::stale, 700)}),
      Actions{resubscribe(kA)});
}

TEST_F(LadderTest, SymbolsGoingQuietTogetherCostOneReconnect) {
  EXPECT_EQ(step(0, {goes(kA, HealthState::suspect, HealthState::stale, 0),
                     goes(kB, HealthState::suspect, HealthState::stale, 0)}),
            (Actions{resubscribe(kA), resubscribe(kB)}));
  EXPECT_EQ(step(10), Actions{reconnect(kA)});
  EXPECT_EQ(ladder_.rung(kB), EscalationStep::reconnect);
  EXPECT_EQ(ladder_.stats().coalesced, 1u);
  // Both count that reconnect: their next rung is due together, 20 s later,
  // and again only one reconnect goes out.
  EXPECT_EQ(step(30), Actions{reconnect(kA)});
  EXPECT_EQ(ladder_.stats().reconnects, 2u);
  EXPECT_EQ(ladder_.stats().coalesced, 2u);
}

TEST_F(LadderTest, ReconnectJustIssuedForAnotherSymbolCountsAsThisOnes) {
  step(0, {goes(kA, HealthState::suspect, HealthState::stale, 0)});
  step(3, {goes(kB, HealthState::suspect, HealthState::stale, 3)});
  EXPECT_EQ(step(10), Actions{reconnect(kA)});
  // B's grace ends at 13, 3 s after A's reconnect: B shares it.
  EXPECT_EQ(step(13), Actions{});
  EXPECT_EQ(ladder_.rung(kB), EscalationStep::reconnect);
  // B's reconnect grace counts from 10, not 13.
  EXPECT_EQ(step(30), Actions{reconnect(kA)});
  // 8 s after that reconnect, a new symbol's grace ends: not coalesced.
  const SymbolId c = static_cast<SymbolId>(2);
  step(28, {goes(c, HealthState::suspect, HealthState::stale, 28)});
  EXPECT_EQ(step(38), Actions{reconnect(c)});
}

TEST_F(LadderTest, StaleFeedReconnectsAtOnceCoalesced) {
  EXPECT_EQ(step(0, {goes(kFeedId, HealthState::fresh, HealthState::stale, 0)}),
            Actions{reconnect(kFeedId)});
  step(1, {goes(kFeedId, HealthState::stale, HealthState::fresh, 1)});
  EXPECT_EQ(step(2, {goes(kFeedId, HealthState::fresh, HealthState::stale, 2)}),
            Actions{});
  EXPECT_EQ(step(8, {goes(kFeedId, HealthState::fresh, HealthState::stale, 8)}),
            Actions{reconnect(kFeedId)});
  EXPECT_EQ(ladder_.stats().feed_reconnects, 2u);
  EXPECT_EQ(ladder_.stats().coalesced, 1u);
  EXPECT_EQ(ladder_.stats().climbing, 0u);  // the feed is not a climber
}

TEST_F(LadderTest, SuspendedSymbolLeavesWithoutCredit) {
  step(0, {goes(kA, HealthState::suspect, HealthState::stale, 0)});
  step(5, {goes(kA, HealthState::stale, HealthState::suspended, 5)});
  EXPECT_EQ(step(60), Actions{});
  const EscalationStats s = ladder_.stats();
  EXPECT_EQ(s.climbing, 0u);
  EXPECT_EQ(s.recovered_after_resubscribe, 0u);
}

TEST_F(LadderTest, SuspectIsNotStaleYet) {
  EXPECT_EQ(step(0, {goes(kA, HealthState::fresh, HealthState::suspect, 0)}),
            Actions{});
  EXPECT_EQ(ladder_.stats().climbing, 0u);
}

TEST(Ladder, ZeroReconnectsResubscribesThenGivesUp) {
  EscalationOptions o = options();
  o.max_reconnects = 0;
  auto ladder = EscalationLadder::create(o).value();
  std::vector<EscalationAction> out;
  const std::vector<HealthTransition> stale = {
      goes(kA, HealthState::suspect, HealthState::stale, 0)};
  ladder.step(stale, at(0), out);
  ladder.step({}, at(10), out);
  EXPECT_EQ(out, (Actions{resubscribe(kA), exhausted(kA)}));
}

TEST(Ladder, RejectsOptionsOutOfRangeNamingTheField) {
  const auto error_of = [](auto change) {
    EscalationOptions o = options();
    change(o);
    return std::string(EscalationLadder::create(o).status().message());
  };
  EXPECT_NE(error_of([](auto& o) {
              o.resubscribe_grace = seconds(0);
            }).find("resubscribe_grace"),
            std::string::npos);
  EXPECT_NE(error_of([](auto& o) {
              o.reconnect_grace = seconds(-1);
            }).find("reconnect_grace"),
            std::string::npos);
  EXPECT_NE(error_of([](auto& o) {
              o.min_reconnect_interval = std::chrono::hours(2);
            }).find("min_reconnect_interval"),
            std::string::npos);
  EXPECT_NE(
      error_of([](auto& o) { o.max_reconnects = 101; }).find("max_reconnects"),
      std::string::npos);
  EXPECT_TRUE(EscalationOptions::suggested().validate().ok());
}

}  // namespace
}  // namespace feedkit
