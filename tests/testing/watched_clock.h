// WatchedClock: a simulated clock that tells when someone has started
// waiting on it, so that a test moves time only once a thread is blocked
// (a sync loop between rounds, a thread waiting for another's work).
//
//   WatchedClock clock;
//   ... start a thread that waits on `clock` ...
//   ASSERT_TRUE(Eventually([&] { return clock.waits() > 0; }));
//   clock.Advance(absl::Seconds(10));
//
// Thread-safety: thread-safe, as every Clock.
#ifndef LEASEHOLD_TESTS_TESTING_WATCHED_CLOCK_H_
#define LEASEHOLD_TESTS_TESTING_WATCHED_CLOCK_H_

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "absl/time/time.h"
#include "registry/clock.h"

namespace leasehold::testing {

class WatchedClock final : public Clock {
 public:
  absl::Time Now() override { return clock_.Now(); }
  bool WaitUntil(std::condition_variable& cv,
                 std::unique_lock<std::mutex>& lock,
                 absl::Time deadline) override {
    waits_.fetch_add(1);
    {
      std::lock_guard<std::mutex> guard(mu_);
      if (deadline > latest_deadline_) latest_deadline_ = deadline;
    }
    waiting_.fetch_add(1);
    const bool before = clock_.WaitUntil(cv, lock, deadline);
    waiting_.fetch_sub(1);
    return before;
  }
  // Calls of WaitUntil so far (each round of a waiting loop is one).
  int waits() const { return waits_.load(); }
  // Threads inside WaitUntil right now.
  int waiting() const { return waiting_.load(); }
  // The latest deadline anyone has waited for: a loop that sleeps an
  // interval at a time has begun its next round once this moves on.
  absl::Time latest_deadline() const {
    std::lock_guard<std::mutex> guard(mu_);
    return latest_deadline_;
  }
  void Advance(absl::Duration d) { clock_.Advance(d); }

 private:
  SimulatedClock clock_;
  std::atomic<int> waits_{0};
  std::atomic<int> waiting_{0};
  mutable std::mutex mu_;
  absl::Time latest_deadline_ = absl::InfinitePast();
};

}  // namespace leasehold::testing

#endif  // LEASEHOLD_TESTS_TESTING_WATCHED_CLOCK_H_
