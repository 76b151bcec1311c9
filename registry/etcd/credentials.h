// How the etcd client keeps its credentials secret: the password file, the
// warning hook, and the check that credentials never leave the host in
// clear text unnoticed. Internal to registry/etcd/.
//
//   Warner warn = WarnerFor(options);
//   absl::StatusOr<std::string> password =
//       ReadPasswordFile(options.password_file, warn);
//   ClearTextWarning clear_text(options, warn, "HTTP basic auth");
//   clear_text.Check(options.endpoints);   // warns at most once
//
// Thread-safety: the functions have no shared state; one ClearTextWarning
// may be checked from any number of threads.
#ifndef LEASEHOLD_REGISTRY_ETCD_CREDENTIALS_H_
#define LEASEHOLD_REGISTRY_ETCD_CREDENTIALS_H_

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "registry/etcd/etcd_client.h"

namespace leasehold::registry::etcd_internal {

using Warner = std::function<void(absl::string_view)>;

// options.warn, or "leasehold: warning: <text>" on stderr when it is empty.
Warner WarnerFor(const EtcdOptions& options);

// The first line of the file at `path`, without its line ending. A regular
// file that group or others may read is used, and `warn` says so.
// kInvalidArgument naming the path when it cannot be read or its first line
// is empty; the file's contents are never part of a message.
absl::StatusOr<std::string> ReadPasswordFile(const std::string& path,
                                             const Warner& warn);

// True for a host that names this machine's loopback interface: an IPv4
// address in 127.0.0.0/8, ::1 (bracketed or not, also as ::ffff:127.x.y.z)
// and "localhost" in any case.
bool IsLoopbackHost(absl::string_view host);

// Warns once when credentials would go in clear text: a username is set,
// allow_insecure_auth is not, and some endpoint is http:// to a host that is
// not loopback.
class ClearTextWarning {
 public:
  // `how`: how the credentials travel, for the message ("HTTP basic auth").
  ClearTextWarning(const EtcdOptions& options, Warner warn,
                   absl::string_view how);
  // Checks `endpoints` ("http://host:port", …); calls the warner at most once
  // over the object's life, naming the user and the clear-text endpoints.
  void Check(const std::vector<std::string>& endpoints);

 private:
  const std::string username_;
  const std::string how_;
  const bool armed_;
  const Warner warn_;
  std::atomic<bool> warned_{false};
};

}  // namespace leasehold::registry::etcd_internal

#endif  // LEASEHOLD_REGISTRY_ETCD_CREDENTIALS_H_
