// Barrier and DoubleBarrier: the barriers of etcd's concurrency recipes
// (client/v3/experimental/recipes) on the v2 keys API.
//
// Barrier: one party holds the barrier, any number Wait until it is
// released. The barrier is the key `<prefix>barrier/<name>`: held while it
// exists. Like etcd's it is not tied to a session: it stays held until
// someone releases it, or until its TTL passes if Hold was given one (so a
// holder that crashes cannot block the waiters forever).
//
//   Barrier gate(keys, "/leasehold/", "migration");
//   gate.Hold();                           // true: held now
//   ... // workers: Barrier(keys, "/leasehold/", "migration").Wait();
//   gate.Release();                        // every waiter goes on
//
// DoubleBarrier: `count` parties Enter, and each blocks until all `count`
// have entered; then each Leaves, and blocks until all have left. Each
// party's key `<prefix>double-barrier/<name>/waiters/<n>` belongs to its
// Session (as etcd's to its lease): a party that dies is gone from the
// barrier at its TTL and the others go on. The last to enter writes
// `<prefix>double-barrier/<name>/ready`, which lets the others in; to leave,
// the oldest party waits for the newest to go, every other party goes and
// waits for the oldest, and the oldest, alone at last, deletes `ready`.
//
//   DoubleBarrier round(session.get(), "round", /*count=*/20);
//   if (absl::Status s = round.Enter(); !s.ok()) return s;
//   Compute();
//   if (absl::Status s = round.Leave(); !s.ok()) return s;
//
// Waits re-read the key they wait on after each event on it (one registry
// watch each, on etcd one connection), so no event is missed, 401 included.
//
// Thread-safety: all methods are safe from any thread; one Enter/Leave at a
// time per DoubleBarrier. REQUIRES: the registry (and the Session of a
// DoubleBarrier) outlives the barrier.
#ifndef LEASEHOLD_LEASE_BARRIER_H_
#define LEASEHOLD_LEASE_BARRIER_H_

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lease/session.h"
#include "lease/signal.h"
#include "registry/cancel.h"
#include "registry/keys_api.h"

namespace leasehold::lease {

class Barrier {
 public:
  // `prefix` as SessionOptions::prefix ("/leasehold/"); `name` is
  // validated by each call (no '/', not empty, ...).
  Barrier(registry::KeysApi* keys, std::string prefix, std::string name);

  // Holds the barrier, storing `value`, until Release (or, with a finite
  // `ttl`, until it passes; whole seconds, rounded up). true: held now;
  // false: it was held already (by anyone). kInvalidArgument: a bad name or
  // TTL; registry errors otherwise (kUnavailable marked outcome-unknown
  // when the write may have landed: Release or Hold again).
  absl::StatusOr<bool> Hold(const std::string& value = "",
                            absl::Duration ttl = absl::InfiniteDuration());

  // Releases the barrier, whoever held it: every waiter goes on. true:
  // released; false: it was not held. Registry errors otherwise.
  absl::StatusOr<bool> Release();

  // Blocks until the barrier is not held. OK: not held (at once if it was
  // not). kDeadlineExceeded past `deadline` (registry clock), kCancelled
  // when `cancel` fires; registry errors otherwise.
  absl::Status Wait(absl::Time deadline = absl::InfiniteFuture(),
                    const CancelToken* cancel = nullptr);

  const std::string& key() const { return key_; }

 private:
  registry::KeysApi* const keys_;
  const std::string name_;
  const std::string key_;
};

class DoubleBarrier {
 public:
  // REQUIRES: count >= 1.
  DoubleBarrier(Session* session, std::string name, size_t count);
  // Deletes our key if it is still there (errors ignored).
  ~DoubleBarrier();

  DoubleBarrier(const DoubleBarrier&) = delete;
  DoubleBarrier& operator=(const DoubleBarrier&) = delete;

  // Enters and blocks until `count` parties have entered. OK: all in.
  //   kResourceExhausted: `count` parties are in already (our key is
  //     deleted again).
  //   kDeadlineExceeded / kCancelled: gave up; our key is deleted.
  //   kAborted: our key was lost while waiting (session expired, deleted).
  //   kFailedPrecondition: entered already through this object, or the
  //     session is closed or ended. kInvalidArgument: a bad name.
  //   Registry errors otherwise (our key, if made, is deleted).
  absl::Status Enter(absl::Time deadline = absl::InfiniteFuture(),
                     const CancelToken* cancel = nullptr);

  // Leaves and blocks until every party has left. OK: all out (our key is
  // gone). kFailedPrecondition: not entered. kDeadlineExceeded /
  // kCancelled: gave up waiting (our key may be gone already: the others
  // do not wait for us); registry errors otherwise. Call again to go on.
  absl::Status Leave(absl::Time deadline = absl::InfiniteFuture(),
                     const CancelToken* cancel = nullptr);

  // Our key ("" when not entered) and its createdIndex.
  std::string key() const;
  // Fires when our key is lost (not by Leave); null before the first Enter.
  std::shared_ptr<const Signal> lost() const;
  const std::string& name() const { return name_; }
  size_t count() const { return count_; }

 private:
  std::string What() const;
  // Deletes our key (if any) and forgets it.
  absl::Status Drop();

  Session* const session_;
  const std::string name_;
  const size_t count_;
  const std::string dir_;  // <prefix>double-barrier/<name>
  const std::string waiters_;
  const std::string ready_;

  mutable std::mutex mu_;
  std::shared_ptr<SessionKey> key_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const Signal> lost_ ABSL_GUARDED_BY(mu_);
};

}  // namespace leasehold::lease

#endif  // LEASEHOLD_LEASE_BARRIER_H_
