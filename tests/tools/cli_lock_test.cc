// The leasehold binary's lock, elect, leader and observe commands against a
// real etcd: mutual exclusion of the commands they run, exit statuses,
// environment, loss and signal handling, and the leader's output.
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <optional>
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
using ::leasehold::testing::EtcdServerOptions;
using ::leasehold::testing::ProcessResult;
using ::leasehold::testing::ProcState;
using ::leasehold::testing::RunProcess;
using ::leasehold::testing::Subprocess;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

using CliLockTest = CliApiTest;

TEST_P(CliLockTest, FiftyConcurrentCommandsRunOneAtATime) {
  constexpr int kProcesses = 50;
  const std::string counter =
      absl::StrCat(::testing::TempDir(), "/lock_counter_", getpid());
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

TEST_P(CliLockTest, PassesStatusAndEnvironmentThrough) {
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

TEST_P(CliLockTest, TimeoutOnAHeldLockAndSignalForwarding) {
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

// True once `pid` has exited (gone, or a zombie nobody reaped yet).
bool Exited(pid_t pid) {
  const std::optional<char> state =
      ProcState(absl::StrCat("/proc/", pid, "/stat"));
  return !state.has_value() || *state == 'Z';
}

TEST_P(CliLockTest, LosingTheLockKillsWhatTheCommandStartedToo) {
  // A registry of its own, to kill it.
  absl::StatusOr<std::unique_ptr<EtcdServer>> etcd = EtcdServer::Start();
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  // sh dies of the SIGTERM; the worker it started in the background ignores
  // SIGTERM and would go on writing for a holder that lost the lock.
  Subprocess lock({LEASEHOLD_BINARY, "--registry",
                   absl::StrCat((*etcd)->uri(), "?request-timeout=1s"), "lock",
                   "doomed", "--ttl", "1s", "--", "sh", "-c",
                   "(trap '' TERM; exec sleep 60) & echo worker=$!; wait"});
  ASSERT_TRUE(lock.WaitForOutput("\n", deadline)) << lock.out();
  pid_t worker = 0;
  ASSERT_TRUE(absl::SimpleAtoi(Field(lock.out(), "worker"), &worker))
      << lock.out();
  ASSERT_FALSE(Exited(worker));
  ASSERT_TRUE((*etcd)->Kill().ok());

  ProcessResult r = lock.Wait(deadline);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("lock \"doomed\" not renewed"));
  EXPECT_THAT(r.err, Not(HasSubstr("sent SIGKILL")));  // sh ended on SIGTERM
  const absl::Time until = absl::Now() + absl::Seconds(10);
  while (!Exited(worker) && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(Exited(worker)) << "the background worker outlived the loss";
}

// signal_recorder as CMD: it and its child record the signals they get,
// in a directory of its own (test binaries may run side by side).
struct Recorder {
  Recorder() {
    std::string pattern = ::testing::TempDir() + "/signals-XXXXXX";
    EXPECT_NE(mkdtemp(pattern.data()), nullptr) << pattern;
    dir = pattern;
  }
  ~Recorder() {
    for (const char* file : {"/cmd", "/child"}) unlink((dir + file).c_str());
    rmdir(dir.c_str());
  }
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  std::string dir;  // holds "cmd" and "child", one line per signal
  pid_t cmd = 0;
  pid_t child = 0;
};

// Waits for the recorder's "ready cmd=<pid> child=<pid>" line.
bool WaitReady(Subprocess& leasehold, Recorder& recorder, absl::Time deadline) {
  return leasehold.WaitForOutput("\n", deadline) &&
         std::sscanf(leasehold.out().c_str(), "ready cmd=%d child=%d",
                     &recorder.cmd, &recorder.child) == 2;
}

// CLOCK_MONOTONIC, the clock signal_recorder stamps its records with.
absl::Duration Monotonic() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return absl::DurationFromTimespec(now);
}

struct Received {
  std::string signal;  // "TERM" or "INT"
  absl::Duration at;   // on Monotonic()
};

// The first signal `who` ("cmd" or "child") recorded; nullopt if none by
// `deadline`.
std::optional<Received> WaitForSignal(const Recorder& recorder,
                                      const std::string& who,
                                      absl::Time deadline) {
  for (;;) {
    std::ifstream in(absl::StrCat(recorder.dir, "/", who));
    std::string signal;
    int64_t ns = 0;
    if (in >> signal >> ns) return Received{signal, absl::Nanoseconds(ns)};
    if (absl::Now() > deadline) return std::nullopt;
    absl::SleepFor(absl::Milliseconds(5));
  }
}

// How late a process may act on a deadline on a loaded machine.
constexpr absl::Duration kLate = absl::Milliseconds(500);

TEST_P(CliLockTest, TheCommandIsDeadByTheExpiryWhenTheRegistryStops) {
  // A registry of its own, to stop it.
  EtcdServerOptions options;
  options.enable_v2 = GetParam() != "etcd3";
  absl::StatusOr<std::unique_ptr<EtcdServer>> etcd =
      EtcdServer::Start(std::move(options));
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  const absl::Time deadline = absl::Now() + absl::Seconds(90);
  // A renew comes 1333ms ± 10% after the last, when what is left of the
  // TTL reads 3 (whole seconds, rounded up); right after it reads 4 again.
  // Both APIs report that rise, at once: it is how the test sees a renew
  // (a v3 keep-alive does not move the key's modifiedIndex).
  constexpr absl::Duration kTtl = absl::Seconds(4);
  constexpr int64_t kTtlSeconds = 4;
  constexpr absl::Duration kGrace = absl::Seconds(2);  // < 2.533s
  Recorder recorder;
  // CMD and its child ignore SIGTERM: only the SIGKILL ends them.
  Subprocess lock({LEASEHOLD_BINARY, "--registry",
                   absl::StrCat((*etcd)->uri(), "?request-timeout=1s"), "lock",
                   "stalled", "--ttl", absl::FormatDuration(kTtl), "--grace",
                   absl::FormatDuration(kGrace), "--", SIGNAL_RECORDER,
                   recorder.dir});
  ASSERT_TRUE(WaitReady(lock, recorder, deadline)) << lock.out();

  // The lock is held as long as both its queue key and the session key
  // are: stop etcd just after both were renewed. Every renew that can have
  // been confirmed was sent before the stop, so the expiry is at most the
  // stop plus the TTL, and the renews seen make it hardly less.
  absl::StatusOr<std::unique_ptr<registry::KeysApi>> keys =
      registry::Open((*etcd)->uri());
  ASSERT_TRUE(keys.ok()) << keys.status();
  absl::StatusOr<registry::Response> queue =
      (*keys)->Get("/leasehold/lock/stalled", {.recursive = true});
  ASSERT_TRUE(queue.ok()) << queue.status();
  ASSERT_EQ(queue->node.nodes.size(), 1u);
  const registry::Node& queued = queue->node.nodes[0];
  // Its value names the session: "<session key>#<n>".
  const std::vector<std::string> held_keys = {
      queued.key, queued.value.substr(0, queued.value.find('#'))};
  std::vector<int64_t> ttl(held_keys.size(), kTtlSeconds);
  std::vector<absl::Duration> renewed(held_keys.size(), -absl::Hours(1));
  for (;;) {
    for (size_t i = 0; i < held_keys.size(); ++i) {
      absl::StatusOr<registry::Response> read = (*keys)->Get(held_keys[i], {});
      ASSERT_TRUE(read.ok()) << read.status();
      ASSERT_GT(read->node.ttl, 0) << held_keys[i] << " carries no TTL";
      ASSERT_LE(read->node.ttl, kTtlSeconds);
      if (read->node.ttl > ttl[i]) renewed[i] = Monotonic();
      ttl[i] = read->node.ttl;
    }
    if (Monotonic() - *std::min_element(renewed.begin(), renewed.end()) <
        absl::Milliseconds(200)) {
      break;
    }
    ASSERT_LT(absl::Now(), deadline) << "never renewed together";
    absl::SleepFor(absl::Milliseconds(2));
  }
  ASSERT_TRUE((*etcd)->Pause().ok());
  const absl::Duration latest_expiry = Monotonic() + kTtl;

  while (!Exited(recorder.cmd) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  const absl::Duration died = Monotonic();
  ASSERT_TRUE((*etcd)->Resume().ok());
  ProcessResult r = lock.Wait(deadline);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("lock \"stalled\" not renewed"));
  EXPECT_THAT(r.err, HasSubstr("still running at the expiry of lock "
                               "\"stalled\"; sent SIGKILL"));

  // SIGTERM to the whole group a grace period before the expiry, SIGKILL
  // at the expiry.
  std::optional<Received> cmd =
      WaitForSignal(recorder, "cmd", absl::Now() + absl::Seconds(5));
  std::optional<Received> child =
      WaitForSignal(recorder, "child", absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(cmd.has_value());
  ASSERT_TRUE(child.has_value());
  EXPECT_EQ(cmd->signal, "TERM");
  EXPECT_EQ(child->signal, "TERM");
  EXPECT_LE(cmd->at, latest_expiry - kGrace + kLate)
      << "SIGTERM came " << cmd->at - (latest_expiry - kGrace)
      << " after the expiry minus the grace period";
  EXPECT_LE(child->at, latest_expiry - kGrace + kLate);
  EXPECT_LE(died, latest_expiry + kLate)
      << "CMD died " << died - latest_expiry << " after the expiry";
}

TEST_P(CliLockTest, ALossStopsWhatTheCommandStartedAtOnce) {
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  Recorder recorder;
  // A renew comes at most 3667ms after the last (a third of the TTL, plus
  // jitter), before the expiry is a grace period away: the SIGTERM is the
  // loss's, and the SIGKILL comes up to a grace period later. The long TTL
  // leaves a slow registry's renew time to find the loss well before the
  // expiry, and the long grace leaves even a slow, sanitized child on a
  // loaded machine time to record the SIGTERM first. The child records only
  // a signal it can catch.
  Subprocess lock(Argv({"lock", "deleted", "--ttl", "10s", "--grace", "5s",
                        "--", SIGNAL_RECORDER, recorder.dir}));
  ASSERT_TRUE(WaitReady(lock, recorder, deadline)) << lock.out();

  absl::StatusOr<std::unique_ptr<registry::KeysApi>> keys =
      registry::Open(Etcd().uri());
  ASSERT_TRUE(keys.ok()) << keys.status();
  absl::StatusOr<registry::Response> queue =
      (*keys)->Get(prefix_ + "lock/deleted", {.recursive = true});
  ASSERT_TRUE(queue.ok()) << queue.status();
  ASSERT_EQ(queue->node.nodes.size(), 1u);
  ASSERT_TRUE((*keys)->Delete(queue->node.nodes[0].key, {}).ok());
  const absl::Duration deleted = Monotonic();

  // The next renew finds the key gone; then the whole group gets SIGTERM.
  std::optional<Received> child =
      WaitForSignal(recorder, "child", absl::Now() + absl::Seconds(20));
  std::optional<Received> cmd =
      WaitForSignal(recorder, "cmd", absl::Now() + absl::Seconds(5));
  ProcessResult r = lock.Wait(deadline);
  ASSERT_TRUE(child.has_value()) << "CMD's child never got a signal\n" << r.err;
  ASSERT_TRUE(cmd.has_value()) << r.err;
  EXPECT_EQ(child->signal, "TERM");
  EXPECT_EQ(cmd->signal, "TERM");
  EXPECT_LE(child->at, deleted + absl::Milliseconds(3667) + kLate);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, MatchesRegex("(.|\n)*lock \"deleted\" lost \\([^)]*\\); "
                                  "sent SIGTERM to(.|\n)*"));
  // CMD ignored the SIGTERM its child died of: SIGKILL a grace period
  // after the loss, or at the expiry if that came first (a late report).
  EXPECT_THAT(r.err, AnyOf(HasSubstr("after the loss; sent SIGKILL"),
                           HasSubstr("at the expiry of lock \"deleted\"; "
                                     "sent SIGKILL")));
}

TEST_P(CliLockTest, SignalsToLeaseholdReachWhatTheCommandStarted) {
  struct Case {
    std::vector<std::string> command;
    int signal;
    std::string recorded;
  };
  const std::vector<Case> cases = {
      {{"lock", "signalled"}, SIGTERM, "TERM"},
      {{"elect", "signalled", "v"}, SIGINT, "INT"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.command[0]);
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    Recorder recorder;
    std::vector<std::string> args = c.command;
    args.insert(args.end(), {"--", SIGNAL_RECORDER, recorder.dir});
    Subprocess held(Argv(args));
    ASSERT_TRUE(WaitReady(held, recorder, deadline)) << held.out();
    held.Signal(c.signal);
    const absl::Duration sent = Monotonic();

    std::optional<Received> child =
        WaitForSignal(recorder, "child", absl::Now() + absl::Seconds(20));
    std::optional<Received> cmd =
        WaitForSignal(recorder, "cmd", absl::Now() + absl::Seconds(5));
    // CMD ignores the signal and holds on; leasehold waits for it.
    const bool cmd_ran_on = !Exited(recorder.cmd);
    kill(-recorder.cmd, SIGKILL);  // its group: the child too, if it is left
    ProcessResult r = held.Wait(deadline);
    EXPECT_EQ(r.exit_code, 128 + SIGKILL) << r.err;
    EXPECT_TRUE(cmd_ran_on);
    ASSERT_TRUE(child.has_value()) << "CMD's child never got a signal";
    ASSERT_TRUE(cmd.has_value());
    EXPECT_EQ(child->signal, c.recorded);
    EXPECT_EQ(cmd->signal, c.recorded);
    EXPECT_LE(child->at, sent + kLate);
  }
}

TEST_P(CliLockTest, OnATerminalTheCommandGetsTheTerminal) {
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

TEST_P(CliLockTest, ElectLeaderAndObserve) {
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
      registry::Open(Etcd().uri());
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
  // The observer reports that nobody leads before it is stopped.
  for (;;) {
    const std::string& seen = observe.out();
    if (seen.find("leader=false", seen.rfind("value=host-b")) !=
        std::string::npos) {
      break;
    }
    ASSERT_LT(absl::Now(), deadline) << "no end of b's leadership observed";
    observe.WaitForOutput("\x01", absl::Now() + absl::Milliseconds(50));
  }

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

TEST_P(CliLockTest, BadInputExitsTwoNamingTheProblem) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"lock", "x"}, "missing \"-- CMD [ARGS...]\""},
      {{"lock", "x", "--ttl", "soon", "--", "true"}, "--ttl=\"soon\""},
      {{"lock", "x", "--grace", "-1s", "--", "true"}, "--grace=\"-1s\""},
      {{"lock", "x", "--ttl", "2s", "--grace", "2s", "--", "true"},
       "--grace=2s must be less than 1.266s, the TTL minus the renew interval "
       "(--ttl=2s - 734ms)"},
      {{"elect", "x", "v", "--ttl", "1500ms", "--grace", "1300ms", "--",
        "true"},
       "--grace=1.3s must be less than 1.266s"},
      {{"lock", "x/y", "--", "true"}, "lock name \"x/y\""},
      {{"lock", "--wait", "x", "--", "true"}, "unknown flag \"--wait\""},
      {{"elect", "e", "--", "true"}, "expected 2 arguments"},
      {{"leader", "a/b"}, "election name \"a/b\""},
      {{"observe", "e", "--frobnicate"}, "unknown flag \"--frobnicate\""},
      {{"lock", "x", "--exit-code-lost", "lost", "--", "true"},
       "--exit-code-lost=\"lost\" is not a non-negative integer"},
      {{"lock", "x", "--exit-code-lost=-1", "--", "true"},
       "--exit-code-lost=\"-1\" is not a non-negative integer"},
      {{"elect", "x", "v", "--exit-code-lost", "1.5", "--", "true"},
       "--exit-code-lost=\"1.5\" is not a non-negative integer"},
      {{"elect", "x", "v", "--exit-code-lost", "256", "--", "true"},
       "--exit-code-lost=256 is not an exit status (0-255)"},
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

// A script that must tell a loss from its command's own status 1 passes
// --exit-code-lost; CMD's own statuses still come through unchanged.
TEST_P(CliLockTest, ExitCodeLostTellsALossFromTheCommandsStatus) {
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  absl::StatusOr<std::unique_ptr<registry::KeysApi>> keys =
      registry::Open(Etcd().uri());
  ASSERT_TRUE(keys.ok()) << keys.status();
  struct Case {
    std::vector<std::string> command;  // up to "--"
    std::string key_variable;
    std::string lost_message;
  };
  for (const Case& c : {Case{{"lock", "doomed", "--ttl", "3s", "--grace", "1s",
                              "--exit-code-lost", "42"},
                             "LEASEHOLD_LOCK_KEY",
                             "lock \"doomed\" lost"},
                        Case{{"elect", "doomed", "me", "--ttl", "3s", "--grace",
                              "1s", "--exit-code-lost", "42"},
                             "LEASEHOLD_ELECTION_KEY",
                             "leadership of election \"doomed\" lost"}}) {
    std::vector<std::string> args = c.command;
    args.insert(args.end(), {"--", "sh", "-c",
                             absl::StrCat("echo key=$", c.key_variable,
                                          "; exec sleep 60")});
    Subprocess held(Argv(args));
    ASSERT_TRUE(held.WaitForOutput("\n", deadline)) << held.out();
    const std::string key = Field(held.out(), "key");
    ASSERT_FALSE(key.empty()) << held.out();
    ASSERT_TRUE((*keys)->Delete(key, {}).ok()) << key;
    ProcessResult r = held.Wait(deadline);
    EXPECT_EQ(r.exit_code, 42) << c.command[0] << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.lost_message)) << c.command[0];

    // Held to the end: CMD's own 1 is leasehold's 1.
    std::vector<std::string> fails = c.command;
    fails[1] = "kept";
    fails.insert(fails.end(), {"--", "sh", "-c", "exit 1"});
    EXPECT_EQ(Leasehold(fails).exit_code, 1) << c.command[0];
  }
}

TEST_P(CliLockTest, UnreachableRegistryExitsThree) {
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

INSTANTIATE_TEST_SUITE_P(Apis, CliLockTest,
                         ::testing::ValuesIn(testing::EtcdApis()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace leasehold::cli
