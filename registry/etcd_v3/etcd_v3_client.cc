#include "registry/etcd_v3/etcd_v3_client.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "registry/errors.h"
#include "registry/etcd/credentials.h"
#include "registry/etcd/endpoint_list.h"
#include "registry/etcd/http_transport.h"
#include "registry/etcd_v3/auth_token.h"
#include "registry/etcd_v3/v3_codec.h"

namespace leasehold::registry {
namespace {

using etcd_internal::HttpRequest;
using etcd_internal::HttpResponse;
using etcd_internal::HttpResult;
using etcd_internal::kWatchRetryFirst;
using etcd_internal::kWatchRetryMax;
using etcd_internal::LivenessCheck;
using etcd_internal::SleepUnlessCancelled;
using etcd_v3_internal::Base64;
using etcd_v3_internal::CheckLiveKv;
using etcd_v3_internal::DeleteResult;
using etcd_v3_internal::GatewayError;
using etcd_v3_internal::KeyValue;
using etcd_v3_internal::LeaseResult;
using etcd_v3_internal::PutResult;
using etcd_v3_internal::RangeResult;
using etcd_v3_internal::TxnResult;
using etcd_v3_internal::WatchMessage;

// A refresh or an in-order create whose key changed under it (or whose
// random name was taken) starts over this many times at most.
constexpr int kMaxAttempts = 5;

// gRPC status codes the gateway reports.
enum GrpcCode : int {
  kGrpcInvalidArgument = 3,
  kGrpcDeadlineExceeded = 4,
  kGrpcNotFound = 5,
  kGrpcPermissionDenied = 7,
  kGrpcResourceExhausted = 8,
  kGrpcFailedPrecondition = 9,
  kGrpcOutOfRange = 11,
  kGrpcUnauthenticated = 16,
};

// ---- keys ----------------------------------------------------------------

// "/a//b/" → "/a/b"; the root → "". REQUIRES: ValidateKey(key) is OK.
std::string NormalKey(absl::string_view key) {
  std::string out;
  for (absl::string_view segment :
       absl::StrSplit(key, '/', absl::SkipEmpty())) {
    absl::StrAppend(&out, "/", segment);
  }
  return out;
}

// The key range of every key starting with `prefix`.
std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    if (static_cast<unsigned char>(prefix.back()) < 0xff) {
      prefix.back() = static_cast<char>(prefix.back() + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');  // etcd: every key
}

// The keys above `key`, outermost first: "/a/b/c" → {"/a", "/a/b"}.
std::vector<std::string> Ancestors(const std::string& key) {
  std::vector<std::string> out;
  for (size_t at = key.find('/', 1); at != std::string::npos;
       at = key.find('/', at + 1)) {
    out.push_back(key.substr(0, at));
  }
  return out;
}

// ---- request bodies ------------------------------------------------------

std::string KeyFields(absl::string_view key,
                      std::optional<std::string> range_end = std::nullopt) {
  std::string out = absl::StrCat("\"key\":\"", Base64(key), "\"");
  if (range_end.has_value()) {
    absl::StrAppend(&out, ",\"range_end\":\"", Base64(*range_end), "\"");
  }
  return out;
}

std::string Compare(const std::string& key_fields, absl::string_view target,
                    absl::string_view result, absl::string_view field,
                    absl::string_view value) {
  return absl::StrCat("{", key_fields, ",\"target\":\"", target,
                      "\",\"result\":\"", result, "\",\"", field, "\":\"",
                      value, "\"}");
}

std::string RangeBody(const std::string& key_fields, bool keys_only = false,
                      int64_t limit = 0) {
  std::string out = absl::StrCat("{", key_fields);
  if (keys_only) absl::StrAppend(&out, ",\"keys_only\":true");
  if (limit > 0) absl::StrAppend(&out, ",\"limit\":\"", limit, "\"");
  out.push_back('}');
  return out;
}
std::string RangeOp(const std::string& key_fields, bool keys_only = false,
                    int64_t limit = 0) {
  return absl::StrCat(
      "{\"request_range\":", RangeBody(key_fields, keys_only, limit), "}");
}

std::string Txn(const std::vector<std::string>& compares,
                const std::vector<std::string>& success,
                const std::vector<std::string>& failure) {
  return absl::StrCat("{\"compare\":[", absl::StrJoin(compares, ","),
                      "],\"success\":[", absl::StrJoin(success, ","),
                      "],\"failure\":[", absl::StrJoin(failure, ","), "]}");
}

// ---- what the answers mean ----------------------------------------------

absl::Status Prefixed(absl::string_view prefix, const absl::Status& status) {
  return WithContext(status, prefix);
}

absl::Status V2Error(int code, absl::string_view message, std::string cause,
                     int64_t index, absl::string_view context) {
  return MapEtcdError(0,
                      EtcdError{code, std::string(message), std::move(cause),
                                static_cast<uint64_t>(index)},
                      context);
}

// The key of a request checked (ValidateKey) and in normal form, with the
// context its errors name the request by: `verb "key"`.
struct KeyRequest {
  std::string context;
  std::string key;
};

absl::StatusOr<KeyRequest> CheckKey(absl::string_view verb,
                                    const std::string& key) {
  KeyRequest request;
  request.context = absl::StrCat(verb, " \"", absl::CHexEscape(key), "\"");
  if (absl::Status valid = ValidateKey(key); !valid.ok()) {
    return Prefixed(request.context, valid);
  }
  request.key = NormalKey(key);
  return request;
}

// etcd's errors that say a request was never proposed to raft, so that not
// even a write can have been applied: it may go to another member at once.
bool NeverProposed(const GatewayError& error) {
  for (const absl::string_view cause :
       {"no leader", "not capable", "too many requests", "raft: stopped",
        "proposal dropped"}) {
    if (absl::StrContains(error.message, cause)) return true;
  }
  return false;
}

enum class Next { kReturn, kTryNext, kUnknown };

// The `what` of a gateway error, as a status (never an etcd v2 error: the
// callers build those themselves from what they asked).
absl::Status GatewayStatus(int http_status, const GatewayError& error,
                           absl::string_view where) {
  const std::string message =
      absl::StrCat(where, ": HTTP ", http_status, ", gRPC code ", error.code,
                   ": ", error.message);
  switch (error.code) {
    case kGrpcInvalidArgument:
      return absl::InvalidArgumentError(message);
    case kGrpcNotFound:
      return absl::NotFoundError(message);
    case kGrpcPermissionDenied:
      return absl::PermissionDeniedError(message);
    case kGrpcUnauthenticated:
      return absl::UnauthenticatedError(message);
    case kGrpcFailedPrecondition:
      return absl::FailedPreconditionError(message);
    case kGrpcOutOfRange:
      return absl::OutOfRangeError(message);
    case kGrpcDeadlineExceeded:
      return absl::DeadlineExceededError(message);
    default:
      return absl::UnavailableError(message);
  }
}

// etcd's refusals of a request's token that a new token cures. Each says
// the request was not applied: etcd checks the token before it proposes a
// request to raft ("invalid auth token": expired, or dropped by a restart
// or an auth change; "user name is empty": no token), and a write whose
// token predates an auth change fails at apply without effect ("revision
// of auth store is old"). So even a write may be sent again with a new
// token, as etcd's own client (clientv3's retry interceptor) does.
bool TokenRejected(const GatewayError& error) {
  if (error.code == kGrpcUnauthenticated) return true;
  for (const absl::string_view cause :
       {"invalid auth token", "user name is empty",
        "revision of auth store is old"}) {
    if (absl::StrContains(error.message, cause)) return true;
  }
  return false;
}

Node FileNode(const KeyValue& kv) {
  Node node;
  node.key = kv.key;
  node.value = kv.value;
  node.created_index = static_cast<uint64_t>(kv.create_revision);
  node.modified_index = static_cast<uint64_t>(kv.mod_revision);
  return node;
}

// The cause of etcd's 101: "[prevValue != value] [prevIndex != index]".
std::optional<std::string> GuardMismatch(
    const std::optional<uint64_t>& prev_index,
    const std::optional<std::string>& prev_value, const KeyValue& kv) {
  const bool index_match = !prev_index.has_value() ||
                           static_cast<int64_t>(*prev_index) == kv.mod_revision;
  const bool value_match = !prev_value.has_value() || *prev_value == kv.value;
  if (index_match && value_match) return std::nullopt;
  std::vector<std::string> parts;
  if (!value_match) {
    parts.push_back(absl::StrCat("[", *prev_value, " != ", kv.value, "]"));
  }
  if (!index_match) {
    parts.push_back(
        absl::StrCat("[", *prev_index, " != ", kv.mod_revision, "]"));
  }
  return absl::StrJoin(parts, " ");
}

// etcd v2's checks of a prevValue guard: not empty (201), valid UTF-8.
absl::Status CheckPrevValue(const std::optional<std::string>& prev_value,
                            absl::string_view context) {
  if (!prev_value.has_value()) return absl::OkStatus();
  if (prev_value->empty()) {
    return V2Error(kEtcdPrevValueRequired, "PrevValue is Required in POST form",
                   "\"prevValue\" cannot be empty", 0, context);
  }
  absl::Status valid = ValidateValue("prevValue", *prev_value);
  return valid.ok() ? valid : Prefixed(context, valid);
}

// The v2 action of a successful set.
const char* SetAction(const SetOptions& options) {
  if (options.prev_exist == false) return "create";
  if (options.prev_index.has_value() || options.prev_value.has_value()) {
    return "compareAndSwap";
  }
  if (options.prev_exist == true) return "update";
  return "set";
}

// The compares that keep v2's tree: nothing above `key` is a key (else
// 104), nothing is below it (else 102).
void AddTreeCompares(const std::string& key, std::vector<std::string>& cmp) {
  for (const std::string& above : Ancestors(key)) {
    cmp.push_back(
        Compare(KeyFields(above), "VERSION", "EQUAL", "version", "0"));
  }
  cmp.push_back(Compare(KeyFields(key + "/", PrefixEnd(key + "/")), "VERSION",
                        "EQUAL", "version", "0"));
}

// The reads that tell why those compares failed, in the failure branch:
// ranges[0] the key, [1] one key below it, [2..] each ancestor.
void AddTreeReads(const std::string& key, std::vector<std::string>& ops) {
  ops.push_back(RangeOp(KeyFields(key)));
  ops.push_back(RangeOp(KeyFields(key + "/", PrefixEnd(key + "/")),
                        /*keys_only=*/true, /*limit=*/1));
  for (const std::string& above : Ancestors(key)) {
    ops.push_back(RangeOp(KeyFields(above), /*keys_only=*/true));
  }
}

const RangeResult* RangeAt(const TxnResult& txn, size_t i) {
  if (i >= txn.responses.size()) return nullptr;
  return std::get_if<RangeResult>(&txn.responses[i]);
}

class EtcdV3Client final : public KeysApi {
 public:
  explicit EtcdV3Client(EtcdOptions options)
      : options_(std::move(options)),
        clock_(options_.clock != nullptr ? options_.clock : RealClock()),
        transport_(TransportOptions(options_)),
        clear_text_(options_, etcd_internal::WarnerFor(options_),
                    "etcd v3 authentication"),
        endpoints_(options_.endpoints),
        names_(std::random_device{}()) {
    clear_text_.Check(options_.endpoints);
    if (!options_.username.empty()) {
      auth_.emplace(*clock_, [this](absl::Time deadline) {
        return Authenticate(deadline);
      });
    }
    if (options_.auto_sync_interval > absl::ZeroDuration()) {
      sync_.emplace(endpoints_, *clock_, options_.auto_sync_interval,
                    clear_text_,
                    [this](const std::string& at, const CancelToken& stop) {
                      return AskMembers(at, stop);
                    });
    }
  }

  absl::StatusOr<Response> Get(const std::string& key,
                               const GetOptions& options) override;
  absl::StatusOr<Response> Set(const std::string& key, const std::string& value,
                               const SetOptions& options) override;
  absl::StatusOr<Response> CreateInOrder(
      const std::string& dir, const std::string& value,
      const CreateInOrderOptions& options) override;
  absl::StatusOr<Response> Delete(const std::string& key,
                                  const DeleteOptions& options) override;
  absl::StatusOr<Response> Watch(const std::string& key,
                                 const WatchOptions& options) override;

  // GET /version of the first endpoint that answers.
  absl::StatusOr<etcd_internal::VersionAt> ReadClusterVersion() {
    const auto [endpoints, start] = endpoints_.Snapshot();
    return etcd_internal::ReadClusterVersion(transport_, endpoints, start,
                                             /*stop=*/nullptr);
  }

 private:
  // v3 auth is a token in the Authorization header, never HTTP basic auth
  // (the gateway would take "Basic …" for a token, and reject it).
  static etcd_internal::HttpTransportOptions TransportOptions(
      const EtcdOptions& options) {
    etcd_internal::HttpTransportOptions out =
        etcd_internal::TransportOptions(options);
    out.username.clear();
    out.password.clear();
    return out;
  }

  // Sends a POST of `body` to `path` on the preferred endpoint, moving on
  // while it certainly was not applied (`idempotent`: whenever it failed),
  // and parses a success with `parse` (which checks it). A write whose
  // answer is lost or garbled after it may have arrived fails with
  // IsOutcomeUnknown. With `with_token` (all but authentication itself) the
  // request carries the auth token, see SendWithToken.
  template <typename T, typename Parse>
  absl::StatusOr<T> Call(absl::string_view context, absl::string_view path,
                         const std::string& body, bool idempotent,
                         absl::Time deadline, Parse parse,
                         bool with_token = true);
  // Sends `request` to `endpoint` with the current auth token (none
  // without a username); when etcd rejects that token, authenticates once
  // more and sends it once more (see TokenRejected for why that is safe).
  // The authentication counts against `deadline` like the request; its
  // failure is the result's status (maybe_sent false: nothing was sent).
  HttpResult SendWithToken(const std::string& endpoint, HttpRequest& request,
                           const CancelToken* cancel, absl::Duration timeout,
                           absl::Time deadline);
  // The token for a request that must be done by `deadline`: "" without a
  // username.
  absl::StatusOr<std::string> Token(absl::Time deadline);
  // /v3/auth/authenticate with the configured user: a new token, "" when
  // the cluster has auth switched off, kUnauthenticated naming the user
  // (never the password) when etcd refuses the password.
  absl::StatusOr<std::string> Authenticate(absl::Time deadline);
  // The status of an answer in which etcd refused the request's
  // credentials or their permissions, naming the user; nullopt for any
  // other error.
  std::optional<absl::Status> AuthRefusal(int http_status,
                                          const GatewayError& error,
                                          absl::string_view where) const;
  // The members' client URLs, as `endpoint` lists them
  // (/v3/cluster/member/list), for auto-sync.
  absl::StatusOr<std::vector<std::string>> AskMembers(
      const std::string& endpoint, const CancelToken& stop);
  absl::StatusOr<TxnResult> CallTxn(absl::string_view context,
                                    const std::string& body, bool write,
                                    absl::Time deadline);

  // One attempt's answer judged: the parsed success, or the error and what
  // the caller may do next.
  template <typename T, typename Parse>
  std::pair<absl::StatusOr<T>, Next> Judge(const HttpResult& result,
                                           absl::string_view where,
                                           Parse& parse);

  // The TTL of each leased kv, by lease id: whole seconds left, rounded up
  // as etcd v2 does. A lease gone meanwhile reads 0 left. One request per
  // distinct lease, several in flight at once.
  absl::Status FillTtls(absl::string_view context, absl::Time deadline,
                        const std::vector<KeyValue>& kvs,
                        std::map<int64_t, int64_t>& ttls);
  // POSTs {"ID": lease} to `path` and parses the answer with `parse`; an
  // answer about another lease is malformed (kDataLoss).
  absl::StatusOr<LeaseResult> AboutLease(
      absl::string_view context, const char* path, int64_t lease,
      absl::Time deadline,
      absl::StatusOr<LeaseResult> (*parse)(absl::string_view));
  absl::StatusOr<int64_t> TimeToLive(absl::string_view context, int64_t lease,
                                     absl::Time deadline);
  absl::StatusOr<LeaseResult> Grant(absl::string_view context, int64_t seconds,
                                    absl::Time deadline);
  void Revoke(int64_t lease, absl::Time deadline);
  // After a write that replaced or deleted `prev`, the key `prev` names:
  // revokes prev's lease when this client granted it for that write (so
  // no other key carries it) and the key no longer does. A release then
  // leaves no lease behind to expire later: the same one raft write, but
  // at once, and no leases pile up in etcd. Call before RememberLease
  // records the new write.
  void RevokeSuperseded(const KeyValue& prev, int64_t now_lease,
                        absl::Time deadline);
  // Resets `lease` to its granted TTL; the answer's ttl is 0 when the lease
  // is gone.
  absl::StatusOr<LeaseResult> KeepAlive(absl::string_view context,
                                        int64_t lease, absl::Time deadline);

  // A renewal by keep-alive when the key's lease at `prev_index` is known
  // from an earlier write of this client: the keep-alive, then a read
  // guarded by the compares (two requests, no raft write). nullopt when
  // that does not settle it (the full refresh then reads and judges).
  std::optional<absl::StatusOr<Response>> QuickRenew(const std::string& key,
                                                     const std::string& context,
                                                     const SetOptions& options,
                                                     int64_t seconds);
  // The lease a key carried at a revision, as this client wrote it: a
  // revision names one write, so an entry never goes stale, it is only
  // superseded.
  void RememberLease(const std::string& key, int64_t revision, int64_t lease)
      ABSL_LOCKS_EXCLUDED(mu_);
  std::optional<int64_t> LeaseAt(const std::string& key, int64_t revision)
      ABSL_LOCKS_EXCLUDED(mu_);

  absl::StatusOr<Response> Refresh(const std::string& key,
                                   const std::string& context,
                                   const SetOptions& options, int64_t seconds);
  // v2's answer to a set whose compares failed.
  absl::Status SetFailure(const std::string& key, const SetOptions& options,
                          const TxnResult& txn, const std::string& context);

  // Events a watch received beyond the one it returned, for the next call
  // on the same key that asks from where it left off: every new watch
  // stream that starts in the past waits for etcd's catch-up loop (up to
  // 100 ms), so a caller that follows a burst of events one by one would
  // pay that for each. `from`: the wait index of the watch that received
  // them; `events`: every wanted event from `from` up to the last one.
  struct EventBatch {
    std::string key;
    bool recursive = false;
    int64_t from = 0;
    std::vector<Response> events;
  };
  void KeepEvents(const std::string& key, bool recursive, int64_t from,
                  std::vector<Response> events) ABSL_LOCKS_EXCLUDED(mu_);
  // The first kept event at or after `wait_index` when the kept events
  // cover it (from <= wait_index <= the last one's index).
  std::optional<Response> CachedEvent(const std::string& key, bool recursive,
                                      int64_t wait_index)
      ABSL_LOCKS_EXCLUDED(mu_);

  // The revision `endpoint` answers a read of `key` at (the key itself,
  // which the user may read, is not counted: any read tells the revision).
  std::optional<int64_t> ProbeRevision(const std::string& endpoint,
                                       const std::string& key,
                                       bool serializable,
                                       absl::Duration timeout,
                                       const CancelToken& stop);
  bool WatchedEndpointAlive(const std::string& endpoint, const std::string& key,
                            int64_t from, const CancelToken& stop);

  const EtcdOptions options_;
  Clock* const clock_;
  etcd_internal::HttpTransport transport_;
  etcd_internal::ClearTextWarning clear_text_;
  etcd_internal::EndpointList endpoints_;
  // With a username: the token its requests carry.
  std::optional<etcd_v3_internal::AuthToken> auth_;
  // etcd's minimum lease TTL, as far as grants have shown it (0: unknown).
  std::atomic<int64_t> min_ttl_{0};

  mutable std::mutex mu_;
  // In-order key names. Seeded from std::random_device like the library's
  // other generators, not from abseil's shared pool, whose lazy seeding
  // ThreadSanitizer cannot see guarded when clients open from many threads.
  std::mt19937_64 names_ ABSL_GUARDED_BY(mu_);
  // A few recent batches, the newest last.
  std::vector<EventBatch> batches_ ABSL_GUARDED_BY(mu_);
  // key → (revision, lease) of this client's last write of it.
  std::map<std::string, std::pair<int64_t, int64_t>> leases_
      ABSL_GUARDED_BY(mu_);

  // Last: stopped before anything it uses goes away.
  std::optional<etcd_internal::MemberSync> sync_;
};

// Keys whose lease a client remembers at most; past it the memory starts
// over (a renewal then costs one read more, once).
constexpr size_t kMaxRememberedLeases = 100000;

void EtcdV3Client::RememberLease(const std::string& key, int64_t revision,
                                 int64_t lease) {
  std::lock_guard<std::mutex> lock(mu_);
  if (lease == 0) {
    leases_.erase(key);
    return;
  }
  if (leases_.size() >= kMaxRememberedLeases) leases_.clear();
  leases_[key] = {revision, lease};
}

std::optional<int64_t> EtcdV3Client::LeaseAt(const std::string& key,
                                             int64_t revision) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = leases_.find(key);
  if (it == leases_.end() || it->second.first != revision) return std::nullopt;
  return it->second.second;
}

// Batches kept at once: one per watched key that is followed event by
// event (the lease layer's watch hub follows one).
constexpr size_t kMaxEventBatches = 8;

void EtcdV3Client::KeepEvents(const std::string& key, bool recursive,
                              int64_t from, std::vector<Response> events) {
  if (events.size() < 2 || from <= 0) return;  // nothing beyond the answer
  std::lock_guard<std::mutex> lock(mu_);
  batches_.erase(std::remove_if(batches_.begin(), batches_.end(),
                                [&](const EventBatch& b) {
                                  return b.key == key &&
                                         b.recursive == recursive;
                                }),
                 batches_.end());
  if (batches_.size() >= kMaxEventBatches) batches_.erase(batches_.begin());
  batches_.push_back(EventBatch{key, recursive, from, std::move(events)});
}

std::optional<Response> EtcdV3Client::CachedEvent(const std::string& key,
                                                  bool recursive,
                                                  int64_t wait_index) {
  if (wait_index <= 0) return std::nullopt;  // "from now" is never history
  std::lock_guard<std::mutex> lock(mu_);
  for (const EventBatch& batch : batches_) {
    if (batch.key != key || batch.recursive != recursive ||
        wait_index < batch.from ||
        static_cast<uint64_t>(wait_index) >
            batch.events.back().node.modified_index) {
      continue;
    }
    for (const Response& event : batch.events) {
      if (event.node.modified_index >= static_cast<uint64_t>(wait_index)) {
        return event;
      }
    }
  }
  return std::nullopt;
}

template <typename T, typename Parse>
std::pair<absl::StatusOr<T>, Next> EtcdV3Client::Judge(const HttpResult& result,
                                                       absl::string_view where,
                                                       Parse& parse) {
  if (!result.status.ok()) {
    return {Prefixed(where, result.status),
            result.maybe_sent ? Next::kUnknown : Next::kTryNext};
  }
  const HttpResponse& response = result.response;
  if (response.status >= 200 && response.status < 300) {
    absl::StatusOr<T> parsed = parse(response.body);
    if (!parsed.ok()) return {Prefixed(where, parsed.status()), Next::kUnknown};
    return {std::move(parsed), Next::kReturn};
  }
  std::optional<GatewayError> error =
      etcd_v3_internal::ParseGatewayError(response.body);
  if (!error.has_value()) {
    return {absl::UnavailableError(absl::StrCat(
                where, ": HTTP ", response.status,
                " without etcd's error body: not an answer from etcd")),
            Next::kUnknown};
  }
  if (std::optional<absl::Status> refused =
          AuthRefusal(response.status, *error, where)) {
    return {*std::move(refused), Next::kReturn};
  }
  absl::Status status = GatewayStatus(response.status, *error, where);
  if (absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status) ||
      error->code == kGrpcResourceExhausted) {
    return {absl::UnavailableError(status.message()),
            NeverProposed(*error) ? Next::kTryNext : Next::kUnknown};
  }
  return {status, Next::kReturn};
}

template <typename T, typename Parse>
absl::StatusOr<T> EtcdV3Client::Call(absl::string_view context,
                                     absl::string_view path,
                                     const std::string& body, bool idempotent,
                                     absl::Time deadline, Parse parse,
                                     bool with_token) {
  const auto [endpoints, start] = endpoints_.Snapshot();
  HttpRequest request;
  request.method = "POST";
  request.target = std::string(path);
  request.body = body;
  request.idempotent = idempotent;
  absl::Status last;
  for (size_t i = 0; i < endpoints.size(); ++i) {
    const absl::Duration left = deadline - clock_->Now();
    if (left <= absl::ZeroDuration()) {
      absl::Status passed = absl::DeadlineExceededError(absl::StrCat(
          context, ": deadline passed",
          last.ok() ? "" : absl::StrCat("; last: ", last.message())));
      return i > 0 && !idempotent ? MarkOutcomeUnknown(passed) : passed;
    }
    const std::string& endpoint = endpoints[(start + i) % endpoints.size()];
    const absl::Duration timeout = std::min(options_.request_timeout, left);
    HttpResult result =
        with_token
            ? SendWithToken(endpoint, request, /*cancel=*/nullptr, timeout,
                            deadline)
            : transport_.Send(endpoint, request, /*cancel=*/nullptr, timeout);
    // A bad URL or TLS file fails the same way everywhere, and so does a
    // refused password.
    if (absl::IsInvalidArgument(result.status) ||
        absl::IsUnauthenticated(result.status)) {
      return Prefixed(context, result.status);
    }
    auto [judged, next] =
        Judge<T>(result, absl::StrCat(context, " at ", endpoint), parse);
    if (next == Next::kReturn) {
      endpoints_.StickTo(endpoint);
      return std::move(judged);
    }
    endpoints_.MoveOff(endpoint);
    last = judged.status();
    if (next == Next::kUnknown && !idempotent) {
      return MarkOutcomeUnknown(absl::IsDataLoss(last)
                                    ? last
                                    : absl::UnavailableError(last.message()));
    }
  }
  return absl::Status(
      last.code(),
      absl::StrCat(context, ": no endpoint gave a usable answer (",
                   endpoints.size(), " tried); last: ", last.message()));
}

absl::StatusOr<std::string> EtcdV3Client::Token(absl::Time deadline) {
  if (!auth_.has_value()) return std::string();
  return auth_->Get(deadline);
}

HttpResult EtcdV3Client::SendWithToken(const std::string& endpoint,
                                       HttpRequest& request,
                                       const CancelToken* cancel,
                                       absl::Duration timeout,
                                       absl::Time deadline) {
  const absl::Time until = std::min(deadline, clock_->Now() + timeout);
  absl::StatusOr<std::string> token = Token(until);
  for (int attempt = 0;; ++attempt) {
    if (!token.ok()) {
      HttpResult failed;
      failed.status = token.status();
      return failed;
    }
    const absl::Duration left = until - clock_->Now();
    if (left <= absl::ZeroDuration()) {
      HttpResult late;
      late.status = absl::DeadlineExceededError(
          "deadline passed while authenticating with etcd");
      return late;
    }
    request.authorization = *token;
    HttpResult result = transport_.Send(endpoint, request, cancel, left);
    if (attempt > 0 || !auth_.has_value() || !result.status.ok() ||
        result.response.status < 400) {
      return result;
    }
    std::optional<GatewayError> error =
        etcd_v3_internal::ParseGatewayError(result.response.body);
    if (!error.has_value() || !TokenRejected(*error)) return result;
    token = auth_->Renew(*token, until);
  }
}

absl::StatusOr<std::string> EtcdV3Client::Authenticate(absl::Time deadline) {
  const std::string user = absl::StrCat("user \"", options_.username, "\"");
  absl::StatusOr<std::string> token = Call<std::string>(
      absl::StrCat("authenticate ", user), "/v3/auth/authenticate",
      etcd_v3_internal::AuthenticateBody(options_.username, options_.password),
      /*idempotent=*/true, deadline,
      [](absl::string_view b) {
        return etcd_v3_internal::ParseAuthenticate(b);
      },
      /*with_token=*/false);
  if (token.ok()) return token;
  const absl::string_view message = token.status().message();
  // As etcd's own client: a user given to a cluster without auth is no
  // error; its requests simply carry no token.
  if (absl::StrContains(message, "authentication is not enabled")) {
    return std::string();
  }
  if (absl::StrContains(message, "authentication failed")) {
    return absl::UnauthenticatedError(absl::StrCat(
        user, " was not accepted: wrong username or password (", message, ")"));
  }
  return token.status();
}

std::optional<absl::Status> EtcdV3Client::AuthRefusal(
    int http_status, const GatewayError& error, absl::string_view where) const {
  const std::string etcd_says = absl::StrCat(
      "HTTP ", http_status, ", gRPC code ", error.code, ": ", error.message);
  if (error.code == kGrpcPermissionDenied) {
    return absl::PermissionDeniedError(
        absl::StrCat(where, ": ",
                     options_.username.empty()
                         ? std::string("permission denied")
                         : absl::StrCat("user \"", options_.username,
                                        "\" lacks permission for this key "
                                        "(a v3 role must also let it read "
                                        "the key's parents)"),
                     " (", etcd_says, ")"));
  }
  if (!TokenRejected(error)) return std::nullopt;
  if (options_.username.empty()) {
    return absl::UnauthenticatedError(absl::StrCat(
        where, ": etcd requires authentication and no username is set (",
        etcd_says, ")"));
  }
  return absl::UnauthenticatedError(absl::StrCat(
      where, ": etcd rejected the token of user \"", options_.username,
      "\" even after a new authentication (", etcd_says, ")"));
}

absl::StatusOr<std::vector<std::string>> EtcdV3Client::AskMembers(
    const std::string& endpoint, const CancelToken& stop) {
  HttpRequest request;
  request.method = "POST";
  request.target = "/v3/cluster/member/list";
  request.body = "{}";
  // etcd lists its members to any client, so the sync never authenticates
  // by itself; it carries the token the requests got, if any.
  if (auth_.has_value()) request.authorization = auth_->Current().value_or("");
  HttpResult result = transport_.Send(endpoint, request, &stop);
  if (!result.status.ok()) return result.status;
  if (result.response.status != 200) {
    return absl::UnavailableError(
        absl::StrCat("/v3/cluster/member/list: HTTP ", result.response.status));
  }
  return etcd_v3_internal::ParseMemberList(result.response.body);
}

absl::StatusOr<TxnResult> EtcdV3Client::CallTxn(absl::string_view context,
                                                const std::string& body,
                                                bool write,
                                                absl::Time deadline) {
  return Call<TxnResult>(
      context, "/v3/kv/txn", body, !write, deadline,
      [](absl::string_view b) { return etcd_v3_internal::ParseTxn(b); });
}

absl::StatusOr<LeaseResult> EtcdV3Client::Grant(absl::string_view context,
                                                int64_t seconds,
                                                absl::Time deadline) {
  // A grant re-sent elsewhere leaves at most an unused lease, which expires.
  absl::StatusOr<LeaseResult> granted = Call<LeaseResult>(
      context, "/v3/lease/grant", absl::StrCat("{\"TTL\":\"", seconds, "\"}"),
      /*idempotent=*/true, deadline,
      [](absl::string_view b) { return etcd_v3_internal::ParseLeaseGrant(b); });
  // etcd raises a TTL below its minimum to that minimum: remember it, so
  // that a refresh asking for less knows such a lease is as asked.
  if (granted.ok() && granted->ttl > seconds) {
    int64_t known = min_ttl_.load();
    while (granted->ttl > known &&
           !min_ttl_.compare_exchange_weak(known, granted->ttl)) {
    }
  }
  return granted;
}

void EtcdV3Client::Revoke(int64_t lease, absl::Time deadline) {
  // Best effort: a lease nobody revokes expires at its TTL all the same.
  Call<LeaseResult>("revoke lease", "/v3/lease/revoke",
                    absl::StrCat("{\"ID\":\"", lease, "\"}"),
                    /*idempotent=*/true, deadline,
                    [](absl::string_view) -> absl::StatusOr<LeaseResult> {
                      return LeaseResult{};
                    })
      .IgnoreError();
}

void EtcdV3Client::RevokeSuperseded(const KeyValue& prev, int64_t now_lease,
                                    absl::Time deadline) {
  if (prev.lease == 0 || prev.lease == now_lease) return;
  if (LeaseAt(prev.key, prev.mod_revision) != prev.lease) return;
  Revoke(prev.lease, deadline);
}

absl::StatusOr<LeaseResult> EtcdV3Client::AboutLease(
    absl::string_view context, const char* path, int64_t lease,
    absl::Time deadline,
    absl::StatusOr<LeaseResult> (*parse)(absl::string_view)) {
  return Call<LeaseResult>(
      context, path, absl::StrCat("{\"ID\":\"", lease, "\"}"),
      /*idempotent=*/true, deadline,
      [&](absl::string_view b) -> absl::StatusOr<LeaseResult> {
        absl::StatusOr<LeaseResult> r = parse(b);
        if (r.ok() && r->id != lease) {
          return absl::DataLossError(
              absl::StrCat("malformed etcd v3 response: lease ", r->id,
                           " in the answer about lease ", lease));
        }
        return r;
      });
}

absl::StatusOr<int64_t> EtcdV3Client::TimeToLive(absl::string_view context,
                                                 int64_t lease,
                                                 absl::Time deadline) {
  absl::StatusOr<LeaseResult> read =
      AboutLease(context, "/v3/lease/timetolive", lease, deadline,
                 etcd_v3_internal::ParseLeaseTimeToLive);
  if (!read.ok()) return read.status();
  // etcd v3 truncates the seconds left, etcd v2 rounds them up (what is
  // left of a 2 s TTL a moment later reads 1 on v3, 2 on v2): report them
  // as v2 does.
  return read->ttl < 0 ? 0 : std::min(read->ttl + 1, read->granted_ttl);
}

// TTL reads of one listing in flight at once: a directory of many leased
// keys costs a few round trips, not one per key.
constexpr size_t kMaxTtlReadsInFlight = 8;

absl::Status EtcdV3Client::FillTtls(absl::string_view context,
                                    absl::Time deadline,
                                    const std::vector<KeyValue>& kvs,
                                    std::map<int64_t, int64_t>& ttls) {
  std::vector<int64_t> leases;
  for (const KeyValue& kv : kvs) {
    if (kv.lease != 0 && ttls.emplace(kv.lease, 0).second) {
      leases.push_back(kv.lease);
    }
  }
  std::vector<int64_t> left(leases.size(), 0);
  std::atomic<size_t> next{0};
  std::mutex mu;
  absl::Status failure;  // the first read that failed; the rest then stop
  std::atomic<bool> failed{false};
  const auto read = [&] {
    for (size_t i = next++; i < leases.size() && !failed.load(); i = next++) {
      absl::StatusOr<int64_t> ttl = TimeToLive(context, leases[i], deadline);
      if (ttl.ok()) {
        left[i] = *ttl;
        continue;
      }
      std::lock_guard<std::mutex> lock(mu);
      if (failure.ok()) failure = ttl.status();
      failed.store(true);
    }
  };
  std::vector<std::thread> helpers;
  for (size_t i = 1; i < std::min(leases.size(), kMaxTtlReadsInFlight); ++i) {
    helpers.emplace_back(read);
  }
  read();
  for (std::thread& helper : helpers) helper.join();
  if (!failure.ok()) return failure;
  for (size_t i = 0; i < leases.size(); ++i) ttls[leases[i]] = left[i];
  return absl::OkStatus();
}

// ---- Get -----------------------------------------------------------------

// The directory `dir` (a normal key, "" for the root) of the keys `kvs`
// below it: its children, and theirs with `recursive`. Keys that v2 cannot
// name (an empty segment) are left out, and so are hidden ones ("_…") from
// listings, as etcd v2 does.
Node DirNode(const std::string& dir, const std::vector<const KeyValue*>& kvs,
             bool recursive, const std::map<int64_t, int64_t>& ttls,
             absl::Time now, bool top = true) {
  Node node;
  node.key = dir;
  node.dir = true;
  std::map<std::string, std::vector<const KeyValue*>> below;
  std::map<std::string, const KeyValue*> files;
  uint64_t oldest = 0;
  for (const KeyValue* kv : kvs) {
    const uint64_t created = static_cast<uint64_t>(kv->create_revision);
    if (oldest == 0 || created < oldest) oldest = created;
    absl::string_view rest = absl::string_view(kv->key).substr(dir.size() + 1);
    const size_t slash = rest.find('/');
    const std::string name(rest.substr(0, slash));
    if (name.empty() || name[0] == '_') continue;
    if (slash == absl::string_view::npos) {
      files[name] = kv;
    } else if (!absl::StrContains(rest.substr(slash), "//") &&
               !absl::EndsWith(rest, "/")) {
      below[name].push_back(kv);
    }
  }
  if (!top || !dir.empty()) node.created_index = node.modified_index = oldest;
  std::map<std::string, Node> children;
  for (const auto& [name, kv] : files) {
    Node file = FileNode(*kv);
    if (auto it = ttls.find(kv->lease); kv->lease != 0 && it != ttls.end()) {
      file.ttl = it->second;
      file.expiration = now + absl::Seconds(it->second);
    }
    children[name] = std::move(file);
  }
  for (const auto& [name, sub] : below) {
    if (children.count(name) > 0) continue;  // a key with keys below it
    Node child =
        DirNode(absl::StrCat(dir, "/", name), sub, recursive, ttls, now, false);
    if (!recursive) child.nodes.clear();
    children[name] = std::move(child);
  }
  for (auto& [name, child] : children) node.nodes.push_back(std::move(child));
  return node;
}

absl::StatusOr<Response> EtcdV3Client::Get(const std::string& key,
                                           const GetOptions& options) {
  absl::StatusOr<KeyRequest> request = CheckKey("get", key);
  if (!request.ok()) return request.status();
  const std::string& context = request->context;
  const std::string& k = request->key;
  const std::vector<std::string> ancestors = Ancestors(k);
  // One linearizable read: the key, everything below it, and whether each
  // ancestor is a key or has keys below it (for v2's 100 and 104).
  std::vector<std::string> ops;
  if (!k.empty()) ops.push_back(RangeOp(KeyFields(k)));
  ops.push_back(RangeOp(KeyFields(k + "/", PrefixEnd(k + "/"))));
  for (const std::string& above : ancestors) {
    ops.push_back(RangeOp(KeyFields(above), /*keys_only=*/true));
    ops.push_back(RangeOp(KeyFields(above + "/", PrefixEnd(above + "/")),
                          /*keys_only=*/true, /*limit=*/1));
  }
  const size_t first_below = k.empty() ? 0 : 1;
  absl::StatusOr<TxnResult> txn = Call<TxnResult>(
      context, "/v3/kv/txn", Txn({}, ops, {}), /*idempotent=*/true,
      options.deadline, [&](absl::string_view b) -> absl::StatusOr<TxnResult> {
        absl::StatusOr<TxnResult> r = etcd_v3_internal::ParseTxn(b);
        if (!r.ok()) return r;
        if (!r->succeeded || r->responses.size() != ops.size()) {
          return absl::DataLossError(
              absl::StrCat("malformed etcd v3 response: ", r->responses.size(),
                           " answers to ", ops.size(), " reads"));
        }
        for (size_t i = 0; i < r->responses.size(); ++i) {
          const RangeResult* range = RangeAt(*r, i);
          if (range == nullptr) {
            return absl::DataLossError(absl::StrCat(
                "malformed etcd v3 response: responses[", i, "]: not a range"));
          }
          const bool keys_only = i > first_below;
          for (const KeyValue& kv : range->kvs) {
            if (keys_only) continue;
            if (absl::Status s =
                    CheckLiveKv(kv, r->header.revision,
                                absl::StrCat("responses[", i, "].kvs"));
                !s.ok()) {
              return s;
            }
          }
        }
        return r;
      });
  if (!txn.ok()) return txn.status();
  const int64_t revision = txn->header.revision;
  Response response;
  response.action = "get";
  response.etcd_index = static_cast<uint64_t>(revision);
  const RangeResult& below = *RangeAt(*txn, first_below);
  const RangeResult* self = k.empty() ? nullptr : RangeAt(*txn, 0);
  std::map<int64_t, int64_t> ttls;
  if (self != nullptr && !self->kvs.empty()) {
    const KeyValue& kv = self->kvs.front();
    if (kv.key != k) {
      return absl::DataLossError(absl::StrCat(
          context, ": malformed etcd v3 response: another key was read"));
    }
    if (absl::Status s = FillTtls(context, options.deadline, {kv}, ttls);
        !s.ok()) {
      return s;
    }
    response.node = FileNode(kv);
    if (kv.lease != 0) {
      response.node.ttl = ttls[kv.lease];
      response.node.expiration =
          clock_->Now() + absl::Seconds(response.node.ttl);
    }
    return response;
  }
  if (!below.kvs.empty() || k.empty()) {
    std::vector<const KeyValue*> kvs;
    for (const KeyValue& kv : below.kvs) {
      if (!absl::StartsWith(kv.key, k + "/")) {
        return absl::DataLossError(absl::StrCat(
            context, ": malformed etcd v3 response: a key outside the range"));
      }
      kvs.push_back(&kv);
    }
    if (options.child_ttls) {
      if (absl::Status s = FillTtls(context, options.deadline, below.kvs, ttls);
          !s.ok()) {
        return s;
      }
    }
    response.node =
        DirNode(k, kvs, options.recursive, ttls, clock_->Now(), /*top=*/true);
    return response;
  }
  // Not there: name the first missing component, or the key above it that
  // is a file, as etcd v2 does.
  for (size_t i = 0; i < ancestors.size(); ++i) {
    const RangeResult* is_key = RangeAt(*txn, first_below + 1 + 2 * i);
    const RangeResult* has_below = RangeAt(*txn, first_below + 2 + 2 * i);
    if (!is_key->kvs.empty()) {
      return V2Error(kEtcdNotDir, "Not a directory", ancestors[i], revision,
                     context);
    }
    if (has_below->kvs.empty()) {
      return V2Error(kEtcdKeyNotFound, "Key not found", ancestors[i], revision,
                     context);
    }
  }
  return V2Error(kEtcdKeyNotFound, "Key not found", k, revision, context);
}

// ---- Set -----------------------------------------------------------------

absl::Status EtcdV3Client::SetFailure(const std::string& key,
                                      const SetOptions& options,
                                      const TxnResult& txn,
                                      const std::string& context) {
  const int64_t revision = txn.header.revision;
  const RangeResult* self = RangeAt(txn, 0);
  const RangeResult* below = RangeAt(txn, 1);
  const std::vector<std::string> ancestors = Ancestors(key);
  if (self == nullptr || below == nullptr ||
      txn.responses.size() != 2 + ancestors.size()) {
    return MarkOutcomeUnknown(absl::DataLossError(absl::StrCat(
        context, ": malformed etcd v3 response: not the failure's reads")));
  }
  for (size_t i = 0; i < ancestors.size(); ++i) {
    if (!RangeAt(txn, 2 + i)->kvs.empty()) {
      return V2Error(kEtcdNotDir, "Not a directory", ancestors[i], revision,
                     context);
    }
  }
  if (self->kvs.empty() && !below->kvs.empty()) {
    // A create finds the directory there, as v2's finds any node.
    return options.prev_exist == false
               ? V2Error(kEtcdNodeExist, "Key already exists", key, revision,
                         context)
               : V2Error(kEtcdNotFile, "Not a file", key, revision, context);
  }
  if (self->kvs.empty()) {
    return V2Error(kEtcdKeyNotFound, "Key not found", key, revision, context);
  }
  if (options.prev_exist == false) {
    return V2Error(kEtcdNodeExist, "Key already exists", key, revision,
                   context);
  }
  if (std::optional<std::string> cause = GuardMismatch(
          options.prev_index, options.prev_value, self->kvs.front())) {
    return V2Error(kEtcdTestFailed, "Compare failed", *std::move(cause),
                   revision, context);
  }
  // Every compare held on the read: the key changed between the two.
  return absl::AbortedError(absl::StrCat(
      context, ": the key changed while the write was judged; try again"));
}

absl::StatusOr<Response> EtcdV3Client::Set(const std::string& key,
                                           const std::string& value,
                                           const SetOptions& options) {
  absl::StatusOr<KeyRequest> request = CheckKey("set", key);
  if (!request.ok()) return request.status();
  const std::string& context = request->context;
  const std::string& k = request->key;
  if (k.empty()) {
    return V2Error(kEtcdRootReadOnly, "Root is read only", "/", 0, context);
  }
  if (options.dir) {
    return absl::InvalidArgumentError(absl::StrCat(
        context,
        ": etcd v3 has no directories of their own (a directory is a key "
        "prefix, there while keys are under it); set a key under it instead"));
  }
  if (!options.refresh) {
    if (absl::Status valid = ValidateValue("value", value); !valid.ok()) {
      return Prefixed(context, valid);
    }
  }
  if (absl::Status valid = CheckPrevValue(options.prev_value, context);
      !valid.ok()) {
    return valid;
  }
  std::optional<int64_t> seconds;
  if (options.ttl.has_value()) {
    absl::StatusOr<int64_t> s = TtlSeconds(*options.ttl);
    if (!s.ok()) return Prefixed(context, s.status());
    seconds = *s;
  }
  if (options.refresh) {
    if (!seconds.has_value()) {
      return V2Error(kEtcdRefreshTtlRequired,
                     "A TTL must be provided on refresh", "No TTL value set", 0,
                     context);
    }
    return Refresh(k, context, options, *seconds);
  }

  std::optional<LeaseResult> lease;
  if (seconds.has_value()) {
    absl::StatusOr<LeaseResult> granted =
        Grant(context, *seconds, options.deadline);
    if (!granted.ok()) return granted.status();
    lease = *granted;
  }
  std::vector<std::string> cmp;
  const std::string self = KeyFields(k);
  // As in v2, prevExist=false is a create, whatever prevIndex and prevValue
  // say: they guard only a write to an existing key.
  const bool create = options.prev_exist == false;
  if (create) {
    cmp.push_back(Compare(self, "VERSION", "EQUAL", "version", "0"));
  } else if (options.prev_exist == true || options.prev_index.has_value() ||
             options.prev_value.has_value()) {
    cmp.push_back(Compare(self, "VERSION", "GREATER", "version", "0"));
  }
  if (!create && options.prev_index.has_value()) {
    cmp.push_back(Compare(self, "MOD", "EQUAL", "mod_revision",
                          absl::StrCat(*options.prev_index)));
  }
  if (!create && options.prev_value.has_value()) {
    cmp.push_back(
        Compare(self, "VALUE", "EQUAL", "value", Base64(*options.prev_value)));
  }
  AddTreeCompares(k, cmp);
  std::string put = absl::StrCat("{\"request_put\":{", self, ",\"value\":\"",
                                 Base64(value), "\",\"prev_kv\":true");
  if (lease.has_value())
    absl::StrAppend(&put, ",\"lease\":\"", lease->id, "\"");
  put += "}}";
  std::vector<std::string> failure;
  AddTreeReads(k, failure);
  absl::StatusOr<TxnResult> txn = CallTxn(context, Txn(cmp, {put}, failure),
                                          /*write=*/true, options.deadline);
  if (!txn.ok()) return txn.status();
  if (!txn->succeeded) {
    if (lease.has_value()) Revoke(lease->id, options.deadline);
    return SetFailure(k, options, *txn, context);
  }
  const PutResult* put_result = txn->responses.size() == 1
                                    ? std::get_if<PutResult>(&txn->responses[0])
                                    : nullptr;
  if (put_result == nullptr) {
    return MarkOutcomeUnknown(absl::DataLossError(
        absl::StrCat(context, ": malformed etcd v3 response: no put result")));
  }
  const int64_t revision = txn->header.revision;
  if (put_result->prev_kv.has_value()) {
    if (absl::Status s =
            CheckLiveKv(*put_result->prev_kv, revision - 1, "prev_kv");
        !s.ok() || put_result->prev_kv->key != k) {
      return MarkOutcomeUnknown(absl::DataLossError(
          absl::StrCat(context, ": malformed etcd v3 response: ",
                       s.ok() ? "prev_kv is another key" : s.message())));
    }
  }
  Response response;
  response.action = SetAction(options);
  response.etcd_index = static_cast<uint64_t>(revision);
  response.node.key = k;
  response.node.value = value;
  response.node.modified_index = static_cast<uint64_t>(revision);
  response.node.created_index =
      put_result->prev_kv.has_value()
          ? static_cast<uint64_t>(put_result->prev_kv->create_revision)
          : static_cast<uint64_t>(revision);
  if (lease.has_value()) {
    response.node.ttl = lease->ttl;
    response.node.expiration = clock_->Now() + absl::Seconds(lease->ttl);
  }
  if (put_result->prev_kv.has_value()) {
    response.prev_node = FileNode(*put_result->prev_kv);
    RevokeSuperseded(*put_result->prev_kv, lease.has_value() ? lease->id : 0,
                     options.deadline);
  }
  RememberLease(k, revision, lease.has_value() ? lease->id : 0);
  return response;
}

std::optional<absl::StatusOr<Response>> EtcdV3Client::QuickRenew(
    const std::string& key, const std::string& context,
    const SetOptions& options, int64_t seconds) {
  if (!options.prev_index.has_value() || options.prev_exist == false) {
    return std::nullopt;
  }
  const int64_t index = static_cast<int64_t>(*options.prev_index);
  const std::optional<int64_t> lease = LeaseAt(key, index);
  if (!lease.has_value()) return std::nullopt;
  absl::StatusOr<LeaseResult> kept =
      KeepAlive(context, *lease, options.deadline);
  if (!kept.ok()) return kept.status();
  if (kept->ttl != std::max(seconds, min_ttl_.load())) return std::nullopt;
  const std::string self = KeyFields(key);
  std::vector<std::string> guards = {
      Compare(self, "MOD", "EQUAL", "mod_revision", absl::StrCat(index)),
      Compare(self, "LEASE", "EQUAL", "lease", absl::StrCat(*lease))};
  if (options.prev_value.has_value()) {
    guards.push_back(
        Compare(self, "VALUE", "EQUAL", "value", Base64(*options.prev_value)));
  }
  absl::StatusOr<TxnResult> check =
      CallTxn(context, Txn(guards, {RangeOp(self)}, {}), /*write=*/false,
              options.deadline);
  if (!check.ok()) return check.status();
  if (!check->succeeded) return std::nullopt;
  const RangeResult* range = RangeAt(*check, 0);
  if (range == nullptr || range->kvs.size() != 1 || range->kvs[0].key != key ||
      range->kvs[0].mod_revision != index || range->kvs[0].lease != *lease ||
      !CheckLiveKv(range->kvs[0], check->header.revision, "kvs[0]").ok()) {
    return absl::StatusOr<Response>(absl::DataLossError(absl::StrCat(
        context, ": malformed etcd v3 response: not the key guarded")));
  }
  Response response;
  response.action = SetAction(options);
  response.etcd_index = static_cast<uint64_t>(check->header.revision);
  response.prev_node = FileNode(range->kvs[0]);
  response.node = FileNode(range->kvs[0]);
  response.node.ttl = kept->ttl;
  response.node.expiration = clock_->Now() + absl::Seconds(kept->ttl);
  return absl::StatusOr<Response>(std::move(response));
}

absl::StatusOr<LeaseResult> EtcdV3Client::KeepAlive(absl::string_view context,
                                                    int64_t lease,
                                                    absl::Time deadline) {
  return AboutLease(context, "/v3/lease/keepalive", lease, deadline,
                    etcd_v3_internal::ParseLeaseKeepAlive);
}

absl::StatusOr<Response> EtcdV3Client::Refresh(const std::string& key,
                                               const std::string& context,
                                               const SetOptions& options,
                                               int64_t seconds) {
  if (std::optional<absl::StatusOr<Response>> quick =
          QuickRenew(key, context, options, seconds)) {
    return *std::move(quick);
  }
  const std::string self = KeyFields(key);
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    absl::StatusOr<TxnResult> read =
        CallTxn(context, Txn({}, {RangeOp(self)}, {}), /*write=*/false,
                options.deadline);
    if (!read.ok()) return read.status();
    const RangeResult* range = RangeAt(*read, 0);
    if (range == nullptr) {
      return absl::DataLossError(
          absl::StrCat(context, ": malformed etcd v3 response: no range"));
    }
    const int64_t revision = read->header.revision;
    if (range->kvs.empty()) {
      return V2Error(kEtcdKeyNotFound, "Key not found", key, revision, context);
    }
    const KeyValue kv = range->kvs.front();
    if (absl::Status s = CheckLiveKv(kv, revision, "kvs[0]");
        !s.ok() || kv.key != key) {
      return absl::DataLossError(
          absl::StrCat(context, ": malformed etcd v3 response: ",
                       s.ok() ? "another key was read" : s.message()));
    }
    if (options.prev_exist == false) {
      return V2Error(kEtcdNodeExist, "Key already exists", key, revision,
                     context);
    }
    if (std::optional<std::string> cause =
            GuardMismatch(options.prev_index, options.prev_value, kv)) {
      return V2Error(kEtcdTestFailed, "Compare failed", *std::move(cause),
                     revision, context);
    }
    Response response;
    response.action = SetAction(options);
    response.prev_node = FileNode(kv);
    const std::vector<std::string> unchanged = {
        Compare(self, "MOD", "EQUAL", "mod_revision",
                absl::StrCat(kv.mod_revision)),
        Compare(self, "LEASE", "EQUAL", "lease", absl::StrCat(kv.lease))};
    if (kv.lease != 0) {
      absl::StatusOr<LeaseResult> kept =
          KeepAlive(context, kv.lease, options.deadline);
      if (!kept.ok()) return kept.status();
      if (kept->ttl == 0) {
        // The lease is gone, and the key with it (or about to be).
        return V2Error(kEtcdKeyNotFound, "Key not found", key,
                       kept->header.revision, context);
      }
      if (kept->ttl == std::max(seconds, min_ttl_.load())) {
        // Renewed to the TTL asked; it counts only if the key still carries
        // that lease and is the one judged above.
        absl::StatusOr<TxnResult> check =
            CallTxn(context, Txn(unchanged, {RangeOp(self)}, {}),
                    /*write=*/false, options.deadline);
        if (!check.ok()) return check.status();
        if (!check->succeeded) continue;
        response.etcd_index = static_cast<uint64_t>(check->header.revision);
        response.node = FileNode(kv);
        response.node.ttl = kept->ttl;
        response.node.expiration = clock_->Now() + absl::Seconds(kept->ttl);
        return response;
      }
    }
    // No lease, or one of another TTL: the key moves to a new lease.
    absl::StatusOr<LeaseResult> lease =
        Grant(context, seconds, options.deadline);
    if (!lease.ok()) return lease.status();
    const std::string put =
        absl::StrCat("{\"request_put\":{", self,
                     ",\"ignore_value\":true,\"prev_kv\":true,\"lease\":\"",
                     lease->id, "\"}}");
    absl::StatusOr<TxnResult> txn = CallTxn(context, Txn(unchanged, {put}, {}),
                                            /*write=*/true, options.deadline);
    if (!txn.ok()) return txn.status();
    if (!txn->succeeded) {
      Revoke(lease->id, options.deadline);
      continue;
    }
    const int64_t written = txn->header.revision;
    if (txn->responses.size() != 1 ||
        std::get_if<PutResult>(&txn->responses[0]) == nullptr ||
        written <= kv.mod_revision) {
      return MarkOutcomeUnknown(absl::DataLossError(absl::StrCat(
          context, ": malformed etcd v3 response: not the put's answer")));
    }
    RevokeSuperseded(kv, lease->id, options.deadline);
    RememberLease(key, written, lease->id);
    response.etcd_index = static_cast<uint64_t>(written);
    response.node = FileNode(kv);
    response.node.modified_index = static_cast<uint64_t>(written);
    response.node.ttl = lease->ttl;
    response.node.expiration = clock_->Now() + absl::Seconds(lease->ttl);
    return response;
  }
  return absl::AbortedError(
      absl::StrCat(context, ": the key kept changing under the refresh (",
                   kMaxAttempts, " attempts)"));
}

