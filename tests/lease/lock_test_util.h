// Helpers shared by the lock, election and lock-service tests.
#ifndef LEASEHOLD_TESTS_LEASE_LOCK_TEST_UTIL_H_
#define LEASEHOLD_TESTS_LEASE_LOCK_TEST_UTIL_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "lease/keeper.h"
#include "lease/mutex.h"
#include "lease/session.h"
#include "registry/cancel.h"
#include "registry/keys_api.h"
#include "tests/testing/eventually.h"

namespace leasehold::lease::testing {

using ::leasehold::testing::Eventually;

// True when `happened` stays false for `window` of real time: the check
// that a thread just woken (and seen back at rest) did not go on to act.
template <typename Predicate>
bool StaysFalse(Predicate happened, std::chrono::milliseconds window =
                                        std::chrono::milliseconds(200)) {
  return !Eventually(happened, window);
}

// Contenders waiting in a queue, each on its own thread: Start(i, wait)
// runs `wait` (a Lock, Acquire or Campaign) with waiter i's cancel token.
// state(i) is 0 while it waits, then 1 (in) or -1 (error: result(i)).
// Destruction cancels whoever still waits and joins every thread, also
// when a test stops at a failed assertion.
class Waiters {
 public:
  using Wait = std::function<absl::Status(const CancelToken* cancel)>;

  explicit Waiters(int count)
      : cancels_(count), states_(count), results_(count) {}
  ~Waiters() {
    for (CancelToken& cancel : cancels_) cancel.Cancel();
    for (std::thread& thread : threads_) thread.join();
  }

  void Start(int i, Wait wait) {
    threads_.emplace_back([this, i, wait = std::move(wait)] {
      results_[i] = wait(&cancels_[i]);
      states_[i] = results_[i].ok() ? 1 : -1;
    });
  }
  void Cancel(int i) { cancels_[i].Cancel(); }
  int state(int i) const { return states_[i]; }
  // REQUIRES: state(i) != 0.
  const absl::Status& result(int i) const { return results_[i]; }

 private:
  std::vector<CancelToken> cancels_;
  std::vector<std::atomic<int>> states_;
  std::vector<absl::Status> results_;
  std::vector<std::thread> threads_;
};

// The keys directly under `dir` (empty when it does not exist).
inline std::vector<std::string> KeysUnder(registry::KeysApi* keys,
                                          const std::string& dir) {
  std::vector<std::string> out;
  absl::StatusOr<registry::Response> r = keys->Get(dir, {});
  if (!r.ok()) return out;
  for (const registry::Node& node : r->node.nodes) out.push_back(node.key);
  return out;
}

inline bool Exists(registry::KeysApi* keys, const std::string& key) {
  return keys->Get(key, {}).ok();
}

// The classic contention test: `contenders` contenders, each with its own
// session, lock the same name, bump a counter that nothing but the lock
// guards, record their fence, unlock and close. `in_flight` threads keep
// that many contenders going at once.
struct ContentionResult {
  int64_t counter = 0;
  std::vector<uint64_t> fences;  // in acquisition order
  std::vector<std::string> errors;
};

inline ContentionResult RunContention(registry::KeysApi* keys, Clock* clock,
                                      int contenders, int in_flight,
                                      absl::Duration ttl) {
  KeeperOptions keeper_options;
  keeper_options.clock = clock;
  keeper_options.workers = 4;
  Keeper keeper(keeper_options);
  ContentionResult result;
  result.fences.reserve(contenders);
  std::atomic<int> next{0};
  std::mutex errors_mu;  // guards result.errors only, never the counter
  auto contend = [&] {
    for (int i = next++; i < contenders; i = next++) {
      SessionOptions options;
      options.ttl = ttl;
      options.clock = clock;
      options.keeper = &keeper;
      absl::StatusOr<std::unique_ptr<Session>> session =
          Session::Create(keys, options);
      absl::Status status = session.status();
      if (status.ok()) {
        Mutex mutex(session->get(), "counter");
        status = mutex.Lock();
        if (status.ok()) {
          const int64_t seen = result.counter;
          std::this_thread::yield();  // widen the window a second owner needs
          result.counter = seen + 1;
          result.fences.push_back(mutex.fence());
          status = mutex.Unlock();
        }
        if (status.ok()) status = (*session)->Close();
      }
      if (!status.ok()) {
        std::lock_guard<std::mutex> lock(errors_mu);
        result.errors.push_back(absl::StrCat(i, ": ", status.ToString()));
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < in_flight; ++t) threads.emplace_back(contend);
  for (std::thread& thread : threads) thread.join();
  keeper.Stop();
  return result;
}

}  // namespace leasehold::lease::testing

#endif  // LEASEHOLD_TESTS_LEASE_LOCK_TEST_UTIL_H_
