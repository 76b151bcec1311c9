#include "lease/lock_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "registry/open.h"

namespace leasehold::lease {
namespace {

KeeperOptions ServiceKeeperOptions(const LockServiceOptions& options) {
  KeeperOptions keeper;
  keeper.workers = options.keeper_workers;
  keeper.clock = options.clock;
  return keeper;
}

LockServiceOptions WithClock(LockServiceOptions options) {
  if (options.clock == nullptr) options.clock = RealClock();
  return options;
}

}  // namespace

// ---------------------------------------------------------- LockService

LockService::LockService(registry::KeysApi* keys, LockServiceOptions options)
    : keys_(keys),
      options_(WithClock(std::move(options))),
      keeper_(ServiceKeeperOptions(options_)) {}

LockService::~LockService() {
  bool closed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed = closed_;
  }
  if (!closed) Close().IgnoreError();
  keeper_.Stop();
}

absl::Status LockService::Close() {
  std::vector<std::weak_ptr<Session>> sessions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return AlreadyClosed();
    closed_ = true;
    sessions.swap(sessions_);
  }
  absl::Status result;
  for (const std::weak_ptr<Session>& weak : sessions) {
    std::shared_ptr<Session> session = weak.lock();
    if (session == nullptr) continue;
    const absl::Status closed = session->Close();
    // Closed by its owner already: nothing left to do.
    if (!absl::IsFailedPrecondition(closed)) result.Update(closed);
  }
  return result;
}

absl::Status LockService::AlreadyClosed() const {
  return absl::FailedPreconditionError("lock service: already closed");
}

absl::StatusOr<std::unique_ptr<LockSession>> LockService::NewSession(
    LockSessionOptions options) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return AlreadyClosed();
  }
  if (options.timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("lock session timeout ",
                     absl::FormatDuration(options.timeout), ": negative"));
  }
  SessionOptions session_options;
  session_options.ttl = options.ttl;
  session_options.prefix = options_.prefix;
  session_options.clock = options_.clock;
  session_options.keeper = &keeper_;
  absl::StatusOr<std::unique_ptr<Session>> session =
      Session::Create(keys_, session_options);
  if (!session.ok()) return session.status();
  std::shared_ptr<Session> shared = std::move(*session);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!closed_) {
      // Forget destroyed sessions now and then, so the list stays short.
      if (sessions_.size() >= 64 && sessions_.size() % 64 == 0) {
        sessions_.erase(std::remove_if(sessions_.begin(), sessions_.end(),
                                       [](const std::weak_ptr<Session>& weak) {
                                         return weak.expired();
                                       }),
                        sessions_.end());
      }
      sessions_.push_back(shared);
      return std::unique_ptr<LockSession>(
          new LockSession(std::move(shared), options.timeout));
    }
  }
  // Close ran while the session was being made.
  shared->Close().IgnoreError();
  return AlreadyClosed();
}

absl::StatusOr<std::unique_ptr<LockService>> OpenLockService(
    absl::string_view uri, LockServiceOptions options) {
  options = WithClock(std::move(options));
  absl::StatusOr<std::unique_ptr<registry::KeysApi>> keys =
      registry::Open(uri, options.clock);
  if (!keys.ok()) return keys.status();
  auto service = std::make_unique<LockService>(keys->get(), std::move(options));
  service->owned_keys_ = std::move(*keys);
  return service;
}

// ---------------------------------------------------------- LockSession

absl::StatusOr<std::unique_ptr<Locker>> LockSession::NewLocker(
    const std::string& id) {
  std::shared_ptr<const Signal> done = session_->done();
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Closed by Close or by the service's Close (done's cause kCancelled).
    if (closed_ || (done->fired() && absl::IsCancelled(done->cause()))) {
      return absl::FailedPreconditionError(
          absl::StrCat("lock session ", session_->id(), ": already closed"));
    }
  }
  if (done->fired()) {
    return absl::FailedPreconditionError(
        absl::StrCat("lock session ", session_->id(), ": ended (",
                     done->cause().message(), ")"));
  }
  return std::unique_ptr<Locker>(new Locker(session_.get(), id, timeout_));
}

absl::Status LockSession::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) {
      return absl::FailedPreconditionError(
          absl::StrCat("lock session ", session_->id(), ": already closed"));
    }
    closed_ = true;
  }
  return session_->Close();
}

// --------------------------------------------------------------- Locker

absl::StatusOr<std::shared_ptr<const Signal>> Locker::Lock(
    const CancelToken* cancel) {
  const absl::Time deadline = timeout_ == absl::InfiniteDuration()
                                  ? absl::InfiniteFuture()
                                  : session_->clock()->Now() + timeout_;
  absl::Status status = mutex_.Lock(deadline, cancel);
  if (!status.ok()) return status;
  return mutex_.lost();
}

absl::Status Locker::Unlock() { return mutex_.Unlock(); }

}  // namespace leasehold::lease
