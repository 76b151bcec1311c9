// LeaseManager and Lease on the memory registry with a simulated clock.
#include "lease/lease_manager.h"

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registry/errors.h"
#include "registry/json_object.h"
#include "registry/memory/memory_registry.h"
#include "tests/testing/faulty_keys_api.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::lease {
namespace {

using ::leasehold::testing::FaultyKeysApi;
using ::leasehold::testing::IsOk;
using ::leasehold::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsNull;
using ::testing::NotNull;

constexpr absl::Duration kPeriod = absl::Seconds(10);

registry::MemoryOptions MemoryWith(Clock* clock, size_t history = 1000) {
  registry::MemoryOptions options;
  options.clock = clock;
  options.history_size = history;
  return options;
}

SafetyMargin NoMargin() {
  SafetyMargin margin;
  margin.fraction = 0;
  margin.fixed = absl::ZeroDuration();
  return margin;
}

LeaseManagerOptions ManagerWith(Clock* clock,
                                std::string prefix = "/leasehold/") {
  LeaseManagerOptions options;
  options.clock = clock;
  options.prefix = std::move(prefix);
  // Exact arithmetic: no safety margin (it has tests of its own).
  options.safety_margin = NoMargin();
  return options;
}

// Spins (real time, bounded) until `done` holds: for results of other
// threads, never for a TTL.
template <typename Predicate>
bool Eventually(Predicate done) {
  for (int i = 0; i < 10000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return done();
}

class LeaseManagerTest : public ::testing::Test {
 protected:
  explicit LeaseManagerTest(size_t history = 1000)
      : memory_(registry::NewMemoryRegistry(MemoryWith(&clock_, history))),
        keys_(memory_.get(), &clock_),
        manager_(&keys_, ManagerWith(&clock_)) {}

  std::unique_ptr<Lease> Acquire(const std::string& name,
                                 const std::string& machine,
                                 absl::Duration period = kPeriod) {
    absl::StatusOr<std::unique_ptr<Lease>> lease =
        manager_.AcquireLease(name, machine, 1, period);
    EXPECT_THAT(lease, IsOk());
    return lease.ok() ? std::move(*lease) : nullptr;
  }

  // The raw node under the lease key; nullopt when absent.
  std::optional<registry::Node> Raw(const std::string& name) {
    absl::StatusOr<registry::Response> r =
        memory_->Get("/leasehold/lease/" + name, {});
    if (!r.ok()) return std::nullopt;
    return r->node;
  }

  // A renew sent at t=3 lands but its answer is lost and its read-back
  // fails. Returns the lease at t=3 with that renew unresolved.
  std::unique_ptr<Lease> WithUnresolvedLandedRenew() {
    std::unique_ptr<Lease> a = Acquire("unit", "m");
    clock_.Advance(absl::Seconds(3));
    keys_.LoseResponseNext(FaultyKeysApi::kSet, 1);
    keys_.FailNext(FaultyKeysApi::kGet, 1);
    const absl::Status renew = a->Renew(kPeriod);
    EXPECT_TRUE(registry::IsOutcomeUnknown(renew)) << renew;
    return a;
  }

  // Renews `lease` on another thread; once its first request stalls,
  // moves the clock by `advance`. The renew's status, or nullopt when it
  // did not return then (it is unblocked and joined either way).
  std::optional<absl::Status> RenewPastAStall(Lease& lease,
                                              absl::Duration advance) {
    std::atomic<bool> done{false};
    absl::Status renew;
    std::thread renewer([&] {
      renew = lease.Renew(kPeriod);
      done = true;
    });
    const bool stalled = Eventually([&] { return keys_.blocked() == 1; });
    EXPECT_TRUE(stalled) << "the renew never stalled";
    clock_.Advance(advance);
    const bool returned = stalled && Eventually([&] { return done.load(); });
    keys_.Unblock();
    renewer.join();
    if (!returned) return std::nullopt;
    return renew;
  }

  SimulatedClock clock_;
  std::unique_ptr<registry::KeysApi> memory_;
  FaultyKeysApi keys_;
  LeaseManager manager_;
};

TEST_F(LeaseManagerTest, AcquireStoresFleetValueWithTtl) {
  std::unique_ptr<Lease> lease = Acquire("engine-leader", "machine-a");
  ASSERT_THAT(lease, NotNull());
  EXPECT_EQ(lease->name(), "engine-leader");
  EXPECT_EQ(lease->machine_id(), "machine-a");
  EXPECT_EQ(lease->version(), 1);
  EXPECT_EQ(lease->period(), kPeriod);
  EXPECT_EQ(lease->time_remaining(), kPeriod);
  EXPECT_FALSE(lease->expired());

  std::optional<registry::Node> raw = Raw("engine-leader");
  ASSERT_TRUE(raw.has_value());
  EXPECT_EQ(raw->modified_index, lease->index());
  EXPECT_EQ(lease->fence(), lease->index());
  EXPECT_EQ(raw->ttl, 10);
  ASSERT_OK_AND_ASSIGN(registry::JsonObject json,
                       registry::JsonObject::Parse(raw->value));
  EXPECT_EQ(json.GetString("MachineID"), "machine-a");
  EXPECT_EQ(json.GetInt("Version"), 1);
  EXPECT_TRUE(json.GetString("Token").has_value());
}

TEST_F(LeaseManagerTest, AcquireHeldLeaseIsNoLeaseNotAnError) {
  std::unique_ptr<Lease> a = Acquire("unit", "machine-a");
  ASSERT_THAT(a, NotNull());
  EXPECT_THAT(Acquire("unit", "machine-b"), IsNull());
  EXPECT_THAT(Acquire("unit", "machine-a"), IsNull());  // even for its holder
}

TEST_F(LeaseManagerTest, GetLeaseSeesHolderOrNone) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> none, manager_.GetLease("unit"));
  EXPECT_THAT(none, IsNull());
  std::unique_ptr<Lease> a = Acquire("unit", "machine-a");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> seen, manager_.GetLease("unit"));
  ASSERT_THAT(seen, NotNull());
  EXPECT_EQ(seen->machine_id(), "machine-a");
  EXPECT_EQ(seen->index(), a->index());
  // The server rounds its TTL up; a reader counts from a second less.
  EXPECT_EQ(seen->time_remaining(), kPeriod - absl::Seconds(1));
}

