#include "registry/etcd_v3/auth_token.h"

#include <utility>

namespace leasehold::registry::etcd_v3_internal {

AuthToken::AuthToken(Clock& clock, Fetch fetch)
    : clock_(clock), fetch_(std::move(fetch)) {}

absl::StatusOr<std::string> AuthToken::Get(absl::Time deadline) {
  return Obtain(std::nullopt, deadline);
}

absl::StatusOr<std::string> AuthToken::Renew(const std::string& rejected,
                                             absl::Time deadline) {
  return Obtain(rejected, deadline);
}

std::optional<std::string> AuthToken::Current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return token_;
}

int64_t AuthToken::fetches() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fetches_;
}

absl::StatusOr<std::string> AuthToken::Obtain(
    const std::optional<std::string>& stale, absl::Time deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    if (fetching_) {
      // Another thread is fetching (the current token is likely rejected
      // too): its outcome is this thread's.
      const uint64_t round = round_;
      while (fetching_ && round_ == round) {
        if (!clock_.WaitUntil(fetched_, lock, deadline) && fetching_ &&
            round_ == round) {
          return absl::DeadlineExceededError(
              "etcd v3 authentication: the deadline passed while another "
              "request was authenticating");
        }
      }
      if (!last_failure_.ok()) return last_failure_;
      continue;
    }
    if (token_.has_value() && (!stale.has_value() || *token_ != *stale)) {
      return *token_;
    }
    break;
  }
  fetching_ = true;
  lock.unlock();
  absl::StatusOr<std::string> fetched = fetch_(deadline);
  lock.lock();
  fetching_ = false;
  ++round_;
  if (fetched.ok()) {
    token_ = *fetched;
    last_failure_ = absl::OkStatus();
    ++fetches_;
  } else {
    last_failure_ = fetched.status();
  }
  fetched_.notify_all();
  return fetched;
}

}  // namespace leasehold::registry::etcd_v3_internal
