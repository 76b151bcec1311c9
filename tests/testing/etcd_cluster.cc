#include "tests/testing/etcd_cluster.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"

namespace leasehold::testing {
namespace {

// etcd members name their raft traffic's sender in this header.
constexpr char kSourceHeader[] = "X-Server-From";

// The string value of the first "key":"value" in a flat JSON answer such as
// /v2/stats/self ("" when absent).
std::string JsonString(absl::string_view json, absl::string_view key) {
  const std::string pattern = absl::StrCat("\"", key, "\":\"");
  const size_t start = json.find(pattern);
  if (start == absl::string_view::npos) return "";
  const size_t begin = start + pattern.size();
  const size_t end = json.find('"', begin);
  if (end == absl::string_view::npos) return "";
  return std::string(json.substr(begin, end - begin));
}

}  // namespace

absl::StatusOr<std::unique_ptr<EtcdCluster>> EtcdCluster::Start(
    EtcdClusterOptions options) {
  if (options.members < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("an etcd cluster needs members, not ", options.members));
  }
  std::unique_ptr<EtcdCluster> cluster(new EtcdCluster(std::move(options)));
  const EtcdClusterOptions& o = cluster->options_;
  std::vector<int> peer_ports;
  std::vector<std::string> initial_cluster;
  for (int i = 0; i < o.members; ++i) {
    const int peer_port = FreePort();
    if (peer_port == 0) return absl::InternalError("no free loopback port");
    absl::StatusOr<std::unique_ptr<TcpProxy>> proxy =
        TcpProxy::Start(peer_port, TcpProxyOptions{kSourceHeader});
    if (!proxy.ok()) return proxy.status();
    initial_cluster.push_back(
        absl::StrCat("m", i, "=http://127.0.0.1:", (*proxy)->port()));
    peer_ports.push_back(peer_port);
    cluster->peer_proxies_.push_back(*std::move(proxy));
  }
  for (int i = 0; i < o.members; ++i) {
    EtcdServerOptions member;
    member.name = absl::StrCat("m", i);
    member.peer_port = peer_ports[i];
    member.advertise_peer_url =
        absl::StrCat("http://127.0.0.1:", cluster->peer_proxies_[i]->port());
    member.initial_cluster = absl::StrJoin(initial_cluster, ",");
    member.tmpfs = o.tmpfs;
    member.extra_args = o.extra_args;
    member.start_timeout = o.start_timeout;
    member.wait_healthy = false;  // alone, a member never has a leader
    if (o.timing == ElectionTiming::kShort) {
      member.heartbeat_interval = absl::Milliseconds(50);
      member.election_timeout = absl::Milliseconds(500);
    }
    absl::StatusOr<std::unique_ptr<EtcdServer>> server =
        EtcdServer::Start(std::move(member));
    if (!server.ok()) return server.status();
    cluster->members_.push_back(*std::move(server));
  }
  if (absl::Status s = cluster->WaitHealthy(o.start_timeout); !s.ok()) {
    return s;
  }
  return cluster;
}

EtcdCluster::~EtcdCluster() = default;

std::string EtcdCluster::uri_starting_at(int first,
                                         const std::string& api) const {
  std::vector<std::string> hosts;
  for (int i = 0; i < size(); ++i)
    hosts.push_back(host_port((first + i) % size()));
  return absl::StrCat(api, "://", absl::StrJoin(hosts, ","));
}

std::string EtcdCluster::member_uri(int i, const std::string& api) const {
  return absl::StrCat(api, "://", host_port(i));
}

std::string EtcdCluster::host_port(int i) const {
  return absl::StrCat("127.0.0.1:", members_[i]->client_port());
}

std::string EtcdCluster::endpoint(int i) const {
  return members_[i]->endpoint();
}

bool EtcdCluster::Healthy(int i) const {
  return members_[i]->running() && !members_[i]->paused() &&
         members_[i]->Healthy();
}

