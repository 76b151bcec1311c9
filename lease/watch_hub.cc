#include "lease/watch_hub.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "registry/errors.h"

namespace leasehold::lease::internal {
namespace {

// Events a hub keeps for subscribers that read before they subscribed (as
// many as etcd keeps).
constexpr size_t kHistorySize = 1000;

struct Subscriber {
  std::string dir;
  std::condition_variable cv;  // waits with the hub's mu
  // Guarded by the hub's mu.
  WatchHub::Filter wanted;
  std::deque<absl::StatusOr<registry::Response>> events;
};

// `key` is in directory `dir` (which ends in '/'), or is `dir` itself or
// one of its parents (whose removal removes `dir`).
bool IsUnderOrAbove(const std::string& key, const std::string& dir) {
  return absl::StartsWith(key, dir) ||
         absl::StartsWith(dir, absl::StrCat(key, "/"));
}

// REQUIRES: the hub's mu held.
bool Wants(const Subscriber& sub, const registry::Response& event) {
  return IsUnderOrAbove(event.node.key, sub.dir) && sub.wanted(event);
}

// The store's index as a read of `key` reports it (also for a missing key).
absl::StatusOr<uint64_t> CurrentIndex(registry::KeysApi* keys,
                                      const std::string& key) {
  registry::GetOptions get;
  get.quorum = true;
  absl::StatusOr<registry::Response> r = keys->Get(key, get);
  if (r.ok()) return r->etcd_index;
  if (absl::IsNotFound(r.status())) {
    std::optional<registry::EtcdError> error =
        registry::GetEtcdError(r.status());
    return error.has_value() ? error->index : 0;
  }
  return r.status();
}

class Hub : public std::enable_shared_from_this<Hub> {
 public:
  Hub(registry::KeysApi* keys, Clock* clock, std::string root)
      : keys_(keys), clock_(clock), root_(std::move(root)) {}

  // Reads the root's index and starts watching after it.
  absl::Status Start() {
    absl::StatusOr<uint64_t> index = CurrentIndex(keys_, root_);
    if (!index.ok()) return index.status();
    {
      std::lock_guard<std::mutex> lock(mu_);
      next_index_ = *index + 1;
      history_start_ = next_index_;
    }
    thread_ = std::thread([this] { Run(); });
    return absl::OkStatus();
  }

  // Cancels the watch and waits for the thread. REQUIRES: no subscribers.
  void Stop() {
    stop_.Cancel();
    {
      std::lock_guard<std::mutex> lock(mu_);
      retry_cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
  }

  void SetFilter(Subscriber& sub, WatchHub::Filter wanted) {
    std::lock_guard<std::mutex> lock(mu_);
    sub.wanted = std::move(wanted);
    sub.events.erase(
        std::remove_if(sub.events.begin(), sub.events.end(),
                       [&](const absl::StatusOr<registry::Response>& event) {
                         return event.ok() && !Wants(sub, *event);
                       }),
        sub.events.end());
  }

  // Hands `sub` the events from `from_index` on that it wants: first those
  // handed out already, from the history; kOutOfRange first when the
  // history does not reach back that far.
  void Add(Subscriber* sub, uint64_t from_index) {
    std::lock_guard<std::mutex> lock(mu_);
    if (from_index < history_start_) {
      sub->events.push_back(absl::OutOfRangeError(
          absl::StrCat("watch ", root_, ": events from index ", from_index,
                       " are gone (kept from ", history_start_, ")")));
    } else {
      for (const registry::Response& event : history_) {
        if (event.node.modified_index >= from_index && Wants(*sub, event)) {
          sub->events.push_back(event);
        }
      }
    }
    subs_.push_back(sub);
  }
  // Returns true when it was the last subscriber.
  bool Remove(Subscriber* sub) {
    std::lock_guard<std::mutex> lock(mu_);
    subs_.erase(std::remove(subs_.begin(), subs_.end(), sub), subs_.end());
    return subs_.empty();
  }

  absl::StatusOr<registry::Response> Next(Subscriber& sub, absl::Time deadline,
                                          const CancelToken* cancel) {
    CancelToken::Registration registration;
    if (cancel != nullptr) {
      registration = cancel->OnCancel([this, &sub] {
        std::lock_guard<std::mutex> lock(mu_);
        sub.cv.notify_all();
      });
    }
    std::unique_lock<std::mutex> lock(mu_);
    while (sub.events.empty()) {
      if (cancel != nullptr && cancel->cancelled()) {
        return absl::CancelledError("watch cancelled");
      }
      if (!clock_->WaitUntil(sub.cv, lock, deadline) && sub.events.empty()) {
        return absl::DeadlineExceededError("watch deadline passed");
      }
    }
    absl::StatusOr<registry::Response> event = std::move(sub.events.front());
    sub.events.pop_front();
    return event;
  }

 private:
  void Deliver(const absl::StatusOr<registry::Response>& event)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (Subscriber* sub : subs_) {
      if (event.ok() && !Wants(*sub, *event)) continue;
      sub->events.push_back(event);
      sub->cv.notify_all();
    }
  }

