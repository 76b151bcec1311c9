// Session: a group of TTL keys kept alive together, the owner of every lock,
// semaphore slot and candidacy made through it.
//
// A Session creates its own key `<prefix>session/<index>` and every queue
// key of its Mutexes, Semaphores and Elections with the session's TTL, and
// hands them all to a Keeper (lease/keeper.h), which renews them with a
// compare-and-swap on their index. There is no second renew loop.
//
//   auto session = Session::Create(keys.get(), {.ttl = absl::Seconds(10)});
//   if (!session.ok()) return session.status();
//   Mutex mutex(session->get(), "scheduler");
//   ...
//   (*session)->done()->Wait();   // expired, lost or closed
//   (*session)->Close();          // deletes every key it still has
//
// done() fires when the session's own key can no longer be kept (its TTL
// passed while the registry was unreachable, its renewal found it changed
// or deleted), on Close() and on Orphan(). Then every key the session still
// holds is given up and the lost() signal of each Mutex, Semaphore and
// Election on it fires: as with an etcd v3 lease, the keys of a session end
// together.
//
// Thread-safety: all methods are safe from any thread. REQUIRES: the
// Session outlives every Mutex, Semaphore and Election made on it.
#ifndef LEASEHOLD_LEASE_SESSION_H_
#define LEASEHOLD_LEASE_SESSION_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lease/keeper.h"
#include "lease/signal.h"
#include "registry/clock.h"
#include "registry/keys_api.h"

namespace leasehold::lease {

struct SessionOptions {
  // TTL of every key of the session, rounded UP to whole seconds (at least
  // 1 s). The Keeper renews each key when a third of it has passed.
  absl::Duration ttl = absl::Seconds(60);
  // Keys live under `<prefix>session/`, `<prefix>lock/<name>/` (Mutex and
  // RWMutex), `<prefix>semaphore/<name>/`, `<prefix>election/<name>/` and
  // `<prefix>double-barrier/<name>/`. Default "/leasehold/"; a missing
  // leading or trailing '/' is added.
  std::string prefix = "/leasehold/";
  // Every expiry decision and wait reads this clock: pass the registry's.
  // Default: RealClock().
  Clock* clock = nullptr;
  // The Keeper that keeps the session's keys; share one among many sessions
  // (it must use the same clock and outlive the session). Default: the
  // session runs its own Keeper with two workers.
  Keeper* keeper = nullptr;
  // Every key counts as lost this long before its computed expiry (see
  // SafetyMargin in lease/lease_manager.h). Default: 2 % of the TTL + 10 ms.
  SafetyMargin safety_margin = {};
};

class Session;

// One key of a session: a queue key of a Mutex, Semaphore or Election.
// Made by Session::CreateKey; used by those classes, rarely directly.
class SessionKey : public std::enable_shared_from_this<SessionKey> {
 public:
  struct State;  // the session's shared state
  SessionKey(std::shared_ptr<State> session, registry::Node node);
  // Stops keeping the key and deletes it, unless released, dropped or lost.
  ~SessionKey();
  SessionKey(const SessionKey&) = delete;
  SessionKey& operator=(const SessionKey&) = delete;

  const std::string& key() const { return key_; }
  uint64_t created_index() const { return created_index_; }

  // Fires when the key stops being ours without Release: it could not be
  // renewed, was deleted, or its session ended.
  std::shared_ptr<const Signal> lost() const { return lost_; }

  // The key's local expiry on the session's clock: the time by which the
  // registry may have deleted it. Moves forward with every renew;
  // InfinitePast once the key is not kept (released, lost, dropped) or the
  // registry showed it changed or deleted.
  absl::Time expiry() const ABSL_LOCKS_EXCLUDED(mu_);

  // Stops keeping the key and deletes it with a compare-and-delete on its
  // index, so it never deletes another's key. OK: it is gone (also when it
  // had expired already). kUnavailable: the delete did not go through; the
  // key expires at its TTL. Idempotent.
  absl::Status Release();

