// A full cluster restart with the data kept: a lease whose TTL did not run
// out is still its holder's (and its Keeper goes on renewing it), while one
// whose TTL ran out meanwhile is gone.
#include <atomic>

#include "gtest/gtest.h"
#include "lease/keeper.h"
#include "lease/lease_manager.h"
#include "registry/open.h"
#include "tests/testing/etcd_cluster.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::testing {
namespace {

using lease::Keeper;
using lease::LeaseManager;
using lease::LeaseState;

// Each API in turn: "etcd" (v2) and "etcd3" (v3) on the same kind of
// cluster.
class ClusterFaultTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ClusterFaultTest, FullRestartKeepsLeasesWhoseTtlDidNotRunOut) {
  ASSERT_OK_AND_ASSIGN(auto cluster, EtcdCluster::Start());
  ASSERT_OK_AND_ASSIGN(auto keys, registry::Open(cluster->uri(GetParam())));
  LeaseManager leases(keys.get());
  // Before the Keeper: its teardown tells the callback, which sets this.
  std::atomic<bool> ever_lost{false};
  Keeper keeper;

  ASSERT_OK_AND_ASSIGN(auto kept,
                       leases.AcquireLease("kept", "a", 1, absl::Seconds(30)));
  ASSERT_NE(kept, nullptr);
  auto held = keeper.Add(std::move(kept), [&](LeaseState state) {
    if (state == LeaseState::kLost) ever_lost.store(true);
  });
  ASSERT_OK_AND_ASSIGN(auto brief,
                       leases.AcquireLease("brief", "a", 1, absl::Seconds(1)));
  ASSERT_NE(brief, nullptr);

  ASSERT_OK(cluster->StopAll());
  const absl::Time expiry_before = held->lease().expiry();
  // The Keeper meets the outage (its next renew fails) before etcd returns.
  EXPECT_STREQ(lease::LeaseStateName(held->WaitWhile(
                   LeaseState::kHeld, absl::Now() + absl::Seconds(20))),
               "suspect");
  ASSERT_OK(cluster->RestartAll());

  ASSERT_OK_AND_ASSIGN(auto after, leases.GetLease("kept"));
  ASSERT_NE(after, nullptr);
  EXPECT_EQ(after->machine_id(), "a");
  // Its Keeper renews it again on the restarted cluster: its expiry moves
  // on (its index need not: a v3 renew is a keep-alive).
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (held->lease().expiry() <= expiry_before && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_GT(held->lease().expiry(), expiry_before);
  EXPECT_STREQ(lease::LeaseStateName(held->state()), "held");
  EXPECT_FALSE(ever_lost.load());

  // The one-second lease runs out (while the cluster is down, or soon
  // after): it does not come back with the data.
  absl::StatusOr<std::unique_ptr<lease::Lease>> gone = leases.GetLease("brief");
  while ((!gone.ok() || *gone != nullptr) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
    gone = leases.GetLease("brief");
  }
  ASSERT_OK(gone.status());
  EXPECT_EQ(*gone, nullptr);
  keeper.Stop(/*release=*/true);
}

INSTANTIATE_TEST_SUITE_P(Apis, ClusterFaultTest,
                         ::testing::ValuesIn(EtcdApis()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace leasehold::testing
