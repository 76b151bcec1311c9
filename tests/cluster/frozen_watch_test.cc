// A Mutex waiter whose watch is served by a member that freezes (SIGSTOP)
// does not wait for it: an unlock made through the other members wakes it
// within a few seconds.
#include <atomic>

#include "gtest/gtest.h"
#include "lease/mutex.h"
#include "lease/session.h"
#include "registry/open.h"
#include "tests/testing/etcd_cluster.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::testing {
namespace {

using lease::Mutex;
using lease::Session;

// "Within a few seconds": generous for a loaded machine, far below the
// waiter's lock deadline and its session's TTL.
constexpr absl::Duration kWakeWithin = absl::Seconds(10);

std::unique_ptr<registry::KeysApi> Open(const std::string& uri) {
  absl::StatusOr<std::unique_ptr<registry::KeysApi>> keys = registry::Open(uri);
  EXPECT_OK(keys.status());
  return keys.ok() ? *std::move(keys) : nullptr;
}

// Each API in turn: "etcd" (v2) and "etcd3" (v3) on the same kind of
// cluster.
class ClusterFaultTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ClusterFaultTest, WatchOnAFrozenMemberMovesOn) {
  ASSERT_OK_AND_ASSIGN(auto cluster, EtcdCluster::Start());
  ASSERT_OK_AND_ASSIGN(const int leader, cluster->WaitForLeader());
  const int frozen = (leader + 1) % 3;
  const int other = (leader + 2) % 3;
  // The waiter's client uses the member that will freeze first.
  auto holder_keys =
      Open(absl::StrCat(GetParam(), "://", cluster->host_port(leader), ",",
                        cluster->host_port(other)));
  auto waiter_keys = Open(cluster->uri_starting_at(frozen, GetParam()));
  const lease::SessionOptions long_lived = {.ttl = absl::Seconds(60)};
  ASSERT_OK_AND_ASSIGN(auto holder_session,
                       Session::Create(holder_keys.get(), long_lived));
  ASSERT_OK_AND_ASSIGN(auto waiter_session,
                       Session::Create(waiter_keys.get(), long_lived));
  Mutex holder(holder_session.get(), "work");
  Mutex waiter(waiter_session.get(), "work");
  ASSERT_OK(holder.Lock());

  std::atomic<bool> done{false};
  absl::Status locked;
  absl::Time locked_at;
  std::thread waiting([&] {
    locked = waiter.Lock(absl::Now() + absl::Minutes(1));
    locked_at = absl::Now();
    done.store(true);
  });
  // The waiter has queued behind the holder (and then watches).
  registry::GetOptions list;
  list.recursive = true;
  list.quorum = true;
  const absl::Time queued_by = absl::Now() + absl::Seconds(30);
  while (absl::Now() < queued_by) {
    auto queue = holder_keys->Get("/leasehold/lock/work", list);
    if (queue.ok() && queue->node.nodes.size() == 2) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  // Time for the waiter's watch to reach its member.
  absl::SleepFor(absl::Seconds(1));

  ASSERT_OK(cluster->PauseMember(frozen));
  const absl::Time unlocked_at = absl::Now();
  ASSERT_OK(holder.Unlock());
  while (!done.load() && absl::Now() < unlocked_at + absl::Minutes(3)) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_OK(cluster->ResumeMember(frozen));  // lets a stuck waiter finish
  waiting.join();
  ASSERT_OK(locked);
  EXPECT_LE(locked_at - unlocked_at, kWakeWithin);
  EXPECT_TRUE(waiter.IsOwner());
  EXPECT_OK(waiter.Unlock());
}

INSTANTIATE_TEST_SUITE_P(Apis, ClusterFaultTest,
                         ::testing::ValuesIn(EtcdApis()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace leasehold::testing
