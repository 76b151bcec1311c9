// EtcdCounters: what etcd itself counted, read from its own endpoints, so
// that a benchmark reports the requests etcd served rather than only the
// calls the client believes it made (a watch that etcd ends early and the
// client re-opens, say, is invisible to a KeysApi wrapper).
//
//   EtcdCounterReader etcd("http://127.0.0.1:2379");
//   absl::StatusOr<EtcdCounters> before = etcd.Read();
//   ...
//   absl::StatusOr<EtcdCounters> after = etcd.Read();
//   int64_t served = after->requests - before->requests;
//
// Thread-safety: a reader is used by one thread at a time.
#ifndef LEASEHOLD_BENCH_ETCD_COUNTERS_H_
#define LEASEHOLD_BENCH_ETCD_COUNTERS_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "bench/curl_easy.h"

namespace leasehold::bench {

struct EtcdCounters {
  // Whether etcd serves the v2 API; without it the v2 figures below are 0.
  bool v2 = true;
  // v2 keys API requests etcd received. etcd 3.4 counts every request but
  // a watch in etcd_http_received_total (one series per method) and every
  // watch in etcd_debugging_store_watch_requests_total (/metrics); this is
  // their sum. Not /v2/stats/store's gets: etcd's per-request auth check
  // reads a store key, so getsFail grows by one for every keys request.
  int64_t requests = 0;
  int64_t watches = 0;  // of which watches
  // Writes the v2 store applied or refused (/v2/stats/store: sets, creates,
  // updates, compareAndSwaps, compareAndDeletes, deletes; success + fail).
  int64_t writes = 0;
  // Watchers waiting right now (/v2/stats/store; a gauge).
  int64_t watchers = 0;
  // v3 API requests etcd's gRPC server took, by method ("Txn",
  // "LeaseGrant", "LeaseKeepAlive", ...; grpc_server_started_total on
  // /metrics: counted as they start, whatever their outcome). The JSON
  // gateway's requests pass through it: a gateway keep-alive is one
  // LeaseKeepAlive stream.
  std::map<std::string, int64_t> v3_requests;
  // Raft proposals etcd committed (etcd_server_proposals_committed_total):
  // its writes through consensus, of either API, v3 lease grants and
  // revokes (an expired lease's too) included; a keep-alive is none.
  int64_t raft_writes = 0;
  // The CPU time etcd's process used (process_cpu_seconds_total: user +
  // system, in the kernel's clock ticks, 10 ms).
  absl::Duration cpu;
};

// The v3 requests of `counters`, all methods.
int64_t V3Requests(const EtcdCounters& counters);

// Counters in `after` minus those in `before` (the gauge: `after`'s).
EtcdCounters Delta(const EtcdCounters& before, const EtcdCounters& after);

class EtcdCounterReader {
 public:
  // `endpoint`: "http://host:port", a member's client URL.
  explicit EtcdCounterReader(std::string endpoint)
      : endpoint_(std::move(endpoint)) {}

  // kUnavailable when etcd does not answer; kDataLoss when an answer lacks
  // a counter (an etcd that is not 3.4-like, a proxy in between). An etcd
  // without the v2 API (no /v2/stats/store) is read, with v2 false.
  absl::StatusOr<EtcdCounters> Read();

  // The number of v3 leases etcd holds (/v3/lease/leases; etcd counts the
  // request as a LeaseLeases one). kUnavailable / kDataLoss as Read.
  absl::StatusOr<int64_t> LiveLeases();

 private:
  // `method` `path` with `body`: the answer's body; kNotFound for a 404,
  // kUnavailable for no answer or another status.
  absl::StatusOr<std::string> Fetch(const char* method, absl::string_view path,
                                    const std::string& body);

  const std::string endpoint_;
  CurlEasy curl_;
};

}  // namespace leasehold::bench

#endif  // LEASEHOLD_BENCH_ETCD_COUNTERS_H_
