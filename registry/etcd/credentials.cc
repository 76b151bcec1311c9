#include "registry/etcd/credentials.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "registry/etcd/http_transport.h"
#include "registry/registry_uri.h"

namespace leasehold::registry::etcd_internal {

Warner WarnerFor(const EtcdOptions& options) {
  if (options.warn) return options.warn;
  return [](absl::string_view text) {
    std::fprintf(stderr, "leasehold: warning: %.*s\n",
                 static_cast<int>(text.size()), text.data());
  };
}

absl::StatusOr<std::string> ReadPasswordFile(const std::string& path,
                                             const Warner& warn) {
  const std::string what = absl::StrCat("password_file \"", path, "\"");
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": cannot be read: ", std::strerror(errno)));
  }
  struct stat info {};
  const bool regular = fstat(fileno(file), &info) == 0 && S_ISREG(info.st_mode);
  // Reads up to the first newline; a pipe (<(pass show etcd)) works too.
  std::string line;
  int c = 0;
  while ((c = std::fgetc(file)) != EOF && c != '\n') {
    line.push_back(static_cast<char>(c));
  }
  const bool failed = std::ferror(file) != 0;
  const int error = errno;
  std::fclose(file);
  if (failed) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": cannot be read: ", std::strerror(error)));
  }
  if (absl::EndsWith(line, "\r")) line.pop_back();
  if (line.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": its first line (the password) is empty"));
  }
  if (regular && (info.st_mode & (S_IRGRP | S_IROTH)) != 0) {
    warn(absl::StrFormat(
        "%s is readable by group or others (mode %04o); "
        "chmod 600 it so that only its owner can read the password",
        what, info.st_mode & 07777));
  }
  return line;
}

bool IsLoopbackHost(absl::string_view host) {
  if (absl::EqualsIgnoreCase(host, "localhost")) return true;
  absl::string_view bare = host;
  if (absl::ConsumePrefix(&bare, "[") && !absl::ConsumeSuffix(&bare, "]")) {
    return false;
  }
  const std::string text(bare);
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    return IN6_IS_ADDR_LOOPBACK(&v6) ||
           (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
  }
  return false;
}

ClearTextWarning::ClearTextWarning(const EtcdOptions& options, Warner warn,
                                   absl::string_view how)
    : username_(options.username),
      how_(how),
      armed_(!options.username.empty() && !options.allow_insecure_auth),
      warn_(std::move(warn)) {}

void ClearTextWarning::Check(const std::vector<std::string>& endpoints) {
  if (!armed_ || warned_.load(std::memory_order_acquire)) return;
  std::vector<std::string> exposed;
  for (const std::string& endpoint : endpoints) {
    const BaseUrlParts parts = SplitBaseUrl(endpoint);
    if (parts.scheme == "http" && !IsLoopbackHost(parts.host)) {
      exposed.push_back(RedactUri(endpoint));
    }
  }
  if (exposed.empty() || warned_.exchange(true, std::memory_order_acq_rel)) {
    return;
  }
  warn_(absl::StrCat(
      "the password of user \"", username_, "\" goes in clear text (", how_,
      " over http://) to ", absl::StrJoin(exposed, ", "),
      ": anyone on the network path can read it; use etcd+https://, or set "
      "allow-insecure-auth=true if that network is trusted"));
}

}  // namespace leasehold::registry::etcd_internal
