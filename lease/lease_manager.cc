#include "lease/lease_manager.h"

#include <algorithm>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lease/lease_value.h"
#include "lease/validate.h"
#include "registry/errors.h"

namespace leasehold::lease {
namespace {

// Attempts of one conditional write whose responses keep getting lost. A
// renew or value write retries at once (on the next member) and reads back
// only when the outcome must be settled; the write's condition makes a late
// landing of an earlier attempt harmless. Other writes retry only after a
// read-back showed the previous attempt did not land.
constexpr int kMaxAttempts = 3;

// The answers of a conditional write that mean "the condition did not hold".
bool IsConditionFailed(const absl::Status& status) {
  return absl::IsAborted(status) || absl::IsAlreadyExists(status) ||
         absl::IsNotFound(status);
}

std::string LeaseContext(absl::string_view name, absl::string_view op) {
  return absl::StrCat("lease \"", name, "\": ", op);
}

// Reads `key` back after a write with a lost response; always a quorum read,
// since a stale member could miss the write. nullopt: the key is absent.
absl::StatusOr<std::optional<registry::Node>> ReadBack(
    registry::KeysApi* keys, const std::string& key,
    absl::Time deadline = absl::InfiniteFuture()) {
  registry::GetOptions quorum;
  quorum.quorum = true;
  quorum.deadline = deadline;
  absl::StatusOr<registry::Response> r = keys->Get(key, quorum);
  if (absl::IsNotFound(r.status())) return std::nullopt;
  if (!r.ok()) return r.status();
  return std::move(r->node);
}

absl::Status StillUnknown(absl::string_view name, absl::string_view op,
                          const absl::Status& cause) {
  return registry::OutcomeUnknownError(
      absl::StrCat(LeaseContext(name, op), ": response lost and not resolved (",
                   cause.message(), ")"));
}

// A period as a TTL (RoundPeriod) that leaves time after its safety margin.
absl::StatusOr<absl::Duration> RoundPeriod(absl::Duration period,
                                           const SafetyMargin& margin) {
  absl::StatusOr<absl::Duration> ttl = lease::RoundPeriod(period);
  if (!ttl.ok()) return ttl;
  if (margin.fraction < 0 || margin.fixed < absl::ZeroDuration() ||
      margin.For(*ttl) >= *ttl) {
    return absl::InvalidArgumentError(absl::StrCat(
        "period ", absl::FormatDuration(*ttl), ": safety margin (",
        margin.fraction, " of it + ", absl::FormatDuration(margin.fixed),
        ") leaves no time to hold it"));
  }
  return ttl;
}

// When a holder must consider a lease granted by a write sent at `sent`
// gone (the expiry rule in lease_manager.h).
absl::Time ExpiryOf(absl::Time sent, absl::Duration ttl,
                    const SafetyMargin& margin) {
  return sent + ttl - margin.For(ttl);
}

LeaseManagerOptions Normalized(LeaseManagerOptions options) {
  if (options.prefix.empty() || options.prefix.front() != '/') {
    options.prefix.insert(options.prefix.begin(), '/');
  }
  if (options.prefix.back() != '/') options.prefix.push_back('/');
  if (options.clock == nullptr) options.clock = RealClock();
  return options;
}

uint64_t RandomSeed() {
  std::random_device device;
  return (uint64_t{device()} << 32) ^ device();
}

}  // namespace

// ---------------------------------------------------------------- Lease

Lease::Lease(registry::KeysApi* keys, Clock* clock, SafetyMargin margin,
             bool adopted, std::string name, std::string key, std::string value,
             LeaseValue holder, uint64_t index, uint64_t fence,
             absl::Duration period, absl::Time expiry)
    : keys_(keys),
      clock_(clock),
      margin_(margin),
      adopted_(adopted),
      name_(std::move(name)),
      key_(std::move(key)),
      machine_id_(std::move(holder.machine_id)),
      version_(holder.version),
      fence_(fence),
      value_(std::move(value)),
      index_(index),
      period_(period),
      expiry_(expiry) {}

uint64_t Lease::index() const {
  std::lock_guard<std::mutex> lock(mu_);
  return index_;
}

absl::Duration Lease::period() const {
  std::lock_guard<std::mutex> lock(mu_);
  return period_;
}

absl::Time Lease::expiry() const {
  std::lock_guard<std::mutex> lock(mu_);
  return expiry_;
}

absl::Duration Lease::time_remaining() const {
  return std::max(expiry() - clock_->Now(), absl::ZeroDuration());
}

void Lease::Granted(uint64_t index, absl::Duration period, absl::Time sent) {
  std::lock_guard<std::mutex> lock(mu_);
  index_ = index;
  period_ = period;
  expiry_ = ExpiryOf(sent, period, margin_);
}

void Lease::Gone() {
  const absl::Time now = clock_->Now();
  std::lock_guard<std::mutex> lock(mu_);
  // Still the bound it was: a holder told late (a slow answer, a thread
  // that ran late) had stopped believing at its expiry, not when told.
  expiry_ = std::min(expiry_, now);
}

absl::Status Lease::Annotate(const absl::Status& status, const char* op,
                             uint64_t index) const {
  return registry::WithContext(
      status,
      absl::StrCat(LeaseContext(name_, op), " (prevIndex ", index, ")"));
}

absl::Time Lease::AttemptDeadline(absl::Time now) const {
  const absl::Duration left = expiry() - now;
  // An expired lease has no time to save: the request timeout applies.
  if (left <= absl::ZeroDuration()) return absl::InfiniteFuture();
  return now + left / 3;
}

bool Lease::IsOurs(const std::string& value) const {
  return value == value_ ||
         std::find(unresolved_values_.begin(), unresolved_values_.end(),
                   value) != unresolved_values_.end();
}

void Lease::Settled() {
  unresolved_since_.reset();
  unresolved_values_.clear();
}

absl::Status Lease::Renew(absl::Duration period) {
  absl::StatusOr<absl::Duration> ttl = RoundPeriod(period, margin_);
  if (!ttl.ok())
    return registry::WithContext(ttl.status(), LeaseContext(name_, "renew"));
  std::lock_guard<std::mutex> op(op_mu_);
  return Write(WriteOp::kRenew, "", *ttl);
}

absl::Status Lease::SetValue(const std::string& value) {
  if (!adopted_) {
    return absl::FailedPreconditionError(
        absl::StrCat(LeaseContext(name_, "set value"),
                     ": only an adopted key's value can be replaced"));
  }
  std::lock_guard<std::mutex> op(op_mu_);
  return Write(WriteOp::kSetValue, value, period());
}

absl::Status Lease::Release() {
  std::lock_guard<std::mutex> op(op_mu_);
  return Write(WriteOp::kRelease, "", period());
}

absl::Status Lease::Write(WriteOp op, const std::string& value,
                          absl::Duration ttl) {
  const char* what = op == WriteOp::kRenew      ? "renew"
                     : op == WriteOp::kSetValue ? "set value"
                                                : "release";
  // A release saves no time: only the request timeout bounds it.
  const bool bounded = op != WriteOp::kRelease;
  uint64_t index = this->index();
  for (int attempt = 1;; ++attempt) {
    const absl::Time sent = clock_->Now();
    const absl::Time deadline =
        bounded ? AttemptDeadline(sent) : absl::InfiniteFuture();
    absl::StatusOr<registry::Response> r;
    if (op == WriteOp::kRelease) {
      registry::DeleteOptions del;
      del.prev_index = index;
      del.deadline = deadline;
      r = keys_->Delete(key_, del);
    } else {
      registry::SetOptions set;
      set.prev_index = index;
      set.ttl = ttl;
      set.refresh = op == WriteOp::kRenew;
      set.deadline = deadline;
      r = keys_->Set(key_, value, set);
    }
    if (r.ok()) {
      // This very write made the index: no earlier one of ours can land
      // after it (they compare against an older index).
      Settled();
      if (op == WriteOp::kRelease) {
        Gone();
      } else {
        if (op == WriteOp::kSetValue) value_ = value;
        Granted(r->node.modified_index, ttl, sent);
      }
      return absl::OkStatus();
    }
    const bool unknown = registry::IsOutcomeUnknown(r.status());
    if (unknown) {
      unresolved_since_ = std::min(unresolved_since_.value_or(sent), sent);
      if (op == WriteOp::kSetValue && !IsOurs(value)) {
        unresolved_values_.push_back(value);
      }
      // The member that took it may be stuck (frozen, cut off from the
      // others, in an election): a renew or value write, racing its
      // lease's expiry, goes out again at once, and the client sends it to
      // the next member. Its condition makes a late landing of this attempt
      // harmless, and a condition failure leads to the read-back below; a
      // read-back first would wait on the same trouble. A release has no
      // expiry to race: it reads back first and sends no needless delete.
      if (bounded && attempt < kMaxAttempts) continue;
    } else if (!IsConditionFailed(r.status())) {
      return Annotate(r.status(), what, index);
    } else if (!unresolved_since_.has_value()) {
      // No write of ours can have moved the key: the answer is certain.
      Gone();
      return Annotate(r.status(), what, index);
    }
    // The outcome is unknown, or the condition failed while a write of ours
    // may have landed: the key itself says which.
    absl::StatusOr<std::optional<registry::Node>> seen = ReadBack(
        keys_, key_,
        bounded ? AttemptDeadline(clock_->Now()) : absl::InfiniteFuture());
    if (!seen.ok()) return StillUnknown(name_, what, seen.status());
    if (!seen->has_value() || !IsOurs((*seen)->value)) {
      Settled();
      Gone();
      // Our key is not there any more, whoever removed it.
      if (op == WriteOp::kRelease) return absl::OkStatus();
      if (!seen->has_value()) {
        return absl::NotFoundError(absl::StrCat(
            LeaseContext(name_, what), ": expired (prevIndex ", index, ")"));
      }
      return absl::AbortedError(absl::StrCat(
          LeaseContext(name_, what), ": held by another holder (prevIndex ",
          index, ", now ", (*seen)->modified_index, ")"));
    }
    const registry::Node& node = **seen;
    if (node.modified_index != index) {
      // A write of ours landed, and any of those still unresolved may be
      // the one: count from the earliest.
      const absl::Time since = *unresolved_since_;
      value_ = node.value;
      Settled();
      Granted(node.modified_index, std::min(ttl, period()), since);
      if (op == WriteOp::kRenew) return absl::OkStatus();
      if (op == WriteOp::kSetValue && node.value == value) {
        return absl::OkStatus();
      }
      index = node.modified_index;  // a renew landed: write at its index
    }
    if (attempt == kMaxAttempts) return StillUnknown(name_, what, r.status());
  }
}

// --------------------------------------------------------- LeaseManager

LeaseManager::LeaseManager(registry::KeysApi* keys, LeaseManagerOptions options)
    : keys_(keys),
      options_(Normalized(std::move(options))),
      clock_(options_.clock),
      token_seed_(RandomSeed()) {}

registry::GetOptions LeaseManager::ReadOptions() const {
  registry::GetOptions get;
  get.quorum = options_.quorum_reads;
  return get;
}

std::string LeaseManager::KeyFor(const std::string& name) const {
  return absl::StrCat(options_.prefix, "lease/", name);
}

std::string LeaseManager::NewToken() {
  return absl::StrCat(absl::Hex(token_seed_, absl::kZeroPad16), "-",
                      token_counter_.fetch_add(1, std::memory_order_relaxed));
}

std::unique_ptr<Lease> LeaseManager::FromRead(const std::string& name,
                                              const registry::Node& node,
                                              absl::Time read_at) {
  const absl::Duration ttl = absl::Seconds(node.ttl);
  // A key with a TTL the server reports as 0 or less has expired and waits
  // for the server's periodic sweep (etcd's runs every 500 ms).
  const bool has_ttl = node.expiration.has_value() || node.ttl != 0;
  absl::Time expiry = absl::InfiniteFuture();
  if (has_ttl) {
    // The server rounds what is left up to whole seconds.
    expiry = node.ttl > 0 ? ExpiryOf(read_at - absl::Seconds(1), ttl,
                                     options_.safety_margin)
                          : absl::InfinitePast();
  }
  return std::unique_ptr<Lease>(
      new Lease(keys_, clock_, options_.safety_margin, /*adopted=*/false, name,
                node.key, node.value, DecodeLeaseValue(node.value),
                node.modified_index, node.modified_index, ttl, expiry));
}

absl::StatusOr<std::unique_ptr<Lease>> LeaseManager::GetLease(
    const std::string& name) {
  if (absl::Status s = ValidateName("lease name", name); !s.ok()) return s;
  const absl::Time sent = clock_->Now();
  absl::StatusOr<registry::Response> r =
      keys_->Get(KeyFor(name), ReadOptions());
  if (absl::IsNotFound(r.status())) return nullptr;
  if (!r.ok())
    return registry::WithContext(r.status(), LeaseContext(name, "get"));
  return FromRead(name, r->node, sent);
}

absl::StatusOr<std::unique_ptr<Lease>> LeaseManager::AcquireLease(
    const std::string& name, const std::string& machine_id, int64_t version,
    absl::Duration period) {
  return Grant(name, machine_id, version, period, std::nullopt);
}

absl::StatusOr<std::unique_ptr<Lease>> LeaseManager::StealLease(
    const std::string& name, const std::string& machine_id, int64_t version,
    absl::Duration period, uint64_t index) {
  return Grant(name, machine_id, version, period, index);
}

absl::StatusOr<std::unique_ptr<Lease>> LeaseManager::Grant(
    const std::string& name, const std::string& machine_id, int64_t version,
    absl::Duration period, std::optional<uint64_t> steal_index) {
  const char* op = steal_index ? "steal" : "acquire";
  if (absl::Status s = ValidateName("lease name", name); !s.ok()) return s;
  if (absl::Status s = ValidateName("machine id", machine_id); !s.ok()) {
    return registry::WithContext(s, LeaseContext(name, op));
  }
  absl::StatusOr<absl::Duration> ttl =
      RoundPeriod(period, options_.safety_margin);
  if (!ttl.ok())
    return registry::WithContext(ttl.status(), LeaseContext(name, op));

  const std::string key = KeyFor(name);
  const LeaseValue holder{machine_id, version, NewToken()};
  const std::string value = EncodeLeaseValue(holder);
  registry::SetOptions set;
  set.ttl = *ttl;
  if (steal_index) {
    set.prev_index = *steal_index;
  } else {
    set.prev_exist = false;
  }
  auto granted = [&](const registry::Node& node, absl::Time sent) {
    return std::unique_ptr<Lease>(new Lease(
        keys_, clock_, options_.safety_margin, /*adopted=*/false, name, key,
        value, holder, node.modified_index, node.modified_index, *ttl,
        ExpiryOf(sent, *ttl, options_.safety_margin)));
  };

  // The first attempt's send time: an earlier attempt may be the one that
  // landed, so expiry counts from it.
  const absl::Time sent = clock_->Now();
  bool uncertain = false;
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<registry::Response> r = keys_->Set(key, value, set);
    if (r.ok()) return granted(r->node, sent);
    if (!registry::IsOutcomeUnknown(r.status()) &&
        !(uncertain && IsConditionFailed(r.status()))) {
      if (IsConditionFailed(r.status())) return nullptr;
      return registry::WithContext(r.status(), LeaseContext(name, op));
    }
    uncertain = true;
    absl::StatusOr<std::optional<registry::Node>> seen = ReadBack(keys_, key);
    if (!seen.ok()) return StillUnknown(name, op, seen.status());
    if (seen->has_value() && (*seen)->value == value) {
      return granted(**seen, sent);
    }
    // Retry only while the write provably has not happened: the key is
    // still absent (acquire) or still at the index to steal.
    const bool untouched =
        steal_index
            ? seen->has_value() && (*seen)->modified_index == *steal_index
            : !seen->has_value();
    if (!untouched) return nullptr;
    if (attempt == kMaxAttempts) return StillUnknown(name, op, r.status());
  }
}

