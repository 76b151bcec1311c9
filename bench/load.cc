// leasehold-bench: the lease cycle (acquire → renew → release) against a
// real etcd, leasehold next to a plain-libcurl baseline that sends the same
// HTTP requests, measured in the same run so the ratios hold on a noisy
// machine. See bench/README.md.
//
//   leasehold-bench                      # own etcd on tmpfs, full run
//   leasehold-bench --smoke              # a few seconds (CI)
//   leasehold-bench --registry etcd://127.0.0.1:2379 --json
//
// Without --registry it starts a private etcd (loopback, free ports, data on
// tmpfs unless --on-disk, --snapshot-count=1000000) and stops it at exit.
// Client CPU is getrusage(RUSAGE_SELF): this process only, never the etcd
// child.

#include <sys/resource.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "curl/curl.h"
#include "lease/lease_manager.h"
#include "registry/keys_api.h"
#include "registry/open.h"
#include "tests/testing/etcd_server.h"

namespace leasehold::bench {
namespace {

constexpr absl::Duration kTtl = absl::Seconds(10);

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

// The floor of any client: the same three requests leasehold sends
// (PUT prevExist=false&ttl, PUT prevIndex&refresh&ttl, DELETE ?prevIndex)
// on one keep-alive libcurl easy handle, reading back only modifiedIndex.
class CurlClient : public CycleClient {
 public:
  CurlClient(const std::string& endpoint, const std::string& key)
      : url_(absl::StrCat(endpoint, "/v2/keys", key)),
        value_(absl::StrCat("value=%7B%22MachineID%22%3A%22bench-machine%22%2C",
                            "%22Version%22%3A1%2C%22Token%22%3A%22",
                            "0123456789abcdef-1%22%7D")),
        easy_(curl_easy_init()),
        headers_(curl_slist_append(nullptr, "Expect:")) {
    curl_easy_setopt(easy_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, headers_);
    curl_easy_setopt(easy_, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, &OnBody);
    curl_easy_setopt(easy_, CURLOPT_WRITEDATA, &body_);
  }
  ~CurlClient() override {
    curl_easy_cleanup(easy_);
    curl_slist_free_all(headers_);
  }

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
  static size_t OnBody(char* data, size_t size, size_t n, void* out) {
    static_cast<std::string*>(out)->append(data, size * n);
    return size * n;
  }

  absl::Status Send(const char* method, const std::string& url,
                    const std::string& form) {
    body_.clear();
    curl_easy_setopt(easy_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy_, CURLOPT_HTTPGET, 1L);  // clears the last body
    curl_easy_setopt(easy_, CURLOPT_CUSTOMREQUEST, method);
    if (!form.empty()) {
      curl_easy_setopt(easy_, CURLOPT_POSTFIELDSIZE,
                       static_cast<long>(form.size()));  // NOLINT
      curl_easy_setopt(easy_, CURLOPT_POSTFIELDS, form.c_str());
    }
    CURLcode rc = curl_easy_perform(easy_);
    if (rc != CURLE_OK) return absl::UnavailableError(curl_easy_strerror(rc));
    long code = 0;  // NOLINT: curl's type
    curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &code);
    if (code != 200 && code != 201) {
      return absl::AbortedError(absl::StrCat(method, " ", url, ": ", body_));
    }
    // The node comes first in etcd's answer, before any prevNode.
    static constexpr char kField[] = "\"modifiedIndex\":";
    size_t at = body_.find(kField);
    if (at == std::string::npos) return absl::DataLossError(body_);
    index_ =
        std::strtoull(body_.c_str() + at + sizeof(kField) - 1, nullptr, 10);
    return absl::OkStatus();
  }

  const std::string url_;
  const std::string value_;
  CURL* const easy_;
  curl_slist* const headers_;
  std::string body_;
  uint64_t index_ = 0;
};

absl::Duration CpuTime() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto duration = [](const timeval& tv) {
    return absl::Seconds(tv.tv_sec) + absl::Microseconds(tv.tv_usec);
  };
  return duration(usage.ru_utime) + duration(usage.ru_stime);
}

