// What the CLI tests share: running `leasehold` against the shared etcd
// under a per-test prefix, and reading its text records.
#ifndef LEASEHOLD_TESTS_TOOLS_CLI_TEST_H_
#define LEASEHOLD_TESTS_TOOLS_CLI_TEST_H_

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/testing/etcd_server.h"
#include "tests/testing/run_process.h"

namespace leasehold::cli {

class CliTest : public ::testing::Test {
 protected:
  // The etcd the commands talk to.
  virtual testing::EtcdServer& Etcd() const { return testing::SharedEtcd(); }

  // `leasehold --registry <etcd> --prefix <per-test> args…`.
  std::vector<std::string> Argv(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {LEASEHOLD_BINARY, "--registry",
                                     Etcd().uri(), "--prefix", prefix_};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  testing::ProcessResult Leasehold(const std::vector<std::string>& args) const {
    return testing::RunProcess(Argv(args));
  }

  // The value of `field` in a text record "a=1 b=2".
  static std::string Field(const std::string& line, const std::string& field) {
    for (absl::string_view pair :
         absl::StrSplit(line, absl::ByAnyChar(" \n"))) {
      if (absl::StartsWith(pair, field + "="))
        return std::string(pair.substr(field.size() + 1));
    }
    return "";
  }

  static std::string ReadFile(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  const std::string prefix_ = absl::StrCat(
      "/cli-", ::testing::UnitTest::GetInstance()->current_test_info()->name(),
      "/");
};

// CliTest against each API in turn (the test's parameter: "etcd" for v2,
// "etcd3" for v3 on a server without v2).
class CliApiTest : public CliTest,
                   public ::testing::WithParamInterface<std::string> {
 protected:
  testing::EtcdServer& Etcd() const override {
    return testing::SharedEtcdFor(GetParam());
  }
};

}  // namespace leasehold::cli

#endif  // LEASEHOLD_TESTS_TOOLS_CLI_TEST_H_
