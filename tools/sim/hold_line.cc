#include "tools/sim/hold_line.h"

#include <algorithm>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "registry/json_object.h"

namespace leasehold::sim {

std::optional<HoldLine> ParseHoldLine(absl::string_view line) {
  absl::StatusOr<registry::JsonObject> object =
      registry::JsonObject::Parse(line);
  if (!object.ok()) return std::nullopt;
  const std::optional<int64_t> time_ns = object->GetInt("time_ns");
  const std::optional<int64_t> fence = object->GetInt("fence");
  const std::optional<int64_t> expiry_ns = object->GetInt("expiry_ns");
  std::optional<std::string> event = object->GetString("event");
  std::optional<std::string> lease = object->GetString("lease");
  std::optional<std::string> machine = object->GetString("machine");
  if (!time_ns.has_value() || *time_ns < 0 || !fence.has_value() ||
      *fence < 0 || !event.has_value() || event->empty() ||
      !lease.has_value() || lease->empty() || !machine.has_value() ||
      machine->empty() ||
      (object->Find("expiry_ns") != nullptr &&
       (!expiry_ns.has_value() || *expiry_ns < 0))) {
    return std::nullopt;
  }
  HoldLine hold;
  hold.at = absl::FromUnixNanos(*time_ns);
  hold.event = std::move(*event);
  hold.lease = std::move(*lease);
  hold.machine = std::move(*machine);
  hold.fence = static_cast<uint64_t>(*fence);
  if (expiry_ns.has_value()) hold.expiry = absl::FromUnixNanos(*expiry_ns);
  return hold;
}

absl::Status HoldLineReader::Add(absl::string_view line) {
  std::optional<HoldLine> hold = ParseHoldLine(line);
  if (!hold.has_value()) return absl::OkStatus();
  const std::string id = absl::StrCat(hold->lease, "/", hold->fence);
  auto it = open_.find(id);
  if (hold->begins()) {
    if (it != open_.end()) {
      return absl::DataLossError(absl::StrCat("a hold begun twice: ", line));
    }
    const absl::Time expiry = hold->expiry.value_or(absl::InfiniteFuture());
    open_[id] = {history_->Begin(hold->lease, hold->machine, hold->fence,
                                 hold->at, hold->by_steal(), expiry),
                 expiry};
    return absl::OkStatus();
  }
  if (hold->renews()) {
    if (it != open_.end() && hold->expiry.has_value()) {
      it->second.expiry = *hold->expiry;
      history_->Renewed(it->second.hold, hold->at, *hold->expiry);
    }
    return absl::OkStatus();
  }
  if (it == open_.end()) {
    return absl::DataLossError(absl::StrCat("an end without a begin: ", line));
  }
  history_->End(it->second.hold, hold->at, hold->event);
  open_.erase(it);
  return absl::OkStatus();
}

std::vector<size_t> HoldLineReader::open() const {
  std::vector<size_t> ids;
  for (const auto& [id, open] : open_) ids.push_back(open.hold);
  return ids;
}

void HoldLineReader::EndOpen(absl::Time at, const std::string& how) {
  for (const auto& [id, open] : open_) {
    history_->End(open.hold, std::min(at, open.expiry), how);
  }
  open_.clear();
}

}  // namespace leasehold::sim
