// registry::ParseRegistryUri (registry/open.h): any string is either a
// configuration that can work or kInvalidArgument naming what is wrong.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <variant>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "registry/etcd/http_transport.h"
#include "registry/open.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view uri(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<leasehold::registry::RegistryConfig> config =
      leasehold::registry::ParseRegistryUri(uri);
  if (!config.ok()) {
    if (!absl::IsInvalidArgument(config.status())) std::abort();
    return 0;
  }
  if (const auto* etcd =
          std::get_if<leasehold::registry::EtcdOptions>(&*config)) {
    if (etcd->endpoints.empty()) std::abort();
    for (const std::string& endpoint : etcd->endpoints) {
      if (!absl::StartsWith(endpoint, "http://") &&
          !absl::StartsWith(endpoint, "https://")) {
        std::abort();
      }
      if (endpoint.size() <= std::string("https://").size()) std::abort();
    }
    if (etcd->request_timeout <= absl::ZeroDuration() ||
        etcd->dial_timeout <= absl::ZeroDuration() ||
        etcd->auto_sync_interval < absl::ZeroDuration()) {
      std::abort();
    }
    for (const absl::Duration keepalive :
         {etcd->keepalive_time, etcd->keepalive_timeout}) {
      if (keepalive < leasehold::registry::etcd_internal::kMinKeepalive ||
          keepalive > leasehold::registry::etcd_internal::kMaxKeepalive) {
        std::abort();
      }
    }
  }
  return 0;
}
