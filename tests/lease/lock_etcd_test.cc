// Sessions, locks and elections against a real etcd (the fixture's).
#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lease/barrier.h"
#include "lease/election.h"
#include "lease/lock_service.h"
#include "lease/mutex.h"
#include "lease/semaphore.h"
#include "lease/session.h"
#include "registry/cancel.h"
#include "registry/open.h"
#include "tests/lease/lock_test_util.h"
#include "tests/lease/rw_contention.h"
#include "tests/testing/etcd_server.h"
#include "tests/testing/faulty_keys_api.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::lease {
namespace {

using ::leasehold::testing::FaultyKeysApi;
using ::leasehold::testing::SharedEtcd;
using testing::Eventually;
using ::testing::IsEmpty;
using testing::KeysUnder;

// Each test works under its own prefix on the shared server.
class LockEtcdTest : public ::testing::Test {
 protected:
  LockEtcdTest()
      : prefix_(absl::StrCat(
            "/locks-",
            ::testing::UnitTest::GetInstance()->current_test_info()->name(),
            "/")) {
    absl::StatusOr<std::unique_ptr<registry::KeysApi>> keys =
        registry::Open(SharedEtcd().uri());
    EXPECT_TRUE(keys.ok()) << keys.status();
    keys_ = std::move(*keys);
  }
  ~LockEtcdTest() override { keeper_.Stop(); }

  std::unique_ptr<Session> NewSession(absl::Duration ttl,
                                      registry::KeysApi* keys = nullptr) {
    SessionOptions options;
    options.ttl = ttl;
    options.prefix = prefix_;
    options.keeper = &keeper_;
    absl::StatusOr<std::unique_ptr<Session>> session =
        Session::Create(keys != nullptr ? keys : keys_.get(), options);
    EXPECT_TRUE(session.ok()) << session.status();
    return session.ok() ? std::move(*session) : nullptr;
  }

  // Polls until `min_time` has passed and each of `keys` has been renewed
  // (its modifiedIndex moved) at least `min_renewals` times. False when a
  // key vanished or the generous deadline passed.
  bool WaitForRenewals(const std::vector<std::string>& keys, int min_renewals,
                       absl::Duration min_time) {
    const absl::Time start = RealClock()->Now();
    std::vector<uint64_t> last(keys.size(), 0);
    std::vector<int> renewals(keys.size(), -1);  // the first read is no renewal
    return Eventually(
        [&] {
          bool enough = RealClock()->Now() - start >= min_time;
          for (size_t i = 0; i < keys.size(); ++i) {
            absl::StatusOr<registry::Response> r = keys_->Get(keys[i], {});
            if (!r.ok()) return true;  // gone: the caller's checks say so
            if (r->node.modified_index != last[i]) {
              last[i] = r->node.modified_index;
              ++renewals[i];
            }
            enough = enough && renewals[i] >= min_renewals;
          }
          return enough;
        },
        std::chrono::seconds(30));
  }

