// Election: leader election on a queue of candidates, owned by a Session.
//
// Candidates queue in-order keys under `<prefix>election/<name>/` holding
// their value; the first key is the leader (so leadership passes in FIFO
// order). Campaign blocks until this candidate leads; Proclaim changes the
// leader's value with a compare-and-swap on its own key; Resign deletes the
// key; revoked() fires when leadership is lost (session expired, key
// deleted, a Proclaim that could not be confirmed). Anyone can read the
// leader (Leader) or follow every change of leader (LeaderObserver).
//
//   Election election(session.get(), "engine");
//   if (absl::Status s = election.Campaign("host-a:8080"); !s.ok()) return s;
//   std::thread watchdog([&] {
//     election.revoked()->Wait();  // stop acting as leader
//   });
//   election.Proclaim("host-a:9090");
//   election.Resign();
//
//   LeaderObserver observer(keys, "/leasehold/", "engine");
//   while (auto leader = observer.Next()) {   // StatusOr<optional<...>>
//     if (!leader.ok()) break;
//     Route(*leader);                         // nullopt: no leader now
//   }
//
// The candidate's value is stored as is; a create whose response was lost
// is not resolved (values need not be unique), so a stray candidate key may
// linger until its TTL passes — it never makes this process a leader.
// Waiting Campaigns share the process's watch (as Mutex waiters do); each
// LeaderObserver blocked in Next holds a registry Watch of its own (on
// etcd, one connection).
//
// Thread-safety: Election's methods are safe from any thread (one Campaign
// at a time). A LeaderObserver is used by one thread at a time.
// REQUIRES: the Session outlives the Election.
#ifndef LEASEHOLD_LEASE_ELECTION_H_
#define LEASEHOLD_LEASE_ELECTION_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lease/queue.h"
#include "lease/session.h"
#include "lease/signal.h"
#include "registry/cancel.h"
#include "registry/keys_api.h"

namespace leasehold::lease {

class LeaderObserver;

enum class ElectionStatus { kFollower, kCandidate, kLeader };
const char* ElectionStatusName(ElectionStatus status);

// The leader as the registry shows it.
struct LeaderInfo {
  std::string value;
  std::string key;     // its candidate key
  uint64_t fence = 0;  // the key's createdIndex: grows with each leader

  friend bool operator==(const LeaderInfo& a, const LeaderInfo& b) {
    return a.value == b.value && a.key == b.key && a.fence == b.fence;
  }
  friend bool operator!=(const LeaderInfo& a, const LeaderInfo& b) {
    return !(a == b);
  }
};

// The current leader of election `name` under `prefix` (quorum read), or
// nullopt when there is none. Registry errors as the registry reports them.
absl::StatusOr<std::optional<LeaderInfo>> ReadLeader(registry::KeysApi* keys,
                                                     const std::string& prefix,
                                                     const std::string& name);

class Election {
 public:
  Election(Session* session, std::string name);

  // Queues as a candidate holding `value` and waits until leader.
  // OK: leader. Errors as Mutex::Lock (kDeadlineExceeded / kCancelled:
  // the candidacy is withdrawn; kAborted: the candidate key vanished).
  absl::Status Campaign(const std::string& value,
                        absl::Time deadline = absl::InfiniteFuture(),
                        const CancelToken* cancel = nullptr);

  // Replaces the leader's value (compare-and-swap on its key's index).
  // OK: written. kFailedPrecondition: not the leader. kAborted: leadership
  // was lost (revoked() has fired); kUnavailable: not confirmed, and since
  // leadership is then in doubt, revoked() has fired.
  absl::Status Proclaim(const std::string& value);

  // Gives leadership up (deletes the candidate key with a compare-and-
  // delete). OK also when not leader. kUnavailable: the delete did not go
  // through; the key expires at the session TTL.
  absl::Status Resign();

  // The current leader (anyone's), quorum read; nullopt when none.
  absl::StatusOr<std::optional<LeaderInfo>> Leader() const;

  // A stream of this election's leader changes (see LeaderObserver).
  std::unique_ptr<LeaderObserver> Observe() const;

  ElectionStatus Status() const;
  bool IsLeader() const { return hold_.holds(); }
  // Our candidate key and its createdIndex (our fence as leader).
  std::string key() const { return hold_.key(); }
  uint64_t fence() const { return hold_.fence(); }
  // Fires when the current (or last) candidacy or leadership is lost; null
  // before the first Campaign. Not fired by Resign.
  std::shared_ptr<const Signal> revoked() const { return hold_.lost(); }
  // When leadership ends at the latest unless renewed: the local expiry of
  // our candidate key on the session's clock (SessionKey::expiry()), which
  // every renew moves forward. InfinitePast when no key is kept (before the
  // first Campaign, after Resign or revoked()).
  absl::Time expiry() const { return hold_.expiry(); }
  const std::string& name() const { return hold_.name(); }

 private:
  internal::QueueHold hold_;
};

// Follows the leader of one election: each Next() returns the next leader
// state (a different key or value, or "no leader"), in the order they
// happened. It replays the registry's event history, so no change of
// leader is missed while the observer keeps within that history (1000
// events on etcd v2); after a gap (kOutOfRange) or a reconnect it re-reads
// and reports the leader as it is then.
class LeaderObserver {
 public:
  LeaderObserver(registry::KeysApi* keys, const std::string& prefix,
                 const std::string& name);

  // The first call returns the leader as it is now; later calls block
  // until it changes. nullopt: no leader. kDeadlineExceeded past
  // `deadline` (registry clock), kCancelled when `cancel` fires; registry
  // errors otherwise (call again to resume).
  absl::StatusOr<std::optional<LeaderInfo>> Next(
      absl::Time deadline = absl::InfiniteFuture(),
      const CancelToken* cancel = nullptr);

 private:
  struct Candidate {
    uint64_t created_index;
    std::string value;
  };
  void Apply(const registry::Response& event);
  std::optional<LeaderInfo> Current() const;

  registry::KeysApi* const keys_;
  const std::string dir_;
  // The candidates by key; the one of least createdIndex leads.
  std::map<std::string, Candidate> candidates_;
  bool synced_ = false;
  uint64_t next_index_ = 0;
  bool reported_ = false;
  std::optional<LeaderInfo> last_;
};

}  // namespace leasehold::lease

#endif  // LEASEHOLD_LEASE_ELECTION_H_
