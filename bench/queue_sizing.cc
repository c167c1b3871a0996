// SPDX-License-Identifier: Apache-2.0
//
// bench/queue_sizing.cc
//
// The queue-sizing harness. It replays an arrival profile through the real
// Dispatcher<T> with real threads, for a range of capacities, and checks the
// sizing rule of DESIGN.md §3, capacity = peak_rate × max_pause × safety,
// against what the replay shows:
//
//   * one producer thread paces arrivals from the profile's timestamps: it
//     wakes, pushes every arrival that is due (each event carries its
//     scheduled arrival time), samples the depth, and sleeps until the next;
//   * one consumer thread polls the dispatcher for a consumer model that runs
//     on simulated time: one event served every --service-us while it has
//     any, a stall of --pause-ms every --pause-every-s. It polls an event when
//     the model starts serving it, never earlier;
//   * an event's queueing delay is when its service starts minus when it was
//     scheduled to arrive.
//
// Time is compressed by --compress K: the replay runs K times faster than the
// simulated clock (rates ×K, service times and stalls ÷K), and every time it
// reports is simulated time. Both threads sleep in ~50 µs quanta instead of
// spinning, so the replay costs little CPU, and the producer never pushes
// more than 0.5 ms (real) past the consumer's progress: a preempted thread
// slows the replay down instead of faking a stall. What remains is a skew of
// one wake-up: the depth the dispatcher sees runs high by the arrivals of a
// fraction of a millisecond (real), e.g. ~1000 events at 200k/s and 20x.
//
// For each capacity it reports offered, dropped, max depth and the p50/p99/max
// queueing delay, recommends the smallest capacity with zero drops, sets it
// beside the rule, and writes DIR/sizing.csv, DIR/depth.csv and a gnuplot
// script DIR/sizing.gp rendered to DIR/sizing.png (or .svg).
//
// Usage: queue_sizing [--profile market_open] [--rate 20000] ... (see --help)
//        queue_sizing --self-check    # ~0.5 s; exits 0 if the rule holds
//
// Exit status: 0 success, 1 self-check failure or output error, 2 bad usage.

#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "feedkit/clock.h"
#include "feedkit/dispatcher.h"

extern char** environ;

