#include "tools/sim/simulation.h"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace leasehold::sim {
namespace {

constexpr size_t kRecentEvents = 8;

// User plus system CPU time of the whole process so far.
absl::Duration ProcessCpu() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return absl::DurationFromTimeval(usage.ru_utime) +
         absl::DurationFromTimeval(usage.ru_stime);
}

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
    auto machine = std::make_unique<Machine>();
    machine->agent = std::make_unique<Agent>(
        keys_, std::move(agent), &history_,
        [this](const std::string& text) { Event(text); });
    machines_.push_back(std::move(machine));
  }
}

Simulation::~Simulation() { StopLoops(); }

void Simulation::Event(const std::string& text) {
  std::lock_guard<std::mutex> lock(events_mu_);
  events_.push_back(absl::StrFormat(
      "%6.2fs %s", absl::ToDoubleSeconds(clock_->Now() - start_), text));
  if (events_.size() > kRecentEvents) events_.pop_front();
}

void Simulation::Record(absl::Time at, const Agent& agent,
                        const std::string& kind) {
  {
    std::lock_guard<std::mutex> lock(faults_mu_);
    faults_.push_back({at, agent.id(), kind});
  }
  if (kind == "steal") return;  // the engine's business, not the balance's
  phases_.push_back({at, absl::StrCat(agent.id(), " ", kind), std::nullopt});
}

void Simulation::Loop(Machine& machine) {
  std::unique_lock<std::mutex> lock(machine.mu);
  while (!stopping_) {
    const int steals = machine.agent->steals();
    machine.agent->Step().IgnoreError();
    if (machine.agent->steals() > steals) {
      std::lock_guard<std::mutex> faults(faults_mu_);
      faults_.push_back({clock_->Now(), machine.agent->id(), "steal"});
    }
    const absl::Time wake = clock_->Now() + options_.tick;
    while (!stopping_ && clock_->WaitUntil(machine.cv, lock, wake)) {
    }
  }
}

Simulation::Machine* Simulation::PickVictim() {
  std::vector<Machine*> up;
  std::vector<double> weights;
  for (auto& machine : machines_) {
    if (!machine->agent->up()) continue;
    up.push_back(machine.get());
    weights.push_back(machine->agent->units());
  }
  if (up.size() < 2) return nullptr;
  // Faults hit what machines own: a machine that owns nothing tests
  // nothing. Uniform only while nobody owns anything.
  if (std::all_of(weights.begin(), weights.end(),
                  [](double w) { return w == 0; })) {
    std::fill(weights.begin(), weights.end(), 1.0);
  }
  return up[std::discrete_distribution<size_t>(weights.begin(),
                                               weights.end())(rng_)];
}

void Simulation::MaybeInjectFault(absl::Time now) {
  for (auto& machine : machines_) {
    Agent& agent = *machine->agent;
    if (now < agent.back_at()) continue;
    if (agent.state() == Agent::State::kPaused ||
        agent.state() == Agent::State::kPartitioned) {
      Event(absl::StrCat(agent.id(), agent.state() == Agent::State::kPaused
                                         ? " wakes from its pause"
                                         : "'s link is back"));
      agent.Resume();
      Record(now, agent, "return");
    } else if (agent.state() == Agent::State::kCrashed) {
      // After the halfway mark restarts run a newer version (an upgrade).
      const bool upgrade = !upgraded_ && now - start_ > options_.duration / 2;
      upgraded_ |= upgrade;
      std::lock_guard<std::mutex> lock(machine->mu);
      agent.Start(upgrade ? 2 : agent.version());
      Record(now, agent, "return");
      Event(absl::StrCat(agent.id(), " restarts",
                         upgrade ? " as version 2" : ""));
    }
  }
  // Faults stop a little before the end so every unit can settle.
  if (now - start_ > options_.duration - 3 * options_.ttl) return;
  const auto due = [now](absl::Duration every, absl::Time& next) {
    if (every <= absl::ZeroDuration() || now < next) return false;
    next = now + every;
    return true;
  };
  const char* kind = due(options_.crash_every, next_crash_)   ? "crash"
                     : due(options_.pause_every, next_pause_) ? "pause"
                     : due(options_.partition_every, next_partition_)
                         ? "partition"
                         : nullptr;
  if (kind == nullptr) return;
  Machine* victim = PickVictim();
  if (victim == nullptr) return;
  Agent& agent = *victim->agent;
  const absl::Time back = now + 2 * options_.ttl;
  const int held = agent.units();
  std::lock_guard<std::mutex> lock(victim->mu);
  Record(now, agent, kind);
  if (kind == std::string("crash")) {
    Event(absl::StrCat(agent.id(), " crashes holding ", held, " units"));
    agent.Crash(now, back);
  } else if (kind == std::string("pause")) {
    Event(absl::StrCat(agent.id(), " pauses for ",
                       absl::FormatDuration(back - now), " holding ", held,
                       " units"));
    agent.Pause(now, back);
  } else {
    Event(absl::StrCat(agent.id(), "'s link hangs for ",
                       absl::FormatDuration(back - now), " holding ", held,
                       " units"));
    agent.Partition(now, back);
  }
}

