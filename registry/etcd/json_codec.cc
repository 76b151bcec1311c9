#include "registry/etcd/json_codec.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
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

// A parsed body. Its memory starts inside the object (on the caller's
// stack): an etcd answer of a few nodes fits, so decoding one costs no heap
// allocation for the DOM; a larger one (a listing) spills into heap chunks.
class ParsedJson {
 public:
  ParsedJson()
      : values_(value_bytes_, sizeof value_bytes_, kSpillBytes),
        stack_(stack_bytes_, sizeof stack_bytes_, kSpillBytes),
        doc_(&values_, sizeof stack_bytes_ / 2, &stack_) {}
  ParsedJson(const ParsedJson&) = delete;
  ParsedJson& operator=(const ParsedJson&) = delete;

  // kDataLoss unless `body` is one JSON object. Iterative parsing keeps
  // rapidjson itself off the stack for nested input.
  absl::Status Parse(absl::string_view body) {
    // In place on a NUL-terminated copy, strings are not copied again and
    // are scanned 16 bytes at a time (RAPIDJSON_SSE2). A body holding a NUL
    // or starting with a non-ASCII byte (the sized parse skips the bytes of
    // a byte-order mark there) takes the sized parse, so every body parses
    // as it always did.
    if (body.find('\0') == absl::string_view::npos &&
        (body.empty() || absl::ascii_isascii(body.front()))) {
      // The padding keeps the 16-byte loads inside the copy.
      text_.reserve(body.size() + kPadding);
      text_.assign(body.data(), body.size());
      text_.append(kPadding, '\0');
      doc_.ParseInsitu<rapidjson::kParseIterativeFlag>(&text_[0]);
    } else {
      doc_.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
    }
    if (doc_.HasParseError()) {
      return absl::DataLossError(absl::StrCat(
          "malformed etcd response: ",
          rapidjson::GetParseError_En(doc_.GetParseError()), " at offset ",
          doc_.GetErrorOffset(), " of ", body.size(), " bytes"));
    }
    if (!doc_.IsObject()) return Malformed("body", "not a JSON object");
    return absl::OkStatus();
  }
  const rapidjson::Value& root() const { return doc_; }

 private:
  using Pool = rapidjson::MemoryPoolAllocator<>;
  static constexpr size_t kSpillBytes = 16 * 1024;
  static constexpr size_t kPadding = 16;

  std::string text_;  // the in-place copy the DOM's strings point into
  alignas(std::max_align_t) char value_bytes_[4096];
  alignas(std::max_align_t) char stack_bytes_[2048];
  Pool values_;
  Pool stack_;
  rapidjson::GenericDocument<rapidjson::UTF8<>, Pool, Pool> doc_;
};

// "node.ttl" for member "ttl" of the object at "node"; built only for an
// error message, so that a good answer costs no string work.
std::string MemberPath(absl::string_view where, absl::string_view name) {
  return where.empty() ? std::string(name) : absl::StrCat(where, ".", name);
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
    return Malformed(MemberPath(where, name), "not a string");
  }
  *out = AsString(it->value);
  return absl::OkStatus();
}

absl::Status ReadUint64(const rapidjson::Value& obj, const char* name,
                        absl::string_view where, uint64_t* out) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd()) return absl::OkStatus();
  if (!it->value.IsUint64()) {
    return Malformed(MemberPath(where, name), "not an unsigned integer");
  }
  *out = it->value.GetUint64();
  return absl::OkStatus();
}

absl::Status ReadInt64(const rapidjson::Value& obj, const char* name,
                       absl::string_view where, int64_t* out) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd()) return absl::OkStatus();
  if (!it->value.IsInt64()) {
    return Malformed(MemberPath(where, name), "not an integer");
  }
  *out = it->value.GetInt64();
  return absl::OkStatus();
}

absl::Status ReadBool(const rapidjson::Value& obj, const char* name,
                      absl::string_view where, bool* out) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd()) return absl::OkStatus();
  if (!it->value.IsBool()) {
    return Malformed(MemberPath(where, name), "not a boolean");
  }
  *out = it->value.GetBool();
  return absl::OkStatus();
}

