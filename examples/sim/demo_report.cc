// SPDX-License-Identifier: Apache-2.0
#include "sim/demo_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/json_reader.h"
#include "sim/market.h"

namespace examples::sim {
namespace {

// --- Reading ---------------------------------------------------------------

// A number member of a top-level object, decimals included (json::Value
// reads integers only): the text after "key": in `line`, once the document
// has said the member is a number.
std::optional<double> number_member(std::string_view line, json::Value object,
                                    std::string_view key) {
  if (!object[key].is(json::Type::number)) return std::nullopt;
  std::string pattern = "\"";  // built by appending: g++ 12 -O2 warns
  pattern.append(key);         // falsely (-Wrestrict) on operator+
  pattern += "\":";
  const std::size_t at = line.find(pattern);
  if (at == std::string_view::npos) return std::nullopt;
  const std::string text(line.substr(at + pattern.size(), 40));
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || !std::isfinite(value)) return std::nullopt;
  return value;
}

std::optional<std::uint64_t> count_member(json::Value object,
                                          std::string_view key) {
  const auto v = object[key].integer();
  if (!v || *v < 0) return std::nullopt;
  return static_cast<std::uint64_t>(*v);
}

struct SentTrades {
  std::uint64_t first_seq = 0;
  std::uint64_t last_seq = 0;
  std::uint64_t records = 0;
};

struct SimConnection {
  double opened_s = 0;
  std::optional<double> closed_s;
  std::uint64_t malformed_sent = 0;
  std::optional<std::uint64_t> already;
  std::map<std::string, SentTrades> trades;  // by symbol
};

struct Fault {
  double at_s = 0;
  std::string command;
};

struct SimRecord {
  std::string broker;
  std::int64_t started_unix_ns = 0;
  double elapsed_s = 0;
  bool has_summary = false;
  std::map<std::size_t, SimConnection> connections;
  std::vector<Fault> faults;
  std::map<std::string, std::uint64_t> published;  // symbol → last seq
};

struct TradeLine {
  std::uint64_t seq = 0;
  std::uint64_t volume = 0;
  std::int64_t recv_ns = 0;
};

struct GapLine {
  std::uint64_t old_epoch = 0;
  std::uint64_t new_epoch = 0;
  std::string reason;
  std::optional<double> down_ms;
  std::uint64_t dropped_before = 0;
  std::string symbol;  // volume_jump lines
};

struct CollectorOutput {
  // epoch → symbol → trades in file order
  std::map<std::uint64_t, std::map<std::string, std::vector<TradeLine>>> trades;
  std::vector<GapLine> gaps;
  std::map<std::string, std::uint64_t> unknown_trades;  // by symbol
  std::uint64_t books = 0;
  std::int64_t last_recv_ns = 0;
};

// Calls `on_line(line_number, line, doc)` for every line that is a JSON
// object; counts and notes the others.
template <class OnLine>
void for_each_object(std::string_view text, std::string_view name,
                     std::uint64_t& bad, std::vector<std::string>& notes,
                     OnLine on_line) {
  json::Document doc;
  std::size_t number = 0;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? "" : text.substr(nl + 1);
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const json::JsonError error = doc.parse(line);
    const bool object =
        error == json::JsonError::none && doc.root().is(json::Type::object);
    if (!object || !on_line(line, doc.root())) {
      ++bad;
      if (notes.size() < 20) {
        notes.push_back(absl::StrCat(std::string(name), ":", number,
                                     ": skipped a malformed line (",
                                     error == json::JsonError::none
                                         ? "missing or bad fields"
                                         : std::string(json::to_string(error)),
                                     ")"));
      }
    }
  }
}

