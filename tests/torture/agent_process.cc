#include "tests/torture/agent_process.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace leasehold::torture {

AgentProcess::~AgentProcess() {
  if (paused_) Resume();
  process_.reset();  // SIGKILLs and reaps one still running
  if (log_fd_ >= 0) close(log_fd_);
}

std::string AgentProcess::LogPath() const {
  return absl::StrCat(log_base_, ".", started_, ".log");
}

absl::Status AgentProcess::Start() {
  if (running()) {
    return absl::FailedPreconditionError(
        absl::StrCat(log_base_, ": an agent process is already running"));
  }
  if (log_fd_ >= 0) close(log_fd_);
  ++started_;
  const std::string log = LogPath();
  process_ = std::make_unique<testing::Subprocess>(
      argv_, std::vector<std::string>{}, log);
  if (process_->pid() <= 0) {
    process_.reset();
    return absl::InternalError(absl::StrCat("cannot start ", argv_[0]));
  }
  log_fd_ = open(log.c_str(), O_RDONLY | O_CLOEXEC | O_CREAT, 0644);
  if (log_fd_ < 0) {
    return absl::InternalError(
        absl::StrCat("open ", log, ": ", strerror(errno)));
  }
  reader_ = std::make_unique<sim::HoldLineReader>(history_);
  pending_.clear();
  stopped_record_ = false;
  return absl::OkStatus();
}

void AgentProcess::Pause() {
  if (!running()) return;
  process_->Signal(SIGSTOP);
  paused_ = true;
  const absl::Time at = absl::Now();
  for (size_t hold : reader_->open()) history_->Orphan(hold, at);
}

void AgentProcess::Resume() {
  if (!running()) return;
  process_->Signal(SIGCONT);
  paused_ = false;
  const absl::Time at = absl::Now();
  for (size_t hold : reader_->open()) history_->Back(hold, at);
}

absl::Status AgentProcess::Poll() {
  if (log_fd_ < 0) return absl::OkStatus();
  char buffer[65536];
  while (true) {
    const ssize_t n = read(log_fd_, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending_.append(buffer, static_cast<size_t>(n));
  }
  size_t begin = 0;
  for (size_t end; (end = pending_.find('\n', begin)) != std::string::npos;
       begin = end + 1) {
    const absl::string_view line(pending_.data() + begin, end - begin);
    if (absl::StrContains(line, R"("event":"stopped")")) stopped_record_ = true;
    if (absl::Status s = reader_->Add(line); !s.ok()) {
      return absl::DataLossError(absl::StrCat(LogPath(), ": ", s.message()));
    }
  }
  pending_.erase(0, begin);
  return absl::OkStatus();
}

absl::StatusOr<absl::Time> AgentProcess::Kill() {
  if (!running()) {
    return absl::FailedPreconditionError(
        absl::StrCat(log_base_, ": no agent process to kill"));
  }
  process_->Signal(SIGKILL);
  const absl::Time killed = absl::Now();
  for (size_t hold : reader_->open()) history_->Orphan(hold, killed);
  testing::ProcessResult result =
      process_->Wait(absl::Now() + absl::Seconds(30));
  const absl::Time reaped = absl::Now();
  process_.reset();
  paused_ = false;
  absl::Status polled = Poll();
  reader_->EndOpen(reaped, "killed");
  if (!polled.ok()) return polled;
  if (result.exit_code != 128 + SIGKILL) {
    return absl::InternalError(
        absl::StrCat(LogPath(), ": the agent had exited (status ",
                     result.exit_code, ") before it was killed: ", result.err));
  }
  return reaped;
}

absl::Status AgentProcess::Stop(absl::Time deadline) {
  if (!running()) {
    return absl::FailedPreconditionError(
        absl::StrCat(log_base_, ": no agent process to stop"));
  }
  if (paused_) Resume();
  process_->Signal(SIGTERM);
  testing::ProcessResult result = process_->Wait(deadline);
  process_.reset();
  if (absl::Status s = Poll(); !s.ok()) return s;
  if (result.exit_code != 0 || !stopped_record_) {
    reader_->EndOpen(absl::Now(), "killed");
    return absl::InternalError(
        absl::StrCat(LogPath(), ": the agent did not exit cleanly (status ",
                     result.exit_code, "): ", result.err));
  }
  if (!reader_->open().empty()) {
    reader_->EndOpen(absl::Now(), "killed");
    return absl::DataLossError(
        absl::StrCat(LogPath(), ": a clean exit left holds open"));
  }
  return absl::OkStatus();
}

}  // namespace leasehold::torture
