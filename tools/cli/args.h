// Command-line parsing for the leasehold tool: each command declares the
// flags it takes; anything else is a usage error that names the bad word.
//
//   const std::vector<FlagSpec> kFlags = {
//       {"machine", FlagSpec::kValue, "ID", "machine id that holds the lease"},
//       {"ttl", FlagSpec::kValue, "DUR", "lease period, e.g. 10s"}};
//   absl::StatusOr<Args> args = ParseArgs(argv_rest, kFlags);
//   absl::StatusOr<absl::Duration> ttl = args->Duration("ttl");
//
// Flags are written --name VALUE or --name=VALUE; "--" ends the flags and
// everything after it is kept verbatim (the command `lock` runs).
//
// Thread-safety: plain values; no shared state.
#ifndef LEASEHOLD_TOOLS_CLI_ARGS_H_
#define LEASEHOLD_TOOLS_CLI_ARGS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace leasehold::cli {

struct FlagSpec {
  enum Kind { kSwitch, kValue };
  std::string name;  // without dashes
  Kind kind = kValue;
  std::string value_name;  // "DUR", "ID", shown in help
  std::string help;
};

class Args {
 public:
  const std::vector<std::string>& positional() const { return positional_; }
  // Words after "--", verbatim.
  const std::vector<std::string>& command() const { return command_; }
  bool has_command() const { return has_command_; }

  bool Has(absl::string_view flag) const;
  // The flag's value; kInvalidArgument naming the flag if it is required and
  // missing or does not parse.
  absl::StatusOr<std::string> String(absl::string_view flag) const;
  std::string StringOr(absl::string_view flag,
                       absl::string_view fallback) const;
  absl::StatusOr<absl::Duration> Duration(absl::string_view flag) const;
  absl::StatusOr<absl::Duration> DurationOr(absl::string_view flag,
                                            absl::Duration fallback) const;
  absl::StatusOr<uint64_t> Uint(absl::string_view flag) const;
  absl::StatusOr<uint64_t> UintOr(absl::string_view flag,
                                  uint64_t fallback) const;

 private:
  friend absl::StatusOr<Args> ParseArgs(const std::vector<std::string>& words,
                                        const std::vector<FlagSpec>& specs,
                                        bool allow_command);
  std::vector<std::string> positional_;
  std::vector<std::string> command_;
  bool has_command_ = false;
  std::map<std::string, std::string, std::less<>> values_;
};

// kInvalidArgument naming the word for an unknown flag, a flag given twice,
// a value flag without value, or a switch with one; "--" is accepted only
// when `allow_command`.
absl::StatusOr<Args> ParseArgs(const std::vector<std::string>& words,
                               const std::vector<FlagSpec>& specs,
                               bool allow_command = false);

// "  --name VALUE   help" lines for a command's usage text.
std::string FlagHelp(const std::vector<FlagSpec>& specs);

}  // namespace leasehold::cli

#endif  // LEASEHOLD_TOOLS_CLI_ARGS_H_
