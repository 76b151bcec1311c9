// auto_sync_interval against real etcd, for the v2 client (/v2/members) and
// the v3 client (/v3/cluster/member/list): a client told of one member of
// a 3-member cluster learns the others and keeps working when that member
// is gone; a sync loop whose endpoints fail keeps the client working and
// stops promptly.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registry/clock.h"
#include "registry/etcd/etcd_client.h"
#include "registry/etcd_v3/etcd_v3_client.h"
#include "tests/testing/etcd_cluster.h"
#include "tests/testing/etcd_server.h"
#include "tests/testing/eventually.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/watched_clock.h"

namespace leasehold::registry {
namespace {

using ::leasehold::testing::EtcdCluster;
using ::leasehold::testing::Eventually;
using ::leasehold::testing::FreePort;
using ::leasehold::testing::IsOk;
using ::leasehold::testing::WatchedClock;

class AutoSyncTest : public ::testing::TestWithParam<std::string> {
 protected:
  absl::StatusOr<std::unique_ptr<KeysApi>> Client(EtcdOptions options) {
    return GetParam() == "etcd3" ? NewEtcdV3Client(std::move(options))
                                 : NewEtcdClient(std::move(options));
  }
};

TEST_P(AutoSyncTest, LearnsTheOtherMembersAndUsesThemWhenItsOwnIsGone) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EtcdCluster> cluster,
                       EtcdCluster::Start());
  WatchedClock clock;
  EtcdOptions options;
  options.endpoints = {cluster->endpoint(0)};
  options.auto_sync_interval = absl::Seconds(10);
  options.clock = &clock;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<KeysApi> keys,
                       Client(std::move(options)));
  ASSERT_THAT(keys->Set("/sync/k", "1", {}), IsOk());
  // One sync round: the sync thread sleeps its interval, syncs, and then
  // sleeps for the next one.
  const absl::Time first_round = clock.Now() + absl::Seconds(10);
  ASSERT_TRUE(
      Eventually([&] { return clock.latest_deadline() >= first_round; }));
  clock.Advance(absl::Seconds(10));
  ASSERT_TRUE(Eventually([&] {
    return clock.latest_deadline() >= first_round + absl::Seconds(10);
  }));
  ASSERT_THAT(cluster->StopMember(0), IsOk());
  ASSERT_OK_AND_ASSIGN(Response got, keys->Get("/sync/k", {}));
  EXPECT_EQ(got.node.value, "1");
  EXPECT_THAT(keys->Set("/sync/k", "2", {}), IsOk());
}

TEST_P(AutoSyncTest, KeepsWorkingAndStopsPromptly) {
  EtcdOptions options;
  options.endpoints = {absl::StrCat("http://127.0.0.1:", FreePort()),
                       testing::SharedEtcdFor(GetParam()).endpoint()};
  options.auto_sync_interval = absl::Milliseconds(50);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<KeysApi> keys,
                       Client(std::move(options)));
  EXPECT_THAT(keys->Set("/sync/k", "v", {}), IsOk());
  // The destructor stops the sync thread promptly, even mid-request.
  const absl::Time before = RealClock()->Now();
  keys.reset();
  EXPECT_LT(RealClock()->Now() - before, absl::Seconds(2));  // not 5 s timeout
}

INSTANTIATE_TEST_SUITE_P(Apis, AutoSyncTest,
                         ::testing::ValuesIn(testing::EtcdApis()),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                           return p.param;
                         });

}  // namespace
}  // namespace leasehold::registry
