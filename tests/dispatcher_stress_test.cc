// Test that header file is self-contained.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <thread>
#include <vector>

#include "feedkit/dispatcher.h"

// Concurrency stress for Dispatcher: several producers flood a small queue
// while one consumer polls; run under ThreadSanitizer by scripts/test.sh.
// Every event carries (producer, sequence); the consumer checks per-producer
// order, checksums what it received, and checks that every control event's
// dropped_before equals exactly the data events of that producer it never saw.

namespace feedkit {
namespace {

struct Event {
  std::uint32_t producer = 0;
  std::uint64_t seq =
      0;  // data: the producer's data sequence; control: data pushed before it
  bool control = false;
};

struct Expectation {
  int producers;
  int events_per_producer;
  int control_every;
  std::size_t capacity;
  OverflowPolicy overflow;
};

void run_stress(const Expectation& x) {
  auto dispatcher =
      Dispatcher<Event>::create(
          {.capacity = x.capacity,
           .overflow = x.overflow,
           .max_producers = static_cast<std::size_t>(x.producers)})
          .value();
  std::vector<std::uint64_t> sent_sum(x.producers, 0);
  std::vector<std::thread> threads;
  for (int id = 0; id < x.producers; ++id) {
    threads.emplace_back([&, id] {
      auto producer = dispatcher->make_producer().value();
      std::uint64_t sum = 0;
      for (int i = 0; i < x.events_per_producer; ++i) {
        if (i % x.control_every == 0) {
          producer.push_control(Event{static_cast<std::uint32_t>(id),
                                      static_cast<std::uint64_t>(i), true});
        }
        if (producer.try_push(Event{static_cast<std::uint32_t>(id),
                                    static_cast<std::uint64_t>(i), false})) {
          sum += static_cast<std::uint64_t>(i);
        }
      }
      producer.push_control(
          Event{static_cast<std::uint32_t>(id),
                static_cast<std::uint64_t>(x.events_per_producer), true});
      sent_sum[id] =
          sum;  // only meaningful for drop_newest (evictions happen later)
    });
  }

  struct Seen {
    std::int64_t last_data = -1;
    std::uint64_t last_control_at = 0;
    std::uint64_t data_since_control = 0;
    std::uint64_t controls = 0;
    std::uint64_t data = 0;
    std::uint64_t sum = 0;
    std::uint64_t reported_dropped = 0;
  };
  std::vector<Seen> seen(x.producers);
  const std::uint64_t controls_per_producer =
      (x.events_per_producer + x.control_every - 1) / x.control_every + 1;
  std::uint64_t controls_left = controls_per_producer * x.producers;
  std::vector<Polled<Event>> batch;
  while (controls_left > 0) {
    dispatcher->poll(batch, 512, std::chrono::seconds(10));
    ASSERT_FALSE(batch.empty()) << "consumer starved: events were lost";
    for (const auto& e : batch) {
      ASSERT_LT(e.value.producer, static_cast<std::uint32_t>(x.producers));
      Seen& s = seen[e.value.producer];
      ASSERT_EQ(e.is_control(), e.value.control);
      if (e.is_control()) {
        // Everything of this producer before the marker was delivered or
        // dropped, and the marker counts exactly the dropped ones.
        ASSERT_LT(s.last_data, static_cast<std::int64_t>(e.value.seq));
        const std::uint64_t expected_dropped =
            (e.value.seq - s.last_control_at) - s.data_since_control;
        ASSERT_EQ(e.dropped_before(), expected_dropped)
            << "producer " << e.value.producer << " marker at " << e.value.seq;
        s.reported_dropped += e.dropped_before();
        s.last_control_at = e.value.seq;
        s.data_since_control = 0;
        ++s.controls;
        --controls_left;
      } else {
        ASSERT_GT(static_cast<std::int64_t>(e.value.seq), s.last_data)
            << "FIFO per producer broken";
        ASSERT_GE(e.value.seq, s.last_control_at) << "data overtook a marker";
        s.last_data = static_cast<std::int64_t>(e.value.seq);
        ++s.data_since_control;
        ++s.data;
        s.sum += e.value.seq;
      }
    }
  }
  for (auto& t : threads) t.join();
  // Anything left after the final markers would be a bug: nothing follows them.
  EXPECT_EQ(dispatcher->poll(batch, 512, std::chrono::milliseconds(0)), 0u);

  const DispatcherStats stats = dispatcher->stats();
  std::printf(
      "offered %llu, dropped %llu (full %llu, evicted %llu, contended %llu), "
      "high water %llu\n",
      static_cast<unsigned long long>(stats.offered),
      static_cast<unsigned long long>(stats.dropped()),
      static_cast<unsigned long long>(stats.dropped_full),
      static_cast<unsigned long long>(stats.dropped_evicted),
      static_cast<unsigned long long>(stats.dropped_contended),
      static_cast<unsigned long long>(stats.high_water));
  std::uint64_t received = 0, reported = 0;
  for (int id = 0; id < x.producers; ++id) {
    EXPECT_EQ(seen[id].controls, controls_per_producer);
    EXPECT_EQ(seen[id].data + seen[id].reported_dropped,
              static_cast<std::uint64_t>(x.events_per_producer))
        << "producer " << id << ": received + reported dropped must equal sent";
    if (x.overflow == OverflowPolicy::drop_newest) {
      EXPECT_EQ(seen[id].sum, sent_sum[id]);
    }
    received += seen[id].data;
    reported += seen[id].reported_dropped;
  }
  EXPECT_EQ(stats.offered,
            static_cast<std::uint64_t>(x.producers) * x.events_per_producer);
  EXPECT_EQ(stats.offered, stats.accepted + stats.dropped());
  EXPECT_EQ(stats.polled + stats.depth, stats.accepted);
  EXPECT_EQ(stats.polled, received);
  EXPECT_EQ(stats.dropped(), reported);
  EXPECT_EQ(stats.depth, 0u);
  EXPECT_LE(stats.high_water, x.capacity);
  EXPECT_EQ(stats.controls_polled, controls_per_producer * x.producers);
  if (x.capacity >=
      static_cast<std::size_t>(x.producers) * x.events_per_producer) {
    EXPECT_EQ(stats.dropped(), 0u);
  }
}

TEST(DispatcherStress, DropOldestConservesEveryEventAcrossFourProducers) {
  run_stress({.producers = 4,
              .events_per_producer = 150'000,
              .control_every = 10'000,
              .capacity = 512,
              .overflow = OverflowPolicy::drop_oldest});
}

TEST(DispatcherStress, DropNewestConservesEveryEventAcrossFourProducers) {
  run_stress({.producers = 4,
              .events_per_producer = 150'000,
              .control_every = 10'000,
              .capacity = 512,
              .overflow = OverflowPolicy::drop_newest});
}

TEST(DispatcherStress, LargeQueueDeliversEverythingWithoutDrops) {
  run_stress({.producers = 2,
              .events_per_producer = 100'000,
              .control_every = 25'000,
              .capacity = 1 << 20,
              .overflow = OverflowPolicy::drop_newest});
}

}  // namespace
}  // namespace feedkit
