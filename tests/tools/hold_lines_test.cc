// Reading `leasehold agent` output back: what the agent test and
// leasehold-torture rely on to judge agents that ran as separate processes.
#include "tools/sim/hold_lines.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::sim {
namespace {

using ::leasehold::testing::IsOk;
using ::leasehold::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kAcquired[] =
    R"({"time_ns":1000000000,"event":"acquired","lease":"unit-03","machine":"m1","fence":42})";
constexpr char kLost[] =
    R"({"time_ns":3000000000,"event":"lost","lease":"unit-03","machine":"m1","fence":42})";

TEST(HoldLinesTest, ParsesAHoldLine) {
  std::optional<HoldLine> hold = ParseHoldLine(kAcquired);
  ASSERT_TRUE(hold.has_value());
  EXPECT_EQ(hold->time, absl::FromUnixSeconds(1));
  EXPECT_EQ(hold->event, "acquired");
  EXPECT_TRUE(hold->begins());
  EXPECT_EQ(hold->lease, "unit-03");
  EXPECT_EQ(hold->machine, "m1");
  EXPECT_EQ(hold->fence, 42u);
}

TEST(HoldLinesTest, OtherLinesAreNotHolds) {
  for (
      const char* line :
      {R"({"time_ns":1,"event":"note","text":"m1 leads the engine"})",
       R"({"time_ns":1,"event":"registry-failing","error":"UNAVAILABLE"})",
       R"({"time_ns":1000000000,"event":"acquired","lease":"unit-03","mac)",
       R"({"time_ns":99999999999999999999999,"event":"lost","lease":"u","machine":"m","fence":1})",
       "", "garbage"}) {
    EXPECT_FALSE(ParseHoldLine(line).has_value()) << line;
  }
}

TEST(HoldLinesTest, ReaderRecordsBeginAndEndInTheHistory) {
  History history;
  HoldLineReader reader(&history);
  EXPECT_THAT(reader.Add(kAcquired), IsOk());
  EXPECT_THAT(reader.open(), SizeIs(1));
  EXPECT_THAT(reader.Add(R"({"time_ns":2,"event":"note","text":"x"})"), IsOk());
  EXPECT_THAT(reader.Add(kLost), IsOk());
  EXPECT_THAT(reader.open(), IsEmpty());
  std::vector<Hold> holds = history.holds();
  ASSERT_THAT(holds, SizeIs(1));
  EXPECT_EQ(holds[0].start, absl::FromUnixSeconds(1));
  EXPECT_EQ(holds[0].end, absl::FromUnixSeconds(3));
  EXPECT_EQ(holds[0].how_ended, "lost");
}

TEST(HoldLinesTest, AnEndWithoutABeginOrABeginTwiceIsDataLoss) {
  History history;
  HoldLineReader reader(&history);
  EXPECT_THAT(reader.Add(kLost), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(reader.Add(kAcquired), IsOk());
  absl::Status twice = reader.Add(kAcquired);
  EXPECT_THAT(twice, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(std::string(twice.message()), HasSubstr("begun twice"));
}

TEST(HoldLinesTest, EndOpenClosesWhatAKilledProcessHeld) {
  History history;
  HoldLineReader reader(&history);
  EXPECT_THAT(reader.Add(kAcquired), IsOk());
  reader.EndOpen(absl::FromUnixSeconds(5), "killed");
  EXPECT_THAT(reader.open(), IsEmpty());
  EXPECT_THAT(history.holds(),
              ElementsAre(::testing::Field(&Hold::how_ended, "killed")));
}

}  // namespace
}  // namespace leasehold::sim
