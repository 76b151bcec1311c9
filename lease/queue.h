// The queue discipline shared by Mutex, RWMutex, Semaphore and Election
// (internal).
//
// Each contender creates an in-order key under the queue's directory with
// its session's TTL; keys sort by createdIndex, and a TurnRule says, from
// the keys ahead of a contender, whether it holds and, if not, which keys
// ahead keep it out: the first `slots` keys hold (Mutex, Semaphore,
// Election), or a reader holds with no writer ahead and a writer when it
// is first (RWMutex). A waiter re-reads the queue only when one of the keys
// keeping it out goes: with one slot, its immediate predecessor's key (an
// unlock wakes exactly one waiter); with several, any key ahead of its own
// (departures behind the n-th key ahead can matter); a reader, the nearest
// writer ahead. After kOutOfRange (etcd 401) it re-reads.
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
#include <functional>
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

// A token cancelled when `cancel` (optional) is, or when `lost` fires, so
// that a wait for a key's turn ends once the key is gone.
class CancelOrLost {
 public:
  CancelOrLost(const CancelToken* cancel, const Signal& lost);
  const CancelToken* token() const { return &stop_; }

 private:
  CancelToken stop_;
  CancelToken::Registration on_cancel_;
  CancelToken::Registration on_lost_;
};

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

// The keys ahead of a contender that keep it out: keys[first..last] of
// the queue. It waits until one of them goes, then looks again.
struct Blockers {
  size_t first = 0;
  size_t last = 0;
};

// Decides a contender's turn: nullopt when a contender with `position`
// keys ahead of it in `keys` (sorted by createdIndex, without our strays)
// holds, else the keys ahead that keep it out. `position` may be
// keys.size() (a key not created yet: would it hold?). An error ends the
// wait (the contenders disagree on the queue's shape). It runs on every
// read of the queue: it must be quick and must not block.
using TurnRule = std::function<absl::StatusOr<std::optional<Blockers>>(
    const std::vector<registry::Node>& keys, size_t position)>;

// The first `slots` keys hold. A waiter waits for its immediate predecessor
// with one slot (nothing else can let it in), for any key ahead with more.
// REQUIRES: slots >= 1.
TurnRule FirstSlots(size_t slots);

// Blocks until `rule` says `my_key` holds in the queue under `dir`, waiting
// on the WatchHub of `root` (the session prefix; `dir` is under it). OK: it
// holds. kNotFound: `my_key` is not in the queue (expired or deleted).
// kDeadlineExceeded past `deadline` (on `clock`), kCancelled when `cancel`
// fires; the rule's errors; other registry errors as the registry reports
// them. `strays` (optional) are swept from every read of the queue.
absl::Status WaitForTurn(registry::KeysApi* keys, Clock* clock,
                         const std::string& root, const std::string& dir,
                         const std::string& my_key, const TurnRule& rule,
                         absl::Time deadline, const CancelToken* cancel,
                         StrayKeys* strays = nullptr);

// One contender's place in a queue: the common core of Mutex, RWMutex,
// Semaphore and Election. `kind` names the queue ("lock", "semaphore",
// "election"): its directory is `<session prefix><kind>/<name>/` (a Mutex
// and an RWMutex of one name share the "lock" queue).
class QueueHold {
 public:
  // `rule` decides the turn; `tag` starts every value the hold makes up
  // (Acquire without a value), so that the rules of other contenders can
  // tell what this one is (a reader or a writer, its semaphore's N).
  QueueHold(Session* session, std::string kind, std::string name, TurnRule rule,
            std::string tag = "");
  // Releases a key still held or queued (errors ignored).
  ~QueueHold();

  // Queues a key holding `value` (the tag and the session's UniqueValue()
  // when unset) and waits for its turn. OK: held. kFailedPrecondition: already
  // held or queued through this object, or the session is closed or ended;
  // kDeadlineExceeded / kCancelled: gave up, and the key is deleted;
  // kAborted: the key was lost while waiting (session expired, key
  // deleted); kInvalidArgument: a bad name. Registry errors otherwise
  // (the key, if created, is deleted).
  absl::Status Acquire(const std::optional<std::string>& value,
                       absl::Time deadline, const CancelToken* cancel);

  // Acquire without waiting. true: held. false: the rule keeps us out;
  // costs one registry read when it visibly would. Errors as Acquire.
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
  const TurnRule rule_;
  const std::string tag_;
  StrayKeys strays_;

  mutable std::mutex mu_;
  std::shared_ptr<SessionKey> key_ ABSL_GUARDED_BY(mu_);
  bool held_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<const Signal> lost_ ABSL_GUARDED_BY(mu_);
};

// The C++ Lockable forms of a lock call's result, for Mutex and RWMutex:
// a failure throws std::system_error (message: the absl::Status), as the
// standard allows. AcquiredOrThrow is for the timed forms: a timeout
// (kDeadlineExceeded) is false, not an exception.
void ThrowIfError(const absl::Status& status);
bool ValueOrThrow(const absl::StatusOr<bool>& acquired);
bool AcquiredOrThrow(const absl::Status& status);

}  // namespace leasehold::lease::internal

#endif  // LEASEHOLD_LEASE_QUEUE_H_
