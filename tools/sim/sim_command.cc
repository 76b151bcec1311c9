// `leasehold sim`: the scheduler demo — flags, the live table, the summary
// and the ownership timeline (SVG).
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
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
    "      [--pause-every DUR] [--seed S] [--svg FILE]",
    "Simulate a machine scheduler: agents own units through leases and renew "
    "them,\n"
    "one agent leads as the engine, agents crash, pause and restart, units "
    "fail over;\n"
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
         "crash an agent this often (default 5s)"},
        {"pause-every", FlagSpec::kValue, "DUR",
         "pause an agent for 2×TTL this often (default 7s)"},
        {"no-faults", FlagSpec::kSwitch, "", "neither crash nor pause agents"},
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
        "  every unit owned at the end: %s\n",
        report.failovers.size(), Percentile(report.failovers, 0.5),
        Percentile(report.failovers, 0.99), Percentile(report.failovers, 1.0),
        unowned_avg, unowned_max, report.renews_ok, report.renews_failed,
        100 * rate, report.steals, Percentile(report.deposed_told_after, 1.0),
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
  absl::StatusOr<absl::Duration> duration =
      args->DurationOr("duration", options.duration);
  absl::StatusOr<absl::Duration> crash =
      args->DurationOr("crash-every", options.crash_every);
  absl::StatusOr<absl::Duration> pause =
      args->DurationOr("pause-every", options.pause_every);
  for (const absl::Status& s :
       {machines.status(), units.status(), seed.status(), ttl.status(),
        duration.status(), crash.status(), pause.status()}) {
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
