#include "tests/torture/fault_plan.h"

#include <algorithm>
#include <map>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace leasehold::torture {
namespace {

// mt19937_64 is specified bit for bit by the standard, unlike the standard
// distributions, so plans are the same with every standard library.
class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  double Unit() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  int Below(int n) { return static_cast<int>(engine_() % uint64_t(n)); }
  absl::Duration Between(absl::Duration lo, absl::Duration hi) {
    return lo + (hi - lo) * Unit();
  }

 private:
  std::mt19937_64 engine_;
};

struct Weight {
  FaultKind kind;
  int weight;
};
// Agent faults move the most units; member faults are the rarest since only
// one runs at a time.
constexpr Weight kWeights[] = {
    {FaultKind::kKillLeader, 2},      {FaultKind::kKillFollower, 2},
    {FaultKind::kPauseLeader, 2},     {FaultKind::kPauseFollower, 2},
    {FaultKind::kPartitionMember, 3}, {FaultKind::kDelayLink, 4},
    {FaultKind::kResetLink, 4},       {FaultKind::kBlackholeLink, 3},
    {FaultKind::kPauseAgent, 6},      {FaultKind::kKillAgent, 6},
};

FaultKind Draw(Rng& rng) {
  int total = 0;
  for (const Weight& w : kWeights) total += w.weight;
  int pick = rng.Below(total);
  for (const Weight& w : kWeights) {
    if (pick < w.weight) return w.kind;
    pick -= w.weight;
  }
  return kWeights[0].kind;
}

// How long a member needs after a fault to be a full member again
// (restart, catch up, a new election settled).
constexpr absl::Duration kMemberCatchUp = absl::Seconds(3);

}  // namespace

std::string AgentName(int agent) { return absl::StrCat("m", agent + 1); }
std::string MemberName(int member) { return absl::StrCat("e", member); }

const char* FaultName(FaultKind kind) {
  switch (kind) {
    case FaultKind::kKillLeader:
      return "kill-leader";
    case FaultKind::kKillFollower:
      return "kill-follower";
    case FaultKind::kPauseLeader:
      return "pause-leader";
    case FaultKind::kPauseFollower:
      return "pause-follower";
    case FaultKind::kPartitionMember:
      return "partition-member";
    case FaultKind::kDelayLink:
      return "delay-link";
    case FaultKind::kResetLink:
      return "reset-link";
    case FaultKind::kBlackholeLink:
      return "blackhole-link";
    case FaultKind::kPauseAgent:
      return "pause-agent";
    case FaultKind::kKillAgent:
      return "kill-agent";
  }
  return "?";
}

bool IsMemberFault(FaultKind kind) {
  return kind == FaultKind::kKillLeader || kind == FaultKind::kKillFollower ||
         kind == FaultKind::kPauseLeader || kind == FaultKind::kPauseFollower ||
         kind == FaultKind::kPartitionMember;
}

bool IsLinkFault(FaultKind kind) {
  return kind == FaultKind::kDelayLink || kind == FaultKind::kResetLink ||
         kind == FaultKind::kBlackholeLink;
}

bool IsAgentFault(FaultKind kind) {
  return kind == FaultKind::kPauseAgent || kind == FaultKind::kKillAgent;
}

absl::Duration WarmUp(const FaultPlanOptions& options) {
  return 2 * options.ttl + absl::Seconds(3);
}

absl::Duration Settle(const FaultPlanOptions& options) {
  return 3 * options.ttl + absl::Seconds(5);
}

