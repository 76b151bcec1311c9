#include "lease/lease_value.h"

#include "gtest/gtest.h"
#include "registry/json_object.h"

namespace leasehold::lease {
namespace {

TEST(LeaseValueTest, EncodesFleetFieldsFirst) {
  EXPECT_EQ(EncodeLeaseValue({"m1", 2, "t-1"}),
            R"({"MachineID":"m1","Version":2,"Token":"t-1"})");
  EXPECT_EQ(EncodeLeaseValue({"m1", 0, ""}),
            R"({"MachineID":"m1","Version":0})");
}

TEST(LeaseValueTest, RoundTrips) {
  const LeaseValue v = DecodeLeaseValue(EncodeLeaseValue({"a b", -3, "tok"}));
  EXPECT_EQ(v.machine_id, "a b");
  EXPECT_EQ(v.version, -3);
  EXPECT_EQ(v.token, "tok");
}

TEST(LeaseValueTest, ReadsFleetJson) {
  const LeaseValue v = DecodeLeaseValue(R"({"MachineID":"abc","Version":7})");
  EXPECT_EQ(v.machine_id, "abc");
  EXPECT_EQ(v.version, 7);
  EXPECT_EQ(v.token, "");
}

TEST(LeaseValueTest, MissingMembersAreZeroAsInGo) {
  const LeaseValue v = DecodeLeaseValue(R"({"Other":1})");
  EXPECT_EQ(v.machine_id, "");
  EXPECT_EQ(v.version, 0);
}

TEST(LeaseValueTest, AnythingElseIsABareMachineId) {
  for (const char* text : {"abc123", "\"quoted\"", "42", R"({"MachineID":5})",
                           R"({"MachineID":"m","Version":"2"})",
                           R"({"MachineID":"m","Version":1.5})", "{broken"}) {
    const LeaseValue v = DecodeLeaseValue(text);
    EXPECT_EQ(v.machine_id, text);
    EXPECT_EQ(v.version, 0) << text;
  }
}

}  // namespace
}  // namespace leasehold::lease
