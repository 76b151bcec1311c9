// LeakScenarios: every kind of failure a registry client can meet while it
// holds a password, each as a registry URI (plus environment), for tests
// that grep every message for the secrets.
//
//   ASSERT_OK_AND_ASSIGN(auto scenarios, LeakScenarios::Start());
//   for (const LeakScenario& s : scenarios->All()) {
//     ... open s.uri with s.env set, call, collect messages ...
//     for (const std::string& secret : scenarios->Secrets()) ...
//   }
//
// The scenarios: URIs that do not parse; a refused connection; etcd with
// auth on (v2 auth, and v3 auth for etcd3://) refusing a wrong password
// (given in the URI, a password file and the environment) and a right one
// for a key outside the user's role; a
// TLS server signed by an unknown CA; a client key that cannot be used;
// and servers that answer with something that is not etcd's (an HTML page,
// a bare 401, a 502), echoing the request (Authorization header and v3's
// authenticate body included) back, to both APIs. Every server is on
// loopback.
//
// Thread-safety: one thread at a time.
#ifndef LEASEHOLD_TESTS_TESTING_LEAK_SCENARIOS_H_
#define LEASEHOLD_TESTS_TESTING_LEAK_SCENARIOS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/testing/etcd_server.h"
#include "tests/testing/loopback_net.h"
#include "tests/testing/throwaway_ca.h"

namespace leasehold::testing {

struct LeakScenario {
  std::string name;
  std::string uri;
  // "NAME=value" to set; LEASEHOLD_USERNAME and LEASEHOLD_PASSWORD are
  // otherwise unset.
  std::vector<std::string> env;
  // Whether opening alone fails (a bad URI or file) rather than the calls.
  bool open_fails = false;
};

class LeakScenarios {
 public:
  // Starts the servers (three etcds, the fake servers) and writes the
  // files.
  static absl::StatusOr<std::unique_ptr<LeakScenarios>> Start();

  std::vector<LeakScenario> All() const;
  // What must never appear in a message: the passwords, their HTTP basic
  // auth encodings, and the contents of the key files.
  std::vector<std::string> Secrets() const;
  // Keys used by the calls lie under this prefix, outside the role of the
  // user the scenarios authenticate as.
  static constexpr char kPrefix[] = "/leak/";

 private:
  LeakScenarios() = default;

  std::unique_ptr<ThrowawayCa> ca_;
  std::unique_ptr<ThrowawayCa> unknown_ca_;
  std::unique_ptr<EtcdServer> auth_etcd_;
  std::unique_ptr<EtcdServer> auth_etcd_v3_;
  std::unique_ptr<EtcdServer> tls_etcd_;
  std::vector<std::unique_ptr<CannedHttpServer>> bad_servers_;
  std::string password_file_;
  std::string garbage_key_file_;
  std::string wrong_key_file_;
  std::string client_cert_file_;
  int refused_port_ = 0;
};

}  // namespace leasehold::testing

#endif  // LEASEHOLD_TESTS_TESTING_LEAK_SCENARIOS_H_
