#include "lease/barrier.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lease/queue.h"
#include "lease/validate.h"
#include "registry/errors.h"

namespace leasehold::lease {
namespace {

// Blocks until `done` holds for `key` as a quorum read shows it (null:
// absent), re-reading after each event on the key (and after a gap in the
// event history). OK once it holds; the read's or the watch's error
// otherwise (kDeadlineExceeded past `deadline`, kCancelled).
absl::Status AwaitKey(registry::KeysApi* keys, const std::string& key,
                      const std::function<bool(const registry::Node*)>& done,
                      absl::Time deadline, const CancelToken* cancel) {
  while (true) {
    registry::GetOptions get;
    get.quorum = true;
    get.deadline = deadline;
    absl::StatusOr<registry::Response> read = keys->Get(key, get);
    uint64_t index = 0;
    if (read.ok()) {
      if (done(&read->node)) return absl::OkStatus();
      index = read->etcd_index;
    } else if (absl::IsNotFound(read.status())) {
      if (done(nullptr)) return absl::OkStatus();
      std::optional<registry::EtcdError> error =
          registry::GetEtcdError(read.status());
      if (error.has_value()) index = error->index;
    } else {
      return read.status();
    }
    registry::WatchOptions watch;
    watch.wait_index = index + 1;  // from just after the read
    watch.deadline = deadline;
    watch.cancel = cancel;
    absl::StatusOr<registry::Response> event = keys->Watch(key, watch);
    if (!event.ok() && !absl::IsOutOfRange(event.status())) {
      return event.status();
    }
  }
}

bool Absent(const registry::Node* node) { return node == nullptr; }

}  // namespace

// -------------------------------------------------------------- Barrier

Barrier::Barrier(registry::KeysApi* keys, std::string prefix, std::string name)
    : keys_(keys),
      name_(std::move(name)),
      key_(absl::StrCat(prefix, "barrier/", name_)) {}

absl::StatusOr<bool> Barrier::Hold(const std::string& value,
                                   absl::Duration ttl) {
  if (absl::Status valid = ValidateName("barrier name", name_); !valid.ok()) {
    return valid;
  }
  registry::SetOptions set;
  set.prev_exist = false;
  if (ttl != absl::InfiniteDuration()) {
    absl::StatusOr<absl::Duration> rounded = RoundPeriod(ttl);
    if (!rounded.ok()) {
      return registry::WithContext(rounded.status(), "barrier ttl");
    }
    set.ttl = *rounded;
  }
  absl::StatusOr<registry::Response> r = keys_->Set(key_, value, set);
  if (r.ok()) return true;
  if (absl::IsAlreadyExists(r.status())) return false;
  return registry::WithContext(r.status(),
                               absl::StrCat("barrier \"", name_, "\": hold"));
}

absl::StatusOr<bool> Barrier::Release() {
  if (absl::Status valid = ValidateName("barrier name", name_); !valid.ok()) {
    return valid;
  }
  absl::StatusOr<registry::Response> r = keys_->Delete(key_, {});
  if (r.ok()) return true;
  if (absl::IsNotFound(r.status())) return false;
  return registry::WithContext(
      r.status(), absl::StrCat("barrier \"", name_, "\": release"));
}

absl::Status Barrier::Wait(absl::Time deadline, const CancelToken* cancel) {
  if (absl::Status valid = ValidateName("barrier name", name_); !valid.ok()) {
    return valid;
  }
  absl::Status status = AwaitKey(keys_, key_, Absent, deadline, cancel);
  if (status.ok()) return status;
  return registry::WithContext(status,
                               absl::StrCat("barrier \"", name_, "\": wait"));
}

// -------------------------------------------------------- DoubleBarrier

DoubleBarrier::DoubleBarrier(Session* session, std::string name, size_t count)
    : session_(session),
      name_(std::move(name)),
      count_(count),
      dir_(absl::StrCat(session->prefix(), "double-barrier/", name_)),
      waiters_(absl::StrCat(dir_, "/waiters")),
      ready_(absl::StrCat(dir_, "/ready")) {}

DoubleBarrier::~DoubleBarrier() { Drop().IgnoreError(); }

std::string DoubleBarrier::What() const {
  return absl::StrCat("double barrier \"", name_, "\"");
}

std::string DoubleBarrier::key() const {
  std::lock_guard<std::mutex> lock(mu_);
  return key_ != nullptr ? key_->key() : "";
}

std::shared_ptr<const Signal> DoubleBarrier::lost() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lost_;
}