TEST_F(LeaseManagerTest, PeriodsRoundUpToWholeSeconds) {
  std::unique_ptr<Lease> a = Acquire("a", "m", absl::Milliseconds(1500));
  ASSERT_THAT(a, NotNull());
  EXPECT_EQ(a->period(), absl::Seconds(2));
  EXPECT_EQ(Raw("a")->ttl, 2);
  std::unique_ptr<Lease> b = Acquire("b", "m", absl::Milliseconds(300));
  ASSERT_THAT(b, NotNull());
  EXPECT_EQ(b->period(), absl::Seconds(1));
  EXPECT_THAT(b->Renew(absl::Milliseconds(2100)), IsOk());
  EXPECT_EQ(b->period(), absl::Seconds(3));
  EXPECT_EQ(b->time_remaining(), absl::Seconds(3));
  EXPECT_THAT(
      manager_.AcquireLease("c", "m", 1, absl::ZeroDuration()),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("period")));
  EXPECT_THAT(b->Renew(absl::Seconds(-1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(LeaseManagerTest, TimeRemainingCountsDownAndExpires) {
  std::unique_ptr<Lease> a = Acquire("unit", "m");
  clock_.Advance(absl::Seconds(3));
  EXPECT_EQ(a->time_remaining(), absl::Seconds(7));
  clock_.Advance(absl::Milliseconds(6999));
  EXPECT_FALSE(a->expired());
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_TRUE(a->expired());
  EXPECT_EQ(a->time_remaining(), absl::ZeroDuration());
  EXPECT_THAT(a->Renew(kPeriod), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(Acquire("unit", "other"), NotNull());
}

// A holder told late that its lease is gone (a slow answer, a thread that
// ran late) had stopped believing at its expiry: expiry() stays that bound,
// so nothing it did after can count as owning.
TEST_F(LeaseManagerTest, ARenewThatFindsTheLeaseGoneKeepsTheExpiryBound) {
  std::unique_ptr<Lease> a = Acquire("unit", "m");
  const absl::Time expiry = a->expiry();
  clock_.Advance(kPeriod + absl::Seconds(5));
  EXPECT_THAT(a->Renew(kPeriod), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(a->expiry(), expiry);

  std::unique_ptr<Lease> b = Acquire("unit", "m");
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<Lease> stolen,
      manager_.StealLease("unit", "other", 2, kPeriod, b->index()));
  ASSERT_THAT(stolen, NotNull());
  clock_.Advance(absl::Seconds(1));
  EXPECT_THAT(b->Renew(kPeriod), StatusIs(absl::StatusCode::kAborted));
  EXPECT_EQ(b->expiry(), clock_.Now());  // told before its expiry
  EXPECT_TRUE(b->expired());
}

TEST_F(LeaseManagerTest, TimeRemainingCountsFromWhenTheRequestWasSent) {
  keys_.SetDelay(FaultyKeysApi::kSet, absl::Seconds(2));
  std::unique_ptr<Lease> a;
  std::thread acquirer([&] { a = Acquire("unit", "m"); });
  ASSERT_TRUE(Eventually([&] { return keys_.in_flight() == 1; }));
  clock_.Advance(absl::Seconds(2));  // the request is slow to arrive
  acquirer.join();
  ASSERT_THAT(a, NotNull());
  EXPECT_EQ(a->time_remaining(), kPeriod - absl::Seconds(2));
}

TEST_F(LeaseManagerTest, RenewMovesIndexKeepsFenceAndValue) {
  std::unique_ptr<Lease> a = Acquire("unit", "m");
  const uint64_t fence = a->fence();
  const std::string value = Raw("unit")->value;
  clock_.Advance(absl::Seconds(4));
  uint64_t last = a->index();
  for (int i = 0; i < 3; ++i) {
    // One compare-and-swap per renew, and nothing else on the hot path.
    const int calls = keys_.calls(FaultyKeysApi::kAll);
    const int sets = keys_.calls(FaultyKeysApi::kSet);
    ASSERT_THAT(a->Renew(kPeriod), IsOk());
    EXPECT_EQ(keys_.calls(FaultyKeysApi::kAll), calls + 1);
    EXPECT_EQ(keys_.calls(FaultyKeysApi::kSet), sets + 1);
    EXPECT_GT(a->index(), last);
    last = a->index();
    EXPECT_EQ(a->fence(), fence);
    EXPECT_EQ(a->time_remaining(), kPeriod);
    EXPECT_EQ(Raw("unit")->modified_index, a->index());
    EXPECT_EQ(Raw("unit")->value, value);
  }
  // Renewed past its first TTL: still held.
  clock_.Advance(absl::Seconds(9));
  EXPECT_THAT(Acquire("unit", "other"), IsNull());
  EXPECT_THAT(a->Renew(kPeriod), IsOk());
}

TEST_F(LeaseManagerTest, StealAtCurrentIndexTakesOver) {
  std::unique_ptr<Lease> a = Acquire("unit", "machine-a");
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<Lease> b,
      manager_.StealLease("unit", "machine-b", 2, kPeriod, a->index()));
  ASSERT_THAT(b, NotNull());
  EXPECT_EQ(b->machine_id(), "machine-b");
  EXPECT_EQ(b->version(), 2);
  EXPECT_GT(b->fence(), a->fence());

  EXPECT_THAT(a->Renew(kPeriod),
              StatusIs(absl::StatusCode::kAborted,
                       HasSubstr("lease \"unit\": renew (prevIndex")));
  EXPECT_TRUE(a->expired());
  EXPECT_THAT(a->Release(), StatusIs(absl::StatusCode::kAborted));
  EXPECT_EQ(Raw("unit")->modified_index, b->index());  // b's key survives
  EXPECT_THAT(b->Renew(kPeriod), IsOk());
}

TEST_F(LeaseManagerTest, StealAtStaleIndexOrOfVanishedLeaseIsNoLease) {
  std::unique_ptr<Lease> a = Acquire("unit", "machine-a");
  const uint64_t seen = a->index();
  ASSERT_THAT(a->Renew(kPeriod), IsOk());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> stale,
                       manager_.StealLease("unit", "b", 1, kPeriod, seen));
  EXPECT_THAT(stale, IsNull());
  ASSERT_THAT(a->Release(), IsOk());
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<Lease> gone,
      manager_.StealLease("unit", "b", 1, kPeriod, a->index()));
  EXPECT_THAT(gone, IsNull());
}

TEST_F(LeaseManagerTest, ReleaseFreesTheLease) {
  std::unique_ptr<Lease> a = Acquire("unit", "machine-a");
  ASSERT_THAT(a->Release(), IsOk());
  EXPECT_TRUE(a->expired());
  EXPECT_FALSE(Raw("unit").has_value());
  EXPECT_THAT(Acquire("unit", "machine-b"), NotNull());
}

TEST_F(LeaseManagerTest, ReleaseAfterExpiryNeverDeletesTheNewOwnersKey) {
  std::unique_ptr<Lease> a = Acquire("unit", "machine-a");
  clock_.Advance(kPeriod);
  std::unique_ptr<Lease> b = Acquire("unit", "machine-b");
  ASSERT_THAT(b, NotNull());
  EXPECT_THAT(a->Release(), StatusIs(absl::StatusCode::kAborted));
  ASSERT_TRUE(Raw("unit").has_value());
  EXPECT_EQ(Raw("unit")->modified_index, b->index());
}

TEST_F(LeaseManagerTest, FencesIncreaseStrictlyAcrossOwners) {
  std::vector<uint64_t> fences;
  std::unique_ptr<Lease> a = Acquire("unit", "a");
  fences.push_back(a->fence());
  ASSERT_THAT(a->Renew(kPeriod), IsOk());
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<Lease> b,
      manager_.StealLease("unit", "b", 1, kPeriod, a->index()));
  fences.push_back(b->fence());
  ASSERT_THAT(b->Renew(kPeriod), IsOk());
  clock_.Advance(kPeriod + absl::Seconds(1));
  std::unique_ptr<Lease> c = Acquire("unit", "c");
  fences.push_back(c->fence());
  ASSERT_THAT(c->Release(), IsOk());
  std::unique_ptr<Lease> d = Acquire("unit", "d");
  fences.push_back(d->fence());
  for (size_t i = 1; i < fences.size(); ++i) {
    EXPECT_GT(fences[i], fences[i - 1]) << i;
  }
}

