// The queue discipline shared by Mutex, Semaphore and Election (internal).
//
// Each contender creates an in-order key under the queue's directory with
// its session's TTL; keys sort by createdIndex, and the first `slots` keys
// hold. A waiter re-reads the queue only when something that can let it in
// happens: with one slot, its immediate predecessor's key goes (an unlock
// wakes exactly one waiter); with several, any key ahead of its own goes
// (departures behind the n-th key ahead can matter). After kOutOfRange
// (etcd 401) it re-reads.
//
// Waiters do not watch on their own: every waiter of the process shares the
// one recursive watch of its session prefix's WatchHub (lease/watch_hub.h),
// so waiting costs no connection per waiter, and the hub wakes a waiter
// only for a departure that can let it in, so an event costs no wake-up
// per waiter.
//
// Thread-safety: WaitForTurn is a free function; QueueHold's methods are
// safe from any thread, but one Acquire at a time per QueueHold.
#ifndef LEASEHOLD_LEASE_QUEUE_H_
#define LEASEHOLD_LEASE_QUEUE_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lease/session.h"
#include "lease/signal.h"
#include "registry/cancel.h"
#include "registry/keys_api.h"

namespace leasehold::lease::internal {

// The keys of a queue in createdIndex order, read through raft.
struct Queue {
  std::vector<registry::Node> keys;  // empty when the directory is absent
  uint64_t etcd_index = 0;           // watch from etcd_index + 1
};
absl::StatusOr<Queue> ReadQueue(registry::KeysApi* keys,
                                const std::string& dir);

// Whether `event` removes a key (delete, compare-and-delete, expire).
bool IsRemoval(const registry::Response& event);
// Whether `event` removes `key` or a directory above it.
bool RemovesKeyOrParent(const registry::Response& event,
                        const std::string& key);

// The values of our queue keys whose create had an unknown outcome and was
// not found by its read-back: such a key may still land later, and then
// nobody renews or deletes it while it holds up the queue for a whole TTL.
// Every queue read of ours looks for these values and deletes their keys.
class StrayKeys {
 public:
  void Add(std::string value);
  // Deletes (compare-and-delete, best effort) every key of `queue` holding
  // one of the values and leaves it out of `queue`: a stray is ours, so it
  // never stands in our own way.
  void Sweep(registry::KeysApi* keys, Queue& queue);

 private:
  std::mutex mu_;
  std::vector<std::string> values_ ABSL_GUARDED_BY(mu_);
};

// Blocks until `my_key` is among the first `slots` keys under `dir`,
// waiting on the WatchHub of `root` (the session prefix; `dir` is under
// it). OK: it is. kNotFound: `my_key` is not in the queue (expired or
// deleted). kDeadlineExceeded past `deadline` (on `clock`), kCancelled when
// `cancel` fires; other registry errors as the registry reports them.
// `strays` (optional) are swept from every read of the queue.
absl::Status WaitForTurn(registry::KeysApi* keys, Clock* clock,
                         const std::string& root, const std::string& dir,
                         const std::string& my_key, size_t slots,
                         absl::Time deadline, const CancelToken* cancel,
                         StrayKeys* strays = nullptr);

// One contender's place in a queue: the common core of Mutex, Semaphore
// and Election. `kind` names the queue ("lock", "semaphore", "election"):
// its directory is `<session prefix><kind>/<name>/`.
class QueueHold {
 public:
  QueueHold(Session* session, std::string kind, std::string name, size_t slots);
  // Releases a key still held or queued (errors ignored).
  ~QueueHold();

  // Queues a key holding `value` (the session's UniqueValue() when unset)
  // and waits for its turn. OK: held. kFailedPrecondition: already held or
  // queued through this object, or the session is closed or ended;
  // kDeadlineExceeded / kCancelled: gave up, and the key is deleted;
  // kAborted: the key was lost while waiting (session expired, key
  // deleted); kInvalidArgument: a bad name. Registry errors otherwise
  // (the key, if created, is deleted).
  absl::Status Acquire(const std::optional<std::string>& value,
                       absl::Time deadline, const CancelToken* cancel);

  // Acquire without waiting. true: held. false: all slots are taken; costs
  // one registry read when the queue is visibly full. Errors as Acquire.
  absl::StatusOr<bool> TryAcquire(const std::optional<std::string>& value);

  // Deletes the key (compare-and-delete on its own index). OK: released
  // (also when it had been lost). kFailedPrecondition: nothing held.
  // kUnavailable: the delete did not go through; the key expires at its TTL.
  absl::Status Release();

  // Held and not lost.
  bool holds() const;
  // True between the start of Acquire and its return.
  bool queued() const;
  // The queue key ("" when none) and its createdIndex (0 when none).
  std::string key() const;
  uint64_t fence() const;
  // The lost() signal of the current or last key; null before the first.
  std::shared_ptr<const Signal> lost() const;
  // The current key's SessionKey::expiry(); InfinitePast when none.
  absl::Time expiry() const;
  // The held key, or null.
  std::shared_ptr<SessionKey> held_key() const;

  const std::string& dir() const { return dir_; }
  const std::string& name() const { return name_; }
  Session* session() const { return session_; }

 private:
  // "lock \"name\"" for messages.
  std::string What() const;
  // Creates our key, up to `creates` times while the outcome of a create
  // under a unique value stays unknown (each such value becomes a stray);
  // kFailedPrecondition when one exists.
  absl::StatusOr<std::shared_ptr<SessionKey>> Enqueue(
      const std::optional<std::string>& value, int creates);
  // Gives up `key` after a failed acquire.
  void Abandon(const std::shared_ptr<SessionKey>& key);
  // The queue now, without our strays.
  absl::StatusOr<Queue> Read();

  Session* const session_;
  const std::string kind_;
  const std::string name_;
  const std::string dir_;
  const size_t slots_;
  StrayKeys strays_;

  mutable std::mutex mu_;
  std::shared_ptr<SessionKey> key_ ABSL_GUARDED_BY(mu_);
  bool held_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<const Signal> lost_ ABSL_GUARDED_BY(mu_);
};

}  // namespace leasehold::lease::internal

#endif  // LEASEHOLD_LEASE_QUEUE_H_
