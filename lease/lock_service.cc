#include "lease/lock_service.h"

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

LockService::~LockService() { keeper_.Stop(); }

absl::StatusOr<std::unique_ptr<LockSession>> LockService::NewSession(
    LockSessionOptions options) {
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
  return std::unique_ptr<LockSession>(
      new LockSession(std::move(*session), options.timeout));
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
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) {
    return absl::FailedPreconditionError(
        absl::StrCat("lock session ", session_->id(), ": already closed"));
  }
  return std::unique_ptr<Locker>(new Locker(session_.get(), id, timeout_));
}

absl::Status LockSession::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
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
