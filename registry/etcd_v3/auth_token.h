// AuthToken: the etcd v3 auth token one client shares between its threads.
//
// etcd v3 authenticates a user once (/v3/auth/authenticate with the name and
// password) and then takes the token it returned on every request. A token
// ends when etcd forgets it: a simple token expires after --auth-token-ttl
// seconds without use (default 300), and every token of a member is dropped
// when it restarts or when auth state changes. AuthToken holds the current
// token, fetches the first one when asked, and a new one when a request
// says etcd rejected the one it carried: one fetch at a time, whose outcome
// every thread that waited for it shares, so that many threads whose token
// expired at once cause one authentication, not one each.
//
//   AuthToken token(*clock, [&](absl::Time deadline) { return Login(deadline);
//   }); absl::StatusOr<std::string> t = token.Get(deadline);
//   ... send with *t; etcd answers "invalid auth token" ...
//   t = token.Renew(*t, deadline);   // then send once more
//
// Thread-safety: thread-safe. `fetch` runs on the calling thread, without
// the internal lock held, one call at a time.
#ifndef LEASEHOLD_REGISTRY_ETCD_V3_AUTH_TOKEN_H_
#define LEASEHOLD_REGISTRY_ETCD_V3_AUTH_TOKEN_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "registry/clock.h"

namespace leasehold::registry::etcd_v3_internal {

class AuthToken {
 public:
  // Authenticates within `deadline`: the token, or "" when the cluster has
  // auth switched off (requests then carry none), or why not.
  using Fetch = std::function<absl::StatusOr<std::string>(absl::Time deadline)>;

  // REQUIRES: `clock` outlives this object.
  AuthToken(Clock& clock, Fetch fetch);

  // The token to send: the current one, or, when there is none yet, the
  // outcome of a fetch (this thread's, or the one in flight). An error of
  // the fetch, or kDeadlineExceeded when `deadline` passed while another
  // thread's fetch was still running.
  absl::StatusOr<std::string> Get(absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_);

  // etcd rejected `rejected`: a newer token if another thread has already
  // got one, else the outcome of a fetch, as Get.
  absl::StatusOr<std::string> Renew(const std::string& rejected,
                                    absl::Time deadline)
      ABSL_LOCKS_EXCLUDED(mu_);

  // The current token, without fetching one; nullopt before the first
  // fetch succeeded.
  std::optional<std::string> Current() const ABSL_LOCKS_EXCLUDED(mu_);

  // Successful fetches so far (for tests and diagnostics).
  int64_t fetches() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // A token other than `stale` (any token when nullopt), fetching if need
  // be.
  absl::StatusOr<std::string> Obtain(const std::optional<std::string>& stale,
                                     absl::Time deadline)
      ABSL_LOCKS_EXCLUDED(mu_);

  Clock& clock_;
  const Fetch fetch_;
  mutable std::mutex mu_;
  std::condition_variable fetched_;
  // The current token; nullopt before the first fetch succeeded.
  std::optional<std::string> token_ ABSL_GUARDED_BY(mu_);
  bool fetching_ ABSL_GUARDED_BY(mu_) = false;
  // Counts finished fetches, so that a waiter knows the one it waited for
  // has ended, and the outcome of the last one.
  uint64_t round_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status last_failure_ ABSL_GUARDED_BY(mu_);
  int64_t fetches_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace leasehold::registry::etcd_v3_internal

#endif  // LEASEHOLD_REGISTRY_ETCD_V3_AUTH_TOKEN_H_
