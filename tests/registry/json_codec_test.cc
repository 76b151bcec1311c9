#include "registry/etcd/json_codec.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::registry::etcd_internal {
namespace {

using ::leasehold::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(JsonCodecTest, ParsesACompareAndSwapWithPrevNodeAndExpiration) {
  ASSERT_OK_AND_ASSIGN(Response r, ParseKeysResponse(
                                       R"({"action":"compareAndSwap",
              "node":{"key":"/a b","value":"v\n\u00e9","modifiedIndex":15,
                      "createdIndex":8,"ttl":5,
                      "expiration":"2024-05-01T10:00:00.123456789Z"},
              "prevNode":{"key":"/a b","value":"old","modifiedIndex":8,
                          "createdIndex":8}})"));
  EXPECT_EQ(r.action, "compareAndSwap");
  EXPECT_EQ(r.node.key, "/a b");
  EXPECT_EQ(r.node.value, "v\n\xc3\xa9");
  EXPECT_EQ(r.node.created_index, 8u);
  EXPECT_EQ(r.node.modified_index, 15u);
  EXPECT_EQ(r.node.ttl, 5);
  ASSERT_TRUE(r.node.expiration.has_value());
  EXPECT_EQ(*r.node.expiration,
            absl::FromUnixSeconds(1714557600) + absl::Nanoseconds(123456789));
  ASSERT_TRUE(r.prev_node.has_value());
  EXPECT_EQ(r.prev_node->value, "old");
  EXPECT_FALSE(r.prev_node->expiration.has_value());
  EXPECT_EQ(r.etcd_index, 0u);  // comes from the header, not the body
}

TEST(JsonCodecTest, ParsesNestedDirectories) {
  ASSERT_OK_AND_ASSIGN(
      Response r,
      ParseKeysResponse(R"({"action":"get","node":{"key":"/d","dir":true,
          "nodes":[{"key":"/d/x","value":"1","modifiedIndex":3,"createdIndex":3},
                   {"key":"/d/e","dir":true,"nodes":[
                     {"key":"/d/e/y","value":"2","modifiedIndex":4,"createdIndex":4}]}]}})"));
  EXPECT_TRUE(r.node.dir);
  ASSERT_EQ(r.node.nodes.size(), 2u);
  EXPECT_EQ(r.node.nodes[0].value, "1");
  ASSERT_EQ(r.node.nodes[1].nodes.size(), 1u);
  EXPECT_EQ(r.node.nodes[1].nodes[0].key, "/d/e/y");
}

TEST(JsonCodecTest, KeepsValuesWithNulBytes) {
  ASSERT_OK_AND_ASSIGN(
      Response r,
      ParseKeysResponse(
          R"({"action":"get","node":{"key":"/k","value":"a\u0000b"}})"));
  EXPECT_EQ(r.node.value, std::string("a\0b", 3));
}

TEST(JsonCodecTest, ExpirationWithAnOffsetIsTheSameInstant) {
  ASSERT_OK_AND_ASSIGN(absl::Time utc, ParseRfc3339("2024-05-01T10:00:00Z"));
  ASSERT_OK_AND_ASSIGN(absl::Time offset,
                       ParseRfc3339("2024-05-01T12:00:00.000+02:00"));
  EXPECT_EQ(utc, offset);
  EXPECT_THAT(ParseRfc3339("yesterday"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("yesterday")));
}

// etcd's own expirations take a fast path; it must read them exactly as
// absl::ParseTime does, and leave every other shape to it.
TEST(JsonCodecTest, ExpirationsReadAsTheGeneralParserReadsThem) {
  for (const char* text :
       {"2024-05-01T10:00:00Z", "2024-05-01T10:00:00.1Z",
        "2024-05-01T10:00:00.123456789Z", "2024-02-29T23:59:59.000000001Z",
        "1970-01-01T00:00:00Z", "2026-11-23T13:32:52.62104512Z",
        // Not etcd's shape: the general parser's verdict either way.
        "2023-02-29T10:00:00Z", "2024-04-31T10:00:00Z", "2024-05-01T10:00:60Z",
        "2024-05-01T24:00:00Z", "2024-05-01T10:00:00.Z",
        "2024-05-01T10:00:00.1234567891Z", "2024-05-01t10:00:00z",
        "2024-13-01T10:00:00Z", "2024-05-01T10:00:00+00:00",
        "+2024-05-01T10:00:00Z"}) {
    absl::Time expected;
    std::string error;
    const bool valid =
        absl::ParseTime(absl::RFC3339_full, text, &expected, &error);
    absl::StatusOr<absl::Time> parsed = ParseRfc3339(text);
    ASSERT_EQ(parsed.ok(), valid) << text << ": " << parsed.status();
    if (valid) {
      EXPECT_EQ(*parsed, expected) << text;
    }
  }
}

