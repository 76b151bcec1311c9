// The faults of one leasehold-torture run, drawn from a seed: the same seed
// and options give the same plan, so a run that found something can be
// replayed. Which member is the raft leader is only known when a
// leader/follower fault starts; everything else is fixed by the plan.
//
//   std::vector<Fault> plan = MakeFaultPlan(seed, {.duration =
//   absl::Minutes(10),
//                                                  .agents = 5,
//                                                  .ttl = absl::Seconds(2)});
//   for (const Fault& f : plan) std::cout << Describe(f) << "\n";
//
// Constraints the plan keeps: one member fault (kill, pause, partition) at a
// time, with a pause after each for the member to catch up, so the cluster
// keeps a quorum; one fault at a time per agent and per agent→member link;
// at most half of the agents down at once; nothing during the first
// warm-up and the last settle stretch of the run, so agents start and end
// on a healthy cluster.
//
// Thread-safety: pure functions.
#ifndef LEASEHOLD_TESTS_TORTURE_FAULT_PLAN_H_
#define LEASEHOLD_TESTS_TORTURE_FAULT_PLAN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace leasehold::torture {

enum class FaultKind {
  kKillLeader,       // SIGKILL the raft leader; restarted after `length`
  kKillFollower,     // SIGKILL a follower; restarted after `length`
  kPauseLeader,      // SIGSTOP the raft leader; SIGCONT after `length`
  kPauseFollower,    // SIGSTOP a follower; SIGCONT after `length`
  kPartitionMember,  // `member`'s raft traffic cut; its client port answers
  kDelayLink,        // agent→member link: bytes `delay` late, both ways
  kResetLink,        // agent→member link: every connection reset
  kBlackholeLink,    // agent→member link: bytes vanish, connections stay
  kPauseAgent,       // SIGSTOP the agent; SIGCONT after `length`
  kKillAgent,        // SIGKILL the agent; a new process after `length`
};
constexpr int kFaultKinds = 10;

// Agent i runs as machine "m<i+1>"; member i is "e<i>".
std::string AgentName(int agent);
std::string MemberName(int member);

// "kill-leader", "delay-link", ...
const char* FaultName(FaultKind kind);
bool IsMemberFault(FaultKind kind);  // kill, pause, partition of a member
bool IsLinkFault(FaultKind kind);
bool IsAgentFault(FaultKind kind);

struct Fault {
  absl::Duration at;      // from the start of the run
  absl::Duration length;  // until it is healed
  FaultKind kind = FaultKind::kPauseAgent;
  // Link faults and kPartitionMember: the member. Leader and follower
  // faults find theirs when they start.
  int member = -1;
  // kKillFollower / kPauseFollower: which follower (0 or 1, in member
  // order), so that the choice is the seed's too.
  int follower = 0;
  int agent = -1;                               // agent and link faults
  absl::Duration delay = absl::ZeroDuration();  // kDelayLink
};

struct FaultPlanOptions {
  absl::Duration duration = absl::Seconds(60);  // the whole run
  int agents = 5;
  int members = 3;
  absl::Duration ttl = absl::Seconds(2);       // agent lease period; fault
                                               // lengths scale with it
  absl::Duration mean_gap = absl::Seconds(1);  // between fault starts
};

// The warm-up before the first fault and the calm stretch after the last
// one ends.
absl::Duration WarmUp(const FaultPlanOptions& options);
absl::Duration Settle(const FaultPlanOptions& options);

// In order of `at`.
std::vector<Fault> MakeFaultPlan(uint64_t seed,
                                 const FaultPlanOptions& options);

// "at 12.3s: kill-agent a2 for 2.5s", "delay-link a1→e0 120ms for 3s".
std::string Describe(const Fault& fault);

}  // namespace leasehold::torture

#endif  // LEASEHOLD_TESTS_TORTURE_FAULT_PLAN_H_
