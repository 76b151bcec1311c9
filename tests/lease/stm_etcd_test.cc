// Transactions (lease/stm.h) against a real etcd: the bank under concurrent
// tellers, and under tellers in processes SIGKILLed at random moments.
#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <iostream>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lease/stm.h"
#include "registry/open.h"
#include "tests/lease/stm_bank.h"
#include "tests/lease/stm_isolation_tests.h"
#include "tests/testing/etcd_server.h"
#include "tests/testing/run_process.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::lease {
namespace {

using ::leasehold::testing::Bank;
using ::leasehold::testing::EtcdApis;
using ::leasehold::testing::SharedEtcdFor;
using ::leasehold::testing::Subprocess;
using ::testing::Each;
using ::testing::Ge;

constexpr char kTellerEnv[] = "LEASEHOLD_STM_TELLER";

TransactionOptions BankOptions(const std::string& prefix) {
  TransactionOptions options;
  options.prefix = prefix;
  // A teller killed before its commit point blocks the bank this long.
  options.intent_ttl = absl::Seconds(1);
  options.max_attempts = 1000;
  return options;
}

std::string TestPrefix() {
  return absl::StrCat(
      "/stm-", ::testing::UnitTest::GetInstance()->current_test_info()->name(),
      "/");
}

std::unique_ptr<registry::KeysApi> OpenEtcd(const std::string& uri) {
  absl::StatusOr<std::unique_ptr<registry::KeysApi>> keys = registry::Open(uri);
  EXPECT_OK(keys.status());
  return keys.ok() ? std::move(*keys) : nullptr;
}

// Tellers transfer for `duration`; false when one failed.
bool RunTellers(Bank& bank, const std::string& uri, int first, int count,
                absl::Duration duration, std::vector<int64_t>* moved) {
  std::atomic<bool> ok{true};
  const absl::Time end = absl::Now() + duration;
  std::vector<std::thread> tellers;
  for (int t = first; t < first + count; ++t) {
    tellers.emplace_back([&, t] {
      std::unique_ptr<registry::KeysApi> keys = OpenEtcd(uri);
      std::mt19937 rng(t);
      while (ok && absl::Now() < end) {
        absl::StatusOr<bool> r = bank.Transfer(t, rng, keys.get());
        if (!r.ok()) {
          ADD_FAILURE() << "teller " << t << ": " << r.status();
          ok = false;
          return;
        }
        (*moved)[t] += *r ? 1 : 0;
      }
    });
  }
  for (std::thread& t : tellers) t.join();
  return ok;
}

// The tests below against each API in turn (the parameter: "etcd" for v2,
// "etcd3" for v3 on a server without v2).
class StmEtcdTest : public ::testing::TestWithParam<std::string> {
 protected:
  static std::string Uri() { return SharedEtcdFor(GetParam()).uri(); }
};

TEST_P(StmEtcdTest, BankUnderConcurrentTellersKeepsItsInvariant) {
  std::unique_ptr<registry::KeysApi> keys = OpenEtcd(Uri());
  Bank bank(keys.get(), BankOptions(TestPrefix()));
  ASSERT_OK(bank.Open());
  constexpr int kTellers = 4;
  std::vector<int64_t> moved(kTellers, 0);
  ASSERT_TRUE(RunTellers(bank, Uri(), 0, kTellers, absl::Seconds(10), &moved));
  ASSERT_OK_AND_ASSIGN(Bank::Audit audit, bank.Read(kTellers));
  EXPECT_EQ(audit.total, Bank::kAccounts * Bank::kInitial);
  EXPECT_THAT(audit.balances, Each(Ge(0)));
  EXPECT_EQ(audit.counters, moved);
  int64_t transfers = 0;
  for (int64_t n : moved) transfers += n;
  EXPECT_GT(transfers, 0);
  std::cout << "transfers committed in 10 s: " << transfers << "\n";
}

// The child side of BankSurvivesTellersKilledMidCommit: transfers forever,
// printing "moved" after each committed transfer.
TEST(StmTellerProcess, Run) {
  const char* spec = getenv(kTellerEnv);
  if (spec == nullptr) GTEST_SKIP() << "run by the crash test only";
  std::vector<std::string> f = absl::StrSplit(spec, ',');
  ASSERT_EQ(f.size(), 3u);
  int teller = 0;
  ASSERT_TRUE(absl::SimpleAtoi(f[2], &teller));
  std::unique_ptr<registry::KeysApi> keys = OpenEtcd(f[0]);
  Bank bank(keys.get(), BankOptions(f[1]));
  std::mt19937 rng(teller);
  for (;;) {
    absl::StatusOr<bool> r = bank.Transfer(teller, rng);
    ASSERT_OK(r.status());
    if (*r) std::cout << "moved" << std::endl;
  }
}

TEST_P(StmEtcdTest, BankSurvivesTellersKilledMidCommit) {
  const std::string prefix = TestPrefix();
  std::unique_ptr<registry::KeysApi> keys = OpenEtcd(Uri());
  Bank bank(keys.get(), BankOptions(prefix));
  ASSERT_OK(bank.Open());
  // Two tellers in this process meet whatever the killed ones leave.
  constexpr int kThreads = 2;
  constexpr int kProcesses = 12;
  std::vector<int64_t> moved(kThreads + kProcesses, 0);
  std::thread threads(
      [&] { RunTellers(bank, Uri(), 0, kThreads, absl::Seconds(10), &moved); });
  std::mt19937 rng(::testing::UnitTest::GetInstance()->random_seed());
  std::cout << "seed " << ::testing::UnitTest::GetInstance()->random_seed()
            << "\n";
  for (int p = kThreads; p < kThreads + kProcesses; ++p) {
    Subprocess child(
        {"/proc/self/exe", "--gtest_filter=StmTellerProcess.Run"},
        {absl::StrCat(kTellerEnv, "=", Uri(), ",", prefix, ",", p)});
    child.WaitForOutput("moved", absl::Now() + absl::Seconds(30));
    absl::SleepFor(
        absl::Milliseconds(std::uniform_int_distribution<int>(0, 300)(rng)));
    child.Signal(SIGKILL);
    child.Wait(absl::Now() + absl::Seconds(30));
    int64_t lines = 0;
    for (absl::string_view line : absl::StrSplit(child.out(), '\n')) {
      lines += line == "moved" ? 1 : 0;
    }
    moved[p] = lines;
  }
  threads.join();
  ASSERT_OK_AND_ASSIGN(Bank::Audit audit, bank.Read(kThreads + kProcesses));
  EXPECT_EQ(audit.total, Bank::kAccounts * Bank::kInitial);
  EXPECT_THAT(audit.balances, Each(Ge(0)));
  for (int t = 0; t < kThreads + kProcesses; ++t) {
    SCOPED_TRACE(absl::StrCat("teller ", t));
    // A killed teller may have committed one transfer it never reported.
    EXPECT_GE(audit.counters[t], moved[t]);
    EXPECT_LE(audit.counters[t], moved[t] + (t >= kThreads ? 1 : 0));
  }
}

INSTANTIATE_TEST_SUITE_P(Apis, StmEtcdTest, ::testing::ValuesIn(EtcdApis()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// The isolation suite on each API.
std::vector<StmRegistry> EtcdRegistries() {
  std::vector<StmRegistry> registries;
  for (const std::string& api : EtcdApis()) {
    registries.push_back(
        {api, [api] { return OpenEtcd(SharedEtcdFor(api).uri()); }});
  }
  return registries;
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Etcd, StmIsolationTest,
                         ::testing::ValuesIn(EtcdRegistries()),
                         [](const ::testing::TestParamInfo<StmRegistry>& info) {
                           return info.param.name;
                         });

}  // namespace leasehold::lease
