// A memory registry on a simulated clock, a Keeper, and sessions on them.
#ifndef LEASEHOLD_TESTS_LEASE_LOCK_FIXTURE_H_
#define LEASEHOLD_TESTS_LEASE_LOCK_FIXTURE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "lease/keeper.h"
#include "lease/session.h"
#include "registry/clock.h"
#include "registry/keys_api.h"
#include "registry/memory/memory_registry.h"
#include "tests/lease/lock_test_util.h"
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

  // A queue key and how often the Keeper renews it, in steps of the clock.
  struct Renewing {
    std::string key;
    int every_steps;
  };

  // The key's modifiedIndex (0 when it is gone).
  uint64_t ModifiedIndex(const std::string& key) {
    absl::StatusOr<registry::Response> r = memory_->Get(key, {});
    return r.ok() ? r->node.modified_index : 0;
  }

  // Moves the clock `steps` times by `step`; after each step, waits until
  // the Keeper has renewed (by refresh, which moves modifiedIndex) every key
  // that falls due then, so no key outlives its TTL for want of a renewal.
  void PassRenewals(const std::vector<Renewing>& keys, absl::Duration step,
                    int steps) {
    for (int i = 1; i <= steps; ++i) {
      std::vector<uint64_t> before;
      for (const Renewing& r : keys) before.push_back(ModifiedIndex(r.key));
      clock_.Advance(step);
      for (size_t k = 0; k < keys.size(); ++k) {
        if (i % keys[k].every_steps != 0) continue;
        ASSERT_TRUE(Eventually([&] {
          return ModifiedIndex(keys[k].key) > before[k];
        })) << keys[k].key
            << " not renewed at step " << i;
      }
    }
  }

  // Starts waiter i of `waiters` with `wait` and returns once its key is in
  // the queue `dir`, which then holds `queued` keys.
  void Enqueue(Waiters& waiters, int i, Waiters::Wait wait,
               const std::string& dir, size_t queued) {
    waiters.Start(i, std::move(wait));
    ASSERT_TRUE(Eventually(
        [&] { return KeysUnder(memory_.get(), dir).size() == queued; }));
  }

  // Waiter i gives up its place (its wait ends kCancelled). Returns once
  // the waiters behind it have re-read the queue and are back at rest (a
  // read, then only the shared watch in flight), so that one that believed
  // it had its turn would now be acting on it.
  void GiveUp(Waiters& waiters, int i) {
    const int gets = keys_.calls(leasehold::testing::FaultyKeysApi::kGet);
    waiters.Cancel(i);
    ASSERT_TRUE(Eventually([&] {
      return waiters.state(i) != 0 &&
             keys_.calls(leasehold::testing::FaultyKeysApi::kGet) > gets &&
             keys_.in_flight() == 1;
    }));
    EXPECT_TRUE(absl::IsCancelled(waiters.result(i))) << waiters.result(i);
  }

  // Each of `keys` has been renewed, and the keys of `last` changed after
  // every other: a queue ordered by modifiedIndex would put them last.
  void ExpectChangedLast(const std::vector<std::string>& last,
                         const std::vector<std::string>& keys) {
    for (const std::string& key : keys) {
      absl::StatusOr<registry::Response> r = memory_->Get(key, {});
      ASSERT_TRUE(r.ok()) << key << ": " << r.status();
      EXPECT_GT(r->node.modified_index, r->node.created_index) << key;
      for (const std::string& newer : last) {
        if (newer != key) {
          EXPECT_GT(ModifiedIndex(newer), ModifiedIndex(key)) << newer;
        }
      }
    }
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
