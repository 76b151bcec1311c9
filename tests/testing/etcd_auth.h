// Switching etcd auth on for tests (v2 auth, or v3 auth for an etcd
// serving v3 alone), with a fixed set of users:
//   root  / kRootPassword   may do everything
//   alice / kAlicePassword  role "app": read and write /app/* (v3: the keys
//                           from "/app" to "/app0", so that the v3 client's
//                           checks of a key's parents are allowed too)
// and no "guest" role, so a request without credentials is refused.
//
//   ASSERT_OK_AND_ASSIGN(auto etcd, StartEtcdWithAuth("etcd3"));
//
// Thread-safety: a free function; one call per server.
#ifndef LEASEHOLD_TESTS_TESTING_ETCD_AUTH_H_
#define LEASEHOLD_TESTS_TESTING_ETCD_AUTH_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/testing/etcd_server.h"

namespace leasehold::testing {

inline constexpr char kRootPassword[] = "rootpw";
inline constexpr char kAlicePassword[] = "alice-Pw-4e1f";

// kInternal naming the request that etcd did not accept.
absl::Status EnableEtcdAuth(const std::string& endpoint);
// The same with etcd v3's auth API (/v3/auth/...).
absl::Status EnableEtcdV3Auth(const std::string& endpoint);

// A new etcd for `api` ("etcd": v2 enabled, "etcd3": v3 alone, see
// EtcdApis()) started with `options`, with the matching auth switched on.
absl::StatusOr<std::unique_ptr<EtcdServer>> StartEtcdWithAuth(
    const std::string& api = "etcd", EtcdServerOptions options = {});

// One such etcd per API for every test of a binary, started on first use
// and stopped at exit. Aborts the test binary with a clear message if it
// cannot start.
EtcdServer& SharedEtcdWithAuth(const std::string& api);

// A v3 token of user `name`, fresh from /v3/auth/authenticate.
absl::StatusOr<std::string> EtcdV3Token(const std::string& endpoint,
                                        const std::string& name,
                                        const std::string& password);
// A read of /app/ carrying `token`: kInternal naming etcd's answer (say,
// "invalid auth token") when etcd refuses it.
absl::Status ReadWithEtcdV3Token(const std::string& endpoint,
                                 const std::string& token);

// Sets the password of v3 user `name` (as root). etcd drops every token
// of that user then, even when the password stays the same.
absl::Status ChangeEtcdV3Password(const std::string& endpoint,
                                  const std::string& name,
                                  const std::string& password);

}  // namespace leasehold::testing

#endif  // LEASEHOLD_TESTS_TESTING_ETCD_AUTH_H_
