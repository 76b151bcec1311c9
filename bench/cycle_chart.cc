#include "bench/cycle_chart.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"

namespace leasehold::bench {
namespace {

constexpr int kWidth = 960;
constexpr int kHeight = 440;
constexpr int kPanelWidth = kWidth / 2;
// The plot area inside each panel.
constexpr double kLeft = 80, kRight = 24, kTop = 96, kBottom = 56;
constexpr char kLeaseholdColour[] = "#1f6fb4";
constexpr char kBaselineColour[] = "#e0701a";

std::string Escape(absl::string_view text) {
  return absl::StrReplaceAll(
      text, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}});
}

// A tick step of 1, 2 or 5 × 10^k giving about five ticks up to `max`.
double NiceStep(double max) {
  const double raw = max / 5;
  const double magnitude = std::pow(10, std::floor(std::log10(raw)));
  for (double factor : {1.0, 2.0, 5.0}) {
    if (factor * magnitude >= raw) return factor * magnitude;
  }
  return 10 * magnitude;
}

std::string TickLabel(double value, double step) {
  return step >= 1 ? absl::StrFormat("%.0f", value)
                   : absl::StrFormat("%g", value);
}

struct Series {
  const char* name;
  const char* colour;
  bool dashed;
  std::vector<double> values;
};

// One panel at horizontal offset `x0`: axes, ticks, grid, both series and,
// above each leasehold point, its ratio to the baseline.
std::string Panel(double x0, absl::string_view heading,
                  const std::vector<int>& levels, const Series& leasehold,
                  const Series& baseline) {
  const double left = x0 + kLeft, right = x0 + kPanelWidth - kRight;
  const double top = kTop, bottom = kHeight - kBottom;
  double max = 0;
  for (const Series* s : {&leasehold, &baseline}) {
    for (double v : s->values) max = std::max(max, v);
  }
  if (max <= 0) max = 1;
  const double step = NiceStep(max * 1.1);
  const double y_max = std::ceil(max * 1.1 / step) * step;
  auto y = [&](double v) { return bottom - (bottom - top) * v / y_max; };
  // Log scale, a margin of a fifth of the plot on either end.
  const double lo = std::log2(levels.front()), hi = std::log2(levels.back());
  auto x = [&](int concurrency) {
    const double inner = (right - left) * 0.8;
    if (hi == lo) return (left + right) / 2;
    return left + (right - left) * 0.1 +
           inner * (std::log2(concurrency) - lo) / (hi - lo);
  };

  std::string svg = absl::StrFormat(
      "<g>\n<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
      "font-weight=\"bold\">%s</text>\n",
      (left + right) / 2, top - 14, Escape(heading));
  for (double v = 0; v <= y_max + step / 2; v += step) {
    absl::StrAppendFormat(
        &svg,
        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
        "stroke=\"#dddddd\"/>\n"
        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
        "stroke=\"black\"/>\n"
        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
        left, y(v), right, y(v), left - 5, y(v), left, y(v), left - 8, y(v) + 4,
        TickLabel(v, step));
  }
  for (int level : levels) {
    absl::StrAppendFormat(
        &svg,
        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
        "stroke=\"black\"/>\n"
        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%d</text>\n",
        x(level), bottom, x(level), bottom + 5, x(level), bottom + 19, level);
  }
  absl::StrAppendFormat(
      &svg,
      "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
      "stroke=\"black\"/>\n"
      "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
      "stroke=\"black\"/>\n"
      "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">concurrency "
      "(workers, log scale)</text>\n",
      left, top, left, bottom, left, bottom, right, bottom, (left + right) / 2,
      bottom + 40);
  for (const Series* s : {&baseline, &leasehold}) {
    std::string points;
    for (size_t i = 0; i < levels.size(); ++i) {
      absl::StrAppendFormat(&points, "%s%.1f,%.1f", i > 0 ? " " : "",
                            x(levels[i]), y(s->values[i]));
    }
    absl::StrAppendFormat(&svg,
                          "<polyline fill=\"none\" stroke=\"%s\" "
                          "stroke-width=\"2\"%s points=\"%s\"/>\n",
                          s->colour,
                          s->dashed ? " stroke-dasharray=\"6,4\"" : "", points);
    for (size_t i = 0; i < levels.size(); ++i) {
      absl::StrAppendFormat(&svg,
                            "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" "
                            "fill=\"%s\"><title>%s, %d: %.1f</title>"
                            "</circle>\n",
                            x(levels[i]), y(s->values[i]), s->colour, s->name,
                            levels[i], s->values[i]);
    }
  }
  for (size_t i = 0; i < levels.size(); ++i) {
    if (baseline.values[i] <= 0) continue;
    absl::StrAppendFormat(
        &svg,
        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
        "font-size=\"11\" fill=\"%s\">%.2f×</text>\n",
        x(levels[i]),
        std::min(y(leasehold.values[i]), y(baseline.values[i])) - 9,
        leasehold.colour, leasehold.values[i] / baseline.values[i]);
  }
  return svg + "</g>\n";
}

}  // namespace

std::string CycleChartSvg(absl::string_view title,
                          const std::vector<CyclePoint>& points) {
  std::vector<int> levels;
  Series ops[2] = {{"leasehold", kLeaseholdColour, false, {}},
                   {"baseline", kBaselineColour, true, {}}};
  Series cpu[2] = {{"leasehold", kLeaseholdColour, false, {}},
                   {"baseline", kBaselineColour, true, {}}};
  for (const CyclePoint& p : points) {
    levels.push_back(p.concurrency);
    ops[0].values.push_back(p.leasehold_ops_per_second);
    ops[1].values.push_back(p.baseline_ops_per_second);
    cpu[0].values.push_back(p.leasehold_cpu_us_per_op);
    cpu[1].values.push_back(p.baseline_cpu_us_per_op);
  }
  std::string svg = absl::StrFormat(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
      "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
      "<text x=\"%d\" y=\"24\" text-anchor=\"middle\" font-size=\"15\" "
      "font-weight=\"bold\">%s</text>\n",
      kWidth, kHeight, kWidth, kHeight, kWidth / 2, Escape(title));
  // Legend, centred under the title; the label above each leasehold point
  // is its ratio to the baseline.
  const char* legend[][2] = {
      {"leasehold", kLeaseholdColour},
      {"baseline (plain libcurl, same requests, same run)", kBaselineColour}};
  double lx = kWidth / 2.0 - 300;
  for (int i = 0; i < 2; ++i) {
    absl::StrAppendFormat(
        &svg,
        "<line x1=\"%.1f\" y1=\"48\" x2=\"%.1f\" y2=\"48\" stroke=\"%s\" "
        "stroke-width=\"2\"%s/>\n"
        "<text x=\"%.1f\" y=\"52\">%s</text>\n",
        lx, lx + 28, legend[i][1], i == 1 ? " stroke-dasharray=\"6,4\"" : "",
        lx + 34, legend[i][0]);
    lx += 130;
  }
  absl::StrAppendFormat(&svg,
                        "<text x=\"%.1f\" y=\"52\" fill=\"%s\">labels: "
                        "leasehold / baseline</text>\n",
                        lx + 240, kLeaseholdColour);
  svg +=
      Panel(0, "throughput, ops/s (higher is better)", levels, ops[0], ops[1]);
  svg += Panel(kPanelWidth, "client CPU per op, µs (lower is better)", levels,
               cpu[0], cpu[1]);
  return svg + "</svg>\n";
}

}  // namespace leasehold::bench
