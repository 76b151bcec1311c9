// The etcd clients (v2 and v3) against a real etcd with auth switched on
// (credentials given directly, from a password file and from the
// environment; v3 tokens that etcd drops), and the v2 client against etcds
// that serve https: one requiring client certificates, one whose
// certificate names a host instead of the address it is reached at.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registry/errors.h"
#include "registry/etcd/etcd_client.h"
#include "registry/etcd_v3/etcd_v3_client.h"
#include "registry/open.h"
#include "tests/testing/etcd_auth.h"
#include "tests/testing/etcd_server.h"
#include "tests/testing/eventually.h"
#include "tests/testing/scoped_env.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/throwaway_ca.h"

namespace leasehold::registry {
namespace {

using ::leasehold::testing::EtcdServer;
using ::leasehold::testing::EtcdServerOptions;
using ::leasehold::testing::IsEtcdVersionWarning;
using ::leasehold::testing::IsOk;
using ::leasehold::testing::kAlicePassword;
using ::leasehold::testing::kRootPassword;
using ::leasehold::testing::ScopedEnv;
using ::leasehold::testing::StatusIs;
using ::leasehold::testing::ThrowawayCa;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// The client of `api` ("etcd" or "etcd3", see testing::EtcdApis()).
absl::StatusOr<std::unique_ptr<KeysApi>> NewClient(const std::string& api,
                                                   EtcdOptions options) {
  return api == "etcd3" ? NewEtcdV3Client(std::move(options))
                        : NewEtcdClient(std::move(options));
}

// Each case runs against the v2 client on an etcd with v2 auth and against
// the v3 client on an etcd serving v3 alone, with v3 auth.
class EtcdAuthTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::unique_ptr<EtcdServer>& server = servers_[GetParam()];
    if (server == nullptr) {
      auto started = testing::StartEtcdWithAuth(GetParam());
      ASSERT_THAT(started, IsOk());
      server = *std::move(started);
    }
    etcd_ = server.get();
  }
  static void TearDownTestSuite() { servers_.clear(); }

  absl::StatusOr<std::unique_ptr<KeysApi>> Client(
      const std::string& endpoint, const std::string& user = "",
      const std::string& password = "") {
    EtcdOptions options;
    options.endpoints = {endpoint};
    options.username = user;
    options.password = password;
    return NewClient(GetParam(), std::move(options));
  }

  // A file holding `text`, with permissions `mode`.
  static std::string WriteFile(const std::string& text, mode_t mode) {
    std::string name =
        ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(name.begin(), name.end(), '/', '-');
    const std::string path =
        absl::StrCat(::testing::TempDir(), "/password-", getpid(), "-", name);
    { std::ofstream(path, std::ios::trunc) << text; }
    chmod(path.c_str(), mode);
    return path;
  }

  // One server per API, started by the first case that needs it.
  static std::map<std::string, std::unique_ptr<EtcdServer>> servers_;
  EtcdServer* etcd_ = nullptr;
};

std::map<std::string, std::unique_ptr<EtcdServer>> EtcdAuthTest::servers_;

TEST_P(EtcdAuthTest, RightCredentialsWork) {
  ASSERT_OK_AND_ASSIGN(auto root,
                       Client(etcd_->endpoint(), "root", kRootPassword));
  EXPECT_THAT(root->Set("/anywhere/k", "v", {}), IsOk());
  ASSERT_OK_AND_ASSIGN(auto alice,
                       Client(etcd_->endpoint(), "alice", kAlicePassword));
  EXPECT_THAT(alice->Set("/app/k", "v", {}), IsOk());
  ASSERT_OK_AND_ASSIGN(Response got, alice->Get("/app/k", {}));
  EXPECT_EQ(got.node.value, "v");
}

