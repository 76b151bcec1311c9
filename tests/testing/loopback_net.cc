#include "tests/testing/loopback_net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace leasehold::testing {
namespace {

bool WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

int ConnectLoopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Length of the first complete HTTP request in `buffer`, or 0 if it has not
// fully arrived yet.
size_t CompleteRequestLength(absl::string_view buffer) {
  const size_t end = buffer.find("\r\n\r\n");
  if (end == absl::string_view::npos) return 0;
  size_t content_length = 0;
  for (absl::string_view line : absl::StrSplit(buffer.substr(0, end), "\r\n")) {
    if (absl::StartsWithIgnoreCase(line, "content-length:")) {
      absl::SimpleAtoi(
          absl::StripAsciiWhitespace(line.substr(strlen("content-length:"))),
          &content_length);
    }
  }
  const size_t total = end + 4 + content_length;
  return buffer.size() >= total ? total : 0;
}

// The direction indices (0: to the upstream, 1: to the client) `d` covers.
std::vector<int> Indices(Direction d) {
  switch (d) {
    case Direction::kToUpstream:
      return {0};
    case Direction::kToClient:
      return {1};
    case Direction::kBoth:
      break;
  }
  return {0, 1};
}

// The value of header `name` in the request head `head` ("" if absent).
absl::string_view HeaderValue(absl::string_view head, absl::string_view name) {
  for (absl::string_view line :
       absl::StrSplit(head.substr(0, head.find("\r\n\r\n")), "\r\n")) {
    if (line.size() > name.size() && line[name.size()] == ':' &&
        absl::StartsWithIgnoreCase(line, name)) {
      return absl::StripAsciiWhitespace(line.substr(name.size() + 1));
    }
  }
  return "";
}

}  // namespace

LoopbackListener::~LoopbackListener() { Stop(); }

absl::Status LoopbackListener::Listen() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) {
    return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
          0 ||
      ::listen(listen_fd_, 64) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) !=
          0) {
    return absl::InternalError(absl::StrCat("listen: ", strerror(errno)));
  }
  port_ = ntohs(addr.sin_port);
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  return absl::OkStatus();
}

void LoopbackListener::AcceptLoop() {
  while (true) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // the listener was shut down
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      ::close(fd);
      return;
    }
    accepted_.fetch_add(1);
    open_fds_.push_back(fd);
    threads_.emplace_back([this, fd] {
      Serve(fd);
      Untrack(fd);
      ::close(fd);
    });
  }
}

void LoopbackListener::Track(int fd) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) {
    ::shutdown(fd, SHUT_RDWR);
  }
  open_fds_.push_back(fd);
}

void LoopbackListener::Untrack(int fd) {
  std::lock_guard<std::mutex> lock(mu_);
  open_fds_.erase(std::remove(open_fds_.begin(), open_fds_.end(), fd),
                  open_fds_.end());
}

void LoopbackListener::CutAll(bool reset) {
  std::lock_guard<std::mutex> lock(mu_);
  for (int fd : open_fds_) {
    if (reset) {
      // Closed with an RST once its thread closes it.
      const linger abort = {1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort, sizeof(abort));
    }
    ::shutdown(fd, SHUT_RDWR);
  }
}

void LoopbackListener::Stop() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (listen_fd_ < 0) return;
    stopping_ = true;
    // Wakes accept() with an error; the descriptor is closed after join.
    ::shutdown(listen_fd_, SHUT_RDWR);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
  }
  if (accept_thread_.joinable()) accept_thread_.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    threads = std::move(threads_);
  }
  for (std::thread& t : threads) t.join();
  ::close(listen_fd_);
  listen_fd_ = -1;
}

absl::StatusOr<std::unique_ptr<TcpProxy>> TcpProxy::Start(
    int upstream_port, TcpProxyOptions options) {
  std::unique_ptr<TcpProxy> proxy(
      new TcpProxy(upstream_port, std::move(options)));
  absl::Status listening = proxy->Listen();
  if (!listening.ok()) return listening;
  return proxy;
}

template <typename F>
void TcpProxy::Update(F update) {
  std::lock_guard<std::mutex> lock(faults_mu_);
  update(faults_);
}

void TcpProxy::Delay(Direction direction, absl::Duration delay) {
  Update([&](Faults& f) {
    for (int d : Indices(direction)) f.delay[d] = delay;
  });
}

void TcpProxy::Drop(Direction direction) {
  Update([&](Faults& f) {
    for (int d : Indices(direction)) f.drop[d] = true;
  });
}

void TcpProxy::Blackhole(Direction direction) {
  Update([&](Faults& f) {
    for (int d : Indices(direction)) f.blackhole[d] = true;
  });
}

void TcpProxy::BlackholeSource(const std::string& source) {
  Update([&](Faults& f) { f.blackholed_sources.push_back(source); });
}

void TcpProxy::Reset() { CutAll(/*reset=*/true); }

void TcpProxy::Heal() {
  Update([](Faults& f) { f = Faults(); });
  refuse_.store(false);
}

