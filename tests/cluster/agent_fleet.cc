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

// The agent's loop period, as `leasehold agent` steps.
constexpr absl::Duration kTick = absl::Milliseconds(100);

AgentFleet::AgentFleet(const std::string& uri, AgentFleetOptions options)
    : uri_(uri),
      options_(options),
      history_([this](const sim::Hold& hold) {
        if (hold.how_ended != "lost") return;
        std::lock_guard<std::mutex> lock(mu_);
        lost_.push_back({hold, absl::Now() - hold.end});
      }),
      live_(new std::atomic<int>[options.agents]) {
  for (int i = 0; i < options_.agents; ++i) {
    live_[i].store(0);
    threads_.emplace_back([this, i] { Run(i); });
  }
}

AgentFleet::~AgentFleet() { Stop(); }

void AgentFleet::Run(int i) {
  absl::StatusOr<std::unique_ptr<registry::KeysApi>> keys =
      registry::Open(uri_);
  if (!keys.ok()) {
    std::cerr << "agent m" << i + 1 << ": " << keys.status() << std::endl;
    return;
  }
  sim::AgentOptions options;
  options.id = absl::StrCat("m", i + 1);
  options.units = options_.units;
  options.ttl = options_.ttl;
  sim::Agent agent(keys->get(), options, &history_,
                   [](const std::string& event) {
                     std::cerr << absl::FormatTime("%H:%M:%E3S ", absl::Now(),
                                                   absl::LocalTimeZone())
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

namespace {

// Watches `fleet` for `watch`: false at the first lost hold.
bool NoneLost(AgentFleet& fleet, absl::Duration watch) {
  const absl::Time until = absl::Now() + watch;
  while (absl::Now() < until) {
    if (!fleet.Lost().empty()) return false;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return fleet.Lost().empty();
}

// The rounds of ExpectNoHoldLost; false after the first failure.
bool SurviveRounds(EtcdCluster& cluster, AgentFleet& fleet, int rounds,
                   absl::Duration watch,
                   const std::function<absl::StatusOr<int>()>& inject) {
  for (int round = 1; round <= rounds; ++round) {
    if (!fleet.WaitSettled(absl::Seconds(60))) {
      ADD_FAILURE() << "round " << round << ": the agents hold "
                    << fleet.live_units() << " units, not all, after 60 s";
      return false;
    }
    absl::StatusOr<int> hit = inject();
    if (!hit.ok()) {
      ADD_FAILURE() << "round " << round << ": " << hit.status();
      return false;
    }
    std::cerr << "round " << round << ": fault on member " << *hit << std::endl;
    if (!NoneLost(fleet, watch)) return false;
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
  return NoneLost(fleet, watch);
}

}  // namespace

void ExpectNoHoldLost(EtcdCluster& cluster, int rounds, absl::Duration watch,
                      const std::function<absl::StatusOr<int>()>& inject) {
  AgentFleet fleet(cluster.uri(), {});
  SurviveRounds(cluster, fleet, rounds, watch, inject);
  fleet.Stop();
  EXPECT_TRUE(fleet.Lost().empty()) << "holds lost:\n"
                                    << Describe(fleet.Lost());
  const sim::Verdict verdict = fleet.Verdict();
  EXPECT_TRUE(verdict.safe) << ::testing::PrintToString(verdict.violations);
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
