#include "registry/clock.h"

#include <chrono>

#include "absl/time/clock.h"

namespace leasehold {
namespace {

// How long a simulated-time waiter sleeps in real time before it looks at
// the simulated clock again. Short enough that tests advancing the clock see
// waiters react at once; long enough not to burn a core.
constexpr auto kSimulatedPollSlice = std::chrono::milliseconds(1);

class RealClockImpl final : public Clock {
 public:
  RealClockImpl()
      : wall_start_(absl::Now()),
        steady_start_(std::chrono::steady_clock::now()) {}

  absl::Time Now() override {
    return wall_start_ +
           absl::FromChrono(std::chrono::steady_clock::now() - steady_start_);
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
    // Wait against the steady clock so a wall-clock step cannot distort it.
    cv.wait_until(lock, std::chrono::steady_clock::now() +
                            absl::ToChronoNanoseconds(left));
    return Now() < deadline;
  }

 private:
  const absl::Time wall_start_;
  const std::chrono::steady_clock::time_point steady_start_;
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
