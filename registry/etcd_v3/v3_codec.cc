#include "registry/etcd_v3/v3_codec.h"

#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "rapidjson/document.h"
#include "rapidjson/error/en.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"
#include "registry/etcd/json_codec.h"

namespace leasehold::registry::etcd_v3_internal {
namespace {

using Json = rapidjson::Value;

absl::Status Malformed(absl::string_view where, absl::string_view what) {
  return absl::DataLossError(
      absl::StrCat("malformed etcd v3 response: ", where, ": ", what));
}

absl::StatusOr<rapidjson::Document> ParseObject(absl::string_view body) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (doc.HasParseError()) {
    return absl::DataLossError(absl::StrCat(
        "malformed etcd v3 response: ",
        rapidjson::GetParseError_En(doc.GetParseError()), " at offset ",
        doc.GetErrorOffset(), " of ", body.size(), " bytes"));
  }
  if (!doc.IsObject()) return Malformed("body", "not a JSON object");
  return doc;
}

const Json* Member(const Json& object, const char* name) {
  auto it = object.FindMember(name);
  return it == object.MemberEnd() ? nullptr : &it->value;
}

// protobuf JSON: a 64-bit integer is a string of digits (a plain number is
// accepted too). Absent: 0.
absl::Status GetInt(const Json& object, const char* name,
                    absl::string_view where, int64_t* out) {
  *out = 0;
  const Json* v = Member(object, name);
  if (v == nullptr) return absl::OkStatus();
  if (v->IsInt64()) {
    *out = v->GetInt64();
    return absl::OkStatus();
  }
  if (!v->IsString() ||
      !absl::SimpleAtoi(absl::string_view(v->GetString(), v->GetStringLength()),
                        out)) {
    return Malformed(absl::StrCat(where, ".", name), "not a 64-bit integer");
  }
  return absl::OkStatus();
}

absl::Status GetUint(const Json& object, const char* name,
                     absl::string_view where, uint64_t* out) {
  *out = 0;
  const Json* v = Member(object, name);
  if (v == nullptr) return absl::OkStatus();
  if (v->IsUint64()) {
    *out = v->GetUint64();
    return absl::OkStatus();
  }
  if (!v->IsString() ||
      !absl::SimpleAtoi(absl::string_view(v->GetString(), v->GetStringLength()),
                        out)) {
    return Malformed(absl::StrCat(where, ".", name),
                     "not an unsigned 64-bit integer");
  }
  return absl::OkStatus();
}

absl::Status GetBool(const Json& object, const char* name,
                     absl::string_view where, bool* out) {
  *out = false;
  const Json* v = Member(object, name);
  if (v == nullptr) return absl::OkStatus();
  if (!v->IsBool()) {
    return Malformed(absl::StrCat(where, ".", name), "not a boolean");
  }
  *out = v->GetBool();
  return absl::OkStatus();
}

absl::Status GetString(const Json& object, const char* name,
                       absl::string_view where, std::string* out) {
  out->clear();
  const Json* v = Member(object, name);
  if (v == nullptr) return absl::OkStatus();
  if (!v->IsString()) {
    return Malformed(absl::StrCat(where, ".", name), "not a string");
  }
  out->assign(v->GetString(), v->GetStringLength());
  return absl::OkStatus();
}

absl::Status GetBytes(const Json& object, const char* name,
                      absl::string_view where, std::string* out) {
  std::string encoded;
  if (absl::Status s = GetString(object, name, where, &encoded); !s.ok()) {
    return s;
  }
  if (!absl::Base64Unescape(encoded, out)) {
    return Malformed(absl::StrCat(where, ".", name), "not base64");
  }
  return absl::OkStatus();
}

#define LH_RETURN_IF_ERROR(expr)              \
  do {                                        \
    if (absl::Status s_ = (expr); !s_.ok()) { \
      return s_;                              \
    }                                         \
  } while (false)

absl::Status DecodeHeader(const Json& object, absl::string_view where,
                          bool with_revision, ResponseHeader* out) {
  const Json* h = Member(object, "header");
  const std::string at =
      absl::StrCat(where, where.empty() ? "" : ".", "header");
  if (h == nullptr || !h->IsObject()) return Malformed(at, "missing");
  LH_RETURN_IF_ERROR(GetUint(*h, "cluster_id", at, &out->cluster_id));
  LH_RETURN_IF_ERROR(GetUint(*h, "member_id", at, &out->member_id));
  LH_RETURN_IF_ERROR(GetInt(*h, "revision", at, &out->revision));
  LH_RETURN_IF_ERROR(GetUint(*h, "raft_term", at, &out->raft_term));
  if (out->cluster_id == 0 || out->member_id == 0) {
    return Malformed(at, "no cluster_id or member_id");
  }
  if (out->revision < 0 || (with_revision && out->revision == 0)) {
    return Malformed(at, "no positive revision");
  }
  return absl::OkStatus();
}

absl::Status DecodeKv(const Json& v, absl::string_view where, KeyValue* out) {
  if (!v.IsObject()) return Malformed(where, "not an object");
  LH_RETURN_IF_ERROR(GetBytes(v, "key", where, &out->key));
  LH_RETURN_IF_ERROR(GetBytes(v, "value", where, &out->value));
  LH_RETURN_IF_ERROR(
      GetInt(v, "create_revision", where, &out->create_revision));
  LH_RETURN_IF_ERROR(GetInt(v, "mod_revision", where, &out->mod_revision));
  LH_RETURN_IF_ERROR(GetInt(v, "version", where, &out->version));
  LH_RETURN_IF_ERROR(GetInt(v, "lease", where, &out->lease));
  if (out->key.empty()) return Malformed(where, "no key");
  return absl::OkStatus();
}

absl::Status DecodeKvList(const Json& object, const char* name,
                          absl::string_view where, std::vector<KeyValue>* out) {
  const Json* list = Member(object, name);
  if (list == nullptr) return absl::OkStatus();
  if (!list->IsArray()) {
    return Malformed(absl::StrCat(where, ".", name), "not an array");
  }
  out->resize(list->Size());
  for (rapidjson::SizeType i = 0; i < list->Size(); ++i) {
    LH_RETURN_IF_ERROR(DecodeKv(
        (*list)[i], absl::StrCat(where, ".", name, "[", i, "]"), &(*out)[i]));
  }
  return absl::OkStatus();
}

absl::Status DecodeRange(const Json& v, absl::string_view where,
                         bool with_header, RangeResult* out) {
  if (with_header) {
    LH_RETURN_IF_ERROR(DecodeHeader(v, where, true, &out->header));
  }
  LH_RETURN_IF_ERROR(DecodeKvList(v, "kvs", where, &out->kvs));
  LH_RETURN_IF_ERROR(GetBool(v, "more", where, &out->more));
  return absl::OkStatus();
}

absl::Status DecodeLease(const Json& v, absl::string_view where,
                         LeaseResult* out) {
  LH_RETURN_IF_ERROR(DecodeHeader(v, where, true, &out->header));
  LH_RETURN_IF_ERROR(GetInt(v, "ID", where, &out->id));
  LH_RETURN_IF_ERROR(GetInt(v, "TTL", where, &out->ttl));
  LH_RETURN_IF_ERROR(GetInt(v, "grantedTTL", where, &out->granted_ttl));
  if (out->id == 0) return Malformed(where.empty() ? "ID" : where, "no ID");
  return absl::OkStatus();
}

// The stream's {"error":{…}} or {"result":{…}}.
absl::StatusOr<const Json*> StreamResult(const rapidjson::Document& doc) {
  if (const Json* error = Member(doc, "error"); error != nullptr) {
    std::string message;
    if (error->IsObject()) {
      GetString(*error, "message", "error", &message).IgnoreError();
    }
    return absl::UnavailableError(
        absl::StrCat("etcd v3 stream error: ", message));
  }
  const Json* result = Member(doc, "result");
  if (result == nullptr || !result->IsObject()) {
    return Malformed("result", "missing");
  }
  return result;
}

}  // namespace

