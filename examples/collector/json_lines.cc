// SPDX-License-Identifier: Apache-2.0
#include "collector/json_lines.h"

#include <chrono>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/json_reader.h"

namespace examples {
namespace {

void append_exch_time(std::string& out, const ExchangeTime& t) {
  if (t.seconds < 0) {
    out += "null";
    return;
  }
  char buf[32];
  int n = 0;
  if (t.date != 0) {
    n = std::snprintf(buf, sizeof buf, "\"%04d-%02d-%02dT%02d:%02d:%02d\"",
                      t.date / 10000, t.date / 100 % 100, t.date % 100,
                      t.seconds / 3600, t.seconds / 60 % 60, t.seconds % 60);
  } else {
    n = std::snprintf(buf, sizeof buf, "\"%02d:%02d:%02d\"", t.seconds / 3600,
                      t.seconds / 60 % 60, t.seconds % 60);
  }
  out.append(buf, static_cast<std::size_t>(n));
}

void append_levels(std::string& out,
                   const std::array<Level, kBookDepth>& side) {
  out += '[';
  bool first = true;
  for (const Level& l : side) {
    if (l.price.is_zero() && l.quantity == 0) continue;
    if (!first) out += ',';
    first = false;
    absl::StrAppend(&out, "[", l.price.to_string(), ",", l.quantity, "]");
  }
  out += ']';
}

}  // namespace

JsonLinesWriter::JsonLinesWriter(std::FILE* out, std::string broker)
    : out_(out) {
  json::append_quoted(broker_, broker);
}

void JsonLinesWriter::begin(std::string_view type) {
  line_.clear();
  absl::StrAppend(&line_, "{\"type\":\"", std::string(type),
                  "\",\"broker\":", broker_);
}

void JsonLinesWriter::end() {
  line_ += "}\n";
  std::fwrite(line_.data(), 1, line_.size(), out_);
  ++lines_;
}

void JsonLinesWriter::trade(const Trade& t, std::uint64_t epoch,
                            std::int64_t recv_ns) {
  begin("trade");
  absl::StrAppend(&line_, ",\"epoch\":", epoch, ",\"symbol\":");
  json::append_quoted(line_, t.symbol.view());
  line_ += ",\"exch_time\":";
  append_exch_time(line_, t.time);
  absl::StrAppend(&line_, ",\"price\":", t.price.to_string(),
                  ",\"volume\":", t.volume, ",\"cum_volume\":");
  if (t.cumulative_volume) {
    absl::StrAppend(&line_, *t.cumulative_volume);
  } else {
    line_ += "null";
  }
  absl::StrAppend(&line_, ",\"recv_ns\":", recv_ns);
  end();
}

void JsonLinesWriter::book(const Book& b, std::uint64_t epoch,
                           std::int64_t recv_ns) {
  begin("book");
  absl::StrAppend(&line_, ",\"epoch\":", epoch, ",\"symbol\":");
  json::append_quoted(line_, b.symbol.view());
  line_ += ",\"exch_time\":";
  append_exch_time(line_, b.time);
  line_ += ",\"bids\":";
  append_levels(line_, b.bids);
  line_ += ",\"asks\":";
  append_levels(line_, b.asks);
  absl::StrAppend(&line_, ",\"recv_ns\":", recv_ns);
  end();
}

void JsonLinesWriter::gap(const feedkit::GapEvent& g,
                          std::uint64_t dropped_before,
                          std::int64_t disconnected_ns,
                          std::int64_t resumed_ns) {
  begin("gap");
  absl::StrAppend(&line_, ",\"old_epoch\":", g.old_epoch,
                  ",\"new_epoch\":", g.new_epoch, ",\"reason\":\"",
                  std::string(feedkit::to_string(g.reason)),
                  "\",\"subscriptions_lost\":", g.subscriptions_lost.size());
  end_gap(std::chrono::duration<double, std::milli>(g.down_time()).count(),
          dropped_before, disconnected_ns, resumed_ns);
}

void JsonLinesWriter::volume_jump(const VolumeJump& j) {
  begin("gap");
  absl::StrAppend(&line_, ",\"old_epoch\":", j.epoch,
                  ",\"new_epoch\":", j.epoch,
                  ",\"reason\":\"volume_jump\",\"symbol\":");
  json::append_quoted(line_, j.symbol);
  absl::StrAppend(&line_, ",\"missing_volume\":", j.missing_volume);
  end_gap(static_cast<double>(j.next_ns - j.last_ns) / 1e6, j.dropped_before,
          j.last_ns, j.next_ns);
}

void JsonLinesWriter::end_gap(double down_ms, std::uint64_t dropped_before,
                              std::int64_t disconnected_ns,
                              std::int64_t resumed_ns) {
  char down[32];
  std::snprintf(down, sizeof down, "%.1f", down_ms);
  absl::StrAppend(
      &line_, ",\"down_ms\":", down, ",\"dropped_before\":", dropped_before,
      ",\"disconnected_ns\":", disconnected_ns, ",\"resumed_ns\":", resumed_ns);
  end();
}

bool JsonLinesWriter::flush() {
  return std::fflush(out_) == 0 && std::ferror(out_) == 0;
}

}  // namespace examples
