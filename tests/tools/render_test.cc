// What `leasehold sim` shows: the live table at small and large scale, and
// the ownership timeline (one row per unit, or one band per machine).
#include "tools/sim/render.h"

#include <algorithm>
#include <cctype>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/synthetic_history.h"

namespace leasehold::sim {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Lt;
using ::testing::Not;
using ::testing::StartsWith;

MachineView Machine(const std::string& id, const std::string& state,
                    int units) {
  MachineView m;
  m.id = id;
  m.state = state;
  m.units = units;
  return m;
}

Snapshot At(double seconds, std::vector<MachineView> machines,
            int unowned = 0) {
  Snapshot s;
  s.elapsed = absl::Seconds(seconds);
  s.machines = std::move(machines);
  s.unowned = unowned;
  s.recent_events = {"  1.00s m4 crashes holding 10 units"};
  return s;
}

std::string Draw(LiveTable& table, const Snapshot& snapshot) {
  std::ostringstream out;
  table.Draw(out, snapshot);
  return out.str();
}

// ------------------------------------------------------------ live table

TEST(LiveTableTest, ASmallRunListsEveryMachineOnOneLine) {
  std::vector<MachineView> machines = {Machine("m1", "up", 3),
                                       Machine("m2", "up", 4),
                                       Machine("m3", "crashed", 0)};
  machines[1].leader = true;
  LiveTable table(/*tty=*/false);
  EXPECT_EQ(Draw(table, At(1.5, machines, 2)),
            "t=  1.5s leader=m2 (v1) unowned=2 m1:up/3 m2:up/4 "
            "m3:crashed/0\n");
}

TEST(LiveTableTest, ASmallRunOnATerminalIsATableOfEveryMachine) {
  std::vector<MachineView> machines;
  for (int i = 1; i <= kMaxTableMachines; ++i)
    machines.push_back(Machine(absl::StrCat("m", i), "up", 5));
  machines[2].leader = true;
  LiveTable table(/*tty=*/true);
  const std::string screen = Draw(table, At(3, machines));
  EXPECT_THAT(screen, StartsWith("\x1b[H\x1b[J"));
  EXPECT_THAT(screen, HasSubstr("engine leader: m3 (v1)"));
  EXPECT_THAT(screen, HasSubstr("renews failed"));
  for (int i = 1; i <= kMaxTableMachines; ++i)
    EXPECT_THAT(screen, HasSubstr(absl::StrFormat("\n  %-8s 1 ",
                                                  absl::StrCat("m", i))));
  EXPECT_THAT(screen, HasSubstr("◀ engine"));
  EXPECT_THAT(screen, HasSubstr("m4 crashes holding 10 units"));
}

// Twelve machines: ten up (m1 with 7 units, m10 with 13, the others 10),
// m11 crashed, m12 paused with 5.
std::vector<MachineView> TwelveMachines() {
  std::vector<MachineView> machines;
  for (int i = 1; i <= 10; ++i)
    machines.push_back(Machine(absl::StrCat("m", i), "up", 10));
  machines[0].units = 7;
  machines[9].units = 13;
  machines[4].leader = true;
  machines.push_back(Machine("m11", "crashed", 0));
  machines.push_back(Machine("m12", "paused", 5));
  return machines;
}

TEST(LiveTableTest, ABigRunIsOneLineOfTotals) {
  LiveTable table(/*tty=*/false);
  // Units per machine over the eleven not crashed: 5 7 10×8 13.
  EXPECT_EQ(Draw(table, At(2, TwelveMachines(), 3)),
            "t=  2.0s leader=m5 (v1) up=10 crashed=1 paused=1 partitioned=0 "
            "unowned=3 "
            "units/machine=5/10/13 changed=12: m1:up/7 m2:up/10 m3:up/10 "
            "m4:up/10 m5:up/10 m6:up/10 m7:up/10 m8:up/10 m9:up/10 "
            "m10:up/13 m11:crashed/0 m12:paused/5\n");
}

// The twelve a tick later: m4 crashed, m6 partitioned, m7 took two more
// units, m9 had a renew fail; m3 renewed, which is no change.
std::vector<MachineView> TwelveMachinesATickLater() {
  std::vector<MachineView> next = TwelveMachines();
  next[3].state = "crashed";
  next[3].units = 0;
  next[5].state = "partitioned";
  next[6].units = 12;
  next[8].renews_failed = 1;
  next[2].renews_ok = 50;
  return next;
}

TEST(LiveTableTest, ABigRunListsOnlyTheMachinesThatChanged) {
  LiveTable table(/*tty=*/false);
  Draw(table, At(2, TwelveMachines()));
  const std::vector<MachineView> next = TwelveMachinesATickLater();
  const std::string line = Draw(table, At(2.5, next));
  EXPECT_THAT(line, HasSubstr("up=8 crashed=2 paused=1 partitioned=1 "));
  EXPECT_THAT(line, EndsWith(" changed=4: m4:crashed/0 m6:partitioned/10 "
                             "m7:up/12 m9:up/10\n"));
  // The same again: nothing changed.
  EXPECT_THAT(Draw(table, At(3, next)), EndsWith(" changed=0\n"));
}

TEST(LiveTableTest, ABigRunOnATerminalShowsTotalsAndTheChangedMachines) {
  LiveTable table(/*tty=*/true);
  Draw(table, At(2, TwelveMachines()));
  const std::string screen =
      Draw(table, At(2.5, TwelveMachinesATickLater(), 10));
  EXPECT_THAT(screen, StartsWith("\x1b[H\x1b[J"));
  EXPECT_THAT(screen, HasSubstr("unowned units: 10"));
  EXPECT_THAT(
      screen,
      HasSubstr("machines: 8 up, 2 crashed, 1 paused, 1 partitioned (of 12)"));
  EXPECT_THAT(screen, HasSubstr("crashed ones aside): 5/10/13"));
  EXPECT_THAT(screen, HasSubstr("changed since the last tick: 4 of 12"));
  EXPECT_THAT(screen,
              HasSubstr("  m4       1        crashed          0 (-10)"));
  EXPECT_THAT(screen,
              HasSubstr("  m7       1        up               12 (+2)"));
  EXPECT_THAT(screen,
              HasSubstr("  m6       1        partitioned           10"));
  EXPECT_THAT(screen,
              HasSubstr("  m9       1        up                    10"));
  EXPECT_THAT(screen, Not(HasSubstr("  m3 ")));
  EXPECT_THAT(screen, HasSubstr("m4 crashes holding 10 units"));
}

TEST(LiveTableTest, TheFirstTickOfAHundredMachinesListsTwelveAndCountsTheRest) {
  std::vector<MachineView> machines;
  for (int i = 1; i <= 100; ++i)
    machines.push_back(Machine(absl::StrCat("m", i), "up", 100));
  LiveTable table(/*tty=*/false);
  const std::string line = Draw(table, At(0.5, machines));
  EXPECT_THAT(line,
              HasSubstr("units/machine=100/100/100 changed=100: m1:up/100"));
  EXPECT_THAT(line, EndsWith(" m12:up/100 +88 more\n"));
  EXPECT_THAT(line, Not(HasSubstr("m13:")));
}

// ------------------------------------------------------------ timeline

// "" when `xml` is well-formed as far as an SVG viewer cares (one root,
// tags nest, attributes quoted, only the predefined entities), else what is
// wrong.
std::string WellFormedError(const std::string& xml) {
  static const std::regex kAttributes(
      R"((\s+[A-Za-z_:][-\w:.]*\s*=\s*('[^'<]*'|"[^"<]*"))*\s*)");
  static const std::regex kEntity(R"(&(amp|lt|gt|apos|quot|#[0-9]+);)");
  std::vector<std::string> open;
  bool root_closed = false;
  for (size_t i = 0; i < xml.size(); ++i) {
    const char c = xml[i];
    if (c == '<') {
      if (xml.compare(i, 2, "<?") == 0) {
        i = xml.find("?>", i);
        if (i == std::string::npos) return "unterminated <?";
        ++i;
        continue;
      }
      const size_t end = xml.find('>', i);
      if (end == std::string::npos) return "unterminated tag";
      std::string tag = xml.substr(i + 1, end - i - 1);
      i = end;
      if (!tag.empty() && tag[0] == '/') {
        if (open.empty() || open.back() != tag.substr(1))
          return absl::StrCat("</", tag.substr(1), "> closes <",
                              open.empty() ? "" : open.back(), ">");
        open.pop_back();
        root_closed = open.empty();
        continue;
      }
      if (root_closed) return "a second root element";
      const bool empty = !tag.empty() && tag.back() == '/';
      if (empty) tag.pop_back();
      const size_t name_end = std::min(tag.find_first_of(" \t\n"), tag.size());
      const std::string name = tag.substr(0, name_end);
      if (name.empty()) return "a tag without a name";
      if (!std::regex_match(tag.substr(name_end), kAttributes))
        return absl::StrCat("bad attributes in <", tag, ">");
      if (empty) {
        root_closed = open.empty();
      } else {
        open.push_back(name);
      }
    } else if (c == '&') {
      const size_t end = xml.find(';', i);
      if (end == std::string::npos ||
          !std::regex_match(xml.substr(i, end - i + 1), kEntity))
        return absl::StrCat("bad entity at ", i);
    } else if (open.empty() && !std::isspace(static_cast<unsigned char>(c))) {
      return absl::StrCat("text outside the root at ", i);
    }
  }
  if (!open.empty()) return absl::StrCat("<", open.back(), "> never closed");
  if (!root_closed) return "no root element";
  return "";
}

