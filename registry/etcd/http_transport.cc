#include "registry/etcd/http_transport.h"

#include <curl/curl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "registry/registry_uri.h"

namespace leasehold::registry::etcd_internal {
namespace {

// Enough idle connections per endpoint for a busy process; more are closed
// when their transfer ends instead of being kept.
constexpr size_t kMaxIdleHandlesPerEndpoint = 16;

// At most this many unanswered keepalive probes before the connection is
// dropped: a few, so that one lost probe is not a verdict.
constexpr int kMaxKeepaliveProbes = 3;

// How long one curl_multi_poll may block before the loop looks at the
// deadline again. The deadline is on an injected Clock (possibly simulated),
// which curl cannot wait on; cancels do not wait for this (they wake the
// poll at once).
constexpr absl::Duration kPollSlice = absl::Milliseconds(100);

void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool IsUnreserved(unsigned char c) {
  return absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

long ToCurlMillis(absl::Duration d) {  // NOLINT(runtime/int): curl's type
  return static_cast<long>(            // NOLINT(runtime/int)
      std::max<int64_t>(1, absl::ToInt64Milliseconds(d)));
}

// libcurl sets SO_KEEPALIVE, the idle time and the interval; the probe
// count it leaves at the system default (9), which is set here.
int OnSocket(void* count, curl_socket_t fd, curlsocktype purpose) {
  if (purpose == CURLSOCKTYPE_IPCXN) {
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, count, sizeof(int));
  }
  return CURL_SOCKOPT_OK;
}

// State of one transfer, reached from libcurl's callbacks.
struct Transfer {
  HttpResponse* response;
  bool idempotent;
  // How many times libcurl was about to send the request.
  int attempts = 0;
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  static_cast<Transfer*>(user)->response->body.append(data, size * count);
  return size * count;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  HttpResponse* response = static_cast<Transfer*>(user)->response;
  absl::string_view line(data, size * count);
  if (absl::StartsWith(line, "HTTP/")) {
    // A new response begins (after "100 Continue", say): forget the last.
    // Its status is known from here on, also if the body never comes.
    response->header_lines.clear();
    std::vector<absl::string_view> words =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (words.size() < 2 || !absl::SimpleAtoi(words[1], &response->status)) {
      response->status = 0;
    }
  } else {
    response->header_lines.append(line.data(), line.size());
  }
  return size * count;
}

// libcurl silently re-sends a request whose reused keep-alive connection
// died before any answer byte arrived. The server may have applied it, so a
// request that is not idempotent gets one attempt only.
int OnBeforeSend(void* user, char*, char*, int, int) {
  Transfer* transfer = static_cast<Transfer*>(user);
  ++transfer->attempts;
  return transfer->attempts > 1 && !transfer->idempotent ? CURL_PREREQFUNC_ABORT
                                                         : CURL_PREREQFUNC_OK;
}

// Only our own configuration is kInvalidArgument; whatever a server sends
// back is kUnavailable (the next endpoint may do better). Endpoints are
// http(s) URLs checked before any request, so CURLE_UNSUPPORTED_PROTOCOL
// means a reply that is not HTTP/1.x ("Received HTTP/0.9 when not allowed").
absl::StatusCode CodeForCurlError(CURLcode code) {
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return absl::StatusCode::kDeadlineExceeded;
    case CURLE_URL_MALFORMAT:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CIPHER:
      return absl::StatusCode::kInvalidArgument;
    default:
      return absl::StatusCode::kUnavailable;
  }
}

}  // namespace

TcpKeepalive KeepaliveSettings(absl::Duration time, absl::Duration timeout) {
  auto seconds = [](absl::Duration d) {
    return static_cast<int>(
        std::clamp(absl::ToInt64Seconds(absl::Ceil(d, absl::Seconds(1))),
                   absl::ToInt64Seconds(kMinKeepalive),
                   absl::ToInt64Seconds(kMaxKeepalive)));
  };
  // Up to three probes whose intervals add up to at most the timeout: a
  // silent peer is dropped no later than the timeout says.
  const int timeout_seconds = seconds(timeout);
  const int count = std::min(kMaxKeepaliveProbes, timeout_seconds);
  return {seconds(time), timeout_seconds / count, count};
}

