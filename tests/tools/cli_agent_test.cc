// `leasehold agent`: the simulation across real processes on a real etcd.
// Agents crash (SIGKILL), pause (SIGSTOP … SIGCONT) and get upgraded while
// units fail over; the holds they print are judged by the simulation's own
// safety check.
#include <signal.h>

#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lease/lease_manager.h"
#include "registry/keys_api.h"
#include "registry/open.h"
#include "tests/testing/etcd_server.h"
#include "tests/testing/run_process.h"
#include "tools/sim/history.h"
#include "tools/sim/hold_line.h"

namespace leasehold::cli {
namespace {

using ::leasehold::testing::ProcessResult;
using ::leasehold::testing::RunProcess;
using ::leasehold::testing::Subprocess;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr int kUnits = 6;

// Polls `done` every 20 ms until it holds or a generous deadline passes.
template <typename Predicate>
bool Eventually(Predicate done, absl::Duration within = absl::Seconds(30)) {
  const absl::Time deadline = absl::Now() + within;
  while (absl::Now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

// Against each API: "etcd" (v2) and "etcd3" (v3, without --enable-v2).
class CliAgentTest : public ::testing::TestWithParam<std::string> {
 protected:
  CliAgentTest()
      : prefix_(absl::StrCat("/agents-", std::random_device{}(), "/")),
        keys_(*registry::Open(Etcd().uri())),
        manager_(keys_.get(), {.prefix = prefix_}) {}

  ::leasehold::testing::EtcdServer& Etcd() const {
    return ::leasehold::testing::SharedEtcdFor(GetParam());
  }

  std::unique_ptr<Subprocess> StartAgent(const std::string& machine,
                                         int version = 1) {
    return std::make_unique<Subprocess>(std::vector<std::string>{
        LEASEHOLD_BINARY, "--registry", Etcd().uri(), "--prefix", prefix_, "-o",
        "json", "agent", "--machine", machine, "--units",
        std::to_string(kUnits), "--ttl", "1s", "--version",
        std::to_string(version)});
  }

  // Units held per machine, as etcd has them now.
  std::map<std::string, int> UnitsByMachine() {
    std::map<std::string, int> by_machine;
    auto leases = manager_.ListLeases();
    if (!leases.ok()) return by_machine;
    for (const auto& lease : *leases) {
      if (lease->name().rfind("unit-", 0) == 0)
        ++by_machine[lease->machine_id()];
    }
    return by_machine;
  }
  bool Spread(const std::map<std::string, int>& want) {
    return UnitsByMachine() == want;
  }

  // The units `agent` has printed as held so far: the registry can show a
  // grant a moment before its holder prints it.
  static int UnitsPrinted(Subprocess& agent) {
    agent.ReadUntil(absl::Now() + absl::Milliseconds(20));
    sim::History printed;
    sim::HoldLineReader reader(&printed);
    std::istringstream lines(agent.out());
    for (std::string line; std::getline(lines, line);) {
      if (!reader.Add(line).ok()) return -1;
    }
    const std::vector<sim::Hold> holds = printed.holds();
    int units = 0;
    for (size_t id : reader.open()) {
      units += holds[id].lease.rfind("unit-", 0) == 0 ? 1 : 0;
    }
    return units;
  }

  // Records the holds an agent printed; holds it never closed (it was
  // killed) end at `killed_by`, a moment it was surely dead.
  void Judge(const std::string& output,
             absl::Time killed_by = absl::InfiniteFuture()) {
    sim::HoldLineReader reader(&history_);
    std::istringstream lines(output);
    for (std::string line; std::getline(lines, line);) {
      const absl::Status added = reader.Add(line);
      ASSERT_TRUE(added.ok()) << added;
    }
    if (killed_by == absl::InfiniteFuture()) {
      EXPECT_THAT(reader.open(), IsEmpty()) << "holds a clean exit left open";
    }
    reader.EndOpen(killed_by, "killed");
  }

  const std::string prefix_;
  std::unique_ptr<registry::KeysApi> keys_;
  lease::LeaseManager manager_;
  sim::History history_;
};

TEST_P(CliAgentTest, UnitsFailOverAcrossProcessesAndNoUnitHasTwoOwners) {
  auto m1 = StartAgent("m1");
  auto m2 = StartAgent("m2");
  auto m3 = StartAgent("m3");
  ASSERT_TRUE(Eventually([&] {
    return Spread({{"m1", 2}, {"m2", 2}, {"m3", 2}});
  })) << "fair shares never settled";

  // Crash: m1 dies holding its units; they run out and the others take them.
  m1->Signal(SIGKILL);
  ProcessResult r1 = m1->Wait(absl::Now() + absl::Seconds(30));
  const absl::Time m1_dead_by = absl::Now();
  EXPECT_EQ(r1.exit_code, 128 + SIGKILL);
  ASSERT_TRUE(Eventually([&] {
    return Spread({{"m2", 3}, {"m3", 3}});
  })) << "m1's units did not fail over";

  // Pause: m2 is frozen past its TTL; m3 ends up with every unit, and m2,
  // when it wakes, finds out from its own clock that it lost its units.
  m2->Signal(SIGSTOP);
  ASSERT_TRUE(Eventually([&] {
    return Spread({{"m3", kUnits}});
  })) << "m2's units did not fail over while it was paused";
  m2->Signal(SIGCONT);
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  EXPECT_TRUE(m2->WaitForOutput(R"("event":"lost","lease":"unit-)", deadline));
  ASSERT_TRUE(Eventually([&] {
    return Spread({{"m2", 3}, {"m3", 3}});
  })) << "m2 did not get its share back";

  // Upgrade: a version-2 agent steals the engine leadership by index.
  auto m4 = StartAgent("m4", /*version=*/2);
  EXPECT_TRUE(m4->WaitForOutput(
      R"("event":"stole","lease":"engine-leader","machine":"m4")", deadline));
  ASSERT_TRUE(Eventually([&] {
    return Spread({{"m2", 2}, {"m3", 2}, {"m4", 2}});
  }));

  // Clean shutdown releases everything at once.
  for (auto* agent : {m2.get(), m3.get(), m4.get()}) agent->Signal(SIGTERM);
  for (auto* agent : {m2.get(), m3.get(), m4.get()}) {
    ProcessResult r = agent->Wait(deadline);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr(R"("event":"stopped")"));
    Judge(r.out);
  }
  Judge(r1.out, m1_dead_by);
  EXPECT_THAT(*manager_.ListLeases(), IsEmpty());

  const sim::Verdict verdict = history_.Check();
  EXPECT_TRUE(verdict.safe) << ::testing::PrintToString(verdict.violations);
  EXPECT_GE(history_.holds().size(), 2u * kUnits);
}

// An agent frozen past its leases' expiry (as a starved process is) and
// then killed never says "lost": the expiry it printed with each grant and
// renew tells when it stopped believing, so its holds end there, before
// the other agent took its units, and not when it was reaped.
TEST_P(CliAgentTest, AKilledAgentBelievedUntilTheLastExpiryItPrinted) {
  auto m1 = StartAgent("m1");
  auto m2 = StartAgent("m2");
  ASSERT_TRUE(Eventually([&] {
    return Spread({{"m1", kUnits / 2}, {"m2", kUnits / 2}}) &&
           UnitsPrinted(*m1) == kUnits / 2;
  })) << "fair shares never settled";
  m1->Signal(SIGSTOP);
  ASSERT_TRUE(Eventually([&] {
    return Spread({{"m2", kUnits}});
  })) << "m1's units did not fail over while it was frozen";
  m1->Signal(SIGKILL);
  ProcessResult r1 = m1->Wait(absl::Now() + absl::Seconds(30));
  const absl::Time m1_dead_by = absl::Now();
  EXPECT_EQ(r1.exit_code, 128 + SIGKILL);
  EXPECT_THAT(r1.out, HasSubstr(R"("expiry_ns":)"));
  m2->Signal(SIGTERM);
  ProcessResult r2 = m2->Wait(absl::Now() + absl::Seconds(30));
  EXPECT_EQ(r2.exit_code, 0) << r2.err;
  Judge(r2.out);
  Judge(r1.out, m1_dead_by);

  int ended_before_death = 0;
  for (const sim::Hold& hold : history_.holds()) {
    if (hold.machine == "m1" && hold.how_ended == "killed") {
      EXPECT_LE(hold.end, hold.expiry) << hold.lease;
      ended_before_death += hold.end < m1_dead_by ? 1 : 0;
    }
  }
  EXPECT_GE(ended_before_death, kUnits / 2);
  const sim::Verdict verdict = history_.Check();
  EXPECT_TRUE(verdict.safe) << ::testing::PrintToString(verdict.violations);
}

INSTANTIATE_TEST_SUITE_P(Apis, CliAgentTest,
                         ::testing::ValuesIn(::leasehold::testing::EtcdApis()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

TEST(CliAgentFlagsTest, BadInputExitsTwoNamingIt) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {"--units", "1"},  // no --machine
           {"--machine", "a/b"},
           {"--machine", "m", "--units", "0"},
           {"--machine", "m", "--ttl", "soon"},
           {"--machine", "m", "--version", "0"},
           {"--machine", "m", "--bogus"}}) {
    std::vector<std::string> argv = {LEASEHOLD_BINARY, "--registry",
                                     "mem:", "agent"};
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessResult r = RunProcess(argv);
    EXPECT_EQ(r.exit_code, 2) << args.back() << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("leasehold agent:")) << args.back();
  }
}

TEST(CliAgentFlagsTest, UnreachableRegistryExitsThree) {
  ProcessResult r = RunProcess({LEASEHOLD_BINARY, "--registry",
                                "etcd://127.0.0.1:1?request-timeout=1s",
                                "agent", "--machine", "m1"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("leasehold agent:"));
}

}  // namespace
}  // namespace leasehold::cli
