// Eventually(done): polls `done` on the real clock until it holds or the
// timeout passes. For waiting on other threads' progress, never for a TTL
// to run out (tests move a simulated clock for that).
//
//   ASSERT_TRUE(Eventually([&] { return kept->state() == kSuspect; }));
//
// Thread-safety: `done` runs on the calling thread only.
#ifndef LEASEHOLD_TESTS_TESTING_EVENTUALLY_H_
#define LEASEHOLD_TESTS_TESTING_EVENTUALLY_H_

#include <chrono>
#include <thread>

namespace leasehold::testing {

template <typename Predicate>
bool Eventually(Predicate done,
                std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace leasehold::testing

#endif  // LEASEHOLD_TESTS_TESTING_EVENTUALLY_H_
