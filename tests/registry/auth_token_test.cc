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

TEST(AuthTokenTest, FetchesOnceAndKeepsTheToken) {
  WatchedClock clock;
  Authenticator auth;
  AuthToken token(clock, auth.fetch());
  EXPECT_EQ(token.Current(), std::nullopt);
  ASSERT_OK_AND_ASSIGN(std::string first, token.Get(kNoDeadline));
  EXPECT_EQ(first, "t1");
  ASSERT_OK_AND_ASSIGN(std::string again, token.Get(kNoDeadline));
  EXPECT_EQ(again, "t1");
  EXPECT_EQ(token.Current(), "t1");
  EXPECT_EQ(auth.calls(), 1);
}

TEST(AuthTokenTest, RenewFetchesOnlyForTheCurrentToken) {
  WatchedClock clock;
  Authenticator auth;
  AuthToken token(clock, auth.fetch());
  ASSERT_THAT(token.Get(kNoDeadline), IsOk());
  ASSERT_OK_AND_ASSIGN(std::string renewed, token.Renew("t1", kNoDeadline));
  EXPECT_EQ(renewed, "t2");
  // A request that carried "t1" learns late that it was rejected: the
  // newer token serves it without another authentication.
  ASSERT_OK_AND_ASSIGN(std::string late, token.Renew("t1", kNoDeadline));
  EXPECT_EQ(late, "t2");
  EXPECT_EQ(auth.calls(), 2);
  EXPECT_EQ(token.fetches(), 2);
}

// Many threads whose token etcd rejected at once: one authentication, whose
// token every thread gets.
TEST(AuthTokenTest, ConcurrentRenewalsShareOneFetch) {
  WatchedClock clock;
  Authenticator auth;
  AuthToken token(clock, auth.fetch());
  ASSERT_THAT(token.Get(kNoDeadline), IsOk());
  auth.Hold();
  constexpr int kThreads = 8;
  std::vector<std::string> got(kThreads);
  std::vector<std::thread> threads;
  threads.emplace_back([&] { got[0] = *token.Renew("t1", kNoDeadline); });
  ASSERT_TRUE(Eventually([&] { return auth.calls() == 2; }));
  for (int i = 1; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      got[i] = i % 2 == 0 ? *token.Renew("t1", kNoDeadline)
                          : *token.Get(kNoDeadline);
    });
  }
  // Every other thread is waiting for the fetch in flight.
  const bool all_waited =
      Eventually([&] { return clock.waiting() == kThreads - 1; });
  auth.LetGo();
  for (std::thread& t : threads) t.join();
  EXPECT_TRUE(all_waited);
  EXPECT_THAT(got, Each(Eq("t2")));
  EXPECT_EQ(auth.calls(), 2);
}

// A refused password is the answer of every thread that waited for that
// authentication, not one more attempt each.
TEST(AuthTokenTest, WaitersShareAFailedFetch) {
  WatchedClock clock;
  Authenticator auth;
  AuthToken token(clock, auth.fetch());
  auth.FailWith(absl::UnauthenticatedError("user \"alice\" was not accepted"));
  auth.Hold();
  absl::Status first;
  absl::Status second;
  std::thread a([&] { first = token.Get(kNoDeadline).status(); });
  ASSERT_TRUE(Eventually([&] { return auth.calls() == 1; }));
  std::thread b([&] { second = token.Get(kNoDeadline).status(); });
  const bool waited = Eventually([&] { return clock.waiting() == 1; });
  auth.LetGo();
  a.join();
  b.join();
  EXPECT_TRUE(waited);
  EXPECT_THAT(first, StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(second, StatusIs(absl::StatusCode::kUnauthenticated,
                               HasSubstr("user \"alice\"")));
  EXPECT_EQ(auth.calls(), 1);
  // The next request tries again: the password may have been fixed since.
  auth.FailWith(absl::OkStatus());
  EXPECT_THAT(token.Get(kNoDeadline), IsOk());
  EXPECT_EQ(auth.calls(), 2);
}

// A thread waiting for another's authentication gives up at its deadline.
TEST(AuthTokenTest, WaitForAnotherFetchEndsAtTheDeadline) {
  WatchedClock clock;
  Authenticator auth;
  AuthToken token(clock, auth.fetch());
  auth.Hold();
  std::thread fetcher([&] { EXPECT_THAT(token.Get(kNoDeadline), IsOk()); });
  ASSERT_TRUE(Eventually([&] { return auth.calls() == 1; }));
  absl::Status waited;
  const int waits_before = clock.waits();
  std::thread waiter(
      [&] { waited = token.Get(clock.Now() + absl::Seconds(2)).status(); });
  ASSERT_TRUE(Eventually([&] { return clock.waits() > waits_before; }));
  clock.Advance(absl::Seconds(2));
  waiter.join();
  EXPECT_THAT(waited, StatusIs(absl::StatusCode::kDeadlineExceeded,
                               HasSubstr("another request")));
  auth.LetGo();
  fetcher.join();
  EXPECT_EQ(auth.calls(), 1);
}

}  // namespace
}  // namespace leasehold::registry::etcd_v3_internal
