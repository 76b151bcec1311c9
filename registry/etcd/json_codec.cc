#include "registry/etcd/json_codec.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "rapidjson/document.h"
#include "rapidjson/error/en.h"

namespace leasehold::registry::etcd_internal {
namespace {

// Deeper directory trees than this are refused rather than walked, so that a
// hostile body cannot exhaust the stack of the recursive node decoder.
constexpr int kMaxNodeDepth = 256;

absl::Status Malformed(absl::string_view where, absl::string_view what) {
  return absl::DataLossError(
      absl::StrCat("malformed etcd response: ", where, ": ", what));
}

// Iterative parsing keeps rapidjson itself off the stack for nested input.
absl::StatusOr<rapidjson::Document> ParseObject(absl::string_view body) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (doc.HasParseError()) {
    return absl::DataLossError(absl::StrCat(
        "malformed etcd response: ",
        rapidjson::GetParseError_En(doc.GetParseError()), " at offset ",
        doc.GetErrorOffset(), " of ", body.size(), " bytes"));
  }
  if (!doc.IsObject()) return Malformed("body", "not a JSON object");
  return doc;
}

std::string AsString(const rapidjson::Value& v) {
  return std::string(v.GetString(), v.GetStringLength());
}

// Reads an optional member of the expected type into *out.
absl::Status ReadString(const rapidjson::Value& obj, const char* name,
                        absl::string_view where, std::string* out) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd()) return absl::OkStatus();
  if (!it->value.IsString()) {
    return Malformed(absl::StrCat(where, name), "not a string");
  }
  *out = AsString(it->value);
  return absl::OkStatus();
}

absl::Status ReadUint64(const rapidjson::Value& obj, const char* name,
                        absl::string_view where, uint64_t* out) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd()) return absl::OkStatus();
  if (!it->value.IsUint64()) {
    return Malformed(absl::StrCat(where, name), "not an unsigned integer");
  }
  *out = it->value.GetUint64();
  return absl::OkStatus();
}

absl::Status ReadInt64(const rapidjson::Value& obj, const char* name,
                       absl::string_view where, int64_t* out) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd()) return absl::OkStatus();
  if (!it->value.IsInt64()) {
    return Malformed(absl::StrCat(where, name), "not an integer");
  }
  *out = it->value.GetInt64();
  return absl::OkStatus();
}

absl::Status ReadBool(const rapidjson::Value& obj, const char* name,
                      absl::string_view where, bool* out) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd()) return absl::OkStatus();
  if (!it->value.IsBool()) {
    return Malformed(absl::StrCat(where, name), "not a boolean");
  }
  *out = it->value.GetBool();
  return absl::OkStatus();
}

absl::StatusOr<Node> DecodeNode(const rapidjson::Value& v,
                                const std::string& where, int depth) {
  if (depth > kMaxNodeDepth) return Malformed(where, "nested too deeply");
  if (!v.IsObject()) return Malformed(where, "not an object");
  const std::string prefix = where + ".";
  Node node;
  absl::Status s = ReadString(v, "key", prefix, &node.key);
  if (s.ok()) s = ReadString(v, "value", prefix, &node.value);
  if (s.ok()) s = ReadBool(v, "dir", prefix, &node.dir);
  if (s.ok()) s = ReadUint64(v, "createdIndex", prefix, &node.created_index);
  if (s.ok()) s = ReadUint64(v, "modifiedIndex", prefix, &node.modified_index);
  if (s.ok()) s = ReadInt64(v, "ttl", prefix, &node.ttl);
  std::string expiration;
  if (s.ok()) s = ReadString(v, "expiration", prefix, &expiration);
  if (!s.ok()) return s;
  if (!expiration.empty()) {
    absl::StatusOr<absl::Time> t = ParseRfc3339(expiration);
    if (!t.ok()) {
      return Malformed(prefix + "expiration", t.status().message());
    }
    node.expiration = *t;
  }
  auto nodes = v.FindMember("nodes");
  if (nodes != v.MemberEnd()) {
    if (!nodes->value.IsArray()) {
      return Malformed(prefix + "nodes", "not an array");
    }
    node.nodes.reserve(nodes->value.Size());
    for (rapidjson::SizeType i = 0; i < nodes->value.Size(); ++i) {
      absl::StatusOr<Node> child = DecodeNode(
          nodes->value[i], absl::StrCat(prefix, "nodes[", i, "]"), depth + 1);
      if (!child.ok()) return child.status();
      node.nodes.push_back(*std::move(child));
    }
  }
  return node;
}

}  // namespace