// ---- CreateInOrder ---------------------------------------------------------

absl::StatusOr<Response> EtcdV3Client::CreateInOrder(
    const std::string& dir, const std::string& value,
    const CreateInOrderOptions& options) {
  absl::StatusOr<KeyRequest> request = CheckKey("create in order under", dir);
  if (!request.ok()) return request.status();
  const std::string& context = request->context;
  const std::string& d = request->key;
  if (absl::Status valid = ValidateValue("value", value); !valid.ok()) {
    return Prefixed(context, valid);
  }
  SetOptions set;
  set.prev_exist = false;
  set.ttl = options.ttl;
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    uint64_t name;
    {
      std::lock_guard<std::mutex> lock(mu_);
      name = names_();
    }
    const std::string key = absl::StrFormat("%s/%020u", d, name);
    absl::StatusOr<Response> created = Set(key, value, set);
    if (absl::IsAlreadyExists(created.status())) continue;  // name taken
    if (created.ok()) return created;
    return Prefixed(context, created.status());
  }
  return absl::UnavailableError(
      absl::StrCat(context, ": no free name after ", kMaxAttempts, " tries"));
}

// ---- Delete --------------------------------------------------------------

absl::StatusOr<Response> EtcdV3Client::Delete(const std::string& key,
                                              const DeleteOptions& options) {
  absl::StatusOr<KeyRequest> request = CheckKey("delete", key);
  if (!request.ok()) return request.status();
  const std::string& context = request->context;
  const std::string& k = request->key;
  if (absl::Status valid = CheckPrevValue(options.prev_value, context);
      !valid.ok()) {
    return valid;
  }
  if (k.empty()) {
    return V2Error(kEtcdRootReadOnly, "Root is read only", "/", 0, context);
  }
  const std::string self = KeyFields(k);
  const std::string children = KeyFields(k + "/", PrefixEnd(k + "/"));
  const bool guarded =
      options.prev_index.has_value() || options.prev_value.has_value();
  std::vector<std::string> cmp = {
      Compare(self, "VERSION", "GREATER", "version", "0")};
  if (options.prev_index.has_value()) {
    cmp.push_back(Compare(self, "MOD", "EQUAL", "mod_revision",
                          absl::StrCat(*options.prev_index)));
  }
  if (options.prev_value.has_value()) {
    cmp.push_back(
        Compare(self, "VALUE", "EQUAL", "value", Base64(*options.prev_value)));
  }
  std::vector<std::string> success = {
      absl::StrCat("{\"request_delete_range\":{", self, ",\"prev_kv\":true}}")};
  if (options.recursive) {
    success.push_back(absl::StrCat("{\"request_delete_range\":{", children,
                                   ",\"prev_kv\":true}}"));
  }
  absl::StatusOr<TxnResult> txn = CallTxn(
      context,
      Txn(cmp, success,
          {RangeOp(self), RangeOp(children, /*keys_only=*/true, /*limit=*/1)}),
      /*write=*/true, options.deadline);
  if (!txn.ok()) return txn.status();
  int64_t revision = txn->header.revision;
  auto malformed = [&](absl::string_view what) {
    return MarkOutcomeUnknown(absl::DataLossError(
        absl::StrCat(context, ": malformed etcd v3 response: ", what)));
  };
  Response response;
  response.action = guarded ? "compareAndDelete" : "delete";
  response.node.key = k;
  if (txn->succeeded) {
    const DeleteResult* del =
        txn->responses.empty() ? nullptr
                               : std::get_if<DeleteResult>(&txn->responses[0]);
    if (del == nullptr || del->prev_kvs.size() != 1 ||
        del->prev_kvs[0].key != k ||
        !CheckLiveKv(del->prev_kvs[0], revision - 1, "prev_kvs[0]").ok()) {
      return malformed("not the delete's answer");
    }
    const KeyValue& prev = del->prev_kvs[0];
    RevokeSuperseded(prev, 0, options.deadline);
    RememberLease(k, revision, 0);
    response.etcd_index = static_cast<uint64_t>(revision);
    response.node.created_index = static_cast<uint64_t>(prev.create_revision);
    response.node.modified_index = static_cast<uint64_t>(revision);
    response.prev_node = FileNode(prev);
    return response;
  }
  const RangeResult* self_read = RangeAt(*txn, 0);
  const RangeResult* below = RangeAt(*txn, 1);
  if (self_read == nullptr || below == nullptr) {
    return malformed("not the failure's reads");
  }
  if (!self_read->kvs.empty()) {
    if (std::optional<std::string> cause = GuardMismatch(
            options.prev_index, options.prev_value, self_read->kvs.front())) {
      return V2Error(kEtcdTestFailed, "Compare failed", *std::move(cause),
                     revision, context);
    }
    return absl::AbortedError(absl::StrCat(
        context, ": the key changed while the delete was judged; try again"));
  }
  if (below->kvs.empty()) {
    return V2Error(kEtcdKeyNotFound, "Key not found", k, revision, context);
  }
  // A directory.
  if (guarded || (!options.dir && !options.recursive)) {
    return V2Error(kEtcdNotFile, "Not a file", k, revision, context);
  }
  if (!options.recursive) {
    return V2Error(kEtcdDirNotEmpty, "Directory not empty", k, revision,
                   context);
  }
  absl::StatusOr<TxnResult> removed = CallTxn(
      context,
      Txn({}, {absl::StrCat("{\"request_delete_range\":{", children, "}}")},
          {}),
      /*write=*/true, options.deadline);
  if (!removed.ok()) return removed.status();
  const DeleteResult* del =
      removed->responses.size() == 1
          ? std::get_if<DeleteResult>(&removed->responses[0])
          : nullptr;
  if (!removed->succeeded || del == nullptr) {
    return malformed("not the delete's answer");
  }
  if (del->deleted == 0) {
    return V2Error(kEtcdKeyNotFound, "Key not found", k,
                   removed->header.revision, context);
  }
  revision = removed->header.revision;
  uint64_t oldest = 0;
  for (const KeyValue& kv : below->kvs) {
    oldest = static_cast<uint64_t>(kv.create_revision);
  }
  response.action = "delete";
  response.etcd_index = static_cast<uint64_t>(revision);
  response.node.dir = true;
  response.node.created_index = oldest > 0 ? oldest : revision;
  response.node.modified_index = static_cast<uint64_t>(revision);
  Node prev;
  prev.key = k;
  prev.dir = true;
  prev.created_index = prev.modified_index = response.node.created_index;
  response.prev_node = std::move(prev);
  return response;
}

