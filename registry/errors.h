// The one place etcd answers become absl::Status, and the accessors that
// keep etcd's own error details reachable.
//
//   absl::StatusOr<Response> r = keys->Set(key, v, {.prev_index = 12});
//   if (auto e = registry::GetEtcdError(r.status())) {
//     LOG(INFO) << e->code << ": " << e->message << " (" << e->cause << ")";
//   }                              // "101: Compare failed ([12 != 14])"
//
// Thread-safety: free functions without shared state.
#ifndef LEASEHOLD_REGISTRY_ERRORS_H_
#define LEASEHOLD_REGISTRY_ERRORS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace leasehold::registry {

// etcd v2 error codes (etcd's error package).
enum EtcdErrorCode : int {
  kEtcdKeyNotFound = 100,
  kEtcdTestFailed = 101,
  kEtcdNotFile = 102,
  kEtcdNotDir = 104,
  kEtcdNodeExist = 105,
  kEtcdRootReadOnly = 107,
  kEtcdDirNotEmpty = 108,
  kEtcdUnauthorized = 110,
  kEtcdValueRequired = 200,
  kEtcdPrevValueRequired = 201,
  kEtcdTtlNaN = 202,
  kEtcdIndexNaN = 203,
  kEtcdInvalidField = 209,
  kEtcdRefreshValue = 211,        // "Value provided on refresh"
  kEtcdRefreshTtlRequired = 212,  // "A TTL must be provided on refresh"
  kEtcdRaftInternal = 300,
  kEtcdLeaderElect = 301,
  kEtcdWatcherCleared = 400,
  kEtcdEventIndexCleared = 401,
};

// etcd's JSON error body: {"errorCode":101,"message":"Compare failed",
// "cause":"[12 != 14]","index":14}.
struct EtcdError {
  int code = 0;
  std::string message;
  std::string cause;
  uint64_t index = 0;
};

// THE mapping from an etcd answer to a status (DESIGN.md's error table).
// `http_status` is the HTTP code (0 when there was none, e.g. the memory
// registry); `error` the parsed body when it was an etcd error body;
// `context` names what was asked ("set /a/b") and starts the message.
// etcd's errorCode decides. Without etcd's error body the answer came from
// something in between (a proxy's HTML 404, 429 or 502, a load balancer's
// page): kUnavailable, whatever its HTTP status, so that the caller moves
// on to another member and never reads "not found" into it. 2xx never
// reaches here.
// For 110 (unauthorized) the caller says whether credentials were sent and
// known to be wrong (kUnauthenticated) or merely insufficient
// (kPermissionDenied) through `bad_credentials`.
absl::Status MapEtcdError(int http_status,
                          const std::optional<EtcdError>& error,
                          absl::string_view context,
                          bool bad_credentials = false);

// The etcd error carried by a status made by MapEtcdError, if any.
std::optional<EtcdError> GetEtcdError(const absl::Status& status);

// `status` with "`context`: " in front of its message; its code and payloads
// (the etcd error, the outcome-unknown mark) are kept.
absl::Status WithContext(const absl::Status& status, absl::string_view context);

// A write whose response was lost: kUnavailable, marked so that callers can
// tell "certainly not applied" from "may have been applied".
absl::Status OutcomeUnknownError(absl::string_view message);
// `status` (its code, message and payloads) marked the same way, for a write
// whose answer arrived but cannot be trusted (kDataLoss: a 2xx whose body
// is not a valid answer). REQUIRES: !status.ok().
absl::Status MarkOutcomeUnknown(const absl::Status& status);
bool IsOutcomeUnknown(const absl::Status& status);

// A TTL as etcd takes it: whole seconds, rounded up. kInvalidArgument for a
// TTL that is not positive or is infinite.
absl::StatusOr<int64_t> TtlSeconds(absl::Duration ttl);

}  // namespace leasehold::registry

#endif  // LEASEHOLD_REGISTRY_ERRORS_H_
