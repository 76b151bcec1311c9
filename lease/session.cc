#include "lease/session.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lease/lease_manager.h"
#include "lease/validate.h"
#include "registry/errors.h"

namespace leasehold::lease {

struct SessionKey::State {
  registry::KeysApi* keys = nullptr;
  Clock* clock = nullptr;
  Keeper* keeper = nullptr;
  std::unique_ptr<LeaseManager> manager;  // adopts our keys as Leases
  std::string prefix;
  absl::Duration ttl;
  std::string id;  // the session key; set once, before any sharing
  std::shared_ptr<Signal> done;
  std::atomic<uint64_t> counter{0};

  std::mutex mu;
  bool closed ABSL_GUARDED_BY(mu) = false;  // Close or Orphan was called
  bool ended ABSL_GUARDED_BY(mu) = false;   // done() fired
  // Every key given up (ending_thread: the thread giving them up).
  bool end_done ABSL_GUARDED_BY(mu) = false;
  std::thread::id ending_thread ABSL_GUARDED_BY(mu);
  std::condition_variable end_cv;
  std::shared_ptr<KeptLease> kept ABSL_GUARDED_BY(mu);  // the session key
  std::vector<std::weak_ptr<SessionKey>> keys_held ABSL_GUARDED_BY(mu);
};

namespace {

using State = SessionKey::State;

// A release that found the key gone or changed: it is not ours any more,
// which is what a release wants.
bool IsGone(const absl::Status& status) {
  return absl::IsNotFound(status) || absl::IsAborted(status);
}

struct Created {
  registry::Node node;
  absl::Time sent;  // when the creating request was sent
};

// Creates an in-order key under `dir`. A lost response is resolved by
// looking for `value` when it names only this key.
absl::StatusOr<Created> CreateNode(State& s, const std::string& dir,
                                   const std::string& value,
                                   bool unique_value) {
  const std::string context = absl::StrCat("create a key under ", dir);
  const absl::Time sent = s.clock->Now();
  registry::CreateInOrderOptions create;
  create.ttl = s.ttl;
  absl::StatusOr<registry::Response> r =
      s.keys->CreateInOrder(dir, value, create);
  if (r.ok()) return Created{std::move(r->node), sent};
  if (!unique_value || !registry::IsOutcomeUnknown(r.status())) {
    return registry::WithContext(r.status(), context);
  }
  registry::GetOptions quorum;
  quorum.quorum = true;
  absl::StatusOr<registry::Response> read = s.keys->Get(dir, quorum);
  if (read.ok()) {
    for (registry::Node& child : read->node.nodes) {
      if (child.value == value) return Created{std::move(child), sent};
    }
  }
  if (read.ok() || absl::IsNotFound(read.status())) {
    return registry::WithContext(r.status(), context);  // it did not land (yet)
  }
  return registry::OutcomeUnknownError(
      absl::StrCat(context, ": response lost and not resolved (",
                   read.status().message(), ")"));
}

// Ends the session once: fires done() and gives up every key, deleting
// them with `release`. The first failed delete's status. A later call
// (Close after the Keeper ended the session) returns once every key is
// given up, so that no renew of the session's keys is still using the
// registry; on the thread giving them up (a lost() callback), at once.
absl::Status EndSession(State& s, const absl::Status& cause, bool release) {
  std::vector<std::shared_ptr<SessionKey>> keys;
  std::shared_ptr<KeptLease> own;
  {
    std::unique_lock<std::mutex> lock(s.mu);
    if (s.ended) {
      if (s.ending_thread != std::this_thread::get_id()) {
        s.end_cv.wait(lock, [&] { return s.end_done; });
      }
      return absl::OkStatus();
    }
    s.ended = true;
    s.ending_thread = std::this_thread::get_id();
    for (const std::weak_ptr<SessionKey>& weak : s.keys_held) {
      if (std::shared_ptr<SessionKey> key = weak.lock()) keys.push_back(key);
    }
    s.keys_held.clear();
    own = std::move(s.kept);
  }
  s.done->Fire(cause);
  absl::Status result;
  for (const std::shared_ptr<SessionKey>& key : keys) {
    result.Update(key->Drop(release, cause));
  }
  if (own != nullptr) {
    absl::Status status = s.keeper->Remove(own, release);
    if (!IsGone(status)) result.Update(status);
  }
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.end_done = true;
  }
  s.end_cv.notify_all();
  return result;
}

}  // namespace

// ----------------------------------------------------------- SessionKey

