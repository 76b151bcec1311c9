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
//
// A service runs one Keeper (a small pool of renew threads) for all of its
// sessions. On `mem:` the semantics are the same as on etcd, TTLs and loss
// included (the registry lives as long as the service).
//
// Thread-safety: all methods are safe from any thread. REQUIRES: the
// service outlives its sessions, and a session its lockers.
#ifndef LEASEHOLD_LEASE_LOCK_SERVICE_H_
#define LEASEHOLD_LEASE_LOCK_SERVICE_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

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
  // "already closed" after Close.
  absl::StatusOr<std::unique_ptr<Locker>> NewLocker(const std::string& id);

  // Deletes every key of the session; fires the lost signal of every lock
  // still held. kFailedPrecondition "already closed" the second time;
  // kUnavailable when a delete did not go through (the key expires).
  absl::Status Close();

  Session& session() { return *session_; }

 private:
  friend class LockService;
  LockSession(std::unique_ptr<Session> session, absl::Duration timeout)
      : session_(std::move(session)), timeout_(timeout) {}

  const std::unique_ptr<Session> session_;
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
  // Stops the Keeper: sessions still open are lost.
  ~LockService();

  LockService(const LockService&) = delete;
  LockService& operator=(const LockService&) = delete;

  // A new session (its key is created now). kInvalidArgument for a bad TTL
  // or timeout; registry errors otherwise.
  absl::StatusOr<std::unique_ptr<LockSession>> NewSession(
      LockSessionOptions options = {});

 private:
  friend absl::StatusOr<std::unique_ptr<LockService>> OpenLockService(
      absl::string_view uri, LockServiceOptions options);

  std::unique_ptr<registry::KeysApi> owned_keys_;
  registry::KeysApi* const keys_;
  const LockServiceOptions options_;
  Keeper keeper_;
};

// A lock service on the registry `uri` names ("mem:", "etcd://host:port",
// see registry/open.h). kInvalidArgument for a bad URI.
absl::StatusOr<std::unique_ptr<LockService>> OpenLockService(
    absl::string_view uri, LockServiceOptions options = {});

}  // namespace leasehold::lease

#endif  // LEASEHOLD_LEASE_LOCK_SERVICE_H_
