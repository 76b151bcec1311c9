#include "lease/validate.h"

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "registry/errors.h"

namespace leasehold::lease {

absl::Status ValidateName(absl::string_view field, absl::string_view value) {
  const char* problem = nullptr;
  if (value.empty()) {
    problem = "must not be empty";
  } else if (value.size() > kMaxNameBytes) {
    problem = "must be at most 255 bytes";
  } else if (absl::StrContains(value, '/')) {
    problem = "must not contain '/'";
  } else if (value == "." || absl::StrContains(value, "..")) {
    problem = "must not be '.' or contain '..'";
  } else {
    for (char c : value) {
      const auto byte = static_cast<unsigned char>(c);
      if (byte < 0x20 || byte == 0x7f) {
        problem = "must not contain control characters";
        break;
      }
    }
  }
  if (problem == nullptr) return absl::OkStatus();
  absl::string_view shown = value.substr(0, 64);
  return absl::InvalidArgumentError(
      absl::StrCat(field, " \"", absl::CHexEscape(shown),
                   shown.size() < value.size() ? "…" : "", "\": ", problem));
}

absl::StatusOr<absl::Duration> RoundPeriod(absl::Duration period) {
  absl::StatusOr<int64_t> seconds = registry::TtlSeconds(period);
  if (!seconds.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("period ", absl::FormatDuration(period),
                     ": must be positive and finite"));
  }
  return absl::Seconds(*seconds);
}

}  // namespace leasehold::lease
