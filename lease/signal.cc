#include "lease/signal.h"

#include <utility>

namespace leasehold::lease {

bool Signal::fired() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fired_;
}

absl::Status Signal::cause() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cause_;
}

bool Signal::Wait(absl::Time deadline, const CancelToken* cancel) const {
  WaitUntilDone(*clock_, mu_, cv_, deadline, cancel,
                [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return fired_; });
  return fired();
}

bool Signal::Fire(absl::Status cause) {
  if (cause.ok()) cause = absl::UnknownError("signal fired without a cause");
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (fired_) return false;
    fired_ = true;
    cause_ = std::move(cause);
  }
  cv_.notify_all();
  token_.Cancel();
  return true;
}

}  // namespace leasehold::lease
