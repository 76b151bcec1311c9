#include "tests/cluster/agent_fleet.h"

#include <cstdlib>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "registry/open.h"
#include "tools/sim/agent.h"

namespace leasehold::testing {

namespace {

// The agent's loop period, as `leasehold agent` steps.
constexpr absl::Duration kTick = absl::Milliseconds(100);

std::string Clock(absl::Time t) {
  return absl::FormatTime("%H:%M:%E3S", t, absl::LocalTimeZone());
}

// Passes every call through and logs each one that fails (when it was
// sent, how long it took, the error): what a lost hold is explained by.
class LoggedKeys final : public registry::KeysApi {
 public:
  LoggedKeys(std::unique_ptr<registry::KeysApi> keys, std::string agent)
      : keys_(std::move(keys)), agent_(std::move(agent)) {}

  absl::StatusOr<registry::Response> Get(
      const std::string& key, const registry::GetOptions& options) override {
    return Log("get", key, [&] { return keys_->Get(key, options); });
  }
  absl::StatusOr<registry::Response> Set(
      const std::string& key, const std::string& value,
      const registry::SetOptions& options) override {
    return Log(options.refresh ? "renew" : "set", key,
               [&] { return keys_->Set(key, value, options); });
  }
  absl::StatusOr<registry::Response> CreateInOrder(
      const std::string& dir, const std::string& value,
      const registry::CreateInOrderOptions& options) override {
    return Log("create-in-order", dir,
               [&] { return keys_->CreateInOrder(dir, value, options); });
  }
  absl::StatusOr<registry::Response> Delete(
      const std::string& key, const registry::DeleteOptions& options) override {
    return Log("delete", key, [&] { return keys_->Delete(key, options); });
  }
  absl::StatusOr<registry::Response> Watch(
      const std::string& key, const registry::WatchOptions& options) override {
    return keys_->Watch(key, options);
  }

 private:
  template <typename Call>
  absl::StatusOr<registry::Response> Log(const char* op, const std::string& key,
                                         Call call) {
    const absl::Time sent = absl::Now();
    absl::StatusOr<registry::Response> result = call();
    // "Held by someone else" and "lost a race" are answers, not trouble.
    if (!result.ok() && !absl::IsNotFound(result.status()) &&
        !absl::IsAlreadyExists(result.status()) &&
        !absl::IsAborted(result.status())) {
      std::cerr << Clock(sent) << " " << agent_ << " " << op << " " << key
                << " failed after " << absl::FormatDuration(absl::Now() - sent)
                << ": " << result.status() << std::endl;
    }
    return result;
  }

