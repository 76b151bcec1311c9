#include "registry/keys_api.h"

#include <cstddef>
#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace leasehold::registry {
namespace {

// The offset of the first byte that does not belong to a well-formed UTF-8
// sequence (RFC 3629: no overlong forms, no surrogates, nothing above
// U+10FFFF), as Go's utf8.ValidString judges it.
std::optional<size_t> FirstInvalidUtf8(absl::string_view text) {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const uint8_t b = p[i];
    if (b < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint8_t lo = 0x80;  // the allowed range of the second byte
    uint8_t hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
      len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3;
      if (b == 0xE0) lo = 0xA0;  // overlong
      if (b == 0xED) hi = 0x9F;  // surrogates
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4;
      if (b == 0xF0) lo = 0x90;  // overlong
      if (b == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return i;
    }
    if (i + 1 >= n || p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k) {
      if (i + k >= n || (p[i + k] & 0xC0) != 0x80) return i;
    }
    i += len;
  }
  return std::nullopt;
}

}  // namespace

bool operator==(const Node& a, const Node& b) {
  return a.key == b.key && a.value == b.value && a.dir == b.dir &&
         a.created_index == b.created_index &&
         a.modified_index == b.modified_index && a.ttl == b.ttl &&
         a.expiration == b.expiration && a.nodes == b.nodes;
}

absl::Status ValidateKey(absl::string_view key) {
  if (std::optional<size_t> bad = FirstInvalidUtf8(key)) {
    return absl::InvalidArgumentError(
        absl::StrCat("key \"", absl::CHexEscape(key),
                     "\": invalid UTF-8 at byte offset ", *bad));
  }
  for (absl::string_view segment : absl::StrSplit(key, '/')) {
    if (segment == "." || segment == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("key \"", absl::CHexEscape(key),
                       "\": '.' and '..' segments are not allowed"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateValue(absl::string_view field, absl::string_view value) {
  if (std::optional<size_t> bad = FirstInvalidUtf8(value)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": invalid UTF-8 at byte offset ", *bad));
  }
  return absl::OkStatus();
}

}  // namespace leasehold::registry
