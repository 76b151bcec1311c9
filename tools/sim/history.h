// History of a simulation: who believed it owned what, when; and the safety
// verdict computed from it.
//
// A Hold is one owner's belief in one lease, from the moment its acquire or
// steal answered until it stopped believing: it released the lease, its
// Keeper reported it lost, it crashed, or the lease's conservative local
// expiry (Lease::expiry: the time the last granting request was SENT plus
// the TTL) passed — whichever came first. The verdict is safe when no two
// holds of one lease overlap (but for takeovers by steal, see Hold::by_steal)
// and fences strictly increase from each holder to the next. Holds are taken
// in grant order: by start, and by fence among holds that started in the
// same clock tick (so the order they were recorded in never matters).
//
// Thread-safety: History is safe from any thread.
#ifndef LEASEHOLD_TOOLS_SIM_HISTORY_H_
#define LEASEHOLD_TOOLS_SIM_HISTORY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"

namespace leasehold::sim {

struct Hold {
  std::string lease;
  std::string machine;
  uint64_t fence = 0;
  absl::Time start;
  absl::Time end = absl::InfiniteFuture();  // open while believed
  // Set when the holder failed (crash, pause, partition) while holding: the
  // moment the lease was orphaned, from which failover latency is measured.
  absl::Time orphaned = absl::InfiniteFuture();
  // When the orphaned holder came back (resumed, healed) with the hold
  // still open. A hold that ends after that was kept through the outage,
  // not lost to it: whoever holds the lease next took it from a running
  // holder, which is no failover. InfiniteFuture while it is away.
  absl::Time back = absl::InfiniteFuture();
  std::string how_ended;  // "released", "lost", "crashed", "end of run"
  // When the holder's own code was told it lost the lease (its Keeper
  // reported it); InfiniteFuture when it never was (it released it,
  // crashed, or the run ended). `end` is no later: a holder told after its
  // local expiry had stopped believing at that expiry.
  absl::Time told = absl::InfiniteFuture();
  // The holder's local expiry (Lease::expiry) as last recorded, at the
  // grant or at the renew at `renewed`: unless renewed again, its belief
  // ends there. InfiniteFuture when not recorded.
  absl::Time expiry = absl::InfiniteFuture();
  absl::Time renewed = absl::InfinitePast();  // the last renew recorded
  // Taken over from the previous holder by a steal at a known index (a
  // deliberate takeover, such as a newer engine version's): the previous
  // holder goes on believing until its next renew tells it otherwise, so
  // the verdict measures that time instead of calling it a violation.
  bool by_steal = false;
};

struct Verdict {
  bool safe = true;
  std::vector<std::string> violations;  // each names the lease and holders
  int overlaps = 0;                     // two holders believed at once
  int fence_violations = 0;  // a fence that did not rise to the next holder
};

class History {
 public:
  // `on_change`, when set, gets a copy of each hold as it begins, as it is
  // renewed (Renewed) and as it ends (called outside History's lock, from
  // the thread that changed it).
  explicit History(std::function<void(const Hold&)> on_change = nullptr)
      : on_change_(std::move(on_change)) {}

  // Returns the hold's id.
  size_t Begin(const std::string& lease, const std::string& machine,
               uint64_t fence, absl::Time start, bool by_steal = false,
               absl::Time expiry = absl::InfiniteFuture());
  // Records that open hold `id` was renewed at `at`, its holder now
  // believing until `expiry` (no-op if already closed).
  void Renewed(size_t id, absl::Time at, absl::Time expiry);
  // Closes hold `id` at `end` (no-op if already closed); `told`: when the
  // holder was told it lost it, if it was.
  void End(size_t id, absl::Time end, const std::string& how,
           absl::Time told = absl::InfiniteFuture());
  // Marks open hold `id` as orphaned at `at` (its holder crashed or paused).
  // A hold orphaned again after it came back is measured from the new
  // orphaning.
  void Orphan(size_t id, absl::Time at);
  // Marks orphaned open hold `id` as back with its holder at `at`.
  void Back(size_t id, absl::Time at);
  // Closes every open hold at `end`.
  void EndAll(absl::Time end, const std::string& how);

  std::vector<Hold> holds() const;
  Verdict Check() const;
  // Successive holds of one lease by different machines; `*same_machine`
  // counts those taken again by the machine that held it before.
  int Transfers(int* same_machine) const;
  // For each hold lost while its holder was away (orphaned and ended
  // before it was back): from the orphaning to the next holder's start.
  std::vector<absl::Duration> FailoverLatencies() const;
  // For each steal: from the stealer's start to the deposed holder's end.
  std::vector<absl::Duration> DeposedNoticeLatencies() const;
  // For each hold lost while its holder was away (its link hung) that its
  // holder was told of and another machine took next: how long before the
  // next holder's start it was told (negative: told after).
  std::vector<absl::Duration> ToldAheadOfNextOwner() const;

 private:
  // gap(before, after) for each two successive holds of a lease, where set.
  std::vector<absl::Duration> Gaps(
      const std::function<
          std::optional<absl::Duration>(const Hold&, const Hold&)>& gap) const;

  const std::function<void(const Hold&)> on_change_;
  mutable std::mutex mu_;
  std::vector<Hold> holds_ ABSL_GUARDED_BY(mu_);
};

}  // namespace leasehold::sim

#endif  // LEASEHOLD_TOOLS_SIM_HISTORY_H_
