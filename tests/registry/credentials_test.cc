// The etcd client's secrecy parts without an etcd: the password file, the
// loopback test behind the clear-text warning, and the warning for
// endpoints that auto-sync learns.
#include "registry/etcd/credentials.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registry/clock.h"
#include "registry/etcd/etcd_client.h"
#include "registry/etcd_v3/etcd_v3_client.h"
#include "tests/testing/loopback_net.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/watched_clock.h"

namespace leasehold::registry::etcd_internal {
namespace {

using ::leasehold::testing::CannedHttpServer;
using ::leasehold::testing::HttpAnswer;
using ::leasehold::testing::IsOk;
using ::leasehold::testing::StatusIs;
using ::leasehold::testing::WatchedClock;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

class PasswordFileTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& text, mode_t mode) {
    const std::string path =
        absl::StrCat(::testing::TempDir(), "/pw-", getpid(), "-", files_++);
    { std::ofstream(path, std::ios::trunc | std::ios::binary) << text; }
    chmod(path.c_str(), mode);
    return path;
  }
  absl::StatusOr<std::string> Read(const std::string& path) {
    return ReadPasswordFile(
        path, [this](absl::string_view w) { warnings_.emplace_back(w); });
  }

  int files_ = 0;
  std::vector<std::string> warnings_;
};

TEST_F(PasswordFileTest, FirstLineWithoutItsEnding) {
  EXPECT_THAT(Read(Write("s3cr3t\nnext\n", 0600)), IsOk());
  EXPECT_EQ(*Read(Write("s3cr3t\nnext\n", 0600)), "s3cr3t");
  EXPECT_EQ(*Read(Write("s3cr3t\r\n", 0600)), "s3cr3t");
  EXPECT_EQ(*Read(Write("no newline at all", 0400)), "no newline at all");
  EXPECT_EQ(*Read(Write(" spaces kept ", 0600)), " spaces kept ");
  EXPECT_THAT(warnings_, IsEmpty());
}

TEST_F(PasswordFileTest, ReadableByOthersWarnsWithoutTheContents) {
  const std::string group = Write("s3cr3t\n", 0640);
  const std::string world = Write("s3cr3t\n", 0604);
  EXPECT_EQ(*Read(group), "s3cr3t");
  EXPECT_EQ(*Read(world), "s3cr3t");
  EXPECT_THAT(
      warnings_,
      ElementsAre(AllOf(HasSubstr(group), HasSubstr("mode 0640"),
                        HasSubstr("chmod 600"), Not(HasSubstr("s3cr3t"))),
                  AllOf(HasSubstr(world), HasSubstr("mode 0604"))));
}

TEST_F(PasswordFileTest, UnreadableOrEmptyIsInvalidArgument) {
  EXPECT_THAT(Read("/no/such/dir/pw"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("password_file \"/no/such/dir/pw\""),
                             HasSubstr("No such file"))));
  EXPECT_THAT(Read(Write("", 0600)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("first line (the password) is empty")));
  EXPECT_THAT(
      Read(Write("\ns3cr3t\n", 0600)),
      StatusIs(absl::StatusCode::kInvalidArgument, Not(HasSubstr("s3cr3t"))));
  EXPECT_THAT(Read(::testing::TempDir()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("Is a directory")));
}

TEST(LoopbackTest, OnlyThisMachinesLoopbackNames) {
  for (const char* host :
       {"127.0.0.1", "127.255.0.9", "localhost", "LOCALHOST", "[::1]", "::1",
        "[0:0:0:0:0:0:0:1]", "[::ffff:127.0.0.2]"}) {
    EXPECT_TRUE(IsLoopbackHost(host)) << host;
  }
  for (const char* host : {"128.0.0.1", "10.0.0.1", "0.0.0.0", "[::]", "[::2]",
                           "[::1", "::ffff:10.0.0.1", "localhost.example.com",
                           "127.0.0.1.example.com", "example.com", ""}) {
    EXPECT_FALSE(IsLoopbackHost(host)) << host;
  }
}

