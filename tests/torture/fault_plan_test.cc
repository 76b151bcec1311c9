// The torture run's fault plan: replayable from its seed, and never more
// than the cluster and the agents are meant to survive at once.
#include "tests/torture/fault_plan.h"

#include <map>
#include <set>
#include <utility>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace leasehold::torture {
namespace {

const FaultPlanOptions kTenMinutes = {.duration = absl::Minutes(10),
                                      .agents = 5,
                                      .ttl = absl::Seconds(2),
                                      .mean_gap = absl::Seconds(1)};

std::vector<std::string> Descriptions(const std::vector<Fault>& plan) {
  std::vector<std::string> out;
  for (const Fault& f : plan) out.push_back(Describe(f));
  return out;
}

TEST(FaultPlanTest, TheSameSeedGivesTheSamePlanAndAnotherSeedAnother) {
  EXPECT_EQ(Descriptions(MakeFaultPlan(7, kTenMinutes)),
            Descriptions(MakeFaultPlan(7, kTenMinutes)));
  EXPECT_NE(Descriptions(MakeFaultPlan(7, kTenMinutes)),
            Descriptions(MakeFaultPlan(8, kTenMinutes)));
}

TEST(FaultPlanTest, EveryKindOfFaultHappensAndFaultsAreFrequent) {
  const std::vector<Fault> plan = MakeFaultPlan(1, kTenMinutes);
  std::set<FaultKind> kinds;
  for (const Fault& f : plan) kinds.insert(f.kind);
  EXPECT_EQ(kinds.size(), static_cast<size_t>(kFaultKinds));
  // About one start a second, less the starts a busy target turned down.
  EXPECT_GT(plan.size(), 300u);
}

TEST(FaultPlanTest, FaultsStayInsideTheRunAndInOrder) {
  const std::vector<Fault> plan = MakeFaultPlan(2, kTenMinutes);
  ASSERT_FALSE(plan.empty());
  for (size_t i = 0; i < plan.size(); ++i) {
    const Fault& f = plan[i];
    EXPECT_GE(f.at, WarmUp(kTenMinutes)) << Describe(f);
    EXPECT_LE(f.at + f.length, kTenMinutes.duration - Settle(kTenMinutes))
        << Describe(f);
    if (i > 0) {
      EXPECT_GE(f.at, plan[i - 1].at);
    }
  }
}

TEST(FaultPlanTest, OneMemberFaultAtATimeAndOneFaultPerAgentOrLink) {
  for (uint64_t seed : {1, 2, 3, 4, 5}) {
    const std::vector<Fault> plan = MakeFaultPlan(seed, kTenMinutes);
    for (size_t i = 0; i < plan.size(); ++i) {
      for (size_t j = i + 1; j < plan.size(); ++j) {
        const Fault& a = plan[i];
        const Fault& b = plan[j];
        if (b.at >= a.at + a.length) continue;  // no overlap in time
        EXPECT_FALSE(IsMemberFault(a.kind) && IsMemberFault(b.kind))
            << Describe(a) << " / " << Describe(b);
        EXPECT_FALSE(IsAgentFault(a.kind) && IsAgentFault(b.kind) &&
                     a.agent == b.agent)
            << Describe(a) << " / " << Describe(b);
        EXPECT_FALSE(IsLinkFault(a.kind) && IsLinkFault(b.kind) &&
                     a.agent == b.agent && a.member == b.member)
            << Describe(a) << " / " << Describe(b);
      }
    }
  }
}

TEST(FaultPlanTest, AtMostHalfOfTheAgentsAreDownAtOnce) {
  const std::vector<Fault> plan = MakeFaultPlan(3, kTenMinutes);
  for (const Fault& f : plan) {
    int down = 0;
    for (const Fault& g : plan) {
      if (IsAgentFault(g.kind) && g.at <= f.at && f.at < g.at + g.length) {
        ++down;
      }
    }
    EXPECT_LE(2 * down, kTenMinutes.agents) << Describe(f);
  }
}

TEST(FaultPlanTest, DescribeNamesTheFaultAndItsTarget) {
  Fault f;
  f.at = absl::Milliseconds(12300);
  f.length = absl::Milliseconds(2500);
  f.kind = FaultKind::kDelayLink;
  f.agent = 1;
  f.member = 2;
  f.delay = absl::Milliseconds(120);
  EXPECT_EQ(Describe(f), "at 12.3s: delay-link m2->e2 120ms for 2.5s");
  f.kind = FaultKind::kKillAgent;
  EXPECT_EQ(Describe(f), "at 12.3s: kill-agent m2 for 2.5s");
}

}  // namespace
}  // namespace leasehold::torture
