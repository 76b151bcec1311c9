// registry::Open: a KeysApi from a URI, so tools and services take one
// string from their configuration.
//
//   mem:                                     the in-memory registry
//   etcd://host:port[,host:port...][?opts]   etcd v2 over http
//   etcd+https://host:port[,...][?opts]      etcd v2 over https
//
// Options (query parameters, durations in absl form: 500ms, 2s, 1m):
//   request-timeout=DUR  dial-timeout=DUR  auto-sync-interval=DUR
//   watch-check-interval=DUR (0s: off)
//   username=U  password=P  ca-file=PATH  cert-file=PATH  key-file=PATH
//   quorum-reads=true|false
// Option values are percent-decoded. An unknown scheme, an unknown option,
// an unparsable value or an empty endpoint list is kInvalidArgument naming
// the offending part; nothing is silently ignored.
//
// Thread-safety: Open and ParseRegistryUri are free functions without shared
// state.
#ifndef LEASEHOLD_REGISTRY_OPEN_H_
#define LEASEHOLD_REGISTRY_OPEN_H_

#include <memory>
#include <variant>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "registry/etcd/etcd_client.h"
#include "registry/keys_api.h"
#include "registry/memory/memory_registry.h"

namespace leasehold::registry {

// What a URI asks for, before anything is connected.
using RegistryConfig = std::variant<MemoryOptions, EtcdOptions>;
absl::StatusOr<RegistryConfig> ParseRegistryUri(absl::string_view uri);

// `clock` (optional) becomes the registry's clock.
absl::StatusOr<std::unique_ptr<KeysApi>> Open(absl::string_view uri,
                                              Clock* clock = nullptr);

}  // namespace leasehold::registry

#endif  // LEASEHOLD_REGISTRY_OPEN_H_