SessionKey::SessionKey(std::shared_ptr<State> session, registry::Node node)
    : session_(std::move(session)),
      key_(std::move(node.key)),
      created_index_(node.created_index),
      lost_(std::make_shared<Signal>(session_->clock)),
      // The keys of a session end with it, at once: not only once the
      // session's callbacks get their turn on the Keeper's notifier.
      on_session_done_(session_->done->token().OnCancel(
          [lost = lost_, done = session_->done] {
            lost->Fire(done->cause());
          })) {}

SessionKey::~SessionKey() {
  std::shared_ptr<KeptLease> kept;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (ended_) return;
    kept = std::move(kept_);
  }
  if (kept != nullptr) session_->keeper->Remove(kept, true).IgnoreError();
}

void SessionKey::Keep(std::unique_ptr<Lease> lease) {
  std::weak_ptr<SessionKey> weak = weak_from_this();
  std::shared_ptr<KeptLease> kept;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // The Keeper fires lost_ itself, before any callback runs; the
    // callback only forgets the lease.
    kept_ = session_->keeper->Add(
        std::move(lease),
        [weak](LeaseState state) {
          if (state != LeaseState::kLost) return;
          if (std::shared_ptr<SessionKey> self = weak.lock()) {
            self->OnKeeperLost();
          }
        },
        lost_);
    kept = kept_;
  }
  // A stopped Keeper returns the lease lost, without a callback.
  if (kept->state() == LeaseState::kLost) OnKeeperLost();
}

void SessionKey::OnKeeperLost() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (ended_) return;
    ended_ = true;
    kept_.reset();
  }
  lost_->Fire(absl::AbortedError(
      absl::StrCat("key ", key_, " lost: its keeper stopped")));
}

absl::Time SessionKey::expiry() const {
  std::lock_guard<std::mutex> lock(mu_);
  return kept_ != nullptr ? kept_->lease().expiry() : absl::InfinitePast();
}

absl::Status SessionKey::Drop(bool release, const absl::Status& cause) {
  return End(release, cause);
}

absl::Status SessionKey::Release() {
  return End(/*release=*/true, std::nullopt);
}

absl::Status SessionKey::End(bool release,
                             const std::optional<absl::Status>& lost_cause) {
  std::shared_ptr<KeptLease> kept;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (ended_) return absl::OkStatus();
    ended_ = true;
    kept = std::move(kept_);
  }
  if (lost_cause.has_value()) lost_->Fire(*lost_cause);
  if (kept == nullptr) return absl::OkStatus();
  absl::Status status = session_->keeper->Remove(kept, release);
  return IsGone(status) ? absl::OkStatus() : status;
}

absl::Status SessionKey::SetValue(const std::string& value) {
  std::shared_ptr<KeptLease> kept;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (ended_) {
      if (lost_->fired()) return lost_->cause();
      return absl::FailedPreconditionError(
          absl::StrCat("key ", key_, ": released"));
    }
    kept = kept_;
  }
  // The key stays with the Keeper, which watches its expiry meanwhile; the
  // write is serialized with its renews.
  const absl::Status status = kept->lease().SetValue(value);
  if (status.ok()) {
    if (!lost_->fired()) return status;
    // Written after the key was reported lost (the write hung past its
    // expiry): the key is not ours to keep; give it back.
    kept->lease().Release().IgnoreError();
    return lost_->cause();
  }
  const bool gone = absl::IsAborted(status) || absl::IsNotFound(status);
  const absl::Status failure =
      gone ? absl::AbortedError(absl::StrCat(
                 "set key ", key_, ": gone or taken (", status.message(), ")"))
           : registry::WithContext(status, absl::StrCat("set key ", key_));
  // Ownership is in doubt: say so rather than keep a key we cannot vouch
  // for (and delete it, if it is still ours).
  End(/*release=*/!gone, failure).IgnoreError();
  return failure;
}

// -------------------------------------------------------------- Session

