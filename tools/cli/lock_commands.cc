// `leasehold lock`, `elect`, `leader` and `observe`: the lock and election
// layer (lease/mutex.h, lease/rw_mutex.h, lease/election.h) from the
// command line.
#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "lease/election.h"
#include "lease/keeper.h"
#include "lease/mutex.h"
#include "lease/rw_mutex.h"
#include "lease/session.h"
#include "lease/validate.h"
#include "tools/cli/command.h"
#include "tools/cli/run_while_held.h"

namespace leasehold::cli {
namespace {

constexpr absl::Duration kDefaultTtl = absl::Seconds(10);
constexpr absl::Duration kDefaultGrace = absl::Seconds(5);

// The flags of `lock` and `elect`; `held` is what they hold ("the lock",
// "leadership").
std::vector<FlagSpec> HoldFlagSpecs(absl::string_view held) {
  return {
      {"ttl", FlagSpec::kValue, "DUR",
       absl::StrCat("session TTL, whole seconds: how long ", held,
                    " outlives a killed leasehold (default 10s)")},
      {"timeout", FlagSpec::kValue, "DUR",
       "stop waiting after DUR: exit 1 \"not acquired\" (default: wait)"},
      {"grace", FlagSpec::kValue, "DUR",
       "CMD gets SIGTERM when the expiry is this close, SIGKILL at the "
       "expiry; less than the TTL minus the renew interval (a third of the "
       "TTL, plus jitter) (default 5s, at most half the TTL)"},
      {"exit-code-lost", FlagSpec::kValue, "N",
       absl::StrCat("exit with N (0-255) instead of 1 when ", held,
                    " is lost while CMD runs, to tell a loss from CMD's own "
                    "status 1 (default 1)")},
  };
}

std::vector<FlagSpec> WithShared(std::vector<FlagSpec> flags) {
  flags.insert(flags.begin(),
               {"shared", FlagSpec::kSwitch, "",
                "hold NAME shared with other --shared holders, never with an "
                "exclusive one; queued in the same first-come order"});
  return flags;
}

const CommandSpec kLock = {
    "lock",
    "NAME [--shared] [--ttl DUR] [--timeout DUR] [--grace DUR] "
    "[--exit-code-lost N] -- CMD [ARGS...]",
    "Wait for the lock NAME (first come, first served), run CMD while holding\n"
    "it and release it when CMD exits; exit with CMD's status (128+N for\n"
    "signal N), so CMD's own 1, 2 and 3 look like leasehold's codes (1 not\n"
    "held, 2 usage, 3 unavailable). CMD's environment has LEASEHOLD_LOCK_KEY\n"
    "and LEASEHOLD_FENCE (a number that grows with every holder), and not\n"
    "LEASEHOLD_PASSWORD.\n"
    "If the lock is lost, or not renewed until its expiry is less than the\n"
    "grace period away, CMD's process group gets SIGTERM, then SIGKILL at\n"
    "the expiry (after a loss, at most the grace period later), and\n"
    "leasehold exits 1, or --exit-code-lost.\n"
    "SIGINT/SIGTERM to leasehold are passed on to CMD's process group.",
    WithShared(HoldFlagSpecs("the lock")),
    /*runs_command=*/true};
const CommandSpec kElect = {
    "elect",
    "NAME VALUE [--ttl DUR] [--timeout DUR] [--grace DUR] [--exit-code-lost "
    "N] -- CMD [ARGS...]",
    "Campaign in election NAME with VALUE, run CMD once leader and resign\n"
    "leadership when CMD exits; exit with CMD's status (128+N for signal N),\n"
    "so CMD's own 1, 2 and 3 look like leasehold's codes (1 not held,\n"
    "2 usage, 3 unavailable). CMD's environment has LEASEHOLD_ELECTION_KEY\n"
    "and LEASEHOLD_FENCE, and not LEASEHOLD_PASSWORD.\n"
    "If leadership is lost, or not renewed until its expiry is less than the\n"
    "grace period away, CMD's process group gets SIGTERM, then SIGKILL at\n"
    "the expiry (after a loss, at most the grace period later), and\n"
    "leasehold exits 1, or --exit-code-lost.\n"
    "SIGINT/SIGTERM to leasehold are passed on to CMD's process group.",
    HoldFlagSpecs("leadership"),
    /*runs_command=*/true};
const CommandSpec kLeader = {
    "leader",
    "NAME",
    "Print the current leader of election NAME (value, key, fence);\n"
    "exit 1 if there is none.",
    {}};
const CommandSpec kObserve = {
    "observe",
    "NAME",
    "Print the leader of election NAME, then each change of leader in order\n"
    "(leader=false: nobody leads), until interrupted.",
    {}};

Record LeaderRecord(const std::string& name,
                    const std::optional<lease::LeaderInfo>& leader) {
  Record record;
  record.Add("name", name).Add("leader", leader.has_value());
  if (leader.has_value()) {
    record.Add("value", leader->value)
        .Add("key", leader->key)
        .Add("fence", leader->fence);
  }
  return record;
}

// What `lock` and `elect` hold while CMD runs.
struct Holding {
  std::string what;     // `lock "deploy"`
  std::string key_env;  // the variable that names our key
  std::function<absl::Status(absl::Time, const CancelToken*)> acquire;
  std::function<absl::Status()> release;
  std::function<std::string()> key;
  std::function<uint64_t()> fence;
  std::function<std::shared_ptr<const lease::Signal>()> lost;
  std::function<absl::Time()> expiry;
};

// What `lock` holds: a Mutex, or an RWMutex as a reader (--shared).
template <typename Lock, typename Acquire, typename Release>
Holding LockHolding(std::string what, Lock& lock, Acquire acquire,
                    Release release) {
  return {.what = std::move(what),
          .key_env = "LEASEHOLD_LOCK_KEY",
          .acquire = acquire,
          .release = release,
          .key = [&lock] { return lock.key(); },
          .fence = [&lock] { return lock.fence(); },
          .lost = [&lock] { return lock.lost(); },
          .expiry = [&lock] { return lock.expiry(); }};
}

// The flags of `lock` and `elect`.
struct HoldFlags {
  absl::Duration ttl;      // the session's: whole seconds
  absl::Duration timeout;  // infinite: wait
  absl::Duration grace;
  int exit_code_lost;
};

absl::StatusOr<HoldFlags> ParseHoldFlags(const Args& args) {
  absl::StatusOr<absl::Duration> ttl = args.DurationOr("ttl", kDefaultTtl);
  absl::StatusOr<absl::Duration> timeout =
      args.DurationOr("timeout", absl::InfiniteDuration());
  for (const absl::Status& s : {ttl.status(), timeout.status()}) {
    if (!s.ok()) return s;
  }
  absl::StatusOr<absl::Duration> session_ttl = lease::RoundPeriod(*ttl);
  if (!session_ttl.ok()) return session_ttl.status();
  absl::StatusOr<absl::Duration> grace =
      args.DurationOr("grace", std::min(kDefaultGrace, *session_ttl / 2));
  if (!grace.ok()) return grace.status();
  // A healthy lock is renewed at least once per renew interval (a third of
  // the TTL, plus jitter), so its expiry stays at least TTL - interval
  // away; a grace that long would stop CMD while every renew succeeds.
  const lease::KeeperOptions keeper;
  const absl::Duration renew_interval =
      *session_ttl * keeper.renew_fraction * (1 + keeper.jitter);
  if (*grace >= *session_ttl - renew_interval) {
    const absl::Duration ms = absl::Milliseconds(1);
    return absl::InvalidArgumentError(absl::StrCat(
        "flag --grace=", absl::FormatDuration(*grace), " must be less than ",
        absl::FormatDuration(absl::Floor(*session_ttl - renew_interval, ms)),
        ", the TTL minus the renew interval (--ttl=",
        absl::FormatDuration(*session_ttl), " - ",
        absl::FormatDuration(absl::Ceil(renew_interval, ms)),
        "): CMD gets SIGTERM when the expiry is --grace away"));
  }
  absl::StatusOr<uint64_t> exit_code_lost =
      args.UintOr("exit-code-lost", kExitNotHeld);
  if (!exit_code_lost.ok()) return exit_code_lost.status();
  if (*exit_code_lost > 255) {
    return absl::InvalidArgumentError(
        absl::StrCat("flag --exit-code-lost=", *exit_code_lost,
                     " is not an exit status (0-255)"));
  }
  return HoldFlags{*session_ttl, *timeout, *grace,
                   static_cast<int>(*exit_code_lost)};
}

// Waits for `holding`, runs CMD while it is held, releases it.
int HoldAndRun(Context& ctx, const CommandSpec& spec, const Args& args,
               const HoldFlags& flags, lease::Session& session,
               const Holding& holding) {
  const absl::Time deadline = session.clock()->Now() + flags.timeout;
  absl::Status acquired = holding.acquire(deadline, &ctx.interrupted());
  if (absl::IsDeadlineExceeded(acquired) &&
      flags.timeout != absl::InfiniteDuration()) {
    return ctx.Fail(spec.name, kExitNotHeld,
                    absl::StrCat(holding.what, ": not acquired within ",
                                 absl::FormatDuration(flags.timeout)));
  }
  if (absl::IsCancelled(acquired)) {
    return ctx.Fail(spec.name, kExitNotHeld,
                    absl::StrCat(holding.what, ": not acquired (interrupted)"));
  }
  if (!acquired.ok()) return ctx.Fail(spec.name, acquired);

  const HeldCommand command{
      .what = holding.what,
      .argv = args.command(),
      .env = {absl::StrCat(holding.key_env, "=", holding.key()),
              absl::StrCat("LEASEHOLD_FENCE=", holding.fence())},
      .lost = holding.lost(),
      .expiry = holding.expiry,
      .clock = session.clock(),
      .grace = flags.grace,
      .exit_code_lost = flags.exit_code_lost,
  };
  const int exit_code = RunWhileHeld(ctx, spec.name, command);
  if (absl::Status released = holding.release(); !released.ok()) {
    ctx.err() << "leasehold " << spec.name << ": " << holding.what
              << ": not released (" << released.message()
              << "); it expires at its TTL" << std::endl;
  }
  return exit_code;
}

int RunHolding(Context& ctx, const CommandSpec& spec,
               const std::vector<std::string>& words) {
  const bool lock = &spec == &kLock;
  int exit_code = kExitOk;
  absl::StatusOr<Args> args =
      ParseCommand(ctx, spec, words, lock ? 1 : 2, &exit_code);
  if (!args.ok()) return exit_code;
  const std::string& name = args->positional()[0];
  absl::StatusOr<HoldFlags> flags = ParseHoldFlags(*args);
  absl::Status valid = flags.status();
  if (valid.ok())
    valid = lease::ValidateName(lock ? "lock name" : "election name", name);
  if (!valid.ok()) return ctx.Fail(spec.name, kExitUsage, valid.message());

  absl::StatusOr<std::unique_ptr<registry::KeysApi>> keys = ctx.OpenRegistry();
  if (!keys.ok()) return ctx.Fail(spec.name, keys.status());
  absl::StatusOr<std::unique_ptr<lease::Session>> session =
      lease::Session::Create(
          keys->get(), {.ttl = flags->ttl, .prefix = ctx.global().prefix});
  if (!session.ok()) return ctx.Fail(spec.name, session.status());

  if (lock && args->Has("shared")) {
    lease::RWMutex shared(session->get(), name);
    return HoldAndRun(ctx, spec, *args, *flags, **session,
                      LockHolding(
                          absl::StrCat("shared lock \"", name, "\""), shared,
                          [&](absl::Time deadline, const CancelToken* cancel) {
                            return shared.RLock(deadline, cancel);
                          },
                          [&] { return shared.RUnlock(); }));
  }
  if (lock) {
    lease::Mutex mutex(session->get(), name);
    return HoldAndRun(ctx, spec, *args, *flags, **session,
                      LockHolding(
                          absl::StrCat("lock \"", name, "\""), mutex,
                          [&](absl::Time deadline, const CancelToken* cancel) {
                            return mutex.Lock(deadline, cancel);
                          },
                          [&] { return mutex.Unlock(); }));
  }
  const std::string& value = args->positional()[1];
  lease::Election election(session->get(), name);
  return HoldAndRun(
      ctx, spec, *args, *flags, **session,
      {.what = absl::StrCat("leadership of election \"", name, "\""),
       .key_env = "LEASEHOLD_ELECTION_KEY",
       .acquire =
           [&](absl::Time deadline, const CancelToken* cancel) {
             return election.Campaign(value, deadline, cancel);
           },
       .release = [&] { return election.Resign(); },
       .key = [&] { return election.key(); },
       .fence = [&] { return election.fence(); },
       .lost = [&] { return election.revoked(); },
       .expiry = [&] { return election.expiry(); }});
}

int RunReading(Context& ctx, const CommandSpec& spec,
               const std::vector<std::string>& words) {
  int exit_code = kExitOk;
  absl::StatusOr<Args> args = ParseCommand(ctx, spec, words, 1, &exit_code);
  if (!args.ok()) return exit_code;
  const std::string& name = args->positional()[0];
  if (absl::Status valid = lease::ValidateName("election name", name);
      !valid.ok()) {
    return ctx.Fail(spec.name, kExitUsage, valid.message());
  }
  absl::StatusOr<std::unique_ptr<registry::KeysApi>> keys = ctx.OpenRegistry();
  if (!keys.ok()) return ctx.Fail(spec.name, keys.status());

  if (&spec == &kLeader) {
    absl::StatusOr<std::optional<lease::LeaderInfo>> leader =
        lease::ReadLeader(keys->get(), ctx.global().prefix, name);
    if (!leader.ok()) return ctx.Fail(spec.name, leader.status());
    if (!leader->has_value()) {
      return ctx.Fail(spec.name, kExitNotHeld,
                      absl::StrCat("election \"", name, "\": no leader"));
    }
    ctx.out().Print(LeaderRecord(name, *leader));
    return kExitOk;
  }
  lease::LeaderObserver observer(keys->get(), ctx.global().prefix, name);
  for (;;) {
    absl::StatusOr<std::optional<lease::LeaderInfo>> leader =
        observer.Next(absl::InfiniteFuture(), &ctx.interrupted());
    if (absl::IsCancelled(leader.status())) return kExitOk;
    if (!leader.ok()) return ctx.Fail(spec.name, leader.status());
    ctx.out().Print(LeaderRecord(name, *leader));
  }
}

}  // namespace

int RunLock(Context& ctx, const std::vector<std::string>& words) {
  return RunHolding(ctx, kLock, words);
}

int RunElect(Context& ctx, const std::vector<std::string>& words) {
  return RunHolding(ctx, kElect, words);
}

int RunLeader(Context& ctx, const std::vector<std::string>& words) {
  return RunReading(ctx, kLeader, words);
}

int RunObserve(Context& ctx, const std::vector<std::string>& words) {
  return RunReading(ctx, kObserve, words);
}

}  // namespace leasehold::cli
