#include "lease/keeper.h"

#include <algorithm>
#include <atomic>

#include "absl/strings/str_cat.h"

namespace leasehold::lease {

const char* LeaseStateName(LeaseState state) {
  switch (state) {
    case LeaseState::kHeld:
      return "held";
    case LeaseState::kSuspect:
      return "suspect";
    case LeaseState::kLost:
      return "lost";
  }
  return "unknown";
}

// ----------------------------------------------------------- KeptLease

LeaseState KeptLease::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

LeaseState KeptLease::WaitWhile(LeaseState state, absl::Time deadline,
                                const CancelToken* cancel) const {
  WaitUntilDone(*clock_, mu_, cv_, deadline, cancel,
                [&]()
                    ABSL_NO_THREAD_SAFETY_ANALYSIS { return state_ != state; });
  return this->state();
}

bool KeptLease::WaitLost(absl::Time deadline, const CancelToken* cancel) const {
  LeaseState current = state();
  while (current != LeaseState::kLost) {
    const LeaseState next = WaitWhile(current, deadline, cancel);
    if (next == current) return false;
    current = next;
  }
  return true;
}

// -------------------------------------------------------------- Keeper

Keeper::Keeper(KeeperOptions options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : RealClock()),
      rng_(std::random_device{}()) {
  const int workers = std::max(1, options_.workers);
  scheduler_ = std::thread([this] { SchedulerLoop(); });
  for (int i = 0; i < workers; ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
  notifier_ = std::thread([this] { NotifierLoop(); });
  notifier_id_ = notifier_.get_id();
}

Keeper::~Keeper() {
  Stop(false);
  if (notifier_.joinable()) notifier_.join();
}

std::shared_ptr<KeptLease> Keeper::Add(std::unique_ptr<Lease> lease,
                                       StateCallback on_change,
                                       std::shared_ptr<Signal> lost,
                                       RenewCallback on_renewed) {
  std::shared_ptr<KeptLease> kept(
      new KeptLease(std::move(lease), std::move(on_change), std::move(lost),
                    std::move(on_renewed), clock_));
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) {
    kept->kept_ = false;
    std::lock_guard<std::mutex> state_lock(kept->mu_);
    kept->state_ = LeaseState::kLost;
    return kept;
  }
  kept_.insert(kept);
  ScheduleNext(kept);
  return kept;
}

absl::Status Keeper::Remove(const std::shared_ptr<KeptLease>& kept,
                            bool release) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (kept->kept_) {
      kept->removed_ = true;
      SetState(kept, LeaseState::kLost);
    }
    // A worker inside a call on it (a renew, or the release of a renew
    // that landed after the loss) finishes before the caller may close the
    // registry. No worker starts another once it is no longer kept.
    idle_cv_.wait(lock, [&] { return !kept->busy_; });
  }
  return release ? kept->lease_->Release() : absl::OkStatus();
}

void Keeper::Stop(bool release) {
  const bool on_notifier = std::this_thread::get_id() == notifier_id_;
  std::vector<std::shared_ptr<KeptLease>> leases;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_) {
      // A callback that stopped the Keeper left the callbacks still queued
      // to the notifier: they too have run once Stop returns.
      if (!on_notifier) {
        stopped_cv_.wait(lock, [this] { return stopped_ && notifier_exited_; });
      }
      return;
    }
    stopping_ = true;
    leases.assign(kept_.begin(), kept_.end());
    for (const std::shared_ptr<KeptLease>& kept : leases) {
      SetState(kept, LeaseState::kLost, "its keeper stopped");
      kept->removed_ = true;
    }
    heap_ = {};
    ready_.clear();
    FireLost(lock);
  }
  wake_cv_.notify_all();
  ready_cv_.notify_all();
  scheduler_.join();
  for (std::thread& worker : workers_) worker.join();
  if (!on_notifier) {
    std::unique_lock<std::mutex> lock(mu_);
    drained_cv_.wait(lock, [this] { return notify_.empty() && !delivering_; });
  }
  if (release) ReleaseAll(leases);

  std::unique_lock<std::mutex> lock(mu_);
  notifier_done_ = true;
  notify_cv_.notify_all();
  if (!on_notifier) {
    lock.unlock();
    notifier_.join();
    lock.lock();
  }
  stopped_ = true;
  stopped_cv_.notify_all();
}

