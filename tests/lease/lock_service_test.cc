#include "lease/lock_service.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registry/clock.h"
#include "tests/lease/lock_test_util.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::lease {
namespace {

using ::leasehold::testing::StatusIs;
using testing::Eventually;
using ::testing::HasSubstr;

class LockServiceTest : public ::testing::Test {
 protected:
  LockServiceTest() {
    LockServiceOptions options;
    options.clock = &clock_;
    absl::StatusOr<std::unique_ptr<LockService>> service =
        OpenLockService("mem:", options);
    EXPECT_TRUE(service.ok()) << service.status();
    service_ = std::move(*service);
  }

  std::unique_ptr<LockSession> NewSession(
      absl::Duration timeout = absl::InfiniteDuration(),
      absl::Duration ttl = absl::Seconds(60)) {
    LockSessionOptions options;
    options.ttl = ttl;
    options.timeout = timeout;
    absl::StatusOr<std::unique_ptr<LockSession>> session =
        service_->NewSession(options);
    EXPECT_TRUE(session.ok()) << session.status();
    return session.ok() ? std::move(*session) : nullptr;
  }

  SimulatedClock clock_;
  std::unique_ptr<LockService> service_;
};

TEST_F(LockServiceTest, LockReturnsALostSignalThatCloseFires) {
  auto session = NewSession();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Locker> locker,
                       session->NewLocker("deploy"));
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<const Signal> lost, locker->Lock());
  EXPECT_TRUE(locker->IsOwner());
  EXPECT_GT(locker->fence(), 0u);
  EXPECT_FALSE(lost->fired());
  ASSERT_OK(session->Close());
  EXPECT_TRUE(lost->fired());
  EXPECT_FALSE(locker->IsOwner());
}

TEST_F(LockServiceTest, UnlockLetsTheNextSessionIn) {
  auto s1 = NewSession();
  auto s2 = NewSession();
  ASSERT_OK_AND_ASSIGN(auto a, s1->NewLocker("deploy"));
  ASSERT_OK_AND_ASSIGN(auto b, s2->NewLocker("deploy"));
  ASSERT_OK(a->Lock().status());
  std::atomic<bool> b_in{false};
  std::thread t([&] { b_in = b->Lock().ok(); });
  ASSERT_OK(a->Unlock());
  t.join();
  EXPECT_TRUE(b_in);
  EXPECT_GT(b->fence(), a->fence());
}

TEST_F(LockServiceTest, LockGivesUpAfterTheSessionTimeout) {
  auto s1 = NewSession();
  auto s2 = NewSession(absl::Seconds(5));
  ASSERT_OK_AND_ASSIGN(auto a, s1->NewLocker("deploy"));
  ASSERT_OK_AND_ASSIGN(auto b, s2->NewLocker("deploy"));
  ASSERT_OK(a->Lock().status());
  absl::Status status;
  std::atomic<bool> returned{false};
  std::thread t([&] {
    status = b->Lock().status();
    returned = true;
  });
  ASSERT_TRUE(Eventually([&] {
    clock_.Advance(absl::Seconds(1));  // until b's deadline passes
    return returned.load();
  }));
  t.join();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_TRUE(a->IsOwner());
}

TEST_F(LockServiceTest, ClosedSessionIsAClearError) {
  auto session = NewSession();
  ASSERT_OK_AND_ASSIGN(auto locker, session->NewLocker("deploy"));
  ASSERT_OK(session->Close());
  EXPECT_THAT(session->Close(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                         HasSubstr("already closed")));
  EXPECT_THAT(session->NewLocker("other").status(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("already closed")));
  EXPECT_THAT(locker->Lock().status(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("already closed")));
}

TEST_F(LockServiceTest, ExpiryOnMemIsAsOnEtcd) {
  auto session = NewSession(absl::InfiniteDuration(), absl::Seconds(10));
  ASSERT_OK_AND_ASSIGN(auto locker, session->NewLocker("deploy"));
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<const Signal> lost, locker->Lock());
  // The registry loses the keys (as after an etcd restore): the next
  // renewal finds them gone.
  registry::DeleteOptions everything;
  everything.dir = true;
  everything.recursive = true;
  ASSERT_OK(session->session()
                .keys()
                ->Delete("/leasehold/lock/deploy", everything)
                .status());
  clock_.Advance(absl::Seconds(4));
  ASSERT_TRUE(Eventually([&] { return lost->fired(); }));
  EXPECT_THAT(lost->cause(), StatusIs(absl::StatusCode::kAborted));
}

