#include "registry/open.h"

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/scoped_env.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::registry {
namespace {

using ::leasehold::testing::IsOk;
using ::leasehold::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

EtcdOptions ParseEtcd(absl::string_view uri) {
  absl::StatusOr<RegistryConfig> config = ParseRegistryUri(uri);
  EXPECT_TRUE(config.ok()) << config.status();
  if (!config.ok() || !std::holds_alternative<EtcdOptions>(*config)) return {};
  return std::get<EtcdOptions>(*config);
}

TEST(RegistryUriTest, MemIsTheMemoryRegistry) {
  absl::StatusOr<RegistryConfig> config = ParseRegistryUri("mem:");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(std::holds_alternative<MemoryOptions>(*config));
}

TEST(RegistryUriTest, LocalIsTheMemoryRegistry) {
  absl::StatusOr<RegistryConfig> config = ParseRegistryUri("local:");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(std::holds_alternative<MemoryOptions>(*config));
  ASSERT_OK_AND_ASSIGN(auto keys, Open("local:"));
  ASSERT_THAT(keys->Set("/k", "v", {}), IsOk());
  ASSERT_OK_AND_ASSIGN(Response r, keys->Get("/k", {}));
  EXPECT_EQ(r.node.value, "v");
}

// go-lock's spelling: "etcd:" followed by the endpoints' URLs.
TEST(RegistryUriTest, EndpointUrlsAfterEtcdColon) {
  const EtcdOptions http = ParseEtcd(
      "etcd:http://10.0.0.1:2379,http://node-b:4001/,http://[::1]?"
      "request-timeout=1500ms");
  EXPECT_THAT(http.endpoints,
              ElementsAre("http://10.0.0.1:2379", "http://node-b:4001",
                          "http://[::1]:2379"));
  EXPECT_EQ(http.request_timeout, absl::Milliseconds(1500));
  EXPECT_THAT(
      ParseEtcd("etcd:https://a:1,https://b:2?server-name=etcd.test").endpoints,
      ElementsAre("https://a:1", "https://b:2"));
  EXPECT_THAT(ParseEtcd("etcd:http://a:1,http://b:2").endpoints,
              ParseEtcd("etcd://a:1,b:2").endpoints);
  EXPECT_THAT(ParseEtcd("etcd:https://a:1,https://b:2").endpoints,
              ParseEtcd("etcd+https://a:1,b:2").endpoints);
}

TEST(RegistryUriTest, GoLockClientOptions) {
  const EtcdOptions options = ParseEtcd(
      "etcd://a:1?dial-keep-alive-time=30s&dial-keep-alive-timeout=1m&"
      "reject-old-cluster=true");
  EXPECT_EQ(options.keepalive_time, absl::Seconds(30));
  EXPECT_EQ(options.keepalive_timeout, absl::Minutes(1));
  EXPECT_TRUE(options.reject_old_cluster);
  const EtcdOptions defaults = ParseEtcd("etcd://a:1");
  EXPECT_EQ(defaults.keepalive_time, absl::Seconds(10));
  EXPECT_EQ(defaults.keepalive_timeout, absl::Seconds(15));
  EXPECT_FALSE(defaults.reject_old_cluster);
}

TEST(RegistryUriTest, EndpointsKeepTheirOrder) {
  EXPECT_THAT(
      ParseEtcd("etcd://10.0.0.1:2379,node-b:4001,[::1]:2380").endpoints,
      ElementsAre("http://10.0.0.1:2379", "http://node-b:4001",
                  "http://[::1]:2380"));
}

TEST(RegistryUriTest, PortDefaultsTo2379) {
  EXPECT_THAT(ParseEtcd("etcd://localhost").endpoints,
              ElementsAre("http://localhost:2379"));
  EXPECT_THAT(ParseEtcd("etcd://[::1]/").endpoints,
              ElementsAre("http://[::1]:2379"));
}

TEST(RegistryUriTest, HttpsScheme) {
  EXPECT_THAT(ParseEtcd("etcd+https://a:1,b:2").endpoints,
              ElementsAre("https://a:1", "https://b:2"));
}

// etcd3:// and etcd3+https:// take etcd://'s grammar and options and name
// the v3 client.
TEST(RegistryUriTest, Etcd3SchemesNameTheV3ClientWithTheSameOptions) {
  absl::StatusOr<RegistryConfig> plain = ParseRegistryUri(
      "etcd3://a:1,[::1]?request-timeout=1500ms&watch-check-interval=0s");
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_TRUE(std::holds_alternative<EtcdV3Options>(*plain));
  const EtcdV3Options& v3 = std::get<EtcdV3Options>(*plain);
  EXPECT_THAT(v3.endpoints, ElementsAre("http://a:1", "http://[::1]:2379"));
  EXPECT_EQ(v3.request_timeout, absl::Milliseconds(1500));
  EXPECT_EQ(v3.watch_check_interval, absl::ZeroDuration());

  absl::StatusOr<RegistryConfig> tls = ParseRegistryUri(
      "etcd3+https://b:2?ca-file=/ca.pem&server-name=etcd.example");
  ASSERT_TRUE(tls.ok()) << tls.status();
  ASSERT_TRUE(std::holds_alternative<EtcdV3Options>(*tls));
  EXPECT_THAT(std::get<EtcdV3Options>(*tls).endpoints,
              ElementsAre("https://b:2"));
  EXPECT_EQ(std::get<EtcdV3Options>(*tls).server_name, "etcd.example");

  EXPECT_THAT(ParseRegistryUri("etcd3://a:1?bogus=1"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bogus")));
  EXPECT_THAT(ParseRegistryUri("etcd3://a:1?server-name=x"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseRegistryUri("etcd4://a:1"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("etcd3://host:port")));
}

// etcd3:// takes etcd://'s credential and auto-sync options, checked by the
// same rules.
TEST(RegistryUriTest, Etcd3TakesTheCredentialAndAutoSyncOptions) {
  EXPECT_THAT(Open("etcd3://127.0.0.1:1?username=u&password=p"), IsOk());
  EXPECT_THAT(Open("etcd3://127.0.0.1:1?auto-sync-interval=1m"), IsOk());
  EXPECT_THAT(Open("etcd3://127.0.0.1:1?password=p"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("needs a username")));
  EXPECT_THAT(Open("etcd3://127.0.0.1:1?username=u&password=p&"
                   "password-file=/etc/hostname"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("give one, not both")));
  EXPECT_THAT(
      Open("etcd3://127.0.0.1:1?username=u&password-file=/no/such/file"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("password_file \"/no/such/file\"")));
}

TEST(RegistryUriTest, AllOptions) {
  const EtcdOptions options = ParseEtcd(
      "etcd+https://127.0.0.1:2379?request-timeout=1500ms&dial-timeout=2s&"
      "auto-sync-interval=1m&quorum-reads=true&username=root&password=p%40ss%"
      "26word&"
      "ca-file=/etc/ca.pem&cert-file=/c%20d/cert.pem&key-file=/k.pem");
  EXPECT_EQ(options.request_timeout, absl::Milliseconds(1500));
  EXPECT_EQ(options.dial_timeout, absl::Seconds(2));
  EXPECT_EQ(options.auto_sync_interval, absl::Minutes(1));
  EXPECT_TRUE(options.quorum_reads);
  EXPECT_EQ(options.username, "root");
  EXPECT_EQ(options.password, "p@ss&word");
  EXPECT_EQ(options.ca_file, "/etc/ca.pem");
  EXPECT_EQ(options.cert_file, "/c d/cert.pem");
  EXPECT_EQ(options.key_file, "/k.pem");
}

TEST(RegistryUriTest, CredentialAndTlsOptions) {
  const EtcdOptions options = ParseEtcd(
      "etcd+https://10.0.0.1:2379?username=app&password-file=/run/pw&"
      "allow-insecure-auth=true&server-name=etcd.example.com");
  EXPECT_EQ(options.username, "app");
  EXPECT_EQ(options.password, "");
  EXPECT_EQ(options.password_file, "/run/pw");
  EXPECT_TRUE(options.allow_insecure_auth);
  EXPECT_EQ(options.server_name, "etcd.example.com");
  EXPECT_FALSE(ParseEtcd("etcd://a:1").allow_insecure_auth);
}

TEST(RegistryUriTest, DefaultsWithoutOptions) {
  const EtcdOptions options = ParseEtcd("etcd://127.0.0.1:2379");
  const EtcdOptions defaults;
  EXPECT_EQ(options.request_timeout, defaults.request_timeout);
  EXPECT_EQ(options.dial_timeout, defaults.dial_timeout);
  EXPECT_EQ(options.auto_sync_interval, absl::ZeroDuration());
  EXPECT_FALSE(options.quorum_reads);
  EXPECT_EQ(options.watch_check_interval, absl::Seconds(3));
}

TEST(RegistryUriTest, WatchCheckInterval) {
  EXPECT_EQ(
      ParseEtcd("etcd://a:1?watch-check-interval=750ms").watch_check_interval,
      absl::Milliseconds(750));
  EXPECT_EQ(
      ParseEtcd("etcd://a:1?watch-check-interval=0s").watch_check_interval,
      absl::ZeroDuration());
}

struct BadUri {
  const char* uri;
  const char* names;  // what the message must point at
};

class RegistryUriErrorTest : public ::testing::TestWithParam<BadUri> {};

TEST_P(RegistryUriErrorTest, IsInvalidArgumentNamingTheProblem) {
  EXPECT_THAT(ParseRegistryUri(GetParam().uri),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(GetParam().names)));
}

INSTANTIATE_TEST_SUITE_P(
    Bad, RegistryUriErrorTest,
    ::testing::Values(
        BadUri{"", "unknown scheme"},
        BadUri{"http://127.0.0.1:2379", "unknown scheme"},
        BadUri{"zk://a:1", "unknown scheme"},
        BadUri{"mem:foo", "mem: takes no"}, BadUri{"etcd://", "no endpoints"},
        BadUri{"etcd://?request-timeout=1s", "no endpoints"},
        BadUri{"etcd://a:1,,b:2", "empty endpoint"},
        BadUri{"etcd://a:", "empty port"},
        BadUri{"etcd://a:99999", "bad port \"99999\""},
        BadUri{"etcd://a:x1", "bad port"}, BadUri{"etcd://a:+1", "bad port"},
        BadUri{"etcd://:2379", "empty host"},
        BadUri{"etcd://[::1:2379", "bad IPv6"},
        BadUri{"etcd://a b:1", "bad host"},
        BadUri{"etcd://a:1/v2/keys", "path"}, BadUri{"etcd://u:p@a:1", "user@"},
        BadUri{"etcd://a:1?timeout=1s", "unknown option \"timeout\""},
        BadUri{"etcd://a:1?request-timeout=fast", "request-timeout=\"fast\""},
        BadUri{"etcd://a:1?request-timeout=0s",
               "request-timeout must be positive"},
        BadUri{"etcd://a:1?dial-timeout=-1s", "dial-timeout=\"-1s\""},
        BadUri{"etcd://a:1?auto-sync-interval=inf", "auto-sync-interval"},
        BadUri{"etcd://a:1?watch-check-interval=soon", "watch-check-interval"},
        BadUri{"etcd://a:1?quorum-reads=maybe", "quorum-reads"},
        BadUri{"etcd://a:1?username", "has no value"},
        BadUri{"etcd://a:1?username=x", "username needs a password"},
        BadUri{"etcd://a:1?password=x", "needs a username"},
        BadUri{"etcd://a:1?password-file=/p", "needs a username"},
        BadUri{"etcd://a:1?username=u&password=x&password-file=/p",
               "password and password-file: give one"},
        BadUri{"etcd://a:1?allow-insecure-auth=yes please",
               "allow-insecure-auth=\"yes please\" is not true/false"},
        BadUri{"etcd://a:1?server-name=etcd.test",
               "server-name applies to etcd+https:// only"},
        BadUri{"etcd://a:1?cert-file=/c.pem", "cert-file and key-file"},
        BadUri{"etcd://a:1?ca-file=", "ca-file is empty"},
        BadUri{"etcd://a:1?password=%zz&username=u",
               "option password has a bad percent-escape"},
        BadUri{"etcd://a:1?password=%4&username=u", "bad percent-escape"},
        BadUri{"etcd://a:1?dial-timeout=1s&dial-timeout=2s", "given twice"},
        BadUri{"local:x", "local: takes no host or options"},
        BadUri{"local", "unknown scheme"}, BadUri{"etcd:", "no endpoints"},
        BadUri{"etcd:?request-timeout=1s", "no endpoints"},
        BadUri{"etcd:a:2379", "endpoint \"a:2379\" needs http:// or https://"},
        BadUri{"etcd:http://a:1,b:2", "endpoint \"b:2\" needs http://"},
        BadUri{"etcd:http://a:1,,http://b:2", "endpoint \"\" needs"},
        BadUri{"etcd:http://a:1,https://b:2",
               "mixed schemes http:// and https://"},
        BadUri{"etcd:https://a:1,http://b:2",
               "mixed schemes https:// and http://"},
        BadUri{"etcd:ftp://a:1", "needs http:// or https://"},
        BadUri{"etcd:http://a:1/v2/keys", "path"},
        BadUri{"etcd:http://u:p@a:1", "user@"},
        BadUri{"etcd:http://a:99999", "bad port \"99999\""},
        BadUri{"etcd:http://a:1?server-name=etcd.test",
               "server-name applies to etcd+https:// only"},
        BadUri{"etcd://a:1?dial-keep-alive-time=500ms",
               "dial-keep-alive-time must be between 1s and 9h"},
        BadUri{"etcd://a:1?dial-keep-alive-timeout=10h",
               "dial-keep-alive-timeout must be between 1s and 9h"},
        BadUri{"etcd://a:1?dial-keep-alive-time=often",
               "dial-keep-alive-time=\"often\""},
        BadUri{"etcd://a:1?reject-old-cluster=perhaps",
               "reject-old-cluster=\"perhaps\" is not true/false"}));

TEST(RedactUriTest, HidesPasswordsAndNothingElse) {
  EXPECT_EQ(RedactUri("etcd://a:1?username=u&password=s3cr3t&bogus=1"),
            "etcd://a:1?username=u&password=***&bogus=1");
  EXPECT_EQ(RedactUri("etcd://a:1,b:2?password=s3cr3t"),
            "etcd://a:1,b:2?password=***");
  EXPECT_EQ(RedactUri("etcd://a:1?password="), "etcd://a:1?password=***");
  EXPECT_EQ(RedactUri("etcd://a:1?password-file=/run/pw&ca-file=/ca.pem"),
            "etcd://a:1?password-file=/run/pw&ca-file=/ca.pem");
  EXPECT_EQ(RedactUri("etcd://a:1"), "etcd://a:1");
  EXPECT_EQ(RedactUri("mem:"), "mem:");
  EXPECT_EQ(RedactUri(""), "");
}

TEST(RedactUriTest, HidesUserInfoPasswords) {
  EXPECT_EQ(RedactUri("etcd://u:s3cr3t@a:1?x=1"), "etcd://u:***@a:1?x=1");
  EXPECT_EQ(RedactUri("http://u:p@ss@a:1/v2/keys/k"),
            "http://u:***@a:1/v2/keys/k");
  EXPECT_EQ(RedactUri("http://u@a:1"), "http://u@a:1");
  EXPECT_EQ(RedactUri("http://a:1/k@x"), "http://a:1/k@x");
  // Every endpoint of a list, with a scheme of its own or none.
  EXPECT_EQ(RedactUri("etcd:http://a:1,https://u:s3cr3t@b:2,c:3?x=1"),
            "etcd:http://a:1,https://u:***@b:2,c:3?x=1");
  EXPECT_EQ(RedactUri("etcd:u:s3cr3t@b:2,v:s3cr3t@c"),
            "etcd:u:***@b:2,v:***@c");
  EXPECT_EQ(RedactUri("etcd://a:1,u:s3cr3t@b:2/x@y"),
            "etcd://a:1,u:***@b:2/x@y");
}

TEST(RedactUriTest, HidesMisspeltAndMalformedPasswords) {
  for (const char* uri :
       {"etcd://a:1?Password=s3cr3t", "etcd://a:1?PASSWD=s3cr3t",
        "etcd://a:1?pass=s3cr3t", "etcd://a:1?pass%77ord=s3cr3t",
        "etcd://a:1?%70assword=s3cr3t", "etcd://a:1?x=1?password=s3cr3t",
        "etcd://a:1?x=1;password=s3cr3t",
        "etcd://a:1?password=s3cr3t&password=s3cr3t",
        "etcd://a:1?password=%zzs3cr3t"}) {
    const std::string redacted = RedactUri(uri);
    EXPECT_THAT(redacted, Not(HasSubstr("s3cr3t"))) << uri;
    EXPECT_THAT(redacted, HasSubstr("=***")) << uri;
  }
}

// Every way a URI can be refused, with a password in it: the message shows
// the URI redacted and never the password.
class SecretUriErrorTest : public ::testing::TestWithParam<const char*> {};

TEST_P(SecretUriErrorTest, MessageNeverShowsThePassword) {
  absl::StatusOr<RegistryConfig> config = ParseRegistryUri(GetParam());
  ASSERT_THAT(config, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(config.status().message(), Not(HasSubstr("S3cr3t")));
  EXPECT_THAT(config.status().message(), HasSubstr("***"));
  EXPECT_THAT(Open(GetParam()), StatusIs(absl::StatusCode::kInvalidArgument,
                                         Not(HasSubstr("S3cr3t"))));
}

INSTANTIATE_TEST_SUITE_P(
    Bad, SecretUriErrorTest,
    ::testing::Values(
        "etcd://127.0.0.1:1?username=u&password=S3cr3t&bogus=1",
        "etcd://127.0.0.1:1?password=S3cr3t",
        "etcd://127.0.0.1:1?username=u&password=S3cr3t&password=S3cr3t",
        "etcd://127.0.0.1:1?username=u&password=S3cr3t&password-file=/p",
        "etcd://127.0.0.1:1?username=u&password=S3cr3t%zz",
        "etcd://127.0.0.1:1?username=u&password=S3cr3t&request-timeout=x",
        "etcd://127.0.0.1:1?username=u&password=S3cr3t&server-name=h",
        "etcd://127.0.0.1:99999?username=u&password=S3cr3t",
        "etcd://bad host:1?username=u&password=S3cr3t",
        "etcd://127.0.0.1:1/v2?username=u&password=S3cr3t",
        "etcd://u:S3cr3t@127.0.0.1:1", "zk://127.0.0.1:1?password=S3cr3t",
        "etcd:u:S3cr3t@127.0.0.1:1", "etcd:http://u:S3cr3t@127.0.0.1:1",
        "etcd:http://a:1,u:S3cr3t@127.0.0.1:1",
        "etcd:http://a:1,https://u:S3cr3t@127.0.0.1:1",
        "etcd://127.0.0.1:1?username=u&Password=S3cr3t",
        "etcd://127.0.0.1:1?username=u&passwd=S3cr3t",
        "etcd://127.0.0.1:1?username=u&password=S3cr3t&cert-file=/c"));

// Opening never connects, so a non-loopback host is safe to name here.
class ClearTextWarningTest : public ::testing::Test {
 protected:
  std::vector<std::string> OpenAndWarnings(const std::string& uri) {
    std::vector<std::string> warnings;
    absl::StatusOr<std::unique_ptr<KeysApi>> keys =
        Open(uri, OpenOptions{.warn = [&](absl::string_view w) {
               warnings.emplace_back(w);
             }});
    EXPECT_TRUE(keys.ok()) << keys.status();
    return warnings;
  }
};

TEST_F(ClearTextWarningTest, CredentialsOverHttpToARemoteHostWarnOnce) {
  const std::vector<std::string> warnings = OpenAndWarnings(
      "etcd://etcd-a.example.com:2379,127.0.0.1:2379,10.1.2.3?username=app&"
      "password=S3cr3t");
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(
      warnings[0],
      AllOf(HasSubstr("user \"app\""), HasSubstr("clear text"),
            HasSubstr("http://etcd-a.example.com:2379"),
            HasSubstr("http://10.1.2.3:2379"), Not(HasSubstr("127.0.0.1")),
            HasSubstr("etcd+https://"), HasSubstr("allow-insecure-auth=true"),
            Not(HasSubstr("S3cr3t"))));
}

TEST_F(ClearTextWarningTest, QuietWhenAllowedEncryptedLoopbackOrAnonymous) {
  for (const char* uri : {
           "etcd://etcd.example.com:2379?username=app&password=p&"
           "allow-insecure-auth=true",
           "etcd+https://etcd.example.com:2379?username=app&password=p",
           "etcd://127.0.0.1:2379,127.8.9.10:1,localhost,LocalHost:2,[::1]:3,"
           "[::ffff:127.0.0.1]:4?username=app&password=p",
           "etcd://etcd.example.com:2379",
       }) {
    EXPECT_THAT(OpenAndWarnings(uri), IsEmpty()) << uri;
  }
}

TEST_F(ClearTextWarningTest, CredentialsFromTheEnvironmentWarnToo) {
  testing::ScopedEnv user("LEASEHOLD_USERNAME", "app");
  testing::ScopedEnv password("LEASEHOLD_PASSWORD", "S3cr3t");
  EXPECT_EQ(OpenAndWarnings("etcd://etcd.example.com:2379").size(), 1u);
  EXPECT_THAT(OpenAndWarnings("etcd://127.0.0.1:2379"), IsEmpty());
}

TEST_F(ClearTextWarningTest, LoopbackLookalikesStillWarn) {
  for (const char* uri : {
           "etcd://128.0.0.1?username=app&password=p",
           "etcd://localhost.example.com?username=app&password=p",
           "etcd://127.0.0.1.example.com?username=app&password=p",
           "etcd://[::2]?username=app&password=p",
           "etcd://0.0.0.0?username=app&password=p",
       }) {
    EXPECT_EQ(OpenAndWarnings(uri).size(), 1u) << uri;
  }
}

}  // namespace
}  // namespace leasehold::registry
