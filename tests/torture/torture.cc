// leasehold-torture: `leasehold agent` processes on a 3-member etcd cluster,
// every agent talking to every member through a fault proxy of its own,
// while seeded random faults hit the members (leader and follower kills and
// pauses, minority partitions), the agent→member links (delays, resets,
// blackholes) and the agents (SIGSTOP, SIGKILL and a new process). Every
// hold the agents print is judged by the simulation's safety check.
//
//   leasehold-torture                          # 60 s, a random seed
//   leasehold-torture --duration 10m --seed 7  # replays seed 7's faults
//
// It prints the seed first and each fault as it starts and heals, then a
// report: ownership transfers, overlaps and fence order violations (must be
// 0), holds lost while the agent's own path to a quorum was up (target 0;
// see reachability.h; losses while the cluster itself committed nothing
// for half a TTL are counted apart), failover latency. Exit 0 when the run is
// safe, 1 on a violation (or more path-up losses than --max-path-up-losses, or
// an agent that crashed), 2 on bad flags, 3 when the cluster cannot start.
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "registry/keys_api.h"
#include "registry/open.h"
#include "tests/testing/etcd_cluster.h"
#include "tests/testing/loopback_net.h"
#include "tests/torture/agent_process.h"
#include "tests/torture/fault_plan.h"
#include "tests/torture/reachability.h"
#include "tools/cli/args.h"
#include "tools/sim/history.h"