// ---- Watch ---------------------------------------------------------------

// What a watch stream has said so far, read line by line as it arrives.
struct WatchState {
  std::string key;  // the normal key watched
  bool recursive = false;
  int64_t wait_index = 0;
  size_t parsed = 0;  // bytes of the body judged
  // The revision the server registered the watch at (its "created"
  // message's header): a watch "from now" resumes after it.
  std::atomic<int64_t> created_revision{0};
  std::optional<absl::StatusOr<Response>> outcome;
  // Set with the outcome when etcd cancelled the watch for its credentials
  // or their permissions: etcd's error, from the cancel reason.
  std::optional<GatewayError> refused;
  // With an event as the outcome: it and the wanted events after it in the
  // same message, in order (a watch that starts in the past gets all of
  // its history up to now in one message).
  std::vector<Response> batch;
  // The key-value of each event of `batch` (its lease: the key's TTL).
  std::vector<KeyValue> kvs;

  bool Wanted(const std::string& event_key) const {
    if (event_key == key) return true;
    return recursive && absl::StartsWith(event_key, key + "/");
  }

  // true once the stream has said what the watch returns.
  bool Read(absl::string_view body) {
    while (!outcome.has_value()) {
      const size_t end = body.find('\n', parsed);
      if (end == absl::string_view::npos) return false;
      const absl::string_view line = body.substr(parsed, end - parsed);
      parsed = end + 1;
      if (absl::StripAsciiWhitespace(line).empty()) continue;
      absl::StatusOr<WatchMessage> message =
          etcd_v3_internal::ParseWatchMessage(line);
      if (!message.ok()) {
        outcome = message.status();
        break;
      }
      if (message->canceled) {
        if (message->compact_revision > 0) {
          outcome = MapEtcdError(
              0,
              EtcdError{
                  kEtcdEventIndexCleared,
                  "The event in requested index is outdated and cleared",
                  absl::StrCat("the requested history has been cleared [",
                               message->compact_revision, "/", wait_index, "]"),
                  static_cast<uint64_t>(message->compact_revision)},
              "watch");
        } else {
          std::optional<GatewayError> error =
              etcd_v3_internal::ParseCancelReason(message->cancel_reason);
          if (error.has_value() &&
              (error->code == kGrpcPermissionDenied || TokenRejected(*error))) {
            refused = std::move(error);
          }
          outcome = absl::UnavailableError(absl::StrCat(
              "etcd cancelled the watch: ", message->cancel_reason));
        }
        break;
      }
      if (message->created) {
        created_revision.store(message->header.revision);
        continue;
      }
      for (const etcd_v3_internal::WatchEvent& event : message->events) {
        if (event.kv.mod_revision < wait_index || !Wanted(event.kv.key)) {
          continue;
        }
        absl::StatusOr<Response> response =
            ToResponse(event, message->header.revision);
        if (!response.ok()) {
          if (!outcome.has_value()) outcome = response.status();
          break;
        }
        batch.push_back(*response);
        kvs.push_back(event.kv);
        if (!outcome.has_value()) outcome = *std::move(response);
      }
    }
    return true;
  }