absl::StatusOr<Node> DecodeNode(const rapidjson::Value& v,
                                const std::string& where, int depth) {
  if (depth > kMaxNodeDepth) return Malformed(where, "nested too deeply");
  if (!v.IsObject()) return Malformed(where, "not an object");
  Node node;
  absl::Status s = ReadString(v, "key", where, &node.key);
  if (s.ok()) s = ReadString(v, "value", where, &node.value);
  if (s.ok()) s = ReadBool(v, "dir", where, &node.dir);
  if (s.ok()) s = ReadUint64(v, "createdIndex", where, &node.created_index);
  if (s.ok()) s = ReadUint64(v, "modifiedIndex", where, &node.modified_index);
  if (s.ok()) s = ReadInt64(v, "ttl", where, &node.ttl);
  std::string expiration;
  if (s.ok()) s = ReadString(v, "expiration", where, &expiration);
  if (!s.ok()) return s;
  if (!expiration.empty()) {
    absl::StatusOr<absl::Time> t = ParseRfc3339(expiration);
    if (!t.ok()) {
      return Malformed(MemberPath(where, "expiration"), t.status().message());
    }
    node.expiration = *t;
  }
  auto nodes = v.FindMember("nodes");
  if (nodes != v.MemberEnd()) {
    if (!nodes->value.IsArray()) {
      return Malformed(MemberPath(where, "nodes"), "not an array");
    }
    node.nodes.reserve(nodes->value.Size());
    for (rapidjson::SizeType i = 0; i < nodes->value.Size(); ++i) {
      absl::StatusOr<Node> child = DecodeNode(
          nodes->value[i], absl::StrCat(where, ".nodes[", i, "]"), depth + 1);
      if (!child.ok()) return child.status();
      node.nodes.push_back(*std::move(child));
    }
  }
  return node;
}

// etcd writes every expiration in UTC with nanoseconds
// ("2024-05-01T10:00:00.123456789Z"). This reads exactly that shape, with
// 1 to 9 fraction digits and a valid date, without the general parser,
// which costs more than the rest of a response's decoding; anything else
// is left to absl::ParseTime (nullopt).
std::optional<absl::Time> ParseUtcNanos(absl::string_view text) {
  auto digits = [&](size_t pos, size_t count, int64_t* out) {
    if (pos + count > text.size()) return false;
    *out = 0;
    for (size_t i = pos; i < pos + count; ++i) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(text[i]))) {
        return false;
      }
      *out = *out * 10 + (text[i] - '0');
    }
    return true;
  };
  int64_t year, month, day, hour, minute, second;
  if (text.size() < 20 || text.back() != 'Z' || !digits(0, 4, &year) ||
      text[4] != '-' || !digits(5, 2, &month) || text[7] != '-' ||
      !digits(8, 2, &day) || text[10] != 'T' || !digits(11, 2, &hour) ||
      text[13] != ':' || !digits(14, 2, &minute) || text[16] != ':' ||
      !digits(17, 2, &second)) {
    return std::nullopt;
  }
  int64_t nanos = 0;
  if (text.size() > 20) {
    const size_t fraction = text.size() - 21;  // between '.' and 'Z'
    if (text[19] != '.' || fraction < 1 || fraction > 9 ||
        !digits(20, fraction, &nanos)) {
      return std::nullopt;
    }
    for (size_t i = fraction; i < 9; ++i) nanos *= 10;
  }
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 ||
      second > 59) {
    return std::nullopt;
  }
  const absl::CivilSecond civil(year, month, day, hour, minute, second);
  if (civil.month() != month || civil.day() != day) return std::nullopt;
  return absl::FromUnixSeconds(civil - absl::CivilSecond(1970)) +
         absl::Nanoseconds(nanos);
}

}  // namespace

absl::StatusOr<Response> ParseKeysResponse(absl::string_view body) {
  ParsedJson parsed;
  if (absl::Status s = parsed.Parse(body); !s.ok()) return s;
  const rapidjson::Value& doc = parsed.root();
  Response response;
  auto action = doc.FindMember("action");
  if (action == doc.MemberEnd() || !action->value.IsString()) {
    return Malformed("action", "missing or not a string");
  }
  response.action = AsString(action->value);
  auto node = doc.FindMember("node");
  if (node == doc.MemberEnd()) return Malformed("node", "missing");
  absl::StatusOr<Node> decoded = DecodeNode(node->value, "node", 0);
  if (!decoded.ok()) return decoded.status();
  response.node = *std::move(decoded);
  auto prev = doc.FindMember("prevNode");
  if (prev != doc.MemberEnd()) {
    absl::StatusOr<Node> prev_node = DecodeNode(prev->value, "prevNode", 0);
    if (!prev_node.ok()) return prev_node.status();
    response.prev_node = *std::move(prev_node);
  }
  return response;
}

