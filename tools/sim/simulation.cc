#include "tools/sim/simulation.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace leasehold::sim {
namespace {

constexpr size_t kRecentEvents = 8;

}  // namespace

Simulation::Simulation(registry::KeysApi* keys, SimOptions options)
    : keys_(keys),
      options_(std::move(options)),
      clock_(RealClock()),
      rng_(options_.seed) {
  for (int i = 0; i < options_.machines; ++i) {
    AgentOptions agent;
    agent.id = absl::StrFormat("m%d", i + 1);
    agent.units = options_.units;
    agent.ttl = options_.ttl;
    agent.prefix = options_.prefix;
    agents_.push_back(std::make_unique<Agent>(
        keys_, std::move(agent), &history_,
        [this](const std::string& text) { Event(text); }));
  }
}

Simulation::~Simulation() = default;

void Simulation::Event(const std::string& text) {
  std::lock_guard<std::mutex> lock(events_mu_);
  events_.push_back(absl::StrFormat(
      "%6.2fs %s", absl::ToDoubleSeconds(clock_->Now() - start_), text));
  if (events_.size() > kRecentEvents) events_.pop_front();
}

void Simulation::MaybeInjectFault(absl::Time now) {
  for (auto& agent : agents_) {
    if (agent->state() == "paused" && now >= agent->back_at()) {
      agent->Resume();
      faults_.push_back({now, agent->id(), "return"});
      Event(absl::StrCat(agent->id(), " wakes from its pause"));
    } else if (agent->state() == "crashed" && now >= agent->back_at()) {
      // After the halfway mark restarts run a newer version (an upgrade).
      const bool upgrade = !upgraded_ && now - start_ > options_.duration / 2;
      upgraded_ |= upgrade;
      agent->Start(upgrade ? 2 : agent->version());
      faults_.push_back({now, agent->id(), "return"});
      Event(absl::StrCat(agent->id(), " restarts",
                         upgrade ? " as version 2" : ""));
    }
  }
  // Faults stop a little before the end so every unit can settle.
  if (now - start_ > options_.duration - 3 * options_.ttl) return;
  std::vector<Agent*> up;
  for (auto& agent : agents_) {
    if (agent->up()) up.push_back(agent.get());
  }
  if (up.size() < 2) return;
  Agent* victim =
      up[std::uniform_int_distribution<size_t>(0, up.size() - 1)(rng_)];
  if (options_.crash_every > absl::ZeroDuration() && now >= next_crash_) {
    next_crash_ = now + options_.crash_every;
    faults_.push_back({now, victim->id(), "crash"});
    Event(absl::StrCat(victim->id(), " crashes holding ", victim->units(),
                       " units"));
    victim->Crash(now, now + 2 * options_.ttl);
  } else if (options_.pause_every > absl::ZeroDuration() &&
             now >= next_pause_) {
    next_pause_ = now + options_.pause_every;
    faults_.push_back({now, victim->id(), "pause"});
    Event(absl::StrCat(victim->id(), " pauses for ",
                       absl::FormatDuration(2 * options_.ttl), " holding ",
                       victim->units(), " units"));
    victim->Pause(now, now + 2 * options_.ttl);
  }
}

Snapshot Simulation::TakeSnapshot(absl::Time now) {
  Snapshot snapshot;
  snapshot.elapsed = now - start_;
  int owned = 0;
  for (const auto& agent : agents_) {
    MachineView view{agent->id(),    agent->version(),   agent->state(),
                     agent->units(), agent->renews_ok(), agent->renews_failed(),
                     agent->leader()};
    if (agent->up()) owned += agent->live_units();
    snapshot.machines.push_back(view);
  }
  snapshot.unowned = std::max(0, options_.units - owned);
  std::lock_guard<std::mutex> lock(events_mu_);
  snapshot.recent_events.assign(events_.begin(), events_.end());
  return snapshot;
}

void Simulation::Run(const std::function<void(const Snapshot&)>& on_tick) {
  start_ = clock_->Now();
  next_crash_ = start_ + options_.crash_every;
  next_pause_ = start_ + options_.pause_every;
  for (auto& agent : agents_) agent->Start(1);
  absl::Time next_report = start_;
  for (absl::Time now = start_; now - start_ < options_.duration;
       now = clock_->Now()) {
    MaybeInjectFault(now);
    for (auto& agent : agents_) {
      const int steals = agent->steals();
      agent->Step().IgnoreError();
      if (agent->steals() > steals) {
        faults_.push_back({clock_->Now(), agent->id(), "steal"});
      }
    }
    if (now >= next_report) {
      Snapshot snapshot = TakeSnapshot(now);
      unowned_.emplace_back(snapshot.elapsed, snapshot.unowned);
      on_tick(snapshot);
      next_report = now + absl::Milliseconds(500);
    }
    clock_->SleepFor(options_.tick);
  }
  const Snapshot last = TakeSnapshot(clock_->Now());
  all_owned_at_end_ = last.unowned == 0;
  on_tick(last);
}

Report Simulation::Finish() {
  for (auto& agent : agents_) agent->Shutdown();
  Report report;
  report.end = clock_->Now();
  history_.EndAll(report.end, "end of run");
  report.start = start_;
  report.verdict = history_.Check();
  report.holds = history_.holds();
  report.faults = faults_;
  report.failovers = history_.FailoverLatencies();
  report.unowned = unowned_;
  for (const auto& agent : agents_) {
    report.machines.push_back(agent->id());
    report.renews_ok += agent->renews_ok();
    report.renews_failed += agent->renews_failed();
    report.steals += agent->steals();
  }
  report.deposed_told_after = history_.DeposedNoticeLatencies();
  report.all_units_owned_at_end = all_owned_at_end_;
  return report;
}

}  // namespace leasehold::sim
