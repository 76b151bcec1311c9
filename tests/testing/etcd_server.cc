#include "tests/testing/etcd_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "curl/curl.h"
#include "tests/testing/run_process.h"

namespace leasehold::testing {
namespace {

std::string LogTail(const std::string& dir) {
  std::ifstream in(dir + "/etcd.log");
  std::stringstream all;
  all << in.rdbuf();
  const std::string text = all.str();
  return text.size() > 2000 ? text.substr(text.size() - 2000) : text;
}

size_t AppendToString(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// Whether every thread of `pid` is stopped (state T in /proc).
bool AllThreadsStopped(pid_t pid) {
  std::error_code error;
  const std::string tasks = absl::StrCat("/proc/", pid, "/task");
  for (const auto& task : std::filesystem::directory_iterator(tasks, error)) {
    const std::optional<char> state = ProcState(task.path() / "stat");
    if (!state.has_value()) continue;  // a thread that ended
    if (*state != 'T' && *state != 't') return false;
  }
  return !error;
}

std::string Millis(absl::Duration d) {
  return absl::StrCat(absl::ToInt64Milliseconds(d));
}

// The parent-death signal (PR_SET_PDEATHSIG) is sent when the THREAD that
// forked the child exits, not the process. Forking etcd from a test's worker
// thread would kill it when that thread ends, so every fork happens on this
// thread, which lives as long as the process.
class Launcher {
 public:
  static Launcher& Get() {
    static Launcher* const launcher = new Launcher();  // lives until exit
    return *launcher;
  }

  pid_t Fork(const std::function<pid_t()>& fork) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return job_ == nullptr; });
    job_ = &fork;
    cv_.notify_all();
    cv_.wait(lock, [this] { return job_ == nullptr && has_result_; });
    has_result_ = false;
    cv_.notify_all();
    return result_;
  }

 private:
  Launcher() {
    std::thread([this] {
      std::unique_lock<std::mutex> lock(mu_);
      while (true) {
        cv_.wait(lock, [this] { return job_ != nullptr && !has_result_; });
        result_ = (*job_)();
        job_ = nullptr;
        has_result_ = true;
        cv_.notify_all();
      }
    }).detach();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  const std::function<pid_t()>* job_ = nullptr;
  bool has_result_ = false;
  pid_t result_ = -1;
};

// Binds 127.0.0.1:port (0: any) and releases it; the port bound, or 0.
int TryPort(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  socklen_t len = sizeof(addr);
  int bound = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    bound = ntohs(addr.sin_port);
  }
  close(fd);
  return bound;
}

// The lowest port the kernel hands out for outgoing connections.
int EphemeralLow() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 0;
  return in >> low ? low : 32768;
}

}  // namespace

absl::StatusOr<std::string> HttpGet(const std::string& url,
                                    absl::Duration timeout) {
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  std::string body;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(timeout)));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, AppendToString);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  const CURLcode rc = curl_easy_perform(curl);
  long code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(
        absl::StrCat("GET ", url, ": ", curl_easy_strerror(rc)));
  }
  if (code != 200) {
    return absl::InternalError(
        absl::StrCat("GET ", url, ": HTTP ", code, ": ", body));
  }
  return body;
}

bool IsEtcdVersionWarning(absl::string_view warning) {
  return absl::StrContains(warning, "etcd issue #15247");
}

int FreePort() {
  // A port from below the ephemeral range: between being picked here and
  // bound by etcd, it cannot become the source port of some connection
  // (on a busy machine, a port the kernel picks would).
  static std::mutex mu;
  static std::mt19937 random(std::random_device{}());
  const int low = 10000;
  const int high = EphemeralLow() - 1;
  if (high > low) {
    std::lock_guard<std::mutex> lock(mu);
    std::uniform_int_distribution<int> pick(low, high);
    for (int tries = 0; tries < 100; ++tries) {
      if (const int port = TryPort(pick(random)); port != 0) return port;
    }
  }
  return TryPort(0);
}

