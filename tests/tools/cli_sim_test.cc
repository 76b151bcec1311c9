// `leasehold sim`, the main job, as a newcomer runs it: on the embedded mem:
// registry and on a real etcd, ending with a safe verdict and exit 0.
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
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
using ::testing::MatchesRegex;
using ::testing::Not;

// A directory of the test's own (tests run in parallel), removed after it.
class TempDir {
 public:
  TempDir() : path_(::testing::TempDir() + "/cli-sim-XXXXXX") {
    EXPECT_NE(mkdtemp(path_.data()), nullptr) << path_;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(CliSimTest, OnMemWithCrashesAndPausesTheVerdictIsSafe) {
  TempDir dir;
  const std::string svg = dir.path() + "/sim.svg";
  ProcessResult r =
      RunProcess({LEASEHOLD_BINARY, "sim", "--duration", "12s", "--ttl", "1s",
                  "--crash-every", "2s", "--pause-every", "3s", "--svg", svg});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("SAFETY VERDICT: SAFE"));
  EXPECT_THAT(r.out, HasSubstr("every unit owned at the end: yes"));
  EXPECT_THAT(r.out, MatchesRegex("(.|\n)*failovers: +[1-9][0-9]* (.|\n)*"));
  // The v2 restart takes the engine over by index (again, if it crashes
  // and a v1 agent leads in the meantime).
  EXPECT_THAT(r.out, MatchesRegex("(.|\n)*engine steals: +[1-9](.|\n)*"));
  std::ifstream file(svg);
  std::stringstream content;
  content << file.rdbuf();
  EXPECT_THAT(content.str(), HasSubstr("<svg"));
  EXPECT_THAT(content.str(), HasSubstr("unit-49"));
  EXPECT_THAT(content.str(), HasSubstr("id='time-axis'"));
  EXPECT_THAT(content.str(), HasSubstr("<g class='fault crash'>"));
}

TEST(CliSimTest, JsonSummaryForScripts) {
  ProcessResult r = RunProcess(
      {LEASEHOLD_BINARY, "-o", "json", "sim", "--duration", "4s", "--ttl", "1s",
       "--no-faults", "--machines", "3", "--units", "9"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ::testing::StartsWith("{\"failovers\":0,"));
  EXPECT_THAT(r.out, ::testing::EndsWith("\"verdict\":\"SAFE\"}\n"));
}

TEST(CliSimTest, BadFlagsExitTwo) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {"--machines", "0"},
           {"--units", "many"},
           {"--ttl", "2s", "--duration", "3s"},
           {"--crash-every", "-1s"},
           {"--svg", "/nonexistent-leasehold-dir/sim.svg"},
           {"--partition-every", "soon"},
           {"--bogus"}}) {
    std::vector<std::string> argv = {LEASEHOLD_BINARY, "sim"};
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessResult r = RunProcess(argv);
    EXPECT_EQ(r.exit_code, 2) << args[0] << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr(args[0])) << args[0];
  }
}

TEST(CliSimTest, OnEtcdForAShortRun) {
  ProcessResult r = RunProcess(
      {LEASEHOLD_BINARY, "--registry", testing::SharedEtcd().uri(), "sim",
       "--duration", "8s", "--ttl", "1s", "--crash-every", "2s",
       "--pause-every", "3s", "--machines", "3", "--units", "12"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("SAFETY VERDICT: SAFE"));
  EXPECT_THAT(r.err, Not(HasSubstr("violation")));
}

}  // namespace
}  // namespace leasehold::cli
