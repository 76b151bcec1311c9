// NaiveLock: the lock leasehold's Mutex is measured against, written here
// for contrast and nowhere else. Lock creates one key if it is absent, with
// a TTL; a waiter watches that key and, whenever it changes, tries the
// create again. So every release wakes every waiter, all of them create,
// all but one fail and watch again: a thundering herd of O(waiters)
// requests per handoff, where Mutex's queue costs O(1).
//
//   NaiveLock lock(keys, "/bench-naive/lock", absl::Seconds(60));
//   if (lock.Lock(absl::Now() + absl::Seconds(5)).ok()) {
//     ...
//     lock.Unlock().IgnoreError();
//   }
//
// Thread-safety: one NaiveLock is one contender, used by one thread at a
// time; contenders on the same key may run on any threads.
#ifndef LEASEHOLD_BENCH_NAIVE_LOCK_H_
#define LEASEHOLD_BENCH_NAIVE_LOCK_H_

#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "registry/keys_api.h"

namespace leasehold::bench {

class NaiveLock {
 public:
  // The key expires `ttl` after its holder created it, should the holder
  // die; nothing renews it. REQUIRES: `keys` outlives the lock.
  NaiveLock(registry::KeysApi* keys, std::string key, absl::Duration ttl)
      : keys_(keys), key_(std::move(key)), ttl_(ttl) {}

  // OK: this contender created the key and holds the lock.
  // kDeadlineExceeded: `deadline` (absl::Now()) passed; other registry
  // errors as they came.
  absl::Status Lock(absl::Time deadline);
  // Deletes the key with a compare-and-delete on the index Lock created it
  // at. REQUIRES: held.
  absl::Status Unlock();

 private:
  registry::KeysApi* const keys_;
  const std::string key_;
  const absl::Duration ttl_;
  uint64_t index_ = 0;  // the key's modifiedIndex while held
};

}  // namespace leasehold::bench

#endif  // LEASEHOLD_BENCH_NAIVE_LOCK_H_
