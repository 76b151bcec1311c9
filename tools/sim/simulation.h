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
// Each machine is an Agent (tools/sim/agent.h) with its own loop thread,
// LeaseManager and Keeper on a link to the shared registry; the agents share
// one OwnershipView (one watch). Faults pick their machine weighted by the
// units it owns. A crash destroys the agent's Keeper without releasing
// anything; a pause freezes its link and its loop; a partition hangs its
// link while its loop runs on; a restart is a new incarnation. An agent
// restarted after the halfway mark runs a newer version and steals the engine
// leadership at the index it read, as fleet's engine upgrade does.
//
// Thread-safety: Run and Finish from one thread; the snapshot callback runs
// on that thread.
#ifndef LEASEHOLD_TOOLS_SIM_SIMULATION_H_
#define LEASEHOLD_TOOLS_SIM_SIMULATION_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
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
  // A partition hangs a machine's link for 2 × TTL. Zero: never.
  absl::Duration partition_every = absl::Seconds(9);
  uint64_t seed = 1;
  // Keys live under this prefix (a fresh one per run keeps runs apart).
  std::string prefix = "/leasehold-sim/";
  // How often each agent looks for units to claim.
  absl::Duration tick = absl::Milliseconds(100);
};

struct MachineView {
  std::string id;
  int version = 1;
  std::string state;  // "up", "paused", "partitioned", "crashed"
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

// From one turn of the run (its start, or a fault or return) until every
// machine that is up holds within ±1 unit of its fair share (units / machines
// up) and every unit is owned by one of them.
struct Phase {
  absl::Time at;
  std::string what;  // "start", or a Fault's "<machine> <kind>"
  // Unset when the next turn came first.
  std::optional<absl::Duration> balanced_after;
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
  // After each loss its holder was told of while its link hung (pause or
  // partition): how long before the next owner took the unit over.
  std::vector<absl::Duration> told_ahead_of_next_owner;
  std::vector<Phase> phases;
  // The process's CPU time (user + system, getrusage) during the run: the
  // agents, and on mem: the registry too.
  absl::Duration cpu;
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
  // An agent and the thread that runs its loop.
  struct Machine {
    std::unique_ptr<Agent> agent;
    // Held by the loop while it steps; by the run's thread while it
    // crashes, pauses, partitions or restarts the agent.
    std::mutex mu;
    std::condition_variable cv;
    std::thread loop;
  };

  void Loop(Machine& machine);
  void MaybeInjectFault(absl::Time now);
  // A machine that is up, weighted by the units it owns; nullptr when fewer
  // than two are up.
  Machine* PickVictim();
  void Record(absl::Time at, const Agent& agent, const std::string& kind);
  bool Balanced() const;
  Snapshot TakeSnapshot(absl::Time now);
  void Event(const std::string& text);
  void StopLoops();

  registry::KeysApi* const keys_;
  const SimOptions options_;
  Clock* const clock_;
  std::mt19937_64 rng_;
  History history_;
  std::vector<std::unique_ptr<Machine>> machines_;
  std::atomic<bool> stopping_{false};
  std::deque<std::string> events_;
  std::mutex events_mu_;
  std::mutex faults_mu_;
  std::vector<Fault> faults_ ABSL_GUARDED_BY(faults_mu_);
  std::vector<Phase> phases_;
  std::vector<std::pair<absl::Duration, int>> unowned_;
  absl::Time start_;
  absl::Time next_crash_;
  absl::Time next_pause_;
  absl::Time next_partition_;
  absl::Duration cpu_;
  bool upgraded_ = false;
  bool all_owned_at_end_ = false;
};

}  // namespace leasehold::sim

#endif  // LEASEHOLD_TOOLS_SIM_SIMULATION_H_
