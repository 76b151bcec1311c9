#include "tools/sim/hold_line.h"

#include <utility>

#include "absl/status/statusor.h"
#include "registry/json_object.h"

namespace leasehold::sim {

std::optional<HoldLine> ParseHoldLine(absl::string_view line) {
  absl::StatusOr<registry::JsonObject> object =
      registry::JsonObject::Parse(line);
  if (!object.ok()) return std::nullopt;
  const std::optional<int64_t> time_ns = object->GetInt("time_ns");
  const std::optional<int64_t> fence = object->GetInt("fence");
  std::optional<std::string> event = object->GetString("event");
  std::optional<std::string> lease = object->GetString("lease");
  std::optional<std::string> machine = object->GetString("machine");
  if (!time_ns.has_value() || *time_ns < 0 || !fence.has_value() ||
      *fence < 0 || !event.has_value() || event->empty() ||
      !lease.has_value() || lease->empty() || !machine.has_value() ||
      machine->empty()) {
    return std::nullopt;
  }
  HoldLine hold;
  hold.at = absl::FromUnixNanos(*time_ns);
  hold.event = std::move(*event);
  hold.lease = std::move(*lease);
  hold.machine = std::move(*machine);
  hold.fence = static_cast<uint64_t>(*fence);
  return hold;
}

}  // namespace leasehold::sim