// Such bodies keep the parse they always had: a NUL ends the text for
// rapidjson's sized parse (what follows it is not read), and a UTF-8
// byte-order mark is skipped.
TEST(JsonCodecTest, BodiesWithANulOrAByteOrderMarkParseAsBefore) {
  const std::string body = R"({"action":"get","node":{"key":"/k"}})";
  ASSERT_OK_AND_ASSIGN(Response nul,
                       ParseKeysResponse(body + std::string(1, '\0') + "]"));
  EXPECT_EQ(nul.node.key, "/k");
  ASSERT_OK_AND_ASSIGN(Response bom, ParseKeysResponse("\xEF\xBB\xBF" + body));
  EXPECT_EQ(bom.node.key, "/k");
}

struct BadBody {
  const char* name;
  std::string body;
  const char* message;  // a part of the expected error message
};

class JsonCodecBadBodyTest : public ::testing::TestWithParam<BadBody> {};

TEST_P(JsonCodecBadBodyTest, IsDataLossNamingTheProblem) {
  EXPECT_THAT(
      ParseKeysResponse(GetParam().body),
      StatusIs(absl::StatusCode::kDataLoss, HasSubstr(GetParam().message)));
}

INSTANTIATE_TEST_SUITE_P(
    Bodies, JsonCodecBadBodyTest,
    ::testing::Values(
        BadBody{"Empty", "", "malformed etcd response"},
        BadBody{"Truncated", R"({"action":"get","node":{"key":"/a","val)",
                "offset"},
        BadBody{"TrailingGarbage", R"({"action":"get","node":{}} x)",
                "malformed"},
        BadBody{"NotAnObject", "[1,2]", "not a JSON object"},
        BadBody{"Html", "<html>502 Bad Gateway</html>", "malformed"},
        BadBody{"NoAction", R"({"node":{}})", "action"},
        BadBody{"NoNode", R"({"action":"get"})", "node: missing"},
        BadBody{"NodeNotObject", R"({"action":"get","node":7})",
                "node: not an object"},
        BadBody{"TtlIsAString", R"({"action":"get","node":{"ttl":"5"}})",
                "node.ttl: not an integer"},
        BadBody{"IndexIsNegative",
                R"({"action":"get","node":{"modifiedIndex":-1}})",
                "node.modifiedIndex"},
        BadBody{"IndexIsAFloat",
                R"({"action":"get","node":{"createdIndex":1.5}})",
                "node.createdIndex"},
        BadBody{"ValueIsANumber", R"({"action":"get","node":{"value":1}})",
                "node.value: not a string"},
        BadBody{"DirIsAString", R"({"action":"get","node":{"dir":"yes"}})",
                "node.dir: not a boolean"},
        BadBody{"NodesNotAnArray",
                R"({"action":"get","node":{"dir":true,"nodes":{}}})",
                "node.nodes: not an array"},
        BadBody{"ChildNotAnObject",
                R"({"action":"get","node":{"nodes":[{},"x"]}})",
                "node.nodes[1]: not an object"},
        BadBody{"BadExpiration",
                R"({"action":"get","node":{"expiration":"soon"}})",
                "node.expiration"},
        BadBody{"PrevNodeNotObject",
                R"({"action":"set","node":{},"prevNode":[]})",
                "prevNode: not an object"}),
    [](const ::testing::TestParamInfo<BadBody>& info) {
      return std::string(info.param.name);
    });

TEST(JsonCodecTest, DeepNestingIsRefusedNotACrash) {
  std::string body = R"({"action":"get","node":)";
  for (int i = 0; i < 5000; ++i) body += R"({"nodes":[)";
  body += "{}";
  for (int i = 0; i < 5000; ++i) body += "]}";
  body += "}";
  EXPECT_THAT(ParseKeysResponse(body),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("too deeply")));
}

TEST(JsonCodecTest, EveryPrefixOfAGoodBodyFailsCleanly) {
  const std::string good =
      R"({"action":"set","node":{"key":"/k","value":"v","ttl":3,)"
      R"("expiration":"2024-05-01T10:00:00Z","modifiedIndex":9,)"
      R"("createdIndex":9},"prevNode":{"key":"/k","value":"u"}})";
  ASSERT_THAT(ParseKeysResponse(good), ::leasehold::testing::IsOk());
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_THAT(ParseKeysResponse(good.substr(0, n)),
                StatusIs(absl::StatusCode::kDataLoss))
        << "prefix of " << n << " bytes";
  }
}

// The check of a success answer before anyone acts on it.

Response Answer(absl::string_view body, uint64_t etcd_index) {
  absl::StatusOr<Response> r = ParseKeysResponse(body);
  EXPECT_TRUE(r.ok()) << r.status();
  Response out = r.ok() ? *std::move(r) : Response{};
  out.etcd_index = etcd_index;
  return out;
}

constexpr char kCreated[] =
    R"({"action":"create","node":{"key":"/k","value":"v","modifiedIndex":7,"createdIndex":7}})";
constexpr char kUpdated[] =
    R"({"action":"compareAndSwap","node":{"key":"/k","value":"v","modifiedIndex":9,"createdIndex":7}})";

