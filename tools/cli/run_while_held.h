// Running a command while holding something that can be lost: the part of
// `leasehold lock` and `leasehold elect` that starts CMD, waits for it, and
// stops it when the lock or leadership goes.
//
//   HeldCommand held{.what = "lock \"deploy\"",
//                    .argv = {"make", "deploy"},
//                    .env = {"LEASEHOLD_FENCE=42"},
//                    .lost = mutex.lost(),
//                    .expiry = [&] { return mutex.expiry(); },
//                    .clock = session->clock(),
//                    .grace = absl::Seconds(5)};
//   int exit_code = RunWhileHeld(ctx, "lock", held);
//
// Thread-safety: one call per command; it blocks until CMD has exited.
#ifndef LEASEHOLD_TOOLS_CLI_RUN_WHILE_HELD_H_
#define LEASEHOLD_TOOLS_CLI_RUN_WHILE_HELD_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "lease/signal.h"
#include "registry/clock.h"
#include "tools/cli/command.h"

namespace leasehold::cli {

struct HeldCommand {
  std::string what;                           // for messages: `lock "deploy"`
  std::vector<std::string> argv;              // argv[0] is looked up in $PATH
  std::vector<std::string> env;               // "NAME=value", replacing ours
  std::shared_ptr<const lease::Signal> lost;  // fires when `what` is lost
  // When `what` ends at the latest unless renewed, on `clock` (the clock of
  // its leases): moves forward with every renew. Once the registry showed
  // it gone it may read InfinitePast or the moment of the loss (a Lease
  // pulls its expiry back so); then the latest expiry seen before counts.
  std::function<absl::Time()> expiry;
  Clock* clock = nullptr;
  // CMD gets SIGTERM when the expiry is this close, so that it has this
  // long to stop before the SIGKILL at the expiry.
  absl::Duration grace;
  // What RunWhileHeld returns when `what` was lost or in doubt (0-255).
  int exit_code_lost = kExitNotHeld;
};

// Runs `held.argv` (no shell) in a process group of its own, with our
// environment plus `held.env`, our stdin/stdout/stderr and no other
// descriptor, and waits for it. Signals go to the whole group, so they
// reach what CMD started too:
//   - a SIGINT/SIGTERM to leasehold (ctx.interrupted()) is forwarded once;
//   - SIGTERM when `held.lost` fires, or when `held.expiry` is less than
//     `held.grace` away (renews have failed for that long);
//   - SIGKILL at `held.expiry` if CMD still runs, so that CMD is dead by the
//     time another holder can have what it held; after a loss, at the
//     latest `held.grace` after the SIGTERM;
//   - SIGKILL once CMD has exited after such a SIGTERM (nothing it left
//     behind may act for a holder in doubt).
// The deadlines are read on `held.clock`, and each is reported on stderr.
// If leasehold runs in the foreground of a terminal, CMD's group has the
// terminal while it runs. CMD never gets our LEASEHOLD_PASSWORD: it is
// leasehold's, not the job's.
//
// Returns the exit code for leasehold: CMD's exit status (128+N when signal
// N ended it); `held.exit_code_lost` when `held.lost` fired or the expiry
// came within the grace period before CMD ended, whatever its status; 127
// when CMD was not found, 126 when it could not be run.
int RunWhileHeld(Context& ctx, absl::string_view command,
                 const HeldCommand& held);

}  // namespace leasehold::cli

#endif  // LEASEHOLD_TOOLS_CLI_RUN_WHILE_HELD_H_
