// leasehold-bench: leasehold against a real etcd. The lease cycle (acquire
// → renew → release) runs next to a plain-libcurl baseline that sends the
// same HTTP requests (on etcd's v3 API, the fewest that hold a v3 lease), in
// the same run so the ratios hold on a noisy machine, with what each op
// costs etcd as etcd counts it; then renew scale (one Keeper, N leases; with
// --renew-search, the largest N it holds), both on each API etcd serves
// (--api); failover (after release, after silence), lock handoff (Mutex
// next to a naive lock, requests counted by etcd itself) and transactions.
// See bench/README.md.
//
//   leasehold-bench                      # own etcd on tmpfs, full run
//   leasehold-bench --smoke              # a few seconds (CI)
//   leasehold-bench --only cycle --svg cycle.svg   # one section, charted
//   leasehold-bench --registry etcd://127.0.0.1:2379 --json
//   leasehold-bench --registry etcd3://127.0.0.1:2379 --only cycle,renew
//
// Without --registry it starts a private etcd (loopback, free ports, data on
// tmpfs unless --on-disk, --snapshot-count=1000000, --enable-v2: both APIs)
// and stops it at exit.
// Client CPU is getrusage(RUSAGE_SELF): this process only, never the etcd
// child.

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/counting_keys.h"
#include "bench/curl_easy.h"
#include "bench/cycle_chart.h"
#include "bench/etcd_counters.h"
#include "bench/naive_lock.h"
#include "bench/txn_load.h"
#include "curl/curl.h"
#include "lease/keeper.h"
#include "lease/lease_manager.h"
#include "lease/mutex.h"
#include "lease/session.h"
#include "registry/json_object.h"
#include "registry/keys_api.h"
#include "registry/open.h"
#include "tests/testing/etcd_server.h"

namespace leasehold::bench {
namespace {

constexpr absl::Duration kTtl = absl::Seconds(10);

// An etcd API: etcd 3.4 serves v2 with --enable-v2, and v3 always.
enum class Api { kV2, kV3 };

const char* ApiName(Api api) { return api == Api::kV2 ? "v2" : "v3"; }

// v2's JSON members have no suffix; v3's end in "_v3".
const char* JsonSuffix(Api api) { return api == Api::kV2 ? "" : "_v3"; }

// An API the cycle and renew sections measure, and leasehold's client of
// it.
struct ApiRun {
  Api api;
  registry::KeysApi* keys;
};

// One worker's view of the lease cycle: three requests on one lease name.
// Each returns OK only when etcd applied the request.
class CycleClient {
 public:
  virtual ~CycleClient() = default;
  virtual absl::Status Acquire() = 0;
  virtual absl::Status Renew() = 0;
  virtual absl::Status Release() = 0;
};

// `worker` → that worker's client, with a lease name no other worker uses.
using ClientFactory =
    std::function<absl::StatusOr<std::unique_ptr<CycleClient>>(int worker)>;

// leasehold: LeaseManager::AcquireLease, Lease::Renew, Lease::Release on one
// KeysApi shared by every worker, as an application would use it.
class LeaseholdClient : public CycleClient {
 public:
  LeaseholdClient(lease::LeaseManager* leases, std::string name)
      : leases_(leases), name_(std::move(name)) {}

  absl::Status Acquire() override {
    absl::StatusOr<std::unique_ptr<lease::Lease>> lease =
        leases_->AcquireLease(name_, "bench-machine", 1, kTtl);
    if (!lease.ok()) return lease.status();
    if (*lease == nullptr) return absl::AlreadyExistsError(name_);
    lease_ = std::move(*lease);
    return absl::OkStatus();
  }
  absl::Status Renew() override { return lease_->Renew(kTtl); }
  absl::Status Release() override { return lease_->Release(); }

 private:
  lease::LeaseManager* const leases_;
  const std::string name_;
  std::unique_ptr<lease::Lease> lease_;
};

// A lease's value as leasehold writes it, the baselines' too (leasehold's
// token is random, of this length).
constexpr char kLeaseValue[] =
    R"({"MachineID":"bench-machine","Version":1,"Token":"0123456789abcdef-1"})";

// A baseline: the floor of any client, the fewest requests that hold a
// lease on one keep-alive libcurl easy handle per worker, reading back
// only the figures the next request needs, by string search.
class CurlCycleClient : public CycleClient {
 protected:
  // The body of etcd's answer when it applied the request (HTTP 200 or
  // 201); kAborted for any other answer.
  absl::StatusOr<std::string> Send(const char* method, const std::string& url,
                                   const std::string& body) {
    absl::StatusOr<int> code = curl_.Perform(method, url, body);
    if (!code.ok()) return code.status();
    if (*code != 200 && *code != 201) {
      return absl::AbortedError(
          absl::StrCat(method, " ", url, ": ", curl_.body()));
    }
    return curl_.body();
  }

  CurlEasy curl_;
};

// The number after the first `"name":` in `body`, quoted or not (etcd's v3
// gateway quotes 64-bit integers); kDataLoss when there is none.
absl::StatusOr<uint64_t> NumberAfter(const std::string& body,
                                     absl::string_view name) {
  const std::string field = absl::StrCat("\"", name, "\":");
  size_t at = body.find(field);
  if (at != std::string::npos) at += field.size();
  if (at < body.size() && body[at] == '"') ++at;
  if (at >= body.size() || !absl::ascii_isdigit(body[at])) {
    return absl::DataLossError(absl::StrCat("no ", name, " in ", body));
  }
  return std::strtoull(body.c_str() + at, nullptr, 10);
}

// v2: the three requests leasehold sends (PUT prevExist=false&ttl, PUT
// prevIndex&refresh&ttl, DELETE ?prevIndex), reading back modifiedIndex.
class CurlV2Client : public CurlCycleClient {
 public:
  CurlV2Client(const std::string& endpoint, const std::string& key)
      : url_(absl::StrCat(endpoint, "/v2/keys", key)),
        value_(absl::StrCat("value=", CurlEasy::Escape(kLeaseValue))) {}

  absl::Status Acquire() override {
    return Send("PUT", url_,
                absl::StrCat(value_, "&prevExist=false&ttl=",
                             absl::ToInt64Seconds(kTtl)));
  }
  absl::Status Renew() override {
    return Send("PUT", url_,
                absl::StrCat("prevIndex=", index_,
                             "&refresh=true&ttl=", absl::ToInt64Seconds(kTtl)));
  }
  absl::Status Release() override {
    return Send("DELETE", absl::StrCat(url_, "?prevIndex=", index_), "");
  }

 private:
  absl::Status Send(const char* method, const std::string& url,
                    const std::string& form) {
    absl::StatusOr<std::string> body = CurlCycleClient::Send(method, url, form);
    if (!body.ok()) return body.status();
    // The node comes first in etcd's answer, before any prevNode.
    absl::StatusOr<uint64_t> index = NumberAfter(*body, "modifiedIndex");
    if (!index.ok()) return index.status();
    index_ = *index;
    return absl::OkStatus();
  }

  const std::string url_;
  const std::string value_;
  uint64_t index_ = 0;
};

// v3, through etcd's JSON gateway: acquire is a lease grant and a
// transaction that puts the key on that lease if it is absent; renew is one
// keep-alive of the lease; release is the lease's revoke, which deletes the
// key with it.
class CurlV3Client : public CurlCycleClient {
 public:
  CurlV3Client(const std::string& endpoint, const std::string& key)
      : base_(absl::StrCat(endpoint, "/v3")),
        key_(absl::Base64Escape(key)),
        value_(absl::Base64Escape(kLeaseValue)) {}

  absl::Status Acquire() override {
    absl::StatusOr<std::string> granted =
        Send("POST", base_ + "/lease/grant",
             absl::StrCat("{\"TTL\":\"", absl::ToInt64Seconds(kTtl), "\"}"));
    if (!granted.ok()) return granted.status();
    absl::StatusOr<uint64_t> lease = NumberAfter(*granted, "ID");
    if (!lease.ok()) return lease.status();
    lease_ = *lease;
    absl::StatusOr<std::string> txn =
        Send("POST", base_ + "/kv/txn",
             absl::StrCat("{\"compare\":[{\"key\":\"", key_,
                          "\",\"target\":\"VERSION\",\"result\":\"EQUAL\","
                          "\"version\":\"0\"}],\"success\":[{\"request_put\":{"
                          "\"key\":\"",
                          key_, "\",\"value\":\"", value_, "\",\"lease\":\"",
                          lease_, "\"}}]}"));
    if (!txn.ok()) return txn.status();
    if (txn->find("\"succeeded\":true") == std::string::npos) {
      return absl::AlreadyExistsError(absl::StrCat("txn: ", *txn));
    }
    return absl::OkStatus();
  }
  absl::Status Renew() override {
    absl::StatusOr<std::string> kept =
        Send("POST", base_ + "/lease/keepalive", LeaseId());
    if (!kept.ok()) return kept.status();
    // A lease that is gone comes back without a TTL.
    return NumberAfter(*kept, "TTL").status();
  }
  absl::Status Release() override {
    return Send("POST", base_ + "/lease/revoke", LeaseId()).status();
  }

 private:
  std::string LeaseId() const {
    return absl::StrCat("{\"ID\":\"", lease_, "\"}");
  }

