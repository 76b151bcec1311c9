// Every kind of broken answer (tests/testing/broken_etcd.h) against every
// operation users rely on: get, acquire, renew, steal, release, watch and
// lock. Alone, a broken member is never a grant, never "nobody holds it",
// never an event; listed before a real etcd (etcd://<broken>,<real>), every
// operation reaches the real member and gives the right answer.
#include <algorithm>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lease/lease_manager.h"
#include "lease/mutex.h"
#include "lease/session.h"
#include "registry/errors.h"
#include "registry/etcd/etcd_client.h"
#include "registry/etcd_v3/etcd_v3_client.h"
#include "tests/testing/broken_etcd.h"
#include "tests/testing/etcd_server.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::registry {
namespace {

using ::leasehold::lease::Lease;
using ::leasehold::lease::LeaseManager;
using ::leasehold::testing::AllBreakages;
using ::leasehold::testing::Breakage;
using ::leasehold::testing::BreakageName;
using ::leasehold::testing::BrokenEtcd;
using ::leasehold::testing::IsOk;
using ::testing::AnyOf;

constexpr absl::Duration kTtl = absl::Seconds(30);

// No answer to trust: the codes that say so (exit 3 in the CLI).
::testing::Matcher<absl::Status> NoAnswer() {
  using ::leasehold::testing::StatusIs;
  return AnyOf(StatusIs(absl::StatusCode::kUnavailable),
               StatusIs(absl::StatusCode::kDataLoss),
               StatusIs(absl::StatusCode::kDeadlineExceeded));
}

// Each breakage against each API: "etcd" (v2) and "etcd3" (v3, whose
// answers the broken member's bodies resemble even less).
class BrokenAnswerTest
    : public ::testing::TestWithParam<std::tuple<std::string, Breakage>> {
 protected:
  void SetUp() override {
    auto broken = BrokenEtcd::Start(breakage());
    ASSERT_THAT(broken, IsOk());
    broken_ = *std::move(broken);
    broken_only_ = Client({broken_->endpoint()});
    mixed_ = Client({broken_->endpoint(), Real().endpoint()});
    real_ = Client({Real().endpoint()});
    ASSERT_TRUE(broken_only_ && mixed_ && real_);
  }

  const std::string& api() const { return std::get<0>(GetParam()); }
  Breakage breakage() const { return std::get<1>(GetParam()); }
  ::leasehold::testing::EtcdServer& Real() const {
    return ::leasehold::testing::SharedEtcdFor(api());
  }

  std::unique_ptr<KeysApi> Client(std::vector<std::string> endpoints) const {
    EtcdOptions options;
    options.endpoints = std::move(endpoints);
    // Short, so that the slow-drip answer costs a second per request.
    options.request_timeout = absl::Seconds(1);
    auto keys = api() == "etcd3" ? NewEtcdV3Client(std::move(options))
                                 : NewEtcdClient(std::move(options));
    EXPECT_THAT(keys, IsOk());
    return keys.ok() ? *std::move(keys) : nullptr;
  }

  // A lease name of this test and breakage.
  std::string Name(absl::string_view op) const {
    return absl::StrCat(BreakageName(breakage()), "-", op);
  }

  // The lease `name` as `machine` holds it, acquired on the real etcd.
  std::unique_ptr<Lease> HeldOnRealEtcd(const std::string& name,
                                        const std::string& machine) {
    auto lease = LeaseManager(real_.get()).AcquireLease(name, machine, 1, kTtl);
    EXPECT_THAT(lease, IsOk());
    EXPECT_TRUE(lease.ok() && *lease != nullptr);
    return lease.ok() ? *std::move(lease) : nullptr;
  }

  // The same lease as `manager` would hold it.
  std::unique_ptr<Lease> Through(LeaseManager& manager,
                                 const std::string& name) {
    auto node = real_->Get(manager.KeyFor(name), {});
    EXPECT_THAT(node, IsOk());
    if (!node.ok()) return nullptr;
    return manager.AdoptKey(node->node, kTtl,
                            RealClock()->Now() + absl::Seconds(20));
  }

  uint64_t RealIndex(const std::string& key) {
    auto r = real_->Get(key, {});
    return r.ok() ? r->node.modified_index : 0;
  }

  std::unique_ptr<BrokenEtcd> broken_;
  std::unique_ptr<KeysApi> broken_only_;
  std::unique_ptr<KeysApi> mixed_;
  std::unique_ptr<KeysApi> real_;
};

TEST_P(BrokenAnswerTest, GetIsNeverNobodyHoldsIt) {
  const std::string name = Name("get");
  absl::StatusOr<std::unique_ptr<Lease>> alone =
      LeaseManager(broken_only_.get()).GetLease(name);
  EXPECT_THAT(alone.status(), NoAnswer());

  HeldOnRealEtcd(name, "m1");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> seen,
                       LeaseManager(mixed_.get()).GetLease(name));
  ASSERT_NE(seen, nullptr);
  EXPECT_EQ(seen->machine_id(), "m1");
}

