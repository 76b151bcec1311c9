// One agent of a leasehold-torture run: machine m<k> as successive
// `leasehold -o json agent` processes (a killed one is replaced by a new
// process, as a supervisor would), each printing to a log file that is read
// back into the run's History as it grows.
//
//   AgentProcess m1({LEASEHOLD, "--registry", uri, "-o", "json", "agent",
//                    "--machine", "m1"}, "/tmp/run/m1", &history);
//   m1.Start();
//   m1.Pause(); ... m1.Resume();
//   absl::Time dead = m1.Kill();   // its open holds end when it was reaped
//   m1.Start();                     // a new process, a new log
//   m1.Poll();                      // feed what it printed so far
//   m1.Stop(deadline);              // SIGTERM: it releases and exits 0
//
// Thread-safety: one thread drives an AgentProcess; the History is shared.
#ifndef LEASEHOLD_TESTS_TORTURE_AGENT_PROCESS_H_
#define LEASEHOLD_TESTS_TORTURE_AGENT_PROCESS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "tests/testing/run_process.h"
#include "tools/sim/history.h"
#include "tools/sim/hold_line.h"

namespace leasehold::torture {

class AgentProcess {
 public:
  // `argv` runs one agent printing JSON records; `log_base` + ".N.log" is
  // the N-th process's output.
  AgentProcess(std::vector<std::string> argv, std::string log_base,
               sim::History* history)
      : argv_(std::move(argv)),
        log_base_(std::move(log_base)),
        history_(history) {}
  ~AgentProcess();

  // Starts a new process. REQUIRES: none running.
  absl::Status Start();
  bool running() const { return process_ != nullptr; }
  int processes_started() const { return started_; }

  // SIGSTOP; the holds read so far are orphaned (sim::History::Orphan).
  void Pause();
  // SIGCONT; those still open are back with it (sim::History::Back).
  void Resume();
  // SIGKILL (its open holds orphaned then), reap, read the rest of its log; the
  // holds it never ended end at the moment it was reaped (surely dead by then),
  // or at the last expiry it printed for them if that came first (a starved
  // agent can be killed before its Keeper says "lost"). Returns the moment it
  // was reaped.
  absl::StatusOr<absl::Time> Kill();
  // Reads the complete lines the process printed since the last call.
  // kDataLoss if they do not add up (an end without a begin).
  absl::Status Poll();
  // SIGTERM and wait until `deadline`: a clean exit (status 0, a "stopped"
  // record, every hold ended) or an error saying what went wrong.
  absl::Status Stop(absl::Time deadline);

 private:
  std::string LogPath() const;

  const std::vector<std::string> argv_;
  const std::string log_base_;
  sim::History* const history_;
  int started_ = 0;
  bool paused_ = false;
  std::unique_ptr<testing::Subprocess> process_;
  std::unique_ptr<sim::HoldLineReader> reader_;  // the current process's
  int log_fd_ = -1;
  std::string pending_;  // a line not yet complete
  bool stopped_record_ = false;
};

}  // namespace leasehold::torture

#endif  // LEASEHOLD_TESTS_TORTURE_AGENT_PROCESS_H_