SimRecord read_sim(std::string_view text, DemoReport& report) {
  SimRecord sim;
  for_each_object(
      text, "sim record", report.bad_sim_lines, report.notes,
      [&](std::string_view line, json::Value v) {
        const auto type = v["type"].plain_string();
        if (!type) return false;
        if (*type == "connection") {
          const auto c = count_member(v, "connection");
          const auto opened = number_member(line, v, "opened_s");
          if (!c || !opened) return false;
          SimConnection& conn = sim.connections[*c];
          conn.opened_s = *opened;
          conn.closed_s = number_member(line, v, "closed_s");
          conn.malformed_sent = count_member(v, "malformed_sent").value_or(0);
          conn.already = count_member(v, "already_answers");
          return true;
        }
        if (*type == "sent") {
          const auto c = count_member(v, "connection");
          const auto symbol = v["symbol"].decoded_string();
          const auto kind = v["kind"].plain_string();
          const auto first = count_member(v, "first_seq");
          const auto last = count_member(v, "last_seq");
          const auto records = count_member(v, "records");
          if (!c || !symbol || !kind || !first || !last || !records) {
            return false;
          }
          if (*kind == "trade" && *records > 0) {
            sim.connections[*c].trades[*symbol] = {*first, *last, *records};
          }
          return true;
        }
        if (*type == "fault") {
          const auto at = number_member(line, v, "at_s");
          const auto command = v["command"].decoded_string();
          if (!at || !command) return false;
          sim.faults.push_back({*at, *command});
          return true;
        }
        if (*type == "summary") {
          const auto started = v["started_unix_ns"].integer();
          const auto broker = v["broker"].decoded_string();
          if (!started || !broker) return false;
          sim.has_summary = true;
          sim.broker = *broker;
          sim.started_unix_ns = *started;
          sim.elapsed_s = number_member(line, v, "elapsed_s").value_or(0);
          for (const auto member : v["trades_published"].members()) {
            const auto symbol = member.key.decoded_string();
            const auto last = count_member(member.value, "last_seq");
            if (!symbol || !last) return false;
            sim.published[*symbol] = *last;
          }
          return true;
        }
        return true;  // a type this report does not use
      });
  return sim;
}

CollectorOutput read_collector(std::string_view text, DemoReport& report) {
  CollectorOutput out;
  for_each_object(
      text, "collector output", report.bad_collector_lines, report.notes,
      [&](std::string_view line, json::Value v) {
        const auto type = v["type"].plain_string();
        if (!type) return false;
        if (*type == "trade") {
          const auto epoch = count_member(v, "epoch");
          const auto symbol = v["symbol"].decoded_string();
          const auto volume = count_member(v, "volume");
          const auto cum = count_member(v, "cum_volume");
          const auto recv = v["recv_ns"].integer();
          if (!epoch || !symbol || !volume || !cum || !recv) return false;
          out.last_recv_ns = std::max(out.last_recv_ns, *recv);
          const auto seq = seq_of_cumulative_volume(*cum);
          if (!seq || trade_volume(*seq) != *volume) {
            ++out.unknown_trades[*symbol];
            return true;
          }
          out.trades[*epoch][*symbol].push_back({*seq, *volume, *recv});
          return true;
        }
        if (*type == "book") {
          if (const auto recv = v["recv_ns"].integer()) {
            out.last_recv_ns = std::max(out.last_recv_ns, *recv);
          }
          ++out.books;
          return true;
        }
        if (*type == "gap") {
          GapLine g;
          const auto old_epoch = count_member(v, "old_epoch");
          const auto new_epoch = count_member(v, "new_epoch");
          const auto reason = v["reason"].decoded_string();
          if (!old_epoch || !new_epoch || !reason) return false;
          g.old_epoch = *old_epoch;
          g.new_epoch = *new_epoch;
          g.reason = *reason;
          g.down_ms = number_member(line, v, "down_ms");
          g.dropped_before = count_member(v, "dropped_before").value_or(0);
          g.symbol = v["symbol"].decoded_string().value_or("");
          out.gaps.push_back(std::move(g));
          return true;
        }
        return true;
      });
  return out;
}

// --- Joining -----------------------------------------------------------------

bool disruptive(std::string_view command) {
  for (std::string_view action :
       {" stall", " close", " reset", " expire_token", " appkey_in_use"}) {
    if (command.find(action) != std::string_view::npos) return true;
  }
  return false;
}

