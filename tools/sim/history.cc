#include "tools/sim/history.h"

#include <algorithm>
#include <functional>
#include <optional>

#include "absl/strings/str_cat.h"

namespace leasehold::sim {
namespace {

// Holds grouped by lease, each group in order of start.
std::map<std::string, std::vector<Hold>> ByLease(std::vector<Hold> holds) {
  std::map<std::string, std::vector<Hold>> by_lease;
  for (Hold& hold : holds) by_lease[hold.lease].push_back(std::move(hold));
  for (auto& [lease, group] : by_lease) {
    std::sort(group.begin(), group.end(),
              [](const Hold& a, const Hold& b) { return a.start < b.start; });
  }
  return by_lease;
}

}  // namespace

size_t History::Begin(const std::string& lease, const std::string& machine,
                      uint64_t fence, absl::Time start, bool by_steal) {
  std::lock_guard<std::mutex> lock(mu_);
  Hold hold;
  hold.lease = lease;
  hold.machine = machine;
  hold.fence = fence;
  hold.start = start;
  hold.by_steal = by_steal;
  holds_.push_back(std::move(hold));
  return holds_.size() - 1;
}

void History::End(size_t id, absl::Time end, const std::string& how) {
  std::lock_guard<std::mutex> lock(mu_);
  Hold& hold = holds_.at(id);
  if (hold.end != absl::InfiniteFuture()) return;
  hold.end = std::max(end, hold.start);
  hold.how_ended = how;
}

void History::Orphan(size_t id, absl::Time at) {
  std::lock_guard<std::mutex> lock(mu_);
  Hold& hold = holds_.at(id);
  if (hold.end == absl::InfiniteFuture())
    hold.orphaned = std::min(hold.orphaned, at);
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
    for (size_t i = 1; i < group.size(); ++i) {
      const Hold& before = group[i - 1];
      const Hold& after = group[i];
      if (after.start < before.end && !after.by_steal) {
        verdict.violations.push_back(absl::StrCat(
            lease, ": ", after.machine, " believed it owned it from ",
            absl::FormatTime(after.start), " while ", before.machine,
            " still did until ", absl::FormatTime(before.end), " (",
            before.how_ended, ")"));
      }
      if (after.fence <= before.fence) {
        verdict.violations.push_back(absl::StrCat(
            lease, ": fence went from ", before.fence, " (", before.machine,
            ") to ", after.fence, " (", after.machine, ")"));
      }
    }
  }
  verdict.safe = verdict.violations.empty();
  return verdict;
}

std::vector<absl::Duration> History::FailoverLatencies() const {
  return Gaps([](const Hold& before,
                 const Hold& after) -> std::optional<absl::Duration> {
    if (before.orphaned == absl::InfiniteFuture()) return std::nullopt;
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
