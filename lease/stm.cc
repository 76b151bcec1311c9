#include "lease/stm.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <random>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "lease/validate.h"
#include "registry/errors.h"

namespace leasehold::lease {
namespace {

// The intent record's value: a header line, then one record per write with
// lengths, so keys and values may hold any bytes.
//   leasehold-stm/1 <pending|committed> <id> <count>\n
//   P <guard> <key bytes> <value bytes>\n<key><value>
//   D <guard> <key bytes>\n<key>
constexpr absl::string_view kIntentMagic = "leasehold-stm/1";

struct IntentWrite {
  std::string key;
  std::optional<std::string> value;  // nullopt: delete
  uint64_t guard = 0;                // modifiedIndex to CAS on; 0: no node
};

struct Intent {
  bool committed = false;
  std::string id;
  std::vector<IntentWrite> writes;
};

std::string EncodeIntent(const Intent& intent) {
  std::string out = absl::StrCat(
      kIntentMagic, " ", intent.committed ? "committed" : "pending", " ",
      intent.id, " ", intent.writes.size(), "\n");
  for (const IntentWrite& w : intent.writes) {
    if (w.value.has_value()) {
      absl::StrAppend(&out, "P ", w.guard, " ", w.key.size(), " ",
                      w.value->size(), "\n", w.key, *w.value);
    } else {
      absl::StrAppend(&out, "D ", w.guard, " ", w.key.size(), "\n", w.key);
    }
  }
  return out;
}

// Reads one header line at `*pos` and splits it on spaces.
bool ReadLine(absl::string_view in, size_t* pos,
              std::vector<absl::string_view>* fields) {
  size_t end = in.find('\n', *pos);
  if (end == absl::string_view::npos) return false;
  *fields = absl::StrSplit(in.substr(*pos, end - *pos), ' ');
  *pos = end + 1;
  return true;
}

bool ReadBytes(absl::string_view in, size_t* pos, absl::string_view count,
               std::string* out) {
  size_t n = 0;
  if (!absl::SimpleAtoi(count, &n) || n > in.size() - *pos) return false;
  out->assign(in.data() + *pos, n);
  *pos += n;
  return true;
}

absl::StatusOr<Intent> DecodeIntent(const std::string& key,
                                    absl::string_view in) {
  const absl::Status corrupt = absl::DataLossError(
      absl::StrCat("transaction intent ", key, " is not a leasehold intent"));
  Intent intent;
  size_t pos = 0;
  std::vector<absl::string_view> f;
  size_t count = 0;
  if (!ReadLine(in, &pos, &f) || f.size() != 4 || f[0] != kIntentMagic ||
      (f[1] != "pending" && f[1] != "committed") || f[2].empty() ||
      !absl::SimpleAtoi(f[3], &count)) {
    return corrupt;
  }
  intent.committed = f[1] == "committed";
  intent.id = std::string(f[2]);
  for (size_t i = 0; i < count; ++i) {
    IntentWrite w;
    if (!ReadLine(in, &pos, &f) || f.size() < 3 ||
        !absl::SimpleAtoi(f[1], &w.guard)) {
      return corrupt;
    }
    if (f[0] == "P" && f.size() == 4) {
      absl::string_view value_size = f[3];
      std::string value;
      if (!ReadBytes(in, &pos, f[2], &w.key) ||
          !ReadBytes(in, &pos, value_size, &value)) {
        return corrupt;
      }
      w.value = std::move(value);
    } else if (f[0] == "D" && f.size() == 3) {
      if (!ReadBytes(in, &pos, f[2], &w.key)) return corrupt;
    } else {
      return corrupt;
    }
    intent.writes.push_back(std::move(w));
  }
  if (pos != in.size()) return corrupt;
  return intent;
}

registry::DeleteOptions IfIndex(uint64_t index) {
  registry::DeleteOptions options;
  options.prev_index = index;
  return options;
}

bool Retryable(const absl::Status& s) {
  return absl::IsUnavailable(s) && !registry::IsOutcomeUnknown(s);
}

// A write the registry answered, whatever the answer: applied now, or its
// guard no longer matches because it was applied before.
bool Settled(const absl::Status& s) {
  return s.ok() || absl::IsAborted(s) || absl::IsAlreadyExists(s) ||
         absl::IsNotFound(s);
}

}  // namespace

// One RunTransaction call: the options, the domain and the commit protocol
// (see stm.h).
class Committer {
 public:
  Committer(registry::KeysApi* keys, TransactionOptions options)
      : keys_(keys),
        options_(std::move(options)),
        clock_(options_.clock != nullptr ? options_.clock : RealClock()),
        rng_(std::random_device{}()) {
    std::string& p = options_.prefix;
    if (p.empty() || p.front() != '/') p.insert(p.begin(), '/');
    if (p.back() != '/') p.push_back('/');
    domain_dir_ = p.size() > 1 ? p.substr(0, p.size() - 1) : p;
    intent_key_ = absl::StrCat(p, ".stm/intent");
  }

