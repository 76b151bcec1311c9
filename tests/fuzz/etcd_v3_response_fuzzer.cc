// The etcd v3 client's view of an answer from etcd's JSON gateway
// (registry/etcd_v3/v3_codec.h): every parser is given the same bytes, as a
// broken server, a proxy or a stray process might send them.
//
// Input: one body, as the gateway would send it:
//
//   {"header":{"cluster_id":"1","member_id":"2","revision":"7"},"kvs":[…]}
//
// Beyond not crashing, an answer a parser accepts must look like etcd's: a
// header naming a cluster and a member, revisions where etcd gives them,
// live keys that pass the client's own key check, and lease TTLs in range.
// The request bodies the client builds from the input round-trip.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <variant>

#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"
#include "registry/etcd_v3/v3_codec.h"
#include "registry/json_object.h"

namespace {

namespace v3 = leasehold::registry::etcd_v3_internal;

void Require(bool condition) {
  if (!condition) std::abort();
}

void RequireHeader(const v3::ResponseHeader& header, bool with_revision) {
  Require(header.cluster_id != 0 && header.member_id != 0);
  Require(header.revision >= 0);
  if (with_revision) Require(header.revision > 0);
}

// Every key the client is given names a key; a live one is checked once
// more the way the client checks it before acting on it, which must not
// crash whatever it decides.
void RequireKv(const v3::KeyValue& kv, int64_t revision) {
  Require(!kv.key.empty());
  v3::CheckLiveKv(kv, revision, "fuzz").IgnoreError();
}

void Range(const v3::RangeResult& range) {
  for (const v3::KeyValue& kv : range.kvs) RequireKv(kv, range.header.revision);
}

void Answers(absl::string_view body) {
  if (auto r = v3::ParseRange(body); r.ok()) {
    RequireHeader(r->header, true);
    Range(*r);
  }
  if (auto r = v3::ParseTxn(body); r.ok()) {
    RequireHeader(r->header, true);
    for (const v3::TxnOpResult& op : r->responses) {
      if (const auto* range = std::get_if<v3::RangeResult>(&op)) {
        Require(range->header.revision == r->header.revision);
        Range(*range);
      } else if (const auto* put = std::get_if<v3::PutResult>(&op)) {
        if (put->prev_kv.has_value()) RequireKv(*put->prev_kv, 0);
      } else {
        const auto& del = std::get<v3::DeleteResult>(op);
        for (const v3::KeyValue& kv : del.prev_kvs) RequireKv(kv, 0);
      }
    }
  }
  if (auto r = v3::ParseLeaseGrant(body); r.ok()) {
    RequireHeader(r->header, true);
    Require(r->id != 0 && r->ttl > 0);
  }
  if (auto r = v3::ParseLeaseTimeToLive(body); r.ok()) {
    RequireHeader(r->header, true);
    Require(r->id != 0 && r->ttl >= -1 && r->ttl <= r->granted_ttl);
  }
  if (auto r = v3::ParseLeaseKeepAlive(body); r.ok()) {
    RequireHeader(r->header, true);
    Require(r->id != 0 && r->ttl >= 0);
  }
  if (auto r = v3::ParseWatchMessage(body); r.ok()) {
    RequireHeader(r->header, !r->canceled);
    for (const v3::WatchEvent& event : r->events) {
      Require(event.kv.mod_revision > 0 &&
              event.kv.mod_revision <= r->header.revision);
      RequireKv(event.kv, r->header.revision);
      if (event.prev_kv.has_value()) RequireKv(*event.prev_kv, 0);
    }
  }
  if (auto r = v3::ParseAuthenticate(body); r.ok()) Require(!r->empty());
  if (auto r = v3::ParseMemberList(body); r.ok()) {
    for (const std::string& url : *r) Require(!url.empty());
  }
  v3::ParseGatewayError(body);
  if (auto e = v3::ParseCancelReason(body); e.has_value()) {
    Require(e->code >= 1 && e->code <= 16);
  }
}

// What the client sends: a key or value survives base64, and a user name
// and password (split at the input's first NUL) survive the JSON body.
void Requests(absl::string_view input) {
  std::string decoded;
  Require(absl::Base64Unescape(v3::Base64(input), &decoded) &&
          decoded == input);
  const size_t nul = input.find('\0');
  const absl::string_view name = input.substr(0, nul);
  const absl::string_view password =
      nul == absl::string_view::npos ? "" : input.substr(nul + 1);
  const auto body = leasehold::registry::JsonObject::Parse(
      v3::AuthenticateBody(name, password));
  Require(body.ok());
  const std::optional<std::string> sent_name = body->GetString("name");
  const std::optional<std::string> sent_password = body->GetString("password");
  Require(sent_name.has_value() && *sent_name == name);
  Require(sent_password.has_value() && *sent_password == password);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  Answers(input);
  Requests(input);
  return 0;
}
