// The leasehold binary's lock, elect, leader and observe commands against a
// real etcd: mutual exclusion of the commands they run, exit statuses,
// environment, loss and signal handling, and the leader's output.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registry/keys_api.h"
#include "registry/open.h"
#include "tests/testing/etcd_server.h"
#include "tests/testing/run_process.h"
#include "tests/tools/cli_test.h"

namespace leasehold::cli {
namespace {

using ::leasehold::testing::EtcdServer;
using ::leasehold::testing::ProcessResult;
using ::leasehold::testing::RunProcess;
using ::leasehold::testing::SharedEtcd;
using ::leasehold::testing::Subprocess;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

using CliLockTest = CliTest;

TEST_F(CliLockTest, FiftyConcurrentCommandsRunOneAtATime) {
  constexpr int kProcesses = 50;
  // Per process: test runs of other checkouts on this machine share /tmp.
  const std::string counter =
      absl::StrCat(::testing::TempDir(), "/lock_counter.", getpid());
  { std::ofstream(counter) << "0\n"; }
  // A read-sleep-write race that loses increments unless the lock excludes.
  const std::string increment = absl::StrCat(
      "n=$(cat ", counter, "); sleep 0.01; echo $((n + 1)) > ", counter);
  // Built here: the shared etcd must start on this thread, since it dies
  // with the thread that started it (PR_SET_PDEATHSIG).
  const std::vector<std::string> argv =
      Argv({"lock", "counter", "--", "sh", "-c", increment});
  std::vector<ProcessResult> results(kProcesses);
  std::vector<std::thread> threads;
  for (int i = 0; i < kProcesses; ++i) {
    threads.emplace_back([&, i] { results[i] = RunProcess(argv); });
  }
  for (std::thread& t : threads) t.join();
  for (const ProcessResult& r : results) EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFile(counter), "50\n");
  std::remove(counter.c_str());
}

TEST_F(CliLockTest, PassesStatusAndEnvironmentThrough) {
  ProcessResult seven =
      Leasehold({"lock", "status", "--", "sh", "-c", "exit 7"});
  EXPECT_EQ(seven.exit_code, 7) << seven.err;
  ProcessResult killed =
      Leasehold({"lock", "status", "--", "sh", "-c", "kill -KILL $$"});
  EXPECT_EQ(killed.exit_code, 128 + SIGKILL) << killed.err;
  ProcessResult missing = Leasehold({"lock", "status", "--", "no-such-cmd"});
  EXPECT_EQ(missing.exit_code, 127);
  EXPECT_THAT(missing.err, HasSubstr("cannot run \"no-such-cmd\""));

  const std::string print_env =
      "echo key=$LEASEHOLD_LOCK_KEY fence=$LEASEHOLD_FENCE";
  ProcessResult first = Leasehold({"lock", "env", "--", "sh", "-c", print_env});
  ProcessResult second =
      Leasehold({"lock", "env", "--", "sh", "-c", print_env});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_THAT(Field(first.out, "key"),
              MatchesRegex(absl::StrCat(prefix_, "lock/env/[0-9]+")));
  uint64_t first_fence = 0;
  uint64_t second_fence = 0;
  ASSERT_TRUE(absl::SimpleAtoi(Field(first.out, "fence"), &first_fence))
      << first.out;
  ASSERT_TRUE(absl::SimpleAtoi(Field(second.out, "fence"), &second_fence))
      << second.out;
  EXPECT_GT(second_fence, first_fence);
}

TEST_F(CliLockTest, TimeoutOnAHeldLockAndSignalForwarding) {
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  Subprocess holder(
      Argv({"lock", "t", "--", "sh", "-c", "echo holding; exec sleep 60"}));
  ASSERT_TRUE(holder.WaitForOutput("holding", deadline)) << holder.out();

  ProcessResult waited =
      Leasehold({"lock", "t", "--timeout", "1s", "--", "sh", "-c", "echo ran"});
  EXPECT_EQ(waited.exit_code, 1) << waited.err;
  EXPECT_THAT(waited.err, HasSubstr("lock \"t\": not acquired within 1s"));
  EXPECT_THAT(waited.out, Not(HasSubstr("ran")));
  EXPECT_LT(waited.elapsed, absl::Seconds(10));

  // SIGTERM reaches the command (sleep dies of it) and the lock is released
  // at once, not at its TTL.
  holder.Signal(SIGTERM);
  ProcessResult held = holder.Wait(deadline);
  EXPECT_EQ(held.exit_code, 128 + SIGTERM) << held.err;
  ProcessResult next =
      Leasehold({"lock", "t", "--timeout", "5s", "--", "true"});
  EXPECT_EQ(next.exit_code, 0) << next.err;
}

// Runs `lock doomed --ttl 1s --grace GRACE -- sh -c SCRIPT` on an etcd of
// its own; once SCRIPT printed its first line, hands the output so far to
// `before_loss`, kills that etcd and returns how leasehold ended.
ProcessResult LoseTheLock(
    absl::Duration grace, const std::string& script,
    const std::function<void(const std::string&)>& before_loss) {
  absl::StatusOr<std::unique_ptr<EtcdServer>> etcd = EtcdServer::Start();
  EXPECT_TRUE(etcd.ok()) << etcd.status();
  if (!etcd.ok()) return {};
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  Subprocess lock({LEASEHOLD_BINARY, "--registry",
                   absl::StrCat((*etcd)->uri(), "?request-timeout=1s"), "lock",
                   "doomed", "--ttl", "1s", "--grace",
                   absl::FormatDuration(grace), "--", "sh", "-c", script});
  EXPECT_TRUE(lock.WaitForOutput("\n", deadline)) << lock.out();
  before_loss(lock.out());
  EXPECT_TRUE((*etcd)->Kill().ok());
  return lock.Wait(deadline);
}

TEST_F(CliLockTest, LosingTheLockKillsTheCommand) {
  // The command ignores SIGTERM, so only the SIGKILL after --grace ends it.
  ProcessResult r =
      LoseTheLock(absl::Seconds(1), "trap '' TERM; echo started; exec sleep 60",
                  [](const std::string&) {});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("lock \"doomed\" lost"));
  EXPECT_THAT(r.err, HasSubstr("sent SIGTERM to \"sh\""));
  EXPECT_THAT(r.err, HasSubstr("sent SIGKILL"));
}