TEST(WellFormedErrorTest, CatchesWhatAViewerWouldReject) {
  EXPECT_THAT(WellFormedError("<svg><g></g><text x='1'>a &amp; b</text></svg>"),
              IsEmpty());
  EXPECT_THAT(WellFormedError("<svg><g></svg>"), Not(IsEmpty()));
  EXPECT_THAT(WellFormedError("<svg><text x=1>a</text></svg>"), Not(IsEmpty()));
  EXPECT_THAT(WellFormedError("<svg>a & b</svg>"), Not(IsEmpty()));
  EXPECT_THAT(WellFormedError("<svg/><svg/>"), Not(IsEmpty()));
}

const absl::Time kT0 = absl::FromUnixSeconds(1000);

Hold MakeHold(const std::string& lease, const std::string& machine,
              uint64_t fence, double from, double to) {
  Hold hold;
  hold.lease = lease;
  hold.machine = machine;
  hold.fence = fence;
  hold.start = kT0 + absl::Seconds(from);
  hold.end = kT0 + absl::Seconds(to);
  hold.how_ended = "released";
  return hold;
}

Report SixtySeconds() {
  Report report;
  report.start = kT0;
  report.end = kT0 + absl::Seconds(60);
  return report;
}

std::string Svg(const Report& report) {
  std::ostringstream out;
  WriteSvg(out, report);
  return out.str();
}

