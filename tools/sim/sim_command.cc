// `leasehold sim`: the scheduler demo — flags, the live table, the summary
// and the ownership timeline (SVG).
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tools/cli/command.h"
#include "tools/sim/render.h"
#include "tools/sim/simulation.h"

namespace leasehold::cli {
namespace {

using sim::Report;
using sim::SimOptions;
using sim::Snapshot;

const CommandSpec kSim = {
    "sim",
    "[--machines N] [--units M] [--ttl DUR] [--duration DUR] [--crash-every "
    "DUR]\n"
    "      [--pause-every DUR] [--partition-every DUR] [--no-faults] [--seed "
    "S]\n"
    "      [--svg FILE]",
    "Simulate a machine scheduler: agents own their fair share of units "
    "through\n"
    "leases and renew them, one agent leads as the engine; agents crash, "
    "pause,\n"
    "lose their link and come back, units fail over and rebalance;\n"
    "a newer-version engine steals leadership by index. Ends with a safety "
    "verdict:\n"
    "exit 0 only if no unit ever had two owners at once, fences strictly "
    "increased,\n"
    "and every unit ended owned. Runs on the embedded mem: registry unless "
    "--registry.",
    {
        {"machines", FlagSpec::kValue, "N", "agents (default 5)"},
        {"units", FlagSpec::kValue, "M", "units to own (default 50)"},
        {"ttl", FlagSpec::kValue, "DUR", "lease period (default 2s)"},
        {"duration", FlagSpec::kValue, "DUR", "how long to run (default 20s)"},
        {"crash-every", FlagSpec::kValue, "DUR",
         "crash an agent this often (default 2.5×TTL)"},
        {"pause-every", FlagSpec::kValue, "DUR",
         "pause an agent for 2×TTL this often (default 3.5×TTL)"},
        {"partition-every", FlagSpec::kValue, "DUR",
         "hang an agent's link for 2×TTL this often (default 4.5×TTL)"},
        {"no-faults", FlagSpec::kSwitch, "",
         "neither crash, pause nor partition agents"},
        {"seed", FlagSpec::kValue, "S", "random seed (default 1)"},
        {"svg", FlagSpec::kValue, "FILE", "write an ownership timeline"},
    }};

std::string Percentile(std::vector<absl::Duration> values, double p) {
  if (values.empty()) return "-";
  std::sort(values.begin(), values.end());
  const size_t i =
      std::min(values.size() - 1, static_cast<size_t>(p * values.size()));
  return absl::StrFormat("%.0fms", absl::ToDoubleMilliseconds(values[i]));
}

// "4.2s" or "-" (never balanced before the next turn).
std::string Seconds(std::optional<absl::Duration> d) {
  return d.has_value() ? absl::StrFormat("%.1fs", absl::ToDoubleSeconds(*d))
                       : "-";
}

// How long the run took to balance: at its start, and after each fault or
// return (those that balanced before the next one).
struct Balance {
  std::optional<absl::Duration> start;
  std::vector<absl::Duration> after_turns;
  size_t turns = 0;
  // Each phase: "start 3.9s", "m12 crash@25.0s 9.5s", … ("-": the next
  // turn came first).
  std::string by_phase;
};

Balance BalanceOf(const Report& report) {
  Balance balance;
  for (const sim::Phase& phase : report.phases) {
    absl::StrAppend(&balance.by_phase, balance.by_phase.empty() ? "" : ", ",
                    phase.what);
    if (phase.what != "start") {
      absl::StrAppend(&balance.by_phase,
                      absl::StrFormat("@%.1fs", absl::ToDoubleSeconds(
                                                    phase.at - report.start)));
    }
    absl::StrAppend(&balance.by_phase, " ", Seconds(phase.balanced_after));
    if (phase.what == "start") {
      balance.start = phase.balanced_after;
      continue;
    }
    ++balance.turns;
    if (phase.balanced_after.has_value()) {
      balance.after_turns.push_back(*phase.balanced_after);
    }
  }
  return balance;
}

int PrintSummary(Context& ctx, const Report& report) {
  const double rate = report.renews_ok + report.renews_failed == 0
                          ? 1.0
                          : static_cast<double>(report.renews_ok) /
                                (report.renews_ok + report.renews_failed);
  double unowned_avg = 0;
  int unowned_max = 0;
  for (const auto& [at, n] : report.unowned) {
    unowned_avg += n;
    unowned_max = std::max(unowned_max, n);
  }
  if (!report.unowned.empty()) unowned_avg /= report.unowned.size();
  const bool ok = report.verdict.safe && report.all_units_owned_at_end;
  const Balance balance = BalanceOf(report);
  const uint64_t renews = report.renews_ok + report.renews_failed;
  const double cpu_per_renew_us =
      renews == 0 ? 0 : absl::ToDoubleMicroseconds(report.cpu) / renews;
  const double cores =
      absl::ToDoubleSeconds(report.cpu) /
      std::max(1e-9, absl::ToDoubleSeconds(report.end - report.start));
  std::vector<absl::Duration> told_late;
  for (absl::Duration ahead : report.told_ahead_of_next_owner) {
    if (ahead < absl::ZeroDuration()) told_late.push_back(-ahead);
  }
  Record summary;
  summary.Add("failovers", static_cast<uint64_t>(report.failovers.size()))
      .Add("failover_p50", Percentile(report.failovers, 0.5))
      .Add("failover_p99", Percentile(report.failovers, 0.99))
      .Add("failover_max", Percentile(report.failovers, 1.0))
      .Add("unowned_avg", unowned_avg)
      .Add("unowned_max", unowned_max)
      .Add("renews_ok", report.renews_ok)
      .Add("renews_failed", report.renews_failed)
      .Add("renew_success", rate)
      .Add("engine_steals", report.steals)
      .Add("deposed_leader_told_after_max",
           Percentile(report.deposed_told_after, 1.0))
      .Add("balanced_after_start", Seconds(balance.start))
      .Add("balanced_after_fault_max",
           balance.after_turns.empty()
               ? "-"
               : Seconds(*std::max_element(balance.after_turns.begin(),
                                           balance.after_turns.end())))
      .Add("faults_balanced", static_cast<uint64_t>(balance.after_turns.size()))
      .Add("faults", static_cast<uint64_t>(balance.turns))
      .Add("balanced_by_phase", balance.by_phase)
      .Add("cpu_seconds", absl::ToDoubleSeconds(report.cpu))
      .Add("cpu_cores", cores)
      .Add("cpu_per_renew_us", cpu_per_renew_us)
      .Add("losses_told_while_cut_off",
           static_cast<uint64_t>(report.told_ahead_of_next_owner.size()))
      .Add("told_after_next_owner", static_cast<uint64_t>(told_late.size()))
      .Add("holds", static_cast<uint64_t>(report.holds.size()))
      .Add("all_units_owned_at_end", report.all_units_owned_at_end)
      .Add("verdict", report.verdict.safe ? "SAFE" : "UNSAFE");
  if (ctx.out().json()) {
    ctx.out().Print(summary);
  } else {
    ctx.out().Note(absl::StrFormat(
        "\nsummary\n"
        "  failovers:            %d (latency p50 %s, p99 %s, max %s after the "
        "owner failed)\n"
        "  units unowned:        %.1f on average, %d at most\n"
        "  renews:               %d ok, %d failed (%.2f%% success)\n"
        "  engine steals:        %d (deposed leader told within %s)\n"
        "  time to balance:      %s from the start; after faults and "
        "returns p50 %s, max %s (%d of %d balanced before the next)\n"
        "    by phase:           %s\n"
        "  cut-off holders:      %d losses told by the holder's own clock "
        "while its link hung, %d of them after the next owner took over "
        "(closest: %s ahead)\n"
        "  process CPU:          %.1fs (%.2f of a core), %.0fµs per renew\n"
        "  every unit owned at the end: %s\n",
        report.failovers.size(), Percentile(report.failovers, 0.5),
        Percentile(report.failovers, 0.99), Percentile(report.failovers, 1.0),
        unowned_avg, unowned_max, report.renews_ok, report.renews_failed,
        100 * rate, report.steals, Percentile(report.deposed_told_after, 1.0),
        Seconds(balance.start), Percentile(balance.after_turns, 0.5),
        Percentile(balance.after_turns, 1.0), balance.after_turns.size(),
        balance.turns, balance.by_phase, report.told_ahead_of_next_owner.size(),
        told_late.size(),
        report.told_ahead_of_next_owner.empty()
            ? "-"
            : Percentile(report.told_ahead_of_next_owner, 0.0),
        absl::ToDoubleSeconds(report.cpu), cores, cpu_per_renew_us,
        report.all_units_owned_at_end ? "yes" : "NO"));
    ctx.out().Note(absl::StrFormat(
        "SAFETY VERDICT: %s — %d holds checked: %s",
        report.verdict.safe ? "SAFE" : "UNSAFE", report.holds.size(),
        report.verdict.safe
            ? "no unit ever had two owners at once; fences strictly increased"
            : "violations below"));
  }
  for (const std::string& v : report.verdict.violations)
    ctx.err() << "  violation: " << v << "\n";
  return ok ? kExitOk : kExitNotHeld;
}

}  // namespace

int RunSim(Context& ctx, const std::vector<std::string>& words) {
  int exit_code = kExitOk;
  absl::StatusOr<Args> args = ParseCommand(ctx, kSim, words, 0, &exit_code);
  if (!args.ok()) return exit_code;
  SimOptions options;
  absl::StatusOr<uint64_t> machines =
      args->UintOr("machines", options.machines);
  absl::StatusOr<uint64_t> units = args->UintOr("units", options.units);
  absl::StatusOr<uint64_t> seed = args->UintOr("seed", options.seed);
  absl::StatusOr<absl::Duration> ttl = args->DurationOr("ttl", options.ttl);
  if (!ttl.ok()) return ctx.Fail(kSim.name, kExitUsage, ttl.status().message());
  absl::StatusOr<absl::Duration> duration =
      args->DurationOr("duration", options.duration);
  // Faults come at the same pace in TTLs whatever the TTL, so that each
  // one's failover can settle before the next.
  absl::StatusOr<absl::Duration> crash =
      args->DurationOr("crash-every", *ttl * 2.5);
  absl::StatusOr<absl::Duration> pause =
      args->DurationOr("pause-every", *ttl * 3.5);
  absl::StatusOr<absl::Duration> partition =
      args->DurationOr("partition-every", *ttl * 4.5);
  for (const absl::Status& s :
       {machines.status(), units.status(), seed.status(), duration.status(),
        crash.status(), pause.status(), partition.status()}) {
    if (!s.ok()) return ctx.Fail(kSim.name, kExitUsage, s.message());
  }
  if (*machines < 1 || *machines > 100) {
    return ctx.Fail(kSim.name, kExitUsage,
                    "--machines must be between 1 and 100");
  }
  if (*units < 1 || *units > 10000) {
    return ctx.Fail(kSim.name, kExitUsage,
                    "--units must be between 1 and 10000");
  }
  options.machines = static_cast<int>(*machines);
  options.units = static_cast<int>(*units);
  options.seed = *seed;
  options.ttl = *ttl;
  options.duration = *duration;
  options.crash_every = args->Has("no-faults") ? absl::ZeroDuration() : *crash;
  options.pause_every = args->Has("no-faults") ? absl::ZeroDuration() : *pause;
  options.partition_every =
      args->Has("no-faults") ? absl::ZeroDuration() : *partition;
  if (options.duration < 4 * options.ttl) {
    return ctx.Fail(
        kSim.name, kExitUsage,
        "--duration must be at least 4 × --ttl, so that failovers can settle");
  }

  // Opened before the run, so that a path that cannot be written fails now
  // rather than after it.
  std::ofstream svg;
  std::string svg_path;
  if (args->Has("svg")) {
    svg_path = *args->String("svg");
    svg.open(svg_path);
    if (!svg.is_open()) {
      return ctx.Fail(
          kSim.name, kExitUsage,
          absl::StrCat("--svg ", svg_path,
                       ": cannot open for writing: ", std::strerror(errno)));
    }
  }
  absl::StatusOr<std::unique_ptr<registry::KeysApi>> keys =
      ctx.OpenRegistry("mem:");
  if (!keys.ok()) return ctx.Fail(kSim.name, keys.status());
  // A fresh prefix per run: old runs' keys on a shared etcd do not interfere.
  options.prefix = absl::StrCat(ctx.global().prefix, "sim-",
                                std::random_device{}() % 1000000, "/");
  const bool tty = !ctx.out().json() && isatty(STDOUT_FILENO) == 1;
  ctx.out().Note(absl::StrFormat(
      "leasehold sim: %d machines, %d units, TTL %s, %s, prefix %s",
      options.machines, options.units, absl::FormatDuration(options.ttl),
      absl::FormatDuration(options.duration), options.prefix));
  sim::Simulation simulation(keys->get(), options);
  sim::LiveTable table(tty);
  simulation.Run([&](const Snapshot& snapshot) {
    if (!ctx.out().json()) table.Draw(std::cout, snapshot);
  });
  const Report report = simulation.Finish();
  if (svg.is_open()) {
    sim::WriteSvg(svg, report);
    svg.close();
    if (svg.fail()) {
      return ctx.Fail(kSim.name, absl::InternalError(absl::StrCat(
                                     "--svg ", svg_path, ": write failed")));
    }
    ctx.out().Note(absl::StrCat("ownership timeline written to ", svg_path));
  }
  return PrintSummary(ctx, report);
}

}  // namespace leasehold::cli
