// The lease-cycle figures as an SVG chart: two panels against concurrency,
// throughput (ops/s) and client CPU per op (µs), leasehold next to the
// libcurl baseline measured in the same run, each leasehold point labelled
// with its ratio to the baseline.
//
//   std::string svg = CycleChartSvg("lease cycle, etcd on tmpfs", points);
//
// Pure function; thread-compatible.

#ifndef LEASEHOLD_BENCH_CYCLE_CHART_H_
#define LEASEHOLD_BENCH_CYCLE_CHART_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace leasehold::bench {

// One concurrency level of the lease cycle.
struct CyclePoint {
  int concurrency = 0;
  double baseline_ops_per_second = 0;
  double leasehold_ops_per_second = 0;
  double baseline_cpu_us_per_op = 0;
  double leasehold_cpu_us_per_op = 0;
};

// A standalone SVG document (UTF-8) with axes, ticks, grid, legend and
// `title` (escaped here). Concurrency is on a log scale with a tick at each
// level measured; both value axes start at 0.
// REQUIRES: `points` not empty, concurrency > 0 and increasing.
std::string CycleChartSvg(absl::string_view title,
                          const std::vector<CyclePoint>& points);

}  // namespace leasehold::bench

#endif  // LEASEHOLD_BENCH_CYCLE_CHART_H_
