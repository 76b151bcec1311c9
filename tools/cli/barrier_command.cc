// `leasehold barrier hold|release|wait|enter`: the barriers of
// lease/barrier.h from the command line.
//
// `hold` holds a Barrier until `release` (or until its --ttl passes, so a
// coordinator that dies cannot block the waiters forever) and returns at
// once: the hold belongs to the barrier, not to the process. `enter` is a
// DoubleBarrier's whole round, enter, CMD, leave, in one process, because
// a party's key lives with its session: a party that dies is out of the
// barrier at its TTL and the others go on without it.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lease/barrier.h"
#include "lease/session.h"
#include "lease/signal.h"
#include "lease/validate.h"
#include "registry/clock.h"
#include "registry/errors.h"
#include "tools/cli/command.h"
#include "tools/cli/run_while_held.h"

namespace leasehold::cli {
namespace {

constexpr absl::Duration kDefaultTtl = absl::Seconds(10);

const FlagSpec kTimeout = {"timeout", FlagSpec::kValue, "DUR",
                           "stop waiting after DUR: exit 1 (default: wait)"};

const CommandSpec kHold = {
    "barrier hold",
    "NAME [--ttl DUR]",
    "Hold barrier NAME, so that `barrier wait NAME` blocks, until `barrier\n"
    "release NAME` (or until the TTL passes); return at once. Exit 1 if it\n"
    "is held already.",
    {{"ttl", FlagSpec::kValue, "DUR",
      "release by itself after DUR, whole seconds (default: held until "
      "released)"}}};
const CommandSpec kRelease = {
    "barrier release",
    "NAME",
    "Release barrier NAME, whoever holds it: every waiter goes on. Exit 1\n"
    "if it is not held.",
    {}};
const CommandSpec kWait = {"barrier wait",
                           "NAME [--timeout DUR]",
                           "Wait until barrier NAME is not held (at once if "
                           "it is not).",
                           {kTimeout}};
const CommandSpec kEnter = {
    "barrier enter",
    "NAME --count N [--ttl DUR] [--timeout DUR] -- CMD [ARGS...]",
    "Double barrier: wait until N processes have entered NAME, run CMD, then\n"
    "wait until all N have left (finished their CMD); exit with CMD's status.\n"
    "A process that dies is out of the barrier once its TTL passes. CMD's\n"
    "environment has LEASEHOLD_BARRIER_KEY. Exit 1 if N processes are in\n"
    "already, or if --timeout passes before all N have entered.",
    {{"count", FlagSpec::kValue, "N", "how many processes meet (at least 1)"},
     {"ttl", FlagSpec::kValue, "DUR",
      "how long the barrier waits for a process that died, whole seconds "
      "(default 10s)"},
     kTimeout},
    /*runs_command=*/true};
const std::vector<const CommandSpec*> kCommands = {&kHold, &kRelease, &kWait,
                                                   &kEnter};

int Held(Context& ctx, const CommandSpec& spec, const std::string& name,
         const absl::StatusOr<bool>& done, const char* field,
         const char* otherwise) {
  if (!done.ok()) return ctx.Fail(spec.name, done.status());
  if (!*done) {
    return ctx.Fail(spec.name, kExitNotHeld,
                    absl::StrCat("barrier \"", name, "\": ", otherwise));
  }
  Record record;
  ctx.out().Print(record.Add("name", name).Add(field, true));
  return kExitOk;
}

int Enter(Context& ctx, const Args& args, registry::KeysApi* keys,
          const std::string& name, size_t count, absl::Duration ttl,
          absl::Duration timeout) {
  absl::StatusOr<std::unique_ptr<lease::Session>> session =
      lease::Session::Create(keys, {.ttl = ttl, .prefix = ctx.global().prefix});
  if (!session.ok()) return ctx.Fail(kEnter.name, session.status());
  lease::DoubleBarrier barrier(session->get(), name, count);
  const std::string what = absl::StrCat("double barrier \"", name, "\"");
  absl::Status entered =
      barrier.Enter((*session)->clock()->Now() + timeout, &ctx.interrupted());
  if (absl::IsDeadlineExceeded(entered) &&
      timeout != absl::InfiniteDuration()) {
    return ctx.Fail(kEnter.name, kExitNotHeld,
                    absl::StrCat(what, ": not all ", count, " entered within ",
                                 absl::FormatDuration(timeout)));
  }
  if (absl::IsCancelled(entered)) {
    return ctx.Fail(kEnter.name, kExitNotHeld,
                    absl::StrCat(what, ": not entered (interrupted)"));
  }
  if (absl::IsResourceExhausted(entered)) {
    return ctx.Fail(kEnter.name, kExitNotHeld, entered.message());
  }
  if (!entered.ok()) return ctx.Fail(kEnter.name, entered);

  // CMD runs whatever becomes of our key: a barrier orders, it does not
  // exclude, so there is nothing to stop CMD for.
  const HeldCommand command{
      .what = what,
      .argv = args.command(),
      .env = {absl::StrCat("LEASEHOLD_BARRIER_KEY=", barrier.key())},
      .lost = std::make_shared<lease::Signal>((*session)->clock()),
      .expiry = [] { return absl::InfiniteFuture(); },
      .clock = (*session)->clock(),
      .grace = absl::ZeroDuration(),
  };
  const int exit_code = RunWhileHeld(ctx, kEnter.name, command);
  absl::Status left = barrier.Leave(absl::InfiniteFuture(), &ctx.interrupted());
  if (!left.ok()) {
    ctx.err() << "leasehold " << kEnter.name << ": " << what << ": not left ("
              << left.message() << ")" << std::endl;
    return exit_code != kExitOk ? exit_code : kExitNotHeld;
  }
  return exit_code;
}

int Run(Context& ctx, const CommandSpec& spec,
        const std::vector<std::string>& words) {
  int exit_code = kExitOk;
  absl::StatusOr<Args> args = ParseCommand(ctx, spec, words, 1, &exit_code);
  if (!args.ok()) return exit_code;
  const std::string& name = args->positional()[0];
  absl::Status valid = lease::ValidateName(
      &spec == &kEnter ? "double barrier name" : "barrier name", name);
  absl::StatusOr<absl::Duration> timeout =
      args->DurationOr("timeout", absl::InfiniteDuration());
  if (valid.ok()) valid = timeout.status();
  absl::StatusOr<absl::Duration> ttl = absl::InfiniteDuration();
  if (valid.ok() && (args->Has("ttl") || &spec == &kEnter)) {
    ttl = args->Duration("ttl");
    if (!args->Has("ttl")) ttl = kDefaultTtl;
    if (ttl.ok()) ttl = lease::RoundPeriod(*ttl);
    if (!ttl.ok()) valid = registry::WithContext(ttl.status(), "flag --ttl");
  }
  absl::StatusOr<uint64_t> count = uint64_t{0};
  if (valid.ok() && &spec == &kEnter) {
    count = args->Uint("count");
    valid = count.status();
    if (valid.ok() && *count == 0) {
      valid = absl::InvalidArgumentError("flag --count=0: must be at least 1");
    }
  }
  if (!valid.ok()) return ctx.Fail(spec.name, kExitUsage, valid.message());

  absl::StatusOr<std::unique_ptr<registry::KeysApi>> keys = ctx.OpenRegistry();
  if (!keys.ok()) return ctx.Fail(spec.name, keys.status());
  lease::Barrier barrier(keys->get(), ctx.global().prefix, name);
  if (&spec == &kHold) {
    return Held(ctx, spec, name,
                barrier.Hold("held by leasehold barrier hold", *ttl), "held",
                "held already");
  }
  if (&spec == &kRelease) {
    return Held(ctx, spec, name, barrier.Release(), "released", "not held");
  }
  if (&spec == &kWait) {
    absl::Status waited =
        barrier.Wait(RealClock()->Now() + *timeout, &ctx.interrupted());
    if (absl::IsDeadlineExceeded(waited) &&
        *timeout != absl::InfiniteDuration()) {
      return ctx.Fail(spec.name, kExitNotHeld,
                      absl::StrCat("barrier \"", name, "\": still held after ",
                                   absl::FormatDuration(*timeout)));
    }
    if (absl::IsCancelled(waited)) {
      return ctx.Fail(
          spec.name, kExitNotHeld,
          absl::StrCat("barrier \"", name, "\": still held (interrupted)"));
    }
    if (!waited.ok()) return ctx.Fail(spec.name, waited);
    Record record;
    ctx.out().Print(record.Add("name", name).Add("held", false));
    return kExitOk;
  }
  return Enter(ctx, *args, keys->get(), name, *count, *ttl, *timeout);
}

}  // namespace

int RunBarrier(Context& ctx, const std::vector<std::string>& words) {
  return RunSubcommand(ctx, "barrier", kCommands, words, Run);
}

}  // namespace leasehold::cli
