#include "lease/semaphore.h"

#include <utility>

namespace leasehold::lease {

Semaphore::Semaphore(Session* session, std::string name, size_t slots)
    : hold_(session, "semaphore", std::move(name), slots) {}

absl::Status Semaphore::Acquire(absl::Time deadline,
                                const CancelToken* cancel) {
  return hold_.Acquire(std::nullopt, deadline, cancel);
}

absl::StatusOr<bool> Semaphore::TryAcquire() {
  return hold_.TryAcquire(std::nullopt);
}

absl::Status Semaphore::Release() { return hold_.Release(); }

}  // namespace leasehold::lease
