// `leasehold barrier` against a real etcd: twenty waiters go on only once
// the barrier is released, twenty processes meet in a double barrier (none
// runs its command before all have entered, none exits before all have
// finished), and bad input exits 2 naming it.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
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

using CliBarrierUsageTest = CliTest;

class CliBarrierTest : public CliApiTest {
 protected:
  CliBarrierTest()
      : dir_(absl::StrCat(
            ::testing::TempDir(), "/barrier_", getpid(), "_",
            absl::StrReplaceAll(
                ::testing::UnitTest::GetInstance()->current_test_info()->name(),
                {{"/", "_"}}))) {
    std::remove(dir_.c_str());
  }

  // A shell command line running leasehold with `args`.
  std::string Shell(const std::vector<std::string>& args) const {
    return absl::StrJoin(Argv(args), " ");
  }

  // The lines of `path` (none when it does not exist).
  static std::vector<std::string> Lines(const std::string& path) {
    return absl::StrSplit(ReadFile(path), '\n', absl::SkipEmpty());
  }

  size_t KeysUnder(const std::string& dir) {
    absl::StatusOr<std::unique_ptr<registry::KeysApi>> keys =
        registry::Open(Etcd().uri());
    if (!keys.ok()) return 0;
    absl::StatusOr<registry::Response> r = (*keys)->Get(dir, {});
    return r.ok() ? r->node.nodes.size() : 0;
  }

  const std::string dir_;  // a file path prefix for this test
};

TEST_P(CliBarrierTest, TwentyWaitersGoOnOnlyOnceTheBarrierIsReleased) {
  constexpr int kWaiters = 20;
  const std::string released = dir_ + ".released";
  ProcessResult hold = Leasehold({"barrier", "hold", "gate"});
  ASSERT_EQ(hold.exit_code, 0) << hold.err;
  EXPECT_EQ(hold.out, "name=gate held=true\n");
  ProcessResult again = Leasehold({"barrier", "hold", "gate"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.err, HasSubstr("barrier \"gate\": held already"));

  // Each waiter exits 0 only if it went on after the release was marked.
  std::vector<std::unique_ptr<Subprocess>> waiters;
  for (int i = 0; i < kWaiters; ++i) {
    waiters.push_back(std::make_unique<Subprocess>(std::vector<std::string>{
        "/bin/sh", "-c",
        absl::StrCat(Shell({"barrier", "wait", "gate"}), " && test -f ",
                     released)}));
  }
  ProcessResult timed =
      Leasehold({"barrier", "wait", "gate", "--timeout", "1s"});
  EXPECT_EQ(timed.exit_code, 1);
  EXPECT_THAT(timed.err, HasSubstr("barrier \"gate\": still held after 1s"));

  {
    std::FILE* f = std::fopen(released.c_str(), "w");
    std::fclose(f);
  }
  ProcessResult release = Leasehold({"barrier", "release", "gate"});
  ASSERT_EQ(release.exit_code, 0) << release.err;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  for (int i = 0; i < kWaiters; ++i) {
    ProcessResult r = waiters[i]->Wait(deadline);
    EXPECT_EQ(r.exit_code, 0) << i << ": " << r.err;
  }
  ProcessResult not_held = Leasehold({"barrier", "release", "gate"});
  EXPECT_EQ(not_held.exit_code, 1);
  EXPECT_THAT(not_held.err, HasSubstr("barrier \"gate\": not held"));
  EXPECT_EQ(Leasehold({"barrier", "wait", "gate"}).exit_code, 0);
  std::remove(released.c_str());
}

TEST_P(CliBarrierTest, AHoldWithATtlReleasesItself) {
  ASSERT_EQ(Leasehold({"barrier", "hold", "gate", "--ttl", "1s"}).exit_code, 0);
  ProcessResult waited =
      Leasehold({"barrier", "wait", "gate", "--timeout", "30s"});
  EXPECT_EQ(waited.exit_code, 0) << waited.err;
}

// Twenty processes meet: nobody's CMD starts before all twenty have
// entered, and nobody exits before every CMD has ended.
TEST_P(CliBarrierTest, TwentyProcessesEnterAndLeaveTogether) {
  constexpr int kProcesses = 20;
  const std::string log = dir_ + ".log";
  const std::string go = dir_ + ".go";
  auto party = [&](bool last) {
    // The last party's CMD ends only once the test says go.
    const std::string cmd = absl::StrCat(
        "echo start >> ", log,
        last ? absl::StrCat("; while [ ! -f ", go,
                            " ]; do sleep 0.05; done; echo end >> ", log)
             : "");
    return std::make_unique<Subprocess>(std::vector<std::string>{
        "/bin/sh", "-c",
        absl::StrCat(Shell({"barrier", "enter", "round", "--count",
                            absl::StrCat(kProcesses), "--", "sh", "-c",
                            absl::StrCat("'", cmd, "'")}),
                     "; status=$?; echo exited $status >> ", log,
                     "; exit $status")});
  };
  std::vector<std::unique_ptr<Subprocess>> parties;
  for (int i = 0; i < kProcesses - 1; ++i) parties.push_back(party(false));
  const std::string waiters = prefix_ + "double-barrier/round/waiters";
  ASSERT_TRUE(Eventually([&] { return KeysUnder(waiters) == kProcesses - 1; }));
  EXPECT_FALSE(Eventually([&] { return !Lines(log).empty(); },
                          std::chrono::milliseconds(500)))
      << "a CMD started before all had entered";
  parties.push_back(party(true));

  ASSERT_TRUE(Eventually([&] { return Lines(log).size() == kProcesses; }));
  EXPECT_FALSE(Eventually([&] { return Lines(log).size() > kProcesses; },
                          std::chrono::milliseconds(500)))
      << "a party left before the last CMD ended";
  {
    std::FILE* f = std::fopen(go.c_str(), "w");
    std::fclose(f);
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  for (int i = 0; i < kProcesses; ++i) {
    ProcessResult r = parties[i]->Wait(deadline);
    EXPECT_EQ(r.exit_code, 0) << i << ": " << r.err;
  }
  // Every start, then the last CMD's end, then every exit.
  const std::vector<std::string> lines = Lines(log);
  ASSERT_EQ(lines.size(), 2u * kProcesses + 1);
  for (int i = 0; i < kProcesses; ++i) EXPECT_EQ(lines[i], "start") << i;
  EXPECT_EQ(lines[kProcesses], "end");
  for (size_t i = kProcesses + 1; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i], "exited 0") << i;
  }
  EXPECT_EQ(KeysUnder(waiters), 0u);
  std::remove(log.c_str());
  std::remove(go.c_str());
}

