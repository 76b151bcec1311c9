// leasehold-bench against etcd's v3 API, as a user runs it: `--registry
// etcd3://…` on an etcd without the v2 API measures v3 alone; on an etcd
// that serves both, v2 and v3 side by side; an API etcd does not serve is
// refused by name.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registry/json_object.h"
#include "tests/testing/etcd_server.h"
#include "tests/testing/run_process.h"

namespace leasehold::bench {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;

testing::ProcessResult Bench(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {LEASEHOLD_BENCH, "--smoke"};
  argv.insert(argv.end(), args.begin(), args.end());
  return testing::RunProcess(argv, {}, absl::Minutes(3));
}

TEST(BenchEtcd3Test, MeasuresV3AloneOnAnEtcdWithoutV2) {
  testing::ProcessResult r = Bench(
      {"--registry", testing::SharedEtcdV3().uri(), "--only", "cycle,renew"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("lease cycle, etcd v3 API"));
  EXPECT_THAT(r.out, HasSubstr("renew scale, etcd v3 API"));
  EXPECT_EQ(r.out.find("v2 API"), std::string::npos) << r.out;
  // etcd's own count of the baseline's requests: a grant and a txn, one
  // keep-alive, one revoke.
  EXPECT_THAT(r.out, ContainsRegex("v3 +baseline +acquire +2\\.00 "));
  EXPECT_THAT(r.out, ContainsRegex("v3 +baseline +renew +1\\.00 "));
  EXPECT_THAT(r.out, ContainsRegex("v3 +baseline +release +1\\.00 "));
  for (const char* op : {"acquire", "renew", "release"}) {
    EXPECT_THAT(r.out, ContainsRegex(absl::StrCat("v3 +leasehold +", op,
                                                  " +[0-9]+\\.[0-9]{2} ")));
  }
}

TEST(BenchEtcd3Test, JsonCarriesTheV3Figures) {
  testing::ProcessResult r = Bench({"--registry", testing::SharedEtcdV3().uri(),
                                    "--only", "cycle,renew", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  absl::StatusOr<registry::JsonObject> json =
      registry::JsonObject::Parse(r.out);
  ASSERT_TRUE(json.ok()) << json.status() << "\n" << r.out;
  for (const char* member :
       {"lease_cycle_v3", "renew_scale_v3", "requests_per_op"}) {
    EXPECT_NE(json->Find(member), nullptr) << member << " in " << r.out;
  }
  for (const char* member : {"lease_cycle", "renew_scale", "etcd_write_rate"}) {
    EXPECT_EQ(json->Find(member), nullptr) << member << " in " << r.out;
  }
}

TEST(BenchEtcd3Test, MeasuresBothApisOfOneEtcdSideBySide) {
  testing::EtcdServer& etcd = testing::SharedEtcd();  // serves v2 and v3
  testing::ProcessResult r = Bench(
      {"--registry", absl::StrCat("etcd3://127.0.0.1:", etcd.client_port()),
       "--only", "cycle", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  absl::StatusOr<registry::JsonObject> json =
      registry::JsonObject::Parse(r.out);
  ASSERT_TRUE(json.ok()) << json.status() << "\n" << r.out;
  for (const char* member : {"lease_cycle", "etcd_write_rate", "lease_cycle_v3",
                             "requests_per_op"}) {
    EXPECT_NE(json->Find(member), nullptr) << member << " in " << r.out;
  }
  const auto* per_op =
      std::get_if<registry::JsonObject::Raw>(json->Find("requests_per_op"));
  ASSERT_NE(per_op, nullptr);
  absl::StatusOr<registry::JsonObject> apis =
      registry::JsonObject::Parse(per_op->json);
  ASSERT_TRUE(apis.ok()) << per_op->json;
  EXPECT_NE(apis->Find("v2"), nullptr) << per_op->json;
  EXPECT_NE(apis->Find("v3"), nullptr) << per_op->json;
}

TEST(BenchEtcd3Test, RefusesAnApiEtcdDoesNotServe) {
  testing::ProcessResult r = Bench({"--registry", testing::SharedEtcdV3().uri(),
                                    "--only", "cycle", "--api", "v2"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("does not serve the v2 API"));
  EXPECT_EQ(r.out, "");
}

}  // namespace
}  // namespace leasehold::bench