// True once `pid` has exited (gone, or a zombie nobody reaped yet).
bool Exited(pid_t pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string content((std::istreambuf_iterator<char>(stat)),
                      std::istreambuf_iterator<char>());
  const size_t state = content.rfind(") ");
  return content.empty() ||
         (state != std::string::npos && content[state + 2] == 'Z');
}

TEST_F(CliLockTest, LosingTheLockKillsWhatTheCommandStartedToo) {
  // sh dies of the SIGTERM; the worker it started in the background ignores
  // SIGTERM and would go on writing for a holder that lost the lock.
  pid_t worker = 0;
  ProcessResult r = LoseTheLock(
      absl::Seconds(30), "(trap '' TERM; exec sleep 60) & echo worker=$!; wait",
      [&](const std::string& out) {
        ASSERT_TRUE(absl::SimpleAtoi(Field(out, "worker"), &worker)) << out;
        ASSERT_FALSE(Exited(worker));
      });
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("lock \"doomed\" lost"));
  EXPECT_THAT(r.err, Not(HasSubstr("sent SIGKILL")));  // sh ended on SIGTERM
  ASSERT_GT(worker, 0);
  const absl::Time until = absl::Now() + absl::Seconds(10);
  while (!Exited(worker) && absl::Now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(Exited(worker)) << "the background worker outlived the loss";
}

TEST_F(CliLockTest, OnATerminalTheCommandGetsTheTerminal) {
  // script(1) runs leasehold in the foreground of a fresh pseudo-terminal.
  // CMD is in its own process group; unless leasehold handed it the
  // terminal, its read would stop it (SIGTTIN) and this would time out.
  const std::string leasehold = absl::StrJoin(
      Argv({"lock", "tty", "--", "sh", "-c", "'read line; echo got=\\$line'"}),
      " ");
  ProcessResult r =
      RunProcess({"/bin/sh", "-c",
                  absl::StrCat("printf 'hello\\n' | script -qec \"", leasehold,
                               "\" /dev/null")},
                 {}, absl::Seconds(30));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("got=hello"));
}

