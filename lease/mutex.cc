#include "lease/mutex.h"

#include <system_error>
#include <utility>

namespace leasehold::lease {
namespace {

[[noreturn]] void Throw(const absl::Status& status) {
  throw std::system_error(
      std::make_error_code(std::errc::resource_unavailable_try_again),
      status.ToString());
}

}  // namespace

Mutex::Mutex(Session* session, std::string name)
    : hold_(session, "lock", std::move(name), /*slots=*/1) {}

absl::Status Mutex::Lock(absl::Time deadline, const CancelToken* cancel) {
  return hold_.Acquire(std::nullopt, deadline, cancel);
}

absl::StatusOr<bool> Mutex::TryLock() { return hold_.TryAcquire(std::nullopt); }

absl::Status Mutex::Unlock() { return hold_.Release(); }

void Mutex::lock() {
  absl::Status status = Lock();
  if (!status.ok()) Throw(status);
}

bool Mutex::try_lock() {
  absl::StatusOr<bool> acquired = TryLock();
  if (!acquired.ok()) Throw(acquired.status());
  return *acquired;
}

void Mutex::unlock() noexcept { hold_.Release().IgnoreError(); }

bool Mutex::TryLockFor(absl::Duration timeout) {
  absl::Status status = Lock(hold_.session()->clock()->Now() + timeout);
  if (absl::IsDeadlineExceeded(status)) return false;
  if (!status.ok()) Throw(status);
  return true;
}

}  // namespace leasehold::lease
