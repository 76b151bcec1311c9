// Transactions (lease/stm.h) on the memory registry: the bank under
// concurrency and crashes, each isolation level's anomaly, lost responses.
#include "lease/stm.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registry/memory/memory_registry.h"
#include "tests/lease/stm_bank.h"
#include "tests/lease/stm_isolation_tests.h"
#include "tests/testing/faulty_keys_api.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::lease {
namespace {

using ::leasehold::testing::Bank;
using ::leasehold::testing::FaultyKeysApi;
using ::leasehold::testing::IsOk;
using ::leasehold::testing::StatusIs;
using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::Ge;

constexpr char kIntent[] = "/bank/.stm/intent";

class StmTest : public ::testing::Test {
 protected:
  StmTest() : keys_(registry::NewMemoryRegistry({.clock = &clock_})) {
    options_.prefix = "/bank/";
    options_.clock = &clock_;
    options_.initial_backoff = absl::ZeroDuration();
  }

  // Sets `key` to `value` in a transaction of its own.
  void Write(const std::string& key, const std::string& value,
             registry::KeysApi* keys = nullptr) {
    ASSERT_OK(RunTransaction(
                  keys != nullptr ? keys : keys_.get(),
                  [&](Transaction& txn) {
                    txn.Put(key, value);
                    return absl::OkStatus();
                  },
                  options_)
                  .status());
  }

  std::optional<std::string> Read(const std::string& key) {
    std::optional<std::string> value;
    EXPECT_OK(RunTransaction(
                  keys_.get(),
                  [&](Transaction& txn) -> absl::Status {
                    absl::StatusOr<std::optional<std::string>> v = txn.Get(key);
                    if (!v.ok()) return v.status();
                    value = *v;
                    return absl::OkStatus();
                  },
                  options_)
                  .status());
    return value;
  }

  // Checks the bank's invariant; the number of transfers it counted.
  int64_t ExpectInvariant(Bank& bank, int tellers) {
    absl::StatusOr<Bank::Audit> audit = bank.Read(tellers);
    EXPECT_OK(audit.status());
    if (!audit.ok()) return -1;
    EXPECT_EQ(audit->total, Bank::kAccounts * Bank::kInitial);
    EXPECT_THAT(audit->balances, Each(Ge(0)));
    int64_t counted = 0;
    for (int64_t n : audit->counters) counted += n;
    return counted;
  }

  // Called from apply: the commit's mark is lost (`applied`: after it
  // reached the registry) and its read-back waits until `meanwhile` has
  // run on the returned thread and the intent is gone.
  std::thread LoseCommitMark(FaultyKeysApi& lossy, bool applied,
                             std::function<void()> meanwhile) {
    lossy.PassNext(FaultyKeysApi::kSet, 1);  // the intent's create
    if (applied) {
      lossy.LoseResponseNext(FaultyKeysApi::kSet, 1);
    } else {
      lossy.DropRequestNext(FaultyKeysApi::kSet, 1);
    }
    lossy.Block(FaultyKeysApi::kGet);
    return std::thread([this, &lossy, meanwhile = std::move(meanwhile)] {
      while (lossy.blocked() == 0) absl::SleepFor(absl::Milliseconds(1));
      meanwhile();
      EXPECT_THAT(keys_->Get(kIntent, {}).status(),
                  StatusIs(absl::StatusCode::kNotFound));
      lossy.Unblock();
    });
  }

