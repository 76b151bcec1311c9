// The simulation's agent on the memory registry with a simulated clock:
// what it records as its beliefs, which the safety verdict judges.
#include "tools/sim/agent.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lease/lease_manager.h"
#include "registry/memory/memory_registry.h"
#include "tests/testing/eventually.h"
#include "tests/testing/faulty_keys_api.h"
#include "tests/testing/status_matchers.h"
#include "tools/sim/ownership_view.h"

namespace leasehold::sim {
namespace {

using ::leasehold::testing::Eventually;
using ::leasehold::testing::FaultyKeysApi;
using ::leasehold::testing::IsOk;
using ::testing::Each;
using ::testing::Field;
using ::testing::Ne;
using ::testing::NotNull;

constexpr absl::Duration kTtl = absl::Seconds(2);

// An acquire answered after the lease's local expiry grants nothing the
// agent may act on, and by then another machine may hold the unit: the
// agent must not record (or print) a hold for it.
TEST(AgentTest, AGrantAnsweredAfterItsExpiryIsNeverBelieved) {
  SimulatedClock clock;
  registry::MemoryOptions memory_options;
  memory_options.clock = &clock;
  std::unique_ptr<registry::KeysApi> memory =
      registry::NewMemoryRegistry(memory_options);
  FaultyKeysApi keys(memory.get(), &clock);
  lease::LeaseManager other(&keys, {.clock = &clock});
  // Another machine holds the only unit while the agent starts.
  absl::StatusOr<std::unique_ptr<lease::Lease>> held =
      other.AcquireLease("unit-00", "m2", 1, kTtl);
  ASSERT_THAT(held, IsOk());
  ASSERT_THAT(*held, NotNull());

  History history;
  Agent agent(&keys, {.id = "m1", .units = 1, .ttl = kTtl, .clock = &clock},
              &history, [](const std::string&) {});
  agent.Start(1);
  ASSERT_THAT(agent.Step(), IsOk());  // presence and engine: the unit is taken
  ASSERT_THAT((*held)->Release(), IsOk());
  // The agent sees the unit free, and claims once a presence round passed
  // (its renews of that round done, so that only its claim will block).
  absl::StatusOr<std::shared_ptr<OwnershipView>> view =
      OwnershipView::Shared(&keys, &clock, "/leasehold/", 1);
  ASSERT_THAT(view, IsOk());
  ASSERT_TRUE(Eventually([&] { return (*view)->Summarize().free_units == 1; }));
  clock.Advance(kTtl / 2);
  ASSERT_TRUE(Eventually([&] { return agent.renews_ok() >= 2; }));

  keys.Block(FaultyKeysApi::kSet);
  std::thread step([&] { EXPECT_THAT(agent.Step(), IsOk()); });
  ASSERT_TRUE(Eventually([&] { return keys.blocked() >= 1; }));
  clock.Advance(kTtl + absl::Seconds(1));  // the answer comes too late
  keys.Unblock();
  step.join();

  EXPECT_THAT(history.holds(),
              Each(Field(&Hold::lease, Ne("unit-00"))));  // engine only
  EXPECT_EQ(agent.units(), 0);
  agent.Shutdown();
}

// A machine whose link hangs runs on: its Keeper tells it by its own clock
// that its units are gone, while the link still hangs, and only then can
// another machine take them.
TEST(AgentTest, APartitionedMachineIsToldOfItsLossesByItsOwnClock) {
  SimulatedClock clock;
  std::unique_ptr<registry::KeysApi> keys =
      registry::NewMemoryRegistry({.clock = &clock});
  History history;
  Agent cut(keys.get(), {.id = "m1", .units = 2, .ttl = kTtl, .clock = &clock},
            &history, [](const std::string&) {});
  cut.Start(1);
  for (int i = 0; i < 10 && cut.units() < 2; ++i) {
    ASSERT_THAT(cut.Step(), IsOk());
    clock.Advance(kTtl / 10);
  }
  ASSERT_EQ(cut.units(), 2);

  const absl::Time partitioned = clock.Now();
  cut.Partition(partitioned, absl::InfiniteFuture());
  clock.Advance(kTtl);  // past every local expiry, short of the link's return
  ASSERT_TRUE(Eventually([&] { return cut.live_units() == 0; }));
  EXPECT_EQ(cut.state(), Agent::State::kPartitioned);
  for (const Hold& hold : history.holds()) {  // two units and the engine
    EXPECT_EQ(hold.how_ended, "lost") << hold.lease;
    EXPECT_EQ(hold.told, partitioned + kTtl) << hold.lease;
  }

  Agent other(keys.get(),
              {.id = "m2", .units = 2, .ttl = kTtl, .clock = &clock}, &history,
              [](const std::string&) {});
  other.Start(1);
  for (int i = 0; i < 50 && other.units() < 2; ++i) {
    ASSERT_THAT(other.Step(), IsOk());
    clock.Advance(kTtl / 10);
  }
  EXPECT_EQ(other.units(), 2);
  for (absl::Duration ahead : history.ToldAheadOfNextOwner()) {
    EXPECT_GE(ahead, absl::ZeroDuration());
  }
  EXPECT_EQ(history.ToldAheadOfNextOwner().size(), 3);
  EXPECT_TRUE(history.Check().safe);
  cut.Resume();
  cut.Shutdown();
  other.Shutdown();
}

// A scheduler's promise: with 100 machines and 1,000 units every machine
// holds its fair share within ±1 unit within 3 TTLs of the start, and again
// within 3 TTLs of a crash and of the machine's return. Each round steps
// every agent, waits until the agents' shared view has caught up with the
// registry (so a round's outcome does not depend on thread timing), and
// moves the simulated clock one tick.
class ConvergenceTest : public ::testing::Test {
 protected:
  static constexpr int kMachines = 100;
  static constexpr int kUnits = 1000;
  static constexpr absl::Duration kTtl = absl::Seconds(3);
  static constexpr absl::Duration kTick = absl::Milliseconds(100);

