#include "lease/queue.h"

#include <algorithm>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "lease/validate.h"
#include "lease/watch_hub.h"
#include "registry/errors.h"

namespace leasehold::lease::internal {
namespace {

// Creates of a queue key whose outcome stays unknown before a waiter gives
// up: each is remembered as a stray, and the next try has a fresh value.
constexpr int kMaxCreates = 3;

// The events that can let `my_key` in: removals, after `after_index`, of a
// key in `ahead` (nullopt: of any key), or of `my_key` or a parent of the
// queue's directory. The queue is its keys' creation order, not their
// names' (etcd v3 names in-order keys at random), and a key created after
// the read that found `ahead` queues behind us, so `ahead` is all that can
// let us in until the next read.
WatchHub::Filter RemovalsAhead(std::string my_key,
                               std::optional<std::vector<std::string>> ahead,
                               uint64_t after_index) {
  if (ahead.has_value()) std::sort(ahead->begin(), ahead->end());
  return [my_key = std::move(my_key), ahead = std::move(ahead),
          after_index](const registry::Response& event) {
    return event.node.modified_index > after_index &&
           ((IsRemoval(event) &&
             (!ahead.has_value() ||
              std::binary_search(ahead->begin(), ahead->end(),
                                 event.node.key))) ||
            RemovesKeyOrParent(event, my_key));
  };
}

[[noreturn]] void Throw(const absl::Status& status) {
  throw std::system_error(
      std::make_error_code(std::errc::resource_unavailable_try_again),
      status.ToString());
}

}  // namespace

bool IsRemoval(const registry::Response& event) {
  return event.action == "delete" || event.action == "compareAndDelete" ||
         event.action == "expire";
}

bool RemovesKeyOrParent(const registry::Response& event,
                        const std::string& key) {
  const std::string& removed = event.node.key;
  return IsRemoval(event) &&
         (removed == key ||
          (absl::StartsWith(key, removed) && key[removed.size()] == '/'));
}

CancelOrLost::CancelOrLost(const CancelToken* cancel, const Signal& lost) {
  if (cancel != nullptr) {
    on_cancel_ = cancel->OnCancel([this] { stop_.Cancel(); });
  }
  on_lost_ = lost.token().OnCancel([this] { stop_.Cancel(); });
}

void StrayKeys::Add(std::string value) {
  std::lock_guard<std::mutex> lock(mu_);
  values_.push_back(std::move(value));
}

void StrayKeys::Sweep(registry::KeysApi* keys, Queue& queue) {
  std::vector<std::string> values;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (values_.empty()) return;
    values = values_;
  }
  auto stray = [&](const registry::Node& node) {
    return std::find(values.begin(), values.end(), node.value) != values.end();
  };
  for (const registry::Node& node : queue.keys) {
    if (!stray(node)) continue;
    registry::DeleteOptions del;
    del.prev_index = node.modified_index;
    const absl::Status deleted = keys->Delete(node.key, del).status();
    if (deleted.ok() || absl::IsNotFound(deleted)) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = std::find(values_.begin(), values_.end(), node.value);
      if (it != values_.end()) values_.erase(it);
    }
  }
  queue.keys.erase(std::remove_if(queue.keys.begin(), queue.keys.end(), stray),
                   queue.keys.end());
}

absl::StatusOr<Queue> ReadQueue(registry::KeysApi* keys,
                                const std::string& dir) {
  registry::GetOptions get;
  get.sorted = true;
  get.quorum = true;
  absl::StatusOr<registry::Response> r = keys->Get(dir, get);
  Queue queue;
  if (absl::IsNotFound(r.status())) {
    std::optional<registry::EtcdError> error =
        registry::GetEtcdError(r.status());
    if (error.has_value()) queue.etcd_index = error->index;
    return queue;
  }
  if (!r.ok()) return r.status();
  queue.etcd_index = r->etcd_index;
  for (registry::Node& node : r->node.nodes) {
    if (!node.dir) queue.keys.push_back(std::move(node));
  }
  std::sort(queue.keys.begin(), queue.keys.end(),
            [](const registry::Node& a, const registry::Node& b) {
              return a.created_index < b.created_index;
            });
  return queue;
}

TurnRule FirstSlots(size_t slots) {
  return [slots](const std::vector<registry::Node>&,
                 size_t position) -> absl::StatusOr<std::optional<Blockers>> {
    if (position < slots) return std::nullopt;
    // With one slot only our predecessor's departure lets us in (waking on
    // more would wake every waiter at each unlock); no key is created
    // between it and us. With several, any key ahead of ours can.
    return Blockers{slots == 1 ? position - 1 : 0, position - 1};
  };
}

