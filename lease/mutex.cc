#include "lease/mutex.h"

#include <utility>

namespace leasehold::lease {

Mutex::Mutex(Session* session, std::string name)
    : hold_(session, "lock", std::move(name), internal::FirstSlots(1)) {}

absl::Status Mutex::Lock(absl::Time deadline, const CancelToken* cancel) {
  return hold_.Acquire(std::nullopt, deadline, cancel);
}

absl::StatusOr<bool> Mutex::TryLock() { return hold_.TryAcquire(std::nullopt); }

absl::Status Mutex::Unlock() { return hold_.Release(); }

void Mutex::lock() { internal::ThrowIfError(Lock()); }

bool Mutex::try_lock() { return internal::ValueOrThrow(TryLock()); }

void Mutex::unlock() noexcept { Unlock().IgnoreError(); }

bool Mutex::TryLockFor(absl::Duration timeout) {
  return internal::AcquiredOrThrow(
      Lock(hold_.session()->clock()->Now() + timeout));
}

}  // namespace leasehold::lease
