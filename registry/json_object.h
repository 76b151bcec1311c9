// JsonObject: a flat JSON object of string and integer members, for small
// values stored in keys (a lease's {"MachineID":"…","Version":N}).
//
// It exists so that layers above registry/ can read and write such values
// without seeing a JSON library. Members that are neither strings nor
// integers (floats, booleans, null, arrays, nested objects) are kept as their
// JSON text, so Parse + Encode loses nothing a reader would look at.
//
//   absl::StatusOr<JsonObject> o = JsonObject::Parse(R"({"A":"x","B":2})");
//   if (o.ok() && o->GetString("A")) { ... }        // "x"
//   o->Set("C", "y");
//   std::string text = o->Encode();                 // {"A":"x","B":2,"C":"y"}
//
// Thread-safety: a value type; const methods may run concurrently.
#ifndef LEASEHOLD_REGISTRY_JSON_OBJECT_H_
#define LEASEHOLD_REGISTRY_JSON_OBJECT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace leasehold::registry {

class JsonObject {
 public:
  // A member that is neither a string nor a 64-bit integer, as JSON text.
  struct Raw {
    std::string json;
  };
  using Value = std::variant<std::string, int64_t, Raw>;

  // kInvalidArgument unless `text` is exactly one JSON object (surrounding
  // whitespace allowed). A repeated member name keeps its last value.
  static absl::StatusOr<JsonObject> Parse(absl::string_view text);

  // The member, or nullptr when absent.
  const Value* Find(absl::string_view name) const;
  // The member when it is present and of that type.
  std::optional<std::string> GetString(absl::string_view name) const;
  std::optional<int64_t> GetInt(absl::string_view name) const;

  // Replaces the member of that name, or appends it.
  void Set(absl::string_view name, Value value);

  // Compact JSON, members in insertion order.
  std::string Encode() const;

 private:
  std::vector<std::pair<std::string, Value>> members_;
};

}  // namespace leasehold::registry

#endif  // LEASEHOLD_REGISTRY_JSON_OBJECT_H_
