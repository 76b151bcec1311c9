// json_codec: etcd v2 response bodies → registry types.
//
// Pure functions on a string, so that a fuzz target can drive them without a
// server, and the only code of the etcd client that sees rapidjson. Every
// body is checked for shape and type ("ttl" must be an integer, "nodes" an
// array, ...): anything else is kDataLoss naming what was wrong, never a
// crash.
//
//   absl::StatusOr<Response> r = etcd_internal::ParseKeysResponse(body);
//   if (!r.ok()) return r.status();   // kDataLoss: "node.ttl: not an integer"
//   r->etcd_index = index_from_the_X_Etcd_Index_header;
//
// Thread-safety: free functions without shared state.
#ifndef LEASEHOLD_REGISTRY_ETCD_JSON_CODEC_H_
#define LEASEHOLD_REGISTRY_ETCD_JSON_CODEC_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "registry/errors.h"
#include "registry/keys_api.h"

namespace leasehold::registry::etcd_internal {

// A successful keys API answer: {"action":…, "node":{…}, "prevNode":{…}}.
// Response::etcd_index is left 0: it comes from the X-Etcd-Index header.
// kDataLoss for anything that is not such an object.
absl::StatusOr<Response> ParseKeysResponse(absl::string_view body);

// What a success answer was the answer to, for CheckSuccess.
enum class Asked {
  kGet,      // a read of any key but the root
  kGetRoot,  // a read of "/" (etcd's root node has no key and no indexes)
  kWrite,    // set, compare-and-swap, refresh, delete, compare-and-delete
  kCreate,   // a create (prevExist=false, or in order under a directory)
  kWatch,    // an event delivered to a watch
};

// THE check of a success answer before anyone acts on it. OK when
// `response` (a parsed 2xx answer, etcd_index from X-Etcd-Index) is what
// etcd gives for such a request: a node with its key, a nonzero
// createdIndex no later than its nonzero modifiedIndex, and the nodes
// listed under it alike; a write's and a read's node no newer than
// X-Etcd-Index; a create's node created by it (action "create",
// createdIndex = modifiedIndex); an event at or after `wait_index` (0:
// not known). kDataLoss naming what is wrong otherwise.
absl::Status CheckSuccess(const Response& response, Asked asked,
                          uint64_t wait_index = 0);

// etcd's error body {"errorCode":101,"message":…,"cause":…,"index":14};
// nullopt when `body` is not one (e.g. {"message":"…"} from the auth API,
// or HTML from a proxy).
std::optional<EtcdError> ParseEtcdError(absl::string_view body);

// The client URLs of every member in a /v2/members answer
// ({"members":[{"clientURLs":[…]}, …]}), in order, without duplicates.
absl::StatusOr<std::vector<std::string>> ParseMemberClientUrls(
    absl::string_view body);

// The version etcd's GET /version reports ({"etcdserver":"3.4.23",
// "etcdcluster":"3.4.0"}): the cluster's, or the server's while the
// cluster's is "not_decided". kDataLoss for any other body.
struct EtcdVersion {
  int major = 0;
  int minor = 0;
  std::string text;  // "3.4.0", as etcd wrote it
  // The answering member's own version ("3.4.23"); empty when not given.
  std::string server;
};
absl::StatusOr<EtcdVersion> ParseEtcdVersion(absl::string_view body);

// RFC 3339 with optional fractional seconds, as etcd writes "expiration"
// ("2024-05-01T10:00:00.123456789Z", "…+02:00"). kDataLoss otherwise.
absl::StatusOr<absl::Time> ParseRfc3339(absl::string_view text);

}  // namespace leasehold::registry::etcd_internal

#endif  // LEASEHOLD_REGISTRY_ETCD_JSON_CODEC_H_
