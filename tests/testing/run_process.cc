#include "tests/testing/run_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/time/clock.h"

extern char** environ;

namespace leasehold::testing {
namespace {

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

Subprocess::Subprocess(const std::vector<std::string>& argv,
                       const std::vector<std::string>& env,
                       const std::string& stdout_file)
    : start_(absl::Now()) {
  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return;
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (stdout_file.empty()) {
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  } else {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO,
                                     stdout_file.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
  }
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null",
                                   O_RDONLY, 0);
  std::vector<std::string> environment;
  for (char** e = environ; *e != nullptr; ++e) environment.emplace_back(*e);
  environment.insert(environment.end(), env.begin(), env.end());
  std::vector<std::string> args = argv;
  std::vector<char*> cargv = Pointers(args);
  std::vector<char*> cenv = Pointers(environment);
  const int rc = posix_spawnp(&pid_, cargv[0], &actions, nullptr, cargv.data(),
                              cenv.data());
  posix_spawn_file_actions_destroy(&actions);
  close(out_pipe[1]);
  close(err_pipe[1]);
  fds_[0] = out_pipe[0];
  fds_[1] = err_pipe[0];
  if (rc != 0) {
    pid_ = -1;
    result_.err = std::string("spawn ") + argv[0] + ": " + strerror(rc);
  }
}

Subprocess::~Subprocess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  for (int fd : fds_) {
    if (fd >= 0) close(fd);
  }
}

bool Subprocess::ReadSome(absl::Time deadline) {
  pollfd polls[2];
  int n = 0;
  std::string* sinks[2];
  int* owners[2];
  for (int i = 0; i < 2; ++i) {
    if (fds_[i] < 0) continue;
    polls[n] = {fds_[i], POLLIN, 0};
    sinks[n] = i == 0 ? &result_.out : &result_.err;
    owners[n++] = &fds_[i];
  }
  const absl::Duration left = deadline - absl::Now();
  if (n == 0 || left <= absl::ZeroDuration()) return false;
  if (poll(polls, n, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) < 0)
    return false;
  for (int i = 0; i < n; ++i) {
    if (polls[i].revents == 0) continue;
    char buffer[4096];
    const ssize_t got = read(polls[i].fd, buffer, sizeof(buffer));
    if (got > 0) {
      sinks[i]->append(buffer, static_cast<size_t>(got));
    } else {
      close(polls[i].fd);
      *owners[i] = -1;
    }
  }
  return true;
}

bool Subprocess::WaitForOutput(absl::string_view text, absl::Time deadline) {
  while (!absl::StrContains(result_.out, text)) {
    if (!ReadSome(deadline)) return false;
  }
  return true;
}

void Subprocess::ReadUntil(absl::Time deadline) {
  while (ReadSome(deadline)) {
  }
}

void Subprocess::Signal(int signal) {
  if (pid_ > 0) kill(pid_, signal);
}

ProcessResult Subprocess::Wait(absl::Time deadline) {
  ReadUntil(deadline);
  if (pid_ <= 0) return result_;
  const bool open = fds_[0] >= 0 || fds_[1] >= 0;
  int status = 0;
  if (open ||
      (absl::Now() >= deadline && waitpid(pid_, &status, WNOHANG) == 0)) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
    result_.exit_code = -1;
  } else {
    waitpid(pid_, &status, 0);
    pid_ = -1;
    result_.exit_code =
        WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  result_.elapsed = absl::Now() - start_;
  return result_;
}

ProcessResult RunProcess(const std::vector<std::string>& argv,
                         const std::vector<std::string>& env,
                         absl::Duration timeout) {
  Subprocess process(argv, env);
  return process.Wait(absl::Now() + timeout);
}

std::optional<char> ProcState(const std::string& stat_file) {
  const int fd = open(stat_file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buffer[1024];
  const ssize_t n = read(fd, buffer, sizeof(buffer));
  close(fd);
  if (n <= 0) return std::nullopt;  // gone between the open and the read
  // "pid (comm) S ...": the state follows the last ')'.
  const absl::string_view stat(buffer, static_cast<size_t>(n));
  const size_t paren = stat.rfind(')');
  if (paren == absl::string_view::npos || paren + 2 >= stat.size()) {
    return std::nullopt;
  }
  return stat[paren + 2];
}

}  // namespace leasehold::testing
