// `leasehold lease get/acquire` against a member whose answers are broken
// (tests/testing/broken_etcd.h): exit 1 only on a real lease state, exit 3
// when there is no answer to trust; with etcd://<broken>,<real> the real
// member's answer.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/broken_etcd.h"
#include "tests/testing/etcd_server.h"
#include "tests/testing/run_process.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::cli {
namespace {

using ::leasehold::testing::AllBreakages;
using ::leasehold::testing::Breakage;
using ::leasehold::testing::BreakageName;
using ::leasehold::testing::BrokenEtcd;
using ::leasehold::testing::IsOk;
using ::leasehold::testing::ProcessResult;
using ::leasehold::testing::RunProcess;
using ::leasehold::testing::SharedEtcd;
using ::testing::HasSubstr;

class CliBrokenAnswerTest : public ::testing::TestWithParam<Breakage> {
 protected:
  void SetUp() override {
    auto broken = BrokenEtcd::Start(GetParam());
    ASSERT_THAT(broken, IsOk());
    broken_ = *std::move(broken);
  }

  // `leasehold --registry etcd://<hosts>?request-timeout=1s …` under a
  // prefix of this breakage.
  ProcessResult Leasehold(const std::string& hosts,
                          std::vector<std::string> args) const {
    std::vector<std::string> argv = {
        LEASEHOLD_BINARY, "--registry",
        absl::StrCat("etcd://", hosts, "?request-timeout=1s"), "--prefix",
        absl::StrCat("/cli-broken-", BreakageName(GetParam()), "/")};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(argv);
  }

  std::string Real() const {
    return absl::StrCat("127.0.0.1:", SharedEtcd().client_port());
  }

  std::unique_ptr<BrokenEtcd> broken_;
};

TEST_P(CliBrokenAnswerTest, GetExitsThreeNeverOne) {
  ProcessResult got = Leasehold(broken_->host_port(), {"lease", "get", "u"});
  EXPECT_EQ(got.exit_code, 3) << got.err;
  EXPECT_THAT(got.err, HasSubstr("leasehold lease get: "));
  EXPECT_EQ(got.out, "");
}

TEST_P(CliBrokenAnswerTest, AcquireReadsBackAndExitsThree) {
  ProcessResult acquired =
      Leasehold(broken_->host_port(),
                {"lease", "acquire", "u", "--machine", "m1", "--ttl", "30s"});
  EXPECT_EQ(acquired.exit_code, 3) << acquired.err;
  EXPECT_THAT(acquired.err, HasSubstr("outcome unknown"));
  EXPECT_EQ(acquired.out, "");
  // The acquire was followed by a read-back before anything was said.
  EXPECT_GE(broken_->requests(), 2);
}

TEST_P(CliBrokenAnswerTest, BeforeARealMemberTheRealAnswerWins) {
  const std::string hosts = absl::StrCat(broken_->host_port(), ",", Real());
  ProcessResult free = Leasehold(hosts, {"lease", "get", "v"});
  EXPECT_EQ(free.exit_code, 1) << free.err;
  EXPECT_THAT(free.err, HasSubstr("not held"));

  ProcessResult acquired = Leasehold(
      hosts, {"lease", "acquire", "v", "--machine", "m1", "--ttl", "30s"});
  ASSERT_EQ(acquired.exit_code, 0) << acquired.err;
  EXPECT_THAT(acquired.out, HasSubstr("machine=m1"));

  ProcessResult again = Leasehold(
      hosts, {"lease", "acquire", "v", "--machine", "m2", "--ttl", "30s"});
  EXPECT_EQ(again.exit_code, 1) << again.err;
  EXPECT_THAT(again.err, HasSubstr("held by someone else"));

  ProcessResult got = Leasehold(hosts, {"lease", "get", "v"});
  ASSERT_EQ(got.exit_code, 0) << got.err;
  EXPECT_THAT(got.out, HasSubstr("machine=m1"));
}

INSTANTIATE_TEST_SUITE_P(AllKinds, CliBrokenAnswerTest,
                         ::testing::ValuesIn(AllBreakages()),
                         [](const ::testing::TestParamInfo<Breakage>& info) {
                           return BreakageName(info.param);
                         });

}  // namespace
}  // namespace leasehold::cli
