// EndpointList: the endpoints an etcd client (v2 or v3) talks to and the
// one it prefers. Requests go to the preferred endpoint first, stick to the
// one that answered and move on past one that failed.
//
//   EndpointList list(options.endpoints);
//   const auto [endpoints, start] = list.Snapshot();
//   ... try endpoints[(start + i) % endpoints.size()] ...
//   list.StickTo(endpoint);  // it answered
//   list.MoveOff(endpoint);  // it failed
//
// Thread-safety: thread-safe.
#ifndef LEASEHOLD_REGISTRY_ETCD_ENDPOINT_LIST_H_
#define LEASEHOLD_REGISTRY_ETCD_ENDPOINT_LIST_H_

#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "registry/cancel.h"

namespace leasehold::registry::etcd_internal {

class EndpointList {
 public:
  // REQUIRES: `endpoints` is not empty.
  explicit EndpointList(std::vector<std::string> endpoints)
      : endpoints_(std::move(endpoints)) {}

  // The endpoints, and the index of the preferred one.
  std::pair<std::vector<std::string>, size_t> Snapshot() const
      ABSL_LOCKS_EXCLUDED(mu_);
  // `endpoint` answered: prefer it (if it is still listed).
  void StickTo(const std::string& endpoint) ABSL_LOCKS_EXCLUDED(mu_);
  // `endpoint` failed: prefer the next one, unless a concurrent failure on
  // it moved the preference already.
  void MoveOff(const std::string& endpoint) ABSL_LOCKS_EXCLUDED(mu_);
  // Replaces the list (the members auto-sync found), keeping the preferred
  // endpoint if it is still listed. REQUIRES: `endpoints` is not empty.
  void Replace(std::vector<std::string> endpoints) ABSL_LOCKS_EXCLUDED(mu_);

  // Asks `probe` of the endpoints other than `endpoint`, in list order from
  // the one after it, until one answers or `stop` fires; nullopt when none
  // answered. For judging one member by what the others know.
  template <typename T>
  std::optional<T> FirstAnswerFromOthers(
      const std::string& endpoint, const CancelToken& stop,
      const std::function<std::optional<T>(const std::string&)>& probe) const;

 private:
  mutable std::mutex mu_;
  std::vector<std::string> endpoints_ ABSL_GUARDED_BY(mu_);
  size_t preferred_ ABSL_GUARDED_BY(mu_) = 0;
};

template <typename T>
std::optional<T> EndpointList::FirstAnswerFromOthers(
    const std::string& endpoint, const CancelToken& stop,
    const std::function<std::optional<T>(const std::string&)>& probe) const {
  const auto [endpoints, unused] = Snapshot();
  size_t at = 0;
  while (at < endpoints.size() && endpoints[at] != endpoint) ++at;
  if (at == endpoints.size()) at = 0;
  std::optional<T> answer;
  for (size_t i = 1; i < endpoints.size() && !answer; ++i) {
    const std::string& other = endpoints[(at + i) % endpoints.size()];
    if (other == endpoint || stop.cancelled()) continue;
    answer = probe(other);
  }
  return answer;
}

}  // namespace leasehold::registry::etcd_internal

#endif  // LEASEHOLD_REGISTRY_ETCD_ENDPOINT_LIST_H_
