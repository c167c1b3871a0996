// SPDX-License-Identifier: Apache-2.0
//
// feedkit-sim: a simulated broker on loopback (KIS or Kiwoom) that speaks the
// real wire format, publishes every symbol's trades at a set rate with a
// cumulative volume that grows by each trade's volume (so any loss is
// measurable), plays a fault script, and records what it sent on each
// connection.
//
//   feedkit-sim --broker kis --symbols 005930,000660 --rate 20
//               --script incident.txt --record sent.jsonl --duration 60
//
// The first line on stdout is one JSON object with the URLs and ports
// ({"event":"ready","ws_url":…,"rest_url":…}), so a demo script can start a
// collector against it; the script's commands are logged on stderr as they
// play. SIGINT/SIGTERM, `at <t> end` or --duration end it: the record
// (JSON Lines, see examples/sim/broker_sim.h) is written and it exits 0.
// Bad flags or a bad script: a message on stderr, exit 2.
#include <signal.h>
#include <time.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "sim/broker_sim.h"
#include "sim/fault_script.h"
#include "sim/settrade_sim.h"

namespace {

using examples::sim::Broker;
using examples::sim::BrokerSim;
using examples::sim::BrokerSimOptions;
using examples::sim::FaultAction;
using examples::sim::FaultCommand;
using examples::sim::FaultScriptPlayer;

constexpr std::string_view kUsage =
    R"(usage: feedkit-sim --broker kis|kiwoom|settrade [flags]

A simulated broker on 127.0.0.1: the broker's REST key/token endpoint and its
realtime WebSocket, publishing trades (and books) for every symbol, playing a
fault script, recording what it sent on each connection.

flags:
  --broker kis|kiwoom|settrade  which broker to simulate (required);
                          settrade: BidOfferV3 books only (--book-rate),
                          MQTT over wss through a real mosquitto, its CA in
                          the ready line's "ca_file" (examples/sim/
                          settrade_sim.h); no keep_subscriptions,
                          max_subscriptions or appkey_in_use
  --port N                WebSocket port (default 0: a free port)
  --rest-port N           REST port (default 0: a free port)
  --symbols A,B,...       symbols (default 005930)
  --rate N                trades per second per symbol (default 10)
  --book-rate N           books per second per symbol (default 1; 0: none)
  --records-per-frame L   records per data frame, in turn, e.g. 1,1,2,1,3
                          (each 1-10; default 1,1,1,2,1,1,1,3)
  --ping-interval S       application ping every S seconds (default 10; 0: none)
  --max-missed-pings N    close a session that leaves N pings in a row
                          unanswered (Kiwoom: SYSTEM R10002 first; default 0:
                          pings need no answer; a text echo or a pong frame
                          both count)
  --appkey K              the app key the REST endpoint accepts (default SIMAPPKEY)
  --secretkey K           the secret key it accepts (default SIMSECRETKEY)
  --token-ttl S           lifetime of an issued key/token (default 86400)
  --start-time HH:MM:SS   exchange time (KST) at the start (default 09:00:00)
  --script FILE           fault script (below)
  --speed X               play the script X times as fast (times and durations
                          divided by X; default 1)
  --record FILE           write what was sent, per connection, as JSON Lines
                          (at exit, also on SIGINT/SIGTERM)
  --duration S            stop after S seconds (default 0: until a signal or end)
  --help                  this text

stdout: first line {"event":"ready","broker","ws_url","ws_port","rest_url",
"rest_port","started_unix_ns","symbols","trade_keys","book_keys"}; last line
{"event":"stopped",
"reason"}. stderr: each script command as it plays. Exit 0, or 2 for bad
flags or a bad script, 1 if a port cannot be bound or the record cannot be
written.

fault script: one command per line, "at <seconds> <command> [args]", # comments
  at <t> stall [<s>]               stop sending (nothing at all) on the open
                                   connections; after <s> s send again (0 or
                                   omitted: until they end)
  at <t> close                     WebSocket close on every connection
  at <t> reset                     TCP reset of every connection
  at <t> keep_subscriptions on|off keep a connection's subscriptions after it
                                   ends; a resubscribe gets ALREADY IN SUBSCRIBE
  at <t> max_subscriptions <n>     MAX SUBSCRIBE OVER beyond n keys (0: no cap)
  at <t> appkey_in_use <s>         another client holds the app key for <s> s
                                   (KIS: OPSP8996 to subscribes; Kiwoom: open
                                   and new sessions kicked with SYSTEM R10001)
  at <t> expire_token              issued keys/tokens stop being accepted;
                                   sessions using one are closed
  at <t> burst <m>x <s>            rates times m for <s> s
  at <t> malformed <n>             n malformed frames on every connection
  at <t> end                       stop
)";

