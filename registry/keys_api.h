// registry::KeysApi: the etcd v2 keys API, as the upper layers need it.
//
// One interface, two implementations: the etcd v2 HTTP client
// (registry/etcd/etcd_client.h) and the in-memory registry
// (registry/memory/memory_registry.h), which has the same semantics and
// passes the same conformance suite. Obtain either with registry::Open(uri)
// (registry/open.h).
//
//   auto keys = leasehold::registry::Open("etcd://127.0.0.1:2379");
//   if (!keys.ok()) return keys.status();
//   absl::StatusOr<Response> r =
//       (*keys)->Set("/app/config", "v1", {.prev_exist = false});
//   if (absl::IsAlreadyExists(r.status())) { ... }   // etcd error 105
//
// Results are full etcd responses: action, node, prev_node, X-Etcd-Index.
// Errors are absl::Status mapped from etcd's errorCode (registry/errors.h):
//   kNotFound (100) kAborted (101) kAlreadyExists (105)
//   kFailedPrecondition (102/104/108) kPermissionDenied/kUnauthenticated (110)
//   kInvalidArgument (2xx) kOutOfRange (401: watch index cleared)
//   kUnavailable (300/301, 5xx, connection failures, answers that are not
//   etcd's) kDeadlineExceeded kDataLoss (a success answer that is
//   unparsable or lacks a valid node) kCancelled (CancelToken fired).
// etcd's errorCode, message, cause and index stay reachable through
// registry::GetEtcdError(status). A conditional write whose response was lost
// returns kUnavailable (kDataLoss when a garbled success came back) with
// registry::IsOutcomeUnknown(status) == true: it may or may not have been
// applied; read back before acting on it.
//
// Keys are absolute paths ("/a/b"); empty segments are ignored ("/a//b/" is
// "/a/b"), and "." and ".." segments are refused (etcd would answer them
// with a redirect to another key, not the key named). Keys and values
// (prev_value included) must be valid UTF-8: etcd's JSON encoder replaces
// an invalid sequence with U+FFFD, so such a key or value would not read
// back as written. Both registries refuse a request that breaks this with
// kInvalidArgument naming the first bad byte offset, before anything is
// sent or stored (ValidateKey, ValidateValue below). Any valid UTF-8 is
// kept exactly, NUL and control characters included.
//
// Thread-safety: implementations are safe to call from any number of threads
// at once; a Watch blocks only its caller.
#ifndef LEASEHOLD_REGISTRY_KEYS_API_H_
#define LEASEHOLD_REGISTRY_KEYS_API_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "registry/cancel.h"

namespace leasehold::registry {

struct Node {
  std::string key;
  std::string value;  // empty for directories
  bool dir = false;
  uint64_t created_index = 0;
  uint64_t modified_index = 0;
  // Whole seconds left as the server reported them; 0 for a key without TTL.
  int64_t ttl = 0;
  // Absent for a key without TTL.
  std::optional<absl::Time> expiration;
  // Children of a directory (all levels with recursive=true).
  std::vector<Node> nodes;

