// SPDX-License-Identifier: Apache-2.0
//
// bench/dispatcher_bench.cc
//
// Hand-off throughput, one consumer and 1 or 2 producers, 64-byte events,
// for three queues doing the same work in the same run:
//   - feedkit::Dispatcher (bounded, counted, control-event aware);
//   - raw moodycamel::ConcurrentQueue (producer tokens, enqueue() bounded by
//     an approximate size check every 256 pushes, consumer token, bulk
//     dequeue): the floor feedkit's wrapper adds to;
//   - a bounded std::deque behind a std::mutex: what people write by hand.
// Every queue is bounded at kCapacity; a producer that finds it full yields
// and retries, so no event is lost and the consumer sees every one. The
// consumer (the benchmark thread) busy-polls batches of up to 256, so all
// three pay the same idle strategy; BM_Dispatcher_FeedkitBlocking shows
// feedkit's own spin-then-sleep poll().
//
// Prints `ratio feedkit/moodycamel 1P1C: X` and the like at the end, each
// the median of paired rounds (see print_paired_ratios).
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "bench_main.h"
#include "feedkit/dispatcher.h"
#include "feedkit/internal/concurrentqueue.h"

namespace {

constexpr std::size_t kCapacity = 1 << 16;
constexpr std::size_t kBatch = 256;
constexpr std::int64_t kEventsPerIteration = 1024;

struct Event64 {
  std::uint64_t seq = 0;
  std::uint32_t producer = 0;
  char payload[52] = {};
};
static_assert(sizeof(Event64) == 64);

class FeedkitQueue {
 public:
  explicit FeedkitQueue(int producers)
      : dispatcher_(feedkit::Dispatcher<Event64>::create(
                        {.capacity = kCapacity,
                         .overflow = feedkit::OverflowPolicy::drop_newest,
                         .max_producers = static_cast<std::size_t>(producers)})
                        .value()) {
    out_.reserve(kBatch);
  }
  class Producer {
   public:
    explicit Producer(FeedkitQueue& q)
        : handle_(q.dispatcher_->make_producer().value()) {}
    bool try_push(const Event64& e) { return handle_.try_push(e); }

   private:
    feedkit::Dispatcher<Event64>::Producer handle_;
  };
  template <class F>
  std::size_t poll(F&& consume,
                   feedkit::Duration timeout = feedkit::Duration::zero()) {
    const std::size_t n = dispatcher_->poll(out_, kBatch, timeout);
    for (const auto& e : out_) consume(e.value);
    return n;
  }

 private:
  std::unique_ptr<feedkit::Dispatcher<Event64>> dispatcher_;
  std::vector<feedkit::Polled<Event64>> out_;
};

class MoodycamelQueue {
 public:
  explicit MoodycamelQueue(int producers)
      : queue_(kCapacity + 2 * 32 * static_cast<std::size_t>(producers),
               static_cast<std::size_t>(producers), 0),
        consumer_token_(queue_),
        buffer_(kBatch) {}
  class Producer {
   public:
    explicit Producer(MoodycamelQueue& q) : q_(q), token_(q.queue_) {}
    // Bounded the way a user of the raw queue would: an approximate size
    // check every 256 pushes. (try_enqueue on a pre-sized queue is no bound:
    // it can fail forever on an empty queue, moodycamel issues #55, #193,
    // #292.)
    bool try_push(const Event64& e) {
      if ((++pushes_ & 255) == 0 && q_.queue_.size_approx() >= kCapacity)
        return false;
      return q_.queue_.enqueue(token_, e);
    }

   private:
    MoodycamelQueue& q_;
    moodycamel::ProducerToken token_;
    std::uint64_t pushes_ = 0;
  };
  template <class F>
  std::size_t poll(F&& consume) {
    const std::size_t n =
        queue_.try_dequeue_bulk(consumer_token_, buffer_.begin(), kBatch);
    for (std::size_t i = 0; i < n; ++i) consume(buffer_[i]);
    return n;
  }

