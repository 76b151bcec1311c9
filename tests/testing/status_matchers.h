// GoogleTest matchers for absl::Status and absl::StatusOr (abseil 20220623
// ships none).
//
//   EXPECT_THAT(keys->Get("/x", {}), StatusIs(absl::StatusCode::kNotFound));
//   EXPECT_THAT(keys->Set("/x", "1", {}), IsOk());
//   ASSERT_OK_AND_ASSIGN(Response r, keys->Get("/x", {}));
#ifndef LEASEHOLD_TESTS_TESTING_STATUS_MATCHERS_H_
#define LEASEHOLD_TESTS_TESTING_STATUS_MATCHERS_H_

#include <ostream>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"

namespace leasehold::testing {

inline const absl::Status& GetStatus(const absl::Status& status) {
  return status;
}
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& status = GetStatus(arg);
  if (!status.ok()) *result_listener << "status is " << status;
  return status.ok();
}

MATCHER_P(StatusIs, code, "has status code " + absl::StatusCodeToString(code)) {
  const absl::Status& status = GetStatus(arg);
  *result_listener << "status is " << status;
  return status.code() == code;
}

MATCHER_P2(StatusIs, code, message_matcher,
           "has status code " + absl::StatusCodeToString(code) +
               " and a message that " +
               ::testing::DescribeMatcher<std::string>(message_matcher)) {
  const absl::Status& status = GetStatus(arg);
  *result_listener << "status is " << status;
  return status.code() == code &&
         ::testing::Matches(message_matcher)(std::string(status.message()));
}

}  // namespace leasehold::testing

#define LEASEHOLD_CONCAT_INNER_(a, b) a##b
#define LEASEHOLD_CONCAT_(a, b) LEASEHOLD_CONCAT_INNER_(a, b)
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL_(LEASEHOLD_CONCAT_(status_or_, __LINE__), lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  ASSERT_TRUE(tmp.ok()) << tmp.status();           \
  lhs = std::move(tmp).value()
#define ASSERT_OK(expr) ASSERT_THAT((expr), ::leasehold::testing::IsOk())
#define EXPECT_OK(expr) EXPECT_THAT((expr), ::leasehold::testing::IsOk())

#endif  // LEASEHOLD_TESTS_TESTING_STATUS_MATCHERS_H_
