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

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registry/errors.h"
#include "registry/etcd/etcd_client.h"
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
using ::testing::HasSubstr;
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
  // Find our end of the long poll's connection among this process's
  // sockets.
  int keepalive = 0, count = 0, idle = 0;
  for (int attempt = 0; attempt < 500 && keepalive == 0; ++attempt) {
    for (int fd = 3; fd < 1024; ++fd) {
      sockaddr_in peer{};
      socklen_t len = sizeof peer;
      if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0 ||
          peer.sin_family != AF_INET ||
          ntohs(peer.sin_port) != server->port()) {
        continue;
      }
      socklen_t size = sizeof(int);
      getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &keepalive, &size);
      getsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, &size);
      getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, &size);
    }
    if (keepalive == 0) RealClock()->SleepFor(absl::Milliseconds(10));
  }
  cancel.Cancel();
  poll.join();
  EXPECT_EQ(keepalive, 1);
  EXPECT_EQ(count, 3);
  EXPECT_EQ(idle, 10);
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
  EtcdOptions key;
  key.endpoints = {"http://127.0.0.1:2379"};
  EXPECT_THAT(Client({"http://127.0.0.1:2379/"}), IsOk());
  ASSERT_OK_AND_ASSIGN(auto keys, NewEtcdClient(key));
  EXPECT_THAT(keys->Get("/a/../b", {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'..'")));
}

}  // namespace
}  // namespace leasehold::registry::etcd_internal
