#include "registry/etcd/endpoint_list.h"

#include <algorithm>

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

}  // namespace leasehold::registry::etcd_internal
