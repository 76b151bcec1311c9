#include "bench/naive_lock.h"

#include <optional>

#include "registry/errors.h"

namespace leasehold::bench {

absl::Status NaiveLock::Lock(absl::Time deadline) {
  registry::SetOptions create;
  create.prev_exist = false;
  create.ttl = ttl_;
  while (true) {
    absl::StatusOr<registry::Response> created =
        keys_->Set(key_, "naive", create);
    if (created.ok()) {
      index_ = created->node.modified_index;
      return absl::OkStatus();
    }
    if (!absl::IsAlreadyExists(created.status())) return created.status();
    // etcd's "key already exists" carries the store's index: watching from
    // the next one misses no release that came after the failed create.
    const std::optional<registry::EtcdError> error =
        registry::GetEtcdError(created.status());
    registry::WatchOptions watch;
    watch.wait_index = error.has_value() ? error->index + 1 : 0;
    watch.deadline = deadline;
    absl::StatusOr<registry::Response> event = keys_->Watch(key_, watch);
    // Any change, or a history that no longer reaches wait_index: all try
    // again.
    if (!event.ok() && !absl::IsOutOfRange(event.status())) {
      return event.status();
    }
  }
}

absl::Status NaiveLock::Unlock() {
  registry::DeleteOptions del;
  del.prev_index = index_;
  return keys_->Delete(key_, del).status();
}

}  // namespace leasehold::bench
