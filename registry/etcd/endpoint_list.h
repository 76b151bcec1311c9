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
// MemberSync keeps such a list in step with the cluster's membership (the
// clients' auto_sync_interval): v2 asks /v2/members, v3
// /v3/cluster/member/list, the loop around the question is this one.
//
//   MemberSync sync(list, clock, absl::Minutes(1), clear_text,
//                   [&](const std::string& endpoint, const CancelToken& stop) {
//                     return AskMembers(endpoint, stop);  // client URLs
//                   });
//
// Thread-safety: thread-safe.
#ifndef LEASEHOLD_REGISTRY_ETCD_ENDPOINT_LIST_H_
#define LEASEHOLD_REGISTRY_ETCD_ENDPOINT_LIST_H_

#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "registry/cancel.h"
#include "registry/clock.h"
#include "registry/etcd/credentials.h"

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

// Every `interval` (on `clock`), asks the endpoints in turn, from the
// preferred one, for the members' client URLs, and replaces `list` with the
// first answer that names any, after `clear_text` has checked it. On
// failure the list stays as it is: it is still the best knowledge there is.
// Runs on a thread of its own from construction to destruction.
class MemberSync {
 public:
  // The client URLs `endpoint` reports; an error or an empty list moves on
  // to the next endpoint. Returns promptly once `stop` fires.
  using AskMembers = std::function<absl::StatusOr<std::vector<std::string>>(
      const std::string& endpoint, const CancelToken& stop)>;

  // REQUIRES: interval > 0; `list`, `clock` and `clear_text` outlive this
  // object.
  MemberSync(EndpointList& list, Clock& clock, absl::Duration interval,
             ClearTextWarning& clear_text, AskMembers ask);
  // Stops the thread, aborting a question in flight.
  ~MemberSync();
  MemberSync(const MemberSync&) = delete;
  MemberSync& operator=(const MemberSync&) = delete;

 private:
  void Loop();
  void SyncOnce();

  EndpointList& list_;
  Clock& clock_;
  const absl::Duration interval_;
  ClearTextWarning& clear_text_;
  const AskMembers ask_;
  CancelToken stop_;
  std::thread thread_;
};

}  // namespace leasehold::registry::etcd_internal

#endif  // LEASEHOLD_REGISTRY_ETCD_ENDPOINT_LIST_H_