TEST_P(EtcdAuthTest, WrongPasswordIsUnauthenticated) {
  const std::string wrong = "Not-Alices-Pw-9c2";
  ASSERT_OK_AND_ASSIGN(auto alice, Client(etcd_->endpoint(), "alice", wrong));
  absl::StatusOr<Response> r = alice->Get("/app/k", {});
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kUnauthenticated,
                          AllOf(HasSubstr("get \"/app/k\""),
                                HasSubstr("user \"alice\""),
                                HasSubstr("wrong username or password"),
                                Not(HasSubstr(wrong)))));
  if (GetParam() == "etcd") {
    ASSERT_TRUE(GetEtcdError(r.status()).has_value());
    EXPECT_EQ(GetEtcdError(r.status())->code, kEtcdUnauthorized);
  }
  ASSERT_OK_AND_ASSIGN(auto root, Client(etcd_->endpoint(), "root", "nope"));
  absl::StatusOr<Response> set = root->Set("/app/k", "v", {});
  EXPECT_THAT(set, StatusIs(absl::StatusCode::kUnauthenticated,
                            HasSubstr("user \"root\"")));
  EXPECT_FALSE(IsOutcomeUnknown(set.status()));
  EXPECT_THAT(
      alice->Watch("/app/k", {.deadline = absl::Now() + absl::Seconds(30)}),
      StatusIs(
          absl::StatusCode::kUnauthenticated,
          AllOf(HasSubstr("watch \"/app/k\""), HasSubstr("user \"alice\""))));
}

TEST_P(EtcdAuthTest, MissingCredentialsAreUnauthenticated) {
  ASSERT_OK_AND_ASSIGN(auto anonymous, Client(etcd_->endpoint()));
  EXPECT_THAT(anonymous->Get("/app/k", {}),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       HasSubstr("no username is set")));
}

TEST_P(EtcdAuthTest, KeyOutsideTheRoleIsPermissionDenied) {
  ASSERT_OK_AND_ASSIGN(auto alice,
                       Client(etcd_->endpoint(), "alice", kAlicePassword));
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

TEST_P(EtcdAuthTest, PasswordFileGivesThePassword) {
  std::vector<std::string> warnings;
  EtcdOptions options;
  options.endpoints = {etcd_->endpoint()};
  options.username = "alice";
  // The first line only; a CRLF line ending is not part of the password.
  options.password_file =
      WriteFile(absl::StrCat(kAlicePassword, "\r\nsecond line\n"), 0600);
  options.warn = [&](absl::string_view w) {
    if (!IsEtcdVersionWarning(w)) warnings.emplace_back(w);
  };
  ASSERT_OK_AND_ASSIGN(auto alice, NewClient(GetParam(), options));
  EXPECT_THAT(alice->Set("/app/from-file", "v", {}), IsOk());
  EXPECT_THAT(warnings, IsEmpty());

  // The same through a URI.
  ASSERT_OK_AND_ASSIGN(
      auto by_uri,
      Open(absl::StrCat(etcd_->uri(), "?username=alice&password-file=",
                        options.password_file)));
  EXPECT_THAT(by_uri->Get("/app/from-file", {}), IsOk());
}

TEST_P(EtcdAuthTest, PasswordFileOthersCanReadIsUsedWithAWarning) {
  std::vector<std::string> warnings;
  const std::string path = WriteFile(kAlicePassword, 0644);
  ASSERT_OK_AND_ASSIGN(
      auto alice,
      Open(absl::StrCat(etcd_->uri(), "?username=alice&password-file=", path),
           OpenOptions{.warn = [&](absl::string_view w) {
             if (!IsEtcdVersionWarning(w)) warnings.emplace_back(w);
           }}));
  EXPECT_THAT(alice->Set("/app/readable", "v", {}), IsOk());
  ASSERT_THAT(warnings, ElementsAre(AllOf(HasSubstr(path),
                                          HasSubstr("readable by group or "
                                                    "others (mode 0644)"))));
  EXPECT_THAT(warnings[0], Not(HasSubstr(kAlicePassword)));
}

TEST_P(EtcdAuthTest, BadPasswordFileIsInvalidArgumentNamingIt) {
  const std::string empty = WriteFile("\nsecond\n", 0600);
  EXPECT_THAT(
      Open(absl::StrCat(etcd_->uri(), "?username=alice&password-file=", empty)),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr(empty), HasSubstr("first line"))));
  EXPECT_THAT(
      Open(absl::StrCat(etcd_->uri(),
                        "?username=alice&password-file=/no/such/file")),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("/no/such/file"), HasSubstr("No such file"))));
}

