#include "tools/cli/args.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::cli {
namespace {

using ::leasehold::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::vector<FlagSpec> kSpecs = {
    {"machine", FlagSpec::kValue, "ID", "machine id"},
    {"ttl", FlagSpec::kValue, "DUR", "period"},
    {"index", FlagSpec::kValue, "N", "index"},
    {"release", FlagSpec::kSwitch, "", "release on exit"},
};

TEST(ParseArgsTest, FlagsInBothFormsAndPositionals) {
  ASSERT_OK_AND_ASSIGN(Args args, ParseArgs({"unit-1", "--machine", "m1",
                                             "--ttl=10s", "--release", "extra"},
                                            kSpecs));
  EXPECT_THAT(args.positional(), ElementsAre("unit-1", "extra"));
  EXPECT_EQ(*args.String("machine"), "m1");
  EXPECT_EQ(*args.Duration("ttl"), absl::Seconds(10));
  EXPECT_TRUE(args.Has("release"));
  EXPECT_FALSE(args.Has("index"));
  EXPECT_EQ(*args.UintOr("index", 7), 7u);
  EXPECT_FALSE(args.has_command());
}

TEST(ParseArgsTest, EverythingAfterDoubleDashIsTheCommand) {
  ASSERT_OK_AND_ASSIGN(Args args, ParseArgs({"lock-a", "--ttl", "5s", "--",
                                             "sh", "-c", "echo --ttl"},
                                            kSpecs,
                                            /*allow_command=*/true));
  EXPECT_THAT(args.positional(), ElementsAre("lock-a"));
  EXPECT_TRUE(args.has_command());
  EXPECT_THAT(args.command(), ElementsAre("sh", "-c", "echo --ttl"));
}

TEST(ParseArgsTest, BadWordsAreNamed) {
  EXPECT_THAT(
      ParseArgs({"--bogus"}, kSpecs),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"--bogus\"")));
  EXPECT_THAT(ParseArgs({"--machine"}, kSpecs),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--machine needs a value")));
  EXPECT_THAT(
      ParseArgs({"--machine", "a", "--machine=b"}, kSpecs),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("given twice")));
  EXPECT_THAT(ParseArgs({"--release=yes"}, kSpecs),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("takes no value")));
  EXPECT_THAT(
      ParseArgs({"--", "ls"}, kSpecs),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"--\"")));
}

TEST(ParseArgsTest, TypedValuesAreChecked) {
  ASSERT_OK_AND_ASSIGN(
      Args args,
      ParseArgs({"--ttl", "soon", "--index", "-3", "--machine", "x"}, kSpecs));
  EXPECT_THAT(args.Duration("ttl"), StatusIs(absl::StatusCode::kInvalidArgument,
                                             HasSubstr("--ttl=\"soon\"")));
  EXPECT_THAT(args.Uint("index"), StatusIs(absl::StatusCode::kInvalidArgument,
                                           HasSubstr("--index=\"-3\"")));
  ASSERT_OK_AND_ASSIGN(Args zero, ParseArgs({"--ttl", "0s"}, kSpecs));
  EXPECT_THAT(zero.Duration("ttl"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(Args none, ParseArgs({}, kSpecs));
  EXPECT_THAT(none.String("machine"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("missing required flag --machine")));
}

TEST(FlagHelpTest, ListsEveryFlag) {
  const std::string help = FlagHelp(kSpecs);
  EXPECT_THAT(help, HasSubstr("--machine ID"));
  EXPECT_THAT(help, HasSubstr("--release "));
}

}  // namespace
}  // namespace leasehold::cli