  const std::string prefix_;
  std::unique_ptr<registry::KeysApi> keys_;
  Keeper keeper_;
};

// Sessions with a 1 s TTL: every key lives on only by renewals (about every
// 330 ms), each of which moves its modifiedIndex. Waiters that stay queued
// for 3 s keep their places: the holder holds, a waiter that re-reads the
// queue waits on, and the lock passes in queue order.
TEST_F(LockEtcdTest, OneSecondSessionsKeepTheLockQueueInOrderForThreeSeconds) {
  FaultyKeysApi keys(keys_.get());  // counts the waiters' reads
  auto holder_session = NewSession(absl::Seconds(1));
  Mutex holder(holder_session.get(), "job");
  ASSERT_OK(holder.Lock());
  constexpr int kWaiters = 3;
  std::vector<std::unique_ptr<Session>> sessions;
  std::vector<std::unique_ptr<Mutex>> mutexes;
  std::vector<std::string> queue = {holder.key()};
  const std::string dir = prefix_ + "lock/job";
  testing::Waiters waiters(kWaiters);
  for (int i = 0; i < kWaiters; ++i) {
    sessions.push_back(NewSession(absl::Seconds(1), &keys));
    mutexes.push_back(std::make_unique<Mutex>(sessions.back().get(), "job"));
    Mutex* mutex = mutexes.back().get();
    waiters.Start(i, [mutex](const CancelToken* cancel) {
      return mutex->Lock(absl::InfiniteFuture(), cancel);
    });
    ASSERT_TRUE(Eventually(
        [&] { return KeysUnder(keys_.get(), dir).size() == i + 2u; }));
    queue.push_back(mutex->key());
  }

  ASSERT_TRUE(WaitForRenewals(queue, 3, absl::Seconds(3)));
  EXPECT_THAT(KeysUnder(keys_.get(), dir),
              ::testing::UnorderedElementsAreArray(queue));
  EXPECT_TRUE(holder.IsOwner());
  for (int i = 0; i < kWaiters; ++i) {
    EXPECT_EQ(waiters.state(i), 0) << i;
    EXPECT_FALSE(mutexes[i]->lost()->fired()) << i;
  }

  // The first waiter gives up; the second re-reads the queue and waits on.
  const int gets = keys.calls(FaultyKeysApi::kGet);
  waiters.Cancel(0);
  ASSERT_TRUE(Eventually([&] {
    return waiters.state(0) != 0 && keys.calls(FaultyKeysApi::kGet) > gets;
  }));
  EXPECT_THAT(waiters.result(0),
              ::leasehold::testing::StatusIs(absl::StatusCode::kCancelled));
  EXPECT_TRUE(testing::StaysFalse([&] { return waiters.state(1) != 0; },
                                  std::chrono::milliseconds(500)));
  EXPECT_TRUE(holder.IsOwner());

  ASSERT_OK(holder.Unlock());
  ASSERT_TRUE(Eventually([&] { return waiters.state(1) != 0; }));
  ASSERT_OK(waiters.result(1));
  EXPECT_TRUE(mutexes[1]->IsOwner());
  EXPECT_EQ(waiters.state(2), 0);
  ASSERT_OK(mutexes[1]->Unlock());
  ASSERT_TRUE(Eventually([&] { return waiters.state(2) != 0; }));
  ASSERT_OK(waiters.result(2));
  EXPECT_GT(mutexes[2]->fence(), mutexes[1]->fence());
  ASSERT_OK(mutexes[2]->Unlock());
}

// The same for an election, where the leader also proclaims while the
// candidates wait: a waiting candidate's Leader() and observer follow the
// leader's value, and leadership passes in queue order.
TEST_F(LockEtcdTest,
       OneSecondSessionsKeepTheLeaderWhileCandidatesWaitAndItProclaims) {
  auto leader_session = NewSession(absl::Seconds(1));
  Election leader(leader_session.get(), "engine");
  ASSERT_OK(leader.Campaign("a1"));
  constexpr int kCandidates = 2;
  std::vector<std::unique_ptr<Session>> sessions;
  std::vector<std::unique_ptr<Election>> candidates;
  std::vector<std::string> queue = {leader.key()};
  const std::string dir = prefix_ + "election/engine";
  testing::Waiters waiters(kCandidates);
  for (int i = 0; i < kCandidates; ++i) {
    sessions.push_back(NewSession(absl::Seconds(1)));
    candidates.push_back(
        std::make_unique<Election>(sessions.back().get(), "engine"));
    Election* candidate = candidates.back().get();
    waiters.Start(i, [candidate, i](const CancelToken* cancel) {
      return candidate->Campaign(absl::StrCat("c", i), absl::InfiniteFuture(),
                                 cancel);
    });
    ASSERT_TRUE(Eventually(
        [&] { return KeysUnder(keys_.get(), dir).size() == i + 2u; }));
    queue.push_back(candidates[i]->key());
  }
  Election& watcher = *candidates[1];
  std::unique_ptr<LeaderObserver> observer = watcher.Observe();
  auto next_value = [&]() -> std::string {
    auto next = observer->Next(RealClock()->Now() + absl::Seconds(10));
    if (!next.ok()) return next.status().ToString();
    return next->has_value() ? (*next)->value : "-";
  };
  EXPECT_EQ(next_value(), "a1");

  ASSERT_TRUE(WaitForRenewals(queue, 3, absl::Milliseconds(1500)));
  ASSERT_OK(leader.Proclaim("a2"));
  ASSERT_TRUE(WaitForRenewals(queue, 3, absl::Milliseconds(1500)));
  ASSERT_OK(leader.Proclaim("a3"));
  EXPECT_EQ(next_value(), "a2");  // renewals are no change of leader
  EXPECT_EQ(next_value(), "a3");
  ASSERT_OK_AND_ASSIGN(std::optional<LeaderInfo> seen, watcher.Leader());
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->value, "a3");
  EXPECT_EQ(seen->key, leader.key());
  EXPECT_EQ(seen->fence, leader.fence());
  EXPECT_TRUE(leader.IsLeader());
  for (int i = 0; i < kCandidates; ++i) {
    EXPECT_EQ(candidates[i]->Status(), ElectionStatus::kCandidate) << i;
  }