absl::Status WaitForTurn(registry::KeysApi* keys, Clock* clock,
                         const std::string& root, const std::string& dir,
                         const std::string& my_key, const TurnRule& rule,
                         absl::Time deadline, const CancelToken* cancel,
                         StrayKeys* strays) {
  std::unique_ptr<WatchHub::Subscription> events;
  while (true) {
    absl::StatusOr<Queue> queue = ReadQueue(keys, dir);
    if (!queue.ok()) return queue.status();
    if (strays != nullptr) strays->Sweep(keys, *queue);
    auto mine = std::find_if(
        queue->keys.begin(), queue->keys.end(),
        [&](const registry::Node& node) { return node.key == my_key; });
    if (mine == queue->keys.end()) {
      return absl::NotFoundError(
          absl::StrCat(my_key, ": not in the queue (expired or deleted)"));
    }
    absl::StatusOr<std::optional<Blockers>> blockers =
        rule(queue->keys, mine - queue->keys.begin());
    if (!blockers.ok()) return blockers.status();
    if (!blockers->has_value()) return absl::OkStatus();
    std::vector<std::string> ahead;
    for (size_t i = (*blockers)->first; i <= (*blockers)->last; ++i) {
      ahead.push_back(queue->keys[i].key);
    }
    WatchHub::Filter lets_us_in =
        RemovalsAhead(my_key, std::move(ahead), queue->etcd_index);
    if (events == nullptr) {
      // From just after our read: nothing falls in between.
      absl::StatusOr<std::unique_ptr<WatchHub::Subscription>> subscribed =
          WatchHub::Subscribe(keys, clock, root, absl::StrCat(dir, "/"),
                              queue->etcd_index + 1, std::move(lets_us_in));
      if (!subscribed.ok()) return subscribed.status();
      events = std::move(*subscribed);
    } else {
      events->SetFilter(std::move(lets_us_in));
    }
    absl::StatusOr<registry::Response> event = events->Next(deadline, cancel);
    // A removal that lets us in, or events missed: re-read.
    if (!event.ok() && !absl::IsOutOfRange(event.status())) {
      return event.status();
    }
    // Until the read shows which departures still matter, any may.
    events->SetFilter(RemovalsAhead(my_key, std::nullopt, 0));
  }
}

QueueHold::QueueHold(Session* session, std::string kind, std::string name,
                     TurnRule rule, std::string tag)
    : session_(session),
      kind_(std::move(kind)),
      name_(std::move(name)),
      dir_(absl::StrCat(session->prefix(), kind_, "/", name_)),
      rule_(std::move(rule)),
      tag_(std::move(tag)) {}

QueueHold::~QueueHold() {
  std::shared_ptr<SessionKey> key;
  {
    std::lock_guard<std::mutex> lock(mu_);
    key = std::move(key_);
  }
  if (key != nullptr) key->Release().IgnoreError();
}

std::string QueueHold::What() const {
  return absl::StrCat(kind_, " \"", name_, "\"");
}

bool QueueHold::holds() const {
  std::lock_guard<std::mutex> lock(mu_);
  return held_ && !lost_->fired();
}

bool QueueHold::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return key_ != nullptr && !held_;
}

std::string QueueHold::key() const {
  std::lock_guard<std::mutex> lock(mu_);
  return key_ != nullptr ? key_->key() : "";
}

uint64_t QueueHold::fence() const {
  std::lock_guard<std::mutex> lock(mu_);
  return key_ != nullptr ? key_->created_index() : 0;
}

std::shared_ptr<const Signal> QueueHold::lost() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lost_;
}

absl::Time QueueHold::expiry() const {
  std::shared_ptr<SessionKey> key;
  {
    std::lock_guard<std::mutex> lock(mu_);
    key = key_;
  }
  return key != nullptr ? key->expiry() : absl::InfinitePast();
}

std::shared_ptr<SessionKey> QueueHold::held_key() const {
  std::lock_guard<std::mutex> lock(mu_);
  return held_ ? key_ : nullptr;
}

absl::StatusOr<std::shared_ptr<SessionKey>> QueueHold::Enqueue(
    const std::optional<std::string>& value, int creates) {
  absl::Status valid = ValidateName(absl::StrCat(kind_, " name"), name_);
  if (!valid.ok()) return valid;
  std::lock_guard<std::mutex> lock(mu_);
  if (key_ != nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        What(), ": already held or being acquired through this object"));
  }
  const bool unique = !value.has_value();
  absl::Status failure;
  for (int attempt = 1; attempt <= creates; ++attempt) {
    const std::string stored =
        unique ? absl::StrCat(tag_, session_->UniqueValue()) : *value;
    absl::StatusOr<std::shared_ptr<SessionKey>> key =
        session_->CreateKey(dir_, stored, unique);
    if (key.ok()) {
      key_ = *key;
      lost_ = (*key)->lost();
      return key;
    }
    failure = registry::WithContext(key.status(), What());
    // A create that may still land: look for it from now on, and try
    // again under a fresh value.
    if (!unique || !registry::IsOutcomeUnknown(key.status())) break;
    strays_.Add(stored);
  }
  return failure;
}

