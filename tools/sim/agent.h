// One scheduler agent, the machine of `leasehold sim` and of `leasehold
// agent`: it keeps a presence lease, leads as the engine through fleet's
// versioned "engine-leader" lease when nobody does (or steals it, at the
// index it read, from an older version), and holds its fair share of the
// units, all kept alive by its own Keeper.
//
//   History history;
//   Agent agent(keys, {.id = "m1", .units = 50, .ttl = absl::Seconds(2)},
//               &history, [](const std::string& event) { Log(event); });
//   agent.Start(/*version=*/1);
//   while (running) { agent.Step(); Sleep(tick); }
//   agent.Shutdown();  // releases every lease it holds
//
// Scheduling. The agent decides from the process's OwnershipView (one watch
// on the lease directory, shared by the agents of a process) with M present
// machines and U units: the fair share is U/M, so every machine should hold
// floor(U/M) or ceil(U/M). It never claims beyond ceil(U/M), and beyond
// floor(U/M) only when no present machine holds fewer than floor(U/M); it
// claims nothing until one presence round (a third of the TTL, when every
// present machine has renewed its presence) has passed since it announced
// its own, so the first machine up does not take everything; and above
// ceil(U/M) it hands back its whole excess in one step.
//
// Every unit and engine hold is recorded in the History, so a run can be
// judged. A crash stops renewing and releases nothing; a pause freezes the
// agent's link to the registry (every call hangs, as in a long GC pause) and
// its loop; a partition hangs its link only (calls end at their deadline),
// while its loop runs on. Either way its Keeper must find out from its own
// clock that its leases ran out.
//
// Thread-safety: Start, Step, Crash, Pause, Partition and Shutdown from one
// thread at a time; Resume and the accessors from any thread (Resume ends a
// hang that a Step may be blocked in). The Keeper's callbacks
// only write to the History.
#ifndef LEASEHOLD_TOOLS_SIM_AGENT_H_
#define LEASEHOLD_TOOLS_SIM_AGENT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "lease/keeper.h"
#include "lease/lease_manager.h"
#include "registry/clock.h"
#include "registry/keys_api.h"
#include "tools/sim/history.h"
#include "tools/sim/ownership_view.h"

namespace leasehold::sim {

struct AgentOptions {
  std::string id;                         // the machine id
  int units = 50;                         // units unit-00 … unit-(units-1)
  absl::Duration ttl = absl::Seconds(2);  // every lease's period
  std::string prefix = "/leasehold/";
  int workers = 4;  // the Keeper's renew workers
  // Every expiry decision and recorded time reads it. Default: RealClock().
  Clock* clock = nullptr;
};

class Agent {
 public:
  enum class State { kStopped, kUp, kPaused, kPartitioned, kCrashed };

  // REQUIRES: `keys` and `history` outlive the agent. `on_event` gets a line
  // for each notable event (leads, steals, lost a unit, hands units back).
  Agent(registry::KeysApi* keys, AgentOptions options, History* history,
        std::function<void(const std::string&)> on_event);
  ~Agent();

  const std::string& id() const { return options_.id; }
  int version() const { return version_; }
  State state() const { return state_; }
  // "stopped", "up", "paused", "partitioned", "crashed".
  const char* state_name() const;
  bool up() const { return state_ == State::kUp; }
  bool leader() const { return leader_; }
  int units() const { return units_count_; }
  // Units it holds and has not been told it lost.
  int live_units() const { return live_units_; }
  absl::Time back_at() const { return back_at_; }
  uint64_t renews_ok() const;
  uint64_t renews_failed() const;
  // Engine leaderships it took by stealing from an older version.
  int steals() const { return steals_; }

  // Starts (or restarts, as a new incarnation) with `version`.
  void Start(int version);
  // One pass of the agent's loop: drop what it lost, keep its presence, lead
  // if it may, claim units up to its fair share or hand back its excess
  // (see the file comment). Returns the status of its registry calls (the
  // registry's health). Does nothing unless up or partitioned.
  absl::Status Step();
  // Stops renewing, releases nothing: the leases run out on the server. The
  // machine may come back at `back_at` as a new incarnation.
  void Crash(absl::Time now, absl::Time back_at);
  // Freezes the link to the registry and the loop until Resume.
  void Pause(absl::Time now, absl::Time back_at);
  // Hangs the link (each call until Resume or its deadline) until Resume;
  // the loop runs on.
  void Partition(absl::Time now, absl::Time back_at);
  // Ends a pause or a partition.
  void Resume();
  // Stops, releasing every lease it holds.
  void Shutdown();

 private:
  class Link;
  struct Owned {
    std::shared_ptr<lease::KeptLease> kept;
    size_t hold = 0;
  };

  absl::StatusOr<std::shared_ptr<lease::KeptLease>> Keep(
      const std::string& name, uint64_t steal_index, bool unit);
  void LeadIfEntitled(const std::optional<OwnershipView::Holder>& engine);
  // Acquires up to `wanted` free units, starting at a random one so that
  // machines claiming at once do not all race for the same units.
  absl::Status Claim(int wanted);
  void HandBack(int excess, int share);
  // Pauses (kPaused) or partitions (kPartitioned) the machine.
  void CutOff(State state, absl::Time now, absl::Time back_at);
  void Orphan(absl::Time now);
  void Retire(bool release);

  registry::KeysApi* const keys_;
  const AgentOptions options_;
  History* const history_;
  const std::function<void(const std::string&)> on_event_;
  Clock* const clock_;
  int version_ = 1;
  std::atomic<State> state_{State::kStopped};
  absl::Time back_at_ = absl::InfiniteFuture();
  // How holds end when the Keeper lets go; read by Keeper callbacks.
  std::atomic<const char*> ending_{"lost"};
  std::shared_ptr<OwnershipView> view_;
  std::mt19937_64 rng_;
  std::unique_ptr<Link> link_;
  std::unique_ptr<lease::LeaseManager> manager_;
  std::unique_ptr<lease::Keeper> keeper_;
  std::map<std::string, Owned> units_;
  std::vector<size_t> holds_;
  std::shared_ptr<lease::KeptLease> presence_;
  std::shared_ptr<lease::KeptLease> engine_;
  // No claims before this: one presence round after announcing itself.
  absl::Time claim_after_ = absl::InfiniteFuture();
  std::atomic<int> units_count_{0};
  std::atomic<int> live_units_{0};
  std::atomic<bool> leader_{false};
  std::atomic<uint64_t> retired_ok_{0};
  std::atomic<uint64_t> retired_failed_{0};
  std::atomic<int> steals_{0};
};

}  // namespace leasehold::sim

#endif  // LEASEHOLD_TOOLS_SIM_AGENT_H_
