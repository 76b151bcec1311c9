// Each isolation level's anomaly (lease/stm.h), one deterministic test
// each, as a value-parameterized suite: stm_test.cc instantiates it on the
// memory registry and stm_etcd_test.cc on a real etcd, so both registries
// pass the same tests.
//
//   INSTANTIATE_TEST_SUITE_P(Memory, StmIsolationTest,
//                            ::testing::Values(StmRegistry{"mem", OpenMem}));
#ifndef LEASEHOLD_TESTS_LEASE_STM_ISOLATION_TESTS_H_
#define LEASEHOLD_TESTS_LEASE_STM_ISOLATION_TESTS_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lease/stm.h"
#include "registry/keys_api.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::lease {

struct StmRegistry {
  std::string name;
  std::function<std::unique_ptr<registry::KeysApi>()> open;
};

inline std::string Key(const TransactionOptions& options,
                       const std::string& name) {
  return options.prefix + name;
}

class StmIsolationTest : public ::testing::TestWithParam<StmRegistry> {
 protected:
  StmIsolationTest() : keys_(GetParam().open()) {
    // Each test its own domain: a shared etcd keeps every test's keys.
    options_.prefix = absl::StrCat(
        "/isolation-",
        ::testing::UnitTest::GetInstance()->current_test_info()->name(), "/");
    options_.initial_backoff = absl::ZeroDuration();
  }

  void Write(const std::string& key, const std::string& value) {
    ASSERT_OK(RunTransaction(
                  keys_.get(),
                  [&](Transaction& txn) {
                    txn.Put(key, value);
                    return absl::OkStatus();
                  },
                  options_)
                  .status());
  }

  std::unique_ptr<registry::KeysApi> keys_;
  TransactionOptions options_;
};

// Reads `key` twice; between the reads (on the first run only) another
// transaction changes it. The two values the first run saw.
inline std::vector<std::string> ReadTwiceAcrossACommit(
    registry::KeysApi* keys, TransactionOptions options, bool* committed) {
  std::vector<std::string> seen;
  int runs = 0;
  absl::StatusOr<TransactionResult> result = RunTransaction(
      keys,
      [&](Transaction& txn) -> absl::Status {
        const bool first = ++runs == 1;
        for (int i = 0; i < 2; ++i) {
          absl::StatusOr<std::optional<std::string>> v =
              txn.Get(Key(options, "k"));
          if (!v.ok()) return v.status();
          if (first) seen.push_back(v->value_or(""));
          if (first && i == 0) {
            absl::Status s = RunTransaction(
                                 keys,
                                 [&](Transaction& other) {
                                   other.Put(Key(options, "k"), "new");
                                   return absl::OkStatus();
                                 },
                                 options)
                                 .status();
            if (!s.ok()) return s;
          }
        }
        txn.Put(Key(options, "other"), "x");
        return absl::OkStatus();
      },
      options);
  *committed = result.ok() && result->attempts == 1;
  EXPECT_OK(result.status());
  return seen;
}

TEST_P(StmIsolationTest, ReadCommittedShowsANonRepeatableRead) {
  Write(Key(options_, "k"), "old");
  options_.isolation = Isolation::kReadCommitted;
  bool first_run_committed = false;
  EXPECT_THAT(
      ReadTwiceAcrossACommit(keys_.get(), options_, &first_run_committed),
      ::testing::ElementsAre("old", "new"));
  EXPECT_TRUE(first_run_committed);
}

TEST_P(StmIsolationTest, RepeatableReadPreventsANonRepeatableRead) {
  Write(Key(options_, "k"), "old");
  options_.isolation = Isolation::kRepeatableRead;
  bool first_run_committed = true;
  EXPECT_THAT(
      ReadTwiceAcrossACommit(keys_.get(), options_, &first_run_committed),
      ::testing::ElementsAre("old", "old"));
  EXPECT_FALSE(first_run_committed);  // the read changed: apply ran again
}

