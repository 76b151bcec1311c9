#include "tools/sim/simulation.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "lease/keeper.h"
#include "lease/lease_manager.h"

namespace leasehold::sim {
namespace {

using lease::KeptLease;
using lease::Lease;
using lease::LeaseState;

constexpr char kEngineLease[] = "engine-leader";
constexpr size_t kRecentEvents = 8;

std::string UnitName(int i) { return absl::StrFormat("unit-%02d", i); }
std::string PresenceName(const std::string& machine) {
  return "machine-" + machine;
}

// When a holder stopped believing in a lease it was just told it lost: its
// conservative local expiry, unless the lease was found gone before then
// (then the moment it was told).
absl::Time BeliefEnd(const Lease& lease, absl::Time told) {
  const absl::Time expiry = lease.expiry();
  return expiry == absl::InfinitePast() ? told : std::min(told, expiry);
}

}  // namespace

// An agent's connection to the registry. Pause() freezes it: every call
// hangs until Resume(), as for a process stopped by a long GC pause or cut
// off by a partition. Counts renews (refresh writes) and their failures.
class Simulation::Link final : public registry::KeysApi {
 public:
  explicit Link(registry::KeysApi* target) : target_(target) {}

  void Pause() {
    std::lock_guard<std::mutex> lock(mu_);
    paused_ = true;
  }
  void Resume() {
    std::lock_guard<std::mutex> lock(mu_);
    paused_ = false;
    cv_.notify_all();
  }
  uint64_t renews_ok() const { return renews_ok_; }
  uint64_t renews_failed() const { return renews_failed_; }

  absl::StatusOr<registry::Response> Get(
      const std::string& key, const registry::GetOptions& options) override {
    Gate();
    return target_->Get(key, options);
  }
  absl::StatusOr<registry::Response> Set(
      const std::string& key, const std::string& value,
      const registry::SetOptions& options) override {
    Gate();
    absl::StatusOr<registry::Response> result =
        target_->Set(key, value, options);
    if (options.refresh) ++(result.ok() ? renews_ok_ : renews_failed_);
    return result;
  }
  absl::StatusOr<registry::Response> CreateInOrder(
      const std::string& dir, const std::string& value,
      const registry::CreateInOrderOptions& options) override {
    Gate();
    return target_->CreateInOrder(dir, value, options);
  }
  absl::StatusOr<registry::Response> Delete(
      const std::string& key, const registry::DeleteOptions& options) override {
    Gate();
    return target_->Delete(key, options);
  }
  absl::StatusOr<registry::Response> Watch(
      const std::string& key, const registry::WatchOptions& options) override {
    Gate();
    return target_->Watch(key, options);
  }

 private:
  void Gate() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return !paused_; });
  }

  registry::KeysApi* const target_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool paused_ = false;
  std::atomic<uint64_t> renews_ok_{0};
  std::atomic<uint64_t> renews_failed_{0};
};

// One machine. Its state is touched by the simulation thread; its Keeper's
// callbacks only write to the History.
class Simulation::Agent {
 public:
  Agent(Simulation* sim, std::string id) : sim_(sim), id_(std::move(id)) {}
  ~Agent() { Shutdown(); }

  const std::string& id() const { return id_; }
  int version() const { return version_; }
  const std::string& state() const { return state_; }
  bool up() const { return state_ == "up"; }
  bool leader() const {
    return engine_ != nullptr && engine_->state() != LeaseState::kLost;
  }
  int units() const { return static_cast<int>(units_.size()); }
  // Units it holds and has not been told it lost.
  int live_units() const {
    int live = 0;
    for (const auto& [unit, owned] : units_) {
      live += owned.kept->state() != LeaseState::kLost ? 1 : 0;
    }
    return live;
  }
  absl::Time back_at() const { return back_at_; }
  uint64_t renews_ok() const {
    return retired_ok_ + (link_ ? link_->renews_ok() : 0);
  }
  uint64_t renews_failed() const {
    return retired_failed_ + (link_ ? link_->renews_failed() : 0);
  }

