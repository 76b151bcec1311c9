#include "lease/lease_value.h"

#include <variant>

#include "registry/json_object.h"

namespace leasehold::lease {
namespace {

constexpr char kMachineId[] = "MachineID";
constexpr char kVersion[] = "Version";
constexpr char kToken[] = "Token";

}  // namespace

std::string EncodeLeaseValue(const LeaseValue& value) {
  registry::JsonObject object;
  object.Set(kMachineId, value.machine_id);
  object.Set(kVersion, value.version);
  if (!value.token.empty()) object.Set(kToken, value.token);
  return object.Encode();
}

LeaseValue DecodeLeaseValue(absl::string_view text) {
  LeaseValue bare{std::string(text), 0, ""};
  absl::StatusOr<registry::JsonObject> object =
      registry::JsonObject::Parse(text);
  if (!object.ok()) return bare;
  const registry::JsonObject::Value* machine_id = object->Find(kMachineId);
  const registry::JsonObject::Value* version = object->Find(kVersion);
  if ((machine_id != nullptr &&
       !std::holds_alternative<std::string>(*machine_id)) ||
      (version != nullptr && !std::holds_alternative<int64_t>(*version))) {
    return bare;
  }
  LeaseValue value;
  value.machine_id = object->GetString(kMachineId).value_or("");
  value.version = object->GetInt(kVersion).value_or(0);
  value.token = object->GetString(kToken).value_or("");
  return value;
}

}  // namespace leasehold::lease
