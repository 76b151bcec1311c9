// registry::Open: a KeysApi from a URI, so tools and services take one
// string from their configuration.
//
//   mem:  (or local:)                        the in-memory registry
//   etcd://host:port[,host:port...][?opts]   etcd v2 over http
//   etcd+https://host:port[,...][?opts]      etcd v2 over https
//   etcd:http://host:port[,http://...][?opts]   the same, go-lock's form:
//   etcd:https://host:port[,https://...][?opts] one scheme for all
//   etcd3://host:port[,...][?opts]           etcd v3 over http
//   etcd3+https://host:port[,...][?opts]     etcd v3 over https
// (the same options, see registry/etcd_v3/etcd_v3_client.h)
//
// Options (query parameters, durations in absl form: 500ms, 2s, 1m):
//   request-timeout=DUR  dial-timeout=DUR  auto-sync-interval=DUR
//   watch-check-interval=DUR (0s: off)
//   dial-keep-alive-time=DUR  dial-keep-alive-timeout=DUR (TCP keepalive)
//   reject-old-cluster=BOOL (check GET /version when opened: 3.4 or newer)
//   username=U  password=P  password-file=PATH  allow-insecure-auth=BOOL
//   ca-file=PATH  cert-file=PATH  key-file=PATH  server-name=HOST
//   quorum-reads=true|false
// Option values are percent-decoded. An unknown scheme, an unknown option,
// an unparsable value or an empty endpoint list is kInvalidArgument naming
// the offending part; nothing is silently ignored. Messages show the URI
// through RedactUri (registry/registry_uri.h): never a password.
//
// Credentials come from one place. A URI with username= takes the password
// from password= or password-file= (exactly one). A URI without any of the
// three takes LEASEHOLD_USERNAME and LEASEHOLD_PASSWORD from the environment
// (Open only; ParseRegistryUri and NewEtcdClient never read the
// environment), both or neither. Open reads them, as libpq reads PGPASSWORD,
// so that every service configured with a URI offers the same safe ways to
// pass a password as the leasehold tool. See EtcdOptions for the clear-text
// warning and server-name.
//
// Thread-safety: Open and ParseRegistryUri are free functions without shared
// state; Open reads the environment, so it must not race with setenv.
#ifndef LEASEHOLD_REGISTRY_OPEN_H_
#define LEASEHOLD_REGISTRY_OPEN_H_

#include <functional>
#include <memory>
#include <variant>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "registry/etcd/etcd_client.h"
#include "registry/etcd_v3/etcd_v3_client.h"
#include "registry/keys_api.h"
#include "registry/memory/memory_registry.h"
#include "registry/registry_uri.h"

namespace leasehold::registry {

// What a URI asks for, before anything is connected.
using RegistryConfig = std::variant<MemoryOptions, EtcdOptions, EtcdV3Options>;
absl::StatusOr<RegistryConfig> ParseRegistryUri(absl::string_view uri);

struct OpenOptions {
  // The registry's clock. Default: RealClock().
  Clock* clock = nullptr;
  // The etcd client's warnings (EtcdOptions::warn). Default: stderr.
  std::function<void(absl::string_view)> warn;
};

// The registry `uri` names, not yet contacted (unless reject-old-cluster=
// true: then its version was asked). kInvalidArgument for a bad URI, for
// only one of LEASEHOLD_USERNAME / LEASEHOLD_PASSWORD set, and for what
// NewEtcdClient refuses (an unreadable password file, say);
// kFailedPrecondition / kUnavailable for a cluster reject-old-cluster
// refuses or cannot ask.
absl::StatusOr<std::unique_ptr<KeysApi>> Open(absl::string_view uri,
                                              OpenOptions options);
// The same with `clock` (optional) as the registry's clock.
absl::StatusOr<std::unique_ptr<KeysApi>> Open(absl::string_view uri,
                                              Clock* clock = nullptr);

}  // namespace leasehold::registry

#endif  // LEASEHOLD_REGISTRY_OPEN_H_
