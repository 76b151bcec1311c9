#include "registry/json_object.h"

#include "absl/strings/str_cat.h"
#include "rapidjson/document.h"
#include "rapidjson/error/en.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace leasehold::registry {

absl::StatusOr<JsonObject> JsonObject::Parse(absl::string_view text) {
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  if (doc.HasParseError()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not JSON: ", rapidjson::GetParseError_En(doc.GetParseError()),
        " at offset ", doc.GetErrorOffset()));
  }
  if (!doc.IsObject()) {
    return absl::InvalidArgumentError("not a JSON object");
  }
  JsonObject object;
  for (const auto& member : doc.GetObject()) {
    absl::string_view name(member.name.GetString(),
                           member.name.GetStringLength());
    const rapidjson::Value& v = member.value;
    if (v.IsString()) {
      object.Set(name, std::string(v.GetString(), v.GetStringLength()));
    } else if (v.IsInt64()) {
      object.Set(name, v.GetInt64());
    } else {
      rapidjson::StringBuffer buffer;
      rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
      v.Accept(writer);
      object.Set(name, Raw{std::string(buffer.GetString(), buffer.GetSize())});
    }
  }
  return object;
}

const JsonObject::Value* JsonObject::Find(absl::string_view name) const {
  for (const auto& [n, v] : members_) {
    if (n == name) return &v;
  }
  return nullptr;
}

std::optional<std::string> JsonObject::GetString(absl::string_view name) const {
  const Value* v = Find(name);
  if (v == nullptr || !std::holds_alternative<std::string>(*v)) {
    return std::nullopt;
  }
  return std::get<std::string>(*v);
}

std::optional<int64_t> JsonObject::GetInt(absl::string_view name) const {
  const Value* v = Find(name);
  if (v == nullptr || !std::holds_alternative<int64_t>(*v)) return std::nullopt;
  return std::get<int64_t>(*v);
}

void JsonObject::Set(absl::string_view name, Value value) {
  for (auto& [n, v] : members_) {
    if (n == name) {
      v = std::move(value);
      return;
    }
  }
  members_.emplace_back(std::string(name), std::move(value));
}

std::string JsonObject::Encode() const {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  for (const auto& [name, value] : members_) {
    writer.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
    if (const auto* s = std::get_if<std::string>(&value)) {
      writer.String(s->data(), static_cast<rapidjson::SizeType>(s->size()));
    } else if (const auto* i = std::get_if<int64_t>(&value)) {
      writer.Int64(*i);
    } else {
      const std::string& raw = std::get<Raw>(value).json;
      writer.RawValue(raw.data(), raw.size(), rapidjson::kObjectType);
    }
  }
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace leasehold::registry
