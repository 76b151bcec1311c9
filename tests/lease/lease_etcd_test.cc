// Leases, WaitForChange and the Keeper against a real etcd (started once per
// binary by the fixture). Each test works under its own key prefix.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lease/keeper.h"
#include "lease/lease_manager.h"
#include "registry/json_object.h"
#include "registry/open.h"
#include "tests/testing/etcd_server.h"
#include "tests/testing/faulty_keys_api.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::lease {
namespace {

using ::leasehold::testing::FaultyKeysApi;
using ::leasehold::testing::IsOk;
using ::leasehold::testing::StatusIs;
using ::testing::IsNull;
using ::testing::NotNull;

template <typename Predicate>
bool Eventually(Predicate done, absl::Duration timeout = absl::Seconds(20)) {
  const absl::Time deadline = RealClock()->Now() + timeout;
  while (RealClock()->Now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

class LeaseEtcdTest : public ::testing::TestWithParam<std::string> {
 protected:
  // The etcd of this run's API ("etcd": v2, "etcd3": v3 without v2).
  ::leasehold::testing::EtcdServer& Etcd() const {
    return ::leasehold::testing::SharedEtcdFor(GetParam());
  }
  bool v3() const { return GetParam() == "etcd3"; }

  void SetUp() override {
    prefix_ = absl::StrCat(
        "/", ::testing::UnitTest::GetInstance()->current_test_info()->name(),
        "/");
    keys_ = OpenOrDie();
    ASSERT_THAT(keys_, NotNull());
    registry::DeleteOptions everything;  // leftovers of an earlier run
    everything.dir = true;
    everything.recursive = true;
    absl::Status cleared = keys_->Delete(prefix_, everything).status();
    ASSERT_TRUE(cleared.ok() || absl::IsNotFound(cleared)) << cleared;
    faulty_ = std::make_unique<FaultyKeysApi>(keys_.get());
    manager_ = NewManager(faulty_.get());
  }

  std::unique_ptr<registry::KeysApi> OpenOrDie() const {
    absl::StatusOr<std::unique_ptr<registry::KeysApi>> keys =
        registry::Open(Etcd().uri());
    EXPECT_THAT(keys, IsOk());
    return keys.ok() ? std::move(*keys) : nullptr;
  }
  std::unique_ptr<LeaseManager> NewManager(registry::KeysApi* keys) {
    LeaseManagerOptions options;
    options.prefix = prefix_;
    return std::make_unique<LeaseManager>(keys, options);
  }
  std::string Key(const std::string& name) { return prefix_ + "lease/" + name; }
  std::unique_ptr<Lease> Acquire(const std::string& name,
                                 const std::string& machine,
                                 absl::Duration period) {
    absl::StatusOr<std::unique_ptr<Lease>> lease =
        manager_->AcquireLease(name, machine, 1, period);
    EXPECT_THAT(lease, IsOk());
    return lease.ok() ? std::move(*lease) : nullptr;
  }

  std::string prefix_;
  std::unique_ptr<registry::KeysApi> keys_;  // raw etcd client
  std::unique_ptr<FaultyKeysApi> faulty_;    // what manager_ talks through
  std::unique_ptr<LeaseManager> manager_;
};

TEST_P(LeaseEtcdTest, AcquireRenewStealRelease) {
  std::unique_ptr<Lease> a = Acquire("unit", "machine-a", absl::Seconds(10));
  ASSERT_THAT(a, NotNull());
  EXPECT_THAT(Acquire("unit", "machine-b", absl::Seconds(10)), IsNull());
  ASSERT_OK_AND_ASSIGN(registry::Response raw, keys_->Get(Key("unit"), {}));
  EXPECT_EQ(raw.node.modified_index, a->index());
  EXPECT_GT(raw.node.ttl, 8);
  EXPECT_LE(raw.node.ttl, 10);

  const uint64_t first = a->index();
  ASSERT_THAT(a->Renew(absl::Milliseconds(1500)), IsOk());
  EXPECT_GT(a->index(), first);
  EXPECT_EQ(a->fence(), first);
  EXPECT_EQ(a->period(), absl::Seconds(2));
  ASSERT_OK_AND_ASSIGN(raw, keys_->Get(Key("unit"), {}));
  EXPECT_EQ(raw.node.ttl, 2);

  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<Lease> stale,
      manager_->StealLease("unit", "b", 2, absl::Seconds(10), first));
  EXPECT_THAT(stale, IsNull());
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<Lease> b,
      manager_->StealLease("unit", "b", 2, absl::Seconds(10), a->index()));
  ASSERT_THAT(b, NotNull());
  EXPECT_GT(b->fence(), a->index());
  EXPECT_THAT(a->Renew(absl::Seconds(10)),
              StatusIs(absl::StatusCode::kAborted));
  EXPECT_THAT(a->Release(), StatusIs(absl::StatusCode::kAborted));
  ASSERT_THAT(b->Release(), IsOk());
  EXPECT_THAT(keys_->Get(Key("unit"), {}),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(b->Renew(absl::Seconds(10)),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(LeaseEtcdTest, FleetValuesReadAsLeasesAndOursReadAsFleetJson) {
  registry::SetOptions ttl;
  ttl.ttl = absl::Seconds(30);
  ASSERT_OK(
      keys_->Set(Key("fleet"), R"({"MachineID":"fleet-m","Version":3})", ttl));
  ASSERT_OK(keys_->Set(Key("legacy"), "5f3c9a", ttl));
  std::unique_ptr<Lease> ours = Acquire("ours", "machine-a", absl::Seconds(30));
  ASSERT_THAT(ours, NotNull());

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> fleet,
                       manager_->GetLease("fleet"));
  ASSERT_THAT(fleet, NotNull());
  EXPECT_EQ(fleet->machine_id(), "fleet-m");
  EXPECT_EQ(fleet->version(), 3);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> legacy,
                       manager_->GetLease("legacy"));
  EXPECT_EQ(legacy->machine_id(), "5f3c9a");
  EXPECT_EQ(legacy->version(), 0);

  ASSERT_OK_AND_ASSIGN(registry::Response raw, keys_->Get(Key("ours"), {}));
  ASSERT_OK_AND_ASSIGN(registry::JsonObject json,
                       registry::JsonObject::Parse(raw.node.value));
  EXPECT_EQ(json.GetString("MachineID"), "machine-a");
  EXPECT_EQ(json.GetInt("Version"), 1);

  ASSERT_OK_AND_ASSIGN(std::vector<std::unique_ptr<Lease>> all,
                       manager_->ListLeases());
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0]->name(), "fleet");
  EXPECT_EQ(all[1]->name(), "legacy");
  EXPECT_EQ(all[2]->name(), "ours");
  EXPECT_EQ(all[2]->machine_id(), "machine-a");
}

