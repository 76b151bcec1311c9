// The hold lines `leasehold agent -o json` prints, read back: one line per
// hold as it begins (acquired, stole), as it is renewed (renewed) and as it
// ends (released, lost). Begin and renew lines carry the agent's local
// expiry, until which it believes it holds the lease:
//
//   {"time_ns":1764500000123456789,"event":"acquired","lease":"unit-03",
//    "machine":"m1","fence":42,"expiry_ns":1764500002073456789}  (one line)
//
// Whatever judges agents' runs (the agent test, a torture run) reads their
// output with a HoldLineReader per process, into one sim::History:
//
//   sim::History history;
//   sim::HoldLineReader m1(&history);
//   for (std::string line; std::getline(m1_output, line);) {
//     if (absl::Status s = m1.Add(line); !s.ok()) return s;
//   }
//   m1.EndOpen(reaped_at, "killed");  // m1 died holding these: each ends
//                                     // at its last expiry, if earlier
//   sim::Verdict verdict = history.Check();
//
// Thread-safety: ParseHoldLine has no shared state; a HoldLineReader is
// used from one thread, and readers of several processes may share one
// History.
#ifndef LEASEHOLD_TOOLS_SIM_HOLD_LINE_H_
#define LEASEHOLD_TOOLS_SIM_HOLD_LINE_H_

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

struct HoldLine {
  absl::Time at;
  std::string event;  // "acquired", "stole", "released", "lost", ...
  std::string lease;
  std::string machine;
  uint64_t fence = 0;
  // The agent's local expiry after this line, when the line gives one.
  std::optional<absl::Time> expiry;

  // An "acquired" or "stole" line: a hold begins.
  bool begins() const { return event == "acquired" || event == "stole"; }
  bool by_steal() const { return event == "stole"; }
  // A "renewed" line: the hold goes on, until `expiry`.
  bool renews() const { return event == "renewed"; }
};

// The hold on `line`: a JSON object with an integer time_ns >= 0, a
// non-empty string event, lease and machine, an integer fence >= 0 and,
// optionally, an integer expiry_ns >= 0 (other members are ignored; lines
// without expiry_ns, as older agents print them, are read too). nullopt for
// any other line: another event the agent prints, text output, a torn or
// garbled line. Never fails.
std::optional<HoldLine> ParseHoldLine(absl::string_view line);

// Feeds the hold lines of ONE agent process into a History.
class HoldLineReader {
 public:
  // REQUIRES: `history` outlives the reader.
  explicit HoldLineReader(History* history) : history_(history) {}

  // Records the hold line in `line`; other lines are skipped, and so is a
  // renew line of a hold no longer open (the agent reports renews and
  // hand-backs from different threads). kDataLoss, quoting the line, for an
  // end without its begin or a hold begun twice.
  absl::Status Add(absl::string_view line);
  // The History ids of the holds begun and not yet ended.
  std::vector<size_t> open() const;
  // Ends every open hold as `how` (the process died holding them) at `at`,
  // or at the last expiry its lines gave if that came first: the agent had
  // stopped believing then, even if it died before it could say so.
  void EndOpen(absl::Time at, const std::string& how);

 private:
  struct Open {
    size_t hold;  // History id
    absl::Time expiry = absl::InfiniteFuture();
  };
  History* const history_;
  std::map<std::string, Open> open_;  // "lease/fence" → the open hold
};

}  // namespace leasehold::sim

#endif  // LEASEHOLD_TOOLS_SIM_HOLD_LINE_H_
