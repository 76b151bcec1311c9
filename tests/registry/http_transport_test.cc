// The HTTP transport and the etcd client's request logic against local fake
// servers: escaping, keep-alive, failover, lost answers, long polls.
#include "registry/etcd/http_transport.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registry/errors.h"
#include "registry/etcd/etcd_client.h"
#include "registry/etcd_v3/etcd_v3_client.h"
#include "registry/open.h"
#include "tests/testing/etcd_server.h"
#include "tests/testing/loopback_net.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::registry::etcd_internal {
namespace {

using ::leasehold::testing::CannedHttpServer;
using ::leasehold::testing::FreePort;
using ::leasehold::testing::HttpAnswer;
using ::leasehold::testing::IsOk;
using ::leasehold::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

constexpr char kSetBody[] =
    R"({"action":"set","node":{"key":"/k","value":"v","modifiedIndex":5,"createdIndex":5}})";

std::string Ok(absl::string_view body = kSetBody) {
  return HttpAnswer(200, body, {"X-Etcd-Index: 5"});
}

// Headers of an answer whose body never comes: a long poll that waits.
std::string Hanging() {
  return "HTTP/1.1 200 OK\r\nX-Etcd-Index: 5\r\nContent-Length: 100\r\n\r\n";
}

std::unique_ptr<CannedHttpServer> Serve(CannedHttpServer::Responder r) {
  auto server = CannedHttpServer::Start(std::move(r));
  EXPECT_THAT(server, IsOk());
  return server.ok() ? *std::move(server) : nullptr;
}

std::string DeadEndpoint() {
  return absl::StrCat("http://127.0.0.1:", FreePort());
}

TEST(PercentEncodingTest, EveryByteRoundTrips) {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  const std::string encoded = PercentEncode(all);
  for (char c : encoded) {
    EXPECT_TRUE(absl::ascii_isalnum(c) || absl::StrContains("-._~%", c))
        << "unescaped byte " << static_cast<int>(c);
  }
  EXPECT_EQ(PercentDecode(encoded), all);
}

TEST(PercentEncodingTest, EscapesTheCharactersThatBreakUrlsAndForms) {
  EXPECT_EQ(PercentEncode("a b?c#d%e&f+g=h/i"),
            "a%20b%3Fc%23d%25e%26f%2Bg%3Dh%2Fi");
  EXPECT_EQ(PercentEncode("\xc3\xa9\n"), "%C3%A9%0A");
  EXPECT_EQ(PercentEncode("Az09-._~"), "Az09-._~");
  EXPECT_EQ(PercentDecode("a+b%20c"), "a b c");
  EXPECT_EQ(PercentDecode("%zz"), std::nullopt);
  EXPECT_EQ(PercentDecode("abc%4"), std::nullopt);
}

TEST(HttpTransportTest, ReturnsStatusHeadersAndBodyOfAnyAnswer) {
  auto server = Serve([](absl::string_view) {
    return HttpAnswer(404, R"({"errorCode":100})", {"X-Etcd-Index: 42"});
  });
  HttpTransport transport({});
  HttpResult r =
      transport.Send(server->endpoint(), {"GET", "/v2/keys/x", "", true});
  ASSERT_THAT(r.status, IsOk());
  EXPECT_EQ(r.response.status, 404);
  EXPECT_EQ(r.response.Header("x-etcd-index"), "42");
  EXPECT_EQ(r.response.body, R"({"errorCode":100})");
}

TEST(HttpTransportTest, HeaderNamesIgnoreCaseAndTheLastRepeatWins) {
  auto server = Serve([](absl::string_view) {
    return HttpAnswer(200, kSetBody,
                      {"X-Etcd-Index: 41", "x-etcd-index:  42 "});
  });
  HttpTransport transport({});
  HttpResult r =
      transport.Send(server->endpoint(), {"GET", "/v2/keys/x", "", true});
  ASSERT_THAT(r.status, IsOk());
  EXPECT_EQ(r.response.Header("X-ETCD-INDEX"), "42");
  EXPECT_EQ(r.response.Header("x-etcd-cluster"), std::nullopt);
}

TEST(HttpTransportTest, ReusesOneConnectionForSequentialRequests) {
  auto server = Serve([](absl::string_view) { return Ok(); });
  HttpTransport transport({});
  for (int i = 0; i < 20; ++i) {
    HttpRequest put{"PUT", "/v2/keys/k", "value=" + std::to_string(i), false};
    ASSERT_THAT(transport.Send(server->endpoint(), put).status, IsOk());
  }
  EXPECT_EQ(server->connections_accepted(), 1);
  EXPECT_EQ(transport.connections_opened(), 1);
}

TEST(HttpTransportTest, SendsFormBodyAndBasicAuth) {
  auto server = Serve([](absl::string_view) { return Ok(); });
  HttpTransportOptions options;
  options.username = "alice";
  options.password = "pw";
  HttpTransport transport(options);
  ASSERT_THAT(transport
                  .Send(server->endpoint(),
                        {"PUT", "/v2/keys/a%20b", "value=x%26y", false})
                  .status,
              IsOk());
  ASSERT_THAT(server->requests(), SizeIs(1));
  const std::string request = server->requests()[0];
  EXPECT_TRUE(absl::StartsWith(request, "PUT /v2/keys/a%20b HTTP/1.1\r\n"));
  EXPECT_THAT(request, HasSubstr("Authorization: Basic YWxpY2U6cHc="));
  EXPECT_THAT(request,
              HasSubstr("Content-Type: application/x-www-form-urlencoded"));
  EXPECT_TRUE(absl::EndsWith(request, "\r\n\r\nvalue=x%26y"));
}

TEST(HttpTransportTest, RefusedConnectionWasCertainlyNotSent) {
  HttpTransport transport({});
  HttpResult r =
      transport.Send(DeadEndpoint(), {"PUT", "/v2/keys/k", "value=1", false});
  EXPECT_THAT(r.status, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_FALSE(r.maybe_sent);
}

TEST(HttpTransportTest, LostAnswerOfAWriteIsNotResentOnAFreshConnection) {
  std::atomic<int> n{0};
  // Answers the first request, then closes the kept-alive connection on the
  // second without answering: libcurl would normally re-send it.
  auto server = Serve([&](absl::string_view) {
    return n.fetch_add(1) == 1 ? std::string() : Ok();
  });
  HttpTransport transport({});
  ASSERT_THAT(
      transport.Send(server->endpoint(), {"GET", "/v2/keys/k", "", true})
          .status,
      IsOk());
  HttpResult r = transport.Send(
      server->endpoint(), {"PUT", "/v2/keys/k", "value=1&prevIndex=5", false});
  EXPECT_THAT(r.status, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(r.maybe_sent);
  EXPECT_THAT(server->requests(), SizeIs(2)) << "the write was sent twice";
}

TEST(HttpTransportTest, LostAnswerOfAReadIsRetriedByLibcurl) {
  std::atomic<int> n{0};
  auto server = Serve([&](absl::string_view) {
    return n.fetch_add(1) == 1 ? std::string() : Ok();
  });
  HttpTransport transport({});
  ASSERT_THAT(
      transport.Send(server->endpoint(), {"GET", "/v2/keys/k", "", true})
          .status,
      IsOk());
  EXPECT_THAT(
      transport.Send(server->endpoint(), {"GET", "/v2/keys/k", "", true})
          .status,
      IsOk());
}

// A reply that is not HTTP/1.x comes from the server, not from our
// configuration: kUnavailable (try another member), never kInvalidArgument.
TEST(HttpTransportTest, Http09ReplyIsUnavailableNotInvalidArgument) {
  auto server = Serve([](absl::string_view) {
    return std::string(R"({"action":"get","node":{}})");
  });
  HttpTransport transport({});
  HttpResult r =
      transport.Send(server->endpoint(), {"GET", "/v2/keys/k", "", true});
  EXPECT_THAT(r.status,
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("HTTP/0.9")));
}

// The keepalive settings of each of this process's TCP connections to
// `port`, read back from the sockets.
struct SocketKeepalive {
  int on = 0;
  int idle = 0;
  int interval = 0;
  int count = 0;
};
std::vector<SocketKeepalive> KeepaliveOfConnectionsTo(int port) {
  std::vector<SocketKeepalive> out;
  for (int fd = 3; fd < 1024; ++fd) {
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0 ||
        peer.sin_family != AF_INET || ntohs(peer.sin_port) != port) {
      continue;
    }
    SocketKeepalive k;
    socklen_t size = sizeof(int);
    getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &k.on, &size);
    getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &k.idle, &size);
    getsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &k.interval, &size);
    getsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &k.count, &size);
    out.push_back(k);
  }
  return out;
}

