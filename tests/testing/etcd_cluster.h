// EtcdCluster: a real etcd cluster (3 members by default) on free loopback
// ports, for tests of what leasehold promises when members fail. Each member
// is an EtcdServer in its own temporary data directory; every member's peer
// traffic goes through a fault proxy (TcpProxy), so a member can be cut off
// from the others while its client port still answers.
//
//   ASSERT_OK_AND_ASSIGN(auto cluster, EtcdCluster::Start());
//   auto keys = registry::Open(cluster->uri());  // every member's endpoint
//   ASSERT_OK_AND_ASSIGN(int killed, cluster->KillLeader());
//   ASSERT_OK(cluster->WaitForLeader());          // the survivors elect one
//   ASSERT_OK(cluster->RestartMember(killed));    // same data directory
//
//   ASSERT_OK(cluster->PartitionMember(0));  // member 0: no quorum, still
//   auto lonely = registry::Open(cluster->member_uri(0));  // answers clients
//   ASSERT_OK(cluster->HealPartition());
//
// Every member serves both APIs: the v2 keys API (--enable-v2) and the v3
// API. The URI methods take the API as their scheme, "etcd" (v2, the
// default) or "etcd3" (v3): registry::Open(cluster->uri("etcd3")).
//
// Members are numbered 0..size()-1. The fault methods name the fault, not
// the mechanism: KillLeader, PauseMember (SIGSTOP: frozen, sockets open),
// PartitionMember (its raft traffic blackholed both ways).
//
// Thread-safety: a fixture is driven from one thread at a time (the test's).
// Clients on other threads may use the members meanwhile.
#ifndef LEASEHOLD_TESTS_TESTING_ETCD_CLUSTER_H_
#define LEASEHOLD_TESTS_TESTING_ETCD_CLUSTER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/testing/etcd_server.h"
#include "tests/testing/loopback_net.h"

namespace leasehold::testing {

// Raft timing of a cluster.
enum class ElectionTiming {
  // etcd's defaults: heartbeat 100 ms, election timeout 1 s. For tests of
  // what users see with an untuned cluster.
  kDefault,
  // Heartbeat 50 ms, election timeout 500 ms: a new leader in about a
  // second, for tests where the election itself is not the point.
  kShort,
};

struct EtcdClusterOptions {
  int members = 3;
  ElectionTiming timing = ElectionTiming::kShort;
  // Data directories on tmpfs (/dev/shm): fsyncs cost nothing, so a loaded
  // machine does not miss heartbeats on disk writes.
  bool tmpfs = true;
  // Passed to every member.
  std::vector<std::string> extra_args;
  // How long Start, RestartMember and RestartAll wait for health.
  absl::Duration start_timeout = absl::Seconds(60);
};

class EtcdCluster {
 public:
  // Starts every member and waits until all are healthy (a leader elected).
  static absl::StatusOr<std::unique_ptr<EtcdCluster>> Start(
      EtcdClusterOptions options = {});
  ~EtcdCluster();  // stops every member, removes the data directories

  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  int size() const { return static_cast<int>(members_.size()); }
  EtcdServer& member(int i) { return *members_[i]; }
  // The fault proxy in front of member i's peer listener: every peer dials
  // member i through it.
  TcpProxy& peer_proxy(int i) { return *peer_proxies_[i]; }

  // "etcd://127.0.0.1:P0,127.0.0.1:P1,...": every member, for registry::Open
  // ("etcd3://…" for api "etcd3").
  std::string uri(const std::string& api = "etcd") const {
    return uri_starting_at(0, api);
  }
  // Every member, member `first` first (a client prefers the first
  // endpoint): "etcd://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P0" for 1.
  std::string uri_starting_at(int first, const std::string& api = "etcd") const;
  // "etcd://127.0.0.1:Pi": member i only.
  std::string member_uri(int i, const std::string& api = "etcd") const;
  // "127.0.0.1:Pi": member i's client address, for URIs a test composes.
  std::string host_port(int i) const;
  // "http://127.0.0.1:Pi": member i's client endpoint.
  std::string endpoint(int i) const;

  // The member the others follow: it says it leads, and a majority of the
  // members that answer name it as leader. Waits up to `timeout` for one.
  // kDeadlineExceeded if none by then.
  absl::StatusOr<int> WaitForLeader(absl::Duration timeout = absl::Seconds(30));
  // Whether member i answers on its client port and names a leader right
  // now (/health).
  bool Healthy(int i) const;
  // Waits until every running, unpaused, unpartitioned member is healthy.
  absl::Status WaitHealthy(absl::Duration timeout = absl::Seconds(60));

  // SIGKILL the current leader (found as WaitForLeader); returns its index.
  absl::StatusOr<int> KillLeader();
  // SIGKILL a running member that is not the leader; returns its index.
  absl::StatusOr<int> KillFollower();
  // SIGSTOP the current leader; returns its index. ResumeMember ends it.
  absl::StatusOr<int> PauseLeader();
  // SIGKILL member i (a crash). Its data directory is kept.
  absl::Status KillMember(int i);
  // SIGTERM member i and wait (a clean shutdown). Data kept.
  absl::Status StopMember(int i);
  // SIGSTOP / SIGCONT member i: frozen with its sockets open.
  absl::Status PauseMember(int i);
  absl::Status ResumeMember(int i);
  // Starts a stopped or killed member again on its ports and data; waits
  // for its health when a quorum is up (else returns once it runs).
  absl::Status RestartMember(int i);

  // Cuts member i's raft traffic to and from every other member (both
  // directions blackholed, connections left open), leaving it in a
  // minority. Its client port still answers. One partition at a time.
  absl::Status PartitionMember(int i);
  // Lifts the partition; waits until every member is healthy again.
  absl::Status HealPartition();
  // The member cut off by PartitionMember, or -1.
  int partitioned() const { return partitioned_; }

  // Stops every member (SIGTERM), keeping the data.
  absl::Status StopAll();
  // Starts every stopped member on its data; waits until all are healthy.
  absl::Status RestartAll();

 private:
  explicit EtcdCluster(EtcdClusterOptions options)
      : options_(std::move(options)) {}
  // Member i's raft id (the X-Server-From of its peer requests).
  absl::StatusOr<std::string> MemberId(int i);

  const EtcdClusterOptions options_;
  std::vector<std::unique_ptr<TcpProxy>> peer_proxies_;
  std::vector<std::unique_ptr<EtcdServer>> members_;
  std::vector<std::string> ids_;  // raft ids, learnt on first use
  int partitioned_ = -1;
};

}  // namespace leasehold::testing

#endif  // LEASEHOLD_TESTS_TESTING_ETCD_CLUSTER_H_
