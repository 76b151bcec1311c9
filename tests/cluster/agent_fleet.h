// AgentFleet: scheduler agents (tools/sim/agent.h: LeaseManager + Keeper)
// holding units on an etcd cluster while a test injects faults, and the
// verdict on what they believed.
//
//   ASSERT_OK_AND_ASSIGN(auto cluster, EtcdCluster::Start());
//   AgentFleet fleet(*cluster, {.agents = 3, .units = 6});
//   ASSERT_TRUE(fleet.WaitSettled(absl::Seconds(60)));
//   ... kill the leader, watch for TTL + margin ...
//   fleet.Stop();
//   EXPECT_THAT(fleet.Lost(), IsEmpty());
//   EXPECT_TRUE(fleet.Verdict().safe);
//
// The agents speak the cluster's v2 keys API (api "etcd") or its v3 API
// ("etcd3"). Each agent runs on its own thread with its own registry client,
// stepping as `leasehold agent` does; every hold goes to one sim::History.
// Agent i prefers member i (of the cluster's members, in turn), so whichever
// member fails, some agent was talking to it.
//
// Thread-safety: methods are called from the test's thread.
#ifndef LEASEHOLD_TESTS_CLUSTER_AGENT_FLEET_H_
#define LEASEHOLD_TESTS_CLUSTER_AGENT_FLEET_H_

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "registry/keys_api.h"
#include "tests/testing/etcd_cluster.h"
#include "tools/sim/history.h"

namespace leasehold::testing {

struct AgentFleetOptions {
  // The API the agents speak: "etcd" (v2) or "etcd3" (v3).
  std::string api = "etcd";
  int agents = 3;
  int units = 6;
  // Every lease's TTL; renewed at the Keeper's default interval (TTL / 3).
  absl::Duration ttl = absl::Seconds(5);
};

// A hold that ended, with when its holder was told.
struct EndedHold {
  sim::Hold hold;
  // How long after the hold's end (its local expiry, if it ran out) the
  // agent was told: how late a "lost" was reported.
  absl::Duration told_late;
};

class AgentFleet {
 public:
  // Starts the agents (machines m1..mN) on every member of `cluster`.
  AgentFleet(const EtcdCluster& cluster, AgentFleetOptions options);
  ~AgentFleet();  // Stop()

  // Waits until the agents believe they hold every unit between them.
  bool WaitSettled(absl::Duration within);
  // Units the agents believe they hold, summed.
  int live_units() const;
  // Stops every agent; each releases what it holds. Idempotent.
  void Stop();
  // The API the agents speak.
  const std::string& api() const { return options_.api; }

  // Holds that ended because the holder's Keeper reported them lost.
  std::vector<EndedHold> Lost() const ABSL_LOCKS_EXCLUDED(mu_);
  // No two holds of a lease overlapped, fences only grew.
  sim::Verdict Verdict() const { return history_.Check(); }
  std::vector<sim::Hold> holds() const { return history_.holds(); }

 private:
  void Run(int i);

  // Agent i's client, or the error opening it.
  std::vector<absl::StatusOr<std::unique_ptr<registry::KeysApi>>> keys_;
  const AgentFleetOptions options_;
  sim::History history_;
  std::atomic<bool> stop_{false};
  std::unique_ptr<std::atomic<int>[]> live_;
  std::vector<std::thread> threads_;
  mutable std::mutex mu_;
  std::vector<EndedHold> lost_ ABSL_GUARDED_BY(mu_);
};

// One fleet per API of `apis` ("etcd" for v2, "etcd3" for v3), all on
// `cluster` at once with `options` (its api set per fleet). The two APIs'
// keys live apart, so each fleet meets the same faults without seeing the
// other.
std::vector<std::unique_ptr<AgentFleet>> FleetPerApi(
    const EtcdCluster& cluster, AgentFleetOptions options,
    const std::vector<std::string>& apis = EtcdApis());

// Runs `rounds` rounds of a fault the cluster survives against a fleet of
// agents per API of `apis` (FleetPerApi; AgentFleetOptions defaults: 3 agents,
// 6 units, TTL 5 s): waits until every fleet holds every unit, `inject`s the
// fault (it returns the member it hit), watches for `watch` (stopping at the
// first lost hold), brings the member back (restart or resume) and waits
// until the cluster is healthy. After the last round it watches once more,
// stops the fleets, and expects of each no hold lost and no two holders at
// once (gtest failures naming the API).
void ExpectNoHoldLost(EtcdCluster& cluster, int rounds, absl::Duration watch,
                      const std::function<absl::StatusOr<int>()>& inject,
                      const std::vector<std::string>& apis = EtcdApis());

// The rounds a fault test runs: $LEASEHOLD_CLUSTER_ROUNDS if set (the full
// targets use 10), else `ci_default`.
int Rounds(int ci_default);

// Describes holds for a failure message, one per line.
std::string Describe(const std::vector<EndedHold>& holds);

}  // namespace leasehold::testing

#endif  // LEASEHOLD_TESTS_CLUSTER_AGENT_FLEET_H_
