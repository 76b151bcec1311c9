#include "tools/cli/command.h"

#include <cstdlib>
#include <iostream>
#include <ostream>

#include "absl/strings/str_cat.h"
#include "registry/open.h"

namespace leasehold::cli {

absl::StatusOr<std::unique_ptr<registry::KeysApi>> Context::OpenRegistry(
    absl::string_view fallback) {
  std::string uri = global_.registry;
  if (uri.empty()) {
    const char* env = std::getenv("LEASEHOLD_REGISTRY");
    uri = env != nullptr && *env != '\0' ? env : std::string(fallback);
  }
  absl::StatusOr<std::unique_ptr<registry::KeysApi>> keys = registry::Open(uri);
  // A cluster the URI's reject-old-cluster refuses: the registry is not
  // what the invocation asked for (exit 2), not a lease state (exit 1).
  if (absl::IsFailedPrecondition(keys.status())) {
    return absl::InvalidArgumentError(keys.status().message());
  }
  return keys;
}

void Context::Interrupt(int signal) {
  int none = 0;
  interrupt_signal_.compare_exchange_strong(none, signal,
                                            std::memory_order_acq_rel);
  interrupted_.Cancel();
}

int Context::Fail(absl::string_view command, const absl::Status& status) {
  return Fail(command, ExitCodeFor(status), status.message());
}

int Context::Fail(absl::string_view command, ExitCode code,
                  absl::string_view message) {
  err_ << "leasehold " << command << ": " << message << std::endl;
  return code;
}

std::string Usage(const CommandSpec& spec) {
  std::string usage = absl::StrCat(
      "usage: leasehold [--registry URI] [--prefix P] [-o text|json] ",
      spec.name, " ", spec.synopsis, "\n\n", spec.summary, "\n");
  if (!spec.flags.empty())
    absl::StrAppend(&usage, "\nflags:\n", FlagHelp(spec.flags));
  return usage;
}

absl::StatusOr<Args> ParseCommand(Context& ctx, const CommandSpec& spec,
                                  const std::vector<std::string>& words,
                                  size_t positional, int* exit_code) {
  std::vector<FlagSpec> flags = spec.flags;
  flags.push_back({"help", FlagSpec::kSwitch, "", "show this help"});
  absl::StatusOr<Args> args = ParseArgs(words, flags, spec.runs_command);
  if (args.ok() && args->Has("help")) {
    ctx.out().Note(Usage(spec));
    *exit_code = kExitOk;
    return absl::CancelledError("help shown");
  }
  if (args.ok() && args->positional().size() != positional) {
    args = absl::InvalidArgumentError(absl::StrCat(
        "expected ", positional, " argument", positional == 1 ? "" : "s",
        ", got ", args->positional().size()));
  }
  if (args.ok() && spec.runs_command &&
      (!args->has_command() || args->command().empty())) {
    args = absl::InvalidArgumentError("missing \"-- CMD [ARGS...]\"");
  }
  if (!args.ok()) {
    ctx.err() << "leasehold " << spec.name << ": " << args.status().message()
              << "\n"
              << Usage(spec);
    *exit_code = kExitUsage;
  }
  return args;
}

int RunSubcommand(Context& ctx, absl::string_view group,
                  const std::vector<const CommandSpec*>& specs,
                  const std::vector<std::string>& words, SubcommandRunner run) {
  if (!words.empty()) {
    for (const CommandSpec* spec : specs) {
      if (spec->name == absl::StrCat(group, " ", words[0])) {
        return run(ctx, *spec,
                   std::vector<std::string>(words.begin() + 1, words.end()));
      }
    }
  }
  const bool help =
      !words.empty() && (words[0] == "--help" || words[0] == "-h");
  std::ostream& to = help ? std::cout : ctx.err();
  if (!help) {
    to << "leasehold " << group << ": "
       << (words.empty()
               ? "missing subcommand"
               : absl::StrCat("unknown subcommand \"", words[0], "\""))
       << "\n";
  }
  to << "usage: leasehold " << group
     << " SUBCOMMAND [--help]\n\nsubcommands:\n";
  for (const CommandSpec* spec : specs)
    to << "  " << spec->name << " " << spec->synopsis << "\n";
  return help ? kExitOk : kExitUsage;
}

}  // namespace leasehold::cli
