// LockService: go-lock style locks by URI — sessions with a TTL and a
// timeout, lockers whose Lock returns a "lost" signal.
//
//   auto service = OpenLockService("etcd://127.0.0.1:2379");  // or "mem:"
//   if (!service.ok()) return service.status();
//   auto session = (*service)->NewSession(
//       {.ttl = absl::Seconds(10), .timeout = absl::Seconds(30)});
//   auto locker = (*session)->NewLocker("deploy");
//   absl::StatusOr<std::shared_ptr<const Signal>> lost = (*locker)->Lock();
//   if (!lost.ok()) return lost.status();  // kDeadlineExceeded after 30 s
//   while (!(*lost)->fired()) DoWork();     // or (*lost)->Wait(...)
//   (*locker)->Unlock();
//   (*session)->Close();                    // twice: kFailedPrecondition
//   (*service)->Close();                    // closes the sessions still open
//
// A service runs one Keeper (a small pool of renew threads) for all of its
// sessions. On `mem:` the semantics are the same as on etcd, TTLs and loss
// included (the registry lives as long as the service).
//
// Thread-safety: all methods are safe from any thread, Close included:
// calls in flight when a session or the service closes return (a waiting
// Lock with kAborted, its key gone), and every later call is
// kFailedPrecondition "already closed". REQUIRES: the service outlives its
// sessions, and a session its lockers.
#ifndef LEASEHOLD_LEASE_LOCK_SERVICE_H_
#define LEASEHOLD_LEASE_LOCK_SERVICE_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "lease/keeper.h"
#include "lease/mutex.h"
#include "lease/session.h"
#include "lease/signal.h"
#include "registry/cancel.h"
#include "registry/clock.h"
#include "registry/keys_api.h"

namespace leasehold::lease {

struct LockServiceOptions {
  // Key prefix (see SessionOptions::prefix). Default "/leasehold/".
  std::string prefix = "/leasehold/";
  // Default: RealClock(). Also the registry's clock for "mem:".
  Clock* clock = nullptr;
  // Renew threads shared by all sessions of the service.
  int keeper_workers = 4;
};

struct LockSessionOptions {
  // TTL of the session's keys (whole seconds, at least 1 s).
  absl::Duration ttl = absl::Seconds(60);
  // How long Locker::Lock waits before kDeadlineExceeded.
  absl::Duration timeout = absl::InfiniteDuration();
};

class Locker;

class LockSession {
 public:
  // A locker for lock `id` (validated on Lock). kFailedPrecondition
  // "already closed" after Close (the session's or the service's), and
  // "ended" once the session has expired.
  absl::StatusOr<std::unique_ptr<Locker>> NewLocker(const std::string& id);

  // Deletes every key of the session; fires the lost signal of every lock
  // still held, and done(). kFailedPrecondition "already closed" the second
  // time or after the service's Close; kUnavailable when a delete did not
  // go through (the key expires).
  absl::Status Close();

  // Fires when the session ends: closed (by Close or the service's Close;
  // cause kCancelled) or expired (kAborted). Every lock of the session is
  // lost by then.
  std::shared_ptr<const Signal> done() const { return session_->done(); }

  Session& session() { return *session_; }

 private:
  friend class LockService;
  LockSession(std::shared_ptr<Session> session, absl::Duration timeout)
      : session_(std::move(session)), timeout_(timeout) {}

  // Shared with the service, which may close it at any time.
  const std::shared_ptr<Session> session_;
  const absl::Duration timeout_;
  std::mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

class Locker {
 public:
  // Waits for the lock, up to the session's timeout. OK: held; the signal
  // fires if the lock is lost (session expired, key deleted, session
  // closed). kDeadlineExceeded: the timeout passed; kCancelled: `cancel`
  // fired; kFailedPrecondition: already held by this locker, or the
  // session is closed ("already closed") or ended. Otherwise as
  // Mutex::Lock.
  absl::StatusOr<std::shared_ptr<const Signal>> Lock(
      const CancelToken* cancel = nullptr);

  // As Mutex::Unlock.
  absl::Status Unlock();

  uint64_t fence() const { return mutex_.fence(); }
  bool IsOwner() const { return mutex_.IsOwner(); }

 private:
  friend class LockSession;
  Locker(Session* session, const std::string& id, absl::Duration timeout)
      : mutex_(session, id), session_(session), timeout_(timeout) {}

  Mutex mutex_;
  Session* const session_;
  const absl::Duration timeout_;
};

class LockService {
 public:
  // Over a registry the caller owns (it must outlive the service).
  LockService(registry::KeysApi* keys, LockServiceOptions options = {});
  // Close() unless closed (errors ignored), then stops the Keeper.
  ~LockService();

  LockService(const LockService&) = delete;
  LockService& operator=(const LockService&) = delete;

  // A new session (its key is created now). kInvalidArgument for a bad TTL
  // or timeout; kFailedPrecondition "already closed" after Close; registry
  // errors otherwise.
  absl::StatusOr<std::unique_ptr<LockSession>> NewSession(
      LockSessionOptions options = {});

  // Closes every session still open (as LockSession::Close: their keys are
  // deleted, their locks' lost signals and done() fire). A session that
  // NewSession is creating meanwhile is closed as it is made. OK: all
  // closed. kFailedPrecondition "already closed" the second time;
  // kUnavailable when a delete did not go through (that key expires at its
  // TTL); every session is closed either way.
  absl::Status Close();

 private:
  friend absl::StatusOr<std::unique_ptr<LockService>> OpenLockService(
      absl::string_view uri, LockServiceOptions options);
  absl::Status AlreadyClosed() const;

  std::unique_ptr<registry::KeysApi> owned_keys_;
  registry::KeysApi* const keys_;
  const LockServiceOptions options_;
  Keeper keeper_;

  std::mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  // The sessions made, to close them; a closed or destroyed one is skipped.
  std::vector<std::weak_ptr<Session>> sessions_ ABSL_GUARDED_BY(mu_);
};

// A lock service on the registry `uri` names ("mem:", "etcd://host:port",
// see registry/open.h). kInvalidArgument for a bad URI.
absl::StatusOr<std::unique_ptr<LockService>> OpenLockService(
    absl::string_view uri, LockServiceOptions options = {});

}  // namespace leasehold::lease

#endif  // LEASEHOLD_LEASE_LOCK_SERVICE_H_
