// WatchHub: one recursive registry watch per process and key prefix, shared
// by every local waiter (internal).
//
// A waiting Mutex, Semaphore or Election would otherwise block in a Watch
// call of its own, and the etcd client holds one HTTP connection per watch
// in flight. Instead, waiters subscribe to the hub of their session's
// prefix: one thread per (registry, clock, prefix) watches the prefix and
// hands each event to the subscribers whose directory it falls under and
// whose filter wants it, so a process with 500 waiters holds one watch
// connection, not 500.
//
// The filter runs on the hub's thread: a subscriber is woken only by the
// events it waits for. Waking every waiter of a queue for every event
// under its directory (and letting each one ignore what is not its
// predecessor's departure) costs a thread wake-up per waiter per event;
// with 1000 waiters the hub then falls seconds behind the registry, and
// an unlock reaches the next waiter only after that backlog.
//
//   Queue queue = ...;  // a read at queue.etcd_index
//   auto sub = WatchHub::Subscribe(keys, clock, "/leasehold/",
//                                  "/leasehold/lock/job/",
//                                  queue.etcd_index + 1, wanted);
//   if (!sub.ok()) return sub.status();
//   absl::StatusOr<registry::Response> event =
//       (*sub)->Next(deadline, cancel);  // kOutOfRange: read again
//
// The hub reads the prefix once when it starts and watches from there. A
// subscriber is handed every event from the index it asks for: those the
// hub handed out before it subscribed from the hub's own history of the
// last 1000, or, when that does not reach back far enough, kOutOfRange
// first (re-read, then go on). When the hub falls behind the registry's
// event history it re-reads the prefix and then tells each subscriber
// kOutOfRange. The hub stops when its last subscriber leaves.
//
// Thread-safety: Subscribe is safe from any thread; a Subscription is used
// by one thread at a time.
#ifndef LEASEHOLD_LEASE_WATCH_HUB_H_
#define LEASEHOLD_LEASE_WATCH_HUB_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "registry/cancel.h"
#include "registry/clock.h"
#include "registry/keys_api.h"

namespace leasehold::lease::internal {

class WatchHub {
 public:
  // Which events under its directory a subscription is handed: those for
  // which it returns true. It runs on the hub's thread with the hub's lock
  // held, for every event under the directory: it must be quick, must not
  // block and must not call the hub.
  using Filter = std::function<bool(const registry::Response& event)>;

  class Subscription {
   public:
    virtual ~Subscription() = default;
    // The next event under the subscribed directory that the filter
    // wanted, in index order. kOutOfRange: events were missed; re-read.
    // kDeadlineExceeded past `deadline` (on the hub's clock), kCancelled
    // when `cancel` fires; another error when the hub's watch failed.
    virtual absl::StatusOr<registry::Response> Next(
        absl::Time deadline, const CancelToken* cancel) = 0;
    // Replaces the filter, for the events not yet taken by Next as well
    // (errors are always handed). An event the hub handed out before this
    // call had to pass the old filter: to narrow the filter after a read
    // without missing an event, keep one in place during the read that
    // accepts at least what the narrower one will.
    virtual void SetFilter(Filter wanted) = 0;
  };

  // Subscribes to the events under `dir` (which must start with `root`)
  // that `wanted` accepts, from `from_index` on (the index of the caller's
  // last read + 1), starting (and reading `root` through) the hub of
  // (keys, clock, root) if it is not running. The subscription starts with
  // kOutOfRange when the hub cannot hand out every event from `from_index`
  // (it started later, or its history no longer reaches back). Errors: the
  // hub's start read failed.
  static absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(
      registry::KeysApi* keys, Clock* clock, const std::string& root,
      const std::string& dir, uint64_t from_index, Filter wanted);
};

}  // namespace leasehold::lease::internal

#endif  // LEASEHOLD_LEASE_WATCH_HUB_H_