// x and y hold 50 each; between apply's reads of x and y another
// transaction moves 30 from x to y. The sums apply saw, per run.
inline std::vector<int> SumsSeenAcrossATransfer(registry::KeysApi* keys,
                                                TransactionOptions options) {
  std::vector<int> sums;
  absl::StatusOr<TransactionResult> result = RunTransaction(
      keys,
      [&](Transaction& txn) -> absl::Status {
        int sum = 0;
        for (const std::string& key : {Key(options, "x"), Key(options, "y")}) {
          absl::StatusOr<std::optional<std::string>> v = txn.Get(key);
          if (!v.ok()) return v.status();
          int n = 0;
          EXPECT_TRUE(absl::SimpleAtoi(v->value_or("x"), &n));
          sum += n;
          if (sums.empty() && key == Key(options, "x")) {
            absl::Status s = RunTransaction(
                                 keys,
                                 [&](Transaction& other) {
                                   other.Put(Key(options, "x"), "20");
                                   other.Put(Key(options, "y"), "80");
                                   return absl::OkStatus();
                                 },
                                 options)
                                 .status();
            if (!s.ok()) return s;
          }
        }
        sums.push_back(sum);
        return absl::OkStatus();
      },
      options);
  EXPECT_OK(result.status());
  return sums;
}

TEST_P(StmIsolationTest, RepeatableReadCanHandApplyAMixedSnapshot) {
  Write(Key(options_, "x"), "50");
  Write(Key(options_, "y"), "50");
  options_.isolation = Isolation::kRepeatableRead;
  // Old x with new y; the commit then fails and apply runs again.
  EXPECT_THAT(SumsSeenAcrossATransfer(keys_.get(), options_),
              ::testing::ElementsAre(130, 100));
}

TEST_P(StmIsolationTest, SerializableReadsOneConsistentSnapshot) {
  Write(Key(options_, "x"), "50");
  Write(Key(options_, "y"), "50");
  EXPECT_THAT(SumsSeenAcrossATransfer(keys_.get(), options_),
              ::testing::ElementsAre(100));
}

// Two doctors on call; each may go off call if the other stays on. Doctor
// A checks, then (on its first run) doctor B checks and goes off, then A
// goes off on what it read.
inline int DoctorsOnCallAfterBothGoOff(registry::KeysApi* keys,
                                       TransactionOptions options) {
  auto go_off = [&](const std::string& me,
                    const std::function<void()>& between) {
    return RunTransaction(
        keys,
        [&](Transaction& txn) -> absl::Status {
          int on_call = 0;
          for (const std::string& doctor :
               {Key(options, "doctor/alice"), Key(options, "doctor/bob")}) {
            absl::StatusOr<std::optional<std::string>> v = txn.Get(doctor);
            if (!v.ok()) return v.status();
            on_call += *v == "on" ? 1 : 0;
          }
          between();
          if (on_call >= 2) txn.Put(me, "off");
          return absl::OkStatus();
        },
        options);
  };
  bool once = true;
  absl::Status alice =
      go_off(Key(options, "doctor/alice"), [&] {
        if (!std::exchange(once, false)) return;
        EXPECT_OK(go_off(Key(options, "doctor/bob"), [] {}).status());
      }).status();
  EXPECT_OK(alice);
  int on_call = 0;
  absl::Status read =
      RunTransaction(
          keys,
          [&](Transaction& txn) -> absl::Status {
            on_call = 0;
            for (const std::string& doctor :
                 {Key(options, "doctor/alice"), Key(options, "doctor/bob")}) {
              absl::StatusOr<std::optional<std::string>> v = txn.Get(doctor);
              if (!v.ok()) return v.status();
              on_call += *v == "on" ? 1 : 0;
            }
            return absl::OkStatus();
          },
          options)
          .status();
  EXPECT_OK(read);
  return on_call;
}

TEST_P(StmIsolationTest, ReadCommittedAllowsWriteSkew) {
  Write(Key(options_, "doctor/alice"), "on");
  Write(Key(options_, "doctor/bob"), "on");
  options_.isolation = Isolation::kReadCommitted;
  EXPECT_EQ(DoctorsOnCallAfterBothGoOff(keys_.get(), options_), 0);
}

TEST_P(StmIsolationTest, SerializablePreventsWriteSkew) {
  Write(Key(options_, "doctor/alice"), "on");
  Write(Key(options_, "doctor/bob"), "on");
  EXPECT_EQ(DoctorsOnCallAfterBothGoOff(keys_.get(), options_), 1);
}

}  // namespace leasehold::lease

#endif  // LEASEHOLD_TESTS_LEASE_STM_ISOLATION_TESTS_H_