absl::StatusOr<RangeResult> ParseRange(absl::string_view body) {
  absl::StatusOr<rapidjson::Document> doc = ParseObject(body);
  if (!doc.ok()) return doc.status();
  RangeResult out;
  LH_RETURN_IF_ERROR(DecodeRange(*doc, "", true, &out));
  return out;
}

absl::StatusOr<TxnResult> ParseTxn(absl::string_view body) {
  absl::StatusOr<rapidjson::Document> doc = ParseObject(body);
  if (!doc.ok()) return doc.status();
  TxnResult out;
  LH_RETURN_IF_ERROR(DecodeHeader(*doc, "", true, &out.header));
  LH_RETURN_IF_ERROR(GetBool(*doc, "succeeded", "", &out.succeeded));
  const Json* list = Member(*doc, "responses");
  if (list == nullptr) return out;
  if (!list->IsArray()) return Malformed("responses", "not an array");
  for (rapidjson::SizeType i = 0; i < list->Size(); ++i) {
    const Json& op = (*list)[i];
    const std::string where = absl::StrCat("responses[", i, "]");
    if (!op.IsObject()) return Malformed(where, "not an object");
    if (const Json* r = Member(op, "response_range"); r != nullptr) {
      if (!r->IsObject()) return Malformed(where, "not an object");
      RangeResult range;
      LH_RETURN_IF_ERROR(DecodeRange(*r, where, false, &range));
      range.header = out.header;
      out.responses.emplace_back(std::move(range));
    } else if (const Json* p = Member(op, "response_put"); p != nullptr) {
      if (!p->IsObject()) return Malformed(where, "not an object");
      PutResult put;
      put.header = out.header;
      if (const Json* prev = Member(*p, "prev_kv"); prev != nullptr) {
        put.prev_kv.emplace();
        LH_RETURN_IF_ERROR(
            DecodeKv(*prev, absl::StrCat(where, ".prev_kv"), &*put.prev_kv));
      }
      out.responses.emplace_back(std::move(put));
    } else if (const Json* d = Member(op, "response_delete_range");
               d != nullptr) {
      if (!d->IsObject()) return Malformed(where, "not an object");
      DeleteResult del;
      del.header = out.header;
      LH_RETURN_IF_ERROR(GetInt(*d, "deleted", where, &del.deleted));
      LH_RETURN_IF_ERROR(DecodeKvList(*d, "prev_kvs", where, &del.prev_kvs));
      out.responses.emplace_back(std::move(del));
    } else {
      return Malformed(where, "no response_range, _put or _delete_range");
    }
  }
  return out;
}