struct CycleResult {
  int64_t ops = 0;  // requests (three per cycle)
  double ops_per_second = 0;
  absl::Duration p50, p99, max;
  double cpu_us_per_op = 0;
};

// Runs `concurrency` workers, each doing lease cycles with its own client
// until `duration` has passed. Any failed request aborts the measurement:
// with distinct names per worker, a failure is a bug or a sick etcd.
absl::StatusOr<CycleResult> RunCycles(const ClientFactory& factory,
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

  std::vector<absl::Duration> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  if (all.empty()) return absl::InternalError("no request completed");
  std::sort(all.begin(), all.end());
  CycleResult result;
  result.ops = static_cast<int64_t>(all.size());
  result.ops_per_second = result.ops / absl::ToDoubleSeconds(elapsed);
  result.p50 = all[all.size() / 2];
  result.p99 = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  result.max = all.back();
  result.cpu_us_per_op = absl::ToDoubleMicroseconds(cpu) / result.ops;
  return result;
}

struct Flags {
  std::string registry;  // empty: start our own etcd
  bool json = false;
  bool smoke = false;
  bool on_disk = false;
  absl::Duration seconds = absl::Seconds(3);
};

constexpr char kUsage[] =
    "usage: leasehold-bench [--registry etcd://HOST:PORT] [--seconds DUR]\n"
    "                       [--on-disk] [--smoke] [--json]\n";

// Exit code 2 with a message naming the flag for anything unexpected.
std::variant<Flags, std::string> ParseFlags(int argc, char** argv) {
  Flags flags;
  bool seconds_set = false;
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
    bool* switch_flag = arg == "--json"      ? &flags.json
                        : arg == "--smoke"   ? &flags.smoke
                        : arg == "--on-disk" ? &flags.on_disk
                                             : nullptr;
    if (switch_flag != nullptr) {
      if (has_value) return absl::StrCat("flag ", arg, " takes no value");
      *switch_flag = true;
    } else if (arg == "--registry") {
      if (!take_value() || value.empty())
        return "flag --registry needs a URI (etcd://HOST:PORT)";
      flags.registry = value;
    } else if (arg == "--seconds") {
      if (!take_value() || !absl::ParseDuration(value, &flags.seconds) ||
          flags.seconds <= absl::ZeroDuration()) {
        return absl::StrCat("flag --seconds needs a positive duration (3s, ",
                            "500ms), not \"", value, "\"");
      }
      seconds_set = true;
    } else {
      return absl::StrCat("unknown flag ", arg);
    }
  }
  if (flags.smoke && !seconds_set) flags.seconds = absl::Milliseconds(300);
  if (flags.on_disk && !flags.registry.empty())
    return "flag --on-disk applies only to the etcd leasehold-bench starts";
  return flags;
}

std::string Ms(absl::Duration d) {
  return absl::StrFormat("%.3f", absl::ToDoubleMilliseconds(d));
}

