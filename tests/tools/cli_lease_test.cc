// The leasehold binary's lease commands against a real etcd, as an operator
// or a script uses them: output, -o json, exit codes and error messages.
#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/etcd_server.h"
#include "tests/testing/loopback_net.h"
#include "tests/testing/run_process.h"
#include "tests/tools/cli_test.h"

namespace leasehold::cli {
namespace {

using ::leasehold::testing::ProcessResult;
using ::leasehold::testing::RunProcess;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;

using CliLeaseTest = CliApiTest;

TEST_P(CliLeaseTest, AcquireGetRenewStealRelease) {
  ProcessResult acquired = Leasehold({"lease", "acquire", "unit-1", "--machine",
                                      "m1", "--version", "2", "--ttl", "30s"});
  ASSERT_EQ(acquired.exit_code, 0) << acquired.err;
  EXPECT_THAT(acquired.out,
              HasSubstr("name=unit-1 machine=m1 version=2 index="));
  const std::string index = Field(acquired.out, "index");
  EXPECT_EQ(Field(acquired.out, "fence"), index);

  ProcessResult got = Leasehold({"lease", "get", "unit-1"});
  ASSERT_EQ(got.exit_code, 0) << got.err;
  EXPECT_EQ(Field(got.out, "machine"), "m1");
  EXPECT_EQ(Field(got.out, "index"), index);

  ProcessResult renewed = Leasehold({"lease", "renew", "unit-1", "--machine",
                                     "m1", "--index", index, "--ttl", "20s"});
  ASSERT_EQ(renewed.exit_code, 0) << renewed.err;
  const std::string renewed_index = Field(renewed.out, "index");
  EXPECT_NE(renewed_index, index);

  // A stale index no longer matches: exit 1.
  ProcessResult stale = Leasehold({"lease", "steal", "unit-1", "--machine",
                                   "m2", "--index", index, "--ttl", "5s"});
  EXPECT_EQ(stale.exit_code, 1);
  EXPECT_THAT(stale.err, HasSubstr("not acquired"));

  ProcessResult stolen =
      Leasehold({"lease", "steal", "unit-1", "--machine", "m2", "--index",
                 renewed_index, "--ttl", "5s"});
  ASSERT_EQ(stolen.exit_code, 0) << stolen.err;
  const std::string stolen_index = Field(stolen.out, "index");
  EXPECT_EQ(Field(stolen.out, "machine"), "m2");
  EXPECT_GT(std::stoull(Field(stolen.out, "fence")), std::stoull(index));

  // The old holder can neither renew nor release it any more.
  EXPECT_EQ(Leasehold({"lease", "renew", "unit-1", "--machine", "m1", "--index",
                       stolen_index, "--ttl", "5s"})
                .exit_code,
            1);
  ProcessResult not_ours = Leasehold({"lease", "release", "unit-1", "--machine",
                                      "m1", "--index", stolen_index});
  EXPECT_EQ(not_ours.exit_code, 1);
  EXPECT_THAT(not_ours.err, HasSubstr("held by \"m2\""));

  ProcessResult released = Leasehold({"lease", "release", "unit-1", "--machine",
                                      "m2", "--index", stolen_index});
  ASSERT_EQ(released.exit_code, 0) << released.err;
  ProcessResult gone = Leasehold({"lease", "get", "unit-1"});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_THAT(gone.err, HasSubstr("not held"));
}

TEST_P(CliLeaseTest, AcquireOfAHeldLeaseExitsOne) {
  ASSERT_EQ(
      Leasehold({"lease", "acquire", "u", "--machine", "a", "--ttl", "30s"})
          .exit_code,
      0);
  ProcessResult second =
      Leasehold({"lease", "acquire", "u", "--machine", "b", "--ttl", "30s"});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_THAT(second.err, HasSubstr("held by someone else"));
  EXPECT_THAT(second.out, IsEmpty());
}

TEST_P(CliLeaseTest, JsonOutputIsOneObjectPerLine) {
  ASSERT_EQ(
      Leasehold({"lease", "acquire", "b", "--machine", "m\"2", "--ttl", "30s"})
          .exit_code,
      0);
  ASSERT_EQ(
      Leasehold({"lease", "acquire", "a", "--machine", "m1", "--ttl", "30s"})
          .exit_code,
      0);
  ProcessResult list = Leasehold({"-o", "json", "lease", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  const std::vector<std::string> lines =
      absl::StrSplit(list.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << list.out;
  EXPECT_THAT(
      lines[0],
      MatchesRegex(R"(\{"name":"a","machine":"m1","version":0,"index":[0-9]+,)"
                   R"("remaining_s":[0-9.]+\})"));
  EXPECT_THAT(lines[1], HasSubstr(R"("machine":"m\"2")"));
}

TEST_P(CliLeaseTest, BadInputExitsTwoNamingTheProblem) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"lease", "acquire", "x", "--ttl", "5s"},
       "missing required flag --machine"},
      {{"lease", "acquire", "x", "--machine", "m", "--ttl", "soon"},
       "--ttl=\"soon\""},
      {{"lease", "acquire", "x/y", "--machine", "m", "--ttl", "5s"},
       "lease name \"x/y\""},
      {{"lease", "acquire", "x", "--machine", "", "--ttl", "5s"}, "machine id"},
      {{"lease", "renew", "x", "--machine", "m", "--index", "-1", "--ttl",
        "5s"},
       "--index"},
      {{"lease", "get"}, "expected 1 argument"},
      {{"lease", "get", "x", "--frobnicate"}, "unknown flag \"--frobnicate\""},
      {{"lease", "teleport"}, "unknown subcommand \"teleport\""},
      {{"hover"}, "unknown command \"hover\""},
      {{"-o", "yaml", "lease", "list"}, "-o \"yaml\""},
  };
  for (const Case& c : cases) {
    ProcessResult r = Leasehold(c.args);
    EXPECT_EQ(r.exit_code, 2) << absl::StrJoin(c.args, " ") << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.message)) << absl::StrJoin(c.args, " ");
  }
  ProcessResult bad_uri =
      RunProcess({LEASEHOLD_BINARY, "--registry", "zk://x", "lease", "list"});
  EXPECT_EQ(bad_uri.exit_code, 2);
  EXPECT_THAT(bad_uri.err, HasSubstr("unknown scheme"));
}

