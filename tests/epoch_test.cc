// Test that header file is self-contained.
#include "feedkit/epoch.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "feedkit/dispatcher.h"
#include "feedkit/testing/fake_clock.h"

namespace feedkit {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr SteadyTime kT0 = testing::FakeClock::kEpoch;

struct Tick {
  std::string symbol;
  long cumulative_volume = 0;
};

using Event = std::variant<Stamped<Tick>, GapEvent>;

static_assert(std::is_nothrow_move_constructible_v<Stamped<Tick>>);
static_assert(std::is_nothrow_move_constructible_v<Event> &&
              std::is_nothrow_move_assignable_v<Event> &&
              std::is_default_constructible_v<Event>);

TEST(ConnectionEpoch, StartsAtZeroAndAdvancesByOne) {
  ConnectionEpoch epoch;
  EXPECT_EQ(epoch.current(), 0u);
  EXPECT_EQ(epoch.advance(), 1u);
  EXPECT_EQ(epoch.advance(), 2u);
  EXPECT_EQ(epoch.current(), 2u);
}

TEST(ConnectionEpoch, DiscardsAndCountsLateFramesOfOlderConnections) {
  ConnectionEpoch epoch;
  const std::uint64_t first = epoch.advance();
  EXPECT_TRUE(epoch.is_current(first));
  const std::uint64_t second = epoch.advance();
  EXPECT_FALSE(epoch.is_current(first));  // a late frame of connection 1
  EXPECT_FALSE(epoch.is_current(first));
  EXPECT_TRUE(epoch.is_current(second));
  EXPECT_EQ(epoch.discarded_late(), 2u);
  ConnectionEpochStats s = epoch.stats();
  EXPECT_EQ(s.current, 2u);
  EXPECT_EQ(s.discarded_late, 2u);
}

TEST(GapReason, HasSnakeCaseNames) {
  EXPECT_EQ(to_string(GapReason::network), "network");
  EXPECT_EQ(to_string(GapReason::server_close), "server_close");
  EXPECT_EQ(to_string(GapReason::session_replaced), "session_replaced");
  EXPECT_EQ(to_string(GapReason::protocol_error), "protocol_error");
}

TEST(GapEvent, DownTimeIsResumeMinusDisconnectAndNeverNegative) {
  GapEvent gap;
  gap.disconnected_at = kT0;
  gap.resumed_at = kT0 + seconds(7);
  EXPECT_EQ(gap.down_time(), seconds(7));
  std::swap(gap.disconnected_at, gap.resumed_at);
  EXPECT_EQ(gap.down_time(), Duration::zero());
}

TEST(GapTracker, FirstConnectionYieldsNoGap) {
  GapTracker gaps;
  EXPECT_FALSE(gaps.on_disconnected(kT0, GapReason::network));  // not up yet
  EXPECT_FALSE(gaps.on_connected(kT0 + seconds(1)).has_value());
  EXPECT_EQ(gaps.epoch().current(), 1u);
  EXPECT_TRUE(gaps.connected());
  EXPECT_EQ(gaps.stats().gaps, 0u);
  EXPECT_EQ(gaps.stats().ignored_disconnects, 1u);
}

TEST(GapTracker, EachBoundaryYieldsExactlyOneGapWithItsDownTime) {
  GapTracker gaps;
  (void)gaps.on_connected(kT0);
  ASSERT_TRUE(gaps.on_disconnected(kT0 + seconds(10), GapReason::network));
  auto gap = gaps.on_connected(kT0 + seconds(13), {"H0STCNT0|005930"});
  ASSERT_TRUE(gap.has_value());
  EXPECT_EQ(gap->old_epoch, 1u);
  EXPECT_EQ(gap->new_epoch, 2u);
  EXPECT_EQ(gap->disconnected_at, kT0 + seconds(10));
  EXPECT_EQ(gap->resumed_at, kT0 + seconds(13));
  EXPECT_EQ(gap->down_time(), seconds(3));
  EXPECT_EQ(gap->reason, GapReason::network);
  EXPECT_EQ(gap->subscriptions_lost,
            std::vector<std::string>{"H0STCNT0|005930"});
  EXPECT_EQ(gaps.epoch().current(), gap->new_epoch);

  ASSERT_TRUE(gaps.on_disconnected(kT0 + seconds(20), GapReason::stall));
  gap = gaps.on_connected(kT0 + seconds(25));
  ASSERT_TRUE(gap.has_value());
  EXPECT_EQ(gap->old_epoch, 2u);
  EXPECT_EQ(gap->new_epoch, 3u);
  EXPECT_EQ(gap->reason, GapReason::stall);

  GapTrackerStats s = gaps.stats();
  EXPECT_EQ(s.gaps, 2u);
  EXPECT_EQ(s.total_down_time, seconds(8));
  EXPECT_EQ(s.longest_down_time, seconds(5));
  EXPECT_EQ(s.by_reason[static_cast<std::size_t>(GapReason::network)], 1u);
  EXPECT_EQ(s.by_reason[static_cast<std::size_t>(GapReason::stall)], 1u);
  EXPECT_EQ(s.unrecorded_disconnects, 0u);
}

TEST(GapTracker, FailedReconnectAttemptsKeepTheFirstDisconnect) {
  GapTracker gaps;
  (void)gaps.on_connected(kT0);
  ASSERT_TRUE(gaps.on_disconnected(kT0 + seconds(1), GapReason::server_close));
  // Three failed attempts each report a network failure: the outage began at
  // the server close, so that is what the gap must say.
  for (int i = 2; i <= 4; ++i) {
    EXPECT_FALSE(gaps.on_disconnected(kT0 + seconds(i), GapReason::network));
  }
  auto gap = gaps.on_connected(kT0 + seconds(30));
  ASSERT_TRUE(gap.has_value());
  EXPECT_EQ(gap->reason, GapReason::server_close);
  EXPECT_EQ(gap->down_time(), seconds(29));
  EXPECT_EQ(gap->new_epoch, 2u);  // one boundary, one advance
  EXPECT_EQ(gaps.stats().gaps, 1u);
  EXPECT_EQ(gaps.stats().ignored_disconnects, 3u);
}

TEST(GapTracker, UnrecordedDisconnectStillYieldsAGapAndIsCounted) {
  GapTracker gaps;
  (void)gaps.on_connected(kT0);
  auto gap = gaps.on_connected(kT0 + seconds(5));  // no on_disconnected()
  ASSERT_TRUE(gap.has_value());
  EXPECT_EQ(gap->reason, GapReason::unknown);
  EXPECT_EQ(gap->old_epoch, 1u);
  EXPECT_EQ(gap->new_epoch, 2u);
  EXPECT_EQ(gaps.stats().unrecorded_disconnects, 1u);
}

TEST(GapTracker, LateFrameFromBeforeTheGapIsDiscarded) {
  GapTracker gaps;
  (void)gaps.on_connected(kT0);
  const std::uint64_t old_epoch = gaps.epoch().current();
  ASSERT_TRUE(gaps.on_disconnected(kT0 + seconds(1), GapReason::network));
  (void)gaps.on_connected(kT0 + seconds(2));
  EXPECT_FALSE(gaps.epoch().is_current(old_epoch));
  EXPECT_EQ(gaps.epoch().discarded_late(), 1u);
}

// The GapEvent travels as the Dispatcher's never-dropped control event,
// between the last data of the old epoch and the first of the new one.
TEST(GapEvent, TravelsThroughTheDispatcherInOrderWithData) {
  auto dispatcher = Dispatcher<Event>::create({.capacity = 16}).value();
  auto producer = dispatcher->make_producer().value();
  GapTracker gaps;
  (void)gaps.on_connected(kT0);
  auto tick = [&](long volume, SteadyTime at) {
    return Event(
        Stamped<Tick>{Tick{"005930", volume}, gaps.epoch().current(), at});
  };
  ASSERT_TRUE(producer.try_push(tick(100, kT0 + milliseconds(1))));
  ASSERT_TRUE(producer.try_push(tick(200, kT0 + milliseconds(2))));
  ASSERT_TRUE(gaps.on_disconnected(kT0 + seconds(1), GapReason::network));
  auto gap = gaps.on_connected(kT0 + seconds(4), {"005930"});
  ASSERT_TRUE(gap.has_value());
  producer.push_control(Event(std::move(*gap)));
  ASSERT_TRUE(producer.try_push(tick(900, kT0 + seconds(5))));

  std::vector<Polled<Event>> batch;
  ASSERT_EQ(dispatcher->poll(batch, 16, milliseconds(0)), 4u);
  ASSERT_FALSE(batch[0].is_control());
  EXPECT_EQ(std::get<Stamped<Tick>>(batch[0].value).payload.cumulative_volume,
            100);
  EXPECT_EQ(std::get<Stamped<Tick>>(batch[1].value).epoch, 1u);
  ASSERT_TRUE(batch[2].is_control());
  const GapEvent& marker = std::get<GapEvent>(batch[2].value);
  EXPECT_EQ(marker.old_epoch, 1u);
  EXPECT_EQ(marker.new_epoch, 2u);
  EXPECT_EQ(marker.down_time(), seconds(3));
  EXPECT_EQ(marker.subscriptions_lost, std::vector<std::string>{"005930"});
  EXPECT_EQ(batch[2].dropped_before(), 0u);
  const auto& after = std::get<Stamped<Tick>>(batch[3].value);
  EXPECT_EQ(after.epoch, 2u);
  EXPECT_EQ(after.recv_time, kT0 + seconds(5));
}

TEST(GapEvent, SurvivesAFloodThatEvictsTheOldEpochsData) {
  auto dispatcher = Dispatcher<Event>::create({.capacity = 4}).value();
  auto producer = dispatcher->make_producer().value();
  for (long v = 0; v < 10; ++v) {
    ASSERT_TRUE(producer.try_push(Event(Stamped<Tick>{Tick{"A", v}, 1, kT0})));
  }
  GapEvent gap;
  gap.old_epoch = 1;
  gap.new_epoch = 2;
  producer.push_control(Event(gap));
  for (long v = 0; v < 10; ++v) {
    ASSERT_TRUE(producer.try_push(Event(Stamped<Tick>{Tick{"A", v}, 2, kT0})));
  }
  std::vector<Polled<Event>> batch;
  dispatcher->poll(batch, 16, milliseconds(0));
  ASSERT_FALSE(batch.empty());
  ASSERT_TRUE(batch[0].is_control());  // every epoch-1 event was evicted
  EXPECT_EQ(std::get<GapEvent>(batch[0].value).new_epoch, 2u);
  EXPECT_EQ(batch[0].dropped_before(), 10u);
  for (std::size_t i = 1; i < batch.size(); ++i) {
    EXPECT_EQ(std::get<Stamped<Tick>>(batch[i].value).epoch, 2u);
  }
}

}  // namespace
}  // namespace feedkit
