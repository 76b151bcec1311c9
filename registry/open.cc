#include "registry/open.h"

#include <utility>

namespace leasehold::registry {

absl::StatusOr<std::unique_ptr<KeysApi>> Open(absl::string_view uri,
                                              Clock* clock) {
  absl::StatusOr<RegistryConfig> config = ParseRegistryUri(uri);
  if (!config.ok()) return config.status();
  if (auto* memory = std::get_if<MemoryOptions>(&*config)) {
    memory->clock = clock;
    return NewMemoryRegistry(*memory);
  }
  EtcdOptions& etcd = std::get<EtcdOptions>(*config);
  etcd.clock = clock;
  return NewEtcdClient(std::move(etcd));
}

}  // namespace leasehold::registry
