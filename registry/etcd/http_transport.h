// HttpTransport: the small HTTP/1.1 client under the etcd client (libcurl).
//
// It sends one request to one base URL and returns either the HTTP answer,
// whatever its status code (a 404 is a successful transport call), or a
// transport error that says whether the server may have seen the request.
// It knows nothing of etcd; registry/etcd/etcd_client.cc decides what an
// answer means and where to send the next request.
//
//   etcd_internal::HttpTransport transport(HttpTransportOptions{});
//   HttpRequest request{"PUT", "/v2/keys/a?prevIndex=7",
//                       "value=" + PercentEncode(value)};
//   request.idempotent = false;   // never re-sent once it may have arrived
//   HttpResult r = transport.Send("http://127.0.0.1:2379", request);
//   if (!r.status.ok() && r.maybe_sent) { ... outcome unknown ... }
//
// Connections are kept alive: every transfer borrows a libcurl handle (with
// its connection cache) from a per-endpoint pool and gives it back, so a
// steady stream of requests from any number of threads reuses a few TCP
// connections. A long poll borrows a handle for its whole duration. Any
// transfer may be cancelled from another thread through a CancelToken; it
// then returns kCancelled within milliseconds. Every connection has TCP
// keepalive on (HttpTransportOptions::keepalive_time), so a peer that
// vanished without a FIN is noticed.
//
// Thread-safety: one transport may be used from any number of threads.
#ifndef LEASEHOLD_REGISTRY_ETCD_HTTP_TRANSPORT_H_
#define LEASEHOLD_REGISTRY_ETCD_HTTP_TRANSPORT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "registry/cancel.h"
#include "registry/clock.h"

namespace leasehold::registry::etcd_internal {

// Percent-encodes every byte except RFC 3986's unreserved characters
// (A-Z a-z 0-9 - . _ ~). Safe for a path segment, a query value and a
// form value alike.
std::string PercentEncode(absl::string_view raw);
// The same, appended to *out (no temporary string).
void AppendPercentEncoded(absl::string_view raw, std::string* out);
// The inverse; also reads '+' as a space, as form decoding does. nullopt for
// a '%' not followed by two hex digits.
std::optional<std::string> PercentDecode(absl::string_view encoded);

// The parts of a base URL "scheme://host[:port]", views into it: host keeps
// an IPv6 address's brackets, port is empty when not given.
struct BaseUrlParts {
  absl::string_view scheme;
  absl::string_view host;
  absl::string_view port;
};
BaseUrlParts SplitBaseUrl(absl::string_view base_url);

struct HttpRequest {
  std::string method = "GET";  // GET, PUT, POST or DELETE
  // Path and query, already percent-encoded: "/v2/keys/a%20b?recursive=true".
  std::string target;
  // application/x-www-form-urlencoded; sent only when not empty.
  std::string body;
  // false: once the request may have reached the server it is never sent
  // again, not even by libcurl's silent retry on a keep-alive connection
  // that turns out to be dead. Conditional writes must set false.
  bool idempotent = true;
  // Sent as the Authorization header when not empty (etcd v3's auth token).
  // Never part of a message.
  std::string authorization = {};
};

// A long poll on a streamed answer (etcd v3's /v3/watch): the transfer ends
// as soon as this returns true for the body received so far (asked each
// time more has arrived), with an OK result holding what arrived.
using StreamEnough = std::function<bool(absl::string_view body)>;

struct HttpResponse {
  // HTTP status code; known as soon as the status line arrived, also when
  // the transfer then fails.
  int status = 0;
  // The final answer's header lines as received ("Name: value\r\n" each),
  // kept raw: a request reads one or two of them, so splitting every line
  // into a map would cost more than the lookups.
  std::string header_lines;
  std::string body;