  absl::StatusOr<TransactionResult> Run(
      const std::function<absl::Status(Transaction&)>& apply);

  Isolation isolation() const { return options_.isolation; }

  // OK for a key the transaction may use: under the domain, not under its
  // bookkeeping, and in the form etcd keeps as given.
  absl::Status CheckKey(const std::string& key) const;

  // One recursive GET of the domain: every key's value and modifiedIndex at
  // one index. A committed intent met on the way is rolled forward first.
  struct Domain {
    Transaction::Snapshot keys;
    uint64_t index = 0;
  };
  absl::StatusOr<Domain> ReadDomain();

 private:
  absl::Status CheckAlive() const;
  void Backoff(int attempt);
  // nullopt: a conflict, retry. Otherwise the commit index.
  absl::StatusOr<std::optional<uint64_t>> Commit(Transaction& txn);
  // Creates our pending intent; the index it was created at.
  absl::StatusOr<uint64_t> AcquireIntent(const Intent& intent);
  // Marks our intent committed. nullopt: it expired first (not committed).
  absl::StatusOr<std::optional<uint64_t>> Mark(const Intent& intent,
                                               uint64_t pending_index);
  absl::Status RollForward(const Intent& intent, uint64_t index);
  void Release(uint64_t pending_index);
  // Waits until the intent at `index` changes (or a bounded time passes).
  absl::Status WaitForIntent(uint64_t index);
  void Flatten(const registry::Node& node, Domain* domain,
               std::optional<registry::Node>* intent) const;

  registry::KeysApi* const keys_;
  TransactionOptions options_;
  Clock* const clock_;
  std::string domain_dir_;
  std::string intent_key_;
  std::mt19937_64 rng_;
};

absl::Status Committer::CheckKey(const std::string& key) const {
  const std::string& p = options_.prefix;
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("transaction key \"", key, "\": ", why));
  };
  if (key.size() <= p.size() || key.compare(0, p.size(), p) != 0) {
    return bad(absl::StrCat("not under the domain ", p));
  }
  bool first = true;
  for (absl::string_view segment :
       absl::StrSplit(absl::string_view(key).substr(p.size()), '/')) {
    if (segment.empty() || segment == "." || segment == "..") {
      return bad("empty, \".\" or \"..\" path segment");
    }
    if (segment.front() == '_') {
      return bad("a segment starting with '_' (hidden in etcd)");
    }
    if (first && segment == ".stm") return bad("reserved for bookkeeping");
    first = false;
  }
  return absl::OkStatus();
}

absl::Status Committer::CheckAlive() const {
  if (options_.cancel != nullptr && options_.cancel->cancelled()) {
    return absl::CancelledError("transaction cancelled");
  }
  if (clock_->Now() >= options_.deadline) {
    return absl::DeadlineExceededError("transaction deadline passed");
  }
  return absl::OkStatus();
}

