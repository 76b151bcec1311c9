#include "tests/testing/throwaway_ca.h"

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"

namespace leasehold::testing {

absl::StatusOr<std::unique_ptr<ThrowawayCa>> ThrowawayCa::Create() {
  char dir_template[] = "/tmp/leasehold-tls-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) {
    return absl::InternalError("mkdtemp failed");
  }
  std::unique_ptr<ThrowawayCa> ca(new ThrowawayCa(dir_template));
  absl::Status made = ca->RunScript(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
      "-subj /CN=leasehold-test-ca -keyout ca.key -out ca.pem\n");
  if (!made.ok()) return made;
  return ca;
}

ThrowawayCa::~ThrowawayCa() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

absl::StatusOr<ThrowawayCa::Issued> ThrowawayCa::Issue(
    const std::string& name, const std::string& alt_names) {
  absl::Status made = RunScript(absl::StrCat(
      "openssl req -newkey rsa:2048 -nodes -subj /CN=", name, " -keyout ", name,
      ".key -out ", name, ".csr\n",
      "printf 'subjectAltName=%s\\nextendedKeyUsage=serverAuth,clientAuth\\n' ",
      "'", alt_names, "' > ", name, ".ext\n", "openssl x509 -req -in ", name,
      ".csr -CA ca.pem -CAkey ca.key ", "-CAcreateserial -days 2 -extfile ",
      name, ".ext -out ", name, ".pem\n"));
  if (!made.ok()) return made;
  return Issued{File(name + ".pem"), File(name + ".key")};
}

absl::Status ThrowawayCa::RunScript(const std::string& script) {
  const std::string full =
      absl::StrCat("set -e; cd ", dir_, "; exec >>openssl.log 2>&1\n", script);
  std::string quoted;
  for (char c : full) {
    quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  if (std::system(("bash -c '" + quoted + "'").c_str()) != 0) {
    std::ifstream log(File("openssl.log"));
    std::stringstream text;
    text << log.rdbuf();
    return absl::InternalError(absl::StrCat("openssl failed: ", text.str()));
  }
  return absl::OkStatus();
}

}  // namespace leasehold::testing
