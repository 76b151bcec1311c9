// LeaseManager and Lease: fleet's lease API on the etcd v2 keys API.
//
// A lease is a key `<prefix>lease/<name>` with a TTL whose value names the
// holder in fleet's format, {"MachineID":"…","Version":N} (plus a "Token"
// fleet ignores; see lease/lease_value.h). Acquire creates it if absent,
// Steal replaces it at a known index, Renew extends it with a
// compare-and-swap on its index, Release deletes it with a compare-and-delete.
// "Held by someone else" and "lost a race" are normal results (a null lease),
// not errors; errors mean bad input or a registry that could not answer.
//
//   LeaseManager leases(keys.get());  // prefix "/leasehold/", quorum reads
//   absl::StatusOr<std::unique_ptr<Lease>> lease =
//       leases.AcquireLease("unit-42", "machine-a", 1, absl::Seconds(10));
//   if (!lease.ok()) return lease.status();        // registry trouble
//   if (*lease == nullptr) return;                 // someone else holds it
//   UseFencingToken((*lease)->fence());
//   absl::Status s = (*lease)->Renew(absl::Seconds(10));  // or use a Keeper
//
// Periods are TTLs: rounded UP to whole seconds, at least 1 s (etcd TTLs are
// whole seconds). A lost response (registry::IsOutcomeUnknown) is resolved by
// reading the key back (always a quorum read): the per-grant token says
// whether the write landed, so a caller never gets a false "none" and never
// becomes a second owner. If it still cannot tell, the call fails with
// kUnavailable and IsOutcomeUnknown(status) — at worst an unknown write of
// ours holds the lease, unused, until its TTL runs out.
//
// Expiry rule: a holder believes in its lease until the EARLIEST send time of
// any of its writes that could have produced the key's current index, plus
// the TTL, minus the safety margin (LeaseManagerOptions::safety_margin), on
// a clock that keeps counting through suspend (RealClock()). A write whose
// outcome stays unknown is remembered until a later answer settles it, so a
// renew that lands late is never credited to a later send, and a renew that
// fails its compare-and-swap because an earlier one of ours landed reads the
// key back instead of reporting the lease lost.
//
// Thread-safety: LeaseManager is safe from any number of threads. A Lease's
// accessors are safe from any thread; its Renew and Release calls are
// serialized with each other.
#ifndef LEASEHOLD_LEASE_LEASE_MANAGER_H_
#define LEASEHOLD_LEASE_LEASE_MANAGER_H_

#include <atomic>
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
#include "lease/lease_value.h"
#include "registry/cancel.h"
#include "registry/clock.h"
#include "registry/keys_api.h"

namespace leasehold::lease {

// How long before its computed expiry a holder stops believing in a lease:
// room for the skew between etcd members' clocks (etcd v2 computes the end
// of a TTL on the wall clock of the member that applies the write) and for
// the rate error of this machine's clock. The margin of a TTL is
// `fraction` × TTL + `fixed`; a period must be longer than its margin.
// Default: 2 % + 10 ms (210 ms of a 10 s lease).
struct SafetyMargin {
  double fraction = 0.02;
  absl::Duration fixed = absl::Milliseconds(10);

  absl::Duration For(absl::Duration ttl) const {
    return ttl * fraction + fixed;
  }
};

class Lease {
 public:
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  const std::string& name() const { return name_; }
  const std::string& machine_id() const { return machine_id_; }
  int64_t version() const { return version_; }

  // The key's modifiedIndex as this holder last saw it: the guard of the
  // next Renew or Release, and what a standby passes to StealLease. Every
  // renew moves it.
  uint64_t index() const;

  // The fencing token: the index at which this holder acquired or stole the
  // lease. Stable across renews and strictly greater than any earlier
  // holder's fence. For a lease read with GetLease, ListLeases or
  // WaitForChange (the registry does not record when its holder got it) it
  // is the index at the read, which is still greater than every earlier
  // holder's fence.
  uint64_t fence() const { return fence_; }

  // The TTL of the last grant (acquire, steal or renew), whole seconds. For
  // a read lease: the TTL the server reported.
  absl::Duration period() const;

  // When this holder must consider the lease gone, on the manager's clock:
  // the time the granting request was SENT (the earliest send of any write
  // of ours that could have granted it) plus its TTL, minus the safety
  // margin, so never later than the server's own expiry. A read lease
  // counts from its read, less one second (the server rounds its TTL up);
  // a key the server reports past its TTL (expired, not swept yet) is
  // expired. In the past after a Release or once a Renew found the lease
  // gone or taken; InfiniteFuture for a key without a TTL.
  absl::Time expiry() const;
  // How much earlier than the server expiry() is: the safety margin of
  // period() (see SafetyMargin).
  absl::Duration safety_margin() const { return margin_.For(period()); }
  // max(expiry() - now, 0), counting down on the manager's clock.
  absl::Duration time_remaining() const;
  bool expired() const { return time_remaining() == absl::ZeroDuration(); }

