#include "lease/barrier.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registry/cancel.h"
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
using testing::StaysFalse;
using testing::Waiters;

constexpr char kKey[] = "/leasehold/barrier/gate";
constexpr char kWaiters[] = "/leasehold/double-barrier/round/waiters";
constexpr char kReady[] = "/leasehold/double-barrier/round/ready";

class BarrierTest : public testing::LockFixture {
 protected:
  Barrier NewBarrier() { return Barrier(&keys_, "/leasehold/", "gate"); }
};

TEST_F(BarrierTest, WaitersGoOnOnlyOnceTheHolderReleases) {
  Barrier holder = NewBarrier();
  ASSERT_OK(NewBarrier().Wait());  // not held: at once
  ASSERT_OK_AND_ASSIGN(bool held, holder.Hold("coordinator"));
  EXPECT_TRUE(held);
  ASSERT_OK_AND_ASSIGN(registry::Response r, keys_.Get(kKey, {}));
  EXPECT_EQ(r.node.value, "coordinator");
  ASSERT_OK_AND_ASSIGN(held, NewBarrier().Hold());  // held already
  EXPECT_FALSE(held);

  constexpr int kCount = 5;
  // Before the waiters, whose threads use them until the waiters end.
  std::vector<Barrier> barriers(kCount, NewBarrier());
  Waiters waiters(kCount);
  for (int i = 0; i < kCount; ++i) {
    waiters.Start(i, [&, i](const CancelToken* cancel) {
      return barriers[i].Wait(absl::InfiniteFuture(), cancel);
    });
  }
  ASSERT_TRUE(Eventually([&] { return keys_.in_flight() == kCount; }));
  EXPECT_TRUE(StaysFalse([&] {
    for (int i = 0; i < kCount; ++i) {
      if (waiters.state(i) != 0) return true;
    }
    return false;
  }));
  ASSERT_OK_AND_ASSIGN(bool released, NewBarrier().Release());
  EXPECT_TRUE(released);
  for (int i = 0; i < kCount; ++i) {
    ASSERT_TRUE(Eventually([&] { return waiters.state(i) != 0; })) << i;
    EXPECT_OK(waiters.result(i));
  }
  ASSERT_OK_AND_ASSIGN(released, holder.Release());
  EXPECT_FALSE(released);  // not held any more
}

TEST_F(BarrierTest, AHoldWithATtlEndsByItself) {
  Barrier holder = NewBarrier();
  ASSERT_OK_AND_ASSIGN(bool held, holder.Hold("", absl::Milliseconds(1500)));
  EXPECT_TRUE(held);
  ASSERT_OK_AND_ASSIGN(registry::Response r, keys_.Get(kKey, {}));
  EXPECT_EQ(r.node.ttl, 2);  // whole seconds, rounded up
  absl::Status status;
  std::atomic<bool> done{false};
  std::thread t([&] {
    status = NewBarrier().Wait();
    done = true;
  });
  ASSERT_TRUE(Eventually([&] { return keys_.in_flight() == 1; }));
  EXPECT_FALSE(done);
  clock_.Advance(absl::Seconds(3));
  t.join();
  EXPECT_OK(status);
}

TEST_F(BarrierTest, WaitGivesUpAtItsDeadlineOrCancel) {
  ASSERT_OK(NewBarrier().Hold().status());
  absl::Status status;
  std::thread t(
      [&] { status = NewBarrier().Wait(clock_.Now() + absl::Seconds(5)); });
  ASSERT_TRUE(Eventually([&] { return keys_.in_flight() == 1; }));
  clock_.Advance(absl::Seconds(6));
  t.join();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kDeadlineExceeded,
                               HasSubstr("barrier \"gate\"")));
  CancelToken cancel;
  cancel.Cancel();
  EXPECT_THAT(NewBarrier().Wait(absl::InfiniteFuture(), &cancel),
              StatusIs(absl::StatusCode::kCancelled));
  EXPECT_TRUE(Exists(&keys_, kKey));
}

TEST_F(BarrierTest, BadNameOrTtlIsInvalidArgument) {
  Barrier bad(&keys_, "/leasehold/", "a/b");
  EXPECT_THAT(bad.Hold().status(), StatusIs(absl::StatusCode::kInvalidArgument,
                                            HasSubstr("barrier name")));
  EXPECT_THAT(bad.Wait(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      NewBarrier().Hold("", absl::Seconds(-1)).status(),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("barrier ttl")));
}

class DoubleBarrierTest : public testing::LockFixture {
 protected:
  void Make(int parties, size_t count, absl::Duration ttl = absl::Seconds(60),
            registry::KeysApi* keys = nullptr) {
    for (int i = 0; i < parties; ++i) {
      sessions_.push_back(NewSession(ttl, keys));
      barriers_.push_back(std::make_unique<DoubleBarrier>(
          sessions_.back().get(), "round", count));
    }
  }
  DoubleBarrier& b(int i) { return *barriers_[i]; }
  Waiters::Wait Enter(int i) {
    return [this, i](const CancelToken* cancel) {
      return b(i).Enter(absl::InfiniteFuture(), cancel);
    };
  }
  Waiters::Wait Leave(int i) {
    return [this, i](const CancelToken* cancel) {
      return b(i).Leave(absl::InfiniteFuture(), cancel);
    };
  }

  // Declared before the sessions that may use it: a session releases its
  // keys through it when the fixture ends.
  FaultyKeysApi dying_keys_{memory_.get(), &clock_};
  std::vector<std::unique_ptr<Session>> sessions_;
  std::vector<std::unique_ptr<DoubleBarrier>> barriers_;
};

