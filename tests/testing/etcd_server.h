// EtcdServer: a real etcd (`etcd --enable-v2=true`) for integration tests,
// started on free loopback ports in a temporary data directory and stopped
// (by its PID) when the object goes away.
//
//   ASSERT_OK_AND_ASSIGN(auto etcd, EtcdServer::Start());
//   auto keys = registry::Open(etcd->uri());   // "etcd://127.0.0.1:PORT"
//
// SharedEtcd() gives every test of one binary the same server, started on
// first use and stopped at exit; tests then use distinct key prefixes.
//
// Thread-safety: Start/Stop/Restart/Kill from one thread at a time.
#ifndef LEASEHOLD_TESTS_TESTING_ETCD_SERVER_H_
#define LEASEHOLD_TESTS_TESTING_ETCD_SERVER_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace leasehold::testing {

struct EtcdServerOptions {
  // Serve clients over https with this certificate and key (PEM files).
  std::string server_cert_file;
  std::string server_key_file;
  // Require client certificates signed by this CA (--client-cert-auth).
  std::string client_ca_file;
  // Put the data directory on tmpfs (/dev/shm) instead of /tmp.
  bool tmpfs = false;
  // Serve the v2 keys API (--enable-v2). false: the v3 API alone, and uri()
  // names the v3 client (etcd3://).
  bool enable_v2 = true;
  // Passed through (e.g. "--snapshot-count=1000000").
  std::vector<std::string> extra_args;
  // How long to wait for /health after starting.
  absl::Duration start_timeout = absl::Seconds(20);
  // Wait for /health after every (re)start. A member of a larger cluster is
  // healthy only once a quorum is up, so EtcdCluster starts every member
  // first and then waits.
  bool wait_healthy = true;

  // Membership, for a member of a larger cluster (EtcdCluster fills these).
  // Defaults: a one-member cluster on free ports.
  std::string name = "leasehold-test";
  int client_port = 0;  // 0: a free port
  int peer_port = 0;    // 0: a free port; the member listens here
  // The peer URL the other members dial (say, a fault proxy in front of
  // peer_port). Empty: http://127.0.0.1:<peer_port>.
  std::string advertise_peer_url;
  // --initial-cluster ("name=peer-url,..."). Empty: the member alone.
  std::string initial_cluster;
  // Raft timing (--heartbeat-interval, --election-timeout). Zero: etcd's
  // defaults (100 ms, 1 s).
  absl::Duration heartbeat_interval = absl::ZeroDuration();
  absl::Duration election_timeout = absl::ZeroDuration();
};

class EtcdServer {
 public:
  static absl::StatusOr<std::unique_ptr<EtcdServer>> Start(
      EtcdServerOptions options = {});
  ~EtcdServer();  // Stops the server and removes its data directory.

  EtcdServer(const EtcdServer&) = delete;
  EtcdServer& operator=(const EtcdServer&) = delete;

  // "http://127.0.0.1:PORT" (https with a server certificate).
  std::string endpoint() const;
  // "etcd://127.0.0.1:PORT" (etcd+https://…; etcd3://… without v2), for
  // registry::Open.
  std::string uri() const;
  const std::string& name() const { return options_.name; }
  int client_port() const { return client_port_; }
  int peer_port() const { return peer_port_; }
  // The URL other members dial: advertise_peer_url or the peer listener.
  std::string peer_url() const;
  pid_t pid() const { return pid_; }
  // Started and not stopped or killed (a paused server is running).
  bool running() const { return pid_ > 0; }
  bool paused() const { return paused_; }

  // SIGTERM and wait. The data directory is kept for Restart().
  absl::Status Stop();
  // SIGKILL and wait (a crash). The data directory is kept.
  absl::Status Kill();
  // SIGSTOP / SIGCONT: the server stops answering but keeps its sockets.
  absl::Status Pause();
  absl::Status Resume();
  // Starts again on the same ports and data directory; waits for health
  // (with options.wait_healthy).
  absl::Status Restart();
  // Waits until /health says true (the member has a leader), up to
  // `timeout`. kDeadlineExceeded with the log's tail; kInternal if etcd
  // exited.
  absl::Status WaitHealthy(absl::Duration timeout);
  // One look at /health: true when the member answers and has a leader.
  bool Healthy() const;
  // How many gRPC calls of `method` ("LeaseTimeToLive", "Range", …) the
  // member has answered since it started, whatever their outcome: the sum
  // of etcd's grpc_server_handled_total{grpc_method="<method>"} series in
  // /metrics (the v3 JSON gateway's requests are counted there too).
  absl::StatusOr<int64_t> GrpcCallsHandled(absl::string_view method) const;

 private:
  explicit EtcdServer(EtcdServerOptions options)
      : options_(std::move(options)) {}
  bool tls() const;
  absl::Status Launch();
  absl::Status Signal(int signal);
  absl::Status StopWith(int signal);

  EtcdServerOptions options_;
  std::string dir_;
  int client_port_ = 0;
  int peer_port_ = 0;
  int metrics_port_ = 0;  // plaintext /health, even when clients need TLS
  pid_t pid_ = -1;
  bool paused_ = false;
};

// One server per test binary, started on first use. Aborts the test binary
// with a clear message if etcd cannot start.
EtcdServer& SharedEtcd();
// The same for the v3 API: a server started WITHOUT --enable-v2, so that
// whatever passes against it needs nothing of v2. Its election timeout is
// 500 ms, which makes etcd's minimum lease TTL (1.5 election timeouts,
// rounded up to whole seconds) one second, so that tests' 1 s TTLs stay
// 1 s as they do on v2.
EtcdServer& SharedEtcdV3();
// For tests parameterised over the two APIs: "etcd" → SharedEtcd(),
// "etcd3" → SharedEtcdV3(). EtcdApis() lists both.
EtcdServer& SharedEtcdFor(const std::string& api);
std::vector<std::string> EtcdApis();

// Whether `warning` is the one etcd3:// gives when it opens on an etcd
// whose stalled leader can revoke live v3 leases (before 3.4.28 and
// 3.5.11; the etcd these tests start may be one). Tests that count a
// client's other warnings leave it out.
bool IsEtcdVersionWarning(absl::string_view warning);

// A free TCP port on 127.0.0.1 (bound and released; the caller uses it next).
int FreePort();

// GET `url` (plain http, loopback) with a `timeout`: the body of a 200
// answer; kUnavailable for no answer, kInternal for another status.
absl::StatusOr<std::string> HttpGet(const std::string& url,
                                    absl::Duration timeout);

}  // namespace leasehold::testing

#endif  // LEASEHOLD_TESTS_TESTING_ETCD_SERVER_H_
