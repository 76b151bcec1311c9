#include "registry/cancel.h"

#include <condition_variable>
#include <utility>

namespace leasehold {

void CancelToken::Cancel() {
  if (cancelled_.exchange(true, std::memory_order_acq_rel)) return;
  std::unique_lock<std::mutex> lock(mu_);
  while (!callbacks_.empty()) {
    auto it = callbacks_.begin();
    running_ = it->first;
    std::function<void()> fn = std::move(it->second);
    callbacks_.erase(it);
    lock.unlock();
    fn();
    lock.lock();
    running_ = 0;
    done_cv_.notify_all();
  }
}

CancelToken::Registration CancelToken::OnCancel(
    std::function<void()> fn) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!cancelled()) {
      const uint64_t id = next_id_++;
      callbacks_.emplace(id, std::move(fn));
      return Registration(this, id);
    }
  }
  fn();
  return Registration();
}

void CancelToken::Unregister(uint64_t id) const {
  std::unique_lock<std::mutex> lock(mu_);
  callbacks_.erase(id);
  done_cv_.wait(lock, [&] { return running_ != id; });
}

CancelToken::Registration::Registration(Registration&& other) noexcept
    : token_(std::exchange(other.token_, nullptr)), id_(other.id_) {}

CancelToken::Registration& CancelToken::Registration::operator=(
    Registration&& other) noexcept {
  if (this != &other) {
    Reset();
    token_ = std::exchange(other.token_, nullptr);
    id_ = other.id_;
  }
  return *this;
}

void CancelToken::Registration::Reset() {
  if (token_ != nullptr) std::exchange(token_, nullptr)->Unregister(id_);
}

}  // namespace leasehold