  void Start(int version) {
    version_ = version;
    state_ = "up";
    ending_ = "lost";
    link_ = std::make_unique<Link>(sim_->keys_);
    manager_ = std::make_unique<lease::LeaseManager>(
        link_.get(),
        lease::LeaseManagerOptions{.prefix = sim_->options_.prefix});
    keeper_ =
        std::make_unique<lease::Keeper>(lease::KeeperOptions{.workers = 4});
  }

  // One pass of the agent's loop: drop what it lost, keep its presence,
  // lead if it may, claim units up to its fair share.
  void Step() {
    if (!up()) return;
    for (auto it = units_.begin(); it != units_.end();) {
      if (it->second.kept->state() == LeaseState::kLost) {
        sim_->Event(absl::StrCat(id_, " lost ", it->first));
        it = units_.erase(it);
      } else {
        ++it;
      }
    }
    if (presence_ == nullptr || presence_->state() == LeaseState::kLost) {
      presence_ = Keep(PresenceName(id_), /*steal_index=*/0, /*record=*/false);
    }
    absl::StatusOr<std::vector<std::unique_ptr<Lease>>> all =
        manager_->ListLeases();
    if (!all.ok()) return;
    std::set<std::string> held;
    int machines_alive = 0;
    const Lease* engine = nullptr;
    for (const auto& lease : *all) {
      held.insert(lease->name());
      if (lease->name().rfind("machine-", 0) == 0) ++machines_alive;
      if (lease->name() == kEngineLease) engine = lease.get();
    }
    LeadIfEntitled(engine);
    const int share = (sim_->options_.units + std::max(1, machines_alive) - 1) /
                      std::max(1, machines_alive);
    for (int i = 0; i < sim_->options_.units && units() < share; ++i) {
      const std::string unit = UnitName(i);
      if (held.count(unit) > 0 || units_.count(unit) > 0) continue;
      if (std::shared_ptr<KeptLease> kept = Keep(unit, 0, /*record=*/true)) {
        units_[unit] = {kept, holds_.back()};
      }
    }
    // Above the fair share (machines came back): hand one unit back.
    if (units() > share) {
      auto it = units_.begin();
      sim_->Event(
          absl::StrCat(id_, " hands back ", it->first, " (share ", share, ")"));
      // It stops acting as owner before the release lets anyone else in.
      sim_->history_.End(it->second.hold, sim_->clock_->Now(), "released");
      (void)keeper_->Remove(it->second.kept, /*release=*/true);
      units_.erase(it);
    }
  }

  // Stops renewing, releases nothing: the leases run out on the server.
  // The machine comes back at `back_at` as a new incarnation.
  void Crash(absl::Time now, absl::Time back_at) {
    Orphan(now);
    ending_ = "crashed";
    Retire(/*release=*/false);
    state_ = "crashed";
    back_at_ = back_at;
  }

  void Pause(absl::Time now, absl::Time back_at) {
    Orphan(now);
    link_->Pause();
    state_ = "paused";
    back_at_ = back_at;
  }

  void Resume() {
    link_->Resume();
    state_ = "up";
  }

  void Shutdown() {
    if (keeper_ == nullptr) return;
    if (state_ == "paused") Resume();
    ending_ = "released";
    Retire(/*release=*/true);
    state_ = "stopped";
  }

 private:
  struct Owned {
    std::shared_ptr<KeptLease> kept;
    size_t hold = 0;
  };

  // Acquires (or, with a steal index, steals) `name` and hands it to the
  // Keeper; records the hold when `record`. nullptr when not granted.
  std::shared_ptr<KeptLease> Keep(const std::string& name, uint64_t steal_index,
                                  bool record) {
    const absl::Duration ttl = sim_->options_.ttl;
    absl::StatusOr<std::unique_ptr<Lease>> granted =
        steal_index == 0
            ? manager_->AcquireLease(name, id_, version_, ttl)
            : manager_->StealLease(name, id_, version_, ttl, steal_index);
    if (!granted.ok() || *granted == nullptr) return nullptr;
    const Lease* lease = granted->get();
    const absl::Time start = sim_->clock_->Now();
    lease::StateCallback on_change;
    if (record) {
      const size_t hold = sim_->history_.Begin(name, id_, lease->fence(), start,
                                               /*by_steal=*/steal_index != 0);
      holds_.push_back(hold);
      on_change = [this, hold, lease](LeaseState state) {
        if (state != LeaseState::kLost) return;
        sim_->history_.End(hold, BeliefEnd(*lease, sim_->clock_->Now()),
                           ending_.load());
      };
    }
    return keeper_->Add(*std::move(granted), std::move(on_change));
  }