namespace feedkit::bench {
namespace {

using std::chrono::nanoseconds;

// Simulated time, in nanoseconds since the start of the profile.
using SimNs = std::int64_t;

constexpr SimNs kNsPerSecond = 1'000'000'000;
constexpr double kTargetWallPerCapacity = 1.5;  // seconds, for --compress auto
constexpr double kMaxRealRate = 4e6;  // events/s, caps --compress auto
constexpr std::size_t kMaxEvents = 40'000'000;  // memory bound of one profile
constexpr std::size_t kPollMax = 128;           // events per poll()
constexpr int kDepthSamplesPerRun = 12000;      // points of the depth series
constexpr std::size_t kMaxCapacity = std::size_t{1} << 40;

// An event of the replay: when it was scheduled to arrive.
struct Arrival {
  SimNs scheduled = 0;
};

enum class ProfileKind { steady, market_open, csv };
enum class PlotFormat { png, svg };

struct Config {
  ProfileKind profile = ProfileKind::steady;
  std::string csv_path;                 // --profile csv:PATH
  double csv_unit_ns = 1e9;             // --csv-unit: ns per CSV timestamp unit
  double rate = 20'000;                 // --rate: steady events/s, > 0
  double duration_s = 60;               // --duration: simulated seconds, > 0
  bool duration_given = false;          // truncates a CSV profile when set
  double open_multiplier = 10;          // --open-multiplier: >= 1
  double open_seconds = 30;             // --open-seconds: >= 0
  double service_us = 2;                // --service-us: per event, >= 0
  double pause_ms = 200;                // --pause-ms: consumer stall, >= 0
  double pause_every_s = 10;            // --pause-every-s: stall period, > 0
  std::vector<std::size_t> capacities;  // --capacities; empty: auto
  double compress = 0;                  // --compress: > 0; 0: auto
  double safety = 1.5;                  // --safety: >= 1
  std::string out_dir = "out/sizing";
  OverflowPolicy policy = OverflowPolicy::drop_oldest;
  PlotFormat format = PlotFormat::png;
  bool self_check = false;
  bool verbose = false;  // --verbose: per-run replay diagnostics
  bool help = false;
};

struct Profile {
  std::vector<SimNs> arrivals;  // sorted, starting near 0
  SimNs span = 0;               // simulated length
  double peak_rate = 0;         // events/s
  std::string description;
};

struct RunResult {
  std::size_t capacity = 0;
  std::uint64_t offered = 0;
  std::uint64_t dropped = 0;
  std::uint64_t max_depth = 0;
  double p50_us = 0, p99_us = 0, max_us = 0;  // simulated queueing delay
  // How far each thread fell behind real time (simulated ms): a late wake-up
  // or a preemption. It slows the replay down; it does not bias it.
  double producer_lag_ms = 0;
  double consumer_lag_ms = 0;
  double wall_s = 0;
  std::vector<std::pair<double, std::uint64_t>> depth;  // (t_ms, depth)
};

constexpr absl::string_view kUsage = R"(usage: queue_sizing [flags]

Replays an arrival profile through the real feedkit::Dispatcher with a
producer and a consumer thread, for a range of capacities, and recommends the
smallest capacity with zero drops beside the rule peak_rate x max_pause x safety.

Arrivals:
  --profile steady|market_open|csv:PATH   (default steady)
  --rate N                steady arrivals per second (default 20000)
  --duration S            simulated seconds (default 60; truncates a CSV)
  --open-multiplier M     market_open: rate multiplier at the open (default 10)
  --open-seconds S        market_open: length of the open burst (default 30)
  --csv-unit s|ms|us|ns   unit of CSV timestamps (first column; default s)
Consumer:
  --service-us X          service time per event, microseconds (default 2)
  --pause-ms P            length of each consumer stall (default 200)
  --pause-every-s E       one stall every E simulated seconds (default 10)
Replay:
  --capacities a,b,c|auto capacities to try (default auto: rule/8 .. rule*4)
  --policy drop_oldest|drop_newest   (default drop_oldest)
  --safety F              safety factor of the rule, >= 1 (default 1.5)
  --compress K|auto       run K times faster than simulated time (default auto:
                          ~1.5 s of wall time per capacity, less compressed
                          if the peak would exceed 4M events/s of real time)
Output:
  --out-dir DIR           sizing.csv, depth.csv, sizing.gp, sizing.png (out/sizing)
  --format png|svg        plot format (default png)
  --verbose               print replay diagnostics per capacity
  --self-check            a ~0.5 s replay asserting that a tiny capacity drops
                          and a rule-sized one does not; exits 0 or 1
  --help
)";

// printf into a std::string.
[[gnu::format(printf, 1, 2)]] std::string format(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  va_list again;
  va_copy(again, args);
  const int n = std::vsnprintf(nullptr, 0, fmt, args);
  va_end(args);
  std::string out(n > 0 ? static_cast<std::size_t>(n) : 0, '\0');
  if (n > 0) std::vsnprintf(out.data(), out.size() + 1, fmt, again);
  va_end(again);
  return out;
}

unsigned long long ull(std::uint64_t x) { return x; }

// ---------------------------------------------------------------------------
// Flags

absl::Status bad_value(absl::string_view flag, absl::string_view value,
                       absl::string_view want) {
  return absl::InvalidArgumentError(
      absl::StrCat(flag, ": expected ", want, ", got '", value, "'"));
}

absl::StatusOr<double> parse_number(absl::string_view flag,
                                    absl::string_view value, double min,
                                    bool min_exclusive) {
  double x = 0;
  if (!absl::SimpleAtod(value, &x) || !std::isfinite(x) ||
      (min_exclusive ? x <= min : x < min)) {
    return bad_value(
        flag, value,
        absl::StrCat("a number ", min_exclusive ? "> " : ">= ", min));
  }
  return x;
}

absl::StatusOr<std::vector<std::size_t>> parse_capacities(
    absl::string_view value) {
  std::vector<std::size_t> out;
  for (absl::string_view part : absl::StrSplit(value, ',')) {
    std::uint64_t c = 0;
    if (!absl::SimpleAtoi(part, &c) || c < 1 || c > kMaxCapacity) {
      return bad_value("--capacities", value,
                       "'auto' or a comma-separated list of integers in "
                       "[1, 2^40]");
    }
    out.push_back(static_cast<std::size_t>(c));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

absl::StatusOr<Config> parse_flags(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      c.help = true;
      continue;
    }
    if (arg == "--self-check") {
      c.self_check = true;
      continue;
    }
    if (arg == "--verbose") {
      c.verbose = true;
      continue;
    }
    if (!absl::ConsumePrefix(&arg, "--")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unexpected argument '", arg, "' (flags start with --)"));
    }
    absl::string_view name = arg.substr(0, arg.find('='));
    constexpr absl::string_view kValued[] = {
        "profile",         "csv-unit",     "rate",       "duration",
        "open-multiplier", "open-seconds", "service-us", "pause-ms",
        "pause-every-s",   "capacities",   "compress",   "safety",
        "out-dir",         "policy",       "format"};
    if (std::find(std::begin(kValued), std::end(kValued), name) ==
        std::end(kValued)) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, " (see --help)"));
    }
    absl::string_view value;
    if (auto eq = arg.find('='); eq != absl::string_view::npos) {
      value = arg.substr(eq + 1);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, " needs a value (see --help)"));
    }
    const std::string flag = absl::StrCat("--", name);
    auto number = [&](double min, bool exclusive) {
      return parse_number(flag, value, min, exclusive);
    };
    absl::StatusOr<double> x = 0.0;
    if (name == "profile") {
      if (value == "steady") {
        c.profile = ProfileKind::steady;
      } else if (value == "market_open") {
        c.profile = ProfileKind::market_open;
      } else if (absl::StartsWith(value, "csv:") && value.size() > 4) {
        c.profile = ProfileKind::csv;
        c.csv_path = std::string(value.substr(4));
      } else {
        return bad_value(flag, value, "steady, market_open or csv:PATH");
      }
    } else if (name == "csv-unit") {
      if (value == "s")
        c.csv_unit_ns = 1e9;
      else if (value == "ms")
        c.csv_unit_ns = 1e6;
      else if (value == "us")
        c.csv_unit_ns = 1e3;
      else if (value == "ns")
        c.csv_unit_ns = 1;
      else
        return bad_value(flag, value, "s, ms, us or ns");
    } else if (name == "rate") {
      if (!(x = number(0, true)).ok()) return x.status();
      c.rate = *x;
    } else if (name == "duration") {
      if (!(x = number(0, true)).ok()) return x.status();
      c.duration_s = *x;
      c.duration_given = true;
    } else if (name == "open-multiplier") {
      if (!(x = number(1, false)).ok()) return x.status();
      c.open_multiplier = *x;
    } else if (name == "open-seconds") {
      if (!(x = number(0, false)).ok()) return x.status();
      c.open_seconds = *x;
    } else if (name == "service-us") {
      if (!(x = number(0, false)).ok()) return x.status();
      c.service_us = *x;
    } else if (name == "pause-ms") {
      if (!(x = number(0, false)).ok()) return x.status();
      c.pause_ms = *x;
    } else if (name == "pause-every-s") {
      if (!(x = number(0, true)).ok()) return x.status();
      c.pause_every_s = *x;
    } else if (name == "capacities") {
      if (value == "auto") {
        c.capacities.clear();
      } else {
        auto caps = parse_capacities(value);
        if (!caps.ok()) return caps.status();
        c.capacities = *std::move(caps);
      }
    } else if (name == "compress") {
      if (value == "auto") {
        c.compress = 0;
      } else {
        if (!(x = number(0, true)).ok()) return x.status();
        c.compress = *x;
      }
    } else if (name == "safety") {
      if (!(x = number(1, false)).ok()) return x.status();
      c.safety = *x;
    } else if (name == "out-dir") {
      if (value.empty()) return bad_value(flag, value, "a directory");
      c.out_dir = std::string(value);
    } else if (name == "policy") {
      if (value == "drop_oldest")
        c.policy = OverflowPolicy::drop_oldest;
      else if (value == "drop_newest")
        c.policy = OverflowPolicy::drop_newest;
      else
        return bad_value(flag, value, "drop_oldest or drop_newest");
    } else if (name == "format") {
      if (value == "png")
        c.format = PlotFormat::png;
      else if (value == "svg")
        c.format = PlotFormat::svg;
      else
        return bad_value(flag, value, "png or svg");
    }
  }
  if (c.pause_ms > 0 && c.pause_ms >= c.pause_every_s * 1e3) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--pause-ms (", c.pause_ms, ") must be shorter than --pause-every-s (",
        c.pause_every_s, " s)"));
  }
  return c;
}

