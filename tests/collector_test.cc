// The collector runtime shared by the KIS, Kiwoom and Settrade collectors:
// flags (errors name the flag, secrets never echoed, env fallbacks), the
// JSON Lines contract, and the consumer loop (events and gap lines in order,
// drops counted, the client stopped and the queue drained at the end).
#include "collector/collector.h"

#include <gtest/gtest.h>
#include <stdlib.h>  // setenv, unsetenv

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "collector/flags.h"
#include "collector/json_lines.h"

namespace examples {
namespace {

using feedkit::GapEvent;
using feedkit::GapReason;
using feedkit::SteadyTime;
using std::chrono::milliseconds;

Flags kis_like_flags() {
  Flags flags("collector_test", "test");
  add_collector_flags(flags);
  flags.add({.name = "appkey",
             .help = "app key",
             .env = "FEEDKIT_TEST_APPKEY",
             .required = true,
             .secret = true});
  return flags;
}

absl::Status parse(Flags& flags, std::vector<const char*> args) {
  args.insert(args.begin(), "collector_test");
  return flags.parse(static_cast<int>(args.size()), args.data());
}

TEST(CollectorFlags, ParsesBothSpellingsAndDefaults) {
  Flags flags = kis_like_flags();
  ASSERT_TRUE(parse(flags, {"--symbols", "005930,000660,", "--appkey=K",
                            "--duration", "2.5", "--quiet"})
                  .ok());
  EXPECT_EQ(flags.list("symbols"),
            (std::vector<std::string>{"005930", "000660"}));
  EXPECT_EQ(flags.get("out"), "-");
  EXPECT_TRUE(flags.boolean("quiet"));
  auto o = collector_options(flags, "kis");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->duration, milliseconds(2500));
  EXPECT_EQ(o->queue_capacity, 65536u);
}

TEST(CollectorFlags, SecretComesFromTheEnvironment) {
  setenv("FEEDKIT_TEST_APPKEY", "from-env", 1);
  Flags flags = kis_like_flags();
  ASSERT_TRUE(parse(flags, {"--symbols", "A"}).ok());
  EXPECT_EQ(flags.get("appkey"), "from-env");
  unsetenv("FEEDKIT_TEST_APPKEY");
}

TEST(CollectorFlags, MistakesNameTheFlagAndNeverEchoASecret) {
  unsetenv("FEEDKIT_TEST_APPKEY");
  const auto error_of = [](std::vector<const char*> args) {
    Flags flags = kis_like_flags();
    return std::string(parse(flags, args).message());
  };
  EXPECT_NE(error_of({"--symbols", "A"})
                .find("--appkey: is required (or set "
                      "FEEDKIT_TEST_APPKEY)"),
            std::string::npos);
  EXPECT_NE(error_of({"--symbols", "A", "--appkey", "K", "--bogus", "1"})
                .find("--bogus: unknown flag"),
            std::string::npos);
  EXPECT_NE(error_of({"--symbols"}).find("--symbols: needs a value"),
            std::string::npos);
  // A secret that lost its flag is not repeated back.
  const std::string stray = error_of({"--symbols", "A", "SUPERSECRET"});
  EXPECT_EQ(stray.find("SUPERSECRET"), std::string::npos);
  EXPECT_NE(stray.find("unexpected argument #3"), std::string::npos);
  EXPECT_EQ(
      error_of({"--symbols", "A", "--appkey=SUPERSECRET", "--quiet=maybe"})
          .find("SUPERSECRET"),
      std::string::npos);

  Flags flags = kis_like_flags();
  ASSERT_TRUE(
      parse(flags, {"--symbols", "A", "--appkey", "K", "--queue", "0"}).ok());
  const auto o = collector_options(flags, "kis");
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.status().message().find("--queue"), std::string::npos);
  EXPECT_EQ(flags.fail(o.status()), 2);
}

