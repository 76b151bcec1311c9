// The agent's hold lines read back (tools/sim/hold_line.h): any line is a
// hold or not one, never a crash; a hold has what judging it needs.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>

#include "absl/strings/string_view.h"
#include "tools/sim/hold_line.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::optional<leasehold::sim::HoldLine> hold =
      leasehold::sim::ParseHoldLine(
          absl::string_view(reinterpret_cast<const char*>(data), size));
  if (!hold.has_value()) return 0;
  if (hold->event.empty() || hold->lease.empty() || hold->machine.empty() ||
      hold->at < absl::UnixEpoch() ||
      (hold->expiry.has_value() && *hold->expiry < absl::UnixEpoch())) {
    std::abort();
  }
  return 0;
}
