#include "lease/mutex.h"

#include <atomic>
#include <mutex>
#include <system_error>
#include <thread>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lease/watch_hub.h"
#include "registry/cancel.h"
#include "registry/errors.h"
#include "tests/lease/lock_fixture.h"
#include "tests/lease/lock_test_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/v3_like_keys_api.h"

namespace leasehold::lease {
namespace {

using ::leasehold::testing::FaultyKeysApi;
using ::leasehold::testing::IsOk;
using ::leasehold::testing::StatusIs;
using ::testing::ElementsAre;
using testing::Eventually;
using testing::Exists;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::KeysUnder;
using testing::StaysFalse;
using testing::Waiters;

constexpr char kDir[] = "/leasehold/lock/job";

class MutexTest : public testing::LockFixture {};

TEST_F(MutexTest, LockHoldsTheFirstKeyAndUnlockDeletesIt) {
  auto session = NewSession();
  Mutex mutex(session.get(), "job");
  ASSERT_OK(mutex.Lock());
  EXPECT_TRUE(mutex.IsOwner());
  EXPECT_TRUE(absl::StartsWith(mutex.key(), "/leasehold/lock/job/"));
  ASSERT_OK_AND_ASSIGN(registry::Response r, keys_.Get(mutex.key(), {}));
  EXPECT_EQ(mutex.fence(), r.node.created_index);
  EXPECT_EQ(r.node.ttl, 60);
  EXPECT_EQ(r.node.value.rfind(session->id(), 0), 0u);  // names its session
  EXPECT_THAT(mutex.Lock(), StatusIs(absl::StatusCode::kFailedPrecondition));

  ASSERT_OK(mutex.Unlock());
  EXPECT_FALSE(mutex.IsOwner());
  EXPECT_THAT(KeysUnder(&keys_, kDir), IsEmpty());
  EXPECT_FALSE(mutex.lost()->fired());
  EXPECT_THAT(mutex.Unlock(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                       HasSubstr("lock \"job\": not held")));
}

TEST_F(MutexTest, FencesGrowWithEachHolder) {
  auto session = NewSession();
  Mutex a(session.get(), "job");
  Mutex b(session.get(), "job");
  ASSERT_OK(a.Lock());
  const uint64_t first = a.fence();
  ASSERT_OK(a.Unlock());
  ASSERT_OK(b.Lock());
  EXPECT_GT(b.fence(), first);
}

TEST_F(MutexTest, WaitersAreServedInQueueOrder) {
  auto s1 = NewSession();
  auto s2 = NewSession();
  auto s3 = NewSession();
  Mutex a(s1.get(), "job"), b(s2.get(), "job"), c(s3.get(), "job");
  ASSERT_OK(a.Lock());
  std::atomic<int> b_done{0}, c_done{0};
  std::thread tb([&] { b_done = b.Lock().ok() ? 1 : -1; });
  ASSERT_TRUE(Eventually([&] { return KeysUnder(&keys_, kDir).size() == 2; }));
  std::thread tc([&] { c_done = c.Lock().ok() ? 1 : -1; });
  ASSERT_TRUE(Eventually([&] { return KeysUnder(&keys_, kDir).size() == 3; }));

  ASSERT_OK(a.Unlock());
  ASSERT_TRUE(Eventually([&] { return b_done != 0; }));
  EXPECT_EQ(b_done, 1);
  EXPECT_EQ(c_done, 0);  // still waiting behind b
  EXPECT_TRUE(b.IsOwner());
  ASSERT_OK(b.Unlock());
  ASSERT_TRUE(Eventually([&] { return c_done != 0; }));
  EXPECT_EQ(c_done, 1);
  EXPECT_TRUE(c.IsOwner());
  tb.join();
  tc.join();
}

// etcd v3 names in-order keys at random: a waiter's key may sort before
// its predecessor's. The queue is its keys' creation order, whatever their
// names.
TEST_F(MutexTest, WaitersAreServedInCreationOrderWhateverTheKeyNames) {
  ::leasehold::testing::V3LikeKeysApi v3_like(&keys_);
  auto s1 = NewSession(absl::Seconds(60), &v3_like);
  auto s2 = NewSession(absl::Seconds(60), &v3_like);
  auto s3 = NewSession(absl::Seconds(60), &v3_like);
  Mutex a(s1.get(), "job"), b(s2.get(), "job"), c(s3.get(), "job");
  ASSERT_OK(a.Lock());
  CancelToken give_up;
  std::atomic<int> b_done{0}, c_done{0};
  std::thread tb(
      [&] { b_done = b.Lock(absl::InfiniteFuture(), &give_up).ok() ? 1 : -1; });
  ASSERT_TRUE(Eventually([&] { return KeysUnder(&keys_, kDir).size() == 2; }));
  std::thread tc(
      [&] { c_done = c.Lock(absl::InfiniteFuture(), &give_up).ok() ? 1 : -1; });
  ASSERT_TRUE(Eventually([&] { return KeysUnder(&keys_, kDir).size() == 3; }));
  EXPECT_GT(a.key(), b.key());  // each key sorts before the one ahead of it
  EXPECT_GT(b.key(), c.key());

  ASSERT_OK(a.Unlock());
  EXPECT_TRUE(Eventually([&] { return b_done != 0; }));
  EXPECT_EQ(b_done, 1);
  EXPECT_EQ(c_done, 0);  // still waiting behind b
  if (b_done == 1) {
    ASSERT_OK(b.Unlock());
  }
  EXPECT_TRUE(Eventually([&] { return c_done != 0; }));
  EXPECT_EQ(c_done, 1);
  give_up.Cancel();
  tb.join();
  tc.join();
  if (c_done == 1) {
    ASSERT_OK(c.Unlock());
  }
}

TEST_F(MutexTest, WaitersShareOneWatchAndOnlyTheNextWakesOnUnlock) {
  auto holder_session = NewSession();
  Mutex holder(holder_session.get(), "job");
  ASSERT_OK(holder.Lock());
  constexpr int kWaiters = 5;
  std::vector<std::unique_ptr<Session>> sessions;
  for (int i = 0; i < kWaiters; ++i) sessions.push_back(NewSession());
  const int gets_before = keys_.calls(FaultyKeysApi::kGet);
  std::vector<std::unique_ptr<Mutex>> waiters;
  std::vector<std::thread> threads;
  std::atomic<int> acquired{0};
  for (int i = 0; i < kWaiters; ++i) {
    waiters.push_back(std::make_unique<Mutex>(sessions[i].get(), "job"));
    Mutex* waiter = waiters.back().get();
    threads.emplace_back([&, waiter] {
      if (waiter->Lock().ok()) ++acquired;
    });
    // Each waiter reads the queue once and subscribes from just after its
    // read (the first also starts the process's watch with one read); then
    // only that one shared watch is in flight.
    ASSERT_TRUE(Eventually([&] {
      return KeysUnder(memory_.get(), kDir).size() == i + 2u &&
             keys_.calls(FaultyKeysApi::kGet) == gets_before + i + 2 &&
             keys_.in_flight() == 1;
    }));
  }
  const int gets = keys_.calls(FaultyKeysApi::kGet);
  ASSERT_OK(holder.Unlock());
  ASSERT_TRUE(Eventually([&] { return acquired == 1; }));
  ASSERT_TRUE(Eventually([&] { return keys_.in_flight() == 1; }));
  // Only the first waiter re-read the queue; the others never woke.
  EXPECT_EQ(keys_.calls(FaultyKeysApi::kGet) - gets, 1);

  for (int i = 0; i < kWaiters; ++i) {
    ASSERT_TRUE(Eventually([&] { return waiters[i]->IsOwner(); })) << i;
    ASSERT_OK(waiters[i]->Unlock());
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(acquired, kWaiters);
  EXPECT_EQ(keys_.in_flight(), 0);  // the last waiter stopped the watch
}

TEST_F(MutexTest, TryLockOnAHeldLockIsOneRoundTrip) {
  auto s1 = NewSession();
  auto s2 = NewSession();
  Mutex a(s1.get(), "job"), b(s2.get(), "job");
  ASSERT_OK_AND_ASSIGN(bool got, a.TryLock());
  EXPECT_TRUE(got);
  const int calls = keys_.calls(FaultyKeysApi::kAll);
  ASSERT_OK_AND_ASSIGN(got, b.TryLock());
  EXPECT_FALSE(got);
  EXPECT_EQ(keys_.calls(FaultyKeysApi::kAll) - calls, 1);
  EXPECT_EQ(KeysUnder(&keys_, kDir).size(), 1u);
  EXPECT_FALSE(b.IsOwner());
}

TEST_F(MutexTest, TimeoutDeletesTheWaitersKey) {
  auto s1 = NewSession();
  auto s2 = NewSession();
  Mutex a(s1.get(), "job"), b(s2.get(), "job");
  ASSERT_OK(a.Lock());
  absl::Status status;
  std::thread t([&] { status = b.Lock(clock_.Now() + absl::Seconds(5)); });
  ASSERT_TRUE(Eventually([&] { return KeysUnder(&keys_, kDir).size() == 2; }));
  clock_.Advance(absl::Seconds(6));
  t.join();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kDeadlineExceeded,
                               HasSubstr("lock \"job\"")));
  EXPECT_THAT(KeysUnder(&keys_, kDir), ElementsAre(a.key()));
  EXPECT_FALSE(b.IsOwner());
}

TEST_F(MutexTest, CancelDeletesTheWaitersKey) {
  auto s1 = NewSession();
  auto s2 = NewSession();
  Mutex a(s1.get(), "job"), b(s2.get(), "job");
  ASSERT_OK(a.Lock());
  CancelToken cancel;
  absl::Status status;
  std::thread t([&] { status = b.Lock(absl::InfiniteFuture(), &cancel); });
  ASSERT_TRUE(Eventually([&] { return KeysUnder(&keys_, kDir).size() == 2; }));
  cancel.Cancel();
  t.join();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_THAT(KeysUnder(&keys_, kDir), ElementsAre(a.key()));
  // The lock still works for b afterwards.
  ASSERT_OK(a.Unlock());
  ASSERT_OK(b.Lock());
}

TEST_F(MutexTest, WaiterWhoseKeyVanishesGetsAnErrorNotTheLock) {
  auto s1 = NewSession();
  auto s2 = NewSession(absl::Seconds(6));
  Mutex a(s1.get(), "job"), b(s2.get(), "job");
  ASSERT_OK(a.Lock());
  absl::Status status;
  std::thread t([&] { status = b.Lock(); });
  ASSERT_TRUE(Eventually([&] { return KeysUnder(&keys_, kDir).size() == 2; }));
  const std::string b_key = KeysUnder(&keys_, kDir)[1];
  ASSERT_OK(memory_->Delete(b_key, {}).status());  // its removal wakes b
  t.join();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kAborted,
                               HasSubstr("vanished while waiting")));
  EXPECT_FALSE(b.IsOwner());
  EXPECT_TRUE(a.IsOwner());
}