  const std::unique_ptr<registry::KeysApi> keys_;
  const std::string agent_;
};

}  // namespace

AgentFleet::AgentFleet(const EtcdCluster& cluster, AgentFleetOptions options)
    : options_(options),
      history_([this](const sim::Hold& hold) {
        if (hold.how_ended != "lost") return;
        std::lock_guard<std::mutex> lock(mu_);
        lost_.push_back({hold, absl::Now() - hold.end});
      }),
      live_(new std::atomic<int>[options.agents]) {
  // The log's time zone is loaded here before the agents' threads start:
  // abseil's lazy loading (Debian's abseil is not built for
  // ThreadSanitizer) would race only in TSan's eyes.
  Clock(absl::Now());
  for (int i = 0; i < options_.agents; ++i) {
    keys_.push_back(registry::Open(
        cluster.uri_starting_at(i % cluster.size(), options_.api)));
  }
  for (int i = 0; i < options_.agents; ++i) {
    live_[i].store(0);
    threads_.emplace_back([this, i] { Run(i); });
  }
}

AgentFleet::~AgentFleet() { Stop(); }

void AgentFleet::Run(int i) {
  sim::AgentOptions options;
  options.id = absl::StrCat("m", i + 1);
  // Logs name the API too: fleets of both may run on one cluster.
  const std::string name = absl::StrCat(options_.api, " ", options.id);
  if (!keys_[i].ok()) {
    std::cerr << "agent " << name << ": " << keys_[i].status() << std::endl;
    return;
  }
  LoggedKeys keys(*std::move(keys_[i]), name);
  options.units = options_.units;
  options.ttl = options_.ttl;
  sim::Agent agent(&keys, options, &history_,
                   [api = options_.api](const std::string& event) {
                     std::cerr << Clock(absl::Now()) << " " << api << " "
                               << event << std::endl;
                   });
  agent.Start(/*version=*/1);
  while (!stop_.load()) {
    (void)agent.Step();  // registry trouble: the next step tries again
    live_[i].store(agent.live_units());
    absl::SleepFor(kTick);
  }
  agent.Shutdown();
  live_[i].store(0);
}

bool AgentFleet::WaitSettled(absl::Duration within) {
  const absl::Time deadline = absl::Now() + within;
  while (live_units() != options_.units) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return true;
}

int AgentFleet::live_units() const {
  int live = 0;
  for (int i = 0; i < options_.agents; ++i) live += live_[i].load();
  return live;
}

void AgentFleet::Stop() {
  stop_.store(true);
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

std::vector<EndedHold> AgentFleet::Lost() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lost_;
}

std::vector<std::unique_ptr<AgentFleet>> FleetPerApi(
    const EtcdCluster& cluster, AgentFleetOptions options,
    const std::vector<std::string>& apis) {
  std::vector<std::unique_ptr<AgentFleet>> fleets;
  for (const std::string& api : apis) {
    options.api = api;
    fleets.push_back(std::make_unique<AgentFleet>(cluster, options));
  }
  return fleets;
}

namespace {

using Fleets = std::vector<std::unique_ptr<AgentFleet>>;

bool AnyLost(const Fleets& fleets) {
  for (const auto& fleet : fleets) {
    if (!fleet->Lost().empty()) return true;
  }
  return false;
}

// Watches `fleets` for `watch`: false at the first lost hold.
bool NoneLost(const Fleets& fleets, absl::Duration watch) {
  const absl::Time until = absl::Now() + watch;
  while (absl::Now() < until) {
    if (AnyLost(fleets)) return false;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return !AnyLost(fleets);
}

// The rounds of ExpectNoHoldLost; false after the first failure.
bool SurviveRounds(EtcdCluster& cluster, const Fleets& fleets, int rounds,
                   absl::Duration watch,
                   const std::function<absl::StatusOr<int>()>& inject) {
  for (int round = 1; round <= rounds; ++round) {
    for (const auto& fleet : fleets) {
      if (!fleet->WaitSettled(absl::Seconds(60))) {
        ADD_FAILURE() << "round " << round << ": the " << fleet->api()
                      << " agents hold " << fleet->live_units()
                      << " units, not all, after 60 s";
        return false;
      }
    }
    absl::StatusOr<int> hit = inject();
    if (!hit.ok()) {
      ADD_FAILURE() << "round " << round << ": " << hit.status();
      return false;
    }
    std::cerr << Clock(absl::Now()) << " round " << round
              << ": fault on member " << *hit << std::endl;
    if (!NoneLost(fleets, watch)) return false;
    EtcdServer& member = cluster.member(*hit);
    absl::Status back = member.paused()    ? cluster.ResumeMember(*hit)
                        : member.running() ? absl::OkStatus()
                                           : cluster.RestartMember(*hit);
    if (back.ok()) back = cluster.WaitHealthy();
    if (!back.ok()) {
      ADD_FAILURE() << "round " << round << ": " << back;
      return false;
    }
  }
  return NoneLost(fleets, watch);
}

}  // namespace

void ExpectNoHoldLost(EtcdCluster& cluster, int rounds, absl::Duration watch,
                      const std::function<absl::StatusOr<int>()>& inject,
                      const std::vector<std::string>& apis) {
  const Fleets fleets = FleetPerApi(cluster, {}, apis);
  SurviveRounds(cluster, fleets, rounds, watch, inject);
  for (const auto& fleet : fleets) {
    fleet->Stop();
    EXPECT_TRUE(fleet->Lost().empty()) << fleet->api() << " holds lost:\n"
                                       << Describe(fleet->Lost());
    const sim::Verdict verdict = fleet->Verdict();
    EXPECT_TRUE(verdict.safe)
        << fleet->api() << ": " << ::testing::PrintToString(verdict.violations);
  }
}

int Rounds(int ci_default) {
  const char* env = std::getenv("LEASEHOLD_CLUSTER_ROUNDS");
  int rounds = 0;
  if (env != nullptr && absl::SimpleAtoi(env, &rounds) && rounds > 0) {
    return rounds;
  }
  return ci_default;
}

std::string Describe(const std::vector<EndedHold>& holds) {
  std::string text;
  for (const EndedHold& e : holds) {
    absl::StrAppend(
        &text, e.hold.lease, " held by ", e.hold.machine, " (fence ",
        e.hold.fence, ") ", e.hold.how_ended, " at ",
        absl::FormatTime("%H:%M:%E3S", e.hold.end, absl::LocalTimeZone()),
        ", told ", absl::FormatDuration(e.told_late), " later\n");
  }
  return text;
}

}  // namespace leasehold::testing