std::uint64_t volume_between(std::uint64_t after_seq, std::uint64_t to_seq) {
  return to_seq > after_seq
             ? cumulative_volume(to_seq) - cumulative_volume(after_seq)
             : 0;
}

// The connection whose sent ranges hold the epoch's first trades.
std::optional<std::size_t> connection_of(
    const std::map<std::string, std::vector<TradeLine>>& epoch_trades,
    const SimRecord& sim) {
  std::map<std::size_t, int> votes;
  for (const auto& [symbol, trades] : epoch_trades) {
    if (trades.empty()) continue;
    const std::uint64_t seq = trades.front().seq;
    for (const auto& [c, conn] : sim.connections) {
      const auto it = conn.trades.find(symbol);
      if (it != conn.trades.end() && it->second.first_seq <= seq &&
          seq <= it->second.last_seq) {
        ++votes[c];
      }
    }
  }
  std::optional<std::size_t> best;
  int best_votes = 0;
  for (const auto& [c, n] : votes) {
    if (n > best_votes) best = c, best_votes = n;
  }
  return best;
}

std::string seconds_text(double s) {
  char out[32];
  std::snprintf(out, sizeof out, "%.2f s", s);
  return out;
}

}  // namespace

std::optional<std::uint64_t> seq_of_cumulative_volume(
    std::uint64_t cumulative_volume_value) {
  // C is strictly increasing (every volume >= 1): binary search.
  std::uint64_t lo = 0;
  std::uint64_t hi = cumulative_volume_value;  // C(n) >= n
  while (lo < hi) {
    const std::uint64_t mid = lo + (hi - lo) / 2;
    if (cumulative_volume(mid) < cumulative_volume_value) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo == 0 || cumulative_volume(lo) != cumulative_volume_value) {
    return std::nullopt;
  }
  return lo;
}