TEST_F(MutexTest, WaiterWhoseSessionExpiresGetsAnErrorNotTheLock) {
  FaultyKeysApi waiter_keys(memory_.get(), &clock_);
  auto s1 = NewSession();
  auto s2 = NewSession(absl::Seconds(5), &waiter_keys);
  Mutex a(s1.get(), "job"), b(s2.get(), "job");
  ASSERT_OK(a.Lock());
  waiter_keys.FailNext(FaultyKeysApi::kSet, FaultyKeysApi::kForever);
  absl::Status status;
  std::thread t([&] { status = b.Lock(); });
  // b's key is made and registered with its session: b is waiting.
  ASSERT_TRUE(Eventually([&] { return !b.key().empty(); }));
  clock_.Advance(absl::Seconds(6));
  t.join();
  EXPECT_THAT(status,
              StatusIs(absl::StatusCode::kAborted, HasSubstr("while waiting")));
  EXPECT_FALSE(b.IsOwner());
  EXPECT_TRUE(a.IsOwner());
  EXPECT_THAT(KeysUnder(&keys_, kDir), ElementsAre(a.key()));
}

TEST_F(MutexTest, ExpiredHolderLosesAndTheNextWaiterGoesOnlyAfterItsKeyIsGone) {
  // The holder's renewals fail: its keep-alive has stopped.
  FaultyKeysApi holder_keys(memory_.get(), &clock_);
  auto s1 = NewSession(absl::Seconds(5), &holder_keys);
  auto s2 = NewSession(absl::Seconds(60));
  Mutex holder(s1.get(), "job"), waiter(s2.get(), "job");
  ASSERT_OK(holder.Lock());
  const std::string holder_key = holder.key();
  holder_keys.FailNext(FaultyKeysApi::kSet, FaultyKeysApi::kForever);

  std::atomic<bool> acquired{false};
  std::atomic<bool> old_key_gone_at_acquire{false};
  absl::Status status;
  std::thread t([&] {
    status = waiter.Lock();
    old_key_gone_at_acquire = !Exists(memory_.get(), holder_key);
    acquired = true;
  });
  ASSERT_TRUE(Eventually([&] { return KeysUnder(&keys_, kDir).size() == 2; }));
  clock_.Advance(absl::Seconds(4));  // renewals fail, the TTL has not passed
  ASSERT_TRUE(
      Eventually([&] { return holder_keys.calls(FaultyKeysApi::kSet) > 0; }));
  EXPECT_TRUE(Exists(memory_.get(), holder_key));
  EXPECT_FALSE(acquired);
  clock_.Advance(absl::Seconds(2));
  t.join();
  ASSERT_OK(status);
  EXPECT_TRUE(old_key_gone_at_acquire);
  EXPECT_TRUE(waiter.IsOwner());
  ASSERT_TRUE(Eventually([&] { return holder.lost()->fired(); }));
  EXPECT_FALSE(holder.IsOwner());
  EXPECT_THAT(holder.lost()->cause(), StatusIs(absl::StatusCode::kAborted));
  EXPECT_GT(waiter.fence(), holder.fence());
  // Unlocking the lost lock never touches the new holder's key.
  EXPECT_OK(holder.Unlock());
  EXPECT_TRUE(Exists(memory_.get(), waiter.key()));
}

