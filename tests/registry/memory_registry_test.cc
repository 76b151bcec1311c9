// Memory-registry details that need a SimulatedClock to pin down exactly:
// the TTL boundary, the TTL count-down, expire events, watchers woken by the
// clock alone, the history size, and concurrent use. Everything the memory
// registry shares with etcd is in the conformance suite.
#include "registry/memory/memory_registry.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registry/cancel.h"
#include "registry/clock.h"
#include "registry/errors.h"
#include "registry/keys_api.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::registry {
namespace {

using ::leasehold::testing::IsOk;
using ::leasehold::testing::StatusIs;

class MemoryRegistryTest : public ::testing::Test {
 protected:
  std::unique_ptr<KeysApi> Make(size_t history_size = 1000) {
    MemoryOptions options;
    options.clock = &clock_;
    options.history_size = history_size;
    return NewMemoryRegistry(options);
  }

  static SetOptions Ttl(absl::Duration ttl) {
    SetOptions options;
    options.ttl = ttl;
    return options;
  }

  static WatchOptions From(uint64_t wait_index, bool recursive = false) {
    WatchOptions options;
    options.wait_index = wait_index;
    options.recursive = recursive;
    return options;
  }

  SimulatedClock clock_;
};

TEST_F(MemoryRegistryTest, IndexStartsAtZeroAndEveryWriteTakesOne) {
  auto keys = Make();
  ASSERT_OK_AND_ASSIGN(Response root, keys->Get("/", {}));
  EXPECT_EQ(root.etcd_index, 0u);
  ASSERT_OK_AND_ASSIGN(Response a, keys->Set("/a", "1", {}));
  EXPECT_EQ(a.node.modified_index, 1u);
  EXPECT_THAT(keys->Set("/a", "2",
                        [] {
                          SetOptions o;
                          o.prev_exist = false;
                          return o;
                        }()),
              StatusIs(absl::StatusCode::kAlreadyExists));
  ASSERT_OK_AND_ASSIGN(Response b, keys->Set("/b", "1", {}));
  EXPECT_EQ(b.node.modified_index, 2u);  // failed writes take no index
  ASSERT_OK_AND_ASSIGN(Response q, keys->CreateInOrder("/q", "x", {}));
  EXPECT_EQ(q.node.key, "/q/00000000000000000003");
}

TEST_F(MemoryRegistryTest, KeyExpiresExactlyAtItsTtl) {
  auto keys = Make();
  ASSERT_OK_AND_ASSIGN(Response set,
                       keys->Set("/k", "v", Ttl(absl::Seconds(3))));
  EXPECT_EQ(set.node.expiration, clock_.Now() + absl::Seconds(3));
  EXPECT_EQ(set.node.ttl, 3);

  clock_.Advance(absl::Milliseconds(500));
  ASSERT_OK_AND_ASSIGN(Response got, keys->Get("/k", {}));
  EXPECT_EQ(got.node.ttl, 3);  // 2.5 s left, rounded up as etcd does
  clock_.Advance(absl::Milliseconds(1500));
  ASSERT_OK_AND_ASSIGN(got, keys->Get("/k", {}));
  EXPECT_EQ(got.node.ttl, 1);
  clock_.Advance(absl::Seconds(1) - absl::Nanoseconds(1));
  ASSERT_OK_AND_ASSIGN(got, keys->Get("/k", {}));
  EXPECT_EQ(got.node.ttl, 1);
  EXPECT_EQ(got.etcd_index, set.etcd_index);

  clock_.Advance(absl::Nanoseconds(1));
  absl::StatusOr<Response> gone = keys->Get("/k", {});
  EXPECT_THAT(gone, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(GetEtcdError(gone.status())->index, set.etcd_index + 1);
}

TEST_F(MemoryRegistryTest, ExpireEventsCarryPrevNodeInExpiryOrder) {
  auto keys = Make();
  ASSERT_OK_AND_ASSIGN(Response late,
                       keys->Set("/d/late", "l", Ttl(absl::Seconds(5))));
  ASSERT_OK_AND_ASSIGN(Response early,
                       keys->Set("/d/early", "e", Ttl(absl::Seconds(2))));
  clock_.Advance(absl::Seconds(10));

  ASSERT_OK_AND_ASSIGN(Response first,
                       keys->Watch("/d", From(early.etcd_index + 1, true)));
  EXPECT_EQ(first.action, "expire");
  EXPECT_EQ(first.node.key, "/d/early");
  EXPECT_EQ(first.node.modified_index, 3u);
  EXPECT_EQ(first.node.created_index, early.node.created_index);
  ASSERT_TRUE(first.prev_node.has_value());
  EXPECT_EQ(first.prev_node->value, "e");
  EXPECT_EQ(first.prev_node->ttl, 0);
  EXPECT_EQ(first.prev_node->expiration, early.node.expiration);
  EXPECT_EQ(first.etcd_index, 4u);

  ASSERT_OK_AND_ASSIGN(Response second, keys->Watch("/d", From(4, true)));
  EXPECT_EQ(second.node.key, "/d/late");
  EXPECT_EQ(second.node.modified_index, 4u);
  EXPECT_EQ(second.prev_node->created_index, late.node.created_index);
}

TEST_F(MemoryRegistryTest, WatcherWakesWhenOnlyTheClockMoves) {
  auto keys = Make();
  ASSERT_OK_AND_ASSIGN(Response set,
                       keys->Set("/k", "v", Ttl(absl::Seconds(2))));
  absl::StatusOr<Response> seen;
  std::atomic<bool> started{false};
  std::thread watcher([&] {
    started = true;
    seen = keys->Watch("/k", From(set.etcd_index + 1));
  });
  // Usually the watch is blocked by now and only the clock can wake it; if
  // not, it finds the expiry in the history, which is right too.
  while (!started) std::this_thread::yield();
  clock_.Advance(absl::Seconds(2));
  watcher.join();
  ASSERT_THAT(seen, IsOk());
  EXPECT_EQ(seen->action, "expire");
  EXPECT_EQ(seen->node.modified_index, set.etcd_index + 1);
}

TEST_F(MemoryRegistryTest, LiveWatchReportsIndexAtWatchStart) {
  auto keys = Make();
  ASSERT_OK_AND_ASSIGN(Response before, keys->Set("/k", "1", {}));
  std::atomic<bool> started{false};
  absl::StatusOr<Response> seen;
  std::thread watcher([&] {
    WatchOptions options;
    options.wait_index = before.etcd_index + 1;
    started = true;
    seen = keys->Watch("/k", options);
  });
  while (!started) std::this_thread::yield();
  ASSERT_OK_AND_ASSIGN(Response write, keys->Set("/k", "2", {}));
  watcher.join();
  ASSERT_THAT(seen, IsOk());
  EXPECT_EQ(seen->node, write.node);
  EXPECT_TRUE(seen->etcd_index == before.etcd_index ||
              seen->etcd_index == write.etcd_index);
}

TEST_F(MemoryRegistryTest, HistoryKeepsHistorySizeEvents) {
  auto keys = Make(/*history_size=*/3);
  for (int i = 1; i <= 5; ++i)
    ASSERT_THAT(keys->Set("/k", absl::StrCat(i), {}), IsOk());
  absl::StatusOr<Response> old = keys->Watch("/k", From(2));
  EXPECT_THAT(old, StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_EQ(GetEtcdError(old.status())->cause,
            "the requested history has been cleared [3/2]");
  EXPECT_EQ(GetEtcdError(old.status())->index, 5u);
  ASSERT_OK_AND_ASSIGN(Response kept, keys->Watch("/k", From(3)));
  EXPECT_EQ(kept.node.value, "3");
}

TEST_F(MemoryRegistryTest, LiveRecursiveWatchSkipsHiddenKeysButHistoryDoesNot) {
  auto keys = Make();
  ASSERT_OK_AND_ASSIGN(Response hidden, keys->Set("/d/_h", "h", {}));
  ASSERT_OK_AND_ASSIGN(Response past,
                       keys->Watch("/d", From(hidden.etcd_index, true)));
  EXPECT_EQ(past.node.key, "/d/_h");

  absl::StatusOr<Response> seen;
  std::thread watcher(
      [&] { seen = keys->Watch("/d", From(hidden.etcd_index + 1, true)); });
  // Either this hidden write happens before the watch registers (then the
  // watch finds it in the history) or after (then the live watch skips it):
  // so the watch sees one of the two events.
  ASSERT_OK_AND_ASSIGN(Response hidden2, keys->Set("/d/_h", "h2", {}));
  ASSERT_OK_AND_ASSIGN(Response visible, keys->Set("/d/v", "v", {}));
  watcher.join();
  ASSERT_THAT(seen, IsOk());
  EXPECT_TRUE(seen->node == hidden2.node || seen->node == visible.node);
}

TEST_F(MemoryRegistryTest, WatchDeadlineOnTheSimulatedClock) {
  auto keys = Make();
  absl::StatusOr<Response> seen;
  WatchOptions options;
  options.deadline = clock_.Now() + absl::Seconds(30);
  std::thread watcher([&] { seen = keys->Watch("/k", options); });
  clock_.Advance(absl::Seconds(31));
  watcher.join();
  EXPECT_THAT(seen, StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST_F(MemoryRegistryTest, AlreadyCancelledWatchReturnsAtOnce) {
  auto keys = Make();
  CancelToken cancel;
  cancel.Cancel();
  WatchOptions options;
  options.cancel = &cancel;
  EXPECT_THAT(keys->Watch("/k", options),
              StatusIs(absl::StatusCode::kCancelled));
}

TEST_F(MemoryRegistryTest, RealClockWatcherWakesOnExpiry) {
  MemoryOptions options;  // the real clock
  auto keys = NewMemoryRegistry(options);
  ASSERT_OK_AND_ASSIGN(Response set,
                       keys->Set("/k", "v", Ttl(absl::Seconds(1))));
  WatchOptions watch;
  watch.deadline = RealClock()->Now() + absl::Seconds(20);
  ASSERT_OK_AND_ASSIGN(Response expired, keys->Watch("/k", watch));
  EXPECT_EQ(expired.action, "expire");
  EXPECT_EQ(expired.node.modified_index, set.etcd_index + 1);
}

TEST_F(MemoryRegistryTest, ConcurrentCompareAndSwapHasOneWinnerPerRound) {
  auto keys = Make();
  ASSERT_OK_AND_ASSIGN(Response start, keys->Set("/counter", "0", {}));
  constexpr int kThreads = 4;
  constexpr int kIncrements = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int done = 0; done < kIncrements;) {
        absl::StatusOr<Response> got = keys->Get("/counter", {});
        ASSERT_THAT(got, IsOk());
        SetOptions cas;
        cas.prev_index = got->node.modified_index;
        const int next = std::stoi(got->node.value) + 1;
        absl::StatusOr<Response> set =
            keys->Set("/counter", std::to_string(next), cas);
        if (set.ok()) {
          ++done;
        } else {
          ASSERT_THAT(set, StatusIs(absl::StatusCode::kAborted));
        }
      }
    });
  }
  absl::StatusOr<Response> last;
  std::thread watcher([&] {
    last = keys->Watch("/counter",
                       From(start.etcd_index + kThreads * kIncrements));
  });
  for (std::thread& t : threads) t.join();
  watcher.join();
  ASSERT_OK_AND_ASSIGN(Response final_value, keys->Get("/counter", {}));
  EXPECT_EQ(final_value.node.value, std::to_string(kThreads * kIncrements));
  ASSERT_THAT(last, IsOk());
  EXPECT_EQ(last->node.value, std::to_string(kThreads * kIncrements));
}

}  // namespace
}  // namespace leasehold::registry