absl::StatusOr<std::unique_ptr<EtcdServer>> EtcdServer::Start(
    EtcdServerOptions options) {
  std::unique_ptr<EtcdServer> server(new EtcdServer(std::move(options)));
  std::string pattern = absl::StrCat(
      server->options_.tmpfs ? "/dev/shm" : "/tmp", "/leasehold-etcd-XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) {
    return absl::InternalError(
        absl::StrCat("mkdtemp ", pattern, ": ", strerror(errno)));
  }
  server->dir_ = pattern;
  const EtcdServerOptions& o = server->options_;
  server->client_port_ = o.client_port != 0 ? o.client_port : FreePort();
  server->peer_port_ = o.peer_port != 0 ? o.peer_port : FreePort();
  server->metrics_port_ = FreePort();
  if (server->client_port_ == 0 || server->peer_port_ == 0 ||
      server->metrics_port_ == 0) {
    return absl::InternalError("no free loopback port for etcd");
  }
  if (absl::Status s = server->Restart(); !s.ok()) return s;
  return server;
}

EtcdServer::~EtcdServer() {
  if (pid_ > 0) {
    kill(pid_, SIGCONT);
    (void)Stop();
  }
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

bool EtcdServer::tls() const { return !options_.server_cert_file.empty(); }

std::string EtcdServer::endpoint() const {
  return absl::StrCat(tls() ? "https" : "http", "://127.0.0.1:", client_port_);
}

std::string EtcdServer::uri() const {
  return absl::StrCat(options_.enable_v2 ? "etcd" : "etcd3",
                      tls() ? "+https" : "", "://127.0.0.1:", client_port_);
}

std::string EtcdServer::peer_url() const {
  return options_.advertise_peer_url.empty()
             ? absl::StrCat("http://127.0.0.1:", peer_port_)
             : options_.advertise_peer_url;
}

absl::Status EtcdServer::Launch() {
  const std::string& name = options_.name;
  std::vector<std::string> args = {
      "etcd",
      "--name=" + name,
      absl::StrCat("--data-dir=", dir_, "/data"),
      options_.enable_v2 ? "--enable-v2=true" : "--enable-v2=false",
      absl::StrCat("--listen-client-urls=", endpoint()),
      absl::StrCat("--advertise-client-urls=", endpoint()),
      absl::StrCat("--listen-peer-urls=http://127.0.0.1:", peer_port_),
      absl::StrCat("--initial-advertise-peer-urls=", peer_url()),
      absl::StrCat("--initial-cluster=",
                   options_.initial_cluster.empty()
                       ? absl::StrCat(name, "=", peer_url())
                       : options_.initial_cluster),
      absl::StrCat("--listen-metrics-urls=http://127.0.0.1:", metrics_port_),
  };
  if (options_.heartbeat_interval > absl::ZeroDuration()) {
    args.push_back("--heartbeat-interval=" +
                   Millis(options_.heartbeat_interval));
  }
  if (options_.election_timeout > absl::ZeroDuration()) {
    args.push_back("--election-timeout=" + Millis(options_.election_timeout));
  }
  if (tls()) {
    args.push_back("--cert-file=" + options_.server_cert_file);
    args.push_back("--key-file=" + options_.server_key_file);
  }
  if (!options_.client_ca_file.empty()) {
    args.push_back("--client-cert-auth=true");
    args.push_back("--trusted-ca-file=" + options_.client_ca_file);
  }
  args.insert(args.end(), options_.extra_args.begin(),
              options_.extra_args.end());

  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const std::string log = dir_ + "/etcd.log";

  const pid_t parent = getpid();
  const pid_t pid = Launcher::Get().Fork([&]() -> pid_t {
    const pid_t child = fork();
    if (child != 0) return child;
    // Die with the test process, even if it crashes before stopping us.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    execvp(argv[0], argv.data());
    fprintf(stderr, "exec etcd: %s\n", strerror(errno));
    _exit(127);
  });
  if (pid < 0)
    return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  pid_ = pid;
  return absl::OkStatus();
}

bool EtcdServer::Healthy() const {
  absl::StatusOr<std::string> body =
      HttpGet(absl::StrCat("http://127.0.0.1:", metrics_port_, "/health"),
              absl::Seconds(1));
  return body.ok() && body->find("\"true\"") != std::string::npos;
}

absl::StatusOr<int64_t> EtcdServer::GrpcCallsHandled(
    absl::string_view method) const {
  absl::StatusOr<std::string> body =
      HttpGet(absl::StrCat("http://127.0.0.1:", metrics_port_, "/metrics"),
              absl::Seconds(5));
  if (!body.ok()) return body.status();
  const std::string label = absl::StrCat("grpc_method=\"", method, "\"");
  int64_t total = 0;
  for (absl::string_view line : absl::StrSplit(*body, '\n')) {
    if (!absl::StartsWith(line, "grpc_server_handled_total{") ||
        !absl::StrContains(line, label)) {
      continue;
    }
    double value = 0;
    if (!absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &value)) {
      return absl::InternalError(absl::StrCat("/metrics: bad line: ", line));
    }
    total += static_cast<int64_t>(value);
  }
  return total;
}