 private:
  moodycamel::ConcurrentQueue<Event64> queue_;
  moodycamel::ConsumerToken consumer_token_;
  std::vector<Event64> buffer_;
};

class MutexDequeQueue {
 public:
  explicit MutexDequeQueue(int /*producers*/) { buffer_.reserve(kBatch); }
  class Producer {
   public:
    explicit Producer(MutexDequeQueue& q) : q_(q) {}
    bool try_push(const Event64& e) {
      std::lock_guard lock(q_.mu_);
      if (q_.queue_.size() >= kCapacity) return false;
      q_.queue_.push_back(e);
      return true;
    }

   private:
    MutexDequeQueue& q_;
  };
  template <class F>
  std::size_t poll(F&& consume) {
    buffer_.clear();
    {
      std::lock_guard lock(mu_);
      const std::size_t n = std::min(kBatch, queue_.size());
      for (std::size_t i = 0; i < n; ++i) {
        buffer_.push_back(queue_.front());
        queue_.pop_front();
      }
    }
    for (const auto& e : buffer_) consume(e);
    return buffer_.size();
  }

 private:
  std::mutex mu_;
  std::deque<Event64> queue_;
  std::vector<Event64> buffer_;
};

// Pins the calling thread to `cpu` when every thread of the run has a CPU of
// its own, so that runs do not depend on where the scheduler puts them
// (rigtorp's queue benchmarks do the same): the consumer on CPU 0, producer i
// on CPU i + 1. With fewer CPUs the scheduler places them.
bool each_thread_has_a_cpu(int producers) {
  return static_cast<unsigned>(producers) + 1 <=
         std::thread::hardware_concurrency();
}

void pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

void unpin() {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (unsigned cpu = 0; cpu < std::thread::hardware_concurrency(); ++cpu)
    CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

// Runs `producers` threads that push `total` events in all while this
// thread consumes them, a chunk of kEventsPerIteration at a time for as long
// as `next_chunk()` says so; producers run for exactly as many events as the
// consumer will take, so every run ends with an empty queue. Returns the
// events consumed.
template <class Queue, class Poll, class NextChunk>
std::int64_t handoff(int producers, std::int64_t total, Poll&& poll_once,
                     NextChunk&& next_chunk) {
  Queue queue(producers);
  std::vector<std::thread> threads;
  for (int id = 0; id < producers; ++id) {
    threads.emplace_back([&queue, id, producers, total] {
      if (each_thread_has_a_cpu(producers)) pin_to_cpu(id + 1);
      typename Queue::Producer producer(queue);
      const std::int64_t share =
          total / producers + (id < total % producers ? 1 : 0);
      Event64 e;
      e.producer = static_cast<std::uint32_t>(id);
      for (std::int64_t i = 0; i < share; ++i) {
        e.seq = static_cast<std::uint64_t>(i);
        while (!producer.try_push(e))
          std::this_thread::yield();  // full: back-pressure
      }
    });
  }
  if (each_thread_has_a_cpu(producers)) pin_to_cpu(0);
  std::uint64_t checksum = 0;
  std::int64_t consumed = 0, target = 0;
  auto consume = [&checksum](const Event64& e) {
    checksum += e.seq + e.producer;
  };
  while (next_chunk()) {
    target += kEventsPerIteration;
    while (consumed < target) {
      const std::size_t n = poll_once(queue, consume);
      // A short batch means the consumer has caught up: let the producers
      // run, so every queue is measured streaming full batches rather than
      // bouncing one event at a time between cores.
      if (n < kBatch) std::this_thread::yield();
      consumed += static_cast<std::int64_t>(n);
    }
  }
  for (auto& t : threads) t.join();
  unpin();
  benchmark::DoNotOptimize(checksum);
  return consumed;
}

template <class Queue, class Poll>
void run_handoff(benchmark::State& state, Poll&& poll_once) {
  const int producers = static_cast<int>(state.range(0));
  const std::int64_t total =
      static_cast<std::int64_t>(state.max_iterations) * kEventsPerIteration;
  const std::int64_t consumed = handoff<Queue>(
      producers, total, poll_once, [&state] { return state.KeepRunning(); });
  if (consumed != total) state.SkipWithError("events lost");
  state.SetItemsProcessed(consumed);
}

// Returns events per second for one hand-off of `total` events.
template <class Queue, class Poll>
double rate_of(int producers, std::int64_t total, Poll&& poll_once) {
  std::int64_t chunks = total / kEventsPerIteration;
  const auto start = std::chrono::steady_clock::now();
  const std::int64_t consumed =
      handoff<Queue>(producers, chunks * kEventsPerIteration, poll_once,
                     [&chunks] { return chunks-- > 0; });
  const std::chrono::duration<double> took =
      std::chrono::steady_clock::now() - start;
  return static_cast<double>(consumed) / took.count();
}

void BM_Dispatcher_Feedkit(benchmark::State& state) {
  run_handoff<FeedkitQueue>(
      state, [](auto& q, auto& consume) { return q.poll(consume); });
}
void BM_Dispatcher_FeedkitBlocking(benchmark::State& state) {
  run_handoff<FeedkitQueue>(state, [](auto& q, auto& consume) {
    return q.poll(consume, std::chrono::milliseconds(10));
  });
}
void BM_Dispatcher_Moodycamel(benchmark::State& state) {
  run_handoff<MoodycamelQueue>(
      state, [](auto& q, auto& consume) { return q.poll(consume); });
}
void BM_Dispatcher_MutexDeque(benchmark::State& state) {
  run_handoff<MutexDequeQueue>(
      state, [](auto& q, auto& consume) { return q.poll(consume); });
}

void configure(benchmark::internal::Benchmark* b) {
  b->ArgName("P")->Arg(1)->Arg(2)->UseRealTime();
  if (feedkit::bench::smoke_run()) {
    b->MinTime(0.01)->Repetitions(1);
  } else {
    b->MinTime(0.2)->Repetitions(9)->ReportAggregatesOnly(true);
  }
}
BENCHMARK(BM_Dispatcher_Feedkit)->Apply(configure);
BENCHMARK(BM_Dispatcher_Moodycamel)->Apply(configure);
BENCHMARK(BM_Dispatcher_MutexDeque)->Apply(configure);
BENCHMARK(BM_Dispatcher_FeedkitBlocking)->Apply(configure);

// The ratio lines come from paired rounds: each round measures the three
// queues back to back on fresh queues (in rotating order) and takes their
// ratios, so a machine that slows down or speeds up mid-run moves numerator
// and baseline together; the line gives the median over the rounds, and the
// line after it the spread.
void print_paired_ratios(int rounds, std::int64_t events) {
  feedkit::bench::end_report_line();
  auto poll_plain = [](auto& q, auto& consume) { return q.poll(consume); };
  for (int producers : {1, 2}) {
    std::vector<double> vs_moodycamel, vs_mutex;
    for (int round = 0; round < rounds; ++round) {
      double feedkit = 0, moodycamel = 0, mutex = 0;
      for (int k = 0; k < 3; ++k) {
        switch ((round + k) % 3) {
          case 0:
            feedkit = rate_of<FeedkitQueue>(producers, events, poll_plain);
            break;
          case 1:
            moodycamel =
                rate_of<MoodycamelQueue>(producers, events, poll_plain);
            break;
          case 2:
            mutex = rate_of<MutexDequeQueue>(producers, events / 8, poll_plain);
            break;
        }
      }
      vs_moodycamel.push_back(feedkit / moodycamel);
      vs_mutex.push_back(feedkit / mutex);
    }
    auto report = [&](const char* baseline, std::vector<double>& ratios) {
      std::sort(ratios.begin(), ratios.end());
      const auto at = [&](double q) {
        return ratios[static_cast<std::size_t>(q * (ratios.size() - 1))];
      };
      std::printf("ratio feedkit/%s %dP1C: %.2f\n", baseline, producers,
                  at(0.5));
      std::printf(
          "  (median of %zu paired rounds; quartiles %.2f..%.2f, range "
          "%.2f..%.2f)\n",
          ratios.size(), at(0.25), at(0.75), ratios.front(), ratios.back());
    };
    report("moodycamel", vs_moodycamel);
    report("mutex_deque", vs_mutex);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int status = feedkit::bench::run_and_print_ratios(argc, argv, {});
  if (status != 0) return status;
  const bool smoke = feedkit::bench::smoke_run();
  print_paired_ratios(smoke ? 1 : 15,
                      smoke ? std::int64_t{1} << 16 : std::int64_t{1} << 21);
  return 0;
}