// ---------------------------------------------------------------------------
// Profiles

// Appends evenly spaced arrivals at `rate`/s over [from, to).
void append_uniform(std::vector<SimNs>& out, double rate, SimNs from,
                    SimNs to) {
  const double gap = 1e9 / rate;
  for (double t = static_cast<double>(from); t < static_cast<double>(to);
       t += gap) {
    out.push_back(static_cast<SimNs>(t));
  }
}

// Returns the largest number of arrivals within any one-second window, per
// second (or the mean rate if the profile is shorter than a second).
double peak_rate_of(const std::vector<SimNs>& a) {
  if (a.size() < 2) return static_cast<double>(a.size());
  const SimNs span = a.back() - a.front();
  if (span < kNsPerSecond) {
    return static_cast<double>(a.size()) * 1e9 /
           static_cast<double>(std::max<SimNs>(span, 1));
  }
  std::size_t best = 0;
  for (std::size_t lo = 0, hi = 0; hi < a.size(); ++hi) {
    while (a[hi] - a[lo] >= kNsPerSecond) ++lo;
    best = std::max(best, hi - lo + 1);
  }
  return static_cast<double>(best);
}

absl::StatusOr<std::vector<SimNs>> read_csv(const Config& c) {
  std::ifstream in(c.csv_path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("--profile csv: cannot open '", c.csv_path, "'"));
  }
  std::vector<double> raw;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    absl::string_view field = absl::StripAsciiWhitespace(line);
    if (field.empty() || field.front() == '#') continue;
    field = absl::StripAsciiWhitespace(field.substr(0, field.find(',')));
    double t = 0;
    if (!absl::SimpleAtod(field, &t) || !std::isfinite(t)) {
      if (raw.empty() && line_no == 1) continue;  // a header line
      return absl::InvalidArgumentError(absl::StrCat(
          c.csv_path, ":", line_no,
          ": expected a timestamp in the first column, got '", field, "'"));
    }
    raw.push_back(t);
    if (raw.size() > kMaxEvents) {
      return absl::InvalidArgumentError(absl::StrCat(
          c.csv_path, ": more than ", kMaxEvents, " arrivals; split it"));
    }
  }
  if (raw.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(c.csv_path, ": no arrival timestamps"));
  }
  if (!std::is_sorted(raw.begin(), raw.end())) {
    std::fprintf(stderr, "note: %s is not sorted; sorting its timestamps\n",
                 c.csv_path.c_str());
    std::sort(raw.begin(), raw.end());
  }
  // Relative to the first arrival, so epoch timestamps work as they are.
  std::vector<SimNs> out;
  out.reserve(raw.size());
  const double first = raw.front();
  for (double t : raw) {
    const auto ns = static_cast<SimNs>((t - first) * c.csv_unit_ns);
    if (c.duration_given && ns >= static_cast<SimNs>(c.duration_s * 1e9)) break;
    out.push_back(ns);
  }
  return out;
}

absl::StatusOr<Profile> build_profile(const Config& c) {
  Profile p;
  const auto duration = static_cast<SimNs>(c.duration_s * 1e9);
  switch (c.profile) {
    case ProfileKind::steady: {
      if (c.rate * c.duration_s > static_cast<double>(kMaxEvents)) break;
      append_uniform(p.arrivals, c.rate, 0, duration);
      p.span = duration;
      p.peak_rate = c.rate;
      p.description = format("steady %g/s for %g s", c.rate, c.duration_s);
      break;
    }
    case ProfileKind::market_open: {
      const double open_s = std::min(c.open_seconds, c.duration_s);
      const double peak = c.rate * c.open_multiplier;
      if (peak * open_s + c.rate * (c.duration_s - open_s) >
          static_cast<double>(kMaxEvents)) {
        break;
      }
      const auto open_end = static_cast<SimNs>(open_s * 1e9);
      append_uniform(p.arrivals, peak, 0, open_end);
      append_uniform(p.arrivals, c.rate, open_end, duration);
      p.span = duration;
      p.peak_rate = open_s > 0 ? peak : c.rate;
      p.description =
          format("market_open: %g/s (%gx) for %g s, then %g/s, %g s in all",
                 peak, c.open_multiplier, open_s, c.rate, c.duration_s);
      break;
    }
    case ProfileKind::csv: {
      auto arrivals = read_csv(c);
      if (!arrivals.ok()) return arrivals.status();
      p.arrivals = *std::move(arrivals);
      p.span = p.arrivals.back() + 1;
      p.peak_rate = peak_rate_of(p.arrivals);
      p.description = format("csv %s, %.3f s", c.csv_path.c_str(),
                             static_cast<double>(p.span) / 1e9);
      break;
    }
  }
  if (p.arrivals.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the profile has no arrivals or more than ", kMaxEvents,
                     " of them; adjust --rate/--duration"));
  }
  return p;
}

