#include "registry/errors.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::registry {
namespace {

using ::leasehold::testing::StatusIs;
using ::testing::HasSubstr;

EtcdError Error(int code, std::string message = "m", std::string cause = "c",
                uint64_t index = 7) {
  return EtcdError{code, std::move(message), std::move(cause), index};
}

struct Mapping {
  int http_status;
  int etcd_code;
  absl::StatusCode expected;
};

class MapEtcdErrorTest : public ::testing::TestWithParam<Mapping> {};

TEST_P(MapEtcdErrorTest, EtcdCodeDecides) {
  EXPECT_THAT(MapEtcdError(GetParam().http_status, Error(GetParam().etcd_code),
                           "op /k"),
              StatusIs(GetParam().expected));
}

INSTANTIATE_TEST_SUITE_P(
    Table, MapEtcdErrorTest,
    ::testing::Values(Mapping{404, 100, absl::StatusCode::kNotFound},
                      Mapping{412, 101, absl::StatusCode::kAborted},
                      Mapping{412, 105, absl::StatusCode::kAlreadyExists},
                      Mapping{403, 102, absl::StatusCode::kFailedPrecondition},
                      Mapping{403, 104, absl::StatusCode::kFailedPrecondition},
                      Mapping{403, 108, absl::StatusCode::kFailedPrecondition},
                      Mapping{401, 110, absl::StatusCode::kPermissionDenied},
                      Mapping{400, 200, absl::StatusCode::kInvalidArgument},
                      Mapping{400, 209, absl::StatusCode::kInvalidArgument},
                      Mapping{400, 401, absl::StatusCode::kOutOfRange},
                      Mapping{500, 300, absl::StatusCode::kUnavailable},
                      Mapping{500, 301, absl::StatusCode::kUnavailable},
                      Mapping{0, 100, absl::StatusCode::kNotFound},
                      // The errorCode wins over a surprising HTTP status.
                      Mapping{500, 101, absl::StatusCode::kAborted}));

TEST(MapEtcdErrorTest, BadCredentialsAreUnauthenticated) {
  EXPECT_THAT(MapEtcdError(401, Error(110), "get /k", /*bad_credentials=*/true),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

// A proxy's 404, 401 or 429 page says nothing about the key: never "not
// found", never "bad credentials" or "bad request".
TEST(MapEtcdErrorTest, WithoutAnEtcdBodyTheAnswerIsNotEtcdsAndUnavailable) {
  for (int http_status : {400, 401, 403, 404, 408, 412, 429, 500, 502, 504}) {
    EXPECT_THAT(MapEtcdError(http_status, std::nullopt, "get /k"),
                StatusIs(absl::StatusCode::kUnavailable,
                         HasSubstr(absl::StrCat("get /k: HTTP ", http_status,
                                                " without etcd's error body"))))
        << http_status;
  }
}

TEST(MapEtcdErrorTest, MessageNamesTheOperationAndEtcdsWords) {
  const absl::Status status = MapEtcdError(
      412, Error(101, "Compare failed", "[12 != 14]", 14), "set \"/a/b\"");
  EXPECT_EQ(status.message(),
            "set \"/a/b\": 101: Compare failed ([12 != 14]) at index 14");
}

TEST(MapEtcdErrorTest, EtcdErrorStaysReachable) {
  const absl::Status status = MapEtcdError(
      412, Error(101, "Compare failed\nwith newline", "[12 != 14]", 14),
      "set /a");
  std::optional<EtcdError> error = GetEtcdError(status);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->code, 101);
  EXPECT_EQ(error->message, "Compare failed\nwith newline");
  EXPECT_EQ(error->cause, "[12 != 14]");
  EXPECT_EQ(error->index, 14u);
}

TEST(MapEtcdErrorTest, NoEtcdErrorOnOtherStatuses) {
  EXPECT_FALSE(GetEtcdError(absl::UnavailableError("x")).has_value());
  EXPECT_FALSE(GetEtcdError(MapEtcdError(503, std::nullopt, "x")).has_value());
}

TEST(OutcomeUnknownTest, IsUnavailableAndMarked) {
  const absl::Status status = OutcomeUnknownError("set \"/a\": response lost");
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kUnavailable,
                               HasSubstr("outcome unknown")));
  EXPECT_TRUE(IsOutcomeUnknown(status));
  EXPECT_FALSE(IsOutcomeUnknown(absl::UnavailableError("connection refused")));
}

TEST(OutcomeUnknownTest, MarkKeepsCodeMessageAndEtcdError) {
  const absl::Status marked = MarkOutcomeUnknown(
      WithContext(absl::DataLossError("malformed etcd response"), "set /a"));
  EXPECT_THAT(marked, StatusIs(absl::StatusCode::kDataLoss,
                               "set /a: malformed etcd response (outcome "
                               "unknown)"));
  EXPECT_TRUE(IsOutcomeUnknown(marked));
  const absl::Status etcd = MarkOutcomeUnknown(MapEtcdError(
      500, Error(300, "Raft Internal Error", "request timed out"), "set /a"));
  EXPECT_TRUE(IsOutcomeUnknown(etcd));
  ASSERT_TRUE(GetEtcdError(etcd).has_value());
  EXPECT_EQ(GetEtcdError(etcd)->code, 300);
}

TEST(TtlSecondsTest, RoundsUpToWholeSeconds) {
  EXPECT_EQ(*TtlSeconds(absl::Seconds(5)), 5);
  EXPECT_EQ(*TtlSeconds(absl::Milliseconds(1)), 1);
  EXPECT_EQ(*TtlSeconds(absl::Milliseconds(1001)), 2);
  EXPECT_EQ(*TtlSeconds(absl::Milliseconds(2500)), 3);
}

TEST(TtlSecondsTest, RejectsZeroNegativeAndInfinite) {
  EXPECT_THAT(TtlSeconds(absl::ZeroDuration()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(TtlSeconds(absl::Seconds(-1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(TtlSeconds(absl::InfiniteDuration()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ttl")));
}

}  // namespace
}  // namespace leasehold::registry
