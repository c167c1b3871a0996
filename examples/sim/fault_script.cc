// SPDX-License-Identifier: Apache-2.0
#include "sim/fault_script.h"

#include <charconv>
#include <chrono>
#include <cmath>
#include <optional>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace examples::sim {
namespace {

using feedkit::Duration;

struct Syntax {
  FaultAction action;
  std::string_view name;
  std::string_view usage;  // shown when the arguments are wrong
};
constexpr Syntax kSyntax[] = {
    {FaultAction::stall, "stall", "stall [<seconds>]"},
    {FaultAction::close, "close", "close"},
    {FaultAction::reset, "reset", "reset"},
    {FaultAction::keep_subscriptions, "keep_subscriptions",
     "keep_subscriptions on|off"},
    {FaultAction::max_subscriptions, "max_subscriptions",
     "max_subscriptions <n>"},
    {FaultAction::appkey_in_use, "appkey_in_use", "appkey_in_use <seconds>"},
    {FaultAction::expire_token, "expire_token", "expire_token"},
    {FaultAction::burst, "burst", "burst <multiplier>x <seconds>"},
    {FaultAction::malformed, "malformed", "malformed <n>"},
    {FaultAction::end, "end", "end"},
};

const Syntax& syntax_of(FaultAction action) {
  for (const Syntax& s : kSyntax) {
    if (s.action == action) return s;
  }
  return kSyntax[0];
}

std::vector<std::string_view> split_words(std::string_view line) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  return words;
}

std::optional<double> parse_number(std::string_view text) {
  double value = 0;
  const auto [end, ec] =
      std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() ||
      !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

std::optional<std::uint64_t> parse_count(std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, ec] =
      std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    return std::nullopt;
  }
  return value;
}

Duration seconds(double s) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s));
}

std::string format_seconds(Duration d) {
  const double s = std::chrono::duration<double>(d).count();
  std::string out = absl::StrCat(std::round(s * 1000) / 1000);
  return out;
}

// Reads one command's arguments into `command`; returns "" or what is wrong.
std::string read_arguments(const Syntax& syntax,
                           const std::vector<std::string_view>& args,
                           FaultCommand& command) {
  auto wrong = [&](std::string_view what) {
    return absl::StrCat(std::string(what), " (usage: at <seconds> ",
                        std::string(syntax.usage), ")");
  };
  auto positive_seconds = [&](std::string_view text,
                              bool zero_ok) -> std::optional<Duration> {
    const std::optional<double> s = parse_number(text);
    if (!s || *s < 0 || (!zero_ok && *s == 0)) return std::nullopt;
    return seconds(*s);
  };
  switch (command.action) {
    case FaultAction::close:
    case FaultAction::reset:
    case FaultAction::expire_token:
    case FaultAction::end:
      if (!args.empty()) {
        return wrong(absl::StrCat("\"", std::string(syntax.name),
                                  "\" takes no argument, got \"",
                                  std::string(args[0]), "\""));
      }
      return {};
    case FaultAction::stall:
      if (args.size() > 1) return wrong("too many arguments");
      if (args.size() == 1) {
        const auto d = positive_seconds(args[0], true);
        if (!d) {
          return wrong(absl::StrCat("bad duration \"", std::string(args[0]),
                                    "\": expected seconds >= 0"));
        }
        command.duration = *d;
      }
      return {};
    case FaultAction::keep_subscriptions:
      if (args.size() != 1 || (args[0] != "on" && args[0] != "off")) {
        return wrong("expected on or off");
      }
      command.on = args[0] == "on";
      return {};
    case FaultAction::max_subscriptions:
    case FaultAction::malformed: {
      if (args.size() != 1) return wrong("expected one count");
      const auto n = parse_count(args[0]);
      const bool zero_ok = command.action == FaultAction::max_subscriptions;
      if (!n || (!zero_ok && *n == 0)) {
        return wrong(absl::StrCat("bad count \"", std::string(args[0]),
                                  zero_ok ? "\": expected an integer >= 0"
                                          : "\": expected an integer >= 1"));
      }
      command.count = *n;
      return {};
    }
    case FaultAction::appkey_in_use: {
      if (args.size() != 1) return wrong("expected one duration");
      const auto d = positive_seconds(args[0], false);
      if (!d) {
        return wrong(absl::StrCat("bad duration \"", std::string(args[0]),
                                  "\": expected seconds > 0"));
      }
      command.duration = *d;
      return {};
    }
    case FaultAction::burst: {
      if (args.size() != 2)
        return wrong("expected a multiplier and a duration");
      std::string_view m = args[0];
      if (!m.empty() && (m.back() == 'x' || m.back() == 'X')) {
        m.remove_suffix(1);
      }
      const std::optional<double> multiplier = parse_number(m);
      if (!multiplier || *multiplier <= 0) {
        return wrong(absl::StrCat("bad multiplier \"", std::string(args[0]),
                                  "\": expected a number > 0, e.g. 10x"));
      }
      const auto d = positive_seconds(args[1], false);
      if (!d) {
        return wrong(absl::StrCat("bad duration \"", std::string(args[1]),
                                  "\": expected seconds > 0"));
      }
      command.multiplier = *multiplier;
      command.duration = *d;
      return {};
    }
  }
  return {};
}

