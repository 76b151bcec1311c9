// signal_recorder DIR: a CMD for the `leasehold lock/elect -- CMD` tests
// that shows which signals reach CMD and what CMD started, and when.
//
// It starts one child in its own process group, prints
// "ready cmd=<pid> child=<pid>" once both handle signals, and then
//   - the child appends "<SIG> <ns>" to DIR/child on SIGTERM or SIGINT and
//     exits;
//   - CMD appends the same to DIR/cmd on each SIGTERM or SIGINT and goes on
//     running: only SIGKILL ends it.
// <SIG> is TERM or INT; <ns> is CLOCK_MONOTONIC in nanoseconds.
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace {

char record_path[4096];

// Async-signal-safe: "<SIG> <ns>\n" appended to record_path.
void Record(int signal) {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  unsigned long long ns =
      static_cast<unsigned long long>(now.tv_sec) * 1000000000ULL +
      static_cast<unsigned long long>(now.tv_nsec);
  char line[64];
  char digits[24];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + ns % 10);
    ns /= 10;
  } while (ns != 0);
  const char* name = signal == SIGTERM ? "TERM " : "INT ";
  size_t length = strlen(name);
  memcpy(line, name, length);
  while (n > 0) line[length++] = digits[--n];
  line[length++] = '\n';
  const int fd = open(record_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) return;
  ssize_t written = write(fd, line, length);
  (void)written;
  close(fd);
}

void RecordAndExit(int signal) {
  Record(signal);
  _exit(0);
}

void Handle(void (*handler)(int)) {
  struct sigaction action {};
  action.sa_handler = handler;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: signal_recorder DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  int ready[2];
  if (pipe(ready) != 0) return 1;
  const pid_t child = fork();
  if (child < 0) return 1;
  if (child == 0) {
    std::snprintf(record_path, sizeof(record_path), "%s/child", dir.c_str());
    Handle(RecordAndExit);
    close(ready[1]);  // tells the parent the handlers are in place
    for (;;) pause();
  }
  std::snprintf(record_path, sizeof(record_path), "%s/cmd", dir.c_str());
  Handle(Record);
  close(ready[1]);
  char byte;
  while (read(ready[0], &byte, 1) < 0) {
  }
  std::printf("ready cmd=%d child=%d\n", static_cast<int>(getpid()),
              static_cast<int>(child));
  std::fflush(stdout);
  for (;;) pause();
}