  // The named header (names compare without case), if present, its value
  // without surrounding whitespace; a repeated header gives its last value.
  std::optional<std::string> Header(absl::string_view name) const;
};

struct HttpResult {
  // OK: an HTTP answer arrived and is in `response`. Otherwise why not:
  // kUnavailable (connect, TLS or I/O failure), kDeadlineExceeded (the
  // request timeout or the long poll's deadline), kCancelled,
  // kInvalidArgument (a bad URL or TLS file).
  absl::Status status;
  // When !status.ok(): true if the server may have received the request
  // (it was handed to a connection); false if it certainly did not.
  bool maybe_sent = false;
  // On failure, the headers (and body bytes) that did arrive, if any.
  HttpResponse response;
};

// A long poll's periodic question "is the server still there?", for a
// server that keeps the connection open but will never answer (a frozen
// process, a member cut off from its cluster, a proxy that forwards
// nothing).
struct LivenessCheck {
  // Asked this often (on the long poll's clock) while the answer is
  // pending. Positive.
  absl::Duration interval;
  // Runs on a thread of its own while the long poll keeps receiving, with a
  // copy of what has arrived so far (status and headers). false ends the
  // long poll with kUnavailable. `stop` fires when the long poll ends
  // first; a check then returns promptly (its answer is ignored).
  std::function<bool(const HttpResponse& so_far, const CancelToken& stop)>
      alive;
};

struct HttpTransportOptions {
  // Whole transfer of a Send (not of a LongPoll), connect included.
  absl::Duration request_timeout = absl::Seconds(5);
  // TCP connect plus TLS handshake.
  absl::Duration dial_timeout = absl::Seconds(2);
  // HTTP basic auth when username is not empty.
  std::string username;
  std::string password;
  // PEM files; empty: the system CA store / no client certificate.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  // https: the name the server's certificate must carry (and the SNI), while
  // the connection goes to the base URL's host. Empty: the base URL's host.
  std::string server_name;
  // TCP keepalive, on every connection: the first probe goes out after
  // keepalive_time of silence, and a connection whose probes go unanswered
  // for keepalive_timeout is dropped (up to 3 probes spread over it, their
  // whole-second intervals adding up to at most the timeout). The kernel
  // counts whole seconds: both are rounded up, and must lie in
  // [kMinKeepalive, kMaxKeepalive].
  absl::Duration keepalive_time = absl::Seconds(10);
  absl::Duration keepalive_timeout = absl::Seconds(15);
};

// The range of HttpTransportOptions::keepalive_time and keepalive_timeout
// (Linux takes at most 32767 s per probe step).
inline constexpr absl::Duration kMinKeepalive = absl::Seconds(1);
inline constexpr absl::Duration kMaxKeepalive = absl::Hours(9);

// What the kernel is told for a keepalive time and timeout.
struct TcpKeepalive {
  int idle_seconds;      // TCP_KEEPIDLE
  int interval_seconds;  // TCP_KEEPINTVL
  int count;             // TCP_KEEPCNT
};
TcpKeepalive KeepaliveSettings(absl::Duration time, absl::Duration timeout);

class HttpTransport {
 public:
  explicit HttpTransport(HttpTransportOptions options);
  ~HttpTransport();
  HttpTransport(const HttpTransport&) = delete;
  HttpTransport& operator=(const HttpTransport&) = delete;

  // Sends `request` to `base_url` ("http://host:port") and waits for the
  // answer, at most `timeout` (default: request_timeout). `cancel` may be
  // null.
  HttpResult Send(absl::string_view base_url, const HttpRequest& request,
                  const CancelToken* cancel = nullptr,
                  std::optional<absl::Duration> timeout = std::nullopt);

  // Like Send, but without the request timeout: waits until the answer, the
  // `deadline` on `clock` (kDeadlineExceeded), `cancel` (kCancelled) or a
  // failed `check` (kUnavailable; may be null). For etcd's wait=true long
  // polls; `enough` (may be null) ends a streamed answer.
  HttpResult LongPoll(absl::string_view base_url, const HttpRequest& request,
                      absl::Time deadline, Clock& clock,
                      const CancelToken* cancel,
                      const LivenessCheck* check = nullptr,
                      const StreamEnough* enough = nullptr);

  // TCP connections opened so far (for tests of keep-alive).
  int64_t connections_opened() const {
    return connections_opened_.load(std::memory_order_relaxed);
  }

 private:
  class Handle;

  // `deadline` set: a long poll (no timeout); otherwise bounded by
  // `timeout`.
  HttpResult Perform(absl::string_view base_url, const HttpRequest& request,
                     absl::Duration timeout, std::optional<absl::Time> deadline,
                     Clock& clock, const CancelToken* cancel,
                     const LivenessCheck* check, const StreamEnough* enough);
  std::unique_ptr<Handle> Borrow(const std::string& base_url)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Return(const std::string& base_url, std::unique_ptr<Handle> handle)
      ABSL_LOCKS_EXCLUDED(mu_);

  // What to try about a TLS failure, appended to its message; "" if nothing.
  std::string TlsHint(absl::string_view url, int curl_code,
                      absl::string_view error_text) const;

  const HttpTransportOptions options_;
  std::atomic<int64_t> connections_opened_{0};
  std::mutex mu_;
  // Idle handles per base URL, most recently used last (its connection is
  // the likeliest to still be open).
  std::map<std::string, std::vector<std::unique_ptr<Handle>>> idle_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace leasehold::registry::etcd_internal

#endif  // LEASEHOLD_REGISTRY_ETCD_HTTP_TRANSPORT_H_
