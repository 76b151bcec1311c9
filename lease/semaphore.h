// Semaphore: up to N holders at once, with the Mutex's queue discipline.
//
// Contenders queue in-order keys under `<prefix>semaphore/<name>/`; the
// first N keys (by createdIndex) hold, the rest wait in FIFO order. Each
// holder has its own fence (its key's createdIndex) and lost() signal.
// A waiter re-reads the queue when any key ahead of it goes (not only its
// predecessor: with N > 1 a departure anywhere ahead can let it in).
//
// N is stored with the semaphore: every queue key records its contender's
// N (its value starts "slots=N "), and the oldest key's N is the
// semaphore's while it has contenders. A contender that passes another N
// gets kFailedPrecondition naming both, never a silent N of its own; once
// the last contender has gone, the next one sets N anew.
//
//   Semaphore slot(session.get(), "builders", /*slots=*/3);
//   if (absl::Status s = slot.Acquire(clock->Now() + absl::Minutes(1));
//       !s.ok()) return s;
//   Build(slot.fence());
//   slot.Release();
//
// Thread-safety: as Mutex. REQUIRES: the Session outlives the Semaphore.
#ifndef LEASEHOLD_LEASE_SEMAPHORE_H_
#define LEASEHOLD_LEASE_SEMAPHORE_H_

#include <cstddef>
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

class Semaphore {
 public:
  // REQUIRES: slots >= 1.
  Semaphore(Session* session, std::string name, size_t slots);

  // Waits for one of the N slots. Results and errors as Mutex::Lock, and
  // kFailedPrecondition when the semaphore has another N (this
  // contender's key is deleted again).
  absl::Status Acquire(absl::Time deadline = absl::InfiniteFuture(),
                       const CancelToken* cancel = nullptr);
  // true: acquired; false: all N slots are taken. Errors as Acquire.
  absl::StatusOr<bool> TryAcquire();
  // Gives the slot back. Results as Mutex::Unlock.
  absl::Status Release();

  bool IsHolder() const { return hold_.holds(); }
  std::string key() const { return hold_.key(); }
  uint64_t fence() const { return hold_.fence(); }
  std::shared_ptr<const Signal> lost() const { return hold_.lost(); }
  const std::string& name() const { return hold_.name(); }
  size_t slots() const { return slots_; }

 private:
  const size_t slots_;
  internal::QueueHold hold_;
};

}  // namespace leasehold::lease

#endif  // LEASEHOLD_LEASE_SEMAPHORE_H_
