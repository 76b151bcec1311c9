// The etcd client against a real etcd (started by the fixture): escaping,
// keep-alive, failover, lost answers and watches across failures.
#include "registry/etcd/etcd_client.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registry/errors.h"
#include "registry/open.h"
#include "tests/testing/etcd_server.h"
#include "tests/testing/loopback_net.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::registry {
namespace {

using ::leasehold::testing::EtcdServer;
using ::leasehold::testing::FreePort;
using ::leasehold::testing::IsOk;
using ::leasehold::testing::SharedEtcd;
using ::leasehold::testing::StatusIs;
using ::leasehold::testing::TcpProxy;
using ::testing::HasSubstr;

std::string Loopback(int port) {
  return absl::StrCat("http://127.0.0.1:", port);
}

std::unique_ptr<KeysApi> Client(std::vector<std::string> endpoints) {
  EtcdOptions options;
  options.endpoints = std::move(endpoints);
  options.request_timeout = absl::Seconds(3);
  auto keys = NewEtcdClient(std::move(options));
  EXPECT_THAT(keys, IsOk());
  return keys.ok() ? *std::move(keys) : nullptr;
}

std::unique_ptr<TcpProxy> Proxy(int upstream_port) {
  auto proxy = TcpProxy::Start(upstream_port);
  EXPECT_THAT(proxy, IsOk());
  return proxy.ok() ? *std::move(proxy) : nullptr;
}

SetOptions Create() {
  SetOptions options;
  options.prev_exist = false;
  return options;
}

WatchOptions WatchFrom(uint64_t index, absl::Duration timeout,
                       const CancelToken* cancel = nullptr) {
  WatchOptions options;
  options.wait_index = index;
  options.deadline = RealClock()->Now() + timeout;
  options.cancel = cancel;
  return options;
}

constexpr char kOddBytes[] = "\0 & = + % # ? \r\n\xe2\x9c\x93";

TEST(EtcdClientTest, KeysAndValuesOfAnyBytesRoundTrip) {
  auto keys = Client({SharedEtcd().endpoint()});
  const std::vector<std::string> names = {
      "plain",     "with space",    "q?mark",
      "hash#tag",  "per%cent",      "amp&and",
      "plus+sign", "eq=ual",        "\xc3\xa9t\xc3\xa9 \xe2\x9c\x93",
      "new\nline", "tab\tquote\"'", "semi;colon:"};
  for (const std::string& name : names) {
    const std::string key = "/roundtrip/" + name + "/leaf " + name;
    // Any valid UTF-8, NUL included (etcd's JSON encoder would replace
    // invalid UTF-8).
    const std::string value =
        name + std::string(kOddBytes, sizeof(kOddBytes) - 1) + name;
    ASSERT_THAT(keys->Set(key, value, {}), IsOk()) << name;
    ASSERT_OK_AND_ASSIGN(Response got, keys->Get(key, {}));
    EXPECT_EQ(got.node.key, key);
    EXPECT_EQ(got.node.value, value) << name;
    // The odd bytes also survive as compare-and-swap guards.
    SetOptions cas;
    cas.prev_value = value;
    EXPECT_THAT(keys->Set(key, "next", cas), IsOk()) << name;
  }
  GetOptions recursive;
  recursive.recursive = true;
  ASSERT_OK_AND_ASSIGN(Response dir, keys->Get("/roundtrip", recursive));
  EXPECT_EQ(dir.node.nodes.size(), names.size());
}

TEST(EtcdClientTest, ReusesConnectionsInSteadyState) {
  auto proxy = Proxy(SharedEtcd().client_port());
  auto keys = Client({Loopback(proxy->port())});
  for (int i = 0; i < 50; ++i) {
    ASSERT_THAT(keys->Set("/keepalive/k", absl::StrCat(i), {}), IsOk());
    ASSERT_THAT(keys->Get("/keepalive/k", {}), IsOk());
  }
  EXPECT_EQ(proxy->connections_accepted(), 1);

  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&keys, t] {
      for (int i = 0; i < 25; ++i) {
        EXPECT_THAT(keys->Set(absl::StrCat("/keepalive/t", t), "v", {}),
                    IsOk());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_LE(proxy->connections_accepted(), 5);
}

TEST(EtcdClientTest, FailsOverToTheSecondEndpointWhenTheFirstIsDown) {
  auto keys = Client({Loopback(FreePort()), SharedEtcd().endpoint()});
  EXPECT_THAT(keys->Set("/failover/k", "v", Create()), IsOk());
  ASSERT_OK_AND_ASSIGN(Response got, keys->Get("/failover/k", {}));
  EXPECT_EQ(got.node.value, "v");
}

TEST(EtcdClientTest, LostAnswerOfAConditionalWriteIsOutcomeUnknown) {
  auto proxy = Proxy(SharedEtcd().client_port());
  proxy->set_drop_responses(true);
  // The second endpoint works: a blind retry there would answer 105
  // (already exists) for a create that in fact succeeded.
  auto keys = Client({Loopback(proxy->port()), SharedEtcd().endpoint()});
  absl::StatusOr<Response> r = keys->Set("/lost/k", "mine", Create());
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kUnavailable,
                          HasSubstr("outcome unknown")));
  EXPECT_TRUE(IsOutcomeUnknown(r.status()));
  // The write did happen; reading back is how callers resolve it.
  ASSERT_OK_AND_ASSIGN(Response got,
                       Client({SharedEtcd().endpoint()})->Get("/lost/k", {}));
  EXPECT_EQ(got.node.value, "mine");
}

