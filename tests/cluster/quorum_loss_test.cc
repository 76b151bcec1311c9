// Losing quorum (2 of 3 members stopped for longer than the TTL), with
// etcd's default election settings: every holder is told its lease is lost
// no later than its local expiry, and once quorum returns the agents take
// their units back, never two holders at once. Agents of both APIs (v2 and
// v3) meet the fault together.
#include "gtest/gtest.h"
#include "tests/cluster/agent_fleet.h"
#include "tests/testing/etcd_cluster.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::testing {
namespace {

// How late after its local expiry a lost lease may be reported: the
// Keeper's scheduler and callback thread on a loaded machine.
constexpr absl::Duration kReportSlack = absl::Seconds(1);

TEST(ClusterFaultTest, LosingQuorumLosesEveryHoldInTimeThenRecovers) {
  EtcdClusterOptions cluster_options;
  cluster_options.timing = ElectionTiming::kDefault;
  ASSERT_OK_AND_ASSIGN(auto cluster, EtcdCluster::Start(cluster_options));
  const AgentFleetOptions options;
  const std::vector<std::unique_ptr<AgentFleet>> fleets =
      FleetPerApi(*cluster, options);
  for (const auto& fleet : fleets) {
    ASSERT_TRUE(fleet->WaitSettled(absl::Seconds(60))) << fleet->api();
  }
  ASSERT_OK_AND_ASSIGN(const int leader, cluster->WaitForLeader());
  const int stopped[] = {(leader + 1) % 3, (leader + 2) % 3};
  for (int i : stopped) ASSERT_OK(cluster->StopMember(i));

  // No renew can commit: every hold runs out on the holder's own clock.
  const absl::Time deadline = absl::Now() + options.ttl + absl::Seconds(30);
  for (const auto& fleet : fleets) {
    while (fleet->live_units() > 0 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(100));
    }
  }
  for (const auto& fleet : fleets) {
    SCOPED_TRACE(fleet->api());
    EXPECT_EQ(fleet->live_units(), 0);
    const std::vector<EndedHold> lost = fleet->Lost();
    EXPECT_GE(lost.size(), static_cast<size_t>(options.units))
        << Describe(lost);
    for (const EndedHold& e : lost) {
      EXPECT_LE(e.told_late, kReportSlack) << Describe({e});
    }
  }

  for (int i : stopped) ASSERT_OK(cluster->RestartMember(i));
  ASSERT_OK(cluster->WaitHealthy());
  for (const auto& fleet : fleets) {
    EXPECT_TRUE(fleet->WaitSettled(absl::Seconds(60)))
        << "the " << fleet->api() << " agents hold " << fleet->live_units()
        << " of " << options.units << " units after quorum returned";
  }
  for (const auto& fleet : fleets) {
    fleet->Stop();
    const sim::Verdict verdict = fleet->Verdict();
    EXPECT_TRUE(verdict.safe)
        << fleet->api() << ": " << ::testing::PrintToString(verdict.violations);
  }
}

}  // namespace
}  // namespace leasehold::testing