  ASSERT_OK(leader.Resign());
  ASSERT_TRUE(Eventually([&] { return waiters.state(0) != 0; }));
  ASSERT_OK(waiters.result(0));
  EXPECT_EQ(next_value(), "c0");
  EXPECT_EQ(watcher.Status(), ElectionStatus::kCandidate);
  ASSERT_OK(candidates[0]->Resign());
  ASSERT_TRUE(Eventually([&] { return waiters.state(1) != 0; }));
  ASSERT_OK(waiters.result(1));
  ASSERT_OK(watcher.Resign());
}

TEST_F(LockEtcdTest, ThousandContendersCountToThousandInFifoOrder) {
  // A pool keeps 32 contenders (and sessions) in flight at once.
  const absl::Time start = RealClock()->Now();
  testing::ContentionResult result = testing::RunContention(
      keys_.get(), RealClock(), 1000, /*in_flight=*/32, absl::Seconds(30));
  EXPECT_THAT(result.errors, IsEmpty());
  EXPECT_EQ(result.counter, 1000);
  ASSERT_EQ(result.fences.size(), 1000u);
  for (size_t i = 1; i < result.fences.size(); ++i) {
    ASSERT_LT(result.fences[i - 1], result.fences[i]) << i;
  }
  EXPECT_THAT(KeysUnder(keys_.get(), "/leasehold/lock/counter"), IsEmpty());
  EXPECT_LT(RealClock()->Now() - start, absl::Seconds(60));
}

TEST_F(LockEtcdTest, HundredWaitersShareOneWatchAndGoInQueueOrder) {
  FaultyKeysApi keys(keys_.get());
  auto holder_session = NewSession(absl::Seconds(30), &keys);
  Mutex holder(holder_session.get(), "job");
  ASSERT_OK(holder.Lock());
  constexpr int kWaiters = 100;
  std::vector<std::unique_ptr<Session>> sessions;
  std::vector<std::unique_ptr<Mutex>> waiters;
  for (int i = 0; i < kWaiters; ++i) {
    sessions.push_back(NewSession(absl::Seconds(30), &keys));
    waiters.push_back(std::make_unique<Mutex>(sessions.back().get(), "job"));
  }
  std::mutex order_mu;
  std::vector<uint64_t> order;
  std::vector<std::thread> threads;
  for (int i = 0; i < kWaiters; ++i) {
    threads.emplace_back([&, i] {
      if (!waiters[i]->Lock().ok()) return;
      {
        std::lock_guard<std::mutex> lock(order_mu);
        order.push_back(waiters[i]->fence());
      }
      waiters[i]->Unlock().IgnoreError();
    });
  }
  const std::string dir = prefix_ + "lock/job";
  ASSERT_TRUE(Eventually(
      [&] { return KeysUnder(keys_.get(), dir).size() == kWaiters + 1u; }));
  // 100 waiters, one watch in flight: the process's shared watch.
  ASSERT_TRUE(Eventually([&] { return keys.in_flight() == 1; }));
  ASSERT_OK(holder.Unlock());
  for (std::thread& t : threads) t.join();
  ASSERT_EQ(order.size(), static_cast<size_t>(kWaiters));
  for (size_t i = 1; i < order.size(); ++i) ASSERT_LT(order[i - 1], order[i]);
  EXPECT_THAT(KeysUnder(keys_.get(), dir), IsEmpty());
}

TEST_F(LockEtcdTest, ExpiredHolderLosesAndTheWaiterGetsInAfterItsKeyIsGone) {
  FaultyKeysApi holder_keys(keys_.get());
  auto s1 = NewSession(absl::Seconds(2), &holder_keys);
  auto s2 = NewSession(absl::Seconds(30));
  Mutex holder(s1.get(), "job"), waiter(s2.get(), "job");
  ASSERT_OK(holder.Lock());
  const std::string holder_key = holder.key();
  holder_keys.FailNext(FaultyKeysApi::kSet, FaultyKeysApi::kForever);
  ASSERT_OK(waiter.Lock(RealClock()->Now() + absl::Seconds(20)));
  EXPECT_FALSE(testing::Exists(keys_.get(), holder_key));
  ASSERT_TRUE(holder.lost()->Wait(RealClock()->Now() + absl::Seconds(10)));
  EXPECT_FALSE(holder.IsOwner());
  EXPECT_TRUE(waiter.IsOwner());
  EXPECT_GT(waiter.fence(), holder.fence());
}