void Committer::Backoff(int attempt) {
  absl::Duration pause = options_.initial_backoff;
  for (int i = 1; i < attempt && pause < options_.max_backoff; ++i) pause *= 2;
  pause = std::min(pause, options_.max_backoff);
  if (pause <= absl::ZeroDuration()) return;
  pause *= std::uniform_real_distribution<double>(0.5, 1.0)(rng_);
  const absl::Time until = std::min(clock_->Now() + pause, options_.deadline);
  std::mutex mu;
  std::condition_variable cv;
  bool cancelled = false;
  CancelToken::Registration registration;
  if (options_.cancel != nullptr) {
    registration = options_.cancel->OnCancel([&] {
      std::lock_guard<std::mutex> lock(mu);
      cancelled = true;
      cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> lock(mu);
  while (!cancelled && clock_->WaitUntil(cv, lock, until)) {
  }
}

void Committer::Flatten(const registry::Node& node, Domain* domain,
                        std::optional<registry::Node>* intent) const {
  if (node.dir) {
    for (const registry::Node& child : node.nodes) {
      Flatten(child, domain, intent);
    }
    return;
  }
  if (node.key == intent_key_) {
    *intent = node;
    return;
  }
  Transaction::Entry& entry = domain->keys[node.key];
  entry.modified_index = node.modified_index;
  if (node.value != kTombstone) entry.value = node.value;
}

absl::StatusOr<Committer::Domain> Committer::ReadDomain() {
  for (;;) {
    absl::StatusOr<registry::Response> r =
        keys_->Get(domain_dir_, {.recursive = true, .quorum = true});
    Domain domain;
    if (absl::IsNotFound(r.status())) {
      std::optional<registry::EtcdError> e = registry::GetEtcdError(r.status());
      domain.index = e.has_value() ? e->index : 0;
      return domain;
    }
    if (!r.ok()) return r.status();
    domain.index = r->etcd_index;
    std::optional<registry::Node> intent_node;
    Flatten(r->node, &domain, &intent_node);
    if (!intent_node.has_value()) return domain;
    absl::StatusOr<Intent> intent =
        DecodeIntent(intent_key_, intent_node->value);
    if (!intent.ok()) return intent.status();
    // A pending intent has written nothing: the snapshot is committed data.
    if (!intent->committed) return domain;
    absl::Status rolled = RollForward(*intent, intent_node->modified_index);
    if (!rolled.ok()) return rolled;
  }
}

absl::Status Committer::RollForward(const Intent& intent, uint64_t index) {
  for (const IntentWrite& w : intent.writes) {
    registry::SetOptions set;
    if (w.guard == 0) {
      if (!w.value.has_value()) continue;  // deleting a key never written
      set.prev_exist = false;
    } else {
      set.prev_index = w.guard;
    }
    const std::string value(w.value.has_value() ? *w.value
                                                : std::string(kTombstone));
    // A lost response is repeated under the same guard: if the first one
    // was applied, the second fails its guard. Never twice.
    for (int tries = 1;; ++tries) {
      absl::Status s = keys_->Set(w.key, value, set).status();
      if (Settled(s)) break;
      if (!absl::IsUnavailable(s) || tries >= 5) {
        return registry::WithContext(
            s, absl::StrCat("rolling transaction ", intent.id, " forward"));
      }
      absl::Status alive = CheckAlive();
      if (!alive.ok()) return alive;
    }
  }
  absl::Status s = keys_->Delete(intent_key_, IfIndex(index)).status();
  return Settled(s) || absl::IsUnavailable(s) ? absl::OkStatus() : s;
}

void Committer::Release(uint64_t pending_index) {
  // Best effort: if it fails, the pending intent expires at its TTL.
  (void)keys_->Delete(intent_key_, IfIndex(pending_index));
}

absl::Status Committer::WaitForIntent(uint64_t index) {
  registry::WatchOptions watch;
  watch.wait_index = index + 1;
  watch.deadline =
      std::min(options_.deadline,
               clock_->Now() + options_.intent_ttl + absl::Seconds(1));
  watch.cancel = options_.cancel;
  absl::Status s = keys_->Watch(intent_key_, watch).status();
  // Past our own bound, cleared history or cancel: the caller re-reads and
  // checks its deadline.
  if (s.ok() || absl::IsDeadlineExceeded(s) || absl::IsOutOfRange(s) ||
      absl::IsCancelled(s)) {
    return absl::OkStatus();
  }
  return s;
}

absl::StatusOr<uint64_t> Committer::AcquireIntent(const Intent& intent) {
  const std::string value = EncodeIntent(intent);
  for (;;) {
    absl::Status alive = CheckAlive();
    if (!alive.ok()) return alive;
    registry::SetOptions create;
    create.prev_exist = false;
    create.ttl = options_.intent_ttl;
    absl::StatusOr<registry::Response> created =
        keys_->Set(intent_key_, value, create);
    if (created.ok()) return created->node.modified_index;
    if (!absl::IsAlreadyExists(created.status()) &&
        !registry::IsOutcomeUnknown(created.status())) {
      return created.status();
    }
    absl::StatusOr<registry::Response> current =
        keys_->Get(intent_key_, {.quorum = true});
    if (absl::IsNotFound(current.status())) continue;
    if (!current.ok()) return current.status();
    absl::StatusOr<Intent> other =
        DecodeIntent(intent_key_, current->node.value);
    if (!other.ok()) return other.status();
    if (other->id == intent.id) return current->node.modified_index;
    absl::Status s = other->committed
                         ? RollForward(*other, current->node.modified_index)
                         : WaitForIntent(current->node.modified_index);
    if (!s.ok()) return s;
  }
}

absl::StatusOr<std::optional<uint64_t>> Committer::Mark(
    const Intent& intent, uint64_t pending_index) {
  const std::string value = EncodeIntent(intent);
  for (;;) {
    // No TTL: a committed intent stays until it has been rolled forward.
    registry::SetOptions mark;
    mark.prev_index = pending_index;
    absl::StatusOr<registry::Response> marked =
        keys_->Set(intent_key_, value, mark);
    if (marked.ok()) return marked->node.modified_index;
    if (absl::IsNotFound(marked.status()) || absl::IsAborted(marked.status())) {
      return std::nullopt;  // the pending intent expired first
    }
    if (!registry::IsOutcomeUnknown(marked.status())) {
      Release(pending_index);
      return marked.status();
    }
    absl::StatusOr<registry::Response> current =
        keys_->Get(intent_key_, {.quorum = true});
    if (current.ok()) {
      absl::StatusOr<Intent> read =
          DecodeIntent(intent_key_, current->node.value);
      if (!read.ok()) return read.status();
      if (read->id == intent.id) {
        if (read->committed) return current->node.modified_index;
        continue;  // still pending: the mark was not applied; mark again
      }
    } else if (!absl::IsNotFound(current.status())) {
      return registry::OutcomeUnknownError(absl::StrCat(
          "transaction ", intent.id,
          ": commit outcome unknown: ", current.status().message()));
    }
    // Our intent is gone: it was committed and rolled forward, or it
    // expired. Its next event says which.
    registry::WatchOptions watch;
    watch.wait_index = pending_index + 1;
    watch.deadline =
        std::min(options_.deadline, clock_->Now() + absl::Seconds(5));
    absl::StatusOr<registry::Response> event = keys_->Watch(intent_key_, watch);
    if (!event.ok()) {
      return registry::OutcomeUnknownError(
          absl::StrCat("transaction ", intent.id,
                       ": commit outcome unknown: ", event.status().message()));
    }
    absl::StatusOr<Intent> next = DecodeIntent(intent_key_, event->node.value);
    if (event->action == "compareAndSwap" && next.ok() &&
        next->id == intent.id && next->committed) {
      return event->node.modified_index;
    }
    return std::nullopt;
  }
}

absl::StatusOr<std::optional<uint64_t>> Committer::Commit(Transaction& txn) {
  const bool validate_reads = options_.isolation != Isolation::kReadCommitted;
  auto valid = [&](const Transaction::Snapshot& current) {
    if (!validate_reads) return true;
    for (const auto& [key, index] : txn.reads_) {
      auto it = current.find(key);
      if ((it == current.end() ? 0 : it->second.modified_index) != index) {
        return false;
      }
    }
    return true;
  };
  if (txn.writes_.empty()) {
    if (options_.isolation != Isolation::kRepeatableRead ||
        txn.reads_.empty()) {
      return txn.snapshot_index_;
    }
    absl::StatusOr<Domain> now = ReadDomain();
    if (!now.ok()) return now.status();
    if (!valid(now->keys)) return std::nullopt;
    return now->index;
  }

  Intent intent;
  intent.id = absl::StrCat(absl::Hex(rng_(), absl::kZeroPad16));
  for (const auto& [key, value] : txn.writes_) {
    intent.writes.push_back({key, value, 0});
  }
  absl::StatusOr<uint64_t> pending = AcquireIntent(intent);
  if (!pending.ok()) return pending.status();

  // Nothing at all was written between the snapshot and our intent: the
  // snapshot is still the store.
  Transaction::Snapshot current;
  if (txn.snapshot_.has_value() && *pending == txn.snapshot_index_ + 1) {
    current = *txn.snapshot_;
  } else {
    absl::StatusOr<Domain> now = ReadDomain();
    if (!now.ok()) {
      Release(*pending);
      return now.status();
    }
    current = std::move(now->keys);
  }
  if (!valid(current)) {
    Release(*pending);
    return std::nullopt;
  }
  for (IntentWrite& w : intent.writes) {
    auto it = current.find(w.key);
    w.guard = it == current.end() ? 0 : it->second.modified_index;
  }
  intent.committed = true;
  absl::StatusOr<std::optional<uint64_t>> commit = Mark(intent, *pending);
  if (!commit.ok() || !commit->has_value()) return commit;
  // Committed. Should rolling forward fail now, the next reader finishes it.
  (void)RollForward(intent, **commit);
  return commit;
}

absl::StatusOr<TransactionResult> Committer::Run(
    const std::function<absl::Status(Transaction&)>& apply) {
  if (options_.max_attempts < 1) {
    return absl::InvalidArgumentError("max_attempts must be at least 1");
  }
  absl::StatusOr<absl::Duration> ttl = RoundPeriod(options_.intent_ttl);
  if (!ttl.ok()) return registry::WithContext(ttl.status(), "intent_ttl");
  options_.intent_ttl = *ttl;
  for (int attempt = 1;; ++attempt) {
    absl::Status alive = CheckAlive();
    if (!alive.ok()) return alive;
    Transaction txn(this);
    absl::Status applied = apply(txn);
    absl::StatusOr<std::optional<uint64_t>> commit = std::nullopt;
    if (!txn.error_.ok()) {
      commit = txn.error_;  // a failed read or bad key, whatever apply said
    } else if (!applied.ok()) {
      return applied;  // apply's own verdict: nothing written
    } else {
      commit = Commit(txn);
    }
    if (commit.ok() && commit->has_value()) {
      return TransactionResult{**commit, attempt};
    }
    const bool last = attempt >= options_.max_attempts;
    if (!commit.ok() && (last || !Retryable(commit.status()))) {
      return commit.status();
    }
    if (last) {
      return absl::AbortedError(absl::StrCat(
          "transaction still conflicting after ", attempt, " attempts"));
    }
    Backoff(attempt);
  }
}

absl::StatusOr<Transaction::Entry> Transaction::Read(const std::string& key) {
  absl::Status checked = committer_->CheckKey(key);
  if (!checked.ok()) {
    Fail(checked);
    return checked;
  }
  Entry entry;
  auto from = [&](const Snapshot& keys) {
    auto it = keys.find(key);
    return it == keys.end() ? Entry{} : it->second;
  };
  const Isolation isolation = committer_->isolation();
  if (isolation == Isolation::kRepeatableRead) {
    auto cached = cache_.find(key);
    if (cached != cache_.end()) return cached->second;
  }
  if (isolation == Isolation::kSerializable && snapshot_.has_value()) {
    entry = from(*snapshot_);
  } else {
    absl::StatusOr<Committer::Domain> domain = committer_->ReadDomain();
    if (!domain.ok()) {
      Fail(domain.status());
      return domain.status();
    }
    entry = from(domain->keys);
    snapshot_index_ = domain->index;
    if (isolation == Isolation::kSerializable) {
      snapshot_ = std::move(domain->keys);
    }
  }
  if (isolation == Isolation::kRepeatableRead) cache_.emplace(key, entry);
  reads_.emplace(key, entry.modified_index);
  return entry;
}

void Transaction::Fail(absl::Status status) {
  if (error_.ok()) error_ = std::move(status);
}

absl::StatusOr<std::optional<std::string>> Transaction::Get(
    const std::string& key) {
  auto written = writes_.find(key);
  if (written != writes_.end()) return written->second;
  absl::StatusOr<Entry> entry = Read(key);
  if (!entry.ok()) return entry.status();
  return entry->value;
}

absl::StatusOr<uint64_t> Transaction::Rev(const std::string& key) {
  absl::StatusOr<Entry> entry = Read(key);
  if (!entry.ok()) return entry.status();
  return entry->value.has_value() ? entry->modified_index : 0;
}

void Transaction::Put(const std::string& key, const std::string& value) {
  absl::Status checked = committer_->CheckKey(key);
  if (checked.ok() && value == kTombstone) {
    checked = absl::InvalidArgumentError(absl::StrCat(
        "transaction key \"", key, "\": the value is the reserved tombstone"));
  }
  if (!checked.ok()) return Fail(checked);
  writes_[key] = value;
}

void Transaction::Del(const std::string& key) {
  absl::Status checked = committer_->CheckKey(key);
  if (!checked.ok()) return Fail(checked);
  writes_[key] = std::nullopt;
}

absl::StatusOr<TransactionResult> RunTransaction(
    registry::KeysApi* keys,
    const std::function<absl::Status(Transaction&)>& apply,
    TransactionOptions options) {
  Committer committer(keys, std::move(options));
  return committer.Run(apply);
}

}  // namespace leasehold::lease
