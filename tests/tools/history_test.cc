// The simulation's safety verdict: what `leasehold sim` and the agent test
// rely on to say "no unit ever had two owners at once".
#include "tools/sim/history.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/synthetic_history.h"

namespace leasehold::sim {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
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
  ASSERT_THAT(verdict.violations,
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

TEST(HistoryTest, AHoldKeptThroughThePauseIsNoFailover) {
  History history;
  const size_t kept = history.Begin("u", "m1", 5, At(0));
  history.Orphan(kept, At(100));
  history.Back(kept, At(600));  // resumed before its expiry, renewed on
  history.End(kept, At(40000), "released");
  history.Begin("u", "m2", 6, At(40100));
  const size_t lapsed = history.Begin("v", "m1", 7, At(0));
  history.Orphan(lapsed, At(100));
  history.Back(lapsed, At(3000));  // its expiry passed while it was away
  history.End(lapsed, At(2100), "lost");
  history.Begin("v", "m2", 8, At(2500));
  EXPECT_THAT(history.FailoverLatencies(),
              ElementsAre(absl::Milliseconds(2400)));
}

TEST(HistoryTest, FailoverIsMeasuredFromTheLatestAbsence) {
  History history;
  const size_t first = history.Begin("u", "m1", 5, At(0));
  history.Orphan(first, At(100));
  history.Back(first, At(600));
  history.Orphan(first, At(5000));  // away again, for good this time
  history.End(first, At(5000), "killed");
  history.Begin("u", "m2", 6, At(7000));
  EXPECT_THAT(history.FailoverLatencies(),
              ElementsAre(absl::Milliseconds(2000)));
}

TEST(HistoryTest, TransfersCountChangesOfHolder) {
  History history;
  history.End(history.Begin("u", "m1", 1, At(0)), At(10), "lost");
  history.End(history.Begin("u", "m1", 2, At(20)), At(30), "lost");
  history.End(history.Begin("u", "m2", 3, At(40)), At(50), "lost");
  history.Begin("v", "m3", 4, At(0));
  int same = -1;
  EXPECT_EQ(history.Transfers(&same), 1);
  EXPECT_EQ(same, 1);
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

// ----------------------------------------------------------- named shapes

TEST(HistoryTest, ALongBelieverFollowedByShortOnesIsCaughtForEachOfThem) {
  History history;
  history.End(history.Begin("u", "long", 1, At(0)), At(1000), "lost");
  for (int i = 0; i < 4; ++i) {
    history.End(
        history.Begin("u", absl::StrCat("short", i), 2 + i, At(100 + 200 * i)),
        At(150 + 200 * i), "released");
  }
  history.End(history.Begin("u", "after", 9, At(1000)), At(1100), "released");
  const Verdict verdict = history.Check();
  ASSERT_THAT(verdict.violations, SizeIs(4));
  for (int i = 0; i < 4; ++i) {
    EXPECT_THAT(verdict.violations[i],
                HasSubstr(absl::StrCat("short", i, " believed")));
    EXPECT_THAT(verdict.violations[i], HasSubstr("while long still did"));
  }
}

TEST(HistoryTest, AStealChainExcusesEachDeposedHolderOnlyTowardItsStealer) {
  // Each holder is stolen from and notices 50 ms later, before the next
  // steal: a clean chain of takeovers.
  History history;
  history.End(history.Begin("engine", "m1", 5, At(0)), At(150), "lost");
  for (int i = 2; i <= 4; ++i) {
    history.End(history.Begin("engine", absl::StrCat("m", i), 4 + 2 * i,
                              At(100 * (i - 1)), /*by_steal=*/true),
                At(100 * i + 50), "lost");
  }
  EXPECT_THAT(history.Check().violations, IsEmpty());
  EXPECT_THAT(history.DeposedNoticeLatencies(),
              ElementsAre(absl::Milliseconds(50), absl::Milliseconds(50),
                          absl::Milliseconds(50)));

  // m1 still believes when m3 steals from m2: m3's steal does not excuse it.
  History lingering;
  lingering.End(lingering.Begin("engine", "m1", 5, At(0)), At(260), "lost");
  lingering.End(lingering.Begin("engine", "m2", 8, At(100), true), At(250),
                "lost");
  lingering.End(lingering.Begin("engine", "m3", 10, At(200), true), At(350),
                "lost");
  lingering.End(lingering.Begin("engine", "m4", 12, At(300), true), At(450),
                "lost");
  EXPECT_THAT(lingering.Check().violations,
              ElementsAre(AllOf(HasSubstr("m3 believed"),
                                HasSubstr("while m1 still did"))));
}

TEST(HistoryTest, AHoldThatNeverEndsOverlapsEveryLaterOne) {
  History history;
  history.Begin("u", "stuck", 1, At(0));  // never ended: believed for ever
  history.End(history.Begin("u", "m2", 2, At(5000)), At(5100), "released");
  history.End(history.Begin("u", "m3", 3, At(9000)), At(9100), "released");
  const Verdict verdict = history.Check();
  ASSERT_THAT(verdict.violations, SizeIs(2));
  EXPECT_THAT(verdict.violations[0], HasSubstr("while stuck still did"));
  EXPECT_THAT(verdict.violations[1], HasSubstr("while stuck still did"));

  // The last holder still believing at the end of the run is no violation.
  History open_last;
  open_last.End(open_last.Begin("u", "m1", 1, At(0)), At(100), "released");
  open_last.Begin("u", "m2", 2, At(100));
  EXPECT_TRUE(open_last.Check().safe);
}

TEST(HistoryTest, EqualTimestampsAreOrderedByFenceWhateverTheRecordingOrder) {
  // A handoff within one clock tick is safe.
  History handoff;
  handoff.End(handoff.Begin("u", "m1", 1, At(0)), At(100), "released");
  handoff.End(handoff.Begin("u", "m2", 2, At(100)), At(200), "released");
  EXPECT_TRUE(handoff.Check().safe);

  // Two grants answered in the same tick, recorded higher fence first (the
  // agents' lines arrive in any order): the first grant's answer came after
  // its lease had expired (it never believed), so nobody overlapped and the
  // fences rise in grant order.
  History same_tick;
  same_tick.End(same_tick.Begin("u", "m2", 7, At(100)), At(200), "released");
  same_tick.End(same_tick.Begin("u", "m1", 5, At(100)), At(100), "lost");
  EXPECT_THAT(same_tick.Check().violations, IsEmpty());

  // The other way round, the older grant believed on while the newer one
  // started: caught, in either recording order.
  for (bool newer_first : {false, true}) {
    History both;
    auto older = [&] {
      both.End(both.Begin("u", "m1", 5, At(100)), At(200), "lost");
    };
    auto newer = [&] {
      both.End(both.Begin("u", "m2", 7, At(100)), At(100), "lost");
    };
    if (newer_first) {
      newer();
      older();
    } else {
      older();
      newer();
    }
    EXPECT_THAT(both.Check().violations,
                ElementsAre(AllOf(HasSubstr("m2 believed"),
                                  HasSubstr("while m1 still did"))))
        << newer_first;
  }
}

// ------------------------------------------------------------ at full scale

// The scale of `leasehold sim --machines 100 --units 10000`: 200,000 holds,
// recorded in any order. (How fast: bench/micro_bench.cc, BM_HistoryCheck.)
TEST(HistoryTest, TwoHundredThousandHoldsCleanAreSafe) {
  std::vector<Hold> holds = testing::SyntheticHolds({});
  ASSERT_THAT(holds, SizeIs(200000));
  std::shuffle(holds.begin(), holds.end(), std::mt19937(7));
  History history;
  testing::Record(history, holds);
  const Verdict verdict = history.Check();
  EXPECT_TRUE(verdict.safe);
  EXPECT_THAT(verdict.violations, IsEmpty());
}

TEST(HistoryTest, OneOverlapAmongTwoHundredThousandHoldsIsFound) {
  std::vector<Hold> holds = testing::SyntheticHolds({});
  // unit-4321's 8th holder believes on 5 ms into the 9th's hold.
  const size_t planted = 4321 * 20 + 7;
  ASSERT_EQ(holds[planted].lease, "unit-4321");
  holds[planted].end = holds[planted + 1].start + absl::Milliseconds(5);
  holds[planted].machine = "m-late";
  holds[planted].how_ended = "lost";
  std::shuffle(holds.begin(), holds.end(), std::mt19937(7));
  History history;
  testing::Record(history, holds);
  const Verdict verdict = history.Check();
  EXPECT_FALSE(verdict.safe);
  EXPECT_EQ(verdict.overlaps, 1);
  EXPECT_EQ(verdict.fence_violations, 0);
  EXPECT_THAT(verdict.violations,
              ElementsAre(AllOf(HasSubstr("unit-4321: "),
                                HasSubstr("while m-late still did"))));
}

// --------------------------------------------- randomized, against brute force

// A violation as (kind, the later hold's machine): what both checkers must
// agree on.
using Finding = std::pair<std::string, std::string>;

// The definition, pair by pair: a lease's holds in grant order (start, then
// fence for equal starts); a hold overlaps when it starts before an earlier
// hold's belief ended, unless it stole from that hold (its immediate
// predecessor); fences rise from each hold to the next.
std::set<Finding> BruteForce(const std::vector<Hold>& holds) {
  std::set<Finding> findings;
  std::set<std::string> leases;
  for (const Hold& h : holds) leases.insert(h.lease);
  for (const std::string& lease : leases) {
    std::vector<Hold> group;
    for (const Hold& h : holds) {
      if (h.lease == lease) group.push_back(h);
    }
    std::sort(group.begin(), group.end(), [](const Hold& a, const Hold& b) {
      return std::make_pair(a.start, a.fence) <
             std::make_pair(b.start, b.fence);
    });
    for (size_t j = 0; j < group.size(); ++j) {
      for (size_t i = 0; i < j; ++i) {
        const bool excused = group[j].by_steal && i + 1 == j;
        if (!excused && group[j].start < group[i].end) {
          findings.insert({"overlap", group[j].machine});
        }
      }
      if (j > 0 && group[j].fence <= group[j - 1].fence) {
        findings.insert({"fence", group[j].machine});
      }
    }
  }
  return findings;
}

// The verdict's findings, read back from its messages
// ("<lease>: <later> believed ..." / "<lease>: fence went from F (a) to G
// (later)").
std::set<Finding> FindingsOf(const Verdict& verdict) {
  std::set<Finding> findings;
  for (const std::string& v : verdict.violations) {
    const size_t colon = v.find(": ");
    const std::string rest = v.substr(colon + 2);
    if (rest.rfind("fence went from ", 0) == 0) {
      const size_t open = rest.rfind('(');
      findings.insert({"fence", rest.substr(open + 1, rest.size() - open - 2)});
    } else {
      findings.insert({"overlap", rest.substr(0, rest.find(' '))});
    }
  }
  return findings;
}

// Two holds of a lease with the same start and fence: their order, and so
// which of them a finding names, is not defined.
bool Ambiguous(std::vector<Hold> holds) {
  std::sort(holds.begin(), holds.end(), [](const Hold& a, const Hold& b) {
    return std::tie(a.lease, a.start, a.fence) <
           std::tie(b.lease, b.start, b.fence);
  });
  for (size_t i = 1; i < holds.size(); ++i) {
    if (std::tie(holds[i - 1].lease, holds[i - 1].start, holds[i - 1].fence) ==
        std::tie(holds[i].lease, holds[i].start, holds[i].fence)) {
      return true;
    }
  }
  return false;
}

// A safe run of many holds on a few leases, on a coarse clock (so starts
// and ends often fall on the same tick), with steals whose deposed holder
// notices late; then faults planted at random places: a holder believing
// too long, one never ending, a hold starting early, fences swapped or
// repeated.
std::vector<Hold> RandomHistory(std::mt19937& rng) {
  auto uniform = [&](int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng);
  };
  std::vector<Hold> holds;
  const int leases = uniform(1, 3);
  for (int l = 0; l < leases; ++l) {
    const int count = uniform(1, 40);
    int now = uniform(0, 3);
    uint64_t fence = uniform(1, 5);
    const size_t first = holds.size();
    for (int k = 0; k < count; ++k) {
      Hold h;
      h.lease = absl::StrCat("u", l);
      h.machine = absl::StrCat("u", l, "-m", k);
      h.fence = fence;
      fence += uniform(1, 3);
      h.by_steal = k > 0 && uniform(0, 4) == 0;
      h.start = At(now);
      h.end = At(now + uniform(0, 4));
      if (h.by_steal) {
        // The deposed holder believes on past the steal, but stops before
        // anyone after the stealer starts.
        Hold& deposed = holds.back();
        if (deposed.start < h.start) {
          deposed.end = std::max(deposed.end, At(now + uniform(0, 1)));
          h.end = std::max(h.end, deposed.end);
        }
      }
      now = static_cast<int>((h.end - kT0) / absl::Milliseconds(1)) +
            uniform(0, 2);
      holds.push_back(h);
    }
    const int faults = uniform(0, 2);
    for (int f = 0; f < faults; ++f) {
      Hold& victim = holds[first + uniform(0, count - 1)];
      switch (uniform(0, 4)) {
        case 0:
          victim.end += absl::Milliseconds(uniform(1, 30));
          break;
        case 1:
          victim.end = absl::InfiniteFuture();
          break;
        case 2:
          victim.start =
              std::max(kT0, victim.start - absl::Milliseconds(uniform(1, 10)));
          break;
        case 3:
          std::swap(victim.fence, holds[first + uniform(0, count - 1)].fence);
          break;
        case 4:
          victim.fence = holds[first + uniform(0, count - 1)].fence;
          break;
      }
    }
  }
  std::shuffle(holds.begin(), holds.end(), rng);  // recorded in any order
  return holds;
}

TEST(HistoryTest, RandomHistoriesAgreeWithTheBruteForceDefinition) {
  std::mt19937 rng(20261130);
  int safe = 0, overlaps = 0, fences = 0;
  for (int run = 0; run < 5000; ++run) {
    std::vector<Hold> holds = RandomHistory(rng);
    while (Ambiguous(holds)) holds = RandomHistory(rng);
    History history;
    for (const Hold& h : holds) {
      const size_t id =
          history.Begin(h.lease, h.machine, h.fence, h.start, h.by_steal);
      if (h.end != absl::InfiniteFuture()) history.End(id, h.end, "lost");
    }
    const Verdict verdict = history.Check();
    const std::set<Finding> expected = BruteForce(holds);
    ASSERT_EQ(FindingsOf(verdict), expected) << "run " << run;
    ASSERT_EQ(verdict.safe, expected.empty()) << "run " << run;
    safe += expected.empty();
    for (const Finding& f : expected) {
      (f.first == "overlap" ? overlaps : fences)++;
    }
  }
  // Both verdicts occur often, and both kinds of violation.
  EXPECT_GT(safe, 1000);
  EXPECT_LT(safe, 4000);
  EXPECT_GT(overlaps, 1000);
  EXPECT_GT(fences, 1000);
}

}  // namespace
}  // namespace leasehold::sim
