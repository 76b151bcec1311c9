// `leasehold agent`: one scheduler agent per process, the machine of
// `leasehold sim` run for real, so that the simulation can span processes
// and hosts on a real etcd.
#include <condition_variable>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "lease/validate.h"
#include "tools/cli/command.h"
#include "tools/sim/agent.h"

namespace leasehold::cli {
namespace {

const CommandSpec kAgent = {
    "agent",
    "--machine ID [--units M] [--ttl DUR] [--version N] [--duration DUR]",
    "Run one scheduler agent until SIGINT/SIGTERM (or --duration): keep a "
    "presence\n"
    "lease, lead the engine when nobody does (steal it, at the index read, "
    "from an\n"
    "older --version), claim units up to a fair share of --units among the "
    "live\n"
    "agents and renew them; on exit release everything and exit 0. Start "
    "several,\n"
    "on one host or many, against one etcd; kill -9 or kill -STOP one and "
    "watch its\n"
    "units fail over (`leasehold lease list`). Prints one line per hold as it "
    "begins\n"
    "(acquired, stole), is renewed (renewed) and ends (released, lost), with "
    "the time\n"
    "in unix nanoseconds; begin and renew lines carry the local expiry "
    "(expiry_ns)\n"
    "until which the agent believes it holds the lease.",
    {
        {"machine", FlagSpec::kValue, "ID", "this agent's machine id"},
        {"units", FlagSpec::kValue, "M",
         "units unit-00… to share among the agents (default 50)"},
        {"ttl", FlagSpec::kValue, "DUR", "lease period (default 10s)"},
        {"version", FlagSpec::kValue, "N",
         "agent version; a newer one steals the engine (default 1)"},
        {"duration", FlagSpec::kValue, "DUR",
         "stop after this long (default: until interrupted)"},
    }};

constexpr absl::Duration kTick = absl::Milliseconds(100);

Record Event(absl::string_view event) {
  Record record;
  record.Add("time_ns", absl::ToUnixNanos(RealClock()->Now()))
      .Add("event", event);
  return record;
}

void PrintHold(Printer& out, const sim::Hold& hold) {
  const bool open = hold.end == absl::InfiniteFuture();
  const bool renewed = open && hold.renewed != absl::InfinitePast();
  Record record;
  record
      .Add("time_ns", absl::ToUnixNanos(!open     ? hold.end
                                        : renewed ? hold.renewed
                                                  : hold.start))
      .Add("event", !open           ? hold.how_ended
                    : renewed       ? "renewed"
                    : hold.by_steal ? "stole"
                                    : "acquired")
      .Add("lease", hold.lease)
      .Add("machine", hold.machine)
      .Add("fence", hold.fence);
  if (open && hold.expiry != absl::InfiniteFuture()) {
    record.Add("expiry_ns", absl::ToUnixNanos(hold.expiry));
  }
  out.Print(record);
}

}  // namespace

int RunAgent(Context& ctx, const std::vector<std::string>& words) {
  int exit_code = kExitOk;
  absl::StatusOr<Args> args = ParseCommand(ctx, kAgent, words, 0, &exit_code);
  if (!args.ok()) return exit_code;
  absl::StatusOr<std::string> machine = args->String("machine");
  absl::StatusOr<uint64_t> units = args->UintOr("units", 50);
  absl::StatusOr<uint64_t> version = args->UintOr("version", 1);
  absl::StatusOr<absl::Duration> ttl =
      args->DurationOr("ttl", absl::Seconds(10));
  absl::StatusOr<absl::Duration> duration =
      args->DurationOr("duration", absl::InfiniteDuration());
  for (const absl::Status& s :
       {machine.status(), units.status(), version.status(), ttl.status(),
        duration.status()}) {
    if (!s.ok()) return ctx.Fail(kAgent.name, kExitUsage, s.message());
  }
  if (absl::Status valid = lease::ValidateName("machine id", *machine);
      !valid.ok()) {
    return ctx.Fail(kAgent.name, kExitUsage, valid.message());
  }
  absl::StatusOr<absl::Duration> period = lease::RoundPeriod(*ttl);
  if (!period.ok()) {
    return ctx.Fail(kAgent.name, kExitUsage,
                    absl::StrCat("--ttl: ", period.status().message()));
  }
  if (*units < 1 || *units > 10000) {
    return ctx.Fail(kAgent.name, kExitUsage,
                    "--units must be between 1 and 10000");
  }
  if (*version < 1 || *version > 1000000) {
    return ctx.Fail(kAgent.name, kExitUsage,
                    "--version must be between 1 and 1000000");
  }
  absl::StatusOr<std::unique_ptr<registry::KeysApi>> keys = ctx.OpenRegistry();
  if (!keys.ok()) return ctx.Fail(kAgent.name, keys.status());

  sim::History history(
      [&ctx](const sim::Hold& hold) { PrintHold(ctx.out(), hold); });
  sim::AgentOptions options;
  options.id = *machine;
  options.units = static_cast<int>(*units);
  options.ttl = *period;
  options.prefix = ctx.global().prefix;
  sim::Agent agent(keys->get(), std::move(options), &history,
                   [&ctx](const std::string& text) {
                     ctx.out().Print(Event("note").Add("text", text));
                   });
  agent.Start(static_cast<int>(*version));

  std::mutex mu;
  std::condition_variable cv;
  CancelToken::Registration on_interrupt = ctx.interrupted().OnCancel([&] {
    std::lock_guard<std::mutex> lock(mu);
    cv.notify_all();
  });
  const absl::Time stop_at = RealClock()->Now() + *duration;
  absl::Status health = absl::OkStatus();
  for (bool first = true;; first = false) {
    absl::Status step = agent.Step();
    if (first && !step.ok() && ExitCodeFor(step) != kExitNotHeld) {
      // Not even one answer: a wrong address or credentials, not an outage.
      agent.Shutdown();
      return ctx.Fail(kAgent.name, step);
    }
    if (step.ok() != health.ok()) {
      Record change = Event(step.ok() ? "registry-back" : "registry-failing");
      if (!step.ok()) change.Add("error", step.ToString());
      ctx.out().Print(change);
    }
    health = step;
    std::unique_lock<std::mutex> lock(mu);
    const absl::Time wake = std::min(stop_at, RealClock()->Now() + kTick);
    cv.wait_until(lock, absl::ToChronoTime(wake),
                  [&] { return ctx.interrupted().cancelled(); });
    if (ctx.interrupted().cancelled() || RealClock()->Now() >= stop_at) break;
  }
  agent.Shutdown();
  ctx.out().Print(Event("stopped")
                      .Add("machine", agent.id())
                      .Add("renews_ok", agent.renews_ok())
                      .Add("renews_failed", agent.renews_failed()));
  return kExitOk;
}

}  // namespace leasehold::cli
