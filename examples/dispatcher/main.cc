// SPDX-License-Identifier: Apache-2.0
//
// Example: two feed threads hand ticks to one consumer through a bounded
// Dispatcher, and one of them reconnects halfway.
//
// What it shows: a producer handle per feed thread; try_push() that never
// blocks and counts what it drops; a gap marker (push_control) that is never
// dropped and arrives in order with the data, saying how many ticks were lost
// before it; a consumer that polls batches with a timeout; the counters at
// the end, whose relations hold exactly.
//
// Usage: dispatcher_example   (no arguments; runs for well under a second)
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <variant>
#include <vector>

#include "feedkit/dispatcher.h"

namespace {

struct Tick {
  int feed = 0;
  std::uint64_t seq = 0;
};
struct Gap {
  int feed = 0;
  std::uint64_t resumed_at_seq = 0;
};
// Data and control events share one type; the dispatcher tells them apart.
using Event = std::variant<Tick, Gap>;

void fail(const char* what, const absl::Status& status) {
  std::fprintf(stderr, "dispatcher_example: %s: %s\n", what,
               status.ToString().c_str());
  std::exit(1);
}

}  // namespace

int main() {
  // A small queue so that the burst below overflows it: drop_oldest keeps the
  // newest ticks, as a market-data consumer wants.
  auto created = feedkit::Dispatcher<Event>::create(
      {.capacity = 1024, .overflow = feedkit::OverflowPolicy::drop_oldest});
  if (!created.ok()) fail("create", created.status());
  auto& dispatcher = **created;

  constexpr std::uint64_t kTicksPerFeed = 200'000;
  std::atomic<int> feeds_done{0};
  auto run_feed = [&](int feed) {
    // One producer handle per feed thread: FIFO per feed, no locks shared
    // with the other feed.
    auto producer = dispatcher.make_producer();
    if (!producer.ok()) fail("make_producer", producer.status());
    for (std::uint64_t seq = 0; seq < kTicksPerFeed; ++seq) {
      if (feed == 1 && seq == kTicksPerFeed / 2) {
        // The connection dropped and came back: tell the consumer where the
        // hole is. Never dropped, even in a flood.
        producer->push_control(Gap{feed, seq});
      }
      (void)producer->try_push(
          Tick{feed, seq});  // a drop is counted, not fatal
    }
    feeds_done.fetch_add(1);
  };
  std::thread feed0(run_feed, 0);
  std::thread feed1(run_feed, 1);

  // The consumer: batches of up to 256, waiting at most 50 ms for the first.
  std::vector<feedkit::Polled<Event>> batch;
  std::uint64_t ticks = 0;
  while (feeds_done.load() < 2 || dispatcher.stats().depth > 0) {
    dispatcher.poll(batch, 256, std::chrono::milliseconds(50));
    for (const auto& e : batch) {
      if (e.is_control()) {
        const Gap& gap = std::get<Gap>(e.value);
        std::printf(
            "gap on feed %d at tick %llu: %llu ticks of that feed dropped "
            "before it\n",
            gap.feed, static_cast<unsigned long long>(gap.resumed_at_seq),
            static_cast<unsigned long long>(e.dropped_before()));
      } else {
        ++ticks;
      }
    }
  }
  feed0.join();
  feed1.join();

  const feedkit::DispatcherStats s = dispatcher.stats();
  std::printf(
      "offered %llu = accepted %llu + dropped %llu; polled %llu, high water "
      "%llu of %llu\n",
      static_cast<unsigned long long>(s.offered),
      static_cast<unsigned long long>(s.accepted),
      static_cast<unsigned long long>(s.dropped()),
      static_cast<unsigned long long>(s.polled),
      static_cast<unsigned long long>(s.high_water),
      static_cast<unsigned long long>(s.capacity));
  const bool exact = s.offered == s.accepted + s.dropped() &&
                     s.polled == ticks && s.polled + s.depth == s.accepted &&
                     s.controls_polled == 1;
  std::printf("counters %s\n", exact ? "exact" : "INCONSISTENT");
  return exact ? 0 : 1;
}