TEST_F(MutexTest, ExpiryIsTheKeysLocalExpiryAndMovesWithEachRenew) {
  auto session = NewSession(absl::Seconds(6));
  Mutex mutex(session.get(), "job");
  EXPECT_EQ(mutex.expiry(), absl::InfinitePast());
  const absl::Time locked = clock_.Now();
  ASSERT_OK(mutex.Lock());
  EXPECT_LE(mutex.expiry(), locked + absl::Seconds(6));
  EXPECT_GT(mutex.expiry(), locked + absl::Seconds(5));
  // Renewed a third of the TTL later (give or take the jitter).
  clock_.Advance(absl::Seconds(3));
  ASSERT_TRUE(
      Eventually([&] { return mutex.expiry() > locked + absl::Seconds(8); }));
  EXPECT_LE(mutex.expiry(), clock_.Now() + absl::Seconds(6));
  ASSERT_OK(mutex.Unlock());
  EXPECT_EQ(mutex.expiry(), absl::InfinitePast());

  // A key deleted behind our back: gone, not merely expiring.
  ASSERT_OK(mutex.Lock());
  ASSERT_OK(memory_->Delete(mutex.key(), {}).status());
  clock_.Advance(absl::Seconds(3));
  ASSERT_TRUE(Eventually([&] { return mutex.lost()->fired(); }));
  EXPECT_EQ(mutex.expiry(), absl::InfinitePast());
}