namespace leasehold::torture {
namespace {

using testing::Direction;
using testing::EtcdCluster;
using testing::TcpProxy;

constexpr char kUsage[] =
    "usage: leasehold-torture [flags]\n"
    "Runs `leasehold agent` processes on a 3-member etcd cluster through "
    "fault\nproxies, injects seeded random faults and judges every hold.\n\n";

const std::vector<cli::FlagSpec> kFlags = {
    {"duration", cli::FlagSpec::kValue, "DUR", "how long to run (default 60s)"},
    {"seed", cli::FlagSpec::kValue, "N",
     "the faults' seed (default: random, printed)"},
    {"agents", cli::FlagSpec::kValue, "M", "agent processes (default 5)"},
    {"units", cli::FlagSpec::kValue, "U", "units they share (default 500)"},
    {"ttl", cli::FlagSpec::kValue, "DUR",
     "the agents' lease TTL (default 5s; with etcd's default elections a "
     "shorter TTL can run out during an election, which counts as a loss "
     "with the path up)"},
    {"fault-every", cli::FlagSpec::kValue, "DUR",
     "mean time between fault starts (default 700ms)"},
    {"registry-options", cli::FlagSpec::kValue, "OPTS",
     "options for the agents' etcd:// URI, e.g. request-timeout=1s "
     "(default: none, the client's defaults)"},
    {"short-elections", cli::FlagSpec::kSwitch, "",
     "heartbeat 50ms, election timeout 500ms (default: etcd's 100ms/1s)"},
    {"max-path-up-losses", cli::FlagSpec::kValue, "N",
     "exit 1 when more holds are lost with the agent's path to a quorum up "
     "(default: report only)"},
    {"leasehold", cli::FlagSpec::kValue, "PATH",
     "the leasehold binary (default: the one built with this program)"},
    {"log-dir", cli::FlagSpec::kValue, "DIR",
     "keep the agents' output here (default: a temporary directory, removed "
     "after a clean run)"},
    {"quiet", cli::FlagSpec::kSwitch, "", "do not print each fault"},
    {"plan", cli::FlagSpec::kSwitch, "",
     "print the seed's fault plan and exit"},
    {"help", cli::FlagSpec::kSwitch, "", "print this help"},
};

struct Flags {
  absl::Duration duration;
  uint64_t seed = 0;
  int agents = 0;
  int units = 0;
  absl::Duration ttl;
  absl::Duration fault_every;
  std::string registry_options;
  bool short_elections = false;
  std::optional<uint64_t> max_path_up_losses;
  std::string leasehold;
  std::string log_dir;
  bool quiet = false;
  bool help = false;
  bool plan = false;
};

absl::StatusOr<Flags> ParseFlags(int argc, char** argv) {
  absl::StatusOr<cli::Args> args =
      cli::ParseArgs(std::vector<std::string>(argv + 1, argv + argc), kFlags);
  if (!args.ok()) return args.status();
  if (!args->positional().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument \"", args->positional()[0], "\""));
  }
  Flags flags;
  flags.help = args->Has("help");
  absl::StatusOr<absl::Duration> duration =
      args->DurationOr("duration", absl::Seconds(60));
  absl::StatusOr<uint64_t> seed = args->UintOr("seed", std::random_device{}());
  absl::StatusOr<uint64_t> agents = args->UintOr("agents", 5);
  // TTL 5 s is what leasehold promises to keep through a leader's loss
  // with etcd's default elections (README "Reliability"); 500 units
  // renewed every 5/3 s put etcd under the same renew load as 200 units
  // every 2/3 s would.
  absl::StatusOr<uint64_t> units = args->UintOr("units", 500);
  absl::StatusOr<absl::Duration> ttl =
      args->DurationOr("ttl", absl::Seconds(5));
  absl::StatusOr<absl::Duration> fault_every =
      args->DurationOr("fault-every", absl::Milliseconds(700));
  for (const absl::Status& s :
       {duration.status(), seed.status(), agents.status(), units.status(),
        ttl.status(), fault_every.status()}) {
    if (!s.ok()) return s;
  }
  if (args->Has("max-path-up-losses")) {
    absl::StatusOr<uint64_t> max = args->Uint("max-path-up-losses");
    if (!max.ok()) return max.status();
    flags.max_path_up_losses = *max;
  }
  if (*agents < 2 || *agents > 50) {
    return absl::InvalidArgumentError("--agents must be between 2 and 50");
  }
  if (*units < 1 || *units > 10000) {
    return absl::InvalidArgumentError("--units must be between 1 and 10000");
  }
  if (*ttl < absl::Seconds(1) || *ttl > absl::Minutes(1)) {
    return absl::InvalidArgumentError("--ttl must be between 1s and 1m");
  }
  if (*fault_every < absl::Milliseconds(10)) {
    return absl::InvalidArgumentError("--fault-every must be at least 10ms");
  }
  flags.duration = *duration;
  flags.seed = *seed;
  flags.agents = static_cast<int>(*agents);
  flags.units = static_cast<int>(*units);
  flags.ttl = absl::Ceil(*ttl, absl::Seconds(1));
  flags.fault_every = *fault_every;
  if (flags.duration < WarmUp({.ttl = flags.ttl}) + Settle({.ttl = flags.ttl}) +
                           absl::Seconds(1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--duration must leave room for faults: at least ",
        absl::FormatDuration(WarmUp({.ttl = flags.ttl}) +
                             Settle({.ttl = flags.ttl}) + absl::Seconds(1)),
        " with this TTL"));
  }
  flags.registry_options = args->StringOr("registry-options", "");
  flags.short_elections = args->Has("short-elections");
  flags.leasehold = args->StringOr("leasehold", LEASEHOLD_BINARY);
  flags.log_dir = args->StringOr("log-dir", "");
  flags.quiet = args->Has("quiet");
  flags.plan = args->Has("plan");
  return flags;
}

std::string Seconds(absl::Duration d) {
  return absl::StrFormat("%.2fs", absl::ToDoubleSeconds(d));
}

// p-th percentile (0..100) of `values`, sorted in place.
absl::Duration Percentile(std::vector<absl::Duration>& values, double p) {
  if (values.empty()) return absl::ZeroDuration();
  std::sort(values.begin(), values.end());
  const size_t i = std::min(values.size() - 1,
                            static_cast<size_t>(p / 100.0 * values.size()));
  return values[i];
}

