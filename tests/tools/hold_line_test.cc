// Reading back the hold lines `leasehold agent -o json` prints.
#include "tools/sim/hold_line.h"

#include <optional>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace leasehold::sim {
namespace {

TEST(HoldLineTest, ReadsABeginAndAnEnd) {
  std::optional<HoldLine> begin = ParseHoldLine(
      R"({"time_ns":1764500000123456789,"event":"stole","lease":"engine-leader","machine":"m4","fence":42})");
  ASSERT_TRUE(begin.has_value());
  EXPECT_EQ(begin->at, absl::FromUnixNanos(1764500000123456789));
  EXPECT_EQ(begin->lease, "engine-leader");
  EXPECT_EQ(begin->machine, "m4");
  EXPECT_EQ(begin->fence, 42u);
  EXPECT_TRUE(begin->begins());
  EXPECT_TRUE(begin->by_steal());

  std::optional<HoldLine> end = ParseHoldLine(
      R"( {"time_ns":5,"event":"lost","lease":"unit-01","machine":"m1","fence":7,"extra":[1]} )");
  ASSERT_TRUE(end.has_value());
  EXPECT_FALSE(end->begins());
  EXPECT_EQ(end->event, "lost");
}

TEST(HoldLineTest, AnythingElseIsNoHold) {
  for (
      const char* line : {
          "",
          "acquired unit-01 m1 7",
          R"({"time_ns":5,"event":"started","machine":"m1"})",
          R"({"time_ns":5,"event":"lost","lease":"u","machine":"m1","fence":-1})",
          R"({"time_ns":-5,"event":"lost","lease":"u","machine":"m1","fence":1})",
          R"({"time_ns":5,"event":"lost","lease":"","machine":"m1","fence":1})",
          R"({"time_ns":"5","event":"lost","lease":"u","machine":"m1","fence":1})",
          R"({"time_ns":5,"event":"lost","lease":"u","machine":"m1","fence":1)",
      }) {
    EXPECT_FALSE(ParseHoldLine(line).has_value()) << line;
  }
}

}  // namespace
}  // namespace leasehold::sim
