// Lease values (lease/lease_value.h): whatever a key holds - fleet's JSON,
// a bare machine id, garbage - decodes without failing, and what leasehold
// writes for a decoded value decodes back to the same value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "lease/lease_value.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using leasehold::lease::DecodeLeaseValue;
  using leasehold::lease::EncodeLeaseValue;
  using leasehold::lease::LeaseValue;
  const LeaseValue value = DecodeLeaseValue(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  const std::string encoded = EncodeLeaseValue(value);
  const LeaseValue again = DecodeLeaseValue(encoded);
  if (again.machine_id != value.machine_id || again.version != value.version ||
      again.token != value.token) {
    std::abort();
  }
  return 0;
}
