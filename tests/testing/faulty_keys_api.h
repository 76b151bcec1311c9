// FaultyKeysApi: a KeysApi wrapper that fails, delays, blocks or loses
// calls, to test how upper layers handle a registry in trouble (in the
// style of leveldb's SpecialEnv).
//
//   FaultyKeysApi keys(memory.get(), &clock);
//   keys.LoseResponseNext(FaultyKeysApi::kSet, 1);  // applied, then lost
//   auto lease = manager.AcquireLease("x", "m", 1, absl::Seconds(5));
//   // the manager sees OutcomeUnknownError and must read back
//
// Faults are rules checked in the order they were added; a call takes the
// first rule whose ops match and that has calls left.
//
// Thread-safety: safe from any number of threads, like the wrapped KeysApi.
#ifndef LEASEHOLD_TESTS_TESTING_FAULTY_KEYS_API_H_
#define LEASEHOLD_TESTS_TESTING_FAULTY_KEYS_API_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "registry/clock.h"
#include "registry/keys_api.h"

namespace leasehold::testing {

class FaultyKeysApi final : public registry::KeysApi {
 public:
  // Operation masks.
  enum Op : unsigned {
    kGet = 1,
    kSet = 2,
    kCreateInOrder = 4,
    kDelete = 8,
    kWatch = 16,
    kWrites = kSet | kCreateInOrder | kDelete,
    kAll = 31,
  };
  // A rule's count: apply to every matching call.
  static constexpr int kForever = -1;

  // `clock` runs delays. REQUIRES: `base` outlives this object.
  explicit FaultyKeysApi(registry::KeysApi* base, Clock* clock = RealClock())
      : base_(base), clock_(clock) {}

  // The next `count` calls of `ops` go through untouched: with a rule
  // after it, "every call after the k-th" (a process that dies mid-way).
  void PassNext(unsigned ops, int count);
  // The next `count` calls of `ops` fail with `error`; they never reach the
  // registry.
  void FailNext(
      unsigned ops, int count,
      absl::Status error = absl::UnavailableError("injected failure"));
  // The next `count` calls of `ops` reach the registry (and are applied);
  // then their response is lost: registry::OutcomeUnknownError.
  void LoseResponseNext(unsigned ops, int count);
  // The next `count` calls of `ops` are lost on the way: not applied, yet
  // reported as registry::OutcomeUnknownError.
  void DropRequestNext(unsigned ops, int count);
  // The next `count` calls of `ops` hang until their deadline (the
  // options' deadline, on the clock) or Unblock(), as a request to a stuck
  // member does until the client's timeout: not applied; a write then
  // fails with registry::OutcomeUnknownError, a read with
  // kDeadlineExceeded.
  void StallNext(unsigned ops, int count);
  // As StallNext, but the calls ignore their deadline and hang until
  // Unblock(): a transport that does not honour it.
  void HangNext(unsigned ops, int count);
  // The next `count` calls of `ops` (writes) are held on the way: not
  // applied yet, reported as registry::OutcomeUnknownError. LandHeld()
  // applies them later, in order, as a delayed request that lands after
  // its sender gave up on it.
  void HoldRequestNext(unsigned ops, int count);
  // Applies the held requests; returns how many.
  int LandHeld();
  // Every call of `ops` first waits `delay` on the clock (zero: none).
  void SetDelay(unsigned ops, absl::Duration delay);
  // Calls of `ops` wait until Unblock() (counted by blocked(), as are
  // stalled calls, which Unblock() also ends).
  void Block(unsigned ops);
  void Unblock();
  // Drops every rule and delay; unblocks.
  void Reset();

  // Calls of `ops` so far.
  int calls(unsigned ops) const;
  // Calls inside the wrapper now (waiting, delayed or in the registry), the
  // most there ever were at once, and those waiting on Block.
  int in_flight() const;
  int max_in_flight() const;
  int blocked() const;

  absl::StatusOr<registry::Response> Get(
      const std::string& key, const registry::GetOptions& options) override;
  absl::StatusOr<registry::Response> Set(
      const std::string& key, const std::string& value,
      const registry::SetOptions& options) override;
  absl::StatusOr<registry::Response> CreateInOrder(
      const std::string& dir, const std::string& value,
      const registry::CreateInOrderOptions& options) override;
  absl::StatusOr<registry::Response> Delete(
      const std::string& key, const registry::DeleteOptions& options) override;
  absl::StatusOr<registry::Response> Watch(
      const std::string& key, const registry::WatchOptions& options) override;

 private:
  enum class Fault {
    kNone,
    kFail,
    kLoseResponse,
    kDropRequest,
    kStall,
    kHang,
    kHoldRequest
  };
  using Forward = std::function<absl::StatusOr<registry::Response>()>;
  struct Rule {
    unsigned ops;
    Fault fault;
    int remaining;
    absl::Status error;
  };

  // `forward` makes the call on the wrapped registry (it owns copies of
  // the arguments, so a held request can land later).
  absl::StatusOr<registry::Response> Run(Op op, absl::Time deadline,
                                         Forward forward);
  void AddRule(Rule rule);

  registry::KeysApi* const base_;
  Clock* const clock_;
  mutable std::mutex mu_;
  std::condition_variable unblocked_cv_;
  std::deque<Rule> rules_ ABSL_GUARDED_BY(mu_);
  std::map<Op, absl::Duration> delays_ ABSL_GUARDED_BY(mu_);
  std::map<Op, int> calls_ ABSL_GUARDED_BY(mu_);
  unsigned blocked_ops_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t unblocks_ ABSL_GUARDED_BY(mu_) = 0;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int max_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int blocked_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Forward> held_ ABSL_GUARDED_BY(mu_);
};

}  // namespace leasehold::testing

#endif  // LEASEHOLD_TESTS_TESTING_FAULTY_KEYS_API_H_
