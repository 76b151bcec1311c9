// The etcd v3 gateway codec (registry/etcd_v3/v3_codec.h): etcd's answers
// decode; anything that is not one is kDataLoss naming what is wrong,
// never a crash and never a half-read success.
#include "registry/etcd_v3/v3_codec.h"

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::registry::etcd_v3_internal {
namespace {

using ::leasehold::testing::IsOk;
using ::leasehold::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kHeader[] =
    R"("header":{"cluster_id":"7801","member_id":"1345","revision":"12",)"
    R"("raft_term":"2"})";

std::string Body(const std::string& rest) {
  return absl::StrCat("{", kHeader, rest.empty() ? "" : ",", rest, "}");
}

// "/a/b" and "hello" in base64.
constexpr char kKv[] =
    R"({"key":"L2EvYg==","create_revision":"2","mod_revision":"3",)"
    R"("version":"2","value":"aGVsbG8=","lease":"77"})";

TEST(V3CodecTest, RangeDecodesKeysValuesAndRevisions) {
  absl::StatusOr<RangeResult> r =
      ParseRange(Body(absl::StrCat(R"("kvs":[)", kKv, R"(],"count":"1")")));
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->header.revision, 12);
  ASSERT_EQ(r->kvs.size(), 1u);
  EXPECT_EQ(r->kvs[0].key, "/a/b");
  EXPECT_EQ(r->kvs[0].value, "hello");
  EXPECT_EQ(r->kvs[0].create_revision, 2);
  EXPECT_EQ(r->kvs[0].mod_revision, 3);
  EXPECT_EQ(r->kvs[0].lease, 77);
  EXPECT_THAT(CheckLiveKv(r->kvs[0], r->header.revision, "kvs[0]"), IsOk());
  // protobuf's JSON leaves out what is empty: no kvs, no count.
  ASSERT_THAT(ParseRange(Body("")), IsOk());
}

TEST(V3CodecTest, AnswersThatAreNotEtcdsAreDataLoss) {
  for (const std::string& body : {
           std::string("<html>502 Bad Gateway</html>"),
           std::string(""),
           std::string("[]"),
           std::string(R"({"kvs":[]})"),  // no header: not etcd's
           std::string(R"({"header":{"revision":"3"}})"),  // no cluster
           Body(R"("kvs":{})"),
           Body(R"("kvs":[{"key":"%%%"}])"),  // not base64
           Body(R"("kvs":[{"key":"L2E=","mod_revision":"x"}])"),
           Body(R"("kvs":[{"value":"aA=="}])"),  // no key
           Body(R"("more":"yes")"),
       }) {
    SCOPED_TRACE(body);
    EXPECT_THAT(ParseRange(body), StatusIs(absl::StatusCode::kDataLoss));
  }
  EXPECT_THAT(
      ParseRange(R"({"header":{"cluster_id":"1","member_id":"2"}})"),
      StatusIs(absl::StatusCode::kDataLoss, HasSubstr("no positive revision")));
}

TEST(V3CodecTest, LiveKeysNeedOrderedRevisionsAndAVersion) {
  KeyValue kv{"/a", "v", 5, 4, 1, 0};
  EXPECT_THAT(CheckLiveKv(kv, 0, "kv"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("out of order")));
  kv = {"/a", "v", 4, 5, 0, 0};
  EXPECT_THAT(CheckLiveKv(kv, 0, "kv"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("no version")));
  kv = {"/a", "v", 4, 9, 1, 0};
  EXPECT_THAT(CheckLiveKv(kv, 8, "kv"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("past")));
  EXPECT_THAT(CheckLiveKv(kv, 9, "kv"), IsOk());
}

TEST(V3CodecTest, TxnKeepsItsResponsesInOrder) {
  absl::StatusOr<TxnResult> txn = ParseTxn(Body(absl::StrCat(
      R"("succeeded":true,"responses":[{"response_put":{"prev_kv":)", kKv,
      R"(}},{"response_delete_range":{"deleted":"1","prev_kvs":[)", kKv,
      R"(]}},{"response_range":{"kvs":[)", kKv, R"(]}}])")));
  ASSERT_THAT(txn, IsOk());
  EXPECT_TRUE(txn->succeeded);
  ASSERT_EQ(txn->responses.size(), 3u);
  EXPECT_TRUE(std::get<PutResult>(txn->responses[0]).prev_kv.has_value());
  EXPECT_EQ(std::get<DeleteResult>(txn->responses[1]).deleted, 1);
  EXPECT_EQ(std::get<RangeResult>(txn->responses[2]).kvs.size(), 1u);
  // A failed txn leaves "succeeded" out.
  ASSERT_OK_AND_ASSIGN(TxnResult failed, ParseTxn(Body("")));
  EXPECT_FALSE(failed.succeeded);
  EXPECT_THAT(ParseTxn(Body(R"("responses":[{"response_what":{}}])")),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST(V3CodecTest, LeasesNeedAnIdAndAPositiveGrant) {
  ASSERT_OK_AND_ASSIGN(LeaseResult granted,
                       ParseLeaseGrant(Body(R"("ID":"99","TTL":"2")")));
  EXPECT_EQ(granted.id, 99);
  EXPECT_EQ(granted.ttl, 2);
  EXPECT_THAT(ParseLeaseGrant(Body(R"("TTL":"2")")),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(ParseLeaseGrant(Body(R"("ID":"99")")),
              StatusIs(absl::StatusCode::kDataLoss));
  // A keep-alive of a lease that is gone answers without TTL.
  ASSERT_OK_AND_ASSIGN(LeaseResult gone, ParseLeaseKeepAlive(absl::StrCat(
                                             R"({"result":{)", kHeader,
                                             R"(,"ID":"99"}})", "\n")));
  EXPECT_EQ(gone.ttl, 0);
  EXPECT_THAT(
      ParseLeaseKeepAlive(R"({"error":{"grpc_code":14,"message":"x"}})"),
      StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(
      ParseLeaseTimeToLive(Body(R"("ID":"99","TTL":"30","grantedTTL":"10")")),
      StatusIs(absl::StatusCode::kDataLoss));
}

TEST(V3CodecTest, WatchMessages) {
  ASSERT_OK_AND_ASSIGN(WatchMessage created,
                       ParseWatchMessage(absl::StrCat(R"({"result":{)", kHeader,
                                                      R"(,"created":true}})")));
  EXPECT_TRUE(created.created);
  EXPECT_EQ(created.header.revision, 12);

  ASSERT_OK_AND_ASSIGN(
      WatchMessage events,
      ParseWatchMessage(absl::StrCat(
          R"({"result":{)", kHeader, R"(,"events":[{"kv":)", kKv,
          R"(},{"type":"DELETE","kv":{"key":"L2EvYg==","mod_revision":"4"},)",
          R"("prev_kv":)", kKv, R"(}]}})")));
  ASSERT_EQ(events.events.size(), 2u);
  EXPECT_FALSE(events.events[0].is_delete);
  EXPECT_TRUE(events.events[1].is_delete);
  EXPECT_TRUE(events.events[1].prev_kv.has_value());

  // A compacted start: cancelled, its header without a revision.
  ASSERT_OK_AND_ASSIGN(
      WatchMessage compacted,
      ParseWatchMessage(R"({"result":{"header":{"cluster_id":"1",)"
                        R"("member_id":"2"},"canceled":true,)"
                        R"("compact_revision":"3"}})"));
  EXPECT_TRUE(compacted.canceled);
  EXPECT_EQ(compacted.compact_revision, 3);

  // An event past the header's revision, an unknown type: not etcd's.
  EXPECT_THAT(
      ParseWatchMessage(absl::StrCat(
          R"({"result":{)", kHeader,
          R"(,"events":[{"kv":{"key":"L2E=","mod_revision":"13"}}]}})")),
      StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(ParseWatchMessage(absl::StrCat(
                  R"({"result":{)", kHeader,
                  R"(,"events":[{"type":"MOVE","kv":)", kKv, R"(}]}})")),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(ParseWatchMessage(R"({"result":{"created":true}})"),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST(V3CodecTest, GatewayErrors) {
  std::optional<GatewayError> unary = ParseGatewayError(
      R"({"error":"etcdserver: requested lease not found",)"
      R"("message":"etcdserver: requested lease not found","code":5})");
  ASSERT_TRUE(unary.has_value());
  EXPECT_EQ(unary->code, 5);
  EXPECT_EQ(unary->message, "etcdserver: requested lease not found");
  std::optional<GatewayError> stream = ParseGatewayError(
      R"({"error":{"grpc_code":14,"http_code":503,"message":"no leader"}})");
  ASSERT_TRUE(stream.has_value());
  EXPECT_EQ(stream->code, 14);
  EXPECT_FALSE(ParseGatewayError("<html>404</html>").has_value());
  EXPECT_FALSE(ParseGatewayError(Body("")).has_value());
  EXPECT_FALSE(ParseGatewayError(R"({"error":"x"})").has_value());
}

// What etcd 3.4 puts in a watch's cancel_reason when it refuses the token.
TEST(V3CodecTest, CancelReasonsCarryTheGrpcError) {
  std::optional<GatewayError> e = ParseCancelReason(
      "rpc error: code = Unauthenticated desc = etcdserver: invalid auth "
      "token");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 16);
  EXPECT_EQ(e->message, "etcdserver: invalid auth token");
  e = ParseCancelReason(
      "rpc error: code = PermissionDenied desc = etcdserver: permission "
      "denied");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 7);
  e = ParseCancelReason(
      "rpc error: code = InvalidArgument desc = etcdserver: user name is "
      "empty");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 3);
  EXPECT_FALSE(ParseCancelReason("mvcc: required revision has been compacted")
                   .has_value());
  EXPECT_FALSE(
      ParseCancelReason("rpc error: code = Bogus desc = x").has_value());
  EXPECT_FALSE(ParseCancelReason("rpc error: code = Canceled").has_value());
}

TEST(V3CodecTest, AuthenticateGivesTheToken) {
  ASSERT_OK_AND_ASSIGN(
      std::string token,
      ParseAuthenticate(Body(R"("token":"ELyUssGBxVWCVbCE.9")")));
  EXPECT_EQ(token, "ELyUssGBxVWCVbCE.9");
  EXPECT_THAT(ParseAuthenticate(Body("")),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("token")));
  EXPECT_THAT(ParseAuthenticate(R"({"token":"x"})"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("header")));
}

TEST(V3CodecTest, MemberListGivesClientUrls) {
  ASSERT_OK_AND_ASSIGN(
      std::vector<std::string> urls,
      ParseMemberList(Body(
          R"("members":[{"ID":"1","name":"a","clientURLs":["http://a:2379"]},)"
          R"({"ID":"2","peerURLs":["http://b:2380"]},)"
          R"({"ID":"3","clientURLs":["http://c:2379","http://a:2379"]}])")));
  EXPECT_THAT(urls, ElementsAre("http://a:2379", "http://c:2379"));
  EXPECT_THAT(ParseMemberList(R"({"members":[]})"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("header")));
}

TEST(V3CodecTest, AuthenticateBodyEscapesItsStrings) {
  EXPECT_EQ(AuthenticateBody("al\"ice", "p\\w\n"),
            R"({"name":"al\"ice","password":"p\\w\n"})");
}

}  // namespace
}  // namespace leasehold::registry::etcd_v3_internal