TEST(CheckSuccessTest, AcceptsEtcdsAnswers) {
  EXPECT_TRUE(CheckSuccess(Answer(kCreated, 7), Asked::kCreate).ok());
  EXPECT_TRUE(CheckSuccess(Answer(kUpdated, 9), Asked::kWrite).ok());
  EXPECT_TRUE(CheckSuccess(Answer(kUpdated, 12), Asked::kGet).ok());
  EXPECT_TRUE(CheckSuccess(Answer(kUpdated, 3), Asked::kWatch, 9).ok());
  EXPECT_TRUE(CheckSuccess(Answer(R"({"action":"get","node":{"dir":true,)"
                                  R"("nodes":[{"key":"/a","dir":true,)"
                                  R"("modifiedIndex":3,"createdIndex":3}]}})",
                                  12),
                           Asked::kGetRoot)
                  .ok());
}

TEST(CheckSuccessTest, AnEmptyNodeIsNeverAGrant) {
  EXPECT_THAT(CheckSuccess(Answer(R"({"action":"create","node":{}})", 7),
                           Asked::kCreate),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("node: no key")));
}

struct BadAnswer {
  const char* body;
  uint64_t etcd_index;
  Asked asked;
  const char* problem;
};

class CheckSuccessBadTest : public ::testing::TestWithParam<BadAnswer> {};

TEST_P(CheckSuccessBadTest, IsDataLossNamingTheProblem) {
  EXPECT_THAT(
      CheckSuccess(Answer(GetParam().body, GetParam().etcd_index),
                   GetParam().asked, 9),
      StatusIs(absl::StatusCode::kDataLoss, HasSubstr(GetParam().problem)));
}

INSTANTIATE_TEST_SUITE_P(
    Table, CheckSuccessBadTest,
    ::testing::Values(
        BadAnswer{
            R"({"action":"set","node":{"value":"v","modifiedIndex":9,"createdIndex":9}})",
            9, Asked::kWrite, "node: no key"},
        BadAnswer{R"({"action":"set","node":{"key":"/k","createdIndex":9}})", 9,
                  Asked::kWrite, "no modifiedIndex"},
        BadAnswer{R"({"action":"set","node":{"key":"/k","modifiedIndex":9}})",
                  9, Asked::kWrite, "createdIndex 0"},
        BadAnswer{
            R"({"action":"set","node":{"key":"/k","modifiedIndex":7,"createdIndex":9}})",
            9, Asked::kWrite, "createdIndex 9 with modifiedIndex 7"},
        BadAnswer{kUpdated, 8, Asked::kWrite, "past X-Etcd-Index 8"},
        BadAnswer{kUpdated, 8, Asked::kGet, "past X-Etcd-Index 8"},
        BadAnswer{kUpdated, 9, Asked::kCreate, "answers a create"},
        BadAnswer{
            R"({"action":"create","node":{"key":"/k","modifiedIndex":9,"createdIndex":8}})",
            9, Asked::kCreate, "createdIndex 8 of a node just created"},
        BadAnswer{kCreated, 12, Asked::kWatch, "before the watched index 9"},
        BadAnswer{
            R"({"action":"get","node":{"key":"/d","dir":true,"modifiedIndex":3,"createdIndex":3,)"
            R"("nodes":[{"key":"/d/a","modifiedIndex":0}]}})",
            9, Asked::kGet, "node.nodes[0]: no modifiedIndex"},
        BadAnswer{R"({"action":"get","node":{"nodes":[]}})", 9, Asked::kGetRoot,
                  "the root is not a directory"}));

TEST(JsonCodecTest, ParsesEtcdErrorBodies) {
  std::optional<EtcdError> e = ParseEtcdError(
      R"({"errorCode":101,"message":"Compare failed","cause":"[12 != 14]","index":14})");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 101);
  EXPECT_EQ(e->message, "Compare failed");
  EXPECT_EQ(e->cause, "[12 != 14]");
  EXPECT_EQ(e->index, 14u);

  EXPECT_FALSE(ParseEtcdError(R"({"message":"Insufficient credentials"})"));
  EXPECT_FALSE(ParseEtcdError("<html>bad gateway</html>"));
  EXPECT_FALSE(ParseEtcdError(R"({"errorCode":"101"})"));
  EXPECT_FALSE(ParseEtcdError(""));
}

TEST(JsonCodecTest, ParsesMemberClientUrls) {
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> urls,
                       ParseMemberClientUrls(R"({"members":[
        {"id":"1","name":"a","peerURLs":["http://127.0.0.1:2380"],
         "clientURLs":["http://127.0.0.1:2379","http://10.0.0.1:2379"]},
        {"id":"2","name":"","peerURLs":["http://127.0.0.1:2381"]},
        {"id":"3","name":"c","clientURLs":["http://127.0.0.1:2379","http://127.0.0.1:22379"]}]})"));
  EXPECT_THAT(urls, ElementsAre("http://127.0.0.1:2379", "http://10.0.0.1:2379",
                                "http://127.0.0.1:22379"));
  EXPECT_THAT(ParseMemberClientUrls(R"({"members":{}})"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("members")));
  EXPECT_THAT(ParseMemberClientUrls(R"({"members":[{"clientURLs":[1]}]})"),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("members[0].clientURLs")));
}

}  // namespace
}  // namespace leasehold::registry::etcd_internal
