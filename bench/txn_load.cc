#include "bench/txn_load.h"

#include <algorithm>
#include <atomic>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/counting_keys.h"
#include "lease/stm.h"

namespace leasehold::bench {

absl::StatusOr<TxnLoadResult> RunTxnLoad(registry::KeysApi* keys,
                                         const TxnLoad& load) {
  CountingKeys counting(keys);
  lease::TransactionOptions options;
  options.prefix = absl::StrCat(load.domain, load.overlapping ? "o" : "d",
                                load.committers, "x", load.keys, "/");
  options.max_attempts = 1000;
  constexpr int kShared = 4;
  std::atomic<int64_t> commits{0};
  std::atomic<int64_t> runs{0};
  std::vector<absl::Status> errors(load.committers);
  const absl::Time start = absl::Now();
  const absl::Time end = start + load.duration;
  std::vector<std::thread> committers;
  for (int c = 0; c < load.committers; ++c) {
    committers.emplace_back([&, c] {
      std::mt19937 rng(c);
      while (absl::Now() < end) {
        std::vector<std::string> names;
        const uint64_t first = rng();
        for (int k = 0; k < load.keys; ++k) {
          names.push_back(
              load.overlapping
                  ? absl::StrCat(options.prefix, "shared/",
                                 (first + k) % std::max(kShared, load.keys))
                  : absl::StrCat(options.prefix, "own/", c, "/", k));
        }
        absl::StatusOr<lease::TransactionResult> r = lease::RunTransaction(
            &counting,
            [&](lease::Transaction& txn) -> absl::Status {
              ++runs;
              for (const std::string& name : names) {
                absl::StatusOr<std::optional<std::string>> v = txn.Get(name);
                if (!v.ok()) return v.status();
                int64_t n = 0;
                if (v->has_value() && !absl::SimpleAtoi(**v, &n)) {
                  return absl::DataLossError(absl::StrCat(name, ": ", **v));
                }
                txn.Put(name, absl::StrCat(n + 1));
              }
              return absl::OkStatus();
            },
            options);
        if (!r.ok()) {
          errors[c] = r.status();
          return;
        }
        ++commits;
      }
    });
  }
  for (std::thread& t : committers) t.join();
  const absl::Duration elapsed = absl::Now() - start;
  for (const absl::Status& error : errors) {
    if (!error.ok()) return error;
  }
  TxnLoadResult result;
  result.commits = commits.load();
  if (result.commits == 0)
    return absl::InternalError("no transaction committed");
  result.commits_per_second = result.commits / absl::ToDoubleSeconds(elapsed);
  result.requests_per_commit =
      static_cast<double>(counting.requests()) / result.commits;
  result.abort_rate =
      static_cast<double>(runs.load() - result.commits) / runs.load();
  return result;
}

}  // namespace leasehold::bench