std::string HttpTransport::TlsHint(absl::string_view url, int curl_code,
                                   absl::string_view error_text) const {
  if (!absl::StartsWith(url, "https://")) return "";
  if (curl_code == CURLE_PEER_FAILED_VERIFICATION) {
    return absl::StrContains(error_text, "host name") &&
                   options_.server_name.empty()
               ? " (if the endpoint is an address and the certificate names "
                 "a host, set server-name to that host)"
               : "";
  }
  // A server that requires a client certificate drops the connection during
  // or just after the handshake; libcurl then reports only a socket error.
  const bool connection_dropped = curl_code != CURLE_COULDNT_CONNECT &&
                                  curl_code != CURLE_COULDNT_RESOLVE_HOST &&
                                  curl_code != CURLE_OPERATION_TIMEDOUT;
  if (!options_.cert_file.empty() || !connection_dropped) return "";
  return " (no client certificate was offered; if the server requires one, "
         "set cert_file and key_file)";
}

BaseUrlParts SplitBaseUrl(absl::string_view base_url) {
  BaseUrlParts parts;
  absl::string_view rest = base_url;
  if (const size_t colon = rest.find("://"); colon != absl::string_view::npos) {
    parts.scheme = rest.substr(0, colon);
    rest.remove_prefix(colon + 3);
  }
  const size_t close =
      !rest.empty() && rest.front() == '[' ? rest.find(']') : 0;
  const size_t port_colon =
      close == absl::string_view::npos ? close : rest.find(':', close);
  parts.host = rest.substr(0, port_colon);
  if (port_colon != absl::string_view::npos) {
    parts.port = rest.substr(port_colon + 1);
  }
  return parts;
}

std::string PercentEncode(absl::string_view raw) {
  std::string out;
  AppendPercentEncoded(raw, &out);
  return out;
}

void AppendPercentEncoded(absl::string_view raw, std::string* out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out->reserve(out->size() + raw.size());
  for (const char ch : raw) {
    const auto c = static_cast<unsigned char>(ch);
    if (IsUnreserved(c)) {
      out->push_back(ch);
    } else {
      out->push_back('%');
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 0xF]);
    }
  }
}

std::optional<std::string> PercentDecode(absl::string_view encoded) {
  std::string out;
  out.reserve(encoded.size());
  for (size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] == '+') {
      out.push_back(' ');
    } else if (encoded[i] != '%') {
      out.push_back(encoded[i]);
    } else {
      if (i + 2 >= encoded.size()) return std::nullopt;
      const int hi = HexValue(encoded[i + 1]);
      const int lo = HexValue(encoded[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    }
  }
  return out;
}

std::optional<std::string> HttpResponse::Header(absl::string_view name) const {
  std::optional<absl::string_view> value;
  for (absl::string_view line : absl::StrSplit(header_lines, '\n')) {
    const size_t colon = line.find(':');
    if (colon != absl::string_view::npos &&
        absl::EqualsIgnoreCase(line.substr(0, colon), name)) {
      value = absl::StripAsciiWhitespace(line.substr(colon + 1));
    }
  }
  if (!value.has_value()) return std::nullopt;
  return std::string(*value);
}