// Writes one key through the cluster's own endpoints (not the agents'
// links) every 100 ms and records when each write was answered: when the
// cluster could commit, whatever the agents' paths. A write waits at most
// 500 ms, so a stuck member costs one probe, not the measurement.
class CommitProbe {
 public:
  explicit CommitProbe(std::unique_ptr<registry::KeysApi> keys)
      : keys_(std::move(keys)), thread_([this] { Run(); }) {}
  ~CommitProbe() {
    stop_ = true;
    thread_.join();
  }

  // Answer times of the writes that succeeded, in order.
  std::vector<absl::Time> commits() const {
    std::lock_guard<std::mutex> lock(mu_);
    return commits_;
  }

 private:
  void Run() {
    for (uint64_t i = 0; !stop_; ++i) {
      const absl::Time sent = absl::Now();
      registry::SetOptions set;
      set.deadline = sent + absl::Milliseconds(500);
      if (keys_->Set("/leasehold-torture/probe", absl::StrCat(i), set).ok()) {
        std::lock_guard<std::mutex> lock(mu_);
        commits_.push_back(absl::Now());
      }
      absl::SleepFor(sent + absl::Milliseconds(100) - absl::Now());
    }
  }

  const std::unique_ptr<registry::KeysApi> keys_;
  mutable std::mutex mu_;
  std::vector<absl::Time> commits_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class Torture {
 public:
  explicit Torture(Flags flags)
      : flags_(std::move(flags)),
        plan_options_{.duration = flags_.duration,
                      .agents = flags_.agents,
                      .ttl = flags_.ttl,
                      .mean_gap = flags_.fault_every},
        reach_({.agents = flags_.agents, .ttl = flags_.ttl}) {}

  // Exit code as documented at the top of this file.
  int Run();

 private:
  struct Event {
    absl::Duration at;
    size_t fault;  // index into plan_
    bool heal;
    bool operator>(const Event& other) const { return at > other.at; }
  };
  // A fault in force: what Heal needs to undo it.
  struct Active {
    int member = -1;
  };

  absl::Status SetUp();
  void Apply(size_t index);
  void Heal(size_t index);
  absl::Status PollAgents();
  void Progress(absl::Duration elapsed);
  int Report();
  void Say(const std::string& line) {
    std::cout << absl::StrFormat("[%7.1fs] ",
                                 absl::ToDoubleSeconds(absl::Now() - start_))
              << line << std::endl;
  }
  TcpProxy& Link(int agent, int member) {
    return *links_[static_cast<size_t>(agent * cluster_->size() + member)];
  }

  const Flags flags_;
  const FaultPlanOptions plan_options_;
  std::vector<Fault> plan_;
  std::map<size_t, Active> active_;
  std::vector<std::string> skipped_;
  Reachability reach_;
  sim::History history_;
  std::unique_ptr<EtcdCluster> cluster_;
  std::unique_ptr<CommitProbe> probe_;
  // agent * members + member: each agent's own way to each member.
  std::vector<std::unique_ptr<TcpProxy>> links_;
  std::vector<std::unique_ptr<AgentProcess>> agents_;
  std::string log_dir_;
  absl::Time start_;
  std::map<FaultKind, int> applied_;
  // What makes the run fail besides a safety violation: an agent that
  // crashed or printed holds that do not add up, a member that would not
  // come back.
  std::vector<std::string> errors_;
};

absl::Status Torture::SetUp() {
  testing::EtcdClusterOptions options;
  options.timing = flags_.short_elections ? testing::ElectionTiming::kShort
                                          : testing::ElectionTiming::kDefault;
  absl::StatusOr<std::unique_ptr<EtcdCluster>> cluster =
      EtcdCluster::Start(options);
  if (!cluster.ok()) return cluster.status();
  cluster_ = std::move(*cluster);
  absl::StatusOr<std::unique_ptr<registry::KeysApi>> probe_keys =
      registry::Open(absl::StrCat(cluster_->uri(), "?request-timeout=500ms"));
  if (!probe_keys.ok()) return probe_keys.status();
  probe_ = std::make_unique<CommitProbe>(*std::move(probe_keys));
  for (int a = 0; a < flags_.agents; ++a) {
    for (int m = 0; m < cluster_->size(); ++m) {
      absl::StatusOr<std::unique_ptr<TcpProxy>> proxy =
          TcpProxy::Start(cluster_->member(m).client_port());
      if (!proxy.ok()) return proxy.status();
      links_.push_back(std::move(*proxy));
    }
  }
  if (flags_.log_dir.empty()) {
    std::string pattern = "/tmp/leasehold-torture-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      return absl::InternalError("cannot create a temporary directory");
    }
    log_dir_ = pattern;
  } else {
    log_dir_ = flags_.log_dir;
    std::error_code error;
    std::filesystem::create_directories(log_dir_, error);
    if (error) {
      return absl::InvalidArgumentError(
          absl::StrCat("--log-dir ", log_dir_, ": ", error.message()));
    }
  }
  for (int a = 0; a < flags_.agents; ++a) {
    // Each agent prefers another member first, so member faults hit some
    // agents' preferred endpoint and not others'.
    std::vector<std::string> endpoints;
    for (int i = 0; i < cluster_->size(); ++i) {
      const int m = (a + i) % cluster_->size();
      endpoints.push_back(absl::StrCat("127.0.0.1:", Link(a, m).port()));
    }
    std::string uri = absl::StrCat("etcd://", absl::StrJoin(endpoints, ","));
    if (!flags_.registry_options.empty()) {
      absl::StrAppend(&uri, "?", flags_.registry_options);
    }
    agents_.push_back(std::make_unique<AgentProcess>(
        std::vector<std::string>{flags_.leasehold, "--registry", uri, "-o",
                                 "json", "agent", "--machine", AgentName(a),
                                 "--units", absl::StrCat(flags_.units), "--ttl",
                                 absl::FormatDuration(flags_.ttl)},
        absl::StrCat(log_dir_, "/", AgentName(a)), &history_));
  }
  return absl::OkStatus();
}

