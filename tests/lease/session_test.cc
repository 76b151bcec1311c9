#include "lease/session.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lease/lease_manager.h"
#include "lease/mutex.h"
#include "lease/semaphore.h"
#include "tests/lease/lock_fixture.h"
#include "tests/lease/lock_test_util.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::lease {
namespace {

using ::leasehold::testing::FaultyKeysApi;
using ::leasehold::testing::StatusIs;
using testing::Eventually;
using testing::Exists;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::KeysUnder;

class SessionTest : public testing::LockFixture {};

TEST_F(SessionTest, CreateMakesASessionKeyWithTheTtl) {
  auto session = NewSession(absl::Milliseconds(4500));
  EXPECT_TRUE(absl::StartsWith(session->id(), "/leasehold/session/"));
  EXPECT_EQ(session->ttl(), absl::Seconds(5));  // rounded up
  ASSERT_OK_AND_ASSIGN(registry::Response r, keys_.Get(session->id(), {}));
  EXPECT_EQ(r.node.ttl, 5);
  EXPECT_FALSE(session->done()->fired());
}

TEST_F(SessionTest, BadTtlIsInvalidArgument) {
  SessionOptions options;
  options.ttl = absl::ZeroDuration();
  options.clock = &clock_;
  options.keeper = &keeper_;
  EXPECT_THAT(
      Session::Create(&keys_, options).status(),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("session ttl")));
}

TEST_F(SessionTest, KeepsItsKeysAliveThroughTheKeeper) {
  auto session = NewSession(absl::Seconds(6));
  Mutex mutex(session.get(), "job");
  ASSERT_OK(mutex.Lock());
  for (int i = 0; i < 5; ++i) {  // 15 s in all, well past the 6 s TTL
    const int sets = keys_.calls(FaultyKeysApi::kSet);
    clock_.Advance(absl::Seconds(3));
    // Both renewals (the session key's and the lock key's) have answered.
    ASSERT_TRUE(Eventually([&] {
      return keys_.calls(FaultyKeysApi::kSet) >= sets + 2 &&
             keys_.in_flight() == 0;
    })) << i;
  }
  EXPECT_TRUE(Exists(memory_.get(), session->id()));
  EXPECT_TRUE(Exists(memory_.get(), mutex.key()));
  EXPECT_TRUE(mutex.IsOwner());
  EXPECT_FALSE(session->done()->fired());
}

TEST_F(SessionTest, CloseDeletesEveryKeyAndEndsTheHolds) {
  auto session = NewSession();
  Mutex mutex(session.get(), "job");
  Semaphore slot(session.get(), "pool", 2);
  ASSERT_OK(mutex.Lock());
  ASSERT_OK(slot.Acquire());
  ASSERT_OK(session->Close());
  EXPECT_FALSE(Exists(memory_.get(), session->id()));
  EXPECT_THAT(KeysUnder(memory_.get(), "/leasehold/lock/job"), IsEmpty());
  EXPECT_THAT(KeysUnder(memory_.get(), "/leasehold/semaphore/pool"), IsEmpty());
  EXPECT_TRUE(session->done()->fired());
  EXPECT_THAT(session->done()->cause(),
              StatusIs(absl::StatusCode::kCancelled, HasSubstr("closed")));
  EXPECT_TRUE(mutex.lost()->fired());
  EXPECT_TRUE(slot.lost()->fired());
  EXPECT_FALSE(mutex.IsOwner());
}

