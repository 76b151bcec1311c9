// The etcd client against a real etcd with v2 auth switched on, and against
// an etcd that serves https and requires client certificates.
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registry/errors.h"
#include "registry/etcd/etcd_client.h"
#include "registry/etcd/http_transport.h"
#include "tests/testing/etcd_server.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::registry {
namespace {

using ::leasehold::testing::EtcdServer;
using ::leasehold::testing::EtcdServerOptions;
using ::leasehold::testing::IsOk;
using ::leasehold::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

absl::StatusOr<std::unique_ptr<KeysApi>> Client(
    const std::string& endpoint, const std::string& user = "",
    const std::string& password = "") {
  EtcdOptions options;
  options.endpoints = {endpoint};
  options.username = user;
  options.password = password;
  return NewEtcdClient(std::move(options));
}

// Sends one auth API request as `user` and expects a 2xx answer.
void AuthApi(const std::string& endpoint, const std::string& method,
             const std::string& path, const std::string& json,
             const std::string& user = "", const std::string& password = "") {
  etcd_internal::HttpTransportOptions options;
  options.username = user;
  options.password = password;
  etcd_internal::HttpTransport transport(options);
  etcd_internal::HttpResult r =
      transport.Send(endpoint, {method, path, json, false});
  ASSERT_THAT(r.status, IsOk());
  ASSERT_GE(r.response.status, 200) << path << ": " << r.response.body;
  ASSERT_LT(r.response.status, 300) << path << ": " << r.response.body;
}

class EtcdAuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto etcd = EtcdServer::Start();
    ASSERT_THAT(etcd, IsOk());
    etcd_ = etcd->release();
    const std::string e = etcd_->endpoint();
    AuthApi(e, "PUT", "/v2/auth/users/root",
            R"({"user":"root","password":"rootpw"})");
    AuthApi(
        e, "PUT", "/v2/auth/roles/app",
        R"({"role":"app","permissions":{"kv":{"read":["/app/*"],"write":["/app/*"]}}})");
    AuthApi(e, "PUT", "/v2/auth/users/alice",
            R"({"user":"alice","password":"alicepw","roles":["app"]})");
    AuthApi(e, "PUT", "/v2/auth/enable", "");
    // Enabling auth creates a "guest" role that may do everything; without
    // it, a request without credentials is refused.
    AuthApi(e, "DELETE", "/v2/auth/roles/guest", "", "root", "rootpw");
  }
  static void TearDownTestSuite() {
    delete etcd_;
    etcd_ = nullptr;
  }
  static EtcdServer* etcd_;
};

EtcdServer* EtcdAuthTest::etcd_ = nullptr;

TEST_F(EtcdAuthTest, RightCredentialsWork) {
  ASSERT_OK_AND_ASSIGN(auto root, Client(etcd_->endpoint(), "root", "rootpw"));
  EXPECT_THAT(root->Set("/anywhere/k", "v", {}), IsOk());
  ASSERT_OK_AND_ASSIGN(auto alice,
                       Client(etcd_->endpoint(), "alice", "alicepw"));
  EXPECT_THAT(alice->Set("/app/k", "v", {}), IsOk());
  ASSERT_OK_AND_ASSIGN(Response got, alice->Get("/app/k", {}));
  EXPECT_EQ(got.node.value, "v");
}

TEST_F(EtcdAuthTest, WrongPasswordIsUnauthenticated) {
  ASSERT_OK_AND_ASSIGN(auto alice, Client(etcd_->endpoint(), "alice", "wrong"));
  absl::StatusOr<Response> r = alice->Get("/app/k", {});
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kUnauthenticated,
                          AllOf(HasSubstr("user \"alice\""),
                                HasSubstr("wrong username or password"))));
  ASSERT_TRUE(GetEtcdError(r.status()).has_value());
  EXPECT_EQ(GetEtcdError(r.status())->code, kEtcdUnauthorized);
  ASSERT_OK_AND_ASSIGN(auto root, Client(etcd_->endpoint(), "root", "nope"));
  EXPECT_THAT(root->Set("/app/k", "v", {}),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST_F(EtcdAuthTest, MissingCredentialsAreUnauthenticated) {
  ASSERT_OK_AND_ASSIGN(auto anonymous, Client(etcd_->endpoint()));
  EXPECT_THAT(anonymous->Get("/app/k", {}),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       HasSubstr("no username is set")));
}

TEST_F(EtcdAuthTest, KeyOutsideTheRoleIsPermissionDenied) {
  ASSERT_OK_AND_ASSIGN(auto alice,
                       Client(etcd_->endpoint(), "alice", "alicepw"));
  // etcd v2 answers a missing permission exactly like a wrong password;
  // once the credentials have worked, the client knows which it is.
  ASSERT_THAT(alice->Set("/app/mine", "v", {}), IsOk());
  absl::StatusOr<Response> r = alice->Set("/other/k", "v", {});
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kPermissionDenied,
                          AllOf(HasSubstr("set \"/other/k\""),
                                HasSubstr("user \"alice\" lacks permission"))));
  EXPECT_FALSE(IsOutcomeUnknown(r.status()));
  EXPECT_THAT(alice->Get("/other/k", {}),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

// A throwaway CA, a server certificate for 127.0.0.1 and a client
// certificate, made with openssl in a temporary directory.
class EtcdTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char dir_template[] = "/tmp/leasehold-tls-XXXXXX";
    ASSERT_NE(mkdtemp(dir_template), nullptr);
    dir_ = new std::string(dir_template);
    const std::string script = absl::StrCat(
        "set -e; cd ", *dir_, "; exec >openssl.log 2>&1\n",
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "
        "/CN=leasehold-test-ca -keyout ca.key -out ca.pem\n",
        "for who in server client; do\n",
        "  openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 "
        "-keyout $who.key -out $who.csr\n",
        "  printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,"
        "clientAuth\\n' > $who.ext\n",
        "  openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key "
        "-CAcreateserial -days 2 -extfile $who.ext -out $who.pem\n",
        "done\n");
    ASSERT_EQ(std::system(("bash -c '" + Escape(script) + "'").c_str()), 0)
        << "openssl failed; see " << *dir_ << "/openssl.log";
    EtcdServerOptions options;
    options.server_cert_file = File("server.pem");
    options.server_key_file = File("server.key");
    options.client_ca_file = File("ca.pem");
    auto etcd = EtcdServer::Start(options);
    ASSERT_THAT(etcd, IsOk());
    etcd_ = etcd->release();
  }
  static void TearDownTestSuite() {
    delete etcd_;
    etcd_ = nullptr;
    if (dir_ != nullptr) std::filesystem::remove_all(*dir_);
    delete dir_;
    dir_ = nullptr;
  }
  static std::string File(const std::string& name) {
    return *dir_ + "/" + name;
  }
  static std::string Escape(const std::string& s) {
    std::string out;
    for (char c : s)
      out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out;
  }
  static EtcdOptions Options() {
    EtcdOptions options;
    options.endpoints = {etcd_->endpoint()};
    options.ca_file = File("ca.pem");
    options.cert_file = File("client.pem");
    options.key_file = File("client.key");
    return options;
  }

  static EtcdServer* etcd_;
  static std::string* dir_;
};

EtcdServer* EtcdTlsTest::etcd_ = nullptr;
std::string* EtcdTlsTest::dir_ = nullptr;

TEST_F(EtcdTlsTest, ServesHttpsWithClientCertificates) {
  ASSERT_EQ(etcd_->endpoint().rfind("https://", 0), 0u) << etcd_->endpoint();
  ASSERT_OK_AND_ASSIGN(auto keys, NewEtcdClient(Options()));
  ASSERT_THAT(keys->Set("/tls/k", "secret", {}), IsOk());
  ASSERT_OK_AND_ASSIGN(Response got, keys->Get("/tls/k", {}));
  EXPECT_EQ(got.node.value, "secret");
}

TEST_F(EtcdTlsTest, MissingClientCertificateFailsClearly) {
  EtcdOptions options = Options();
  options.cert_file.clear();
  options.key_file.clear();
  ASSERT_OK_AND_ASSIGN(auto keys, NewEtcdClient(options));
  EXPECT_THAT(keys->Get("/tls/k", {}),
              StatusIs(absl::StatusCode::kUnavailable,
                       AllOf(HasSubstr("get \"/tls/k\""),
                             HasSubstr("no client certificate was offered"))));
}

TEST_F(EtcdTlsTest, UntrustedServerCertificateFailsClearly) {
  EtcdOptions options = Options();
  options.ca_file.clear();
  ASSERT_OK_AND_ASSIGN(auto keys, NewEtcdClient(options));
  EXPECT_THAT(keys->Get("/tls/k", {}), StatusIs(absl::StatusCode::kUnavailable,
                                                HasSubstr("certificate")));
}

}  // namespace
}  // namespace leasehold::registry
