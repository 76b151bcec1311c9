// Micro benchmarks of leasehold's client-side hot paths: parsing etcd's
// answers, the lease value, registry URIs, the in-memory registry, and the
// simulation's safety verdict.
// Each benchmark also reports heap allocations per operation ("allocs"),
// counted by the replaced global operator new below.
//
//   leasehold-micro-bench --benchmark_min_time=0.5

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "lease/lease_value.h"
#include "registry/etcd/json_codec.h"
#include "registry/keys_api.h"
#include "registry/memory/memory_registry.h"
#include "registry/open.h"
#include "tests/testing/synthetic_history.h"
#include "tools/sim/history.h"

namespace {

std::atomic<uint64_t> allocations{0};

}  // namespace

// Counting allocator: every operator new form funnels through this one. All
// out of line: inlined, g++ sees malloc() paired with operator delete (or
// free() with operator new) and warns (-Wmismatched-new-delete).
__attribute__((noinline)) void* operator new(std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
__attribute__((noinline)) void operator delete(void* p) noexcept {
  std::free(p);
}
__attribute__((noinline)) void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace leasehold {
namespace {

// Reports allocations per iteration as a counter when it goes out of scope.
class AllocationCounter {
 public:
  explicit AllocationCounter(benchmark::State& state)
      : state_(state), start_(allocations.load()) {}
  ~AllocationCounter() {
    state_.counters["allocs"] =
        benchmark::Counter(static_cast<double>(allocations.load() - start_),
                           benchmark::Counter::kAvgIterations);
  }

 private:
  benchmark::State& state_;
  const uint64_t start_;
};

std::string LeaseNode(int i, uint64_t index) {
  const std::string value = lease::EncodeLeaseValue(
      {absl::StrCat("machine-", i), 1, absl::StrCat("9f2c41d07a3b", i, "-7")});
  std::string escaped;
  for (char c : value) {
    if (c == '"') escaped.push_back('\\');
    escaped.push_back(c);
  }
  return absl::StrCat(R"({"key":"/leasehold/lease/unit-)", i, R"(","value":")",
                      escaped,
                      R"(","expiration":"2026-11-23T12:00:10.123456789Z",)",
                      R"("ttl":10,"modifiedIndex":)", index,
                      R"(,"createdIndex":)", index - 3, "}");
}

// What etcd answers to GET /v2/keys/leasehold/lease/unit-42.
void BM_ParseGetResponse(benchmark::State& state) {
  const std::string body =
      absl::StrCat(R"({"action":"get","node":)", LeaseNode(42, 1234), "}");
  AllocationCounter allocs(state);
  for (auto _ : state) {
    auto r = registry::etcd_internal::ParseKeysResponse(body);
    if (!r.ok()) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(state.iterations() * body.size());
}
BENCHMARK(BM_ParseGetResponse);

// GET /v2/keys/leasehold/lease?sorted=true with 100 leases held (ListLeases).
void BM_ParseListing100(benchmark::State& state) {
  std::string body =
      R"({"action":"get","node":{"key":"/leasehold/lease","dir":true,"nodes":[)";
  for (int i = 0; i < 100; ++i) {
    if (i > 0) body.push_back(',');
    body += LeaseNode(i, 1000 + i);
  }
  body += R"(],"modifiedIndex":5,"createdIndex":5}})";
  AllocationCounter allocs(state);
  for (auto _ : state) {
    auto r = registry::etcd_internal::ParseKeysResponse(body);
    if (!r.ok() || r->node.nodes.size() != 100) {
      state.SkipWithError("parse failed");
    }
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(state.iterations() * body.size());
}
BENCHMARK(BM_ParseListing100);

void BM_EncodeLeaseValue(benchmark::State& state) {
  const lease::LeaseValue value{"machine-a", 2, "9f2c41d07a3b5e61-7"};
  AllocationCounter allocs(state);
  for (auto _ : state) {
    benchmark::DoNotOptimize(lease::EncodeLeaseValue(value));
  }
}
BENCHMARK(BM_EncodeLeaseValue);

void BM_DecodeLeaseValue(benchmark::State& state) {
  const std::string text =
      lease::EncodeLeaseValue({"machine-a", 2, "9f2c41d07a3b5e61-7"});
  AllocationCounter allocs(state);
  for (auto _ : state) {
    benchmark::DoNotOptimize(lease::DecodeLeaseValue(text));
  }
}
BENCHMARK(BM_DecodeLeaseValue);

void BM_ParseRegistryUri(benchmark::State& state) {
  const std::string uri =
      "etcd://127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379"
      "?request-timeout=2s&dial-timeout=500ms&quorum-reads=true";
  AllocationCounter allocs(state);
  for (auto _ : state) {
    auto config = registry::ParseRegistryUri(uri);
    if (!config.ok()) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(config);
  }
}
BENCHMARK(BM_ParseRegistryUri);

void BM_MemoryGet(benchmark::State& state) {
  auto keys = registry::NewMemoryRegistry();
  const std::string key = "/leasehold/lease/unit-42";
  registry::SetOptions set;
  set.ttl = absl::Seconds(60);
  (void)keys->Set(key, LeaseNode(42, 1), set);
  AllocationCounter allocs(state);
  for (auto _ : state) {
    auto r = keys->Get(key, {});
    if (!r.ok()) state.SkipWithError("get failed");
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_MemoryGet);

// A lease renew: compare-and-swap on the index with refresh and a TTL.
void BM_MemoryRenew(benchmark::State& state) {
  auto keys = registry::NewMemoryRegistry();
  const std::string key = "/leasehold/lease/unit-42";
  registry::SetOptions create;
  create.prev_exist = false;
  create.ttl = absl::Seconds(60);
  auto created = keys->Set(key, LeaseNode(42, 1), create);
  if (!created.ok()) {
    state.SkipWithError("create failed");
    return;
  }
  registry::SetOptions renew;
  renew.prev_index = created->node.modified_index;
  renew.ttl = absl::Seconds(60);
  renew.refresh = true;
  AllocationCounter allocs(state);
  for (auto _ : state) {
    auto r = keys->Set(key, "", renew);
    if (!r.ok()) {
      state.SkipWithError("renew failed");
      break;
    }
    renew.prev_index = r->node.modified_index;
  }
}
BENCHMARK(BM_MemoryRenew);

// Lock-queue entries; the directory is emptied (untimed) every 4096 entries
// so the figure does not depend on how long the benchmark runs.
void BM_MemoryCreateInOrder(benchmark::State& state) {
  auto keys = registry::NewMemoryRegistry();
  const std::string dir = "/leasehold/lock/queue";
  int in_dir = 0;
  AllocationCounter allocs(state);
  for (auto _ : state) {
    auto r = keys->CreateInOrder(dir, "session-1", {.ttl = absl::Seconds(60)});
    if (!r.ok()) {
      state.SkipWithError("create failed");
      break;
    }
    if (++in_dir == 4096) {
      state.PauseTiming();
      registry::DeleteOptions all;
      all.dir = true;
      all.recursive = true;
      (void)keys->Delete(dir, all);
      in_dir = 0;
      state.ResumeTiming();
    }
  }
}
BENCHMARK(BM_MemoryCreateInOrder);

// Write → a watcher blocked in Watch returns → the writer hears of it: one
// iteration is a full wake-up round trip between two threads.
void BM_MemoryWatchWakeup(benchmark::State& state) {
  auto keys = registry::NewMemoryRegistry();
  const std::string key = "/leasehold/lease/unit-42";
  auto first = keys->Set(key, "0", {});
  if (!first.ok()) {
    state.SkipWithError("set failed");
    return;
  }
  std::mutex mu;
  std::condition_variable cv;
  uint64_t seen = first->node.modified_index;  // guarded by mu
  bool stop = false;                           // guarded by mu
  bool watcher_failed = false;                 // guarded by mu
  std::thread watcher([&] {
    uint64_t next = seen + 1;
    for (;;) {
      auto event = keys->Watch(key, {.wait_index = next});
      std::lock_guard<std::mutex> lock(mu);
      if (stop) return;
      if (!event.ok()) {
        watcher_failed = true;
        cv.notify_one();
        return;
      }
      next = event->node.modified_index + 1;
      seen = event->node.modified_index;
      cv.notify_one();
    }
  });
  AllocationCounter allocs(state);
  for (auto _ : state) {
    auto r = keys->Set(key, "v", {});
    if (!r.ok()) {
      state.SkipWithError("set failed");
      break;
    }
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock,
            [&] { return seen >= r->node.modified_index || watcher_failed; });
    if (watcher_failed) {
      state.SkipWithError("watch failed");
      break;
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    stop = true;
  }
  (void)keys->Set(key, "stop", {});  // wakes the watcher to see `stop`
  watcher.join();
}
BENCHMARK(BM_MemoryWatchWakeup)->UseRealTime();

// The safety verdict of `leasehold sim --machines 100 --units 10000
// --duration 60s`: 200,000 holds of 10,000 units judged in one Check.
void BM_HistoryCheck200kHolds(benchmark::State& state) {
  sim::History history;
  testing::Record(history, testing::SyntheticHolds({}));
  AllocationCounter allocs(state);
  for (auto _ : state) {
    const sim::Verdict verdict = history.Check();
    if (!verdict.safe) {
      state.SkipWithError("a clean history judged unsafe");
      break;
    }
  }
}
BENCHMARK(BM_HistoryCheck200kHolds)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace leasehold

BENCHMARK_MAIN();