[[noreturn]] void usage_error(const std::string& message) {
  std::cerr << "feedkit-sim: " << message
            << "\n(run feedkit-sim --help for the flags)\n";
  std::exit(2);
}

std::optional<double> parse_double(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(item);
  return out;
}

struct Flags {
  BrokerSimOptions sim;
  bool broker_given = false;
  std::string script_file;
  double speed = 1.0;
  std::string record_file;
  double duration_s = 0;
};

double number_flag(const std::string& name, const std::string& value,
                   double min, bool min_inclusive = true) {
  const auto v = parse_double(value);
  if (!v || (min_inclusive ? *v < min : *v <= min)) {
    usage_error(name + " must be a number " + (min_inclusive ? ">= " : "> ") +
                std::to_string(static_cast<long long>(min)) + ", got \"" +
                value + "\"");
  }
  return *v;
}

std::uint16_t port_flag(const std::string& name, const std::string& value) {
  const double v = number_flag(name, value, 0);
  if (v > 65535 || v != std::floor(v)) {
    usage_error(name + " must be a port 0-65535, got \"" + value + "\"");
  }
  return static_cast<std::uint16_t>(v);
}

feedkit::Duration seconds_flag(const std::string& name,
                               const std::string& value, bool zero_ok) {
  const double s = number_flag(name, value, 0, zero_ok);
  return std::chrono::duration_cast<feedkit::Duration>(
      std::chrono::duration<double>(s));
}

Flags parse_flags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (arg.rfind("--", 0) != 0)
      usage_error("unexpected argument \"" + arg + "\"");
    std::string value;
    if (const std::size_t eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      usage_error(arg + " needs a value");
    }
    if (arg == "--broker") {
      if (value == "kis") {
        f.sim.broker = Broker::kis;
      } else if (value == "kiwoom") {
        f.sim.broker = Broker::kiwoom;
      } else if (value == "settrade") {
        f.sim.broker = Broker::settrade;
      } else {
        usage_error("--broker must be kis, kiwoom or settrade, got \"" + value +
                    "\"");
      }
      f.broker_given = true;
    } else if (arg == "--port") {
      f.sim.ws_port = port_flag(arg, value);
    } else if (arg == "--rest-port") {
      f.sim.rest_port = port_flag(arg, value);
    } else if (arg == "--symbols") {
      f.sim.symbols = split_list(value);
    } else if (arg == "--rate") {
      f.sim.trade_rate = number_flag(arg, value, 0, false);
    } else if (arg == "--book-rate") {
      f.sim.book_rate = number_flag(arg, value, 0);
    } else if (arg == "--records-per-frame") {
      f.sim.records_per_frame.clear();
      for (const std::string& n : split_list(value)) {
        const double v = number_flag(arg, n, 1);
        if (v > 10 || v != std::floor(v)) {
          usage_error(
              "--records-per-frame values must be integers 1-10, got \"" + n +
              "\"");
        }
        f.sim.records_per_frame.push_back(static_cast<std::size_t>(v));
      }
    } else if (arg == "--ping-interval") {
      f.sim.ping_interval = seconds_flag(arg, value, true);
    } else if (arg == "--max-missed-pings") {
      const double n = number_flag(arg, value, 0);
      if (n != std::floor(n)) {
        usage_error("--max-missed-pings must be an integer >= 0, got \"" +
                    value + "\"");
      }
      f.sim.max_missed_pings = static_cast<std::size_t>(n);
    } else if (arg == "--appkey") {
      f.sim.appkey = value;
    } else if (arg == "--secretkey") {
      f.sim.secretkey = value;
    } else if (arg == "--token-ttl") {
      f.sim.token_ttl = seconds_flag(arg, value, false);
    } else if (arg == "--start-time") {
      int h = 0, m = 0, s = 0;
      char tail = 0;
      if (std::sscanf(value.c_str(), "%d:%d:%d%c", &h, &m, &s, &tail) != 3 ||
          h < 0 || h > 23 || m < 0 || m > 59 || s < 0 || s > 59) {
        usage_error("--start-time must be HH:MM:SS, got \"" + value + "\"");
      }
      f.sim.start_seconds = h * 3600 + m * 60 + s;
    } else if (arg == "--script") {
      f.script_file = value;
    } else if (arg == "--speed") {
      f.speed = number_flag(arg, value, 0, false);
    } else if (arg == "--record") {
      f.record_file = value;
    } else if (arg == "--duration") {
      f.duration_s = number_flag(arg, value, 0);
    } else {
      usage_error("unknown flag " + arg);
    }
  }
  if (!f.broker_given)
    usage_error("--broker is required (kis, kiwoom or settrade)");
  if (absl::Status s = f.sim.validate(); !s.ok()) {
    usage_error(std::string(s.message()));
  }
  return f;
}