// Waits until this process has `n` connections to `port`.
std::vector<SocketKeepalive> WaitForConnectionsTo(int port, size_t n) {
  std::vector<SocketKeepalive> found;
  for (int attempt = 0; attempt < 1000; ++attempt) {
    found = KeepaliveOfConnectionsTo(port);
    if (found.size() >= n) break;
    RealClock()->SleepFor(absl::Milliseconds(10));
  }
  return found;
}

// Every connection, long polls included, has TCP keepalive with a short
// probe count, so a peer that vanished without a FIN is noticed.
TEST(HttpTransportTest, ConnectionsHaveTcpKeepalive) {
  auto server = Serve([](absl::string_view) { return Hanging(); });
  HttpTransport transport({});
  CancelToken cancel;
  std::thread poll([&] {
    transport.LongPoll(server->endpoint(),
                       {"GET", "/v2/keys/k?wait=true", "", true},
                       absl::InfiniteFuture(), *RealClock(), &cancel);
  });
  const std::vector<SocketKeepalive> found =
      WaitForConnectionsTo(server->port(), 1);
  cancel.Cancel();
  poll.join();
  ASSERT_THAT(found, SizeIs(1));
  EXPECT_EQ(found[0].on, 1);
  EXPECT_EQ(found[0].idle, 10);
  EXPECT_EQ(found[0].interval, 5);
  EXPECT_EQ(found[0].count, 3);
}