  // Leads when nobody does, or steals from an older version.
  void LeadIfEntitled(const Lease* engine) {
    if (leader()) return;
    if (engine != nullptr &&
        (engine->machine_id() == id_ || engine->version() >= version_)) {
      return;
    }
    const uint64_t index = engine == nullptr ? 0 : engine->index();
    engine_ = Keep(kEngineLease, index, /*record=*/true);
    if (engine_ == nullptr) return;
    if (engine != nullptr) {
      ++sim_->steals_;
      sim_->Event(absl::StrCat(id_, " (v", version_,
                               ") steals engine leadership from ",
                               engine->machine_id(), " (v", engine->version(),
                               ") at index ", index));
    } else {
      sim_->Event(absl::StrCat(id_, " leads the engine"));
    }
  }

  void Orphan(absl::Time now) {
    for (size_t hold : holds_) sim_->history_.Orphan(hold, now);
  }

  void Retire(bool release) {
    keeper_->Stop(release);
    retired_ok_ += link_->renews_ok();
    retired_failed_ += link_->renews_failed();
    keeper_.reset();
    manager_.reset();
    link_.reset();
    units_.clear();
    holds_.clear();
    presence_.reset();
    engine_.reset();
  }

  Simulation* const sim_;
  const std::string id_;
  int version_ = 1;
  std::string state_ = "stopped";
  absl::Time back_at_ = absl::InfiniteFuture();
  // How holds end when the Keeper lets go; read by Keeper callbacks.
  std::atomic<const char*> ending_{"lost"};
  std::unique_ptr<Link> link_;
  std::unique_ptr<lease::LeaseManager> manager_;
  std::unique_ptr<lease::Keeper> keeper_;
  std::map<std::string, Owned> units_;
  std::vector<size_t> holds_;
  std::shared_ptr<KeptLease> presence_;
  std::shared_ptr<KeptLease> engine_;
  uint64_t retired_ok_ = 0;
  uint64_t retired_failed_ = 0;
};

Simulation::Simulation(registry::KeysApi* keys, SimOptions options)
    : keys_(keys),
      options_(std::move(options)),
      clock_(RealClock()),
      rng_(options_.seed) {
  for (int i = 0; i < options_.machines; ++i) {
    agents_.push_back(
        std::make_unique<Agent>(this, absl::StrFormat("m%d", i + 1)));
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
      Event(absl::StrCat(agent->id(), " wakes from its pause"));
    } else if (agent->state() == "crashed" && now >= agent->back_at()) {
      // After the halfway mark restarts run a newer version (an upgrade).
      const bool upgrade = !upgraded_ && now - start_ > options_.duration / 2;
      upgraded_ |= upgrade;
      agent->Start(upgrade ? 2 : agent->version());
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
    crashes_.push_back(now);
    Event(absl::StrCat(victim->id(), " crashes holding ", victim->units(),
                       " units"));
    victim->Crash(now, now + 2 * options_.ttl);
  } else if (options_.pause_every > absl::ZeroDuration() &&
             now >= next_pause_) {
    next_pause_ = now + options_.pause_every;
    crashes_.push_back(now);
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
    for (auto& agent : agents_) agent->Step();
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
  report.crashes = crashes_;
  report.failovers = history_.FailoverLatencies();
  report.unowned = unowned_;
  for (const auto& agent : agents_) {
    report.renews_ok += agent->renews_ok();
    report.renews_failed += agent->renews_failed();
  }
  report.steals = steals_;
  report.deposed_told_after = history_.DeposedNoticeLatencies();
  report.all_units_owned_at_end = all_owned_at_end_;
  return report;
}

}  // namespace leasehold::sim
