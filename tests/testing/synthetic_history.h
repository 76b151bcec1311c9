// A simulation history at full scale without running a simulation: for the
// verdict's test and benchmark and the timeline's test.
//
//   std::vector<sim::Hold> holds = SyntheticHolds({.units = 10000});
//   sim::History history;
//   Record(history, holds);
//   sim::Verdict verdict = history.Check();  // SAFE
//
// Each unit passes from owner to owner `holds_per_unit` times over
// `duration`, each hold ending a millisecond before the next one starts,
// with rising fences and owners drawn at random from `machines`: a clean
// history, into which a test may plant a fault.
#ifndef LEASEHOLD_TESTS_TESTING_SYNTHETIC_HISTORY_H_
#define LEASEHOLD_TESTS_TESTING_SYNTHETIC_HISTORY_H_

#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "tools/sim/history.h"

namespace leasehold::testing {

struct SyntheticHistoryOptions {
  int units = 10000;
  int holds_per_unit = 20;
  int machines = 100;
  absl::Time start = absl::FromUnixSeconds(1000);
  absl::Duration duration = absl::Seconds(60);
  uint64_t seed = 1;
};

inline std::vector<sim::Hold> SyntheticHolds(
    const SyntheticHistoryOptions& options) {
  std::mt19937_64 rng(options.seed);
  std::uniform_int_distribution<int> machine(1, options.machines);
  const absl::Duration slot = options.duration / options.holds_per_unit;
  std::vector<sim::Hold> holds;
  holds.reserve(static_cast<size_t>(options.units) * options.holds_per_unit);
  for (int u = 0; u < options.units; ++u) {
    for (int i = 0; i < options.holds_per_unit; ++i) {
      sim::Hold hold;
      hold.lease = absl::StrFormat("unit-%02d", u);
      hold.machine = absl::StrFormat("m%d", machine(rng));
      hold.fence = 1 + 3 * static_cast<uint64_t>(i);
      hold.start = options.start + i * slot;
      hold.end = hold.start + slot - absl::Milliseconds(1);
      hold.how_ended = "released";
      holds.push_back(std::move(hold));
    }
  }
  return holds;
}

// Records `holds` into `history` in the order given.
inline void Record(sim::History& history, const std::vector<sim::Hold>& holds) {
  for (const sim::Hold& hold : holds) {
    const size_t id = history.Begin(hold.lease, hold.machine, hold.fence,
                                    hold.start, hold.by_steal);
    if (hold.end != absl::InfiniteFuture())
      history.End(id, hold.end, hold.how_ended);
  }
}

}  // namespace leasehold::testing

#endif  // LEASEHOLD_TESTS_TESTING_SYNTHETIC_HISTORY_H_
