// One scheduler agent, the machine of `leasehold sim` and of `leasehold
// agent`: it keeps a presence lease, leads as the engine through fleet's
// versioned "engine-leader" lease when nobody does (or steals it, at the
// index it read, from an older version), and claims units up to its fair
// share, all kept alive by its own Keeper.
//
//   History history;
//   Agent agent(keys, {.id = "m1", .units = 50, .ttl = absl::Seconds(2)},
//               &history, [](const std::string& event) { Log(event); });
//   agent.Start(/*version=*/1);
//   while (running) { agent.Step(); Sleep(tick); }
//   agent.Shutdown();  // releases every lease it holds
//
// Every unit and engine hold is recorded in the History, so a run can be
// judged. A crash stops renewing and releases nothing; a pause freezes the
// agent's link to the registry (every call hangs, as in a long GC pause or a
// partition), so its Keeper must find out from its own clock that its leases
// ran out.
//
// Thread-safety: call everything from one thread; the Keeper's callbacks
// only write to the History.
#ifndef LEASEHOLD_TOOLS_SIM_AGENT_H_
#define LEASEHOLD_TOOLS_SIM_AGENT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "lease/keeper.h"
#include "lease/lease_manager.h"
#include "registry/clock.h"
#include "registry/keys_api.h"
#include "tools/sim/history.h"

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
  // REQUIRES: `keys` and `history` outlive the agent. `on_event` gets a line
  // for each notable event (leads, steals, lost a unit, hands one back).
  Agent(registry::KeysApi* keys, AgentOptions options, History* history,
        std::function<void(const std::string&)> on_event);
  ~Agent();

  const std::string& id() const { return options_.id; }
  int version() const { return version_; }
  const std::string& state() const { return state_; }  // up paused crashed…
  bool up() const { return state_ == "up"; }
  bool leader() const;
  int units() const { return static_cast<int>(units_.size()); }
  // Units it holds and has not been told it lost.
  int live_units() const;
  absl::Time back_at() const { return back_at_; }
  uint64_t renews_ok() const;
  uint64_t renews_failed() const;
  // Engine leaderships it took by stealing from an older version.
  int steals() const { return steals_; }

  // Starts (or restarts, as a new incarnation) with `version`.
  void Start(int version);
  // One pass of the agent's loop: drop what it lost, keep its presence, lead
  // if it may, claim units up to its fair share, hand back one above it.
  // Returns the status of reading the leases (the registry's health).
  absl::Status Step();
  // Stops renewing, releases nothing: the leases run out on the server. The
  // machine may come back at `back_at` as a new incarnation.
  void Crash(absl::Time now, absl::Time back_at);
  // Freezes the link to the registry until Resume.
  void Pause(absl::Time now, absl::Time back_at);
  void Resume();
  // Stops, releasing every lease it holds.
  void Shutdown();

 private:
  class Link;
  struct Owned {
    std::shared_ptr<lease::KeptLease> kept;
    size_t hold = 0;
  };

  std::shared_ptr<lease::KeptLease> Keep(const std::string& name,
                                         uint64_t steal_index, bool record);
  void LeadIfEntitled(const lease::Lease* engine);
  void Orphan(absl::Time now);
  void Retire(bool release);

  registry::KeysApi* const keys_;
  const AgentOptions options_;
  History* const history_;
  const std::function<void(const std::string&)> on_event_;
  Clock* const clock_;
  int version_ = 1;
  std::string state_ = "stopped";
  absl::Time back_at_ = absl::InfiniteFuture();
  // How holds end when the Keeper lets go; read by Keeper callbacks.
  std::atomic<const char*> ending_{"lost"};
  std::unique_ptr<Link> link_;
  std::unique_ptr<lease::LeaseManager> manager_;
  std::unique_ptr<lease::Keeper> keeper_;
  std::map<std::string, Owned> units_;
  std::vector<size_t> holds_;
  std::shared_ptr<lease::KeptLease> presence_;
  std::shared_ptr<lease::KeptLease> engine_;
  uint64_t retired_ok_ = 0;
  uint64_t retired_failed_ = 0;
  int steals_ = 0;
};

}  // namespace leasehold::sim

#endif  // LEASEHOLD_TOOLS_SIM_AGENT_H_
