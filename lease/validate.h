// Input checks shared by the lease API: names, machine ids and periods.
//
//   absl::Status s = lease::ValidateName("lease name", "engine/leader");
//   // kInvalidArgument: lease name "engine/leader": must not contain '/'
//   absl::StatusOr<absl::Duration> p =
//   lease::RoundPeriod(absl::Milliseconds(1500));
//   // 2 s: etcd TTLs are whole seconds, so periods round UP
//
// Thread-safety: free functions without shared state.
#ifndef LEASEHOLD_LEASE_VALIDATE_H_
#define LEASEHOLD_LEASE_VALIDATE_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace leasehold::lease {

// Longest accepted name or machine id, in bytes.
inline constexpr size_t kMaxNameBytes = 255;

// OK, or kInvalidArgument naming `field` ("lease name", "machine id") when
// `value` is empty, "." , contains '/' or "..", contains a control character
// (bytes 0x00-0x1f, 0x7f) or is longer than kMaxNameBytes.
absl::Status ValidateName(absl::string_view field, absl::string_view value);

// The TTL a period becomes: rounded UP to whole seconds, at least 1 s
// (1.2 s → 2 s, 300 ms → 1 s). kInvalidArgument for a period that is zero,
// negative or infinite.
absl::StatusOr<absl::Duration> RoundPeriod(absl::Duration period);

}  // namespace leasehold::lease

#endif  // LEASEHOLD_LEASE_VALIDATE_H_