void Torture::Apply(size_t index) {
  const Fault& f = plan_[index];
  const absl::Time at = absl::Now();
  int member = f.member;
  absl::Status status = absl::OkStatus();
  switch (f.kind) {
    case FaultKind::kKillLeader:
    case FaultKind::kPauseLeader: {
      absl::StatusOr<int> leader = f.kind == FaultKind::kKillLeader
                                       ? cluster_->KillLeader()
                                       : cluster_->PauseLeader();
      status = leader.status();
      if (leader.ok()) member = *leader;
      break;
    }
    case FaultKind::kKillFollower:
    case FaultKind::kPauseFollower: {
      absl::StatusOr<int> leader = cluster_->WaitForLeader(absl::Seconds(10));
      status = leader.status();
      if (!leader.ok()) break;
      std::vector<int> followers;
      for (int m = 0; m < cluster_->size(); ++m) {
        if (m != *leader) followers.push_back(m);
      }
      member = followers[static_cast<size_t>(f.follower) % followers.size()];
      status = f.kind == FaultKind::kKillFollower
                   ? cluster_->KillMember(member)
                   : cluster_->PauseMember(member);
      break;
    }
    case FaultKind::kPartitionMember:
      status = cluster_->PartitionMember(member);
      break;
    case FaultKind::kDelayLink:
      Link(f.agent, member).Delay(Direction::kBoth, f.delay);
      break;
    case FaultKind::kResetLink:
      Link(f.agent, member).Refuse(true);
      Link(f.agent, member).Reset();
      break;
    case FaultKind::kBlackholeLink:
      Link(f.agent, member).Blackhole(Direction::kBoth);
      break;
    case FaultKind::kPauseAgent:
      agents_[f.agent]->Pause();
      break;
    case FaultKind::kKillAgent: {
      absl::StatusOr<absl::Time> dead = agents_[f.agent]->Kill();
      status = dead.status();
      break;
    }
  }
  std::string what = Describe(f);
  if (member >= 0 && !IsLinkFault(f.kind) &&
      f.kind != FaultKind::kPartitionMember) {
    absl::StrAppend(&what, " (", MemberName(member), ")");
  }
  if (!status.ok() && f.kind == FaultKind::kKillAgent) {
    // It had died on its own: a crash of the agent, not a fault of ours.
    errors_.push_back(status.ToString());
  } else if (!status.ok()) {
    skipped_.push_back(absl::StrCat(what, ": ", status.ToString()));
    Say(absl::StrCat("could not apply ", what, ": ", status.ToString()));
    return;
  }
  ++applied_[f.kind];
  active_[index] = {member};
  reach_.Add({.kind = f.kind,
              .member = member,
              .agent = f.agent,
              .delay = f.delay,
              .start = at});
  if (!flags_.quiet) Say(what);
}

