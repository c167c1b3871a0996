// SPDX-License-Identifier: Apache-2.0
//
// bench/feed_health_bench.cc
//
// The cost of FeedHealth on the consumer's hot path, 5,000 symbols:
//   - record() by SymbolId (an array store) and by name (one flat_hash_map
//     lookup), against the baseline people write by hand: a
//     std::unordered_map<std::string, SteadyTime> assignment by string key.
//     All three replay the same precomputed random symbol sequence.
//   - a full stale scan (stale_symbols) and a full evaluate() over 5,000
//     symbols, a tenth of them stale.
//
// Prints `ratio feed_health_record_by_name/unordered_map: X` (time per call;
// lower is better; goal <= 1.5) and the by-id ratio at the end.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "bench_main.h"
#include "feedkit/feed_health.h"

namespace {

using feedkit::FeedHealth;
using feedkit::SteadyTime;
using feedkit::SymbolId;
using namespace std::chrono_literals;

constexpr std::size_t kSymbols = 5'000;
constexpr std::size_t kSequence = 1 << 16;  // power of two: masked index

// KRX-like six-digit codes, and a random sequence of indexes into them.
struct Workload {
  std::vector<std::string> names;
  std::vector<std::uint32_t> sequence;

  Workload() {
    for (std::size_t i = 0; i < kSymbols; ++i) {
      names.push_back(std::to_string(100'000 + i * 173));
    }
    std::mt19937 rng(42);
    std::uniform_int_distribution<std::uint32_t> pick(0, kSymbols - 1);
    for (std::size_t i = 0; i < kSequence; ++i) sequence.push_back(pick(rng));
  }
};

const Workload& workload() {
  static const Workload w;
  return w;
}

FeedHealth make_health() {
  FeedHealth h = FeedHealth::create({}).value();
  for (const std::string& name : workload().names) h.expect(name);
  return h;
}

void BM_FeedHealth_RecordById(benchmark::State& state) {
  const Workload& w = workload();
  FeedHealth h = make_health();
  std::vector<SymbolId> ids;
  for (const std::string& name : w.names) ids.push_back(*h.find(name));
  std::vector<SymbolId> sequence;
  for (std::uint32_t i : w.sequence) sequence.push_back(ids[i]);
  SteadyTime t{};
  std::size_t i = 0;
  for (auto _ : state) {
    h.record(sequence[i], t);
    t += 1ns;
    i = (i + 1) & (kSequence - 1);
  }
  benchmark::DoNotOptimize(h.stats().records);
  state.SetItemsProcessed(state.iterations());
}

void BM_FeedHealth_RecordByName(benchmark::State& state) {
  const Workload& w = workload();
  FeedHealth h = make_health();
  SteadyTime t{};
  std::size_t i = 0;
  for (auto _ : state) {
    bool known = h.record(std::string_view(w.names[w.sequence[i]]), t);
    benchmark::DoNotOptimize(known);
    t += 1ns;
    i = (i + 1) & (kSequence - 1);
  }
  benchmark::DoNotOptimize(h.stats().records);
  state.SetItemsProcessed(state.iterations());
}

// The baseline: what a collector writes without FeedHealth.
void BM_UnorderedMap_Update(benchmark::State& state) {
  const Workload& w = workload();
  std::unordered_map<std::string, SteadyTime> last;
  for (const std::string& name : w.names) last[name] = SteadyTime{};
  SteadyTime t{};
  std::size_t i = 0;
  for (auto _ : state) {
    last[w.names[w.sequence[i]]] = t;
    t += 1ns;
    i = (i + 1) & (kSequence - 1);
  }
  benchmark::DoNotOptimize(last.size());
  state.SetItemsProcessed(state.iterations());
}

// 5,000 symbols after the grace: every tenth silent for 30 s (stale), the
// rest recorded 1 s ago (fresh).
FeedHealth make_scanned(SteadyTime now) {
  FeedHealth h = make_health();
  std::vector<feedkit::HealthTransition> out;
  h.evaluate(now - 120s, out);  // monitoring starts; the grace ends at -60 s
  for (std::size_t i = 0; i < kSymbols; ++i) {
    h.record(static_cast<SymbolId>(i), i % 10 == 0 ? now - 30s : now - 1s);
  }
  h.evaluate(now, out);
  return h;
}

void BM_FeedHealth_StaleScan5000(benchmark::State& state) {
  const SteadyTime now = SteadyTime{} + 1000h;
  FeedHealth h = make_scanned(now);
  std::vector<SymbolId> stale;
  stale.reserve(kSymbols);
  for (auto _ : state) {
    h.stale_symbols(now, stale);
    benchmark::DoNotOptimize(stale.data());
  }
  if (stale.size() != kSymbols / 10) state.SkipWithError("wrong stale count");
  state.SetItemsProcessed(state.iterations() * kSymbols);
}

void BM_FeedHealth_Evaluate5000(benchmark::State& state) {
  const SteadyTime now = SteadyTime{} + 1000h;
  FeedHealth h = make_scanned(now);
  std::vector<feedkit::HealthTransition> out;
  out.reserve(kSymbols + 1);
  SteadyTime t = now;
  for (auto _ : state) {
    h.evaluate(t, out);  // states are settled: no transitions
    benchmark::DoNotOptimize(out.data());
    t += 1ns;
  }
  if (!out.empty()) state.SkipWithError("unexpected transitions");
  state.SetItemsProcessed(state.iterations() * kSymbols);
}

BENCHMARK(BM_FeedHealth_RecordById);
BENCHMARK(BM_FeedHealth_RecordByName);
BENCHMARK(BM_UnorderedMap_Update);
BENCHMARK(BM_FeedHealth_StaleScan5000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_FeedHealth_Evaluate5000)->Unit(benchmark::kMicrosecond);

}  // namespace

FEEDKIT_BENCHMARK_MAIN({
    {"feed_health_record_by_name/unordered_map", "BM_FeedHealth_RecordByName",
     "BM_UnorderedMap_Update", feedkit::bench::Metric::time_per_item},
    {"feed_health_record_by_id/unordered_map", "BM_FeedHealth_RecordById",
     "BM_UnorderedMap_Update", feedkit::bench::Metric::time_per_item},
})