TEST_P(BrokenAnswerTest, AcquireIsNeverAGrant) {
  const std::string name = Name("acquire");
  absl::StatusOr<std::unique_ptr<Lease>> alone =
      LeaseManager(broken_only_.get()).AcquireLease(name, "m1", 1, kTtl);
  EXPECT_THAT(alone.status(), NoAnswer());
  // On v3 a TTL key's write starts with a lease grant: the broken answer to
  // it stops the acquire before the key's write is ever sent.
  EXPECT_EQ(IsOutcomeUnknown(alone.status()), api() != "etcd3")
      << alone.status();

  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<Lease> mine,
      LeaseManager(mixed_.get()).AcquireLease(name, "m2", 1, kTtl));
  ASSERT_NE(mine, nullptr);
  EXPECT_EQ(RealIndex(LeaseManager(real_.get()).KeyFor(name)), mine->index());
  EXPECT_EQ(mine->fence(), mine->index());
}

TEST_P(BrokenAnswerTest, RenewNeverSucceedsUnseen) {
  const std::string name = Name("renew");
  HeldOnRealEtcd(name, "m1");
  LeaseManager broken(broken_only_.get());
  const std::string key = broken.KeyFor(name);
  const uint64_t before = RealIndex(key);
  std::unique_ptr<Lease> alone = Through(broken, name);
  ASSERT_NE(alone, nullptr);
  EXPECT_THAT(alone->Renew(kTtl), NoAnswer());
  EXPECT_EQ(RealIndex(key), before);

  LeaseManager mixed(mixed_.get());
  std::unique_ptr<Lease> via = Through(mixed, name);
  ASSERT_NE(via, nullptr);
  ASSERT_THAT(via->Renew(kTtl), IsOk());
  // Marked: a v3 renew is a keep-alive, which leaves the index alone.
  if (api() == "etcd3") {
    EXPECT_EQ(via->index(), before);
  } else {
    EXPECT_GT(via->index(), before);
  }
  EXPECT_EQ(RealIndex(key), via->index());
}

TEST_P(BrokenAnswerTest, StealIsNeverAGrantNorAMiss) {
  const std::string name = Name("steal");
  std::unique_ptr<Lease> held = HeldOnRealEtcd(name, "m1");
  ASSERT_NE(held, nullptr);
  absl::StatusOr<std::unique_ptr<Lease>> alone =
      LeaseManager(broken_only_.get())
          .StealLease(name, "m2", 2, kTtl, held->index());
  EXPECT_THAT(alone.status(), NoAnswer());

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> stolen,
                       LeaseManager(mixed_.get())
                           .StealLease(name, "m2", 2, kTtl, held->index()));
  ASSERT_NE(stolen, nullptr);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> now,
                       LeaseManager(real_.get()).GetLease(name));
  ASSERT_NE(now, nullptr);
  EXPECT_EQ(now->machine_id(), "m2");
  EXPECT_EQ(now->index(), stolen->index());
}