TEST(HttpTransportTest, KeepaliveTimeoutIsSpreadOverAtMostThreeProbes) {
  auto settings = [](absl::Duration time, absl::Duration timeout) {
    const TcpKeepalive k = KeepaliveSettings(time, timeout);
    return std::vector<int>{k.idle_seconds, k.interval_seconds, k.count};
  };
  EXPECT_THAT(settings(absl::Seconds(10), absl::Seconds(15)),
              ::testing::ElementsAre(10, 5, 3));
  EXPECT_THAT(settings(absl::Seconds(1), absl::Seconds(1)),
              ::testing::ElementsAre(1, 1, 1));
  EXPECT_THAT(settings(absl::Milliseconds(2500), absl::Seconds(2)),
              ::testing::ElementsAre(3, 1, 2));
  EXPECT_THAT(settings(absl::Seconds(7), absl::Seconds(10)),
              ::testing::ElementsAre(7, 3, 3));
  EXPECT_THAT(settings(absl::Hours(9), absl::Hours(9)),
              ::testing::ElementsAre(32400, 10800, 3));
}

// go-lock's dial-keep-alive-time and dial-keep-alive-timeout set the
// keepalive of every connection the client opens, watches included.
TEST(HttpTransportTest, KeepaliveUriOptionsReachEveryConnection) {
  auto server = Serve([](absl::string_view request) {
    return absl::StrContains(request, "wait=true") ? Hanging() : Ok();
  });
  ASSERT_OK_AND_ASSIGN(
      auto keys,
      Open(absl::StrCat("etcd://127.0.0.1:", server->port(),
                        "?dial-keep-alive-time=7s&dial-keep-alive-timeout=2s&"
                        "watch-check-interval=0s")));
  CancelToken cancel;
  std::thread watch([&] {
    WatchOptions options;
    options.cancel = &cancel;
    keys->Watch("/k", options).IgnoreError();
  });
  // While the watch holds its connection, a read needs one of its own.
  WaitForConnectionsTo(server->port(), 1);
  EXPECT_THAT(keys->Get("/k", {}), IsOk());
  const std::vector<SocketKeepalive> found =
      WaitForConnectionsTo(server->port(), 2);
  cancel.Cancel();
  watch.join();
  ASSERT_THAT(found, SizeIs(2));  // the watch's and the read's
  for (const SocketKeepalive& k : found) {
    EXPECT_EQ(k.on, 1);
    EXPECT_EQ(k.idle, 7);
    EXPECT_EQ(k.interval, 1);
    EXPECT_EQ(k.count, 2);
  }
}

// A long poll asks its check every interval while it waits; a failed check
// ends it with kUnavailable, while the answer keeps arriving meanwhile.
TEST(HttpTransportTest, LongPollEndsWhenItsLivenessCheckFails) {
  auto server = Serve([](absl::string_view) { return Hanging(); });
  HttpTransport transport({});
  std::atomic<int> checks{0};
  LivenessCheck check{absl::Milliseconds(50),
                      [&](const HttpResponse& so_far, const CancelToken&) {
                        EXPECT_EQ(so_far.status, 200);
                        EXPECT_EQ(so_far.Header("x-etcd-index"), "5");
                        return checks.fetch_add(1) < 2;
                      }};
  HttpResult r = transport.LongPoll(
      server->endpoint(), {"GET", "/v2/keys/k?wait=true", "", true},
      RealClock()->Now() + absl::Seconds(30), *RealClock(), nullptr, &check);
  EXPECT_THAT(r.status, StatusIs(absl::StatusCode::kUnavailable,
                                 HasSubstr("liveness check")));
  EXPECT_EQ(checks.load(), 3);
}