absl::StatusOr<std::unique_ptr<Session>> Session::Create(
    registry::KeysApi* keys, SessionOptions options) {
  absl::StatusOr<absl::Duration> ttl = RoundPeriod(options.ttl);
  if (!ttl.ok()) return registry::WithContext(ttl.status(), "session ttl");
  if (options.prefix.empty() || options.prefix.front() != '/') {
    options.prefix.insert(options.prefix.begin(), '/');
  }
  if (options.prefix.back() != '/') options.prefix.push_back('/');
  Clock* clock = options.clock != nullptr ? options.clock : RealClock();

  std::unique_ptr<Keeper> own_keeper;
  if (options.keeper == nullptr) {
    KeeperOptions keeper_options;
    keeper_options.workers = 2;
    keeper_options.clock = clock;
    own_keeper = std::make_unique<Keeper>(keeper_options);
  }
  auto state = std::make_shared<State>();
  state->keys = keys;
  state->clock = clock;
  state->keeper = options.keeper != nullptr ? options.keeper : own_keeper.get();
  LeaseManagerOptions manager_options;
  manager_options.prefix = options.prefix;
  manager_options.clock = clock;
  manager_options.safety_margin = options.safety_margin;
  state->manager = std::make_unique<LeaseManager>(keys, manager_options);
  state->prefix = options.prefix;
  state->ttl = *ttl;
  state->done = std::make_shared<Signal>(clock);

  std::random_device device;
  const std::string token = absl::StrCat(
      absl::Hex((uint64_t{device()} << 32) ^ device(), absl::kZeroPad16));
  absl::StatusOr<Created> created =
      CreateNode(*state, absl::StrCat(state->prefix, "session"), token,
                 /*unique_value=*/true);
  if (!created.ok())
    return registry::WithContext(created.status(), "new session");
  state->id = created->node.key;

  std::weak_ptr<State> weak = state;
  std::unique_ptr<Lease> lease =
      state->manager->AdoptKey(created->node, *ttl, created->sent);
  {
    std::lock_guard<std::mutex> lock(state->mu);
    state->kept = state->keeper->Add(
        std::move(lease),
        [weak, id = state->id](LeaseState lease_state) {
          if (lease_state != LeaseState::kLost) return;
          std::shared_ptr<State> s = weak.lock();
          if (s == nullptr) return;
          EndSession(*s,
                     absl::AbortedError(absl::StrCat(
                         "session ", id,
                         " expired: its key was not renewed within its TTL, "
                         "changed or deleted")),
                     /*release=*/false)
              .IgnoreError();
        },
        state->done);
  }
  return std::unique_ptr<Session>(
      new Session(std::move(state), std::move(own_keeper)));
}

Session::Session(std::shared_ptr<State> state,
                 std::unique_ptr<Keeper> own_keeper)
    : state_(std::move(state)), own_keeper_(std::move(own_keeper)) {}

Session::~Session() {
  bool closed;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    closed = state_->closed;
  }
  if (!closed) Close().IgnoreError();
  own_keeper_.reset();
}

const std::string& Session::id() const { return state_->id; }
absl::Duration Session::ttl() const { return state_->ttl; }
const std::string& Session::prefix() const { return state_->prefix; }
registry::KeysApi* Session::keys() const { return state_->keys; }
Clock* Session::clock() const { return state_->clock; }
std::shared_ptr<const Signal> Session::done() const { return state_->done; }

std::string Session::UniqueValue() {
  return absl::StrCat(state_->id, "#", state_->counter.fetch_add(1));
}

absl::Status Session::End(bool release) {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->closed) {
      return absl::FailedPreconditionError(
          absl::StrCat("session ", state_->id, ": already closed"));
    }
    state_->closed = true;
  }
  return EndSession(
      *state_,
      absl::CancelledError(absl::StrCat("session ", state_->id,
                                        release ? " closed" : " orphaned")),
      release);
}

absl::Status Session::Close() { return End(/*release=*/true); }

absl::Status Session::Orphan() { return End(/*release=*/false); }

absl::StatusOr<std::shared_ptr<SessionKey>> Session::CreateKey(
    const std::string& dir, const std::string& value, bool unique_value) {
  State& s = *state_;
  auto ended = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) -> absl::Status {
    if (s.closed) {
      return absl::FailedPreconditionError(
          absl::StrCat("session ", s.id, ": already closed"));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "session ", s.id, ": ended (", s.done->cause().message(), ")"));
  };
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.ended) return ended();
  }
  absl::StatusOr<Created> created = CreateNode(s, dir, value, unique_value);
  if (!created.ok()) return created.status();
  auto key = std::make_shared<SessionKey>(state_, created->node);
  key->Keep(s.manager->AdoptKey(created->node, s.ttl, created->sent));
  absl::Status status;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.ended) {
      status = ended();
    } else {
      // Forget keys that are gone now and then, so the list stays short.
      if (s.keys_held.size() >= 64 && s.keys_held.size() % 64 == 0) {
        s.keys_held.erase(
            std::remove_if(s.keys_held.begin(), s.keys_held.end(),
                           [](const std::weak_ptr<SessionKey>& weak) {
                             return weak.expired();
                           }),
            s.keys_held.end());
      }
      s.keys_held.push_back(key);
    }
  }
  if (!status.ok()) {
    key->Drop(/*release=*/true, status).IgnoreError();
    return status;
  }
  return key;
}

}  // namespace leasehold::lease