void ExpectAxisAndFaultLegend(const std::string& svg) {
  EXPECT_THAT(svg, HasSubstr("id='time-axis'"));
  EXPECT_THAT(svg, HasSubstr(">time since start<"));
  for (const char* tick : {">0s<", ">10s<", ">30s<", ">60s<"})
    EXPECT_THAT(svg, HasSubstr(tick));
  for (const char* legend : {">crash<", ">pause<", ">partition (link only)<",
                             ">engine steal<", ">back up<"})
    EXPECT_THAT(svg, HasSubstr(legend));
}

TEST(TimelineTest, ASmallRunHasARowPerUnitAnAxisAndFaultMarkers) {
  Report report = SixtySeconds();
  report.holds = {MakeHold("engine-leader", "m1", 1, 0, 35),
                  MakeHold("engine-leader", "m2", 9, 35, 60),
                  MakeHold("unit-00", "m1", 2, 0, 10),
                  MakeHold("unit-00", "m2", 5, 12, 60),
                  MakeHold("unit-01", "m2", 3, 0, 60),
                  MakeHold("unit-02", "m1", 4, 0, 60)};
  report.faults = {{kT0 + absl::Seconds(10), "m1", "crash"},
                   {kT0 + absl::Seconds(20), "m2", "pause"},
                   {kT0 + absl::Seconds(30), "m1", "partition"},
                   {kT0 + absl::Seconds(35), "m2", "steal"},
                   {kT0 + absl::Seconds(40), "m1", "return"}};
  const std::string svg = Svg(report);
  EXPECT_THAT(WellFormedError(svg), IsEmpty());
  EXPECT_THAT(svg, HasSubstr("who owned each unit over 60.0s (SAFE)"));
  // The engine's row first, then the units in order.
  const size_t engine = svg.find(">engine-leader<");
  const size_t unit0 = svg.find(">unit-00<");
  ASSERT_NE(engine, std::string::npos);
  ASSERT_NE(unit0, std::string::npos);
  EXPECT_THAT(engine, Lt(unit0));
  EXPECT_THAT(unit0, Lt(svg.find(">unit-02<")));
  EXPECT_THAT(svg, HasSubstr("<title>unit-00 m2 fence 5 (released)</title>"));
  ExpectAxisAndFaultLegend(svg);
  for (const char* marker :
       {"<g class='fault crash'><title>m1: crash at 10.00s</title>",
        "<g class='fault pause'><title>m2: pause at 20.00s</title>",
        "<g class='fault partition'><title>m1: partition at 30.00s</title>",
        "<g class='fault steal'><title>m2: steal at 35.00s</title>",
        "<g class='fault return'><title>m1: return at 40.00s</title>"})
    EXPECT_THAT(svg, HasSubstr(marker));
  // The owners' colour key.
  EXPECT_THAT(svg, HasSubstr(">m1</text>"));
  EXPECT_THAT(svg, HasSubstr(">m2</text>"));
}

