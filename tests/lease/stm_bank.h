// A bank over transactions (lease/stm.h), the invariant test of the STM on
// both registries: money moves between accounts in serializable
// transactions, each transfer also counting itself on its teller's counter.
// Audit() checks that the total never changes, no balance is negative, and
// every committed transfer was counted exactly once.
//
// Thread-safety: Open and Audit from one thread; Transfer from any number.
#ifndef LEASEHOLD_TESTS_LEASE_STM_BANK_H_
#define LEASEHOLD_TESTS_LEASE_STM_BANK_H_

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "lease/stm.h"
#include "registry/keys_api.h"

namespace leasehold::testing {

class Bank {
 public:
  static constexpr int kAccounts = 10;
  static constexpr int64_t kInitial = 100;

  Bank(registry::KeysApi* keys, lease::TransactionOptions options)
      : keys_(keys), options_(std::move(options)) {}

  std::string Account(int i) const {
    return absl::StrCat(options_.prefix, "account/", i);
  }
  std::string Counter(int teller) const {
    return absl::StrCat(options_.prefix, "teller/", teller);
  }
  const lease::TransactionOptions& options() const { return options_; }

  // Puts kInitial into every account.
  absl::Status Open() {
    return RunTransaction(
               keys_,
               [&](lease::Transaction& txn) {
                 for (int i = 0; i < kAccounts; ++i) {
                   txn.Put(Account(i), absl::StrCat(kInitial));
                 }
                 return absl::OkStatus();
               },
               options_)
        .status();
  }

  // Moves a random amount between two random accounts unless the source
  // has too little. true: money moved (and `teller`'s counter counted it).
  absl::StatusOr<bool> Transfer(int teller, std::mt19937& rng,
                                registry::KeysApi* keys = nullptr) {
    const int from = std::uniform_int_distribution<int>(0, kAccounts - 1)(rng);
    const int to =
        (from + std::uniform_int_distribution<int>(1, kAccounts - 1)(rng)) %
        kAccounts;
    const int64_t amount = std::uniform_int_distribution<int64_t>(1, 60)(rng);
    bool moved = false;
    absl::StatusOr<lease::TransactionResult> result = RunTransaction(
        keys != nullptr ? keys : keys_,
        [&](lease::Transaction& txn) -> absl::Status {
          moved = false;
          absl::StatusOr<int64_t> a = Read(txn, Account(from));
          absl::StatusOr<int64_t> b = Read(txn, Account(to));
          absl::StatusOr<int64_t> n = Read(txn, Counter(teller));
          if (!a.ok()) return a.status();
          if (!b.ok()) return b.status();
          if (!n.ok()) return n.status();
          if (*a < amount) return absl::OkStatus();
          txn.Put(Account(from), absl::StrCat(*a - amount));
          txn.Put(Account(to), absl::StrCat(*b + amount));
          txn.Put(Counter(teller), absl::StrCat(*n + 1));
          moved = true;
          return absl::OkStatus();
        },
        options_);
    if (!result.ok()) return result.status();
    return moved;
  }

  struct Audit {
    std::vector<int64_t> balances;
    std::vector<int64_t> counters;  // per teller
    int64_t total = 0;
  };
  // One serializable read of every account and the first `tellers`
  // counters.
  absl::StatusOr<Audit> Read(int tellers) {
    Audit audit;
    absl::StatusOr<lease::TransactionResult> result = RunTransaction(
        keys_,
        [&](lease::Transaction& txn) -> absl::Status {
          audit = Audit();
          for (int i = 0; i < kAccounts; ++i) {
            absl::StatusOr<int64_t> v = Read(txn, Account(i));
            if (!v.ok()) return v.status();
            audit.balances.push_back(*v);
            audit.total += *v;
          }
          for (int t = 0; t < tellers; ++t) {
            absl::StatusOr<int64_t> v = Read(txn, Counter(t));
            if (!v.ok()) return v.status();
            audit.counters.push_back(*v);
          }
          return absl::OkStatus();
        },
        options_);
    if (!result.ok()) return result.status();
    return audit;
  }

 private:
  // An integer key; absent reads as 0.
  static absl::StatusOr<int64_t> Read(lease::Transaction& txn,
                                      const std::string& key) {
    absl::StatusOr<std::optional<std::string>> v = txn.Get(key);
    if (!v.ok()) return v.status();
    int64_t n = 0;
    if (v->has_value() && !absl::SimpleAtoi(**v, &n)) {
      return absl::DataLossError(absl::StrCat(key, " holds \"", **v, "\""));
    }
    return n;
  }

  registry::KeysApi* const keys_;
  const lease::TransactionOptions options_;
};

}  // namespace leasehold::testing

#endif  // LEASEHOLD_TESTS_LEASE_STM_BANK_H_