TEST_F(LeaseManagerTest, ListLeasesSortedWithHolders) {
  ASSERT_OK_AND_ASSIGN(std::vector<std::unique_ptr<Lease>> empty,
                       manager_.ListLeases());
  EXPECT_TRUE(empty.empty());
  Acquire("b", "m2");
  Acquire("a", "m1");
  Acquire("c", "m3", absl::Seconds(5));
  ASSERT_OK_AND_ASSIGN(std::vector<std::unique_ptr<Lease>> leases,
                       manager_.ListLeases());
  std::vector<std::string> names, holders;
  for (const auto& lease : leases) {
    names.push_back(lease->name());
    holders.push_back(lease->machine_id());
  }
  EXPECT_THAT(names, ElementsAre("a", "b", "c"));
  EXPECT_THAT(holders, ElementsAre("m1", "m2", "m3"));
  EXPECT_EQ(leases[2]->time_remaining(), absl::Seconds(4));
}

TEST_F(LeaseManagerTest, ReadsFleetAndBareValues) {
  registry::SetOptions ttl;
  ttl.ttl = absl::Seconds(30);
  ASSERT_OK(memory_->Set("/leasehold/lease/fleet",
                         R"({"MachineID":"fleet-m","Version":4})", ttl));
  ASSERT_OK(memory_->Set("/leasehold/lease/legacy", "c0ffee", ttl));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> fleet,
                       manager_.GetLease("fleet"));
  EXPECT_EQ(fleet->machine_id(), "fleet-m");
  EXPECT_EQ(fleet->version(), 4);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> legacy,
                       manager_.GetLease("legacy"));
  EXPECT_EQ(legacy->machine_id(), "c0ffee");
  EXPECT_EQ(legacy->version(), 0);
  // A fleet holder's lease can be stolen at its index.
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<Lease> ours,
      manager_.StealLease("fleet", "m", 5, kPeriod, fleet->index()));
  EXPECT_THAT(ours, NotNull());
}

