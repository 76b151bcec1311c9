#include "lease/semaphore.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace leasehold::lease {
namespace {

constexpr absl::string_view kSlotsTag = "slots=";

// The N a queue key records ("slots=N ..."); nullopt when it records none.
std::optional<size_t> RecordedSlots(const registry::Node& node) {
  absl::string_view value = node.value;
  if (!absl::ConsumePrefix(&value, kSlotsTag)) return std::nullopt;
  size_t slots = 0;
  if (!absl::SimpleAtoi(value.substr(0, value.find(' ')), &slots)) {
    return std::nullopt;
  }
  return slots;
}

// The first `slots` keys hold, once the oldest key ahead that records an N
// agrees on it.
internal::TurnRule SlotsAgreed(size_t slots) {
  internal::TurnRule first = internal::FirstSlots(slots);
  return [slots, first](const std::vector<registry::Node>& keys,
                        size_t position)
             -> absl::StatusOr<std::optional<internal::Blockers>> {
    for (size_t i = 0; i < position; ++i) {
      std::optional<size_t> recorded = RecordedSlots(keys[i]);
      if (!recorded.has_value()) continue;
      if (*recorded != slots) {
        return absl::FailedPreconditionError(absl::StrCat(
            "this contender asks for ", slots, " slots, but the semaphore has ",
            *recorded, " (set by its oldest contender, ", keys[i].key, ")"));
      }
      break;
    }
    return first(keys, position);
  };
}

}  // namespace

Semaphore::Semaphore(Session* session, std::string name, size_t slots)
    : slots_(slots),
      hold_(session, "semaphore", std::move(name), SlotsAgreed(slots),
            absl::StrCat(kSlotsTag, slots, " ")) {}

absl::Status Semaphore::Acquire(absl::Time deadline,
                                const CancelToken* cancel) {
  return hold_.Acquire(std::nullopt, deadline, cancel);
}

absl::StatusOr<bool> Semaphore::TryAcquire() {
  return hold_.TryAcquire(std::nullopt);
}

absl::Status Semaphore::Release() { return hold_.Release(); }

}  // namespace leasehold::lease