TEST_P(CliBarrierTest, OneProcessTooManyExitsOne) {
  Subprocess first(Argv({"barrier", "enter", "pair", "--count", "1", "--", "sh",
                         "-c", "echo in; exec sleep 60"}));
  ASSERT_TRUE(first.WaitForOutput("in", absl::Now() + absl::Seconds(60)));
  ProcessResult extra =
      Leasehold({"barrier", "enter", "pair", "--count", "1", "--", "true"});
  EXPECT_EQ(extra.exit_code, 1);
  EXPECT_THAT(extra.err, HasSubstr("all 1 parties have entered already"));
  first.Signal(SIGTERM);
  EXPECT_EQ(first.Wait(absl::Now() + absl::Seconds(60)).exit_code,
            128 + SIGTERM);
}

TEST_F(CliBarrierUsageTest, BadInputExitsTwoNamingIt) {
  struct Case {
    std::vector<std::string> args;
    std::string names;
  };
  const std::vector<Case> cases = {
      {{"barrier", "enter", "r", "--count", "0", "--", "true"}, "--count=0"},
      {{"barrier", "enter", "r", "--count", "many", "--", "true"}, "count"},
      {{"barrier", "enter", "r", "--", "true"}, "count"},
      {{"barrier", "enter", "r", "--count", "2"}, "CMD"},
      {{"barrier", "enter", "r", "--count", "2", "--ttl", "-1s", "--", "true"},
       "--ttl"},
      {{"barrier", "wait", "a/b"}, "barrier name"},
      {{"barrier", "hold", "g", "--ttl", "soon"}, "ttl"},
      {{"barrier", "wait", "g", "--timeout", "x"}, "timeout"},
      {{"barrier", "wait"}, "expected 1 argument"},
      {{"barrier", "frob", "g"}, "unknown subcommand \"frob\""},
      {{"barrier"}, "missing subcommand"},
  };
  for (const Case& c : cases) {
    ProcessResult r = Leasehold(c.args);
    EXPECT_EQ(r.exit_code, 2) << absl::StrJoin(c.args, " ") << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.names)) << absl::StrJoin(c.args, " ");
  }
  ProcessResult help = Leasehold({"barrier", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("barrier enter NAME --count N"));
}

INSTANTIATE_TEST_SUITE_P(Apis, CliBarrierTest,
                         ::testing::ValuesIn(testing::EtcdApis()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace leasehold::cli