std::vector<FaultCommand> load_script(const std::string& file, Broker broker) {
  if (file.empty()) return {};
  std::ifstream in(file);
  if (!in) usage_error("cannot read --script \"" + file + "\"");
  std::stringstream text;
  text << in.rdbuf();
  auto commands = examples::sim::parse_fault_script(text.str(), file);
  if (!commands.ok()) usage_error(std::string(commands.status().message()));
  if (broker == Broker::settrade) {
    const absl::Status s =
        examples::sim::check_settrade_script(*commands, file);
    if (!s.ok()) usage_error(std::string(s.message()));
  }
  return std::move(commands).value();
}

// Waits up to `timeout` for SIGINT or SIGTERM (blocked in every thread);
// returns the signal, or 0 on timeout.
int wait_for_signal(const sigset_t& signals, feedkit::Duration timeout) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::max(timeout, feedkit::Duration::zero()))
                      .count();
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  const int sig = sigtimedwait(&signals, nullptr, &ts);
  return sig > 0 ? sig : 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Flags flags = parse_flags(argc, argv);
  FaultScriptPlayer player(load_script(flags.script_file, flags.sim.broker),
                           flags.speed);

  // Blocked before any thread starts, so that every thread inherits the
  // mask and the signals wait for sigtimedwait() below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto started = BrokerSim::start(flags.sim);
  if (!started.ok()) {
    std::cerr << "feedkit-sim: " << started.status().message() << "\n";
    return 1;
  }
  std::unique_ptr<BrokerSim> sim = std::move(started).value();
  std::cout << sim->ready_line() << std::endl;

  const auto start = feedkit::SteadyClock::now();
  const feedkit::Duration duration =
      flags.duration_s > 0
          ? std::chrono::duration_cast<feedkit::Duration>(
                std::chrono::duration<double>(flags.duration_s))
          : feedkit::Duration::max();
  std::string reason = "duration";
  while (true) {
    const feedkit::Duration elapsed = feedkit::SteadyClock::now() - start;
    bool ended = false;
    for (const FaultCommand& command : player.due(elapsed)) {
      std::cerr << "feedkit-sim: t=" << std::fixed << std::setprecision(3)
                << std::chrono::duration<double>(elapsed).count() << "s "
                << command.to_string() << std::endl;
      if (command.action == FaultAction::end) {
        ended = true;
        break;
      }
      sim->apply(command, player.speed());
    }
    if (ended) {
      reason = "end";
      break;
    }
    if (elapsed >= duration) break;
    const feedkit::Duration wake = std::min(player.next_due(), duration);
    if (const int sig = wait_for_signal(signals, wake - elapsed); sig != 0) {
      reason = sig == SIGINT ? "SIGINT" : "SIGTERM";
      break;
    }
  }

  int status = 0;
  if (!flags.record_file.empty()) {
    std::ofstream out(flags.record_file, std::ios::trunc);
    out << sim->report_jsonl();
    out.close();
    if (!out) {
      std::cerr << "feedkit-sim: cannot write --record \"" << flags.record_file
                << "\"\n";
      status = 1;
    }
  }
  std::cout << R"({"event":"stopped","reason":")" << reason << "\"}"
            << std::endl;
  return status;
}