  SimulatedClock clock_;
  std::unique_ptr<registry::KeysApi> keys_;
  TransactionOptions options_;
};

TEST_F(StmTest, BankUnderConcurrentTransfersKeepsItsInvariant) {
  // Real time: the tellers wait for each other's commits.
  TransactionOptions options = options_;
  options.clock = nullptr;
  options.initial_backoff = absl::Milliseconds(1);
  options.max_backoff = absl::Milliseconds(20);
  std::unique_ptr<registry::KeysApi> keys = registry::NewMemoryRegistry();
  Bank bank(keys.get(), options);
  ASSERT_OK(bank.Open());
  constexpr int kTellers = 4;
  constexpr int kTransfers = 500;  // each: 2,000 in all
  std::vector<int64_t> moved(kTellers, 0);
  std::atomic<int> failures{0};
  std::vector<std::thread> tellers;
  for (int t = 0; t < kTellers; ++t) {
    tellers.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < kTransfers; ++i) {
        absl::StatusOr<bool> r = bank.Transfer(t, rng);
        if (!r.ok()) {
          ADD_FAILURE() << r.status();
          ++failures;
          return;
        }
        moved[t] += *r ? 1 : 0;
      }
    });
  }
  for (std::thread& t : tellers) t.join();
  ASSERT_EQ(failures.load(), 0);
  absl::StatusOr<Bank::Audit> audit = bank.Read(kTellers);
  ASSERT_OK(audit.status());
  EXPECT_EQ(audit->total, Bank::kAccounts * Bank::kInitial);
  EXPECT_THAT(audit->balances, Each(Ge(0)));
  EXPECT_EQ(audit->counters, moved);  // every transfer counted once
}

// The requests of one uncontended transfer: GET domain, create intent,
// mark committed, three writes, delete intent.
constexpr int kTransferRequests = 7;

TEST_F(StmTest, CrashAfterEveryRequestOfACommitRollsForwardOrLeavesNothing) {
  for (int k = 1; k <= kTransferRequests; ++k) {
    SCOPED_TRACE(absl::StrCat("crash after request ", k));
    std::unique_ptr<registry::KeysApi> keys =
        registry::NewMemoryRegistry({.clock = &clock_});
    Bank bank(keys.get(), options_);
    ASSERT_OK(bank.Open());
    ASSERT_OK_AND_ASSIGN(Bank::Audit before, bank.Read(1));

    // The committer's process dies after its k-th request.
    FaultyKeysApi dying(keys.get(), &clock_);
    dying.PassNext(FaultyKeysApi::kAll, k);
    dying.DropRequestNext(FaultyKeysApi::kAll, FaultyKeysApi::kForever);
    TransactionOptions once = options_;
    once.max_attempts = 1;
    Bank teller(keys.get(), once);
    std::mt19937 rng(k);
    absl::StatusOr<bool> moved = teller.Transfer(0, rng, &dying);
    // Past the commit point (the mark, request 3) the transfer has
    // happened, whether or not this process lived to write the data.
    EXPECT_EQ(moved.ok(), k >= 3) << moved.status();

    // A pending intent left behind expires; a committed one stays.
    clock_.Advance(options_.intent_ttl + absl::Seconds(1));
    ASSERT_OK_AND_ASSIGN(Bank::Audit after, bank.Read(1));
    EXPECT_EQ(after.total, Bank::kAccounts * Bank::kInitial);
    EXPECT_THAT(after.balances, Each(Ge(0)));
    EXPECT_EQ(after.counters, std::vector<int64_t>{k >= 3 ? 1 : 0});
    EXPECT_EQ(after.balances != before.balances, k >= 3);
    EXPECT_THAT(keys->Get(kIntent, {}).status(),
                StatusIs(absl::StatusCode::kNotFound));
    // And the domain works on.
    ASSERT_OK(bank.Transfer(0, rng).status());
  }
}

