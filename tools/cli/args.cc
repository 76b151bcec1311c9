#include "tools/cli/args.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace leasehold::cli {
namespace {

const FlagSpec* FindSpec(const std::vector<FlagSpec>& specs,
                         absl::string_view name) {
  auto it = std::find_if(specs.begin(), specs.end(), [&](const FlagSpec& spec) {
    return spec.name == name;
  });
  return it == specs.end() ? nullptr : &*it;
}

}  // namespace

absl::StatusOr<Args> ParseArgs(const std::vector<std::string>& words,
                               const std::vector<FlagSpec>& specs,
                               bool allow_command) {
  Args args;
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& word = words[i];
    if (word == "--") {
      if (!allow_command) {
        return absl::InvalidArgumentError(
            "unexpected \"--\": this command runs no command");
      }
      args.has_command_ = true;
      args.command_.assign(words.begin() + i + 1, words.end());
      break;
    }
    if (!absl::StartsWith(word, "-") || word == "-") {
      args.positional_.push_back(word);
      continue;
    }
    absl::string_view body = word;
    body.remove_prefix(absl::StartsWith(word, "--") ? 2 : 1);
    absl::string_view name = body;
    std::optional<std::string> inline_value;
    if (const size_t eq = body.find('='); eq != absl::string_view::npos) {
      name = body.substr(0, eq);
      inline_value = std::string(body.substr(eq + 1));
    }
    const FlagSpec* spec = FindSpec(specs, name);
    if (spec == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag \"", word, "\""));
    }
    if (args.values_.count(spec->name) > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("flag --", spec->name, " given twice"));
    }
    if (spec->kind == FlagSpec::kSwitch) {
      if (inline_value.has_value()) {
        return absl::InvalidArgumentError(
            absl::StrCat("flag --", spec->name, " takes no value"));
      }
      args.values_[spec->name] = "true";
      continue;
    }
    if (!inline_value.has_value()) {
      if (i + 1 >= words.size() || words[i + 1] == "--") {
        return absl::InvalidArgumentError(absl::StrCat(
            "flag --", spec->name, " needs a value (", spec->value_name, ")"));
      }
      inline_value = words[++i];
    }
    args.values_[spec->name] = *std::move(inline_value);
  }
  return args;
}

bool Args::Has(absl::string_view flag) const {
  return values_.find(flag) != values_.end();
}

absl::StatusOr<std::string> Args::String(absl::string_view flag) const {
  auto it = values_.find(flag);
  if (it == values_.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("missing required flag --", flag));
  }
  return it->second;
}

std::string Args::StringOr(absl::string_view flag,
                           absl::string_view fallback) const {
  auto it = values_.find(flag);
  return it == values_.end() ? std::string(fallback) : it->second;
}

absl::StatusOr<absl::Duration> Args::Duration(absl::string_view flag) const {
  absl::StatusOr<std::string> text = String(flag);
  if (!text.ok()) return text.status();
  absl::Duration d;
  if (!absl::ParseDuration(*text, &d) || d <= absl::ZeroDuration() ||
      d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("flag --", flag, "=\"", *text,
                     "\" is not a positive duration (e.g. 500ms, 10s, 1m)"));
  }
  return d;
}

absl::StatusOr<absl::Duration> Args::DurationOr(absl::string_view flag,
                                                absl::Duration fallback) const {
  return Has(flag) ? Duration(flag) : fallback;
}

absl::StatusOr<uint64_t> Args::Uint(absl::string_view flag) const {
  absl::StatusOr<std::string> text = String(flag);
  if (!text.ok()) return text.status();
  uint64_t value = 0;
  if (text->empty() || text->front() == '+' || text->front() == '-' ||
      !absl::SimpleAtoi(*text, &value)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "flag --", flag, "=\"", *text, "\" is not a non-negative integer"));
  }
  return value;
}

absl::StatusOr<uint64_t> Args::UintOr(absl::string_view flag,
                                      uint64_t fallback) const {
  return Has(flag) ? Uint(flag) : fallback;
}

std::string FlagHelp(const std::vector<FlagSpec>& specs) {
  std::string out;
  for (const FlagSpec& spec : specs) {
    std::string left = absl::StrCat("  --", spec.name);
    if (spec.kind == FlagSpec::kValue)
      absl::StrAppend(&left, " ", spec.value_name);
    if (left.size() < 24) left.resize(24, ' ');
    absl::StrAppend(&out, left, " ", spec.help, "\n");
  }
  return out;
}

}  // namespace leasehold::cli