TEST_P(EtcdAuthTest, EnvironmentGivesCredentialsToAUriWithout) {
  ScopedEnv user("LEASEHOLD_USERNAME", "alice");
  ScopedEnv password("LEASEHOLD_PASSWORD", kAlicePassword);
  ASSERT_OK_AND_ASSIGN(auto keys, Open(etcd_->uri()));
  EXPECT_THAT(keys->Set("/app/from-env", "v", {}), IsOk());
}

TEST_P(EtcdAuthTest, UriCredentialsWinOverTheEnvironment) {
  ScopedEnv user("LEASEHOLD_USERNAME", "root");
  ScopedEnv password("LEASEHOLD_PASSWORD", kRootPassword);
  // As root, /other would be writable; as the URI's alice it is not.
  ASSERT_OK_AND_ASSIGN(
      auto alice, Open(absl::StrCat(etcd_->uri(), "?username=alice&password=",
                                    kAlicePassword)));
  EXPECT_THAT(alice->Set("/app/uri-wins", "v", {}), IsOk());
  EXPECT_THAT(alice->Set("/other/uri-wins", "v", {}),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST_P(EtcdAuthTest, HalfTheEnvironmentIsInvalidArgument) {
  ScopedEnv user("LEASEHOLD_USERNAME", "alice");
  ScopedEnv password("LEASEHOLD_PASSWORD", nullptr);
  EXPECT_THAT(Open(etcd_->uri()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("LEASEHOLD_USERNAME is set but "
                                 "LEASEHOLD_PASSWORD is not")));
  // The in-memory registry takes no credentials and does not care.
  EXPECT_THAT(Open("mem:"), IsOk());
}

// Every operation a lease, lock or election needs, as a user whose role
// covers only /app: keys with a TTL (v3: leases), in-order keys, watches.
TEST_P(EtcdAuthTest, TtlKeysInOrderKeysAndWatchesWork) {
  ASSERT_OK_AND_ASSIGN(auto alice,
                       Client(etcd_->endpoint(), "alice", kAlicePassword));
  SetOptions create;
  create.prev_exist = false;
  create.ttl = absl::Seconds(30);
  ASSERT_OK_AND_ASSIGN(Response held, alice->Set("/app/lease", "me", create));
  SetOptions refresh;
  refresh.prev_index = held.node.modified_index;
  refresh.ttl = absl::Seconds(30);
  refresh.refresh = true;
  EXPECT_THAT(alice->Set("/app/lease", "", refresh), IsOk());
  ASSERT_OK_AND_ASSIGN(Response queued,
                       alice->CreateInOrder("/app/queue", "w", {}));
  ASSERT_OK_AND_ASSIGN(Response listed,
                       alice->Get("/app/queue", {.recursive = true}));
  ASSERT_EQ(listed.node.nodes.size(), 1u);
  EXPECT_EQ(listed.node.nodes[0].key, queued.node.key);
  absl::StatusOr<Response> event;
  std::thread watcher([&] {
    event = alice->Watch("/app/watched",
                         {.wait_index = queued.node.modified_index + 1,
                          .deadline = absl::Now() + absl::Seconds(60)});
  });
  ASSERT_OK_AND_ASSIGN(Response changed, alice->Set("/app/watched", "x", {}));
  watcher.join();
  ASSERT_THAT(event, IsOk());
  EXPECT_EQ(event->node.modified_index, changed.node.modified_index);
  EXPECT_THAT(alice->Delete("/app/lease", {}), IsOk());
}

// Credentials for a cluster that has no auth switched on do no harm.
TEST_P(EtcdAuthTest, CredentialsForAClusterWithoutAuthAreHarmless) {
  EtcdOptions options;
  options.endpoints = {testing::SharedEtcdFor(GetParam()).endpoint()};
  options.username = "alice";
  options.password = kAlicePassword;
  ASSERT_OK_AND_ASSIGN(auto keys, NewClient(GetParam(), options));
  EXPECT_THAT(keys->Set("/no-auth/k", "v", {}), IsOk());
  EXPECT_THAT(keys->Get("/no-auth/k", {}), IsOk());
}

INSTANTIATE_TEST_SUITE_P(Apis, EtcdAuthTest,
                         ::testing::ValuesIn(testing::EtcdApis()),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                           return p.param;
                         });

// etcd v3 tokens that etcd drops while a client holds them: the client
// authenticates anew and the request goes through, reads, writes and
// watches alike. Each case has an etcd of its own.
class EtcdV3TokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto started = testing::StartEtcdWithAuth("etcd3");
    ASSERT_THAT(started, IsOk());
    etcd_ = *std::move(started);
  }
  absl::StatusOr<std::unique_ptr<KeysApi>> Alice() {
    EtcdOptions options;
    options.endpoints = {etcd_->endpoint()};
    options.username = "alice";
    options.password = kAlicePassword;
    return NewEtcdV3Client(std::move(options));
  }

  std::unique_ptr<EtcdServer> etcd_;
};

