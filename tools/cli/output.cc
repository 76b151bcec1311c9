#include "tools/cli/output.h"

#include <ostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace leasehold::cli {
namespace {

// Length of the valid UTF-8 sequence at s[i], or 0.
size_t Utf8Length(absl::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  size_t n = c >= 0xF0 && c <= 0xF4  ? 4
             : c >= 0xE0             ? 3
             : c >= 0xC2 && c < 0xE0 ? 2
                                     : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  return n;
}

}  // namespace

ExitCode ExitCodeFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
      return kExitUsage;
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return kExitNotHeld;
    default:
      // kUnavailable, kDeadlineExceeded, kDataLoss (a garbled answer) and
      // anything else that is not the registry's word on a lease.
      return kExitUnavailable;
  }
}

std::string JsonQuote(absl::string_view text) {
  std::string out = "\"";
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\r':
        out += "\\r";
        continue;
      default:
        break;
    }
    if (c < 0x20 || c == 0x7F) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if (const size_t n = Utf8Length(text, i); n > 0) {
      out.append(text.substr(i, n).data(), n);
      i += n - 1;
    } else {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    }
  }
  out += "\"";
  return out;
}

Record& Record::Add(absl::string_view key, absl::string_view value) {
  const bool plain = !value.empty() &&
                     value.find_first_of(" \t\n\"=") == absl::string_view::npos;
  fields_.push_back({std::string(key), JsonQuote(value),
                     plain ? std::string(value) : JsonQuote(value)});
  return *this;
}

Record& Record::Add(absl::string_view key, int64_t value) {
  fields_.push_back(
      {std::string(key), absl::StrCat(value), absl::StrCat(value)});
  return *this;
}

Record& Record::Add(absl::string_view key, uint64_t value) {
  fields_.push_back(
      {std::string(key), absl::StrCat(value), absl::StrCat(value)});
  return *this;
}

Record& Record::Add(absl::string_view key, double value) {
  const std::string text = absl::StrFormat("%.3f", value);
  fields_.push_back({std::string(key), text, text});
  return *this;
}

Record& Record::Add(absl::string_view key, bool value) {
  fields_.push_back(
      {std::string(key), value ? "true" : "false", value ? "true" : "false"});
  return *this;
}

std::string Record::Json() const {
  std::string out = "{";
  for (const Field& field : fields_) {
    if (out.size() > 1) out += ",";
    absl::StrAppend(&out, JsonQuote(field.key), ":", field.json);
  }
  return out + "}";
}

std::string Record::Text() const {
  std::string out;
  for (const Field& field : fields_) {
    if (!out.empty()) out += " ";
    absl::StrAppend(&out, field.key, "=", field.text);
  }
  return out;
}

void Printer::Print(const Record& record) {
  std::lock_guard<std::mutex> lock(mu_);
  out_ << (json_ ? record.Json() : record.Text()) << std::endl;
}

void Printer::Note(absl::string_view line) {
  if (json_) return;
  std::lock_guard<std::mutex> lock(mu_);
  out_ << line << std::endl;
}

}  // namespace leasehold::cli
