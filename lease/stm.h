// Software transactional memory over the v2 keys API: atomic multi-key
// transactions with serializable, repeatable-read or read-committed
// isolation, in the shape of etcd's concurrency.NewSTM.
//
// RunTransaction runs `apply` against a Transaction. Gets read committed
// data, Puts and Dels are buffered; at the end the writes are committed
// atomically, or `apply` runs again when a concurrent commit conflicted.
//
//   TransactionOptions options;
//   options.prefix = "/sched/";                  // the domain
//   absl::StatusOr<TransactionResult> r = RunTransaction(
//       keys, [](Transaction& txn) -> absl::Status {
//         auto from = txn.Get("/sched/machine/a/units");
//         if (!from.ok()) return from.status();
//         ...                                    // compute the new lists
//         txn.Put("/sched/machine/a/units", a_units);
//         txn.Put("/sched/machine/b/units", b_units);
//         return absl::OkStatus();
//       }, options);
//   // r->commit_index: the index at which both lists changed together.
//
// The domain. Every key a transaction reads or writes lives under
// options.prefix, and every write under it goes through RunTransaction.
// The bookkeeping lives under `<prefix>.stm/` (reserved). A read takes one
// recursive GET of the whole domain: v2 answers it atomically, so every read
// is a consistent snapshot that never shows half a commit.
//
// Commit protocol (one intent record per domain, `<prefix>.stm/intent`):
//   1. Create the intent "pending" with the write set, create-if-absent
//      with a TTL (options.intent_ttl). Its existence is the domain's commit
//      lock: a second committer waits (watching it) until it is gone.
//   2. Validate: one GET of the domain; every key read must still have the
//      modifiedIndex it was read at (not for kReadCommitted); the current
//      modifiedIndex of every written key becomes that write's guard.
//      Skipped when the intent's index follows the serializable snapshot's
//      index directly (nothing at all was written in between).
//   3. Mark the intent "committed" with a compare-and-swap on its index,
//      which also removes its TTL. This is the commit point; its index is
//      the commit index. A committer that stalls past the TTL before this
//      point loses the intent to expiry, the CAS fails, nothing was written,
//      and the attempt is retried: the intent decides.
//   4. Roll forward: write each key with a compare-and-swap on its guard
//      (create-if-absent for guard 0), then delete the intent. Whoever meets
//      a committed intent (a reader, the next committer) does the same.
//      Guards make this idempotent: a write that already happened fails its
//      guard and is skipped, and a stale roller can never write again.
// A deleted key is kept as a tombstone value (kTombstone) so that every key
// that ever existed keeps an index to guard on; reads show it as absent.
//
// Lost responses (registry::IsOutcomeUnknown) are resolved, never retried
// blindly: a lost intent create is read back by its unique id; a lost
// commit mark is read back, and if the intent is gone already, the intent's
// event history (a watch from its index) says whether it was committed;
// lost data writes are repeated under the same guard.
//
// Thread-safety: RunTransaction may run from any number of threads and
// processes at once. A Transaction belongs to the one call of `apply` it is
// passed to.
#ifndef LEASEHOLD_LEASE_STM_H_
#define LEASEHOLD_LEASE_STM_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "registry/cancel.h"
#include "registry/clock.h"
#include "registry/keys_api.h"

namespace leasehold::lease {

// Isolation levels, with etcd's STM definitions.
enum class Isolation {
  // Repeatable read, and every read is consistent with the store at the
  // first read's index (all reads come from one snapshot of the domain).
  kSerializable,
  // Each key is read once per attempt; the commit fails, and `apply` runs
  // again, if any key read changed before the commit.
  kRepeatableRead,
  // Reads see committed data (each Get a fresh snapshot); only the writes
  // are atomic.
  kReadCommitted,
};

// What a deleted key holds (reads show it as absent). Put rejects it.
inline constexpr absl::string_view kTombstone = "\x7fleasehold-stm-deleted";

struct TransactionOptions {
  Isolation isolation = Isolation::kSerializable;
  // The domain: every key lives under it; bookkeeping under
  // `<prefix>.stm/`. A missing leading or trailing '/' is added.
  std::string prefix = "/leasehold/stm/";
  // Deadline and waits on this clock. Default: RealClock().
  Clock* clock = nullptr;
  absl::Time deadline = absl::InfiniteFuture();
  const CancelToken* cancel = nullptr;
  // Runs of `apply` before giving up with kAborted.
  int max_attempts = 100;
  // Pause before a retry after a conflict: initial_backoff doubling up to
  // max_backoff, with jitter (half to all of it). Zero: retry at once.
  absl::Duration initial_backoff = absl::Milliseconds(2);
  absl::Duration max_backoff = absl::Milliseconds(200);
  // TTL of a pending intent: how long a committer that dies before its
  // commit point blocks the domain. Rounded up to whole seconds.
  absl::Duration intent_ttl = absl::Seconds(10);
};

struct TransactionResult {
  // The index of the commit point (the intent's "committed" mark). For a
  // transaction without writes: the index of the snapshot its reads are
  // consistent with (0 when it read nothing).
  uint64_t commit_index = 0;
  // Runs of `apply`, at least 1.
  int attempts = 0;
};

class Transaction {
 public:
  // The key's value, or nullopt when absent. Reads the transaction's own
  // buffered write first. Errors: kInvalidArgument for a key outside the
  // domain, registry errors; an error also fails the attempt, whatever
  // `apply` returns.
  absl::StatusOr<std::optional<std::string>> Get(const std::string& key);
  // The key's modifiedIndex when read (0 when absent). Enters the read set
  // like Get.
  absl::StatusOr<uint64_t> Rev(const std::string& key);
  // Buffered until the commit. A bad key or value (outside the domain,
  // kTombstone) fails the transaction with kInvalidArgument.
  void Put(const std::string& key, const std::string& value);
  void Del(const std::string& key);

  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

 private:
  friend class Committer;
  struct Entry {
    std::optional<std::string> value;  // nullopt: absent or tombstone
    uint64_t modified_index = 0;       // 0: no node at all
  };
  using Snapshot = std::map<std::string, Entry>;

  explicit Transaction(class Committer* committer) : committer_(committer) {}
  absl::StatusOr<Entry> Read(const std::string& key);
  void Fail(absl::Status status);

  Committer* const committer_;
  absl::Status error_;                     // first error
  std::optional<Snapshot> snapshot_;       // serializable
  uint64_t snapshot_index_ = 0;            // of the last snapshot
  std::map<std::string, uint64_t> reads_;  // key -> modifiedIndex
  std::map<std::string, Entry> cache_;     // repeatable read
  std::map<std::string, std::optional<std::string>> writes_;  // nullopt: Del
};

// Runs `apply` in a transaction until it commits. OK: committed (or a
// transaction without writes whose reads were valid). Errors:
//   `apply`'s own error: nothing written.
//   kInvalidArgument: a bad key, value or option.
//   kAborted: still conflicting after max_attempts runs.
//   kDeadlineExceeded / kCancelled: options.deadline / options.cancel;
//     nothing written.
//   kUnavailable with registry::IsOutcomeUnknown: the commit mark's
//     response was lost and could not be resolved; it may have committed.
//   Other registry errors after repeated kUnavailable.
absl::StatusOr<TransactionResult> RunTransaction(
    registry::KeysApi* keys,
    const std::function<absl::Status(Transaction&)>& apply,
    TransactionOptions options = {});

}  // namespace leasehold::lease

#endif  // LEASEHOLD_LEASE_STM_H_
