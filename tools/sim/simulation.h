// The scheduler simulation behind `leasehold sim`: machines (agents) own
// units through leases, one agent leads as the engine through fleet's
// versioned "engine-leader" lease, and agents crash, pause and restart while
// units fail over to the survivors.
//
//   Simulation sim(keys, {.machines = 5, .units = 50, .ttl =
//   absl::Seconds(2)}); sim.Run([&](const Snapshot& s) { Draw(s); });   //
//   blocks for `duration` Report report = sim.Finish();                    //
//   verdict, figures
//
// Each machine is an Agent (tools/sim/agent.h) with its own LeaseManager and
// Keeper on a link to the shared registry. A crash destroys the agent's
// Keeper without releasing anything; a pause freezes its link; a restart is
// a new incarnation. An agent restarted after the halfway mark runs a newer
// version and steals the engine leadership at the index it read, as fleet's
// engine upgrade does.
//
// Thread-safety: Run and Finish from one thread; the snapshot callback runs
// on that thread.
#ifndef LEASEHOLD_TOOLS_SIM_SIMULATION_H_
#define LEASEHOLD_TOOLS_SIM_SIMULATION_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "registry/clock.h"
#include "registry/keys_api.h"
#include "tools/sim/agent.h"
#include "tools/sim/history.h"

namespace leasehold::sim {

struct SimOptions {
  int machines = 5;
  int units = 50;
  absl::Duration ttl = absl::Seconds(2);
  absl::Duration duration = absl::Seconds(20);
  absl::Duration crash_every = absl::Seconds(5);  // zero: never
  absl::Duration pause_every = absl::Seconds(7);  // zero: never
  uint64_t seed = 1;
  // Keys live under this prefix (a fresh one per run keeps runs apart).
  std::string prefix = "/leasehold-sim/";
  // How often each agent looks for units to claim.
  absl::Duration tick = absl::Milliseconds(100);
};

struct MachineView {
  std::string id;
  int version = 1;
  std::string state;  // "up", "paused", "crashed"
  int units = 0;
  uint64_t renews_ok = 0;
  uint64_t renews_failed = 0;
  bool leader = false;
};

struct Snapshot {
  absl::Duration elapsed;
  std::vector<MachineView> machines;
  int unowned = 0;
  std::vector<std::string> recent_events;  // newest last
};

// One injected fault or notable turn of a machine, for the renderer's
// markers.
struct Fault {
  absl::Time at;
  std::string machine;
  // "crash", "pause" (the machine and its link freeze), "partition" (only
  // the link hangs), "steal" (it took the engine over by index), "return"
  // (back from a crash, pause or partition).
  std::string kind;
};

struct Report {
  Verdict verdict;
  std::vector<Hold> holds;
  std::vector<std::string> machines;  // every machine's id, in order
  std::vector<Fault> faults;          // in time order
  std::vector<absl::Duration> failovers;
  std::vector<std::pair<absl::Duration, int>> unowned;  // over time
  uint64_t renews_ok = 0;
  uint64_t renews_failed = 0;
  int steals = 0;
  // After each steal: how long the deposed holder went on believing.
  std::vector<absl::Duration> deposed_told_after;
  bool all_units_owned_at_end = false;
  absl::Time start;
  absl::Time end;
};

class Simulation {
 public:
  // REQUIRES: `keys` outlives the simulation.
  Simulation(registry::KeysApi* keys, SimOptions options);
  ~Simulation();

  // Runs for options.duration, calling `on_tick` about twice a second.
  void Run(const std::function<void(const Snapshot&)>& on_tick);
  // Stops every agent (releasing its leases) and judges the history.
  Report Finish();

 private:
  void MaybeInjectFault(absl::Time now);
  Snapshot TakeSnapshot(absl::Time now);
  void Event(const std::string& text);

  registry::KeysApi* const keys_;
  const SimOptions options_;
  Clock* const clock_;
  std::mt19937_64 rng_;
  History history_;
  std::vector<std::unique_ptr<Agent>> agents_;
  std::deque<std::string> events_;
  std::mutex events_mu_;
  std::vector<Fault> faults_;
  std::vector<std::pair<absl::Duration, int>> unowned_;
  absl::Time start_;
  absl::Time next_crash_;
  absl::Time next_pause_;
  bool upgraded_ = false;
  bool all_owned_at_end_ = false;
};

}  // namespace leasehold::sim

#endif  // LEASEHOLD_TOOLS_SIM_SIMULATION_H_