absl::StatusOr<LeaseResult> ParseLeaseGrant(absl::string_view body) {
  absl::StatusOr<rapidjson::Document> doc = ParseObject(body);
  if (!doc.ok()) return doc.status();
  LeaseResult out;
  LH_RETURN_IF_ERROR(DecodeLease(*doc, "", &out));
  if (out.ttl <= 0) return Malformed("TTL", "not positive");
  return out;
}

absl::StatusOr<LeaseResult> ParseLeaseTimeToLive(absl::string_view body) {
  absl::StatusOr<rapidjson::Document> doc = ParseObject(body);
  if (!doc.ok()) return doc.status();
  LeaseResult out;
  LH_RETURN_IF_ERROR(DecodeLease(*doc, "", &out));
  if (out.ttl < -1) return Malformed("TTL", "below -1");
  if (out.ttl > out.granted_ttl) {
    return Malformed("TTL", "more than grantedTTL");
  }
  return out;
}

absl::StatusOr<LeaseResult> ParseLeaseKeepAlive(absl::string_view body) {
  // The stream's first message ends at its newline (if more follow).
  const size_t end = body.find('\n');
  absl::StatusOr<rapidjson::Document> doc = ParseObject(body.substr(0, end));
  if (!doc.ok()) return doc.status();
  absl::StatusOr<const Json*> result = StreamResult(*doc);
  if (!result.ok()) return result.status();
  LeaseResult out;
  LH_RETURN_IF_ERROR(DecodeLease(**result, "result", &out));
  if (out.ttl < 0) return Malformed("result.TTL", "negative");
  return out;
}

absl::StatusOr<WatchMessage> ParseWatchMessage(absl::string_view line) {
  absl::StatusOr<rapidjson::Document> doc = ParseObject(line);
  if (!doc.ok()) return doc.status();
  absl::StatusOr<const Json*> result = StreamResult(*doc);
  if (!result.ok()) return result.status();
  const Json& r = **result;
  WatchMessage out;
  LH_RETURN_IF_ERROR(GetBool(r, "created", "result", &out.created));
  LH_RETURN_IF_ERROR(GetBool(r, "canceled", "result", &out.canceled));
  LH_RETURN_IF_ERROR(
      GetInt(r, "compact_revision", "result", &out.compact_revision));
  LH_RETURN_IF_ERROR(
      GetString(r, "cancel_reason", "result", &out.cancel_reason));
  LH_RETURN_IF_ERROR(DecodeHeader(r, "result", !out.canceled, &out.header));
  const Json* events = Member(r, "events");
  if (events == nullptr) return out;
  if (!events->IsArray()) return Malformed("result.events", "not an array");
  for (rapidjson::SizeType i = 0; i < events->Size(); ++i) {
    const Json& e = (*events)[i];
    const std::string where = absl::StrCat("result.events[", i, "]");
    if (!e.IsObject()) return Malformed(where, "not an object");
    WatchEvent event;
    std::string type;
    LH_RETURN_IF_ERROR(GetString(e, "type", where, &type));
    if (type == "DELETE") {
      event.is_delete = true;
    } else if (!type.empty() && type != "PUT") {
      return Malformed(absl::StrCat(where, ".type"), "neither PUT nor DELETE");
    }
    const Json* kv = Member(e, "kv");
    if (kv == nullptr) return Malformed(absl::StrCat(where, ".kv"), "missing");
    LH_RETURN_IF_ERROR(DecodeKv(*kv, absl::StrCat(where, ".kv"), &event.kv));
    if (event.kv.mod_revision <= 0 ||
        event.kv.mod_revision > out.header.revision) {
      return Malformed(absl::StrCat(where, ".kv.mod_revision"),
                       "not positive or past the header's revision");
    }
    if (const Json* prev = Member(e, "prev_kv"); prev != nullptr) {
      event.prev_kv.emplace();
      LH_RETURN_IF_ERROR(
          DecodeKv(*prev, absl::StrCat(where, ".prev_kv"), &*event.prev_kv));
    }
    out.events.push_back(std::move(event));
  }
  return out;
}