void Keeper::ReleaseAll(const std::vector<std::shared_ptr<KeptLease>>& leases) {
  std::atomic<size_t> next{0};
  auto release = [&] {
    for (size_t i = next++; i < leases.size(); i = next++) {
      leases[i]->lease_->Release().IgnoreError();
    }
  };
  std::vector<std::thread> threads;
  const size_t n = std::min(leases.size(),
                            static_cast<size_t>(std::max(1, options_.workers)));
  for (size_t i = 1; i < n; ++i) threads.emplace_back(release);
  release();
  for (std::thread& thread : threads) thread.join();
}

size_t Keeper::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return kept_.size();
}

uint64_t Keeper::Push(absl::Time at, std::shared_ptr<KeptLease> kept,
                      bool expiry_check) {
  const uint64_t seq = next_seq_++;
  // The scheduler sleeps until the earliest entry: only a new earliest one
  // changes when it must wake. (Waking it for every renew's two entries, a
  // third of a TTL and a TTL away, cost two context switches per renew.)
  const bool earliest = heap_.empty() || at < heap_.top().at;
  heap_.push(Due{at, seq, std::move(kept), expiry_check});
  if (earliest) wake_cv_.notify_one();  // only the scheduler waits on it
  return seq;
}

void Keeper::ScheduleRenew(const std::shared_ptr<KeptLease>& kept,
                           absl::Time at) {
  kept->renew_seq_ = Push(at, kept, /*expiry_check=*/false);
}

absl::Time Keeper::NextRenew(const Lease& lease) {
  const absl::Duration period = lease.period();
  std::uniform_real_distribution<double> jitter(-options_.jitter,
                                                options_.jitter);
  // From the grant's send: the margin shortens belief, not the interval.
  return lease.expiry() + lease.safety_margin() - period +
         period * (options_.renew_fraction * (1 + jitter(rng_)));
}

void Keeper::SetState(const std::shared_ptr<KeptLease>& kept, LeaseState state,
                      absl::string_view why) {
  {
    std::lock_guard<std::mutex> lock(kept->mu_);
    if (kept->state_ == state || kept->state_ == LeaseState::kLost) return;
    kept->state_ = state;
  }
  kept->cv_.notify_all();
  if (state == LeaseState::kLost) {
    kept->kept_ = false;
    kept_.erase(kept);
    if (kept->lost_ != nullptr && !kept->removed_) {
      to_fire_.emplace_back(
          kept->lost_, absl::AbortedError(
                           absl::StrCat(kept->lease_->name(), " lost: ", why)));
    }
  }
  if (kept->on_change_) {
    notify_.push_back({kept, state, std::nullopt});
    notify_cv_.notify_one();
  }
}

void Keeper::FireLost(std::unique_lock<std::mutex>& lock) {
  if (to_fire_.empty()) return;
  std::vector<std::pair<std::shared_ptr<Signal>, absl::Status>> fire;
  fire.swap(to_fire_);
  lock.unlock();
  for (auto& [signal, cause] : fire) signal->Fire(std::move(cause));
  lock.lock();
}

void Keeper::ScheduleNext(const std::shared_ptr<KeptLease>& kept) {
  ScheduleRenew(kept, NextRenew(*kept->lease_));
  kept->expiry_seq_ = Push(kept->lease_->expiry(), kept, /*expiry_check=*/true);
}

void Keeper::SchedulerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (std::optional<Due> due = WaitForDue(lock)) {
    Dispatch(*due);
    FireLost(lock);
  }
}

void Keeper::WorkerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    ready_cv_.wait(lock, [this] { return stopping_ || !ready_.empty(); });
    if (stopping_) return;
    const std::shared_ptr<KeptLease> kept = std::move(ready_.front());
    ready_.pop_front();
    kept->busy_ = true;
    RenewOne(kept, lock);
    kept->busy_ = false;
    idle_cv_.notify_all();
    FireLost(lock);
  }
}

