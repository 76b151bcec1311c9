#include "registry/etcd/etcd_client.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "registry/cancel.h"
#include "registry/errors.h"
#include "registry/etcd/credentials.h"
#include "registry/etcd/endpoint_list.h"
#include "registry/etcd/http_transport.h"
#include "registry/etcd/json_codec.h"
#include "registry/registry_uri.h"

namespace leasehold::registry {
namespace {

using etcd_internal::AppendPercentEncoded;
using etcd_internal::Asked;
using etcd_internal::CheckSuccess;
using etcd_internal::HttpRequest;
using etcd_internal::HttpResponse;
using etcd_internal::HttpResult;
using etcd_internal::kWatchRetryFirst;
using etcd_internal::kWatchRetryMax;
using etcd_internal::LivenessCheck;
using etcd_internal::SleepUnlessCancelled;

// reject_old_cluster refuses clusters older than this.
constexpr int kOldestClusterMajor = 3;
constexpr int kOldestClusterMinor = 4;

// The same status with `prefix` in front of its message; payloads (etcd's
// error details, outcome-unknown) are kept.
absl::Status Prefixed(absl::string_view prefix, const absl::Status& status) {
  absl::Status out(status.code(), absl::StrCat(prefix, ": ", status.message()));
  status.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) {
    out.SetPayload(url, payload);
  });
  return out;
}

// "name=value&…" with every value percent-encoded. Names are etcd's
// parameter names, which need no encoding.
class Params {
 public:
  void Add(absl::string_view name, absl::string_view value) {
    absl::StrAppend(&text_, text_.empty() ? "" : "&", name, "=");
    AppendPercentEncoded(value, &text_);
  }
  void AddTrue(absl::string_view name, bool flag) {
    if (flag) Add(name, "true");
  }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

// "/v2/keys/<segment>/<segment>", each segment percent-encoded. Empty
// segments are dropped, as etcd's path cleaning would; keys outside the
// byte contract (ValidateKey: "." and ".." segments, which Go's HTTP mux
// answers with a redirect, and invalid UTF-8) are refused.
absl::StatusOr<std::string> KeyPath(absl::string_view key) {
  if (absl::Status valid = ValidateKey(key); !valid.ok()) return valid;
  std::string path = "/v2/keys";
  for (absl::string_view segment :
       absl::StrSplit(key, '/', absl::SkipEmpty())) {
    path.push_back('/');
    AppendPercentEncoded(segment, &path);
  }
  if (path == "/v2/keys") path.push_back('/');
  return path;
}

std::string WithQuery(std::string path, const Params& params) {
  if (!params.text().empty()) absl::StrAppend(&path, "?", params.text());
  return path;
}

// What a request is about, for error messages (`set "/a"`). Built into
// text only when a message needs it: escaping the key on every request
// would cost more than a successful request's own bookkeeping.
class Context {
 public:
  Context(const char* op, const std::string& key) : op_(op), key_(key) {}
  std::string text() const {
    return absl::StrCat(op_, " \"", absl::CHexEscape(key_), "\"");
  }

 private:
  const char* const op_;
  const std::string& key_;
};

// X-Etcd-Index, when present and a number; 0 otherwise.
uint64_t EtcdIndexHeader(const HttpResponse& response) {
  uint64_t index = 0;
  if (auto header = response.Header("x-etcd-index")) {
    if (!absl::SimpleAtoi(*header, &index)) index = 0;
  }
  return index;
}

// Whether an HTTP answer comes from etcd at all: etcd puts X-Etcd-Index on
// every keys API answer and its JSON error body on every failure. Anything
// else (a proxy's HTML 404 or 502, a load balancer's page, a cache) says
// nothing about the keys.
bool IsEtcdAnswer(const HttpResponse& response,
                  const std::optional<EtcdError>& error) {
  return error.has_value() || EtcdIndexHeader(response) > 0;
}

// etcd's errors that say the request was never handed to raft, so that not
// even a write can have been applied: it may go to another member at once.
// Every other server-side failure (a timeout above all) may still be
// applied later.
bool NeverProposed(const EtcdError& error) {
  for (const absl::string_view cause :
       {"no leader", "proposal dropped", "raft: stopped"}) {
    if (absl::StrContains(error.cause, cause) ||
        absl::StrContains(error.message, cause)) {
      return true;
    }
  }
  return false;
}

// What one attempt's outcome asks of the caller.
enum class Next {
  kReturn,   // etcd's own answer, success or error: the caller's result
  kTryNext,  // certainly not applied anywhere: the next endpoint may serve it
  kUnknown,  // trouble after the request went out: a read tries the next
             // endpoint, a write has an unknown outcome
};

struct Judged {
  absl::StatusOr<Response> result;
  Next next;
};

absl::Status CheckReadable(absl::string_view option, const std::string& path) {
  if (path.empty()) return absl::OkStatus();
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        option, " \"", path, "\": cannot be read: ", std::strerror(errno)));
  }
  std::fclose(f);
  return absl::OkStatus();
}

