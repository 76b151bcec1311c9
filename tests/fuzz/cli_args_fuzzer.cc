// The CLI's argument parser (tools/cli/args.h): any words give Args or
// kInvalidArgument naming the bad word, and every accessor of a parsed
// flag answers without crashing.
//
// Input: the words, separated by NUL bytes; a first word "--allow-command"
// (not passed on) lets "--" start a command, as `lock` and `elect` do.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "tools/cli/args.h"

namespace {

using leasehold::cli::FlagSpec;

const std::vector<FlagSpec>& Specs() {
  static const std::vector<FlagSpec>* specs = new std::vector<FlagSpec>{
      {"machine", FlagSpec::kValue, "ID", "machine id"},
      {"ttl", FlagSpec::kValue, "DUR", "lease period"},
      {"version", FlagSpec::kValue, "N", "version"},
      {"index", FlagSpec::kValue, "N", "index"},
      {"quorum", FlagSpec::kSwitch, "", "quorum read"},
      {"o", FlagSpec::kValue, "FORMAT", "output"},
  };
  return *specs;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> words = absl::StrSplit(
      absl::string_view(reinterpret_cast<const char*>(data), size), '\0');
  const bool allow_command = !words.empty() && words[0] == "--allow-command";
  if (allow_command) words.erase(words.begin());
  absl::StatusOr<leasehold::cli::Args> args =
      leasehold::cli::ParseArgs(words, Specs(), allow_command);
  if (!args.ok()) {
    if (!absl::IsInvalidArgument(args.status())) std::abort();
    return 0;
  }
  if (args->has_command() && !allow_command) std::abort();
  for (const FlagSpec& spec : Specs()) {
    args->Has(spec.name);
    args->String(spec.name).IgnoreError();
    args->StringOr(spec.name, "x");
    args->Duration(spec.name).IgnoreError();
    args->DurationOr(spec.name, absl::Seconds(1)).IgnoreError();
    args->Uint(spec.name).IgnoreError();
    args->UintOr(spec.name, 1).IgnoreError();
  }
  return 0;
}
