// Signal: a one-shot "it happened" flag with a cause, to wait on or poll.
//
// The thin layer reports the end of ownership through Signals: a Session's
// done(), a Mutex's or Semaphore's lost(), an Election's revoked(). A Signal
// fires once and stays fired; its cause() says why.
//
//   std::shared_ptr<const Signal> lost = mutex.lost();
//   if (lost->Wait(clock->Now() + absl::Seconds(5))) {
//     StopWork(lost->cause());  // e.g. kAborted "... lost: ..."
//   }
//   DoWork(&lost->token());     // a CancelToken cancelled when it fires
//
// Thread-safety: all methods are safe from any thread.
#ifndef LEASEHOLD_LEASE_SIGNAL_H_
#define LEASEHOLD_LEASE_SIGNAL_H_

#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "registry/cancel.h"
#include "registry/clock.h"

namespace leasehold::lease {

class Signal {
 public:
  // `clock` (not null) times Wait's deadline; it must outlive the Signal.
  explicit Signal(Clock* clock) : clock_(clock) {}
  Signal(const Signal&) = delete;
  Signal& operator=(const Signal&) = delete;

  bool fired() const;
  // OK until fired; then why it fired (never OK).
  absl::Status cause() const;

  // Blocks until fired (true), `deadline` on the clock passes or `cancel`
  // fires (false).
  bool Wait(absl::Time deadline = absl::InfiniteFuture(),
            const CancelToken* cancel = nullptr) const;

  // Fires with `cause` (a non-OK status); later calls change nothing.
  // Returns true for the call that fired it.
  bool Fire(absl::Status cause);

  // Cancelled when the signal fires: pass it to a blocking call (a Watch,
  // Mutex::Lock) to stop that call once ownership is gone.
  const CancelToken& token() const { return token_; }

 private:
  Clock* const clock_;
  CancelToken token_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  absl::Status cause_ ABSL_GUARDED_BY(mu_);
  bool fired_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace leasehold::lease

#endif  // LEASEHOLD_LEASE_SIGNAL_H_