TEST(HttpTransportTest, RequestTimeoutIsDeadlineExceeded) {
  auto server = Serve([](absl::string_view) { return Hanging(); });
  HttpTransportOptions options;
  options.request_timeout = absl::Milliseconds(200);
  HttpTransport transport(options);
  HttpResult r =
      transport.Send(server->endpoint(), {"GET", "/v2/keys/k", "", true});
  EXPECT_THAT(r.status, StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_TRUE(r.maybe_sent);
}

TEST(HttpTransportTest, LongPollEndsAtItsDeadlineOnASimulatedClock) {
  auto server = Serve([](absl::string_view) { return Hanging(); });
  HttpTransport transport({});
  SimulatedClock clock;
  std::thread advance([&] {
    RealClock()->SleepFor(absl::Milliseconds(50));
    clock.Advance(absl::Minutes(2));
  });
  HttpResult r = transport.LongPoll(
      server->endpoint(), {"GET", "/v2/keys/k?wait=true", "", true},
      clock.Now() + absl::Minutes(1), clock, nullptr);
  advance.join();
  EXPECT_THAT(r.status, StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_EQ(r.response.Header("x-etcd-index"), "5");
}

TEST(HttpTransportTest, LongPollIsCancelledPromptly) {
  auto server = Serve([](absl::string_view) { return Hanging(); });
  HttpTransport transport({});
  CancelToken cancel;
  absl::Time cancelled_at;
  std::thread canceller([&] {
    RealClock()->SleepFor(absl::Milliseconds(150));
    cancelled_at = RealClock()->Now();
    cancel.Cancel();
  });
  HttpResult r = transport.LongPoll(
      server->endpoint(), {"GET", "/v2/keys/k?wait=true", "", true},
      absl::InfiniteFuture(), *RealClock(), &cancel);
  const absl::Time returned_at = RealClock()->Now();
  canceller.join();
  EXPECT_THAT(r.status, StatusIs(absl::StatusCode::kCancelled));
  // Well under curl's 1 s progress tick and the watch's own deadline, with
  // room for a sanitizer build on a loaded machine.
  EXPECT_LT(returned_at - cancelled_at, absl::Milliseconds(500));
}

// The etcd client's request logic, on canned answers.

absl::StatusOr<std::unique_ptr<KeysApi>> Client(
    std::vector<std::string> endpoints) {
  EtcdOptions options;
  options.endpoints = std::move(endpoints);
  options.request_timeout = absl::Seconds(2);
  return NewEtcdClient(std::move(options));
}

constexpr char kCreateBody[] =
    R"({"action":"create","node":{"key":"/k","value":"v","modifiedIndex":5,"createdIndex":5}})";

TEST(EtcdClientUnitTest, FailsOverWhenTheFirstEndpointRefusesConnections) {
  auto server = Serve([](absl::string_view request) {
    return Ok(absl::StartsWith(request, "PUT") ? kCreateBody : kSetBody);
  });
  ASSERT_OK_AND_ASSIGN(auto keys, Client({DeadEndpoint(), server->endpoint()}));
  EXPECT_THAT(keys->Get("/k", {}), IsOk());
  // A create was certainly not applied by a member that refused the
  // connection, so it too may move on.
  ASSERT_OK_AND_ASSIGN(auto writer,
                       Client({DeadEndpoint(), server->endpoint()}));
  SetOptions create;
  create.prev_exist = false;
  EXPECT_THAT(writer->Set("/k", "v", create), IsOk());
  EXPECT_THAT(server->requests(), SizeIs(2));
}

TEST(EtcdClientUnitTest, ReadsMoveOnAfterServerErrorsButWritesDoNot) {
  auto sick = Serve([](absl::string_view) {
    return HttpAnswer(500,
                      R"({"errorCode":300,"message":"Raft Internal Error",)"
                      R"("cause":"etcdserver: request timed out","index":0})");
  });
  auto healthy = Serve([](absl::string_view) { return Ok(); });
  ASSERT_OK_AND_ASSIGN(auto keys,
                       Client({sick->endpoint(), healthy->endpoint()}));
  absl::StatusOr<Response> read = keys->Get("/k", {});
  ASSERT_THAT(read, IsOk());
  EXPECT_EQ(read->etcd_index, 5u);

  ASSERT_OK_AND_ASSIGN(auto writer,
                       Client({sick->endpoint(), healthy->endpoint()}));
  SetOptions guarded;
  guarded.prev_index = 4;
  absl::StatusOr<Response> write = writer->Set("/k", "v", guarded);
  EXPECT_THAT(write, StatusIs(absl::StatusCode::kUnavailable,
                              HasSubstr("request timed out")));
  EXPECT_TRUE(IsOutcomeUnknown(write.status()));
  EXPECT_THAT(healthy->requests(), SizeIs(1)) << "the write was retried";
}

// etcd's answers that say a write was never proposed to raft: even a
// conditional write may go to the next member at once.
TEST(EtcdClientUnitTest, NeverProposedWritesMoveOnAtOnce) {
  for (const char* cause :
       {"etcdserver: no leader", "raft proposal dropped", "raft: stopped"}) {
    auto sick = Serve([cause](absl::string_view) {
      return HttpAnswer(500,
                        absl::StrCat(R"({"errorCode":300,"message":"Raft )"
                                     R"(Internal Error","cause":")",
                                     cause, R"(","index":0})"),
                        {"X-Etcd-Index: 0"});
    });
    auto healthy = Serve([](absl::string_view) { return Ok(); });
    ASSERT_OK_AND_ASSIGN(auto keys,
                         Client({sick->endpoint(), healthy->endpoint()}));
    SetOptions guarded;
    guarded.prev_index = 4;
    EXPECT_THAT(keys->Set("/k", "v", guarded), IsOk()) << cause;
    EXPECT_THAT(healthy->requests(), SizeIs(1)) << cause;
  }
}

