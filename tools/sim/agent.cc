#include "tools/sim/agent.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "registry/errors.h"

namespace leasehold::sim {
namespace {

using lease::KeptLease;
using lease::Lease;
using lease::LeaseState;

// When a holder stopped believing in a lease it was just told it lost: its
// conservative local expiry, or the moment it was told if that came first
// (a renew that found the lease gone leaves expiry() at the earlier of the
// two).
absl::Time BeliefEnd(const Lease& lease, absl::Time told) {
  return std::min(told, lease.expiry());
}

uint64_t SeedOf(const std::string& id) { return std::hash<std::string>{}(id); }

}  // namespace

// An agent's connection to the registry. Pause() freezes it: every call
// hangs until Resume(). Hang() partitions it: every call hangs until
// Resume() or its deadline, then fails as a request that got no answer.
// Counts renews (refresh writes) and their failures.
class Agent::Link final : public registry::KeysApi {
 public:
  explicit Link(registry::KeysApi* target, Clock* clock)
      : target_(target), clock_(clock) {}

  void Pause() { SetMode(Mode::kFrozen); }
  void Hang() { SetMode(Mode::kHung); }
  void Resume() { SetMode(Mode::kOpen); }
  uint64_t renews_ok() const { return renews_ok_; }
  uint64_t renews_failed() const { return renews_failed_; }

  absl::StatusOr<registry::Response> Get(
      const std::string& key, const registry::GetOptions& options) override {
    if (absl::Status s = Gate(options.deadline, /*write=*/false); !s.ok()) {
      return s;
    }
    return target_->Get(key, options);
  }
  absl::StatusOr<registry::Response> Set(
      const std::string& key, const std::string& value,
      const registry::SetOptions& options) override {
    absl::Status gate = Gate(options.deadline, /*write=*/true);
    absl::StatusOr<registry::Response> result =
        gate.ok() ? target_->Set(key, value, options)
                  : absl::StatusOr<registry::Response>(gate);
    if (options.refresh) ++(result.ok() ? renews_ok_ : renews_failed_);
    return result;
  }
  absl::StatusOr<registry::Response> CreateInOrder(
      const std::string& dir, const std::string& value,
      const registry::CreateInOrderOptions& options) override {
    if (absl::Status s = Gate(absl::InfiniteFuture(), /*write=*/true);
        !s.ok()) {
      return s;
    }
    return target_->CreateInOrder(dir, value, options);
  }
  absl::StatusOr<registry::Response> Delete(
      const std::string& key, const registry::DeleteOptions& options) override {
    if (absl::Status s = Gate(options.deadline, /*write=*/true); !s.ok()) {
      return s;
    }
    return target_->Delete(key, options);
  }
  absl::StatusOr<registry::Response> Watch(
      const std::string& key, const registry::WatchOptions& options) override {
    if (absl::Status s = Gate(options.deadline, /*write=*/false); !s.ok()) {
      return s;
    }
    return target_->Watch(key, options);
  }

 private:
  enum class Mode { kOpen, kFrozen, kHung };

  void SetMode(Mode mode) {
    std::lock_guard<std::mutex> lock(mu_);
    mode_ = mode;
    cv_.notify_all();
  }

  // Waits while the link is frozen, or hung and `deadline` has not passed.
  // A call that gives up fails as the client's would: a write with an
  // unknown outcome, a read with kDeadlineExceeded.
  absl::Status Gate(absl::Time deadline, bool write) {
    std::unique_lock<std::mutex> lock(mu_);
    while (mode_ != Mode::kOpen) {
      if (mode_ == Mode::kFrozen) {
        cv_.wait(lock);
      } else if (!clock_->WaitUntil(cv_, lock, deadline) &&
                 mode_ == Mode::kHung) {
        constexpr char kNoAnswer[] = "no answer: the machine's link hangs";
        return write ? registry::OutcomeUnknownError(kNoAnswer)
                     : absl::DeadlineExceededError(kNoAnswer);
      }
    }
    return absl::OkStatus();
  }