// ---------------------------------------------------------------------------
// The replay

// The replay's clock: simulated time runs `compress` times faster than real
// time from `t0`.
struct ReplayClock {
  double compress;  // K: simulated ns per real ns
  SteadyTime t0;    // real time of simulated 0

  SteadyTime real_at(SimNs sim) const {
    return t0 + nanoseconds(static_cast<std::int64_t>(static_cast<double>(sim) /
                                                      compress));
  }
  SimNs sim_now() const {
    return static_cast<SimNs>(
        static_cast<double>((SteadyClock::now() - t0).count()) * compress);
  }
};

// Both threads sleep in quanta rather than spin: each wakes, does what came
// due, and sleeps again.
constexpr auto kQuantum = std::chrono::microseconds(50);

// How far (real time) the producer may push ahead of the consumer's polls.
// A hiccup of either thread (a 10 ms preemption is 200 ms simulated at 20x)
// would otherwise let the other run on alone and fake a stall; with this
// bound it only slows the replay down, and the queue the dispatcher sees
// stays within lookahead × rate events of the model's.
constexpr auto kLookahead = std::chrono::microseconds(500);

constexpr SimNs kNever = std::numeric_limits<SimNs>::max();

double percentile(std::vector<float>& v, double q) {
  if (v.empty()) return 0;
  const auto k =
      static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size()))) -
      1;
  const auto at =
      v.begin() + static_cast<std::ptrdiff_t>(std::min(k, v.size() - 1));
  std::nth_element(v.begin(), at, v.end());
  return *at;
}

