// SIGSTOP of the raft leader for 10 s, with etcd's default election
// settings: the others elect a new leader and no agent loses a hold (TTL
// 5 s, renewed at the default interval), over 1 round, or
// $LEASEHOLD_CLUSTER_ROUNDS (the full target: 10), on each API.
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/cluster/agent_fleet.h"
#include "tests/testing/etcd_cluster.h"
#include "tests/testing/etcd_server.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::testing {
namespace {

// Whether the cluster's etcd keeps a frozen leader, once it runs again,
// from revoking the v3 leases renewed on its successor meanwhile: etcd
// 3.4.28 and 3.5.11 on (etcd issue #15247, fixed by etcd PR #16822).
absl::StatusOr<bool> OldLeaderCannotRevokeLeases(EtcdCluster& cluster) {
  absl::StatusOr<std::string> version =
      HttpGet(cluster.endpoint(0) + "/version", absl::Seconds(10));
  if (!version.ok()) return version.status();
  constexpr char kField[] = "\"etcdserver\":\"";
  const size_t at = version->find(kField);
  if (at == std::string::npos) {
    return absl::InternalError("no etcdserver version in " + *version);
  }
  const size_t from = at + sizeof(kField) - 1;
  const std::vector<std::string> parts = absl::StrSplit(
      version->substr(from, version->find('"', from) - from), '.');
  int major = 0, minor = 0, patch = 0;
  if (parts.size() < 3 || !absl::SimpleAtoi(parts[0], &major) ||
      !absl::SimpleAtoi(parts[1], &minor) ||
      !absl::SimpleAtoi(parts[2], &patch)) {
    return absl::InternalError("unreadable etcd version in " + *version);
  }
  if (major != 3) return major > 3;
  if (minor == 4) return patch >= 28;
  if (minor == 5) return patch >= 11;
  return minor > 5;
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
