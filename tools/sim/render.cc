#include "tools/sim/render.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"

namespace leasehold::sim {
namespace {

// The lease the engine leader holds (see tools/sim/agent.cc); not a unit.
constexpr absl::string_view kEngineLease = "engine-leader";
// A tick lists at most this many changed machines (the first tick changes
// them all).
constexpr size_t kMaxChangedListed = 12;

// Machines and units are numbered without padding past two digits, so
// "m2" < "m10" and "unit-99" < "unit-100": shorter names first.
bool NaturalLess(const std::string& a, const std::string& b) {
  return std::make_tuple(a.size(), std::cref(a)) <
         std::make_tuple(b.size(), std::cref(b));
}

std::string LeaderOf(const Snapshot& snapshot) {
  for (const MachineView& m : snapshot.machines) {
    if (m.leader) return absl::StrCat(m.id, " (v", m.version, ")");
  }
  return "none";
}

std::string Median(std::vector<int> values) {
  if (values.empty()) return "-";
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  if (n % 2 == 1) return absl::StrCat(values[n / 2]);
  return absl::StrFormat("%g", (values[n / 2 - 1] + values[n / 2]) / 2.0);
}

std::string Escape(absl::string_view text) {
  return absl::StrReplaceAll(text, {{"&", "&amp;"},
                                    {"<", "&lt;"},
                                    {">", "&gt;"},
                                    {"'", "&apos;"},
                                    {"\"", "&quot;"}});
}

// ---- SVG ----

constexpr double kLeft = 110;   // room for the row and band labels
constexpr double kWidth = 900;  // the time axis
constexpr double kRight = 20;
constexpr double kTop = 48;     // below the title and the legend
constexpr double kAxis = 30;    // the time axis under the plot
constexpr int kBins = 450;      // a band's resolution: 2 px per bin
constexpr double kBand = 24;    // a band's height
constexpr double kBandGap = 6;  // room for the leadership strip
constexpr double kRow = 12;     // a unit row's height

struct MarkerStyle {
  const char* kind;
  const char* colour;
  const char* dash;
  const char* legend;
};

constexpr MarkerStyle kMarkers[] = {
    {"crash", "#d62728", "none", "crash"},
    {"pause", "#ff7f0e", "4,2", "pause"},
    {"partition", "#9467bd", "2,2", "partition (link only)"},
    {"steal", "#17becf", "6,2,1,2", "engine steal"},
    {"return", "#2ca02c", "1,2", "back up"},
};
constexpr MarkerStyle kOtherMarker = {"", "#7f7f7f", "none", ""};

const MarkerStyle& StyleOf(const std::string& kind) {
  for (const MarkerStyle& style : kMarkers) {
    if (kind == style.kind) return style;
  }
  return kOtherMarker;
}

// A round step (1, 2 or 5 times a power of ten) giving at most ten ticks.
double TickStep(double total) {
  const double base = std::pow(10.0, std::floor(std::log10(total / 10)));
  for (double m : {1.0, 2.0, 5.0}) {
    if (total / (m * base) <= 10) return m * base;
  }
  return 10 * base;
}

// The frame both views share: title, legend, time grid and axis, markers.
class Canvas {
 public:
  Canvas(std::ostream& out, const Report& report)
      : out_(out),
        start_(report.start),
        total_(std::max(1e-9, absl::ToDoubleSeconds(report.end - start_))) {}

  double total() const { return total_; }
  // Seconds since the start, clamped to the run.
  double Seconds(absl::Time t) const {
    return std::clamp(absl::ToDoubleSeconds(t - start_), 0.0, total_);
  }
  double X(absl::Time t) const { return XOf(Seconds(t)); }
  double XOf(double seconds) const { return kLeft + kWidth * seconds / total_; }

  void Open(double height, const std::string& title) {
    out_ << absl::StrFormat(
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        "<svg xmlns='http://www.w3.org/2000/svg' width='%.0f' height='%.0f' "
        "font-family='monospace' font-size='10'>\n"
        "<rect width='100%%' height='100%%' fill='white'/>\n"
        "<text x='4' y='14' font-size='12'>%s</text>\n",
        kLeft + kWidth + kRight, height, Escape(title));
  }