bool Simulation::Balanced() const {
  int up = 0;
  int owned = 0;
  for (const auto& machine : machines_) {
    if (!machine->agent->up()) continue;
    ++up;
    owned += machine->agent->live_units();
  }
  if (up == 0 || owned != options_.units) return false;
  const double share = static_cast<double>(options_.units) / up;
  return std::all_of(machines_.begin(), machines_.end(), [&](const auto& m) {
    return !m->agent->up() || std::abs(m->agent->live_units() - share) <= 1.0;
  });
}

Snapshot Simulation::TakeSnapshot(absl::Time now) {
  Snapshot snapshot;
  snapshot.elapsed = now - start_;
  int owned = 0;
  for (const auto& machine : machines_) {
    const Agent& agent = *machine->agent;
    MachineView view{agent.id(),    agent.version(),   agent.state_name(),
                     agent.units(), agent.renews_ok(), agent.renews_failed(),
                     agent.leader()};
    if (agent.up()) owned += agent.live_units();
    snapshot.machines.push_back(view);
  }
  snapshot.unowned = std::max(0, options_.units - owned);
  std::lock_guard<std::mutex> lock(events_mu_);
  snapshot.recent_events.assign(events_.begin(), events_.end());
  return snapshot;
}

void Simulation::Run(const std::function<void(const Snapshot&)>& on_tick) {
  const absl::Duration cpu_before = ProcessCpu();
  start_ = clock_->Now();
  next_crash_ = start_ + options_.crash_every;
  next_pause_ = start_ + options_.pause_every;
  next_partition_ = start_ + options_.partition_every;
  phases_.push_back({start_, "start", std::nullopt});
  for (auto& machine : machines_) {
    machine->agent->Start(1);
    machine->loop = std::thread([this, m = machine.get()] { Loop(*m); });
  }
  absl::Time next_report = start_;
  for (absl::Time now = start_; now - start_ < options_.duration;
       now = clock_->Now()) {
    const size_t turns = phases_.size();
    MaybeInjectFault(now);
    // A turn that came before the last one balanced leaves it unbalanced.
    Phase& phase = phases_.back();
    if (phases_.size() == turns && !phase.balanced_after.has_value() &&
        Balanced()) {
      phase.balanced_after = now - phase.at;
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
  StopLoops();
  cpu_ = ProcessCpu() - cpu_before;
  on_tick(last);
}

void Simulation::StopLoops() {
  stopping_ = true;
  for (auto& machine : machines_) {
    // A loop may hang in a call on a partitioned or paused link.
    if (machine->agent->state() == Agent::State::kPartitioned ||
        machine->agent->state() == Agent::State::kPaused) {
      machine->agent->Resume();
    }
    {
      std::lock_guard<std::mutex> lock(machine->mu);
      machine->cv.notify_all();
    }
  }
  for (auto& machine : machines_) {
    if (machine->loop.joinable()) machine->loop.join();
  }
}

Report Simulation::Finish() {
  StopLoops();
  for (auto& machine : machines_) machine->agent->Shutdown();
  Report report;
  report.end = clock_->Now();
  history_.EndAll(report.end, "end of run");
  report.start = start_;
  report.verdict = history_.Check();
  report.holds = history_.holds();
  {
    std::lock_guard<std::mutex> lock(faults_mu_);
    report.faults = faults_;
  }
  std::sort(report.faults.begin(), report.faults.end(),
            [](const Fault& a, const Fault& b) { return a.at < b.at; });
  report.failovers = history_.FailoverLatencies();
  report.unowned = unowned_;
  for (const auto& machine : machines_) {
    report.machines.push_back(machine->agent->id());
    report.renews_ok += machine->agent->renews_ok();
    report.renews_failed += machine->agent->renews_failed();
    report.steals += machine->agent->steals();
  }
  report.deposed_told_after = history_.DeposedNoticeLatencies();
  report.told_ahead_of_next_owner = history_.ToldAheadOfNextOwner();
  report.phases = phases_;
  report.cpu = cpu_;
  report.all_units_owned_at_end = all_owned_at_end_;
  return report;
}

}  // namespace leasehold::sim
