// Keeper: the renew loop an agent runs for the leases it holds.
//
// It renews each lease when a fraction of its period has passed (default
// 1/3, with jitter so many leases do not renew in step), retries a failed
// renew with backoff while the lease has time left, and reports each lease's
// state:
//
//   held ──renew failed, time left──▶ suspect ──renew ok──▶ held
//     │                                  │
//     └──── CAS failed / key gone / local expiry passed ────▶ lost (final)
//
// A lease is also lost when the Keeper stops keeping it (Remove, Stop).
// Renews run on a bounded pool of worker threads (registry calls block; the
// etcd client keeps one connection per thread), so one Keeper keeps 10,000
// leases as long as the registry keeps up. A scheduler thread that never
// calls the registry reports each local expiry on time, even when every
// worker hangs on a renew (a partitioned agent with more leases than
// workers).
//
//   Keeper keeper;                          // KeeperOptions: clock, workers…
//   std::shared_ptr<KeptLease> unit = keeper.Add(
//       std::move(lease), [](LeaseState s) {
//         if (s == LeaseState::kLost) StopUnit();  // stop acting as owner
//       });
//   unit->WaitLost(absl::InfiniteFuture());  // or poll unit->state()
//   keeper.Stop(/*release=*/true);
//
// Every kept lease has its local expiry watched at every moment, whatever
// else is in flight (a renew, a Lease::SetValue, a release): the scheduler
// reports it lost at Lease::expiry() (which already stops the safety margin
// short of the computed end, see SafetyMargin), even when every worker hangs.
//
// Timing: a renew is sent when renew_fraction of the period has passed and
// each attempt gives up after a third of the time left, so a TTL leaves
// room for about three tries. Choose a TTL of at least three times the
// longest request you expect plus the safety margin; a renew that cannot
// finish before the local expiry reports the lease lost.
//
// Thread-safety: all methods are safe from any thread. Callbacks run on one
// Keeper thread, in the order the states changed, never under an internal
// lock (a slow callback delays other callbacks, not renews, and never a lost
// Signal: those fire on the thread that saw the loss, before any callback
// runs). A callback may call Add, Remove and Stop, but must not destroy the
// Keeper.
#ifndef LEASEHOLD_LEASE_KEEPER_H_
#define LEASEHOLD_LEASE_KEEPER_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <random>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "lease/lease_manager.h"
#include "lease/signal.h"
#include "registry/cancel.h"
#include "registry/clock.h"

namespace leasehold::lease {

enum class LeaseState { kHeld, kSuspect, kLost };
const char* LeaseStateName(LeaseState state);  // "held", "suspect", "lost"

using StateCallback = std::function<void(LeaseState)>;
// Gets the lease's new local expiry (Lease::expiry) after each renew that
// succeeded: when its holder stops believing unless it is renewed again.
using RenewCallback = std::function<void(absl::Time expiry)>;

struct KeeperOptions {
  // Renew when this fraction of the period has passed since the last grant
  // (sent). Default 1/3: two more tries fit in the TTL. REQUIRES: in (0, 1).
  double renew_fraction = 1.0 / 3;
  // Each renew moves by a random amount up to ±jitter × the renew interval,
  // so leases acquired together do not renew together. A renew that falls
  // due within a tenth of that (jitter / 10 × its interval) after one that
  // is due now is sent with it, early: one wake-up of the Keeper's threads
  // then serves many renews (with jitter 0, every renew is exactly on
  // time). Default 0.1. REQUIRES: in [0, 1).
  double jitter = 0.1;
  // Delay before retrying a failed renew; doubles up to max_backoff, never
  // past the lease's expiry.
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(2);
  // Renews in flight at once (worker threads; the etcd client keeps one
  // connection per thread). Default 16.
  int workers = 16;
  // Schedules renews and waits. Use the LeaseManager's clock. Default:
  // RealClock().
  Clock* clock = nullptr;
};

// A lease the Keeper keeps, and its state.
class KeptLease {
 public:
  // The lease (fence(), time_remaining() and index() are safe to read
  // while the Keeper renews it; a Lease::SetValue is serialized with its
  // renews, and its expiry stays watched meanwhile).
  const Lease& lease() const { return *lease_; }
  Lease& lease() { return *lease_; }
  LeaseState state() const;