absl::Status ValidateEtcdOptions(EtcdOptions& options) {
  if (options.endpoints.empty()) {
    return absl::InvalidArgumentError("endpoints: at least one is required");
  }
  for (size_t i = 0; i < options.endpoints.size(); ++i) {
    std::string& endpoint = options.endpoints[i];
    absl::string_view rest = endpoint;
    const bool https = absl::ConsumePrefix(&rest, "https://");
    if (!https && !absl::ConsumePrefix(&rest, "http://")) {
      return absl::InvalidArgumentError(
          absl::StrCat("endpoints[", i, "] \"", RedactUri(endpoint),
                       "\": not an http:// or https:// URL"));
    }
    while (absl::ConsumeSuffix(&rest, "/")) endpoint.pop_back();
    if (rest.empty() || absl::StrContains(rest, '/')) {
      return absl::InvalidArgumentError(
          absl::StrCat("endpoints[", i, "] \"", RedactUri(endpoint),
                       "\": expected scheme://host:port with no path"));
    }
    // Credentials in the URL would bypass username/password: no warning,
    // no redaction in libcurl's view of the request.
    if (absl::StrContains(rest, '@')) {
      return absl::InvalidArgumentError(absl::StrCat(
          "endpoints[", i, "] \"", RedactUri(endpoint),
          "\": user@ is not allowed; set username and password instead"));
    }
    if (!https && !options.server_name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("server_name: applies to https:// endpoints only, not "
                       "endpoints[",
                       i, "] \"", endpoint, "\""));
    }
  }
  if (options.request_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("request_timeout: must be positive");
  }
  if (options.dial_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("dial_timeout: must be positive");
  }
  for (const auto& [name, keepalive] :
       {std::pair<const char*, absl::Duration>{"keepalive_time",
                                               options.keepalive_time},
        {"keepalive_timeout", options.keepalive_timeout}}) {
    if (keepalive < etcd_internal::kMinKeepalive ||
        keepalive > etcd_internal::kMaxKeepalive) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ": ", absl::FormatDuration(keepalive), " is not within ",
          absl::FormatDuration(etcd_internal::kMinKeepalive), " to ",
          absl::FormatDuration(etcd_internal::kMaxKeepalive)));
    }
  }
  if (options.watch_check_interval < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "watch_check_interval: must not be negative");
  }
  if (options.auto_sync_interval < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "auto_sync_interval: must not be negative");
  }
  if (options.username.empty() &&
      (!options.password.empty() || !options.password_file.empty())) {
    return absl::InvalidArgumentError(
        options.password.empty() ? "password_file: given without a username"
                                 : "password: given without a username");
  }
  if (!options.password.empty() && !options.password_file.empty()) {
    return absl::InvalidArgumentError(
        "password and password_file: give one, not both");
  }
  if (options.cert_file.empty() != options.key_file.empty()) {
    return absl::InvalidArgumentError(
        options.cert_file.empty() ? "key_file: given without cert_file"
                                  : "cert_file: given without key_file");
  }
  for (const auto& [name, path] :
       {std::pair<const char*, const std::string&>{"ca_file", options.ca_file},
        {"cert_file", options.cert_file},
        {"key_file", options.key_file}}) {
    absl::Status readable = CheckReadable(name, path);
    if (!readable.ok()) return readable;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status etcd_internal::PrepareEtcdOptions(EtcdOptions& options) {
  if (absl::Status valid = ValidateEtcdOptions(options); !valid.ok()) {
    return valid;
  }
  if (!options.password_file.empty()) {
    absl::StatusOr<std::string> password = etcd_internal::ReadPasswordFile(
        options.password_file, etcd_internal::WarnerFor(options));
    if (!password.ok()) return password.status();
    options.password = *std::move(password);
  }
  return absl::OkStatus();
}

void etcd_internal::SleepUnlessCancelled(Clock& clock, absl::Time until,
                                         const CancelToken* cancel) {
  std::mutex mu;
  std::condition_variable cv;
  bool woken = false;
  CancelToken::Registration on_cancel;
  if (cancel != nullptr) {
    on_cancel = cancel->OnCancel([&] {
      std::lock_guard<std::mutex> lock(mu);
      woken = true;
      cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> lock(mu);
  while (!woken && clock.WaitUntil(cv, lock, until)) {
  }
}

etcd_internal::HttpTransportOptions etcd_internal::TransportOptions(
    const EtcdOptions& options) {
  etcd_internal::HttpTransportOptions out;
  out.request_timeout = options.request_timeout;
  out.dial_timeout = options.dial_timeout;
  out.username = options.username;
  out.password = options.password;
  out.ca_file = options.ca_file;
  out.cert_file = options.cert_file;
  out.key_file = options.key_file;
  out.server_name = options.server_name;
  out.keepalive_time = options.keepalive_time;
  out.keepalive_timeout = options.keepalive_timeout;
  return out;
}

absl::StatusOr<etcd_internal::VersionAt> etcd_internal::ReadClusterVersion(
    HttpTransport& transport, const std::vector<std::string>& endpoints,
    size_t start, const CancelToken* stop) {
  absl::Status last;
  for (size_t i = 0; i < endpoints.size(); ++i) {
    const std::string& endpoint = endpoints[(start + i) % endpoints.size()];
    HttpResult result =
        transport.Send(endpoint, {"GET", "/version", "", true}, stop);
    if (!result.status.ok()) {
      last = result.status;
      continue;
    }
    const std::string where = absl::StrCat("GET ", endpoint, "/version");
    if (result.response.status != 200) {
      last = absl::UnavailableError(
          absl::StrCat(where, ": HTTP ", result.response.status));
      continue;
    }
    absl::StatusOr<etcd_internal::EtcdVersion> version =
        etcd_internal::ParseEtcdVersion(result.response.body);
    if (!version.ok()) {
      last = Prefixed(where, version.status());
      continue;
    }
    return VersionAt{endpoint, *std::move(version)};
  }
  return absl::UnavailableError(
      absl::StrCat("reject-old-cluster: no endpoint told its etcd version (",
                   endpoints.size(), " tried); last: ", last.message()));
}

absl::Status etcd_internal::CheckClusterVersion(
    const absl::StatusOr<VersionAt>& read) {
  if (!read.ok()) return read.status();
  const EtcdVersion& version = read->version;
  if (version.major < kOldestClusterMajor ||
      (version.major == kOldestClusterMajor &&
       version.minor < kOldestClusterMinor)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "reject-old-cluster: etcd at ", read->endpoint, " runs version ",
        absl::CHexEscape(version.text), ", older than ", kOldestClusterMajor,
        ".", kOldestClusterMinor));
  }
  return absl::OkStatus();
}

bool etcd_internal::RevokesLeasesAfterAStall(absl::string_view version) {
  const std::vector<absl::string_view> parts = absl::StrSplit(version, '.');
  int major = 0, minor = 0, patch = 0;
  if (parts.size() < 3 || !absl::SimpleAtoi(parts[0], &major) ||
      !absl::SimpleAtoi(parts[1], &minor) ||
      !absl::SimpleAtoi(
          parts[2].substr(0, parts[2].find_first_not_of("0123456789")),
          &patch)) {
    return false;
  }
  if (major != 3) return major < 3;
  if (minor == 4) return patch < 28;
  if (minor == 5) return patch < 11;
  return minor < 4;
}

namespace {

class EtcdClient final : public KeysApi {
 public:
  explicit EtcdClient(EtcdOptions options)
      : options_(std::move(options)),
        clock_(options_.clock != nullptr ? options_.clock : RealClock()),
        transport_(etcd_internal::TransportOptions(options_)),
        clear_text_(options_, etcd_internal::WarnerFor(options_),
                    "HTTP basic auth"),
        endpoints_(options_.endpoints) {
    clear_text_.Check(options_.endpoints);
    if (options_.auto_sync_interval > absl::ZeroDuration()) {
      sync_.emplace(endpoints_, *clock_, options_.auto_sync_interval,
                    clear_text_,
                    [this](const std::string& at, const CancelToken& stop) {
                      return AskMembers(at, stop);
                    });
    }
  }

  absl::StatusOr<Response> Get(const std::string& key,
                               const GetOptions& options) override {
    const Context context("get", key);
    absl::StatusOr<std::string> path = KeyPath(key);
    if (!path.ok()) return Prefixed(context.text(), path.status());
    Params query;
    query.AddTrue("recursive", options.recursive);
    query.AddTrue("sorted", options.sorted);
    query.AddTrue("quorum", options.quorum || options_.quorum_reads);
    return RoundTrip(context, {"GET", WithQuery(*path, query), "", true},
                     *path == "/v2/keys/" ? Asked::kGetRoot : Asked::kGet,
                     options.deadline);
  }

  absl::StatusOr<Response> Set(const std::string& key, const std::string& value,
                               const SetOptions& options) override {
    const Context context("set", key);
    absl::StatusOr<std::string> path = KeyPath(key);
    if (!path.ok()) return Prefixed(context.text(), path.status());
    Params form;
    // etcd refuses a value with refresh (210), and a directory has none.
    if (!options.refresh && !options.dir) {
      if (absl::Status valid = ValidateValue("value", value); !valid.ok()) {
        return Prefixed(context.text(), valid);
      }
      form.Add("value", value);
    }
    if (absl::Status ttl = AddTtl(options.ttl, form); !ttl.ok()) {
      return Prefixed(context.text(), ttl);
    }
    if (options.prev_exist.has_value()) {
      form.Add("prevExist", *options.prev_exist ? "true" : "false");
    }
    if (options.prev_index.has_value()) {
      form.Add("prevIndex", absl::StrCat(*options.prev_index));
    }
    if (options.prev_value.has_value()) {
      if (absl::Status valid = ValidateValue("prevValue", *options.prev_value);
          !valid.ok()) {
        return Prefixed(context.text(), valid);
      }
      form.Add("prevValue", *options.prev_value);
    }
    form.AddTrue("refresh", options.refresh);
    form.AddTrue("dir", options.dir);
    return RoundTrip(
        context, {"PUT", *path, form.text(), false},
        options.prev_exist == false ? Asked::kCreate : Asked::kWrite,
        options.deadline);
  }

  absl::StatusOr<Response> CreateInOrder(
      const std::string& dir, const std::string& value,
      const CreateInOrderOptions& options) override {
    const Context context("create in order under", dir);
    absl::StatusOr<std::string> path = KeyPath(dir);
    if (!path.ok()) return Prefixed(context.text(), path.status());
    if (absl::Status valid = ValidateValue("value", value); !valid.ok()) {
      return Prefixed(context.text(), valid);
    }
    Params form;
    form.Add("value", value);
    if (absl::Status ttl = AddTtl(options.ttl, form); !ttl.ok()) {
      return Prefixed(context.text(), ttl);
    }
    return RoundTrip(context, {"POST", *path, form.text(), false},
                     Asked::kCreate);
  }

  absl::StatusOr<Response> Delete(const std::string& key,
                                  const DeleteOptions& options) override {
    const Context context("delete", key);
    absl::StatusOr<std::string> path = KeyPath(key);
    if (!path.ok()) return Prefixed(context.text(), path.status());
    Params query;
    if (options.prev_index.has_value()) {
      query.Add("prevIndex", absl::StrCat(*options.prev_index));
    }
    if (options.prev_value.has_value()) {
      if (absl::Status valid = ValidateValue("prevValue", *options.prev_value);
          !valid.ok()) {
        return Prefixed(context.text(), valid);
      }
      query.Add("prevValue", *options.prev_value);
    }
    query.AddTrue("dir", options.dir);
    query.AddTrue("recursive", options.recursive);
    return RoundTrip(context, {"DELETE", WithQuery(*path, query), "", false},
                     Asked::kWrite, options.deadline);
  }

  absl::StatusOr<Response> Watch(const std::string& key,
                                 const WatchOptions& options) override;

  // For reject_old_cluster: OK when the first endpoint that tells its
  // version (GET /version) runs etcd 3.4 or newer.
  absl::Status CheckClusterVersion() {
    const auto [endpoints, start] = endpoints_.Snapshot();
    return etcd_internal::CheckClusterVersion(etcd_internal::ReadClusterVersion(
        transport_, endpoints, start, /*stop=*/nullptr));
  }
  bool reject_old_cluster() const { return options_.reject_old_cluster; }

 private:
  static absl::Status AddTtl(const std::optional<absl::Duration>& ttl,
                             Params& form) {
    if (!ttl.has_value()) return absl::OkStatus();
    absl::StatusOr<int64_t> seconds = TtlSeconds(*ttl);
    if (!seconds.ok()) return seconds.status();
    form.Add("ttl", absl::StrCat(*seconds));
    return absl::OkStatus();
  }

  // Sends a request to the preferred endpoint, moving on to the others
  // while it certainly was not applied (reads: whenever it failed). No
  // attempt waits past `deadline` (on the client's clock) nor longer than
  // the request timeout; a write cut off by either is outcome-unknown.
  absl::StatusOr<Response> RoundTrip(
      const Context& context, const HttpRequest& request, Asked asked,
      absl::Time deadline = absl::InfiniteFuture());
  // THE reading of one attempt's outcome: the caller's result, or the
  // trouble and whether the request may have been applied. Nothing that is
  // not etcd's own well-formed answer becomes a result.
  Judged Judge(const HttpResult& result, const Context& context,
               const std::string& endpoint, Asked asked, uint64_t wait_index);
  // Whether the member serving a watch's long poll at `endpoint` still
  // serves it (see EtcdOptions::watch_check_interval).
  bool WatchedEndpointAlive(const std::string& endpoint,
                            const std::string& path, uint64_t wait_index,
                            const HttpResponse& so_far,
                            const CancelToken& stop);
  // The store index `endpoint` reports for a read of `path` (quorum or
  // not) within `timeout`; nullopt when it gives no etcd answer.
  std::optional<uint64_t> ProbeIndex(const std::string& endpoint,
                                     const std::string& path, bool quorum,
                                     absl::Duration timeout,
                                     const CancelToken& stop);
  absl::Status AuthError(int http_status, const std::optional<EtcdError>& error,
                         const Context& context) const;

  // The members' client URLs, as `endpoint` lists them (/v2/members).
  absl::StatusOr<std::vector<std::string>> AskMembers(
      const std::string& endpoint, const CancelToken& stop);

  const EtcdOptions options_;
  Clock* const clock_;
  etcd_internal::HttpTransport transport_;
  etcd_internal::ClearTextWarning clear_text_;
  etcd_internal::EndpointList endpoints_;
  // Set once a request with the configured credentials succeeded; see
  // AuthError for why etcd's answers need this.
  std::atomic<bool> credentials_worked_{false};
  // Last: stopped before anything it uses goes away.
  std::optional<etcd_internal::MemberSync> sync_;
};

absl::StatusOr<Response> EtcdClient::RoundTrip(const Context& context,
                                               const HttpRequest& request,
                                               Asked asked,
                                               absl::Time deadline) {
  const auto [endpoints, start] = endpoints_.Snapshot();
  absl::Status last;
  for (size_t i = 0; i < endpoints.size(); ++i) {
    const absl::Duration left = deadline - clock_->Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat(
          context.text(), ": deadline passed",
          last.ok() ? "" : absl::StrCat("; last: ", last.message())));
    }
    const std::string& endpoint = endpoints[(start + i) % endpoints.size()];
    HttpResult result =
        transport_.Send(endpoint, request, /*cancel=*/nullptr,
                        std::min(options_.request_timeout, left));
    // A bad URL or TLS file fails the same way everywhere.
    if (absl::IsInvalidArgument(result.status)) {
      return Prefixed(context.text(), result.status);
    }
    Judged judged = Judge(result, context, endpoint, asked, 0);
    if (judged.next == Next::kReturn) {
      endpoints_.StickTo(endpoint);
      return std::move(judged.result);
    }
    endpoints_.MoveOff(endpoint);
    last = judged.result.status();
    if (judged.next == Next::kUnknown && !request.idempotent) {
      // It may have landed: never send it again. A garbled success stays
      // kDataLoss; every other trouble is kUnavailable.
      return MarkOutcomeUnknown(absl::IsDataLoss(last)
                                    ? last
                                    : absl::UnavailableError(last.message()));
    }
  }
  return absl::Status(
      last.code(),
      absl::StrCat(context.text(), ": no endpoint gave a usable answer (",
                   endpoints.size(), " tried); last: ", last.message()));
}

Judged EtcdClient::Judge(const HttpResult& result, const Context& context,
                         const std::string& endpoint, Asked asked,
                         uint64_t wait_index) {
  auto where = [&] { return absl::StrCat(context.text(), " at ", endpoint); };
  if (!result.status.ok()) {
    return {Prefixed(context.text(), result.status),
            result.maybe_sent ? Next::kUnknown : Next::kTryNext};
  }
  const HttpResponse& response = result.response;
  const bool success = response.status >= 200 && response.status < 300;
  std::optional<EtcdError> error;
  if (!success) error = etcd_internal::ParseEtcdError(response.body);
  if (!IsEtcdAnswer(response, error)) {
    return {absl::UnavailableError(absl::StrCat(
                where(), ": HTTP ", response.status,
                " without X-Etcd-Index or etcd's error body: not an answer "
                "from etcd")),
            Next::kUnknown};
  }
  if (success) {
    absl::StatusOr<Response> parsed =
        etcd_internal::ParseKeysResponse(response.body);
    if (!parsed.ok())
      return {Prefixed(where(), parsed.status()), Next::kUnknown};
    parsed->etcd_index = EtcdIndexHeader(response);
    if (absl::Status valid = CheckSuccess(*parsed, asked, wait_index);
        !valid.ok()) {
      return {Prefixed(where(), valid), Next::kUnknown};
    }
    if (!options_.username.empty()) {
      credentials_worked_.store(true, std::memory_order_relaxed);
    }
    return {std::move(parsed), Next::kReturn};
  }
  if (error.has_value() && error->code == kEtcdUnauthorized) {
    return {AuthError(response.status, error, context), Next::kReturn};
  }
  // No errorCode (only the header), a 5xx or a raft error: this member
  // could not serve it; another may.
  if (!error.has_value() || response.status >= 500 ||
      error->code == kEtcdRaftInternal || error->code == kEtcdLeaderElect) {
    return {MapEtcdError(response.status, error, where()),
            error.has_value() && NeverProposed(*error) ? Next::kTryNext
                                                       : Next::kUnknown};
  }
  return {MapEtcdError(response.status, error, context.text()), Next::kReturn};
}

// etcd 3.4's v2 auth answers 401 {"errorCode":110, "cause":"Insufficient
// credentials"} alike for an unknown user, a wrong password and a user
// whose roles do not cover the key, and no endpoint lets a non-root user
// check its own password (/v2/auth/users/<name> is root-only; /v2/members
// and /v2/auth/enable ignore credentials). So the client decides from what
// it knows: no username → unauthenticated; credentials that have already
// worked from this client → the user lacks permission; otherwise the
// credentials are reported as not accepted, and the message says that
// etcd cannot tell this apart from a missing permission.
absl::Status EtcdClient::AuthError(int http_status,
                                   const std::optional<EtcdError>& error,
                                   const Context& context) const {
  if (options_.username.empty()) {
    return MapEtcdError(
        http_status, error,
        absl::StrCat(context.text(),
                     ": etcd requires authentication and no username is set"),
        /*bad_credentials=*/true);
  }
  const std::string user = absl::StrCat("user \"", options_.username, "\"");
  if (credentials_worked_.load(std::memory_order_relaxed)) {
    return MapEtcdError(http_status, error,
                        absl::StrCat(context.text(), ": ", user,
                                     " lacks permission for this key"),
                        /*bad_credentials=*/false);
  }
  return MapEtcdError(
      http_status, error,
      absl::StrCat(context.text(), ": ", user,
                   " was not accepted: wrong username or password (etcd v2 "
                   "answers the same for a missing permission, and these "
                   "credentials have not worked from this client yet)"),
      /*bad_credentials=*/true);
}

absl::StatusOr<Response> EtcdClient::Watch(const std::string& key,
                                           const WatchOptions& options) {
  const Context context("watch", key);
  absl::StatusOr<std::string> path = KeyPath(key);
  if (!path.ok()) return Prefixed(context.text(), path.status());
  uint64_t wait_index = options.wait_index;
  absl::Duration retry_pause = kWatchRetryFirst;
  absl::Status last;  // the last failure, named when the deadline passes
  while (true) {
    if (options.cancel != nullptr && options.cancel->cancelled()) {
      return absl::CancelledError(absl::StrCat(context.text(), ": cancelled"));
    }
    if (clock_->Now() >= options.deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          context.text(), ": deadline passed",
          last.ok() ? ""
                    : absl::StrCat(" (last failure: ", last.message(), ")")));
    }
    Params query;
    query.Add("wait", "true");
    if (wait_index > 0) query.Add("waitIndex", absl::StrCat(wait_index));
    query.AddTrue("recursive", options.recursive);
    const std::string endpoint = [&] {
      auto [endpoints, preferred] = endpoints_.Snapshot();
      return endpoints[preferred];
    }();
    const LivenessCheck check{
        options_.watch_check_interval,
        [&](const HttpResponse& so_far, const CancelToken& stop) {
          return WatchedEndpointAlive(endpoint, *path, wait_index, so_far,
                                      stop);
        }};
    HttpResult result = transport_.LongPoll(
        endpoint, {"GET", WithQuery(*path, query), "", true}, options.deadline,
        *clock_, options.cancel,
        options_.watch_check_interval > absl::ZeroDuration() ? &check
                                                             : nullptr);
    if (absl::IsCancelled(result.status) ||
        absl::IsDeadlineExceeded(result.status) ||
        absl::IsInvalidArgument(result.status)) {
      return Prefixed(context.text(), result.status);
    }
    const HttpResponse& response = result.response;
    // etcd sends its headers as soon as the watch is registered; with no
    // wait index given, its X-Etcd-Index fixes where "from now" began, so
    // a reconnect neither misses nor repeats an event.
    const bool registered = response.status == 200 &&
                            EtcdIndexHeader(response) > 0 &&
                            (!result.status.ok() ||
                             absl::StripAsciiWhitespace(response.body).empty());
    if (wait_index == 0 && registered) {
      wait_index = EtcdIndexHeader(response) + 1;
    }
    if (result.status.ok() && registered) {
      // etcd ended the long poll without an event (its 5-minute watch
      // timeout, or its watcher was dropped on a snapshot restore): nothing
      // happened yet. Ask again, on the next member and after a pause, so
      // that a member that keeps doing this at once neither holds the watch
      // nor is hammered.
      endpoints_.MoveOff(endpoint);
      retry_pause = kWatchRetryFirst;
      SleepUnlessCancelled(
          *clock_, std::min(clock_->Now() + retry_pause, options.deadline),
          options.cancel);
      continue;
    }
    Judged judged = Judge(result, context, endpoint, Asked::kWatch, wait_index);
    if (judged.next == Next::kReturn) {
      endpoints_.StickTo(endpoint);
      return std::move(judged.result);
    }
    endpoints_.MoveOff(endpoint);
    last = judged.result.status();
    SleepUnlessCancelled(
        *clock_, std::min(clock_->Now() + retry_pause, options.deadline),
        options.cancel);
    retry_pause = std::min(retry_pause * 2, kWatchRetryMax);
  }
}