// reject-old-cluster=true refuses an etcd older than 3.4 before any
// command runs: a usage error naming the version, never "not held".
TEST_P(CliLeaseTest, RejectOldClusterRefusesAnOldEtcdWithExitTwo) {
  absl::StatusOr<std::unique_ptr<testing::CannedHttpServer>> old_etcd =
      testing::CannedHttpServer::Start([](absl::string_view) {
        return testing::HttpAnswer(
            200, R"({"etcdserver":"3.3.25","etcdcluster":"3.3.0"})");
      });
  ASSERT_TRUE(old_etcd.ok()) << old_etcd.status();
  ProcessResult r =
      RunProcess({LEASEHOLD_BINARY, "--registry",
                  absl::StrCat("etcd://127.0.0.1:", (*old_etcd)->port(),
                               "?reject-old-cluster=true"),
                  "lease", "get", "x"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("runs version 3.3.0, older than 3.4"));
  // The real etcd (3.4) is accepted.
  ProcessResult ok =
      RunProcess({LEASEHOLD_BINARY, "--registry",
                  absl::StrCat(Etcd().uri(), "?reject-old-cluster=true"),
                  "--prefix", prefix_, "lease", "list"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

TEST_P(CliLeaseTest, HelpOnEveryCommand) {
  for (const char* sub :
       {"get", "list", "acquire", "renew", "steal", "release", "watch"}) {
    ProcessResult r = Leasehold({"lease", sub, "--help"});
    EXPECT_EQ(r.exit_code, 0) << sub;
    EXPECT_THAT(r.out, HasSubstr("usage: leasehold")) << sub;
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat(" lease ", sub))) << sub;
  }
  EXPECT_EQ(RunProcess({LEASEHOLD_BINARY, "--help"}).exit_code, 0);
}

TEST_P(CliLeaseTest, UnreachableRegistryExitsThreeWithinTheTimeout) {
  const std::string dead =
      absl::StrCat("etcd://127.0.0.1:", leasehold::testing::FreePort(),
                   "?request-timeout=1s&dial-timeout=500ms");
  ProcessResult r =
      RunProcess({LEASEHOLD_BINARY, "--registry", dead, "lease", "get", "x"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_LT(r.elapsed, absl::Seconds(10));
  // The environment variable is the default registry.
  ProcessResult via_env =
      RunProcess({LEASEHOLD_BINARY, "lease", "list"},
                 {absl::StrCat("LEASEHOLD_REGISTRY=", dead)});
  EXPECT_EQ(via_env.exit_code, 3) << via_env.err;
}

TEST_P(CliLeaseTest, WatchPrintsEachChangeUntilInterrupted) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  ProcessResult acquired =
      Leasehold({"lease", "acquire", "w", "--machine", "m1", "--ttl", "30s"});
  ASSERT_EQ(acquired.exit_code, 0) << acquired.err;
  leasehold::testing::Subprocess watch({LEASEHOLD_BINARY, "--registry",
                                        Etcd().uri(), "--prefix", prefix_,
                                        "lease", "watch", "w"});
  ASSERT_TRUE(watch.WaitForOutput("event=current name=w machine=m1", deadline))
      << watch.out();

  ProcessResult stolen =
      Leasehold({"lease", "steal", "w", "--machine", "m2", "--index",
                 Field(acquired.out, "index"), "--ttl", "30s"});
  ASSERT_EQ(stolen.exit_code, 0) << stolen.err;
  ASSERT_TRUE(watch.WaitForOutput("event=stolen name=w machine=m2", deadline))
      << watch.out();
  ASSERT_EQ(Leasehold({"lease", "release", "w", "--machine", "m2", "--index",
                       Field(stolen.out, "index")})
                .exit_code,
            0);
  ASSERT_TRUE(watch.WaitForOutput("event=released name=w machine=m2", deadline))
      << watch.out();
  ASSERT_EQ(
      Leasehold({"lease", "acquire", "w", "--machine", "m3", "--ttl", "1s"})
          .exit_code,
      0);
  ASSERT_TRUE(watch.WaitForOutput("event=acquired name=w machine=m3", deadline))
      << watch.out();
  // Nobody renews m3's 1 s lease: the watcher sees it expire. Marked: on
  // etcd v3 an expiry is a plain delete, which reads as a release.
  ASSERT_TRUE(watch.WaitForOutput(GetParam() == "etcd3"
                                      ? "event=released name=w machine=m3"
                                      : "event=expired name=w machine=m3",
                                  deadline))
      << watch.out();

  watch.Signal(SIGTERM);  // "until interrupted": a clean exit
  ProcessResult result = watch.Wait(deadline);
  EXPECT_EQ(result.exit_code, 0) << result.err;
}

INSTANTIATE_TEST_SUITE_P(Apis, CliLeaseTest,
                         ::testing::ValuesIn(testing::EtcdApis()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace leasehold::cli
