#include "tools/cli/run_while_held.h"

#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <ostream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "registry/cancel.h"

extern "C" char** environ;

namespace leasehold::cli {
namespace {

constexpr int kExitCannotRun = 126;
constexpr int kExitNotFound = 127;

// Ours minus LEASEHOLD_PASSWORD and the names `extra` sets, plus `extra`.
std::vector<std::string> ChildEnvironment(
    const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    bool replaced = absl::StartsWith(*entry, "LEASEHOLD_PASSWORD=");
    for (const std::string& mine : extra) {
      replaced |= absl::StartsWith(*entry, mine.substr(0, mine.find('=') + 1));
    }
    if (!replaced) env.emplace_back(*entry);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

std::vector<char*> NullTerminated(std::vector<std::string>& words) {
  std::vector<char*> pointers;
  for (std::string& word : words) pointers.push_back(word.data());
  pointers.push_back(nullptr);
  return pointers;
}

// Starts the command; errno-style error number on failure. The child gets
// the default disposition and an empty mask for the signals leasehold
// blocks (SignalWatcher) or that a library may ignore (SIGPIPE): those
// would otherwise be inherited through exec.
int Spawn(const HeldCommand& held, pid_t* pid) {
  std::vector<std::string> argv = held.argv;
  std::vector<std::string> env = ChildEnvironment(held.env);
  std::vector<char*> argv_pointers = NullTerminated(argv);
  std::vector<char*> env_pointers = NullTerminated(env);

  sigset_t empty;
  sigemptyset(&empty);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int signal : {SIGINT, SIGTERM, SIGUSR1, SIGPIPE})
    sigaddset(&defaults, signal);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  // Its own process group, so that a loss stops everything it started.
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF |
                                      POSIX_SPAWN_SETPGROUP);
  // Registry connections and watches are ours, not the command's.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  const int error = posix_spawnp(pid, argv_pointers[0], &actions, &attr,
                                 argv_pointers.data(), env_pointers.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  return error;
}

// While CMD runs in its own process group, the terminal leasehold was started
// in the foreground of belongs to CMD's group: it reads the terminal and gets
// Ctrl-C as it would have without leasehold. Without a terminal, nothing.
class TerminalHandover {
 public:
  explicit TerminalHandover(pid_t group) {
    if (isatty(STDIN_FILENO) != 1 || tcgetpgrp(STDIN_FILENO) != getpgrp()) {
      return;
    }
    owner_ = getpgrp();
    Give(group);
    // CMD may have touched the terminal before it was its: it stopped on
    // SIGTTIN/SIGTTOU, and continues now.
    kill(-group, SIGCONT);
  }
  ~TerminalHandover() {
    if (owner_ != -1) Give(owner_);
  }
  TerminalHandover(const TerminalHandover&) = delete;
  TerminalHandover& operator=(const TerminalHandover&) = delete;

 private:
  // tcsetpgrp from a background group raises SIGTTOU unless it is blocked.
  static void Give(pid_t group) {
    sigset_t ttou;
    sigemptyset(&ttou);
    sigaddset(&ttou, SIGTTOU);
    sigset_t old;
    pthread_sigmask(SIG_BLOCK, &ttou, &old);
    tcsetpgrp(STDIN_FILENO, group);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }

  pid_t owner_ = -1;
};

}  // namespace

