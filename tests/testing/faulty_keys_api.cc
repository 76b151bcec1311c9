#include "tests/testing/faulty_keys_api.h"

#include <algorithm>
#include <utility>

#include "registry/errors.h"

namespace leasehold::testing {

void FaultyKeysApi::AddRule(Rule rule) {
  std::lock_guard<std::mutex> lock(mu_);
  rules_.push_back(std::move(rule));
}

void FaultyKeysApi::PassNext(unsigned ops, int count) {
  AddRule({ops, Fault::kNone, count, absl::OkStatus()});
}

void FaultyKeysApi::FailNext(unsigned ops, int count, absl::Status error) {
  AddRule({ops, Fault::kFail, count, std::move(error)});
}

void FaultyKeysApi::LoseResponseNext(unsigned ops, int count) {
  AddRule({ops, Fault::kLoseResponse, count, absl::OkStatus()});
}

void FaultyKeysApi::DropRequestNext(unsigned ops, int count) {
  AddRule({ops, Fault::kDropRequest, count, absl::OkStatus()});
}

void FaultyKeysApi::StallNext(unsigned ops, int count) {
  AddRule({ops, Fault::kStall, count, absl::OkStatus()});
}

void FaultyKeysApi::HangNext(unsigned ops, int count) {
  AddRule({ops, Fault::kHang, count, absl::OkStatus()});
}

void FaultyKeysApi::HoldRequestNext(unsigned ops, int count) {
  AddRule({ops, Fault::kHoldRequest, count, absl::OkStatus()});
}

int FaultyKeysApi::LandHeld() {
  std::vector<Forward> held;
  {
    std::lock_guard<std::mutex> lock(mu_);
    held.swap(held_);
  }
  for (Forward& forward : held) forward().IgnoreError();
  return static_cast<int>(held.size());
}

void FaultyKeysApi::SetDelay(unsigned ops, absl::Duration delay) {
  std::lock_guard<std::mutex> lock(mu_);
  for (Op op : {kGet, kSet, kCreateInOrder, kDelete, kWatch}) {
    if (ops & op) delays_[op] = delay;
  }
}

void FaultyKeysApi::Block(unsigned ops) {
  std::lock_guard<std::mutex> lock(mu_);
  blocked_ops_ |= ops;
}

void FaultyKeysApi::Unblock() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    blocked_ops_ = 0;
    ++unblocks_;
  }
  unblocked_cv_.notify_all();
}

void FaultyKeysApi::Reset() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    rules_.clear();
    delays_.clear();
  }
  Unblock();
}

int FaultyKeysApi::calls(unsigned ops) const {
  std::lock_guard<std::mutex> lock(mu_);
  int n = 0;
  for (const auto& [op, count] : calls_) {
    if (ops & op) n += count;
  }
  return n;
}

int FaultyKeysApi::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_;
}

int FaultyKeysApi::max_in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return max_in_flight_;
}

int FaultyKeysApi::blocked() const {
  std::lock_guard<std::mutex> lock(mu_);
  return blocked_;
}

absl::StatusOr<registry::Response> FaultyKeysApi::Run(Op op,
                                                      absl::Time deadline,
                                                      Forward forward) {
  Rule applied{op, Fault::kNone, 0, absl::OkStatus()};
  absl::Time wake = absl::InfinitePast();
  {
    std::unique_lock<std::mutex> lock(mu_);
    ++calls_[op];
    max_in_flight_ = std::max(max_in_flight_, ++in_flight_);
    for (auto it = rules_.begin(); it != rules_.end(); ++it) {
      if ((it->ops & op) == 0 || it->remaining == 0) continue;
      applied = *it;
      if (it->remaining > 0 && --it->remaining == 0) rules_.erase(it);
      break;
    }
    ++blocked_;
    unblocked_cv_.wait(lock, [&] { return (blocked_ops_ & op) == 0; });
    --blocked_;
    if (applied.fault == Fault::kStall || applied.fault == Fault::kHang) {
      // Unblock() ends a stall early: blocked_ counts it meanwhile.
      const absl::Time until =
          applied.fault == Fault::kStall ? deadline : absl::InfiniteFuture();
      const uint64_t unblocks = unblocks_;
      ++blocked_;
      while (unblocks == unblocks_ &&
             clock_->WaitUntil(unblocked_cv_, lock, until)) {
      }
      --blocked_;
    }
    if (applied.fault == Fault::kHoldRequest) held_.push_back(forward);
    // The wake-up time is fixed under the lock that made this call visible
    // as in flight, so a test that advances the clock once it sees the call
    // never advances it too early.
    if (const absl::Duration delay = delays_[op];
        delay > absl::ZeroDuration()) {
      wake = clock_->Now() + delay;
    }
  }
  if (wake != absl::InfinitePast()) clock_->SleepUntil(wake);
  absl::StatusOr<registry::Response> result;
  switch (applied.fault) {
    case Fault::kNone:
      result = forward();
      break;
    case Fault::kFail:
      result = applied.error;
      break;
    case Fault::kLoseResponse:
      forward().IgnoreError();
      result = registry::OutcomeUnknownError("injected: response lost");
      break;
    case Fault::kDropRequest:
      result = registry::OutcomeUnknownError("injected: request lost");
      break;
    case Fault::kStall:
    case Fault::kHang:
      result = op == kGet ? absl::DeadlineExceededError("injected: stalled")
                          : registry::OutcomeUnknownError("injected: stalled");
      break;
    case Fault::kHoldRequest:
      result = registry::OutcomeUnknownError("injected: request held");
      break;
  }
  std::lock_guard<std::mutex> lock(mu_);
  --in_flight_;
  return result;
}

absl::StatusOr<registry::Response> FaultyKeysApi::Get(
    const std::string& key, const registry::GetOptions& options) {
  return Run(kGet, options.deadline, [=] { return base_->Get(key, options); });
}

absl::StatusOr<registry::Response> FaultyKeysApi::Set(
    const std::string& key, const std::string& value,
    const registry::SetOptions& options) {
  return Run(kSet, options.deadline,
             [=] { return base_->Set(key, value, options); });
}

absl::StatusOr<registry::Response> FaultyKeysApi::CreateInOrder(
    const std::string& dir, const std::string& value,
    const registry::CreateInOrderOptions& options) {
  return Run(kCreateInOrder, absl::InfiniteFuture(),
             [=] { return base_->CreateInOrder(dir, value, options); });
}

absl::StatusOr<registry::Response> FaultyKeysApi::Delete(
    const std::string& key, const registry::DeleteOptions& options) {
  return Run(kDelete, options.deadline,
             [=] { return base_->Delete(key, options); });
}

absl::StatusOr<registry::Response> FaultyKeysApi::Watch(
    const std::string& key, const registry::WatchOptions& options) {
  return Run(kWatch, options.deadline,
             [=] { return base_->Watch(key, options); });
}

}  // namespace leasehold::testing
