// `leasehold txn` against the shared etcd: scripts on stdin, one atomic
// transaction each.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/etcd_server.h"
#include "tests/testing/run_process.h"
#include "tests/tools/cli_test.h"

namespace leasehold::cli {
namespace {

using ::testing::HasSubstr;

class CliTxnTest : public CliApiTest {
 protected:
  // `leasehold … txn` with `script` on stdin.
  testing::ProcessResult Txn(const std::string& script) {
    const std::string path = absl::StrCat(::testing::TempDir(), "/txn-",
                                          getpid(), "-", ++scripts_, ".txt");
    std::ofstream(path) << script;
    std::string command = "exec";
    for (const std::string& word : Argv({"txn"})) {
      absl::StrAppend(&command, " '", word, "'");
    }
    absl::StrAppend(&command, " < '", path, "'");
    testing::ProcessResult r = testing::RunProcess({"/bin/sh", "-c", command});
    std::remove(path.c_str());
    return r;
  }

  int scripts_ = 0;
};

TEST_P(CliTxnTest, WritesTogetherThenReadsAndPrintsTheCommitIndex) {
  testing::ProcessResult put =
      Txn("# two machines\nput machine/a/units unit-1 unit-2\n"
          "put machine/b/units unit-3\n");
  ASSERT_EQ(put.exit_code, 0) << put.err;
  uint64_t index = 0;
  EXPECT_TRUE(absl::SimpleAtoi(Field(put.out, "index"), &index)) << put.out;
  EXPECT_GT(index, 0u);
  EXPECT_EQ(Field(put.out, "committed"), "true");

  testing::ProcessResult get =
      Txn("get machine/a/units\n\nget machine/b/units\nget machine/c/units\n");
  ASSERT_EQ(get.exit_code, 0) << get.err;
  std::vector<std::string> lines = absl::StrSplit(get.out, '\n');
  ASSERT_GE(lines.size(), 4u) << get.out;
  EXPECT_EQ(lines[0], "key=machine/a/units value=\"unit-1 unit-2\"");
  EXPECT_EQ(lines[1], "key=machine/b/units value=unit-3");
  EXPECT_EQ(lines[2], "key=machine/c/units absent=true");
  EXPECT_EQ(Field(lines[3], "committed"), "true");
}

TEST_P(CliTxnTest, GuardDecidesWhetherTheUnitMoves) {
  ASSERT_EQ(Txn("put unit/u1 machine-a\n").exit_code, 0);
  testing::ProcessResult refused =
      Txn("if unit/u1 = machine-b\nput unit/u1 machine-c\nput moved yes\n");
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.err, HasSubstr("line 1: guard failed"));
  testing::ProcessResult after = Txn("get unit/u1\nget moved\n");
  EXPECT_THAT(after.out, HasSubstr("key=unit/u1 value=machine-a"));
  EXPECT_THAT(after.out, HasSubstr("key=moved absent=true"));

  testing::ProcessResult moved =
      Txn("if unit/u1 = machine-a\nput unit/u1 machine-b\ndel moved\n");
  EXPECT_EQ(moved.exit_code, 0) << moved.err;
  EXPECT_THAT(Txn("get unit/u1\n").out,
              HasSubstr("key=unit/u1 value=machine-b"));
}

TEST_P(CliTxnTest, BadScriptLineIsAUsageErrorNamingIt) {
  testing::ProcessResult r = Txn("get a\nfrob a b\nput c d\n");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("line 2 \"frob a b\": unknown command"));
  EXPECT_EQ(Txn("if a b\n").exit_code, 2);
  EXPECT_EQ(Txn("put\n").exit_code, 2);
  EXPECT_EQ(Txn("put a//b c\n").exit_code, 2);
  // Nothing was written by any of them.
  EXPECT_THAT(Txn("get c\n").out, HasSubstr("key=c absent=true"));
}

INSTANTIATE_TEST_SUITE_P(Apis, CliTxnTest,
                         ::testing::ValuesIn(testing::EtcdApis()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace leasehold::cli
