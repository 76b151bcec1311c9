#include "tests/testing/etcd_server.h"

#include <signal.h>

#include <thread>

#include "gtest/gtest.h"
#include "registry/open.h"
#include "tests/testing/status_matchers.h"
namespace leasehold::testing {
namespace {
TEST(EtcdServerTest, StartsStopsRestarts) {
  ASSERT_OK_AND_ASSIGN(auto etcd, EtcdServer::Start());
  EXPECT_TRUE(etcd->running());
  pid_t pid = etcd->pid();
  EXPECT_EQ(kill(pid, 0), 0);
  ASSERT_OK(etcd->Stop());
  EXPECT_NE(kill(pid, 0), 0);
  ASSERT_OK(etcd->Restart());
  EXPECT_TRUE(etcd->running());
  ASSERT_OK(etcd->Kill());
  ASSERT_OK(etcd->Restart());
}
}  // namespace
TEST(EtcdServerTest, OutlivesTheThreadThatStartedIt) {
  std::unique_ptr<EtcdServer> etcd;
  std::thread starter([&] {
    absl::StatusOr<std::unique_ptr<EtcdServer>> started = EtcdServer::Start();
    ASSERT_TRUE(started.ok()) << started.status();
    etcd = *std::move(started);
  });
  starter.join();  // a parent-death signal tied to this thread would fire now
  ASSERT_NE(etcd, nullptr);
  auto keys = registry::Open(etcd->uri());
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_OK((*keys)->Set("/still-serving", "yes", {}));
}

}  // namespace leasehold::testing
