#include "tests/testing/broken_etcd.h"

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"

namespace leasehold::testing {
namespace {

// A node etcd would send, for bodies that break one thing about it.
constexpr char kGoodNode[] =
    R"("node":{"key":"/k","value":"v","modifiedIndex":7,"createdIndex":7})";

std::string EtcdLike(int status, absl::string_view body) {
  return HttpAnswer(status, body, {"X-Etcd-Index: 7"});
}

std::string Html(int status) {
  const std::string page =
      absl::StrCat("<html><head><title>", status, "</title></head><body><h1>",
                   status, " from the proxy</h1></body></html>");
  return absl::StrCat("HTTP/1.1 ", status,
                      " Proxy Says No\r\nContent-Type: text/html\r\n"
                      "Content-Length: ",
                      page.size(), "\r\n\r\n", page);
}

// How a reply ends after its bytes are written.
enum class End { kKeepAlive, kClose, kReset, kDrip };

struct Reply {
  std::string bytes;
  End end = End::kKeepAlive;
};

Reply ReplyFor(Breakage breakage) {
  const std::string good =
      absl::StrCat(R"({"action":"create",)", kGoodNode, "}");
  switch (breakage) {
    case Breakage::kTruncatedJson:
      return {EtcdLike(200, good.substr(0, good.size() / 2))};
    case Breakage::kWrongTypes:
      return {EtcdLike(200,
                       R"({"action":"create","node":{"key":"/k",)"
                       R"("value":7,"modifiedIndex":"7","createdIndex":7}})")};
    case Breakage::kEmptyNode:
      return {EtcdLike(201, R"({"action":"create","node":{}})")};
    case Breakage::kNoNode:
      return {EtcdLike(200, R"({"action":"create"})")};
    case Breakage::kZeroIndex:
      return {EtcdLike(201,
                       R"({"action":"create","node":{"key":"/k",)"
                       R"("value":"v","modifiedIndex":0,"createdIndex":0}})")};
    case Breakage::kNoKey:
      return {EtcdLike(201, R"({"action":"create","node":{"value":"v",)"
                            R"("modifiedIndex":7,"createdIndex":7}})")};
    case Breakage::kCreatedAfterModified:
      return {EtcdLike(201,
                       R"({"action":"create","node":{"key":"/k",)"
                       R"("value":"v","modifiedIndex":7,"createdIndex":9}})")};
    case Breakage::kNotAnObject:
      return {EtcdLike(200, "[]")};
    case Breakage::kEmptyBody:
      return {EtcdLike(200, "")};
    case Breakage::kErrorBodyOn200:
      return {EtcdLike(200, R"({"errorCode":100,"message":"Key not found",)"
                            R"("cause":"/k","index":7})")};
    case Breakage::kNoEtcdIndex:
      return {HttpAnswer(201, good)};
    case Breakage::kPlainTextOk:
      return {
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
          "Content-Length: 2\r\n\r\nOK"};
    case Breakage::kHtml401:
      return {Html(401)};
    case Breakage::kHtml403:
      return {Html(403)};
    case Breakage::kHtml404:
      return {Html(404)};
    case Breakage::kHtml412:
      return {Html(412)};
    case Breakage::kHtml429:
      return {Html(429)};
    case Breakage::kHtml500:
      return {Html(500)};
    case Breakage::kHtml502:
      return {Html(502)};
    case Breakage::kHtml503:
      return {Html(503)};
    case Breakage::kHtml504:
      return {Html(504)};
    case Breakage::kBare404:
      return {"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"};
    case Breakage::kGatewayJson404:
      return {HttpAnswer(404, R"({"message":"no route","status":404})")};
    case Breakage::kRedirect:
      return {
          "HTTP/1.1 307 Temporary Redirect\r\n"
          "Location: http://127.0.0.1:9/v2/keys/k\r\nContent-Length: 0\r\n"
          "\r\n"};
    case Breakage::kSlowDrip:
      return {EtcdLike(201, good), End::kDrip};
    case Breakage::kResetMidBody: {
      const std::string whole = EtcdLike(201, good);
      return {whole.substr(0, whole.size() - 20), End::kReset};
    }
    case Breakage::kCloseMidBody: {
      const std::string whole = EtcdLike(201, good);
      return {whole.substr(0, whole.size() - 20), End::kClose};
    }
    case Breakage::kHttp09:
      return {good, End::kClose};
    case Breakage::kChunkedGarbage:
      return {
          "HTTP/1.1 200 OK\r\nX-Etcd-Index: 7\r\n"
          "Transfer-Encoding: chunked\r\n\r\nzz\r\nnot a chunk\r\n",
          End::kClose};
    case Breakage::kBadStatusLine:
      return {"HTTP/1.1 abc Weird\r\nContent-Length: 2\r\n\r\n{}", End::kClose};
    case Breakage::kNoAnswer:
      return {"", End::kClose};
  }
  return {"", End::kClose};
}

}  // namespace

std::vector<Breakage> AllBreakages() {
  std::vector<Breakage> all;
  for (int i = 0; i <= static_cast<int>(Breakage::kNoAnswer); ++i) {
    all.push_back(static_cast<Breakage>(i));
  }
  return all;
}

std::string BreakageName(Breakage breakage) {
  static constexpr const char* kNames[] = {"truncated_json",
                                           "wrong_types",
                                           "empty_node",
                                           "no_node",
                                           "zero_index",
                                           "no_key",
                                           "created_after_modified",
                                           "not_an_object",
                                           "empty_body",
                                           "error_body_on_200",
                                           "no_etcd_index",
                                           "plain_text_ok",
                                           "html_401",
                                           "html_403",
                                           "html_404",
                                           "html_412",
                                           "html_429",
                                           "html_500",
                                           "html_502",
                                           "html_503",
                                           "html_504",
                                           "bare_404",
                                           "gateway_json_404",
                                           "redirect",
                                           "slow_drip",
                                           "reset_mid_body",
                                           "close_mid_body",
                                           "http_0_9",
                                           "chunked_garbage",
                                           "bad_status_line",
                                           "no_answer"};
  return kNames[static_cast<int>(breakage)];
}

absl::StatusOr<std::unique_ptr<BrokenEtcd>> BrokenEtcd::Start(
    Breakage breakage) {
  std::unique_ptr<BrokenEtcd> server(new BrokenEtcd(breakage));
  absl::Status listening = server->Listen();
  if (!listening.ok()) return listening;
  return server;
}

std::string BrokenEtcd::endpoint() const {
  return absl::StrCat("http://", host_port());
}

std::string BrokenEtcd::host_port() const {
  return absl::StrCat("127.0.0.1:", port());
}

void BrokenEtcd::Serve(int fd) {
  const Reply reply = ReplyFor(breakage_);
  std::string buffer;
  while (ReadRequest(fd, &buffer).has_value()) {
    requests_.fetch_add(1);
    switch (reply.end) {
      case End::kKeepAlive:
        if (!WriteAll(fd, reply.bytes)) return;
        continue;
      case End::kClose:
        WriteAll(fd, reply.bytes);
        return;
      case End::kReset: {
        WriteAll(fd, reply.bytes);
        const linger abort_on_close{1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close,
                   sizeof abort_on_close);
        return;  // the listener closes fd: RST
      }
      case End::kDrip:
        // One byte every 300 ms: slower than any timeout a test sets, and
        // the connection ends when the listener stops.
        for (const char c : reply.bytes) {
          if (!WriteAll(fd, absl::string_view(&c, 1))) return;
          std::this_thread::sleep_for(std::chrono::milliseconds(300));
        }
        return;
    }
  }
}

}  // namespace leasehold::testing