Trade trade(std::string_view symbol, std::int64_t volume, std::int64_t cum) {
  Trade t;
  t.symbol = *Symbol::from(symbol);
  t.time.seconds = 9 * 3600 + 30 * 60 + 15;
  t.price = *Price::from_units(71500);
  t.volume = volume;
  t.cumulative_volume = cum;
  return t;
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

class TempFile {
 public:
  TempFile()
      : path_((std::filesystem::temp_directory_path() /
               ("collector_test_" + std::to_string(::getpid()) + "_" +
                std::to_string(counter_++) + ".jsonl"))
                  .string()) {}
  ~TempFile() { std::filesystem::remove(path_); }
  const std::string& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::string path_;
};

TEST(JsonLines, WritesTheContractFields) {
  TempFile file;
  std::FILE* f = std::fopen(file.path().c_str(), "w");
  ASSERT_NE(f, nullptr);
  {
    JsonLinesWriter w(f, "kis");
    w.trade(trade("005930", 120, 3521047), 2, 1'784'075'415'000'000'000);
    Book b;
    b.symbol = *Symbol::from("005930");
    b.time = {20260715, 9 * 3600 + 30 * 60 + 15};
    b.bids[0] = {*Price::from_units(71500), 15000};
    b.asks[0] = {*Price::from_money(61, 250'000'000), 8};
    w.book(b, 2, 5);
    GapEvent g;
    g.old_epoch = 1;
    g.new_epoch = 2;
    g.reason = GapReason::stall;
    g.disconnected_at = SteadyTime{} + milliseconds(1000);
    g.resumed_at = SteadyTime{} + milliseconds(1312);
    g.subscriptions_lost = {"a", "b"};
    w.gap(g, 7, 1'000'000'000, 1'312'000'000);
    w.volume_jump({.epoch = 2,
                   .symbol = "005930",
                   .missing_volume = 250,
                   .last_ns = 2'000'000'000,
                   .next_ns = 2'812'500'000,
                   .dropped_before = 3});
    ASSERT_TRUE(w.flush());
    EXPECT_EQ(w.lines(), 4u);
  }
  std::fclose(f);
  const auto lines = lines_of(file.path());
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0],
            R"({"type":"trade","broker":"kis","epoch":2,"symbol":"005930",)"
            R"("exch_time":"09:30:15","price":71500,"volume":120,)"
            R"("cum_volume":3521047,"recv_ns":1784075415000000000})");
  EXPECT_EQ(lines[1],
            R"({"type":"book","broker":"kis","epoch":2,"symbol":"005930",)"
            R"("exch_time":"2026-07-15T09:30:15","bids":[[71500,15000]],)"
            R"("asks":[[61.25,8]],"recv_ns":5})");
  EXPECT_EQ(lines[2],
            R"({"type":"gap","broker":"kis","old_epoch":1,"new_epoch":2,)"
            R"("reason":"stall","subscriptions_lost":2,"down_ms":312.0,)"
            R"("dropped_before":7,"disconnected_ns":1000000000,)"
            R"("resumed_ns":1312000000})");
  EXPECT_EQ(
      lines[3],
      R"({"type":"gap","broker":"kis","old_epoch":2,"new_epoch":2,)"
      R"("reason":"volume_jump","symbol":"005930","missing_volume":250,)"
      R"("down_ms":812.5,"dropped_before":3,"disconnected_ns":2000000000,)"
      R"("resumed_ns":2812500000})");
}

TEST(Collector, WritesEventsAndGapsInOrderThenStopsTheClientAndDrains) {
  TempFile file;
  CollectorOptions o;
  o.broker = "kis";
  o.symbols = {"005930", "000660"};
  o.out_path = file.path();
  o.queue_capacity = 64;
  o.quiet = true;
  o.status_interval = milliseconds(10);
  auto collector = Collector::create(o);
  ASSERT_TRUE(collector.ok()) << collector.status();
  Collector& c = **collector;

  bool stopped = false;
  FeedControl control;
  control.stats = [] { return feedkit::ConnectionStats{}; };
  control.stop = [&](std::function<void()> done) {
    stopped = true;
    done();
  };
  c.attach(control);

  // The feed thread: 10 trades of epoch 1, a gap, then 200 of epoch 2 pushed
  // faster than the writer may keep up (capacity 64: some may drop), then
  // asks the collector to stop.
  std::thread feed([&] {
    const SteadyTime now = feedkit::SteadyClock::now();
    for (int i = 1; i <= 10; ++i) c.on_event(trade("005930", 1, i), 1, now);
    GapEvent g;
    g.old_epoch = 1;
    g.new_epoch = 2;
    g.reason = GapReason::network;
    c.on_gap(g);
    for (int i = 11; i <= 210; ++i) c.on_event(trade("000660", 1, i), 2, now);
    Collector::request_stop();
  });
  EXPECT_EQ(c.run(), 0);
  feed.join();
  EXPECT_TRUE(stopped);

  const auto lines = lines_of(file.path());
  const CollectorSummary s = c.summary();
  EXPECT_EQ(s.gaps, 1u);
  EXPECT_EQ(s.trades + s.dropped, 210u);  // every event written or counted
  // Drops inside epoch 2 may show as volume_jump gap lines (after the
  // connection's gap line, in epoch 2).
  EXPECT_EQ(lines.size(), s.trades + s.gaps + s.volume_jumps);
  // The gap line comes after every epoch-1 line and before every epoch-2 one.
  std::size_t gap_at = lines.size();
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find(R"("old_epoch":1,"new_epoch":2)") != std::string::npos) {
      gap_at = i;
    }
  }
  ASSERT_LT(gap_at, lines.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (i == gap_at) continue;
    const bool epoch1 = lines[i].find(R"("epoch":1,)") != std::string::npos;
    EXPECT_EQ(epoch1, i < gap_at) << lines[i];
  }
}

}  // namespace
}  // namespace examples