// A proxy's HTML page is not etcd's answer: a read moves on to the next
// member (never "not found"), a write is outcome-unknown (the proxy may
// have passed it on) and the next call starts at the next member.
TEST(EtcdClientUnitTest, HtmlErrorPagesAreNotEtcdsAnswers) {
  for (int status : {404, 412, 429, 502}) {
    auto proxy = Serve([status](absl::string_view) {
      return absl::StrCat("HTTP/1.1 ", status,
                          " Nope\r\nContent-Type: text/html\r\n"
                          "Content-Length: 13\r\n\r\n<html></html>");
    });
    auto healthy = Serve([](absl::string_view) { return Ok(); });
    ASSERT_OK_AND_ASSIGN(auto reader,
                         Client({proxy->endpoint(), healthy->endpoint()}));
    EXPECT_THAT(reader->Get("/k", {}), IsOk()) << status;

    ASSERT_OK_AND_ASSIGN(auto writer,
                         Client({proxy->endpoint(), healthy->endpoint()}));
    SetOptions guarded;
    guarded.prev_index = 4;
    absl::StatusOr<Response> write = writer->Set("/k", "v", guarded);
    EXPECT_THAT(write, StatusIs(absl::StatusCode::kUnavailable,
                                HasSubstr("not an answer from etcd")))
        << status;
    EXPECT_TRUE(IsOutcomeUnknown(write.status())) << status;
    EXPECT_THAT(writer->Get("/k", {}), IsOk());
    EXPECT_THAT(proxy->requests(), SizeIs(2)) << status;
  }
}

// A 2xx whose body is not a valid answer to a write: the write may have
// landed, so kDataLoss marked outcome-unknown, never a grant.
TEST(EtcdClientUnitTest, GarbledSuccessOfAWriteIsDataLossOutcomeUnknown) {
  auto server = Serve([](absl::string_view) {
    return HttpAnswer(201, R"({"action":"create","node":{}})",
                      {"X-Etcd-Index: 7"});
  });
  ASSERT_OK_AND_ASSIGN(auto keys, Client({server->endpoint()}));
  SetOptions create;
  create.prev_exist = false;
  absl::StatusOr<Response> r = keys->Set("/k", "v", create);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kDataLoss, HasSubstr("no key")));
  EXPECT_TRUE(IsOutcomeUnknown(r.status()));
  absl::StatusOr<Response> truncated =
      keys->CreateInOrder("/q", "v", {});  // same answer, for a POST
  EXPECT_TRUE(IsOutcomeUnknown(truncated.status()));
}

TEST(EtcdClientUnitTest, LostAnswerOfAConditionalWriteIsOutcomeUnknown) {
  auto lossy = Serve([](absl::string_view) { return std::string(); });
  auto healthy = Serve([](absl::string_view) { return Ok(); });
  ASSERT_OK_AND_ASSIGN(auto keys,
                       Client({lossy->endpoint(), healthy->endpoint()}));
  absl::StatusOr<Response> r = keys->CreateInOrder("/queue", "job", {});
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kUnavailable,
                          HasSubstr("outcome unknown")));
  EXPECT_TRUE(IsOutcomeUnknown(r.status()));
  EXPECT_THAT(lossy->requests(), SizeIs(1));
  EXPECT_THAT(healthy->requests(), SizeIs(0));
}