std::string command_names() {
  std::string names;
  for (const Syntax& s : kSyntax) {
    if (!names.empty()) names += ", ";
    names += s.name;
  }
  return names;
}

}  // namespace

std::string_view to_string(FaultAction action) noexcept {
  return syntax_of(action).name;
}

std::string FaultCommand::to_string() const {
  std::string out = absl::StrCat("at ", format_seconds(at), " ",
                                 std::string(examples::sim::to_string(action)));
  switch (action) {
    case FaultAction::stall:
      if (duration > Duration::zero()) {
        absl::StrAppend(&out, " ", format_seconds(duration));
      }
      break;
    case FaultAction::keep_subscriptions:
      out += on ? " on" : " off";
      break;
    case FaultAction::max_subscriptions:
    case FaultAction::malformed:
      absl::StrAppend(&out, " ", count);
      break;
    case FaultAction::appkey_in_use:
      absl::StrAppend(&out, " ", format_seconds(duration));
      break;
    case FaultAction::burst:
      absl::StrAppend(&out, " ", multiplier, "x ", format_seconds(duration));
      break;
    default:
      break;
  }
  return out;
}

absl::StatusOr<std::vector<FaultCommand>> parse_fault_script(
    std::string_view text, std::string_view name) {
  std::vector<FaultCommand> commands;
  int line_number = 0;
  int end_line = 0;
  std::size_t at = 0;
  while (at <= text.size()) {
    std::size_t eol = text.find('\n', at);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(at, eol - at);
    at = eol + 1;
    ++line_number;
    if (const std::size_t hash = line.find('#');
        hash != std::string_view::npos) {
      line = line.substr(0, hash);
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::vector<std::string_view> words = split_words(line);
    if (words.empty()) continue;
    auto error = [&](std::string_view what) {
      return absl::InvalidArgumentError(absl::StrCat(
          std::string(name), ":", line_number, ": ", std::string(what)));
    };
    if (words[0] != "at") {
      return error(absl::StrCat(
          "expected \"at <seconds> <command> [arguments]\", got \"",
          std::string(words[0]), "\""));
    }
    if (words.size() < 2) return error("missing the time after \"at\"");
    const std::optional<double> time = parse_number(words[1]);
    if (!time || *time < 0) {
      return error(absl::StrCat("bad time \"", std::string(words[1]),
                                "\": expected seconds >= 0"));
    }
    if (words.size() < 3) {
      return error(absl::StrCat("missing the command after \"at ",
                                std::string(words[1]),
                                "\" (one of: ", command_names(), ")"));
    }
    if (end_line != 0) {
      return error(absl::StrCat("command after \"end\" (line ", end_line,
                                "): end must be the last command"));
    }
    FaultCommand command;
    command.at = seconds(*time);
    command.line = line_number;
    if (!commands.empty() && command.at < commands.back().at) {
      return error(absl::StrCat("at ", std::string(words[1]),
                                " is earlier than the previous command (",
                                commands.back().to_string(), " on line ",
                                commands.back().line,
                                "): commands must be in time order"));
    }
    const Syntax* syntax = nullptr;
    for (const Syntax& s : kSyntax) {
      if (s.name == words[2]) syntax = &s;
    }
    if (syntax == nullptr) {
      return error(absl::StrCat("unknown command \"", std::string(words[2]),
                                "\" (one of: ", command_names(), ")"));
    }
    command.action = syntax->action;
    const std::vector<std::string_view> args(words.begin() + 3, words.end());
    if (std::string what = read_arguments(*syntax, args, command);
        !what.empty()) {
      return error(what);
    }
    if (command.action == FaultAction::end) end_line = line_number;
    commands.push_back(command);
  }
  return commands;
}

FaultScriptPlayer::FaultScriptPlayer(std::vector<FaultCommand> commands,
                                     double speed)
    : commands_(std::move(commands)), speed_(speed > 0 ? speed : 1.0) {}

std::vector<FaultCommand> FaultScriptPlayer::due(Duration elapsed) {
  std::vector<FaultCommand> out;
  while (next_ < commands_.size() && commands_[next_].at <= elapsed * speed_) {
    out.push_back(commands_[next_++]);
  }
  return out;
}

Duration FaultScriptPlayer::next_due() const {
  if (done()) return Duration::max();
  return std::chrono::duration_cast<Duration>(commands_[next_].at / speed_);
}

}  // namespace examples::sim