TEST_F(StmTest, LostResponsesAreResolvedAndAppliedExactlyOnce) {
  // Sets: 1 create intent, 2 mark, 3-5 data; then the intent's delete.
  for (bool applied : {true, false}) {
    for (int n = 1; n <= 6; ++n) {
      SCOPED_TRACE(
          absl::StrCat(applied ? "response" : "request", " lost on write ", n));
      std::unique_ptr<registry::KeysApi> keys =
          registry::NewMemoryRegistry({.clock = &clock_});
      Bank bank(keys.get(), options_);
      ASSERT_OK(bank.Open());
      FaultyKeysApi lossy(keys.get(), &clock_);
      const unsigned op = n <= 5 ? FaultyKeysApi::kSet : FaultyKeysApi::kDelete;
      if (n <= 5) lossy.PassNext(FaultyKeysApi::kSet, n - 1);
      if (applied) {
        lossy.LoseResponseNext(op, 1);
      } else {
        lossy.DropRequestNext(op, 1);
      }
      std::mt19937 rng(1);
      absl::StatusOr<bool> moved = bank.Transfer(0, rng, &lossy);
      ASSERT_OK(moved.status());
      ASSERT_TRUE(*moved);
      if (n == 6 && !applied) {
        // The intent's delete was lost: the next reader finishes the job.
        EXPECT_OK(keys->Get(kIntent, {}).status());
      }
      EXPECT_EQ(ExpectInvariant(bank, 1), 1);
      EXPECT_THAT(keys->Get(kIntent, {}).status(),
                  StatusIs(absl::StatusCode::kNotFound));
    }
  }
}

// The commit mark's response is lost and, before the committer reads back,
// another client rolls the committed intent forward and deletes it: the
// intent's history says it was committed.
TEST_F(StmTest, LostCommitMarkResolvedFromHistoryWhenIntentIsGone) {
  FaultyKeysApi lossy(keys_.get(), &clock_);
  Write("/bank/n", "1");
  std::thread other;
  absl::StatusOr<TransactionResult> result = RunTransaction(
      &lossy,
      [&](Transaction& txn) -> absl::Status {
        absl::StatusOr<std::optional<std::string>> n = txn.Get("/bank/n");
        if (!n.ok()) return n.status();
        txn.Put("/bank/n", absl::StrCat(n->value_or(""), "+1"));
        if (other.joinable()) return absl::OkStatus();  // a second run
        other = LoseCommitMark(lossy, /*applied=*/true, [&] {
          EXPECT_EQ(Read("/bank/n"), "1+1");  // rolls forward
        });
        return absl::OkStatus();
      },
      options_);
  other.join();
  ASSERT_OK(result.status());
  EXPECT_EQ(result->attempts, 1);
  EXPECT_EQ(Read("/bank/n"), "1+1");  // once, not twice
}

// The commit mark never arrived and the pending intent expired before the
// committer read back: not committed, so the transaction runs again.
TEST_F(StmTest, LostCommitMarkOfAnExpiredIntentIsRetried) {
  FaultyKeysApi lossy(keys_.get(), &clock_);
  Write("/bank/n", "0");
  std::thread other;
  int runs = 0;
  absl::StatusOr<TransactionResult> result = RunTransaction(
      &lossy,
      [&](Transaction& txn) -> absl::Status {
        absl::StatusOr<std::optional<std::string>> n = txn.Get("/bank/n");
        if (!n.ok()) return n.status();
        int value = 0;
        EXPECT_TRUE(absl::SimpleAtoi(n->value_or("x"), &value));
        txn.Put("/bank/n", absl::StrCat(value + 1));
        if (++runs > 1) return absl::OkStatus();
        other = LoseCommitMark(lossy, /*applied=*/false, [&] {
          clock_.Advance(options_.intent_ttl + absl::Seconds(1));  // expires
        });
        return absl::OkStatus();
      },
      options_);
  other.join();
  ASSERT_OK(result.status());
  EXPECT_EQ(result->attempts, 2);
  EXPECT_EQ(Read("/bank/n"), "1");  // once, not twice
}