  static absl::StatusOr<Response> ToResponse(
      const etcd_v3_internal::WatchEvent& event, int64_t revision) {
    Response response;
    response.etcd_index = static_cast<uint64_t>(revision);
    if (event.prev_kv.has_value()) {
      if (absl::Status s = CheckLiveKv(*event.prev_kv, 0, "prev_kv"); !s.ok()) {
        return s;
      }
      response.prev_node = FileNode(*event.prev_kv);
    }
    if (!event.is_delete) {
      if (absl::Status s = CheckLiveKv(event.kv, revision, "kv"); !s.ok()) {
        return s;
      }
      response.action = "set";
      response.node = FileNode(event.kv);
      return response;
    }
    response.action = "delete";
    response.node.key = event.kv.key;
    response.node.modified_index = static_cast<uint64_t>(event.kv.mod_revision);
    response.node.created_index =
        event.prev_kv.has_value()
            ? static_cast<uint64_t>(event.prev_kv->create_revision)
            : response.node.modified_index;
    return response;
  }
};

absl::StatusOr<Response> EtcdV3Client::Watch(const std::string& key,
                                             const WatchOptions& options) {
  absl::StatusOr<KeyRequest> request = CheckKey("watch", key);
  if (!request.ok()) return request.status();
  const std::string& context = request->context;
  const std::string& k = request->key;
  int64_t wait_index = static_cast<int64_t>(options.wait_index);
  absl::Duration retry_pause = kWatchRetryFirst;
  absl::Status last;
  // Whether the token was renewed since a stream last opened: a token etcd
  // rejects right after authenticating is not renewed again.
  bool renewed = false;
  auto pause = [&] {
    SleepUnlessCancelled(
        *clock_, std::min(clock_->Now() + retry_pause, options.deadline),
        options.cancel);
    retry_pause = std::min(retry_pause * 2, kWatchRetryMax);
  };
  // An authentication waits no longer than a request would.
  auto auth_deadline = [&] {
    return std::min(options.deadline, clock_->Now() + options_.request_timeout);
  };
  while (true) {
    if (options.cancel != nullptr && options.cancel->cancelled()) {
      return absl::CancelledError(absl::StrCat(context, ": cancelled"));
    }
    if (clock_->Now() >= options.deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          context, ": deadline passed",
          last.ok() ? ""
                    : absl::StrCat(" (last failure: ", last.message(), ")")));
    }
    if (std::optional<Response> cached =
            CachedEvent(k, options.recursive || k.empty(), wait_index)) {
      return *std::move(cached);
    }
    WatchState state;
    state.key = k;
    state.recursive = options.recursive || k.empty();
    state.wait_index = wait_index;
    // Recursive: the key and everything after it up to its last possible
    // child ("/d" … "/d/\xff…"), filtered to the key and "/d/…".
    std::string create = absl::StrCat(
        "{\"create_request\":{",
        state.recursive ? KeyFields(k.empty() ? "/" : k, PrefixEnd(k + "/"))
                        : KeyFields(k),
        ",\"prev_kv\":true");
    if (wait_index > 0) {
      absl::StrAppend(&create, ",\"start_revision\":\"", wait_index, "\"");
    }
    create += "}}";
    HttpRequest request;
    request.method = "POST";
    request.target = "/v3/watch";
    request.body = create;
    const etcd_internal::StreamEnough enough = [&state](absl::string_view b) {
      return state.Read(b);
    };
    const std::string endpoint = [&] {
      auto [endpoints, preferred] = endpoints_.Snapshot();
      return endpoints[preferred];
    }();
    const LivenessCheck check{
        options_.watch_check_interval,
        [&](const HttpResponse&, const CancelToken& stop) {
          const int64_t from =
              wait_index > 0 ? wait_index : state.created_revision.load() + 1;
          // etcd registers a watch at once: silence for a whole interval is
          // not etcd's.
          if (from <= 1 && wait_index == 0) return false;
          return WatchedEndpointAlive(endpoint, k, from, stop);
        }};
    absl::StatusOr<std::string> token = Token(auth_deadline());
    if (!token.ok()) {
      if (absl::IsUnauthenticated(token.status())) {
        return Prefixed(context, token.status());
      }
      last = token.status();
      pause();
      continue;
    }
    request.authorization = *token;
    HttpResult result = transport_.LongPoll(
        endpoint, request, options.deadline, *clock_, options.cancel,
        options_.watch_check_interval > absl::ZeroDuration() ? &check : nullptr,
        &enough);
    if (absl::IsCancelled(result.status) ||
        absl::IsDeadlineExceeded(result.status) ||
        absl::IsInvalidArgument(result.status)) {
      return Prefixed(context, result.status);
    }
    if (state.created_revision.load() > 0) renewed = false;
    if (wait_index == 0 && state.created_revision.load() > 0) {
      wait_index = state.created_revision.load() + 1;
    }
    std::optional<GatewayError> refused = std::move(state.refused);
    if (!refused.has_value() && result.status.ok() &&
        result.response.status >= 400) {
      refused = etcd_v3_internal::ParseGatewayError(result.response.body);
      if (refused.has_value() && refused->code != kGrpcPermissionDenied &&
          !TokenRejected(*refused)) {
        refused.reset();
      }
    }
    if (refused.has_value()) {
      if (auth_.has_value() && TokenRejected(*refused) && !renewed) {
        // A watch's stream checks the token when it opens (and not later):
        // open it again with a new one, at once.
        renewed = true;
        absl::StatusOr<std::string> fresh =
            auth_->Renew(*token, auth_deadline());
        if (absl::IsUnauthenticated(fresh.status())) {
          return Prefixed(context, fresh.status());
        }
        if (!fresh.ok()) {
          last = fresh.status();
          renewed = false;
          pause();
        }
        continue;
      }
      return Prefixed(context,
                      *AuthRefusal(result.response.status, *refused, endpoint));
    }
    if (result.status.ok() && result.response.status == 200 &&
        state.outcome.has_value()) {
      absl::StatusOr<Response>& outcome = *state.outcome;
      if (outcome.ok() || absl::IsOutOfRange(outcome.status())) {
        endpoints_.StickTo(endpoint);
        if (outcome.ok()) {
          // As v2's events, and Get here, say: what is left of each set
          // key's TTL (else a leased key would look like one without).
          std::map<int64_t, int64_t> ttls;
          if (absl::Status s =
                  FillTtls(context, options.deadline, state.kvs, ttls);
              !s.ok()) {
            return s;
          }
          for (size_t i = 0; i < state.batch.size(); ++i) {
            Node& node = state.batch[i].node;
            const int64_t lease = state.kvs[i].lease;
            if (lease == 0 || state.batch[i].action != "set") continue;
            node.ttl = ttls[lease];
            node.expiration = clock_->Now() + absl::Seconds(node.ttl);
          }
          outcome = state.batch.front();
          KeepEvents(k, state.recursive, wait_index, std::move(state.batch));
        }
        if (!outcome.ok()) return Prefixed(context, outcome.status());
        return std::move(outcome);
      }
      last = outcome.status();
    } else if (!result.status.ok()) {
      last = result.status;
    } else {
      std::optional<GatewayError> error =
          etcd_v3_internal::ParseGatewayError(result.response.body);
      last = error.has_value()
                 ? GatewayStatus(result.response.status, *error, endpoint)
                 : absl::UnavailableError(absl::StrCat(
                       endpoint, ": HTTP ", result.response.status,
                       ": the watch stream ended without an event"));
    }
    endpoints_.MoveOff(endpoint);
    pause();
  }
}

