// The memory registry copies etcd 3.4's v2 store (etcdserver/api/v2store:
// store.go, node.go, event_history.go, watcher_hub.go) and the request
// checks of its HTTP layer (v2http), so that code tested on `mem:` meets the
// same answers on a real cluster. Where etcd has a quirk (a refresh through
// a plain set gives the key a new createdIndex, a watch served from history
// sees hidden keys while a live one does not, a watch on "/foobar" sees the
// deletion of the directory "/foo"), the quirk is copied on purpose.
//
// Expiry is lazy and exact: every call first removes the keys whose
// expiration is <= clock->Now(), in expiration order, each removal taking
// its own index and producing an "expire" event, as etcd's periodic
// DeleteExpiredKeys does (etcd runs it every 500 ms; here it runs as if at
// the very moment of expiry, or on MemoryOptions::expiry_sweep_interval's
// ticks). Watchers wait on one condition variable until
// an event, their deadline or the next expiration, whichever comes first.
#include "registry/memory/memory_registry.h"

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "registry/cancel.h"
#include "registry/clock.h"
#include "registry/errors.h"
#include "registry/keys_api.h"

namespace leasehold::registry {
namespace {

// etcd's path.Clean(path.Join("/", key)) for a key that passed ValidateKey
// (no "." or ".." segments): the form every key is stored in.
std::string CleanPath(const std::string& key) {
  return absl::StrCat(
      "/", absl::StrJoin(absl::StrSplit(key, '/', absl::SkipEmpty()), "/"));
}

std::string JoinPath(const std::string& dir, absl::string_view name) {
  return dir == "/" ? absl::StrCat("/", name) : absl::StrCat(dir, "/", name);
}

// A node's key as etcd shows it: the v2 keys live under the store's "/1",
// which etcd strips, so the root's own key is empty.
std::string ExternalKey(const std::string& path) {
  return path == "/" ? std::string() : path;
}

// etcd's isHidden: the part of `key` below `watch` has a component starting
// with '_' (live recursive watches do not see such keys).
bool IsHiddenBelow(const std::string& watch, const std::string& key) {
  if (watch.size() > key.size()) return false;
  return absl::StrContains(CleanPath(key.substr(watch.size())), "/_");
}

// `ancestor` is `path` or one of its parent directories.
bool IsSelfOrAncestor(const std::string& ancestor, const std::string& path) {
  if (ancestor == "/" || ancestor == path) return true;
  return absl::StartsWith(path, ancestor) && path.size() > ancestor.size() &&
         path[ancestor.size()] == '/';
}

// etcd's expirationAndTTL: whole seconds left, rounded up, truncated toward
// zero once past (Go's integer division), so ttl is 1..n while alive.
int64_t TtlLeft(absl::Time expiration, absl::Time now) {
  constexpr int64_t kSecond = 1000000000;
  const int64_t left = absl::ToInt64Nanoseconds(expiration - now);
  return left / kSecond + (left % kSecond > 0 ? 1 : 0);
}

// The byte contract (keys_api.h), checked first, as the etcd client checks
// it before sending anything. `values`: (field, value) pairs the request
// carries.
absl::Status CheckBytes(
    absl::string_view op, const std::string& key,
    std::initializer_list<std::pair<absl::string_view, const std::string*>>
        values) {
  absl::Status status = ValidateKey(key);
  for (const auto& [field, value] : values) {
    if (!status.ok()) break;
    if (value != nullptr) status = ValidateValue(field, *value);
  }
  return status.ok() ? status : WithContext(status, op);
}

// Why a watch must stop at `now`: kCancelled once its token fired,
// kDeadlineExceeded once its deadline passed; OK while it may go on.
absl::Status WatchEnded(const WatchOptions& options, absl::Time now,
                        absl::string_view context) {
  if (options.cancel != nullptr && options.cancel->cancelled()) {
    return absl::CancelledError(absl::StrCat(context, ": cancelled"));
  }
  if (now >= options.deadline) {
    return absl::DeadlineExceededError(
        absl::StrCat(context, ": deadline exceeded"));
  }
  return absl::OkStatus();
}

struct MemNode {
  std::string path;
  bool dir = false;
  std::string value;
  uint64_t created_index = 0;
  uint64_t modified_index = 0;
  std::optional<absl::Time> expiration;
  // Position in the expiry queue (ties on expiration go in creation order).
  uint64_t expiry_seq = 0;
  MemNode* parent = nullptr;
  std::map<std::string, std::unique_ptr<MemNode>> children;

