#include "bench/etcd_counters.h"

#include <map>
#include <string>
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
// Counted when a request starts: a gateway keep-alive's stream is handled
// only when the gateway closes it, which may come after its answer.
constexpr absl::string_view kGrpcStarted = "grpc_server_started_total";
constexpr absl::string_view kProposals =
    "etcd_server_proposals_committed_total";
constexpr absl::string_view kCpu = "process_cpu_seconds_total";

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

// Sums of the series of `metric` in Prometheus text (counters are printed
// as floats: 1.234567e+06), by the value of their label `label` (one sum
// under "" when `label` is empty), and whether there was a series.
std::pair<std::map<std::string, double>, bool> SumSeriesBy(
    absl::string_view text, absl::string_view metric,
    absl::string_view label = "") {
  std::map<std::string, double> sums;
  bool found = false;
  const std::string label_start = absl::StrCat(label, "=\"");
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
    std::string key;
    if (!label.empty()) {
      const absl::string_view labels = line.substr(0, space);
      const size_t at = labels.find(label_start);
      if (at == absl::string_view::npos) continue;
      const size_t from = at + label_start.size();
      key = std::string(labels.substr(from, labels.find('"', from) - from));
    }
    sums[key] += value;
    found = true;
  }
  return {std::move(sums), found};
}

// The sum over every series of `metric`, and whether there was one.
std::pair<double, bool> SumSeries(absl::string_view text,
                                  absl::string_view metric) {
  auto [sums, found] = SumSeriesBy(text, metric);
  return {found ? sums[""] : 0, found};
}

}  // namespace

EtcdCounters Delta(const EtcdCounters& before, const EtcdCounters& after) {
  EtcdCounters delta;
  delta.requests = after.requests - before.requests;
  delta.watches = after.watches - before.watches;
  delta.writes = after.writes - before.writes;
  delta.watchers = after.watchers;
  delta.v2 = after.v2;
  delta.v3_requests = after.v3_requests;
  for (const auto& [method, count] : before.v3_requests) {
    delta.v3_requests[method] -= count;
  }
  delta.raft_writes = after.raft_writes - before.raft_writes;
  delta.cpu = after.cpu - before.cpu;
  return delta;
}

int64_t V3Requests(const EtcdCounters& counters) {
  int64_t sum = 0;
  for (const auto& [method, count] : counters.v3_requests) sum += count;
  return sum;
}

absl::StatusOr<std::string> EtcdCounterReader::Fetch(const char* method,
                                                     absl::string_view path,
                                                     const std::string& body) {
  const std::string url = absl::StrCat(endpoint_, path);
  absl::StatusOr<int> code = curl_.Perform(method, url, body);
  if (!code.ok()) return code.status();
  if (*code == 404) return absl::NotFoundError(absl::StrCat(url, ": HTTP 404"));
  if (*code != 200) {
    return absl::UnavailableError(
        absl::StrCat(method, " ", url, ": HTTP ", *code));
  }
  return curl_.body();
}

absl::StatusOr<EtcdCounters> EtcdCounterReader::Read() {
  auto fetch = [&](absl::string_view path) { return Fetch("GET", path, ""); };
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
  counters.requests = static_cast<int64_t>(received + watches);
  counters.watches = static_cast<int64_t>(watches);
  const auto [proposals, has_proposals] = SumSeries(*metrics, kProposals);
  if (!has_proposals) {
    return absl::DataLossError(
        absl::StrCat(endpoint_, "/metrics: no ", kProposals));
  }
  counters.raft_writes = static_cast<int64_t>(proposals);
  for (const auto& [method, count] :
       SumSeriesBy(*metrics, kGrpcStarted, "grpc_method").first) {
    counters.v3_requests[method] = static_cast<int64_t>(count);
  }
  // Go's process collector: Linux only, but so is the bench.
  const auto [cpu, has_cpu] = SumSeries(*metrics, kCpu);
  if (!has_cpu) {
    return absl::DataLossError(absl::StrCat(endpoint_, "/metrics: no ", kCpu));
  }
  counters.cpu = absl::Seconds(cpu);

  absl::StatusOr<std::string> stats = fetch("/v2/stats/store");
  if (absl::IsNotFound(stats.status())) {
    counters.v2 = false;
    return counters;
  }
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

absl::StatusOr<int64_t> EtcdCounterReader::LiveLeases() {
  absl::StatusOr<std::string> body = Fetch("POST", "/v3/lease/leases", "{}");
  if (!body.ok()) return body.status();
  if (!absl::StrContains(*body, "\"header\"")) {
    return absl::DataLossError(absl::StrCat(
        endpoint_, "/v3/lease/leases: not etcd's answer: ", *body));
  }
  // {"header":{…},"leases":[{"ID":"…"},…]}: one "ID" per lease.
  int64_t leases = 0;
  for (size_t at = body->find("\"ID\""); at != std::string::npos;
       at = body->find("\"ID\"", at + 1)) {
    ++leases;
  }
  return leases;
}

}  // namespace leasehold::bench
