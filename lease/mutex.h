// Mutex: a fair, distributed mutual-exclusion lock owned by a Session.
//
// Contenders queue in-order keys under `<prefix>lock/<name>/`; the key with
// the lowest createdIndex holds the lock, so it is granted first come,
// first served. A waiter watches only its predecessor's key (no thundering
// herd when the lock changes hands). fence() is the createdIndex of the
// holder's key: it grows with every new holder, a fencing token to hand to
// the resources the lock protects. lost() fires when the holder's key can
// no longer be vouched for (TTL passed unrenewed, deleted, session ended).
//
//   auto session = Session::Create(keys, {.ttl = absl::Seconds(10)});
//   Mutex mutex(session->get(), "scheduler");
//   {
//     std::lock_guard<Mutex> guard(mutex);   // throws std::system_error
//     Schedule(mutex.fence());               // on registry failure
//   }
//   absl::Status s = mutex.Lock(clock->Now() + absl::Seconds(5));
//   if (absl::IsDeadlineExceeded(s)) ...     // our key is deleted again
//
// One Mutex object is one contender. Two Mutex objects with the same name
// exclude each other, whether on one session or many. Waiting costs no
// connection of its own: all waiters of a process share one watch per key
// prefix (lease/watch_hub.h).
//
// Thread-safety: all methods are safe from any thread; Lock/TryLock and
// Unlock are meant to be called in turn, as with std::mutex. REQUIRES: the
// Session outlives the Mutex.
#ifndef LEASEHOLD_LEASE_MUTEX_H_
#define LEASEHOLD_LEASE_MUTEX_H_

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

class Mutex {
 public:
  // `name` is validated on the first Lock (no '/', not empty, ...).
  Mutex(Session* session, std::string name);
  // Unlocks (or stops waiting) if needed; errors are ignored.
  ~Mutex() = default;

  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  // Queues for the lock and waits for it. OK: held (IsOwner()).
  //   kDeadlineExceeded: `deadline` (session clock) passed; kCancelled:
  //     `cancel` fired. Either way our queue key is deleted again.
  //   kAborted: our queue key vanished while waiting (session expired, key
  //     deleted); we never believe we hold the lock.
  //   kFailedPrecondition: this Mutex already holds or waits, or the
  //     session is closed or ended. kInvalidArgument: a bad name.
  //   kUnavailable and other registry errors: queue key deleted if created.
  absl::Status Lock(absl::Time deadline = absl::InfiniteFuture(),
                    const CancelToken* cancel = nullptr);

  // true: acquired. false: held by someone else (one read when a key is
  // already queued; otherwise create + read, and our key is deleted again
  // if someone queued first). Errors as Lock.
  absl::StatusOr<bool> TryLock();

  // Deletes our key with a compare-and-delete on its own index: never
  // another holder's key. OK: released (also when it had been lost).
  // kFailedPrecondition: not held. kUnavailable: the delete did not go
  // through; the key expires at the session TTL.
  absl::Status Unlock();

  // Held and not lost.
  bool IsOwner() const { return hold_.holds(); }
  // Our queue key ("" when none) and its createdIndex (0 when none).
  std::string key() const { return hold_.key(); }
  uint64_t fence() const { return hold_.fence(); }
  // Fires when the current (or last) hold is lost; null before the first
  // Lock. Not fired by Unlock.
  std::shared_ptr<const Signal> lost() const { return hold_.lost(); }
  // When the lock stops being ours at the latest unless renewed: the local
  // expiry of our key on the session's clock (SessionKey::expiry()), which
  // every renew moves forward. InfinitePast when no key is kept (before the
  // first Lock, after Unlock or a loss).
  absl::Time expiry() const { return hold_.expiry(); }
  const std::string& name() const { return hold_.name(); }

  // C++ Lockable / TimedLockable, for std::lock_guard, std::unique_lock and
  // std::scoped_lock. lock(), try_lock() and the timed forms throw
  // std::system_error (message: the absl::Status) when the registry fails,
  // as the standard allows; a timeout is false, not an exception. unlock()
  // never throws: if the delete fails the key expires at its TTL.
  void lock();
  bool try_lock();
  void unlock() noexcept;
  template <class Rep, class Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period>& timeout) {
    return TryLockFor(absl::FromChrono(
        std::chrono::duration_cast<std::chrono::nanoseconds>(timeout)));
  }
  // Converts through the caller's clock (C::now()), then waits on ours.
  template <class C, class D>
  bool try_lock_until(const std::chrono::time_point<C, D>& deadline) {
    return try_lock_for(deadline - C::now());
  }

 private:
  bool TryLockFor(absl::Duration timeout);

  internal::QueueHold hold_;
};

}  // namespace leasehold::lease

#endif  // LEASEHOLD_LEASE_MUTEX_H_
