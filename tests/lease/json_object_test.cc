#include "registry/json_object.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::registry {
namespace {

using ::leasehold::testing::StatusIs;

TEST(JsonObjectTest, ParsesStringsAndIntegers) {
  ASSERT_OK_AND_ASSIGN(JsonObject o,
                       JsonObject::Parse(R"( {"A":"x","B":-7,"C":"\u00e9"} )"));
  EXPECT_EQ(o.GetString("A"), "x");
  EXPECT_EQ(o.GetInt("B"), -7);
  EXPECT_EQ(o.GetString("C"), "\xc3\xa9");
  EXPECT_EQ(o.GetString("B"), std::nullopt);  // wrong type
  EXPECT_EQ(o.GetInt("missing"), std::nullopt);
  EXPECT_EQ(o.Find("missing"), nullptr);
}

TEST(JsonObjectTest, KeepsOtherMembersAsJsonText) {
  const std::string text = R"({"A":1.5,"B":[1,{"c":null}],"C":true,"D":"d"})";
  ASSERT_OK_AND_ASSIGN(JsonObject o, JsonObject::Parse(text));
  EXPECT_EQ(o.GetInt("A"), std::nullopt);
  EXPECT_EQ(o.Encode(), text);
}

TEST(JsonObjectTest, SetReplacesOrAppendsInOrder) {
  JsonObject o;
  o.Set("B", int64_t{1});
  o.Set("A", "q\"uote\n");
  o.Set("B", int64_t{2});
  EXPECT_EQ(o.Encode(), R"({"B":2,"A":"q\"uote\n"})");
}

// Whatever bytes a string holds, Encode writes JSON that Parse reads back
// to the same bytes: control characters are escaped wherever they stand,
// also after bytes >= 0x80 (which rapidjson's SSE2 writer got wrong).
TEST(JsonObjectTest, AnyBytesEncodeToJsonThatReadsBack) {
  for (const std::string& s :
       {std::string(
            "\xff\xff\xff\xff\xff\xff\xff\xff\x1b\x1b\x1b\x1b\xff\xffToken"),
        std::string("\x01\x00\x02 \xc3\xa9\x1f\x7f\"\\", 11),
        std::string(40, '\x80') + std::string(20, '\x01')}) {
    JsonObject o;
    o.Set("MachineID", s);
    const std::string text = o.Encode();
    for (char c : text) {
      EXPECT_GE(static_cast<unsigned char>(c), 0x20) << text;
    }
    ASSERT_OK_AND_ASSIGN(JsonObject back, JsonObject::Parse(text));
    EXPECT_EQ(back.GetString("MachineID"), s);
  }
}

TEST(JsonObjectTest, RepeatedNameKeepsLastValue) {
  ASSERT_OK_AND_ASSIGN(JsonObject o, JsonObject::Parse(R"({"A":1,"A":2})"));
  EXPECT_EQ(o.GetInt("A"), 2);
}

TEST(JsonObjectTest, RejectsWhatIsNotOneObject) {
  for (const char* text :
       {"", "abc", "\"s\"", "12", "[1]", "{\"A\":1} x", "{\"A\":", "null"}) {
    EXPECT_THAT(JsonObject::Parse(text),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << text;
  }
}

}  // namespace
}  // namespace leasehold::registry
