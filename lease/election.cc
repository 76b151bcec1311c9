#include "lease/election.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace leasehold::lease {
namespace {

std::string ElectionDir(const std::string& prefix, const std::string& name) {
  return absl::StrCat(prefix, "election/", name);
}

}  // namespace

const char* ElectionStatusName(ElectionStatus status) {
  switch (status) {
    case ElectionStatus::kFollower:
      return "follower";
    case ElectionStatus::kCandidate:
      return "candidate";
    case ElectionStatus::kLeader:
      return "leader";
  }
  return "unknown";
}

absl::StatusOr<std::optional<LeaderInfo>> ReadLeader(registry::KeysApi* keys,
                                                     const std::string& prefix,
                                                     const std::string& name) {
  absl::StatusOr<internal::Queue> queue =
      internal::ReadQueue(keys, ElectionDir(prefix, name));
  if (!queue.ok()) return queue.status();
  if (queue->keys.empty()) return std::nullopt;
  const registry::Node& first = queue->keys.front();
  return LeaderInfo{first.value, first.key, first.created_index};
}

// ------------------------------------------------------------ Election

Election::Election(Session* session, std::string name)
    : hold_(session, "election", std::move(name), internal::FirstSlots(1)) {}

absl::Status Election::Campaign(const std::string& value, absl::Time deadline,
                                const CancelToken* cancel) {
  return hold_.Acquire(value, deadline, cancel);
}

absl::Status Election::Proclaim(const std::string& value) {
  std::shared_ptr<SessionKey> key = hold_.held_key();
  if (key == nullptr || key->lost()->fired()) {
    return absl::FailedPreconditionError(
        absl::StrCat("election \"", name(), "\": proclaim: not the leader"));
  }
  absl::Status status = key->SetValue(value);
  if (status.ok()) return status;
  return absl::Status(
      status.code(),
      absl::StrCat("election \"", name(), "\": proclaim: ", status.message()));
}

absl::Status Election::Resign() {
  if (hold_.held_key() == nullptr) return absl::OkStatus();
  return hold_.Release();
}

absl::StatusOr<std::optional<LeaderInfo>> Election::Leader() const {
  return ReadLeader(hold_.session()->keys(), hold_.session()->prefix(), name());
}

std::unique_ptr<LeaderObserver> Election::Observe() const {
  return std::make_unique<LeaderObserver>(hold_.session()->keys(),
                                          hold_.session()->prefix(), name());
}

ElectionStatus Election::Status() const {
  if (hold_.holds()) return ElectionStatus::kLeader;
  if (hold_.queued()) return ElectionStatus::kCandidate;
  return ElectionStatus::kFollower;
}

// ------------------------------------------------------- LeaderObserver

LeaderObserver::LeaderObserver(registry::KeysApi* keys,
                               const std::string& prefix,
                               const std::string& name)
    : keys_(keys), dir_(ElectionDir(prefix, name)) {}

std::optional<LeaderInfo> LeaderObserver::Current() const {
  if (candidates_.empty()) return std::nullopt;
  const auto& [key, candidate] = *candidates_.begin();
  return LeaderInfo{candidate.value, key, candidate.created_index};
}

void LeaderObserver::Apply(const registry::Response& event) {
  const std::string& key = event.node.key;
  // The election's directory or one above it went: no candidates are left.
  if (internal::RemovesKeyOrParent(event, dir_)) {
    candidates_.clear();
    return;
  }
  if (!absl::StartsWith(key, absl::StrCat(dir_, "/")) || event.node.dir) {
    return;
  }
  if (internal::IsRemoval(event)) {
    candidates_.erase(key);
    return;
  }
  Candidate& candidate = candidates_[key];
  if (event.node.created_index != 0) {
    candidate.created_index = event.node.created_index;
  }
  candidate.value = event.node.value;
}

absl::StatusOr<std::optional<LeaderInfo>> LeaderObserver::Next(
    absl::Time deadline, const CancelToken* cancel) {
  while (true) {
    if (!synced_) {
      absl::StatusOr<internal::Queue> queue = internal::ReadQueue(keys_, dir_);
      if (!queue.ok()) return queue.status();
      candidates_.clear();
      for (const registry::Node& node : queue->keys) {
        candidates_[node.key] = Candidate{node.created_index, node.value};
      }
      next_index_ = queue->etcd_index + 1;
      synced_ = true;
    } else {
      registry::WatchOptions watch;
      watch.wait_index = next_index_;
      watch.recursive = true;
      watch.deadline = deadline;
      watch.cancel = cancel;
      absl::StatusOr<registry::Response> event = keys_->Watch(dir_, watch);
      if (absl::IsOutOfRange(event.status())) {
        synced_ = false;  // history gap: re-read
        continue;
      }
      if (!event.ok()) return event.status();
      next_index_ = event->node.modified_index + 1;
      Apply(*event);
    }
    std::optional<LeaderInfo> current = Current();
    if (!reported_ || current != last_) {
      reported_ = true;
      last_ = current;
      return current;
    }
  }
}

}  // namespace leasehold::lease
