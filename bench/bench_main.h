// SPDX-License-Identifier: Apache-2.0
//
// bench/bench_main.h
//
// A main() for feedkit's Google Benchmark programs that, after the usual
// report, prints one line per comparison against the baseline measured in the
// same run, so noisy absolute numbers never decide anything:
//
//   ratio feedkit/moodycamel 1P1C: 0.93
//
// Usage, at the end of a bench/<concept>_bench.cc:
//   FEEDKIT_BENCHMARK_MAIN({
//       {"feedkit/moodycamel 1P1C", "BM_Dispatcher_Feedkit/1P1C",
//       "BM_Dispatcher_Moodycamel/1P1C",
//        feedkit::bench::Metric::items_per_second},
//   })
// Names are prefixes of benchmark names; with repetitions the median is used.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace feedkit::bench {

// Returns true when the run only has to show that the benchmark works (the
// test suite sets FEEDKIT_BENCH_SMOKE=1): benchmarks that set their own
// MinTime/Repetitions should then use a tiny min time and one repetition.
inline bool smoke_run() {
  return std::getenv("FEEDKIT_BENCH_SMOKE") != nullptr;
}

enum class Metric {
  items_per_second,  // numerator / denominator of items/s: higher is better
  time_per_item,     // numerator / denominator of real time per item: lower is
                     // better
};

struct Ratio {
  std::string label;
  std::string numerator;    // benchmark name prefix
  std::string denominator;  // benchmark name prefix (the baseline)
  Metric metric = Metric::items_per_second;
};

// Records every run while printing the usual console report.
class RecordingReporter : public benchmark::ConsoleReporter {
 public:
  struct Result {
    double items_per_second = 0;
    double real_ns_per_iteration = 0;
    bool median = false;
  };

  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      const bool median =
          run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
      if (run.run_type == Run::RT_Aggregate && !median) continue;
      Result r;
      r.median = median;
      if (auto it = run.counters.find("items_per_second");
          it != run.counters.end()) {
        r.items_per_second = it->second.value;
      }
      r.real_ns_per_iteration =
          run.GetAdjustedRealTime();  // in the run's time unit
      if (run.time_unit == benchmark::kMicrosecond)
        r.real_ns_per_iteration *= 1e3;
      if (run.time_unit == benchmark::kMillisecond)
        r.real_ns_per_iteration *= 1e6;
      if (run.time_unit == benchmark::kSecond) r.real_ns_per_iteration *= 1e9;
      results_.emplace_back(run.benchmark_name(), r);
    }
    ConsoleReporter::ReportRuns(runs);
  }

  // Returns the median (or only) result of the first benchmark whose name
  // starts with `prefix`, or nullptr.
  const Result* find(const std::string& prefix) const {
    const Result* plain = nullptr;
    for (const auto& [name, r] : results_) {
      if (name.rfind(prefix, 0) != 0) continue;
      if (r.median) return &r;
      if (plain == nullptr) plain = &r;
    }
    return plain;
  }

 private:
  std::vector<std::pair<std::string, Result>> results_;
};

// Ends the console report with a colour reset and a newline, so that lines
// printed after it start with their own text (the console reporter leaves a
// colour sequence pending at the start of the next line).
inline void end_report_line() {
  std::fflush(stdout);
  std::printf("\033[m\n");
}

// Runs the benchmarks (interleaving the repetitions of different benchmarks
// unless the caller says otherwise, so that drift on a noisy machine hits
// numerator and baseline alike), then prints one line per ratio.
inline int run_and_print_ratios(int argc, char** argv,
                                const std::vector<Ratio>& ratios) {
  std::vector<char*> args(argv, argv + argc);
  bool interleaving_set = false;
  for (char* arg : args) {
    if (std::string(arg).rfind("--benchmark_enable_random_interleaving", 0) ==
        0) {
      interleaving_set = true;
    }
  }
  static char interleave[] = "--benchmark_enable_random_interleaving=true";
  if (!interleaving_set) args.push_back(interleave);
  argc = static_cast<int>(args.size());
  argv = args.data();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RecordingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  end_report_line();
  for (const Ratio& ratio : ratios) {
    const auto* num = reporter.find(ratio.numerator);
    const auto* den = reporter.find(ratio.denominator);
    if (num == nullptr || den == nullptr) continue;  // filtered out
    double x = 0;
    if (ratio.metric == Metric::items_per_second && den->items_per_second > 0) {
      x = num->items_per_second / den->items_per_second;
    } else if (ratio.metric == Metric::time_per_item &&
               den->real_ns_per_iteration > 0) {
      x = num->real_ns_per_iteration / den->real_ns_per_iteration;
    }
    std::printf("ratio %s: %.2f\n", ratio.label.c_str(), x);
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace feedkit::bench

#define FEEDKIT_BENCHMARK_MAIN(...)                                       \
  int main(int argc, char** argv) {                                       \
    return feedkit::bench::run_and_print_ratios(argc, argv, __VA_ARGS__); \
  }