absl::StatusOr<Queue> QueueHold::Read() {
  absl::StatusOr<Queue> queue = ReadQueue(session_->keys(), dir_);
  if (queue.ok()) strays_.Sweep(session_->keys(), *queue);
  return queue;
}

void QueueHold::Abandon(const std::shared_ptr<SessionKey>& key) {
  key->Release().IgnoreError();  // if it fails, the key expires at its TTL
  std::lock_guard<std::mutex> lock(mu_);
  if (key_ == key) key_.reset();
}

absl::Status QueueHold::Acquire(const std::optional<std::string>& value,
                                absl::Time deadline,
                                const CancelToken* cancel) {
  absl::StatusOr<std::shared_ptr<SessionKey>> key = Enqueue(value, kMaxCreates);
  if (!key.ok()) return key.status();
  const std::shared_ptr<const Signal> lost = (*key)->lost();
  absl::Status status;
  {
    CancelOrLost stop(cancel, *lost);
    status = WaitForTurn(session_->keys(), session_->clock(),
                         session_->prefix(), dir_, (*key)->key(), rule_,
                         deadline, stop.token(), &strays_);
  }
  if (status.ok() && !lost->fired()) {
    std::lock_guard<std::mutex> lock(mu_);
    held_ = true;
    return absl::OkStatus();
  }
  if (lost->fired()) {
    status = absl::AbortedError(absl::StrCat(What(), ": lost while waiting (",
                                             lost->cause().message(), ")"));
  } else if (absl::IsNotFound(status)) {
    status = absl::AbortedError(absl::StrCat(
        What(), ": queue key vanished while waiting (", status.message(), ")"));
  } else {
    status = registry::WithContext(status, What());
  }
  Abandon(*key);
  return status;
}

absl::StatusOr<bool> QueueHold::TryAcquire(
    const std::optional<std::string>& value) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (key_ != nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          What(), ": already held or being acquired through this object"));
    }
  }
  absl::StatusOr<Queue> before = Read();
  if (!before.ok()) return before.status();
  // Would a key queued now hold? If not, one round trip.
  absl::StatusOr<std::optional<Blockers>> blocked =
      rule_(before->keys, before->keys.size());
  if (!blocked.ok()) return registry::WithContext(blocked.status(), What());
  if (blocked->has_value()) return false;

  absl::StatusOr<std::shared_ptr<SessionKey>> key = Enqueue(value, 1);
  if (!key.ok()) return key.status();
  absl::StatusOr<Queue> after = Read();
  if (!after.ok()) {
    Abandon(*key);
    return after.status();
  }
  auto mine = std::find_if(
      after->keys.begin(), after->keys.end(),
      [&](const registry::Node& node) { return node.key == (*key)->key(); });
  if (mine != after->keys.end() && !(*key)->lost()->fired()) {
    blocked = rule_(after->keys, mine - after->keys.begin());
    if (!blocked.ok()) {
      Abandon(*key);
      return registry::WithContext(blocked.status(), What());
    }
    if (!blocked->has_value()) {
      std::lock_guard<std::mutex> lock(mu_);
      held_ = true;
      return true;
    }
  }
  Abandon(*key);  // someone queued between our read and our create
  return false;
}

absl::Status QueueHold::Release() {
  std::shared_ptr<SessionKey> key;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (key_ == nullptr || !held_) {
      return absl::FailedPreconditionError(absl::StrCat(What(), ": not held"));
    }
    key = std::move(key_);
    held_ = false;
  }
  absl::Status status = key->Release();
  if (status.ok()) return status;
  return registry::WithContext(status, absl::StrCat(What(), ": release"));
}

void ThrowIfError(const absl::Status& status) {
  if (!status.ok()) Throw(status);
}

bool ValueOrThrow(const absl::StatusOr<bool>& acquired) {
  ThrowIfError(acquired.status());
  return *acquired;
}

bool AcquiredOrThrow(const absl::Status& status) {
  if (absl::IsDeadlineExceeded(status)) return false;
  ThrowIfError(status);
  return true;
}

}  // namespace leasehold::lease::internal