  // Blocks while state() == `state`. Returns the state when it changed, or
  // the unchanged state at `deadline` (on the Keeper's clock) or on cancel.
  LeaseState WaitWhile(LeaseState state, absl::Time deadline,
                       const CancelToken* cancel = nullptr) const;
  // true once lost; false at `deadline` or on cancel.
  bool WaitLost(absl::Time deadline, const CancelToken* cancel = nullptr) const;

 private:
  friend class Keeper;
  KeptLease(std::unique_ptr<Lease> lease, StateCallback on_change,
            std::shared_ptr<Signal> lost, RenewCallback on_renewed,
            Clock* clock)
      : lease_(std::move(lease)),
        on_change_(std::move(on_change)),
        lost_(std::move(lost)),
        on_renewed_(std::move(on_renewed)),
        clock_(clock) {}

  const std::unique_ptr<Lease> lease_;
  const StateCallback on_change_;
  const std::shared_ptr<Signal> lost_;
  const RenewCallback on_renewed_;
  Clock* const clock_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  LeaseState state_ ABSL_GUARDED_BY(mu_) = LeaseState::kHeld;

  // Scheduling, guarded by the Keeper's mu_.
  bool kept_ = true;         // false once lost or removed
  bool removed_ = false;     // Remove() or Stop() took it back
  bool busy_ = false;        // a worker is renewing (or giving it back)
  uint64_t renew_seq_ = 0;   // the heap entry that is its next renew
  uint64_t expiry_seq_ = 0;  // the heap entry that checks its expiry
  absl::Duration backoff_ = absl::ZeroDuration();
};

class Keeper {
 public:
  explicit Keeper(KeeperOptions options = {});
  // Stop(false), then waits for the callback thread. Renews in flight are
  // waited for (each is bounded by the registry's request timeout).
  // REQUIRES: not called from a callback.
  ~Keeper();

  Keeper(const Keeper&) = delete;
  Keeper& operator=(const Keeper&) = delete;

  // Keeps `lease`, renewing it with its period(). `on_change` (optional)
  // gets every state change. `lost` (optional) fires when the lease is lost
  // (not when removed), with kAborted and the reason, before `on_change`
  // hears of it. `on_renewed` (optional) gets the new local expiry after
  // every renew that succeeded, on the callback thread, in order with the
  // state changes (a holder that logs it leaves a record of how long it
  // believed, even if it dies before it can report a loss). After Stop the
  // lease is returned lost (nothing fires).
  std::shared_ptr<KeptLease> Add(std::unique_ptr<Lease> lease,
                                 StateCallback on_change = nullptr,
                                 std::shared_ptr<Signal> lost = nullptr,
                                 RenewCallback on_renewed = nullptr);

  // Stops keeping `kept` (it becomes lost) and, with `release`, releases it
  // (Lease::Release's status; OK without release). A renew of it in flight
  // is waited for (bounded by the registry's request timeout; from a
  // callback, the other callbacks wait that long too): once Remove returns,
  // the Keeper makes no more calls on the lease, so its registry may be
  // closed even while other leases of the Keeper go on. Its callbacks
  // already queued (kLost among them) may still run after Remove returns:
  // what they use must outlive the Keeper, or be held by them.
  absl::Status Remove(const std::shared_ptr<KeptLease>& kept, bool release);

  // Stops all renewing. Every lease still kept becomes lost and its
  // callback runs; then, with `release`, each is released (best effort,
  // `workers` at a time), so no holder is still acting on a lease a standby
  // can already take. When Stop returns, callbacks have run and releases
  // are done; called from a callback, it returns without waiting for the
  // callbacks still queued. Idempotent; later calls wait for the first and,
  // after a Stop from a callback, for the callbacks it left queued.
  void Stop(bool release = false);

