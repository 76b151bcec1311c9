// Running programs from tests, as a user would: the leasehold binary, a
// command under `leasehold lock`, etcd itself.
//
//   ProcessResult r = RunProcess({LEASEHOLD_BINARY, "lease", "get", "x"});
//   EXPECT_EQ(r.exit_code, 1);
//
//   Subprocess watch({LEASEHOLD_BINARY, "lease", "watch", "x"});
//   ASSERT_TRUE(watch.WaitForOutput("event=current", deadline));
//   ...                          // make changes; the watcher prints them
//   watch.Signal(SIGTERM);
//   ProcessResult r = watch.Wait(deadline);
//
// Thread-safety: a Subprocess is used from one thread; RunProcess may be
// called from several at once.
#ifndef LEASEHOLD_TESTS_TESTING_RUN_PROCESS_H_
#define LEASEHOLD_TESTS_TESTING_RUN_PROCESS_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace leasehold::testing {

struct ProcessResult {
  // The exit status; 128 + N when killed by signal N; -1 when it could not
  // run or was killed for passing its deadline.
  int exit_code = -1;
  std::string out;
  std::string err;
  absl::Duration elapsed;
};

class Subprocess {
 public:
  // Starts argv[0] (a path) with stdin from /dev/null; `env` entries
  // ("NAME=value") are added to the current environment. With
  // `stdout_file`, stdout goes to that file (created or truncated) instead
  // of a pipe, so a long-running child never blocks on a full pipe; out()
  // then stays empty.
  explicit Subprocess(const std::vector<std::string>& argv,
                      const std::vector<std::string>& env = {},
                      const std::string& stdout_file = "");
  ~Subprocess();  // SIGKILLs and reaps a process still running.

  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  // Reads output until stdout holds `text` (true) or `deadline` (false).
  bool WaitForOutput(absl::string_view text, absl::Time deadline);
  // Reads whatever the process prints until `deadline` (or its end).
  void ReadUntil(absl::Time deadline);
  void Signal(int signal);
  // Reads the rest of the output and reaps the process; past `deadline` it
  // is killed and exit_code is -1.
  ProcessResult Wait(absl::Time deadline);
  const std::string& out() const { return result_.out; }

 private:
  // One poll round; false when both pipes are closed or the deadline passed.
  bool ReadSome(absl::Time deadline);

  pid_t pid_ = -1;
  int fds_[2] = {-1, -1};  // stdout, stderr read ends
  absl::Time start_;
  ProcessResult result_;
};

ProcessResult RunProcess(const std::vector<std::string>& argv,
                         const std::vector<std::string>& env = {},
                         absl::Duration timeout = absl::Seconds(60));

// The state letter ('R', 'S', 'T', 'Z', ...) in a /proc stat file
// ("/proc/<pid>/stat", "/proc/<pid>/task/<tid>/stat"); nullopt when the
// process or thread is gone, also when it goes while the file is read.
std::optional<char> ProcState(const std::string& stat_file);

}  // namespace leasehold::testing

#endif  // LEASEHOLD_TESTS_TESTING_RUN_PROCESS_H_