  void Run() {
    while (!stop_.cancelled()) {
      registry::WatchOptions watch;
      {
        std::lock_guard<std::mutex> lock(mu_);
        watch.wait_index = next_index_;
      }
      watch.recursive = true;
      watch.cancel = &stop_;
      absl::StatusOr<registry::Response> event = keys_->Watch(root_, watch);
      if (stop_.cancelled()) return;
      absl::Status failure;
      if (event.ok()) {
        std::lock_guard<std::mutex> lock(mu_);
        next_index_ = event->node.modified_index + 1;
        Deliver(event);
        history_.push_back(*std::move(event));
        if (history_.size() > kHistorySize) {
          history_start_ = history_.front().node.modified_index + 1;
          history_.pop_front();
        }
        continue;
      }
      if (absl::IsOutOfRange(event.status())) {
        // Resume after a fresh read, THEN tell the subscribers to re-read:
        // their reads are then no older than our new starting point.
        absl::StatusOr<uint64_t> index = CurrentIndex(keys_, root_);
        if (index.ok()) {
          std::lock_guard<std::mutex> lock(mu_);
          next_index_ = *index + 1;
          history_.clear();
          history_start_ = next_index_;
          Deliver(event.status());
          continue;
        }
        failure = index.status();
      } else {
        failure = event.status();
      }
      std::unique_lock<std::mutex> lock(mu_);
      Deliver(failure);
      // Do not spin on a registry that keeps failing.
      clock_->WaitUntil(retry_cv_, lock,
                        clock_->Now() + absl::Milliseconds(200));
    }
  }

  registry::KeysApi* const keys_;
  Clock* const clock_;
  const std::string root_;
  CancelToken stop_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable retry_cv_;
  // Every event handed out so far is older, every one to come is not.
  uint64_t next_index_ ABSL_GUARDED_BY(mu_) = 0;
  // The last events handed out, oldest first: every one from
  // history_start_ on.
  std::deque<registry::Response> history_ ABSL_GUARDED_BY(mu_);
  uint64_t history_start_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Subscriber*> subs_ ABSL_GUARDED_BY(mu_);
};

// The running hubs, by registry, clock and root: a hub waits on its clock,
// so subscribers with another clock get a hub of their own.
using HubKey = std::tuple<registry::KeysApi*, Clock*, std::string>;
std::mutex hubs_mu;
std::map<HubKey, std::shared_ptr<Hub>>& Hubs() {
  static auto* hubs = new std::map<HubKey, std::shared_ptr<Hub>>();
  return *hubs;
}

class HubSubscription final : public WatchHub::Subscription {
 public:
  HubSubscription(HubKey key, std::shared_ptr<Hub> hub, std::string dir,
                  uint64_t from_index, WatchHub::Filter wanted)
      : key_(std::move(key)), hub_(std::move(hub)) {
    sub_.dir = std::move(dir);
    sub_.wanted = std::move(wanted);
    hub_->Add(&sub_, from_index);
  }

  ~HubSubscription() override {
    std::shared_ptr<Hub> stopping;
    {
      std::lock_guard<std::mutex> lock(hubs_mu);
      if (hub_->Remove(&sub_)) {
        auto it = Hubs().find(key_);
        if (it != Hubs().end() && it->second == hub_) Hubs().erase(it);
        stopping = hub_;
      }
    }
    if (stopping != nullptr) stopping->Stop();
  }

  absl::StatusOr<registry::Response> Next(absl::Time deadline,
                                          const CancelToken* cancel) override {
    return hub_->Next(sub_, deadline, cancel);
  }

  void SetFilter(WatchHub::Filter wanted) override {
    hub_->SetFilter(sub_, std::move(wanted));
  }

 private:
  const HubKey key_;
  const std::shared_ptr<Hub> hub_;
  Subscriber sub_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<WatchHub::Subscription>> WatchHub::Subscribe(
    registry::KeysApi* keys, Clock* clock, const std::string& root,
    const std::string& dir, uint64_t from_index, Filter wanted) {
  std::lock_guard<std::mutex> lock(hubs_mu);
  HubKey key{keys, clock, root};
  std::shared_ptr<Hub>& hub = Hubs()[key];
  if (hub == nullptr) {
    auto fresh = std::make_shared<Hub>(keys, clock, root);
    absl::Status started = fresh->Start();
    if (!started.ok()) {
      Hubs().erase(key);
      return started;
    }
    hub = std::move(fresh);
  }
  return std::unique_ptr<Subscription>(std::make_unique<HubSubscription>(
      std::move(key), hub, dir, from_index, std::move(wanted)));
}

}  // namespace leasehold::lease::internal
