#include "tools/sim/history.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <tuple>

#include "absl/strings/str_cat.h"

namespace leasehold::sim {
namespace {

// Holds grouped by lease, each group in grant order: by start, and holds
// that started in the same clock tick by fence (the order the registry
// granted them), whatever order they were recorded in.
std::map<std::string, std::vector<Hold>> ByLease(std::vector<Hold> holds) {
  std::map<std::string, std::vector<Hold>> by_lease;
  for (Hold& hold : holds) by_lease[hold.lease].push_back(std::move(hold));
  for (auto& [lease, group] : by_lease) {
    std::sort(group.begin(), group.end(), [](const Hold& a, const Hold& b) {
      return std::tie(a.start, a.fence) < std::tie(b.start, b.fence);
    });
  }
  return by_lease;
}

// The hold was orphaned and ended before its holder was back.
bool LostWhileAway(const Hold& hold) {
  return hold.orphaned != absl::InfiniteFuture() && hold.end <= hold.back;
}

}  // namespace

size_t History::Begin(const std::string& lease, const std::string& machine,
                      uint64_t fence, absl::Time start, bool by_steal,
                      absl::Time expiry) {
  Hold hold;
  hold.lease = lease;
  hold.machine = machine;
  hold.fence = fence;
  hold.start = start;
  hold.by_steal = by_steal;
  hold.expiry = expiry;
  size_t id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    holds_.push_back(hold);
    id = holds_.size() - 1;
  }
  if (on_change_ != nullptr) on_change_(hold);
  return id;
}

void History::End(size_t id, absl::Time end, const std::string& how,
                  absl::Time told) {
  Hold ended;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Hold& hold = holds_.at(id);
    if (hold.end != absl::InfiniteFuture()) return;
    hold.end = std::max(end, hold.start);
    hold.how_ended = how;
    hold.told = told;
    ended = hold;
  }
  if (on_change_ != nullptr) on_change_(ended);
}

void History::Renewed(size_t id, absl::Time at, absl::Time expiry) {
  Hold renewed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Hold& hold = holds_.at(id);
    if (hold.end != absl::InfiniteFuture()) return;
    hold.renewed = at;
    hold.expiry = expiry;
    renewed = hold;
  }
  if (on_change_ != nullptr) on_change_(renewed);
}

void History::Orphan(size_t id, absl::Time at) {
  std::lock_guard<std::mutex> lock(mu_);
  Hold& hold = holds_.at(id);
  if (hold.end != absl::InfiniteFuture()) return;
  if (hold.back != absl::InfiniteFuture()) {  // away again
    hold.orphaned = at;
    hold.back = absl::InfiniteFuture();
  } else {
    hold.orphaned = std::min(hold.orphaned, at);
  }
}

void History::Back(size_t id, absl::Time at) {
  std::lock_guard<std::mutex> lock(mu_);
  Hold& hold = holds_.at(id);
  if (hold.end == absl::InfiniteFuture() &&
      hold.orphaned != absl::InfiniteFuture()) {
    hold.back = std::min(hold.back, at);
  }
}

void History::EndAll(absl::Time end, const std::string& how) {
  std::lock_guard<std::mutex> lock(mu_);
  for (Hold& hold : holds_) {
    if (hold.end == absl::InfiniteFuture()) {
      hold.end = end;
      hold.how_ended = how;
    }
  }
}

std::vector<Hold> History::holds() const {
  std::lock_guard<std::mutex> lock(mu_);
  return holds_;
}

Verdict History::Check() const {
  Verdict verdict;
  for (const auto& [lease, group] : ByLease(holds())) {
    // Of the holds before the predecessor, the one believed longest.
    const Hold* longest_earlier = nullptr;
    for (size_t i = 1; i < group.size(); ++i) {
      const Hold& before = group[i - 1];
      const Hold& after = group[i];
      // A steal deposes only its predecessor; nobody else may still believe.
      const Hold* rival = after.by_steal ? longest_earlier : &before;
      if (!after.by_steal && longest_earlier != nullptr &&
          longest_earlier->end > before.end) {
        rival = longest_earlier;
      }
      if (rival != nullptr && after.start < rival->end) {
        ++verdict.overlaps;
        verdict.violations.push_back(absl::StrCat(
            lease, ": ", after.machine, " believed it owned it from ",
            absl::FormatTime(after.start), " while ", rival->machine,
            " still did until ", absl::FormatTime(rival->end), " (",
            rival->how_ended, ")"));
      }
      if (after.fence <= before.fence) {
        ++verdict.fence_violations;
        verdict.violations.push_back(absl::StrCat(
            lease, ": fence went from ", before.fence, " (", before.machine,
            ") to ", after.fence, " (", after.machine, ")"));
      }
      if (longest_earlier == nullptr || before.end > longest_earlier->end) {
        longest_earlier = &before;
      }
    }
  }
  verdict.safe = verdict.violations.empty();
  return verdict;
}

int History::Transfers(int* same_machine) const {
  int transfers = 0;
  *same_machine = 0;
  for (const auto& [lease, group] : ByLease(holds())) {
    for (size_t i = 1; i < group.size(); ++i) {
      ++(group[i].machine != group[i - 1].machine ? transfers : *same_machine);
    }
  }
  return transfers;
}

std::vector<absl::Duration> History::FailoverLatencies() const {
  return Gaps([](const Hold& before,
                 const Hold& after) -> std::optional<absl::Duration> {
    if (!LostWhileAway(before)) return std::nullopt;
    return after.start - before.orphaned;
  });
}

std::vector<absl::Duration> History::DeposedNoticeLatencies() const {
  return Gaps([](const Hold& before,
                 const Hold& after) -> std::optional<absl::Duration> {
    if (!after.by_steal) return std::nullopt;
    return std::max(absl::ZeroDuration(), before.end - after.start);
  });
}

std::vector<absl::Duration> History::ToldAheadOfNextOwner() const {
  return Gaps([](const Hold& before,
                 const Hold& after) -> std::optional<absl::Duration> {
    if (before.told == absl::InfiniteFuture() || !LostWhileAway(before) ||
        before.machine == after.machine) {
      return std::nullopt;
    }
    return after.start - before.told;
  });
}

std::vector<absl::Duration> History::Gaps(
    const std::function<
        std::optional<absl::Duration>(const Hold&, const Hold&)>& gap) const {
  std::vector<absl::Duration> gaps;
  for (const auto& [lease, group] : ByLease(holds())) {
    for (size_t i = 1; i < group.size(); ++i) {
      if (std::optional<absl::Duration> d = gap(group[i - 1], group[i]))
        gaps.push_back(*d);
    }
  }
  return gaps;
}

}  // namespace leasehold::sim
