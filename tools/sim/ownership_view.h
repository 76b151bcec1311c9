// OwnershipView: a process's picture of who holds which lease of a
// scheduler, kept from one watch on the lease directory.
//
// Every agent of `leasehold sim` (and the one of `leasehold agent`) decides
// what to claim and what to hand back from this picture: which machines are
// present (their "machine-<id>" presence leases), who leads the engine, who
// holds each unit and which units are free. Listing the lease directory on
// every step costs O(machines × units) per round; instead the view reads
// the directory once and then follows it through the process's shared
// watch on the prefix (lease/watch_hub.h), so a step costs what the agent
// looks at, and all the agents of a process share one picture and one
// watch connection.
//
// The picture trails the registry by the time an event takes to arrive: it
// guides choices (an acquire or steal is still a compare-and-swap on the
// registry), never an owner's belief.
//
//   absl::StatusOr<std::shared_ptr<OwnershipView>> view =
//       OwnershipView::Shared(keys, clock, "/leasehold/", /*units=*/50);
//   if (!view.ok()) return view.status();
//   OwnershipView::Summary now = (*view)->Summarize();
//   for (const std::string& unit : (*view)->FreeUnits(/*from=*/7, 3)) ...
//
// Thread-safety: safe from any thread.
#ifndef LEASEHOLD_TOOLS_SIM_OWNERSHIP_VIEW_H_
#define LEASEHOLD_TOOLS_SIM_OWNERSHIP_VIEW_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lease/watch_hub.h"
#include "registry/cancel.h"
#include "registry/clock.h"
#include "registry/keys_api.h"

namespace leasehold::sim {

// The lease names of the scheduler.
inline constexpr char kEngineLease[] = "engine-leader";
inline constexpr char kPresencePrefix[] = "machine-";
// Unit i's lease name: unit-00, unit-01, … unit-9999.
std::string UnitName(int i);

class OwnershipView {
 public:
  struct Holder {
    std::string machine_id;
    int64_t version = 0;
  };
  struct Summary {
    int machines = 0;  // present machines (live presence leases)
    int free_units = 0;
    // The fewest units any present machine holds (0 when none is present).
    int fewest_units = 0;
    std::optional<Holder> engine;
  };

  // The view of `units` units under `prefix` (LeaseManagerOptions::prefix)
  // on `keys`, shared by every caller in the process that asks for the same
  // one while any of them holds it. Errors: the first read of the lease
  // directory or the start of the watch failed.
  static absl::StatusOr<std::shared_ptr<OwnershipView>> Shared(
      registry::KeysApi* keys, Clock* clock, const std::string& prefix,
      int units);

  ~OwnershipView();

  Summary Summarize() const;
  // How many units `machine_id` holds.
  int UnitsOf(const std::string& machine_id) const;
  // Up to `max` free units, the first at or after unit `from` (wrapping
  // around), in unit order.
  std::vector<std::string> FreeUnits(int from, int max) const;

 private:
  OwnershipView(registry::KeysApi* keys, Clock* clock, std::string prefix,
                int units);
  // Reads the directory and replaces the picture; returns the read's index.
  absl::StatusOr<uint64_t> Reload();
  // On follower_: applies the watch's events until stop_ fires.
  void Follow();
  void Apply(const registry::Response& event);
  void Put(const std::string& name, Holder holder)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Drop(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Clear() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The unit number of a unit lease's name; -1 for other names.
  int UnitNumber(const std::string& name) const;

  registry::KeysApi* const keys_;
  Clock* const clock_;
  const std::string prefix_;
  const std::string dir_;  // <prefix>lease/
  const int units_;
  std::unique_ptr<lease::internal::WatchHub::Subscription> subscription_;
  CancelToken stop_;
  std::thread follower_;

  mutable std::mutex mu_;
  std::unordered_map<std::string, Holder> holders_ ABSL_GUARDED_BY(mu_);
  std::set<int> free_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> units_of_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> present_ ABSL_GUARDED_BY(mu_);
};

}  // namespace leasehold::sim

#endif  // LEASEHOLD_TOOLS_SIM_OWNERSHIP_VIEW_H_
