// Test that header file is self-contained.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <ostream>
#include <string>
#include <vector>

#include "sim/fault_script.h"

namespace examples::sim {
namespace {

using namespace std::chrono_literals;
using feedkit::Duration;

std::vector<FaultCommand> parse_ok(std::string_view text) {
  auto commands = parse_fault_script(text, "t.txt");
  EXPECT_TRUE(commands.ok()) << commands.status();
  return commands.ok() ? *commands : std::vector<FaultCommand>{};
}

// Returns the error message of a script that must not parse.
std::string parse_error(std::string_view text) {
  auto commands = parse_fault_script(text, "t.txt");
  EXPECT_FALSE(commands.ok()) << "parsed: " << text;
  return commands.ok() ? "" : std::string(commands.status().message());
}

TEST(FaultScript, ParsesEveryCommandWithItsArguments) {
  const auto commands = parse_ok(
      "at 0 burst 10x 3\n"
      "at 5 stall 12\n"
      "at 6 stall\n"
      "at 20 close\n"
      "at 25 reset\n"
      "at 30 keep_subscriptions on\n"
      "at 31 keep_subscriptions off\n"
      "at 40 max_subscriptions 3\n"
      "at 45 appkey_in_use 10\n"
      "at 50 expire_token\n"
      "at 55.5 burst 2.5 0.5\n"
      "at 58 malformed 20\n"
      "at 60 end\n");
  ASSERT_EQ(commands.size(), 13u);
  EXPECT_EQ(commands[0].action, FaultAction::burst);
  EXPECT_EQ(commands[0].multiplier, 10.0);
  EXPECT_EQ(commands[0].duration, Duration(3s));
  EXPECT_EQ(commands[1].action, FaultAction::stall);
  EXPECT_EQ(commands[1].at, Duration(5s));
  EXPECT_EQ(commands[1].duration, Duration(12s));
  EXPECT_EQ(commands[2].duration, Duration::zero());  // for good
  EXPECT_EQ(commands[3].action, FaultAction::close);
  EXPECT_EQ(commands[4].action, FaultAction::reset);
  EXPECT_EQ(commands[5].action, FaultAction::keep_subscriptions);
  EXPECT_TRUE(commands[5].on);
  EXPECT_FALSE(commands[6].on);
  EXPECT_EQ(commands[7].action, FaultAction::max_subscriptions);
  EXPECT_EQ(commands[7].count, 3u);
  EXPECT_EQ(commands[8].action, FaultAction::appkey_in_use);
  EXPECT_EQ(commands[8].duration, Duration(10s));
  EXPECT_EQ(commands[9].action, FaultAction::expire_token);
  EXPECT_EQ(commands[10].at, Duration(55500ms));
  EXPECT_EQ(commands[10].multiplier, 2.5);
  EXPECT_EQ(commands[10].duration, Duration(500ms));
  EXPECT_EQ(commands[11].action, FaultAction::malformed);
  EXPECT_EQ(commands[11].count, 20u);
  EXPECT_EQ(commands[12].action, FaultAction::end);
  EXPECT_EQ(commands[12].line, 13);
}

TEST(FaultScript, IgnoresCommentsBlankLinesAndExtraSpaces) {
  const auto commands = parse_ok(
      "# the incident, compressed\n"
      "\n"
      "   at   5\tstall   12   # silent\r\n"
      "      # indented comment\n"
      "at 6 close");  // no final newline
  ASSERT_EQ(commands.size(), 2u);
  EXPECT_EQ(commands[0].line, 3);
  EXPECT_EQ(commands[0].duration, Duration(12s));
  EXPECT_EQ(commands[1].line, 5);
}

TEST(FaultScript, EmptyScriptHasNoCommands) {
  EXPECT_TRUE(parse_ok("").empty());
  EXPECT_TRUE(parse_ok("# nothing\n\n").empty());
}

TEST(FaultScript, CommandsPrintBackInTheScriptLanguage) {
  const std::string text =
      "at 0 burst 10x 3\nat 5 stall 12\nat 6 stall\nat 7 keep_subscriptions "
      "on\nat 8 max_subscriptions 0\nat 9.25 appkey_in_use 1.5\nat 10 "
      "expire_token\nat 11 malformed 2\nat 12 close\nat 13 reset\nat 14 end";
  std::string printed;
  for (const FaultCommand& c : parse_ok(text)) {
    if (!printed.empty()) printed += '\n';
    printed += c.to_string();
  }
  EXPECT_EQ(printed, text);
}

struct BadLine {
  std::string text;
  std::string expected;  // a fragment of the message, after "t.txt:<line>: "
  int line;
};

void PrintTo(const BadLine& bad, std::ostream* os) {
  std::string what = bad.expected;  // without quotes, for ctest's test names
  what.erase(std::remove(what.begin(), what.end(), '"'), what.end());
  *os << "line " << bad.line << ": " << what;
}

class FaultScriptErrors : public ::testing::TestWithParam<BadLine> {};

TEST_P(FaultScriptErrors, NameTheLineAndWhatIsWrong) {
  const BadLine& bad = GetParam();
  const std::string message = parse_error(bad.text);
  EXPECT_EQ(message.rfind("t.txt:" + std::to_string(bad.line) + ": ", 0), 0u)
      << message;
  EXPECT_NE(message.find(bad.expected), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(
    EveryError, FaultScriptErrors,
    ::testing::Values(
        BadLine{"# ok\nstall 5\n", "expected \"at <seconds> <command>", 2},
        BadLine{"at\n", "missing the time after \"at\"", 1},
        BadLine{"at soon close\n", "bad time \"soon\"", 1},
        BadLine{"at -1 close\n", "bad time \"-1\"", 1},
        BadLine{"at 5\n", "missing the command after \"at 5\"", 1},
        BadLine{"at 1 close\nat 2 stal 5\n", "unknown command \"stal\"", 2},
        BadLine{"at 30 close\nat 20 reset\n",
                "at 20 is earlier than the previous command (at 30 close on "
                "line 1)",
                2},
        BadLine{"at 1 end\nat 2 close\n", "command after \"end\" (line 1)", 2},
        BadLine{"at 1 close now\n", "\"close\" takes no argument, got \"now\"",
                1},
        BadLine{"at 1 reset 3\n", "\"reset\" takes no argument", 1},
        BadLine{"at 1 expire_token x\n", "\"expire_token\" takes no argument",
                1},
        BadLine{"at 1 end now\n", "\"end\" takes no argument", 1},
        BadLine{"at 1 stall soon\n", "bad duration \"soon\"", 1},
        BadLine{"at 1 stall 1 2\n", "too many arguments", 1},
        BadLine{"at 1 keep_subscriptions yes\n", "expected on or off", 1},
        BadLine{"at 1 keep_subscriptions\n", "expected on or off", 1},
        BadLine{"at 1 max_subscriptions\n", "expected one count", 1},
        BadLine{"at 1 max_subscriptions -3\n", "bad count \"-3\"", 1},
        BadLine{"at 1 malformed 0\n", "expected an integer >= 1", 1},
        BadLine{"at 1 malformed many\n", "bad count \"many\"", 1},
        BadLine{"at 1 appkey_in_use\n", "expected one duration", 1},
        BadLine{"at 1 appkey_in_use 0\n", "expected seconds > 0", 1},
        BadLine{"at 1 burst 10x\n", "expected a multiplier and a duration", 1},
        BadLine{"at 1 burst 0x 3\n", "bad multiplier \"0x\"", 1},
        BadLine{"at 1 burst tenx 3\n", "bad multiplier \"tenx\"", 1},
        BadLine{"at 1 burst 10x 0\n", "bad duration \"0\"", 1}));

TEST(FaultScript, ErrorsShowTheUsageOfTheCommand) {
  EXPECT_NE(parse_error("at 1 burst 10x\n")
                .find("usage: at <seconds> burst <multiplier>x <seconds>"),
            std::string::npos);
}

TEST(FaultScriptPlayer, HandsOutEachCommandOnceWhenItIsDue) {
  FaultScriptPlayer player(
      parse_ok("at 1 close\nat 1 reset\nat 3 stall 2\nat 10 end\n"));
  EXPECT_EQ(player.next_due(), Duration(1s));
  EXPECT_TRUE(player.due(500ms).empty());
  const auto first = player.due(1s);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].action, FaultAction::close);
  EXPECT_EQ(first[1].action, FaultAction::reset);
  EXPECT_TRUE(player.due(2s).empty());  // not twice
  EXPECT_EQ(player.next_due(), Duration(3s));
  const auto late = player.due(20s);  // everything overdue, in order
  ASSERT_EQ(late.size(), 2u);
  EXPECT_EQ(late[0].action, FaultAction::stall);
  EXPECT_EQ(late[1].action, FaultAction::end);
  EXPECT_TRUE(player.done());
  EXPECT_EQ(player.next_due(), Duration::max());
}

TEST(FaultScriptPlayer, SpeedCompressesTheScript) {
  FaultScriptPlayer player(parse_ok("at 10 close\nat 30 end\n"), 10.0);
  EXPECT_EQ(player.next_due(), Duration(1s));
  EXPECT_TRUE(player.due(999ms).empty());
  EXPECT_EQ(player.due(1s).size(), 1u);
  EXPECT_EQ(player.next_due(), Duration(3s));
}

}  // namespace
}  // namespace examples::sim