TEST(EtcdClientTest, WatchIsCancelledPromptly) {
  auto keys = Client({SharedEtcd().endpoint()});
  CancelToken cancel;
  absl::Time cancelled_at;
  std::thread canceller([&] {
    RealClock()->SleepFor(absl::Milliseconds(200));
    cancelled_at = RealClock()->Now();
    cancel.Cancel();
  });
  absl::StatusOr<Response> r =
      keys->Watch("/watch/cancel", WatchFrom(0, absl::Minutes(1), &cancel));
  const absl::Time returned_at = RealClock()->Now();
  canceller.join();
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kCancelled));
  // Well under curl's 1 s progress tick and the watch's own deadline, with
  // room for a sanitizer build on a loaded machine.
  EXPECT_LT(returned_at - cancelled_at, absl::Milliseconds(500));
}

TEST(EtcdClientTest, WatchEndsAtItsDeadline) {
  auto keys = Client({SharedEtcd().endpoint()});
  EXPECT_THAT(
      keys->Watch("/watch/quiet", WatchFrom(0, absl::Milliseconds(300))),
      StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST(EtcdClientTest, WatchResumesAtTheSameIndexAfterItsConnectionIsCut) {
  auto proxy = Proxy(SharedEtcd().client_port());
  auto keys = Client({Loopback(proxy->port())});
  auto direct = Client({SharedEtcd().endpoint()});
  ASSERT_OK_AND_ASSIGN(Response start, direct->Set("/watch/cut/x", "0", {}));
  absl::StatusOr<Response> event;
  std::thread watcher([&] {
    event = keys->Watch("/watch/cut/x", WatchFrom(start.node.modified_index + 1,
                                                  absl::Seconds(30)));
  });
  // Cut the watch and keep it out while two events happen; it must come
  // back for the first of them, not the latest.
  proxy->set_refuse(true);
  proxy->CutAll();
  ASSERT_OK_AND_ASSIGN(Response first, direct->Set("/watch/cut/x", "1", {}));
  ASSERT_THAT(direct->Set("/watch/cut/x", "2", {}), IsOk());
  proxy->set_refuse(false);
  watcher.join();
  ASSERT_THAT(event, IsOk());
  EXPECT_EQ(event->node.modified_index, first.node.modified_index);
  EXPECT_EQ(event->node.value, "1");
}

// A member that freezes keeps its connections open and answers nothing; so
// does one behind a proxy that forwards nothing. The watch it serves must
// notice (a read elsewhere shows the cluster moved past the watch's index,
// the frozen member does not answer) and re-open on the other endpoint.
// A renew sent into a stuck member must give up in time for a retry to
// save its lease: the call's deadline bounds each attempt, not only the
// request timeout.
TEST(EtcdClientTest, CallsIntoAFrozenMemberEndAtTheirDeadline) {
  auto proxy = Proxy(SharedEtcd().client_port());
  EtcdOptions options;
  options.endpoints = {Loopback(proxy->port())};
  options.request_timeout = absl::Seconds(30);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<KeysApi> keys,
                       NewEtcdClient(std::move(options)));
  ASSERT_OK_AND_ASSIGN(Response start, keys->Set("/deadline/k", "0", {}));
  proxy->Blackhole(::leasehold::testing::Direction::kBoth);

  SetOptions renew;
  renew.prev_index = start.node.modified_index;
  renew.deadline = RealClock()->Now() + absl::Milliseconds(500);
  const absl::Time sent = RealClock()->Now();
  absl::StatusOr<Response> set = keys->Set("/deadline/k", "1", renew);
  // Far below the 30 s request timeout, with room for a loaded machine.
  EXPECT_LT(RealClock()->Now() - sent, absl::Seconds(10));
  EXPECT_FALSE(set.ok());
  EXPECT_TRUE(IsOutcomeUnknown(set.status())) << set.status();

  GetOptions read;
  read.deadline = RealClock()->Now() + absl::Milliseconds(500);
  const absl::Time asked = RealClock()->Now();
  EXPECT_FALSE(keys->Get("/deadline/k", read).ok());
  EXPECT_LT(RealClock()->Now() - asked, absl::Seconds(10));

  DeleteOptions del;
  del.deadline = RealClock()->Now() - absl::Seconds(1);
  EXPECT_THAT(keys->Delete("/deadline/k", del),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  proxy->Heal();
}

TEST(EtcdClientTest, WatchServedByAFrozenMemberMovesOn) {
  auto proxy = Proxy(SharedEtcd().client_port());
  EtcdOptions options;
  options.endpoints = {Loopback(proxy->port()), SharedEtcd().endpoint()};
  options.request_timeout = absl::Seconds(1);
  options.watch_check_interval = absl::Milliseconds(500);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<KeysApi> keys,
                       NewEtcdClient(std::move(options)));
  auto direct = Client({SharedEtcd().endpoint()});
  // The client sticks to the proxy (the first endpoint), which then
  // freezes: the watch is sent into it and never hears back.
  ASSERT_OK_AND_ASSIGN(Response start, keys->Set("/frozen/x", "0", {}));
  proxy->Blackhole(::leasehold::testing::Direction::kBoth);
  absl::StatusOr<Response> event;
  absl::Time delivered_at;
  std::thread watcher([&] {
    event = keys->Watch("/frozen/x", WatchFrom(start.node.modified_index + 1,
                                               absl::Seconds(60)));
    delivered_at = RealClock()->Now();
  });
  absl::StatusOr<Response> next = direct->Set("/frozen/x", "1", {});
  const absl::Time changed_at = RealClock()->Now();
  watcher.join();
  ASSERT_THAT(next, IsOk());
  proxy->Heal();
  ASSERT_THAT(event, IsOk());
  EXPECT_EQ(event->node.modified_index, next->node.modified_index);
  EXPECT_EQ(event->node.value, "1");
  // Interval plus one probe timeout, with room for a loaded machine; far
  // below the watch's own 60 s deadline.
  EXPECT_LT(delivered_at - changed_at, absl::Seconds(15));
}

// With the check off, the same frozen watch waits (the check is what moves
// it): the deadline passes without an event.
TEST(EtcdClientTest, WithoutTheCheckAFrozenWatchWaits) {
  auto proxy = Proxy(SharedEtcd().client_port());
  EtcdOptions options;
  options.endpoints = {Loopback(proxy->port()), SharedEtcd().endpoint()};
  options.request_timeout = absl::Seconds(1);
  options.watch_check_interval = absl::ZeroDuration();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<KeysApi> keys,
                       NewEtcdClient(std::move(options)));
  ASSERT_OK_AND_ASSIGN(Response start, keys->Set("/frozen/y", "0", {}));
  proxy->Blackhole(::leasehold::testing::Direction::kBoth);
  auto direct = Client({SharedEtcd().endpoint()});
  ASSERT_THAT(direct->Set("/frozen/y", "1", {}), IsOk());
  EXPECT_THAT(keys->Watch("/frozen/y", WatchFrom(start.node.modified_index + 1,
                                                 absl::Seconds(3))),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  proxy->Heal();
}

TEST(EtcdClientTest, WatchSurvivesAMemberRestart) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EtcdServer> etcd, EtcdServer::Start());
  auto keys = Client({etcd->endpoint()});
  ASSERT_OK_AND_ASSIGN(Response start, keys->Set("/restart/x", "0", {}));
  absl::StatusOr<Response> event;
  std::thread watcher([&] {
    event = keys->Watch("/restart/x", WatchFrom(start.node.modified_index + 1,
                                                absl::Seconds(60)));
  });
  ASSERT_THAT(etcd->Stop(), IsOk());
  ASSERT_THAT(etcd->Restart(), IsOk());
  ASSERT_OK_AND_ASSIGN(Response next, keys->Set("/restart/x", "1", {}));
  watcher.join();
  ASSERT_THAT(event, IsOk());
  EXPECT_EQ(event->node.modified_index, next.node.modified_index);
  EXPECT_EQ(event->node.value, "1");
}

TEST(EtcdClientTest, WatchOlderThanTheEventHistoryIsOutOfRange) {
  auto keys = Client({SharedEtcd().endpoint()});
  ASSERT_OK_AND_ASSIGN(Response start, keys->Set("/history/k", "0", {}));
  for (int i = 0; i < 1005; ++i) {
    ASSERT_THAT(keys->Set("/history/k", absl::StrCat(i), {}), IsOk());
  }
  absl::StatusOr<Response> r = keys->Watch(
      "/history/k", WatchFrom(start.node.modified_index, absl::Seconds(10)));
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("401")));
  ASSERT_TRUE(GetEtcdError(r.status()).has_value());
  EXPECT_EQ(GetEtcdError(r.status())->code, kEtcdEventIndexCleared);
}

// reject-old-cluster asks GET /version of the real etcd (3.4 here) and
// accepts it.
TEST(EtcdClientTest, RejectOldClusterAcceptsEtcd34) {
  ASSERT_OK_AND_ASSIGN(
      auto keys,
      Open(absl::StrCat(SharedEtcd().uri(), "?reject-old-cluster=true")));
  EXPECT_THAT(keys->Set("/reject-old-cluster", "v", {}), IsOk());
}

}  // namespace
}  // namespace leasehold::registry
