#include "registry/open.h"

#include <string>
#include <variant>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::registry {
namespace {

using ::leasehold::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

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

TEST(RegistryUriTest, DefaultsWithoutOptions) {
  const EtcdOptions options = ParseEtcd("etcd://127.0.0.1:2379");
  const EtcdOptions defaults;
  EXPECT_EQ(options.request_timeout, defaults.request_timeout);
  EXPECT_EQ(options.dial_timeout, defaults.dial_timeout);
  EXPECT_EQ(options.auto_sync_interval, absl::ZeroDuration());
  EXPECT_FALSE(options.quorum_reads);
  EXPECT_EQ(options.watch_check_interval, absl::Seconds(5));
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
        BadUri{"etcd://a:1?username=x", "username and password go together"},
        BadUri{"etcd://a:1?cert-file=/c.pem", "cert-file and key-file"},
        BadUri{"etcd://a:1?ca-file=", "ca-file is empty"},
        BadUri{"etcd://a:1?password=%zz&username=u", "bad percent-escape"},
        BadUri{"etcd://a:1?password=%4&username=u", "bad percent-escape"},
        BadUri{"etcd://a:1?dial-timeout=1s&dial-timeout=2s", "given twice"}));

}  // namespace
}  // namespace leasehold::registry
