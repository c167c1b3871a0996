// SPDX-License-Identifier: Apache-2.0
//
// feedkit-report: the demo's verdict. Reads feedkit-sim's record (--record)
// and a collector's JSON Lines output, prints the report (per symbol trades
// sent vs received, each outage with cause, down, detect and recover times,
// reconnects, drops), optionally writes it as JSON, and exits 0 only if
// nothing was lost while connected, every outage has exactly one gap line
// and every symbol traded again after each reconnect (see
// examples/sim/demo_report.h).
//
//   feedkit-report --sim out/demo/sim.jsonl --collector out/demo/ticks.jsonl
//                  [--json out/demo/report.json]
//
// Exit 0 pass, 1 fail (each failure named), 2 bad usage or unreadable input.
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>

#include "sim/demo_report.h"

namespace {

constexpr std::string_view kUsage =
    R"(usage: feedkit-report --sim FILE --collector FILE [--json FILE]

Joins feedkit-sim's record (--record FILE) with a collector's JSON Lines and
prints what was sent and received per symbol, each outage (cause, down time,
time to detect, time to recover), reconnects and drops.

  --sim FILE        feedkit-sim's record (JSON Lines)
  --collector FILE  the collector's output (JSON Lines)
  --json FILE       also write the report as one JSON object
  --help            this text

Exit 0: nothing lost while connected, one gap line per outage, every symbol
flowed again after each reconnect; 1: a check failed (each named); 2: bad
flags or an unreadable file. Malformed lines are counted and skipped.
)";

int usage_error(const std::string& message) {
  std::cerr << "feedkit-report: " << message
            << "\n(run feedkit-report --help for the flags)\n";
  return 2;
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return text.str();
}

}  // namespace

int main(int argc, char** argv) {
  std::string sim_file, collector_file, json_file;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    }
    std::string* target = arg == "--sim"         ? &sim_file
                          : arg == "--collector" ? &collector_file
                          : arg == "--json"      ? &json_file
                                                 : nullptr;
    if (target == nullptr)
      return usage_error("unknown argument \"" + arg + "\"");
    if (i + 1 >= argc) return usage_error(arg + " needs a value");
    *target = argv[++i];
  }
  if (sim_file.empty() || collector_file.empty()) {
    return usage_error("--sim and --collector are required");
  }
  const auto sim = read_file(sim_file);
  if (!sim) return usage_error("cannot read --sim \"" + sim_file + "\"");
  const auto collector = read_file(collector_file);
  if (!collector) {
    return usage_error("cannot read --collector \"" + collector_file + "\"");
  }
  const auto report = examples::sim::analyze_demo(*sim, *collector);
  if (!report.ok()) {
    std::cerr << "feedkit-report: " << sim_file << ": "
              << report.status().message() << "\n";
    return 2;
  }
  std::cout << examples::sim::format_text(*report) << std::flush;
  if (!json_file.empty()) {
    std::ofstream out(json_file, std::ios::trunc);
    out << examples::sim::format_json(*report);
    out.close();
    if (!out) {
      std::cerr << "feedkit-report: cannot write --json \"" << json_file
                << "\"\n";
      return 2;
    }
  }
  return report->passed() ? 0 : 1;
}
