// SIGSTOP of the raft leader for 10 s, with etcd's default election
// settings: the others elect a new leader and no agent loses a hold (TTL
// 5 s, renewed at the default interval), over 1 round, or
// $LEASEHOLD_CLUSTER_ROUNDS (the full target: 10), on each API.
#include <string>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "registry/etcd/etcd_client.h"
#include "registry/etcd/json_codec.h"
#include "tests/cluster/agent_fleet.h"
#include "tests/testing/etcd_cluster.h"
#include "tests/testing/etcd_server.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::testing {
namespace {

// Whether the cluster's etcd keeps a frozen leader, once it runs again,
// from revoking the v3 leases renewed on its successor meanwhile.
absl::StatusOr<bool> OldLeaderCannotRevokeLeases(EtcdCluster& cluster) {
  absl::StatusOr<std::string> body =
      HttpGet(cluster.endpoint(0) + "/version", absl::Seconds(10));
  if (!body.ok()) return body.status();
  absl::StatusOr<registry::etcd_internal::EtcdVersion> version =
      registry::etcd_internal::ParseEtcdVersion(*body);
  if (!version.ok()) return version.status();
  return !registry::etcd_internal::RevokesLeasesAfterAStall(version->server);
}

// Each API in turn: "etcd" (v2) and "etcd3" (v3).
class ClusterFaultTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ClusterFaultTest, FreezingTheLeaderLosesNoHold) {
  EtcdClusterOptions cluster_options;
  cluster_options.timing = ElectionTiming::kDefault;
  ASSERT_OK_AND_ASSIGN(auto cluster, EtcdCluster::Start(cluster_options));
  if (GetParam() == "etcd3") {
    ASSERT_OK_AND_ASSIGN(const bool fixed,
                         OldLeaderCannotRevokeLeases(*cluster));
    if (!fixed) {
      GTEST_SKIP() << "marked: this etcd lets a frozen leader, once it runs "
                      "again, revoke every v3 lease renewed on its successor "
                      "meanwhile (etcd issue #15247; fixed in etcd 3.4.28 and "
                      "3.5.11): holders lose what they held";
    }
  }
  ExpectNoHoldLost(*cluster, Rounds(1), absl::Seconds(10),
                   [&] { return cluster->PauseLeader(); }, {GetParam()});
}

INSTANTIATE_TEST_SUITE_P(Apis, ClusterFaultTest,
                         ::testing::ValuesIn(EtcdApis()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace leasehold::testing
