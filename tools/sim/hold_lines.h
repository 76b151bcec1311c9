// The hold lines `leasehold agent -o json` prints, read back into a History
// so that the output of several agent processes can be judged together by
// the simulation's safety check.
//
//   sim::History history;
//   sim::HoldLineReader m1(&history);
//   for (const std::string& line : m1_output_lines) {
//     if (absl::Status s = m1.Add(line); !s.ok()) return s;
//   }
//   m1.EndOpen(reaped_at, "killed");  // m1 died holding these
//   sim::Verdict verdict = history.Check();
//
// Thread-safety: a HoldLineReader is used from one thread; readers of
// several processes may share one History.
#ifndef LEASEHOLD_TOOLS_SIM_HOLD_LINES_H_
#define LEASEHOLD_TOOLS_SIM_HOLD_LINES_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tools/sim/history.h"

namespace leasehold::sim {

// One line such as
// {"time_ns":1700000000123456789,"event":"acquired","lease":"unit-03","machine":"m1","fence":42}
struct HoldLine {
  absl::Time time;
  std::string event;  // acquired, stole (a hold begins); released, lost
  std::string lease;
  std::string machine;
  uint64_t fence = 0;

  bool begins() const { return event == "acquired" || event == "stole"; }
};

// The hold line in `line`, or nullopt for any other line (notes,
// registry-failing, stopped, a line cut short by a kill).
std::optional<HoldLine> ParseHoldLine(absl::string_view line);

// Feeds the hold lines of ONE agent process into a History.
class HoldLineReader {
 public:
  // REQUIRES: `history` outlives the reader.
  explicit HoldLineReader(History* history) : history_(history) {}

  // Records the hold line in `line`; other lines are skipped. kDataLoss,
  // quoting the line, for an end without its begin or a hold begun twice.
  absl::Status Add(absl::string_view line);
  // The History ids of the holds begun and not yet ended.
  std::vector<size_t> open() const;
  // Ends every open hold at `at` as `how` (the process died holding them).
  void EndOpen(absl::Time at, const std::string& how);

 private:
  History* const history_;
  std::map<std::string, size_t> open_;  // "lease/fence" → hold id
};

}  // namespace leasehold::sim

#endif  // LEASEHOLD_TOOLS_SIM_HOLD_LINES_H_
