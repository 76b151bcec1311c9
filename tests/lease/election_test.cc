#include "lease/election.h"

#include <atomic>
#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
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
using testing::KeysUnder;
using ::testing::Optional;
using testing::StaysFalse;
using testing::Waiters;

constexpr char kDir[] = "/leasehold/election/engine";

class ElectionTest : public testing::LockFixture {
 protected:
  // "value key fence", or "-" for no leader.
  static std::string Describe(const std::optional<LeaderInfo>& leader) {
    if (!leader.has_value()) return "-";
    return absl::StrCat(leader->value, " ", leader->key, " ", leader->fence);
  }

  // The leader values an observer reports ("-" for no leader).
  std::vector<std::string> Drain(LeaderObserver& observer, size_t count) {
    std::vector<std::string> out;
    while (out.size() < count) {
      absl::StatusOr<std::optional<LeaderInfo>> next =
          observer.Next(clock_.Now() + absl::Seconds(1));
      if (!next.ok()) break;
      out.push_back(next->has_value() ? (*next)->value : "-");
    }
    return out;
  }
};

TEST_F(ElectionTest, CampaignLeadsAndLeaderReportsIt) {
  auto session = NewSession();
  Election election(session.get(), "engine");
  EXPECT_EQ(election.Status(), ElectionStatus::kFollower);
  ASSERT_OK_AND_ASSIGN(std::optional<LeaderInfo> none, election.Leader());
  EXPECT_FALSE(none.has_value());

  ASSERT_OK(election.Campaign("host-a"));
  EXPECT_EQ(election.Status(), ElectionStatus::kLeader);
  ASSERT_OK_AND_ASSIGN(std::optional<LeaderInfo> leader, election.Leader());
  ASSERT_TRUE(leader.has_value());
  EXPECT_EQ(leader->value, "host-a");
  EXPECT_EQ(leader->key, election.key());
  EXPECT_EQ(leader->fence, election.fence());
}

TEST_F(ElectionTest, CandidateWaitsUntilTheLeaderResigns) {
  auto s1 = NewSession();
  auto s2 = NewSession();
  Election a(s1.get(), "engine"), b(s2.get(), "engine");
  ASSERT_OK(a.Campaign("a"));
  std::atomic<bool> b_leads{false};
  std::thread t([&] { b_leads = b.Campaign("b").ok(); });
  ASSERT_TRUE(
      Eventually([&] { return b.Status() == ElectionStatus::kCandidate; }));
  ASSERT_TRUE(Eventually([&] { return KeysUnder(&keys_, kDir).size() == 2; }));
  EXPECT_FALSE(b_leads);
  ASSERT_OK(a.Resign());
  EXPECT_EQ(a.Status(), ElectionStatus::kFollower);
  t.join();
  EXPECT_TRUE(b_leads);
  EXPECT_EQ(b.Status(), ElectionStatus::kLeader);
  EXPECT_GT(b.fence(), a.fence());
  EXPECT_FALSE(a.revoked()->fired());  // resigning is not a revocation
}