  // Extends the lease to `period` (rounded up to whole seconds) from now,
  // with a compare-and-swap on index() that does not wake watchers
  // (refresh). Each attempt (and its read-back) gives up after a third of
  // the time the lease has left, so a stuck request leaves time to retry;
  // an attempt whose answer is lost (a timeout, a member in an election or
  // cut off) is sent again at once, to the next member, up to three times,
  // and a read-back settles what landed.
  // OK: index(), period() and expiry() are updated.
  //   kAborted: someone else holds it now (it was stolen).
  //   kNotFound: it expired or was released.
  //   kInvalidArgument: a period that is not positive, or not longer than
  //     its safety margin.
  //   kUnavailable / kDeadlineExceeded: the registry did not answer; the
  //     lease may still be held until expiry(); retry.
  absl::Status Renew(absl::Duration period);

  // Replaces the stored value with a compare-and-swap on index(), renewing
  // the TTL to period(): for a key adopted with LeaseManager::AdoptKey (a
  // session's queue key; the value must name only this holder's key).
  // Attempts are bounded as Renew's. OK: written; index() and expiry() are
  // updated. kAborted: someone else holds it; kNotFound: it expired or was
  // deleted; kFailedPrecondition: not an adopted key; kUnavailable
  // (possibly IsOutcomeUnknown) / kDeadlineExceeded: not confirmed.
  absl::Status SetValue(const std::string& value);

  // Deletes the key with a compare-and-delete on index(), so it never
  // deletes a newer holder's key. When the answer is lost, or the compare
  // fails while a write of ours is unresolved, it reads the key back: if
  // our own late write moved it, it deletes at the new index. OK: it is
  // gone (after a lost response: our key is no longer there). kAborted:
  // someone else holds it; kNotFound: it had already expired;
  // kUnavailable: retry. After OK, kAborted or kNotFound the lease is
  // expired().
  absl::Status Release();

 private:
  friend class LeaseManager;
  // `holder` is `value` decoded (DecodeLeaseValue), or for a value the
  // manager just encoded, what it encoded: decoding costs more than the
  // rest of building a Lease.
  Lease(registry::KeysApi* keys, Clock* clock, SafetyMargin margin,
        bool adopted, std::string name, std::string key, std::string value,
        LeaseValue holder, uint64_t index, uint64_t fence,
        absl::Duration period, absl::Time expiry);

  enum class WriteOp { kRenew, kSetValue, kRelease };
  // One conditional write of ours at index(), retried and resolved by
  // reading back (see the expiry rule in the file comment).
  absl::Status Write(WriteOp op, const std::string& value, absl::Duration ttl)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(op_mu_);
  // When an attempt made at `now` gives up: after a third of the time left.
  absl::Time AttemptDeadline(absl::Time now) const;
  // Whether `value` is ours: the stored value or one of a write of ours
  // whose outcome is unknown.
  bool IsOurs(const std::string& value) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(op_mu_);
  // Forgets the writes whose outcome was unknown: an answer settled them.
  void Settled() ABSL_EXCLUSIVE_LOCKS_REQUIRED(op_mu_);
  // Records a grant by a write sent at `sent` (index, TTL, expiry).
  void Granted(uint64_t index, absl::Duration period, absl::Time sent);
  // Records that the lease is certainly not ours any more.
  void Gone();
  absl::Status Annotate(const absl::Status& status, const char* op,
                        uint64_t index) const;

  registry::KeysApi* const keys_;
  Clock* const clock_;
  const SafetyMargin margin_;
  const bool adopted_;
  const std::string name_;
  const std::string key_;
  const std::string machine_id_;
  const int64_t version_;
  const uint64_t fence_;