void Torture::Heal(size_t index) {
  auto it = active_.find(index);
  if (it == active_.end()) return;  // never applied
  const Fault& f = plan_[index];
  const int member = it->second.member;
  active_.erase(it);
  absl::Status status = absl::OkStatus();
  switch (f.kind) {
    case FaultKind::kKillLeader:
    case FaultKind::kKillFollower:
      status = cluster_->RestartMember(member);
      break;
    case FaultKind::kPauseLeader:
    case FaultKind::kPauseFollower:
      status = cluster_->ResumeMember(member);
      break;
    case FaultKind::kPartitionMember:
      status = cluster_->HealPartition();
      break;
    case FaultKind::kDelayLink:
    case FaultKind::kBlackholeLink:
      Link(f.agent, member).Heal();
      break;
    case FaultKind::kResetLink:
      Link(f.agent, member).Refuse(false);
      Link(f.agent, member).Heal();
      break;
    case FaultKind::kPauseAgent:
      agents_[f.agent]->Resume();
      break;
    case FaultKind::kKillAgent:
      status = agents_[f.agent]->Start();
      break;
  }
  reach_.Heal(f.kind, member, f.agent, absl::Now());
  if (!status.ok()) {
    errors_.push_back(
        absl::StrCat("could not heal ", Describe(f), ": ", status.ToString()));
    Say(errors_.back());
  } else if (!flags_.quiet) {
    Say(absl::StrCat("healed ", FaultName(f.kind), " ",
                     f.agent >= 0 ? AgentName(f.agent) : MemberName(member)));
  }
}

absl::Status Torture::PollAgents() {
  for (auto& agent : agents_) {
    if (absl::Status s = agent->Poll(); !s.ok()) return s;
  }
  return absl::OkStatus();
}

void Torture::Progress(absl::Duration elapsed) {
  const std::vector<sim::Hold> holds = history_.holds();
  int same = 0;
  int lost = 0;
  for (const sim::Hold& h : holds) lost += h.how_ended == "lost" ? 1 : 0;
  std::cout << absl::StrFormat(
                   "[%7.1fs] progress: %d holds, %d ownership transfers, %d "
                   "lost, %d faults in force",
                   absl::ToDoubleSeconds(elapsed), holds.size(),
                   history_.Transfers(&same), lost, active_.size())
            << std::endl;
}