// A libcurl easy handle inside its own multi handle. The multi handle owns
// the connection cache, so keeping the pair keeps its connections alive, and
// it is what a cancel wakes (curl_multi_wakeup) from another thread. The
// options that are the same for every transfer of a transport are set once
// here; Perform sets the rest for each transfer. (A curl_easy_reset and
// every option again cost as much per request as all of leasehold's own
// request building.)
class HttpTransport::Handle {
 public:
  Handle(const HttpTransportOptions& options, const std::string& base_url)
      : easy_(curl_easy_init()),
        multi_(curl_multi_init()),
        keepalive_(KeepaliveSettings(options.keepalive_time,
                                     options.keepalive_timeout)),
        url_base_(base_url) {
    // Go's net/http answers "Expect: 100-continue" fine, but waiting for the
    // interim answer costs a round trip on every large write.
    headers_ = curl_slist_append(nullptr, "Expect:");
    if (easy_ == nullptr) return;
    curl_easy_setopt(easy_, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, headers_);
    curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, &OnBody);
    curl_easy_setopt(easy_, CURLOPT_HEADERFUNCTION, &OnHeader);
    curl_easy_setopt(easy_, CURLOPT_PREREQFUNCTION, &OnBeforeSend);
    curl_easy_setopt(easy_, CURLOPT_CONNECTTIMEOUT_MS,
                     ToCurlMillis(options.dial_timeout));
    curl_easy_setopt(easy_, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy_, CURLOPT_TCP_KEEPIDLE,
                     static_cast<long>(keepalive_.idle_seconds));  // NOLINT
    curl_easy_setopt(easy_, CURLOPT_TCP_KEEPINTVL,
                     static_cast<long>(keepalive_.interval_seconds));  // NOLINT
    curl_easy_setopt(easy_, CURLOPT_SOCKOPTFUNCTION, &OnSocket);
    curl_easy_setopt(easy_, CURLOPT_SOCKOPTDATA, &keepalive_.count);
    if (!options.username.empty()) {
      curl_easy_setopt(easy_, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
      curl_easy_setopt(easy_, CURLOPT_USERNAME, options.username.c_str());
      curl_easy_setopt(easy_, CURLOPT_PASSWORD, options.password.c_str());
    }
    if (!options.ca_file.empty()) {
      curl_easy_setopt(easy_, CURLOPT_CAINFO, options.ca_file.c_str());
    }
    if (!options.cert_file.empty()) {
      curl_easy_setopt(easy_, CURLOPT_SSLCERT, options.cert_file.c_str());
      curl_easy_setopt(easy_, CURLOPT_SSLKEY, options.key_file.c_str());
    }
    if (!options.server_name.empty()) {
      // "https://10.0.0.1:2379" is asked for as "https://NAME:2379" and
      // connected to 10.0.0.1:2379: libcurl then checks the certificate
      // against NAME and sends NAME as SNI, without any name lookup.
      const BaseUrlParts parts = SplitBaseUrl(base_url);
      url_base_ = absl::StrCat(parts.scheme, "://", options.server_name,
                               parts.port.empty() ? "" : ":", parts.port);
      connect_to_ = curl_slist_append(
          nullptr,
          absl::StrCat(options.server_name, "::", parts.host, ":").c_str());
      curl_easy_setopt(easy_, CURLOPT_CONNECT_TO, connect_to_);
    }
  }
  ~Handle() {
    curl_slist_free_all(authorized_);
    curl_slist_free_all(connect_to_);
    curl_slist_free_all(headers_);
    curl_easy_cleanup(easy_);
    curl_multi_cleanup(multi_);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  bool valid() const { return easy_ != nullptr && multi_ != nullptr; }
  CURL* easy() const { return easy_; }
  CURLM* multi() const { return multi_; }
  // What request URLs start with: the base URL, or its server-name form.
  const std::string& url_base() const { return url_base_; }
  // Sets the transfer's headers: the fixed ones, plus "Authorization:
  // `authorization`" when not empty. The list with the header is kept for
  // the next transfer, which nearly always sends the same token.
  void SetAuthorization(const std::string& authorization) {
    if (authorization.empty()) {
      curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, headers_);
      return;
    }
    if (authorized_ == nullptr || authorization != authorization_) {
      curl_slist_free_all(authorized_);
      authorized_ = curl_slist_append(nullptr, "Expect:");
      authorized_ = curl_slist_append(
          authorized_, absl::StrCat("Authorization: ", authorization).c_str());
      authorization_ = authorization;
    }
    curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, authorized_);
  }

 private:
  CURL* const easy_;
  CURLM* const multi_;
  // Read by OnSocket for each new connection of this handle (through a
  // void*, hence not const).
  TcpKeepalive keepalive_;
  curl_slist* headers_;
  curl_slist* authorized_ = nullptr;  // headers_ and the Authorization line
  std::string authorization_;         // the token in authorized_
  curl_slist* connect_to_ = nullptr;
  std::string url_base_;
};

