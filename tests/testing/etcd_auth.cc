#include "tests/testing/etcd_auth.h"

#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "registry/etcd/http_transport.h"

namespace leasehold::testing {
namespace {

// One auth API request; kInternal unless etcd answers 2xx. v2: basic auth
// with `user` and `password`; v3: `token` in the Authorization header.
absl::Status AuthApi(const std::string& endpoint, const std::string& method,
                     const std::string& path, const std::string& json,
                     const std::string& user = "",
                     const std::string& password = "",
                     const std::string& token = "") {
  registry::etcd_internal::HttpTransportOptions options;
  options.username = user;
  options.password = password;
  registry::etcd_internal::HttpTransport transport(options);
  registry::etcd_internal::HttpResult r =
      transport.Send(endpoint, {method, path, json, false, token});
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

absl::Status EnableEtcdV3Auth(const std::string& endpoint) {
  auto b64 = [](const char* raw) { return absl::Base64Escape(raw); };
  const std::vector<std::string> requests = {
      absl::StrCat("/v3/auth/user/add {\"name\":\"root\",\"password\":\"",
                   kRootPassword, "\"}"),
      "/v3/auth/role/add {\"name\":\"root\"}",
      "/v3/auth/user/grant {\"user\":\"root\",\"role\":\"root\"}",
      "/v3/auth/role/add {\"name\":\"app\"}",
      absl::StrCat("/v3/auth/role/grant {\"name\":\"app\",\"perm\":{",
                   "\"permType\":\"READWRITE\",\"key\":\"", b64("/app"),
                   "\",\"range_end\":\"", b64("/app0"), "\"}}"),
      absl::StrCat("/v3/auth/user/add {\"name\":\"alice\",\"password\":\"",
                   kAlicePassword, "\"}"),
      "/v3/auth/user/grant {\"user\":\"alice\",\"role\":\"app\"}",
      "/v3/auth/enable {}",
  };
  for (const std::string& request : requests) {
    const size_t space = request.find(' ');
    if (absl::Status s = AuthApi(endpoint, "POST", request.substr(0, space),
                                 request.substr(space + 1));
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> EtcdV3Token(const std::string& endpoint,
                                        const std::string& name,
                                        const std::string& password) {
  registry::etcd_internal::HttpTransport transport({});
  registry::etcd_internal::HttpResult r = transport.Send(
      endpoint, {"POST", "/v3/auth/authenticate",
                 absl::StrCat("{\"name\":\"", name, "\",\"password\":\"",
                              password, "\"}"),
                 true});
  if (!r.status.ok()) return r.status;
  const size_t at = r.response.body.find("\"token\":\"");
  if (r.response.status != 200 || at == std::string::npos) {
    return absl::InternalError(absl::StrCat("authenticate ", name, ": HTTP ",
                                            r.response.status, " ",
                                            r.response.body));
  }
  const size_t from = at + 9;
  return r.response.body.substr(from, r.response.body.find('"', from) - from);
}

absl::Status ReadWithEtcdV3Token(const std::string& endpoint,
                                 const std::string& token) {
  return AuthApi(
      endpoint, "POST", "/v3/kv/range",
      absl::StrCat("{\"key\":\"", absl::Base64Escape("/app/"), "\"}"), "", "",
      token);
}

absl::Status ChangeEtcdV3Password(const std::string& endpoint,
                                  const std::string& name,
                                  const std::string& password) {
  absl::StatusOr<std::string> token =
      EtcdV3Token(endpoint, "root", kRootPassword);
  if (!token.ok()) return token.status();
  return AuthApi(
      endpoint, "POST", "/v3/auth/user/changepw",
      absl::StrCat("{\"name\":\"", name, "\",\"password\":\"", password, "\"}"),
      "", "", *token);
}

absl::StatusOr<std::unique_ptr<EtcdServer>> StartEtcdWithAuth(
    const std::string& api, EtcdServerOptions options) {
  const bool v3 = api == "etcd3";
  options.enable_v2 = !v3;
  absl::StatusOr<std::unique_ptr<EtcdServer>> etcd =
      EtcdServer::Start(std::move(options));
  if (!etcd.ok()) return etcd;
  const std::string endpoint = (*etcd)->endpoint();
  if (absl::Status s =
          v3 ? EnableEtcdV3Auth(endpoint) : EnableEtcdAuth(endpoint);
      !s.ok()) {
    return s;
  }
  return etcd;
}

EtcdServer& SharedEtcdWithAuth(const std::string& api) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<EtcdServer>> servers;
  std::lock_guard<std::mutex> lock(mu);
  std::unique_ptr<EtcdServer>& server = servers[api];
  if (server == nullptr) {
    absl::StatusOr<std::unique_ptr<EtcdServer>> started =
        StartEtcdWithAuth(api);
    if (!started.ok()) {
      std::cerr << "cannot start etcd with auth for " << api << ": "
                << started.status() << std::endl;
      std::abort();
    }
    server = *std::move(started);
  }
  return *server;
}

}  // namespace leasehold::testing
