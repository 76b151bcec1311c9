#include "tests/testing/etcd_server.h"

#include <signal.h>

#include "gtest/gtest.h"
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
}  // namespace leasehold::testing