TEST_F(LeaseManagerTest, PrefixIsConfigurable) {
  LeaseManager fleet(&keys_, ManagerWith(&clock_, "/_coreos.com/fleet"));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> lease,
                       fleet.AcquireLease("engine-leader", "m", 1, kPeriod));
  ASSERT_THAT(lease, NotNull());
  EXPECT_THAT(memory_->Get("/_coreos.com/fleet/lease/engine-leader", {}),
              IsOk());
  EXPECT_EQ(fleet.options().prefix, "/_coreos.com/fleet/");
}

TEST_F(LeaseManagerTest, RejectsBadNamesAndMachineIds) {
  for (const std::string& name :
       {std::string(), std::string("a/b"), std::string(".."),
        std::string("x\n"), std::string(256, 'x')}) {
    EXPECT_THAT(
        manager_.AcquireLease(name, "m", 1, kPeriod),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("lease name")));
    EXPECT_THAT(manager_.GetLease(name),
                StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(
        manager_.AcquireLease("unit", name, 1, kPeriod),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("machine id")));
    EXPECT_THAT(manager_.StealLease("unit", name, 1, kPeriod, 1),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
  EXPECT_EQ(keys_.calls(FaultyKeysApi::kAll), 0);
}

TEST_F(LeaseManagerTest, RegistryErrorsAreErrorsNamingTheLease) {
  keys_.FailNext(FaultyKeysApi::kSet, 1);
  EXPECT_THAT(manager_.AcquireLease("unit", "m", 1, kPeriod),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("lease \"unit\": acquire")));
  keys_.FailNext(FaultyKeysApi::kGet, 1);
  EXPECT_THAT(manager_.GetLease("unit"),
              StatusIs(absl::StatusCode::kUnavailable));
}

// ------------------------------------------------- ambiguous outcomes

TEST_F(LeaseManagerTest, AcquireWithLostResponseReadsBackAndHolds) {
  keys_.LoseResponseNext(FaultyKeysApi::kSet, 1);
  std::unique_ptr<Lease> a = Acquire("unit", "machine-a");
  ASSERT_THAT(a, NotNull());
  EXPECT_EQ(a->index(), Raw("unit")->modified_index);
  EXPECT_EQ(a->fence(), a->index());
  EXPECT_EQ(keys_.calls(FaultyKeysApi::kSet), 1);  // resolved, not retried
  EXPECT_THAT(a->Renew(kPeriod), IsOk());
  EXPECT_THAT(Acquire("unit", "machine-b"), IsNull());
}

