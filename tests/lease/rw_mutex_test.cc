#include "lease/rw_mutex.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lease/mutex.h"
#include "registry/cancel.h"
#include "tests/lease/lock_fixture.h"
#include "tests/lease/lock_test_util.h"
#include "tests/lease/rw_contention.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::lease {
namespace {

using ::leasehold::testing::FaultyKeysApi;
using ::leasehold::testing::StatusIs;
using ::testing::ElementsAre;
using testing::Eventually;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::KeysUnder;
using testing::StaysFalse;
using testing::Waiters;

constexpr char kDir[] = "/leasehold/lock/table";

class RWMutexTest : public testing::LockFixture {
 protected:
  // `count` contenders, each on its own session.
  void Make(int count, absl::Duration ttl = absl::Seconds(60)) {
    for (int i = 0; i < count; ++i) {
      sessions_.push_back(NewSession(ttl));
      mutexes_.push_back(
          std::make_unique<RWMutex>(sessions_.back().get(), "table"));
    }
  }
  RWMutex& m(int i) { return *mutexes_[i]; }
  static Waiters::Wait Reader(RWMutex* mutex) {
    return [mutex](const CancelToken* cancel) {
      return mutex->RLock(absl::InfiniteFuture(), cancel);
    };
  }
  static Waiters::Wait Writer(RWMutex* mutex) {
    return [mutex](const CancelToken* cancel) {
      return mutex->Lock(absl::InfiniteFuture(), cancel);
    };
  }