  const std::string base_;   // http://host:port/v3
  const std::string key_;    // base64
  const std::string value_;  // base64
  uint64_t lease_ = 0;
};

absl::Duration CpuTime() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto duration = [](const timeval& tv) {
    return absl::Seconds(tv.tv_sec) + absl::Microseconds(tv.tv_usec);
  };
  return duration(usage.ru_utime) + duration(usage.ru_stime);
}

struct Percentiles {
  absl::Duration p50, p99, max;
};

// REQUIRES: `samples` not empty.
Percentiles Summarize(std::vector<absl::Duration> samples) {
  std::sort(samples.begin(), samples.end());
  return {samples[samples.size() / 2],
          samples[std::min(samples.size() - 1, samples.size() * 99 / 100)],
          samples.back()};
}

struct CycleResult {
  int64_t ops = 0;  // requests (three per cycle)
  double ops_per_second = 0;
  Percentiles latency;
  double cpu_us_per_op = 0;
};

// Runs `concurrency` workers, each doing lease cycles with its own client
// until `duration` has passed. Any failed request aborts the measurement:
// with distinct names per worker, a failure is a bug or a sick etcd.
// What one run of workers did: every request's latency, the wall time and
// this process's CPU time.
struct CycleSample {
  std::vector<absl::Duration> latencies;
  absl::Duration elapsed;
  absl::Duration cpu;
};

// REQUIRES: sample.latencies not empty.
CycleResult Finish(CycleSample sample) {
  CycleResult result;
  result.ops = static_cast<int64_t>(sample.latencies.size());
  result.ops_per_second = result.ops / absl::ToDoubleSeconds(sample.elapsed);
  result.latency = Summarize(std::move(sample.latencies));
  result.cpu_us_per_op = absl::ToDoubleMicroseconds(sample.cpu) / result.ops;
  return result;
}

absl::Status WithPrefix(absl::string_view prefix, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(prefix, status.message()));
}