TEST_F(SessionTest, ClosingTwiceOrUsingAClosedSessionFails) {
  auto session = NewSession();
  ASSERT_OK(session->Close());
  EXPECT_THAT(session->Close(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                         HasSubstr("already closed")));
  EXPECT_THAT(session->Orphan(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(session->CreateKey("/x", "v", false).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("already closed")));
}

TEST_F(SessionTest, OrphanStopsRefreshingAndLeavesKeysToExpire) {
  auto session = NewSession(absl::Seconds(5));
  Mutex mutex(session.get(), "job");
  ASSERT_OK(mutex.Lock());
  const std::string key = mutex.key();
  ASSERT_OK(session->Orphan());
  EXPECT_TRUE(session->done()->fired());
  EXPECT_TRUE(mutex.lost()->fired());
  EXPECT_TRUE(Exists(memory_.get(), key));
  const int sets = keys_.calls(FaultyKeysApi::kSet);
  clock_.Advance(absl::Seconds(6));
  EXPECT_FALSE(Exists(memory_.get(), key));
  EXPECT_FALSE(Exists(memory_.get(), session->id()));
  EXPECT_EQ(keys_.calls(FaultyKeysApi::kSet), sets);
}

TEST_F(SessionTest, DoneFiresWhenTheSessionKeyIsDeleted) {
  auto session = NewSession(absl::Seconds(6));
  Mutex mutex(session.get(), "job");
  ASSERT_OK(mutex.Lock());
  ASSERT_OK(memory_->Delete(session->id(), {}).status());
  clock_.Advance(absl::Seconds(3));  // the next renewal finds it gone
  ASSERT_TRUE(Eventually([&] { return session->done()->fired(); }));
  EXPECT_THAT(session->done()->cause(),
              StatusIs(absl::StatusCode::kAborted, HasSubstr("expired")));
  ASSERT_TRUE(Eventually([&] { return mutex.lost()->fired(); }));
  EXPECT_FALSE(mutex.IsOwner());
  EXPECT_THAT(mutex.Lock(), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(SessionTest, DoneFiresWhenTheRegistryIsUnreachablePastTheTtl) {
  FaultyKeysApi down(memory_.get(), &clock_);
  auto session = NewSession(absl::Seconds(5), &down);
  down.FailNext(FaultyKeysApi::kAll, FaultyKeysApi::kForever);
  clock_.Advance(absl::Seconds(4));
  EXPECT_FALSE(session->done()->fired());
  clock_.Advance(absl::Seconds(2));
  ASSERT_TRUE(Eventually([&] { return session->done()->fired(); }));
}

TEST_F(SessionTest, LostCreateResponseIsResolvedByItsUniqueValue) {
  auto session = NewSession();
  keys_.LoseResponseNext(FaultyKeysApi::kCreateInOrder, 1);
  Mutex mutex(session.get(), "job");
  ASSERT_OK(mutex.Lock());
  EXPECT_THAT(KeysUnder(memory_.get(), "/leasehold/lock/job"),
              ::testing::ElementsAre(mutex.key()));
}

// A session the Keeper ended (its TTL passed while its renews hung) is
// still giving its keys up when the user closes it: Close returns only once
// no renew of its keys is using the registry, which may then be closed.
TEST_F(SessionTest, CloseAfterTheSessionExpiredWaitsForItsRenewsInFlight) {
  auto session = NewSession(absl::Seconds(9));
  Mutex mutex(session.get(), "job");
  ASSERT_OK(mutex.Lock());
  keys_.Block(FaultyKeysApi::kSet);
  const absl::Cleanup unblock = [&] { keys_.Unblock(); };
  clock_.Advance(absl::Seconds(4));  // both renews (jittered) go out, hang
  ASSERT_TRUE(Eventually([&] { return keys_.blocked() == 2; }));
  clock_.Advance(absl::Seconds(6));  // past the TTL on the local clock
  ASSERT_TRUE(Eventually([&] { return session->done()->fired(); }));
  std::atomic<bool> closed{false};
  std::thread closer([&] {
    session->Close().IgnoreError();
    closed = true;
  });
  const bool returned_early =
      Eventually([&] { return closed.load(); }, std::chrono::milliseconds(300));
  keys_.Unblock();
  closer.join();
  EXPECT_FALSE(returned_early);
  EXPECT_EQ(keys_.in_flight(), 0);
}

TEST_F(SessionTest, LostFiresWhileAnotherLeasesCallbackIsSlow) {
  auto session = NewSession(absl::Seconds(9));
  Mutex mutex(session.get(), "job");
  ASSERT_OK(mutex.Lock());
  LeaseManagerOptions manager_options;
  manager_options.clock = &clock_;
  LeaseManager manager(&keys_, manager_options);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> lease,
                       manager.AcquireLease("slow", "m", 1, absl::Seconds(9)));
  // A user callback on the same Keeper that blocks once the lease is lost.
  // Its gate is shared with the callback, which may still be waking on it
  // after the test has returned.
  struct Gate {
    std::mutex mu;
    std::condition_variable cv;
    bool entered = false, leave = false;
  };
  const auto gate = std::make_shared<Gate>();
  // Lets the callback go however the test ends, so a failed assertion
  // reports instead of hanging in the Keeper's teardown.
  const auto let_go = [gate] {
    {
      std::lock_guard<std::mutex> lock(gate->mu);
      gate->leave = true;
    }
    gate->cv.notify_all();
  };
  const absl::Cleanup release_callback = let_go;
  keeper_.Add(std::move(lease), [gate](LeaseState state) {
    if (state != LeaseState::kLost) return;
    std::unique_lock<std::mutex> lock(gate->mu);
    gate->entered = true;
    gate->cv.wait(lock, [&] { return gate->leave; });
  });
  ASSERT_OK(memory_->Delete("/leasehold/lease/slow", {}).status());
  clock_.Advance(absl::Milliseconds(3500));  // its renew finds it gone
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard<std::mutex> lock(gate->mu);
    return gate->entered;
  }));
  ASSERT_OK(memory_->Delete(mutex.key(), {}).status());
  clock_.Advance(absl::Milliseconds(3500));  // the lock key's renew too
  const bool lost = Eventually([&] { return mutex.lost()->fired(); },
                               std::chrono::seconds(5));
  let_go();
  EXPECT_TRUE(lost);
}

}  // namespace
}  // namespace leasehold::lease
