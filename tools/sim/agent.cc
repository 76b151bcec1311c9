#include "tools/sim/agent.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace leasehold::sim {
namespace {

using lease::KeptLease;
using lease::Lease;
using lease::LeaseState;

constexpr char kEngineLease[] = "engine-leader";
constexpr char kPresencePrefix[] = "machine-";

// When a holder stopped believing in a lease it was just told it lost: its
// conservative local expiry, or the moment it was told if that came first
// (a renew that found the lease gone leaves expiry() at the earlier of the
// two).
absl::Time BeliefEnd(const Lease& lease, absl::Time told) {
  return std::min(told, lease.expiry());
}

std::string UnitName(int i) { return absl::StrFormat("unit-%02d", i); }

}  // namespace

// An agent's connection to the registry. Pause() freezes it: every call
// hangs until Resume(). Counts renews (refresh writes) and their failures.
class Agent::Link final : public registry::KeysApi {
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

Agent::Agent(registry::KeysApi* keys, AgentOptions options, History* history,
             std::function<void(const std::string&)> on_event)
    : keys_(keys),
      options_(std::move(options)),
      history_(history),
      on_event_(std::move(on_event)),
      clock_(options_.clock != nullptr ? options_.clock : RealClock()) {}

Agent::~Agent() { Shutdown(); }

bool Agent::leader() const {
  return engine_ != nullptr && engine_->state() != LeaseState::kLost;
}

int Agent::live_units() const {
  int live = 0;
  for (const auto& [unit, owned] : units_) {
    live += owned.kept->state() != LeaseState::kLost ? 1 : 0;
  }
  return live;
}

uint64_t Agent::renews_ok() const {
  return retired_ok_ + (link_ ? link_->renews_ok() : 0);
}

uint64_t Agent::renews_failed() const {
  return retired_failed_ + (link_ ? link_->renews_failed() : 0);
}

void Agent::Start(int version) {
  version_ = version;
  state_ = "up";
  ending_ = "lost";
  link_ = std::make_unique<Link>(keys_);
  manager_ = std::make_unique<lease::LeaseManager>(
      link_.get(),
      lease::LeaseManagerOptions{.prefix = options_.prefix, .clock = clock_});
  keeper_ = std::make_unique<lease::Keeper>(
      lease::KeeperOptions{.workers = options_.workers, .clock = clock_});
}

absl::Status Agent::Step() {
  if (!up()) return absl::OkStatus();
  for (auto it = units_.begin(); it != units_.end();) {
    if (it->second.kept->state() == LeaseState::kLost) {
      on_event_(absl::StrCat(id(), " lost ", it->first));
      it = units_.erase(it);
    } else {
      ++it;
    }
  }
  if (presence_ == nullptr || presence_->state() == LeaseState::kLost) {
    presence_ = Keep(kPresencePrefix + id(), /*steal_index=*/0,
                     /*record=*/false);
  }
  absl::StatusOr<std::vector<std::unique_ptr<Lease>>> all =
      manager_->ListLeases();
  if (!all.ok()) return all.status();
  std::set<std::string> held;
  int machines_alive = 0;
  const Lease* engine = nullptr;
  for (const auto& lease : *all) {
    held.insert(lease->name());
    if (lease->name().rfind(kPresencePrefix, 0) == 0) ++machines_alive;
    if (lease->name() == kEngineLease) engine = lease.get();
  }
  LeadIfEntitled(engine);
  const int share = (options_.units + std::max(1, machines_alive) - 1) /
                    std::max(1, machines_alive);
  for (int i = 0; i < options_.units && units() < share; ++i) {
    const std::string unit = UnitName(i);
    if (held.count(unit) > 0 || units_.count(unit) > 0) continue;
    if (std::shared_ptr<KeptLease> kept = Keep(unit, 0, /*record=*/true)) {
      units_[unit] = {kept, holds_.back()};
    }
  }
  // Above the fair share (machines came back): hand one unit back.
  if (units() > share) {
    auto it = units_.begin();
    on_event_(
        absl::StrCat(id(), " hands back ", it->first, " (share ", share, ")"));
    // It stops acting as owner before the release lets anyone else in, or
    // stopped already when its lease ran out unnoticed (its Keeper has not
    // reported the expiry yet: the agent was frozen, or it ran first).
    history_->End(it->second.hold,
                  BeliefEnd(it->second.kept->lease(), clock_->Now()),
                  "released");
    (void)keeper_->Remove(it->second.kept, /*release=*/true);
    units_.erase(it);
  }
  return absl::OkStatus();
}

void Agent::Crash(absl::Time now, absl::Time back_at) {
  Orphan(now);
  ending_ = "crashed";
  Retire(/*release=*/false);
  state_ = "crashed";
  back_at_ = back_at;
}

void Agent::Pause(absl::Time now, absl::Time back_at) {
  Orphan(now);
  link_->Pause();
  state_ = "paused";
  back_at_ = back_at;
}

void Agent::Resume() {
  link_->Resume();
  state_ = "up";
}

void Agent::Shutdown() {
  if (keeper_ == nullptr) return;
  if (state_ == "paused") Resume();
  ending_ = "released";
  Retire(/*release=*/true);
  state_ = "stopped";
}

// Acquires (or, with a steal index, steals) `name` and hands it to the
// Keeper; records the hold when `record`. nullptr when not granted.
std::shared_ptr<KeptLease> Agent::Keep(const std::string& name,
                                       uint64_t steal_index, bool record) {
  absl::StatusOr<std::unique_ptr<Lease>> granted =
      steal_index == 0
          ? manager_->AcquireLease(name, id(), version_, options_.ttl)
          : manager_->StealLease(name, id(), version_, options_.ttl,
                                 steal_index);
  if (!granted.ok() || *granted == nullptr) return nullptr;
  const Lease* lease = granted->get();
  const absl::Time now = clock_->Now();
  // Granted, but the answer came after the lease's local expiry (a slow
  // answer, a thread that ran late): nothing may be done as its owner, and
  // another holder may already have it. Never believed, never kept.
  if (lease->expiry() <= now) return nullptr;
  lease::StateCallback on_change;
  lease::RenewCallback on_renewed;
  if (record) {
    const size_t hold =
        history_->Begin(name, id(), lease->fence(), now,
                        /*by_steal=*/steal_index != 0, lease->expiry());
    holds_.push_back(hold);
    on_change = [this, hold, lease](LeaseState state) {
      if (state != LeaseState::kLost) return;
      history_->End(hold, BeliefEnd(*lease, clock_->Now()), ending_.load());
    };
    on_renewed = [this, hold](absl::Time expiry) {
      history_->Renewed(hold, clock_->Now(), expiry);
    };
  }
  return keeper_->Add(*std::move(granted), std::move(on_change),
                      /*lost=*/nullptr, std::move(on_renewed));
}

// Leads when nobody does, or steals from an older version.
void Agent::LeadIfEntitled(const Lease* engine) {
  if (leader()) return;
  if (engine != nullptr &&
      (engine->machine_id() == id() || engine->version() >= version_)) {
    return;
  }
  const uint64_t index = engine == nullptr ? 0 : engine->index();
  engine_ = Keep(kEngineLease, index, /*record=*/true);
  if (engine_ == nullptr) return;
  if (engine != nullptr) {
    ++steals_;
    on_event_(absl::StrCat(
        id(), " (v", version_, ") steals engine leadership from ",
        engine->machine_id(), " (v", engine->version(), ") at index ", index));
  } else {
    on_event_(absl::StrCat(id(), " leads the engine"));
  }
}

void Agent::Orphan(absl::Time now) {
  for (size_t hold : holds_) history_->Orphan(hold, now);
}

void Agent::Retire(bool release) {
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

}  // namespace leasehold::sim