namespace {

absl::Status CheckNode(const Node& node, absl::string_view where, int depth) {
  if (node.key.empty()) return Malformed(where, "no key");
  if (node.modified_index == 0) return Malformed(where, "no modifiedIndex");
  if (node.created_index == 0 || node.created_index > node.modified_index) {
    return Malformed(where,
                     absl::StrCat("createdIndex ", node.created_index,
                                  " with modifiedIndex ", node.modified_index));
  }
  // DecodeNode bounds the depth already; a Response built elsewhere is
  // bounded here alike.
  if (depth > kMaxNodeDepth) return Malformed(where, "nested too deeply");
  for (size_t i = 0; i < node.nodes.size(); ++i) {
    const Node& child = node.nodes[i];
    absl::Status s =
        CheckNode(child, absl::StrCat(where, ".nodes[", i, "]"), depth + 1);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckSuccess(const Response& response, Asked asked,
                          uint64_t wait_index) {
  const Node& node = response.node;
  if (asked == Asked::kGetRoot) {
    if (!node.dir) return Malformed("node", "the root is not a directory");
    for (size_t i = 0; i < node.nodes.size(); ++i) {
      absl::Status s =
          CheckNode(node.nodes[i], absl::StrCat("node.nodes[", i, "]"), 1);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }
  if (absl::Status s = CheckNode(node, "node", 0); !s.ok()) return s;
  if (asked == Asked::kWatch) {
    if (node.modified_index < wait_index) {
      return Malformed(
          "node.modifiedIndex",
          absl::StrCat(node.modified_index, " is before the watched index ",
                       wait_index));
    }
    return absl::OkStatus();
  }
  if (node.modified_index > response.etcd_index) {
    return Malformed("node.modifiedIndex",
                     absl::StrCat(node.modified_index, " is past X-Etcd-Index ",
                                  response.etcd_index));
  }
  if (asked == Asked::kCreate) {
    if (response.action != "create") {
      return Malformed("action",
                       absl::StrCat("\"", absl::CHexEscape(response.action),
                                    "\" answers a create"));
    }
    if (node.created_index != node.modified_index) {
      return Malformed("node", absl::StrCat("createdIndex ", node.created_index,
                                            " of a node just created at ",
                                            node.modified_index));
    }
  }
  return absl::OkStatus();
}

std::optional<EtcdError> ParseEtcdError(absl::string_view body) {
  ParsedJson parsed;
  if (!parsed.Parse(body).ok()) return std::nullopt;
  const rapidjson::Value& doc = parsed.root();
  auto code = doc.FindMember("errorCode");
  if (code == doc.MemberEnd() || !code->value.IsInt()) return std::nullopt;
  EtcdError error;
  error.code = code->value.GetInt();
  // A body that has an errorCode but odd other members is still an etcd
  // error: keep what is readable rather than lose the code.
  if (!ReadString(doc, "message", "", &error.message).ok() ||
      !ReadString(doc, "cause", "", &error.cause).ok()) {
    error.message = "(unreadable message)";
  }
  ReadUint64(doc, "index", "", &error.index).IgnoreError();
  return error;
}

absl::StatusOr<std::vector<std::string>> ParseMemberClientUrls(
    absl::string_view body) {
  ParsedJson parsed;
  if (absl::Status s = parsed.Parse(body); !s.ok()) return s;
  const rapidjson::Value& doc = parsed.root();
  auto members = doc.FindMember("members");
  if (members == doc.MemberEnd() || !members->value.IsArray()) {
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

absl::StatusOr<EtcdVersion> ParseEtcdVersion(absl::string_view body) {
  ParsedJson parsed;
  if (absl::Status s = parsed.Parse(body); !s.ok()) return s;
  const rapidjson::Value& doc = parsed.root();
  auto text_of = [&](const char* name) -> std::optional<std::string> {
    auto member = doc.FindMember(name);
    if (member == doc.MemberEnd() || !member->value.IsString()) {
      return std::nullopt;
    }
    return AsString(member->value);
  };
  const std::optional<std::string> server = text_of("etcdserver");
  std::optional<std::string> version = text_of("etcdcluster");
  if (!version.has_value() || *version == "not_decided") version = server;
  if (!version.has_value()) {
    return Malformed("etcdserver", "missing or not a string");
  }
  EtcdVersion out;
  out.text = *std::move(version);
  out.server = server.value_or("");
  std::vector<absl::string_view> parts = absl::StrSplit(out.text, '.');
  if (parts.size() < 2 || !absl::SimpleAtoi(parts[0], &out.major) ||
      !absl::SimpleAtoi(parts[1], &out.minor) || out.major < 0 ||
      out.minor < 0) {
    return absl::DataLossError(absl::StrCat("malformed etcd version \"",
                                            absl::CHexEscape(out.text), "\""));
  }
  return out;
}

absl::StatusOr<absl::Time> ParseRfc3339(absl::string_view text) {
  if (std::optional<absl::Time> fast = ParseUtcNanos(text)) return *fast;
  absl::Time t;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &error)) {
    return absl::DataLossError(
        absl::StrCat("time \"", absl::CHexEscape(text), "\": ", error));
  }
  return t;
}

}  // namespace leasehold::registry::etcd_internal