absl::StatusOr<DemoReport> analyze_demo(std::string_view sim_record,
                                        std::string_view collector_output) {
  DemoReport report;
  const SimRecord sim = read_sim(sim_record, report);
  if (!sim.has_summary) {
    return absl::InvalidArgumentError(
        "the sim record has no summary line ({\"type\":\"summary\",…} with "
        "started_unix_ns): is it feedkit-sim's --record file, written at its "
        "exit?");
  }
  const CollectorOutput col = read_collector(collector_output, report);
  report.broker = sim.broker;
  report.started_unix_ns = sim.started_unix_ns;
  report.sim_elapsed_s = sim.elapsed_s;
  report.books = col.books;
  auto fail = [&](std::string what) {
    report.failures.push_back(std::move(what));
  };
  auto unix_ns_of = [&](double sim_s) {
    return sim.started_unix_ns + static_cast<std::int64_t>(sim_s * 1e9);
  };

  // Epoch ↔ connection.
  std::map<std::uint64_t, std::size_t> conn_of_epoch;
  std::map<std::size_t, std::uint64_t> epoch_of_conn;
  for (const auto& [epoch, trades] : col.trades) {
    const auto c = connection_of(trades, sim);
    if (!c) {
      fail(absl::StrCat("epoch ", epoch,
                        ": its trades were not sent on any sim connection"));
      continue;
    }
    if (const auto it = epoch_of_conn.find(*c); it != epoch_of_conn.end()) {
      fail(absl::StrCat("epochs ", it->second, " and ", epoch,
                        " both carry connection ", *c, "'s trades"));
      continue;
    }
    conn_of_epoch[epoch] = *c;
    epoch_of_conn[*c] = epoch;
  }
  // The last connection that carried data: its tail is cut by the stop.
  std::optional<std::size_t> last_data_conn;
  for (const auto& [c, conn] : sim.connections) {
    if (!conn.trades.empty()) last_data_conn = c;
  }
  std::map<std::uint64_t, std::vector<const GapLine*>> gaps_by_old;
  for (const GapLine& g : col.gaps) {
    report.dispatcher_drops += g.dropped_before;
    if (g.reason == "volume_jump" || g.old_epoch == g.new_epoch) {
      ++report.volume_jump_lines;
      continue;
    }
    gaps_by_old[g.old_epoch].push_back(&g);
  }

  // Symbols: the sim's, plus any the collector wrote.
  std::map<std::string, SymbolTally> tallies;
  for (const auto& [symbol, last] : sim.published) {
    tallies[symbol].published = last;
  }
  for (const auto& [symbol, n] : col.unknown_trades) {
    tallies[symbol].unknown += n;
    fail(absl::StrCat(symbol, ": ", n,
                      " trade line(s) whose cum_volume/volume the sim never "
                      "published"));
  }

  // Per connection and symbol: sent vs received.
  for (const auto& [c, conn] : sim.connections) {
    ConnectionView view;
    view.connection = c;
    view.opened_s = conn.opened_s;
    view.closed_s = conn.closed_s;
    view.malformed_sent = conn.malformed_sent;
    report.malformed_sent += conn.malformed_sent;
    if (conn.already) {
      report.already_answers =
          report.already_answers.value_or(0) + *conn.already;
    }
    const auto epoch_it = epoch_of_conn.find(c);
    if (epoch_it != epoch_of_conn.end()) view.epoch = epoch_it->second;
    const bool at_stop = last_data_conn == c;
    const bool outage_reported =
        view.epoch && gaps_by_old.count(*view.epoch) != 0;
    for (const auto& [symbol, sent] : conn.trades) {
      SymbolTally& t = tallies[symbol];
      const std::uint64_t span = sent.last_seq - sent.first_seq + 1;
      view.trades_sent += sent.records;
      t.sent += sent.records;
      t.sent_volume += volume_between(sent.first_seq - 1, sent.last_seq);
      const std::vector<TradeLine>* got = nullptr;
      if (view.epoch) {
        const auto& by_symbol = col.trades.at(*view.epoch);
        if (auto it = by_symbol.find(symbol); it != by_symbol.end()) {
          got = &it->second;
        }
      }
      if (got == nullptr || got->empty()) {
        if (at_stop) {
          t.lost_at_stop += sent.records;
        } else {
          t.lost_connected += sent.records;
          fail(absl::StrCat(
              "connection ", c, " sent ", sent.records, " ", symbol,
              " trade(s), none received",
              view.epoch ? absl::StrCat(" in epoch ", *view.epoch) : ""));
        }
        continue;
      }
      // Head: sent before the first received one.
      const std::uint64_t first = got->front().seq;
      if (first > sent.first_seq) {
        const std::uint64_t n = first - sent.first_seq;
        t.lost_connected += n;
        fail(absl::StrCat("epoch ", *view.epoch, " ", symbol, ": the first ", n,
                          " trade(s) connection ", c,
                          " sent were not received"));
      }
      // Within: consecutive seqs.
      std::uint64_t prev = 0;
      std::uint64_t hole = span - std::min(span, sent.records);
      for (const TradeLine& trade : *got) {
        if (trade.seq < sent.first_seq || trade.seq > sent.last_seq) {
          ++t.unknown;
          fail(absl::StrCat("epoch ", *view.epoch, " ", symbol, ": seq ",
                            trade.seq, " was not sent on connection ", c));
          continue;
        }
        if (prev != 0 && trade.seq <= prev) {
          ++t.out_of_order;
          continue;
        }
        if (prev != 0 && trade.seq > prev + 1) {
          VolumeJump j;
          j.epoch = *view.epoch;
          j.symbol = symbol;
          j.after_seq = prev;
          j.missing_trades = trade.seq - prev - 1;
          j.missing_volume = volume_between(prev, trade.seq - 1);
          j.not_sent = hole >= j.missing_trades;
          if (j.not_sent) {  // never sent: not in the sent volume either
            hole -= j.missing_trades;
            t.sent_volume -= j.missing_volume;
          }
          t.lost_connected += j.missing_trades;
          report.jumps.push_back(std::move(j));
        }
        ++t.received;
        t.received_volume += trade.volume;
        prev = trade.seq;
      }
      // Tail: sent after the last received one.
      if (prev != 0 && sent.last_seq > prev) {
        const std::uint64_t n = sent.last_seq - prev;
        if (at_stop) {
          t.lost_at_stop += n;
        } else if (outage_reported) {
          t.lost_in_outages += n;
        } else {
          t.lost_connected += n;
          fail(absl::StrCat("epoch ", *view.epoch, " ", symbol, ": the last ",
                            n, " trade(s) connection ", c,
                            " sent were not received and no gap line "
                            "reports the outage"));
        }
      }
    }
    report.connections.push_back(view);
  }
  for (const auto& [symbol, t] : tallies) {
    if (t.out_of_order > 0) {
      fail(absl::StrCat(symbol, ": ", t.out_of_order,
                        " trade(s) repeated or out of order within an epoch"));
    }
  }
  // Published between two of the collector's connections: lost to the
  // outage. (Before the first and after the last, the collector was not
  // there.)
  {
    std::map<std::string, std::uint64_t> last_sent;
    for (const auto& [c, conn] : sim.connections) {
      for (const auto& [symbol, sent] : conn.trades) {
        if (auto it = last_sent.find(symbol);
            it != last_sent.end() && sent.first_seq > it->second + 1) {
          tallies[symbol].lost_in_outages += sent.first_seq - it->second - 1;
        }
        last_sent[symbol] = std::max(last_sent[symbol], sent.last_seq);
      }
    }
  }

  // Within-connection jumps: reported by a volume_jump line?
  for (VolumeJump& j : report.jumps) {
    for (const GapLine& g : col.gaps) {
      if ((g.reason == "volume_jump" || g.old_epoch == g.new_epoch) &&
          g.old_epoch == j.epoch && g.symbol == j.symbol) {
        j.reported = true;
      }
    }
    fail(absl::StrCat(
        "epoch ", j.epoch, " ", j.symbol, ": ", j.missing_trades,
        " trade(s) (volume ", j.missing_volume,
        ") lost while connected after seq ", j.after_seq,
        j.not_sent ? " (the sim skipped them: a stall that resumed on the same "
                     "connection went unnoticed)"
                   : "",
        j.reported ? "; reported by a volume_jump gap line" : ""));
  }

  // Outages: every data epoch followed by a later one, every mapped
  // connection that ended before the collector's last event, every gap line.
  std::set<std::uint64_t> outage_epochs;
  for (auto it = col.trades.begin(); it != col.trades.end(); ++it) {
    if (std::next(it) != col.trades.end()) outage_epochs.insert(it->first);
  }
  for (const auto& [c, epoch] : epoch_of_conn) {
    const SimConnection& conn = sim.connections.at(c);
    if (conn.closed_s && unix_ns_of(*conn.closed_s) < col.last_recv_ns) {
      outage_epochs.insert(epoch);
    }
  }
  for (const auto& [old_epoch, lines] : gaps_by_old) {
    outage_epochs.insert(old_epoch);
  }
  for (const std::uint64_t epoch : outage_epochs) {
    Outage o;
    o.old_epoch = epoch;
    const auto lines_it = gaps_by_old.find(epoch);
    if (lines_it != gaps_by_old.end()) {
      const GapLine& g = *lines_it->second.front();
      o.gap_lines = lines_it->second.size();
      o.new_epoch = g.new_epoch;
      o.reason = g.reason;
      o.down_ms = g.down_ms;
      for (const GapLine* line : lines_it->second) {
        o.dropped_before += line->dropped_before;
      }
    }
    if (o.gap_lines == 0) {
      fail(absl::StrCat("the outage after epoch ", epoch, " has no gap line"));
    } else if (o.gap_lines > 1) {
      fail(absl::StrCat("the outage after epoch ", epoch, " has ", o.gap_lines,
                        " gap lines (one expected)"));
    }
    if (const auto c = conn_of_epoch.find(epoch); c != conn_of_epoch.end()) {
      o.connection = c->second;
      const SimConnection& conn = sim.connections.at(c->second);
      for (const auto& [symbol, sent] : conn.trades) {
        const auto& by_symbol = col.trades.at(epoch);
        if (auto it = by_symbol.find(symbol);
            it != by_symbol.end() && !it->second.empty()) {
          o.tail_lost +=
              sent.last_seq - std::min(sent.last_seq, it->second.back().seq);
        }
      }
      const double end_s = conn.closed_s.value_or(sim.elapsed_s);
      for (const Fault& f : sim.faults) {
        if (disruptive(f.command) && f.at_s >= conn.opened_s &&
            f.at_s <= end_s) {
          o.fault = f.command;
          o.fault_at_s = f.at_s;
        }
      }
      if (o.fault_at_s && conn.closed_s) {
        o.detect_s = *conn.closed_s - *o.fault_at_s;
      }
    }
    // Recovery: the first trade of the first data epoch after this one.
    const auto next = col.trades.upper_bound(epoch);
    if (o.fault_at_s && next != col.trades.end()) {
      std::int64_t first_ns = INT64_MAX;
      for (const auto& [symbol, trades] : next->second) {
        if (!trades.empty()) {
          first_ns = std::min(first_ns, trades.front().recv_ns);
        }
      }
      if (first_ns != INT64_MAX) {
        o.recover_s =
            static_cast<double>(first_ns - unix_ns_of(*o.fault_at_s)) / 1e9;
      }
    }
    // (c) every symbol trades again after the reconnect.
    if (o.new_epoch) {
      for (const auto& [symbol, t] : tallies) {
        bool flowed = false;
        for (auto it = col.trades.lower_bound(*o.new_epoch);
             it != col.trades.end() && !flowed; ++it) {
          const auto s = it->second.find(symbol);
          flowed = s != it->second.end() && !s->second.empty();
        }
        if (!flowed) {
          fail(absl::StrCat("after the reconnect to epoch ", *o.new_epoch, ", ",
                            symbol, " never traded again"));
        }
      }
    }
    if (next != col.trades.end()) ++report.reconnects;
    report.outages.push_back(std::move(o));
  }
  for (const auto& [symbol, t] : tallies) {
    if (t.received == 0) fail(absl::StrCat(symbol, ": no trade received"));
  }
  for (auto& [symbol, t] : tallies) {
    t.symbol = symbol;
    report.symbols.push_back(t);
  }
  return report;
}