TEST_F(LeaseManagerTest, AcquireWithDroppedRequestRetriesAfterReadBack) {
  keys_.DropRequestNext(FaultyKeysApi::kSet, 1);
  std::unique_ptr<Lease> a = Acquire("unit", "machine-a");
  ASSERT_THAT(a, NotNull());
  EXPECT_EQ(keys_.calls(FaultyKeysApi::kSet), 2);
  EXPECT_EQ(a->index(), Raw("unit")->modified_index);
}

TEST_F(LeaseManagerTest, AcquireWithLostResponseOfHeldLeaseIsNoLease) {
  std::unique_ptr<Lease> b = Acquire("unit", "machine-b");
  keys_.LoseResponseNext(FaultyKeysApi::kSet, 1);
  EXPECT_THAT(Acquire("unit", "machine-a"), IsNull());
  EXPECT_EQ(Raw("unit")->modified_index, b->index());
}

TEST_F(LeaseManagerTest, AcquireNeverResolvedIsOutcomeUnknown) {
  keys_.LoseResponseNext(FaultyKeysApi::kSet, 1);
  keys_.FailNext(FaultyKeysApi::kGet, 1);
  absl::StatusOr<std::unique_ptr<Lease>> a =
      manager_.AcquireLease("unit", "m", 1, kPeriod);
  EXPECT_THAT(a, StatusIs(absl::StatusCode::kUnavailable,
                          HasSubstr("lease \"unit\": acquire")));
  EXPECT_TRUE(registry::IsOutcomeUnknown(a.status()));

  keys_.DropRequestNext(FaultyKeysApi::kSet, FaultyKeysApi::kForever);
  absl::StatusOr<std::unique_ptr<Lease>> b =
      manager_.AcquireLease("other", "m", 1, kPeriod);
  EXPECT_TRUE(registry::IsOutcomeUnknown(b.status())) << b.status();
  EXPECT_FALSE(Raw("other").has_value());
}

TEST_F(LeaseManagerTest, StealWithLostResponseResolves) {
  std::unique_ptr<Lease> a = Acquire("unit", "machine-a");
  keys_.LoseResponseNext(FaultyKeysApi::kSet, 1);
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<Lease> b,
      manager_.StealLease("unit", "machine-b", 1, kPeriod, a->index()));
  ASSERT_THAT(b, NotNull());
  EXPECT_EQ(b->index(), Raw("unit")->modified_index);
  EXPECT_EQ(b->fence(), b->index());
  EXPECT_GT(b->fence(), a->fence());
  EXPECT_THAT(a->Renew(kPeriod), StatusIs(absl::StatusCode::kAborted));
}

TEST_F(LeaseManagerTest, LostStealRaceWithLostResponsesHasOneWinner) {
  std::unique_ptr<Lease> a = Acquire("unit", "machine-a");
  LeaseManager other(&keys_, ManagerWith(&clock_));
  keys_.LoseResponseNext(FaultyKeysApi::kSet, 2);
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<Lease> b,
      manager_.StealLease("unit", "b", 1, kPeriod, a->index()));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> c,
                       other.StealLease("unit", "c", 1, kPeriod, a->index()));
  EXPECT_THAT(b, NotNull());
  EXPECT_THAT(c, IsNull());
}

TEST_F(LeaseManagerTest, StealWithDroppedRequestRetries) {
  std::unique_ptr<Lease> a = Acquire("unit", "machine-a");
  keys_.DropRequestNext(FaultyKeysApi::kSet, 1);
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<Lease> b,
      manager_.StealLease("unit", "machine-b", 1, kPeriod, a->index()));
  ASSERT_THAT(b, NotNull());
  EXPECT_EQ(keys_.calls(FaultyKeysApi::kSet), 3);  // acquire + 2 steals
}

TEST_F(LeaseManagerTest, RenewWithLostResponseOrDroppedRequestResolves) {
  std::unique_ptr<Lease> a = Acquire("unit", "m");
  clock_.Advance(absl::Seconds(5));
  keys_.LoseResponseNext(FaultyKeysApi::kSet, 1);
  ASSERT_THAT(a->Renew(kPeriod), IsOk());
  EXPECT_EQ(a->index(), Raw("unit")->modified_index);
  EXPECT_EQ(a->time_remaining(), kPeriod);

  keys_.DropRequestNext(FaultyKeysApi::kSet, 1);
  ASSERT_THAT(a->Renew(kPeriod), IsOk());
  EXPECT_EQ(a->index(), Raw("unit")->modified_index);
}

