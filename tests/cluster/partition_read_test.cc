// A client whose only reachable member is cut off from the others by a
// partition gets no stale owner from GetLease, ListLeases or the election's
// leader: an error, then the right answer once it can fail over.
#include "gtest/gtest.h"
#include "lease/election.h"
#include "lease/lease_manager.h"
#include "lease/session.h"
#include "registry/open.h"
#include "tests/testing/etcd_cluster.h"
#include "tests/testing/loopback_net.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::testing {
namespace {

using lease::Election;
using lease::LeaseManager;
using lease::ReadLeader;
using lease::Session;

constexpr char kPrefix[] = "/leasehold/";

std::unique_ptr<registry::KeysApi> Open(const std::string& uri) {
  absl::StatusOr<std::unique_ptr<registry::KeysApi>> keys = registry::Open(uri);
  EXPECT_OK(keys.status());
  return keys.ok() ? *std::move(keys) : nullptr;
}

// Asks `read` until it answers (up to a generous deadline); every answer
// must be `want`.
template <typename Read>
void ExpectEventually(const std::string& what, const std::string& want,
                      Read read) {
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (true) {
    absl::StatusOr<std::string> got = read();
    if (got.ok()) {
      EXPECT_EQ(*got, want) << what;
      return;
    }
    if (absl::Now() > deadline) {
      ADD_FAILURE() << what << " still fails after failover: " << got.status();
      return;
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
}

// Each API in turn: "etcd" (v2) and "etcd3" (v3) on the same kind of
// cluster.
class ClusterFaultTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ClusterFaultTest, PartitionedMemberGivesNoStaleOwner) {
  ASSERT_OK_AND_ASSIGN(auto cluster, EtcdCluster::Start());
  ASSERT_OK_AND_ASSIGN(const int leader, cluster->WaitForLeader());
  const int cut = (leader + 1) % 3;
  const int other = (leader + 2) % 3;

  // The client reaches the majority only through routes that refuse
  // connections until the test lets it fail over.
  std::string client_uri = cluster->member_uri(cut, GetParam());
  std::vector<std::unique_ptr<TcpProxy>> routes;
  for (int i : {leader, other}) {
    ASSERT_OK_AND_ASSIGN(auto route,
                         TcpProxy::Start(cluster->member(i).client_port()));
    route->Refuse(true);
    absl::StrAppend(&client_uri, ",127.0.0.1:", route->port());
    routes.push_back(std::move(route));
  }
  // The cut-off member never answers a read that needs the quorum: 2 s
  // proves it as well as the default 5 s, for each of the three reads.
  std::unique_ptr<registry::KeysApi> client_keys =
      Open(absl::StrCat(client_uri, "?request-timeout=2s"));
  std::unique_ptr<registry::KeysApi> majority_keys =
      Open(absl::StrCat(GetParam(), "://", cluster->host_port(leader), ",",
                        cluster->host_port(other)));
  LeaseManager client(client_keys.get());
  LeaseManager majority(majority_keys.get());

  // "a" owns the unit and leads the election.
  ASSERT_OK_AND_ASSIGN(
      auto a, majority.AcquireLease("unit", "a", 1, absl::Seconds(60)));
  ASSERT_NE(a, nullptr);
  ASSERT_OK_AND_ASSIGN(auto session_a,
                       Session::Create(majority_keys.get(), {}));
  Election election_a(session_a.get(), "engine");
  ASSERT_OK(election_a.Campaign("a"));
  ASSERT_OK_AND_ASSIGN(auto seen, client.GetLease("unit"));
  ASSERT_NE(seen, nullptr);
  EXPECT_EQ(seen->machine_id(), "a");

  // Cut off, the client's member cannot learn that "b" took over both.
  ASSERT_OK(cluster->PartitionMember(cut));
  ASSERT_OK(a->Release());
  ASSERT_OK_AND_ASSIGN(
      auto b, majority.AcquireLease("unit", "b", 1, absl::Seconds(60)));
  ASSERT_NE(b, nullptr);
  ASSERT_OK(election_a.Resign());
  ASSERT_OK_AND_ASSIGN(auto session_b,
                       Session::Create(majority_keys.get(), {}));
  Election election_b(session_b.get(), "engine");
  ASSERT_OK(election_b.Campaign("b"));

  // An error, never "a".
  absl::StatusOr<std::unique_ptr<lease::Lease>> got = client.GetLease("unit");
  EXPECT_FALSE(got.ok()) << "GetLease answered "
                         << (*got ? (*got)->machine_id() : "nobody");
  absl::StatusOr<std::vector<std::unique_ptr<lease::Lease>>> list =
      client.ListLeases();
  EXPECT_FALSE(list.ok()) << "ListLeases answered";
  absl::StatusOr<std::optional<lease::LeaderInfo>> led =
      ReadLeader(client_keys.get(), kPrefix, "engine");
  EXPECT_FALSE(led.ok()) << "the election's leader read answered "
                         << (*led ? (*led)->value : "none");

  // Once the majority is reachable, the client fails over to it.
  for (auto& route : routes) route->Refuse(false);
  ExpectEventually("GetLease", "b", [&]() -> absl::StatusOr<std::string> {
    auto lease = client.GetLease("unit");
    if (!lease.ok()) return lease.status();
    return *lease ? (*lease)->machine_id() : "nobody";
  });
  ExpectEventually("ListLeases", "unit:b",
                   [&]() -> absl::StatusOr<std::string> {
                     auto leases = client.ListLeases();
                     if (!leases.ok()) return leases.status();
                     std::string all;
                     for (const auto& lease : *leases) {
                       absl::StrAppend(&all, all.empty() ? "" : " ",
                                       lease->name(), ":", lease->machine_id());
                     }
                     return all;
                   });
  ExpectEventually("ReadLeader", "b", [&]() -> absl::StatusOr<std::string> {
    auto info = ReadLeader(client_keys.get(), kPrefix, "engine");
    if (!info.ok()) return info.status();
    return *info ? (*info)->value : "none";
  });
  ASSERT_OK(cluster->HealPartition());
}

INSTANTIATE_TEST_SUITE_P(Apis, ClusterFaultTest,
                         ::testing::ValuesIn(EtcdApis()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace leasehold::testing
