#include "lease/lock_service.h"

#include <atomic>
#include <thread>

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

}  // namespace
}  // namespace leasehold::lease
