#include "lease/rw_mutex.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace leasehold::lease {
namespace {

constexpr char kReaderTag[] = "read ";
constexpr char kWriterTag[] = "write ";

// A reader holds when no writer is ahead of it, and waits for the nearest
// one. Any key that is not a reader's counts as a writer's: exclusive
// unless shown otherwise.
absl::StatusOr<std::optional<internal::Blockers>> ReaderTurn(
    const std::vector<registry::Node>& keys, size_t position) {
  for (size_t i = position; i-- > 0;) {
    if (!absl::StartsWith(keys[i].value, kReaderTag)) {
      return internal::Blockers{i, i};
    }
  }
  return std::nullopt;
}

}  // namespace

RWMutex::RWMutex(Session* session, std::string name)
    : writer_(session, "lock", name, internal::FirstSlots(1), kWriterTag),
      reader_(session, "lock", std::move(name), ReaderTurn, kReaderTag) {}

absl::Status RWMutex::Use(internal::QueueHold& hold,
                          const internal::QueueHold& other) {
  if (!other.key().empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("lock \"", name(), "\": already ",
                     &other == &reader_ ? "read" : "written",
                     " (or waited for) through this object"));
  }
  reading_.store(&hold == &reader_);
  return absl::OkStatus();
}

absl::Status RWMutex::Lock(absl::Time deadline, const CancelToken* cancel) {
  if (absl::Status s = Use(writer_, reader_); !s.ok()) return s;
  return writer_.Acquire(std::nullopt, deadline, cancel);
}

absl::StatusOr<bool> RWMutex::TryLock() {
  if (absl::Status s = Use(writer_, reader_); !s.ok()) return s;
  return writer_.TryAcquire(std::nullopt);
}

absl::Status RWMutex::Unlock() { return writer_.Release(); }

absl::Status RWMutex::RLock(absl::Time deadline, const CancelToken* cancel) {
  if (absl::Status s = Use(reader_, writer_); !s.ok()) return s;
  return reader_.Acquire(std::nullopt, deadline, cancel);
}

absl::StatusOr<bool> RWMutex::TryRLock() {
  if (absl::Status s = Use(reader_, writer_); !s.ok()) return s;
  return reader_.TryAcquire(std::nullopt);
}

absl::Status RWMutex::RUnlock() { return reader_.Release(); }

void RWMutex::lock() { internal::ThrowIfError(Lock()); }

bool RWMutex::try_lock() { return internal::ValueOrThrow(TryLock()); }

void RWMutex::unlock() noexcept { Unlock().IgnoreError(); }

void RWMutex::lock_shared() { internal::ThrowIfError(RLock()); }

bool RWMutex::try_lock_shared() { return internal::ValueOrThrow(TryRLock()); }

void RWMutex::unlock_shared() noexcept { RUnlock().IgnoreError(); }

}  // namespace leasehold::lease
