// Keeper on the memory registry with a simulated clock. Time moves only by
// Advance(); the tests wait (bounded, in real time) only for the Keeper's
// threads to act on it.
#include "lease/keeper.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lease/lease_manager.h"
#include "registry/memory/memory_registry.h"
#include "tests/testing/eventually.h"
#include "tests/testing/faulty_keys_api.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::lease {
namespace {

using ::leasehold::testing::Eventually;
using ::leasehold::testing::FaultyKeysApi;
using ::leasehold::testing::IsOk;
using ::testing::ElementsAre;
using ::testing::NotNull;

constexpr absl::Duration kPeriod = absl::Seconds(9);
constexpr absl::Duration kInterval = absl::Seconds(3);  // kPeriod / 3

SafetyMargin NoMargin() {
  SafetyMargin margin;
  margin.fraction = 0;
  margin.fixed = absl::ZeroDuration();
  return margin;
}

// Collects the states a callback saw.
class Recorder {
 public:
  StateCallback callback() {
    return [this](LeaseState state) {
      std::lock_guard<std::mutex> lock(mu_);
      states_.push_back(state);
    };
  }
  std::vector<LeaseState> states() const {
    std::lock_guard<std::mutex> lock(mu_);
    return states_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<LeaseState> states_;
};

class KeeperTest : public ::testing::Test {
 protected:
  KeeperTest()
      : memory_(registry::NewMemoryRegistry(MemoryOptionsFor(&clock_))),
        keys_(memory_.get(), &clock_),
        manager_(&keys_, ManagerOptionsFor(&clock_)) {}

  static registry::MemoryOptions MemoryOptionsFor(Clock* clock) {
    registry::MemoryOptions options;
    options.clock = clock;
    return options;
  }
  static LeaseManagerOptions ManagerOptionsFor(Clock* clock) {
    LeaseManagerOptions options;
    options.clock = clock;
    // Exact arithmetic: no safety margin (it has tests of its own).
    options.safety_margin = NoMargin();
    return options;
  }
  KeeperOptions Options(int workers = 4) {
    KeeperOptions options;
    options.clock = &clock_;
    options.jitter = 0;  // renews exactly every kInterval
    options.workers = workers;
    return options;
  }

  std::unique_ptr<Lease> Acquire(const std::string& name,
                                 const std::string& machine = "m") {
    absl::StatusOr<std::unique_ptr<Lease>> lease =
        manager_.AcquireLease(name, machine, 1, kPeriod);
    EXPECT_THAT(lease, IsOk());
    return lease.ok() ? std::move(*lease) : nullptr;
  }
  bool Exists(const std::string& name) {
    return memory_->Get("/leasehold/lease/" + name, {}).ok();
  }
  // True once the Keeper renewed `kept` at the current time.
  static bool RenewedNow(const KeptLease& kept) {
    return kept.lease().time_remaining() == kept.lease().period();
  }