// A watch's member is alive when it answers a read and has seen at least
// what the cluster has. A linearizable read elsewhere tells how far the
// cluster is: if it has not reached the watch's start, no event can have
// been missed and the member need not even be asked.
bool EtcdV3Client::WatchedEndpointAlive(const std::string& endpoint,
                                        const std::string& key, int64_t from,
                                        const CancelToken& stop) {
  const absl::Duration timeout =
      std::min(options_.request_timeout, options_.watch_check_interval / 2);
  const std::optional<int64_t> cluster =
      endpoints_.FirstAnswerFromOthers<int64_t>(
          endpoint, stop, [&](const std::string& other) {
            return ProbeRevision(other, key, /*serializable=*/false, timeout,
                                 stop);
          });
  if (cluster.has_value() && *cluster < from) return true;
  const std::optional<int64_t> own =
      ProbeRevision(endpoint, key, /*serializable=*/true, timeout, stop);
  return own.has_value() && (!cluster.has_value() || *own >= *cluster);
}

std::optional<int64_t> EtcdV3Client::ProbeRevision(const std::string& endpoint,
                                                   const std::string& key,
                                                   bool serializable,
                                                   absl::Duration timeout,
                                                   const CancelToken& stop) {
  HttpRequest request;
  request.method = "POST";
  request.target = "/v3/kv/range";
  request.body = absl::StrCat(
      "{", KeyFields(key.empty() ? "/" : key), ",\"count_only\":true",
      serializable ? ",\"serializable\":true" : "", "}");
  HttpResult result =
      SendWithToken(endpoint, request, &stop, timeout, clock_->Now() + timeout);
  if (!result.status.ok() || result.response.status != 200) {
    return std::nullopt;
  }
  absl::StatusOr<RangeResult> range =
      etcd_v3_internal::ParseRange(result.response.body);
  if (!range.ok()) return std::nullopt;
  return range->header.revision;
}

}  // namespace

