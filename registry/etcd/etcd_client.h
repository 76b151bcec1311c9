// The etcd v2 keys API over HTTP (libcurl + rapidjson), behind KeysApi.
//
//   registry::EtcdOptions options;
//   options.endpoints = {"http://127.0.0.1:2379", "http://127.0.0.1:22379"};
//   options.request_timeout = absl::Seconds(2);
//   auto keys = registry::NewEtcdClient(options);
//
// Connections are kept alive and reused (one libcurl handle per calling
// thread and endpoint, TCP keepalive on); requests stick to the endpoint that
// last worked and move to the next on a connection failure, a 5xx, a raft
// error or an answer that is not etcd's (no X-Etcd-Index and no etcd error
// body: a proxy's HTML page, a reply that is not HTTP/1.x). A success answer
// is used only when its node is well-formed (a key, nonzero indexes); a read
// moves on otherwise. A write whose answer is lost or cannot be trusted
// after it was sent is not retried elsewhere: it fails with
// registry::IsOutcomeUnknown(status) (kUnavailable, or kDataLoss for a
// garbled success), and the caller reads back. etcd's "no leader",
// "proposal dropped" and "raft: stopped" say a write was never proposed: it
// moves on at once. Watches run on their own connections, reconnect at the
// last seen index + 1 on failure, check that their member is alive (see
// watch_check_interval) and return promptly when their CancelToken fires.
//
// Thread-safety: one client may be used from any number of threads at once.
#ifndef LEASEHOLD_REGISTRY_ETCD_ETCD_CLIENT_H_
#define LEASEHOLD_REGISTRY_ETCD_ETCD_CLIENT_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "registry/clock.h"
#include "registry/etcd/json_codec.h"
#include "registry/keys_api.h"

