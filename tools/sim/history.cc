#include "tools/sim/history.h"

#include <algorithm>

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
  std::vector<absl::Duration> latencies;
  for (const auto& [lease, group] : ByLease(holds())) {
    for (size_t i = 1; i < group.size(); ++i) {
      if (group[i - 1].orphaned != absl::InfiniteFuture()) {
        latencies.push_back(group[i].start - group[i - 1].orphaned);
      }
    }
  }
  return latencies;
}

std::vector<absl::Duration> History::DeposedNoticeLatencies() const {
  std::vector<absl::Duration> latencies;
  for (const auto& [lease, group] : ByLease(holds())) {
    for (size_t i = 1; i < group.size(); ++i) {
      if (group[i].by_steal) {
        latencies.push_back(
            std::max(absl::ZeroDuration(), group[i - 1].end - group[i].start));
      }
    }
  }
  return latencies;
}

}  // namespace leasehold::sim