void TcpProxy::set_drop_responses(bool on) {
  Update([&](Faults& f) { f.drop[1] = on; });
}

TcpProxy::Fate TcpProxy::FateOf(int d, const std::string& source,
                                absl::Duration* delay) {
  std::lock_guard<std::mutex> lock(faults_mu_);
  *delay = faults_.delay[d];
  if (faults_.drop[d]) return Fate::kClose;
  const std::vector<std::string>& cut = faults_.blackholed_sources;
  if (faults_.blackhole[d] ||
      (!source.empty() &&
       std::find(cut.begin(), cut.end(), source) != cut.end())) {
    return Fate::kDiscard;
  }
  return Fate::kForward;
}

void TcpProxy::Pump(int from, int to, int d, const std::string& source,
                    std::string pending) {
  struct Chunk {
    absl::Time due;
    std::string bytes;
  };
  std::deque<Chunk> queue;
  // Decides each chunk's fate as it arrives: false when it closes the
  // connection.
  const auto take = [&](std::string bytes) {
    absl::Duration delay;
    switch (FateOf(d, source, &delay)) {
      case Fate::kClose:
        return false;
      case Fate::kDiscard:
        return true;
      case Fate::kForward:
        queue.push_back({absl::Now() + delay, std::move(bytes)});
        return true;
    }
    return true;
  };
  bool open = pending.empty() || take(std::move(pending));
  bool reading = open;
  char buffer[16384];
  while (open && (reading || !queue.empty())) {
    while (!queue.empty() && queue.front().due <= absl::Now()) {
      if (!WriteAll(to, queue.front().bytes)) {
        open = false;
        break;
      }
      queue.pop_front();
    }
    if (!open || (!reading && queue.empty())) break;
    int timeout_ms = -1;
    if (!queue.empty()) {
      timeout_ms = static_cast<int>(absl::ToInt64Milliseconds(
                       queue.front().due - absl::Now())) +
                   1;
      timeout_ms = std::max(timeout_ms, 0);
    }
    pollfd fd = {from, POLLIN, 0};
    const int ready = ::poll(&fd, reading ? 1 : 0, timeout_ms);
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    const ssize_t n = ::recv(from, buffer, sizeof(buffer), 0);
    if (n <= 0) {
      reading = false;  // deliver what is queued, then close
      continue;
    }
    open = take(std::string(buffer, static_cast<size_t>(n)));
  }
  // Ends the other direction's pump too.
  ::shutdown(from, SHUT_RDWR);
  ::shutdown(to, SHUT_RDWR);
}

void TcpProxy::Serve(int client) {
  if (refuse_.load()) {
    const linger reset = {1, 0};
    ::setsockopt(client, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
    return;
  }
  // The first request's headers name the source (when asked to).
  std::string first;
  std::string source;
  if (!options_.source_header.empty()) {
    char buffer[4096];
    while (first.find("\r\n\r\n") == std::string::npos &&
           first.size() < 65536) {
      const ssize_t n = ::recv(client, buffer, sizeof(buffer), 0);
      if (n <= 0) return;
      first.append(buffer, static_cast<size_t>(n));
    }
    source = std::string(HeaderValue(first, options_.source_header));
  }
  const int upstream = ConnectLoopback(upstream_port_);
  if (upstream < 0) return;
  Track(upstream);
  std::thread answers(
      [&] { Pump(upstream, client, 1, source, std::string()); });
  Pump(client, upstream, 0, source, std::move(first));
  answers.join();
  Untrack(upstream);
  ::close(upstream);
}

std::string HttpAnswer(int status, absl::string_view body,
                       const std::vector<std::string>& headers) {
  std::string extra;
  for (const std::string& h : headers) absl::StrAppend(&extra, h, "\r\n");
  return absl::StrCat(
      "HTTP/1.1 ", status, " Canned\r\n", "Content-Type: application/json\r\n",
      "Content-Length: ", body.size(), "\r\n", extra, "\r\n", body);
}

absl::StatusOr<std::unique_ptr<CannedHttpServer>> CannedHttpServer::Start(
    Responder responder) {
  std::unique_ptr<CannedHttpServer> server(
      new CannedHttpServer(std::move(responder)));
  absl::Status listening = server->Listen();
  if (!listening.ok()) return listening;
  return server;
}

std::string CannedHttpServer::endpoint() const {
  return absl::StrCat("http://127.0.0.1:", port());
}

std::vector<std::string> CannedHttpServer::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

void CannedHttpServer::Serve(int fd) {
  std::string buffer;
  char chunk[16384];
  while (true) {
    size_t length = CompleteRequestLength(buffer);
    while (length == 0) {
      const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
      if (n <= 0) return;
      buffer.append(chunk, static_cast<size_t>(n));
      length = CompleteRequestLength(buffer);
    }
    const std::string request = buffer.substr(0, length);
    buffer.erase(0, length);
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(request);
    }
    const std::string answer = responder_(request);
    if (answer.empty() || !WriteAll(fd, answer)) return;
  }
}

}  // namespace leasehold::testing
