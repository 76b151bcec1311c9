// ThrowawayCa: a certificate authority for TLS tests, made with openssl in
// a temporary directory that goes away with the object.
//
//   ASSERT_OK_AND_ASSIGN(auto ca, ThrowawayCa::Create());
//   ASSERT_OK_AND_ASSIGN(auto server, ca->Issue("server", "IP:127.0.0.1"));
//   options.server_cert_file = server.cert_file;   // signed by ca->ca_file()
//
// Thread-safety: one thread at a time.
#ifndef LEASEHOLD_TESTS_TESTING_THROWAWAY_CA_H_
#define LEASEHOLD_TESTS_TESTING_THROWAWAY_CA_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace leasehold::testing {

class ThrowawayCa {
 public:
  struct Issued {
    std::string cert_file;  // PEM, signed by the CA
    std::string key_file;   // PEM, unencrypted
  };

  // kInternal (naming the openssl log) when openssl fails.
  static absl::StatusOr<std::unique_ptr<ThrowawayCa>> Create();
  ~ThrowawayCa();  // removes the directory
  ThrowawayCa(const ThrowawayCa&) = delete;
  ThrowawayCa& operator=(const ThrowawayCa&) = delete;

  // The CA's certificate, to trust.
  std::string ca_file() const { return File("ca.pem"); }
  // A certificate for server and client use, with subjectAltName
  // `alt_names` ("IP:127.0.0.1", "DNS:etcd.test,DNS:other.test"), in files
  // named after `name`.
  absl::StatusOr<Issued> Issue(const std::string& name,
                               const std::string& alt_names);
  // A path inside the CA's directory, for a test's own files.
  std::string File(const std::string& name) const { return dir_ + "/" + name; }

 private:
  explicit ThrowawayCa(std::string dir) : dir_(std::move(dir)) {}
  absl::Status RunScript(const std::string& script);

  const std::string dir_;
};

}  // namespace leasehold::testing

#endif  // LEASEHOLD_TESTS_TESTING_THROWAWAY_CA_H_