TEST_F(LeaseManagerTest, RenewWithLostResponseAfterStealIsAborted) {
  std::unique_ptr<Lease> a = Acquire("unit", "machine-a");
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<Lease> b,
      manager_.StealLease("unit", "b", 1, kPeriod, a->index()));
  keys_.LoseResponseNext(FaultyKeysApi::kSet, 1);
  EXPECT_THAT(a->Renew(kPeriod), StatusIs(absl::StatusCode::kAborted));
  EXPECT_TRUE(a->expired());
}

TEST_F(LeaseManagerTest, ReleaseWithLostResponseIsDone) {
  std::unique_ptr<Lease> a = Acquire("unit", "m");
  keys_.LoseResponseNext(FaultyKeysApi::kDelete, 1);
  EXPECT_THAT(a->Release(), IsOk());
  EXPECT_FALSE(Raw("unit").has_value());
  std::unique_ptr<Lease> b = Acquire("unit", "m");
  keys_.DropRequestNext(FaultyKeysApi::kDelete, 1);
  EXPECT_THAT(b->Release(), IsOk());
  EXPECT_FALSE(Raw("unit").has_value());
  EXPECT_EQ(keys_.calls(FaultyKeysApi::kDelete), 3);
}

// -------------------------------------------- Writes whose outcome is unknown

TEST_F(LeaseManagerTest, RetryAfterUnresolvedRenewCountsFromTheEarlierSend) {
  const absl::Time t3 = clock_.Now() + absl::Seconds(3);
  std::unique_ptr<Lease> a = WithUnresolvedLandedRenew();
  clock_.Advance(absl::Seconds(5));
  keys_.DropRequestNext(FaultyKeysApi::kSet, 1);  // the retry never arrives
  ASSERT_THAT(a->Renew(kPeriod), IsOk());
  EXPECT_EQ(a->index(), Raw("unit")->modified_index);
  // The server counts from the renew sent at t=3, not from the retry.
  EXPECT_EQ(a->expiry(), t3 + kPeriod);
}

TEST_F(LeaseManagerTest, RenewAfterUnresolvedRenewThatLandedIsNotLost) {
  const absl::Time t3 = clock_.Now() + absl::Seconds(3);
  std::unique_ptr<Lease> a = WithUnresolvedLandedRenew();
  clock_.Advance(absl::Seconds(5));
  // Its compare-and-swap fails on the index our own renew moved.
  ASSERT_THAT(a->Renew(kPeriod), IsOk());
  EXPECT_FALSE(a->expired());
  EXPECT_EQ(a->expiry(), t3 + kPeriod);
  ASSERT_THAT(a->Renew(kPeriod), IsOk());
  EXPECT_EQ(a->time_remaining(), kPeriod);
  EXPECT_THAT(Acquire("unit", "other"), IsNull());
}

TEST_F(LeaseManagerTest, ReleaseAfterOurOwnLateRenewDeletesTheKey) {
  std::unique_ptr<Lease> a = WithUnresolvedLandedRenew();
  ASSERT_THAT(a->Release(), IsOk());
  EXPECT_FALSE(Raw("unit").has_value());
}

TEST_F(LeaseManagerTest, SetValueAfterUnresolvedRenewCountsFromTheRenew) {
  const absl::Time t0 = clock_.Now();
  ASSERT_OK_AND_ASSIGN(registry::Response created,
                       memory_->CreateInOrder("/q", "v1", {.ttl = kPeriod}));
  std::unique_ptr<Lease> a = manager_.AdoptKey(created.node, kPeriod, t0);
  clock_.Advance(absl::Seconds(3));
  keys_.LoseResponseNext(FaultyKeysApi::kSet, 1);
  keys_.FailNext(FaultyKeysApi::kGet, 1);
  ASSERT_TRUE(registry::IsOutcomeUnknown(a->Renew(kPeriod)));
  clock_.Advance(absl::Seconds(5));
  // The same value: the read-back cannot tell this write from the renew.
  keys_.DropRequestNext(FaultyKeysApi::kSet, 1);
  ASSERT_THAT(a->SetValue("v1"), IsOk());
  EXPECT_EQ(a->expiry(), t0 + absl::Seconds(3) + kPeriod);
  // A new value after a renew that landed is written at the renew's index.
  ASSERT_THAT(a->SetValue("v2"), IsOk());
  EXPECT_EQ(memory_->Get(created.node.key, {})->node.value, "v2");
  EXPECT_EQ(a->time_remaining(), kPeriod);
}

TEST_F(LeaseManagerTest, StuckRenewGivesUpAfterAThirdOfTheTimeLeft) {
  std::unique_ptr<Lease> a = Acquire("unit", "m");
  clock_.Advance(absl::Seconds(4));  // 6 s left
  keys_.StallNext(FaultyKeysApi::kSet, 1);
  // A third of what was left.
  std::optional<absl::Status> renew = RenewPastAStall(*a, absl::Seconds(2));
  ASSERT_TRUE(renew.has_value()) << "the stuck renew did not give up";
  // The retry, sent with 4 s left, saved the lease.
  EXPECT_THAT(*renew, IsOk());
  EXPECT_EQ(a->index(), Raw("unit")->modified_index);
  EXPECT_EQ(a->time_remaining(), kPeriod);
}