TEST_F(MutexTest, WorksWithStandardLockGuards) {
  auto s1 = NewSession();
  auto s2 = NewSession();
  Mutex a(s1.get(), "job"), b(s2.get(), "job");
  {
    std::lock_guard<Mutex> guard(a);
    EXPECT_TRUE(a.IsOwner());
    EXPECT_FALSE(b.try_lock());
    EXPECT_FALSE(b.try_lock_for(std::chrono::milliseconds(0)));
    std::unique_lock<Mutex> timed(b, std::chrono::seconds(0));
    EXPECT_FALSE(timed.owns_lock());
  }
  EXPECT_FALSE(a.IsOwner());
  {
    std::scoped_lock both(b);
    EXPECT_TRUE(b.IsOwner());
  }
  EXPECT_THAT(KeysUnder(&keys_, kDir), IsEmpty());
}

TEST_F(MutexTest, StandardLockThrowsWhenTheSessionIsClosed) {
  auto session = NewSession();
  Mutex mutex(session.get(), "job");
  ASSERT_OK(session->Close());
  EXPECT_THROW(mutex.lock(), std::system_error);
  EXPECT_THAT(mutex.Lock(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                     HasSubstr("already closed")));
}

TEST_F(MutexTest, BadNameIsInvalidArgument) {
  auto session = NewSession();
  Mutex mutex(session.get(), "a/b");
  EXPECT_THAT(mutex.Lock(), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(MutexTest, ThousandContendersCountToThousandInFifoOrder) {
  testing::ContentionResult result = testing::RunContention(
      memory_.get(), &clock_, 1000, /*in_flight=*/64, absl::Seconds(60));
  EXPECT_THAT(result.errors, IsEmpty());
  EXPECT_EQ(result.counter, 1000);
  ASSERT_EQ(result.fences.size(), 1000u);
  for (size_t i = 1; i < result.fences.size(); ++i) {
    ASSERT_LT(result.fences[i - 1], result.fences[i]) << i;
  }
  EXPECT_THAT(KeysUnder(memory_.get(), "/leasehold/lock/counter"), IsEmpty());
}

// The queue is ordered by createdIndex, which nothing changes. Renewals by
// refresh move every key's modifiedIndex while the waiters wait; after
// several renew intervals, with the holder's key renewed last, the holder
// still holds, a waiter that re-reads the queue still waits, and the lock
// passes in queue order.
TEST_F(MutexTest, RenewalsWhileWaitersWaitKeepTheQueueOrder) {
  auto holder_session = NewSession(absl::Seconds(3));  // renewed every 1 s
  Mutex holder(holder_session.get(), "job");
  ASSERT_OK(holder.Lock());
  constexpr int kWaiters = 3;
  std::vector<std::unique_ptr<Session>> sessions;
  std::vector<std::unique_ptr<Mutex>> mutexes;
  std::vector<std::string> keys;
  std::vector<Renewing> renewing = {{holder.key(), 1}};
  Waiters waiters(kWaiters);
  for (int i = 0; i < kWaiters; ++i) {
    sessions.push_back(NewSession(absl::Seconds(9)));  // renewed every 3 s
    mutexes.push_back(std::make_unique<Mutex>(sessions.back().get(), "job"));
    Mutex* mutex = mutexes.back().get();
    Enqueue(
        waiters, i,
        [mutex](const CancelToken* cancel) {
          return mutex->Lock(absl::InfiniteFuture(), cancel);
        },
        kDir, i + 2);
    keys.push_back(mutex->key());
    renewing.push_back({mutex->key(), 3});
  }

  // 12.5 s: ten renewals of the holder's key, four of each waiter's, the
  // last step renewing only the holder's.
  PassRenewals(renewing, absl::Milliseconds(1250), 10);
  ExpectChangedLast({holder.key()}, keys);
  for (int i = 0; i < kWaiters; ++i) EXPECT_EQ(waiters.state(i), 0) << i;
  EXPECT_TRUE(holder.IsOwner());

  // The first waiter gives up; the second re-reads the queue and waits on.
  GiveUp(waiters, 0);
  EXPECT_TRUE(StaysFalse([&] { return waiters.state(1) != 0; }));
  EXPECT_TRUE(holder.IsOwner());

  ASSERT_OK(holder.Unlock());
  ASSERT_TRUE(Eventually([&] { return waiters.state(1) != 0; }));
  ASSERT_OK(waiters.result(1));
  EXPECT_TRUE(mutexes[1]->IsOwner());
  EXPECT_TRUE(StaysFalse([&] { return waiters.state(2) != 0; }));
  ASSERT_OK(mutexes[1]->Unlock());
  ASSERT_TRUE(Eventually([&] { return waiters.state(2) != 0; }));
  ASSERT_OK(waiters.result(2));
  EXPECT_GT(mutexes[2]->fence(), mutexes[1]->fence());
  ASSERT_OK(mutexes[2]->Unlock());
}

// The hub that the waiting Mutexes of a process share (lease/watch_hub.h).
class WatchHubTest : public testing::LockFixture {
 protected:
  using Filter = internal::WatchHub::Filter;
  using Subscription = internal::WatchHub::Subscription;

  std::unique_ptr<Subscription> Subscribe(uint64_t from_index, Filter wanted) {
    absl::StatusOr<std::unique_ptr<Subscription>> sub =
        internal::WatchHub::Subscribe(memory_.get(), &clock_, "/leasehold/",
                                      absl::StrCat(kDir, "/"), from_index,
                                      std::move(wanted));
    EXPECT_TRUE(sub.ok()) << sub.status();
    return sub.ok() ? std::move(*sub) : nullptr;
  }

  // The index a read made now reports.
  uint64_t ReadIndex() {
    absl::StatusOr<registry::Response> r = memory_->Get("/", {});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->etcd_index : 0;
  }

  std::string Enqueue() {
    absl::StatusOr<registry::Response> r =
        memory_->CreateInOrder(kDir, "waiter", {});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->node.key : "";
  }

  absl::Status Remove(const std::string& key) {
    return memory_->Delete(key, {}).status();
  }

  static Filter RemovalOf(const std::string& key) {
    return [key](const registry::Response& event) {
      return event.action == "delete" && event.node.key == key;
    };
  }
  static Filter AnyRemoval() {
    return [](const registry::Response& event) {
      return event.action == "delete";
    };
  }
};

// The stall this guards against: the hub handed every event under a queue
// to every waiter, each woke to find it was not its predecessor's removal,
// and with 1000 waiters the hub fell seconds behind an unlock.
TEST_F(WatchHubTest, ASubscriberIsHandedOnlyTheEventsItsFilterWants) {
  const std::string mine = Enqueue();
  std::unique_ptr<Subscription> sub =
      Subscribe(ReadIndex() + 1, RemovalOf(mine));
  // What the queue's other waiters wait for: keys come and go.
  for (int i = 0; i < 300; ++i) ASSERT_OK(Remove(Enqueue()));
  ASSERT_OK(Remove(mine));
  ASSERT_OK_AND_ASSIGN(registry::Response event,
                       sub->Next(absl::InfiniteFuture(), nullptr));
  EXPECT_EQ(event.action, "delete");
  EXPECT_EQ(event.node.key, mine);
  // It was handed nothing else.
  EXPECT_THAT(sub->Next(clock_.Now(), nullptr),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST_F(WatchHubTest, NarrowingTheFilterDropsQueuedEventsItNoLongerWants) {
  const std::string a = Enqueue();
  const std::string b = Enqueue();
  const uint64_t read = ReadIndex();
  std::unique_ptr<Subscription> sub = Subscribe(read + 1, AnyRemoval());
  std::unique_ptr<Subscription> witness = Subscribe(read + 1, RemovalOf(b));
  ASSERT_OK(Remove(a));
  ASSERT_OK(Remove(b));
  // The hub hands an event to every subscriber at once: `sub` holds both.
  ASSERT_OK(witness->Next(absl::InfiniteFuture(), nullptr).status());
  sub->SetFilter(RemovalOf(b));
  ASSERT_OK_AND_ASSIGN(registry::Response event,
                       sub->Next(absl::InfiniteFuture(), nullptr));
  EXPECT_EQ(event.node.key, b);
  EXPECT_THAT(sub->Next(clock_.Now(), nullptr),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
}

// A waiter reads the queue, then subscribes from just after its read: what
// the hub handed out in between comes from the hub's history, so the
// waiter need not read again.
TEST_F(WatchHubTest, ALateSubscriberIsHandedWhatItMissedFromTheHistory) {
  const std::string a = Enqueue();
  const uint64_t read = ReadIndex();
  std::unique_ptr<Subscription> early = Subscribe(read + 1, AnyRemoval());
  ASSERT_OK(Remove(a));
  ASSERT_OK(early->Next(absl::InfiniteFuture(), nullptr).status());

  std::unique_ptr<Subscription> late = Subscribe(read + 1, AnyRemoval());
  ASSERT_OK_AND_ASSIGN(registry::Response event,
                       late->Next(absl::InfiniteFuture(), nullptr));
  EXPECT_EQ(event.node.key, a);
  EXPECT_EQ(event.action, "delete");

  // From before the hub started, it cannot tell what it missed: re-read.
  EXPECT_THAT(Subscribe(read, AnyRemoval())->Next(clock_.Now(), nullptr),
              StatusIs(absl::StatusCode::kOutOfRange));
  // Nor once more events than it keeps have passed.
  for (int i = 0; i < 1000; ++i) Enqueue();
  const std::string last = Enqueue();
  ASSERT_OK(Remove(last));
  // The hub is past them: it handed out the removal, or fell behind the
  // registry's history and said so.
  absl::StatusOr<registry::Response> passed =
      early->Next(absl::InfiniteFuture(), nullptr);
  ASSERT_TRUE(absl::IsOutOfRange(passed.status()) ||
              (passed.ok() && passed->node.key == last))
      << passed.status();
  EXPECT_THAT(Subscribe(read + 1, AnyRemoval())->Next(clock_.Now(), nullptr),
              StatusIs(absl::StatusCode::kOutOfRange));
}

// A hub waits on its clock: subscribers on another clock (which may go
// away with its owner) get a hub of their own, each with its one watch.
TEST_F(WatchHubTest, SubscribersOnAnotherClockGetAHubOfTheirOwn) {
  SimulatedClock other;
  const auto subscribe = [&](Clock* clock) {
    return internal::WatchHub::Subscribe(&keys_, clock, "/leasehold/",
                                         absl::StrCat(kDir, "/"),
                                         ReadIndex() + 1, AnyRemoval());
  };
  const int reads = keys_.calls(FaultyKeysApi::kGet);
  ASSERT_OK_AND_ASSIGN(auto first, subscribe(&clock_));
  ASSERT_OK_AND_ASSIGN(auto same, subscribe(&clock_));
  EXPECT_EQ(keys_.calls(FaultyKeysApi::kGet), reads + 1);  // one hub
  ASSERT_OK_AND_ASSIGN(auto own, subscribe(&other));
  EXPECT_EQ(keys_.calls(FaultyKeysApi::kGet), reads + 2);  // another
  const std::string a = Enqueue();
  ASSERT_OK(Remove(a));
  for (const auto* sub : {&first, &same, &own}) {
    ASSERT_OK_AND_ASSIGN(registry::Response event,
                         (*sub)->Next(absl::InfiniteFuture(), nullptr));
    EXPECT_EQ(event.node.key, a);
  }
}

TEST_F(MutexTest, LostCreateThatLandsLateIsDeletedByTheWaiter) {
  auto sa = NewSession();
  auto sb = NewSession();
  auto sc = NewSession();
  Mutex a(sa.get(), "job"), b(sb.get(), "job"), c(sc.get(), "job");
  ASSERT_OK(a.Lock());
  // b's create is held on the way: its read-back finds nothing, so b
  // queues again under a fresh value.
  keys_.HoldRequestNext(FaultyKeysApi::kCreateInOrder, 1);
  absl::Status b_locked;
  std::thread waiter([&] { b_locked = b.Lock(); });
  ASSERT_TRUE(Eventually([&] { return KeysUnder(&keys_, kDir).size() == 2; }));
  ASSERT_EQ(keys_.LandHeld(), 1);  // the lost create lands now
  ASSERT_EQ(KeysUnder(&keys_, kDir).size(), 3u);
  ASSERT_OK(a.Unlock());
  waiter.join();
  ASSERT_OK(b_locked);
  // b found its stray key in the queue it read and deleted it, so it does
  // not hold up the next holder for a whole TTL.
  EXPECT_THAT(KeysUnder(&keys_, kDir), ElementsAre(b.key()));
  ASSERT_OK(b.Unlock());
  ASSERT_OK_AND_ASSIGN(bool c_locked, c.TryLock());
  EXPECT_TRUE(c_locked);
}

TEST_F(MutexTest, UnresolvedCreatesKeepOutcomeUnknownAndAreSweptLater) {
  auto session = NewSession();
  Mutex mutex(session.get(), "job");
  keys_.HoldRequestNext(FaultyKeysApi::kCreateInOrder, 3);
  const absl::Status locked = mutex.Lock();
  EXPECT_TRUE(registry::IsOutcomeUnknown(locked)) << locked;
  ASSERT_EQ(keys_.LandHeld(), 3);  // all three land after all
  ASSERT_OK_AND_ASSIGN(bool again, mutex.TryLock());
  EXPECT_TRUE(again);
  EXPECT_THAT(KeysUnder(&keys_, kDir), ElementsAre(mutex.key()));
}

}  // namespace
}  // namespace leasehold::lease