  SimulatedClock clock_;
  std::unique_ptr<registry::KeysApi> memory_;
  FaultyKeysApi keys_;
  LeaseManager manager_;
};

TEST_F(KeeperTest, RenewsEveryThirdOfThePeriodWithOneRequestEach) {
  std::unique_ptr<Lease> lease = Acquire("unit");
  const uint64_t fence = lease->fence();
  Recorder recorder;
  Keeper keeper(Options());
  std::shared_ptr<KeptLease> kept =
      keeper.Add(std::move(lease), recorder.callback());
  clock_.Advance(kInterval - absl::Milliseconds(1));
  for (int i = 1; i <= 10; ++i) {
    clock_.Advance(i == 1 ? absl::Milliseconds(1) : kInterval);
    ASSERT_TRUE(Eventually([&] { return RenewedNow(*kept); })) << i;
  }
  EXPECT_EQ(kept->state(), LeaseState::kHeld);
  EXPECT_EQ(kept->lease().fence(), fence);
  EXPECT_EQ(memory_->Get("/leasehold/lease/unit", {})->node.modified_index,
            kept->lease().index());
  EXPECT_EQ(keys_.calls(FaultyKeysApi::kAll), 1 + 10);  // no extra reads
  EXPECT_TRUE(recorder.states().empty());
}

TEST_F(KeeperTest, SuspectWhileRenewsFailThenHeldAgain) {
  Recorder recorder;
  Keeper keeper(Options());
  std::shared_ptr<KeptLease> kept =
      keeper.Add(Acquire("unit"), recorder.callback());
  keys_.FailNext(FaultyKeysApi::kSet, 2);
  clock_.Advance(kInterval);
  ASSERT_TRUE(
      Eventually([&] { return kept->state() == LeaseState::kSuspect; }));
  // Retries come after 100 ms, then 200 ms: at least 300 ms pass before the
  // third attempt succeeds.
  absl::Duration waited;
  for (int i = 0; i < 100 && kept->state() == LeaseState::kSuspect; ++i) {
    clock_.Advance(absl::Milliseconds(100));
    waited += absl::Milliseconds(100);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(Eventually([&] { return kept->state() == LeaseState::kHeld; }));
  EXPECT_GE(waited, absl::Milliseconds(300));
  EXPECT_EQ(keys_.calls(FaultyKeysApi::kSet), 1 + 3);
  EXPECT_TRUE(RenewedNow(*kept));
  ASSERT_TRUE(Eventually([&] { return recorder.states().size() == 2; }));
  EXPECT_THAT(recorder.states(),
              ElementsAre(LeaseState::kSuspect, LeaseState::kHeld));
}

TEST_F(KeeperTest, ReportsEachRenewsExpiryInOrderWithTheStateChanges) {
  std::mutex mu;
  std::vector<std::string> seen;
  auto note = [&](std::string what) {
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(std::move(what));
  };
  auto seen_now = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return seen;
  };
  // Before the Keeper, which may still report a renew as it stops.
  const absl::Time t0 = clock_.Now();
  Keeper keeper(Options());
  std::shared_ptr<KeptLease> kept = keeper.Add(
      Acquire("unit"), [&](LeaseState state) { note(LeaseStateName(state)); },
      /*lost=*/nullptr,
      [&](absl::Time expiry) {
        note(
            absl::StrCat("renewed until +", absl::FormatDuration(expiry - t0)));
      });
  clock_.Advance(kInterval);
  ASSERT_TRUE(Eventually([&] { return seen_now().size() == 1; }));
  keys_.FailNext(FaultyKeysApi::kSet, 1);
  clock_.Advance(kInterval);
  ASSERT_TRUE(
      Eventually([&] { return kept->state() == LeaseState::kSuspect; }));
  clock_.Advance(absl::Milliseconds(100));  // the retry
  ASSERT_TRUE(Eventually([&] { return seen_now().size() == 4; }));
  keeper.Stop();
  EXPECT_THAT(seen_now(), ElementsAre("renewed until +12s", "suspect", "held",
                                      "renewed until +15.1s", "lost"));
}

TEST_F(KeeperTest, LostWhenStolen) {
  Recorder recorder;
  Keeper keeper(Options());
  std::shared_ptr<KeptLease> kept =
      keeper.Add(Acquire("unit", "a"), recorder.callback());
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<Lease> b,
      manager_.StealLease("unit", "b", 2, kPeriod, kept->lease().index()));
  ASSERT_THAT(b, NotNull());
  clock_.Advance(kInterval);
  EXPECT_TRUE(kept->WaitLost(absl::InfiniteFuture()));
  EXPECT_TRUE(kept->lease().expired());
  EXPECT_EQ(keeper.size(), 0u);
  ASSERT_TRUE(Eventually([&] { return recorder.states().size() == 1; }));
  EXPECT_THAT(recorder.states(), ElementsAre(LeaseState::kLost));
}

TEST_F(KeeperTest, LostAtLocalExpiryWhenTheRegistryIsUnreachable) {
  Keeper keeper(Options());
  std::shared_ptr<KeptLease> kept = keeper.Add(Acquire("unit"));
  keys_.FailNext(FaultyKeysApi::kSet, FaultyKeysApi::kForever);
  clock_.Advance(kInterval);
  ASSERT_TRUE(
      Eventually([&] { return kept->state() == LeaseState::kSuspect; }));
  // Retries back off up to max_backoff; the lease stays suspect while the
  // TTL lasts.
  for (absl::Duration t = kInterval; t < kPeriod - absl::Milliseconds(500);
       t += absl::Milliseconds(500)) {
    clock_.Advance(absl::Milliseconds(500));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_EQ(kept->state(), LeaseState::kSuspect) << t;
  }
  EXPECT_FALSE(kept->lease().expired());
  EXPECT_GE(keys_.calls(FaultyKeysApi::kSet), 5);  // it kept retrying
  clock_.Advance(absl::Milliseconds(500));         // the local expiry
  EXPECT_TRUE(kept->WaitLost(absl::InfiniteFuture()));
}

TEST_F(KeeperTest, LostAtExpiryWhileARenewHangsAndALateSuccessIsReleased) {
  // Acquire through a slow link: the server's TTL starts a second after the
  // holder's, so the server still has the key when the holder gives up.
  keys_.SetDelay(FaultyKeysApi::kSet, absl::Seconds(1));
  std::unique_ptr<Lease> lease;
  std::thread acquirer([&] { lease = Acquire("unit"); });
  ASSERT_TRUE(Eventually([&] { return keys_.in_flight() == 1; }));
  clock_.Advance(absl::Seconds(1));
  acquirer.join();
  keys_.SetDelay(FaultyKeysApi::kSet, absl::ZeroDuration());
  ASSERT_THAT(lease, NotNull());

  Keeper keeper(Options());
  std::shared_ptr<KeptLease> kept = keeper.Add(std::move(lease));
  keys_.Block(FaultyKeysApi::kSet);
  clock_.Advance(kInterval - absl::Seconds(1));
  ASSERT_TRUE(Eventually([&] { return keys_.blocked() == 1; }));
  clock_.Advance(kPeriod - kInterval);  // the holder's expiry
  EXPECT_TRUE(kept->WaitLost(absl::InfiniteFuture()));
  EXPECT_EQ(keys_.blocked(), 1);  // lost was not held up by the renew
  EXPECT_TRUE(Exists("unit"));
  keys_.Unblock();  // the renew lands; the Keeper gives the lease back
  EXPECT_TRUE(Eventually([&] { return !Exists("unit"); }));
}

TEST_F(KeeperTest, RenewsRunConcurrentlyOnABoundedPool) {
  Keeper keeper(Options(/*workers=*/4));
  std::vector<std::shared_ptr<KeptLease>> kept;
  for (int i = 0; i < 12; ++i) {
    kept.push_back(keeper.Add(Acquire("unit-" + std::to_string(i))));
  }
  keys_.Block(FaultyKeysApi::kSet);
  clock_.Advance(kInterval);
  ASSERT_TRUE(Eventually([&] { return keys_.blocked() == 4; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(keys_.blocked(), 4);
  keys_.Unblock();
  for (const auto& k : kept) {
    EXPECT_TRUE(Eventually([&] { return RenewedNow(*k); }));
  }
  EXPECT_EQ(keys_.max_in_flight(), 4);
}

TEST_F(KeeperTest, LostAtExpiryEvenWhenEveryWorkerHangs) {
  // A partitioned agent: more leases hang than the Keeper has workers. The
  // leases whose renews never got a worker must be reported lost at their
  // local expiry all the same, not when the registry comes back.
  Keeper keeper(Options(/*workers=*/2));
  std::vector<std::shared_ptr<KeptLease>> kept;
  for (int i = 0; i < 6; ++i) {
    kept.push_back(keeper.Add(Acquire("unit-" + std::to_string(i))));
  }
  keys_.Block(FaultyKeysApi::kSet);
  clock_.Advance(kInterval);
  ASSERT_TRUE(Eventually([&] { return keys_.blocked() == 2; }));
  clock_.Advance(kPeriod - kInterval);  // every holder's local expiry
  for (const auto& k : kept) {
    EXPECT_TRUE(Eventually([&] { return k->state() == LeaseState::kLost; }));
  }
  EXPECT_EQ(keys_.blocked(), 2);  // still cut off: nobody waited for it
  keys_.Unblock();
}

TEST_F(KeeperTest, StopReportsLostBeforeReleasing) {
  // Before the Keeper, whose callbacks use them until it stops.
  std::mutex mu;
  std::vector<bool> key_present_when_told;
  Keeper keeper(Options());
  std::vector<std::shared_ptr<KeptLease>> kept;
  for (int i = 0; i < 3; ++i) {
    const std::string name = "unit-" + std::to_string(i);
    kept.push_back(keeper.Add(Acquire(name), [&, name](LeaseState state) {
      EXPECT_EQ(state, LeaseState::kLost);
      const bool present = Exists(name);
      std::lock_guard<std::mutex> lock(mu);
      key_present_when_told.push_back(present);
    }));
  }
  keeper.Stop(/*release=*/true);
  EXPECT_THAT(key_present_when_told, ElementsAre(true, true, true));
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(Exists("unit-" + std::to_string(i)));
    EXPECT_EQ(kept[i]->state(), LeaseState::kLost);
  }
  EXPECT_EQ(keeper.size(), 0u);
  keeper.Stop();  // idempotent
}

TEST_F(KeeperTest, StopWithoutReleaseLeavesKeysToExpire) {
  Keeper keeper(Options());
  std::shared_ptr<KeptLease> kept = keeper.Add(Acquire("unit"));
  keeper.Stop();
  EXPECT_EQ(kept->state(), LeaseState::kLost);
  EXPECT_TRUE(Exists("unit"));
  std::shared_ptr<KeptLease> late = keeper.Add(Acquire("late"));
  EXPECT_EQ(late->state(), LeaseState::kLost);
}

TEST_F(KeeperTest, RemoveStopsKeepingOneLease) {
  Keeper keeper(Options());
  std::shared_ptr<KeptLease> a = keeper.Add(Acquire("a"));
  std::shared_ptr<KeptLease> b = keeper.Add(Acquire("b"));
  EXPECT_THAT(keeper.Remove(a, /*release=*/true), IsOk());
  EXPECT_EQ(a->state(), LeaseState::kLost);
  EXPECT_FALSE(Exists("a"));
  EXPECT_EQ(keeper.size(), 1u);
  clock_.Advance(kInterval);
  EXPECT_TRUE(Eventually([&] { return RenewedNow(*b); }));
}

// Once Remove returns, the Keeper makes no more calls on the lease, so its
// registry may be closed: a renew in flight is waited for, also when the
// lease is not released (a session orphaned for a successor), and nothing
// follows it.
TEST_F(KeeperTest, RemoveWaitsForTheRenewInFlight) {
  Keeper keeper(Options());
  std::shared_ptr<KeptLease> kept = keeper.Add(Acquire("unit"));
  keys_.Block(FaultyKeysApi::kSet);
  clock_.Advance(kInterval);
  ASSERT_TRUE(Eventually([&] { return keys_.blocked() == 1; }));
  std::atomic<bool> removed{false};
  std::thread remover([&] {
    EXPECT_THAT(keeper.Remove(kept, /*release=*/false), IsOk());
    removed = true;
  });
  const bool returned_early = Eventually([&] { return removed.load(); },
                                         std::chrono::milliseconds(300));
  keys_.Unblock();
  remover.join();
  EXPECT_FALSE(returned_early);
  EXPECT_EQ(kept->state(), LeaseState::kLost);
  EXPECT_EQ(keys_.in_flight(), 0);
  // The renew went through, and the lease is left to its successor.
  const int calls = keys_.calls(FaultyKeysApi::kAll);
  clock_.Advance(kInterval);
  EXPECT_FALSE(
      Eventually([&] { return keys_.calls(FaultyKeysApi::kAll) != calls; },
                 std::chrono::milliseconds(200)));
  EXPECT_TRUE(Exists("unit"));
}

TEST_F(KeeperTest, CallbackMayStopTheKeeper) {
  auto keeper = std::make_unique<Keeper>(Options());
  std::shared_ptr<KeptLease> a =
      keeper->Add(Acquire("a", "a"), [&](LeaseState state) {
        if (state == LeaseState::kLost) keeper->Stop(/*release=*/true);
      });
  std::shared_ptr<KeptLease> b = keeper->Add(Acquire("b"));
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<Lease> thief,
      manager_.StealLease("a", "thief", 1, kPeriod, a->lease().index()));
  clock_.Advance(kInterval);
  EXPECT_TRUE(b->WaitLost(absl::InfiniteFuture()));
  EXPECT_TRUE(Eventually([&] { return !Exists("b"); }));
  keeper.reset();
  EXPECT_TRUE(Exists("a"));  // the thief's
}

// A callback may stop the Keeper without waiting for the callbacks still
// queued; a Stop from another thread then returns only once they have run.
TEST_F(KeeperTest, StopWaitsForTheCallbacksAStopFromACallbackLeftQueued) {
  struct Gate {
    std::mutex mu;
    std::condition_variable cv;
    bool open = false, told = false;
  };
  const auto gate = std::make_shared<Gate>();
  Keeper keeper(Options());
  std::shared_ptr<KeptLease> a =
      keeper.Add(Acquire("a", "a"), [&keeper](LeaseState state) {
        if (state == LeaseState::kLost) keeper.Stop();
      });
  std::shared_ptr<KeptLease> b =
      keeper.Add(Acquire("b"), [gate](LeaseState state) {
        if (state != LeaseState::kLost) return;
        std::unique_lock<std::mutex> lock(gate->mu);
        gate->cv.wait(lock, [&] { return gate->open; });
        gate->told = true;
      });
  const auto open = [gate] {
    {
      std::lock_guard<std::mutex> lock(gate->mu);
      gate->open = true;
    }
    gate->cv.notify_all();
  };
  const absl::Cleanup open_anyway = open;
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<Lease> thief,
      manager_.StealLease("a", "thief", 1, kPeriod, a->lease().index()));
  clock_.Advance(kInterval);  // a's renew finds it stolen; its callback stops
  ASSERT_TRUE(b->WaitLost(absl::InfiniteFuture()));
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    keeper.Stop();
    stopped = true;
  });
  const bool returned_early = Eventually([&] { return stopped.load(); },
                                         std::chrono::milliseconds(300));
  open();
  stopper.join();
  EXPECT_FALSE(returned_early);
  std::lock_guard<std::mutex> lock(gate->mu);
  EXPECT_TRUE(gate->told);
}

