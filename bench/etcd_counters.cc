#include "bench/etcd_counters.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "registry/json_object.h"

namespace leasehold::bench {
namespace {

constexpr absl::string_view kReceived = "etcd_http_received_total";
constexpr absl::string_view kWatches =
    "etcd_debugging_store_watch_requests_total";

// /v2/stats/store's write counters.
constexpr const char* kStoreWrites[] = {"setsSuccess",
                                        "setsFail",
                                        "createSuccess",
                                        "createFail",
                                        "updateSuccess",
                                        "updateFail",
                                        "compareAndSwapSuccess",
                                        "compareAndSwapFail",
                                        "compareAndDeleteSuccess",
                                        "compareAndDeleteFail",
                                        "deleteSuccess",
                                        "deleteFail"};

// The sum over every series of `metric` in Prometheus text (counters are
// printed as floats: 1.234567e+06), and whether there was one.
std::pair<int64_t, bool> SumSeries(absl::string_view text,
                                   absl::string_view metric) {
  double sum = 0;
  bool found = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::ConsumePrefix(&line, metric) || line.empty() ||
        (line.front() != '{' && line.front() != ' ')) {
      continue;
    }
    const size_t space = line.rfind(' ');
    double value = 0;
    if (space == absl::string_view::npos ||
        !absl::SimpleAtod(line.substr(space + 1), &value)) {
      continue;
    }
    sum += value;
    found = true;
  }
  return {static_cast<int64_t>(sum), found};
}

}  // namespace

EtcdCounters Delta(const EtcdCounters& before, const EtcdCounters& after) {
  EtcdCounters delta;
  delta.requests = after.requests - before.requests;
  delta.watches = after.watches - before.watches;
  delta.writes = after.writes - before.writes;
  delta.watchers = after.watchers;
  return delta;
}

absl::StatusOr<EtcdCounters> EtcdCounterReader::Read() {
  auto fetch = [&](absl::string_view path) -> absl::StatusOr<std::string> {
    const std::string url = absl::StrCat(endpoint_, path);
    absl::StatusOr<int> code = curl_.Perform("GET", url, "");
    if (!code.ok()) return code.status();
    if (*code != 200) {
      return absl::UnavailableError(
          absl::StrCat("GET ", url, ": HTTP ", *code));
    }
    return curl_.body();
  };
  EtcdCounters counters;
  absl::StatusOr<std::string> metrics = fetch("/metrics");
  if (!metrics.ok()) return metrics.status();
  const auto [received, has_received] = SumSeries(*metrics, kReceived);
  const auto [watches, has_watches] = SumSeries(*metrics, kWatches);
  // A fresh etcd has no etcd_http_received_total series until its first
  // keys request; the watch counter is always there.
  if (!has_watches) {
    return absl::DataLossError(
        absl::StrCat(endpoint_, "/metrics: no ", kWatches));
  }
  counters.requests = received + watches;
  counters.watches = watches;

  absl::StatusOr<std::string> stats = fetch("/v2/stats/store");
  if (!stats.ok()) return stats.status();
  absl::StatusOr<registry::JsonObject> store =
      registry::JsonObject::Parse(*stats);
  if (!store.ok()) return store.status();
  auto counter = [&](const char* name) -> absl::StatusOr<int64_t> {
    std::optional<int64_t> value = store->GetInt(name);
    if (!value) {
      return absl::DataLossError(
          absl::StrCat(endpoint_, "/v2/stats/store: no ", name));
    }
    return *value;
  };
  for (const char* name : kStoreWrites) {
    absl::StatusOr<int64_t> value = counter(name);
    if (!value.ok()) return value.status();
    counters.writes += *value;
  }
  absl::StatusOr<int64_t> watchers = counter("watchers");
  if (!watchers.ok()) return watchers.status();
  counters.watchers = *watchers;
  return counters;
}

}  // namespace leasehold::bench