  std::vector<std::unique_ptr<Session>> sessions_;
  std::vector<std::unique_ptr<RWMutex>> mutexes_;
};

TEST_F(RWMutexTest, ReadersShareAndAWriterExcludesEveryone) {
  Make(4);
  ASSERT_OK(m(0).RLock());
  ASSERT_OK_AND_ASSIGN(bool got, m(1).TryRLock());
  EXPECT_TRUE(got);
  EXPECT_TRUE(m(0).IsReader());
  EXPECT_TRUE(m(1).IsReader());
  EXPECT_FALSE(m(0).IsOwner());
  ASSERT_OK_AND_ASSIGN(got, m(2).TryLock());  // readers hold: no writer
  EXPECT_FALSE(got);
  EXPECT_EQ(KeysUnder(&keys_, kDir).size(), 2u);
  ASSERT_OK(m(0).RUnlock());
  ASSERT_OK(m(1).RUnlock());

  ASSERT_OK(m(2).Lock());
  EXPECT_TRUE(m(2).IsOwner());
  EXPECT_GT(m(2).fence(), m(1).fence());
  ASSERT_OK_AND_ASSIGN(got, m(3).TryRLock());  // a writer holds: no reader
  EXPECT_FALSE(got);
  ASSERT_OK_AND_ASSIGN(got, m(3).TryLock());
  EXPECT_FALSE(got);
  ASSERT_OK(m(2).Unlock());
  EXPECT_THAT(KeysUnder(&keys_, kDir), IsEmpty());
  EXPECT_THAT(m(2).Unlock(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                      HasSubstr("lock \"table\"")));
}

TEST_F(RWMutexTest, KeysSayWhetherTheyReadOrWrite) {
  Make(2);
  ASSERT_OK(m(0).RLock());
  ASSERT_OK_AND_ASSIGN(registry::Response r, keys_.Get(m(0).key(), {}));
  EXPECT_TRUE(absl::StartsWith(r.node.value, "read " + sessions_[0]->id()));
  EXPECT_EQ(m(0).fence(), r.node.created_index);
  ASSERT_OK(m(0).RUnlock());
  ASSERT_OK(m(1).Lock());
  ASSERT_OK_AND_ASSIGN(r, keys_.Get(m(1).key(), {}));
  EXPECT_TRUE(absl::StartsWith(r.node.value, "write " + sessions_[1]->id()));
}

// Fairness: a writer waits only for the readers ahead of it, and readers
// queued behind the waiting writer wait for it, though only readers hold.
TEST_F(RWMutexTest, ReadersBehindAWaitingWriterWaitForIt) {
  Make(5);
  ASSERT_OK(m(0).RLock());
  Waiters waiters(5);
  Enqueue(waiters, 1, Writer(&m(1)), kDir, 2);
  Enqueue(waiters, 2, Reader(&m(2)), kDir, 3);
  Enqueue(waiters, 3, Reader(&m(3)), kDir, 4);
  Enqueue(waiters, 4, Writer(&m(4)), kDir, 5);
  EXPECT_TRUE(StaysFalse([&] { return waiters.state(2) != 0; }));

  ASSERT_OK(m(0).RUnlock());
  ASSERT_TRUE(Eventually([&] { return waiters.state(1) != 0; }));
  ASSERT_OK(waiters.result(1));
  EXPECT_TRUE(m(1).IsOwner());
  EXPECT_TRUE(StaysFalse([&] { return waiters.state(2) != 0; }));

  // The writer leaves: both readers behind it are in together, the writer
  // behind them waits.
  ASSERT_OK(m(1).Unlock());
  ASSERT_TRUE(Eventually(
      [&] { return waiters.state(2) != 0 && waiters.state(3) != 0; }));
  ASSERT_OK(waiters.result(2));
  ASSERT_OK(waiters.result(3));
  EXPECT_TRUE(m(2).IsReader() && m(3).IsReader());
  EXPECT_TRUE(StaysFalse([&] { return waiters.state(4) != 0; }));
  ASSERT_OK(m(3).RUnlock());
  EXPECT_TRUE(StaysFalse([&] { return waiters.state(4) != 0; }));
  ASSERT_OK(m(2).RUnlock());
  ASSERT_TRUE(Eventually([&] { return waiters.state(4) != 0; }));
  ASSERT_OK(waiters.result(4));
  EXPECT_TRUE(m(4).IsOwner());
}

// A writer wakes only when its immediate predecessor goes; readers only
// when the nearest writer ahead of them goes.
TEST_F(RWMutexTest, OnlyTheContendersADepartureCanLetInWakeUp) {
  Make(6);
  ASSERT_OK(m(0).RLock());
  ASSERT_OK(m(1).RLock());
  Waiters waiters(6);
  Enqueue(waiters, 2, Writer(&m(2)), kDir, 3);
  Enqueue(waiters, 3, Reader(&m(3)), kDir, 4);
  Enqueue(waiters, 4, Reader(&m(4)), kDir, 5);
  Enqueue(waiters, 5, Reader(&m(5)), kDir, 6);
  ASSERT_TRUE(Eventually([&] { return keys_.in_flight() == 1; }));

  // The first reader leaves: it is nobody's predecessor or nearest writer.
  int gets = keys_.calls(FaultyKeysApi::kGet);
  ASSERT_OK(m(0).RUnlock());
  EXPECT_TRUE(
      StaysFalse([&] { return keys_.calls(FaultyKeysApi::kGet) != gets; }));

  // The writer's predecessor leaves: only the writer re-reads.
  ASSERT_OK(m(1).RUnlock());
  ASSERT_TRUE(Eventually([&] { return waiters.state(2) != 0; }));
  ASSERT_TRUE(Eventually([&] { return keys_.in_flight() == 1; }));
  EXPECT_EQ(keys_.calls(FaultyKeysApi::kGet) - gets, 1);
  ASSERT_OK(waiters.result(2));

  // The writer leaves: the three readers behind it wake, one read each.
  gets = keys_.calls(FaultyKeysApi::kGet);
  ASSERT_OK(m(2).Unlock());
  ASSERT_TRUE(Eventually([&] {
    return waiters.state(3) == 1 && waiters.state(4) == 1 &&
           waiters.state(5) == 1;
  }));
  EXPECT_EQ(keys_.calls(FaultyKeysApi::kGet) - gets, 3);
}

TEST_F(RWMutexTest, TimeoutAndCancelDeleteTheWaitersKey) {
  Make(3);
  ASSERT_OK(m(0).Lock());
  absl::Status status;
  std::thread t([&] { status = m(1).RLock(clock_.Now() + absl::Seconds(5)); });
  ASSERT_TRUE(Eventually([&] { return KeysUnder(&keys_, kDir).size() == 2; }));
  clock_.Advance(absl::Seconds(6));
  t.join();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kDeadlineExceeded,
                               HasSubstr("lock \"table\"")));
  EXPECT_THAT(KeysUnder(&keys_, kDir), ElementsAre(m(0).key()));

  CancelToken cancel;
  std::thread t2([&] { status = m(2).Lock(absl::InfiniteFuture(), &cancel); });
  ASSERT_TRUE(Eventually([&] { return KeysUnder(&keys_, kDir).size() == 2; }));
  cancel.Cancel();
  t2.join();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_THAT(KeysUnder(&keys_, kDir), ElementsAre(m(0).key()));
  ASSERT_OK(m(0).Unlock());
  ASSERT_OK(m(1).RLock());  // both work afterwards
  ASSERT_OK(m(1).RUnlock());
  ASSERT_OK(m(2).Lock());
}

