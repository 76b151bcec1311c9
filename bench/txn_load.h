// The transaction section of leasehold-bench: commits per second, requests
// per commit and the abort rate of RunTransaction (lease/stm.h) with N
// concurrent committers in one domain.
//
//   absl::StatusOr<TxnLoadResult> r =
//       RunTxnLoad(keys, {.committers = 4, .overlapping = true});
//
// Thread-safety: one run at a time per domain.
#ifndef LEASEHOLD_BENCH_TXN_LOAD_H_
#define LEASEHOLD_BENCH_TXN_LOAD_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "registry/keys_api.h"

namespace leasehold::bench {

struct TxnLoad {
  int committers = 1;
  // Each transaction increments `keys` counters: its committer's own
  // (disjoint), or `keys` of four shared by every committer (overlapping).
  int keys = 2;
  bool overlapping = false;
  absl::Duration duration = absl::Seconds(3);
  std::string domain = "/bench-txn/";
};

struct TxnLoadResult {
  int64_t commits = 0;
  double commits_per_second = 0;
  // Every KeysApi call of every committer, per commit.
  double requests_per_commit = 0;
  // Runs of apply that did not commit, of all runs.
  double abort_rate = 0;
};

absl::StatusOr<TxnLoadResult> RunTxnLoad(registry::KeysApi* keys,
                                         const TxnLoad& load);

}  // namespace leasehold::bench

#endif  // LEASEHOLD_BENCH_TXN_LOAD_H_