// A long poll's member is alive when it answers a read and has seen at
// least what the cluster has. A quorum read elsewhere tells how far the
// cluster is: if it has not reached the watch's index yet, no event can
// have been missed and the member need not even be asked.
bool EtcdClient::WatchedEndpointAlive(const std::string& endpoint,
                                      const std::string& path,
                                      uint64_t wait_index,
                                      const HttpResponse& so_far,
                                      const CancelToken& stop) {
  uint64_t from = wait_index;
  if (from == 0 && so_far.status == 200 && EtcdIndexHeader(so_far) > 0) {
    from = EtcdIndexHeader(so_far) + 1;
  }
  // etcd registers a watch at once: silence for a whole interval is not
  // etcd's.
  if (from == 0) return false;
  // A live member answers a read in milliseconds; half the interval keeps
  // a frozen one from delaying the verdict past the next check.
  const absl::Duration timeout =
      std::min(options_.request_timeout, options_.watch_check_interval / 2);
  const std::optional<uint64_t> cluster =
      endpoints_.FirstAnswerFromOthers<uint64_t>(
          endpoint, stop, [&](const std::string& other) {
            return ProbeIndex(other, path, /*quorum=*/true, timeout, stop);
          });
  if (cluster.has_value() && *cluster < from) return true;
  const std::optional<uint64_t> own =
      ProbeIndex(endpoint, path, /*quorum=*/false, timeout, stop);
  return own.has_value() && (!cluster.has_value() || *own >= *cluster);
}