TEST_P(LeaseEtcdTest, StandbyAcquiresRightAfterRelease) {
  std::unique_ptr<Lease> holder =
      Acquire("engine", "machine-a", absl::Seconds(30));
  ASSERT_THAT(holder, NotNull());
  const absl::Time start = RealClock()->Now();
  absl::StatusOr<std::unique_ptr<Lease>> change;
  std::unique_ptr<Lease> taken;
  std::thread standby([&] {
    change = manager_->WaitForChange("engine", holder->index(),
                                     start + absl::Seconds(5));
    if (change.ok() && *change == nullptr) {
      taken = Acquire("engine", "machine-b", absl::Seconds(30));
    }
  });
  ASSERT_TRUE(Eventually([&] { return faulty_->in_flight() == 1; }));
  ASSERT_THAT(holder->Release(), IsOk());
  standby.join();
  ASSERT_THAT(change, IsOk());
  EXPECT_THAT(*change, IsNull());
  ASSERT_THAT(taken, NotNull());
  EXPECT_EQ(taken->machine_id(), "machine-b");
  EXPECT_LT(RealClock()->Now() - start, absl::Seconds(5));
}

TEST_P(LeaseEtcdTest, StandbyTakesOverOnceTheSilentHolderExpires) {
  constexpr absl::Duration kTtl = absl::Seconds(2);
  const absl::Time start = RealClock()->Now();
  std::unique_ptr<Lease> holder = Acquire("engine", "machine-a", kTtl);
  ASSERT_THAT(holder, NotNull());
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<Lease> change,
      manager_->WaitForChange("engine", holder->index(), start + 3 * kTtl));
  const absl::Duration waited = RealClock()->Now() - start;
  EXPECT_THAT(change, IsNull());
  EXPECT_GE(waited, kTtl - absl::Milliseconds(50));  // not before the TTL
  EXPECT_LE(waited, 2 * kTtl);
  EXPECT_TRUE(holder->expired());
  EXPECT_THAT(Acquire("engine", "machine-b", kTtl), NotNull());
}

TEST_P(LeaseEtcdTest, TwoManagersStealingTheSameIndexHaveOneWinner) {
  std::unique_ptr<registry::KeysApi> other_keys = OpenOrDie();
  std::unique_ptr<LeaseManager> other = NewManager(other_keys.get());
  for (int round = 0; round < 10; ++round) {
    const std::string name = "unit-" + std::to_string(round);
    std::unique_ptr<Lease> holder = Acquire(name, "old", absl::Seconds(30));
    ASSERT_THAT(holder, NotNull());
    std::atomic<int> ready{0};
    absl::StatusOr<std::unique_ptr<Lease>> results[2];
    LeaseManager* managers[2] = {manager_.get(), other.get()};
    std::vector<std::thread> stealers;
    for (int i = 0; i < 2; ++i) {
      stealers.emplace_back([&, i] {
        ++ready;
        while (ready.load() < 2) {
        }
        results[i] =
            managers[i]->StealLease(name, "new-" + std::to_string(i), 2,
                                    absl::Seconds(30), holder->index());
      });
    }
    for (std::thread& t : stealers) t.join();
    ASSERT_THAT(results[0], IsOk());
    ASSERT_THAT(results[1], IsOk());
    EXPECT_EQ((*results[0] != nullptr) + (*results[1] != nullptr), 1) << round;
  }
}

