#include "tests/testing/etcd_auth.h"

#include "absl/strings/str_cat.h"
#include "registry/etcd/http_transport.h"

namespace leasehold::testing {
namespace {

// One auth API request; kInternal unless etcd answers 2xx.
absl::Status AuthApi(const std::string& endpoint, const std::string& method,
                     const std::string& path, const std::string& json,
                     const std::string& user = "",
                     const std::string& password = "") {
  registry::etcd_internal::HttpTransportOptions options;
  options.username = user;
  options.password = password;
  registry::etcd_internal::HttpTransport transport(options);
  registry::etcd_internal::HttpResult r =
      transport.Send(endpoint, {method, path, json, false});
  if (!r.status.ok()) return r.status;
  if (r.response.status < 200 || r.response.status >= 300) {
    return absl::InternalError(absl::StrCat(
        method, " ", path, ": HTTP ", r.response.status, " ", r.response.body));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status EnableEtcdAuth(const std::string& endpoint) {
  absl::Status s = AuthApi(
      endpoint, "PUT", "/v2/auth/users/root",
      absl::StrCat(R"({"user":"root","password":")", kRootPassword, R"("})"));
  if (s.ok()) {
    s = AuthApi(endpoint, "PUT", "/v2/auth/roles/app",
                R"({"role":"app","permissions":{"kv":{"read":["/app/*"],)"
                R"("write":["/app/*"]}}})");
  }
  if (s.ok()) {
    s = AuthApi(endpoint, "PUT", "/v2/auth/users/alice",
                absl::StrCat(R"({"user":"alice","password":")", kAlicePassword,
                             R"(","roles":["app"]})"));
  }
  if (s.ok()) s = AuthApi(endpoint, "PUT", "/v2/auth/enable", "");
  // Enabling auth creates a "guest" role that may do everything; without
  // it, a request without credentials is refused.
  if (s.ok()) {
    s = AuthApi(endpoint, "DELETE", "/v2/auth/roles/guest", "", "root",
                kRootPassword);
  }
  return s;
}

absl::StatusOr<std::unique_ptr<EtcdServer>> StartEtcdWithAuth() {
  absl::StatusOr<std::unique_ptr<EtcdServer>> etcd = EtcdServer::Start();
  if (!etcd.ok()) return etcd;
  if (absl::Status s = EnableEtcdAuth((*etcd)->endpoint()); !s.ok()) return s;
  return etcd;
}

}  // namespace leasehold::testing
