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

// etcd's error body {"errorCode":101,"message":…,"cause":…,"index":14};
// nullopt when `body` is not one (e.g. {"message":"…"} from the auth API,
// or HTML from a proxy).
std::optional<EtcdError> ParseEtcdError(absl::string_view body);

// The client URLs of every member in a /v2/members answer
// ({"members":[{"clientURLs":[…]}, …]}), in order, without duplicates.
absl::StatusOr<std::vector<std::string>> ParseMemberClientUrls(
    absl::string_view body);

// RFC 3339 with optional fractional seconds, as etcd writes "expiration"
// ("2024-05-01T10:00:00.123456789Z", "…+02:00"). kDataLoss otherwise.
absl::StatusOr<absl::Time> ParseRfc3339(absl::string_view text);

}  // namespace leasehold::registry::etcd_internal

#endif  // LEASEHOLD_REGISTRY_ETCD_JSON_CODEC_H_