TEST_F(LockServiceTest, BadUriIsInvalidArgument) {
  EXPECT_THAT(OpenLockService("zookeeper://x").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(LockServiceTest, CloseClosesEverySessionAndReleasesItsLocks) {
  auto s1 = NewSession();
  auto s2 = NewSession();
  auto closed_first = NewSession();
  ASSERT_OK(closed_first->Close());
  ASSERT_OK_AND_ASSIGN(auto a, s1->NewLocker("deploy"));
  ASSERT_OK_AND_ASSIGN(auto b, s2->NewLocker("build"));
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<const Signal> a_lost, a->Lock());
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<const Signal> b_lost, b->Lock());
  registry::KeysApi* keys = s1->session().keys();

  ASSERT_OK(service_->Close());
  EXPECT_TRUE(a_lost->fired());
  EXPECT_TRUE(b_lost->fired());
  EXPECT_TRUE(s1->done()->fired());
  EXPECT_THAT(s1->done()->cause(), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_TRUE(s2->done()->fired());
  EXPECT_THAT(testing::KeysUnder(keys, "/leasehold/lock/deploy"),
              ::testing::IsEmpty());
  EXPECT_THAT(testing::KeysUnder(keys, "/leasehold/session"),
              ::testing::IsEmpty());

  const auto already_closed = StatusIs(absl::StatusCode::kFailedPrecondition,
                                       HasSubstr("already closed"));
  EXPECT_THAT(service_->Close(), already_closed);
  EXPECT_THAT(service_->NewSession({}).status(), already_closed);
  EXPECT_THAT(s1->NewLocker("other").status(), already_closed);
  EXPECT_THAT(s1->Close(), already_closed);
  EXPECT_OK(a->Unlock());  // it was lost: nothing left to delete
  EXPECT_THAT(a->Lock().status(), already_closed);
}

TEST_F(LockServiceTest, SessionDoneFiresWhenItExpires) {
  auto session = NewSession(absl::InfiniteDuration(), absl::Seconds(3));
  EXPECT_FALSE(session->done()->fired());
  ASSERT_OK(
      session->session().keys()->Delete(session->session().id(), {}).status());
  clock_.Advance(absl::Seconds(2));  // the next renewal finds it gone
  ASSERT_TRUE(Eventually([&] { return session->done()->fired(); }));
  EXPECT_THAT(session->done()->cause(), StatusIs(absl::StatusCode::kAborted));
  EXPECT_THAT(
      session->NewLocker("deploy").status(),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("ended")));
}

// Close while other threads make sessions and lockers, lock, wait and
// unlock: every call returns, nothing is held afterwards, and every call
// after Close is "already closed".
TEST_F(LockServiceTest, CloseWithCallsInFlight) {
  auto holder_session = NewSession();
  ASSERT_OK_AND_ASSIGN(auto holder, holder_session->NewLocker("deploy"));
  ASSERT_OK(holder->Lock().status());
  constexpr int kThreads = 8;
  std::atomic<bool> closed{false};
  std::atomic<int> waiting{0}, after_close_ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0;; ++round) {
        const bool was_closed = closed.load();
        absl::StatusOr<std::unique_ptr<LockSession>> session =
            service_->NewSession({});
        if (!session.ok()) {
          EXPECT_THAT(session.status(),
                      StatusIs(absl::StatusCode::kFailedPrecondition,
                               HasSubstr("already closed")));
          return;
        }
        if (was_closed) ++after_close_ok;
        absl::StatusOr<std::unique_ptr<Locker>> locker =
            (*session)->NewLocker(t % 2 == 0 ? "deploy" : "build");
        if (!locker.ok()) continue;
        if (t % 2 == 0 && round == 0) ++waiting;  // waits behind the holder
        absl::StatusOr<std::shared_ptr<const Signal>> lost = (*locker)->Lock();
        if (lost.ok()) (*locker)->Unlock().IgnoreError();
      }
    });
  }
  ASSERT_TRUE(Eventually([&] { return waiting == kThreads / 2; }));
  ASSERT_OK(service_->Close());
  closed = true;  // from here on, every NewSession fails
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(after_close_ok, 0);
  EXPECT_FALSE(holder->IsOwner());
  EXPECT_THAT(testing::KeysUnder(holder_session->session().keys(),
                                 "/leasehold/lock/deploy"),
              ::testing::IsEmpty());
}

}  // namespace
}  // namespace leasehold::lease