TEST_F(CliLockTest, ElectLeaderAndObserve) {
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  Subprocess observe(Argv({"observe", "engine"}));
  ASSERT_TRUE(observe.WaitForOutput("name=engine leader=false", deadline))
      << observe.out();
  ProcessResult none = Leasehold({"leader", "engine"});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_THAT(none.err, HasSubstr("election \"engine\": no leader"));

  Subprocess a(Argv({"elect", "engine", "host-a", "--", "sh", "-c",
                     "echo leading $LEASEHOLD_FENCE; exec sleep 60"}));
  ASSERT_TRUE(a.WaitForOutput("leading", deadline)) << a.out();
  ProcessResult leader = Leasehold({"leader", "engine"});
  ASSERT_EQ(leader.exit_code, 0) << leader.err;
  EXPECT_THAT(leader.out, HasSubstr("name=engine leader=true value=host-a"));
  EXPECT_EQ(absl::StrCat("leading ", Field(leader.out, "fence"), "\n"),
            a.out());
  EXPECT_THAT(Field(leader.out, "key"),
              MatchesRegex(absl::StrCat(prefix_, "election/engine/[0-9]+")));
  ProcessResult json = Leasehold({"-o", "json", "leader", "engine"});
  EXPECT_EQ(json.out,
            absl::StrCat(R"({"name":"engine","leader":true,"value":"host-a",)",
                         R"("key":")", Field(leader.out, "key"),
                         R"(","fence":)", Field(leader.out, "fence"), "}\n"));

  Subprocess b(Argv({"elect", "engine", "host-b", "--", "sh", "-c",
                     "echo leading; exec sleep 60"}));
  ASSERT_TRUE(observe.WaitForOutput("value=host-a", deadline)) << observe.out();
  // b must be queued before a resigns, or nobody leads for a moment.
  absl::StatusOr<std::unique_ptr<registry::KeysApi>> keys =
      registry::Open(SharedEtcd().uri());
  ASSERT_TRUE(keys.ok()) << keys.status();
  for (;;) {
    absl::StatusOr<registry::Response> queue =
        (*keys)->Get(prefix_ + "election/engine", {.recursive = true});
    if (queue.ok() && queue->node.nodes.size() == 2) break;
    ASSERT_LT(absl::Now(), deadline) << "host-b never queued";
    absl::SleepFor(absl::Milliseconds(20));
  }
  a.Signal(SIGTERM);  // a resigns; b, queued behind it, leads
  EXPECT_EQ(a.Wait(deadline).exit_code, 128 + SIGTERM);
  ASSERT_TRUE(b.WaitForOutput("leading", deadline)) << b.out();
  ASSERT_TRUE(observe.WaitForOutput("value=host-b", deadline)) << observe.out();
  b.Signal(SIGINT);
  EXPECT_EQ(b.Wait(deadline).exit_code, 128 + SIGINT);

  observe.Signal(SIGTERM);
  ProcessResult observed = observe.Wait(deadline);
  EXPECT_EQ(observed.exit_code, 0) << observed.err;
  std::vector<std::string> leaders;
  for (absl::string_view line :
       absl::StrSplit(observed.out, '\n', absl::SkipEmpty())) {
    leaders.push_back(Field(std::string(line), "leader") == "true"
                          ? Field(std::string(line), "value")
                          : "none");
  }
  EXPECT_THAT(leaders,
              ::testing::ElementsAre("none", "host-a", "host-b", "none"))
      << observed.out;
}

TEST_F(CliLockTest, BadInputExitsTwoNamingTheProblem) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"lock", "x"}, "missing \"-- CMD [ARGS...]\""},
      {{"lock", "x", "--ttl", "soon", "--", "true"}, "--ttl=\"soon\""},
      {{"lock", "x", "--grace", "-1s", "--", "true"}, "--grace=\"-1s\""},
      {{"lock", "x/y", "--", "true"}, "lock name \"x/y\""},
      {{"lock", "--wait", "x", "--", "true"}, "unknown flag \"--wait\""},
      {{"elect", "e", "--", "true"}, "expected 2 arguments"},
      {{"leader", "a/b"}, "election name \"a/b\""},
      {{"observe", "e", "--frobnicate"}, "unknown flag \"--frobnicate\""},
  };
  for (const Case& c : cases) {
    ProcessResult r = Leasehold(c.args);
    EXPECT_EQ(r.exit_code, 2) << absl::StrJoin(c.args, " ") << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.message)) << absl::StrJoin(c.args, " ");
  }
  for (const char* command : {"lock", "elect", "leader", "observe"}) {
    ProcessResult r = Leasehold({command, "--help"});
    EXPECT_EQ(r.exit_code, 0) << command;
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat("usage: leasehold")));
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat("] ", command, " NAME")));
  }
}

TEST_F(CliLockTest, UnreachableRegistryExitsThree) {
  const std::string dead =
      absl::StrCat("etcd://127.0.0.1:", leasehold::testing::FreePort(),
                   "?request-timeout=1s&dial-timeout=500ms");
  for (std::vector<std::string> args :
       {std::vector<std::string>{"lock", "x", "--", "true"},
        std::vector<std::string>{"elect", "x", "v", "--", "true"},
        std::vector<std::string>{"leader", "x"},
        std::vector<std::string>{"observe", "x"}}) {
    args.insert(args.begin(), {LEASEHOLD_BINARY, "--registry", dead});
    ProcessResult r = RunProcess(args);
    EXPECT_EQ(r.exit_code, 3) << absl::StrJoin(args, " ") << ": " << r.err;
    EXPECT_LT(r.elapsed, absl::Seconds(15));
  }
}

}  // namespace
}  // namespace leasehold::cli
