#include "tools/sim/ownership_view.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "lease/lease_value.h"
#include "registry/errors.h"

namespace leasehold::sim {
namespace {

constexpr char kUnitPrefix[] = "unit-";

// The views alive in the process, by registry, prefix and unit count (an
// expired slot is replaced by the next Shared call for it).
std::mutex views_mu;
std::map<std::tuple<registry::KeysApi*, std::string, int>,
         std::weak_ptr<OwnershipView>>&
Views() {
  static auto* views =
      new std::map<std::tuple<registry::KeysApi*, std::string, int>,
                   std::weak_ptr<OwnershipView>>();
  return *views;
}

OwnershipView::Holder HolderOf(const registry::Node& node) {
  lease::LeaseValue value = lease::DecodeLeaseValue(node.value);
  return {std::move(value.machine_id), value.version};
}

}  // namespace

std::string UnitName(int i) {
  return absl::StrFormat("%s%02d", kUnitPrefix, i);
}

absl::StatusOr<std::shared_ptr<OwnershipView>> OwnershipView::Shared(
    registry::KeysApi* keys, Clock* clock, const std::string& prefix,
    int units) {
  std::lock_guard<std::mutex> lock(views_mu);
  std::weak_ptr<OwnershipView>& slot = Views()[{keys, prefix, units}];
  if (std::shared_ptr<OwnershipView> view = slot.lock()) return view;
  std::shared_ptr<OwnershipView> view(
      new OwnershipView(keys, clock, prefix, units));
  absl::StatusOr<uint64_t> index = view->Reload();
  if (!index.ok()) return index.status();
  absl::StatusOr<std::unique_ptr<lease::internal::WatchHub::Subscription>>
      subscription = lease::internal::WatchHub::Subscribe(
          keys, clock, prefix, view->dir_, *index + 1,
          [](const registry::Response&) { return true; });
  if (!subscription.ok()) return subscription.status();
  view->subscription_ = *std::move(subscription);
  view->follower_ = std::thread([raw = view.get()] { raw->Follow(); });
  slot = view;
  return view;
}

OwnershipView::OwnershipView(registry::KeysApi* keys, Clock* clock,
                             std::string prefix, int units)
    : keys_(keys),
      clock_(clock),
      prefix_(std::move(prefix)),
      dir_(absl::StrCat(prefix_, "lease/")),
      units_(units) {}

OwnershipView::~OwnershipView() {
  stop_.Cancel();
  if (follower_.joinable()) follower_.join();
}

int OwnershipView::UnitNumber(const std::string& name) const {
  int i = 0;
  if (!absl::StartsWith(name, kUnitPrefix) ||
      !absl::SimpleAtoi(absl::string_view(name).substr(sizeof(kUnitPrefix) - 1),
                        &i) ||
      i < 0 || i >= units_ || UnitName(i) != name) {
    return -1;
  }
  return i;
}

void OwnershipView::Clear() {
  holders_.clear();
  units_of_.clear();
  present_.clear();
  free_.clear();
  for (int i = 0; i < units_; ++i) free_.insert(free_.end(), i);
}

void OwnershipView::Put(const std::string& name, Holder holder) {
  Drop(name);
  if (const int unit = UnitNumber(name); unit >= 0) {
    free_.erase(unit);
    ++units_of_[holder.machine_id];
  } else if (absl::StartsWith(name, kPresencePrefix)) {
    present_.insert(name.substr(sizeof(kPresencePrefix) - 1));
  }
  holders_[name] = std::move(holder);
}

void OwnershipView::Drop(const std::string& name) {
  auto it = holders_.find(name);
  if (it == holders_.end()) return;
  if (const int unit = UnitNumber(name); unit >= 0) {
    free_.insert(unit);
    auto count = units_of_.find(it->second.machine_id);
    if (--count->second == 0) units_of_.erase(count);
  } else if (absl::StartsWith(name, kPresencePrefix)) {
    present_.erase(name.substr(sizeof(kPresencePrefix) - 1));
  }
  holders_.erase(it);
}

absl::StatusOr<uint64_t> OwnershipView::Reload() {
  registry::GetOptions get;
  get.quorum = true;
  absl::StatusOr<registry::Response> r =
      keys_->Get(dir_.substr(0, dir_.size() - 1), get);
  uint64_t index = 0;
  if (r.ok()) {
    index = r->etcd_index;
  } else if (absl::IsNotFound(r.status())) {
    std::optional<registry::EtcdError> error =
        registry::GetEtcdError(r.status());
    index = error.has_value() ? error->index : 0;
  } else {
    return r.status();
  }
  std::lock_guard<std::mutex> lock(mu_);
  Clear();
  if (r.ok()) {
    for (const registry::Node& node : r->node.nodes) {
      if (!node.dir) {
        Put(node.key.substr(node.key.rfind('/') + 1), HolderOf(node));
      }
    }
  }
  return index;
}

void OwnershipView::Apply(const registry::Response& event) {
  const std::string& key = event.node.key;
  const std::string& action = event.action;
  const bool removed =
      action == "delete" || action == "compareAndDelete" || action == "expire";
  std::lock_guard<std::mutex> lock(mu_);
  if (!absl::StartsWith(key, dir_)) {
    // The directory or one of its parents: everything under it went.
    if (removed) Clear();
    return;
  }
  const std::string name = key.substr(dir_.size());
  if (removed) {
    Drop(name);
  } else if (!event.node.dir) {
    Put(name, HolderOf(event.node));
  }
}

void OwnershipView::Follow() {
  while (!stop_.cancelled()) {
    absl::StatusOr<registry::Response> event =
        subscription_->Next(absl::InfiniteFuture(), &stop_);
    if (event.ok()) {
      Apply(*event);
    } else if (absl::IsOutOfRange(event.status())) {
      // Events were missed: the hub watches on from a fresh read of its
      // own, so a read now misses nothing it will not hand us.
      while (!stop_.cancelled() && !Reload().ok()) {
        clock_->SleepFor(absl::Milliseconds(200));
      }
    }
    // Any other error: the hub retries its watch and hands us what follows.
  }
}

OwnershipView::Summary OwnershipView::Summarize() const {
  std::lock_guard<std::mutex> lock(mu_);
  Summary summary;
  summary.machines = static_cast<int>(present_.size());
  summary.free_units = static_cast<int>(free_.size());
  summary.fewest_units = present_.empty() ? 0 : units_;
  for (const std::string& machine : present_) {
    auto it = units_of_.find(machine);
    summary.fewest_units =
        std::min(summary.fewest_units, it == units_of_.end() ? 0 : it->second);
  }
  if (auto it = holders_.find(kEngineLease); it != holders_.end()) {
    summary.engine = it->second;
  }
  return summary;
}

int OwnershipView::UnitsOf(const std::string& machine_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = units_of_.find(machine_id);
  return it == units_of_.end() ? 0 : it->second;
}

std::vector<std::string> OwnershipView::FreeUnits(int from, int max) const {
  std::vector<std::string> units;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = free_.lower_bound(from);
  for (int taken = 0; taken < max && taken < static_cast<int>(free_.size());
       ++taken, ++it) {
    if (it == free_.end()) it = free_.begin();  // wrap around
    units.push_back(UnitName(*it));
  }
  return units;
}

}  // namespace leasehold::sim