RunResult run_capacity(const Profile& profile, const Config& c, double compress,
                       std::size_t capacity) {
  RunResult r;
  r.capacity = capacity;
  auto created = Dispatcher<Arrival>::create(
      {.capacity = capacity, .overflow = c.policy, .max_producers = 1});
  if (!created.ok()) {
    std::fprintf(stderr, "error: %s\n",
                 std::string(created.status().message()).c_str());
    std::exit(2);
  }
  Dispatcher<Arrival>& d = **created;

  const auto wall_start = SteadyClock::now();
  // Simulated time starts once both threads are up (t0 is set before `go`).
  ReplayClock clock{.compress = compress, .t0 = {}};
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  auto start_together = [&] {
    ready.fetch_add(1);
    while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
    std::this_thread::sleep_until(clock.t0);
  };
  const auto service = static_cast<SimNs>(c.service_us * 1e3);
  const auto pause = static_cast<SimNs>(c.pause_ms * 1e6);
  const auto pause_every = static_cast<SimNs>(c.pause_every_s * 1e9);
  const auto lookahead = static_cast<SimNs>(
      static_cast<double>(nanoseconds(kLookahead).count()) * compress);
  const SimNs sample_every =
      std::max<SimNs>(1'000'000, profile.span / kDepthSamplesPerRun);

  // The two threads' progress in simulated time. pushed_upto: every arrival
  // at or before it is pushed (kNever: all are). polled_upto: the model polls
  // nothing before it that it has not polled.
  std::atomic<SimNs> pushed_upto{0};
  std::atomic<SimNs> polled_upto{0};
  std::atomic<bool> consumer_done{false};
  // Simulated ns, one per polled event; written up front so that page faults
  // do not stall the replay.
  std::vector<float> delays(profile.arrivals.size());
  std::size_t polled = 0;

  // The producer pushes every arrival that is due, up to `lookahead` past the
  // consumer's progress, and samples the depth.
  std::thread producer_thread([&] {
    auto producer = d.make_producer();
    if (!producer.ok()) std::abort();  // max_producers = 1 and we are the one
    const std::vector<SimNs>& a = profile.arrivals;
    SimNs next_sample = 0, worst_lag = 0;
    std::size_t i = 0;
    start_together();
    while (true) {
      const SimNs now = clock.sim_now();
      const SimNs upto = std::min(
          now, polled_upto.load(std::memory_order_acquire) + lookahead);
      for (; i < a.size() && a[i] <= upto; ++i) {
        // A drop is counted by the dispatcher; nothing to do here.
        (void)producer->try_push(Arrival{a[i]});
      }
      pushed_upto.store(i == a.size() ? kNever : upto,
                        std::memory_order_release);
      worst_lag = std::max(worst_lag, now - upto);
      if (upto >= next_sample) {
        r.depth.emplace_back(static_cast<double>(upto) / 1e6, d.stats().depth);
        while (next_sample <= upto) next_sample += sample_every;
      }
      if (i == a.size() && consumer_done.load(std::memory_order_acquire)) {
        break;
      }
      // Held back (upto < now), wake up a quantum later: the consumer will
      // have moved on by then.
      const SimNs next =
          i < a.size() && upto == now ? std::min(a[i], next_sample) : kNever;
      std::this_thread::sleep_until(
          std::max(SteadyClock::now() + kQuantum,
                   next == kNever ? SteadyTime::min() : clock.real_at(next)));
    }
    r.producer_lag_ms = static_cast<double>(worst_lag) / 1e6;
  });

  // The consumer runs a model on simulated time: it serves one event every
  // `service` while it has any, and stalls for `pause` every `pause_every`
  // (once the event in service is done). It polls an event from the
  // dispatcher when the model starts serving it, never earlier; the event's
  // queueing delay is that start minus its scheduled arrival.
  std::thread consumer_thread([&] {
    std::vector<Polled<Arrival>> batch;
    batch.reserve(kPollMax);
    SimNs next_pause = pause > 0 ? pause_every : kNever;
    SimNs free_at = 0;  // when the model can start its next event
    SimNs worst_lag = 0;
    auto stall = [&] {
      free_at = std::max(free_at, next_pause) + pause;
      next_pause += pause_every;
    };
    start_together();
    while (true) {
      const SimNs now = clock.sim_now();
      const SimNs pushed = pushed_upto.load(std::memory_order_acquire);
      const SimNs horizon = std::min(now, pushed);  // arrivals <= it are in
      bool empty = false;
      // Advance the model to `horizon`.
      while (true) {
        if (next_pause <= free_at) {
          stall();
          continue;
        }
        const SimNs until = std::min(horizon, next_pause);
        if (free_at > until) break;
        // Poll at most the events whose service starts by `until`.
        const std::size_t due =
            service == 0 ? kPollMax
                         : static_cast<std::size_t>(std::min<SimNs>(
                               (until - free_at) / service + 1, kPollMax));
        if (d.poll(batch, due, Duration::zero()) == 0) {
          // Idle: every arrival up to `horizon` is served, so the model idles
          // up to it, or up to a stall that comes first.
          empty = true;
          free_at = until;
          if (until == horizon) break;
          continue;
        }
        for (const Polled<Arrival>& e : batch) {
          SimNs start = std::max(free_at, e.value.scheduled);
          while (start >= next_pause) {
            stall();
            start = std::max(free_at, e.value.scheduled);
          }
          delays[polled++] = static_cast<float>(start - e.value.scheduled);
          free_at = start + service;
        }
      }
      // The next poll is at free_at at the earliest.
      polled_upto.store(std::max(horizon, free_at), std::memory_order_release);
      worst_lag = std::max(worst_lag, now - horizon);
      if (empty && pushed == kNever && d.stats().depth == 0) break;
      std::this_thread::sleep_until(
          std::max(SteadyClock::now() + kQuantum,
                   clock.real_at(std::min(free_at, next_pause))));
    }
    r.consumer_lag_ms = static_cast<double>(worst_lag) / 1e6;
    consumer_done.store(true, std::memory_order_release);
  });

  while (ready.load() < 2) std::this_thread::yield();
  clock.t0 = SteadyClock::now() + std::chrono::milliseconds(1);
  go.store(true, std::memory_order_release);
  producer_thread.join();
  consumer_thread.join();
  delays.resize(polled);
  r.wall_s =
      std::chrono::duration<double>(SteadyClock::now() - wall_start).count();

  const DispatcherStats s = d.stats();
  r.offered = s.offered;
  r.dropped = s.dropped();
  r.max_depth = s.high_water;
  r.p50_us = percentile(delays, 0.50) / 1e3;
  r.p99_us = percentile(delays, 0.99) / 1e3;
  r.max_us = delays.empty()
                 ? 0
                 : *std::max_element(delays.begin(), delays.end()) / 1e3;
  return r;
}

// ---------------------------------------------------------------------------
// Sizing

std::size_t rule_capacity(const Profile& p, const Config& c) {
  return suggested_capacity(
      p.peak_rate,
      std::chrono::duration_cast<Duration>(
          std::chrono::duration<double, std::milli>(c.pause_ms)),
      c.safety);
}