  // Replaces the value with a compare-and-swap on the key's index (which
  // also renews its TTL). The key stays kept throughout: its expiry is
  // watched while the write is in flight, and lost() fires on time even if
  // the write hangs. OK: written. kAborted: the key is gone or not ours
  // (lost() has fired); kFailedPrecondition: it was released;
  // kUnavailable / kDeadlineExceeded: the outcome could not be confirmed,
  // and since ownership is then in doubt, lost() has fired and the key is
  // deleted if it is still ours.
  absl::Status SetValue(const std::string& value);

  // The key stops being ours: lost() fires with `cause` (what the session
  // does when it ends). Deletes the key with `release`; the delete's status
  // (OK when the key was gone already).
  absl::Status Drop(bool release, const absl::Status& cause)
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // Ends the key: stops keeping it (deleting it with `release`) and fires
  // lost() with `lost_cause` when given. OK when it had already ended.
  absl::Status End(bool release, const std::optional<absl::Status>& lost_cause)
      ABSL_LOCKS_EXCLUDED(mu_);
  friend class Session;
  // Hands `lease` to the Keeper, which fires lost() when it is lost.
  void Keep(std::unique_ptr<Lease> lease) ABSL_LOCKS_EXCLUDED(mu_);

  // The Keeper lost (or would not keep) the lease: the key has ended.
  void OnKeeperLost() ABSL_LOCKS_EXCLUDED(mu_);

  const std::shared_ptr<State> session_;
  const std::string key_;
  const uint64_t created_index_;
  const std::shared_ptr<Signal> lost_;
  // Fires lost_ when the session ends.
  const CancelToken::Registration on_session_done_;

  mutable std::mutex mu_;
  std::shared_ptr<KeptLease> kept_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;  // released, dropped or lost
};

class Session {
 public:
  // Creates the session key and starts keeping it. kInvalidArgument for a
  // bad TTL; registry errors (kUnavailable, ...) otherwise.
  static absl::StatusOr<std::unique_ptr<Session>> Create(
      registry::KeysApi* keys, SessionOptions options = {});

  // Close() unless closed or orphaned (errors ignored); then stops its own
  // Keeper, if any.
  ~Session();

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // The session key, e.g. "/leasehold/session/00000000000000000042".
  const std::string& id() const;
  absl::Duration ttl() const;
  const std::string& prefix() const;
  registry::KeysApi* keys() const;
  Clock* clock() const;

  // Fires once the session has ended (see the file comment). Its cause:
  // kAborted when the session key was lost, kCancelled on Close/Orphan.
  std::shared_ptr<const Signal> done() const;

  // Deletes every key of the session (compare-and-delete on each index),
  // then the session key; fires done(). OK also when keys had already
  // expired. kFailedPrecondition "already closed" after Close or Orphan;
  // kUnavailable when a delete did not go through (that key expires at its
  // TTL).
  absl::Status Close();

  // Stops renewing the session's keys and leaves them to expire at their
  // TTL (a process handing its locks over to its own exit); fires done().
  // kFailedPrecondition "already closed" after Close or Orphan.
  absl::Status Orphan();

  // Creates an in-order key under `dir` holding `value`, with the session's
  // TTL, and keeps it alive with the session. With `unique_value` (the value
  // names only this key) a create whose response was lost is resolved by
  // looking for the value. kFailedPrecondition "already closed" after Close
  // or Orphan and when the session has ended; registry errors otherwise.
  absl::StatusOr<std::shared_ptr<SessionKey>> CreateKey(
      const std::string& dir, const std::string& value, bool unique_value);

  // A value unique to one key of this session: "<id>#<n>".
  std::string UniqueValue();

 private:
  Session(std::shared_ptr<SessionKey::State> state,
          std::unique_ptr<Keeper> own_keeper);
  absl::Status End(bool release);

  std::shared_ptr<SessionKey::State> state_;
  std::unique_ptr<Keeper> own_keeper_;
};

}  // namespace leasehold::lease

#endif  // LEASEHOLD_LEASE_SESSION_H_