std::optional<GatewayError> ParseGatewayError(absl::string_view body) {
  absl::StatusOr<rapidjson::Document> doc = ParseObject(body);
  if (!doc.ok()) return std::nullopt;
  const Json* error = Member(*doc, "error");
  if (error == nullptr) return std::nullopt;
  GatewayError out;
  const Json* fields = error->IsObject() ? error : &*doc;
  const char* code_name = error->IsObject() ? "grpc_code" : "code";
  const Json* code = Member(*fields, code_name);
  if (code == nullptr || !code->IsInt()) return std::nullopt;
  out.code = code->GetInt();
  if (!GetString(*fields, "message", "error", &out.message).ok()) {
    return std::nullopt;
  }
  if (out.message.empty() && error->IsString()) {
    out.message.assign(error->GetString(), error->GetStringLength());
  }
  return out;
}

std::optional<GatewayError> ParseCancelReason(absl::string_view reason) {
  // grpc-go's status text; the names are gRPC's codes 1 to 16 in order.
  static constexpr const char* kCodeNames[] = {
      "Canceled",         "Unknown",           "InvalidArgument",
      "DeadlineExceeded", "NotFound",          "AlreadyExists",
      "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",          "OutOfRange",        "Unimplemented",
      "Internal",         "Unavailable",       "DataLoss",
      "Unauthenticated"};
  absl::string_view rest = reason;
  if (!absl::ConsumePrefix(&rest, "rpc error: code = ")) return std::nullopt;
  const size_t space = rest.find(' ');
  const absl::string_view name = rest.substr(0, space);
  rest = space == absl::string_view::npos ? "" : rest.substr(space);
  if (!absl::ConsumePrefix(&rest, " desc = ")) return std::nullopt;
  for (int code = 1; code <= 16; ++code) {
    if (name == kCodeNames[code - 1]) {
      return GatewayError{code, std::string(rest)};
    }
  }
  return std::nullopt;
}

absl::StatusOr<std::string> ParseAuthenticate(absl::string_view body) {
  absl::StatusOr<rapidjson::Document> doc = ParseObject(body);
  if (!doc.ok()) return doc.status();
  ResponseHeader header;
  LH_RETURN_IF_ERROR(DecodeHeader(*doc, "", /*with_revision=*/false, &header));
  std::string token;
  LH_RETURN_IF_ERROR(GetString(*doc, "token", "", &token));
  if (token.empty()) return Malformed("token", "missing");
  return token;
}

absl::StatusOr<std::vector<std::string>> ParseMemberList(
    absl::string_view body) {
  absl::StatusOr<rapidjson::Document> doc = ParseObject(body);
  if (!doc.ok()) return doc.status();
  ResponseHeader header;
  LH_RETURN_IF_ERROR(DecodeHeader(*doc, "", /*with_revision=*/false, &header));
  // The members' shape is v2's /v2/members (clientURLs of each).
  return etcd_internal::ParseMemberClientUrls(body);
}

absl::Status CheckLiveKv(const KeyValue& kv, int64_t revision,
                         absl::string_view where) {
  if (kv.key.empty()) return Malformed(where, "no key");
  if (kv.create_revision <= 0 || kv.mod_revision < kv.create_revision) {
    return Malformed(where, absl::StrCat("revisions out of order (create ",
                                         kv.create_revision, ", mod ",
                                         kv.mod_revision, ")"));
  }
  if (kv.version <= 0) return Malformed(where, "no version");
  if (kv.lease < 0) return Malformed(where, "negative lease");
  if (revision > 0 && kv.mod_revision > revision) {
    return Malformed(where,
                     absl::StrCat("mod_revision ", kv.mod_revision,
                                  " past the header's revision ", revision));
  }
  return absl::OkStatus();
}

std::string Base64(absl::string_view raw) { return absl::Base64Escape(raw); }

std::string AuthenticateBody(absl::string_view name,
                             absl::string_view password) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  writer.Key("name");
  writer.String(name.data(), static_cast<rapidjson::SizeType>(name.size()));
  writer.Key("password");
  writer.String(password.data(),
                static_cast<rapidjson::SizeType>(password.size()));
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace leasehold::registry::etcd_v3_internal
