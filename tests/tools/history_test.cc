// The simulation's safety verdict: what `leasehold sim` and the agent test
// rely on to say "no unit ever had two owners at once".
#include "tools/sim/history.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace leasehold::sim {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

const absl::Time kT0 = absl::FromUnixSeconds(1000);
absl::Time At(int ms) { return kT0 + absl::Milliseconds(ms); }

TEST(HistoryTest, SuccessiveOwnersWithRisingFencesAreSafe) {
  History history;
  history.End(history.Begin("u", "m1", 5, At(0)), At(100), "released");
  history.End(history.Begin("u", "m2", 7, At(100)), At(300), "lost");
  history.Begin("v", "m1", 6, At(50));  // another lease, overlapping in time
  history.EndAll(At(400), "end of run");
  EXPECT_TRUE(history.Check().safe);
}

TEST(HistoryTest, TwoOwnersAtOnceIsAViolationNamingBoth) {
  History history;
  history.End(history.Begin("u", "m1", 5, At(0)), At(200), "lost");
  history.End(history.Begin("u", "m2", 7, At(150)), At(300), "released");
  const Verdict verdict = history.Check();
  EXPECT_FALSE(verdict.safe);
  ASSERT_THAT(verdict.violations, SizeIs(1));
  EXPECT_THAT(verdict.violations[0], HasSubstr("u: m2 believed"));
  EXPECT_THAT(verdict.violations[0], HasSubstr("while m1 still did"));
  EXPECT_EQ(verdict.overlaps, 1);
  EXPECT_EQ(verdict.fence_violations, 0);
}

TEST(HistoryTest, AFenceThatDoesNotRiseIsAViolation) {
  History history;
  history.End(history.Begin("u", "m1", 7, At(0)), At(100), "released");
  history.End(history.Begin("u", "m2", 7, At(100)), At(200), "released");
  const Verdict verdict = history.Check();
  EXPECT_FALSE(verdict.safe);
  EXPECT_THAT(verdict.violations,
              ElementsAre(HasSubstr("fence went from 7 (m1) to 7 (m2)")));
  EXPECT_EQ(verdict.overlaps, 0);
  EXPECT_EQ(verdict.fence_violations, 1);
}

TEST(HistoryTest, AStealIsATakeoverMeasuredNotAViolation) {
  History history;
  history.End(history.Begin("engine", "m1", 5, At(0)), At(400), "lost");
  history.End(history.Begin("engine", "m2", 9, At(100), /*by_steal=*/true),
              At(500), "released");
  EXPECT_TRUE(history.Check().safe);
  EXPECT_THAT(history.DeposedNoticeLatencies(),
              ElementsAre(absl::Milliseconds(300)));
}

TEST(HistoryTest, ADeposedHolderStillBelievingWhenAThirdOwnerStartsIsCaught) {
  // m2's steal excuses m1's belief only toward m2: when m3 acquires after
  // m2 let go, m1 must have stopped believing too.
  History history;
  history.End(history.Begin("engine", "m1", 5, At(0)), At(1000), "lost");
  history.End(history.Begin("engine", "m2", 9, At(100), /*by_steal=*/true),
              At(200), "released");
  history.End(history.Begin("engine", "m3", 11, At(300)), At(400), "released");
  const Verdict verdict = history.Check();
  EXPECT_FALSE(verdict.safe);
  EXPECT_THAT(verdict.violations,
              ElementsAre(HasSubstr("m3 believed it owned it from")));
  EXPECT_THAT(verdict.violations[0], HasSubstr("while m1 still did"));
}

TEST(HistoryTest, AnyEarlierOverlapIsCaughtNotOnlyThePredecessors) {
  History history;
  history.End(history.Begin("u", "m1", 5, At(0)), At(1000), "lost");
  history.End(history.Begin("u", "m2", 6, At(100)), At(200), "lost");
  history.End(history.Begin("u", "m3", 7, At(300)), At(400), "lost");
  EXPECT_THAT(history.Check().violations, SizeIs(2));  // m2 and m3 vs m1
}

TEST(HistoryTest, FailoverIsMeasuredFromTheOrphaning) {
  History history;
  const size_t first = history.Begin("u", "m1", 5, At(0));
  history.Orphan(first, At(100));
  history.End(first, At(900), "lost");
  history.Begin("u", "m2", 6, At(1300));
  EXPECT_THAT(history.FailoverLatencies(),
              ElementsAre(absl::Milliseconds(1200)));
}

TEST(HistoryTest, OnChangeSeesEachHoldBeginAndEndOnce) {
  std::vector<Hold> seen;
  History history([&](const Hold& hold) { seen.push_back(hold); });
  const size_t id = history.Begin("u", "m1", 5, At(0));
  history.End(id, At(100), "released");
  history.End(id, At(200), "lost");  // already ended: no change
  ASSERT_THAT(seen, SizeIs(2));
  EXPECT_EQ(seen[0].end, absl::InfiniteFuture());
  EXPECT_EQ(seen[1].end, At(100));
  EXPECT_EQ(seen[1].how_ended, "released");
}

}  // namespace
}  // namespace leasehold::sim
