// Whether an agent's own path to a quorum was up, from the faults as
// leasehold-torture applied them; used to tell a lost hold that no client
// could have kept from one that leasehold should have kept.
//
//   Reachability reach({.agents = 5, .ttl = absl::Seconds(2)});
//   reach.Add({.kind = FaultKind::kKillLeader, .member = 1,
//              .start = t0, .end = t1});
//   Reachability::Cause cause = reach.Explain(/*agent=*/0, lost - ttl, lost);
//
// The model: a member counts towards the quorum while no member fault
// (kill, pause, partition) is on it; a quorum is a majority of such members.
// An agent reaches a member while no fault is on their link, but for a
// delay whose round trip stays under a tenth of the TTL. An agent's path to
// a quorum is up while the agent runs (no pause or kill) and reaches at least
// one member that counts towards a quorum. A raft election after a leader
// fault does not count as a cut: the cluster survives it, so should leases
// (with a TTL well above the election time: at least 5 s for etcd's default
// 1 s election timeout).
//
// What the model cannot see is measured: when the cluster itself committed
// writes (a probe's answers, Committed). A stretch of at least half a TTL
// without a commit (repeated elections, a member that rejoins with a higher
// term and deposes the leader, members starved on a loaded machine) is a
// cluster outage: no client could renew through it, and Explain says so
// apart from the path.
//
// Thread-safety: Add and Committed from one thread; Explain once nothing is
// added.
#ifndef LEASEHOLD_TESTS_TORTURE_REACHABILITY_H_
#define LEASEHOLD_TESTS_TORTURE_REACHABILITY_H_

#include <set>
#include <vector>

#include "absl/time/time.h"
#include "tests/torture/fault_plan.h"

namespace leasehold::torture {

struct ReachabilityOptions {
  int agents = 5;
  int members = 3;
  absl::Duration ttl = absl::Seconds(2);
};

// A fault as applied: `member` is resolved for leader and follower faults.
struct AppliedFault {
  FaultKind kind = FaultKind::kPauseAgent;
  int member = -1;
  int agent = -1;
  absl::Duration delay = absl::ZeroDuration();
  absl::Time start;
  absl::Time end = absl::InfiniteFuture();  // healed at; open while active
};

class Reachability {
 public:
  explicit Reachability(ReachabilityOptions options)
      : options_(std::move(options)) {}

  void Add(const AppliedFault& fault) { faults_.push_back(fault); }
  // A write the cluster committed, answered at `at` (in increasing order).
  // With none recorded, the cluster is taken to commit throughout.
  void Committed(absl::Time at) { commits_.push_back(at); }
  // Ends the open fault added last that matches kind, member and agent.
  void Heal(FaultKind kind, int member, int agent, absl::Time at);

  struct Cause {
    bool agent_down = false;  // the agent itself was paused or killed
    bool path_down = false;   // its path to a quorum was cut at some moment
    // The cluster committed nothing for at least half a TTL meanwhile.
    bool cluster_out = false;
    // Kinds of the faults in force meanwhile on the agent, its links or the
    // members.
    std::set<FaultKind> faults;
  };
  // What stood between `agent` and a quorum during [from, to].
  Cause Explain(int agent, absl::Time from, absl::Time to) const;
  // Whether `agent`'s path to a quorum was up at `t`.
  bool PathUp(int agent, absl::Time t) const;

 private:
  bool Concerns(const AppliedFault& f, int agent) const;
  // The longest stretch within [from, to] with no commit recorded.
  absl::Duration LongestWithoutCommit(absl::Time from, absl::Time to) const;

  const ReachabilityOptions options_;
  std::vector<AppliedFault> faults_;
  std::vector<absl::Time> commits_;
};

}  // namespace leasehold::torture

#endif  // LEASEHOLD_TESTS_TORTURE_REACHABILITY_H_