absl::StatusOr<Response> ParseKeysResponse(absl::string_view body) {
  absl::StatusOr<rapidjson::Document> doc = ParseObject(body);
  if (!doc.ok()) return doc.status();
  Response response;
  auto action = doc->FindMember("action");
  if (action == doc->MemberEnd() || !action->value.IsString()) {
    return Malformed("action", "missing or not a string");
  }
  response.action = AsString(action->value);
  auto node = doc->FindMember("node");
  if (node == doc->MemberEnd()) return Malformed("node", "missing");
  absl::StatusOr<Node> decoded = DecodeNode(node->value, "node", 0);
  if (!decoded.ok()) return decoded.status();
  response.node = *std::move(decoded);
  auto prev = doc->FindMember("prevNode");
  if (prev != doc->MemberEnd()) {
    absl::StatusOr<Node> prev_node = DecodeNode(prev->value, "prevNode", 0);
    if (!prev_node.ok()) return prev_node.status();
    response.prev_node = *std::move(prev_node);
  }
  return response;
}

std::optional<EtcdError> ParseEtcdError(absl::string_view body) {
  absl::StatusOr<rapidjson::Document> doc = ParseObject(body);
  if (!doc.ok()) return std::nullopt;
  auto code = doc->FindMember("errorCode");
  if (code == doc->MemberEnd() || !code->value.IsInt()) return std::nullopt;
  EtcdError error;
  error.code = code->value.GetInt();
  // A body that has an errorCode but odd other members is still an etcd
  // error: keep what is readable rather than lose the code.
  if (!ReadString(*doc, "message", "", &error.message).ok() ||
      !ReadString(*doc, "cause", "", &error.cause).ok()) {
    error.message = "(unreadable message)";
  }
  ReadUint64(*doc, "index", "", &error.index).IgnoreError();
  return error;
}

absl::StatusOr<std::vector<std::string>> ParseMemberClientUrls(
    absl::string_view body) {
  absl::StatusOr<rapidjson::Document> doc = ParseObject(body);
  if (!doc.ok()) return doc.status();
  auto members = doc->FindMember("members");
  if (members == doc->MemberEnd() || !members->value.IsArray()) {
    return Malformed("members", "missing or not an array");
  }
  std::vector<std::string> urls;
  for (rapidjson::SizeType i = 0; i < members->value.Size(); ++i) {
    const rapidjson::Value& member = members->value[i];
    const std::string where = absl::StrCat("members[", i, "]");
    if (!member.IsObject()) return Malformed(where, "not an object");
    auto client_urls = member.FindMember("clientURLs");
    // A member that has not started yet has no client URLs.
    if (client_urls == member.MemberEnd()) continue;
    if (!client_urls->value.IsArray()) {
      return Malformed(where + ".clientURLs", "not an array");
    }
    for (const rapidjson::Value& url : client_urls->value.GetArray()) {
      if (!url.IsString()) {
        return Malformed(where + ".clientURLs", "holds a non-string");
      }
      std::string s = AsString(url);
      if (std::find(urls.begin(), urls.end(), s) == urls.end()) {
        urls.push_back(std::move(s));
      }
    }
  }
  return urls;
}

absl::StatusOr<absl::Time> ParseRfc3339(absl::string_view text) {
  absl::Time t;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &error)) {
    return absl::DataLossError(
        absl::StrCat("time \"", absl::CHexEscape(text), "\": ", error));
  }
  return t;
}

}  // namespace leasehold::registry::etcd_internal
