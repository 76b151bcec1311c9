// CancelToken: lets one thread stop a blocking call made by another.
//
// A blocking call (a registry Watch, Mutex::Lock, Election::Campaign) takes a
// `const CancelToken*`; another thread calls Cancel() and the call returns
// kCancelled promptly. Implementations wake themselves through OnCancel().
//
//   leasehold::CancelToken cancel;
//   std::thread t([&] { auto r = keys->Watch("/k", {.cancel = &cancel}); });
//   cancel.Cancel();  // the watch returns absl::CancelledError soon after
//   t.join();
//
// Thread-safety: all methods may be called from any thread. Callbacks run on
// the thread that calls Cancel() (or on the registering thread, if the token
// was already cancelled), never under the token's internal lock.
#ifndef LEASEHOLD_REGISTRY_CANCEL_H_
#define LEASEHOLD_REGISTRY_CANCEL_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "registry/clock.h"

namespace leasehold {

class CancelToken {
 public:
  CancelToken() = default;
  CancelToken(const CancelToken&) = delete;
  CancelToken& operator=(const CancelToken&) = delete;

  // Idempotent. Runs every registered callback once.
  void Cancel();
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

  // Calls `fn` when the token is cancelled (at once if it already is). The
  // returned Registration unregisters on destruction and, if `fn` is running
  // on another thread at that moment, waits for it to finish — so `fn` may
  // safely capture locals of the registering scope.
  class Registration {
   public:
    Registration() = default;
    Registration(Registration&& other) noexcept;
    Registration& operator=(Registration&& other) noexcept;
    ~Registration() { Reset(); }
    void Reset();

   private:
    friend class CancelToken;
    Registration(const CancelToken* token, uint64_t id)
        : token_(token), id_(id) {}
    const CancelToken* token_ = nullptr;
    uint64_t id_ = 0;
  };
  [[nodiscard]] Registration OnCancel(std::function<void()> fn) const;

 private:
  void Unregister(uint64_t id) const;

  std::atomic<bool> cancelled_{false};
  mutable std::mutex mu_;
  mutable std::condition_variable done_cv_;
  mutable uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  mutable std::map<uint64_t, std::function<void()>> callbacks_
      ABSL_GUARDED_BY(mu_);
  // The callback Cancel() is running right now (0: none).
  mutable uint64_t running_ ABSL_GUARDED_BY(mu_) = 0;
};

// Blocks until `done()` (called with `mu` held) is true, `deadline` passes on
// `clock`, or `cancel` (may be null) fires, whichever comes first. Whoever
// makes `done()` true notifies `cv` after changing the state under `mu`.
// REQUIRES: the caller does not hold `mu`.
template <typename Done>
void WaitUntilDone(Clock& clock, std::mutex& mu, std::condition_variable& cv,
                   absl::Time deadline, const CancelToken* cancel, Done done) {
  CancelToken::Registration registration;
  if (cancel != nullptr) {
    // Registered before `mu` is taken: an already-cancelled token runs
    // this at once, and it takes `mu`.
    registration = cancel->OnCancel([&mu, &cv] {
      std::lock_guard<std::mutex> lock(mu);
      cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> lock(mu);
  while (!done() && !(cancel != nullptr && cancel->cancelled())) {
    if (!clock.WaitUntil(cv, lock, deadline)) break;
  }
}

}  // namespace leasehold

#endif  // LEASEHOLD_REGISTRY_CANCEL_H_
