// AuthToken without an etcd: one authentication for many threads whose
// token etcd rejected, shared failures, deadlines while another thread
// authenticates.
#include "registry/etcd_v3/auth_token.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/eventually.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/watched_clock.h"

namespace leasehold::registry::etcd_v3_internal {
namespace {

using ::leasehold::testing::Eventually;
using ::leasehold::testing::IsOk;
using ::leasehold::testing::StatusIs;
using ::leasehold::testing::WatchedClock;
using ::testing::Each;
using ::testing::Eq;
using ::testing::HasSubstr;

// A fetch that hands out "t1", "t2", … and, while held, blocks until let go.
class Authenticator {
 public:
  AuthToken::Fetch fetch() {
    return [this](absl::Time) -> absl::StatusOr<std::string> {
      std::unique_lock<std::mutex> lock(mu_);
      const int n = ++calls_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return !held_; });
      if (!failure_.ok()) return failure_;
      return absl::StrCat("t", n);
    };
  }
  void Hold() {
    std::lock_guard<std::mutex> lock(mu_);
    held_ = true;
  }
  void LetGo() {
    std::lock_guard<std::mutex> lock(mu_);
    held_ = false;
    cv_.notify_all();
  }
  void FailWith(absl::Status failure) {
    std::lock_guard<std::mutex> lock(mu_);
    failure_ = std::move(failure);
  }
  int calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
  int calls_ = 0;
  absl::Status failure_;
};

constexpr absl::Time kNoDeadline = absl::InfiniteFuture();

class AuthTokenTest : public ::testing::Test {
 protected:
  WatchedClock clock_;
  Authenticator auth_;
  AuthToken token_{clock_, auth_.fetch()};
};

TEST_F(AuthTokenTest, FetchesOnceAndKeepsTheToken) {
  EXPECT_EQ(token_.Current(), std::nullopt);
  ASSERT_OK_AND_ASSIGN(std::string first, token_.Get(kNoDeadline));
  EXPECT_EQ(first, "t1");
  ASSERT_OK_AND_ASSIGN(std::string again, token_.Get(kNoDeadline));
  EXPECT_EQ(again, "t1");
  EXPECT_EQ(token_.Current(), "t1");
  EXPECT_EQ(auth_.calls(), 1);
}

TEST_F(AuthTokenTest, RenewFetchesOnlyForTheCurrentToken) {
  ASSERT_THAT(token_.Get(kNoDeadline), IsOk());
  ASSERT_OK_AND_ASSIGN(std::string renewed, token_.Renew("t1", kNoDeadline));
  EXPECT_EQ(renewed, "t2");
  // A request that carried "t1" learns late that it was rejected: the
  // newer token serves it without another authentication.
  ASSERT_OK_AND_ASSIGN(std::string late, token_.Renew("t1", kNoDeadline));
  EXPECT_EQ(late, "t2");
  EXPECT_EQ(auth_.calls(), 2);
  EXPECT_EQ(token_.fetches(), 2);
}

// Many threads whose token etcd rejected at once: one authentication, whose
// token every thread gets.
TEST_F(AuthTokenTest, ConcurrentRenewalsShareOneFetch) {
  ASSERT_THAT(token_.Get(kNoDeadline), IsOk());
  auth_.Hold();
  constexpr int kThreads = 8;
  std::vector<std::string> got(kThreads);
  std::vector<std::thread> threads;
  threads.emplace_back([&] { got[0] = *token_.Renew("t1", kNoDeadline); });
  ASSERT_TRUE(Eventually([&] { return auth_.calls() == 2; }));
  for (int i = 1; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      got[i] = i % 2 == 0 ? *token_.Renew("t1", kNoDeadline)
                          : *token_.Get(kNoDeadline);
    });
  }
  // Every other thread is waiting for the fetch in flight.
  const bool all_waited =
      Eventually([&] { return clock_.waiting() == kThreads - 1; });
  auth_.LetGo();
  for (std::thread& t : threads) t.join();
  EXPECT_TRUE(all_waited);
  EXPECT_THAT(got, Each(Eq("t2")));
  EXPECT_EQ(auth_.calls(), 2);
}

// A refused password is the answer of every thread that waited for that
// authentication, not one more attempt each.
TEST_F(AuthTokenTest, WaitersShareAFailedFetch) {
  auth_.FailWith(absl::UnauthenticatedError("user \"alice\" was not accepted"));
  auth_.Hold();
  absl::Status first;
  absl::Status second;
  std::thread a([&] { first = token_.Get(kNoDeadline).status(); });
  ASSERT_TRUE(Eventually([&] { return auth_.calls() == 1; }));
  std::thread b([&] { second = token_.Get(kNoDeadline).status(); });
  const bool waited = Eventually([&] { return clock_.waiting() == 1; });
  auth_.LetGo();
  a.join();
  b.join();
  EXPECT_TRUE(waited);
  EXPECT_THAT(first, StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(second, StatusIs(absl::StatusCode::kUnauthenticated,
                               HasSubstr("user \"alice\"")));
  EXPECT_EQ(auth_.calls(), 1);
  // The next request tries again: the password may have been fixed since.
  auth_.FailWith(absl::OkStatus());
  EXPECT_THAT(token_.Get(kNoDeadline), IsOk());
  EXPECT_EQ(auth_.calls(), 2);
}

// A thread waiting for another's authentication gives up at its deadline.
TEST_F(AuthTokenTest, WaitForAnotherFetchEndsAtTheDeadline) {
  auth_.Hold();
  std::thread fetcher([&] { EXPECT_THAT(token_.Get(kNoDeadline), IsOk()); });
  ASSERT_TRUE(Eventually([&] { return auth_.calls() == 1; }));
  absl::Status waited;
  const int waits_before = clock_.waits();
  std::thread waiter(
      [&] { waited = token_.Get(clock_.Now() + absl::Seconds(2)).status(); });
  ASSERT_TRUE(Eventually([&] { return clock_.waits() > waits_before; }));
  clock_.Advance(absl::Seconds(2));
  waiter.join();
  EXPECT_THAT(waited, StatusIs(absl::StatusCode::kDeadlineExceeded,
                               HasSubstr("another request")));
  auth_.LetGo();
  fetcher.join();
  EXPECT_EQ(auth_.calls(), 1);
}

}  // namespace
}  // namespace leasehold::registry::etcd_v3_internal