TEST(TimelineTest, ABigRunHasABandPerMachineCountingItsUnits) {
  // 101 units: m1 owns them all for 30 s, crashes and m2 takes them all;
  // m3 never gets any.
  Report report = SixtySeconds();
  report.machines = {"m1", "m2", "m3"};
  report.holds.push_back(MakeHold("engine-leader", "m1", 1, 0, 30));
  for (int u = 0; u <= kMaxUnitRows; ++u) {
    const std::string unit = absl::StrFormat("unit-%02d", u);
    report.holds.push_back(MakeHold(unit, "m1", 2, 0, 30));
    report.holds.push_back(MakeHold(unit, "m2", 3, 30, 60));
  }
  report.faults = {{kT0 + absl::Seconds(30), "m1", "crash"},
                   {kT0 + absl::Seconds(40), "m1", "return"}};
  const std::string svg = Svg(report);
  EXPECT_THAT(WellFormedError(svg), IsEmpty());
  EXPECT_THAT(svg, Not(HasSubstr(">unit-00<")));
  EXPECT_THAT(svg, HasSubstr("units each machine owned over 60.0s (SAFE); "
                             "band height 0 to 101 units, dashed: fair share "
                             "33.7"));
  // m1's band (y 48 to 72): all 101 units (full height, 22 px) for the
  // first half of the axis (x 110 to 560), then none.
  EXPECT_THAT(svg, HasSubstr("<path d='M110,72.0H110.0V50.0H560.0V72.0H1010V72."
                             "0Z' fill='#4e79a7'><title>m1</title>"));
  // m2's band (y 78 to 102): none, then all of them.
  EXPECT_THAT(svg, HasSubstr("<path d='M110,102.0H560.0V80.0H1010V102.0Z' "
                             "fill='#4e79a7'><title>m2</title>"));
  // m3's band (y 108 to 132), empty.
  EXPECT_THAT(svg, HasSubstr("<path d='M110,132.0H1010V132.0Z' "
                             "fill='#4e79a7'><title>m3</title>"));
  // The fair share, 101 / 3 units, in m1's band.
  EXPECT_THAT(svg, HasSubstr("y1='64.7' y2='64.7'"));
  EXPECT_THAT(svg, HasSubstr("<title>m1 leads the engine</title>"));
  EXPECT_THAT(svg, HasSubstr(">engine leader<"));
  EXPECT_THAT(svg, HasSubstr("<title>m1: crash at 30.00s</title>"));
  EXPECT_THAT(svg, HasSubstr("<title>m1: return at 40.00s</title>"));
  ExpectAxisAndFaultLegend(svg);
}

TEST(TimelineTest, AHundredMachinesTenThousandUnitsSixtySecondsStaySmall) {
  Report report = SixtySeconds();
  report.holds = testing::SyntheticHolds({.units = 10000,
                                          .holds_per_unit = 20,
                                          .machines = 100,
                                          .start = kT0,
                                          .duration = absl::Seconds(60)});
  // Units change hands at scattered moments, so that every machine's count
  // changes in nearly every slice of the axis: the largest drawing.
  for (size_t i = 0; i < report.holds.size(); ++i) {
    const absl::Duration shift = absl::Milliseconds((i / 20 * 7919) % 3000);
    report.holds[i].start += shift;
    report.holds[i].end = std::min(report.end, report.holds[i].end + shift);
  }
  const char* kinds[] = {"crash", "pause", "partition", "steal", "return"};
  for (int i = 0; i < 40; ++i) {
    report.faults.push_back({kT0 + absl::Seconds(1.5 * i),
                             absl::StrCat("m", 1 + (i * 37) % 100),
                             kinds[i % 5]});
  }
  const std::string svg = Svg(report);
  EXPECT_THAT(WellFormedError(svg), IsEmpty());
  EXPECT_THAT(svg.size(), Lt(1u << 20));  // about 550 KB
  size_t bands = 0;
  for (size_t at = svg.find("<g class='machine'>"); at != std::string::npos;
       at = svg.find("<g class='machine'>", at + 1))
    ++bands;
  EXPECT_EQ(bands, 100u);
  EXPECT_THAT(svg, HasSubstr(">m100<"));
  ExpectAxisAndFaultLegend(svg);
}

}  // namespace
}  // namespace leasehold::sim