  std::mutex op_mu_;  // serializes Renew, SetValue and Release
  std::string value_ ABSL_GUARDED_BY(op_mu_);  // as stored: our token is in it
  // The earliest send time of a write of ours whose outcome is still
  // unknown (nullopt: none since the last settled answer), and the values
  // such writes may have stored.
  std::optional<absl::Time> unresolved_since_ ABSL_GUARDED_BY(op_mu_);
  std::vector<std::string> unresolved_values_ ABSL_GUARDED_BY(op_mu_);
  mutable std::mutex mu_;
  uint64_t index_ ABSL_GUARDED_BY(mu_);
  absl::Duration period_ ABSL_GUARDED_BY(mu_);
  absl::Time expiry_ ABSL_GUARDED_BY(mu_);
};

struct LeaseManagerOptions {
  // Leases live at `<prefix>lease/<name>`. Default "/leasehold/"; fleet
  // uses "/_coreos.com/fleet/". A missing leading or trailing '/' is added.
  std::string prefix = "/leasehold/";
  // GetLease, ListLeases and WaitForChange read through raft (etcd
  // quorum=true) so a stale member cannot report a wrong holder. Default on.
  // Reads that resolve a lost response are always quorum reads.
  bool quorum_reads = true;
  // Every expiry decision reads this clock. Default: RealClock().
  Clock* clock = nullptr;
  // Holders treat a lease as expired this long before its computed expiry
  // (see SafetyMargin). Its TTL must also leave room for the Keeper's
  // renews: with the default renew fraction 1/3, a TTL of at least 3× the
  // longest request time plus the margin.
  SafetyMargin safety_margin = {};
};

class LeaseManager {
 public:
  // REQUIRES: `keys` (and options.clock) outlive the manager and every
  // Lease it returns.
  explicit LeaseManager(registry::KeysApi* keys,
                        LeaseManagerOptions options = {});

  // The lease as it is now, or nullptr when nobody holds it.
  // kInvalidArgument for a bad name; registry errors otherwise.
  absl::StatusOr<std::unique_ptr<Lease>> GetLease(const std::string& name);

  // Creates the lease for `machine_id` at `version` with a TTL of `period`
  // if nobody holds it. nullptr when someone does. kInvalidArgument for a
  // bad name, machine id or period; kUnavailable (possibly
  // IsOutcomeUnknown) when the registry did not answer.
  absl::StatusOr<std::unique_ptr<Lease>> AcquireLease(
      const std::string& name, const std::string& machine_id, int64_t version,
      absl::Duration period);

  // Takes the lease over from its holder if it is still at `index` (a
  // compare-and-swap). nullptr when it moved past `index`, vanished, or
  // another stealer won. Errors as AcquireLease.
  absl::StatusOr<std::unique_ptr<Lease>> StealLease(
      const std::string& name, const std::string& machine_id, int64_t version,
      absl::Duration period, uint64_t index);

  // Every lease under the prefix, sorted by name (empty when none).
  absl::StatusOr<std::vector<std::unique_ptr<Lease>>> ListLeases();

  // Blocks until the lease changes hands after `after_index` (usually the
  // index() of the lease the caller saw): it was released, expired, stolen
  // or re-acquired. Renewals by the same holder do not count. Returns the
  // lease as it is after the change, nullptr when nobody holds it (acquire
  // it now), at once if nobody holds it when called. After a gap longer
  // than the registry's event history it re-reads the key and may return
  // the current holder even if it only renewed; wait again from its index.
  // kDeadlineExceeded past `deadline` (on the registry's clock), kCancelled
  // when `cancel` fires, kInvalidArgument for a bad name.
  absl::StatusOr<std::unique_ptr<Lease>> WaitForChange(
      const std::string& name, uint64_t after_index,
      absl::Time deadline = absl::InfiniteFuture(),
      const CancelToken* cancel = nullptr);

  // Wraps a key the caller created itself (say, an in-order key of a lock
  // queue) as a renewable Lease, so that a Keeper can keep it alive with
  // the same CAS-on-index renewals. `node` is the key as the creating (or
  // last) write returned it; `ttl` its TTL; `sent` when that write was sent
  // (the earliest send, if several tries could have created it). name() is
  // the key, fence() its createdIndex. The value is not fleet JSON; it can
  // be changed with Lease::SetValue.
  std::unique_ptr<Lease> AdoptKey(const registry::Node& node,
                                  absl::Duration ttl, absl::Time sent);

  const LeaseManagerOptions& options() const { return options_; }

  // The registry key of lease `name`: `<prefix>lease/<name>` (for tools
  // that watch or inspect the raw key).
  std::string KeyFor(const std::string& name) const;

 private:
  registry::GetOptions ReadOptions() const;
  std::string NewToken();
  // Acquire (steal_index unset) or steal.
  absl::StatusOr<std::unique_ptr<Lease>> Grant(
      const std::string& name, const std::string& machine_id, int64_t version,
      absl::Duration period, std::optional<uint64_t> steal_index);
  // A lease read from a node, as a non-holder sees it.
  std::unique_ptr<Lease> FromRead(const std::string& name,
                                  const registry::Node& node,
                                  absl::Time read_at);

  registry::KeysApi* const keys_;
  const LeaseManagerOptions options_;
  Clock* const clock_;
  const uint64_t token_seed_;
  std::atomic<uint64_t> token_counter_{0};
};

}  // namespace leasehold::lease

#endif  // LEASEHOLD_LEASE_LEASE_MANAGER_H_