TEST_F(LeaseManagerTest, StuckRenewIsSentAgainAtOnceNotAfterAReadBack) {
  std::unique_ptr<Lease> a = Acquire("unit", "m");
  clock_.Advance(absl::Seconds(4));  // 6 s left
  // A member in an election: the renew stalls, and so would a quorum read
  // sent after it. The renew goes out again at once and lands.
  keys_.StallNext(FaultyKeysApi::kSet, 1);
  keys_.StallNext(FaultyKeysApi::kGet, 1);
  // The first attempt's third.
  std::optional<absl::Status> renew = RenewPastAStall(*a, absl::Seconds(2));
  ASSERT_TRUE(renew.has_value()) << "the renew waited on a read-back";
  EXPECT_THAT(*renew, IsOk());
  EXPECT_EQ(a->index(), Raw("unit")->modified_index);
  // The second attempt, sent with 4 s left, counts from its own send.
  EXPECT_EQ(a->time_remaining(), kPeriod);
}

TEST_F(LeaseManagerTest, RenewSentAgainAfterALandedAttemptCountsFromTheFirst) {
  std::unique_ptr<Lease> a = Acquire("unit", "m");
  const absl::Time first = clock_.Now() + absl::Seconds(4);
  clock_.Advance(absl::Seconds(4));
  // The first attempt lands but its answer is lost; the second finds the
  // index moved, and the read-back shows our own renew.
  keys_.LoseResponseNext(FaultyKeysApi::kSet, 1);
  ASSERT_THAT(a->Renew(kPeriod), IsOk());
  EXPECT_EQ(a->index(), Raw("unit")->modified_index);
  EXPECT_EQ(a->expiry(), first + kPeriod);
}

// ---------------------------------------------------------- Safety margin

TEST(LeaseSafetyMarginTest, HolderStopsAMarginBeforeTheTtl) {
  SimulatedClock clock;
  std::unique_ptr<registry::KeysApi> memory =
      registry::NewMemoryRegistry(MemoryWith(&clock));
  LeaseManagerOptions options;
  options.clock = &clock;  // the default margin: 2 % + 10 ms
  LeaseManager manager(memory.get(), options);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> a,
                       manager.AcquireLease("unit", "m", 1, kPeriod));
  EXPECT_EQ(a->time_remaining(), kPeriod - absl::Milliseconds(210));
  clock.Advance(kPeriod - absl::Milliseconds(210));
  EXPECT_TRUE(a->expired());
  ASSERT_THAT(a->Renew(kPeriod), IsOk());  // the server still has it
  EXPECT_EQ(a->time_remaining(), kPeriod - absl::Milliseconds(210));

  options.safety_margin.fixed = absl::Seconds(1);
  LeaseManager tight(memory.get(), options);
  EXPECT_THAT(
      tight.AcquireLease("other", "m", 1, absl::Seconds(1)),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("safety margin")));
}

// ----------------------------------------------- Expired, not swept yet

TEST(LeaseExpiryTest, KeyPastItsTtlNotYetSweptIsExpiredNotPermanent) {
  SimulatedClock clock;
  registry::MemoryOptions memory_options = MemoryWith(&clock);
  memory_options.expiry_sweep_interval = absl::Milliseconds(500);  // etcd's
  std::unique_ptr<registry::KeysApi> memory =
      registry::NewMemoryRegistry(memory_options);
  LeaseManager manager(memory.get(), ManagerWith(&clock));
  clock.Advance(absl::Milliseconds(100));  // expire between two sweeps
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> a,
                       manager.AcquireLease("unit", "m", 1, absl::Seconds(2)));
  clock.Advance(absl::Milliseconds(2200));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> seen, manager.GetLease("unit"));
  ASSERT_THAT(seen, NotNull());  // still there: the sweep has not run
  EXPECT_LE(seen->period(), absl::ZeroDuration());
  EXPECT_TRUE(seen->expired());
  EXPECT_NE(seen->expiry(), absl::InfiniteFuture());
  ASSERT_OK_AND_ASSIGN(std::vector<std::unique_ptr<Lease>> all,
                       manager.ListLeases());
  ASSERT_EQ(all.size(), 1u);
  EXPECT_TRUE(all[0]->expired());
  clock.Advance(absl::Milliseconds(300));  // the sweep tick
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> swept, manager.GetLease("unit"));
  EXPECT_THAT(swept, IsNull());
}

// --------------------------------------------------------- WaitForChange