int Torture::Run() {
  std::string replay = absl::StrCat(
      "leasehold-torture --seed ", flags_.seed, " --duration ",
      absl::FormatDuration(flags_.duration), " --agents ", flags_.agents,
      " --units ", flags_.units, " --ttl ", absl::FormatDuration(flags_.ttl),
      " --fault-every ", absl::FormatDuration(flags_.fault_every));
  if (!flags_.registry_options.empty()) {
    absl::StrAppend(&replay, " --registry-options '", flags_.registry_options,
                    "'");
  }
  if (flags_.short_elections) absl::StrAppend(&replay, " --short-elections");
  std::cout << "leasehold-torture: seed " << flags_.seed
            << "\n  replay: " << replay << std::endl;
  plan_ = MakeFaultPlan(flags_.seed, plan_options_);
  if (flags_.plan) {
    for (const Fault& f : plan_) std::cout << Describe(f) << "\n";
    return 0;
  }
  if (absl::Status s = SetUp(); !s.ok()) {
    std::cerr << "leasehold-torture: cannot set up: " << s << "\n";
    return 3;
  }
  std::cout << "  cluster up (" << cluster_->size() << " members), "
            << plan_.size() << " faults planned, agent output in " << log_dir_
            << std::endl;

  start_ = absl::Now();
  for (auto& agent : agents_) {
    if (absl::Status s = agent->Start(); !s.ok())
      errors_.push_back(s.ToString());
  }
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events;
  for (size_t i = 0; i < plan_.size(); ++i) {
    events.push({plan_[i].at, i, false});
    events.push({plan_[i].at + plan_[i].length, i, true});
  }
  absl::Time next_progress = start_ + absl::Seconds(10);
  while (errors_.empty()) {
    const absl::Time now = absl::Now();
    if (now - start_ >= flags_.duration) break;
    while (!events.empty() && start_ + events.top().at <= now) {
      const Event e = events.top();
      events.pop();
      e.heal ? Heal(e.fault) : Apply(e.fault);
    }
    if (absl::Status s = PollAgents(); !s.ok()) errors_.push_back(s.ToString());
    if (now >= next_progress) {
      Progress(now - start_);
      next_progress += absl::Seconds(10);
    }
    absl::Time wake = start_ + flags_.duration;
    if (!events.empty()) wake = std::min(wake, start_ + events.top().at);
    absl::SleepFor(std::clamp(wake - absl::Now(), absl::ZeroDuration(),
                              absl::Milliseconds(200)));
  }
  // Anything still in force (a run cut short) is healed before the agents
  // are asked to stop, so that they can release.
  while (!events.empty()) {
    if (events.top().heal) Heal(events.top().fault);
    events.pop();
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  for (auto& agent : agents_) {
    if (!agent->running()) continue;
    if (absl::Status s = agent->Stop(deadline); !s.ok()) {
      errors_.push_back(s.ToString());
    }
  }
  if (absl::Status s = PollAgents(); !s.ok()) errors_.push_back(s.ToString());
  const int code = Report();
  if (code == 0 && flags_.log_dir.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(log_dir_, ignored);
  } else {
    std::cout << "agent output kept in " << log_dir_ << "\n";
  }
  return code;
}

int Torture::Report() {
  const std::vector<sim::Hold> holds = history_.holds();
  const sim::Verdict verdict = history_.Check();
  int same_agent = 0;
  const int transfers = history_.Transfers(&same_agent);

  // The cluster's own write outages: stretches of half a TTL or more
  // between two commits of the probe.
  const std::vector<absl::Time> commits = probe_->commits();
  int outages = 0;
  absl::Duration longest_outage = absl::ZeroDuration();
  for (size_t i = 0; i < commits.size(); ++i) {
    reach_.Committed(commits[i]);
    if (i == 0) continue;
    const absl::Duration gap = commits[i] - commits[i - 1];
    if (gap >= flags_.ttl / 2) ++outages;
    longest_outage = std::max(longest_outage, gap);
  }
  int lost = 0, lost_agent_down = 0, lost_no_path = 0, lost_cluster_out = 0,
      lost_path_up = 0;
  std::map<std::string, int> path_up_during;
  std::map<std::string, int> ended;
  for (const sim::Hold& h : holds) {
    ++ended[h.how_ended];
    if (h.how_ended != "lost") continue;
    ++lost;
    int agent = -1;
    for (int a = 0; a < flags_.agents; ++a) {
      if (AgentName(a) == h.machine) agent = a;
    }
    const Reachability::Cause cause =
        reach_.Explain(agent, h.end - flags_.ttl, h.end);
    if (cause.agent_down) {
      ++lost_agent_down;
    } else if (cause.path_down) {
      ++lost_no_path;
    } else if (cause.cluster_out) {
      ++lost_cluster_out;
    } else {
      ++lost_path_up;
      std::vector<std::string> kinds;
      for (FaultKind k : cause.faults) kinds.push_back(FaultName(k));
      ++path_up_during[kinds.empty() ? "no fault" : absl::StrJoin(kinds, "+")];
    }
  }
  std::vector<absl::Duration> failover = history_.FailoverLatencies();

  std::vector<std::string> applied;
  int faults = 0;
  for (const auto& [kind, n] : applied_) {
    applied.push_back(absl::StrCat(FaultName(kind), " ", n));
    faults += n;
  }
  std::vector<std::string> endings;
  for (const auto& [how, n] : ended)
    endings.push_back(absl::StrCat(how, " ", n));
  std::vector<std::string> during;
  for (const auto& [kinds, n] : path_up_during) {
    during.push_back(absl::StrCat(kinds, " ", n));
  }
  std::cout << "\nleasehold-torture report (seed " << flags_.seed << ", "
            << absl::FormatDuration(flags_.duration) << ")\n"
            << "  faults applied:       " << faults << " ("
            << absl::StrJoin(applied, ", ") << ")\n";
  if (!skipped_.empty()) {
    std::cout << "  faults not applied:   " << skipped_.size()
              << " (first: " << skipped_.front() << ")\n";
  }
  std::cout << "  holds:                " << holds.size() << " ("
            << absl::StrJoin(endings, ", ") << ")\n"
            << "  ownership transfers:  " << transfers
            << absl::StrFormat(" (%.1f/s", transfers / absl::ToDoubleSeconds(
                                                           flags_.duration))
            << ", and " << same_agent << " re-acquired by the same agent)\n"
            << "  overlaps:             " << verdict.overlaps << "\n"
            << "  fence order violations: " << verdict.fence_violations << "\n"
            << "  holds lost:           " << lost << ": agent paused or killed "
            << lost_agent_down << ", its path to a quorum cut " << lost_no_path
            << ", the cluster committed nothing for half a TTL or more "
            << lost_cluster_out << ", its path to a quorum up " << lost_path_up
            << (during.empty()
                    ? ""
                    : " (during: " + absl::StrJoin(during, ", ") + ")")
            << "\n"
            << "  cluster write outages: " << outages
            << " of half a TTL or more (the probe's longest gap between "
               "commits: "
            << Seconds(longest_outage) << ")\n"
            << "  failover latency:     " << failover.size()
            << " holds lost while their agent was paused or killed, each "
               "taken next";
  if (!failover.empty()) {
    const absl::Duration p50 = Percentile(failover, 50);
    const absl::Duration p99 = Percentile(failover, 99);
    std::cout << " after p50 " << Seconds(p50) << ", p99 " << Seconds(p99)
              << ", max " << Seconds(failover.back());
  }
  std::cout << "\n";
  for (size_t i = 0; i < verdict.violations.size() && i < 20; ++i) {
    std::cout << "  VIOLATION: " << verdict.violations[i] << "\n";
  }
  for (const std::string& e : errors_) {
    std::cout << "  ERROR: " << e << "\n";
  }
  bool failed = !verdict.safe || !errors_.empty();
  if (flags_.max_path_up_losses.has_value() &&
      static_cast<uint64_t>(lost_path_up) > *flags_.max_path_up_losses) {
    std::cout << "  more holds lost with the path up than "
                 "--max-path-up-losses "
              << *flags_.max_path_up_losses << "\n";
    failed = true;
  }
  std::cout << "  verdict:              " << (failed ? "FAILED" : "SAFE")
            << std::endl;
  return failed ? 1 : 0;
}

int Main(int argc, char** argv) {
  absl::StatusOr<Flags> flags = ParseFlags(argc, argv);
  if (flags.ok() && flags->help) {
    std::cout << kUsage << cli::FlagHelp(kFlags);
    return 0;
  }
  if (!flags.ok()) {
    std::cerr << "leasehold-torture: " << flags.status().message() << "\n\n"
              << kUsage << cli::FlagHelp(kFlags);
    return 2;
  }
  return Torture(*std::move(flags)).Run();
}

}  // namespace
}  // namespace leasehold::torture

int main(int argc, char** argv) { return leasehold::torture::Main(argc, argv); }