absl::Status DoubleBarrier::Drop() {
  std::shared_ptr<SessionKey> key;
  {
    std::lock_guard<std::mutex> lock(mu_);
    key = std::move(key_);
  }
  return key != nullptr ? key->Release() : absl::OkStatus();
}

absl::Status DoubleBarrier::Enter(absl::Time deadline,
                                  const CancelToken* cancel) {
  if (absl::Status valid = ValidateName("double barrier name", name_);
      !valid.ok()) {
    return valid;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (key_ != nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat(What(), ": entered already through this object"));
    }
  }
  auto full = [&] {
    return absl::ResourceExhaustedError(absl::StrCat(
        What(), ": all ", count_, " parties have entered already"));
  };
  // Full already: no key of ours needs to come and go.
  absl::StatusOr<internal::Queue> before =
      internal::ReadQueue(session_->keys(), waiters_);
  if (!before.ok()) return registry::WithContext(before.status(), What());
  if (before->keys.size() >= count_) return full();

  absl::StatusOr<std::shared_ptr<SessionKey>> created = session_->CreateKey(
      waiters_, session_->UniqueValue(), /*unique_value=*/true);
  if (!created.ok()) return registry::WithContext(created.status(), What());
  const std::shared_ptr<SessionKey> key = *created;
  const std::shared_ptr<const Signal> lost = key->lost();
  {
    std::lock_guard<std::mutex> lock(mu_);
    key_ = key;
    lost_ = lost;
  }
  absl::Status status = [&]() -> absl::Status {
    absl::StatusOr<internal::Queue> queue =
        internal::ReadQueue(session_->keys(), waiters_);
    if (!queue.ok()) return queue.status();
    auto mine = std::find_if(
        queue->keys.begin(), queue->keys.end(),
        [&](const registry::Node& node) { return node.key == key->key(); });
    if (mine == queue->keys.end()) {
      return absl::AbortedError(
          absl::StrCat(What(), ": our key vanished while entering"));
    }
    const size_t position = mine - queue->keys.begin();
    if (position >= count_) return full();
    if (position == count_ - 1) {
      // The last to enter: let everyone in.
      return session_->keys()->Set(ready_, key->key(), {}).status();
    }
    internal::CancelOrLost stop(cancel, *lost);
    // `ready` written after our key: a stale one from an earlier round,
    // left by a party that died leaving, does not count.
    return AwaitKey(
        session_->keys(), ready_,
        [&](const registry::Node* node) {
          return node != nullptr && node->modified_index > key->created_index();
        },
        deadline, stop.token());
  }();
  if (status.ok() && !lost->fired()) return status;
  if (lost->fired()) {
    status = absl::AbortedError(absl::StrCat(What(), ": lost while waiting (",
                                             lost->cause().message(), ")"));
  } else if (!absl::IsResourceExhausted(status) && !absl::IsAborted(status)) {
    status = registry::WithContext(status, What());
  }
  Drop().IgnoreError();  // if it fails, the key expires at its TTL
  return status;
}

absl::Status DoubleBarrier::Leave(absl::Time deadline,
                                  const CancelToken* cancel) {
  std::shared_ptr<SessionKey> key;
  {
    std::lock_guard<std::mutex> lock(mu_);
    key = key_;
  }
  if (key == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(What(), ": not entered"));
  }
  registry::KeysApi* keys = session_->keys();
  absl::Status status;
  while (status.ok()) {
    absl::StatusOr<internal::Queue> queue = internal::ReadQueue(keys, waiters_);
    if (!queue.ok()) {
      status = queue.status();
      break;
    }
    if (queue->keys.empty()) break;  // all out
    const registry::Node& oldest = queue->keys.front();
    const registry::Node& newest = queue->keys.back();
    const bool oldest_is_ours = oldest.key == key->key();
    if (oldest_is_ours && queue->keys.size() == 1) {
      // The last one in: clear `ready` for the next round, then go.
      absl::StatusOr<registry::Response> cleared = keys->Delete(ready_, {});
      if (!cleared.ok() && !absl::IsNotFound(cleared.status())) {
        status = cleared.status();
        break;
      }
      status = key->Release();
      break;
    }
    if (oldest_is_ours) {
      // Wait for the others, newest first: if one dies, its key expires.
      status = AwaitKey(keys, newest.key, Absent, deadline, cancel);
      continue;
    }
    status = key->Release();  // no-op once done
    if (status.ok()) {
      status = AwaitKey(keys, oldest.key, Absent, deadline, cancel);
    }
  }
  if (!status.ok()) return registry::WithContext(status, What());
  std::lock_guard<std::mutex> lock(mu_);
  if (key_ == key) key_.reset();
  return absl::OkStatus();
}

}  // namespace leasehold::lease