int Main(int argc, char** argv) {
  std::variant<Flags, std::string> parsed = ParseFlags(argc, argv);
  if (const std::string* error = std::get_if<std::string>(&parsed)) {
    std::cerr << "leasehold-bench: " << *error << "\n" << kUsage;
    return 2;
  }
  const Flags& flags = std::get<Flags>(parsed);
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
  const auto* etcd_options =
      config.ok() ? std::get_if<registry::EtcdOptions>(&*config) : nullptr;
  if (etcd_options == nullptr || etcd_options->endpoints.empty() ||
      !etcd_options->username.empty() || !etcd_options->ca_file.empty()) {
    std::cerr << "leasehold-bench: flag --registry needs a plain "
                 "etcd://HOST:PORT URI (the baseline speaks plain http): \""
              << uri << "\"\n";
    return 2;
  }
  const std::string endpoint = etcd_options->endpoints.front();
  absl::StatusOr<std::unique_ptr<registry::KeysApi>> keys = registry::Open(uri);
  if (!keys.ok()) {
    std::cerr << "leasehold-bench: " << keys.status() << "\n";
    return 1;
  }

  // Same key length for both, so the requests are byte-for-byte alike but
  // for the key and token.
  lease::LeaseManager leases(keys->get(), {.prefix = "/bench-lh/"});
  const ClientFactory leasehold =
      [&](int w) -> absl::StatusOr<std::unique_ptr<CycleClient>> {
    return std::make_unique<LeaseholdClient>(&leases, absl::StrCat("w", w));
  };
  const ClientFactory baseline =
      [&](int w) -> absl::StatusOr<std::unique_ptr<CycleClient>> {
    return std::make_unique<CurlClient>(endpoint,
                                        absl::StrCat("/bench-cu/lease/w", w));
  };

  const std::vector<int> levels =
      flags.smoke ? std::vector<int>{1, 4} : std::vector<int>{1, 4, 16, 64};
  if (!flags.json) {
    std::cout << absl::StrFormat(
        "lease cycle (acquire, renew, release; %s each; etcd %s)\n"
        "%-5s %-9s %10s %9s %9s %9s %10s\n",
        absl::FormatDuration(flags.seconds),
        flags.registry.empty() ? (flags.on_disk ? "on disk" : "on tmpfs")
                               : flags.registry,
        "conc", "client", "ops/s", "p50 ms", "p99 ms", "max ms", "cpu us/op");
  }
  std::string json = "{\"lease_cycle\":[";
  for (int concurrency : levels) {
    // Baseline first, then leasehold, on the same etcd minutes apart at most.
    absl::StatusOr<CycleResult> base =
        RunCycles(baseline, concurrency, flags.seconds);
    absl::StatusOr<CycleResult> lh =
        RunCycles(leasehold, concurrency, flags.seconds);
    for (const absl::Status& status : {base.status(), lh.status()}) {
      if (!status.ok()) {
        std::cerr << "leasehold-bench: lease cycle at concurrency "
                  << concurrency << ": " << status << "\n";
        return 1;
      }
    }
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
            r.ops, r.ops_per_second, Ms(r.p50), Ms(r.p99), Ms(r.max),
            r.cpu_us_per_op);
      };
      if (concurrency != levels.front()) json += ",";
      absl::StrAppend(
          &json, "{\"concurrency\":", concurrency,
          ",\"leasehold\":", figures(*lh), ",\"baseline\":", figures(*base),
          absl::StrFormat(",\"ratio\":{\"ops_per_s\":%.3f,\"p50\":%.3f,"
                          "\"p99\":%.3f,\"max\":%.3f,\"cpu_per_op\":%.3f}}",
                          ratio_ops, ratio(lh->p50, base->p50),
                          ratio(lh->p99, base->p99), ratio(lh->max, base->max),
                          ratio_cpu));
    } else {
      auto row = [&](const char* who, const CycleResult& r) {
        std::cout << absl::StrFormat(
            "%-5d %-9s %10.0f %9s %9s %9s %10.1f\n", concurrency, who,
            r.ops_per_second, Ms(r.p50), Ms(r.p99), Ms(r.max), r.cpu_us_per_op);
      };
      row("baseline", *base);
      row("leasehold", *lh);
      std::cout << absl::StrFormat(
          "%-5d %-9s %9.2fx %8.2fx %8.2fx %8.2fx %9.2fx\n", concurrency,
          "ratio", ratio_ops, ratio(lh->p50, base->p50),
          ratio(lh->p99, base->p99), ratio(lh->max, base->max), ratio_cpu);
    }
  }
  if (flags.json) std::cout << json << "]}\n";
  return 0;
}

}  // namespace
}  // namespace leasehold::bench

int main(int argc, char** argv) { return leasehold::bench::Main(argc, argv); }
