// SIGKILL of a follower, with etcd's default election settings: the leader
// keeps its quorum and no agent loses a hold (TTL 5 s, renewed at the
// default interval), over 2 rounds on v2 and 1 on v3 (the cluster label's
// time budget), or $LEASEHOLD_CLUSTER_ROUNDS on both (the full target: 10).
#include "gtest/gtest.h"
#include "tests/cluster/agent_fleet.h"
#include "tests/testing/etcd_cluster.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::testing {
namespace {

// Each API in turn: "etcd" (v2) and "etcd3" (v3) on the same kind of
// cluster.
class ClusterFaultTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ClusterFaultTest, KillingAFollowerLosesNoHold) {
  EtcdClusterOptions cluster_options;
  cluster_options.timing = ElectionTiming::kDefault;
  ASSERT_OK_AND_ASSIGN(auto cluster, EtcdCluster::Start(cluster_options));
  ExpectNoHoldLost(*cluster, GetParam(), Rounds(GetParam() == "etcd" ? 2 : 1),
                   absl::Seconds(8), [&] { return cluster->KillFollower(); });
}

INSTANTIATE_TEST_SUITE_P(Apis, ClusterFaultTest,
                         ::testing::ValuesIn(EtcdApis()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace leasehold::testing