absl::StatusOr<std::vector<std::unique_ptr<Lease>>> LeaseManager::ListLeases() {
  const std::string dir = absl::StrCat(options_.prefix, "lease");
  const absl::Time sent = clock_->Now();
  registry::GetOptions get = ReadOptions();
  get.sorted = true;
  get.child_ttls = true;  // each lease's expiry
  absl::StatusOr<registry::Response> r = keys_->Get(dir, get);
  std::vector<std::unique_ptr<Lease>> leases;
  if (absl::IsNotFound(r.status())) return leases;
  if (!r.ok())
    return registry::WithContext(r.status(), absl::StrCat("list ", dir));
  for (const registry::Node& node : r->node.nodes) {
    if (node.dir) continue;
    leases.push_back(
        FromRead(node.key.substr(node.key.rfind('/') + 1), node, sent));
  }
  return leases;
}

absl::StatusOr<std::unique_ptr<Lease>> LeaseManager::WaitForChange(
    const std::string& name, uint64_t after_index, absl::Time deadline,
    const CancelToken* cancel) {
  if (absl::Status s = ValidateName("lease name", name); !s.ok()) return s;
  const std::string key = KeyFor(name);
  const std::string context = LeaseContext(name, "wait for change");
  absl::StatusOr<registry::Response> current = keys_->Get(key, ReadOptions());
  if (absl::IsNotFound(current.status())) return nullptr;
  if (!current.ok()) return registry::WithContext(current.status(), context);
  uint64_t wait_index = after_index + 1;
  while (true) {
    registry::WatchOptions watch;
    watch.wait_index = wait_index;
    watch.deadline = deadline;
    watch.cancel = cancel;
    absl::StatusOr<registry::Response> event = keys_->Watch(key, watch);
    if (event.ok()) {
      const registry::Node& node = event->node;
      const std::string& action = event->action;
      if (action == "delete" || action == "compareAndDelete" ||
          action == "expire") {
        return nullptr;
      }
      const bool renewal =
          event->prev_node.has_value() &&
          event->prev_node->value == node.value &&
          event->prev_node->created_index == node.created_index;
      if (!renewal) return FromRead(name, node, clock_->Now());
      wait_index = node.modified_index + 1;
      continue;
    }
    if (!absl::IsOutOfRange(event.status())) {
      return registry::WithContext(event.status(), context);
    }
    // The event history no longer reaches wait_index: look at the key now
    // and watch on from the store's index.
    const absl::Time sent = clock_->Now();
    current = keys_->Get(key, ReadOptions());
    if (absl::IsNotFound(current.status())) return nullptr;
    if (!current.ok()) return registry::WithContext(current.status(), context);
    if (current->node.modified_index > after_index) {
      return FromRead(name, current->node, sent);
    }
    wait_index = current->etcd_index + 1;
  }
}

std::unique_ptr<Lease> LeaseManager::AdoptKey(const registry::Node& node,
                                              absl::Duration ttl,
                                              absl::Time sent) {
  return std::unique_ptr<Lease>(new Lease(
      keys_, clock_, options_.safety_margin, /*adopted=*/true, node.key,
      node.key, node.value, DecodeLeaseValue(node.value), node.modified_index,
      node.created_index, ttl, ExpiryOf(sent, ttl, options_.safety_margin)));
}

}  // namespace leasehold::lease