// A password change drops every token of the user, whatever the password.
TEST_F(EtcdV3TokenTest, TokenDroppedByAnAuthChangeIsRenewed) {
  ASSERT_OK_AND_ASSIGN(auto reader, Alice());
  ASSERT_OK_AND_ASSIGN(auto writer, Alice());
  ASSERT_OK_AND_ASSIGN(auto watcher, Alice());
  ASSERT_OK_AND_ASSIGN(Response first, writer->Set("/app/k", "1", {}));
  ASSERT_THAT(reader->Get("/app/k", {}), IsOk());
  ASSERT_THAT(watcher->Get("/app/k", {}), IsOk());
  ASSERT_THAT(
      testing::ChangeEtcdV3Password(etcd_->endpoint(), "alice", kAlicePassword),
      IsOk());
  // A conditional write, which is never sent twice unless etcd said it
  // did not apply it.
  SetOptions guarded;
  guarded.prev_index = first.node.modified_index;
  ASSERT_OK_AND_ASSIGN(Response second, writer->Set("/app/k", "2", guarded));
  ASSERT_OK_AND_ASSIGN(Response read, reader->Get("/app/k", {}));
  EXPECT_EQ(read.node.value, "2");
  ASSERT_OK_AND_ASSIGN(
      Response event,
      watcher->Watch("/app/k", {.wait_index = second.node.modified_index,
                                .deadline = absl::Now() + absl::Seconds(30)}));
  EXPECT_EQ(event.node.value, "2");
}

// A restart forgets every token (etcd keeps them in memory).
TEST_F(EtcdV3TokenTest, TokensForgottenByARestartAreRenewed) {
  ASSERT_OK_AND_ASSIGN(auto keys, Alice());
  ASSERT_OK_AND_ASSIGN(Response first, keys->Set("/app/r", "1", {}));
  ASSERT_THAT(etcd_->Stop(), IsOk());
  ASSERT_THAT(etcd_->Restart(), IsOk());
  ASSERT_OK_AND_ASSIGN(
      Response event,
      keys->Watch("/app/r", {.wait_index = first.node.modified_index,
                             .deadline = absl::Now() + absl::Seconds(30)}));
  EXPECT_EQ(event.node.value, "1");
  EXPECT_THAT(keys->Set("/app/r", "2", {}), IsOk());
}