  ConvergenceTest()
      : keys_(registry::NewMemoryRegistry({.clock = &clock_})),
        leases_(keys_.get(), {.clock = &clock_}) {
    for (int i = 0; i < kMachines; ++i) {
      agents_.push_back(
          std::make_unique<Agent>(keys_.get(),
                                  AgentOptions{.id = absl::StrCat("m", i + 1),
                                               .units = kUnits,
                                               .ttl = kTtl,
                                               .workers = 1,
                                               .clock = &clock_},
                                  &history_, [](const std::string&) {}));
    }
  }

  ~ConvergenceTest() override {
    for (auto& agent : agents_) agent->Shutdown();
  }

  // Every machine up holds units/up ± 1, and they hold every unit.
  bool Balanced() const {
    int up = 0;
    int owned = 0;
    for (const auto& agent : agents_) {
      if (!agent->up()) continue;
      ++up;
      owned += agent->live_units();
    }
    const double share = static_cast<double>(kUnits) / up;
    for (const auto& agent : agents_) {
      if (agent->up() && std::abs(agent->live_units() - share) > 1.0) {
        return false;
      }
    }
    return owned == kUnits;
  }

  // The free units and present machines the registry holds now.
  std::pair<int, int> Truth() {
    absl::StatusOr<std::vector<std::unique_ptr<lease::Lease>>> all =
        leases_.ListLeases();
    EXPECT_THAT(all, IsOk());
    int units = 0, machines = 0;
    for (const auto& lease : *all) {
      units += absl::StartsWith(lease->name(), "unit-") ? 1 : 0;
      machines += absl::StartsWith(lease->name(), kPresencePrefix) ? 1 : 0;
    }
    return {kUnits - units, machines};
  }

  // Rounds until balanced; how long that took on the simulated clock.
  absl::Duration RoundsUntilBalanced() {
    const absl::Time start = clock_.Now();
    while (clock_.Now() - start <= 4 * kTtl) {
      for (auto& agent : agents_) {
        EXPECT_THAT(agent->Step(), IsOk());
        most_held_ = std::max(most_held_, agent->units());
      }
      const std::pair<int, int> truth = Truth();
      if (view_ == nullptr) {
        view_ =
            *OwnershipView::Shared(keys_.get(), &clock_, "/leasehold/", kUnits);
      }
      EXPECT_TRUE(Eventually([&] {
        const OwnershipView::Summary seen = view_->Summarize();
        return std::make_pair(seen.free_units, seen.machines) == truth;
      }));
      if (Balanced()) return clock_.Now() - start;
      clock_.Advance(kTick);
    }
    return absl::InfiniteDuration();
  }

  SimulatedClock clock_;
  std::unique_ptr<registry::KeysApi> keys_;
  lease::LeaseManager leases_;
  History history_;
  std::vector<std::unique_ptr<Agent>> agents_;
  std::shared_ptr<OwnershipView> view_;
  int most_held_ = 0;  // the most units any agent held after a step
};

TEST_F(ConvergenceTest, BalancedWithinThreeTtlsOfStartCrashAndReturn) {
  for (auto& agent : agents_) agent->Start(1);
  EXPECT_LE(RoundsUntilBalanced(), 3 * kTtl) << "from the start";
  // Each waited a presence round: none took more than its share meanwhile.
  EXPECT_LE(most_held_, kUnits / kMachines + 1);

  Agent& victim = *agents_[17];
  EXPECT_EQ(victim.units(), kUnits / kMachines);
  victim.Crash(clock_.Now(), absl::InfiniteFuture());
  EXPECT_LE(RoundsUntilBalanced(), 3 * kTtl) << "after a crash";

  victim.Start(1);
  EXPECT_LE(RoundsUntilBalanced(), 3 * kTtl) << "after its return";
  EXPECT_EQ(victim.units(), kUnits / kMachines);
  EXPECT_TRUE(history_.Check().safe);
}

// The first machine up owns every unit; when the others join it hands back
// all it holds beyond its share at once, not a unit per step.
TEST_F(ConvergenceTest, TheFirstMachineUpHandsItsExcessBackAtOnce) {
  agents_[0]->Start(1);
  EXPECT_LE(RoundsUntilBalanced(), 3 * kTtl) << "alone";
  EXPECT_EQ(agents_[0]->units(), kUnits);

  for (size_t i = 1; i < agents_.size(); ++i) agents_[i]->Start(1);
  EXPECT_LE(RoundsUntilBalanced(), 3 * kTtl) << "after the others joined";
  EXPECT_TRUE(history_.Check().safe);
}

}  // namespace
}  // namespace leasehold::sim
