// The fault proxy does what each fault says, on loopback sockets.
#include "tests/testing/loopback_net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::testing {
namespace {

// A raw client connection to 127.0.0.1:port.
class Client {
 public:
  explicit Client(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ =
        ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~Client() { ::close(fd_); }

  void Send(const std::string& request) {
    ASSERT_TRUE(connected_);
    ASSERT_EQ(::send(fd_, request.data(), request.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(request.size()));
  }

  // What arrives within `timeout`: the bytes, "<closed>" when the proxy
  // closed the connection, "" when nothing came.
  std::string Receive(absl::Duration timeout) {
    pollfd p = {fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) <=
        0) {
      return "";
    }
    char buffer[4096];
    const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
    if (n <= 0) return "<closed>";
    return std::string(buffer, static_cast<size_t>(n));
  }

 private:
  const int fd_;
  bool connected_ = false;
};

std::string Request(const std::string& from = "") {
  return "GET /x HTTP/1.1\r\nHost: test\r\n" +
         (from.empty() ? "" : "X-From: " + from + "\r\n") + "\r\n";
}

class TcpProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(
        server_, CannedHttpServer::Start(
                     [](absl::string_view) { return HttpAnswer(200, "ok"); }));
    ASSERT_OK_AND_ASSIGN(proxy_, TcpProxy::Start(server_->port(), {"X-From"}));
  }

  std::unique_ptr<CannedHttpServer> server_;
  std::unique_ptr<TcpProxy> proxy_;
};

constexpr absl::Duration kLong = absl::Seconds(10);
// How long "nothing arrives" is watched for.
constexpr absl::Duration kQuiet = absl::Milliseconds(300);

TEST_F(TcpProxyTest, Forwards) {
  Client client(proxy_->port());
  client.Send(Request());
  EXPECT_NE(client.Receive(kLong).find("ok"), std::string::npos);
}

TEST_F(TcpProxyTest, DelayHoldsBytesBack) {
  proxy_->Delay(Direction::kToClient, absl::Milliseconds(400));
  Client client(proxy_->port());
  const absl::Time start = absl::Now();
  client.Send(Request());
  EXPECT_NE(client.Receive(kLong).find("ok"), std::string::npos);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(400));
}

TEST_F(TcpProxyTest, DropDeliversTheRequestAndLosesTheAnswer) {
  proxy_->Drop(Direction::kToClient);
  Client client(proxy_->port());
  client.Send(Request());
  EXPECT_EQ(client.Receive(kLong), "<closed>");
  EXPECT_EQ(server_->requests().size(), 1u);
}

TEST_F(TcpProxyTest, BlackholeSwallowsBytesAndKeepsTheConnection) {
  Client client(proxy_->port());
  client.Send(Request());
  EXPECT_NE(client.Receive(kLong).find("ok"), std::string::npos);
  proxy_->Blackhole(Direction::kToUpstream);
  client.Send(Request());
  EXPECT_EQ(client.Receive(kQuiet), "");  // neither an answer nor a close
  EXPECT_EQ(server_->requests().size(), 1u);
  proxy_->Heal();
  client.Send(Request());
  EXPECT_NE(client.Receive(kLong).find("ok"), std::string::npos);
}

TEST_F(TcpProxyTest, BlackholeSourceCutsOnlyThatSource) {
  proxy_->BlackholeSource("a");
  Client a(proxy_->port());
  Client b(proxy_->port());
  a.Send(Request("a"));
  b.Send(Request("b"));
  EXPECT_NE(b.Receive(kLong).find("ok"), std::string::npos);
  EXPECT_EQ(a.Receive(kQuiet), "");
}

TEST_F(TcpProxyTest, ResetCutsOpenConnections) {
  Client client(proxy_->port());
  client.Send(Request());
  EXPECT_NE(client.Receive(kLong).find("ok"), std::string::npos);
  proxy_->Reset();
  EXPECT_EQ(client.Receive(kLong), "<closed>");
}

TEST_F(TcpProxyTest, RefuseResetsNewConnections) {
  proxy_->Refuse(true);
  Client client(proxy_->port());
  EXPECT_EQ(client.Receive(kLong), "<closed>");
  EXPECT_EQ(server_->requests().size(), 0u);
}

}  // namespace
}  // namespace leasehold::testing