absl::Status EtcdCluster::WaitHealthy(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (int i = 0; i < size(); ++i) {
    EtcdServer& m = *members_[i];
    if (!m.running() || m.paused() || i == partitioned_) continue;
    if (absl::Status s = m.WaitHealthy(deadline - absl::Now()); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int> EtcdCluster::WaitForLeader(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string last;
  do {
    std::map<std::string, int> votes;   // leader id -> members naming it
    std::map<std::string, int> claims;  // id -> member saying it leads
    for (int i = 0; i < size(); ++i) {
      EtcdServer& m = *members_[i];
      // A member cut off from the others may still think it leads.
      if (!m.running() || m.paused() || i == partitioned_) continue;
      absl::StatusOr<std::string> self =
          HttpGet(endpoint(i) + "/v2/stats/self", absl::Seconds(1));
      if (!self.ok()) {
        last = self.status().ToString();
        continue;
      }
      const std::string leader = JsonString(*self, "leader");
      if (!leader.empty()) ++votes[leader];
      if (JsonString(*self, "state") == "StateLeader") {
        claims[JsonString(*self, "id")] = i;
      }
    }
    for (const auto& [id, member] : claims) {
      if (votes[id] > size() / 2) return member;
    }
    absl::SleepFor(absl::Milliseconds(50));
  } while (absl::Now() < deadline);
  return absl::DeadlineExceededError(
      absl::StrCat("no etcd leader followed by a majority after ",
                   absl::FormatDuration(timeout), "; last error: ", last));
}

absl::StatusOr<int> EtcdCluster::KillLeader() {
  absl::StatusOr<int> leader = WaitForLeader();
  if (!leader.ok()) return leader.status();
  if (absl::Status s = KillMember(*leader); !s.ok()) return s;
  return *leader;
}

absl::StatusOr<int> EtcdCluster::KillFollower() {
  absl::StatusOr<int> leader = WaitForLeader();
  if (!leader.ok()) return leader.status();
  for (int i = 0; i < size(); ++i) {
    if (i == *leader || !members_[i]->running()) continue;
    if (absl::Status s = KillMember(i); !s.ok()) return s;
    return i;
  }
  return absl::FailedPreconditionError("no follower is running");
}

absl::StatusOr<int> EtcdCluster::PauseLeader() {
  absl::StatusOr<int> leader = WaitForLeader();
  if (!leader.ok()) return leader.status();
  if (absl::Status s = PauseMember(*leader); !s.ok()) return s;
  return *leader;
}

absl::Status EtcdCluster::KillMember(int i) { return members_[i]->Kill(); }
absl::Status EtcdCluster::StopMember(int i) { return members_[i]->Stop(); }
absl::Status EtcdCluster::PauseMember(int i) { return members_[i]->Pause(); }
absl::Status EtcdCluster::ResumeMember(int i) { return members_[i]->Resume(); }

absl::Status EtcdCluster::RestartMember(int i) {
  if (absl::Status s = members_[i]->Restart(); !s.ok()) return s;
  int up = 0;
  for (int j = 0; j < size(); ++j) {
    if (members_[j]->running() && !members_[j]->paused() && j != partitioned_) {
      ++up;
    }
  }
  if (up <= size() / 2 || i == partitioned_) return absl::OkStatus();
  return members_[i]->WaitHealthy(options_.start_timeout);
}

absl::StatusOr<std::string> EtcdCluster::MemberId(int i) {
  if (ids_.empty()) ids_.resize(size());
  if (ids_[i].empty()) {
    absl::StatusOr<std::string> self =
        HttpGet(endpoint(i) + "/v2/stats/self", absl::Seconds(5));
    if (!self.ok()) return self.status();
    ids_[i] = JsonString(*self, "id");
    if (ids_[i].empty()) {
      return absl::InternalError(
          absl::StrCat("member ", i, ": no id in /v2/stats/self: ", *self));
    }
  }
  return ids_[i];
}

absl::Status EtcdCluster::PartitionMember(int i) {
  if (partitioned_ >= 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("member ", partitioned_, " is already partitioned"));
  }
  absl::StatusOr<std::string> id = MemberId(i);
  if (!id.ok()) return id.status();
  // Member i's raft traffic flows both ways over connections either side
  // dialed: those into member i, and those member i opened to the others
  // (which name it in their first request).
  peer_proxies_[i]->Blackhole(Direction::kBoth);
  for (int j = 0; j < size(); ++j) {
    if (j != i) peer_proxies_[j]->BlackholeSource(*id);
  }
  partitioned_ = i;
  return absl::OkStatus();
}

absl::Status EtcdCluster::HealPartition() {
  // Blackholed connections lost bytes their senders think were delivered:
  // reset them all, and etcd dials again.
  for (auto& proxy : peer_proxies_) {
    proxy->Heal();
    proxy->Reset();
  }
  partitioned_ = -1;
  return WaitHealthy(options_.start_timeout);
}

absl::Status EtcdCluster::StopAll() {
  for (auto& m : members_) {
    if (!m->running()) continue;
    if (absl::Status s = m->Stop(); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status EtcdCluster::RestartAll() {
  for (auto& m : members_) {
    if (m->running()) continue;
    if (absl::Status s = m->Restart(); !s.ok()) return s;
  }
  return WaitHealthy(options_.start_timeout);
}

}  // namespace leasehold::testing
