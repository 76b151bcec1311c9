// The hold lines `leasehold agent -o json` prints, read back: one line per
// hold as it begins (acquired, stole) and as it ends (released, lost):
//
//   {"time_ns":1764500000123456789,"event":"acquired","lease":"unit-03",
//    "machine":"m1","fence":42}                              (on one line)
//
// Whatever judges agents' runs (the agent test, a torture run) reads their
// output with ParseHoldLine and replays it into a sim::History.
//
//   for (std::string line; std::getline(output, line);) {
//     std::optional<HoldLine> hold = ParseHoldLine(line);
//     if (!hold.has_value()) continue;  // another event, or not JSON
//     ...
//   }
//
// Thread-safety: free functions without shared state.
#ifndef LEASEHOLD_TOOLS_SIM_HOLD_LINE_H_
#define LEASEHOLD_TOOLS_SIM_HOLD_LINE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace leasehold::sim {

struct HoldLine {
  absl::Time at;
  std::string event;  // "acquired", "stole", "released", "lost", ...
  std::string lease;
  std::string machine;
  uint64_t fence = 0;

  // An "acquired" or "stole" line: a hold begins.
  bool begins() const { return event == "acquired" || event == "stole"; }
  bool by_steal() const { return event == "stole"; }
};

// The hold on `line`: a JSON object with an integer time_ns >= 0, a
// non-empty string event, lease and machine, and an integer fence >= 0
// (other members are ignored). nullopt for any other line: another event
// the agent prints, text output, a torn or garbled line. Never fails.
std::optional<HoldLine> ParseHoldLine(absl::string_view line);

}  // namespace leasehold::sim

#endif  // LEASEHOLD_TOOLS_SIM_HOLD_LINE_H_