TEST_F(DoubleBarrierTest, NobodyEntersBeforeAllAndNobodyLeavesBeforeAll) {
  constexpr int kCount = 5;
  Make(kCount, kCount);
  {
    Waiters entering(kCount);
    for (int i = 0; i < kCount - 1; ++i) {
      Enqueue(entering, i, Enter(i), kWaiters, i + 1);
    }
    EXPECT_TRUE(StaysFalse([&] {
      for (int i = 0; i < kCount - 1; ++i) {
        if (entering.state(i) != 0) return true;
      }
      return false;
    }));
    ASSERT_OK(b(kCount - 1).Enter());  // the last lets everyone in
    for (int i = 0; i < kCount - 1; ++i) {
      ASSERT_TRUE(Eventually([&] { return entering.state(i) != 0; })) << i;
      ASSERT_OK(entering.result(i));
    }
  }
  EXPECT_TRUE(Exists(&keys_, kReady));
  {
    Waiters leaving(kCount);
    for (int i = 0; i < kCount - 1; ++i) leaving.Start(i, Leave(i));
    // The oldest waits for the rest; the others are out of the queue but
    // wait for the oldest.
    ASSERT_TRUE(
        Eventually([&] { return KeysUnder(&keys_, kWaiters).size() == 2; }));
    EXPECT_TRUE(StaysFalse([&] {
      for (int i = 0; i < kCount - 1; ++i) {
        if (leaving.state(i) != 0) return true;
      }
      return false;
    }));
    ASSERT_OK(b(kCount - 1).Leave());
    for (int i = 0; i < kCount - 1; ++i) {
      ASSERT_TRUE(Eventually([&] { return leaving.state(i) != 0; })) << i;
      ASSERT_OK(leaving.result(i));
    }
  }
  EXPECT_THAT(KeysUnder(&keys_, kWaiters), IsEmpty());
  EXPECT_FALSE(Exists(&keys_, kReady));
  for (int i = 0; i < kCount; ++i) EXPECT_EQ(b(i).key(), "");

  // The barrier serves the next round.
  Waiters again(kCount);
  for (int i = 0; i < kCount; ++i) again.Start(i, Enter(i));
  for (int i = 0; i < kCount; ++i) {
    ASSERT_TRUE(Eventually([&] { return again.state(i) != 0; })) << i;
    ASSERT_OK(again.result(i));
  }
}

// A `ready` left by an earlier round (its last party died leaving) lets
// nobody in before the round is full.
TEST_F(DoubleBarrierTest, AStaleReadyLetsNobodyInEarly) {
  ASSERT_OK(memory_->Set(kReady, "stale", {}).status());
  Make(2, 2);
  Waiters entering(1);
  Enqueue(entering, 0, Enter(0), kWaiters, 1);
  EXPECT_TRUE(StaysFalse([&] { return entering.state(0) != 0; }));
  ASSERT_OK(b(1).Enter());
  ASSERT_TRUE(Eventually([&] { return entering.state(0) != 0; }));
  ASSERT_OK(entering.result(0));
}

TEST_F(DoubleBarrierTest, OneTooManyIsRefusedAndLeavesNoKey) {
  Make(3, 2);
  Waiters entering(2);
  entering.Start(0, Enter(0));
  ASSERT_OK(b(1).Enter());
  ASSERT_TRUE(Eventually([&] { return entering.state(0) != 0; }));
  ASSERT_OK(entering.result(0));
  EXPECT_THAT(b(2).Enter(),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("all 2 parties have entered already")));
  EXPECT_EQ(KeysUnder(&keys_, kWaiters).size(), 2u);
  EXPECT_THAT(b(2).Leave(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                     HasSubstr("not entered")));
  EXPECT_THAT(b(1).Enter(), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(DoubleBarrierTest, GivingUpOnEnterDeletesTheKey) {
  Make(1, 3);
  absl::Status status;
  std::thread t([&] { status = b(0).Enter(clock_.Now() + absl::Seconds(5)); });
  ASSERT_TRUE(
      Eventually([&] { return KeysUnder(&keys_, kWaiters).size() == 1; }));
  clock_.Advance(absl::Seconds(6));
  t.join();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kDeadlineExceeded,
                               HasSubstr("double barrier \"round\"")));
  EXPECT_THAT(KeysUnder(&keys_, kWaiters), IsEmpty());
  EXPECT_EQ(b(0).key(), "");
}

// A party that dies inside the barrier (its renewals fail) is gone at its
// TTL, and the others leave without it.
TEST_F(DoubleBarrierTest, APartyThatDiesInsideDoesNotHoldTheOthersForever) {
  Make(2, 3);
  Make(1, 3, absl::Seconds(5), &dying_keys_);
  Waiters entering(3);
  for (int i = 0; i < 3; ++i) entering.Start(i, Enter(i));
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(Eventually([&] { return entering.state(i) != 0; })) << i;
    ASSERT_OK(entering.result(i));
  }
  dying_keys_.FailNext(FaultyKeysApi::kSet, FaultyKeysApi::kForever);
  Waiters leaving(2);
  for (int i = 0; i < 2; ++i) leaving.Start(i, Leave(i));
  EXPECT_TRUE(StaysFalse([&] { return leaving.state(0) != 0; }));
  clock_.Advance(absl::Seconds(6));  // the dying party's key expires
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(Eventually([&] { return leaving.state(i) != 0; })) << i;
    ASSERT_OK(leaving.result(i));
  }
  EXPECT_THAT(KeysUnder(memory_.get(), kWaiters), IsEmpty());
}

}  // namespace
}  // namespace leasehold::lease