  // The fault markers' legend along `y`; returns where it ends.
  double Legend(double y) {
    double x = kLeft;
    for (const MarkerStyle& style : kMarkers) {
      out_ << absl::StrFormat(
          "<line x1='%.0f' x2='%.0f' y1='%.0f' y2='%.0f' stroke='%s' "
          "stroke-width='2' stroke-dasharray='%s'/>"
          "<text x='%.0f' y='%.0f'>%s</text>\n",
          x, x + 18, y - 3, y - 3, style.colour, style.dash, x + 22, y,
          style.legend);
      x += 34 + 6.5 * absl::string_view(style.legend).size();
    }
    return x;
  }

  // Faint vertical lines at each tick from `top` to `bottom`, behind the
  // plot.
  void Grid(double top, double bottom) {
    const double step = TickStep(total_);
    out_ << "<g stroke='#e4e4e4'>\n";
    for (int i = 0; i * step <= total_ * (1 + 1e-9); ++i) {
      const double x = XOf(i * step);
      out_ << absl::StrFormat("<line x1='%.1f' x2='%.1f' y1='%.0f' y2='%.0f'/>",
                              x, x, top, bottom);
    }
    out_ << "\n</g>\n";
  }

  // The time axis along `y`: a line, ticks and their labels in seconds.
  void Axis(double y) {
    const double step = TickStep(total_);
    out_ << absl::StrFormat(
        "<g id='time-axis'>\n<line x1='%.0f' x2='%.0f' y1='%.0f' y2='%.0f' "
        "stroke='black'/>\n",
        kLeft, kLeft + kWidth, y, y);
    for (int i = 0; i * step <= total_ * (1 + 1e-9); ++i) {
      const double x = XOf(i * step);
      out_ << absl::StrFormat(
          "<line x1='%.1f' x2='%.1f' y1='%.0f' y2='%.0f' stroke='black'/>"
          "<text x='%.1f' y='%.0f' text-anchor='middle'>%gs</text>\n",
          x, x, y, y + 4, x, y + 14, i * step);
    }
    out_ << absl::StrFormat(
        "<text x='4' y='%.0f'>time since start</text>\n"
        "</g>\n",
        y + 14);
  }

  // A fault's marker: a line from `top` to `bottom` with a notch on top.
  void Marker(const Fault& fault, double top, double bottom) {
    const MarkerStyle& style = StyleOf(fault.kind);
    const double x = X(fault.at);
    out_ << absl::StrFormat(
        "<g class='fault %s'><title>%s: %s at %.2fs</title>"
        "<line x1='%.1f' x2='%.1f' y1='%.1f' y2='%.1f' stroke='%s' "
        "stroke-width='1.5' stroke-dasharray='%s'/>"
        "<path d='M%.1f,%.1fh6l-3,4z' fill='%s'/></g>\n",
        Escape(fault.kind), Escape(fault.machine), Escape(fault.kind),
        Seconds(fault.at), x, x, top, bottom, style.colour, style.dash, x - 3,
        top, style.colour);
  }

  void Close() { out_ << "</svg>\n"; }