TEST_F(RWMutexTest, WaiterWhoseSessionExpiresGetsAnErrorNotTheLock) {
  FaultyKeysApi waiter_keys(memory_.get(), &clock_);
  auto s1 = NewSession();
  auto s2 = NewSession(absl::Seconds(5), &waiter_keys);
  RWMutex writer(s1.get(), "table"), reader(s2.get(), "table");
  ASSERT_OK(writer.Lock());
  waiter_keys.FailNext(FaultyKeysApi::kSet, FaultyKeysApi::kForever);
  absl::Status status;
  std::thread t([&] { status = reader.RLock(); });
  ASSERT_TRUE(Eventually([&] { return !reader.key().empty(); }));
  clock_.Advance(absl::Seconds(6));
  t.join();
  EXPECT_THAT(status,
              StatusIs(absl::StatusCode::kAborted, HasSubstr("while waiting")));
  EXPECT_FALSE(reader.IsReader());
  EXPECT_TRUE(writer.IsOwner());
}

TEST_F(RWMutexTest,
       LostReaderFiresItsSignalAndAWriterGoesOnlyAfterItsKeyIsGone) {
  FaultyKeysApi reader_keys(memory_.get(), &clock_);
  auto s1 = NewSession(absl::Seconds(5), &reader_keys);
  auto s2 = NewSession();
  RWMutex reader(s1.get(), "table"), writer(s2.get(), "table");
  ASSERT_OK(reader.RLock());
  const std::string reader_key = reader.key();
  reader_keys.FailNext(FaultyKeysApi::kSet, FaultyKeysApi::kForever);
  std::atomic<bool> acquired{false}, gone_at_acquire{false};
  std::thread t([&] {
    ASSERT_OK(writer.Lock());
    gone_at_acquire = !testing::Exists(memory_.get(), reader_key);
    acquired = true;
  });
  ASSERT_TRUE(Eventually([&] { return KeysUnder(&keys_, kDir).size() == 2; }));
  clock_.Advance(absl::Seconds(4));  // renewals fail inside the TTL
  ASSERT_TRUE(
      Eventually([&] { return reader_keys.calls(FaultyKeysApi::kSet) > 0; }));
  EXPECT_FALSE(acquired);
  clock_.Advance(absl::Seconds(2));
  t.join();
  EXPECT_TRUE(gone_at_acquire);
  ASSERT_TRUE(Eventually([&] { return reader.lost()->fired(); }));
  EXPECT_FALSE(reader.IsReader());
  EXPECT_GT(writer.fence(), reader.fence());
  EXPECT_OK(reader.RUnlock());  // never touches the writer's key
  EXPECT_TRUE(writer.IsOwner());
}

