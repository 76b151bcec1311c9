// The cluster fixture does what its fault methods say, against real etcd.
#include "tests/testing/etcd_cluster.h"

#include "gtest/gtest.h"
#include "registry/open.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::testing {
namespace {

using registry::GetOptions;
using registry::KeysApi;

std::unique_ptr<KeysApi> Open(const std::string& uri) {
  absl::StatusOr<std::unique_ptr<KeysApi>> keys =
      registry::Open(uri + "?request-timeout=2s");
  EXPECT_OK(keys.status());
  return keys.ok() ? *std::move(keys) : nullptr;
}

absl::StatusOr<std::string> QuorumGet(KeysApi& keys, const std::string& key) {
  GetOptions options;
  options.quorum = true;
  absl::StatusOr<registry::Response> got = keys.Get(key, options);
  if (!got.ok()) return got.status();
  return got->node.value;
}

// The value, or the error as text (so a mismatch shows it).
std::string Value(const absl::StatusOr<std::string>& value) {
  return value.ok() ? *value : value.status().ToString();
}

TEST(EtcdClusterTest, FaultsOnARealCluster) {
  ASSERT_OK_AND_ASSIGN(auto cluster, EtcdCluster::Start());
  ASSERT_EQ(cluster->size(), 3);
  std::unique_ptr<KeysApi> all = Open(cluster->uri());
  ASSERT_OK(all->Set("/fixture/a", "1", {}));
  for (int i = 0; i < 3; ++i) {
    std::unique_ptr<KeysApi> one = Open(cluster->member_uri(i));
    EXPECT_EQ(Value(QuorumGet(*one, "/fixture/a")), "1") << i;
  }

  // A killed leader is replaced; it comes back on its data.
  ASSERT_OK_AND_ASSIGN(int killed, cluster->KillLeader());
  EXPECT_FALSE(cluster->member(killed).running());
  ASSERT_OK_AND_ASSIGN(int leader, cluster->WaitForLeader());
  EXPECT_NE(leader, killed);
  ASSERT_OK(all->Set("/fixture/a", "2", {}));
  ASSERT_OK(cluster->RestartMember(killed));
  std::unique_ptr<KeysApi> back = Open(cluster->member_uri(killed));
  EXPECT_EQ(Value(QuorumGet(*back, "/fixture/a")), "2");

  // A partitioned member answers its clients but cannot reach a quorum,
  // while the others carry on.
  const int cut = (leader + 1) % 3;
  ASSERT_OK(cluster->PartitionMember(cut));
  std::unique_ptr<KeysApi> lonely = Open(cluster->member_uri(cut));
  EXPECT_FALSE(QuorumGet(*lonely, "/fixture/a").ok());
  EXPECT_OK(HttpGet(cluster->endpoint(cut) + "/version", absl::Seconds(2)));
  ASSERT_OK_AND_ASSIGN(leader, cluster->WaitForLeader());
  ASSERT_NE(leader, cut);
  ASSERT_OK(Open(cluster->member_uri(leader))->Set("/fixture/a", "3", {}));
  ASSERT_OK(cluster->HealPartition());
  EXPECT_EQ(Value(QuorumGet(*lonely, "/fixture/a")), "3");

  // A paused member does not answer; resumed, it does.
  ASSERT_OK(cluster->PauseMember(cut));
  EXPECT_FALSE(
      HttpGet(cluster->endpoint(cut) + "/version", absl::Milliseconds(500))
          .ok());
  ASSERT_OK(cluster->ResumeMember(cut));
  EXPECT_OK(HttpGet(cluster->endpoint(cut) + "/version", absl::Seconds(5)));

  // A whole-cluster restart keeps the data, TTLs included.
  registry::SetOptions ttl;
  ttl.ttl = absl::Seconds(600);
  ASSERT_OK(all->Set("/fixture/ttl", "kept", ttl));
  ASSERT_OK(cluster->StopAll());
  ASSERT_OK(cluster->RestartAll());
  EXPECT_EQ(Value(QuorumGet(*all, "/fixture/ttl")), "kept");
}

TEST(EtcdClusterTest, DefaultTimingElectsALeader) {
  EtcdClusterOptions options;
  options.timing = ElectionTiming::kDefault;
  ASSERT_OK_AND_ASSIGN(auto cluster, EtcdCluster::Start(options));
  ASSERT_OK_AND_ASSIGN(int paused, cluster->PauseLeader());
  ASSERT_OK_AND_ASSIGN(int leader, cluster->WaitForLeader());
  EXPECT_NE(leader, paused);
  ASSERT_OK(cluster->ResumeMember(paused));
  ASSERT_OK(cluster->WaitHealthy());
}

}  // namespace
}  // namespace leasehold::testing
