// `leasehold COMMAND --help` for the lock, election, simulation and agent
// commands: exit 0 with the usage on stdout, every flag explained, the
// words a user acts on, and nothing contacted.
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/etcd_server.h"
#include "tests/testing/run_process.h"

namespace leasehold::cli {
namespace {

using ::leasehold::testing::ProcessResult;
using ::leasehold::testing::RunProcess;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

struct HelpCase {
  std::vector<std::string> command;  // before --help
  std::string synopsis;              // how the usage line goes on
  std::vector<std::string> flags;    // each must be explained
  std::vector<std::string> says;
  std::vector<std::string> never_says;
};

void PrintTo(const HelpCase& c, std::ostream* os) {
  *os << "leasehold " << c.command[0] << " --help";
}

class CliCommandHelpTest : public ::testing::TestWithParam<HelpCase> {};

TEST_P(CliCommandHelpTest, ShowsUsageFlagsAndWhatItDoes) {
  const HelpCase& c = GetParam();
  // A registry nobody serves: --help must not need one.
  std::vector<std::string> argv = {
      LEASEHOLD_BINARY, "--registry",
      absl::StrCat("etcd://127.0.0.1:", testing::FreePort(),
                   "?request-timeout=30s")};
  argv.insert(argv.end(), c.command.begin(), c.command.end());
  argv.push_back("--help");
  const ProcessResult r = RunProcess(argv);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, IsEmpty());
  EXPECT_LT(r.elapsed, absl::Seconds(20));
  EXPECT_THAT(r.out, StartsWith(absl::StrCat(
                         "usage: leasehold [--registry URI] [--prefix P] "
                         "[-o text|json] ",
                         c.command[0], " ", c.synopsis)));
  for (const std::string& flag : c.flags) {
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat("\n  --", flag, " ")))
        << "--" << flag << " is not explained";
  }
  for (const std::string& words : c.says) EXPECT_THAT(r.out, HasSubstr(words));
  for (const std::string& words : c.never_says) {
    EXPECT_THAT(r.out, Not(HasSubstr(words)));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Commands, CliCommandHelpTest,
    ::testing::Values(
        HelpCase{{"lock"},
                 "NAME [--shared] [--ttl DUR]",
                 {"shared", "ttl", "timeout", "grace", "exit-code-lost"},
                 {"Wait for the lock NAME", "LEASEHOLD_LOCK_KEY",
                  "LEASEHOLD_FENCE", "exit with CMD's status",
                  "look like leasehold's codes", "or --exit-code-lost",
                  "how long the lock outlives a killed leasehold"},
                 {}},
        HelpCase{{"elect"},
                 "NAME VALUE [--ttl DUR]",
                 {"ttl", "timeout", "grace", "exit-code-lost"},
                 {"Campaign in election NAME", "LEASEHOLD_ELECTION_KEY",
                  "exit with CMD's status", "look like leasehold's codes",
                  "how long leadership outlives a killed leasehold",
                  "instead of 1 when leadership is lost"},
                 {"lock"}},
        HelpCase{{"leader"},
                 "NAME\n",
                 {},
                 {"Print the current leader of election NAME",
                  "exit 1 if there is none"},
                 {}},
        HelpCase{{"observe"},
                 "NAME\n",
                 {},
                 {"each change of leader", "until interrupted"},
                 {}},
        HelpCase{{"sim"},
                 "[--machines N]",
                 {"machines", "units", "ttl", "duration", "crash-every",
                  "pause-every", "partition-every", "no-faults", "seed", "svg"},
                 {"safety verdict", "mem: registry"},
                 {}},
        HelpCase{{"agent"},
                 "--machine ID",
                 {"machine", "units", "ttl", "version", "duration"},
                 {"until SIGINT/SIGTERM", "release everything"},
                 {}}),
    [](const ::testing::TestParamInfo<HelpCase>& info) {
      return info.param.command[0];
    });

}  // namespace
}  // namespace leasehold::cli
