#include "tools/sim/hold_lines.h"

#include <regex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace leasehold::sim {

std::optional<HoldLine> ParseHoldLine(absl::string_view line) {
  static const std::regex kHold(
      R"re(\{"time_ns":(\d+),"event":"(\w+)","lease":"([^"]+)","machine":"([^"]+)","fence":(\d+)\})re");
  std::cmatch m;
  if (!std::regex_match(line.begin(), line.end(), m, kHold)) {
    return std::nullopt;
  }
  int64_t ns = 0;
  HoldLine hold;
  if (!absl::SimpleAtoi(m[1].str(), &ns) ||
      !absl::SimpleAtoi(m[5].str(), &hold.fence)) {
    return std::nullopt;
  }
  hold.time = absl::FromUnixNanos(ns);
  hold.event = m[2].str();
  hold.lease = m[3].str();
  hold.machine = m[4].str();
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
    open_[id] =
        history_->Begin(hold->lease, hold->machine, hold->fence, hold->time,
                        /*by_steal=*/hold->event == "stole");
    return absl::OkStatus();
  }
  if (it == open_.end()) {
    return absl::DataLossError(absl::StrCat("an end without a begin: ", line));
  }
  history_->End(it->second, hold->time, hold->event);
  open_.erase(it);
  return absl::OkStatus();
}

std::vector<size_t> HoldLineReader::open() const {
  std::vector<size_t> ids;
  for (const auto& [id, hold] : open_) ids.push_back(hold);
  return ids;
}

void HoldLineReader::EndOpen(absl::Time at, const std::string& how) {
  for (const auto& [id, hold] : open_) history_->End(hold, at, how);
  open_.clear();
}

}  // namespace leasehold::sim
