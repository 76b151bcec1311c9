// RWMutex: a fair, distributed readers-writer lock owned by a Session.
//
// Readers and writers queue in-order keys in one FIFO queue under
// `<prefix>lock/<name>/`, the Mutex's queue (a reader's value starts
// "read ", a writer's "write "; any other key, a Mutex's, is a writer). A
// writer holds the lock when its key is the first: it waits
// only for the contenders ahead of it. A reader holds it when no writer's
// key is ahead of its own, alongside any other such readers: readers that
// queue behind a waiting writer wait for it, so writers are never starved.
// Waiting wakes only on the departure that can let a contender in: a
// writer watches its immediate predecessor, a reader the nearest writer
// ahead of it (one unlock wakes the readers behind it, not the queue).
//
// As with Mutex: fence() is the createdIndex of our key (it grows with
// every new holder), lost() fires when our key can no longer be vouched for
// (TTL passed unrenewed, deleted, session ended), a deadline or cancel
// withdraws our key, and a key that vanishes while we wait is kAborted.
//
//   RWMutex config(session.get(), "config");
//   {
//     std::shared_lock<RWMutex> reading(config);  // many readers at once
//     Read(config.fence());
//   }
//   if (absl::Status s = config.Lock(clock->Now() + absl::Seconds(5));
//       !s.ok()) return s;                        // one writer, nobody else
//   Write(config.fence());
//   config.Unlock();
//
// One RWMutex object is one contender, a reader or a writer at a time. Two
// RWMutex objects with the same name share one queue, on one session or
// many; a Mutex of the same name is one more writer in it (so `leasehold
// lock NAME` excludes `leasehold lock NAME --shared`).
//
// Thread-safety: all methods are safe from any thread; a lock call and its
// unlock are meant to be called in turn, as with std::shared_mutex.
// REQUIRES: the Session outlives the RWMutex.
#ifndef LEASEHOLD_LEASE_RW_MUTEX_H_
#define LEASEHOLD_LEASE_RW_MUTEX_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lease/queue.h"
#include "lease/session.h"
#include "lease/signal.h"
#include "registry/cancel.h"

namespace leasehold::lease {

class RWMutex {
 public:
  // `name` is validated on the first Lock/RLock (no '/', not empty, ...).
  RWMutex(Session* session, std::string name);
  // Unlocks (or stops waiting) if needed; errors are ignored.
  ~RWMutex() = default;

  RWMutex(const RWMutex&) = delete;
  RWMutex& operator=(const RWMutex&) = delete;

  // Queues as a writer and waits until every contender ahead has gone.
  // OK: held exclusively (IsOwner()). Errors as Mutex::Lock;
  // kFailedPrecondition also while this object reads or waits to read.
  absl::Status Lock(absl::Time deadline = absl::InfiniteFuture(),
                    const CancelToken* cancel = nullptr);
  // true: held exclusively; false: someone holds or waits. Errors as Lock.
  absl::StatusOr<bool> TryLock();
  // Releases the exclusive hold. Results as Mutex::Unlock.
  absl::Status Unlock();

  // Queues as a reader and waits until no writer is ahead. OK: held shared
  // (IsReader()). Errors as Mutex::Lock; kFailedPrecondition also while
  // this object writes or waits to write.
  absl::Status RLock(absl::Time deadline = absl::InfiniteFuture(),
                     const CancelToken* cancel = nullptr);
  // true: held shared; false: a writer holds or waits. Errors as RLock.
  absl::StatusOr<bool> TryRLock();
  // Releases the shared hold. Results as Mutex::Unlock.
  absl::Status RUnlock();

  // Held exclusively / shared, and not lost.
  bool IsOwner() const { return writer_.holds(); }
  bool IsReader() const { return reader_.holds(); }
  // Of the current (or last) hold, read or write: as Mutex's.
  std::string key() const { return last().key(); }
  uint64_t fence() const { return last().fence(); }
  std::shared_ptr<const Signal> lost() const { return last().lost(); }
  absl::Time expiry() const { return last().expiry(); }
  const std::string& name() const { return writer_.name(); }

  // C++ Lockable and SharedLockable (std::unique_lock, std::shared_lock):
  // as Mutex's lock(), try_lock() and unlock(), exclusive and shared.
  void lock();
  bool try_lock();
  void unlock() noexcept;
  void lock_shared();
  bool try_lock_shared();
  void unlock_shared() noexcept;
  template <class Rep, class Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period>& timeout) {
    return internal::AcquiredOrThrow(Lock(Deadline(timeout)));
  }
  template <class C, class D>
  bool try_lock_until(const std::chrono::time_point<C, D>& deadline) {
    return try_lock_for(deadline - C::now());
  }
  template <class Rep, class Period>
  bool try_lock_shared_for(const std::chrono::duration<Rep, Period>& timeout) {
    return internal::AcquiredOrThrow(RLock(Deadline(timeout)));
  }
  template <class C, class D>
  bool try_lock_shared_until(const std::chrono::time_point<C, D>& deadline) {
    return try_lock_shared_for(deadline - C::now());
  }

 private:
  // `timeout` from now on the session's clock.
  template <class Rep, class Period>
  absl::Time Deadline(const std::chrono::duration<Rep, Period>& timeout) {
    return writer_.session()->clock()->Now() +
           absl::FromChrono(
               std::chrono::duration_cast<std::chrono::nanoseconds>(timeout));
  }
  // Marks `hold` as the one in use; kFailedPrecondition when `other` holds
  // or waits.
  absl::Status Use(internal::QueueHold& hold, const internal::QueueHold& other);
  const internal::QueueHold& last() const {
    return reading_.load() ? reader_ : writer_;
  }

  internal::QueueHold writer_;
  internal::QueueHold reader_;
  std::atomic<bool> reading_{false};  // the last lock call was a reader's
};

}  // namespace leasehold::lease

#endif  // LEASEHOLD_LEASE_RW_MUTEX_H_