namespace leasehold::registry {

struct EtcdOptions {
  // Base URLs, "http://host:port" or "https://host:port". At least one.
  std::vector<std::string> endpoints;
  // Whole request, connect included. Default: 5 s. Watches are bounded by
  // their own deadline instead.
  absl::Duration request_timeout = absl::Seconds(5);
  // TCP (and TLS) connect. Default: 2 s.
  absl::Duration dial_timeout = absl::Seconds(2);
  // etcd auth: HTTP basic auth here (etcd v2 auth); the v3 client trades
  // them for a token (registry/etcd_v3/etcd_v3_client.h). Empty username:
  // none. The password is either given here or read by NewEtcdClient from
  // the first line of password_file (a file readable by group or others is
  // used, with a warning). Neither ever appears in a message.
  std::string username;
  std::string password;
  std::string password_file;
  // Credentials over http:// to a host that is not loopback (127.0.0.0/8,
  // ::1, localhost) travel in clear text; the client then warns once, unless
  // this is true.
  bool allow_insecure_auth = false;
  // TLS: CA bundle to verify the server, client certificate and key for
  // client-certificate authentication. Empty: system defaults / none.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  // TLS: the host name the server's certificate must name (and the SNI
  // sent), for endpoints reached by IP address whose certificate names a
  // host. The connection still goes to the endpoint's address. Empty: the
  // endpoint's host. https endpoints only.
  std::string server_name;
  // Refresh the endpoint list from /v2/members (v3: /v3/cluster/member/list)
  // this often. Zero: never.
  absl::Duration auto_sync_interval = absl::ZeroDuration();
  // While a watch waits, this often ask whether its member still serves it:
  // a quorum read through another endpoint says how far the cluster is; if
  // it has reached the watch's index, the watch's member must answer a read
  // (within min(request_timeout, half this interval)) at an index at least
  // as far, or the watch is re-opened at the same index on the next
  // endpoint. This is what notices a member that is frozen (SIGSTOP), cut
  // off from its cluster, or behind a proxy that forwards nothing, none of
  // which closes the connection: a change made elsewhere reaches the watch
  // within about 1.5 intervals. Each check costs one or two small reads.
  // Zero: never (then only TCP keepalive notices a dead host). Default: 3 s.
  // URI option watch-check-interval.
  absl::Duration watch_check_interval = absl::Seconds(3);
  // TCP keepalive on every connection, watches included: the first probe
  // after keepalive_time of silence; a connection whose probes go
  // unanswered for keepalive_timeout more is dropped (a watch then
  // reconnects elsewhere). Whole seconds (rounded up), 1 s to 9 h.
  // Defaults: 10 s and 15 s. URI options dial-keep-alive-time and
  // dial-keep-alive-timeout (go-lock's and clientv3's names).
  absl::Duration keepalive_time = absl::Seconds(10);
  absl::Duration keepalive_timeout = absl::Seconds(15);
  // NewEtcdClient asks the endpoints for GET /version and refuses a cluster
  // older than etcd 3.4 (kFailedPrecondition), or one it cannot ask
  // (kUnavailable). URI option reject-old-cluster.
  bool reject_old_cluster = false;
  // Every Get goes through raft (quorum=true) even when not asked.
  bool quorum_reads = false;
  // Deadlines of watches are on this clock. Default: RealClock().
  Clock* clock = nullptr;
  // Where the client's warnings go (clear-text credentials, a password file
  // others can read), one line each without a trailing newline; each is
  // reported once per client, from the thread calling NewEtcdClient or, for
  // endpoints learned by auto-sync, from the client's sync thread.
  // Default (empty): "leasehold: warning: …" on stderr, since a security
  // warning nobody sees protects nobody.
  std::function<void(absl::string_view)> warn;
};

// kInvalidArgument for options that cannot work (no endpoints, an endpoint
// that is not an http(s) URL or carries user:password@, a cert without its
// key, a file that does not exist, an unreadable or empty password_file, a
// keepalive out of range), naming the bad option. With reject_old_cluster:
// kFailedPrecondition naming the version for a cluster older than 3.4,
// kUnavailable when no endpoint tells its version.
absl::StatusOr<std::unique_ptr<KeysApi>> NewEtcdClient(EtcdOptions options);

namespace etcd_internal {
struct HttpTransportOptions;
class HttpTransport;
// NewEtcdClient's checks of `options` (its kInvalidArgument cases), which
// also drop a trailing '/' from the endpoints and read password_file into
// password; the v3 client (registry/etcd_v3/) takes the same options.
absl::Status PrepareEtcdOptions(EtcdOptions& options);
// The transport's share of the options.
HttpTransportOptions TransportOptions(const EtcdOptions& options);
// What GET /version answered, and where.
struct VersionAt {
  std::string endpoint;
  EtcdVersion version;
};
// Asks GET /version of the endpoints in turn from endpoints[start]: the
// first that answers. kUnavailable (for reject-old-cluster) when none
// tells its version.
absl::StatusOr<VersionAt> ReadClusterVersion(
    HttpTransport& transport, const std::vector<std::string>& endpoints,
    size_t start, const CancelToken* stop);
// reject_old_cluster's check of what ReadClusterVersion read: OK for 3.4
// or newer, kFailedPrecondition naming the endpoint and its version for an
// older cluster, or the read's own error.
absl::Status CheckClusterVersion(const absl::StatusOr<VersionAt>& read);
// Whether an etcd server of `version` ("3.4.23") lets a leader that
// stalled longer than a lease's TTL revoke, once it runs again, the v3
// leases renewed on its successor meanwhile (etcd issue #15247; fixed in
// 3.4.28 and 3.5.11). False for a version it cannot read.
bool RevokesLeasesAfterAStall(absl::string_view version);
// A watch whose connection failed waits kWatchRetryFirst before
// reconnecting, doubling up to kWatchRetryMax, so a member restart costs at
// most about a second of extra latency without spinning on refused
// connections (both clients, v2 and v3).
inline constexpr absl::Duration kWatchRetryFirst = absl::Milliseconds(50);
inline constexpr absl::Duration kWatchRetryMax = absl::Seconds(1);
// Sleeps on `clock` until `until`, returning early if `cancel` (may be
// null) fires.
void SleepUnlessCancelled(Clock& clock, absl::Time until,
                          const CancelToken* cancel);
}  // namespace etcd_internal

}  // namespace leasehold::registry

#endif  // LEASEHOLD_REGISTRY_ETCD_ETCD_CLIENT_H_
