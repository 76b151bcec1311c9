// ParseRegistryUri: the URI grammar of registry/open.h, with no side effects
// (nothing is opened or connected), so it is tested on its own.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "registry/open.h"

namespace leasehold::registry {
namespace {

constexpr absl::string_view kEtcdScheme = "etcd://";
constexpr absl::string_view kEtcdHttpsScheme = "etcd+https://";
constexpr int kDefaultEtcdPort = 2379;

absl::Status Invalid(absl::string_view uri, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("registry URI \"", uri, "\": ", what));
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = absl::ascii_tolower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

absl::StatusOr<std::string> PercentDecode(absl::string_view uri,
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
      return Invalid(uri, absl::StrCat("bad percent-escape in \"", text, "\""));
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
  if (name == "auto-sync-interval") {
    return ParseDurationOption(uri, name, value, &options.auto_sync_interval);
  }
  if (name == "watch-check-interval") {
    return ParseDurationOption(uri, name, value, &options.watch_check_interval);
  }
  if (name == "quorum-reads") {
    if (!absl::SimpleAtob(value, &options.quorum_reads)) {
      return Invalid(uri, absl::StrCat("option quorum-reads=\"", value,
                                       "\" is not true/false"));
    }
    return absl::OkStatus();
  }
  std::string* field = name == "username"    ? &options.username
                       : name == "password"  ? &options.password
                       : name == "ca-file"   ? &options.ca_file
                       : name == "cert-file" ? &options.cert_file
                       : name == "key-file"  ? &options.key_file
                                             : nullptr;
  if (field == nullptr) {
    return Invalid(
        uri,
        absl::StrCat("unknown option \"", name,
                     "\" (known: request-timeout, dial-timeout, "
                     "auto-sync-interval, watch-check-interval, quorum-reads, "
                     "username, password, "
                     "ca-file, cert-file, key-file)"));
  }
  if (value.empty())
    return Invalid(uri, absl::StrCat("option ", name, " is empty"));
  *field = value;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RegistryConfig> ParseRegistryUri(absl::string_view uri) {
  if (uri == "mem:") return MemoryOptions{};
  if (absl::StartsWith(uri, "mem:")) {
    return Invalid(uri, "mem: takes no host or options");
  }
  const bool https = absl::StartsWith(uri, kEtcdHttpsScheme);
  if (!https && !absl::StartsWith(uri, kEtcdScheme)) {
    return Invalid(uri,
                   "unknown scheme (use mem:, etcd://host:port or "
                   "etcd+https://host:port)");
  }
  absl::string_view rest =
      uri.substr(https ? kEtcdHttpsScheme.size() : kEtcdScheme.size());
  absl::string_view query;
  if (const size_t q = rest.find('?'); q != absl::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.empty()) return Invalid(uri, "no endpoints");
  if (rest.find('/') != absl::string_view::npos ||
      rest.find('@') != absl::string_view::npos) {
    return Invalid(uri,
                   "a path or user@ is not allowed; use ?username=&password=");
  }

  EtcdOptions options;
  for (absl::string_view hostport : absl::StrSplit(rest, ',')) {
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
    absl::StatusOr<std::string> value = PercentDecode(uri, pair.substr(eq + 1));
    if (!value.ok()) return value.status();
    if (absl::Status s = ApplyEtcdOption(uri, name, *value, options); !s.ok())
      return s;
  }
  if (options.cert_file.empty() != options.key_file.empty()) {
    return Invalid(uri, "cert-file and key-file go together");
  }
  if (options.password.empty() != options.username.empty()) {
    return Invalid(uri, "username and password go together");
  }
  return options;
}

}  // namespace leasehold::registry
