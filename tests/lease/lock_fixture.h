// A memory registry on a simulated clock, a Keeper, and sessions on them.
#ifndef LEASEHOLD_TESTS_LEASE_LOCK_FIXTURE_H_
#define LEASEHOLD_TESTS_LEASE_LOCK_FIXTURE_H_

#include <memory>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "lease/keeper.h"
#include "lease/session.h"
#include "registry/clock.h"
#include "registry/keys_api.h"
#include "registry/memory/memory_registry.h"
#include "tests/testing/faulty_keys_api.h"

namespace leasehold::lease::testing {

class LockFixture : public ::testing::Test {
 protected:
  LockFixture()
      : memory_(registry::NewMemoryRegistry(MemoryOptions())),
        keys_(memory_.get(), &clock_),
        keeper_(KeeperFor(&clock_)) {}

  ~LockFixture() override { keeper_.Stop(); }

  // Sessions on the counting wrapper `keys_` unless told otherwise.
  std::unique_ptr<Session> NewSession(absl::Duration ttl = absl::Seconds(60),
                                      registry::KeysApi* keys = nullptr) {
    SessionOptions options;
    options.ttl = ttl;
    options.clock = &clock_;
    options.keeper = &keeper_;
    absl::StatusOr<std::unique_ptr<Session>> session =
        Session::Create(keys != nullptr ? keys : &keys_, options);
    EXPECT_TRUE(session.ok()) << session.status();
    return session.ok() ? std::move(*session) : nullptr;
  }

  registry::MemoryOptions MemoryOptions() {
    registry::MemoryOptions options;
    options.clock = &clock_;
    return options;
  }

  static KeeperOptions KeeperFor(Clock* clock) {
    KeeperOptions options;
    options.clock = clock;
    options.workers = 4;
    return options;
  }

  SimulatedClock clock_;
  std::unique_ptr<registry::KeysApi> memory_;
  leasehold::testing::FaultyKeysApi keys_;
  Keeper keeper_;
};

}  // namespace leasehold::lease::testing

#endif  // LEASEHOLD_TESTS_LEASE_LOCK_FIXTURE_H_