TEST(EtcdClientUnitTest, MalformedAnswerIsDataLoss) {
  auto server = Serve([](absl::string_view) {
    return HttpAnswer(200, R"({"action":"get","node":{"ttl":"soon"}})",
                      {"X-Etcd-Index: 5"});
  });
  ASSERT_OK_AND_ASSIGN(auto keys, Client({server->endpoint()}));
  EXPECT_THAT(keys->Get("/k", {}),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("malformed etcd response: node.ttl")));
}

TEST(EtcdClientUnitTest, EscapesKeysSegmentBySegmentAndFormValues) {
  auto server = Serve([](absl::string_view) { return Ok(); });
  ASSERT_OK_AND_ASSIGN(auto keys, Client({server->endpoint()}));
  SetOptions guarded;
  guarded.prev_value = "o ld";
  ASSERT_THAT(keys->Set("/dir/a b?#%&+/\xc3\xa9\n", "v&x=1+2", guarded),
              IsOk());
  const std::string request = server->requests().at(0);
  EXPECT_TRUE(absl::StartsWith(
      request, "PUT /v2/keys/dir/a%20b%3F%23%25%26%2B/%C3%A9%0A HTTP/1.1"))
      << request;
  EXPECT_TRUE(absl::EndsWith(request, "value=v%26x%3D1%2B2&prevValue=o%20ld"))
      << request;
}

TEST(EtcdClientUnitTest, WatchReissuesAnEmptyLongPollAtTheNextIndex) {
  std::atomic<int> n{0};
  auto server = Serve([&](absl::string_view) {
    if (n.fetch_add(1) == 0) {
      return HttpAnswer(200, "", {"X-Etcd-Index: 7"});  // closed, no event
    }
    return HttpAnswer(200,
                      R"({"action":"set","node":{"key":"/k","value":"v",)"
                      R"("modifiedIndex":8,"createdIndex":8}})",
                      {"X-Etcd-Index: 7"});
  });
  ASSERT_OK_AND_ASSIGN(auto keys, Client({server->endpoint()}));
  ASSERT_OK_AND_ASSIGN(Response r, keys->Watch("/k", {}));
  EXPECT_EQ(r.node.modified_index, 8u);
  ASSERT_THAT(server->requests(), SizeIs(2));
  EXPECT_TRUE(absl::StartsWith(server->requests()[0],
                               "GET /v2/keys/k?wait=true HTTP/1.1"));
  EXPECT_TRUE(absl::StartsWith(
      server->requests()[1], "GET /v2/keys/k?wait=true&waitIndex=8 HTTP/1.1"));
}

