// SIGKILL of the raft leader, with etcd's default election settings: the
// survivors elect a new leader and no agent loses a hold (TTL 5 s, renewed
// at the default interval), over 2 rounds, or $LEASEHOLD_CLUSTER_ROUNDS
// (the full target: 10). Agents of both APIs (v2 and v3) meet every fault.
#include "gtest/gtest.h"
#include "tests/cluster/agent_fleet.h"
#include "tests/testing/etcd_cluster.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::testing {
namespace {

TEST(ClusterFaultTest, KillingTheLeaderLosesNoHold) {
  EtcdClusterOptions cluster_options;
  cluster_options.timing = ElectionTiming::kDefault;
  ASSERT_OK_AND_ASSIGN(auto cluster, EtcdCluster::Start(cluster_options));
  ExpectNoHoldLost(*cluster, Rounds(2), absl::Seconds(8),
                   [&] { return cluster->KillLeader(); });
}

}  // namespace
}  // namespace leasehold::testing