std::string format_text(const DemoReport& r) {
  std::string out;
  absl::StrAppend(&out, "== feedkit demo report (", r.broker, ", sim ran ",
                  seconds_text(r.sim_elapsed_s), ") ==\n\n");
  char row[256];
  std::snprintf(row, sizeof row, "%-8s %9s %9s %9s %11s %11s %9s %9s %8s\n",
                "symbol", "published", "sent", "received", "sent vol",
                "recv vol", "lost conn", "lost out", "at stop");
  out += row;
  for (const SymbolTally& t : r.symbols) {
    std::snprintf(row, sizeof row,
                  "%-8s %9llu %9llu %9llu %11llu %11llu %9llu %9llu %8llu\n",
                  t.symbol.c_str(),
                  static_cast<unsigned long long>(t.published),
                  static_cast<unsigned long long>(t.sent),
                  static_cast<unsigned long long>(t.received),
                  static_cast<unsigned long long>(t.sent_volume),
                  static_cast<unsigned long long>(t.received_volume),
                  static_cast<unsigned long long>(t.lost_connected),
                  static_cast<unsigned long long>(t.lost_in_outages),
                  static_cast<unsigned long long>(t.lost_at_stop));
    out += row;
  }
  out +=
      "  (lost conn: lost while connected; lost out: published during an "
      "outage or cut by a reported one; at stop: the last connection's tail)\n";

  out += "\nconnections (sim clock):\n";
  for (const ConnectionView& c : r.connections) {
    absl::StrAppend(
        &out, "  #", c.connection, "  ", seconds_text(c.opened_s), " → ",
        c.closed_s ? seconds_text(*c.closed_s) : std::string("open"),
        "  epoch ",
        c.epoch ? absl::StrCat(*c.epoch) : std::string("- (no data)"),
        "  trades sent ", c.trades_sent,
        c.malformed_sent ? absl::StrCat("  malformed sent ", c.malformed_sent)
                         : "",
        "\n");
  }

  out += "\noutages:\n";
  if (r.outages.empty()) out += "  none\n";
  for (const Outage& o : r.outages) {
    absl::StrAppend(
        &out, "  epoch ", o.old_epoch, " → ",
        o.new_epoch ? absl::StrCat(*o.new_epoch) : std::string("?"), "  cause ",
        o.reason.empty() ? std::string("(no gap line)") : o.reason,
        o.fault.empty() ? "" : absl::StrCat(" after \"", o.fault, "\""),
        "  gap lines ", o.gap_lines, "\n    down ",
        o.down_ms ? seconds_text(*o.down_ms / 1000) : std::string("?"),
        "  detect ", o.detect_s ? seconds_text(*o.detect_s) : std::string("?"),
        "  recover ",
        o.recover_s ? seconds_text(*o.recover_s) : std::string("?"),
        "  tail lost ", o.tail_lost, "  dropped ", o.dropped_before, "\n");
  }
  if (!r.jumps.empty()) {
    out += "\nlost while connected (cum_volume jumps within an epoch):\n";
    for (const VolumeJump& j : r.jumps) {
      absl::StrAppend(
          &out, "  epoch ", j.epoch, " ", j.symbol, " after seq ", j.after_seq,
          ": ", j.missing_trades, " trade(s), volume ", j.missing_volume,
          j.not_sent ? " (not sent: stall resumed unnoticed)" : "",
          j.reported ? " [volume_jump line]" : " [not reported]", "\n");
    }
  }
  absl::StrAppend(&out, "\nreconnects ", r.reconnects, "  dispatcher drops ",
                  r.dispatcher_drops, "  volume_jump lines ",
                  r.volume_jump_lines, "  ALREADY IN SUBSCRIBE answers ",
                  r.already_answers ? absl::StrCat(*r.already_answers)
                                    : std::string("(not in the record)"),
                  "  malformed frames sent ", r.malformed_sent, "  books ",
                  r.books, "\n");
  if (r.bad_sim_lines + r.bad_collector_lines > 0) {
    absl::StrAppend(&out, "malformed lines skipped: sim record ",
                    r.bad_sim_lines, ", collector output ",
                    r.bad_collector_lines, "\n");
  }
  for (const std::string& note : r.notes) {
    absl::StrAppend(&out, "  note: ", note, "\n");
  }
  if (r.passed()) {
    out +=
        "\nPASS: nothing lost while connected, every outage reported by one "
        "gap line, every symbol flowed again after each reconnect\n";
  } else {
    absl::StrAppend(&out, "\nFAIL (", r.failures.size(), "):\n");
    for (const std::string& f : r.failures) {
      absl::StrAppend(&out, "  - ", f, "\n");
    }
  }
  return out;
}

