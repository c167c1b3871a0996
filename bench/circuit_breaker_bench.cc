// SPDX-License-Identifier: Apache-2.0
//
// bench/circuit_breaker_bench.cc
//
// The cost of guarding one call with a CircuitBreaker: try_acquire() plus
// record(), uncontended, in the closed state (goal: <= 50 ns per pair). The
// baseline in the same run is the least any call accounting can cost: two
// plain counter increments.
//
//   ratio circuit_breaker/counter: X      (time per pair / time per baseline)
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>

#include "bench_main.h"
#include "feedkit/circuit_breaker.h"

namespace {

using feedkit::CircuitBreaker;
using feedkit::CircuitBreakerOptions;
using feedkit::SlidingWindowType;
using feedkit::SteadyTime;

constexpr SteadyTime kStart = SteadyTime(std::chrono::hours(1000));

// Baseline: count a call and its outcome in two plain counters.
void BM_CircuitBreaker_CounterBaseline(benchmark::State& state) {
  std::uint64_t calls = 0;
  std::uint64_t failures = 0;
  std::uint64_t i = 0;
  for (auto _ : state) {
    ++calls;
    failures += (++i & 7) == 0 ? 1 : 0;
    benchmark::DoNotOptimize(calls);
    benchmark::DoNotOptimize(failures);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CircuitBreaker_CounterBaseline);

// One guarded call per iteration; 1 in 8 fails (12.5 %, below the 50 %
// threshold), so the breaker stays closed and evaluates its rule every time.
void run_closed(benchmark::State& state, CircuitBreakerOptions options) {
  CircuitBreaker breaker = CircuitBreaker::create(options).value();
  SteadyTime now = kStart;
  std::uint64_t i = 0;
  for (auto _ : state) {
    now += std::chrono::microseconds(10);  // 100 k calls/s of simulated time
    auto permit = breaker.try_acquire(now);
    if (!permit) {
      state.SkipWithError("the breaker rejected a call in the closed state");
      break;
    }
    breaker.record(*permit, now, (++i & 7) != 0);
    benchmark::DoNotOptimize(breaker);
  }
  if (breaker.state(now) != feedkit::CircuitState::closed) {
    state.SkipWithError("the breaker left the closed state");
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_CircuitBreaker_ClosedCountWindow(benchmark::State& state) {
  run_closed(state, CircuitBreakerOptions::suggested());
}
BENCHMARK(BM_CircuitBreaker_ClosedCountWindow);

void BM_CircuitBreaker_ClosedTimeWindow(benchmark::State& state) {
  run_closed(state, {.window_type = SlidingWindowType::time_based,
                     .window_size = 60,
                     .minimum_calls = 100,
                     .consecutive_failure_threshold = 5,
                     .slow_call_duration = std::chrono::seconds(2),
                     .slow_call_rate_threshold = 80.0});
}
BENCHMARK(BM_CircuitBreaker_ClosedTimeWindow);

// The rejection path: try_acquire() on an open breaker.
void BM_CircuitBreaker_RejectOpen(benchmark::State& state) {
  CircuitBreaker breaker =
      CircuitBreaker::create({.consecutive_failure_threshold = 1}).value();
  SteadyTime now = kStart;
  breaker.record(*breaker.try_acquire(now), now, false);
  for (auto _ : state) {
    now += std::chrono::nanoseconds(1);  // never reaches the 60 s wait
    auto permit = breaker.try_acquire(now);
    benchmark::DoNotOptimize(permit);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CircuitBreaker_RejectOpen);

}  // namespace

FEEDKIT_BENCHMARK_MAIN({
    {"circuit_breaker/counter", "BM_CircuitBreaker_ClosedCountWindow",
     "BM_CircuitBreaker_CounterBaseline",
     feedkit::bench::Metric::time_per_item},
    {"circuit_breaker time window/counter",
     "BM_CircuitBreaker_ClosedTimeWindow", "BM_CircuitBreaker_CounterBaseline",
     feedkit::bench::Metric::time_per_item},
})