TEST_F(LeaseManagerTest, WaitForChangeReturnsNoLeaseOnRelease) {
  std::unique_ptr<Lease> a = Acquire("unit", "machine-a");
  absl::StatusOr<std::unique_ptr<Lease>> change;
  std::thread standby(
      [&] { change = manager_.WaitForChange("unit", a->index()); });
  ASSERT_TRUE(Eventually([&] { return keys_.in_flight() == 1; }));
  ASSERT_THAT(a->Release(), IsOk());
  standby.join();
  ASSERT_THAT(change, IsOk());
  EXPECT_THAT(*change, IsNull());
}

TEST_F(LeaseManagerTest, WaitForChangeReturnsNoLeaseOnExpiry) {
  std::unique_ptr<Lease> a = Acquire("unit", "machine-a", absl::Seconds(5));
  absl::StatusOr<std::unique_ptr<Lease>> change;
  std::thread standby(
      [&] { change = manager_.WaitForChange("unit", a->index()); });
  ASSERT_TRUE(Eventually([&] { return keys_.in_flight() == 1; }));
  clock_.Advance(absl::Seconds(4));
  clock_.Advance(absl::Seconds(1));
  standby.join();
  ASSERT_THAT(change, IsOk());
  EXPECT_THAT(*change, IsNull());
}

TEST_F(LeaseManagerTest, WaitForChangeSkipsRenewalsAndReportsTheStealer) {
  std::unique_ptr<Lease> a = Acquire("unit", "machine-a");
  const uint64_t seen = a->index();
  ASSERT_THAT(a->Renew(kPeriod), IsOk());
  // A fleet holder renews by setting the same value again.
  registry::SetOptions fleet_renew;
  fleet_renew.prev_index = a->index();
  fleet_renew.ttl = kPeriod;
  ASSERT_OK_AND_ASSIGN(
      registry::Response r,
      memory_->Set("/leasehold/lease/unit", Raw("unit")->value, fleet_renew));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> b,
                       manager_.StealLease("unit", "machine-b", 1, kPeriod,
                                           r.node.modified_index));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> change,
                       manager_.WaitForChange("unit", seen));
  ASSERT_THAT(change, NotNull());
  EXPECT_EQ(change->machine_id(), "machine-b");
  EXPECT_EQ(change->index(), b->index());
}

TEST_F(LeaseManagerTest, WaitForChangeOfFreeLeaseReturnsAtOnce) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> change,
                       manager_.WaitForChange("unit", 0));
  EXPECT_THAT(change, IsNull());
}

TEST_F(LeaseManagerTest, WaitForChangeHonoursDeadlineAndCancel) {
  std::unique_ptr<Lease> a = Acquire("unit", "machine-a", absl::Seconds(60));
  absl::StatusOr<std::unique_ptr<Lease>> timed_out;
  std::thread waiter([&] {
    timed_out = manager_.WaitForChange("unit", a->index(),
                                       clock_.Now() + absl::Seconds(5));
  });
  ASSERT_TRUE(Eventually([&] { return keys_.in_flight() == 1; }));
  clock_.Advance(absl::Seconds(6));
  waiter.join();
  EXPECT_THAT(timed_out, StatusIs(absl::StatusCode::kDeadlineExceeded));

  CancelToken cancel;
  absl::StatusOr<std::unique_ptr<Lease>> cancelled;
  std::thread canceller([&] {
    cancelled = manager_.WaitForChange("unit", a->index(),
                                       absl::InfiniteFuture(), &cancel);
  });
  ASSERT_TRUE(Eventually([&] { return keys_.in_flight() == 1; }));
  cancel.Cancel();
  canceller.join();
  EXPECT_THAT(cancelled, StatusIs(absl::StatusCode::kCancelled));
}

class LeaseManagerShortHistoryTest : public LeaseManagerTest {
 protected:
  LeaseManagerShortHistoryTest() : LeaseManagerTest(/*history=*/4) {}
};

TEST_F(LeaseManagerShortHistoryTest, WaitForChangeResumesAfterHistoryCleared) {
  std::unique_ptr<Lease> a = Acquire("unit", "machine-a", absl::Seconds(60));
  for (int i = 0; i < 10; ++i) {
    ASSERT_OK(memory_->Set("/other/" + std::to_string(i), "x", {}));
  }
  absl::StatusOr<std::unique_ptr<Lease>> change;
  std::thread standby(
      [&] { change = manager_.WaitForChange("unit", a->index()); });
  // The first watch fails with kOutOfRange; the re-read finds the lease
  // unchanged and the second watch blocks.
  ASSERT_TRUE(Eventually([&] {
    return keys_.calls(FaultyKeysApi::kWatch) == 2 && keys_.in_flight() == 1;
  }));
  ASSERT_THAT(a->Release(), IsOk());
  standby.join();
  ASSERT_THAT(change, IsOk());
  EXPECT_THAT(*change, IsNull());
}

}  // namespace
}  // namespace leasehold::lease