namespace {

void append_optional(std::string& out, std::string_view key,
                     const std::optional<double>& v) {
  absl::StrAppend(&out, ",\"", std::string(key), "\":");
  if (v) {
    absl::StrAppend(&out, *v);
  } else {
    out += "null";
  }
}

void append_optional(std::string& out, std::string_view key,
                     const std::optional<std::uint64_t>& v) {
  absl::StrAppend(&out, ",\"", std::string(key), "\":");
  if (v) {
    absl::StrAppend(&out, *v);
  } else {
    out += "null";
  }
}

void append_string(std::string& out, std::string_view key,
                   std::string_view value) {
  absl::StrAppend(&out, ",\"", std::string(key), "\":");
  json::append_quoted(out, value);
}

}  // namespace

std::string format_json(const DemoReport& r) {
  std::string out = absl::StrCat("{\"passed\":", r.passed() ? "true" : "false");
  append_string(out, "broker", r.broker);
  absl::StrAppend(&out, ",\"started_unix_ns\":", r.started_unix_ns,
                  ",\"sim_elapsed_s\":", r.sim_elapsed_s, ",\"symbols\":[");
  for (std::size_t i = 0; i < r.symbols.size(); ++i) {
    const SymbolTally& t = r.symbols[i];
    out += i ? ",{" : "{";
    out += "\"symbol\":";
    json::append_quoted(out, t.symbol);
    absl::StrAppend(
        &out, ",\"published\":", t.published, ",\"sent\":", t.sent,
        ",\"received\":", t.received, ",\"sent_volume\":", t.sent_volume,
        ",\"received_volume\":", t.received_volume,
        ",\"lost_connected\":", t.lost_connected,
        ",\"lost_in_outages\":", t.lost_in_outages,
        ",\"lost_at_stop\":", t.lost_at_stop,
        ",\"out_of_order\":", t.out_of_order, ",\"unknown\":", t.unknown, "}");
  }
  out += "],\"connections\":[";
  for (std::size_t i = 0; i < r.connections.size(); ++i) {
    const ConnectionView& c = r.connections[i];
    absl::StrAppend(&out, i ? ",{" : "{", "\"connection\":", c.connection,
                    ",\"opened_s\":", c.opened_s);
    append_optional(out, "closed_s", c.closed_s);
    append_optional(out, "epoch", c.epoch);
    absl::StrAppend(&out, ",\"trades_sent\":", c.trades_sent,
                    ",\"malformed_sent\":", c.malformed_sent, "}");
  }
  out += "],\"outages\":[";
  for (std::size_t i = 0; i < r.outages.size(); ++i) {
    const Outage& o = r.outages[i];
    absl::StrAppend(&out, i ? ",{" : "{", "\"old_epoch\":", o.old_epoch);
    append_optional(out, "new_epoch", o.new_epoch);
    absl::StrAppend(&out, ",\"gap_lines\":", o.gap_lines);
    append_string(out, "reason", o.reason);
    append_optional(out, "down_ms", o.down_ms);
    absl::StrAppend(&out, ",\"dropped_before\":", o.dropped_before);
    append_optional(out, "connection",
                    o.connection ? std::optional<std::uint64_t>(*o.connection)
                                 : std::nullopt);
    append_string(out, "fault", o.fault);
    append_optional(out, "fault_at_s", o.fault_at_s);
    append_optional(out, "detect_s", o.detect_s);
    append_optional(out, "recover_s", o.recover_s);
    absl::StrAppend(&out, ",\"tail_lost\":", o.tail_lost, "}");
  }
  out += "],\"jumps\":[";
  for (std::size_t i = 0; i < r.jumps.size(); ++i) {
    const VolumeJump& j = r.jumps[i];
    absl::StrAppend(&out, i ? ",{" : "{", "\"epoch\":", j.epoch);
    append_string(out, "symbol", j.symbol);
    absl::StrAppend(&out, ",\"after_seq\":", j.after_seq,
                    ",\"missing_trades\":", j.missing_trades,
                    ",\"missing_volume\":", j.missing_volume,
                    ",\"not_sent\":", j.not_sent ? "true" : "false",
                    ",\"reported\":", j.reported ? "true" : "false", "}");
  }
  absl::StrAppend(&out, "],\"reconnects\":", r.reconnects,
                  ",\"dispatcher_drops\":", r.dispatcher_drops,
                  ",\"volume_jump_lines\":", r.volume_jump_lines,
                  ",\"malformed_sent\":", r.malformed_sent);
  append_optional(out, "already_answers", r.already_answers);
  absl::StrAppend(
      &out, ",\"books\":", r.books, ",\"bad_sim_lines\":", r.bad_sim_lines,
      ",\"bad_collector_lines\":", r.bad_collector_lines, ",\"notes\":[");
  for (std::size_t i = 0; i < r.notes.size(); ++i) {
    if (i) out += ',';
    json::append_quoted(out, r.notes[i]);
  }
  out += "],\"failures\":[";
  for (std::size_t i = 0; i < r.failures.size(); ++i) {
    if (i) out += ',';
    json::append_quoted(out, r.failures[i]);
  }
  out += "]}\n";
  return out;
}

}  // namespace examples::sim
