// The etcd client's view of an answer: the status, the header lines and the
// body, as the etcd client reads them (registry/etcd/json_codec.h, the
// headers through HttpResponse::Header, the status through MapEtcdError).
//
// Input: the HTTP status on the first line, then header lines up to an
// empty line, then the body:
//
//   201
//   X-Etcd-Index: 12
//
//   {"action":"create","node":{"key":"/a","value":"v",...}}
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "registry/errors.h"
#include "registry/etcd/http_transport.h"
#include "registry/etcd/json_codec.h"

namespace {

using leasehold::registry::EtcdError;
using leasehold::registry::etcd_internal::HttpResponse;
namespace codec = leasehold::registry::etcd_internal;

HttpResponse Split(absl::string_view input) {
  HttpResponse response;
  const size_t line_end = input.find('\n');
  int status = 0;
  if (absl::SimpleAtoi(input.substr(0, line_end), &status)) {
    response.status = status;
  }
  if (line_end == absl::string_view::npos) return response;
  absl::string_view rest = input.substr(line_end + 1);
  size_t blank = rest.find("\r\n\r\n");
  size_t skip = 4;
  if (blank == absl::string_view::npos) {
    blank = rest.find("\n\n");
    skip = 2;
  }
  if (blank == absl::string_view::npos) {
    response.header_lines = std::string(rest);
    return response;
  }
  response.header_lines = std::string(rest.substr(0, blank + skip / 2));
  response.body = std::string(rest.substr(blank + skip));
  return response;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const HttpResponse response =
      Split(absl::string_view(reinterpret_cast<const char*>(data), size));
  uint64_t index = 0;
  if (std::optional<std::string> header = response.Header("X-Etcd-Index")) {
    if (!absl::SimpleAtoi(*header, &index)) index = 0;
  }
  response.Header("Content-Type");

  codec::ParseKeysResponse(response.body).IgnoreError();
  codec::ParseMemberClientUrls(response.body).IgnoreError();
  codec::ParseRfc3339(response.body).IgnoreError();

  // An answer that is not a success maps to an error status, and an etcd
  // error body's code, index, message and cause survive the mapping.
  const std::optional<EtcdError> error = codec::ParseEtcdError(response.body);
  if (response.status >= 200 && response.status < 300) return 0;
  const absl::Status status = leasehold::registry::MapEtcdError(
      response.status, error, "fuzz", /*bad_credentials=*/size % 2 == 0);
  if (status.ok()) std::abort();
  if (error.has_value()) {
    const std::optional<EtcdError> carried =
        leasehold::registry::GetEtcdError(status);
    if (!carried.has_value() || carried->code != error->code ||
        carried->index != error->index || carried->message != error->message ||
        carried->cause != error->cause) {
      std::abort();
    }
  }
  return 0;
}