// rule/8 .. rule*4 in steps of sqrt(2).
std::vector<std::size_t> auto_capacities(std::size_t rule) {
  const double base = std::max<double>(16, static_cast<double>(rule));
  std::vector<std::size_t> out;
  for (int step = -6; step <= 4; ++step) {
    const double cap = std::round(base * std::pow(2.0, step / 2.0));
    out.push_back(std::clamp<std::size_t>(static_cast<std::size_t>(cap), 1,
                                          kMaxCapacity));
  }
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

double auto_compress(const Profile& p) {
  const double span_s = static_cast<double>(p.span) / 1e9;
  double k = span_s / kTargetWallPerCapacity;
  k = std::min(k, kMaxRealRate / std::max(p.peak_rate, 1.0));
  return std::max(1.0, k);
}

// ---------------------------------------------------------------------------
// Output

std::string gnuplot_string(const std::filesystem::path& path) {
  std::string s = "\"";
  for (char ch : path.string()) {
    if (ch == '"' || ch == '\\') s += '\\';
    s += ch;
  }
  return s + "\"";
}

absl::Status write_outputs(const Config& c, const Profile& p,
                           const std::vector<RunResult>& runs, std::size_t rule,
                           std::optional<std::size_t> recommended,
                           std::filesystem::path& plot_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(c.out_dir, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot create --out-dir '",
                                               c.out_dir, "': ", ec.message()));
  }
  const fs::path dir = fs::absolute(c.out_dir);
  auto open = [&](const fs::path& path, std::ofstream& out) -> absl::Status {
    out.open(path);
    if (!out) {
      return absl::UnavailableError(
          absl::StrCat("cannot write '", path.string(), "'"));
    }
    return absl::OkStatus();
  };

  std::ofstream sizing;
  if (auto s = open(dir / "sizing.csv", sizing); !s.ok()) return s;
  sizing << "capacity,offered,dropped,max_depth,p50_us,p99_us,max_us\n";
  for (const RunResult& r : runs) {
    sizing << format("%zu,%llu,%llu,%llu,%.1f,%.1f,%.1f\n", r.capacity,
                     ull(r.offered), ull(r.dropped), ull(r.max_depth), r.p50_us,
                     r.p99_us, r.max_us);
  }

  std::ofstream depth;
  if (auto s = open(dir / "depth.csv", depth); !s.ok()) return s;
  depth << "capacity,t_ms,depth\n";
  for (const RunResult& r : runs) {
    for (const auto& [t_ms, value] : r.depth) {
      depth << format("%zu,%.1f,%llu\n", r.capacity, t_ms, ull(value));
    }
  }

  const bool svg = c.format == PlotFormat::svg;
  plot_path = dir / (svg ? "sizing.svg" : "sizing.png");
  std::vector<std::string> caps;
  for (const RunResult& r : runs) caps.push_back(absl::StrCat(r.capacity));
  std::ofstream gp;
  if (auto s = open(dir / "sizing.gp", gp); !s.ok()) return s;
  gp << "# Written by bench/queue_sizing. Render with: gnuplot "
     << (dir / "sizing.gp").string() << "\n";
  gp << "set datafile separator \",\"\n";
  if (svg) {
    gp << "set terminal svg size 1200,1000 dynamic noenhanced\n";
  } else {
    gp << "if (strstrt(GPVAL_TERMINALS, \"pngcairo\") > 0) {\n"
          "  set terminal pngcairo size 1200,1000 noenhanced font \",10\"\n"
          "} else {\n"
          "  set terminal png size 1200,1000 noenhanced\n"
          "}\n";
  }
  gp << "set output " << gnuplot_string(plot_path) << "\n";
  gp << "depth = " << gnuplot_string(dir / "depth.csv") << "\n";
  gp << "sizing = " << gnuplot_string(dir / "sizing.csv") << "\n";
  gp << "capacities = \"" << absl::StrJoin(caps, " ") << "\"\n";
  gp << "rule = " << rule << "\n";
  gp << format(
      "set multiplot title \"queue sizing: %s; service %g us, "
      "pause %g ms every %g s; %s\"\n",
      p.description.c_str(), c.service_us, c.pause_ms, c.pause_every_s,
      c.policy == OverflowPolicy::drop_oldest ? "drop_oldest" : "drop_newest");
  // Top: the whole run. Bottom left: a zoom on the deepest moment of the
  // largest capacity (a stall at the peak). Bottom right: drops.
  const double span_s = static_cast<double>(p.span) / 1e9;
  double deepest_s = 0;
  std::uint64_t deepest = 0;
  for (const auto& [t_ms, value] : runs.back().depth) {
    if (value > deepest) deepest = value, deepest_s = t_ms / 1e3;
  }
  const double half_window =
      c.pause_ms > 0 ? 2 * c.pause_ms / 1e3 : span_s / 40;
  gp << "set grid\n";
  gp << "set origin 0,0.48\nset size 1,0.46\n";
  gp << "set title \"Queue depth over time, per capacity\"\n"
        "set xlabel \"simulated time (s)\"\n"
        "set ylabel \"depth (events)\"\n"
        "set key outside right top title \"capacity\"\n";
  gp << format("set xrange [0:%g]\n", span_s);
  gp << "plot for [c in capacities] depth skip 1 "
        "using ($2/1000):($1 == c+0 ? $3 : 1/0) with lines lw 1.5 title c\n";
  gp << "set origin 0,0\nset size 0.5,0.48\n";
  gp << "set title \"Zoom: the deepest moment\"\n"
        "unset key\n";
  gp << format("set xrange [%g:%g]\n", std::max(0.0, deepest_s - half_window),
               std::min(span_s, deepest_s + half_window));
  gp << "plot for [c in capacities] depth skip 1 "
        "using ($2/1000):($1 == c+0 ? $3 : 1/0) with steps lw 1.5 title c\n";
  gp << "set origin 0.5,0\nset size 0.5,0.48\n";
  gp << "set title \"Drops and p99 queueing delay, per capacity\"\n"
        "set logscale x 2\n"
        "set xlabel \"capacity (events, log scale)\"\n"
        "set ylabel \"dropped events\"\n"
        "set y2label \"p99 queueing delay (ms)\"\n"
        "set ytics nomirror\n"
        "set y2tics\n"
        "set key inside right top opaque title \"\"\n";
  // Headroom above the data for the key and the labels.
  double max_dropped = 0, max_p99_ms = 0;
  for (const RunResult& r : runs) {
    max_dropped = std::max(max_dropped, static_cast<double>(r.dropped));
    max_p99_ms = std::max(max_p99_ms, r.p99_us / 1e3);
  }
  gp << format("set yrange [0:%g]\n", std::max(1.0, max_dropped) * 1.45);
  gp << format("set y2range [0:%g]\n", std::max(1.0, max_p99_ms) * 1.45);
  gp << format("set xrange [%g:%g]\n",
               static_cast<double>(runs.front().capacity) / 1.25,
               static_cast<double>(runs.back().capacity) * 1.25);
  gp << "set arrow 1 from rule, graph 0 to rule, graph 1 nohead dt 2 "
        "lw 2 lc rgb \"red\"\n"
        "set label 1 sprintf(\"rule (dashed): %d\", rule) at graph 0.03, "
        "graph 0.94 tc rgb \"red\"\n";
  if (recommended) {
    gp << "recommended = " << *recommended << "\n"
       << "set arrow 2 from recommended, graph 0 to recommended, graph 1 "
          "nohead dt 3 lw 2 lc rgb \"dark-green\"\n"
          "set label 2 sprintf(\"smallest with zero drops (dotted): %d\", "
          "recommended) at graph 0.03, graph 0.87 "
          "tc rgb \"dark-green\"\n";
  }
  gp << "plot sizing skip 1 using 1:3 with linespoints pt 7 lw 2 "
        "title \"dropped\", \\\n"
        "     sizing skip 1 using 1:($6/1000) axes x1y2 with linespoints "
        "pt 5 dt 2 title \"p99 delay\"\n"
        "unset multiplot\n";
  if (!sizing || !depth || !gp) {
    return absl::UnavailableError(
        absl::StrCat("error writing to '", dir.string(), "'"));
  }
  return absl::OkStatus();
}

