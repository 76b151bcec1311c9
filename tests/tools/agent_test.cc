// The simulation's agent on the memory registry with a simulated clock:
// what it records as its beliefs, which the safety verdict judges.
#include "tools/sim/agent.h"

#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lease/lease_manager.h"
#include "registry/memory/memory_registry.h"
#include "tests/testing/eventually.h"
#include "tests/testing/faulty_keys_api.h"
#include "tests/testing/status_matchers.h"

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
  ASSERT_THAT(agent.Step(), IsOk());  // presence only: the unit is taken
  ASSERT_THAT((*held)->Release(), IsOk());

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

}  // namespace
}  // namespace leasehold::sim