 private:
  std::ostream& out_;
  const absl::Time start_;
  const double total_;
};

const char* const kPalette[] = {"#4e79a7", "#f28e2b", "#59a14f", "#b07aa1",
                                "#edc948", "#76b7b2", "#ff9da7", "#9c755f",
                                "#bab0ac", "#e15759"};

// Every machine of the run, in order, including any the report names only
// in a hold or a fault.
std::vector<std::string> Machines(const Report& report) {
  std::vector<std::string> machines = report.machines;
  for (const Hold& hold : report.holds) machines.push_back(hold.machine);
  for (const Fault& fault : report.faults) machines.push_back(fault.machine);
  std::sort(machines.begin(), machines.end(), NaturalLess);
  machines.erase(std::unique(machines.begin(), machines.end()), machines.end());
  return machines;
}

const char* VerdictWord(const Report& report) {
  return report.verdict.safe ? "SAFE" : "UNSAFE";
}

// How many units the run's holds name (the engine lease is not one).
size_t CountUnits(const Report& report) {
  std::set<absl::string_view> units;
  for (const Hold& hold : report.holds) {
    if (hold.lease != kEngineLease) units.insert(hold.lease);
  }
  return units.size();
}

// One row per lease (the engine first), each hold a bar in its owner's
// colour, the faults as lines across all rows.
void WriteUnitRows(std::ostream& out, const Report& report) {
  std::map<std::string, std::vector<const Hold*>> by_lease;
  for (const Hold& hold : report.holds) by_lease[hold.lease].push_back(&hold);
  std::vector<std::string> leases;
  for (const auto& [lease, holds] : by_lease) leases.push_back(lease);
  std::sort(leases.begin(), leases.end(),
            [](const std::string& a, const std::string& b) {
              if ((a == kEngineLease) != (b == kEngineLease))
                return a == kEngineLease;
              return NaturalLess(a, b);
            });
  const std::vector<std::string> machines = Machines(report);
  std::map<std::string, const char*> colour;
  for (size_t i = 0; i < machines.size(); ++i)
    colour[machines[i]] = kPalette[i % std::size(kPalette)];

  constexpr int kPerLine = 11;  // machine colours in the key's lines
  const double bottom = kTop + kRow * leases.size();
  const double key = bottom + kAxis + 6;
  const double height =
      key + 20 * ((machines.size() + kPerLine - 1) / kPerLine) + 4;
  Canvas canvas(out, report);
  canvas.Open(height,
              absl::StrFormat("leasehold sim: who owned each unit over %.1fs "
                              "(%s)",
                              canvas.total(), VerdictWord(report)));
  canvas.Legend(34);
  canvas.Grid(kTop, bottom);
  double y = kTop;
  for (const std::string& lease : leases) {
    out << absl::StrFormat("<text x='4' y='%.0f'>%s</text>\n", y + 9,
                           Escape(lease));
    for (const Hold* hold : by_lease[lease]) {
      const double x = canvas.X(hold->start);
      out << absl::StrFormat(
          "<rect x='%.1f' y='%.0f' width='%.1f' height='%.0f' "
          "fill='%s'><title>%s %s fence %d (%s)</title></rect>\n",
          x, y, std::max(0.5, canvas.X(hold->end) - x), kRow - 2,
          colour[hold->machine], Escape(lease), Escape(hold->machine),
          hold->fence, Escape(hold->how_ended));
    }
    y += kRow;
  }
  for (const Fault& fault : report.faults)
    canvas.Marker(fault, kTop - 4, bottom);
  canvas.Axis(bottom + 2);
  for (size_t i = 0; i < machines.size(); ++i) {
    const double x = kLeft + 80 * (i % kPerLine);
    const double row_y = key + 20 * (i / kPerLine);
    out << absl::StrFormat(
        "<rect x='%.0f' y='%.0f' width='10' height='10' fill='%s'/>"
        "<text x='%.0f' y='%.0f'>%s</text>\n",
        x, row_y, colour[machines[i]], x + 14, row_y + 9, Escape(machines[i]));
  }
  canvas.Close();
}

// Units owned over time, averaged over each of `kBins` slices of the run.
std::vector<double> OwnedOverTime(std::vector<std::pair<double, int>> changes,
                                  double total) {
  std::sort(changes.begin(), changes.end());
  const double width = total / kBins;
  std::vector<double> area(kBins, 0.0);
  double from = 0;
  int owned = 0;
  for (const auto& [at, delta] : changes) {
    if (owned > 0) {
      double t = from;
      for (size_t b = std::min<size_t>(kBins - 1, t / width); t < at; ++b) {
        const double bin_end =
            b + 1 >= kBins ? at : std::min(at, (b + 1) * width);
        area[b] += owned * std::max(0.0, bin_end - t);
        t = std::max(t, bin_end);
      }
    }
    from = at;
    owned += delta;
  }
  for (double& a : area) a /= width;
  return area;
}

// One band per machine: how many units it owned over time against its fair
// share, when it led the engine, and its faults.
void WriteMachineBands(std::ostream& out, const Report& report) {
  Canvas canvas(out, report);
  const std::vector<std::string> machines = Machines(report);
  std::map<std::string, std::vector<std::pair<double, int>>> changes;
  std::map<std::string, std::vector<const Hold*>> leads;
  for (const Hold& hold : report.holds) {
    if (hold.lease == kEngineLease) {
      leads[hold.machine].push_back(&hold);
      continue;
    }
    auto& c = changes[hold.machine];
    c.emplace_back(canvas.Seconds(hold.start), 1);
    c.emplace_back(canvas.Seconds(hold.end), -1);
  }
  std::map<std::string, std::vector<double>> owned;
  double peak = 1;
  for (auto& [machine, c] : changes) {
    std::vector<double>& o = owned[machine] =
        OwnedOverTime(std::move(c), canvas.total());
    // Less a rounding error: summing 101 whole units may give 101.0000001.
    peak =
        std::max(peak, std::ceil(*std::max_element(o.begin(), o.end()) - 1e-6));
  }
  const double fair =
      machines.empty()
          ? 0
          : static_cast<double>(CountUnits(report)) / machines.size();

  const double bottom = kTop + (kBand + kBandGap) * machines.size();
  canvas.Open(bottom + kAxis + 6,
              absl::StrFormat("leasehold sim: units each machine owned over "
                              "%.1fs (%s); band height 0 to %g units, dashed: "
                              "fair share %.1f",
                              canvas.total(), VerdictWord(report), peak, fair));
  const double legend_end = canvas.Legend(34);
  out << absl::StrFormat(
      "<rect x='%.0f' y='30' width='18' height='3' fill='black'/>"
      "<text x='%.0f' y='34'>engine leader</text>\n",
      legend_end, legend_end + 22);
  canvas.Grid(kTop, bottom);
  const double bin_px = kWidth / kBins;
  const double scale = (kBand - 2) / peak;
  double top = kTop;
  for (const std::string& machine : machines) {
    const double base = top + kBand;
    out << absl::StrFormat(
        "<g class='machine'><text x='4' y='%.0f'>%s</text>\n"
        "<rect x='%.0f' y='%.0f' width='%.0f' height='%.0f' fill='#f4f4f4'/>\n",
        top + kBand / 2 + 4, Escape(machine), kLeft, top, kWidth, kBand);
    // The count as a step outline: a point only where the height changes.
    std::string d = absl::StrFormat("M%.0f,%.1f", kLeft, base);
    double last_y = base;
    const std::vector<double>& o = owned[machine];
    for (size_t b = 0; b < o.size(); ++b) {
      const double y = std::round((base - o[b] * scale) * 10) / 10;
      if (y == last_y) continue;
      absl::StrAppendFormat(&d, "H%.1fV%.1f", kLeft + b * bin_px, y);
      last_y = y;
    }
    absl::StrAppendFormat(&d, "H%.0fV%.1fZ", kLeft + kWidth, base);
    out << absl::StrFormat(
        "<path d='%s' fill='#4e79a7'><title>%s</title></path>\n", d,
        Escape(machine));
    const double fair_y = base - fair * scale;
    out << absl::StrFormat(
        "<line x1='%.0f' x2='%.0f' y1='%.1f' y2='%.1f' stroke='#333' "
        "stroke-width='0.6' stroke-dasharray='3,3'/>\n",
        kLeft, kLeft + kWidth, fair_y, fair_y);
    for (const Hold* lead : leads[machine]) {
      const double x = canvas.X(lead->start);
      out << absl::StrFormat(
          "<rect x='%.1f' y='%.1f' width='%.1f' height='3' fill='black'>"
          "<title>%s leads the engine</title></rect>\n",
          x, base + 1, std::max(0.5, canvas.X(lead->end) - x), Escape(machine));
    }
    for (const Fault& fault : report.faults) {
      if (fault.machine == machine) canvas.Marker(fault, top, base);
    }
    out << "</g>\n";
    top += kBand + kBandGap;
  }
  canvas.Axis(bottom);
  canvas.Close();
}

}  // namespace

void LiveTable::Draw(std::ostream& out, const Snapshot& snapshot) {
  const std::string leader = LeaderOf(snapshot);
  if (snapshot.machines.size() <= static_cast<size_t>(kMaxTableMachines)) {
    DrawEveryMachine(out, snapshot, leader);
  } else {
    DrawSummary(out, snapshot, leader);
  }
  last_.clear();
  for (const MachineView& m : snapshot.machines) last_[m.id] = m;
  out << std::flush;
}

bool LiveTable::Changed(const MachineView& now) const {
  auto it = last_.find(now.id);
  if (it == last_.end()) return true;
  const MachineView& was = it->second;
  return was.state != now.state || was.version != now.version ||
         was.leader != now.leader || was.units != now.units ||
         now.renews_failed > was.renews_failed;
}

void LiveTable::DrawEveryMachine(std::ostream& out, const Snapshot& s,
                                 const std::string& leader) const {
  if (!tty_) {
    std::string line =
        absl::StrFormat("t=%5.1fs leader=%s unowned=%d",
                        absl::ToDoubleSeconds(s.elapsed), leader, s.unowned);
    for (const MachineView& m : s.machines)
      absl::StrAppend(&line, " ", m.id, ":", m.state, "/", m.units);
    out << line << "\n";
    return;
  }
  out << "\x1b[H\x1b[J";  // home, clear: redraw in place
  out << absl::StrFormat(
      "leasehold sim  t=%.1fs  engine leader: %s  unowned units: %d\n\n",
      absl::ToDoubleSeconds(s.elapsed), leader, s.unowned);
  out << absl::StrFormat("  %-8s %-8s %-11s %6s %10s %12s\n", "machine",
                         "version", "state", "units", "renews ok",
                         "renews failed");
  for (const MachineView& m : s.machines) {
    out << absl::StrFormat("  %-8s %-8d %-11s %6d %10d %12d%s\n", m.id,
                           m.version, m.state, m.units, m.renews_ok,
                           m.renews_failed, m.leader ? "  ◀ engine" : "");
  }
  out << "\nrecent events:\n";
  for (const std::string& e : s.recent_events) out << "  " << e << "\n";
}

void LiveTable::DrawSummary(std::ostream& out, const Snapshot& s,
                            const std::string& leader) const {
  std::map<std::string, int> in_state;  // "up", "crashed", "paused", …
  std::vector<int> units;               // of the machines not crashed
  std::vector<const MachineView*> changed;
  for (const MachineView& m : s.machines) {
    ++in_state[m.state];
    if (m.state != "crashed") units.push_back(m.units);
    if (Changed(m)) changed.push_back(&m);
  }
  const int up = in_state["up"], crashed = in_state["crashed"],
            paused = in_state["paused"], partitioned = in_state["partitioned"];
  const auto [min, max] = std::minmax_element(units.begin(), units.end());
  const std::string spread =
      units.empty() ? "-/-/-"
                    : absl::StrCat(*min, "/", Median(units), "/", *max);
  const size_t listed = std::min(changed.size(), kMaxChangedListed);
  if (!tty_) {
    std::string line = absl::StrFormat(
        "t=%5.1fs leader=%s up=%d crashed=%d paused=%d partitioned=%d "
        "unowned=%d units/machine=%s changed=%d",
        absl::ToDoubleSeconds(s.elapsed), leader, up, crashed, paused,
        partitioned, s.unowned, spread, changed.size());
    for (size_t i = 0; i < listed; ++i) {
      absl::StrAppend(&line, i == 0 ? ": " : " ", changed[i]->id, ":",
                      changed[i]->state, "/", changed[i]->units);
    }
    if (listed < changed.size())
      absl::StrAppend(&line, " +", changed.size() - listed, " more");
    out << line << "\n";
    return;
  }
  out << "\x1b[H\x1b[J";  // home, clear: redraw in place
  out << absl::StrFormat(
      "leasehold sim  t=%.1fs  engine leader: %s  unowned units: %d\n\n"
      "  machines: %d up, %d crashed, %d paused, %d partitioned (of %d)\n"
      "  units per machine (min/median/max, crashed ones aside): %s\n\n"
      "changed since the last tick: %d of %d machines\n",
      absl::ToDoubleSeconds(s.elapsed), leader, s.unowned, up, crashed, paused,
      partitioned, s.machines.size(), spread, changed.size(),
      s.machines.size());
  if (!changed.empty()) {
    out << absl::StrFormat("  %-8s %-8s %-11s %12s %10s %12s\n", "machine",
                           "version", "state", "units", "renews ok",
                           "renews failed");
  }
  for (size_t i = 0; i < listed; ++i) {
    const MachineView& m = *changed[i];
    auto was = last_.find(m.id);
    const std::string units_now =
        was == last_.end() || was->second.units == m.units
            ? absl::StrCat(m.units)
            : absl::StrFormat("%d (%+d)", m.units, m.units - was->second.units);
    out << absl::StrFormat("  %-8s %-8d %-11s %12s %10d %12d%s\n", m.id,
                           m.version, m.state, units_now, m.renews_ok,
                           m.renews_failed, m.leader ? "  ◀ engine" : "");
  }
  if (listed < changed.size())
    out << absl::StrFormat("  … and %d more\n", changed.size() - listed);
  out << "\nrecent events:\n";
  for (const std::string& e : s.recent_events) out << "  " << e << "\n";
}

void WriteSvg(std::ostream& out, const Report& report) {
  if (CountUnits(report) <= static_cast<size_t>(kMaxUnitRows)) {
    WriteUnitRows(out, report);
  } else {
    WriteMachineBands(out, report);
  }
}

}  // namespace leasehold::sim