HttpTransport::HttpTransport(HttpTransportOptions options)
    : options_(std::move(options)) {
  InitCurlOnce();
}

HttpTransport::~HttpTransport() = default;

HttpResult HttpTransport::Send(absl::string_view base_url,
                               const HttpRequest& request,
                               const CancelToken* cancel,
                               std::optional<absl::Duration> timeout) {
  return Perform(base_url, request, timeout.value_or(options_.request_timeout),
                 std::nullopt, *RealClock(), cancel, nullptr, nullptr);
}

HttpResult HttpTransport::LongPoll(absl::string_view base_url,
                                   const HttpRequest& request,
                                   absl::Time deadline, Clock& clock,
                                   const CancelToken* cancel,
                                   const LivenessCheck* check,
                                   const StreamEnough* enough) {
  return Perform(base_url, request, absl::ZeroDuration(), deadline, clock,
                 cancel, check, enough);
}

std::unique_ptr<HttpTransport::Handle> HttpTransport::Borrow(
    const std::string& base_url) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = idle_.find(base_url);
    if (it != idle_.end() && !it->second.empty()) {
      std::unique_ptr<Handle> handle = std::move(it->second.back());
      it->second.pop_back();
      return handle;
    }
  }
  return std::make_unique<Handle>(options_, base_url);
}

void HttpTransport::Return(const std::string& base_url,
                           std::unique_ptr<Handle> handle) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::unique_ptr<Handle>>& idle = idle_[base_url];
  if (idle.size() < kMaxIdleHandlesPerEndpoint) {
    idle.push_back(std::move(handle));
  }
}

