// The leasehold binary keeps credentials secret: no error it prints shows a
// password or key (LeakScenarios), password files and LEASEHOLD_USERNAME /
// LEASEHOLD_PASSWORD work against etcd with auth on (v2 and v3), lock and elect
// keep the password from their command, and the clear-text warning shows
// exactly when credentials would cross the network unencrypted.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/etcd_auth.h"
#include "tests/testing/etcd_server.h"
#include "tests/testing/leak_scenarios.h"
#include "tests/testing/run_process.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::cli {
namespace {

using ::leasehold::testing::EtcdServer;
using ::leasehold::testing::IsEtcdVersionWarning;
using ::leasehold::testing::kAlicePassword;
using ::leasehold::testing::LeakScenario;
using ::leasehold::testing::LeakScenarios;
using ::leasehold::testing::ProcessResult;
using ::leasehold::testing::RunProcess;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kWarning[] = "leasehold: warning:";

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos;
       at = text.find(what, at + 1)) {
    ++n;
  }
  return n;
}

// Runs the tool; its stderr comes back without the warning etcd3:// gives
// about an etcd older than 3.4.28 (the etcd these tests start may be one):
// that warning has a test of its own, these count the credential ones.
ProcessResult Leasehold(const std::string& uri, const std::string& prefix,
                        const std::vector<std::string>& args,
                        const std::vector<std::string>& env = {}) {
  std::vector<std::string> argv = {LEASEHOLD_BINARY, "--registry", uri,
                                   "--prefix", prefix};
  argv.insert(argv.end(), args.begin(), args.end());
  ProcessResult result = RunProcess(argv, env);
  std::vector<absl::string_view> kept;
  for (absl::string_view line :
       absl::StrSplit(result.err, absl::ByString("\n"), absl::SkipEmpty())) {
    if (!IsEtcdVersionWarning(line)) kept.push_back(line);
  }
  result.err =
      kept.empty() ? "" : absl::StrCat(absl::StrJoin(kept, "\n"), "\n");
  return result;
}

TEST(CliSecretLeakTest, NoErrorShowsASecret) {
  ASSERT_OK_AND_ASSIGN(auto scenarios, LeakScenarios::Start());
  const std::vector<std::string> secrets = scenarios->Secrets();
  const std::vector<std::vector<std::string>> commands = {
      {"lease", "get", "k"},
      {"lease", "acquire", "k", "--machine", "m", "--ttl", "5s"},
      {"lease", "release", "k", "--machine", "m", "--index", "1"},
      {"lease", "list"},
      {"lock", "k", "--timeout", "2s", "--", "true"},
      {"elect", "e", "v", "--timeout", "2s", "--", "true"},
      {"leader", "e"},
  };
  for (const LeakScenario& scenario : scenarios->All()) {
    for (const std::vector<std::string>& command : commands) {
      SCOPED_TRACE(
          absl::StrCat(scenario.name, ": ", absl::StrJoin(command, " ")));
      const ProcessResult r = Leasehold(scenario.uri, LeakScenarios::kPrefix,
                                        command, scenario.env);
      EXPECT_NE(r.exit_code, 0);
      EXPECT_THAT(r.err, HasSubstr("leasehold "));
      for (const std::string& secret : secrets) {
        EXPECT_THAT(r.err, Not(HasSubstr(secret)));
        EXPECT_THAT(r.out, Not(HasSubstr(secret)));
      }
    }
  }
}

// Each case against each API: an etcd with v2 auth ("etcd") and one
// serving v3 alone with v3 auth ("etcd3").
class CliCredentialsTest : public ::testing::TestWithParam<std::string> {
 protected:
  CliCredentialsTest() : etcd_(&testing::SharedEtcdWithAuth(GetParam())) {}

  // Under alice's role, one prefix per test.
  static std::string Prefix() {
    return absl::StrCat(
        "/app/",
        ::testing::UnitTest::GetInstance()->current_test_info()->name(), "/");
  }
  static std::string PasswordFile(mode_t mode) {
    const std::string path = absl::StrCat(
        ::testing::TempDir(), "/cli-password-", getpid(), "-",
        absl::StrReplaceAll(
            ::testing::UnitTest::GetInstance()->current_test_info()->name(),
            {{"/", "_"}}));
    { std::ofstream(path, std::ios::trunc) << kAlicePassword << "\n"; }
    chmod(path.c_str(), mode);
    return path;
  }
  static std::vector<std::string> EnvCredentials() {
    return {"LEASEHOLD_USERNAME=alice",
            absl::StrCat("LEASEHOLD_PASSWORD=", kAlicePassword)};
  }

  EtcdServer* const etcd_;
};

TEST_P(CliCredentialsTest, PasswordFileWorks) {
  const std::string uri = absl::StrCat(
      etcd_->uri(), "?username=alice&password-file=", PasswordFile(0600));
  const ProcessResult acquired =
      Leasehold(uri, Prefix(),
                {"lease", "acquire", "k", "--machine", "m", "--ttl", "1m"});
  EXPECT_EQ(acquired.exit_code, 0) << acquired.err;
  EXPECT_THAT(acquired.err, IsEmpty());
  const ProcessResult got = Leasehold(uri, Prefix(), {"lease", "get", "k"});
  EXPECT_EQ(got.exit_code, 0) << got.err;
  EXPECT_THAT(got.out, HasSubstr("machine=m"));
}