TEST_F(KeeperTest, WaitLostHonoursCancel) {
  Keeper keeper(Options());
  std::shared_ptr<KeptLease> kept = keeper.Add(Acquire("unit"));
  CancelToken cancel;
  std::thread canceller([&] { cancel.Cancel(); });
  EXPECT_FALSE(kept->WaitLost(absl::InfiniteFuture(), &cancel));
  canceller.join();
  EXPECT_EQ(kept->state(), LeaseState::kHeld);
}

TEST_F(KeeperTest, KeepsTenThousandLeases) {
  constexpr int kLeases = 10000;
  KeeperOptions options = Options(/*workers=*/16);
  options.jitter = 0.1;
  Keeper keeper(options);
  std::vector<std::shared_ptr<KeptLease>> kept;
  kept.reserve(kLeases);
  for (int i = 0; i < kLeases; ++i) {
    kept.push_back(keeper.Add(Acquire("unit-" + std::to_string(i))));
  }
  // Every step passes every lease's (jittered) renew time but none's TTL.
  constexpr int kSteps = 6;
  for (int step = 0; step < kSteps; ++step) {
    clock_.Advance(absl::Milliseconds(3500));
    ASSERT_TRUE(Eventually([&] {
      for (const auto& k : kept) {
        if (!RenewedNow(*k)) return false;
      }
      return true;
    })) << step;
  }
  EXPECT_EQ(keeper.size(), static_cast<size_t>(kLeases));
  EXPECT_EQ(keys_.calls(FaultyKeysApi::kAll), kLeases * (1 + kSteps));
  EXPECT_LE(keys_.max_in_flight(), 16);
}

TEST_F(KeeperTest, StuckRenewIsRetriedBeforeTheLeaseExpires) {
  Recorder recorder;
  Keeper keeper(Options());
  std::shared_ptr<KeptLease> kept =
      keeper.Add(Acquire("unit"), recorder.callback());
  // The renew at t=3 goes to a member that never answers.
  keys_.StallNext(FaultyKeysApi::kSet, 1);
  clock_.Advance(kInterval);
  ASSERT_TRUE(Eventually([&] { return keys_.blocked() == 1; }));
  // It gives up at t=5, a third of the 6 s that were left, and the retry
  // renews the lease long before its expiry at t=9.
  clock_.Advance(absl::Seconds(2));
  const bool renewed = Eventually([&] { return RenewedNow(*kept); });
  keys_.Unblock();
  ASSERT_TRUE(renewed);
  clock_.Advance(absl::Seconds(5));  // past the first expiry
  EXPECT_EQ(kept->state(), LeaseState::kHeld);
  EXPECT_EQ(memory_->Get("/leasehold/lease/unit", {})->node.modified_index,
            kept->lease().index());
}

}  // namespace
}  // namespace leasehold::lease
