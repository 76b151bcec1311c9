// Reading back the hold lines `leasehold agent -o json` prints.
#include "tools/sim/hold_line.h"

#include <optional>

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
// Acquired at 1 s, believed until 3 s unless renewed.
constexpr char kAcquiredUntil3s[] =
    R"({"time_ns":1000000000,"event":"acquired","lease":"u","machine":"m1","fence":4,"expiry_ns":3000000000})";
constexpr char kLost[] =
    R"({"time_ns":3000000000,"event":"lost","lease":"unit-03","machine":"m1","fence":42})";

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

TEST(HoldLineTest, ReadsTheExpiryOfABeginOrARenewWhenGiven) {
  std::optional<HoldLine> begin = ParseHoldLine(
      R"({"time_ns":1,"event":"acquired","lease":"u","machine":"m1","fence":4,"expiry_ns":2000000000})");
  ASSERT_TRUE(begin.has_value());
  EXPECT_EQ(begin->expiry, absl::FromUnixSeconds(2));
  std::optional<HoldLine> renew = ParseHoldLine(
      R"({"time_ns":2,"event":"renewed","lease":"u","machine":"m1","fence":4,"expiry_ns":3000000000})");
  ASSERT_TRUE(renew.has_value());
  EXPECT_TRUE(renew->renews());
  EXPECT_FALSE(renew->begins());
  EXPECT_EQ(renew->expiry, absl::FromUnixSeconds(3));
  // Lines of agents that print no expiry are read as before.
  std::optional<HoldLine> old = ParseHoldLine(kAcquired);
  ASSERT_TRUE(old.has_value());
  EXPECT_EQ(old->expiry, std::nullopt);
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
          R"({"time_ns":5,"event":"renewed","lease":"u","machine":"m1","fence":1,"expiry_ns":-1})",
          R"({"time_ns":5,"event":"renewed","lease":"u","machine":"m1","fence":1,"expiry_ns":"9"})",
      }) {
    EXPECT_FALSE(ParseHoldLine(line).has_value()) << line;
  }
}

TEST(HoldLineReaderTest, ReaderRecordsBeginAndEndInTheHistory) {
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

TEST(HoldLineReaderTest, AnEndWithoutABeginOrABeginTwiceIsDataLoss) {
  History history;
  HoldLineReader reader(&history);
  EXPECT_THAT(reader.Add(kLost), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(reader.Add(kAcquired), IsOk());
  absl::Status twice = reader.Add(kAcquired);
  EXPECT_THAT(twice, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(std::string(twice.message()), HasSubstr("begun twice"));
}

TEST(HoldLineReaderTest, EndOpenClosesWhatAKilledProcessHeld) {
  History history;
  HoldLineReader reader(&history);
  EXPECT_THAT(reader.Add(kAcquired), IsOk());
  reader.EndOpen(absl::FromUnixSeconds(5), "killed");
  EXPECT_THAT(reader.open(), IsEmpty());
  EXPECT_THAT(history.holds(),
              ElementsAre(::testing::Field(&Hold::how_ended, "killed")));
}

TEST(HoldLineReaderTest, EndOpenEndsAKilledHoldAtTheLastExpiryItPrinted) {
  History history;
  HoldLineReader reader(&history);
  EXPECT_THAT(reader.Add(kAcquiredUntil3s), IsOk());
  EXPECT_THAT(
      reader.Add(
          R"({"time_ns":2000000000,"event":"renewed","lease":"u","machine":"m1","fence":4,"expiry_ns":4000000000})"),
      IsOk());
  // Starved past its expiry, then killed: it had stopped believing at 4 s.
  reader.EndOpen(absl::FromUnixSeconds(9), "killed");
  std::vector<Hold> holds = history.holds();
  ASSERT_THAT(holds, SizeIs(1));
  EXPECT_EQ(holds[0].end, absl::FromUnixSeconds(4));
  EXPECT_EQ(holds[0].how_ended, "killed");
}

TEST(HoldLineReaderTest, EndOpenEndsAtTheKillWhenThatCameFirst) {
  History history;
  HoldLineReader reader(&history);
  EXPECT_THAT(reader.Add(kAcquiredUntil3s), IsOk());
  reader.EndOpen(absl::FromUnixSeconds(2), "killed");
  EXPECT_THAT(history.holds(), ElementsAre(::testing::Field(
                                   &Hold::end, absl::FromUnixSeconds(2))));
}

TEST(HoldLineReaderTest, ARenewAfterItsHoldEndedIsSkipped) {
  History history;
  HoldLineReader reader(&history);
  EXPECT_THAT(reader.Add(kAcquired), IsOk());
  EXPECT_THAT(reader.Add(kLost), IsOk());
  EXPECT_THAT(
      reader.Add(
          R"({"time_ns":3000000001,"event":"renewed","lease":"unit-03","machine":"m1","fence":42,"expiry_ns":5000000000})"),
      IsOk());
  EXPECT_THAT(reader.open(), IsEmpty());
  EXPECT_THAT(history.holds(), ElementsAre(::testing::Field(
                                   &Hold::end, absl::FromUnixSeconds(3))));
}

}  // namespace
}  // namespace leasehold::sim