TEST_F(ElectionTest, ProclaimOnlyWhileLeader) {
  auto s1 = NewSession();
  auto s2 = NewSession();
  Election a(s1.get(), "engine"), b(s2.get(), "engine");
  EXPECT_THAT(a.Proclaim("x"), StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK(a.Campaign("a1"));
  ASSERT_OK(a.Proclaim("a2"));
  ASSERT_OK_AND_ASSIGN(std::optional<LeaderInfo> leader, b.Leader());
  EXPECT_EQ(leader->value, "a2");
  EXPECT_EQ(leader->fence, a.fence());  // same candidacy, same fence
  ASSERT_OK(a.Proclaim("a3"));          // the adopted key keeps renewing
  const int sets = keys_.calls(FaultyKeysApi::kSet);
  clock_.Advance(absl::Seconds(25));
  ASSERT_TRUE(
      Eventually([&] { return keys_.calls(FaultyKeysApi::kSet) > sets + 1; }));
  EXPECT_TRUE(a.IsLeader());
  EXPECT_FALSE(a.revoked()->fired());
  ASSERT_OK(a.Resign());
  EXPECT_THAT(a.Proclaim("a4"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(ElectionTest, ProclaimWithALostResponseIsResolvedByReadingBack) {
  auto session = NewSession();
  Election a(session.get(), "engine");
  ASSERT_OK(a.Campaign("a1"));
  keys_.LoseResponseNext(FaultyKeysApi::kSet, 1);
  ASSERT_OK(a.Proclaim("a2"));
  EXPECT_TRUE(a.IsLeader());
  ASSERT_OK_AND_ASSIGN(std::optional<LeaderInfo> leader, a.Leader());
  EXPECT_EQ(leader->value, "a2");
}

TEST_F(ElectionTest, ProclaimThatCannotBeConfirmedRevokes) {
  auto session = NewSession();
  Election a(session.get(), "engine");
  ASSERT_OK(a.Campaign("a1"));
  keys_.FailNext(FaultyKeysApi::kSet, 1);
  EXPECT_THAT(a.Proclaim("a2"), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(a.revoked()->fired());
  EXPECT_EQ(a.Status(), ElectionStatus::kFollower);
}

TEST_F(ElectionTest, ObserverSeesEveryLeaderInOrder) {
  auto s1 = NewSession();
  auto s2 = NewSession();
  Election a(s1.get(), "engine"), b(s2.get(), "engine");
  LeaderObserver observer(&keys_, "/leasehold/", "engine");
  ASSERT_OK_AND_ASSIGN(std::optional<LeaderInfo> first, observer.Next());
  EXPECT_FALSE(first.has_value());

  ASSERT_OK(a.Campaign("a"));
  std::thread t([&] { ASSERT_OK(b.Campaign("b")); });
  ASSERT_TRUE(Eventually([&] { return KeysUnder(&keys_, kDir).size() == 2; }));
  ASSERT_OK(a.Proclaim("a2"));
  ASSERT_OK(a.Resign());
  t.join();
  ASSERT_OK(b.Proclaim("b2"));
  ASSERT_OK(b.Resign());
  // All of it happened before the observer looked again: it replays.
  EXPECT_THAT(Drain(observer, 5),
              ::testing::ElementsAre("a", "a2", "b", "b2", "-"));
}

// Observe() follows the election of the Election it is made from: its
// name under its session's prefix, whoever campaigns, and nothing else.
TEST_F(ElectionTest, ObserveThroughTheElectionFollowsItsOwnElection) {
  SessionOptions options;
  options.ttl = absl::Seconds(60);
  options.clock = &clock_;
  options.keeper = &keeper_;
  options.prefix = "/other/";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Session> s1,
                       Session::Create(&keys_, options));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Session> s2,
                       Session::Create(&keys_, options));
  auto default_prefix = NewSession();
  Election a(s1.get(), "engine"), b(s2.get(), "engine");
  Election elsewhere(default_prefix.get(), "engine");  // another prefix
  Election other_name(s1.get(), "scheduler");          // another name
  std::unique_ptr<LeaderObserver> observer = b.Observe();
  ASSERT_OK_AND_ASSIGN(std::optional<LeaderInfo> first, observer->Next());
  EXPECT_EQ(Describe(first), "-");

  ASSERT_OK(elsewhere.Campaign("not-ours"));
  ASSERT_OK(other_name.Campaign("not-ours-either"));
  ASSERT_OK(a.Campaign("a"));
  const std::string a_was = Describe(LeaderInfo{"a", a.key(), a.fence()});
  ASSERT_OK_AND_ASSIGN(std::optional<LeaderInfo> next,
                       observer->Next(clock_.Now() + absl::Seconds(1)));
  EXPECT_EQ(Describe(next), a_was);

  std::thread t([&] { ASSERT_OK(b.Campaign("b")); });
  ASSERT_TRUE(Eventually(
      [&] { return KeysUnder(&keys_, "/other/election/engine").size() == 2; }));
  ASSERT_OK(a.Resign());
  t.join();
  ASSERT_OK_AND_ASSIGN(next, observer->Next(clock_.Now() + absl::Seconds(1)));
  EXPECT_EQ(Describe(next), Describe(LeaderInfo{"b", b.key(), b.fence()}));
  EXPECT_GT(b.fence(), a.fence());
  ASSERT_OK(b.Resign());
  ASSERT_OK_AND_ASSIGN(next, observer->Next(clock_.Now() + absl::Seconds(1)));
  EXPECT_EQ(Describe(next), "-");
  // Nothing more: the other elections' leaders were never reported.
  EXPECT_THAT(observer->Next(clock_.Now()).status(),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST_F(ElectionTest, ObserverRereadsAfterAHistoryGap) {
  registry::MemoryOptions options = MemoryOptions();
  options.history_size = 4;
  auto small = registry::NewMemoryRegistry(options);
  auto session = NewSession(absl::Seconds(60), small.get());
  Election a(session.get(), "engine");
  LeaderObserver observer(small.get(), "/leasehold/", "engine");
  ASSERT_OK_AND_ASSIGN(std::optional<LeaderInfo> first, observer.Next());
  EXPECT_FALSE(first.has_value());
  ASSERT_OK(a.Campaign("a"));
  for (int i = 0; i < 10; ++i) ASSERT_OK(a.Proclaim(absl::StrCat("v", i)));
  ASSERT_OK_AND_ASSIGN(std::optional<LeaderInfo> now, observer.Next());
  ASSERT_TRUE(now.has_value());
  EXPECT_EQ(now->value, "v9");
  ASSERT_OK(session->Close());
}

TEST_F(ElectionTest, LeaderWhoseSessionDiesIsReplacedAndRevoked) {
  FaultyKeysApi leader_keys(memory_.get(), &clock_);
  auto s1 = NewSession(absl::Seconds(5), &leader_keys);
  auto s2 = NewSession(absl::Seconds(60));
  Election a(s1.get(), "engine"), b(s2.get(), "engine");
  LeaderObserver observer(&keys_, "/leasehold/", "engine");
  ASSERT_OK_AND_ASSIGN(std::optional<LeaderInfo> first, observer.Next());
  EXPECT_FALSE(first.has_value());
  ASSERT_OK(a.Campaign("a"));
  leader_keys.FailNext(FaultyKeysApi::kSet, FaultyKeysApi::kForever);
  absl::Status b_status;
  std::thread t([&] { b_status = b.Campaign("b"); });
  ASSERT_TRUE(Eventually([&] { return KeysUnder(&keys_, kDir).size() == 2; }));
  clock_.Advance(absl::Seconds(6));
  t.join();
  ASSERT_OK(b_status);
  ASSERT_TRUE(Eventually([&] { return a.revoked()->fired(); }));
  EXPECT_EQ(a.Status(), ElectionStatus::kFollower);
  EXPECT_THAT(a.Proclaim("again"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(Drain(observer, 2), ::testing::ElementsAre("a", "b"));
}

TEST_F(ElectionTest, HungProclaimStillRevokesLeadershipAtTheKeysExpiry) {
  auto session = NewSession(absl::Seconds(6));
  Election election(session.get(), "engine");
  ASSERT_OK(election.Campaign("a"));
  // The Proclaim's write hangs (a transport that ignores its deadline);
  // the session's own renews still go through.
  keys_.HangNext(FaultyKeysApi::kSet, 1);
  absl::Status proclaimed;
  std::thread proclaimer([&] { proclaimed = election.Proclaim("b"); });
  ASSERT_TRUE(Eventually([&] { return keys_.blocked() == 1; }));
  for (int i = 0; i < 120 && !election.revoked()->fired(); ++i) {
    clock_.Advance(absl::Milliseconds(100));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const bool revoked = Eventually([&] { return election.revoked()->fired(); },
                                  std::chrono::seconds(5));
  const bool leader = election.IsLeader();
  keys_.Unblock();
  proclaimer.join();
  EXPECT_TRUE(revoked);
  EXPECT_FALSE(leader);
  EXPECT_FALSE(session->done()->fired());  // the key alone was lost
  EXPECT_THAT(proclaimed, StatusIs(absl::StatusCode::kAborted));
}

TEST_F(ElectionTest, ProclaimAfterTheKeyWasDeletedIsAborted) {
  auto session = NewSession();
  Election election(session.get(), "engine");
  ASSERT_OK(election.Campaign("a"));
  ASSERT_OK(memory_->Delete(election.key(), {}).status());
  EXPECT_THAT(election.Proclaim("b"), StatusIs(absl::StatusCode::kAborted));
  EXPECT_TRUE(election.revoked()->fired());
  EXPECT_FALSE(election.IsLeader());
}

TEST_F(ElectionTest, ObserverSeesNoLeaderWhenTheElectionsParentIsRemoved) {
  auto session = NewSession();
  Election election(session.get(), "engine");
  ASSERT_OK(election.Campaign("a"));
  LeaderObserver observer(&keys_, "/leasehold/", "engine");
  ASSERT_OK_AND_ASSIGN(std::optional<LeaderInfo> first, observer.Next());
  ASSERT_TRUE(first.has_value());
  registry::DeleteOptions everything;
  everything.dir = true;
  everything.recursive = true;
  ASSERT_OK(memory_->Delete("/leasehold/election", everything).status());
  // The removal is already in the history: the simulated clock need not
  // move (a deadline already past would fail the watch before it looks).
  ASSERT_OK_AND_ASSIGN(std::optional<LeaderInfo> next,
                       observer.Next(clock_.Now() + absl::Seconds(1)));
  EXPECT_FALSE(next.has_value());
}

// Renewals by refresh and the leader's Proclaims move modifiedIndex while
// candidates wait; leadership still follows createdIndex. After several
// renew intervals and two Proclaims (the leader's key last changed), a
// waiting candidate's Leader() and its observer name the leader with its
// new value, a candidate that re-reads the queue still waits, and the next
// candidate in line leads when the leader resigns.
TEST_F(ElectionTest, RenewalsAndProclaimsWhileCandidatesWaitKeepTheLeader) {
  auto leader_session = NewSession(absl::Seconds(3));  // renewed every 1 s
  Election leader(leader_session.get(), "engine");
  ASSERT_OK(leader.Campaign("a1"));
  constexpr int kCandidates = 3;
  std::vector<std::unique_ptr<Session>> sessions;
  std::vector<std::unique_ptr<Election>> candidates;
  std::vector<std::string> keys;
  std::vector<Renewing> renewing = {{leader.key(), 1}};
  Waiters waiters(kCandidates);
  for (int i = 0; i < kCandidates; ++i) {
    sessions.push_back(NewSession(absl::Seconds(9)));  // renewed every 3 s
    candidates.push_back(
        std::make_unique<Election>(sessions.back().get(), "engine"));
    Election* candidate = candidates.back().get();
    Enqueue(
        waiters, i,
        [candidate, i](const CancelToken* cancel) {
          return candidate->Campaign(absl::StrCat("c", i),
                                     absl::InfiniteFuture(), cancel);
        },
        kDir, i + 2);
    keys.push_back(candidate->key());
    renewing.push_back({candidate->key(), 3});
  }
  Election& watcher = *candidates[2];  // the last in line looks on
  std::unique_ptr<LeaderObserver> observer = watcher.Observe();
  EXPECT_THAT(Drain(*observer, 1), ::testing::ElementsAre("a1"));

  PassRenewals(renewing, absl::Milliseconds(1250), 6);
  ASSERT_OK(leader.Proclaim("a2"));
  PassRenewals(renewing, absl::Milliseconds(1250), 3);
  ASSERT_OK(leader.Proclaim("a3"));
  ExpectChangedLast({leader.key()}, keys);
  for (int i = 0; i < kCandidates; ++i) {
    EXPECT_EQ(waiters.state(i), 0) << i;
    EXPECT_EQ(candidates[i]->Status(), ElectionStatus::kCandidate);
  }
  const std::string a3 =
      Describe(LeaderInfo{"a3", leader.key(), leader.fence()});
  ASSERT_OK_AND_ASSIGN(std::optional<LeaderInfo> seen, watcher.Leader());
  EXPECT_EQ(Describe(seen), a3);
  // Renewals are no leader change; each Proclaim is.
  EXPECT_THAT(Drain(*observer, 2), ::testing::ElementsAre("a2", "a3"));
  EXPECT_EQ(leader.Status(), ElectionStatus::kLeader);

  // The first candidate withdraws; the second re-reads and waits on.
  GiveUp(waiters, 0);
  EXPECT_TRUE(StaysFalse(
      [&] { return waiters.state(1) != 0 || waiters.state(2) != 0; }));
  ASSERT_OK_AND_ASSIGN(seen, watcher.Leader());
  EXPECT_EQ(Describe(seen), a3);

  ASSERT_OK(leader.Resign());
  ASSERT_TRUE(Eventually([&] { return waiters.state(1) != 0; }));
  ASSERT_OK(waiters.result(1));
  EXPECT_EQ(candidates[1]->Status(), ElectionStatus::kLeader);
  EXPECT_EQ(watcher.Status(), ElectionStatus::kCandidate);
  const std::string c1 =
      Describe(LeaderInfo{"c1", candidates[1]->key(), candidates[1]->fence()});
  ASSERT_OK_AND_ASSIGN(seen, watcher.Leader());
  EXPECT_EQ(Describe(seen), c1);
  EXPECT_THAT(Drain(*observer, 1), ::testing::ElementsAre("c1"));
  ASSERT_OK(candidates[1]->Resign());
  ASSERT_TRUE(Eventually([&] { return waiters.state(2) != 0; }));
  ASSERT_OK(waiters.result(2));
  ASSERT_OK(watcher.Resign());
}

}  // namespace
}  // namespace leasehold::lease