int RunWhileHeld(Context& ctx, absl::string_view command,
                 const HeldCommand& held) {
  pid_t pid = -1;
  if (const int error = Spawn(held, &pid); error != 0) {
    ctx.err() << "leasehold " << command << ": cannot run \"" << held.argv[0]
              << "\": " << std::strerror(error) << std::endl;
    return error == ENOENT ? kExitNotFound : kExitCannotRun;
  }

  std::mutex mu;
  std::condition_variable cv;
  bool exited = false;  // guarded by mu
  // CMD's group, CMD included: the pid stays reserved for the group until
  // CMD is reaped, which happens only after the last signal below.
  const pid_t group = -pid;
  TerminalHandover terminal(pid);
  std::thread reaper([&] {
    siginfo_t info{};
    while (waitid(P_PID, pid, &info, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
    }
    std::lock_guard<std::mutex> lock(mu);
    exited = true;
    cv.notify_all();
  });
  auto wake = [&mu, &cv] {
    std::lock_guard<std::mutex> lock(mu);
    cv.notify_all();
  };
  const CancelToken& lost = held.lost->token();
  const CancelToken& interrupted = ctx.interrupted();
  CancelToken::Registration on_lost = lost.OnCancel(wake);
  CancelToken::Registration on_interrupt = interrupted.OnCancel(wake);

  enum class Step { kLoss, kExpiring, kForward, kKill };
  bool loss_seen = false;
  bool terminated = false;  // SIGTERM sent: the holder is lost or in doubt
  bool forwarded = false;   // the interrupt passed on
  bool killed = false;
  absl::Time lost_at = absl::InfiniteFuture();
  // The latest expiry seen. A renewal only ever moves it later; a loss the
  // registry reports (our key deleted or changed) clears it (InfinitePast)
  // or pulls it back to the moment of the loss, and then the latest one
  // seen before still bounds CMD's time. Sampled at least every tenth of
  // the grace period, so CMD gets nearly all of it after such a loss.
  absl::Time expiry = absl::InfinitePast();
  const absl::Duration sample_every =
      std::max(held.grace / 10, absl::Milliseconds(10));
  for (;;) {
    Step step;
    absl::Time now;
    {
      std::unique_lock<std::mutex> lock(mu);
      for (;;) {
        if (exited) break;
        now = held.clock->Now();
        expiry = std::max(expiry, held.expiry());
        const absl::Time term_at = expiry - held.grace;
        const absl::Time kill_at = std::min(expiry, lost_at + held.grace);
        if (lost.cancelled() && !loss_seen) {
          step = Step::kLoss;
        } else if (!terminated && now >= term_at) {
          step = Step::kExpiring;
        } else if (interrupted.cancelled() && !forwarded) {
          step = Step::kForward;
        } else if (!killed && now >= kill_at) {
          step = Step::kKill;
        } else {
          absl::Time wake_at = killed       ? absl::InfiniteFuture()
                               : terminated ? kill_at
                                            : term_at;
          if (!loss_seen) wake_at = std::min(wake_at, now + sample_every);
          held.clock->WaitUntil(cv, lock, wake_at);
          continue;
        }
        break;
      }
      if (exited) break;
    }
    // CMD is not reaped yet, so its pid still names its group.
    const std::string prefix = absl::StrCat("leasehold ", command, ": ");
    switch (step) {
      case Step::kLoss:
        loss_seen = true;
        lost_at = now;
        ctx.err() << prefix << held.what << " lost ("
                  << held.lost->cause().message() << ")";
        if (!terminated) {
          terminated = true;
          kill(group, SIGTERM);
          ctx.err() << "; sent SIGTERM to \"" << held.argv[0] << "\" (pid "
                    << pid << ")";
        }
        ctx.err() << std::endl;
        break;
      case Step::kExpiring:
        terminated = true;
        kill(group, SIGTERM);
        ctx.err() << prefix << held.what << " not renewed: expires in "
                  << absl::FormatDuration(
                         std::max(expiry - now, absl::ZeroDuration()))
                  << ", within the grace period of "
                  << absl::FormatDuration(held.grace) << "; sent SIGTERM to \""
                  << held.argv[0] << "\" (pid " << pid << ")" << std::endl;
        break;
      case Step::kForward:
        forwarded = true;
        kill(group, ctx.interrupt_signal());
        break;
      case Step::kKill:
        killed = true;
        kill(group, SIGKILL);
        ctx.err() << prefix << "\"" << held.argv[0] << "\" still running "
                  << (now >= expiry
                          ? absl::StrCat("at the expiry of ", held.what)
                          : absl::StrCat(absl::FormatDuration(held.grace),
                                         " after the loss"))
                  << "; sent SIGKILL" << std::endl;
        break;
    }
  }
  reaper.join();
  on_lost.Reset();
  on_interrupt.Reset();
  // Whatever CMD started and left running must not act for a holder that
  // is lost or in doubt.
  const bool not_held = lost.cancelled() || terminated;
  if (not_held) kill(group, SIGKILL);
  int wait_status = 0;
  while (waitpid(pid, &wait_status, 0) < 0 && errno == EINTR) {
  }

  if (lost.cancelled() && !loss_seen) {
    ctx.err() << "leasehold " << command << ": " << held.what
              << " lost while \"" << held.argv[0] << "\" ran ("
              << held.lost->cause().message() << ")" << std::endl;
  }
  if (not_held) return held.exit_code_lost;
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return WEXITSTATUS(wait_status);
}

}  // namespace leasehold::cli