std::optional<uint64_t> EtcdClient::ProbeIndex(const std::string& endpoint,
                                               const std::string& path,
                                               bool quorum,
                                               absl::Duration timeout,
                                               const CancelToken& stop) {
  Params query;
  query.AddTrue("quorum", quorum);
  HttpResult result = transport_.Send(
      endpoint, {"GET", WithQuery(path, query), "", true}, &stop, timeout);
  if (!result.status.ok()) return std::nullopt;
  const HttpResponse& response = result.response;
  std::optional<EtcdError> error;
  if (response.status >= 300) {
    error = etcd_internal::ParseEtcdError(response.body);
  }
  if (!IsEtcdAnswer(response, error)) return std::nullopt;
  const uint64_t index =
      error.has_value() ? error->index : EtcdIndexHeader(response);
  if (index == 0) return std::nullopt;
  return index;
}

absl::StatusOr<std::vector<std::string>> EtcdClient::AskMembers(
    const std::string& endpoint, const CancelToken& stop) {
  HttpResult result =
      transport_.Send(endpoint, {"GET", "/v2/members", "", true}, &stop);
  if (!result.status.ok()) return result.status;
  if (result.response.status != 200) {
    return absl::UnavailableError(
        absl::StrCat("GET /v2/members: HTTP ", result.response.status));
  }
  return etcd_internal::ParseMemberClientUrls(result.response.body);
}

}  // namespace

absl::StatusOr<std::unique_ptr<KeysApi>> NewEtcdClient(EtcdOptions options) {
  if (absl::Status ready = etcd_internal::PrepareEtcdOptions(options);
      !ready.ok()) {
    return ready;
  }
  auto client = std::make_unique<EtcdClient>(std::move(options));
  if (client->reject_old_cluster()) {
    if (absl::Status version = client->CheckClusterVersion(); !version.ok()) {
      return version;
    }
  }
  return client;
}

}  // namespace leasehold::registry
