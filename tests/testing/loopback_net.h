// Loopback network fakes for tests of the HTTP layer: a TCP proxy that can
// lose answers or cut connections, and an HTTP server with canned answers.
//
//   ASSERT_OK_AND_ASSIGN(auto proxy, TcpProxy::Start(etcd.client_port()));
//   proxy->set_drop_responses(true);   // requests arrive, answers are lost
//   ... point a client at "http://127.0.0.1:" + proxy->port() ...
//
//   ASSERT_OK_AND_ASSIGN(auto server, CannedHttpServer::Start(
//       [](absl::string_view request) { return HttpAnswer(200, "{}"); }));
//
// Both serve 127.0.0.1 only, one thread per connection; the destructor
// closes every connection and joins every thread.
//
// Thread-safety: all methods may be called from any thread.
#ifndef LEASEHOLD_TESTS_TESTING_LOOPBACK_NET_H_
#define LEASEHOLD_TESTS_TESTING_LOOPBACK_NET_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace leasehold::testing {

// Accepts connections on a loopback port and runs `serve(fd)` for each on
// its own thread. Shared by the proxy and the canned server.
class LoopbackListener {
 public:
  virtual ~LoopbackListener();
  int port() const { return port_; }
  int connections_accepted() const { return accepted_.load(); }
  // Shuts every open connection down (their threads then end).
  void CutAll() ABSL_LOCKS_EXCLUDED(mu_);

 protected:
  LoopbackListener() = default;
  absl::Status Listen();
  // Runs on the connection's own thread; returns when the connection ends.
  virtual void Serve(int fd) = 0;
  // Registers a socket that CutAll() and the destructor must shut down.
  void Track(int fd) ABSL_LOCKS_EXCLUDED(mu_);
  void Untrack(int fd) ABSL_LOCKS_EXCLUDED(mu_);
  // REQUIRES: called by the most derived destructor, before its members go.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void AcceptLoop();

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<int> accepted_{0};
  std::thread accept_thread_;
  std::mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<int> open_fds_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

// Forwards each connection to 127.0.0.1:upstream_port.
class TcpProxy final : public LoopbackListener {
 public:
  static absl::StatusOr<std::unique_ptr<TcpProxy>> Start(int upstream_port);
  ~TcpProxy() override { Stop(); }

  // While true, the client's bytes still reach the upstream, but the
  // connection is closed as soon as the upstream starts to answer: a
  // request that was applied and whose response was lost.
  void set_drop_responses(bool on) { drop_responses_.store(on); }
  // While true, new connections are closed as soon as they are accepted.
  void set_refuse(bool on) { refuse_.store(on); }
  // While true, connections (open ones and new ones) stay open but nothing
  // is forwarded either way: a member that froze or was cut off without a
  // FIN. Held bytes flow again once it is false.
  void set_blackhole(bool on) { blackhole_.store(on); }

 private:
  explicit TcpProxy(int upstream_port) : upstream_port_(upstream_port) {}
  void Serve(int fd) override;

  const int upstream_port_;
  std::atomic<bool> drop_responses_{false};
  std::atomic<bool> refuse_{false};
  std::atomic<bool> blackhole_{false};
};

// Writes all of `data` to socket `fd`; false if the connection failed.
bool WriteAll(int fd, absl::string_view data);
// Reads from `fd` into `*buffer` until it holds a complete HTTP request
// (headers and Content-Length body), then removes and returns it; nullopt
// when the connection ends first.
std::optional<std::string> ReadRequest(int fd, std::string* buffer);

// "HTTP/1.1 <status>" with Content-Length, any extra header lines
// ("X-Etcd-Index: 7"), and `body`.
std::string HttpAnswer(int status, absl::string_view body,
                       const std::vector<std::string>& headers = {});

// An HTTP/1.1 server whose answers come from a function of the request
// (request line, headers and body as received). An empty answer closes the
// connection without answering. Connections are kept alive otherwise.
class CannedHttpServer final : public LoopbackListener {
 public:
  using Responder = std::function<std::string(absl::string_view request)>;
  static absl::StatusOr<std::unique_ptr<CannedHttpServer>> Start(
      Responder responder);
  ~CannedHttpServer() override { Stop(); }

  std::string endpoint() const;
  // Every request received so far, in order.
  std::vector<std::string> requests() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  explicit CannedHttpServer(Responder responder)
      : responder_(std::move(responder)) {}
  void Serve(int fd) override;

  const Responder responder_;
  mutable std::mutex mu_;
  std::vector<std::string> requests_ ABSL_GUARDED_BY(mu_);
};

}  // namespace leasehold::testing

#endif  // LEASEHOLD_TESTS_TESTING_LOOPBACK_NET_H_
