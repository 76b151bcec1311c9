#include "registry/cancel.h"

#include <atomic>
#include <thread>

#include "gtest/gtest.h"

namespace leasehold {
namespace {

TEST(CancelTokenTest, RunsCallbacksOnceOnCancel) {
  CancelToken token;
  int calls = 0;
  auto registration = token.OnCancel([&] { ++calls; });
  EXPECT_FALSE(token.cancelled());
  token.Cancel();
  token.Cancel();
  EXPECT_TRUE(token.cancelled());
  EXPECT_EQ(calls, 1);
}

TEST(CancelTokenTest, RegisteringOnACancelledTokenRunsAtOnce) {
  CancelToken token;
  token.Cancel();
  bool ran = false;
  auto registration = token.OnCancel([&] { ran = true; });
  EXPECT_TRUE(ran);
}

TEST(CancelTokenTest, UnregisteredCallbackDoesNotRun) {
  CancelToken token;
  bool ran = false;
  {
    auto registration = token.OnCancel([&] { ran = true; });
  }
  token.Cancel();
  EXPECT_FALSE(ran);
}

TEST(CancelTokenTest, UnregisterWaitsForARunningCallback) {
  CancelToken token;
  std::atomic<bool> started{false};
  std::atomic<bool> finished{false};
  std::atomic<bool> release{false};
  auto registration = token.OnCancel([&] {
    started = true;
    while (!release) std::this_thread::yield();
    finished = true;
  });
  std::thread canceller([&] { token.Cancel(); });
  while (!started) std::this_thread::yield();
  std::thread unregister([&] {
    registration.Reset();
    // Reset returned: the callback must have completed.
    EXPECT_TRUE(finished);
  });
  release = true;
  unregister.join();
  canceller.join();
}

TEST(CancelTokenTest, CallbackMayUnregisterOthers) {
  CancelToken token;
  CancelToken::Registration second;
  bool second_ran = false;
  auto first = token.OnCancel([&] { second.Reset(); });
  second = token.OnCancel([&] { second_ran = true; });
  token.Cancel();
  EXPECT_FALSE(second_ran);
}

}  // namespace
}  // namespace leasehold
