// Test that header file is self-contained.
#include "feedkit/dispatcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "feedkit/testing/fake_clock.h"
#include "support/count_allocations.h"

namespace feedkit {
namespace {

using std::chrono::milliseconds;
using Batch = std::vector<Polled<int>>;

std::unique_ptr<Dispatcher<int>> make(std::size_t capacity,
                                      OverflowPolicy overflow) {
  return Dispatcher<int>::create({.capacity = capacity, .overflow = overflow})
      .value();
}

std::vector<int> data_of(const Batch& batch) {
  std::vector<int> values;
  for (const auto& e : batch) {
    if (!e.is_control()) values.push_back(e.value);
  }
  return values;
}

void expect_invariants(const DispatcherStats& s) {
  EXPECT_EQ(s.offered, s.accepted + s.dropped());
  EXPECT_EQ(s.polled + s.depth, s.accepted);
}

TEST(Dispatcher, RejectsInvalidOptions) {
  auto zero = Dispatcher<int>::create({.capacity = 0});
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(zero.status().message().find("capacity"), std::string::npos);

  auto no_producers =
      Dispatcher<int>::create({.capacity = 8, .max_producers = 0});
  ASSERT_FALSE(no_producers.ok());
  EXPECT_NE(no_producers.status().message().find("max_producers"),
            std::string::npos);
}

TEST(Dispatcher, HoldsExactlyCapacityUnderDropNewest) {
  auto d = make(5, OverflowPolicy::drop_newest);
  auto p = d->make_producer().value();
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(p.try_push(i)) << i;
  EXPECT_FALSE(p.try_push(5));
  EXPECT_FALSE(p.try_push(6));

  DispatcherStats s = d->stats();
  EXPECT_EQ(s.depth, 5u);
  EXPECT_EQ(s.high_water, 5u);
  EXPECT_EQ(s.dropped_full, 2u);
  EXPECT_DOUBLE_EQ(s.fill_ratio(), 1.0);
  expect_invariants(s);

  Batch batch;
  EXPECT_EQ(d->poll(batch, 100, milliseconds(0)), 5u);
  EXPECT_EQ(data_of(batch), (std::vector<int>{0, 1, 2, 3, 4}));
  expect_invariants(d->stats());
}

TEST(Dispatcher, DropOldestKeepsTheNewestCapacityEvents) {
  auto d = make(4, OverflowPolicy::drop_oldest);
  auto p = d->make_producer().value();
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(p.try_push(i));
  DispatcherStats s = d->stats();
  EXPECT_EQ(s.depth, 4u);
  EXPECT_EQ(s.dropped_evicted, 6u);
  EXPECT_EQ(s.accepted, 4u);
  expect_invariants(s);

  Batch batch;
  d->poll(batch, 100, milliseconds(0));
  EXPECT_EQ(data_of(batch), (std::vector<int>{6, 7, 8, 9}));
  s = d->stats();
  EXPECT_EQ(s.polled, 4u);
  EXPECT_EQ(s.depth, 0u);
  expect_invariants(s);
}

TEST(Dispatcher, CapacityOneAlternatesFullAndEmpty) {
  auto d = make(1, OverflowPolicy::drop_newest);
  auto p = d->make_producer().value();
  Batch batch;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(p.try_push(i));
    EXPECT_FALSE(p.try_push(100 + i));
    ASSERT_EQ(d->poll(batch, 8, milliseconds(0)), 1u);
    EXPECT_EQ(batch[0].value, i);
  }
  expect_invariants(d->stats());
}

TEST(Dispatcher, ControlEventsSurviveAFloodInOrder) {
  auto d = make(8, OverflowPolicy::drop_oldest);
  auto p = d->make_producer().value();
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(p.try_push(i));
  p.push_control(-1);  // the gap marker, with 92 data events evicted before it
  for (int i = 100; i < 200; ++i) ASSERT_TRUE(p.try_push(i));

  Batch batch;
  d->poll(batch, 100, milliseconds(0));
  // The marker's preceding data are all evicted, so it comes first; then the
  // newest 8 data events.
  ASSERT_EQ(batch.size(), 9u);
  EXPECT_TRUE(batch[0].is_control());
  EXPECT_EQ(batch[0].value, -1);
  EXPECT_EQ(batch[0].dropped_before(), 100u);
  EXPECT_EQ(data_of(batch),
            (std::vector<int>{192, 193, 194, 195, 196, 197, 198, 199}));
  DispatcherStats s = d->stats();
  EXPECT_EQ(s.controls_pushed, 1u);
  EXPECT_EQ(s.controls_polled, 1u);
  EXPECT_EQ(s.dropped_evicted, 192u);
  expect_invariants(s);
}

TEST(Dispatcher, ControlEventTellsHowManyWereDroppedBeforeIt) {
  auto d = make(4, OverflowPolicy::drop_oldest);
  auto p = d->make_producer().value();
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(p.try_push(i));  // 0, 1 evicted
  p.push_control(-1);
  ASSERT_TRUE(p.try_push(6));  // evicts 2

  Batch batch;
  d->poll(batch, 100, milliseconds(0));
  ASSERT_EQ(batch.size(), 5u);
  EXPECT_EQ(batch[0].value, 3);
  EXPECT_EQ(batch[1].value, 4);
  EXPECT_EQ(batch[2].value, 5);
  EXPECT_TRUE(batch[3].is_control());
  EXPECT_EQ(batch[3].dropped_before(),
            3u);  // 0, 1 and 2 came before the marker
  EXPECT_EQ(batch[4].value, 6);
  EXPECT_EQ(batch[4].dropped_before(), 0u);
}

TEST(Dispatcher, ControlEventCountsRejectionsUnderDropNewest) {
  auto d = make(2, OverflowPolicy::drop_newest);
  auto p = d->make_producer().value();
  for (int i = 0; i < 5; ++i) (void)p.try_push(i);  // 2, 3, 4 rejected
  p.push_control(-1);
  p.push_control(-2);  // nothing dropped between the two markers

  Batch batch;
  d->poll(batch, 100, milliseconds(0));
  ASSERT_EQ(batch.size(), 4u);
  EXPECT_EQ(batch[2].value, -1);
  EXPECT_EQ(batch[2].dropped_before(), 3u);
  EXPECT_EQ(batch[3].value, -2);
  EXPECT_EQ(batch[3].dropped_before(), 0u);
  // Controls never count against the capacity.
  EXPECT_EQ(d->stats().high_water, 2u);
}

TEST(Dispatcher, ControlEventIsDeliveredWhenNoDataFollows) {
  auto d = make(16, OverflowPolicy::drop_oldest);
  auto p = d->make_producer().value();
  p.push_control(7);
  Batch batch;
  ASSERT_EQ(d->poll(batch, 4, milliseconds(0)), 1u);
  EXPECT_TRUE(batch[0].is_control());
  EXPECT_EQ(batch[0].dropped_before(), 0u);
}

TEST(Dispatcher, QuietProducerIsNotStarvedByABusyOne) {
  auto d = make(1 << 16, OverflowPolicy::drop_newest);
  auto busy = d->make_producer().value();
  auto quiet = d->make_producer().value();
  for (int i = 0; i < 20'000; ++i) ASSERT_TRUE(busy.try_push(i));
  ASSERT_TRUE(quiet.try_push(-1));
  for (int i = 20'000; i < 40'000; ++i) ASSERT_TRUE(busy.try_push(i));

  // The consumer token rotates between producers every 256 events, so the
  // quiet producer's event arrives within the first two rotations, not after
  // the 40,000 queued ahead of it by the busy one.
  Batch batch;
  std::size_t position = 0;
  bool found = false;
  while (!found && d->poll(batch, 128, milliseconds(0)) > 0) {
    for (const auto& e : batch) {
      if (e.value == -1) found = true;
      if (!found) ++position;
    }
  }
  ASSERT_TRUE(found);
  EXPECT_LT(position, 2 * 256u + 128u);
}

TEST(Dispatcher, FifoPerProducerAcrossHandles) {
  auto d = make(64, OverflowPolicy::drop_newest);
  {
    auto first = d->make_producer().value();
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(first.try_push(i));
    first.push_control(-1);
  }  // the slot is released with its events still queued
  auto second = d->make_producer().value();
  EXPECT_EQ(second.id(), 0u);
  for (int i = 10; i < 20; ++i) ASSERT_TRUE(second.try_push(i));
  Batch batch;
  d->poll(batch, 64, milliseconds(0));
  ASSERT_EQ(batch.size(), 21u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(batch[i].value, i);
  EXPECT_TRUE(batch[10].is_control());
  for (int i = 11; i < 21; ++i) EXPECT_EQ(batch[i].value, i - 1);
}

TEST(Dispatcher, RunsOutOfProducerSlotsWithAClearError) {
  auto d = Dispatcher<int>::create({.capacity = 8, .max_producers = 2}).value();
  auto a = d->make_producer().value();
  auto b = d->make_producer().value();
  auto c = d->make_producer();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(c.status().message().find("max_producers"), std::string::npos);
}

TEST(Dispatcher, PollWithZeroTimeoutReturnsAtOnceWhenEmpty) {
  auto d = make(8, OverflowPolicy::drop_oldest);
  Batch batch(1);  // stale contents that poll() must clear
  EXPECT_EQ(d->poll(batch, 8, milliseconds(0)), 0u);
  EXPECT_TRUE(batch.empty());
}

TEST(Dispatcher, SleepingConsumerWakesForDataAndForControl) {
  auto d = make(8, OverflowPolicy::drop_oldest);
  auto p = d->make_producer().value();
  Batch batch;
  std::thread producer([&] {
    // Whether this runs before or during the poll, the event must arrive.
    ASSERT_TRUE(p.try_push(42));
  });
  ASSERT_EQ(d->poll(batch, 8, std::chrono::seconds(30)), 1u);
  EXPECT_EQ(batch[0].value, 42);
  producer.join();

  std::thread controller([&] { p.push_control(-9); });
  ASSERT_EQ(d->poll(batch, 8, std::chrono::seconds(30)), 1u);
  EXPECT_TRUE(batch[0].is_control());
  controller.join();
}

TEST(Dispatcher, TimeFullIsMeasuredOnTheInjectedClock) {
  testing::FakeClock clock;
  auto d = Dispatcher<int>::create(
               {.capacity = 1, .overflow = OverflowPolicy::drop_newest}, clock)
               .value();
  auto p = d->make_producer().value();
  ASSERT_TRUE(p.try_push(1));
  EXPECT_FALSE(p.try_push(2));  // the full episode starts at the first drop
  clock.advance(std::chrono::seconds(3));
  EXPECT_EQ(d->stats().time_full, std::chrono::seconds(3));  // still full
  Batch batch;
  d->poll(batch, 1, milliseconds(0));  // makes room: the episode ends
  clock.advance(std::chrono::seconds(10));
  EXPECT_EQ(d->stats().time_full, std::chrono::seconds(3));
}

// Tracks constructions and destructions; a destroyed or never-constructed
// object is caught by its magic word (rigtorp's TestType).
struct Tracked {
  static inline std::atomic<long> live{0};
  static constexpr std::uint64_t kAlive = 0x600DF00D;
  std::uint64_t magic = kAlive;
  int value = 0;

  Tracked() { ++live; }
  explicit Tracked(int v) : value(v) { ++live; }
  Tracked(const Tracked& o) : value(o.value) {
    EXPECT_EQ(o.magic, kAlive);
    ++live;
  }
  Tracked(Tracked&& o) noexcept : value(o.value) {
    EXPECT_EQ(o.magic, kAlive);
    ++live;
  }
  Tracked& operator=(const Tracked& o) = default;
  Tracked& operator=(Tracked&& o) noexcept {
    EXPECT_EQ(magic, kAlive);
    EXPECT_EQ(o.magic, kAlive);
    value = o.value;
    return *this;
  }
  ~Tracked() {
    EXPECT_EQ(magic, kAlive) << "destroyed twice";
    magic = 0xDEAD;
    --live;
  }
};

TEST(Dispatcher, DestroysEveryElementExactlyOnce) {
  Tracked::live = 0;
  {
    auto d = Dispatcher<Tracked>::create({.capacity = 100}).value();
    auto p = d->make_producer().value();
    for (int i = 0; i < 250; ++i)
      ASSERT_TRUE(p.try_push(Tracked(i)));  // 150 evicted
    p.push_control(Tracked(-1));
    std::vector<Polled<Tracked>> batch;
    d->poll(batch, 40, milliseconds(0));
    EXPECT_EQ(batch.size(), 40u);
    // 60 data events and nothing else stay queued when the dispatcher dies.
  }
  EXPECT_EQ(Tracked::live.load(), 0);
}

TEST(Dispatcher, SteadyStateNeverAllocates) {
  auto d = make(1024, OverflowPolicy::drop_oldest);
  auto p = d->make_producer().value();
  Batch batch;
  batch.reserve(256);
  auto cycle = [&](int rounds) {
    for (int r = 0; r < rounds; ++r) {
      for (int i = 0; i < 3000; ++i) (void)p.try_push(i);  // overflows: evicts
      while (d->poll(batch, 256, milliseconds(0)) > 0) {
      }
    }
  };
  cycle(3);  // warm-up: blocks, block index, scratch
  long allocations = 0;
  {
    testing::AllocationCounter counter;
    cycle(10);
    allocations = counter.count();
  }
  EXPECT_EQ(allocations, 0);
  expect_invariants(d->stats());
}

TEST(Dispatcher, SuggestedCapacityIsRateTimesPauseTimesSafety) {
  EXPECT_EQ(suggested_capacity(10'000, milliseconds(200), 2.0), 4000u);
  EXPECT_EQ(suggested_capacity(100'000, std::chrono::seconds(1), 1.5),
            150'000u);
  EXPECT_EQ(suggested_capacity(0, std::chrono::seconds(1)), 1u);
}

}  // namespace
}  // namespace feedkit