// Many threads whose token etcd dropped at once all go through.
TEST_F(EtcdV3TokenTest, ConcurrentRequestsShareTheRenewal) {
  ASSERT_OK_AND_ASSIGN(auto keys, Alice());
  ASSERT_THAT(keys->Set("/app/c", "v", {}), IsOk());
  ASSERT_THAT(
      testing::ChangeEtcdV3Password(etcd_->endpoint(), "alice", kAlicePassword),
      IsOk());
  std::vector<absl::Status> results(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] {
      results[i] = i % 2 == 0
                       ? keys->Get("/app/c", {}).status()
                       : keys->Set(absl::StrCat("/app/c", i), "v", {}).status();
    });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& s : results) EXPECT_THAT(s, IsOk());
}

// etcd's JWT tokens, each good for 1 s from its issue however often it is
// used: the client's token runs out between requests.
class EtcdV3TokenTtlTest : public EtcdV3TokenTest {
 protected:
  void SetUp() override {
    auto ca = ThrowawayCa::Create();
    ASSERT_THAT(ca, IsOk());
    ca_ = *std::move(ca);
    auto signer = ca_->Issue("jwt", "IP:127.0.0.1");
    ASSERT_THAT(signer, IsOk());
    EtcdServerOptions options;
    options.extra_args = {absl::StrCat(
        "--auth-token=jwt,pub-key=", signer->cert_file,
        ",priv-key=", signer->key_file, ",sign-method=RS256,ttl=1s")};
    auto started = testing::StartEtcdWithAuth("etcd3", options);
    ASSERT_THAT(started, IsOk());
    etcd_ = *std::move(started);
  }

  std::unique_ptr<ThrowawayCa> ca_;
};

TEST_F(EtcdV3TokenTtlTest, TokenThatRunsOutIsRenewed) {
  ASSERT_OK_AND_ASSIGN(auto keys, Alice());
  ASSERT_OK_AND_ASSIGN(Response first, keys->Set("/app/t", "1", {}));
  // A token issued after the client's runs out after it: once etcd refuses
  // this one, it refuses the client's too.
  ASSERT_OK_AND_ASSIGN(
      std::string later,
      testing::EtcdV3Token(etcd_->endpoint(), "alice", kAlicePassword));
  ASSERT_THAT(testing::ReadWithEtcdV3Token(etcd_->endpoint(), later), IsOk());
  ASSERT_TRUE(testing::Eventually(
      [&] {
        const absl::Status read =
            testing::ReadWithEtcdV3Token(etcd_->endpoint(), later);
        return absl::StrContains(read.message(), "invalid auth token");
      },
      std::chrono::seconds(30)));
  SetOptions guarded;
  guarded.prev_index = first.node.modified_index;
  ASSERT_OK_AND_ASSIGN(Response second, keys->Set("/app/t", "2", guarded));
  ASSERT_OK_AND_ASSIGN(Response read, keys->Get("/app/t", {}));
  EXPECT_EQ(read.node.value, "2");
}