TEST_P(LeaseEtcdTest, LostResponsesAreResolvedByReadingBack) {
  faulty_->LoseResponseNext(FaultyKeysApi::kSet, 1);
  std::unique_ptr<Lease> a = Acquire("unit", "machine-a", absl::Seconds(10));
  ASSERT_THAT(a, NotNull());
  faulty_->LoseResponseNext(FaultyKeysApi::kSet, 1);
  ASSERT_THAT(a->Renew(absl::Seconds(10)), IsOk());
  ASSERT_OK_AND_ASSIGN(registry::Response raw, keys_->Get(Key("unit"), {}));
  EXPECT_EQ(raw.node.modified_index, a->index());

  faulty_->LoseResponseNext(FaultyKeysApi::kSet, 1);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> b,
                       manager_->StealLease("unit", "machine-b", 1,
                                            absl::Seconds(10), a->index()));
  ASSERT_THAT(b, NotNull());
  faulty_->LoseResponseNext(FaultyKeysApi::kSet, 1);
  EXPECT_THAT(Acquire("unit", "machine-c", absl::Seconds(10)), IsNull());
  faulty_->LoseResponseNext(FaultyKeysApi::kDelete, 1);
  ASSERT_THAT(b->Release(), IsOk());
  EXPECT_THAT(keys_->Get(Key("unit"), {}),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(LeaseEtcdTest, WaitForChangeSkipsRenewalsAndReportsTheStealer) {
  std::unique_ptr<Lease> a = Acquire("unit", "machine-a", absl::Seconds(30));
  const uint64_t seen = a->index();
  ASSERT_THAT(a->Renew(absl::Seconds(30)), IsOk());
  registry::SetOptions fleet_renew;  // fleet renews by setting the same value
  fleet_renew.prev_index = a->index();
  fleet_renew.ttl = absl::Seconds(30);
  ASSERT_OK_AND_ASSIGN(registry::Response raw, keys_->Get(Key("unit"), {}));
  ASSERT_OK_AND_ASSIGN(raw,
                       keys_->Set(Key("unit"), raw.node.value, fleet_renew));
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<Lease> b,
      manager_->StealLease("unit", "machine-b", 1, absl::Seconds(30),
                           raw.node.modified_index));
  ASSERT_THAT(b, NotNull());
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<Lease> change,
      manager_->WaitForChange("unit", seen,
                              RealClock()->Now() + absl::Seconds(5)));
  ASSERT_THAT(change, NotNull());
  EXPECT_EQ(change->machine_id(), "machine-b");
  EXPECT_EQ(change->index(), b->index());
  // With its TTL: a lease seen in a watch event runs out like one read.
  EXPECT_GE(change->period(), absl::Seconds(20));
  EXPECT_LE(change->period(), absl::Seconds(30));
  EXPECT_LT(change->expiry(), RealClock()->Now() + absl::Seconds(30));
}

TEST_P(LeaseEtcdTest, KeeperKeepsManyLeasesPastTheirTtlThenReleases) {
  constexpr int kLeases = 200;
  constexpr absl::Duration kTtl = absl::Seconds(2);
  Keeper keeper;
  std::vector<std::shared_ptr<KeptLease>> kept;
  for (int i = 0; i < kLeases; ++i) {
    std::unique_ptr<Lease> lease =
        Acquire("unit-" + std::to_string(i), "machine-a", kTtl);
    ASSERT_THAT(lease, NotNull());
    kept.push_back(keeper.Add(std::move(lease)));
  }
  // Four renews each: more than a TTL has passed since the last acquire.
  const int after_acquire = faulty_->calls(FaultyKeysApi::kSet);
  ASSERT_TRUE(Eventually([&] {
    return faulty_->calls(FaultyKeysApi::kSet) >= after_acquire + 4 * kLeases;
  }));
  for (const auto& k : kept) {
    EXPECT_EQ(k->state(), LeaseState::kHeld) << k->lease().name();
  }
  ASSERT_OK_AND_ASSIGN(std::vector<std::unique_ptr<Lease>> listed,
                       manager_->ListLeases());
  EXPECT_EQ(listed.size(), static_cast<size_t>(kLeases));

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> thief,
                       manager_->StealLease("unit-0", "thief", 1, kTtl,
                                            kept[0]->lease().index()));
  ASSERT_THAT(thief, NotNull());
  EXPECT_TRUE(kept[0]->WaitLost(RealClock()->Now() + absl::Seconds(5)));

  keeper.Stop(/*release=*/true);
  ASSERT_OK_AND_ASSIGN(listed, manager_->ListLeases());
  ASSERT_EQ(listed.size(), 1u);  // only the thief's
  EXPECT_EQ(listed[0]->machine_id(), "thief");
}

INSTANTIATE_TEST_SUITE_P(Apis, LeaseEtcdTest,
                         ::testing::ValuesIn(::leasehold::testing::EtcdApis()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace leasehold::lease
