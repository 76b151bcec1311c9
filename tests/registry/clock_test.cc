#include "registry/clock.h"

#include <atomic>
#include <thread>

#include "gtest/gtest.h"

namespace leasehold {
namespace {

TEST(RealClockTest, NeverGoesBackwards) {
  absl::Time last = RealClock()->Now();
  for (int i = 0; i < 1000; ++i) {
    const absl::Time now = RealClock()->Now();
    EXPECT_GE(now, last);
    last = now;
  }
}

TEST(RealClockTest, WaitUntilAPastDeadlineReturnsFalseAtOnce) {
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock<std::mutex> lock(mu);
  EXPECT_FALSE(
      RealClock()->WaitUntil(cv, lock, RealClock()->Now() - absl::Seconds(1)));
}

TEST(RealClockTest, SleepForSleepsAtLeastThatLong) {
  const absl::Time start = RealClock()->Now();
  RealClock()->SleepFor(absl::Milliseconds(20));
  EXPECT_GE(RealClock()->Now() - start, absl::Milliseconds(20));
}

TEST(SimulatedClockTest, MovesOnlyWhenAdvanced) {
  SimulatedClock clock(absl::FromUnixSeconds(100));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(100));
  clock.Advance(absl::Seconds(5));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(105));
  clock.SetTime(absl::FromUnixSeconds(103));  // never backwards
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(105));
  clock.SetTime(absl::FromUnixSeconds(110));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(110));
}

TEST(SimulatedClockTest, WaiterWakesWhenTheClockPassesItsDeadline) {
  SimulatedClock clock;
  std::atomic<bool> woke{false};
  // The deadline is fixed before the thread starts: the test advances the
  // clock without waiting for the thread to be scheduled.
  const absl::Time deadline = clock.Now() + absl::Hours(1);
  std::thread waiter([&] {
    clock.SleepUntil(deadline);
    woke = true;
  });
  clock.Advance(absl::Minutes(59));
  EXPECT_FALSE(woke);  // an hour of simulated time has not passed
  clock.Advance(absl::Minutes(1));
  waiter.join();  // returns only because the simulated hour passed
  EXPECT_TRUE(woke);
}

TEST(SimulatedClockTest, WaitUntilReturnsTrueWhileBeforeTheDeadline) {
  SimulatedClock clock;
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock<std::mutex> lock(mu);
  EXPECT_TRUE(clock.WaitUntil(cv, lock, clock.Now() + absl::Seconds(1)));
  EXPECT_FALSE(clock.WaitUntil(cv, lock, clock.Now()));
}

}  // namespace
}  // namespace leasehold
