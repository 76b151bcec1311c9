#include "registry/open.h"

#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"

namespace leasehold::registry {
namespace {

constexpr char kUsernameVariable[] = "LEASEHOLD_USERNAME";
constexpr char kPasswordVariable[] = "LEASEHOLD_PASSWORD";

std::string Environment(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

// The environment's credentials for a URI that names none. The password
// stays out of messages, as everywhere.
absl::Status ApplyEnvironmentCredentials(EtcdOptions& options) {
  if (!options.username.empty()) return absl::OkStatus();
  std::string username = Environment(kUsernameVariable);
  std::string password = Environment(kPasswordVariable);
  if (username.empty() != password.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(username.empty() ? kPasswordVariable : kUsernameVariable,
                     " is set but ",
                     username.empty() ? kUsernameVariable : kPasswordVariable,
                     " is not: set both, or neither"));
  }
  options.username = std::move(username);
  options.password = std::move(password);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<KeysApi>> Open(absl::string_view uri,
                                              OpenOptions options) {
  absl::StatusOr<RegistryConfig> config = ParseRegistryUri(uri);
  if (!config.ok()) return config.status();
  if (auto* memory = std::get_if<MemoryOptions>(&*config)) {
    memory->clock = options.clock;
    return NewMemoryRegistry(*memory);
  }
  auto* v3 = std::get_if<EtcdV3Options>(&*config);
  EtcdOptions& etcd = v3 != nullptr ? *v3 : std::get<EtcdOptions>(*config);
  if (absl::Status s = ApplyEnvironmentCredentials(etcd); !s.ok()) return s;
  etcd.clock = options.clock;
  etcd.warn = std::move(options.warn);
  if (v3 != nullptr) return NewEtcdV3Client(std::move(etcd));
  return NewEtcdClient(std::move(etcd));
}

absl::StatusOr<std::unique_ptr<KeysApi>> Open(absl::string_view uri,
                                              Clock* clock) {
  return Open(uri, OpenOptions{clock, nullptr});
}

}  // namespace leasehold::registry