  registry::KeysApi* const target_;
  Clock* const clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  Mode mode_ = Mode::kOpen;
  std::atomic<uint64_t> renews_ok_{0};
  std::atomic<uint64_t> renews_failed_{0};
};

Agent::Agent(registry::KeysApi* keys, AgentOptions options, History* history,
             std::function<void(const std::string&)> on_event)
    : keys_(keys),
      options_(std::move(options)),
      history_(history),
      on_event_(std::move(on_event)),
      clock_(options_.clock != nullptr ? options_.clock : RealClock()),
      rng_(SeedOf(options_.id)) {}

Agent::~Agent() { Shutdown(); }

const char* Agent::state_name() const {
  switch (state_.load()) {
    case State::kStopped:
      return "stopped";
    case State::kUp:
      return "up";
    case State::kPaused:
      return "paused";
    case State::kPartitioned:
      return "partitioned";
    case State::kCrashed:
      return "crashed";
  }
  return "?";
}

uint64_t Agent::renews_ok() const {
  return retired_ok_ + (link_ ? link_->renews_ok() : 0);
}

uint64_t Agent::renews_failed() const {
  return retired_failed_ + (link_ ? link_->renews_failed() : 0);
}

void Agent::Start(int version) {
  version_ = version;
  ending_ = "lost";
  link_ = std::make_unique<Link>(keys_, clock_);
  manager_ = std::make_unique<lease::LeaseManager>(
      link_.get(),
      lease::LeaseManagerOptions{.prefix = options_.prefix, .clock = clock_});
  keeper_ = std::make_unique<lease::Keeper>(
      lease::KeeperOptions{.workers = options_.workers, .clock = clock_});
  claim_after_ = absl::InfiniteFuture();
  state_ = State::kUp;
}

absl::Status Agent::Step() {
  if (state_ != State::kUp && state_ != State::kPartitioned) {
    return absl::OkStatus();
  }
  for (auto it = units_.begin(); it != units_.end();) {
    if (it->second.kept->state() == LeaseState::kLost) {
      on_event_(absl::StrCat(id(), " lost ", it->first));
      it = units_.erase(it);
    } else {
      ++it;
    }
  }
  units_count_ = static_cast<int>(units_.size());
  if (presence_ == nullptr || presence_->state() == LeaseState::kLost) {
    absl::StatusOr<std::shared_ptr<KeptLease>> presence =
        Keep(kPresencePrefix + id(), /*steal_index=*/0, /*unit=*/false);
    if (!presence.ok()) return presence.status();
    presence_ = *std::move(presence);
    // Every machine present renews its presence within a round, and one
    // that started with us announced itself by then: its share counts.
    if (presence_ != nullptr && claim_after_ == absl::InfiniteFuture()) {
      claim_after_ = clock_->Now() + options_.ttl / 3;
    }
  }
  if (view_ == nullptr) {
    absl::StatusOr<std::shared_ptr<OwnershipView>> view = OwnershipView::Shared(
        keys_, clock_, manager_->options().prefix, options_.units);
    if (!view.ok()) return view.status();
    view_ = *std::move(view);
  }
  const OwnershipView::Summary seen = view_->Summarize();
  LeadIfEntitled(seen.engine);
  leader_ = engine_ != nullptr && engine_->state() != LeaseState::kLost;
  if (presence_ == nullptr || clock_->Now() < claim_after_) {
    return absl::OkStatus();
  }
  if (presence_->state() == LeaseState::kSuspect) {
    // Its renews are failing: claim nothing more while the registry does
    // not answer.
    return absl::UnavailableError(
        absl::StrCat(id(), ": its presence lease's renews are failing"));
  }
  const int machines = std::max(1, seen.machines);
  const int low = options_.units / machines;
  const int high = (options_.units + machines - 1) / machines;
  const int mine = units();
  if (mine > high) {
    HandBack(mine - high, high);
  } else if (mine == high && high > low && seen.fewest_units < low &&
             seen.free_units == 0) {
    // Too many machines hold the larger share and one is short of the
    // smaller: make room for it.
    HandBack(1, low);
  } else if (mine < low) {
    return Claim(low - mine);
  } else if (mine < high && seen.fewest_units >= low) {
    return Claim(high - mine);
  }
  return absl::OkStatus();
}

absl::Status Agent::Claim(int wanted) {
  const int from =
      std::uniform_int_distribution<int>(0, options_.units - 1)(rng_);
  // A few spare candidates: some will have been taken since the view saw
  // them free.
  for (const std::string& unit : view_->FreeUnits(from, 2 * wanted)) {
    if (wanted == 0) break;
    if (units_.count(unit) > 0) continue;
    absl::StatusOr<std::shared_ptr<KeptLease>> kept =
        Keep(unit, /*steal_index=*/0, /*unit=*/true);
    if (!kept.ok()) {
      units_count_ = static_cast<int>(units_.size());
      return kept.status();
    }
    if (*kept == nullptr) continue;
    units_[unit] = {*std::move(kept), holds_.back()};
    units_count_ = static_cast<int>(units_.size());
    --wanted;
  }
  return absl::OkStatus();
}

// The whole excess goes in one step, without a rate limit: it is not a
// thundering herd, because the units it frees are claimed only by machines
// below their own share (nobody claims beyond it), so every release meets
// at most one successful claim, and the releases themselves go one after
// another at the registry's pace. Handing back one unit per step would
// leave a machine that came up first far above its share for minutes.
void Agent::HandBack(int excess, int share) {
  on_event_(absl::StrCat(id(), " hands back ", excess,
                         excess == 1 ? " unit" : " units", " (share ", share,
                         ")"));
  for (; excess > 0 && !units_.empty(); --excess) {
    auto it = units_.begin();
    // It stops acting as owner before the release lets anyone else in, or
    // stopped already when its lease ran out unnoticed (its Keeper has not
    // reported the expiry yet: the agent was frozen, or it ran first).
    history_->End(it->second.hold,
                  BeliefEnd(it->second.kept->lease(), clock_->Now()),
                  "released");
    (void)keeper_->Remove(it->second.kept, /*release=*/true);
    units_.erase(it);
  }
  units_count_ = static_cast<int>(units_.size());
}

void Agent::Crash(absl::Time now, absl::Time back_at) {
  Orphan(now);
  ending_ = "crashed";
  Retire(/*release=*/false);
  state_ = State::kCrashed;
  back_at_ = back_at;
}

void Agent::Pause(absl::Time now, absl::Time back_at) {
  CutOff(State::kPaused, now, back_at);
}

void Agent::Partition(absl::Time now, absl::Time back_at) {
  CutOff(State::kPartitioned, now, back_at);
}

void Agent::CutOff(State state, absl::Time now, absl::Time back_at) {
  Orphan(now);
  if (state == State::kPaused) {
    link_->Pause();
  } else {
    link_->Hang();
  }
  state_ = state;
  back_at_ = back_at;
}

void Agent::Resume() {
  link_->Resume();
  state_ = State::kUp;
}

void Agent::Shutdown() {
  if (keeper_ == nullptr) return;
  if (state_ == State::kPaused || state_ == State::kPartitioned) Resume();
  ending_ = "released";
  Retire(/*release=*/true);
  state_ = State::kStopped;
}

// Acquires (or, with a steal index, steals) `name` and hands it to the
// Keeper; records the hold unless it is the presence lease. nullptr when
// not granted; an error when the registry did not answer.
absl::StatusOr<std::shared_ptr<KeptLease>> Agent::Keep(const std::string& name,
                                                       uint64_t steal_index,
                                                       bool unit) {
  absl::StatusOr<std::unique_ptr<Lease>> granted =
      steal_index == 0
          ? manager_->AcquireLease(name, id(), version_, options_.ttl)
          : manager_->StealLease(name, id(), version_, options_.ttl,
                                 steal_index);
  if (!granted.ok()) return granted.status();
  if (*granted == nullptr) return nullptr;
  const Lease* lease = granted->get();
  const absl::Time now = clock_->Now();
  // Granted, but the answer came after the lease's local expiry (a slow
  // answer, a thread that ran late): nothing may be done as its owner, and
  // another holder may already have it. Never believed, never kept.
  if (lease->expiry() <= now) return nullptr;
  lease::StateCallback on_change;
  const bool record = unit || name == kEngineLease;
  lease::RenewCallback on_renewed;
  if (record) {
    const size_t hold =
        history_->Begin(name, id(), lease->fence(), now,
                        /*by_steal=*/steal_index != 0, lease->expiry());
    holds_.push_back(hold);
    if (unit) ++live_units_;
    on_change = [this, hold, lease, unit](LeaseState state) {
      if (state != LeaseState::kLost) return;
      const absl::Time told = clock_->Now();
      const char* how = ending_.load();
      history_->End(hold, BeliefEnd(*lease, told), how,
                    how == std::string("lost") ? told : absl::InfiniteFuture());
      if (unit) --live_units_;
    };
    on_renewed = [this, hold](absl::Time expiry) {
      history_->Renewed(hold, clock_->Now(), expiry);
    };
  }
  return keeper_->Add(*std::move(granted), std::move(on_change),
                      /*lost=*/nullptr, std::move(on_renewed));
}

// Leads when nobody does, or steals from an older version.
void Agent::LeadIfEntitled(const std::optional<OwnershipView::Holder>& seen) {
  if (engine_ != nullptr && engine_->state() != LeaseState::kLost) return;
  if (seen.has_value() &&
      (seen->machine_id == id() || seen->version >= version_)) {
    return;
  }
  uint64_t index = 0;
  std::unique_ptr<Lease> engine;
  if (seen.has_value()) {
    // The view does not follow renewals (they wake no watcher) while each
    // moves the index a steal must name: read it.
    absl::StatusOr<std::unique_ptr<Lease>> current =
        manager_->GetLease(kEngineLease);
    if (!current.ok()) return;
    engine = *std::move(current);
    if (engine != nullptr) {
      if (engine->machine_id() == id() || engine->version() >= version_) {
        return;
      }
      index = engine->index();
    }
  }
  absl::StatusOr<std::shared_ptr<KeptLease>> kept =
      Keep(kEngineLease, index, /*unit=*/false);
  if (!kept.ok() || *kept == nullptr) return;
  engine_ = *std::move(kept);
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
  units_count_ = 0;
  leader_ = false;
}

}  // namespace leasehold::sim
