// The pictures of `leasehold sim`: the live table redrawn while it runs and
// the ownership timeline (SVG) written at the end. Both scale with the run:
//
// - Up to kMaxTableMachines machines the live table lists every machine;
//   above, it shows one line of totals (machines up, crashed, paused,
//   partitioned; units nobody owns; units per machine as min/median/max)
//   and lists only the machines that changed since the previous tick.
// - Up to kMaxUnitRows units the timeline has one row per unit, coloured by
//   owner; above, one band per machine showing how many units it owned over
//   time. Both have a time axis and mark the faults (crash, pause,
//   partition, steal, return) with a legend.
//
//   LiveTable table(/*tty=*/isatty(STDOUT_FILENO));
//   simulation.Run([&](const Snapshot& s) { table.Draw(std::cout, s); });
//   std::ofstream svg("run.svg");
//   WriteSvg(svg, simulation.Finish());
//
// Thread-safety: a LiveTable belongs to one thread; WriteSvg is a pure
// function of its input.
#ifndef LEASEHOLD_TOOLS_SIM_RENDER_H_
#define LEASEHOLD_TOOLS_SIM_RENDER_H_

#include <map>
#include <ostream>
#include <string>

#include "tools/sim/simulation.h"

namespace leasehold::sim {

// Above this many machines the live table summarises.
inline constexpr int kMaxTableMachines = 10;
// Above this many units the timeline draws one band per machine.
inline constexpr int kMaxUnitRows = 100;

class LiveTable {
 public:
  // `tty`: redraw a full screen in place at each tick; otherwise append one
  // line per tick (for logs and pipes).
  explicit LiveTable(bool tty) : tty_(tty) {}

  // Draws `snapshot`. A machine counts as changed when it is new, or its
  // state, version, leadership or unit count differs from the previous
  // Draw, or it had renews fail since.
  void Draw(std::ostream& out, const Snapshot& snapshot);

 private:
  void DrawEveryMachine(std::ostream& out, const Snapshot& snapshot,
                        const std::string& leader) const;
  void DrawSummary(std::ostream& out, const Snapshot& snapshot,
                   const std::string& leader) const;
  bool Changed(const MachineView& now) const;

  const bool tty_;
  std::map<std::string, MachineView> last_;  // by machine id
};

// Writes the ownership timeline of `report` to `out` as a standalone SVG
// document.
void WriteSvg(std::ostream& out, const Report& report);

}  // namespace leasehold::sim

#endif  // LEASEHOLD_TOOLS_SIM_RENDER_H_
