// SPDX-License-Identifier: Apache-2.0
//
// examples/collector/flags.h
//
// The command-line flags of the collectors: `--name value` or
// `--name=value`, a boolean `--name` alone, an environment variable as the
// fallback (for secrets, so that keys stay out of `ps` and shell history),
// a default, and `--help`. Every mistake (an unknown flag, a missing value,
// a required flag absent, a value that does not parse) is a message naming
// the flag; the collector prints it and exits 2. A secret flag's value never
// appears in a message.
//
// Thread safety: thread-compatible; parse once in main().
//
// Example:
//   examples::Flags flags("kis_collector", "KIS realtime collector");
//   flags.add({.name = "symbols", .help = "comma-separated codes",
//              .required = true});
//   flags.add({.name = "appkey", .env = "KIS_APPKEY", .secret = true,
//              .required = true});
//   if (auto s = flags.parse(argc, argv); !s.ok()) return flags.fail(s);
//   std::vector<std::string> symbols = flags.list("symbols");
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace examples {

struct FlagSpec {
  std::string name{};           // without the leading "--"
  std::string help{};           // one line
  std::string env{};            // environment fallback; empty = none
  std::string default_value{};  // used when neither flag nor env is set
  bool required = false;        // error if still unset after env and default
  bool secret = false;          // value never printed (help shows the env name)
  bool boolean = false;         // `--name` alone means "true"
};

class Flags {
 public:
  Flags(std::string program, std::string summary);

  // Declares a flag. Declaring the same name twice is a bug (asserts).
  void add(FlagSpec spec);

  // Parses argv[1..]. Returns OK, kInvalidArgument naming the flag and what
  // is wrong, or kCancelled after printing --help to stdout.
  absl::Status parse(int argc, const char* const* argv);

  // Prints "<program>: <message>" and a hint to stderr; returns 2 (the exit
  // code for bad flags), or 0 for --help (kCancelled).
  int fail(const absl::Status& status) const;

  // The help text: usage and every flag with its env and default.
  std::string help() const;

  // Values. A flag never set (no value, env or default) is "" / nullopt.
  bool has(std::string_view name) const;
  std::string get(std::string_view name) const;
  bool boolean(std::string_view name) const;
  // The value split on ',' with empty items dropped.
  std::vector<std::string> list(std::string_view name) const;
  // The value as a number in [min, max], or kInvalidArgument naming the
  // flag (an unset flag without default is an error too).
  absl::StatusOr<std::int64_t> integer(std::string_view name, std::int64_t min,
                                       std::int64_t max) const;
  absl::StatusOr<double> number(std::string_view name, double min,
                                double max) const;

 private:
  const FlagSpec* find(std::string_view name) const;

  std::string program_;
  std::string summary_;
  std::vector<FlagSpec> specs_;
  std::map<std::string, std::string, std::less<>> values_;
};

}  // namespace examples