HttpResult HttpTransport::Perform(absl::string_view base_url,
                                  const HttpRequest& request,
                                  absl::Duration timeout,
                                  std::optional<absl::Time> deadline,
                                  Clock& clock, const CancelToken* cancel,
                                  const LivenessCheck* check,
                                  const StreamEnough* enough) {
  const std::string endpoint(base_url);
  // "PUT http://…/v2/keys/a", for error messages only.
  auto what = [&] {
    return absl::StrCat(request.method, " ",
                        RedactUri(absl::StrCat(endpoint, request.target)));
  };
  HttpResult result;
  std::unique_ptr<Handle> handle = Borrow(endpoint);
  if (!handle->valid()) {
    result.status = absl::ResourceExhaustedError(
        absl::StrCat(what(), ": cannot create a libcurl handle"));
    return result;
  }

  CURL* easy = handle->easy();
  const std::string url = absl::StrCat(handle->url_base(), request.target);
  Transfer transfer{&result.response, request.idempotent};
  char error_text[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, error_text);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(easy, CURLOPT_PREREQDATA, &transfer);
  handle->SetAuthorization(request.authorization);
  // 0: none (a long poll waits for its deadline instead).
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
                   deadline.has_value() ? 0L : ToCurlMillis(timeout));
  // The handle keeps the last transfer's method and body: back to a plain
  // GET first, then this request's method.
  curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
  const bool get = request.method == "GET";
  curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST,
                   get ? nullptr : request.method.c_str());
  if (!get && (!request.body.empty() || request.method != "DELETE")) {
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE,
                     static_cast<long>(request.body.size()));  // NOLINT
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request.body.c_str());
  }

  CURLM* multi = handle->multi();
  curl_multi_add_handle(multi, easy);
  CancelToken::Registration on_cancel;
  if (cancel != nullptr) {
    on_cancel = cancel->OnCancel([multi] { curl_multi_wakeup(multi); });
  }
  std::optional<CURLcode> done;
  bool cancelled = false;
  bool expired = false;
  bool dead = false;
  bool streamed = false;  // ended by `enough`
  size_t body_seen = 0;
  // The liveness check in flight, if any: it runs on its own thread so that
  // the answer keeps being received meanwhile, and wakes the poll when done.
  std::thread checker;
  std::unique_ptr<CancelToken> stop_check;
  std::atomic<int> verdict{0};  // 0 pending, 1 alive, 2 dead
  absl::Time next_check =
      check != nullptr ? clock.Now() + check->interval : absl::InfiniteFuture();
  while (true) {
    int running = 0;
    curl_multi_perform(multi, &running);
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
      if (msg->msg == CURLMSG_DONE) done = msg->data.result;
    }
    if (done.has_value()) break;
    if (enough != nullptr && result.response.body.size() != body_seen) {
      body_seen = result.response.body.size();
      if ((*enough)(result.response.body)) {
        streamed = true;
        break;
      }
    }
    if (cancel != nullptr && cancel->cancelled()) {
      cancelled = true;
      break;
    }
    const absl::Time now = clock.Now();
    if (checker.joinable() && verdict.load() != 0) {
      checker.join();
      if (verdict.load() == 2) {
        dead = true;
        break;
      }
      next_check = now + check->interval;
    }
    if (!checker.joinable() && now >= next_check) {
      verdict.store(0);
      stop_check = std::make_unique<CancelToken>();
      checker = std::thread([check, so_far = result.response,
                             stop = stop_check.get(), &verdict, multi] {
        verdict.store(check->alive(so_far, *stop) ? 1 : 2);
        curl_multi_wakeup(multi);
      });
    }
    absl::Duration wait = kPollSlice;
    if (deadline.has_value()) {
      const absl::Duration left = *deadline - now;
      if (left <= absl::ZeroDuration()) {
        expired = true;
        break;
      }
      wait = std::min(wait, left);
    }
    if (!checker.joinable()) wait = std::min(wait, next_check - now);
    curl_multi_poll(multi, nullptr, 0, static_cast<int>(ToCurlMillis(wait)),
                    nullptr);
  }
  if (checker.joinable()) {
    stop_check->Cancel();
    checker.join();
  }
  on_cancel.Reset();
  // Removing an unfinished transfer closes its connection, so a cancelled
  // long poll never leaves a half-read answer on a pooled connection.
  curl_multi_remove_handle(multi, easy);
  long connects = 0;  // NOLINT(runtime/int): curl's type
  curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &connects);
  connections_opened_.fetch_add(connects, std::memory_order_relaxed);
  result.maybe_sent = transfer.attempts > 0;

  if (cancelled) {
    result.status = absl::CancelledError(absl::StrCat(what(), ": cancelled"));
  } else if (expired) {
    result.status =
        absl::DeadlineExceededError(absl::StrCat(what(), ": deadline passed"));
  } else if (dead) {
    result.status = absl::UnavailableError(
        absl::StrCat(what(),
                     ": the server failed a liveness check while the "
                     "answer was pending"));
  } else if (streamed || *done == CURLE_OK) {
    long code = 0;  // NOLINT(runtime/int): curl's type
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
    result.response.status = static_cast<int>(code);
  } else if (*done == CURLE_ABORTED_BY_CALLBACK) {
    result.status = absl::UnavailableError(absl::StrCat(
        what(), ": connection lost after the request was sent; not re-sent"));
  } else {
    result.status = absl::Status(
        CodeForCurlError(*done),
        absl::StrCat(
            what(), ": ",
            error_text[0] != '\0' ? error_text : curl_easy_strerror(*done),
            TlsHint(url, *done, error_text)));
  }
  Return(endpoint, std::move(handle));
  return result;
}

}  // namespace leasehold::registry::etcd_internal