std::optional<Keeper::Due> Keeper::WaitForDue(
    std::unique_lock<std::mutex>& lock) {
  while (!stopping_) {
    if (heap_.empty()) {
      wake_cv_.wait(lock);
      continue;
    }
    // Dropped when they come first rather than when due, so the scheduler
    // sleeps until the next entry that does something (every renew leaves
    // its lease's previous expiry check behind).
    if (Stale(heap_.top())) {
      heap_.pop();
      continue;
    }
    // It sleeps until the first entry's own time, and once awake takes the
    // renews that come due within their slack too: spread by jitter, renews
    // would otherwise cost a wake-up each.
    const Due& top = heap_.top();
    if (clock_->Now() >= top.at - Slack(top)) {
      Due due = top;
      heap_.pop();
      return due;
    }
    clock_->WaitUntil(wake_cv_, lock, top.at);
  }
  return std::nullopt;
}

absl::Duration Keeper::Slack(const Due& due) const {
  if (due.expiry_check) return absl::ZeroDuration();
  return due.kept->lease_->period() *
         (options_.renew_fraction * options_.jitter / 10);
}

bool Keeper::Stale(const Due& due) const {
  const KeptLease& kept = *due.kept;
  return !kept.kept_ ||
         due.seq != (due.expiry_check ? kept.expiry_seq_ : kept.renew_seq_);
}

void Keeper::Dispatch(const Due& due) {
  const std::shared_ptr<KeptLease>& kept = due.kept;
  if (due.expiry_check) {
    // A renew or a SetValue may have moved the expiry meanwhile: watch the
    // new one.
    if (kept->lease_->expired()) {
      SetState(kept, LeaseState::kLost, "expired, not renewed in time");
    } else {
      kept->expiry_seq_ =
          Push(kept->lease_->expiry(), kept, /*expiry_check=*/true);
    }
    return;
  }
  if (kept->lease_->expired()) {
    SetState(kept, LeaseState::kLost, "expired, not renewed in time");
    return;
  }
  ready_.push_back(kept);
  ready_cv_.notify_one();
}

void Keeper::RenewOne(const std::shared_ptr<KeptLease>& kept,
                      std::unique_lock<std::mutex>& lock) {
  Lease& lease = *kept->lease_;
  if (!kept->kept_) return;
  lock.unlock();
  const absl::Status status = lease.Renew(lease.period());
  lock.lock();
  if (!kept->kept_) {
    // Reported lost while the renew hung, yet it went through: give the
    // lease back so that a standby need not wait out the TTL.
    if (status.ok() && !kept->removed_) {
      lock.unlock();
      lease.Release().IgnoreError();
      lock.lock();
    }
    return;
  }
  if (status.ok()) {
    kept->backoff_ = absl::ZeroDuration();
    SetState(kept, LeaseState::kHeld);
    if (kept->on_renewed_) {
      notify_.push_back({kept, LeaseState::kHeld, lease.expiry()});
      notify_cv_.notify_one();
    }
    ScheduleNext(kept);
    return;
  }
  if (absl::IsAborted(status) || absl::IsNotFound(status) || lease.expired()) {
    SetState(kept, LeaseState::kLost,
             absl::IsAborted(status)    ? "taken by another holder"
             : absl::IsNotFound(status) ? "expired or deleted"
                                        : "expired, not renewed in time");
    return;
  }
  SetState(kept, LeaseState::kSuspect);
  kept->backoff_ = kept->backoff_ == absl::ZeroDuration()
                       ? options_.initial_backoff
                       : std::min(2 * kept->backoff_, options_.max_backoff);
  ScheduleRenew(kept, std::min(clock_->Now() + kept->backoff_, lease.expiry()));
}

void Keeper::NotifierLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    notify_cv_.wait(lock,
                    [this] { return !notify_.empty() || notifier_done_; });
    if (notify_.empty()) {
      notifier_exited_ = true;
      stopped_cv_.notify_all();
      return;
    }
    const Note next = std::move(notify_.front());
    notify_.pop_front();
    delivering_ = true;
    lock.unlock();
    if (next.renewed.has_value()) {
      next.kept->on_renewed_(*next.renewed);
    } else {
      next.kept->on_change_(next.state);
    }
    lock.lock();
    delivering_ = false;
    if (notify_.empty()) drained_cv_.notify_all();
  }
}

}  // namespace leasehold::lease
