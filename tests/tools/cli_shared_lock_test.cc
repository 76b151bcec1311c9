// `leasehold lock --shared` against a real etcd: shared holders run at
// once, an exclusive `lock` of the same name waits for them, and shared
// holders queued behind a waiting exclusive one wait for it.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registry/keys_api.h"
#include "registry/open.h"
#include "tests/testing/etcd_server.h"
#include "tests/testing/eventually.h"
#include "tests/testing/run_process.h"
#include "tests/tools/cli_test.h"

namespace leasehold::cli {
namespace {

using ::leasehold::testing::Eventually;
using ::leasehold::testing::ProcessResult;
using ::leasehold::testing::Subprocess;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

using CliSharedLockTest = CliApiTest;
using CliSharedLockUsageTest = CliTest;

TEST_P(CliSharedLockTest, SharedHoldersOverlapAndExcludeAnExclusiveOne) {
  const std::string go =
      absl::StrCat(::testing::TempDir(), "/shared_go_", getpid());
  std::remove(go.c_str());
  const std::string hold_until_go =
      absl::StrCat("echo in key=$LEASEHOLD_LOCK_KEY; while [ ! -f ", go,
                   " ]; do sleep 0.05; done");
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  absl::StatusOr<std::unique_ptr<registry::KeysApi>> keys =
      registry::Open(Etcd().uri());
  ASSERT_TRUE(keys.ok()) << keys.status();
  Subprocess a(
      Argv({"lock", "--shared", "table", "--", "sh", "-c", hold_until_go}));
  Subprocess b(
      Argv({"lock", "table", "--shared", "--", "sh", "-c", hold_until_go}));
  // Both shared holders are in at once.
  ASSERT_TRUE(a.WaitForOutput("in", deadline)) << a.out();
  ASSERT_TRUE(b.WaitForOutput("in", deadline)) << b.out();
  EXPECT_THAT(Field(a.out(), "key"),
              MatchesRegex(absl::StrCat(prefix_, "lock/table/[0-9]+")));

  ProcessResult exclusive =
      Leasehold({"lock", "table", "--timeout", "1s", "--", "echo", "ran"});
  EXPECT_EQ(exclusive.exit_code, 1) << exclusive.err;
  EXPECT_THAT(exclusive.err, HasSubstr("not acquired within 1s"));

  // An exclusive waiter queues; a shared one behind it waits for it.
  Subprocess writer(Argv({"lock", "table", "--", "echo", "writer ran"}));
  ASSERT_TRUE(Eventually([&] {
    absl::StatusOr<registry::Response> queue =
        (*keys)->Get(absl::StrCat(prefix_, "lock/table"), {});
    return queue.ok() && queue->node.nodes.size() == 3;
  }));
  ProcessResult late_reader =
      Leasehold({"lock", "table", "--shared", "--timeout", "2s", "--", "true"});
  EXPECT_EQ(late_reader.exit_code, 1) << late_reader.err;
  EXPECT_THAT(late_reader.err,
              HasSubstr("shared lock \"table\": not acquired within 2s"));

  {
    std::FILE* f = std::fopen(go.c_str(), "w");
    std::fclose(f);
  }
  EXPECT_EQ(a.Wait(deadline).exit_code, 0);
  EXPECT_EQ(b.Wait(deadline).exit_code, 0);
  ProcessResult wrote = writer.Wait(deadline);
  EXPECT_EQ(wrote.exit_code, 0) << wrote.err;
  EXPECT_THAT(wrote.out, HasSubstr("writer ran"));
  std::remove(go.c_str());
}

TEST_F(CliSharedLockUsageTest, SharedIsALockFlagOnly) {
  ProcessResult r = Leasehold({"elect", "e", "v", "--shared", "--", "true"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--shared"));
  ProcessResult help = Leasehold({"lock", "--help"});
  EXPECT_THAT(help.out, HasSubstr("--shared"));
}

INSTANTIATE_TEST_SUITE_P(Apis, CliSharedLockTest,
                         ::testing::ValuesIn(testing::EtcdApis()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace leasehold::cli
