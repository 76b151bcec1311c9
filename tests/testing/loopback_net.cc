#include "tests/testing/loopback_net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace leasehold::testing {
namespace {

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

}  // namespace

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

std::optional<std::string> ReadRequest(int fd, std::string* buffer) {
  char chunk[16384];
  size_t length = CompleteRequestLength(*buffer);
  while (length == 0) {
    const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) return std::nullopt;
    buffer->append(chunk, static_cast<size_t>(n));
    length = CompleteRequestLength(*buffer);
  }
  std::string request = buffer->substr(0, length);
  buffer->erase(0, length);
  return request;
}

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

void LoopbackListener::CutAll() {
  std::lock_guard<std::mutex> lock(mu_);
  for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
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

absl::StatusOr<std::unique_ptr<TcpProxy>> TcpProxy::Start(int upstream_port) {
  std::unique_ptr<TcpProxy> proxy(new TcpProxy(upstream_port));
  absl::Status listening = proxy->Listen();
  if (!listening.ok()) return listening;
  return proxy;
}

void TcpProxy::Serve(int client) {
  if (refuse_.load()) return;
  const int upstream = ConnectLoopback(upstream_port_);
  if (upstream < 0) return;
  Track(upstream);
  char buffer[16384];
  pollfd fds[2] = {{client, POLLIN, 0}, {upstream, POLLIN, 0}};
  while (true) {
    // Blackholed: read nothing (so poll must not ask for input), notice
    // only a connection torn down, and look again every 50 ms.
    const bool blackhole = blackhole_.load();
    fds[0].events = fds[1].events = blackhole ? 0 : POLLIN;
    const int ready = ::poll(fds, 2, blackhole ? 50 : -1);
    if (ready < 0) break;
    if (blackhole) {
      if (ready > 0) break;  // POLLHUP/POLLERR: the connection was cut
      continue;
    }
    if (fds[0].revents != 0) {
      const ssize_t n = ::recv(client, buffer, sizeof(buffer), 0);
      if (n <= 0 || !WriteAll(upstream, absl::string_view(buffer, n))) break;
    }
    if (fds[1].revents != 0) {
      // The answer is dropped unread: the client sees the connection close
      // after its request was delivered.
      if (drop_responses_.load()) break;
      const ssize_t n = ::recv(upstream, buffer, sizeof(buffer), 0);
      if (n <= 0 || !WriteAll(client, absl::string_view(buffer, n))) break;
    }
  }
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
  while (true) {
    const std::optional<std::string> request = ReadRequest(fd, &buffer);
    if (!request.has_value()) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(*request);
    }
    const std::string answer = responder_(*request);
    if (answer.empty() || !WriteAll(fd, answer)) return;
  }
}

}  // namespace leasehold::testing
