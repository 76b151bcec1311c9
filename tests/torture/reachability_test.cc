// Telling a lost hold that no client could have kept from one that
// leasehold should have kept.
#include "tests/torture/reachability.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace leasehold::torture {
namespace {

using ::testing::ElementsAre;

const absl::Time kT0 = absl::FromUnixSeconds(1000);
absl::Time At(double s) { return kT0 + absl::Seconds(s); }

class ReachabilityTest : public ::testing::Test {
 protected:
  void Add(FaultKind kind, int member, int agent, double from, double to) {
    AppliedFault f;
    f.kind = kind;
    f.member = member;
    f.agent = agent;
    f.start = At(from);
    f.end = At(to);
    reach_.Add(f);
  }
  Reachability reach_{{.agents = 2, .members = 3, .ttl = absl::Seconds(2)}};
};

TEST_F(ReachabilityTest, ALeaderKillLeavesTheQuorumAndThePathUp) {
  Add(FaultKind::kKillLeader, 0, -1, 1, 5);
  EXPECT_TRUE(reach_.PathUp(0, At(2)));
  const Reachability::Cause cause = reach_.Explain(0, At(0), At(3));
  EXPECT_FALSE(cause.path_down);
  EXPECT_FALSE(cause.agent_down);
  EXPECT_THAT(cause.faults, ElementsAre(FaultKind::kKillLeader));
}

TEST_F(ReachabilityTest, TheOnlyReachableMemberPartitionedCutsThePath) {
  Add(FaultKind::kBlackholeLink, 1, 0, 0, 10);
  Add(FaultKind::kResetLink, 2, 0, 0, 10);
  EXPECT_TRUE(reach_.PathUp(0, At(1)));  // member 0 still reached
  Add(FaultKind::kPartitionMember, 0, -1, 2, 4);
  EXPECT_FALSE(reach_.PathUp(0, At(3)));
  EXPECT_TRUE(reach_.PathUp(1, At(3)));  // the other agent reaches 1 and 2
  EXPECT_TRUE(reach_.Explain(0, At(3.5), At(5)).path_down);
  EXPECT_FALSE(reach_.Explain(0, At(4), At(6)).path_down);
  EXPECT_FALSE(reach_.Explain(1, At(3.5), At(5)).path_down);
}

TEST_F(ReachabilityTest, ABriefDelayIsNoCutButALongOneIs) {
  AppliedFault slow;
  slow.kind = FaultKind::kDelayLink;
  slow.agent = 0;
  slow.start = At(0);
  slow.end = At(10);
  for (int m = 0; m < 3; ++m) {
    slow.member = m;
    slow.delay = m == 0 ? absl::Milliseconds(50) : absl::Milliseconds(400);
    reach_.Add(slow);
  }
  EXPECT_TRUE(reach_.PathUp(0, At(1)));  // 100 ms round trip to member 0
  Add(FaultKind::kPauseFollower, 0, -1, 2, 3);
  EXPECT_FALSE(reach_.PathUp(0, At(2.5)));
}

TEST_F(ReachabilityTest, AnAgentPausedOrKilledIsDown) {
  Add(FaultKind::kPauseAgent, -1, 1, 1, 2);
  const Reachability::Cause cause = reach_.Explain(1, At(0), At(3));
  EXPECT_TRUE(cause.agent_down);
  EXPECT_TRUE(cause.path_down);
  EXPECT_FALSE(reach_.Explain(0, At(0), At(3)).path_down);
}

TEST_F(ReachabilityTest, TwoMembersDownIsNoQuorum) {
  Add(FaultKind::kKillFollower, 1, -1, 0, 10);
  Add(FaultKind::kPauseLeader, 2, -1, 1, 2);
  EXPECT_TRUE(reach_.PathUp(0, At(0.5)));
  EXPECT_FALSE(reach_.PathUp(0, At(1.5)));
}

TEST_F(ReachabilityTest, HealEndsTheOpenFault) {
  AppliedFault f;
  f.kind = FaultKind::kKillAgent;
  f.agent = 0;
  f.start = At(1);
  reach_.Add(f);
  EXPECT_FALSE(reach_.PathUp(0, At(100)));
  reach_.Heal(FaultKind::kKillAgent, -1, 0, At(2));
  EXPECT_TRUE(reach_.PathUp(0, At(2)));
}

TEST_F(ReachabilityTest, HalfATtlWithoutACommitIsAClusterOutage) {
  // TTL 2 s: commits every 0.1 s but for a gap from 3.0 to 4.2 s.
  for (int i = 0; i <= 100; ++i) {
    if (i <= 30 || i >= 42) reach_.Committed(At(i / 10.0));
  }
  const Reachability::Cause out = reach_.Explain(0, At(3), At(5));
  EXPECT_TRUE(out.cluster_out);
  EXPECT_FALSE(out.path_down);
  // A shorter gap (an election the lease outlives) is no outage.
  EXPECT_FALSE(reach_.Explain(0, At(4.3), At(6)).cluster_out);
  // Silence after the last commit recorded counts too.
  EXPECT_TRUE(reach_.Explain(0, At(9), At(11)).cluster_out);
}

TEST_F(ReachabilityTest, WithNoCommitsRecordedTheClusterIsTakenToCommit) {
  EXPECT_FALSE(reach_.Explain(0, At(0), At(10)).cluster_out);
}

}  // namespace
}  // namespace leasehold::torture
