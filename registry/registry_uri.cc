// ParseRegistryUri: the URI grammar of registry/open.h, with no side effects
// (nothing is opened, read or connected), so it is tested on its own; and
// RedactUri, which every message showing a URI goes through.
#include "registry/registry_uri.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "registry/etcd/http_transport.h"
#include "registry/open.h"

namespace leasehold::registry {
namespace {

constexpr absl::string_view kEtcdScheme = "etcd://";
constexpr absl::string_view kEtcdHttpsScheme = "etcd+https://";
// The same grammar for the etcd v3 client.
constexpr absl::string_view kEtcd3Scheme = "etcd3://";
constexpr absl::string_view kEtcd3HttpsScheme = "etcd3+https://";
// go-lock's spelling: "etcd:" and then the endpoints' own URLs.
constexpr absl::string_view kEtcdEndpointsScheme = "etcd:";
constexpr int kDefaultEtcdPort = 2379;

// Option names whose values are never shown: anything that looks like a
// password, including misspellings that end up as unknown options.
bool IsSecretName(absl::string_view name) {
  return absl::StrContains(absl::AsciiStrToLower(name), "pass") &&
         name != "password-file";
}

// RFC 3986's scheme: a letter, then letters, digits, '+', '-' or '.'.
bool IsSchemeName(absl::string_view text) {
  if (text.empty() || !absl::ascii_isalpha(text.front())) return false;
  for (char c : text) {
    if (!absl::ascii_isalnum(c) && c != '+' && c != '-' && c != '.') {
      return false;
    }
  }
  return true;
}

absl::Status Invalid(absl::string_view uri, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("registry URI \"", RedactUri(uri), "\": ", what));
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = absl::ascii_tolower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// The percent-decoded value of option `name`; the error names the option,
// not the value (it may be a password).
absl::StatusOr<std::string> PercentDecode(absl::string_view uri,
                                          absl::string_view name,
                                          absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    const int hi = i + 2 < text.size() ? HexValue(text[i + 1]) : -1;
    const int lo = i + 2 < text.size() ? HexValue(text[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      return Invalid(
          uri, absl::StrCat("option ", name, " has a bad percent-escape"));
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

// "host:port", "host" (port 2379), "[v6]:port" or "[v6]" → "host:port".
absl::StatusOr<std::string> ParseEndpoint(absl::string_view uri,
                                          absl::string_view hostport) {
  if (hostport.empty()) return Invalid(uri, "empty endpoint");
  absl::string_view host = hostport;
  absl::string_view port;
  if (hostport.front() == '[') {
    const size_t close = hostport.find(']');
    if (close == absl::string_view::npos || close == 1) {
      return Invalid(uri, absl::StrCat("bad IPv6 endpoint \"", hostport, "\""));
    }
    host = hostport.substr(0, close + 1);
    absl::string_view rest = hostport.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return Invalid(uri, absl::StrCat("bad endpoint \"", hostport, "\""));
      }
      port = rest.substr(1);
      if (port.empty())
        return Invalid(uri, absl::StrCat("empty port in \"", hostport, "\""));
    }
  } else if (const size_t colon = hostport.rfind(':');
             colon != absl::string_view::npos) {
    host = hostport.substr(0, colon);
    port = hostport.substr(colon + 1);
    if (port.empty())
      return Invalid(uri, absl::StrCat("empty port in \"", hostport, "\""));
  }
  if (host.empty())
    return Invalid(uri, absl::StrCat("empty host in \"", hostport, "\""));
  for (char c : host) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '-' && c != '_' &&
        c != '[' && c != ']' && c != ':') {
      return Invalid(uri, absl::StrCat("bad host \"", host, "\""));
    }
  }
  int port_number = kDefaultEtcdPort;
  if (!port.empty() &&
      (!absl::SimpleAtoi(port, &port_number) || port_number < 1 ||
       port_number > 65535 || !absl::ascii_isdigit(port.front()))) {
    return Invalid(uri, absl::StrCat("bad port \"", port, "\""));
  }
  return absl::StrCat(host, ":", port_number);
}

absl::Status ParseDurationOption(absl::string_view uri, absl::string_view name,
                                 const std::string& value,
                                 absl::Duration* out) {
  if (!absl::ParseDuration(value, out) || *out < absl::ZeroDuration() ||
      *out == absl::InfiniteDuration()) {
    return Invalid(
        uri, absl::StrCat("option ", name, "=\"", value,
                          "\" is not a duration (use e.g. 500ms, 2s, 1m)"));
  }
  return absl::OkStatus();
}

absl::Status ApplyEtcdOption(absl::string_view uri, absl::string_view name,
                             const std::string& value, EtcdOptions& options) {
  if (name == "request-timeout") {
    if (auto s =
            ParseDurationOption(uri, name, value, &options.request_timeout);
        !s.ok()) {
      return s;
    }
    if (options.request_timeout == absl::ZeroDuration()) {
      return Invalid(uri, "option request-timeout must be positive");
    }
    return absl::OkStatus();
  }
  if (name == "dial-timeout") {
    if (auto s = ParseDurationOption(uri, name, value, &options.dial_timeout);
        !s.ok())
      return s;
    if (options.dial_timeout == absl::ZeroDuration()) {
      return Invalid(uri, "option dial-timeout must be positive");
    }
    return absl::OkStatus();
  }
  if (name == "dial-keep-alive-time" || name == "dial-keep-alive-timeout") {
    absl::Duration* field = name == "dial-keep-alive-time"
                                ? &options.keepalive_time
                                : &options.keepalive_timeout;
    if (auto s = ParseDurationOption(uri, name, value, field); !s.ok()) {
      return s;
    }
    if (*field < etcd_internal::kMinKeepalive ||
        *field > etcd_internal::kMaxKeepalive) {
      return Invalid(
          uri, absl::StrCat("option ", name, " must be between ",
                            absl::FormatDuration(etcd_internal::kMinKeepalive),
                            " and ",
                            absl::FormatDuration(etcd_internal::kMaxKeepalive),
                            " (TCP keepalive counts whole seconds)"));
    }
    return absl::OkStatus();
  }
  if (name == "auto-sync-interval") {
    return ParseDurationOption(uri, name, value, &options.auto_sync_interval);
  }
  if (name == "watch-check-interval") {
    return ParseDurationOption(uri, name, value, &options.watch_check_interval);
  }
  if (bool* flag = name == "quorum-reads" ? &options.quorum_reads
                   : name == "allow-insecure-auth"
                       ? &options.allow_insecure_auth
                   : name == "reject-old-cluster" ? &options.reject_old_cluster
                                                  : nullptr) {
    if (!absl::SimpleAtob(value, flag)) {
      return Invalid(uri, absl::StrCat("option ", name, "=\"", value,
                                       "\" is not true/false"));
    }
    return absl::OkStatus();
  }
  std::string* field = name == "username"        ? &options.username
                       : name == "password"      ? &options.password
                       : name == "password-file" ? &options.password_file
                       : name == "ca-file"       ? &options.ca_file
                       : name == "cert-file"     ? &options.cert_file
                       : name == "key-file"      ? &options.key_file
                       : name == "server-name"   ? &options.server_name
                                                 : nullptr;
  if (field == nullptr) {
    return Invalid(
        uri,
        absl::StrCat("unknown option \"", name,
                     "\" (known: request-timeout, dial-timeout, "
                     "dial-keep-alive-time, dial-keep-alive-timeout, "
                     "reject-old-cluster, "
                     "auto-sync-interval, watch-check-interval, quorum-reads, "
                     "username, password, password-file, allow-insecure-auth, "
                     "ca-file, cert-file, key-file, server-name)"));
  }
  if (value.empty())
    return Invalid(uri, absl::StrCat("option ", name, " is empty"));
  *field = value;
  return absl::OkStatus();
}

// go-lock's "etcd:http://h:p,http://h2:p2": each endpoint names its scheme,
// and all must name the same one. On success `*https` says which, and
// `hostports` has the endpoints without it.
absl::Status SplitSchemedEndpoints(absl::string_view uri,
                                   absl::string_view endpoints, bool* https,
                                   std::vector<absl::string_view>& hostports) {
  std::optional<absl::string_view> scheme;
  for (absl::string_view endpoint : absl::StrSplit(endpoints, ',')) {
    const size_t end = endpoint.find("://");
    const absl::string_view this_scheme =
        end == absl::string_view::npos ? "" : endpoint.substr(0, end);
    if (this_scheme != "http" && this_scheme != "https") {
      return Invalid(uri, absl::StrCat("endpoint \"", endpoint,
                                       "\" needs http:// or https:// (etcd: "
                                       "form: etcd:http://host:port,...)"));
    }
    if (scheme.has_value() && *scheme != this_scheme) {
      return Invalid(
          uri, absl::StrCat("mixed schemes ", *scheme, ":// and ", this_scheme,
                            ":// (all endpoints use one scheme)"));
    }
    scheme = this_scheme;
    endpoint.remove_prefix(end + 3);
    if (!endpoint.empty() && endpoint.back() == '/') endpoint.remove_suffix(1);
    hostports.push_back(endpoint);
  }
  *https = *scheme == "https";
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RegistryConfig> ParseRegistryUri(absl::string_view uri) {
  for (absl::string_view memory : {"mem:", "local:"}) {
    if (uri == memory) return MemoryOptions{};
    if (absl::StartsWith(uri, memory)) {
      return Invalid(uri, absl::StrCat(memory, " takes no host or options"));
    }
  }
  const bool v3 = absl::StartsWith(uri, kEtcd3Scheme) ||
                  absl::StartsWith(uri, kEtcd3HttpsScheme);
  bool https = absl::StartsWith(uri, kEtcdHttpsScheme) ||
               absl::StartsWith(uri, kEtcd3HttpsScheme);
  const bool schemed_endpoints = !https && !v3 &&
                                 !absl::StartsWith(uri, kEtcdScheme) &&
                                 absl::StartsWith(uri, kEtcdEndpointsScheme);
  if (!https && !v3 && !schemed_endpoints &&
      !absl::StartsWith(uri, kEtcdScheme)) {
    return Invalid(uri,
                   "unknown scheme (use mem:, etcd://host:port, "
                   "etcd+https://host:port, etcd:http(s)://host:port, "
                   "etcd3://host:port or etcd3+https://host:port)");
  }
  absl::string_view rest = schemed_endpoints
                               ? uri.substr(kEtcdEndpointsScheme.size())
                               : uri.substr(uri.find("://") + 3);
  absl::string_view query;
  if (const size_t q = rest.find('?'); q != absl::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  // Before anything echoes an endpoint: user info may hold a password.
  if (rest.find('@') != absl::string_view::npos) {
    return Invalid(uri,
                   "a path or user@ is not allowed; use ?username=&password=");
  }
  std::vector<absl::string_view> hostports;
  if (schemed_endpoints) {
    if (rest.empty()) return Invalid(uri, "no endpoints");
    if (absl::Status s = SplitSchemedEndpoints(uri, rest, &https, hostports);
        !s.ok()) {
      return s;
    }
  } else {
    if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    if (rest.empty()) return Invalid(uri, "no endpoints");
    hostports = absl::StrSplit(rest, ',');
  }
  for (absl::string_view hostport : hostports) {
    if (hostport.find('/') != absl::string_view::npos) {
      return Invalid(
          uri, "a path or user@ is not allowed; use ?username=&password=");
    }
  }

  EtcdOptions options;
  for (absl::string_view hostport : hostports) {
    absl::StatusOr<std::string> endpoint = ParseEndpoint(uri, hostport);
    if (!endpoint.ok()) return endpoint.status();
    options.endpoints.push_back(
        absl::StrCat(https ? "https://" : "http://", *endpoint));
  }
  std::vector<std::string> seen;
  for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    const size_t eq = pair.find('=');
    if (eq == absl::string_view::npos) {
      return Invalid(
          uri, absl::StrCat("option \"", pair, "\" has no value (name=value)"));
    }
    const std::string name(pair.substr(0, eq));
    for (const std::string& s : seen) {
      if (s == name)
        return Invalid(uri, absl::StrCat("option ", name, " given twice"));
    }
    seen.push_back(name);
    absl::StatusOr<std::string> value =
        PercentDecode(uri, name, pair.substr(eq + 1));
    if (!value.ok()) return value.status();
    if (absl::Status s = ApplyEtcdOption(uri, name, *value, options); !s.ok())
      return s;
  }
  if (options.cert_file.empty() != options.key_file.empty()) {
    return Invalid(uri, "cert-file and key-file go together");
  }
  if (!options.password.empty() && !options.password_file.empty()) {
    return Invalid(uri, "password and password-file: give one, not both");
  }
  const bool has_password =
      !options.password.empty() || !options.password_file.empty();
  if (has_password && options.username.empty()) {
    return Invalid(uri, "password or password-file needs a username");
  }
  if (!has_password && !options.username.empty()) {
    return Invalid(uri,
                   "username needs a password or password-file (or leave "
                   "all three out and set LEASEHOLD_USERNAME and "
                   "LEASEHOLD_PASSWORD)");
  }
  if (!https && !options.server_name.empty()) {
    return Invalid(uri, "server-name applies to etcd+https:// only");
  }
  if (v3) return EtcdV3Options{std::move(options)};
  return options;
}

std::string RedactUri(absl::string_view uri) {
  std::string out;
  out.reserve(uri.size());
  absl::string_view rest = uri;
  // "scheme://user:password@host…": the authority ends at the first '/',
  // '?' or '#' (RFC 3986), its user info at the last '@' before that. A
  // registry URI may list several endpoints after its scheme, each with a
  // scheme of its own or none (etcd:http://a,https://user:pw@b,
  // etcd:user:pw@b): each comma-separated piece is an authority.
  if (const size_t colon = rest.find(':'); colon != absl::string_view::npos) {
    absl::StrAppend(&out, rest.substr(0, colon + 1));
    rest.remove_prefix(colon + 1);
    while (true) {
      size_t skip = absl::StartsWith(rest, "//") ? 2 : 0;
      if (const size_t scheme_end = rest.find("://");
          skip == 0 && scheme_end != absl::string_view::npos &&
          scheme_end > 0 && IsSchemeName(rest.substr(0, scheme_end))) {
        skip = scheme_end + 3;
      }
      absl::StrAppend(&out, rest.substr(0, skip));
      rest.remove_prefix(skip);
      const size_t end = std::min(rest.find_first_of(",/?#"), rest.size());
      const absl::string_view authority = rest.substr(0, end);
      const size_t at = authority.rfind('@');
      const size_t user_end = authority.find(':');
      if (at != absl::string_view::npos && user_end < at) {
        absl::StrAppend(&out, authority.substr(0, user_end + 1), "***",
                        authority.substr(at));
      } else {
        absl::StrAppend(&out, authority);
      }
      rest.remove_prefix(end);
      if (!absl::StartsWith(rest, ",")) break;
      out.push_back(',');
      rest.remove_prefix(1);
    }
  }
  const size_t query = rest.find('?');
  if (query == absl::string_view::npos) {
    absl::StrAppend(&out, rest);
    return out;
  }
  absl::StrAppend(&out, rest.substr(0, query + 1));
  rest.remove_prefix(query + 1);
  // Parameters split where any URL parser might split them, so that no
  // reading of a malformed query hides a password inside another value.
  while (!rest.empty()) {
    const size_t end = std::min(rest.find_first_of("&;?"), rest.size());
    const absl::string_view pair = rest.substr(0, end);
    const size_t eq = pair.find('=');
    const absl::string_view name = pair.substr(0, eq);
    // Names are compared decoded: "pass%77ord" is still a password.
    const std::string decoded =
        etcd_internal::PercentDecode(name).value_or(std::string(name));
    if (eq != absl::string_view::npos && IsSecretName(decoded)) {
      absl::StrAppend(&out, pair.substr(0, eq + 1), "***");
    } else {
      absl::StrAppend(&out, pair);
    }
    if (end == rest.size()) break;
    out.push_back(rest[end]);
    rest.remove_prefix(end + 1);
  }
  return out;
}

}  // namespace leasehold::registry