  // Leases currently kept (not lost).
  size_t size() const;

 private:
  struct Due {
    absl::Time at;
    uint64_t seq;
    std::shared_ptr<KeptLease> kept;
    // Not a renew: report lost if the lease's local expiry has passed
    // (whether its renew hangs, waits for a worker, or never ran).
    bool expiry_check;
    bool operator>(const Due& other) const {
      return at != other.at ? at > other.at : seq > other.seq;
    }
  };

  // The scheduler never calls the registry, so it reports a local expiry
  // on time even when every worker hangs on a renew.
  void SchedulerLoop();
  void WorkerLoop();
  void NotifierLoop();
  void ReleaseAll(const std::vector<std::shared_ptr<KeptLease>>& leases);
  // Pops the first due entry that still matters (a renew may come up to its
  // Slack() early); nullopt when stopping.
  std::optional<Due> WaitForDue(std::unique_lock<std::mutex>& lock)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // An entry that would do nothing when due: its lease is no longer kept,
  // or a later entry of the same kind replaced it (a renewed lease's old
  // expiry check, a rescheduled renew).
  bool Stale(const Due& due) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // How early `due` may run along with an earlier entry: zero for an expiry
  // check, jitter / 10 × the renew interval for a renew.
  absl::Duration Slack(const Due& due) const;
  // On the scheduler: an expiry check, or a renew handed to the workers.
  void Dispatch(const Due& due) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // On a worker: one renew and what follows from its answer.
  void RenewOne(const std::shared_ptr<KeptLease>& kept,
                std::unique_lock<std::mutex>& lock)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A renew at the next renew time, and an expiry check at the expiry.
  void ScheduleNext(const std::shared_ptr<KeptLease>& kept)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t Push(absl::Time at, std::shared_ptr<KeptLease> kept,
                bool expiry_check) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ScheduleRenew(const std::shared_ptr<KeptLease>& kept, absl::Time at)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Time NextRenew(const Lease& lease) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `why`: for kLost, the reason its lost Signal gives.
  void SetState(const std::shared_ptr<KeptLease>& kept, LeaseState state,
                absl::string_view why = "") ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Fires the lost Signals SetState queued, with `lock` released meanwhile.
  void FireLost(std::unique_lock<std::mutex>& lock)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const KeeperOptions options_;
  Clock* const clock_;

  mutable std::mutex mu_;
  std::condition_variable wake_cv_;     // the scheduler: schedule changed
  std::condition_variable ready_cv_;    // idle workers: a renew is ready
  std::condition_variable notify_cv_;   // the notifier: work or stop
  std::condition_variable drained_cv_;  // Stop: callbacks delivered
  std::condition_variable idle_cv_;     // Remove: a worker let go of one
  std::condition_variable stopped_cv_;
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> heap_
      ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  std::unordered_set<std::shared_ptr<KeptLease>> kept_ ABSL_GUARDED_BY(mu_);
  // Callbacks to deliver: a state change, or a renew (with its expiry).
  struct Note {
    std::shared_ptr<KeptLease> kept;
    LeaseState state;
    std::optional<absl::Time> renewed;
  };
  std::deque<Note> notify_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<std::shared_ptr<Signal>, absl::Status>> to_fire_
      ABSL_GUARDED_BY(mu_);
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
  // Renews due now, waiting for a free worker.
  std::deque<std::shared_ptr<KeptLease>> ready_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool delivering_ ABSL_GUARDED_BY(mu_) = false;  // a callback is running
  bool notifier_done_ ABSL_GUARDED_BY(mu_) = false;
  bool notifier_exited_ ABSL_GUARDED_BY(mu_) = false;  // every callback ran
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;

  std::thread scheduler_;
  std::vector<std::thread> workers_;
  std::thread notifier_;
  std::thread::id notifier_id_;
};

}  // namespace leasehold::lease

#endif  // LEASEHOLD_LEASE_KEEPER_H_