absl::StatusOr<CycleSample> RunCycles(const ClientFactory& factory,
                                      int concurrency,
                                      absl::Duration duration) {
  std::vector<std::unique_ptr<CycleClient>> clients;
  for (int w = 0; w < concurrency; ++w) {
    absl::StatusOr<std::unique_ptr<CycleClient>> client = factory(w);
    if (!client.ok()) return client.status();
    clients.push_back(std::move(*client));
  }
  std::vector<std::vector<absl::Duration>> latencies(concurrency);
  std::vector<absl::Status> errors(concurrency);
  const absl::Duration cpu_start = CpuTime();
  const absl::Time start = absl::Now();
  const absl::Time end = start + duration;
  std::vector<std::thread> threads;
  for (int w = 0; w < concurrency; ++w) {
    threads.emplace_back([&, w] {
      CycleClient& client = *clients[w];
      const std::function<absl::Status()> cycle[] = {
          [&] { return client.Acquire(); }, [&] { return client.Renew(); },
          [&] { return client.Release(); }};
      while (absl::Now() < end) {
        for (const auto& op : cycle) {
          const absl::Time sent = absl::Now();
          absl::Status status = op();
          latencies[w].push_back(absl::Now() - sent);
          if (!status.ok()) {
            errors[w] = status;
            return;
          }
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const absl::Duration elapsed = absl::Now() - start;
  const absl::Duration cpu = CpuTime() - cpu_start;
  for (const absl::Status& error : errors) {
    if (!error.ok()) return error;
  }

  CycleSample sample{{}, elapsed, cpu};
  for (const auto& l : latencies) {
    sample.latencies.insert(sample.latencies.end(), l.begin(), l.end());
  }
  return sample;
}

// Baseline and leasehold in alternating slices (B L, L B, B L, ...), so
// a neighbour's load or etcd's warm-up weighs on both alike.
absl::StatusOr<std::pair<CycleResult, CycleResult>> CompareCycles(
    const ClientFactory& baseline, const ClientFactory& leasehold,
    int concurrency, absl::Duration duration, int slices) {
  CycleSample base, lh;
  for (int slice = 0; slice < slices; ++slice) {
    for (int turn = 0; turn < 2; ++turn) {
      const bool base_turn = (turn + slice) % 2 == 0;
      absl::StatusOr<CycleSample> sample = RunCycles(
          base_turn ? baseline : leasehold, concurrency, duration / slices);
      if (!sample.ok()) {
        return WithPrefix(base_turn ? "baseline: " : "leasehold: ",
                          sample.status());
      }
      CycleSample& into = base_turn ? base : lh;
      into.latencies.insert(into.latencies.end(), sample->latencies.begin(),
                            sample->latencies.end());
      into.elapsed += sample->elapsed;
      into.cpu += sample->cpu;
    }
  }
  for (const CycleSample* sample : {&base, &lh}) {
    if (sample->latencies.empty()) {
      return absl::InternalError("no request completed");
    }
  }
  return std::make_pair(Finish(std::move(base)), Finish(std::move(lh)));
}

int64_t RssBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

struct RenewScaleResult {
  int leases = 0;
  absl::Duration ttl;
  absl::Duration acquire_time;  // all N, 16 threads
  double renews_per_second = 0;
  double expected_renews_per_second = 0;  // leases / (ttl × renew fraction)
  // Writes etcd's v2 store counted while holding, per second; nullopt
  // without its counters or on v3.
  std::optional<double> etcd_writes_per_second;
  // Raft proposals etcd committed while holding, per second, and etcd's
  // CPU time meanwhile, as % of one core; nullopt without its counters.
  std::optional<double> raft_writes_per_second;
  std::optional<double> etcd_cpu_percent;
  // Requests etcd counted while holding (v2 keys requests or v3 gRPC
  // requests) per renew; nullopt without its counters.
  std::optional<double> etcd_requests_per_renew;
  int lost = 0;
  double cpu_percent = 0;  // of one core, while holding
  double rss_bytes_per_lease = 0;
};

// The etcd API a renew-scale run measures, and etcd's own counters.
struct RenewTarget {
  ApiRun api;
  EtcdCounterReader* etcd;  // null: etcd's counters are not readable
  // The v3 leases etcd held before the bench began; nullopt: unknown.
  std::optional<int64_t> idle_leases;
};

// Waits, up to `wait`, until etcd holds no v3 leases but those it held
// before the bench began and the run's `own`: a v3 lease may outlive its
// key's release until its TTL, and its expiry is a raft write that is not
// the run's.
void AwaitLeftoverLeases(const RenewTarget& target, int64_t own,
                         absl::Duration wait) {
  if (target.etcd == nullptr || !target.idle_leases.has_value()) return;
  const absl::Time deadline = absl::Now() + wait;
  while (absl::Now() < deadline) {
    absl::StatusOr<int64_t> leases = target.etcd->LiveLeases();
    if (!leases.ok() || *leases <= *target.idle_leases + own) return;
    absl::SleepFor(absl::Milliseconds(200));
  }
}

// Acquires `leases` leases with TTL `ttl`, each kept by one Keeper (default
// options) from the moment it is granted, as an agent that takes on work
// would; once all are held (and leases left by earlier runs are gone), the
// Keeper holds them for `hold`; then they are released. `target.etcd` (may
// be null) reads etcd's own write counts.
absl::StatusOr<RenewScaleResult> RunRenewScale(const RenewTarget& target,
                                               int leases, absl::Duration ttl,
                                               absl::Duration hold) {
  registry::KeysApi* const keys = target.api.keys;
  EtcdCounterReader* const etcd = target.etcd;
  // Names never repeat: a run that failed leaves its keys until their TTL.
  static std::atomic<int> runs{0};
  CountingKeys counting(keys);
  lease::LeaseManager manager(
      &counting, {.prefix = absl::StrCat("/bench-renew/", runs++, "/")});
  RenewScaleResult result;
  result.leases = leases;
  result.ttl = ttl;
  // Hands memory freed by earlier runs back, so the RSS growth is this
  // run's.
  malloc_trim(0);
  const int64_t rss_start = RssBytes();

  constexpr int kAcquirers = 16;
  lease::Keeper keeper;
  std::vector<std::shared_ptr<lease::KeptLease>> kept(leases);
  std::vector<absl::Status> errors(kAcquirers);
  const absl::Time acquire_start = absl::Now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kAcquirers; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < leases; i += kAcquirers) {
        absl::StatusOr<std::unique_ptr<lease::Lease>> lease =
            manager.AcquireLease(absl::StrCat("l", i), "bench-machine", 1, ttl);
        if (!lease.ok() || *lease == nullptr) {
          errors[t] = lease.ok() ? absl::AlreadyExistsError(absl::StrCat(
                                       "lease l", i, " is held already"))
                                 : lease.status();
          return;
        }
        kept[i] = keeper.Add(std::move(*lease));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  result.acquire_time = absl::Now() - acquire_start;
  for (const absl::Status& error : errors) {
    if (!error.ok()) {
      keeper.Stop(/*release=*/true);
      return error;
    }
  }
  result.rss_bytes_per_lease =
      static_cast<double>(RssBytes() - rss_start) / leases;

  AwaitLeftoverLeases(target, target.api.api == Api::kV3 ? leases : 0,
                      std::max(ttl, kTtl) + absl::Seconds(2));
  std::optional<EtcdCounters> etcd_start;
  if (etcd != nullptr) {
    absl::StatusOr<EtcdCounters> read = etcd->Read();
    if (!read.ok()) return read.status();
    etcd_start = *read;
  }
  const int64_t renews_start = counting.renews();
  const absl::Duration cpu_start = CpuTime();
  absl::SleepFor(hold);
  result.cpu_percent = 100 * absl::FDivDuration(CpuTime() - cpu_start, hold);
  const int64_t renews = counting.renews() - renews_start;
  result.renews_per_second = renews / absl::ToDoubleSeconds(hold);
  if (etcd_start.has_value()) {
    absl::StatusOr<EtcdCounters> end = etcd->Read();
    if (!end.ok()) return end.status();
    const EtcdCounters delta = Delta(*etcd_start, *end);
    if (target.api.api == Api::kV2) {
      result.etcd_writes_per_second =
          delta.writes / absl::ToDoubleSeconds(hold);
    }
    result.raft_writes_per_second =
        delta.raft_writes / absl::ToDoubleSeconds(hold);
    result.etcd_cpu_percent = 100 * absl::FDivDuration(delta.cpu, hold);
    if (renews > 0) {
      result.etcd_requests_per_renew =
          static_cast<double>(target.api.api == Api::kV2 ? delta.requests
                                                         : V3Requests(delta)) /
          renews;
    }
  }
  result.expected_renews_per_second =
      leases /
      (absl::ToDoubleSeconds(ttl) * lease::KeeperOptions{}.renew_fraction);
  for (const auto& k : kept) {
    if (k->state() == lease::LeaseState::kLost) ++result.lost;
  }
  keeper.Stop(/*release=*/true);
  return result;
}

// The largest number of leases one Keeper held for a TTL with zero losses,
// and the probes that found it.
struct SearchResult {
  absl::Duration ttl;
  int largest_held = 0;              // 0: not even the first probe
  std::optional<int> smallest_lost;  // nullopt: the cap was held
  std::vector<std::pair<int, absl::StatusOr<RenewScaleResult>>> probes;
};

// What a search reports after each probe (they take minutes).
using ProbeCallback =
    std::function<void(int leases, const absl::StatusOr<RenewScaleResult>&)>;

// Doubles N from `start` until a probe loses a lease (or fails) or `cap`
// is held, then halves the gap between the largest N held and the
// smallest lost until it is within 10% of the held one.
SearchResult SearchLargestHeld(const RenewTarget& target, absl::Duration ttl,
                               absl::Duration hold, int start, int cap,
                               const ProbeCallback& on_probe) {
  SearchResult search;
  search.ttl = ttl;
  auto held = [&](int leases) {
    absl::StatusOr<RenewScaleResult> r =
        RunRenewScale(target, leases, ttl, hold);
    on_probe(leases, r);
    const bool ok = r.ok() && r->lost == 0;
    search.probes.emplace_back(leases, std::move(r));
    return ok;
  };
  for (int leases = std::min(start, cap);; leases = std::min(2 * leases, cap)) {
    if (!held(leases)) {
      search.smallest_lost = leases;
      break;
    }
    search.largest_held = leases;
    if (leases == cap) break;
  }
  while (search.smallest_lost.has_value() &&
         *search.smallest_lost - search.largest_held >
             std::max(search.largest_held / 10, 1)) {
    const int leases =
        search.largest_held + (*search.smallest_lost - search.largest_held) / 2;
    if (held(leases)) {
      search.largest_held = leases;
    } else {
      search.smallest_lost = leases;
    }
  }
  return search;
}

// How the holder goes away in a failover round.
enum class Departure {
  kRelease,  // it calls Release
  kSilent,   // it stops renewing (a crash, a partition)
};

struct FailoverResult {
  int rounds = 0;
  Percentiles latency;
};

// The holder goes away → a standby blocked in WaitForChange acquires. The
// time to the standby's AcquireLease returning, from the start of Release
// (kRelease) or from the holder's own expiry(), its grant's send time plus
// the TTL (kSilent: how long after the TTL the lease changed hands).
absl::StatusOr<FailoverResult> RunFailover(registry::KeysApi* keys, int rounds,
                                           Departure departure) {
  lease::LeaseManager manager(keys, {.prefix = "/bench-failover/"});
  // A silent holder's lease runs out: the shortest etcd TTL keeps rounds
  // short.
  const absl::Duration ttl =
      departure == Departure::kSilent ? absl::Seconds(1) : kTtl;
  std::vector<absl::Duration> latencies;
  for (int r = 0; r < rounds; ++r) {
    absl::StatusOr<std::unique_ptr<lease::Lease>> holder =
        manager.AcquireLease("leader", "holder", 1, ttl);
    if (!holder.ok()) return holder.status();
    if (*holder == nullptr) return absl::AlreadyExistsError("leader is held");
    absl::Status standby_status;
    absl::Time acquired;
    std::thread standby([&] {
      absl::StatusOr<std::unique_ptr<lease::Lease>> change =
          manager.WaitForChange("leader", (*holder)->index(),
                                absl::Now() + ttl + absl::Seconds(5));
      if (!change.ok()) {
        standby_status = change.status();
        return;
      }
      absl::StatusOr<std::unique_ptr<lease::Lease>> mine =
          manager.AcquireLease("leader", "standby", 1, kTtl);
      acquired = absl::Now();
      if (!mine.ok() || *mine == nullptr) {
        standby_status = mine.ok() ? absl::AbortedError("standby lost the race")
                                   : mine.status();
        return;
      }
      standby_status = (*mine)->Release();
    });
    // The holder's expiry(): its grant was sent one TTL before.
    absl::Time gone = (*holder)->expiry();
    absl::Status release;
    if (departure == Departure::kRelease) {
      // Let the standby reach its watch (a read, then a long poll).
      absl::SleepFor(absl::Milliseconds(20));
      gone = absl::Now();
      release = (*holder)->Release();
    }
    standby.join();
    if (!release.ok()) return release;
    if (!standby_status.ok()) return standby_status;
    latencies.push_back(acquired - gone);
  }
  return FailoverResult{rounds, Summarize(std::move(latencies))};
}

// One contender of a lock handoff run.
class Contender {
 public:
  virtual ~Contender() = default;
  virtual absl::Status Lock(absl::Time deadline) = 0;
  virtual absl::Status Unlock() = 0;
};

// leasehold's Mutex on a Session of its own.
class MutexContender : public Contender {
 public:
  explicit MutexContender(std::unique_ptr<lease::Session> session)
      : session_(std::move(session)), mutex_(session_.get(), "handoff") {}
  absl::Status Lock(absl::Time deadline) override {
    return mutex_.Lock(deadline);
  }
  absl::Status Unlock() override { return mutex_.Unlock(); }

 private:
  const std::unique_ptr<lease::Session> session_;
  lease::Mutex mutex_;
};

class NaiveContender : public Contender {
 public:
  explicit NaiveContender(registry::KeysApi* keys)
      : lock_(keys, "/bench-naive/handoff", lease::SessionOptions{}.ttl) {}
  absl::Status Lock(absl::Time deadline) override {
    return lock_.Lock(deadline);
  }
  absl::Status Unlock() override { return lock_.Unlock(); }

 private:
  NaiveLock lock_;
};

enum class LockKind { kMutex, kNaive };

struct HandoffResult {
  int contenders = 0;
  absl::Duration total;  // first unlock → last contender unlocked
  Percentiles handoff;   // Unlock called → the next Lock returns
  // Per handoff: every KeysApi call of this process, and of those the
  // session keep-alive writes.
  double requests_per_handoff = 0;
  double refreshes_per_handoff = 0;
  // What etcd counted during the handoffs (totals); nullopt when its
  // counters were not read.
  std::optional<EtcdCounters> etcd;
};

// `contenders` contenders on one lock (Mutex: each on its own Session, one
// shared Keeper; naive: no session, a TTL on the lock key) wait behind a
// gate holder; then the lock passes from one to the next. Requests count
// every KeysApi call in the process while it does, and every request etcd
// received meanwhile (`etcd`, when it is not null).
absl::StatusOr<HandoffResult> RunLockHandoff(registry::KeysApi* keys,
                                             EtcdCounterReader* etcd,
                                             int contenders, LockKind kind) {
  CountingKeys counting(keys);
  lease::Keeper keeper;
  lease::SessionOptions options;
  options.prefix = "/bench-lock/";
  options.keeper = &keeper;
  std::vector<std::unique_ptr<Contender>> locks;
  for (int i = 0; i <= contenders; ++i) {
    if (kind == LockKind::kNaive) {
      locks.push_back(std::make_unique<NaiveContender>(&counting));
      continue;
    }
    absl::StatusOr<std::unique_ptr<lease::Session>> session =
        lease::Session::Create(&counting, options);
    if (!session.ok()) return session.status();
    locks.push_back(std::make_unique<MutexContender>(std::move(*session)));
  }
  // A contender starts waiting with one call: Mutex queues a key (sessions'
  // keys are in-order keys too, but they exist already), the naive lock
  // watches after its create failed.
  auto waits = [&] {
    return kind == LockKind::kMutex ? counting.creates() : counting.watches();
  };
  Contender& gate = *locks[0];
  if (absl::Status s = gate.Lock(absl::Now() + absl::Seconds(5)); !s.ok())
    return s;

  const int64_t waits_before = waits();
  std::mutex mu;
  absl::Time unlocked;  // guarded by mu: when the last holder called Unlock
  std::vector<absl::Duration> handoffs(contenders);
  std::vector<absl::Status> errors(contenders);
  // The naive lock at 1,000 contenders takes minutes.
  const absl::Time deadline = absl::Now() + absl::Minutes(20);
  std::vector<std::thread> threads;
  for (int i = 0; i < contenders; ++i) {
    threads.emplace_back([&, i] {
      Contender& lock = *locks[i + 1];
      errors[i] = lock.Lock(deadline);
      if (!errors[i].ok()) return;
      {
        std::lock_guard<std::mutex> guard(mu);
        handoffs[i] = absl::Now() - unlocked;
        unlocked = absl::Now();
      }
      errors[i] = lock.Unlock();
    });
  }
  // Every contender waits, so each handoff is to a waiter.
  while (waits() < waits_before + contenders && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  absl::SleepFor(absl::Milliseconds(100));
  std::optional<EtcdCounters> etcd_start;
  if (etcd != nullptr) {
    absl::StatusOr<EtcdCounters> read = etcd->Read();
    if (!read.ok()) return read.status();
    etcd_start = *read;
  }
  const int64_t requests_start = counting.requests();
  const int64_t refreshes_start = counting.renews();
  const absl::Time start = absl::Now();
  {
    std::lock_guard<std::mutex> guard(mu);
    unlocked = absl::Now();
  }
  absl::Status gate_unlock = gate.Unlock();
  for (std::thread& t : threads) t.join();
  HandoffResult result;
  result.total = absl::Now() - start;
  if (!gate_unlock.ok()) return gate_unlock;
  for (const absl::Status& error : errors) {
    if (!error.ok()) return error;
  }
  result.contenders = contenders;
  result.handoff = Summarize(std::move(handoffs));
  result.requests_per_handoff =
      static_cast<double>(counting.requests() - requests_start) / contenders;
  result.refreshes_per_handoff =
      static_cast<double>(counting.renews() - refreshes_start) / contenders;
  if (etcd_start.has_value()) {
    absl::StatusOr<EtcdCounters> end = etcd->Read();
    if (!end.ok()) return end.status();
    result.etcd = Delta(*etcd_start, *end);
  }
  return result;
}

// Renew-scale figures: the table's header, one row, one JSON object.
std::string RenewHeader() {
  return absl::StrFormat(
      "%-7s %10s %10s %10s %10s %10s %6s %8s %11s %10s %10s\n", "leases",
      "acquire s", "renews/s", "expected/s", "etcd w/s", "raft w/s", "lost",
      "cpu %", "RSS B/lease", "etcd cpu %", "etcd r/rnw");
}

// A figure that may be missing (etcd's counters were not readable): with
// `decimals` decimals, or `missing` ("-" in a table, null in JSON).
std::string Figure(std::optional<double> value, int decimals,
                   const char* missing) {
  return value.has_value() ? absl::StrFormat("%.*f", decimals, *value)
                           : std::string(missing);
}

std::string RenewRow(const RenewScaleResult& r) {
  return absl::StrFormat(
      "%-7d %10.2f %10.0f %10.0f %10s %10s %6d %8.1f %11.0f %10s %10s\n",
      r.leases, absl::ToDoubleSeconds(r.acquire_time), r.renews_per_second,
      r.expected_renews_per_second, Figure(r.etcd_writes_per_second, 0, "-"),
      Figure(r.raft_writes_per_second, 0, "-"), r.lost, r.cpu_percent,
      r.rss_bytes_per_lease, Figure(r.etcd_cpu_percent, 1, "-"),
      Figure(r.etcd_requests_per_renew, 2, "-"));
}

std::string RenewJson(const RenewScaleResult& r) {
  return absl::StrFormat(
      "{\"leases\":%d,\"ttl_s\":%d,\"acquire_s\":%.2f,\"renews_per_s\":%.1f,"
      "\"expected_renews_per_s\":%.1f,\"etcd_writes_per_s\":%s,"
      "\"etcd_raft_writes_per_s\":%s,\"lost\":%d,\"cpu_percent\":%.1f,"
      "\"rss_bytes_per_lease\":%.0f,\"etcd_cpu_percent\":%s,"
      "\"etcd_requests_per_renew\":%s}",
      r.leases, absl::ToInt64Seconds(r.ttl),
      absl::ToDoubleSeconds(r.acquire_time), r.renews_per_second,
      r.expected_renews_per_second, Figure(r.etcd_writes_per_second, 1, "null"),
      Figure(r.raft_writes_per_second, 1, "null"), r.lost, r.cpu_percent,
      r.rss_bytes_per_lease, Figure(r.etcd_cpu_percent, 1, "null"),
      Figure(r.etcd_requests_per_renew, 3, "null"));
}

struct Flags {
  std::string registry;  // empty: start our own etcd
  // The APIs the cycle and renew sections measure; empty: every one etcd
  // serves.
  std::vector<Api> apis;
  bool json = false;
  bool smoke = false;
  bool on_disk = false;
  std::set<std::string, std::less<>> sections;  // filled with all by default
  std::string svg;                              // empty: no chart
  absl::Duration seconds = absl::Seconds(3);
  std::vector<int> renew_leases = {1000, 10000, 50000};
  absl::Duration renew_ttl = absl::Seconds(10);
  bool renew_search = false;
  int renew_search_max = 200000;
  int failover_rounds = 100;
  int silent_rounds = 10;
  int lock_contenders = 1000;
};

// What the sections share; each adds its figures to `json` as members of
// the one object printed at the end.
struct Run {
  const Flags& flags;
  registry::KeysApi* keys;   // the --registry URI's API
  Api api;                   // which one that is
  std::vector<ApiRun> apis;  // what the cycle and renew sections measure
  EtcdCounterReader* etcd;   // null: etcd's counters are not readable
  // The v3 leases etcd held before the bench began; nullopt: unknown.
  std::optional<int64_t> idle_leases;
  std::string endpoint;  // host:port, for the baseline
  std::ostream* svg;     // null: no chart
  // The baseline's best lease-cycle ops/s, every request a write: how fast
  // this etcd writes. nullopt until the cycle section has run.
  std::optional<double> etcd_write_rate;
  std::vector<std::string> json;
};

std::string Ms(absl::Duration d) {
  return absl::StrFormat("%.3f", absl::ToDoubleMilliseconds(d));
}

// "; etcd wrote up to N/s above", when the cycle section measured it.
std::string WriteRateNote(const Run& run) {
  return run.etcd_write_rate.has_value()
             ? absl::StrFormat("; etcd wrote up to %.0f/s above",
                               *run.etcd_write_rate)
             : std::string();
}

// What one op of the lease cycle cost etcd, per op, as etcd counted it.
struct OpCost {
  double requests = 0;  // v2: keys requests; v3: gRPC requests
  std::map<std::string, double> methods;  // v3: requests by gRPC method
  double raft_writes = 0;
  std::optional<double> leases;  // v3: the change in leases etcd holds
  double etcd_cpu_us = 0;        // etcd's CPU time
};

constexpr const char* kCycleOps[] = {"acquire", "renew", "release"};

// `ops` clients (from `factory`) each acquire, then each renew, then each
// release, one request at a time, with etcd's counters read around each
// of the three steps: what acquire, renew and release cost etcd.
absl::StatusOr<std::vector<OpCost>> CountCycleCost(const ClientFactory& factory,
                                                   Api api,
                                                   EtcdCounterReader& etcd,
                                                   int ops) {
  std::vector<std::unique_ptr<CycleClient>> clients;
  for (int w = 0; w < ops; ++w) {
    absl::StatusOr<std::unique_ptr<CycleClient>> client = factory(w);
    if (!client.ok()) return client.status();
    clients.push_back(std::move(*client));
  }
  const std::function<absl::Status(CycleClient&)> steps[] = {
      [](CycleClient& c) { return c.Acquire(); },
      [](CycleClient& c) { return c.Renew(); },
      [](CycleClient& c) { return c.Release(); }};
  std::vector<OpCost> costs;
  for (size_t i = 0; i < std::size(steps); ++i) {
    // The lease count is a v3 request of its own: read outside the window.
    std::optional<int64_t> leases_before;
    if (api == Api::kV3) {
      absl::StatusOr<int64_t> leases = etcd.LiveLeases();
      if (!leases.ok()) return leases.status();
      leases_before = *leases;
    }
    absl::StatusOr<EtcdCounters> before = etcd.Read();
    if (!before.ok()) return before.status();
    for (const auto& client : clients) {
      if (absl::Status s = steps[i](*client); !s.ok()) {
        return WithPrefix(absl::StrCat(kCycleOps[i], ": "), s);
      }
    }
    absl::StatusOr<EtcdCounters> after = etcd.Read();
    if (!after.ok()) return after.status();
    const EtcdCounters delta = Delta(*before, *after);
    OpCost cost;
    cost.raft_writes = static_cast<double>(delta.raft_writes) / ops;
    cost.etcd_cpu_us = absl::ToDoubleMicroseconds(delta.cpu) / ops;
    if (api == Api::kV2) {
      cost.requests = static_cast<double>(delta.requests) / ops;
    } else {
      cost.requests = static_cast<double>(V3Requests(delta)) / ops;
      for (const auto& [method, count] : delta.v3_requests) {
        if (count != 0) cost.methods[method] = static_cast<double>(count) / ops;
      }
      absl::StatusOr<int64_t> leases = etcd.LiveLeases();
      if (!leases.ok()) return leases.status();
      cost.leases = static_cast<double>(*leases - *leases_before) / ops;
    }
    costs.push_back(std::move(cost));
  }
  return costs;
}

// The requests-per-op table: a client's three ops on one API.
struct CycleCost {
  Api api;
  const char* client;
  std::vector<OpCost> ops;  // acquire, renew, release
};

void PrintCycleCosts(const std::vector<CycleCost>& costs, int ops) {
  std::cout << absl::StrFormat(
      "\nrequests per op, as etcd counted them (%d of each op, one at a "
      "time; requests: v2 keys requests or v3 gRPC requests, by method; "
      "raft writes: proposals committed; leases: change in the v3 leases "
      "etcd holds; etcd's CPU time)\n%-4s %-9s %-8s %9s %12s %7s %12s  %s\n",
      ops, "api", "client", "op", "requests", "raft writes", "leases",
      "etcd cpu us", "by method");
  for (const CycleCost& cost : costs) {
    for (size_t i = 0; i < cost.ops.size(); ++i) {
      const OpCost& op = cost.ops[i];
      std::vector<std::string> methods;
      for (const auto& [method, n] : op.methods) {
        methods.push_back(absl::StrFormat("%s %.2f", method, n));
      }
      std::cout << absl::StrFormat(
          "%-4s %-9s %-8s %9.2f %12.2f %7s %12.0f  %s\n", ApiName(cost.api),
          cost.client, kCycleOps[i], op.requests, op.raft_writes,
          Figure(op.leases, 2, "-"), op.etcd_cpu_us,
          absl::StrJoin(methods, ", "));
    }
  }
}

// {"v2":{"baseline":{"acquire":{…},…},"leasehold":{…}},"v3":{…}}
std::string CycleCostsJson(const std::vector<CycleCost>& costs) {
  std::map<std::string, std::map<std::string, std::string>> by_api;
  for (const CycleCost& cost : costs) {
    std::vector<std::string> ops;
    for (size_t i = 0; i < cost.ops.size(); ++i) {
      const OpCost& op = cost.ops[i];
      std::vector<std::string> methods;
      for (const auto& [method, n] : op.methods) {
        methods.push_back(absl::StrFormat("\"%s\":%.3f", method, n));
      }
      ops.push_back(absl::StrFormat(
          "\"%s\":{\"requests\":%.3f,\"raft_writes\":%.3f,\"leases\":%s,"
          "\"etcd_cpu_us\":%.1f,\"by_method\":{%s}}",
          kCycleOps[i], op.requests, op.raft_writes,
          Figure(op.leases, 3, "null"), op.etcd_cpu_us,
          absl::StrJoin(methods, ",")));
    }
    by_api[ApiName(cost.api)][cost.client] =
        absl::StrCat("{", absl::StrJoin(ops, ","), "}");
  }
  std::vector<std::string> apis;
  for (const auto& [api, clients] : by_api) {
    std::vector<std::string> members;
    for (const auto& [client, json] : clients) {
      members.push_back(absl::StrCat("\"", client, "\":", json));
    }
    apis.push_back(
        absl::StrCat("\"", api, "\":{", absl::StrJoin(members, ","), "}"));
  }
  return absl::StrCat("{", absl::StrJoin(apis, ","), "}");
}

// How many of each op the requests-per-op counts take: enough that etcd's
// CPU time, counted in 10 ms ticks, is within 10 us per op.
int CostOps(const Flags& flags) { return flags.smoke ? 20 : 1000; }

// The lease cycle on one API: leasehold against that API's baseline.
absl::Status CycleOnApi(Run& run, const ApiRun& api, bool chart_it,
                        std::vector<CycleCost>& costs) {
  const Flags& flags = run.flags;
  // Same key length for both, so the requests are byte-for-byte alike but
  // for the key and token.
  lease::LeaseManager leases(api.keys, {.prefix = "/bench-lh/"});
  const ClientFactory leasehold =
      [&](int w) -> absl::StatusOr<std::unique_ptr<CycleClient>> {
    return std::make_unique<LeaseholdClient>(&leases, absl::StrCat("w", w));
  };
  const ClientFactory baseline =
      [&](int w) -> absl::StatusOr<std::unique_ptr<CycleClient>> {
    const std::string key = absl::StrCat("/bench-cu/lease/w", w);
    if (api.api == Api::kV2) {
      return std::make_unique<CurlV2Client>(run.endpoint, key);
    }
    return std::make_unique<CurlV3Client>(run.endpoint, key);
  };
  // Counted before the timed runs, whose leftovers (v3 leases that expire
  // after their keys' release) would add raft writes to the counts.
  if (run.etcd != nullptr) {
    const int ops = CostOps(flags);
    // etcd's first requests of a kind cost it more CPU: a first baseline
    // pass, not reported, warms it up.
    const std::pair<const char*, const ClientFactory*> passes[] = {
        {"warm-up", &baseline},
        {"baseline", &baseline},
        {"leasehold", &leasehold}};
    for (size_t pass = 0; pass < std::size(passes); ++pass) {
      const auto& [client, factory] = passes[pass];
      absl::StatusOr<std::vector<OpCost>> cost =
          CountCycleCost(*factory, api.api, *run.etcd, ops);
      if (!cost.ok()) {
        return WithPrefix(absl::StrCat(client, " requests per op: "),
                          cost.status());
      }
      if (pass > 0) costs.push_back({api.api, client, *std::move(cost)});
    }
  }

  const std::vector<int> levels =
      flags.smoke ? std::vector<int>{1, 4} : std::vector<int>{1, 4, 16, 64};
  const std::string conditions = absl::StrFormat(
      "%s each, in alternating slices; etcd %s",
      absl::FormatDuration(flags.seconds),
      flags.registry.empty() ? (flags.on_disk ? "on disk" : "on tmpfs")
                             : registry::RedactUri(flags.registry));
  if (!flags.json) {
    std::cout << absl::StrFormat(
        "lease cycle, etcd %s API (acquire, renew, release; %s)\n"
        "%-5s %-9s %10s %9s %9s %9s %10s\n",
        ApiName(api.api), conditions, "conc", "client", "ops/s", "p50 ms",
        "p99 ms", "max ms", "cpu us/op");
  }
  std::string json = absl::StrCat("\"lease_cycle", JsonSuffix(api.api), "\":[");
  double etcd_write_rate = 0;
  std::vector<CyclePoint> chart;
  for (int concurrency : levels) {
    absl::StatusOr<std::pair<CycleResult, CycleResult>> compared =
        CompareCycles(baseline, leasehold, concurrency, flags.seconds,
                      flags.smoke ? 1 : 3);
    if (!compared.ok()) {
      return WithPrefix(absl::StrCat("concurrency ", concurrency, ": "),
                        compared.status());
    }
    const CycleResult* base = &compared->first;
    const CycleResult* lh = &compared->second;
    etcd_write_rate = std::max(etcd_write_rate, base->ops_per_second);
    chart.push_back({concurrency, base->ops_per_second, lh->ops_per_second,
                     base->cpu_us_per_op, lh->cpu_us_per_op});
    const double ratio_ops = lh->ops_per_second / base->ops_per_second;
    auto ratio = [](absl::Duration a, absl::Duration b) {
      return absl::FDivDuration(a, b);
    };
    const double ratio_cpu = lh->cpu_us_per_op / base->cpu_us_per_op;
    if (flags.json) {
      auto figures = [](const CycleResult& r) {
        return absl::StrFormat(
            "{\"ops\":%d,\"ops_per_s\":%.1f,\"p50_ms\":%s,\"p99_ms\":%s,"
            "\"max_ms\":%s,\"cpu_us_per_op\":%.1f}",
            r.ops, r.ops_per_second, Ms(r.latency.p50), Ms(r.latency.p99),
            Ms(r.latency.max), r.cpu_us_per_op);
      };
      if (concurrency != levels.front()) json += ",";
      absl::StrAppend(
          &json, "{\"concurrency\":", concurrency,
          ",\"leasehold\":", figures(*lh), ",\"baseline\":", figures(*base),
          absl::StrFormat(",\"ratio\":{\"ops_per_s\":%.3f,\"p50\":%.3f,"
                          "\"p99\":%.3f,\"max\":%.3f,\"cpu_per_op\":%.3f}}",
                          ratio_ops, ratio(lh->latency.p50, base->latency.p50),
                          ratio(lh->latency.p99, base->latency.p99),
                          ratio(lh->latency.max, base->latency.max),
                          ratio_cpu));
    } else {
      auto row = [&](const char* who, const CycleResult& r) {
        std::cout << absl::StrFormat("%-5d %-9s %10.0f %9s %9s %9s %10.1f\n",
                                     concurrency, who, r.ops_per_second,
                                     Ms(r.latency.p50), Ms(r.latency.p99),
                                     Ms(r.latency.max), r.cpu_us_per_op);
      };
      row("baseline", *base);
      row("leasehold", *lh);
      std::cout << absl::StrFormat(
          "%-5d %-9s %9.2fx %8.2fx %8.2fx %8.2fx %9.2fx\n", concurrency,
          "ratio", ratio_ops, ratio(lh->latency.p50, base->latency.p50),
          ratio(lh->latency.p99, base->latency.p99),
          ratio(lh->latency.max, base->latency.max), ratio_cpu);
    }
  }
  run.json.push_back(json + "]");
  // Every v2 baseline request is a write; a v3 renew is none.
  if (api.api == Api::kV2) {
    run.etcd_write_rate = etcd_write_rate;
    run.json.push_back(
        absl::StrFormat("\"etcd_write_rate\":%.1f", etcd_write_rate));
  }
  if (chart_it && run.svg != nullptr) {
    *run.svg << CycleChartSvg(
        absl::StrCat("lease cycle on etcd's ", ApiName(api.api),
                     " API: acquire, renew, release (", conditions, ")"),
        chart);
    run.svg->flush();
    if (!*run.svg) {
      return absl::UnavailableError(
          absl::StrCat("writing --svg ", flags.svg, " failed"));
    }
  }
  return absl::OkStatus();
}

// The lease cycle on each API measured, the first one charted, then what
// each op costs etcd on each.
absl::Status CycleSection(Run& run) {
  std::vector<CycleCost> costs;
  for (size_t i = 0; i < run.apis.size(); ++i) {
    if (!run.flags.json && i > 0) std::cout << "\n";
    if (absl::Status s = CycleOnApi(run, run.apis[i], i == 0, costs); !s.ok()) {
      return WithPrefix(absl::StrCat(ApiName(run.apis[i].api), ": "), s);
    }
  }
  if (costs.empty()) return absl::OkStatus();
  if (run.flags.json) {
    run.json.push_back(
        absl::StrCat("\"requests_per_op\":", CycleCostsJson(costs)));
  } else {
    PrintCycleCosts(costs, CostOps(run.flags));
  }
  return absl::OkStatus();
}

// Renew scale (and with --renew-search, the largest N held) on one API.
absl::Status RenewOnApi(Run& run, const ApiRun& api) {
  const Flags& flags = run.flags;
  const RenewTarget target{api, run.etcd, run.idle_leases};
  // Smoke runs hold for one TTL; full runs for two, so every lease renews
  // several times and a slow renew round shows as a loss.
  const int hold_ttls = flags.smoke ? 1 : 2;
  if (!flags.json) {
    std::cout << absl::StrFormat(
        "renew scale, etcd %s API (one Keeper, default options; TTL %s, held "
        "%s%s)\n%s",
        ApiName(api.api), absl::FormatDuration(flags.renew_ttl),
        absl::FormatDuration(flags.renew_ttl * hold_ttls), WriteRateNote(run),
        RenewHeader());
  }
  std::string json = absl::StrCat("\"renew_scale", JsonSuffix(api.api), "\":[");
  for (size_t i = 0; i < flags.renew_leases.size(); ++i) {
    const int leases = flags.renew_leases[i];
    absl::StatusOr<RenewScaleResult> r = RunRenewScale(
        target, leases, flags.renew_ttl, flags.renew_ttl * hold_ttls);
    if (!r.ok()) {
      return WithPrefix(absl::StrCat(leases, " leases: "), r.status());
    }
    if (flags.json) {
      absl::StrAppend(&json, i > 0 ? "," : "", RenewJson(*r));
    } else {
      std::cout << RenewRow(*r);
    }
  }
  run.json.push_back(json + "]");
  if (!flags.renew_search) return absl::OkStatus();

  // Smoke: one short TTL and (by default) one probe, so the code runs.
  const std::vector<absl::Duration> ttls =
      flags.smoke
          ? std::vector<absl::Duration>{absl::Seconds(1)}
          : std::vector<absl::Duration>{absl::Seconds(10), absl::Seconds(30)};
  const int start = flags.smoke ? 50 : 10000;
  if (!flags.json) {
    std::cout << absl::StrFormat(
        "\nlargest N one Keeper held on etcd's %s API %d TTL%s with zero "
        "losses (doubling from %d, then bisecting to 10%%; cap %d%s)\n%-5s %s",
        ApiName(api.api), hold_ttls, hold_ttls > 1 ? "s" : "", start,
        flags.renew_search_max, WriteRateNote(run), "ttl", RenewHeader());
  }
  const std::string write_rate =
      Figure(run.etcd_write_rate, 1, /*missing=*/"null");
  json = absl::StrCat("\"renew_search", JsonSuffix(api.api), "\":[");
  int held_before = 0;  // a longer TTL starts where the shorter one got
  for (size_t i = 0; i < ttls.size(); ++i) {
    const absl::Duration ttl = ttls[i];
    const std::string ttl_text = absl::FormatDuration(ttl);
    SearchResult search = SearchLargestHeld(
        target, ttl, ttl * hold_ttls, std::max(start, held_before),
        flags.renew_search_max,
        [&](int leases, const absl::StatusOr<RenewScaleResult>& r) {
          if (flags.json) return;
          std::cout << absl::StrFormat("%-5s ", ttl_text)
                    << (r.ok() ? RenewRow(*r)
                               : absl::StrFormat("%-7d failed: %s\n", leases,
                                                 r.status().ToString()))
                    << std::flush;
        });
    held_before = search.largest_held;
    // What holding the largest N asks of etcd: the schedule renews each
    // lease every renew interval; a Keeper behind schedule renews later,
    // so holding needs at least one renew per lease per TTL.
    const double scheduled =
        search.largest_held /
        (absl::ToDoubleSeconds(ttl) * lease::KeeperOptions{}.renew_fraction);
    const double minimum = search.largest_held / absl::ToDoubleSeconds(ttl);
    const std::string lost = search.smallest_lost.has_value()
                                 ? absl::StrCat(*search.smallest_lost)
                                 : "null";
    if (flags.json) {
      absl::StrAppend(
          &json, i > 0 ? "," : "",
          absl::StrFormat("{\"ttl_s\":%d,\"largest_held\":%d,"
                          "\"smallest_lost\":%s,\"renews_per_s_scheduled\":"
                          "%.1f,\"renews_per_s_minimum\":%.1f,"
                          "\"etcd_write_rate\":%s,\"probes\":[",
                          absl::ToInt64Seconds(ttl), search.largest_held, lost,
                          scheduled, minimum, write_rate));
      for (size_t p = 0; p < search.probes.size(); ++p) {
        const auto& [leases, r] = search.probes[p];
        registry::JsonObject failed;
        if (!r.ok()) {
          failed.Set("leases", leases);
          failed.Set("error", r.status().ToString());
        }
        absl::StrAppend(&json, p > 0 ? "," : "",
                        r.ok() ? RenewJson(*r) : failed.Encode());
      }
      json += "]}";
    } else {
      std::cout << absl::StrFormat(
          "TTL %s: largest held %d (%s): the schedule asks %.0f renews/s, "
          "holding needs at least %.0f/s%s\n",
          ttl_text, search.largest_held,
          search.smallest_lost.has_value()
              ? absl::StrCat("lost leases at ", lost)
              : std::string("the cap"),
          scheduled, minimum, WriteRateNote(run));
    }
  }
  run.json.push_back(json + "]");
  return absl::OkStatus();
}

absl::Status RenewSection(Run& run) {
  for (size_t i = 0; i < run.apis.size(); ++i) {
    if (!run.flags.json && i > 0) std::cout << "\n";
    if (absl::Status s = RenewOnApi(run, run.apis[i]); !s.ok()) {
      return WithPrefix(absl::StrCat(ApiName(run.apis[i].api), ": "), s);
    }
  }
  return absl::OkStatus();
}

absl::Status FailoverSection(Run& run) {
  struct FailoverRun {
    const char* json_name;
    const char* title;
    Departure departure;
    int rounds;
  };
  const FailoverRun failovers[] = {
      {"failover_after_release",
       "failover after release (Release → standby in WaitForChange acquired",
       Departure::kRelease, run.flags.failover_rounds},
      {"failover_after_silence",
       "failover after the holder went silent (its expiry, TTL 1s → standby "
       "acquired",
       Departure::kSilent, run.flags.silent_rounds}};
  for (const FailoverRun& f : failovers) {
    absl::StatusOr<FailoverResult> failover =
        RunFailover(run.keys, f.rounds, f.departure);
    if (!failover.ok()) {
      return WithPrefix(absl::StrCat(f.json_name, ": "), failover.status());
    }
    if (run.flags.json) {
      run.json.push_back(absl::StrFormat(
          "\"%s\":{\"rounds\":%d,\"p50_ms\":%s,\"p99_ms\":%s,\"max_ms\":%s}",
          f.json_name, failover->rounds, Ms(failover->latency.p50),
          Ms(failover->latency.p99), Ms(failover->latency.max)));
    } else {
      std::cout << absl::StrFormat(
          "%s%s; %d rounds)\np50 %s ms   p99 %s ms   max %s ms\n",
          f.departure == Departure::kRelease ? "" : "\n", f.title,
          failover->rounds, Ms(failover->latency.p50),
          Ms(failover->latency.p99), Ms(failover->latency.max));
    }
  }
  return absl::OkStatus();
}

// One lock failing (a stall past the deadline, say) still leaves the
// other's figures worth having: both run, and the first failure is
// returned.
absl::Status HandoffSection(Run& run) {
  const Flags& flags = run.flags;
  if (!flags.json) {
    std::cout << absl::StrFormat(
        "lock handoff (%d contenders on one lock; Unlock → next Lock "
        "returns; per handoff: requests this process sent, of them session "
        "refreshes, requests etcd counted, of them watches, writes etcd's "
        "store counted)\n"
        "%-6s %10s %9s %9s %10s %8s %9s %8s %8s %8s\n",
        flags.lock_contenders, "lock", "total ms", "p50 ms", "p99 ms", "max ms",
        "req/h", "refresh/h", "etcd r/h", "watch/h", "write/h");
  }
  std::string json =
      absl::StrCat("\"lock_handoff\":{\"contenders\":", flags.lock_contenders);
  absl::Status first_failure;
  const std::pair<const char*, LockKind> locks[] = {
      {"mutex", LockKind::kMutex}, {"naive", LockKind::kNaive}};
  for (const auto& [name, kind] : locks) {
    absl::StatusOr<HandoffResult> handoff =
        // etcd's counts here are the v2 API's.
        RunLockHandoff(run.keys, run.api == Api::kV2 ? run.etcd : nullptr,
                       flags.lock_contenders, kind);
    if (!handoff.ok()) {
      if (first_failure.ok()) {
        first_failure = WithPrefix(absl::StrCat(name, ": "), handoff.status());
      }
      if (flags.json) {
        registry::JsonObject error;
        error.Set("error", handoff.status().ToString());
        absl::StrAppend(&json, ",\"", name, "\":", error.Encode());
      } else {
        std::cout << absl::StrFormat("%-6s failed: %s\n", name,
                                     handoff.status().ToString());
      }
      continue;
    }
    const double n = handoff->contenders;
    // Per handoff as etcd counted.
    auto etcd_per_handoff = [&](int64_t EtcdCounters::*field,
                                const char* missing) {
      return Figure(handoff->etcd.has_value()
                        ? std::optional<double>((*handoff->etcd).*field / n)
                        : std::nullopt,
                    2, missing);
    };
    if (flags.json) {
      absl::StrAppend(
          &json, ",\"", name, "\":",
          absl::StrFormat(
              "{\"total_ms\":%s,\"p50_ms\":%s,\"p99_ms\":%s,\"max_ms\":%s,"
              "\"requests_per_handoff\":%.2f,\"refreshes_per_handoff\":%.2f,"
              "\"etcd_requests_per_handoff\":%s,"
              "\"etcd_watches_per_handoff\":%s,"
              "\"etcd_writes_per_handoff\":%s}",
              Ms(handoff->total), Ms(handoff->handoff.p50),
              Ms(handoff->handoff.p99), Ms(handoff->handoff.max),
              handoff->requests_per_handoff, handoff->refreshes_per_handoff,
              etcd_per_handoff(&EtcdCounters::requests, "null"),
              etcd_per_handoff(&EtcdCounters::watches, "null"),
              etcd_per_handoff(&EtcdCounters::writes, "null")));
    } else {
      std::cout << absl::StrFormat(
          "%-6s %10s %9s %9s %10s %8.2f %9.2f %8s %8s %8s\n", name,
          Ms(handoff->total), Ms(handoff->handoff.p50),
          Ms(handoff->handoff.p99), Ms(handoff->handoff.max),
          handoff->requests_per_handoff, handoff->refreshes_per_handoff,
          etcd_per_handoff(&EtcdCounters::requests, "-"),
          etcd_per_handoff(&EtcdCounters::watches, "-"),
          etcd_per_handoff(&EtcdCounters::writes, "-"));
    }
  }
  run.json.push_back(json + "}");
  return first_failure;
}

// Transactions: one domain, so commits serialize on its intent; the
// overlapping runs also conflict and abort.
absl::Status TxnSection(Run& run) {
  const Flags& flags = run.flags;
  const std::vector<int> committer_levels =
      flags.smoke ? std::vector<int>{1, 4} : std::vector<int>{1, 4, 16};
  if (!flags.json) {
    std::cout << absl::StrFormat(
        "transactions (serializable read-modify-write of K counters; %s "
        "each; one domain)\n%-10s %-5s %-3s %10s %9s %8s\n",
        absl::FormatDuration(flags.seconds), "keys", "comm", "K", "commits/s",
        "req/commit", "aborts");
  }
  std::string json = "\"transactions\":[";
  struct TxnRow {
    int committers;
    int keys;
    bool overlapping;
  };
  std::vector<TxnRow> rows = {{1, 1, false}, {1, 2, false}, {1, 8, false}};
  for (bool overlapping : {false, true}) {
    for (int committers : committer_levels) {
      rows.push_back({committers, 2, overlapping});
    }
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    const TxnRow& row = rows[i];
    absl::StatusOr<TxnLoadResult> r =
        RunTxnLoad(run.keys, {.committers = row.committers,
                              .keys = row.keys,
                              .overlapping = row.overlapping,
                              .duration = flags.seconds});
    if (!r.ok()) {
      return WithPrefix(absl::StrCat(row.committers, " committers: "),
                        r.status());
    }
    const char* kind = row.overlapping ? "overlap" : "disjoint";
    if (flags.json) {
      absl::StrAppend(
          &json, i > 0 ? "," : "",
          absl::StrFormat("{\"keys\":\"%s\",\"committers\":%d,\"k\":%d,"
                          "\"commits_per_s\":%.1f,\"requests_per_commit\":"
                          "%.2f,\"abort_rate\":%.3f}",
                          kind, row.committers, row.keys, r->commits_per_second,
                          r->requests_per_commit, r->abort_rate));
    } else {
      std::cout << absl::StrFormat("%-10s %-5d %-3d %10.0f %9.2f %7.1f%%\n",
                                   kind, row.committers, row.keys,
                                   r->commits_per_second,
                                   r->requests_per_commit, 100 * r->abort_rate);
    }
  }
  run.json.push_back(json + "]");
  return absl::OkStatus();
}

// The APIs etcd at `endpoint` serves: v2 when its keys API answers, v3 when
// its JSON gateway does. kUnavailable when etcd does not answer at all.
absl::StatusOr<std::set<Api>> ServedApis(const std::string& endpoint) {
  CurlEasy curl;
  std::set<Api> served;
  const std::tuple<Api, const char*, const char*, const char*> probes[] = {
      {Api::kV2, "GET", "/v2/keys/", ""},
      {Api::kV3, "POST", "/v3/kv/range", R"({"key":"AA=="})"}};
  for (const auto& [api, method, path, body] : probes) {
    absl::StatusOr<int> code =
        curl.Perform(method, absl::StrCat(endpoint, path), body);
    if (!code.ok()) return code.status();
    if (*code == 200) served.insert(api);
  }
  return served;
}

struct Section {
  absl::string_view name;   // for --only
  absl::string_view title;  // for error messages
  absl::Status (*run)(Run&);
};

// The sections, in the order they run (whatever the order --only names
// them in): later sections quote what earlier ones measured.
constexpr Section kSections[] = {{"cycle", "lease cycle", CycleSection},
                                 {"renew", "renew scale", RenewSection},
                                 {"failover", "failover", FailoverSection},
                                 {"handoff", "lock handoff", HandoffSection},
                                 {"txn", "transactions", TxnSection}};

// The sections a flag configures. A flag whose sections --only leaves out
// would change nothing, so it is an error; flags not here apply to all.
const std::map<absl::string_view, std::vector<absl::string_view>>&
FlagSections() {
  static const auto* sections =
      new std::map<absl::string_view, std::vector<absl::string_view>>{
          {"--seconds", {"cycle", "txn"}},
          {"--api", {"cycle", "renew"}},
          {"--svg", {"cycle"}},
          {"--renew-leases", {"renew"}},
          {"--renew-ttl", {"renew"}},
          {"--renew-search", {"renew"}},
          {"--renew-search-max", {"renew"}},
          {"--failover-rounds", {"failover"}},
          {"--silent-rounds", {"failover"}},
          {"--lock-contenders", {"handoff"}}};
  return *sections;
}

constexpr char kUsage[] =
    "usage: leasehold-bench [--registry etcd://HOST:PORT | etcd3://HOST:PORT]\n"
    "                       [--api v2|v3|both] [--seconds DUR]\n"
    "                       [--only SECTION,...] [--svg FILE]\n"
    "                       [--renew-leases N,N...] [--renew-ttl DUR]\n"
    "                       [--renew-search] [--renew-search-max N]\n"
    "                       [--failover-rounds N] [--silent-rounds N]\n"
    "                       [--lock-contenders N]\n"
    "                       [--on-disk] [--smoke] [--json]\n"
    "sections: cycle, renew, failover, handoff, txn (default: all)\n";

std::string SectionNames() {
  std::vector<absl::string_view> names;
  for (const Section& section : kSections) names.push_back(section.name);
  return absl::StrJoin(names, ",");
}

// Exit code 2 with a message naming the flag for anything unexpected.
std::variant<Flags, std::string> ParseFlags(int argc, char** argv) {
  Flags flags;
  for (const Section& section : kSections) {
    flags.sections.emplace(section.name);
  }
  std::set<std::string, std::less<>> given;  // the flags on the command line
  // Count flags and where their value goes.
  const std::map<std::string, int*> counts = {
      {"--failover-rounds", &flags.failover_rounds},
      {"--silent-rounds", &flags.silent_rounds},
      {"--lock-contenders", &flags.lock_contenders},
      {"--renew-search-max", &flags.renew_search_max}};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_value = false;
    if (size_t eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
      has_value = true;
    }
    auto take_value = [&]() -> bool {
      if (has_value) return true;
      if (i + 1 >= argc) return false;
      value = argv[++i];
      return true;
    };
    bool* switch_flag = arg == "--json"           ? &flags.json
                        : arg == "--smoke"        ? &flags.smoke
                        : arg == "--on-disk"      ? &flags.on_disk
                        : arg == "--renew-search" ? &flags.renew_search
                                                  : nullptr;
    if (switch_flag != nullptr) {
      if (has_value) return absl::StrCat("flag ", arg, " takes no value");
      *switch_flag = true;
    } else if (arg == "--registry") {
      if (!take_value() || value.empty())
        return "flag --registry needs a URI (etcd://HOST:PORT or "
               "etcd3://HOST:PORT)";
      flags.registry = value;
    } else if (arg == "--api") {
      static const auto* apis = new std::map<std::string, std::vector<Api>>{
          {"v2", {Api::kV2}},
          {"v3", {Api::kV3}},
          {"both", {Api::kV2, Api::kV3}}};
      const auto api = take_value() ? apis->find(value) : apis->end();
      if (api == apis->end()) {
        return absl::StrCat("flag --api needs v2, v3 or both, not \"", value,
                            "\"");
      }
      flags.apis = api->second;
    } else if (arg == "--only") {
      if (!take_value() || value.empty()) {
        return absl::StrCat("flag --only needs sections (", SectionNames(),
                            ")");
      }
      flags.sections.clear();
      std::vector<std::string> unknown;
      for (absl::string_view name : absl::StrSplit(value, ',')) {
        const bool known =
            std::any_of(std::begin(kSections), std::end(kSections),
                        [&](const Section& s) { return s.name == name; });
        if (known) {
          flags.sections.emplace(name);
        } else {
          unknown.push_back(absl::StrCat("\"", name, "\""));
        }
      }
      if (!unknown.empty()) {
        return absl::StrCat("flag --only: unknown section",
                            unknown.size() > 1 ? "s " : " ",
                            absl::StrJoin(unknown, ", "), " (sections are ",
                            SectionNames(), ")");
      }
    } else if (arg == "--svg") {
      if (!take_value() || value.empty()) return "flag --svg needs a file name";
      flags.svg = value;
    } else if (arg == "--seconds") {
      if (!take_value() || !absl::ParseDuration(value, &flags.seconds) ||
          flags.seconds <= absl::ZeroDuration()) {
        return absl::StrCat("flag --seconds needs a positive duration (3s, ",
                            "500ms), not \"", value, "\"");
      }
    } else if (arg == "--renew-leases") {
      flags.renew_leases.clear();
      bool ok = take_value();
      for (absl::string_view n : absl::StrSplit(value, ',')) {
        int leases = 0;
        ok = ok && absl::SimpleAtoi(n, &leases) && leases > 0;
        flags.renew_leases.push_back(leases);
      }
      if (!ok) {
        return absl::StrCat("flag --renew-leases needs positive counts (",
                            "1000,10000), not \"", value, "\"");
      }
    } else if (arg == "--renew-ttl") {
      if (!take_value() || !absl::ParseDuration(value, &flags.renew_ttl) ||
          flags.renew_ttl < absl::Seconds(1) ||
          flags.renew_ttl != absl::Trunc(flags.renew_ttl, absl::Seconds(1))) {
        return absl::StrCat("flag --renew-ttl needs whole seconds, at least ",
                            "1s, not \"", value, "\"");
      }
    } else if (auto count = counts.find(arg); count != counts.end()) {
      int* out = count->second;
      if (!take_value() || !absl::SimpleAtoi(value, out) || *out <= 0) {
        return absl::StrCat("flag ", arg, " needs a positive count, not \"",
                            value, "\"");
      }
    } else {
      return absl::StrCat("unknown flag ", arg);
    }
    given.insert(arg);
  }
  for (const auto& [flag, sections] : FlagSections()) {
    if (given.count(flag) == 0) continue;
    const bool runs = std::any_of(
        sections.begin(), sections.end(),
        [&](absl::string_view s) { return flags.sections.count(s) > 0; });
    if (!runs) {
      return absl::StrCat("flag ", flag, " applies to section ",
                          absl::StrJoin(sections, " and "),
                          ", which --only leaves out");
    }
  }
  if (flags.smoke) {
    if (given.count("--seconds") == 0) flags.seconds = absl::Milliseconds(200);
    if (given.count("--renew-leases") == 0 && given.count("--renew-ttl") == 0) {
      flags.renew_leases = {50};
      flags.renew_ttl = absl::Seconds(1);
    }
    if (given.count("--failover-rounds") == 0) flags.failover_rounds = 5;
    if (given.count("--silent-rounds") == 0) flags.silent_rounds = 1;
    if (given.count("--lock-contenders") == 0) flags.lock_contenders = 5;
    if (given.count("--renew-search-max") == 0) flags.renew_search_max = 50;
  }
  if (flags.on_disk && !flags.registry.empty())
    return "flag --on-disk applies only to the etcd leasehold-bench starts";
  return flags;
}

int Main(int argc, char** argv) {
  std::variant<Flags, std::string> parsed = ParseFlags(argc, argv);
  if (const std::string* error = std::get_if<std::string>(&parsed)) {
    std::cerr << "leasehold-bench: " << *error << "\n" << kUsage;
    return 2;
  }
  const Flags& flags = std::get<Flags>(parsed);
  // Opened before the run, so a bad path fails in a second, not minutes.
  std::ofstream svg;
  if (!flags.svg.empty()) {
    svg.open(flags.svg);
    if (!svg) {
      std::cerr << "leasehold-bench: flag --svg: cannot write \"" << flags.svg
                << "\": " << std::strerror(errno) << "\n";
      return 2;
    }
  }
  // Before any thread exists; the process exits without a global cleanup.
  curl_global_init(CURL_GLOBAL_DEFAULT);

  std::unique_ptr<testing::EtcdServer> etcd;
  std::string uri = flags.registry;
  if (uri.empty()) {
    testing::EtcdServerOptions options;
    options.tmpfs = !flags.on_disk;
    // v2 snapshots of a store full of TTL keys stall p99 by hundreds of ms.
    options.extra_args = {"--snapshot-count=1000000"};
    absl::StatusOr<std::unique_ptr<testing::EtcdServer>> started =
        testing::EtcdServer::Start(options);
    if (!started.ok()) {
      std::cerr << "leasehold-bench: cannot start etcd: " << started.status()
                << "\n";
      return 1;
    }
    etcd = std::move(*started);
    uri = etcd->uri();
  }
  absl::StatusOr<registry::RegistryConfig> config =
      registry::ParseRegistryUri(uri);
  const registry::EtcdOptions* etcd_options = nullptr;
  Api uri_api = Api::kV2;
  if (config.ok()) {
    if (const auto* v3 = std::get_if<registry::EtcdV3Options>(&*config)) {
      etcd_options = v3;
      uri_api = Api::kV3;
    } else {
      etcd_options = std::get_if<registry::EtcdOptions>(&*config);
    }
  }
  if (etcd_options == nullptr || etcd_options->endpoints.empty() ||
      !absl::StartsWith(etcd_options->endpoints.front(), "http://") ||
      !etcd_options->username.empty() || !etcd_options->ca_file.empty()) {
    std::cerr << "leasehold-bench: flag --registry needs a plain "
                 "etcd://HOST:PORT or etcd3://HOST:PORT URI (the baselines "
                 "speak plain http): \""
              << registry::RedactUri(uri) << "\"\n";
    return 2;
  }
  const std::string endpoint = etcd_options->endpoints.front();
  absl::StatusOr<std::set<Api>> served = ServedApis(endpoint);
  if (!served.ok()) {
    std::cerr << "leasehold-bench: " << served.status() << "\n";
    return 1;
  }
  std::vector<Api> apis = flags.apis;
  if (apis.empty()) apis.assign(served->begin(), served->end());
  std::vector<Api> needed = apis;
  needed.push_back(uri_api);
  for (Api api : needed) {
    if (served->count(api) == 0) {
      std::cerr << "leasehold-bench: etcd at " << endpoint
                << " does not serve the " << ApiName(api)
                << " API (etcd 3.4 serves v2 only with --enable-v2, 3.6 not "
                   "at all)\n";
      return 2;
    }
  }
  // etcd's own request counters; without them the figures that need them
  // are left out, not guessed.
  auto etcd_counters = std::make_unique<EtcdCounterReader>(endpoint);
  if (absl::StatusOr<EtcdCounters> probe = etcd_counters->Read(); !probe.ok()) {
    std::cerr << "leasehold-bench: etcd's counters are not readable, so "
                 "requests as etcd counted them are left out: "
              << probe.status() << "\n";
    etcd_counters = nullptr;
  }
  std::optional<int64_t> idle_leases;
  if (etcd_counters != nullptr) {
    absl::StatusOr<int64_t> leases = etcd_counters->LiveLeases();
    if (leases.ok()) idle_leases = *leases;
  }
  absl::StatusOr<std::unique_ptr<registry::KeysApi>> keys = registry::Open(uri);
  if (!keys.ok()) {
    std::cerr << "leasehold-bench: " << keys.status() << "\n";
    return 1;
  }
  // The other API's client, on the same endpoints with the same options.
  absl::StatusOr<std::unique_ptr<registry::KeysApi>> other_keys =
      uri_api == Api::kV2 ? registry::NewEtcdV3Client(*etcd_options)
                          : registry::NewEtcdClient(*etcd_options);
  if (!other_keys.ok()) {
    std::cerr << "leasehold-bench: " << other_keys.status() << "\n";
    return 1;
  }

  Run run{flags,
          keys->get(),
          uri_api,
          {},
          etcd_counters.get(),
          idle_leases,
          endpoint,
          svg.is_open() ? &svg : nullptr,
          /*etcd_write_rate=*/std::nullopt,
          /*json=*/{}};
  for (Api api : apis) {
    run.apis.push_back({api, api == uri_api ? keys->get() : other_keys->get()});
  }
  // A failed section is reported and the others still run: their figures
  // stand on their own.
  int exit_code = 0;
  registry::JsonObject errors;
  bool first = true;
  for (const Section& section : kSections) {
    if (flags.sections.count(section.name) == 0) continue;
    if (!flags.json && !first) std::cout << "\n";
    first = false;
    absl::Status status = section.run(run);
    if (!status.ok()) {
      std::cerr << "leasehold-bench: " << section.title << ": " << status
                << "\n";
      errors.Set(section.name, status.ToString());
      exit_code = 1;
    }
  }
  if (flags.json) {
    if (exit_code != 0) run.json.push_back("\"errors\":" + errors.Encode());
    std::cout << "{" << absl::StrJoin(run.json, ",") << "}\n";
  }
  return exit_code;
}

}  // namespace
}  // namespace leasehold::bench

int main(int argc, char** argv) { return leasehold::bench::Main(argc, argv); }
