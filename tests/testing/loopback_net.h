// Loopback network fakes for tests of the HTTP layer: a TCP proxy that
// injects network faults (delay, drop, reset, blackhole, per direction, and
// per source for a partition), and an HTTP server with canned answers.
//
//   ASSERT_OK_AND_ASSIGN(auto proxy, TcpProxy::Start(etcd.client_port()));
//   proxy->Drop(Direction::kToClient);  // requests arrive, answers are lost
//   ... point a client at "http://127.0.0.1:" + proxy->port() ...
//   proxy->Heal();
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
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace leasehold::testing {

// Accepts connections on a loopback port and runs `serve(fd)` for each on
// its own thread. Shared by the proxy and the canned server.
class LoopbackListener {
 public:
  virtual ~LoopbackListener();
  int port() const { return port_; }
  int connections_accepted() const { return accepted_.load(); }
  // Shuts every open connection down (their threads then end); with
  // `reset`, each is closed with an RST instead of a FIN.
  void CutAll(bool reset = false) ABSL_LOCKS_EXCLUDED(mu_);

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

// Which way bytes travel through a TcpProxy.
enum class Direction {
  kToUpstream,  // from the connecting client to the upstream server
  kToClient,    // the answers
  kBoth,
};

struct TcpProxyOptions {
  // Name each connection's source by this header of the first request on it
  // (etcd members send "X-Server-From: <member id>" on raft traffic), for
  // BlackholeSource. Empty: sources are not told apart.
  std::string source_header;
};

// Forwards each connection to 127.0.0.1:upstream_port, through the faults
// set on it. Every fault applies at once to open connections and to new
// ones, until Heal().
class TcpProxy final : public LoopbackListener {
 public:
  static absl::StatusOr<std::unique_ptr<TcpProxy>> Start(
      int upstream_port, TcpProxyOptions options = {});
  ~TcpProxy() override { Stop(); }

  // Bytes travelling `direction` arrive `delay` late (in order).
  void Delay(Direction direction, absl::Duration delay)
      ABSL_LOCKS_EXCLUDED(faults_mu_);
  // The connection is closed as soon as bytes would travel `direction`,
  // unforwarded. Drop(kToClient): a request that was applied and whose
  // response was lost.
  void Drop(Direction direction) ABSL_LOCKS_EXCLUDED(faults_mu_);
  // Bytes travelling `direction` vanish; connections stay open, so the
  // sender only learns by its own timeouts (a cable cut, a frozen router).
  void Blackhole(Direction direction) ABSL_LOCKS_EXCLUDED(faults_mu_);
  // Both directions of every connection whose source (see
  // TcpProxyOptions::source_header) is `source` vanish, as Blackhole.
  void BlackholeSource(const std::string& source)
      ABSL_LOCKS_EXCLUDED(faults_mu_);
  // Resets every open connection (RST) now.
  void Reset();
  // While on, new connections are reset as soon as they are accepted.
  void Refuse(bool on) { refuse_.store(on); }
  // Lifts every fault above (open connections carry on).
  void Heal() ABSL_LOCKS_EXCLUDED(faults_mu_);

  // The same as Drop(kToClient) / Heal(), and Refuse.
  void set_drop_responses(bool on);
  void set_refuse(bool on) { Refuse(on); }

 private:
  struct Faults {
    absl::Duration delay[2] = {absl::ZeroDuration(), absl::ZeroDuration()};
    bool drop[2] = {false, false};
    bool blackhole[2] = {false, false};
    std::vector<std::string> blackholed_sources;
  };
  enum class Fate { kForward, kDiscard, kClose };

  TcpProxy(int upstream_port, TcpProxyOptions options)
      : upstream_port_(upstream_port), options_(std::move(options)) {}
  void Serve(int fd) override;
  // Copies `from` to `to` (d: 0 towards the upstream, 1 towards the client)
  // until either side closes or a fault closes the connection.
  // `pending`: bytes already read from `from`.
  void Pump(int from, int to, int d, const std::string& source,
            std::string pending);
  // What happens to bytes travelling `d` on a connection from `source`,
  // and how late they arrive.
  Fate FateOf(int d, const std::string& source, absl::Duration* delay)
      ABSL_LOCKS_EXCLUDED(faults_mu_);
  template <typename F>
  void Update(F update) ABSL_LOCKS_EXCLUDED(faults_mu_);

  const int upstream_port_;
  const TcpProxyOptions options_;
  std::atomic<bool> refuse_{false};
  std::mutex faults_mu_;
  Faults faults_ ABSL_GUARDED_BY(faults_mu_);
};

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
