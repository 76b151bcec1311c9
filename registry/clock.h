// Clock: the one source of time for every expiry and timeout decision.
//
// Nothing in lease/ or registry/ reads the system time directly; each
// component takes a Clock through its Options (default: RealClock()). Tests
// pass a SimulatedClock and move time with Advance(), so no test sleeps to
// wait for a TTL.
//
//   leasehold::SimulatedClock clock;
//   auto registry = leasehold::registry::NewMemoryRegistry({.clock = &clock});
//   ...                                   // set a key with a 5 s TTL
//   clock.Advance(absl::Seconds(6));      // the key has now expired
//
// Thread-safety: every Clock is safe to use from any number of threads.
#ifndef LEASEHOLD_REGISTRY_CLOCK_H_
#define LEASEHOLD_REGISTRY_CLOCK_H_

#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"

namespace leasehold {

class Clock {
 public:
  virtual ~Clock() = default;

  // The current time. Never goes backwards: the real clock is the time
  // since boot, suspend included (CLOCK_BOOTTIME on Linux, elsewhere the
  // monotonic clock), expressed as an absl::Time anchored at the wall time
  // of process start. So a wall-clock step never shortens or stretches a
  // lease, and a lease does not outlive a suspend of the machine: etcd
  // keeps counting its TTL meanwhile.
  virtual absl::Time Now() = 0;

  // Waits on `cv` (with `lock` held, as std::condition_variable::wait does)
  // until it is notified, the clock reaches `deadline`, or spuriously.
  // Returns false once Now() >= deadline, true otherwise; callers re-check
  // their predicate in a loop.
  virtual bool WaitUntil(std::condition_variable& cv,
                         std::unique_lock<std::mutex>& lock,
                         absl::Time deadline) = 0;

  // Blocks the calling thread until Now() >= deadline.
  void SleepUntil(absl::Time deadline);
  void SleepFor(absl::Duration d) { SleepUntil(Now() + d); }
};

// The process-wide real clock (time since boot; see Clock::Now). Its waits
// sleep at most a second at a time, so one that spans a suspend ends at
// most a second after its deadline.
Clock* RealClock();

// A clock that moves only when told to. Waiters blocked in WaitUntil wake
// within about a millisecond of real time after Advance() passes their
// deadline; they are also woken by their condition variable as usual.
class SimulatedClock final : public Clock {
 public:
  explicit SimulatedClock(absl::Time start = absl::FromUnixSeconds(1700000000))
      : now_(start) {}

  absl::Time Now() override;
  bool WaitUntil(std::condition_variable& cv,
                 std::unique_lock<std::mutex>& lock,
                 absl::Time deadline) override;

  void Advance(absl::Duration d);
  void SetTime(absl::Time t);  // REQUIRES: t >= Now()

 private:
  std::mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace leasehold

#endif  // LEASEHOLD_REGISTRY_CLOCK_H_
