#include "registry/errors.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace leasehold::registry {
namespace {

constexpr char kEtcdErrorPayload[] = "type.leasehold/etcd-error";
constexpr char kOutcomeUnknownPayload[] = "type.leasehold/outcome-unknown";

absl::StatusCode CodeForEtcdError(int code, bool bad_credentials) {
  switch (code) {
    case kEtcdKeyNotFound:
      return absl::StatusCode::kNotFound;
    case kEtcdTestFailed:
      return absl::StatusCode::kAborted;
    case kEtcdNodeExist:
      return absl::StatusCode::kAlreadyExists;
    case kEtcdNotFile:
    case kEtcdNotDir:
    case kEtcdDirNotEmpty:
    case kEtcdRootReadOnly:
      return absl::StatusCode::kFailedPrecondition;
    case kEtcdUnauthorized:
      return bad_credentials ? absl::StatusCode::kUnauthenticated
                             : absl::StatusCode::kPermissionDenied;
    case kEtcdEventIndexCleared:
    case kEtcdWatcherCleared:
      return absl::StatusCode::kOutOfRange;
    default:
      break;
  }
  if (code >= 200 && code < 300) return absl::StatusCode::kInvalidArgument;
  // 300/301 (raft), 5xx (standby) and anything new: the cluster could not
  // answer this time; retrying the call is the right move.
  return absl::StatusCode::kUnavailable;
}

}  // namespace

absl::Status MapEtcdError(int http_status,
                          const std::optional<EtcdError>& error,
                          absl::string_view context, bool bad_credentials) {
  if (!error.has_value()) {
    return absl::UnavailableError(
        absl::StrCat(context, ": HTTP ", http_status,
                     " without etcd's error body: not an answer from etcd"));
  }
  std::string message =
      absl::StrCat(context, ": ", error->code, ": ", error->message);
  if (!error->cause.empty()) absl::StrAppend(&message, " (", error->cause, ")");
  if (error->index != 0) absl::StrAppend(&message, " at index ", error->index);
  absl::Status status(CodeForEtcdError(error->code, bad_credentials), message);
  status.SetPayload(kEtcdErrorPayload,
                    absl::Cord(absl::StrCat(error->code, "\n", error->index,
                                            "\n", error->message.size(), "\n",
                                            error->message, error->cause)));
  return status;
}

std::optional<EtcdError> GetEtcdError(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kEtcdErrorPayload);
  if (!payload.has_value()) return std::nullopt;
  const std::string text(*payload);
  std::vector<absl::string_view> parts =
      absl::StrSplit(text, absl::MaxSplits('\n', 3));
  EtcdError error;
  size_t message_size = 0;
  if (parts.size() != 4 || !absl::SimpleAtoi(parts[0], &error.code) ||
      !absl::SimpleAtoi(parts[1], &error.index) ||
      !absl::SimpleAtoi(parts[2], &message_size) ||
      message_size > parts[3].size()) {
    return std::nullopt;
  }
  error.message = std::string(parts[3].substr(0, message_size));
  error.cause = std::string(parts[3].substr(message_size));
  return error;
}

absl::Status WithContext(const absl::Status& status,
                         absl::string_view context) {
  absl::Status out(status.code(),
                   absl::StrCat(context, ": ", status.message()));
  status.ForEachPayload([&](absl::string_view type, const absl::Cord& payload) {
    out.SetPayload(type, payload);
  });
  return out;
}

absl::Status OutcomeUnknownError(absl::string_view message) {
  return MarkOutcomeUnknown(absl::UnavailableError(message));
}

absl::Status MarkOutcomeUnknown(const absl::Status& status) {
  absl::Status out(status.code(),
                   absl::StrCat(status.message(), " (outcome unknown)"));
  status.ForEachPayload([&](absl::string_view type, const absl::Cord& payload) {
    out.SetPayload(type, payload);
  });
  out.SetPayload(kOutcomeUnknownPayload, absl::Cord("1"));
  return out;
}

bool IsOutcomeUnknown(const absl::Status& status) {
  return status.GetPayload(kOutcomeUnknownPayload).has_value();
}

absl::StatusOr<int64_t> TtlSeconds(absl::Duration ttl) {
  if (ttl <= absl::ZeroDuration() || ttl == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ttl ", absl::FormatDuration(ttl), ": must be positive and finite"));
  }
  return absl::ToInt64Seconds(absl::Ceil(ttl, absl::Seconds(1)));
}

}  // namespace leasehold::registry
