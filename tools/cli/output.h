// Output for the leasehold tool: one record per line, as aligned text for
// people or as JSON objects for scripts (`-o json`), and the mapping from a
// status to the tool's exit code.
//
//   Record r;
//   r.Add("name", "unit-1").Add("index", uint64_t{42});
//   printer.Print(r);   // text: "name=unit-1 index=42"   json:
//   {"name":"unit-1","index":42}
//
// Thread-safety: a Printer serializes its own writes.
#ifndef LEASEHOLD_TOOLS_CLI_OUTPUT_H_
#define LEASEHOLD_TOOLS_CLI_OUTPUT_H_

#include <cstdint>
#include <iosfwd>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace leasehold::cli {

// Exit codes of every command.
enum ExitCode : int {
  kExitOk = 0,
  kExitNotHeld = 1,      // not acquired, not held, lost, index moved
  kExitUsage = 2,        // bad flags, URI, names or credentials
  kExitUnavailable = 3,  // the registry did not answer, or not usably
};

// kInvalidArgument, kUnauthenticated, kPermissionDenied → 2; the registry's
// word on a lease (not found, compare failed, already exists, not a file,
// index cleared) → 1; anything else (kUnavailable, kDeadlineExceeded,
// kDataLoss: no answer, or none to trust) → 3. So 1 is always a real lease
// state.
ExitCode ExitCodeFor(const absl::Status& status);

// JSON string literal for any bytes (control characters escaped; bytes that
// are not valid UTF-8 are written as \u00XX of the byte).
std::string JsonQuote(absl::string_view text);

// An ordered set of fields; values are kept as JSON text.
class Record {
 public:
  Record& Add(absl::string_view key, absl::string_view value);
  Record& Add(absl::string_view key, const char* value) {
    return Add(key, absl::string_view(value));
  }
  Record& Add(absl::string_view key, const std::string& value) {
    return Add(key, absl::string_view(value));
  }
  Record& Add(absl::string_view key, int64_t value);
  Record& Add(absl::string_view key, uint64_t value);
  Record& Add(absl::string_view key, int value) {
    return Add(key, int64_t{value});
  }
  Record& Add(absl::string_view key, double value);
  Record& Add(absl::string_view key, bool value);

  std::string Json() const;
  std::string Text() const;  // key=value pairs; values with spaces quoted

 private:
  struct Field {
    std::string key;
    std::string json;
    std::string text;
  };
  std::vector<Field> fields_;
};

class Printer {
 public:
  Printer(std::ostream& out, bool json) : out_(out), json_(json) {}
  bool json() const { return json_; }
  void Print(const Record& record);
  // A plain line in text mode; nothing in JSON mode.
  void Note(absl::string_view line);

 private:
  std::mutex mu_;
  std::ostream& out_;
  const bool json_;
};

}  // namespace leasehold::cli

#endif  // LEASEHOLD_TOOLS_CLI_OUTPUT_H_
