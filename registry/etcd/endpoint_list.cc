#include "registry/etcd/endpoint_list.h"

#include <algorithm>
#include <condition_variable>

#include "registry/etcd/etcd_client.h"

namespace leasehold::registry::etcd_internal {

std::pair<std::vector<std::string>, size_t> EndpointList::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {endpoints_, preferred_};
}

void EndpointList::StickTo(const std::string& endpoint) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = std::find(endpoints_.begin(), endpoints_.end(), endpoint);
  if (it != endpoints_.end()) preferred_ = it - endpoints_.begin();
}

void EndpointList::MoveOff(const std::string& endpoint) {
  std::lock_guard<std::mutex> lock(mu_);
  // Only the first of several concurrent failures on the preferred
  // endpoint moves the preference; the others find it already moved.
  if (endpoints_[preferred_] == endpoint) {
    preferred_ = (preferred_ + 1) % endpoints_.size();
  }
}

void EndpointList::Replace(std::vector<std::string> endpoints) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string current = endpoints_[preferred_];
  endpoints_ = std::move(endpoints);
  auto it = std::find(endpoints_.begin(), endpoints_.end(), current);
  preferred_ = it != endpoints_.end() ? it - endpoints_.begin() : 0;
}

MemberSync::MemberSync(EndpointList& list, Clock& clock,
                       absl::Duration interval, ClearTextWarning& clear_text,
                       AskMembers ask)
    : list_(list),
      clock_(clock),
      interval_(interval),
      clear_text_(clear_text),
      ask_(std::move(ask)),
      thread_([this] { Loop(); }) {}

MemberSync::~MemberSync() {
  stop_.Cancel();
  thread_.join();
}

void MemberSync::Loop() {
  while (!stop_.cancelled()) {
    SleepUnlessCancelled(clock_, clock_.Now() + interval_, &stop_);
    if (!stop_.cancelled()) SyncOnce();
  }
}

void MemberSync::SyncOnce() {
  const auto [endpoints, start] = list_.Snapshot();
  for (size_t i = 0; i < endpoints.size() && !stop_.cancelled(); ++i) {
    absl::StatusOr<std::vector<std::string>> urls =
        ask_(endpoints[(start + i) % endpoints.size()], stop_);
    if (!urls.ok() || urls->empty()) continue;
    clear_text_.Check(*urls);
    list_.Replace(*std::move(urls));
    return;
  }
}

}  // namespace leasehold::registry::etcd_internal