TEST_P(CliCredentialsTest, PasswordFileOthersCanReadWarnsOnce) {
  const std::string path = PasswordFile(0644);
  const ProcessResult r = Leasehold(
      absl::StrCat(etcd_->uri(), "?username=alice&password-file=", path),
      Prefix(), {"lease", "acquire", "k", "--machine", "m", "--ttl", "1m"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Count(r.err, kWarning), 1) << r.err;
  EXPECT_THAT(r.err, AllOf(HasSubstr(path), HasSubstr("mode 0644"),
                           Not(HasSubstr(kAlicePassword))));
}

TEST_P(CliCredentialsTest, EnvironmentWorksWhenTheUriHasNoCredentials) {
  const ProcessResult r =
      Leasehold(etcd_->uri(), Prefix(),
                {"lease", "acquire", "k", "--machine", "m", "--ttl", "1m"},
                EnvCredentials());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, IsEmpty());
  // Without them, etcd refuses.
  const ProcessResult anonymous =
      Leasehold(etcd_->uri(), Prefix(), {"lease", "get", "k"});
  EXPECT_NE(anonymous.exit_code, 0);
  EXPECT_THAT(anonymous.err, HasSubstr("no username is set"));
}

TEST_P(CliCredentialsTest, LockAndElectKeepThePasswordFromTheCommand) {
  const std::string show =
      "echo user=${LEASEHOLD_USERNAME-unset} pw=${LEASEHOLD_PASSWORD-unset}";
  const ProcessResult locked =
      Leasehold(etcd_->uri(), Prefix(), {"lock", "k", "--", "sh", "-c", show},
                EnvCredentials());
  EXPECT_EQ(locked.exit_code, 0) << locked.err;
  EXPECT_EQ(locked.out, "user=alice pw=unset\n");
  const ProcessResult elected =
      Leasehold(etcd_->uri(), Prefix(),
                {"elect", "e", "me", "--", "sh", "-c", show}, EnvCredentials());
  EXPECT_EQ(elected.exit_code, 0) << elected.err;
  EXPECT_EQ(elected.out, "user=alice pw=unset\n");
}

TEST_P(CliCredentialsTest, LoopbackCredentialsDoNotWarn) {
  const ProcessResult r = Leasehold(
      absl::StrCat(etcd_->uri(), "?username=alice&password=", kAlicePassword),
      Prefix(), {"lease", "list"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, IsEmpty());
}

INSTANTIATE_TEST_SUITE_P(Apis, CliCredentialsTest,
                         ::testing::ValuesIn(testing::EtcdApis()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// The registry is opened (and the warning given) before the lease name is
// checked, and an empty name fails before any request: nothing is ever
// sent to the host these URIs name.
TEST(CliClearTextTest, WarnsOnceForCredentialsToARemoteHost) {
  const std::vector<std::string> no_request = {"lease", "get", ""};
  const ProcessResult remote = Leasehold(
      "etcd://etcd.example.com:2379,127.0.0.1:2379?username=u&password=S3cr3t",
      "/x/", no_request);
  EXPECT_EQ(remote.exit_code, 2) << remote.err;
  EXPECT_THAT(remote.err, HasSubstr("lease name \"\": must not be empty"));
  EXPECT_EQ(Count(remote.err, kWarning), 1) << remote.err;
  EXPECT_THAT(
      remote.err,
      AllOf(HasSubstr("clear text"), HasSubstr("http://etcd.example.com:2379"),
            HasSubstr("allow-insecure-auth=true"), Not(HasSubstr("S3cr3t"))));

  const ProcessResult from_env =
      Leasehold("etcd://etcd.example.com:2379", "/x/", no_request,
                {"LEASEHOLD_USERNAME=u", "LEASEHOLD_PASSWORD=S3cr3t"});
  EXPECT_EQ(Count(from_env.err, kWarning), 1) << from_env.err;

  for (const char* quiet : {
           "etcd://etcd.example.com:2379?username=u&password=S3cr3t&"
           "allow-insecure-auth=true",
           "etcd+https://etcd.example.com:2379?username=u&password=S3cr3t",
           "etcd://localhost:2379,[::1]:2379?username=u&password=S3cr3t",
           "etcd://etcd.example.com:2379",
       }) {
    const ProcessResult r = Leasehold(quiet, "/x/", no_request);
    EXPECT_EQ(r.exit_code, 2) << quiet << ": " << r.err;
    EXPECT_EQ(Count(r.err, kWarning), 0) << quiet << ": " << r.err;
  }
}

TEST(CliHelpTest, HelpNamesTheSafeWaysToPassAPassword) {
  const ProcessResult r = RunProcess({LEASEHOLD_BINARY, "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, AllOf(HasSubstr("password-file=PATH"),
                           HasSubstr("$LEASEHOLD_PASSWORD"),
                           Not(HasSubstr("password=P"))));
}

}  // namespace
}  // namespace leasehold::cli
