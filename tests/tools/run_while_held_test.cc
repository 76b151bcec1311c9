#include "tools/cli/run_while_held.h"

#include <chrono>
#include <memory>
#include <sstream>
#include <thread>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lease/signal.h"
#include "registry/clock.h"
#include "tools/cli/command.h"

namespace leasehold::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A Lease that learns its key is gone pulls its expiry back to that
// moment. CMD still gets its whole grace period after the loss: the
// SIGKILL goes by the latest expiry seen before, not by the pulled-back one.
TEST(RunWhileHeldTest, ALossThatPullsTheExpiryBackStillLeavesTheGrace) {
  Clock* clock = RealClock();
  auto lost = std::make_shared<lease::Signal>(clock);
  const absl::Time expiry = clock->Now() + absl::Seconds(60);
  absl::Time lost_at;  // written before the Fire, read after fired()
  std::ostringstream out, err;
  Context ctx(GlobalOptions{}, out, err);
  HeldCommand held;
  held.what = "lock \"x\"";
  // CMD ignores SIGTERM, so only the SIGKILL ends it.
  held.argv = {"sh", "-c", "trap '' TERM; exec sleep 60"};
  held.lost = lost;
  held.expiry = [&] { return lost->fired() ? lost_at : expiry; };
  held.clock = clock;
  held.grace = absl::Seconds(1);
  std::thread loser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    lost_at = clock->Now();
    lost->Fire(absl::AbortedError("deleted"));
  });
  const int exit_code = RunWhileHeld(ctx, "lock", held);
  loser.join();
  EXPECT_EQ(exit_code, kExitNotHeld);
  EXPECT_THAT(err.str(), HasSubstr("lock \"x\" lost (deleted); sent SIGTERM"));
  EXPECT_THAT(err.str(), HasSubstr("still running 1s after the loss; sent "
                                   "SIGKILL"));
  EXPECT_THAT(err.str(), Not(HasSubstr("at the expiry")));
}

}  // namespace
}  // namespace leasehold::cli