std::vector<Fault> MakeFaultPlan(uint64_t seed,
                                 const FaultPlanOptions& options) {
  Rng rng(seed);
  const absl::Duration ttl = options.ttl;
  const absl::Duration last_end = options.duration - Settle(options);
  std::vector<Fault> plan;
  absl::Duration member_free = absl::ZeroDuration();
  std::vector<absl::Duration> agent_free(options.agents, absl::ZeroDuration());
  std::map<std::pair<int, int>, absl::Duration> link_free;
  absl::Duration t = WarmUp(options);
  while (true) {
    t += rng.Between(absl::ZeroDuration(), 2 * options.mean_gap);
    if (t >= last_end) break;
    Fault f;
    f.at = t;
    f.kind = Draw(rng);
    // Every draw happens whether or not the fault is then kept, so each
    // decision depends on the seed alone.
    const int member = rng.Below(options.members);
    const int follower = rng.Below(std::max(1, options.members - 1));
    const int agent = rng.Below(options.agents);
    switch (f.kind) {
      case FaultKind::kKillLeader:
      case FaultKind::kKillFollower:
        f.length = rng.Between(absl::Seconds(1), absl::Seconds(5));
        break;
      case FaultKind::kPauseLeader:
      case FaultKind::kPauseFollower:
        f.length = rng.Between(absl::Seconds(1), absl::Seconds(10));
        break;
      case FaultKind::kPartitionMember:
        f.length = rng.Between(absl::Seconds(1), absl::Seconds(8));
        break;
      case FaultKind::kDelayLink:
        f.length = rng.Between(absl::Seconds(1), absl::Seconds(6));
        f.delay = rng.Between(absl::Milliseconds(10), ttl / 5);
        break;
      case FaultKind::kResetLink:
        f.length = rng.Between(absl::Milliseconds(500), absl::Seconds(4));
        break;
      case FaultKind::kBlackholeLink:
        f.length = rng.Between(absl::Seconds(1), absl::Seconds(6));
        break;
      case FaultKind::kPauseAgent:
        f.length = rng.Between(ttl / 2, 3 * ttl);
        break;
      case FaultKind::kKillAgent:
        f.length = rng.Between(ttl / 5, 3 * ttl);
        break;
    }
    if (t + f.length > last_end) continue;
    if (IsMemberFault(f.kind)) {
      if (t < member_free) continue;
      if (f.kind == FaultKind::kPartitionMember) f.member = member;
      f.follower = follower;
      member_free = t + f.length + kMemberCatchUp;
    } else if (IsLinkFault(f.kind)) {
      absl::Duration& free = link_free[{agent, member}];
      if (t < free) continue;
      f.agent = agent;
      f.member = member;
      free = t + f.length;
    } else {
      if (t < agent_free[agent]) continue;
      int down = 0;
      for (absl::Duration until : agent_free) down += t < until ? 1 : 0;
      if (2 * (down + 1) > options.agents) continue;
      f.agent = agent;
      // Back for a TTL before its next fault, so it holds units again.
      agent_free[agent] = t + f.length + ttl;
    }
    plan.push_back(f);
  }
  return plan;
}

std::string Describe(const Fault& f) {
  std::string target;
  switch (f.kind) {
    case FaultKind::kKillFollower:
    case FaultKind::kPauseFollower:
      target = absl::StrCat(" #", f.follower);
      break;
    case FaultKind::kPartitionMember:
      target = " " + MemberName(f.member);
      break;
    case FaultKind::kDelayLink:
      target = absl::StrCat(
          " ", AgentName(f.agent), "->", MemberName(f.member), " ",
          absl::FormatDuration(absl::Trunc(f.delay, absl::Milliseconds(1))));
      break;
    case FaultKind::kResetLink:
    case FaultKind::kBlackholeLink:
      target =
          absl::StrCat(" ", AgentName(f.agent), "->", MemberName(f.member));
      break;
    case FaultKind::kPauseAgent:
    case FaultKind::kKillAgent:
      target = " " + AgentName(f.agent);
      break;
    default:
      break;
  }
  return absl::StrFormat("at %.1fs: %s%s for %.1fs",
                         absl::ToDoubleSeconds(f.at), FaultName(f.kind), target,
                         absl::ToDoubleSeconds(f.length));
}

}  // namespace leasehold::torture