// Polls `done` until it holds or 30 s of real time pass.
bool Eventually(const std::function<bool()>& done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

// A member list naming a host that is not loopback arrives by auto-sync
// (v2's /v2/members, v3's /v3/cluster/member/list: one body serves both):
// the warning comes then. The test never lets the client send anything to
// that host: the clock moves once, after the sync thread has begun its
// first wait, so exactly one sync runs (against the loopback server), and
// the client is destroyed before time moves again.
class ClearTextSyncTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ClearTextSyncTest, EndpointsLearnedByAutoSyncAreChecked) {
  ASSERT_OK_AND_ASSIGN(
      auto server, CannedHttpServer::Start([](absl::string_view) {
        return HttpAnswer(
            200,
            R"({"header":{"cluster_id":"1","member_id":"2","raft_term":"3"},)"
            R"("members":[{"id":"1","name":"a","peerURLs":[],)"
            R"("clientURLs":["http://192.0.2.7:2379"]}]})");
      }));
  const bool v3 = GetParam() == "etcd3";
  WatchedClock clock;
  std::mutex mu;
  std::vector<std::string> warnings;
  EtcdOptions options;
  options.endpoints = {server->endpoint()};
  options.username = "app";
  options.password = "S3cr3t";
  options.auto_sync_interval = absl::Seconds(10);
  options.clock = &clock;
  options.warn = [&](absl::string_view w) {
    std::lock_guard<std::mutex> lock(mu);
    warnings.emplace_back(w);
  };
  ASSERT_OK_AND_ASSIGN(auto keys,
                       v3 ? NewEtcdV3Client(options) : NewEtcdClient(options));
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_THAT(warnings, IsEmpty());  // loopback so far
  }
  ASSERT_TRUE(Eventually([&] { return clock.waits() > 0; }));
  clock.Advance(absl::Seconds(10));
  EXPECT_TRUE(Eventually([&] {
    std::lock_guard<std::mutex> lock(mu);
    return !warnings.empty();
  }));
  keys.reset();
  ASSERT_THAT(warnings, ElementsAre(AllOf(HasSubstr("http://192.0.2.7:2379"),
                                          Not(HasSubstr("S3cr3t")))));
  // etcd3:// reads the version when it opens (no credentials go with it).
  if (v3) {
    EXPECT_THAT(server->requests(),
                ElementsAre(HasSubstr("GET /version HTTP/1.1"),
                            HasSubstr("POST /v3/cluster/member/list")));
  } else {
    EXPECT_THAT(server->requests(),
                ElementsAre(HasSubstr("GET /v2/members HTTP/1.1")));
  }
}

INSTANTIATE_TEST_SUITE_P(Apis, ClearTextSyncTest,
                         ::testing::Values("etcd", "etcd3"),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                           return p.param;
                         });

// Options that would bypass or contradict the credential rules are refused
// before anything is sent, without showing the password.
TEST(EtcdOptionsTest, CredentialMistakesAreInvalidArgument) {
  EtcdOptions in_url;
  in_url.endpoints = {"http://u:S3cr3t@127.0.0.1:2379"};
  EXPECT_THAT(NewEtcdClient(in_url),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("http://u:***@127.0.0.1:2379"),
                             HasSubstr("user@ is not allowed"),
                             Not(HasSubstr("S3cr3t")))));
  EtcdOptions both;
  both.endpoints = {"http://127.0.0.1:2379"};
  both.username = "u";
  both.password = "S3cr3t";
  both.password_file = "/run/pw";
  EXPECT_THAT(NewEtcdClient(both),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("password and password_file")));
  EtcdOptions no_user;
  no_user.endpoints = {"http://127.0.0.1:2379"};
  no_user.password_file = "/run/pw";
  EXPECT_THAT(NewEtcdClient(no_user),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("password_file: given without a username")));
  EtcdOptions plain_named;
  plain_named.endpoints = {"http://127.0.0.1:2379"};
  plain_named.server_name = "etcd.test";
  EXPECT_THAT(NewEtcdClient(plain_named),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("server_name: applies to https://")));
}

}  // namespace
}  // namespace leasehold::registry::etcd_internal
