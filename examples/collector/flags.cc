// SPDX-License-Identifier: Apache-2.0
#include "collector/flags.h"

#include <cassert>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"

namespace examples {
namespace {

absl::Status bad(std::string_view name, std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("--", std::string(name), ": ", std::string(what)));
}

}  // namespace

Flags::Flags(std::string program, std::string summary)
    : program_(std::move(program)), summary_(std::move(summary)) {}

void Flags::add(FlagSpec spec) {
  assert(find(spec.name) == nullptr && "a flag is declared once");
  specs_.push_back(std::move(spec));
}

const FlagSpec* Flags::find(std::string_view name) const {
  for (const FlagSpec& s : specs_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

absl::Status Flags::parse(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(help().c_str(), stdout);
      return absl::CancelledError("help");
    }
    if (arg.substr(0, 2) != "--" || arg.size() == 2) {
      // Not echoed: it may be a secret that lost its flag.
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument #", i, " (flags start with --)"));
    }
    arg.remove_prefix(2);
    std::optional<std::string_view> value;
    if (const auto eq = arg.find('='); eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    }
    const FlagSpec* spec = find(arg);
    if (spec == nullptr) return bad(arg, "unknown flag (see --help)");
    if (!value) {
      if (spec->boolean) {
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return bad(arg, "needs a value");
      }
    }
    if (spec->boolean && *value != "true" && *value != "false") {
      return bad(arg, "takes true or false");
    }
    values_[spec->name] = std::string(*value);
  }
  for (const FlagSpec& spec : specs_) {
    if (values_.count(spec.name) != 0) continue;
    if (!spec.env.empty()) {
      if (const char* env = std::getenv(spec.env.c_str());
          env != nullptr && *env != '\0') {
        values_[spec.name] = env;
        continue;
      }
    }
    if (!spec.default_value.empty()) {
      values_[spec.name] = spec.default_value;
    } else if (spec.required) {
      return bad(spec.name,
                 spec.env.empty()
                     ? "is required"
                     : absl::StrCat("is required (or set ", spec.env, ")"));
    }
  }
  return absl::OkStatus();
}

int Flags::fail(const absl::Status& status) const {
  if (absl::IsCancelled(status)) return 0;
  std::fprintf(stderr, "%s: %s\nTry '%s --help'.\n", program_.c_str(),
               std::string(status.message()).c_str(), program_.c_str());
  return 2;
}

std::string Flags::help() const {
  std::string out =
      absl::StrCat("Usage: ", program_, " [flags]\n", summary_, "\n\nFlags:\n");
  for (const FlagSpec& s : specs_) {
    absl::StrAppend(&out, "  --", s.name, s.boolean ? "" : " VALUE", "\n      ",
                    s.help);
    if (!s.env.empty()) absl::StrAppend(&out, " [env ", s.env, "]");
    if (!s.default_value.empty() && !s.secret) {
      absl::StrAppend(&out, " (default ", s.default_value, ")");
    }
    if (s.required) absl::StrAppend(&out, " (required)");
    out += '\n';
  }
  return out;
}

bool Flags::has(std::string_view name) const {
  return values_.find(name) != values_.end();
}

std::string Flags::get(std::string_view name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::string() : it->second;
}

bool Flags::boolean(std::string_view name) const { return get(name) == "true"; }

std::vector<std::string> Flags::list(std::string_view name) const {
  std::vector<std::string> out;
  const std::string value = get(name);
  std::size_t start = 0;
  while (start <= value.size()) {
    std::size_t comma = value.find(',', start);
    if (comma == std::string::npos) comma = value.size();
    if (comma > start) out.push_back(value.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

absl::StatusOr<std::int64_t> Flags::integer(std::string_view name,
                                            std::int64_t min,
                                            std::int64_t max) const {
  const std::string value = get(name);
  std::int64_t out = 0;
  const auto [end, ec] =
      std::from_chars(value.data(), value.data() + value.size(), out);
  if (value.empty() || ec != std::errc() ||
      end != value.data() + value.size() || out < min || out > max) {
    return bad(name, absl::StrCat("wants an integer in [", min, ", ", max,
                                  "], got '", value, "'"));
  }
  return out;
}

absl::StatusOr<double> Flags::number(std::string_view name, double min,
                                     double max) const {
  const std::string value = get(name);
  double out = 0;
  const auto [end, ec] =
      std::from_chars(value.data(), value.data() + value.size(), out);
  if (value.empty() || ec != std::errc() ||
      end != value.data() + value.size() || !(out >= min && out <= max)) {
    return bad(name, absl::StrCat("wants a number in [", min, ", ", max,
                                  "], got '", value, "'"));
  }
  return out;
}

}  // namespace examples