  std::string name() const { return path.substr(path.rfind('/') + 1); }
  bool hidden() const { return absl::StartsWith(name(), "_"); }
};

struct Event {
  Response response;  // etcd_index: the index the event was made at
  // A refresh: kept in the history (it took an index) but never delivered.
  bool refresh = false;
  uint64_t index() const { return response.node.modified_index; }
};

struct Watcher {
  std::string key;
  bool recursive = false;
  uint64_t since = 0;
  uint64_t start_index = 0;  // X-Etcd-Index of the answer, as etcd sends it
  std::optional<Response> result;
};

class MemoryRegistry final : public KeysApi {
 public:
  explicit MemoryRegistry(const MemoryOptions& options)
      : clock_(options.clock != nullptr ? options.clock : RealClock()),
        history_size_(std::max<size_t>(options.history_size, 1)),
        sweep_interval_(
            std::max(options.expiry_sweep_interval, absl::ZeroDuration())) {
    root_.path = "/";
    root_.dir = true;
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

 private:
  absl::Status Error(int code, absl::string_view message, std::string cause,
                     absl::string_view context)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return MapEtcdError(
        0, EtcdError{code, std::string(message), std::move(cause), index_},
        context);
  }
  absl::Status NotFound(const std::string& path, absl::string_view context)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return Error(kEtcdKeyNotFound, "Key not found", path, context);
  }
  absl::Status NotFile(const std::string& path, absl::string_view context)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return Error(kEtcdNotFile, "Not a file", ExternalKey(path), context);
  }
  absl::Status NotDir(const std::string& path, absl::string_view context)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return Error(kEtcdNotDir, "Not a directory", path, context);
  }
  absl::Status RootReadOnly(absl::string_view context)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return Error(kEtcdRootReadOnly, "Root is read only", "/", context);
  }

  // Removes what has expired by `now`, one index and one event per key.
  void ExpireLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The sweep tick that removes a key expiring at `expiration`.
  absl::Time SweepAt(absl::Time expiration) const;

  // store.internalGet: walks to `path`; 104 on a file midway, 100 on the
  // first missing component.
  absl::StatusOr<MemNode*> Find(const std::string& path,
                                absl::string_view context)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // store.internalCreate: creates `path` (missing parents become plain
  // directories), replacing a file there when `replace`.
  absl::StatusOr<Response> CreateLocked(std::string path, bool dir,
                                        const std::string& value, bool unique,
                                        bool replace,
                                        std::optional<absl::Time> expiration,
                                        const std::string& action,
                                        absl::string_view context)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<Response> SetLocked(const std::string& path, bool dir,
                                     const std::string& value,
                                     std::optional<absl::Time> expiration,
                                     bool refresh, absl::string_view context)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<Response> UpdateLocked(const std::string& path,
                                        const std::string& value,
                                        std::optional<absl::Time> expiration,
                                        bool refresh, absl::string_view context)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<Response> CompareAndSwapLocked(
      const std::string& path, const std::string& prev_value,
      uint64_t prev_index, const std::string& value,
      std::optional<absl::Time> expiration, bool refresh,
      absl::string_view context) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Deletes `node` (and what is under it) as one event with `action`.
  Response RemoveLocked(MemNode& node, const char* action)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<Response> CompareAndDeleteLocked(const std::string& path,
                                                  const std::string& prev_value,
                                                  uint64_t prev_index,
                                                  absl::string_view context)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The file at `path`, when it passes the guards: 100 when missing, 102 for
  // a directory, else what Compare says.
  absl::StatusOr<MemNode*> FindToCompare(const std::string& path,
                                         const std::string& prev_value,
                                         uint64_t prev_index,
                                         absl::string_view context)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // node.Compare: 101 with etcd's cause when a given guard does not match.
  absl::Status Compare(const MemNode& node, const std::string& prev_value,
                       uint64_t prev_index, absl::string_view context)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // node.Repr: the node as a response shows it, its TTL counted from `now`.
  Node Repr(const MemNode& node, bool recursive, absl::Time now) const;
  // store.Get's view: a directory always lists its (non-hidden) children.
  Node LoadForGet(const MemNode& node, bool recursive, absl::Time now) const;

  void SetExpiration(MemNode& node, std::optional<absl::Time> expiration)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Deletes `node` (never the root) and everything under it from the tree
  // and the expiry queue; appends every removed path to `removed`.
  void Remove(MemNode& node, std::vector<std::string>* removed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Forget(const MemNode& node, std::vector<std::string>* removed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Records an event and wakes the watchers it answers (none for a
  // refresh). `removed`: paths deleted with it, whose watchers always fire.
  void Publish(Event event, const std::vector<std::string>& removed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // EventHistory.scan: the first stored event at or after `since` that a
  // watch on `key` sees; kOutOfRange when `since` is older than the history.
  absl::StatusOr<std::optional<Response>> ScanHistory(const std::string& key,
                                                      bool recursive,
                                                      uint64_t since,
                                                      absl::string_view context)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Clock* const clock_;
  const size_t history_size_;
  const absl::Duration sweep_interval_;

  std::mutex mu_;
  // Wakes watchers: on events, on cancels; the clock wakes them on time.
  std::condition_variable cv_;
  MemNode root_ ABSL_GUARDED_BY(mu_);
  uint64_t index_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_expiry_seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::pair<absl::Time, uint64_t>, MemNode*> expiry_queue_
      ABSL_GUARDED_BY(mu_);
  std::deque<Event> history_ ABSL_GUARDED_BY(mu_);
  std::list<Watcher*> watchers_ ABSL_GUARDED_BY(mu_);
};

absl::Time MemoryRegistry::SweepAt(absl::Time expiration) const {
  if (sweep_interval_ == absl::ZeroDuration()) return expiration;
  const absl::Duration since_epoch = expiration - absl::UnixEpoch();
  const absl::Duration tick = absl::Floor(since_epoch, sweep_interval_);
  return absl::UnixEpoch() + tick +
         (tick == since_epoch ? absl::ZeroDuration() : sweep_interval_);
}

void MemoryRegistry::ExpireLocked(absl::Time now) {
  while (!expiry_queue_.empty() &&
         SweepAt(expiry_queue_.begin()->first.first) <= now) {
    MemNode& node = *expiry_queue_.begin()->second;
    const absl::Time expired_at = *node.expiration;
    ++index_;
    Event event;
    event.response.action = "expire";
    event.response.node.key = ExternalKey(node.path);
    event.response.node.dir = node.dir;
    event.response.node.created_index = node.created_index;
    event.response.node.modified_index = index_;
    event.response.prev_node = Repr(node, /*recursive=*/false, expired_at);
    event.response.etcd_index = index_;
    std::vector<std::string> removed;
    Remove(node, &removed);
    Publish(std::move(event), removed);
  }
}

absl::StatusOr<MemNode*> MemoryRegistry::Find(const std::string& path,
                                              absl::string_view context) {
  MemNode* node = &root_;
  for (absl::string_view name : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (!node->dir) return NotDir(node->path, context);
    auto it = node->children.find(std::string(name));
    if (it == node->children.end())
      return NotFound(JoinPath(node->path, name), context);
    node = it->second.get();
  }
  return node;
}

Node MemoryRegistry::Repr(const MemNode& node, bool recursive,
                          absl::Time now) const {
  Node out;
  out.key = ExternalKey(node.path);
  out.dir = node.dir;
  if (!node.dir) out.value = node.value;
  out.created_index = node.created_index;
  out.modified_index = node.modified_index;
  if (node.expiration.has_value()) {
    out.expiration = node.expiration;
    out.ttl = TtlLeft(*node.expiration, now);
  }
  if (node.dir && recursive) {
    for (const auto& [name, child] : node.children) {
      if (!child->hidden()) out.nodes.push_back(Repr(*child, true, now));
    }
  }
  return out;
}

Node MemoryRegistry::LoadForGet(const MemNode& node, bool recursive,
                                absl::Time now) const {
  Node out = Repr(node, /*recursive=*/false, now);
  if (node.dir) {
    // std::map keeps children in key order: every listing comes sorted,
    // which is one of the orders etcd may give without sorted=true.
    for (const auto& [name, child] : node.children) {
      if (!child->hidden()) out.nodes.push_back(Repr(*child, recursive, now));
    }
  }
  return out;
}

void MemoryRegistry::SetExpiration(MemNode& node,
                                   std::optional<absl::Time> expiration) {
  if (node.expiration.has_value()) {
    expiry_queue_.erase({*node.expiration, node.expiry_seq});
  }
  node.expiration = expiration;
  if (expiration.has_value()) {
    node.expiry_seq = next_expiry_seq_++;
    expiry_queue_.emplace(std::make_pair(*expiration, node.expiry_seq), &node);
  }
}

void MemoryRegistry::Remove(MemNode& node, std::vector<std::string>* removed) {
  Forget(node, removed);
  // Destroys the node and its subtree.
  node.parent->children.erase(node.name());
}

void MemoryRegistry::Forget(const MemNode& node,
                            std::vector<std::string>* removed) {
  for (const auto& [name, child] : node.children) Forget(*child, removed);
  if (node.expiration.has_value()) {
    expiry_queue_.erase({*node.expiration, node.expiry_seq});
  }
  removed->push_back(node.path);
}

void MemoryRegistry::Publish(Event event,
                             const std::vector<std::string>& removed) {
  if (!event.refresh) {
    const std::string& key = event.response.node.key;
    for (auto it = watchers_.begin(); it != watchers_.end();) {
      Watcher& w = **it;
      const bool match =
          event.index() >= w.since &&
          (w.key == key ||
           std::find(removed.begin(), removed.end(), w.key) != removed.end() ||
           (w.recursive && IsSelfOrAncestor(w.key, key) &&
            !IsHiddenBelow(w.key, key)));
      if (match) {
        w.result = event.response;
        w.result->etcd_index = w.start_index;
        it = watchers_.erase(it);
      } else {
        ++it;
      }
    }
    cv_.notify_all();
  }
  history_.push_back(std::move(event));
  if (history_.size() > history_size_) history_.pop_front();
}

absl::StatusOr<std::optional<Response>> MemoryRegistry::ScanHistory(
    const std::string& key, bool recursive, uint64_t since,
    absl::string_view context) {
  if (history_.empty()) return std::nullopt;
  const uint64_t start = history_.front().index();
  if (since < start) {
    return Error(kEtcdEventIndexCleared,
                 "The event in requested index is outdated and cleared",
                 absl::StrCat("the requested history has been cleared [", start,
                              "/", since, "]"),
                 context);
  }
  const std::string prefix = key == "/" ? key : absl::StrCat(key, "/");
  // Every index has exactly one event, so the history is indexed by it.
  for (size_t i = since - start; i < history_.size(); ++i) {
    const Event& event = history_[i];
    if (event.refresh) continue;
    const Response& r = event.response;
    bool match = r.node.key == key ||
                 (recursive && absl::StartsWith(r.node.key, prefix));
    if ((r.action == "delete" || r.action == "expire") &&
        r.prev_node.has_value() && r.prev_node->dir) {
      match = match || absl::StartsWith(key, r.prev_node->key);
    }
    if (match) {
      Response out = r;
      out.etcd_index = index_;
      return std::optional<Response>(std::move(out));
    }
  }
  return std::nullopt;
}

absl::StatusOr<MemNode*> MemoryRegistry::FindToCompare(
    const std::string& path, const std::string& prev_value, uint64_t prev_index,
    absl::string_view context) {
  absl::StatusOr<MemNode*> found = Find(path, context);
  if (!found.ok()) return found.status();
  if ((*found)->dir) return NotFile(path, context);
  if (absl::Status s = Compare(**found, prev_value, prev_index, context);
      !s.ok()) {
    return s;
  }
  return found;
}

absl::Status MemoryRegistry::Compare(const MemNode& node,
                                     const std::string& prev_value,
                                     uint64_t prev_index,
                                     absl::string_view context) {
  const bool index_match = prev_index == 0 || node.modified_index == prev_index;
  const bool value_match = prev_value.empty() || node.value == prev_value;
  if (index_match && value_match) return absl::OkStatus();
  std::string cause;
  if (!value_match && !index_match) {
    cause = absl::StrCat("[", prev_value, " != ", node.value, "] [", prev_index,
                         " != ", node.modified_index, "]");
  } else if (!value_match) {
    cause = absl::StrCat("[", prev_value, " != ", node.value, "]");
  } else {
    cause = absl::StrCat("[", prev_index, " != ", node.modified_index, "]");
  }
  return Error(kEtcdTestFailed, "Compare failed", std::move(cause), context);
}

absl::StatusOr<Response> MemoryRegistry::CreateLocked(
    std::string path, bool dir, const std::string& value, bool unique,
    bool replace, std::optional<absl::Time> expiration,
    const std::string& action, absl::string_view context) {
  const uint64_t next = index_ + 1;
  if (unique) path = absl::StrCat(path, "/", absl::StrFormat("%020d", next));
  path = CleanPath(path);
  if (path == "/") return RootReadOnly(context);

  const absl::Time now = clock_->Now();
  const size_t slash = path.rfind('/');
  MemNode* parent = &root_;
  for (absl::string_view name : absl::StrSplit(
           absl::string_view(path).substr(0, slash), '/', absl::SkipEmpty())) {
    auto it = parent->children.find(std::string(name));
    if (it == parent->children.end()) {
      auto created = std::make_unique<MemNode>();
      created->path = JoinPath(parent->path, name);
      created->dir = true;
      created->created_index = created->modified_index = next;
      created->parent = parent;
      it =
          parent->children.emplace(std::string(name), std::move(created)).first;
    } else if (!it->second->dir) {
      return NotDir(it->second->path, context);
    }
    parent = it->second.get();
  }

  Response response;
  const std::string name = path.substr(slash + 1);
  auto existing = parent->children.find(name);
  if (existing != parent->children.end()) {
    if (!replace)
      return Error(kEtcdNodeExist, "Key already exists", path, context);
    if (existing->second->dir) return NotFile(path, context);
    response.prev_node = Repr(*existing->second, false, now);
    std::vector<std::string> removed;
    Remove(*existing->second, &removed);
  }

  auto node = std::make_unique<MemNode>();
  node->path = path;
  node->dir = dir;
  if (!dir) node->value = value;
  node->created_index = node->modified_index = next;
  node->parent = parent;
  SetExpiration(*node, expiration);
  response.action = action;
  response.node = Repr(*node, false, now);
  response.etcd_index = next;
  parent->children.emplace(name, std::move(node));
  index_ = next;
  return response;
}

absl::StatusOr<Response> MemoryRegistry::SetLocked(
    const std::string& path, bool dir, const std::string& value,
    std::optional<absl::Time> expiration, bool refresh,
    absl::string_view context) {
  absl::StatusOr<MemNode*> existing = Find(path, context);
  if (!existing.ok() && !absl::IsNotFound(existing.status()))
    return existing.status();
  std::string new_value = value;
  if (refresh) {
    if (!existing.ok()) return existing.status();
    new_value = (*existing)->value;
  }
  // etcd's set answers with the created node and the replaced one.
  absl::StatusOr<Response> response =
      CreateLocked(path, dir, new_value, false, /*replace=*/true, expiration,
                   "set", context);
  if (!response.ok()) return response.status();
  Event event{*response, refresh};
  Publish(std::move(event), {});
  return response;
}

absl::StatusOr<Response> MemoryRegistry::UpdateLocked(
    const std::string& path, const std::string& value,
    std::optional<absl::Time> expiration, bool refresh,
    absl::string_view context) {
  if (path == "/") return RootReadOnly(context);
  absl::StatusOr<MemNode*> found = Find(path, context);
  if (!found.ok()) return found.status();
  MemNode& node = **found;
  if (node.dir && !value.empty()) return NotFile(path, context);
  const absl::Time now = clock_->Now();
  const uint64_t next = index_ + 1;
  Response response;
  response.action = "update";
  response.prev_node = Repr(node, false, now);
  // etcd's node.Write fails on a directory and store.Update ignores that:
  // the answer and the event carry the new index, the directory keeps its
  // old modifiedIndex (only its TTL changes).
  if (!node.dir) {
    if (!refresh) node.value = value;
    node.modified_index = next;
  }
  SetExpiration(node, expiration);
  response.node = Repr(node, false, now);
  response.node.modified_index = next;
  response.etcd_index = next;
  index_ = next;
  Publish(Event{response, refresh}, {});
  return response;
}

absl::StatusOr<Response> MemoryRegistry::CompareAndSwapLocked(
    const std::string& path, const std::string& prev_value, uint64_t prev_index,
    const std::string& value, std::optional<absl::Time> expiration,
    bool refresh, absl::string_view context) {
  if (path == "/") return RootReadOnly(context);
  absl::StatusOr<MemNode*> found =
      FindToCompare(path, prev_value, prev_index, context);
  if (!found.ok()) return found.status();
  MemNode& node = **found;
  const absl::Time now = clock_->Now();
  ++index_;
  Response response;
  response.action = "compareAndSwap";
  response.prev_node = Repr(node, false, now);
  if (!refresh) node.value = value;
  node.modified_index = index_;
  SetExpiration(node, expiration);
  response.node = Repr(node, false, now);
  response.etcd_index = index_;
  Publish(Event{response, refresh}, {});
  return response;
}

Response MemoryRegistry::RemoveLocked(MemNode& node, const char* action) {
  ++index_;
  Response response;
  response.action = action;
  response.node.key = ExternalKey(node.path);
  response.node.dir = node.dir;
  response.node.created_index = node.created_index;
  response.node.modified_index = index_;
  response.prev_node = Repr(node, false, clock_->Now());
  response.etcd_index = index_;
  std::vector<std::string> removed;
  Remove(node, &removed);
  Publish(Event{response, false}, removed);
  return response;
}

absl::StatusOr<Response> MemoryRegistry::CompareAndDeleteLocked(
    const std::string& path, const std::string& prev_value, uint64_t prev_index,
    absl::string_view context) {
  absl::StatusOr<MemNode*> found =
      FindToCompare(path, prev_value, prev_index, context);
  if (!found.ok()) return found.status();
  MemNode& node = **found;
  return RemoveLocked(node, "compareAndDelete");
}

absl::StatusOr<Response> MemoryRegistry::Get(const std::string& key,
                                             const GetOptions& options) {
  if (absl::Status s = CheckBytes("get", key, {}); !s.ok()) return s;
  const std::string path = CleanPath(key);
  const std::string context = absl::StrCat("get ", path);
  std::lock_guard<std::mutex> lock(mu_);
  const absl::Time now = clock_->Now();
  ExpireLocked(now);
  absl::StatusOr<MemNode*> found = Find(path, context);
  if (!found.ok()) return found.status();
  Response response;
  response.action = "get";
  response.node = LoadForGet(**found, options.recursive, now);
  response.etcd_index = index_;
  return response;
}

namespace {

// etcd's HTTP layer refuses an empty prevValue before the store sees it.
absl::Status CheckPrevValue(const std::optional<std::string>& prev_value,
                            absl::string_view context) {
  if (!prev_value.has_value() || !prev_value->empty()) return absl::OkStatus();
  return MapEtcdError(
      0,
      EtcdError{kEtcdPrevValueRequired, "PrevValue is Required in POST form",
                "\"prevValue\" cannot be empty", 0},
      context);
}

}  // namespace

absl::StatusOr<Response> MemoryRegistry::Set(const std::string& key,
                                             const std::string& value,
                                             const SetOptions& options) {
  // A directory, or a refresh, carries no value on the wire.
  const bool sends_value = !options.dir && !options.refresh;
  if (absl::Status s = CheckBytes(
          "set", key,
          {{"value", sends_value ? &value : nullptr},
           {"prevValue",
            options.prev_value.has_value() ? &*options.prev_value : nullptr}});
      !s.ok()) {
    return s;
  }
  const std::string path = CleanPath(key);
  const std::string context = absl::StrCat("set ", path);
  // The checks etcd's HTTP layer makes before the store sees the request;
  // their errors carry index 0, as etcd's do.
  if (absl::Status s = CheckPrevValue(options.prev_value, context); !s.ok()) {
    return s;
  }
  if (options.refresh && !options.ttl.has_value()) {
    return MapEtcdError(
        0,
        EtcdError{kEtcdRefreshTtlRequired, "A TTL must be provided on refresh",
                  "No TTL value set", 0},
        context);
  }
  std::optional<int64_t> ttl_seconds;
  if (options.ttl.has_value()) {
    absl::StatusOr<int64_t> ttl = TtlSeconds(*options.ttl);
    if (!ttl.ok()) return ttl.status();
    ttl_seconds = *ttl;
  }
  const std::string sent_value = sends_value ? value : std::string();
  const std::string prev_value = options.prev_value.value_or("");
  const uint64_t prev_index = options.prev_index.value_or(0);

  std::lock_guard<std::mutex> lock(mu_);
  const absl::Time now = clock_->Now();
  ExpireLocked(now);
  std::optional<absl::Time> expiration;
  if (ttl_seconds.has_value()) expiration = now + absl::Seconds(*ttl_seconds);
  // etcd's applierV2store.Put picks the store operation like this.
  if (options.prev_exist.has_value()) {
    if (*options.prev_exist) {
      if (prev_index == 0 && prev_value.empty()) {
        return UpdateLocked(path, sent_value, expiration, options.refresh,
                            context);
      }
      return CompareAndSwapLocked(path, prev_value, prev_index, sent_value,
                                  expiration, options.refresh, context);
    }
    absl::StatusOr<Response> response =
        CreateLocked(path, options.dir, sent_value, false, false, expiration,
                     "create", context);
    if (response.ok()) Publish(Event{*response, false}, {});
    return response;
  }
  if (prev_index > 0 || !prev_value.empty()) {
    return CompareAndSwapLocked(path, prev_value, prev_index, sent_value,
                                expiration, options.refresh, context);
  }
  return SetLocked(path, options.dir, sent_value, expiration, options.refresh,
                   context);
}

absl::StatusOr<Response> MemoryRegistry::CreateInOrder(
    const std::string& dir, const std::string& value,
    const CreateInOrderOptions& options) {
  if (absl::Status s =
          CheckBytes("create in order under", dir, {{"value", &value}});
      !s.ok()) {
    return s;
  }
  const std::string path = CleanPath(dir);
  const std::string context = absl::StrCat("create in order ", path);
  std::optional<int64_t> ttl_seconds;
  if (options.ttl.has_value()) {
    absl::StatusOr<int64_t> ttl = TtlSeconds(*options.ttl);
    if (!ttl.ok()) return ttl.status();
    ttl_seconds = *ttl;
  }
  std::lock_guard<std::mutex> lock(mu_);
  const absl::Time now = clock_->Now();
  ExpireLocked(now);
  std::optional<absl::Time> expiration;
  if (ttl_seconds.has_value()) expiration = now + absl::Seconds(*ttl_seconds);
  absl::StatusOr<Response> response =
      CreateLocked(path, false, value, /*unique=*/true, false, expiration,
                   "create", context);
  if (response.ok()) Publish(Event{*response, false}, {});
  return response;
}

absl::StatusOr<Response> MemoryRegistry::Delete(const std::string& key,
                                                const DeleteOptions& options) {
  if (absl::Status s = CheckBytes(
          "delete", key,
          {{"prevValue",
            options.prev_value.has_value() ? &*options.prev_value : nullptr}});
      !s.ok()) {
    return s;
  }
  const std::string path = CleanPath(key);
  const std::string context = absl::StrCat("delete ", path);
  if (absl::Status s = CheckPrevValue(options.prev_value, context); !s.ok()) {
    return s;
  }
  const std::string prev_value = options.prev_value.value_or("");
  const uint64_t prev_index = options.prev_index.value_or(0);
  std::lock_guard<std::mutex> lock(mu_);
  ExpireLocked(clock_->Now());
  if (prev_index > 0 || !prev_value.empty()) {
    return CompareAndDeleteLocked(path, prev_value, prev_index, context);
  }
  if (path == "/") return RootReadOnly(context);
  absl::StatusOr<MemNode*> found = Find(path, context);
  if (!found.ok()) return found.status();
  MemNode& node = **found;
  if (node.dir && !options.dir && !options.recursive)
    return NotFile(path, context);
  if (node.dir && !options.recursive && !node.children.empty()) {
    return Error(kEtcdDirNotEmpty, "Directory not empty", path, context);
  }
  return RemoveLocked(node, "delete");
}

absl::StatusOr<Response> MemoryRegistry::Watch(const std::string& key,
                                               const WatchOptions& options) {
  if (absl::Status s = CheckBytes("watch", key, {}); !s.ok()) return s;
  const std::string path = CleanPath(key);
  const std::string context = absl::StrCat("watch ", path);
  // Registered before taking mu_ (an already-cancelled token runs the
  // callback at once, and the callback takes mu_) and destroyed after
  // releasing it (destruction waits for a running callback).
  CancelToken::Registration registration;
  if (options.cancel != nullptr) {
    registration = options.cancel->OnCancel([this] {
      std::lock_guard<std::mutex> lock(mu_);
      cv_.notify_all();
    });
  }
  std::unique_lock<std::mutex> lock(mu_);
  // As the etcd client does, a cancelled or expired call fails before it
  // looks at anything, even when its event is already in the history.
  const absl::Time start = clock_->Now();
  if (absl::Status s = WatchEnded(options, start, context); !s.ok()) return s;
  ExpireLocked(start);
  Watcher watcher;
  watcher.key = path;
  watcher.recursive = options.recursive;
  watcher.since = options.wait_index == 0 ? index_ + 1 : options.wait_index;
  watcher.start_index = index_;
  absl::StatusOr<std::optional<Response>> past =
      ScanHistory(path, options.recursive, watcher.since, context);
  if (!past.ok()) return past.status();
  if (past->has_value()) return std::move(**past);

  watchers_.push_back(&watcher);
  absl::Status status;
  while (!watcher.result.has_value()) {
    const absl::Time now = clock_->Now();
    ExpireLocked(now);
    if (watcher.result.has_value()) break;
    status = WatchEnded(options, now, context);
    if (!status.ok()) break;
    absl::Time wake = options.deadline;
    if (!expiry_queue_.empty())
      wake = std::min(wake, SweepAt(expiry_queue_.begin()->first.first));
    clock_->WaitUntil(cv_, lock, wake);
  }
  if (!watcher.result.has_value()) {
    watchers_.remove(&watcher);
    return status;
  }
  return std::move(*watcher.result);
}

}  // namespace

std::unique_ptr<KeysApi> NewMemoryRegistry(const MemoryOptions& options) {
  return std::make_unique<MemoryRegistry>(options);
}

}  // namespace leasehold::registry
