// The shape every leasehold command shares: the global options, where output
// and errors go, and how a command reports failure.
//
// Thread-safety: a Context belongs to the one command that runs.
#ifndef LEASEHOLD_TOOLS_CLI_COMMAND_H_
#define LEASEHOLD_TOOLS_CLI_COMMAND_H_

#include <atomic>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "registry/cancel.h"
#include "registry/keys_api.h"
#include "tools/cli/args.h"
#include "tools/cli/output.h"

namespace leasehold::cli {

struct GlobalOptions {
  std::string registry;  // empty: the command's default
  std::string prefix = "/leasehold/";
  bool json = false;
};

class Context {
 public:
  Context(GlobalOptions global, std::ostream& out, std::ostream& err)
      : global_(std::move(global)), printer_(out, global_.json), err_(err) {}

  const GlobalOptions& global() const { return global_; }
  Printer& out() { return printer_; }
  std::ostream& err() { return err_; }

  // The registry named by --registry, else $LEASEHOLD_REGISTRY, else
  // `fallback`. kInvalidArgument (exit 2) also for a cluster the URI's
  // reject-old-cluster refuses.
  absl::StatusOr<std::unique_ptr<registry::KeysApi>> OpenRegistry(
      absl::string_view fallback = "etcd://127.0.0.1:2379");

  // Fired by SIGINT/SIGTERM (through Interrupt).
  const CancelToken& interrupted() const { return interrupted_; }
  // Records `signal` and fires interrupted(); later signals change nothing.
  void Interrupt(int signal);
  // The signal that fired interrupted() (`lock` forwards it to its
  // command); 0 before.
  int interrupt_signal() const {
    return interrupt_signal_.load(std::memory_order_acquire);
  }

  // "leasehold <command>: <message>" on stderr; returns the exit code.
  int Fail(absl::string_view command, const absl::Status& status);
  int Fail(absl::string_view command, ExitCode code, absl::string_view message);

 private:
  const GlobalOptions global_;
  Printer printer_;
  std::ostream& err_;
  CancelToken interrupted_;
  std::atomic<int> interrupt_signal_{0};
};

struct CommandSpec {
  std::string name;      // "lease acquire"
  std::string synopsis;  // "NAME --machine ID --ttl DUR [--version N]"
  std::string summary;   // one line
  std::vector<FlagSpec> flags;
  bool runs_command = false;  // takes "-- CMD ARGS…"
};

// Parses `words` for `spec`, handling --help (usage on stdout, exit 0) and
// usage errors (message + usage on stderr, exit 2). Returns the exit code
// in `*exit_code` when the command must not run.
absl::StatusOr<Args> ParseCommand(Context& ctx, const CommandSpec& spec,
                                  const std::vector<std::string>& words,
                                  size_t positional, int* exit_code);

std::string Usage(const CommandSpec& spec);

// A command of subcommands (`lease`, `barrier`): runs the one of `specs`
// (named "<group> <word>") that words[0] names with `run` and the words
// after it. Otherwise the list of subcommands: on stdout with exit 0 for
// --help/-h, else on stderr after the missing or unknown word, exit 2.
using SubcommandRunner = int (*)(Context& ctx, const CommandSpec& spec,
                                 const std::vector<std::string>& words);
int RunSubcommand(Context& ctx, absl::string_view group,
                  const std::vector<const CommandSpec*>& specs,
                  const std::vector<std::string>& words, SubcommandRunner run);

// Commands, each `int Run…(Context&, const std::vector<std::string>& words)`.
int RunLease(Context& ctx, const std::vector<std::string>& words);
int RunSim(Context& ctx, const std::vector<std::string>& words);
int RunAgent(Context& ctx, const std::vector<std::string>& words);
int RunLock(Context& ctx, const std::vector<std::string>& words);
int RunElect(Context& ctx, const std::vector<std::string>& words);
int RunLeader(Context& ctx, const std::vector<std::string>& words);
int RunObserve(Context& ctx, const std::vector<std::string>& words);
int RunTxn(Context& ctx, const std::vector<std::string>& words);
int RunBarrier(Context& ctx, const std::vector<std::string>& words);

}  // namespace leasehold::cli

#endif  // LEASEHOLD_TOOLS_CLI_COMMAND_H_