  friend bool operator==(const Node& a, const Node& b);
};

struct Response {
  // "get", "set", "create", "update", "compareAndSwap", "delete",
  // "compareAndDelete", "expire".
  std::string action;
  Node node;
  std::optional<Node> prev_node;
  // X-Etcd-Index: the store's index when the response was made. After a
  // watch event, watch again from node.modified_index + 1; after kOutOfRange,
  // re-read and watch from the read's etcd_index + 1.
  uint64_t etcd_index = 0;
};

struct GetOptions {
  bool recursive = false;
  bool sorted = false;
  // Go through raft so a stale member cannot answer (etcd quorum=true).
  bool quorum = false;
  // true: every child listed under a directory carries its ttl and
  // expiration, as the node read itself always does. false: they may come
  // without them (0 and absent). The memory and etcd v2 registries list
  // them either way; the etcd v3 registry needs one more request per leased
  // child to report them, so a listing costs that only when asked.
  bool child_ttls = false;
  // Give up at this time (on the registry's clock) or at the client's
  // request timeout, whichever comes first. A write that gives up has an
  // unknown outcome (IsOutcomeUnknown); a read fails with kDeadlineExceeded.
  // The lease layer bounds each attempt by the time its lease has left.
  absl::Time deadline = absl::InfiniteFuture();
};

struct SetOptions {
  // true: the key must exist; false: it must not (create). Unset: either.
  std::optional<bool> prev_exist;
  // Compare-and-swap guards; both may be given.
  std::optional<uint64_t> prev_index;
  std::optional<std::string> prev_value;
  // Time to live, rounded UP to whole seconds (etcd TTLs are whole seconds);
  // must be positive. Unset: the key never expires (and a TTL is removed).
  std::optional<absl::Duration> ttl;
  // Reset the TTL without changing the value and without waking watchers.
  // REQUIRES: ttl set; the value passed to Set is ignored.
  bool refresh = false;
  // Create a directory instead of a key; the value is ignored.
  bool dir = false;
  // Give up at this time (on the registry's clock) or at the client's
  // request timeout, whichever comes first. A write that gives up has an
  // unknown outcome (IsOutcomeUnknown); a read fails with kDeadlineExceeded.
  absl::Time deadline = absl::InfiniteFuture();
};

struct CreateInOrderOptions {
  std::optional<absl::Duration> ttl;  // as SetOptions::ttl
};

struct DeleteOptions {
  std::optional<uint64_t> prev_index;
  std::optional<std::string> prev_value;
  bool dir = false;        // delete an (empty, unless recursive) directory
  bool recursive = false;  // delete a directory and everything under it
  // Give up at this time (on the registry's clock) or at the client's
  // request timeout, whichever comes first. A write that gives up has an
  // unknown outcome (IsOutcomeUnknown); a read fails with kDeadlineExceeded.
  absl::Time deadline = absl::InfiniteFuture();
};

struct WatchOptions {
  // Return the first event with modifiedIndex >= wait_index; 0 means the
  // next event after the call starts. An index older than the server's
  // event history fails with kOutOfRange (etcd error 401).
  uint64_t wait_index = 0;
  bool recursive = false;
  // On the registry's clock. Past it the call fails with kDeadlineExceeded.
  absl::Time deadline = absl::InfiniteFuture();
  const CancelToken* cancel = nullptr;
};

// The byte contract of every KeysApi (see the top of this file): OK, or
// kInvalidArgument such as `key "/a/\xff": invalid UTF-8 at byte offset 3`
// or `key "/a/../b": '.' and '..' segments are not allowed`.
absl::Status ValidateKey(absl::string_view key);
// `field` names the value in the message ("value", "prevValue").
absl::Status ValidateValue(absl::string_view field, absl::string_view value);

class KeysApi {
 public:
  virtual ~KeysApi() = default;

  // A key, or a directory with its children. kNotFound if absent.
  virtual absl::StatusOr<Response> Get(const std::string& key,
                                       const GetOptions& options) = 0;

  // Sets a key (or creates a directory). Action is "set", "create",
  // "update" or "compareAndSwap" as etcd reports it. Conditions failing:
  // kNotFound (prev_exist=true or a guard on a missing key), kAlreadyExists
  // (prev_exist=false), kAborted (prev_index/prev_value mismatch).
  virtual absl::StatusOr<Response> Set(const std::string& key,
                                       const std::string& value,
                                       const SetOptions& options) = 0;

  // POST into a directory: creates "<dir>/<20-digit index>" holding value.
  virtual absl::StatusOr<Response> CreateInOrder(
      const std::string& dir, const std::string& value,
      const CreateInOrderOptions& options) = 0;

  // Deletes a key or directory. kAborted when a guard does not match.
  virtual absl::StatusOr<Response> Delete(const std::string& key,
                                          const DeleteOptions& options) = 0;

  // Blocks until one event at or under `key` (at or after wait_index), the
  // deadline (kDeadlineExceeded) or a cancel (kCancelled). Implementations
  // reconnect on their own across transient failures while time remains.
  virtual absl::StatusOr<Response> Watch(const std::string& key,
                                         const WatchOptions& options) = 0;
};

}  // namespace leasehold::registry

#endif  // LEASEHOLD_REGISTRY_KEYS_API_H_
