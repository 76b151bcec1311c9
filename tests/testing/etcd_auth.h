// Switching etcd v2 auth on for tests, with a fixed set of users:
//   root  / kRootPassword   may do everything
//   alice / kAlicePassword  role "app": read and write /app/*
// and no "guest" role, so a request without credentials is refused.
//
//   ASSERT_OK_AND_ASSIGN(auto etcd, StartEtcdWithAuth());
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

// A new etcd (EtcdServer::Start()) with EnableEtcdAuth done.
absl::StatusOr<std::unique_ptr<EtcdServer>> StartEtcdWithAuth();

}  // namespace leasehold::testing

#endif  // LEASEHOLD_TESTS_TESTING_ETCD_AUTH_H_