absl::StatusOr<std::unique_ptr<KeysApi>> NewEtcdV3Client(EtcdOptions options) {
  if (absl::Status ready = etcd_internal::PrepareEtcdOptions(options);
      !ready.ok()) {
    return ready;
  }
  const bool reject_old_cluster = options.reject_old_cluster;
  const etcd_internal::Warner warn = etcd_internal::WarnerFor(options);
  auto client = std::make_unique<EtcdV3Client>(std::move(options));
  // One look at the version serves reject-old-cluster and a warning about
  // an etcd whose stalled leader can revoke the leases of the holders.
  const absl::StatusOr<etcd_internal::VersionAt> version =
      client->ReadClusterVersion();
  if (reject_old_cluster) {
    if (absl::Status old = etcd_internal::CheckClusterVersion(version);
        !old.ok()) {
      return old;
    }
  }
  if (version.ok() &&
      etcd_internal::RevokesLeasesAfterAStall(version->version.server)) {
    warn(absl::StrCat(
        "etcd at ", version->endpoint, " runs version ",
        absl::CHexEscape(version->version.server),
        ": a leader of it that stalls longer than a lease's TTL can, once it "
        "runs again, revoke the v3 leases renewed on its successor meanwhile "
        "(etcd issue #15247), and a standby can then take over from a holder "
        "that still believes it holds; run etcd 3.4.28, 3.5.11 or later for "
        "etcd3:// (etcd:// is not affected)"));
  }
  return client;
}

}  // namespace leasehold::registry
