#include "lease/validate.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::lease {
namespace {

using ::leasehold::testing::IsOk;
using ::leasehold::testing::StatusIs;
using ::testing::HasSubstr;

TEST(ValidateTest, AcceptsOrdinaryNames) {
  for (const std::string& name :
       std::vector<std::string>{"engine-leader", "unit@1.service", "a.b", "x",
                                std::string(255, 'n'), "caf\xc3\xa9"}) {
    EXPECT_THAT(ValidateName("lease name", name), IsOk()) << name;
  }
}

TEST(ValidateTest, RejectsBadNamesNamingTheField) {
  for (const std::string& name :
       {std::string(), std::string("a/b"), std::string("/"), std::string(".."),
        std::string("a..b"), std::string("."), std::string("tab\there"),
        std::string("nul\0x", 5), std::string("del\x7f"),
        std::string(256, 'n')}) {
    EXPECT_THAT(
        ValidateName("machine id", name),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("machine id")))
        << name;
  }
}

TEST(ValidateTest, SaysWhatIsWrong) {
  EXPECT_THAT(ValidateName("lease name", "a/b"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "lease name \"a/b\": must not contain '/'"));
  EXPECT_THAT(ValidateName("lease name", ""),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("must not be empty")));
}

TEST(ValidateTest, RoundsPeriodsUpToWholeSeconds) {
  EXPECT_EQ(RoundPeriod(absl::Milliseconds(1)).value(), absl::Seconds(1));
  EXPECT_EQ(RoundPeriod(absl::Milliseconds(999)).value(), absl::Seconds(1));
  EXPECT_EQ(RoundPeriod(absl::Seconds(1)).value(), absl::Seconds(1));
  EXPECT_EQ(RoundPeriod(absl::Milliseconds(1001)).value(), absl::Seconds(2));
  EXPECT_EQ(RoundPeriod(absl::Seconds(30)).value(), absl::Seconds(30));
}

TEST(ValidateTest, RejectsPeriodsThatCannotBeTtls) {
  for (absl::Duration d :
       {absl::ZeroDuration(), absl::Seconds(-1), absl::InfiniteDuration()}) {
    EXPECT_THAT(RoundPeriod(d), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("period")));
  }
}

}  // namespace
}  // namespace leasehold::lease