// Runs `gnuplot script`; returns false, having said why, if it could not.
bool render_plot(const std::filesystem::path& script) {
  const std::string path = script.string();
  char arg0[] = "gnuplot";
  std::vector<char*> args = {arg0, const_cast<char*>(path.c_str()), nullptr};
  pid_t pid = 0;
  if (int err =
          posix_spawnp(&pid, "gnuplot", nullptr, nullptr, args.data(), environ);
      err != 0) {
    std::printf(
        "gnuplot not found (%s): no plot; the CSVs are written. "
        "Install it with: apt-get install gnuplot-nox\n",
        std::strerror(err));
    return false;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::printf("gnuplot failed on %s: no plot; the CSVs are written\n",
                path.c_str());
    return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Reporting

const char* policy_name(OverflowPolicy p) {
  return p == OverflowPolicy::drop_oldest ? "drop_oldest" : "drop_newest";
}

void print_header() {
  std::printf("%10s %10s %10s %7s %10s %10s %10s %10s\n", "capacity", "offered",
              "dropped", "drop%", "max_depth", "p50_us", "p99_us", "max_us");
}

void print_row(const RunResult& r) {
  std::printf("%10zu %10llu %10llu %6.2f%% %10llu %10.0f %10.0f %10.0f\n",
              r.capacity, static_cast<unsigned long long>(r.offered),
              static_cast<unsigned long long>(r.dropped),
              r.offered == 0 ? 0.0
                             : 100.0 * static_cast<double>(r.dropped) /
                                   static_cast<double>(r.offered),
              static_cast<unsigned long long>(r.max_depth), r.p50_us, r.p99_us,
              r.max_us);
  std::fflush(stdout);
}

// Says what the consumer model implies, before any replay. Returns false if
// the consumer cannot keep up with the peak rate at all.
bool print_consumer_load(const Profile& p, const Config& c) {
  const double service_s = c.service_us * 1e-6;
  const double load = p.peak_rate * service_s;
  const double mean_rate = static_cast<double>(p.arrivals.size()) * 1e9 /
                           static_cast<double>(std::max<SimNs>(p.span, 1));
  std::printf(
      "consumer: %g us/event (%s events/s at most), stall %g ms every "
      "%g s; load at peak = peak_rate x service = %.2f\n",
      c.service_us,
      service_s > 0 ? format("%.0f", 1 / service_s).c_str() : "unlimited",
      c.pause_ms, c.pause_every_s, load);
  if (load >= 1) {
    std::printf(
        "WARNING: peak_rate x service time = %.2f >= 1: the consumer cannot "
        "keep up with the peak, so the queue grows by %.0f events/s for as "
        "long as the peak lasts, with or without pauses. No capacity rule "
        "holds; drops or unbounded delay follow.%s\n",
        load, p.peak_rate - 1 / service_s,
        mean_rate * service_s >= 1
            ? " Even the mean rate overloads it: the queue grows without bound."
            : "");
    return false;
  }
  if (c.pause_ms > 0 && static_cast<double>(p.span) / 1e9 <= c.pause_every_s) {
    std::printf(
        "WARNING: the profile (%.3g s) ends before the first stall "
        "(at %g s): the replay tests no stall; lower --pause-every-s\n",
        static_cast<double>(p.span) / 1e9, c.pause_every_s);
  }
  if (c.pause_ms > 0 && service_s > 0) {
    const double backlog = p.peak_rate * c.pause_ms * 1e-3;
    const double drain_s = backlog / (1 / service_s - p.peak_rate);
    std::printf(
        "a stall queues %.0f events at the peak rate; the consumer "
        "drains them in %.0f ms\n",
        backlog, drain_s * 1e3);
    if (drain_s + c.pause_ms * 1e-3 >= c.pause_every_s) {
      std::printf(
          "WARNING: the backlog of one stall is not drained before "
          "the next stall: backlogs add up and the rule "
          "underestimates\n");
    }
  }
  return true;
}

// ---------------------------------------------------------------------------
// Self-check: a tiny replay in ~0.5 s. A capacity 1/32 of the rule must drop
// (each stall queues 16x that), the rule's capacity must not, and the stall
// must show in the depth.

int self_check(const Config& flags) {
  Config c;
  c.profile = ProfileKind::steady;
  c.rate = 20'000;
  c.duration_s = 1.0;
  c.service_us = 2;
  c.pause_ms = 200;  // stalls at 0.4 s and 0.8 s, 4000 events each
  c.pause_every_s = 0.4;
  c.safety = 2;  // the rule: 8000
  c.policy = flags.policy;
  const double compress = 4;
  auto profile = build_profile(c);
  if (!profile.ok()) return 1;
  const std::size_t rule = rule_capacity(*profile, c);
  const double backlog = c.rate * c.pause_ms * 1e-3;
  bool ok = true;
  auto expect = [&](bool cond, const std::string& what) {
    if (!cond) std::printf("self-check FAILED: %s\n", what.c_str());
    ok = ok && cond;
  };
  print_header();
  const RunResult small = run_capacity(*profile, c, compress, rule / 32);
  print_row(small);
  const RunResult sized = run_capacity(*profile, c, compress, rule);
  print_row(sized);
  const auto n = static_cast<std::uint64_t>(profile->arrivals.size());
  expect(small.offered == n && sized.offered == n,
         absl::StrCat("every arrival is offered (", n, ")"));
  expect(small.dropped > 0,
         absl::StrCat("capacity ", small.capacity, " drops"));
  expect(small.max_depth == small.capacity,
         absl::StrCat("capacity ", small.capacity, " fills up"));
  expect(sized.dropped == 0,
         absl::StrCat("the rule's capacity ", rule, " drops nothing (dropped ",
                      sized.dropped, ")"));
  expect(static_cast<double>(sized.max_depth) >= 0.5 * backlog,
         absl::StrCat("a stall queues about ", backlog, " events (max depth ",
                      sized.max_depth, ")"));
  expect(sized.max_us >= 0.5 * c.pause_ms * 1e3,
         absl::StrCat("a stall delays events by about ", c.pause_ms,
                      " ms (max ", sized.max_us, " us)"));
  std::printf("self-check %s\n", ok ? "passed" : "FAILED");
  return ok ? 0 : 1;
}

int run(int argc, char** argv) {
  const auto wall_start = SteadyClock::now();
  auto flags = parse_flags(argc, argv);
  if (!flags.ok()) {
    std::fprintf(stderr, "queue_sizing: %s\n",
                 std::string(flags.status().message()).c_str());
    return 2;
  }
  Config& c = *flags;
  if (c.help) {
    std::fputs(kUsage.data(), stdout);
    return 0;
  }
  if (c.self_check) return self_check(c);

  auto profile = build_profile(c);
  if (!profile.ok()) {
    std::fprintf(stderr, "queue_sizing: %s\n",
                 std::string(profile.status().message()).c_str());
    return 2;
  }
  const Profile& p = *profile;
  const std::size_t rule = rule_capacity(p, c);
  const std::vector<std::size_t> capacities =
      c.capacities.empty() ? auto_capacities(rule) : c.capacities;
  const double compress = c.compress > 0 ? c.compress : auto_compress(p);

  std::printf("profile: %s (%zu arrivals, peak %.0f/s%s)\n",
              p.description.c_str(), p.arrivals.size(), p.peak_rate,
              c.profile == ProfileKind::csv ? " in its busiest second" : "");
  const bool keeps_up = print_consumer_load(p, c);
  std::printf(
      "replay: %s, %zu capacit%s, time compressed %.3gx (%.1f s of "
      "wall time each)\n\n",
      policy_name(c.policy), capacities.size(),
      capacities.size() == 1 ? "y" : "ies", compress,
      static_cast<double>(p.span) / 1e9 / compress);
  print_header();

  std::vector<RunResult> runs;
  for (std::size_t cap : capacities) {
    runs.push_back(run_capacity(p, c, compress, cap));
    const RunResult& r = runs.back();
    print_row(r);
    if (c.verbose) {
      std::printf(
          "           replay: %.2f s wall; behind real time by up to %.1f ms "
          "(producer), %.1f ms (consumer), simulated\n",
          r.wall_s, r.producer_lag_ms, r.consumer_lag_ms);
    }
  }
  std::printf("\n");

  std::optional<std::size_t> recommended;
  for (const RunResult& r : runs) {
    if (r.dropped == 0) {
      recommended = r.capacity;
      break;
    }
  }
  const std::string rule_text =
      format("rule peak_rate x max_pause x safety = %.0f/s x %g s x %g = %zu",
             p.peak_rate, c.pause_ms / 1e3, c.safety, rule);
  if (recommended) {
    std::printf(
        "recommended capacity: %zu (smallest with zero drops); %s "
        "(%.2fx the recommendation)\n",
        *recommended, rule_text.c_str(),
        static_cast<double>(rule) / static_cast<double>(*recommended));
    if (rule < *recommended) {
      std::printf(keeps_up ? "WARNING: the rule is below the smallest capacity "
                             "that dropped nothing; raise --safety\n"
                           : "WARNING: the rule does not apply: the consumer "
                             "cannot keep up with the peak (see above)\n");
    }
  } else {
    std::printf(
        "recommended capacity: none (every tested capacity dropped "
        "events; try larger --capacities); %s\n",
        rule_text.c_str());
  }
  std::filesystem::path plot;
  if (absl::Status s = write_outputs(c, p, runs, rule, recommended, plot);
      !s.ok()) {
    std::fprintf(stderr, "queue_sizing: %s\n",
                 std::string(s.message()).c_str());
    return 1;
  }
  const std::filesystem::path dir = std::filesystem::absolute(c.out_dir);
  std::printf("wrote %s, %s, %s\n", (dir / "sizing.csv").c_str(),
              (dir / "depth.csv").c_str(), (dir / "sizing.gp").c_str());
  if (render_plot(dir / "sizing.gp")) std::printf("wrote %s\n", plot.c_str());
  std::printf(
      "wall time: %.1f s\n",
      std::chrono::duration<double>(SteadyClock::now() - wall_start).count());
  return 0;
}

}  // namespace
}  // namespace feedkit::bench

int main(int argc, char** argv) { return feedkit::bench::run(argc, argv); }
