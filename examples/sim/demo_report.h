// SPDX-License-Identifier: Apache-2.0
//
// examples/sim/demo_report.h
//
// The demo's verdict: joins what feedkit-sim recorded sending (its --record
// JSON Lines, broker_sim.h) with what a collector wrote (the collector
// contract's JSON Lines, examples/collector/json_lines.h) and says, per
// symbol, how many trades were sent and received, what was lost while
// connected and what was lost to outages, and for each outage its cause,
// down time, time to detect and time to recover. Pure: text in, facts out.
//
//   trades → seqs   every trade's cum_volume is C(seq) of sim/market.h, so a
//                   trade names its seq (a cum_volume the sim never
//                   published, or a volume that does not match, is a
//                   failure). Within an epoch a symbol's seqs must be
//                   consecutive: cum[n] == cum[n-1] + volume[n].
//   epoch ↔ conn    an epoch belongs to the sim connection whose sent seq
//                   range holds its first trades (a vote over its symbols); a
//                   connection that carried no data (a refused login) maps to
//                   no epoch.
//   checks          passed() only if
//                   (a) nothing was lost while connected: per mapped epoch
//                       and symbol, every trade the connection sent was
//                       received in that epoch, except a tail cut by an
//                       outage that has a gap line (or by the collector's
//                       stop: the last connection that carried data);
//                   (b) every outage (an epoch followed by a later epoch
//                       with data, or a mapped connection that ended before
//                       the collector's last event) has exactly one gap line
//                       with that old_epoch;
//                   (c) after every reconnect each symbol traded again.
//                   Each failed check adds a sentence to `failures`.
//   times           detect: the latest disruptive fault (stall, close,
//                   reset, expire_token, appkey_in_use) played on a
//                   connection → that connection's end (sim clock);
//                   recover: that fault → the first trade of the next epoch
//                   (Unix ns, joined through the record's started_unix_ns).
//
// Lines that are not JSON objects, or lack the fields their type needs, are
// counted and skipped (with a note naming file and line); analyze() fails
// (kInvalidArgument) only when the sim record has no summary line.
//
// Thread safety: the functions are pure (thread-safe).
//
// Example:
//   auto report = examples::sim::analyze_demo(sim_text, collector_text);
//   if (!report.ok()) { std::cerr << report.status(); return 2; }
//   std::cout << examples::sim::format_text(*report);
//   return report->passed() ? 0 : 1;
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace examples::sim {

// One symbol's trades, summed over the run.
struct SymbolTally {
  std::string symbol;
  std::uint64_t published = 0;    // trades the sim published (its last seq)
  std::uint64_t sent = 0;         // trades sent on the collector's connections
  std::uint64_t received = 0;     // trade lines (distinct, in order)
  std::uint64_t sent_volume = 0;  // volume of the trades sent
  std::uint64_t received_volume = 0;  // volume of the trade lines
  std::uint64_t lost_connected = 0;   // sent (or due) while connected, missing
  std::uint64_t lost_in_outages = 0;  // published between connections, or
                                      // a tail cut by a reported outage
  std::uint64_t lost_at_stop = 0;     // the last connection's tail
  std::uint64_t out_of_order = 0;     // repeated or backwards seqs
  std::uint64_t unknown = 0;  // trades that are not what the sim published
};

// One sim connection and the collector epoch it carried.
struct ConnectionView {
  std::size_t connection = 0;
  double opened_s = 0;
  std::optional<double> closed_s;  // sim clock; none: open at the end
  std::optional<std::uint64_t> epoch;
  std::uint64_t trades_sent = 0;
  std::uint64_t malformed_sent = 0;
};

// One outage: an epoch change reported (or not) by gap lines.
struct Outage {
  std::uint64_t old_epoch = 0;
  std::optional<std::uint64_t> new_epoch;  // from the gap line
  std::size_t gap_lines = 0;               // must be 1
  std::string reason;                      // the gap line's
  std::optional<double> down_ms;           // the gap line's
  std::uint64_t dropped_before = 0;
  std::optional<std::size_t> connection;  // the old epoch's
  std::string fault;                      // e.g. "at 5 stall 12"; "" none
  std::optional<double> fault_at_s;       // when it played (sim clock)
  std::optional<double> detect_s;         // fault → the connection's end
  std::optional<double> recover_s;  // fault → first trade of the next epoch
  std::uint64_t tail_lost = 0;      // trades of the old connection not seen
};

// A jump in a symbol's cum_volume within one epoch: trades lost while
// connected.
struct VolumeJump {
  std::uint64_t epoch = 0;
  std::string symbol;
  std::uint64_t after_seq = 0;  // last seq received before the jump
  std::uint64_t missing_trades = 0;
  std::uint64_t missing_volume = 0;
  bool not_sent = false;  // the sim skipped them on that connection (a stall
                          // that resumed): the collector did not notice
  bool reported = false;  // a "volume_jump" gap line names it
};

struct DemoReport {
  std::string broker;
  std::int64_t started_unix_ns = 0;
  double sim_elapsed_s = 0;
  std::vector<SymbolTally> symbols;
  std::vector<ConnectionView> connections;
  std::vector<Outage> outages;
  std::vector<VolumeJump> jumps;
  std::uint64_t reconnects = 0;        // epoch changes with data on both sides
  std::uint64_t dispatcher_drops = 0;  // Σ dropped_before of the gap lines
  std::uint64_t volume_jump_lines = 0;
  std::uint64_t malformed_sent = 0;              // by the sim, every connection
  std::optional<std::uint64_t> already_answers;  // if the record has them
  std::uint64_t books = 0;
  std::uint64_t bad_sim_lines = 0;
  std::uint64_t bad_collector_lines = 0;
  std::vector<std::string> notes;     // skipped lines and other remarks
  std::vector<std::string> failures;  // empty: passed

  bool passed() const { return failures.empty(); }
};

// Joins a sim record and a collector's output (whole texts). Returns
// kInvalidArgument if the sim record has no summary line.
absl::StatusOr<DemoReport> analyze_demo(std::string_view sim_record,
                                        std::string_view collector_output);

// The human report: a table per symbol, the outages, the within-connection
// losses, the totals, then PASS or FAIL with each failure.
std::string format_text(const DemoReport& report);
// The same facts as one JSON object.
std::string format_json(const DemoReport& report);

// Returns the seq whose cumulative volume is `cumulative_volume`, or nullopt
// if no trade of the sim's market has it.
std::optional<std::uint64_t> seq_of_cumulative_volume(
    std::uint64_t cumulative_volume);

}  // namespace examples::sim
