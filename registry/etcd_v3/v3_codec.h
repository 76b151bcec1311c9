// v3_codec: etcd's v3 JSON gateway (grpc-gateway) bodies → plain structs.
//
// Pure functions on a string, so that a fuzz target can drive them without a
// server, and the only code of the v3 client that sees rapidjson. The
// gateway writes protobuf's JSON: keys and values base64, 64-bit integers as
// JSON strings, and every member at its default value (0, false, "", an
// empty list) left out. Every body is checked for shape and type: anything
// else is kDataLoss naming what was wrong, never a crash.
//
//   absl::StatusOr<RangeResult> r = etcd_v3_internal::ParseRange(body);
//   if (!r.ok()) return r.status();  // kDataLoss: "kvs[0].mod_revision: …"
//
// Thread-safety: free functions without shared state.
#ifndef LEASEHOLD_REGISTRY_ETCD_V3_V3_CODEC_H_
#define LEASEHOLD_REGISTRY_ETCD_V3_V3_CODEC_H_

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace leasehold::registry::etcd_v3_internal {

// etcdserverpb.ResponseHeader. Every answer of etcd carries one naming its
// cluster and member: that is what tells etcd's answer from anything else.
struct ResponseHeader {
  uint64_t cluster_id = 0;
  uint64_t member_id = 0;
  int64_t revision = 0;  // 0 only where etcd leaves it out (see below)
  uint64_t raft_term = 0;
};

// mvccpb.KeyValue. A live key has create_revision <= mod_revision, both
// positive, and version >= 1; a deleted key (a DELETE event's kv) has only
// its key and the deleting revision as mod_revision.
struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;
};

struct RangeResult {
  ResponseHeader header;
  std::vector<KeyValue> kvs;
  bool more = false;
};
struct PutResult {
  ResponseHeader header;
  std::optional<KeyValue> prev_kv;
};
struct DeleteResult {
  ResponseHeader header;
  int64_t deleted = 0;
  std::vector<KeyValue> prev_kvs;
};
using TxnOpResult = std::variant<RangeResult, PutResult, DeleteResult>;
struct TxnResult {
  ResponseHeader header;
  bool succeeded = false;
  std::vector<TxnOpResult> responses;
};

// LeaseGrant, LeaseKeepAlive (one result of the stream) and
// LeaseTimeToLive answers. ttl: seconds left (keep-alive: the TTL it was
// reset to); 0 from a keep-alive and -1 from time-to-live mean the lease is
// gone. granted_ttl: time-to-live only.
struct LeaseResult {
  ResponseHeader header;
  int64_t id = 0;
  int64_t ttl = 0;
  int64_t granted_ttl = 0;
};

struct WatchEvent {
  bool is_delete = false;
  KeyValue kv;
  std::optional<KeyValue> prev_kv;
};
// One message of a /v3/watch stream. A cancel message for a compacted start
// revision carries compact_revision and a header without revision.
struct WatchMessage {
  ResponseHeader header;
  bool created = false;
  bool canceled = false;
  int64_t compact_revision = 0;
  std::string cancel_reason;
  std::vector<WatchEvent> events;
};

// The gateway's error body: {"error":"…","code":5,"message":"…"} for a
// unary call, {"error":{"grpc_code":14,"message":"…",…}} inside a stream.
// `code` is the gRPC status code.
struct GatewayError {
  int code = 0;
  std::string message;
};

// Each parser requires a header naming its cluster and member and, except
// in a watch's cancel message, a positive revision.
absl::StatusOr<RangeResult> ParseRange(absl::string_view body);
absl::StatusOr<TxnResult> ParseTxn(absl::string_view body);
absl::StatusOr<LeaseResult> ParseLeaseGrant(absl::string_view body);
absl::StatusOr<LeaseResult> ParseLeaseTimeToLive(absl::string_view body);
// The first (only) result of a /v3/lease/keepalive stream answer; an error
// message inside the stream is returned as kUnavailable naming it.
absl::StatusOr<LeaseResult> ParseLeaseKeepAlive(absl::string_view body);
// One line of a /v3/watch stream: {"result":{…}} (or {"error":{…}}, which
// is kUnavailable naming it).
absl::StatusOr<WatchMessage> ParseWatchMessage(absl::string_view line);
// nullopt when `body` is not the gateway's error body (HTML from a proxy,
// an empty body, a success).
std::optional<GatewayError> ParseGatewayError(absl::string_view body);
// The error in a watch's cancel_reason, "rpc error: code = Unauthenticated
// desc = etcdserver: invalid auth token" → {16, "etcdserver: invalid auth
// token"}; nullopt for a reason of another shape.
std::optional<GatewayError> ParseCancelReason(absl::string_view reason);
// /v3/auth/authenticate's answer: the token, never empty.
absl::StatusOr<std::string> ParseAuthenticate(absl::string_view body);
// /v3/cluster/member/list's answer: every member's client URLs, each once,
// in the order listed (a member not started yet has none).
absl::StatusOr<std::vector<std::string>> ParseMemberList(
    absl::string_view body);

// THE check of a live key before anyone acts on it: a key, positive
// revisions in order, version >= 1, a revision no later than `revision`
// (the answer's header; 0: not checked). kDataLoss naming what is wrong.
absl::Status CheckLiveKv(const KeyValue& kv, int64_t revision,
                         absl::string_view where);

// The bodies the client sends. Keys and values are base64 here.
std::string Base64(absl::string_view raw);
// {"name":…,"password":…} for /v3/auth/authenticate, JSON-escaped.
std::string AuthenticateBody(absl::string_view name,
                             absl::string_view password);

}  // namespace leasehold::registry::etcd_v3_internal

#endif  // LEASEHOLD_REGISTRY_ETCD_V3_V3_CODEC_H_