TEST_F(RWMutexTest, OneObjectIsAReaderOrAWriterAtATime) {
  Make(1);
  ASSERT_OK(m(0).RLock());
  EXPECT_THAT(m(0).Lock(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                    HasSubstr("already read")));
  EXPECT_THAT(m(0).RLock(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(m(0).Unlock(), StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK(m(0).RUnlock());
  ASSERT_OK(m(0).Lock());
  EXPECT_THAT(m(0).TryRLock().status(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("already written")));
  ASSERT_OK(m(0).Unlock());
}

TEST_F(RWMutexTest, WorksWithStandardLocks) {
  Make(3);
  {
    std::shared_lock<RWMutex> a(m(0));
    std::shared_lock<RWMutex> b(m(1));
    EXPECT_TRUE(m(0).IsReader() && m(1).IsReader());
    EXPECT_FALSE(m(2).try_lock());
    EXPECT_FALSE(m(2).try_lock_for(std::chrono::milliseconds(0)));
  }
  {
    std::unique_lock<RWMutex> w(m(2));
    EXPECT_TRUE(m(2).IsOwner());
    EXPECT_FALSE(m(0).try_lock_shared());
    std::shared_lock<RWMutex> timed(m(1), std::chrono::seconds(0));
    EXPECT_FALSE(timed.owns_lock());
  }
  EXPECT_THAT(KeysUnder(&keys_, kDir), IsEmpty());
  ASSERT_OK(sessions_[0]->Close());
  EXPECT_THROW(m(0).lock_shared(), std::system_error);
}

// A Mutex of the same name is a writer in the RWMutex's queue.
TEST_F(RWMutexTest, AMutexOfTheSameNameIsAWriter) {
  Make(2);
  auto session = NewSession();
  Mutex mutex(session.get(), "table");
  ASSERT_OK(m(0).RLock());
  ASSERT_OK_AND_ASSIGN(bool got, mutex.TryLock());
  EXPECT_FALSE(got);
  Waiters waiters(2);
  Enqueue(
      waiters, 0,
      [&](const CancelToken* cancel) {
        return mutex.Lock(absl::InfiniteFuture(), cancel);
      },
      kDir, 2);
  Enqueue(waiters, 1, Reader(&m(1)), kDir, 3);  // behind the Mutex
  EXPECT_TRUE(StaysFalse([&] { return waiters.state(1) != 0; }));
  ASSERT_OK(m(0).RUnlock());
  ASSERT_TRUE(Eventually([&] { return waiters.state(0) != 0; }));
  ASSERT_OK(waiters.result(0));
  EXPECT_TRUE(StaysFalse([&] { return waiters.state(1) != 0; }));
  ASSERT_OK(mutex.Unlock());
  ASSERT_TRUE(Eventually([&] { return waiters.state(1) != 0; }));
  ASSERT_OK(waiters.result(1));
}

TEST_F(RWMutexTest, HundredReadersAndWritersKeepExclusionAndFifoOrder) {
  testing::RWContentionResult result = testing::RunReadersWriters(
      memory_.get(), &clock_, "/leasehold/", 100, absl::Seconds(60));
  EXPECT_THAT(result.violations, IsEmpty());
  EXPECT_EQ(result.done, 100);
  EXPECT_GT(result.most_readers, 1);
  EXPECT_GT(result.writers, 10);
  EXPECT_THAT(KeysUnder(memory_.get(), kDir), IsEmpty());
}

// Renewals by refresh move every key's modifiedIndex while the waiters
// wait; the queue keeps its createdIndex order: after several renew
// intervals, with the holding readers' keys renewed last, the readers still
// hold, the writer behind them and the reader behind it still wait, and
// the lock passes in queue order.
TEST_F(RWMutexTest, RenewalsWhileWaitersWaitKeepTheQueueOrder) {
  std::vector<std::unique_ptr<Session>> sessions;
  std::vector<std::unique_ptr<RWMutex>> readers;
  std::vector<Renewing> renewing;
  std::vector<std::string> holder_keys;
  for (int i = 0; i < 2; ++i) {
    sessions.push_back(NewSession(absl::Seconds(3)));  // renewed every 1 s
    readers.push_back(
        std::make_unique<RWMutex>(sessions.back().get(), "table"));
    ASSERT_OK(readers.back()->RLock());
    renewing.push_back({readers.back()->key(), 1});
    holder_keys.push_back(readers.back()->key());
  }
  // Before the waiters, whose threads use them until the waiters end.
  std::vector<std::unique_ptr<RWMutex>> waiting;
  Waiters waiters(3);
  std::vector<std::string> waiting_keys;
  for (int i = 0; i < 3; ++i) {
    sessions.push_back(NewSession(absl::Seconds(9)));  // renewed every 3 s
    waiting.push_back(
        std::make_unique<RWMutex>(sessions.back().get(), "table"));
    // A writer, then a reader and a writer behind it.
    Enqueue(waiters, i,
            i == 1 ? Reader(waiting[i].get()) : Writer(waiting[i].get()), kDir,
            i + 3);
    waiting_keys.push_back(waiting[i]->key());
    renewing.push_back({waiting[i]->key(), 3});
  }
  PassRenewals(renewing, absl::Milliseconds(1250), 10);
  ExpectChangedLast(holder_keys, waiting_keys);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(waiters.state(i), 0) << i;
  EXPECT_TRUE(readers[0]->IsReader() && readers[1]->IsReader());

  ASSERT_OK(readers[1]->RUnlock());  // the writer re-reads and waits on
  EXPECT_TRUE(StaysFalse([&] { return waiters.state(0) != 0; }));
  ASSERT_OK(readers[0]->RUnlock());
  ASSERT_TRUE(Eventually([&] { return waiters.state(0) != 0; }));
  ASSERT_OK(waiters.result(0));
  EXPECT_TRUE(StaysFalse([&] { return waiters.state(1) != 0; }));
  ASSERT_OK(waiting[0]->Unlock());
  ASSERT_TRUE(Eventually([&] { return waiters.state(1) != 0; }));
  ASSERT_OK(waiters.result(1));
  EXPECT_TRUE(StaysFalse([&] { return waiters.state(2) != 0; }));
  ASSERT_OK(waiting[1]->RUnlock());
  ASSERT_TRUE(Eventually([&] { return waiters.state(2) != 0; }));
  ASSERT_OK(waiters.result(2));
  EXPECT_GT(waiting[2]->fence(), waiting[1]->fence());
  ASSERT_OK(waiting[2]->Unlock());
}

}  // namespace
}  // namespace leasehold::lease