TEST(EtcdClientUnitTest, InvalidOptionsAreNamed) {
  EtcdOptions none;
  EXPECT_THAT(NewEtcdClient(none), StatusIs(absl::StatusCode::kInvalidArgument,
                                            HasSubstr("endpoints")));
  EtcdOptions scheme;
  scheme.endpoints = {"http://127.0.0.1:2379", "127.0.0.1:2379"};
  EXPECT_THAT(NewEtcdClient(scheme),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("endpoints[1] \"127.0.0.1:2379\"")));
  EtcdOptions cert;
  cert.endpoints = {"https://127.0.0.1:2379"};
  cert.cert_file = "/etc/hostname";
  EXPECT_THAT(NewEtcdClient(cert), StatusIs(absl::StatusCode::kInvalidArgument,
                                            HasSubstr("without key_file")));
  EtcdOptions missing;
  missing.endpoints = {"https://127.0.0.1:2379"};
  missing.ca_file = "/nonexistent/ca.pem";
  EXPECT_THAT(NewEtcdClient(missing),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("ca_file \"/nonexistent/ca.pem\"")));
  EtcdOptions keepalive;
  keepalive.endpoints = {"http://127.0.0.1:2379"};
  keepalive.keepalive_time = absl::Milliseconds(500);
  EXPECT_THAT(NewEtcdClient(keepalive),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("keepalive_time: 500ms is not within 1s to "
                                 "9h")));
  keepalive.keepalive_time = absl::Seconds(1);
  keepalive.keepalive_timeout = absl::Hours(10);
  EXPECT_THAT(NewEtcdClient(keepalive),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("keepalive_timeout: 10h is not within")));
  EtcdOptions key;
  key.endpoints = {"http://127.0.0.1:2379"};
  EXPECT_THAT(Client({"http://127.0.0.1:2379/"}), IsOk());
  ASSERT_OK_AND_ASSIGN(auto keys, NewEtcdClient(key));
  EXPECT_THAT(keys->Get("/a/../b", {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'..'")));
}

// The URI options that shape requests, each seen in what the client does.

TEST(EtcdClientUnitTest, QuorumReadsUriOptionMakesEveryGetAQuorumRead) {
  auto server = Serve([](absl::string_view) { return Ok(); });
  const std::string uri = absl::StrCat("etcd://127.0.0.1:", server->port());
  ASSERT_OK_AND_ASSIGN(auto plain, Open(uri));
  ASSERT_OK_AND_ASSIGN(auto quorum,
                       Open(absl::StrCat(uri, "?quorum-reads=true")));
  ASSERT_THAT(plain->Get("/k", {}), IsOk());
  ASSERT_THAT(quorum->Get("/k", {}), IsOk());
  ASSERT_THAT(server->requests(), SizeIs(2));
  EXPECT_TRUE(absl::StartsWith(server->requests()[0], "GET /v2/keys/k HTTP/"));
  EXPECT_TRUE(absl::StartsWith(server->requests()[1],
                               "GET /v2/keys/k?quorum=true HTTP/"));
}

TEST(EtcdClientUnitTest, RequestTimeoutUriOptionBoundsARequest) {
  auto server = Serve([](absl::string_view) { return Hanging(); });
  ASSERT_OK_AND_ASSIGN(auto keys,
                       Open(absl::StrCat("etcd://127.0.0.1:", server->port(),
                                         "?request-timeout=300ms")));
  const absl::Time start = RealClock()->Now();
  EXPECT_THAT(keys->Get("/k", {}),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_LT(RealClock()->Now() - start, absl::Seconds(4));  // default 5 s
}

// A server that accepts connections but never completes a TLS handshake:
// the dial timeout ends the wait, long before the request timeout.
TEST(EtcdClientUnitTest, DialTimeoutUriOptionBoundsTheTlsHandshake) {
  auto server = Serve([](absl::string_view) { return Hanging(); });
  auto time_to_fail = [&](absl::string_view dial_timeout) {
    absl::StatusOr<std::unique_ptr<KeysApi>> keys =
        Open(absl::StrCat("etcd+https://127.0.0.1:", server->port(),
                          "?request-timeout=30s&dial-timeout=", dial_timeout));
    EXPECT_THAT(keys, IsOk());
    const absl::Time start = RealClock()->Now();
    EXPECT_THAT((*keys)->Get("/k", {}), Not(IsOk()));
    return RealClock()->Now() - start;
  };
  // Either side of the default (2 s).
  EXPECT_LT(time_to_fail("300ms"), absl::Milliseconds(1800));
  const absl::Duration slow = time_to_fail("4s");
  EXPECT_GE(slow, absl::Milliseconds(3900));
  EXPECT_LT(slow, absl::Seconds(25));
}

std::string VersionAnswer(absl::string_view server, absl::string_view cluster) {
  return HttpAnswer(
      200, absl::StrCat(R"({"etcdserver":")", server, R"(","etcdcluster":")",
                        cluster, R"("})"));
}

// Both clients, v2 and v3, refuse an old version when asked, and only
// then. The v3 client reads the version at every open (for the warning
// below); the v2 client only for the check.
TEST(EtcdClientUnitTest, RejectOldClusterRefusesClustersOlderThan34) {
  for (const char* scheme : {"etcd://", "etcd3://"}) {
    SCOPED_TRACE(scheme);
    const size_t asked_anyway = scheme == std::string("etcd3://") ? 1 : 0;
    auto old_cluster = Serve(
        [](absl::string_view) { return VersionAnswer("3.3.25", "3.3.0"); });
    const std::string uri =
        absl::StrCat(scheme, "127.0.0.1:", old_cluster->port());
    EXPECT_THAT(
        Open(absl::StrCat(uri, "?reject-old-cluster=true")),
        StatusIs(absl::StatusCode::kFailedPrecondition,
                 HasSubstr(absl::StrCat(
                     "reject-old-cluster: etcd at ", old_cluster->endpoint(),
                     " runs version 3.3.0, older than 3.4"))));
    ASSERT_THAT(old_cluster->requests(), SizeIs(1));
    EXPECT_TRUE(
        absl::StartsWith(old_cluster->requests()[0], "GET /version HTTP/1.1"));
    EXPECT_THAT(Open(absl::StrCat(uri, "?reject-old-cluster=false")), IsOk());
    EXPECT_THAT(Open(uri), IsOk());
    EXPECT_THAT(old_cluster->requests(), SizeIs(1 + 2 * asked_anyway));
  }
}

// etcd before 3.4.28 and 3.5.11 lets a stalled leader revoke live v3
// leases (etcd issue #15247): opening etcd3:// on one says so, naming the
// version; a fixed etcd, or one that does not answer, gets no warning.
TEST(EtcdClientUnitTest, Etcd3WarnsOfAnEtcdWhoseStalledLeaderRevokesLeases) {
  std::string answer;
  auto server = Serve([&](absl::string_view) { return answer; });
  const auto warnings_for = [&](absl::string_view version) {
    answer = VersionAnswer(version, "3.4.0");
    std::vector<std::string> warnings;
    EtcdOptions options;
    options.endpoints = {server->endpoint()};
    options.warn = [&](absl::string_view w) { warnings.emplace_back(w); };
    EXPECT_THAT(NewEtcdV3Client(options), IsOk());
    return warnings;
  };
  for (const char* affected :
       {"3.4.23", "3.4.27", "3.5.0", "3.5.10", "3.3.25"}) {
    EXPECT_THAT(
        warnings_for(affected),
        ElementsAre(AllOf(HasSubstr(absl::StrCat("etcd at ", server->endpoint(),
                                                 " runs version ", affected)),
                          HasSubstr("etcd issue #15247"),
                          HasSubstr("3.4.28, 3.5.11 or later"))))
        << affected;
  }
  for (const char* fixed : {"3.4.28", "3.4.30", "3.5.11", "3.5.17", "3.6.0",
                            "3.6.0-rc.1", "4.0.0", "banana"}) {
    EXPECT_THAT(warnings_for(fixed), IsEmpty()) << fixed;
  }
  EtcdOptions silent;
  silent.endpoints = {DeadEndpoint()};
  silent.warn = [](absl::string_view w) { ADD_FAILURE() << w; };
  EXPECT_THAT(NewEtcdV3Client(silent), IsOk());
}

// An agent per thread opens its own client: clients of both APIs open
// from many threads at once, sharing nothing unguarded (the TSan build
// checks this).
TEST(EtcdClientUnitTest, ClientsOpenFromManyThreadsAtOnce) {
  auto server =
      Serve([](absl::string_view) { return VersionAnswer("3.4.30", "3.4.0"); });
  constexpr int kThreads = 8;
  std::atomic<int> opened{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      for (const char* scheme : {"etcd3://", "etcd://"}) {
        if (Open(absl::StrCat(scheme, "127.0.0.1:", server->port())).ok()) {
          ++opened;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(opened.load(), 2 * kThreads);
}

TEST(EtcdClientUnitTest, RejectOldClusterReadsTheClusterVersion) {
  std::string answer;
  auto server = Serve([&](absl::string_view) { return answer; });
  const std::string uri = absl::StrCat("etcd://127.0.0.1:", server->port(),
                                       "?reject-old-cluster=true");
  // A 3.4 member in a cluster still at 3.3 (a rolling upgrade) is refused.
  answer = VersionAnswer("3.4.23", "3.3.0");
  EXPECT_THAT(Open(uri), StatusIs(absl::StatusCode::kFailedPrecondition));
  // A cluster that has not decided yet: its member's version counts.
  answer = VersionAnswer("3.4.23", "not_decided");
  EXPECT_THAT(Open(uri), IsOk());
  answer = VersionAnswer("3.5.9", "3.5.0");
  EXPECT_THAT(Open(uri), IsOk());
  answer = VersionAnswer("2.3.8", "2.3.0");
  EXPECT_THAT(Open(uri), StatusIs(absl::StatusCode::kFailedPrecondition,
                                  HasSubstr("runs version 2.3.0")));
}

// An answer that is not a version is no verdict: the next endpoint is
// asked, and with none left the client is not opened.
TEST(EtcdClientUnitTest, RejectOldClusterNeedsAnAnswer) {
  auto html = Serve(
      [](absl::string_view) { return HttpAnswer(200, "<html>hello</html>"); });
  auto garbled = Serve([](absl::string_view) {
    return HttpAnswer(200, R"({"etcdserver":"three"})");
  });
  auto good =
      Serve([](absl::string_view) { return VersionAnswer("3.4.23", "3.4.0"); });
  EtcdOptions options;
  options.reject_old_cluster = true;
  options.endpoints = {DeadEndpoint(), html->endpoint(), good->endpoint()};
  EXPECT_THAT(NewEtcdClient(options), IsOk());
  options.endpoints = {DeadEndpoint(), html->endpoint(), garbled->endpoint()};
  EXPECT_THAT(NewEtcdClient(options),
              StatusIs(absl::StatusCode::kUnavailable,
                       AllOf(HasSubstr("no endpoint told its etcd version (3 "
                                       "tried)"),
                             HasSubstr("malformed etcd version \"three\""))));
}

}  // namespace
}  // namespace leasehold::registry::etcd_internal
