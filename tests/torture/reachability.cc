#include "tests/torture/reachability.h"

#include <algorithm>

namespace leasehold::torture {

void Reachability::Heal(FaultKind kind, int member, int agent, absl::Time at) {
  for (auto it = faults_.rbegin(); it != faults_.rend(); ++it) {
    if (it->kind == kind && it->member == member && it->agent == agent &&
        it->end == absl::InfiniteFuture()) {
      it->end = at;
      return;
    }
  }
}

bool Reachability::Concerns(const AppliedFault& f, int agent) const {
  return IsMemberFault(f.kind) || f.agent == agent;
}

bool Reachability::PathUp(int agent, absl::Time t) const {
  std::vector<bool> counts(options_.members, true);
  std::vector<bool> reached(options_.members, true);
  for (const AppliedFault& f : faults_) {
    if (!(f.start <= t && t < f.end) || !Concerns(f, agent)) continue;
    if (IsAgentFault(f.kind)) return false;
    if (IsMemberFault(f.kind)) {
      counts[f.member] = false;
    } else if (f.kind != FaultKind::kDelayLink ||
               2 * f.delay >= options_.ttl / 10) {
      reached[f.member] = false;
    }
  }
  int quorum = 0;
  bool reaches_one = false;
  for (int m = 0; m < options_.members; ++m) {
    quorum += counts[m] ? 1 : 0;
    reaches_one = reaches_one || (counts[m] && reached[m]);
  }
  return 2 * quorum > options_.members && reaches_one;
}

absl::Duration Reachability::LongestWithoutCommit(absl::Time from,
                                                  absl::Time to) const {
  if (commits_.empty()) return absl::ZeroDuration();
  absl::Duration longest = absl::ZeroDuration();
  absl::Time last = from;
  for (auto it = std::upper_bound(commits_.begin(), commits_.end(), from);
       it != commits_.end() && *it <= to; ++it) {
    longest = std::max(longest, *it - last);
    last = *it;
  }
  return std::max(longest, to - last);
}

Reachability::Cause Reachability::Explain(int agent, absl::Time from,
                                          absl::Time to) const {
  Cause cause;
  // The path changes only where a fault starts or ends.
  std::vector<absl::Time> moments = {from};
  for (const AppliedFault& f : faults_) {
    if (!Concerns(f, agent) || f.end <= from || f.start > to) continue;
    cause.faults.insert(f.kind);
    if (IsAgentFault(f.kind)) cause.agent_down = true;
    if (f.start > from) moments.push_back(f.start);
    if (f.end <= to) moments.push_back(f.end);
  }
  for (absl::Time t : moments) {
    if (!PathUp(agent, t)) cause.path_down = true;
  }
  cause.cluster_out = LongestWithoutCommit(from, to) >= options_.ttl / 2;
  return cause;
}

}  // namespace leasehold::torture