TEST_F(LockEtcdTest, TimeoutAndTryLockLeaveNoStrayKeys) {
  auto s1 = NewSession(absl::Seconds(30));
  auto s2 = NewSession(absl::Seconds(30));
  Mutex a(s1.get(), "job"), b(s2.get(), "job");
  ASSERT_OK(a.Lock());
  ASSERT_OK_AND_ASSIGN(bool got, b.TryLock());
  EXPECT_FALSE(got);
  EXPECT_THAT(
      b.Lock(RealClock()->Now() + absl::Milliseconds(300)),
      ::leasehold::testing::StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(KeysUnder(keys_.get(), prefix_ + "lock/job"),
              ::testing::ElementsAre(a.key()));
}

TEST_F(LockEtcdTest, SemaphoreNeverExceedsItsSlots) {
  constexpr int kContenders = 30;
  std::atomic<int> holders{0}, most{0}, done{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kContenders; ++i) {
    threads.emplace_back([&] {
      auto session = NewSession(absl::Seconds(30));
      Semaphore slot(session.get(), "pool", 3);
      if (!slot.Acquire().ok()) return;
      const int now = ++holders;
      int seen = most.load();
      while (now > seen && !most.compare_exchange_weak(seen, now)) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      --holders;
      if (slot.Release().ok()) ++done;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(done, kContenders);
  EXPECT_LE(most, 3);
}

TEST_F(LockEtcdTest, HundredReadersAndWritersKeepExclusionAndFifoOrder) {
  testing::RWContentionResult result = testing::RunReadersWriters(
      keys_.get(), RealClock(), prefix_, 100, absl::Seconds(30));
  EXPECT_THAT(result.violations, IsEmpty());
  EXPECT_EQ(result.done, 100);
  EXPECT_GT(result.most_readers, 1);
  EXPECT_GT(result.writers, 10);
  EXPECT_THAT(KeysUnder(keys_.get(), prefix_ + "lock/table"), IsEmpty());
}

TEST_F(LockEtcdTest, DoubleBarrierLetsTwentyInAndOutTogether) {
  constexpr int kParties = 20;
  std::atomic<int> entering{0}, early{0}, leaving{0}, late{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kParties; ++i) {
    threads.emplace_back([&] {
      auto session = NewSession(absl::Seconds(30));
      DoubleBarrier barrier(session.get(), "round", kParties);
      ++entering;
      ASSERT_OK(barrier.Enter());
      if (entering.load() < kParties) ++early;
      ++leaving;
      ASSERT_OK(barrier.Leave());
      if (leaving.load() < kParties) ++late;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(early, 0);  // nobody was in before all had come to enter
  EXPECT_EQ(late, 0);   // nobody was out before all had come to leave
  EXPECT_THAT(KeysUnder(keys_.get(), prefix_ + "double-barrier/round/waiters"),
              IsEmpty());
}

TEST_F(LockEtcdTest, ElectionCampaignProclaimResignObserve) {
  auto s1 = NewSession(absl::Seconds(30));
  auto s2 = NewSession(absl::Seconds(30));
  Election a(s1.get(), "engine"), b(s2.get(), "engine");
  LeaderObserver observer(keys_.get(), prefix_, "engine");
  ASSERT_OK_AND_ASSIGN(std::optional<LeaderInfo> first, observer.Next());
  EXPECT_FALSE(first.has_value());
  ASSERT_OK(a.Campaign("a"));
  std::thread t([&] { ASSERT_OK(b.Campaign("b")); });
  ASSERT_TRUE(Eventually([&] {
    return KeysUnder(keys_.get(), prefix_ + "election/engine").size() == 2;
  }));
  ASSERT_OK(a.Proclaim("a2"));
  ASSERT_OK(a.Resign());
  t.join();
  ASSERT_OK_AND_ASSIGN(std::optional<LeaderInfo> leader, a.Leader());
  EXPECT_EQ(leader->value, "b");
  ASSERT_OK(b.Resign());
  std::vector<std::string> seen;
  while (seen.size() < 4) {
    auto next = observer.Next(RealClock()->Now() + absl::Seconds(10));
    ASSERT_OK(next.status());
    seen.push_back(next->has_value() ? (*next)->value : "-");
  }
  EXPECT_THAT(seen, ::testing::ElementsAre("a", "a2", "b", "-"));
}

TEST_F(LockEtcdTest, LockServiceByUri) {
  LockServiceOptions options;
  options.prefix = prefix_;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<LockService> service,
                       OpenLockService(SharedEtcd().uri(), options));
  LockSessionOptions session_options;
  session_options.ttl = absl::Seconds(10);
  session_options.timeout = absl::Seconds(5);
  ASSERT_OK_AND_ASSIGN(auto session, service->NewSession(session_options));
  ASSERT_OK_AND_ASSIGN(auto locker, session->NewLocker("deploy"));
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<const Signal> lost, locker->Lock());
  EXPECT_FALSE(lost->fired());
  ASSERT_OK(locker->Unlock());
  ASSERT_OK(session->Close());
  EXPECT_THAT(session->Close(), ::leasehold::testing::StatusIs(
                                    absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(KeysUnder(keys_.get(), prefix_ + "lock/deploy"), IsEmpty());
}

}  // namespace
}  // namespace leasehold::lease
