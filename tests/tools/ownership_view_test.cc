// The scheduler's shared picture of who owns what, kept from one watch:
// it follows acquires, releases and expiries without listing again.
#include "tools/sim/ownership_view.h"

#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lease/lease_manager.h"
#include "registry/memory/memory_registry.h"
#include "tests/testing/eventually.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::sim {
namespace {

using ::leasehold::testing::Eventually;
using ::leasehold::testing::IsOk;
using ::testing::ElementsAre;
using ::testing::NotNull;

constexpr absl::Duration kTtl = absl::Seconds(2);

class OwnershipViewTest : public ::testing::Test {
 protected:
  OwnershipViewTest()
      : keys_(registry::NewMemoryRegistry({.clock = &clock_})),
        leases_(keys_.get(), {.clock = &clock_}) {}

  std::unique_ptr<lease::Lease> Acquire(const std::string& name,
                                        const std::string& machine,
                                        int version = 1) {
    absl::StatusOr<std::unique_ptr<lease::Lease>> lease =
        leases_.AcquireLease(name, machine, version, kTtl);
    EXPECT_THAT(lease, IsOk());
    EXPECT_THAT(*lease, NotNull());
    return *std::move(lease);
  }

  SimulatedClock clock_;
  std::unique_ptr<registry::KeysApi> keys_;
  lease::LeaseManager leases_;
};

TEST_F(OwnershipViewTest, ReadsWhatIsHeldWhenItStarts) {
  std::unique_ptr<lease::Lease> presence = Acquire("machine-m1", "m1");
  std::unique_ptr<lease::Lease> unit = Acquire("unit-01", "m1");
  absl::StatusOr<std::shared_ptr<OwnershipView>> view =
      OwnershipView::Shared(keys_.get(), &clock_, "/leasehold/", 3);
  ASSERT_THAT(view, IsOk());
  const OwnershipView::Summary seen = (*view)->Summarize();
  EXPECT_EQ(seen.machines, 1);
  EXPECT_EQ(seen.free_units, 2);
  EXPECT_EQ(seen.fewest_units, 1);
  EXPECT_FALSE(seen.engine.has_value());
  EXPECT_THAT((*view)->FreeUnits(1, 5), ElementsAre("unit-02", "unit-00"));
}

TEST_F(OwnershipViewTest, FollowsAcquiresReleasesAndExpiries) {
  absl::StatusOr<std::shared_ptr<OwnershipView>> view =
      OwnershipView::Shared(keys_.get(), &clock_, "/leasehold/", 3);
  ASSERT_THAT(view, IsOk());
  std::unique_ptr<lease::Lease> m1 = Acquire("machine-m1", "m1");
  std::unique_ptr<lease::Lease> m2 = Acquire("machine-m2", "m2");
  std::unique_ptr<lease::Lease> engine = Acquire("engine-leader", "m2", 2);
  std::unique_ptr<lease::Lease> unit0 = Acquire("unit-00", "m1");
  std::unique_ptr<lease::Lease> unit1 = Acquire("unit-01", "m1");
  ASSERT_TRUE(Eventually([&] { return (*view)->UnitsOf("m1") == 2; }));
  OwnershipView::Summary seen = (*view)->Summarize();
  EXPECT_EQ(seen.machines, 2);
  EXPECT_EQ(seen.free_units, 1);
  EXPECT_EQ(seen.fewest_units, 0);  // m2 is present and holds none
  ASSERT_TRUE(seen.engine.has_value());
  EXPECT_EQ(seen.engine->machine_id, "m2");
  EXPECT_EQ(seen.engine->version, 2);

  ASSERT_THAT(unit0->Release(), IsOk());
  ASSERT_TRUE(Eventually([&] { return (*view)->UnitsOf("m1") == 1; }));
  EXPECT_THAT((*view)->FreeUnits(0, 5), ElementsAre("unit-00", "unit-02"));

  // Nobody renews: every lease expires, and the registry says so.
  clock_.Advance(kTtl + absl::Seconds(1));
  ASSERT_THAT(leases_.ListLeases(), IsOk());
  // The view takes the expiries one event at a time: wait for the last.
  EXPECT_TRUE(Eventually([&] {
    seen = (*view)->Summarize();
    return seen.machines == 0 && seen.free_units == 3 &&
           !seen.engine.has_value() && (*view)->UnitsOf("m1") == 0;
  })) << "machines "
      << seen.machines << ", free units " << seen.free_units << ", engine "
      << (seen.engine.has_value() ? "held" : "free") << ", units of m1 "
      << (*view)->UnitsOf("m1");
}

TEST_F(OwnershipViewTest, OneViewPerRegistryPrefixAndUnitCount) {
  absl::StatusOr<std::shared_ptr<OwnershipView>> a =
      OwnershipView::Shared(keys_.get(), &clock_, "/leasehold/", 3);
  absl::StatusOr<std::shared_ptr<OwnershipView>> b =
      OwnershipView::Shared(keys_.get(), &clock_, "/leasehold/", 3);
  absl::StatusOr<std::shared_ptr<OwnershipView>> other =
      OwnershipView::Shared(keys_.get(), &clock_, "/other/", 3);
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  ASSERT_THAT(other, IsOk());
  EXPECT_EQ(a->get(), b->get());
  EXPECT_NE(a->get(), other->get());
}

TEST_F(OwnershipViewTest, NamesOutsideTheUnitsAreNoUnits) {
  std::unique_ptr<lease::Lease> beyond = Acquire("unit-07", "m1");
  std::unique_ptr<lease::Lease> padded = Acquire("unit-001", "m1");
  absl::StatusOr<std::shared_ptr<OwnershipView>> view =
      OwnershipView::Shared(keys_.get(), &clock_, "/leasehold/", 3);
  ASSERT_THAT(view, IsOk());
  EXPECT_EQ((*view)->Summarize().free_units, 3);
  EXPECT_EQ((*view)->UnitsOf("m1"), 0);
}

}  // namespace
}  // namespace leasehold::sim