TEST_F(StmTest, ApplyErrorAbortsWithNothingWritten) {
  absl::StatusOr<TransactionResult> result = RunTransaction(
      keys_.get(),
      [](Transaction& txn) {
        txn.Put("/bank/a", "1");
        return absl::FailedPreconditionError("insufficient funds");
      },
      options_);
  EXPECT_THAT(result.status(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(keys_->Get("/bank", {.recursive = true}).status(),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(StmTest, DeleteReadsAsAbsentAndRevIsZero) {
  Write("/bank/a", "1");
  ASSERT_OK(RunTransaction(
                keys_.get(),
                [](Transaction& txn) {
                  txn.Del("/bank/a");
                  return absl::OkStatus();
                },
                options_)
                .status());
  EXPECT_EQ(Read("/bank/a"), std::nullopt);
  ASSERT_OK(RunTransaction(
                keys_.get(),
                [](Transaction& txn) -> absl::Status {
                  absl::StatusOr<uint64_t> rev = txn.Rev("/bank/a");
                  if (!rev.ok()) return rev.status();
                  EXPECT_EQ(*rev, 0u);
                  txn.Put("/bank/a", "again");
                  return absl::OkStatus();
                },
                options_)
                .status());
  EXPECT_EQ(Read("/bank/a"), "again");
}

TEST_F(StmTest, GetSeesTheTransactionsOwnWrites) {
  ASSERT_OK(RunTransaction(
                keys_.get(),
                [](Transaction& txn) -> absl::Status {
                  txn.Put("/bank/a", "mine");
                  absl::StatusOr<std::optional<std::string>> v =
                      txn.Get("/bank/a");
                  if (!v.ok()) return v.status();
                  EXPECT_EQ(*v, "mine");
                  txn.Del("/bank/a");
                  v = txn.Get("/bank/a");
                  if (!v.ok()) return v.status();
                  EXPECT_EQ(*v, std::nullopt);
                  return absl::OkStatus();
                },
                options_)
                .status());
}

TEST_F(StmTest, BadKeysAndValuesAreRejected) {
  for (const std::string key :
       {"/elsewhere/a", "/bank/", "/bank//a", "/bank/a/", "/bank/../a",
        "/bank/_hidden", "/bank/.stm/intent"}) {
    SCOPED_TRACE(key);
    EXPECT_THAT(RunTransaction(
                    keys_.get(),
                    [&](Transaction& txn) {
                      txn.Put(key, "v");
                      return absl::OkStatus();
                    },
                    options_)
                    .status(),
                StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(
        RunTransaction(
            keys_.get(),
            [&](Transaction& txn) { return txn.Get(key).status(); }, options_)
            .status(),
        StatusIs(absl::StatusCode::kInvalidArgument));
  }
  EXPECT_THAT(RunTransaction(
                  keys_.get(),
                  [](Transaction& txn) {
                    txn.Put("/bank/a", std::string(kTombstone));
                    return absl::OkStatus();
                  },
                  options_)
                  .status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  options_.max_attempts = 0;
  EXPECT_THAT(
      RunTransaction(
          keys_.get(), [](Transaction&) { return absl::OkStatus(); }, options_)
          .status(),
      StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(StmTest, DeadlineAndCancelStopBeforeWriting) {
  auto put = [](Transaction& txn) {
    txn.Put("/bank/a", "1");
    return absl::OkStatus();
  };
  TransactionOptions late = options_;
  late.deadline = clock_.Now();
  EXPECT_THAT(RunTransaction(keys_.get(), put, late).status(),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  CancelToken cancel;
  cancel.Cancel();
  TransactionOptions cancelled = options_;
  cancelled.cancel = &cancel;
  EXPECT_THAT(RunTransaction(keys_.get(), put, cancelled).status(),
              StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(Read("/bank/a"), std::nullopt);
}

TEST_F(StmTest, ConflictsBeyondTheRetryLimitAbort) {
  Write("/bank/k", "0");
  options_.max_attempts = 3;
  int runs = 0;
  absl::StatusOr<TransactionResult> result = RunTransaction(
      keys_.get(),
      [&](Transaction& txn) -> absl::Status {
        ++runs;
        absl::StatusOr<std::optional<std::string>> v = txn.Get("/bank/k");
        if (!v.ok()) return v.status();
        Write("/bank/k", absl::StrCat(runs));  // always conflicts
        txn.Put("/bank/k", "mine");
        return absl::OkStatus();
      },
      options_);
  EXPECT_THAT(result.status(), StatusIs(absl::StatusCode::kAborted));
  EXPECT_EQ(runs, 3);
  EXPECT_EQ(Read("/bank/k"), "3");
}

// The README's worked example: a unit moves between two machines' lists.
absl::Status MoveUnit(registry::KeysApi* keys, const std::string& unit,
                      const std::string& from, const std::string& to,
                      TransactionOptions options) {
  options.prefix = "/sched/";
  const std::string from_key = absl::StrCat("/sched/machine/", from, "/units");
  const std::string to_key = absl::StrCat("/sched/machine/", to, "/units");
  return RunTransaction(
             keys,
             [&](Transaction& txn) -> absl::Status {
               absl::StatusOr<std::optional<std::string>> a = txn.Get(from_key);
               if (!a.ok()) return a.status();
               absl::StatusOr<std::optional<std::string>> b = txn.Get(to_key);
               if (!b.ok()) return b.status();
               std::vector<std::string> on_from =
                   absl::StrSplit(a->value_or(""), ',', absl::SkipEmpty());
               std::vector<std::string> on_to =
                   absl::StrSplit(b->value_or(""), ',', absl::SkipEmpty());
               auto it = std::find(on_from.begin(), on_from.end(), unit);
               if (it == on_from.end()) {
                 return absl::FailedPreconditionError(
                     absl::StrCat(unit, " is not on ", from));
               }
               on_from.erase(it);
               on_to.push_back(unit);
               txn.Put(from_key, absl::StrJoin(on_from, ","));
               txn.Put(to_key, absl::StrJoin(on_to, ","));
               return absl::OkStatus();
             },
             options)
      .status();
}

TEST_F(StmTest, MoveAUnitBetweenTwoMachines) {
  options_.prefix = "/sched/";
  Write("/sched/machine/a/units", "web,db");
  ASSERT_OK(MoveUnit(keys_.get(), "db", "a", "b", options_));
  EXPECT_THAT(MoveUnit(keys_.get(), "db", "a", "b", options_),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK(MoveUnit(keys_.get(), "web", "a", "b", options_));
  ASSERT_OK(MoveUnit(keys_.get(), "db", "b", "a", options_));
  absl::StatusOr<registry::Response> a =
      keys_->Get("/sched/machine/a/units", {});
  absl::StatusOr<registry::Response> b =
      keys_->Get("/sched/machine/b/units", {});
  ASSERT_OK(a.status());
  ASSERT_OK(b.status());
  EXPECT_EQ(a->node.value, "db");
  EXPECT_EQ(b->node.value, "web");
}

// Requests per commit on an idle store: 4 + one per key written.
TEST_F(StmTest, RequestsPerCommit) {
  for (int n : {1, 2, 8}) {
    FaultyKeysApi counting(keys_.get(), &clock_);
    absl::StatusOr<TransactionResult> result = RunTransaction(
        &counting,
        [&](Transaction& txn) -> absl::Status {
          for (int i = 0; i < n; ++i) {
            const std::string key = absl::StrCat("/bank/cost/", i);
            absl::StatusOr<std::optional<std::string>> v = txn.Get(key);
            if (!v.ok()) return v.status();
            txn.Put(key, absl::StrCat(v->value_or("0"), "+"));
          }
          return absl::OkStatus();
        },
        options_);
    ASSERT_OK(result.status());
    EXPECT_EQ(counting.calls(FaultyKeysApi::kAll), 4 + n) << n << " keys";
  }
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Memory, StmIsolationTest,
                         ::testing::Values(StmRegistry{
                             "mem",
                             [] { return registry::NewMemoryRegistry(); }}),
                         [](const ::testing::TestParamInfo<StmRegistry>& info) {
                           return info.param.name;
                         });

}  // namespace leasehold::lease