// A throwaway CA and two https etcds: one for 127.0.0.1 requiring client
// certificates, one whose certificate names only the host "etcd.test".
class EtcdTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto ca = ThrowawayCa::Create();
    ASSERT_THAT(ca, IsOk());
    ca_ = ca->release();
    auto server = ca_->Issue("server", "IP:127.0.0.1");
    auto named = ca_->Issue("named", "DNS:etcd.test");
    auto client = ca_->Issue("client", "IP:127.0.0.1");
    ASSERT_THAT(server, IsOk());
    ASSERT_THAT(named, IsOk());
    ASSERT_THAT(client, IsOk());
    client_ = new ThrowawayCa::Issued(*client);
    EtcdServerOptions options;
    options.server_cert_file = server->cert_file;
    options.server_key_file = server->key_file;
    options.client_ca_file = ca_->ca_file();
    auto etcd = EtcdServer::Start(options);
    ASSERT_THAT(etcd, IsOk());
    etcd_ = etcd->release();
    EtcdServerOptions named_options;
    named_options.server_cert_file = named->cert_file;
    named_options.server_key_file = named->key_file;
    auto named_etcd = EtcdServer::Start(named_options);
    ASSERT_THAT(named_etcd, IsOk());
    named_etcd_ = named_etcd->release();
  }
  static void TearDownTestSuite() {
    delete etcd_;
    delete named_etcd_;
    delete client_;
    delete ca_;
    etcd_ = named_etcd_ = nullptr;
    client_ = nullptr;
    ca_ = nullptr;
  }
  static EtcdOptions Options() {
    EtcdOptions options;
    options.endpoints = {etcd_->endpoint()};
    options.ca_file = ca_->ca_file();
    options.cert_file = client_->cert_file;
    options.key_file = client_->key_file;
    return options;
  }
  static EtcdOptions NamedOptions() {
    EtcdOptions options;
    options.endpoints = {named_etcd_->endpoint()};
    options.ca_file = ca_->ca_file();
    return options;
  }

  static ThrowawayCa* ca_;
  static ThrowawayCa::Issued* client_;
  static EtcdServer* etcd_;
  static EtcdServer* named_etcd_;
};

ThrowawayCa* EtcdTlsTest::ca_ = nullptr;
ThrowawayCa::Issued* EtcdTlsTest::client_ = nullptr;
EtcdServer* EtcdTlsTest::etcd_ = nullptr;
EtcdServer* EtcdTlsTest::named_etcd_ = nullptr;

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

TEST_F(EtcdTlsTest, CertificateFromAnUnknownCaIsRefused) {
  ASSERT_OK_AND_ASSIGN(auto other_ca, ThrowawayCa::Create());
  EtcdOptions options = NamedOptions();
  options.ca_file = other_ca->ca_file();
  options.server_name = "etcd.test";
  ASSERT_OK_AND_ASSIGN(auto keys, NewEtcdClient(options));
  EXPECT_THAT(keys->Get("/tls/k", {}),
              StatusIs(absl::StatusCode::kUnavailable,
                       AllOf(HasSubstr("get \"/tls/k\""),
                             HasSubstr("SSL certificate problem: unable to "
                                       "get local issuer certificate"))));
}

TEST_F(EtcdTlsTest, CertificateForAnotherHostIsRefused) {
  ASSERT_OK_AND_ASSIGN(auto keys, NewEtcdClient(NamedOptions()));
  EXPECT_THAT(keys->Get("/tls/k", {}),
              StatusIs(absl::StatusCode::kUnavailable,
                       AllOf(HasSubstr("target host name '127.0.0.1'"),
                             HasSubstr("set server-name to that host"))));
  EtcdOptions other = NamedOptions();
  other.server_name = "other.test";
  ASSERT_OK_AND_ASSIGN(auto other_keys, NewEtcdClient(other));
  // The message names the address connected to and the name checked.
  EXPECT_THAT(other_keys->Get("/tls/k", {}),
              StatusIs(absl::StatusCode::kUnavailable,
                       AllOf(HasSubstr(named_etcd_->endpoint()),
                             HasSubstr("target host name 'other.test'"))));
}

TEST_F(EtcdTlsTest, ServerNameVerifiesTheCertificateAgainstThatHost) {
  EtcdOptions options = NamedOptions();
  options.server_name = "etcd.test";
  ASSERT_OK_AND_ASSIGN(auto keys, NewEtcdClient(options));
  EXPECT_THAT(keys->Set("/tls/named", "v", {}), IsOk());
  // The same through a URI; messages still name the address connected to.
  ASSERT_OK_AND_ASSIGN(
      auto by_uri,
      Open(absl::StrCat(named_etcd_->uri(), "?ca-file=", ca_->ca_file(),
                        "&server-name=etcd.test")));
  ASSERT_OK_AND_ASSIGN(Response got, by_uri->Get("/tls/named", {}));
  EXPECT_EQ(got.node.value, "v");
}

}  // namespace
}  // namespace leasehold::registry