absl::Status EtcdServer::WaitHealthy(absl::Duration timeout) {
  if (pid_ <= 0) return absl::FailedPreconditionError("etcd is not running");
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(
          absl::StrCat("etcd exited during start-up; log:\n", LogTail(dir_),
                       "\n(is etcd-server installed?)"));
    }
    if (Healthy()) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("etcd ", options_.name, " not healthy after ",
                   absl::FormatDuration(timeout), "; log:\n", LogTail(dir_)));
}

absl::Status EtcdServer::Signal(int signal) {
  if (pid_ <= 0) return absl::FailedPreconditionError("etcd is not running");
  if (kill(pid_, signal) != 0) {
    return absl::InternalError(
        absl::StrCat("kill ", pid_, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status EtcdServer::StopWith(int signal) {
  if (absl::Status s = Signal(signal); !s.ok()) return s;
  // A stopped process acts on SIGTERM only once it runs again.
  if (paused_) kill(pid_, SIGCONT);
  paused_ = false;
  // etcd exits within a second of SIGTERM; a stuck one gets SIGKILL.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (absl::Now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  pid_ = -1;
  return absl::OkStatus();
}

absl::Status EtcdServer::Stop() { return StopWith(SIGTERM); }
absl::Status EtcdServer::Kill() { return StopWith(SIGKILL); }
absl::Status EtcdServer::Pause() {
  if (absl::Status s = Signal(SIGSTOP); !s.ok()) return s;
  paused_ = true;
  // kill() returns before every thread has stopped: wait until none runs.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!AllThreadsStopped(pid_)) {
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "etcd ", options_.name, " (pid ", pid_, ") did not stop on SIGSTOP"));
    }
    absl::SleepFor(absl::Milliseconds(1));
  }
  return absl::OkStatus();
}

absl::Status EtcdServer::Resume() {
  absl::Status s = Signal(SIGCONT);
  if (s.ok()) paused_ = false;
  return s;
}

absl::Status EtcdServer::Restart() {
  if (pid_ > 0) return absl::FailedPreconditionError("etcd is already running");
  if (absl::Status s = Launch(); !s.ok()) return s;
  if (!options_.wait_healthy) return absl::OkStatus();
  return WaitHealthy(options_.start_timeout);
}

namespace {

std::unique_ptr<EtcdServer> StartShared(EtcdServerOptions options) {
  absl::StatusOr<std::unique_ptr<EtcdServer>> started =
      EtcdServer::Start(std::move(options));
  if (!started.ok()) {
    std::cerr << "cannot start the test etcd: " << started.status()
              << std::endl;
    std::abort();
  }
  return *std::move(started);
}

}  // namespace

// The shared servers keep their data on tmpfs: a disk's fsync stalls on a
// loaded machine would make writes seconds late, and the tests that share
// them are about leasehold's timing, not the disk's. Tests of a slow
// registry inject the slowness themselves.
EtcdServer& SharedEtcd() {
  // Destroyed (and so stopped) by the static destructors at exit.
  static const std::unique_ptr<EtcdServer> server = [] {
    EtcdServerOptions options;
    options.tmpfs = true;
    return StartShared(std::move(options));
  }();
  return *server;
}

EtcdServer& SharedEtcdV3() {
  static const std::unique_ptr<EtcdServer> server = [] {
    EtcdServerOptions options;
    options.name = "leasehold-test-v3";
    options.enable_v2 = false;
    options.tmpfs = true;
    options.election_timeout = absl::Milliseconds(500);
    return StartShared(std::move(options));
  }();
  return *server;
}

EtcdServer& SharedEtcdFor(const std::string& api) {
  return api == "etcd3" ? SharedEtcdV3() : SharedEtcd();
}

std::vector<std::string> EtcdApis() { return {"etcd", "etcd3"}; }

}  // namespace leasehold::testing