TEST_P(BrokenAnswerTest, ReleaseNeverSucceedsUnseen) {
  const std::string name = Name("release");
  HeldOnRealEtcd(name, "m1");
  LeaseManager broken(broken_only_.get());
  std::unique_ptr<Lease> alone = Through(broken, name);
  ASSERT_NE(alone, nullptr);
  EXPECT_THAT(alone->Release(), NoAnswer());
  EXPECT_NE(RealIndex(broken.KeyFor(name)), 0u);

  LeaseManager mixed(mixed_.get());
  std::unique_ptr<Lease> via = Through(mixed, name);
  ASSERT_NE(via, nullptr);
  ASSERT_THAT(via->Release(), IsOk());
  EXPECT_EQ(RealIndex(mixed.KeyFor(name)), 0u);
}

TEST_P(BrokenAnswerTest, WatchNeverDeliversABrokenEvent) {
  const std::string key = absl::StrCat("/broken/watch/", Name("watch"));
  ASSERT_OK_AND_ASSIGN(Response start, real_->Set(key, "0", {}));
  WatchOptions watch;
  watch.wait_index = start.node.modified_index + 1;
  watch.deadline = RealClock()->Now() + absl::Milliseconds(500);
  EXPECT_THAT(
      broken_only_->Watch(key, watch).status(),
      ::leasehold::testing::StatusIs(absl::StatusCode::kDeadlineExceeded));

  ASSERT_OK_AND_ASSIGN(Response next, real_->Set(key, "1", {}));
  watch.deadline = RealClock()->Now() + absl::Seconds(20);
  ASSERT_OK_AND_ASSIGN(Response event, mixed_->Watch(key, watch));
  EXPECT_EQ(event.node.value, "1");
  EXPECT_EQ(event.node.modified_index, next.node.modified_index);
}

TEST_P(BrokenAnswerTest, LockIsNeverHeldUnseen) {
  lease::SessionOptions options;
  options.ttl = absl::Seconds(10);
  options.prefix = absl::StrCat("/broken/", Name("lock"), "/");
  absl::StatusOr<std::unique_ptr<lease::Session>> alone =
      lease::Session::Create(broken_only_.get(), options);
  EXPECT_THAT(alone.status(), NoAnswer());

  // A create whose answer could not be trusted is outcome-unknown; the
  // caller retries, as it does on kUnavailable (kDataLoss here), and the
  // retry reaches the real member.
  absl::StatusOr<std::unique_ptr<lease::Session>> session =
      lease::Session::Create(mixed_.get(), options);
  if (!session.ok()) {
    EXPECT_TRUE(IsOutcomeUnknown(session.status())) << session.status();
    session = lease::Session::Create(mixed_.get(), options);
  }
  ASSERT_THAT(session, IsOk());
  lease::Mutex mutex(session->get(), "m");
  ASSERT_THAT(mutex.Lock(RealClock()->Now() + absl::Seconds(20)), IsOk());
  EXPECT_TRUE(mutex.IsOwner());
  GetOptions list;
  list.recursive = true;
  ASSERT_OK_AND_ASSIGN(
      Response queue, real_->Get(absl::StrCat(options.prefix, "lock/m"), list));
  EXPECT_EQ(queue.node.nodes.size(), 1u);
  EXPECT_THAT(mutex.Unlock(), IsOk());
}

INSTANTIATE_TEST_SUITE_P(
    AllKinds, BrokenAnswerTest,
    ::testing::Combine(::testing::ValuesIn(::leasehold::testing::EtcdApis()),
                       ::testing::ValuesIn(AllBreakages())),
    [](const ::testing::TestParamInfo<std::tuple<std::string, Breakage>>&
           info) {
      std::string name = absl::StrCat(std::get<0>(info.param), "_",
                                      BreakageName(std::get<1>(info.param)));
      std::replace(name.begin(), name.end(), '-', '_');
      return name;
    });

}  // namespace
}  // namespace leasehold::registry
