#include "registry/clock.h"

#include <time.h>

#include <algorithm>
#include <chrono>

#include "absl/time/clock.h"

namespace leasehold {
namespace {

// How long a simulated-time waiter sleeps in real time before it looks at
// the simulated clock again. Short enough that tests advancing the clock see
// waiters react at once; long enough not to burn a core.
constexpr auto kSimulatedPollSlice = std::chrono::milliseconds(1);

// The time since boot including suspend (CLOCK_BOOTTIME on Linux): etcd
// keeps counting a lease's TTL while this machine sleeps, so must we. Where
// there is no such clock, the monotonic clock.
absl::Duration SinceBoot() {
#ifdef CLOCK_BOOTTIME
  timespec ts;
  if (clock_gettime(CLOCK_BOOTTIME, &ts) == 0)
    return absl::DurationFromTimespec(ts);
#endif
  return absl::FromChrono(std::chrono::steady_clock::now().time_since_epoch());
}

// The longest a real-clock wait sleeps before it reads the clock again:
// condition variables wait on the monotonic clock, which stands still
// during suspend, so a wait across a suspend ends at most this late.
constexpr absl::Duration kRealWaitSlice = absl::Seconds(1);

class RealClockImpl final : public Clock {
 public:
  RealClockImpl() : wall_start_(absl::Now()), boot_start_(SinceBoot()) {}

  absl::Time Now() override {
    return wall_start_ + (SinceBoot() - boot_start_);
  }

  bool WaitUntil(std::condition_variable& cv,
                 std::unique_lock<std::mutex>& lock,
                 absl::Time deadline) override {
    const absl::Duration left = deadline - Now();
    if (left <= absl::ZeroDuration()) return false;
    if (left == absl::InfiniteDuration()) {
      cv.wait(lock);
      return true;
    }
    cv.wait_for(lock,
                absl::ToChronoNanoseconds(std::min(left, kRealWaitSlice)));
    return Now() < deadline;
  }

 private:
  const absl::Time wall_start_;
  const absl::Duration boot_start_;
};

}  // namespace

void Clock::SleepUntil(absl::Time deadline) {
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock<std::mutex> lock(mu);
  while (WaitUntil(cv, lock, deadline)) {
  }
}

Clock* RealClock() {
  static Clock* const clock = new RealClockImpl();
  return clock;
}

absl::Time SimulatedClock::Now() {
  std::lock_guard<std::mutex> lock(mu_);
  return now_;
}

bool SimulatedClock::WaitUntil(std::condition_variable& cv,
                               std::unique_lock<std::mutex>& lock,
                               absl::Time deadline) {
  if (Now() >= deadline) return false;
  cv.wait_for(lock, kSimulatedPollSlice);
  return Now() < deadline;
}

void SimulatedClock::Advance(absl::Duration d) {
  std::lock_guard<std::mutex> lock(mu_);
  now_ += d;
}

void SimulatedClock::SetTime(absl::Time t) {
  std::lock_guard<std::mutex> lock(mu_);
  if (t > now_) now_ = t;
}

}  // namespace leasehold
