#include "tests/testing/leak_scenarios.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/testing/etcd_auth.h"

namespace leasehold::testing {
namespace {

// The wrong password every scenario sends, and the key file's marker.
constexpr char kWrongPassword[] = "Wr0ng-S3cr3t-91c7";
constexpr char kKeyMarker[] = "KEY-CONTENTS-5d2e";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

absl::StatusOr<std::unique_ptr<LeakScenarios>> LeakScenarios::Start() {
  std::unique_ptr<LeakScenarios> s(new LeakScenarios());
  absl::StatusOr<std::unique_ptr<ThrowawayCa>> ca = ThrowawayCa::Create();
  if (!ca.ok()) return ca.status();
  s->ca_ = *std::move(ca);
  absl::StatusOr<std::unique_ptr<ThrowawayCa>> unknown = ThrowawayCa::Create();
  if (!unknown.ok()) return unknown.status();
  s->unknown_ca_ = *std::move(unknown);
  absl::StatusOr<ThrowawayCa::Issued> server =
      s->ca_->Issue("server", "IP:127.0.0.1");
  if (!server.ok()) return server.status();
  absl::StatusOr<ThrowawayCa::Issued> client =
      s->ca_->Issue("client", "IP:127.0.0.1");
  if (!client.ok()) return client.status();
  absl::StatusOr<ThrowawayCa::Issued> other =
      s->unknown_ca_->Issue("other", "IP:127.0.0.1");
  if (!other.ok()) return other.status();
  s->client_cert_file_ = client->cert_file;
  // A real private key, but not the certificate's.
  s->wrong_key_file_ = other->key_file;

  s->password_file_ = s->ca_->File("password");
  s->garbage_key_file_ = s->ca_->File("garbage.key");
  {
    std::ofstream(s->password_file_) << kWrongPassword << "\n";
    std::ofstream(s->garbage_key_file_)
        << "-----BEGIN PRIVATE KEY-----\n"
        << kKeyMarker << "\n-----END PRIVATE KEY-----\n";
  }
  chmod(s->password_file_.c_str(), 0600);

  absl::StatusOr<std::unique_ptr<EtcdServer>> auth = StartEtcdWithAuth();
  if (!auth.ok()) return auth.status();
  s->auth_etcd_ = *std::move(auth);
  absl::StatusOr<std::unique_ptr<EtcdServer>> auth_v3 =
      StartEtcdWithAuth("etcd3");
  if (!auth_v3.ok()) return auth_v3.status();
  s->auth_etcd_v3_ = *std::move(auth_v3);
  EtcdServerOptions tls;
  tls.server_cert_file = server->cert_file;
  tls.server_key_file = server->key_file;
  absl::StatusOr<std::unique_ptr<EtcdServer>> tls_etcd = EtcdServer::Start(tls);
  if (!tls_etcd.ok()) return tls_etcd.status();
  s->tls_etcd_ = *std::move(tls_etcd);

  // Answers that are not etcd's, each echoing the request it got.
  for (auto answer : std::vector<CannedHttpServer::Responder>{
           [](absl::string_view request) {
             return HttpAnswer(200, absl::StrCat("<html>", request),
                               {"X-Etcd-Index: 7"});
           },
           [](absl::string_view request) {
             return HttpAnswer(401, absl::StrCat("denied: ", request));
           },
           [](absl::string_view request) {
             return HttpAnswer(502,
                               absl::StrCat("<h1>Bad Gateway</h1>", request));
           },
       }) {
    absl::StatusOr<std::unique_ptr<CannedHttpServer>> bad =
        CannedHttpServer::Start(std::move(answer));
    if (!bad.ok()) return bad.status();
    s->bad_servers_.push_back(*std::move(bad));
  }
  s->refused_port_ = FreePort();
  return s;
}

std::vector<LeakScenario> LeakScenarios::All() const {
  const std::string credentials =
      absl::StrCat("username=alice&password=", kWrongPassword);
  const std::string etcd = auth_etcd_->uri();
  const std::string tls = tls_etcd_->uri();
  std::vector<LeakScenario> all = {
      {"bad option",
       absl::StrCat(etcd, "?", credentials, "&bogus=1"),
       {},
       true},
      {"bad port",
       absl::StrCat("etcd://127.0.0.1:99999?", credentials),
       {},
       true},
      {"bad escape", absl::StrCat(etcd, "?", credentials, "%zz"), {}, true},
      {"user info",
       absl::StrCat("etcd://alice:", kWrongPassword, "@", etcd.substr(7)),
       {},
       true},
      {"misspelt option",
       absl::StrCat(etcd, "?username=alice&passwd=", kWrongPassword),
       {},
       true},
      {"missing ca-file",
       absl::StrCat(tls, "?", credentials, "&ca-file=/no/such/ca.pem"),
       {},
       true},
      {"refused",
       absl::StrCat("etcd://127.0.0.1:", refused_port_, "?", credentials),
       {}},
      {"unknown CA",
       absl::StrCat(tls, "?", credentials, "&ca-file=", unknown_ca_->ca_file()),
       {}},
      {"unusable key file",
       absl::StrCat(tls, "?", credentials, "&ca-file=", ca_->ca_file(),
                    "&cert-file=", client_cert_file_,
                    "&key-file=", garbage_key_file_),
       {}},
      {"key of another certificate",
       absl::StrCat(tls, "?", credentials, "&ca-file=", ca_->ca_file(),
                    "&cert-file=", client_cert_file_,
                    "&key-file=", wrong_key_file_),
       {}},
  };
  // v2 auth (basic auth on every request) and v3 auth (the password in an
  // authenticate request, a token after it).
  for (const auto& [api, uri] : {std::pair<std::string, std::string>{"", etcd},
                                 {"v3 ", auth_etcd_v3_->uri()}}) {
    all.push_back(
        {api + "wrong password", absl::StrCat(uri, "?", credentials), {}});
    all.push_back(
        {api + "wrong password file",
         absl::StrCat(uri, "?username=alice&password-file=", password_file_),
         {}});
    all.push_back({api + "wrong password in the environment",
                   uri,
                   {"LEASEHOLD_USERNAME=alice",
                    absl::StrCat("LEASEHOLD_PASSWORD=", kWrongPassword)}});
    all.push_back(
        {api + "key outside the role",
         absl::StrCat(uri, "?username=alice&password=", kAlicePassword),
         {}});
  }
  for (const char* scheme : {"etcd", "etcd3"}) {
    for (size_t i = 0; i < bad_servers_.size(); ++i) {
      all.push_back({absl::StrCat("bad answer ", i, " to ", scheme),
                     absl::StrCat(scheme, "://127.0.0.1:",
                                  bad_servers_[i]->port(), "?", credentials),
                     {}});
    }
  }
  return all;
}

std::vector<std::string> LeakScenarios::Secrets() const {
  std::vector<std::string> secrets = {kWrongPassword, kAlicePassword,
                                      kKeyMarker};
  for (const char* password : {kWrongPassword, kAlicePassword}) {
    secrets.push_back(absl::Base64Escape(absl::StrCat("alice:", password)));
  }
  // A line from the middle of the real key: its contents, not its name.
  const std::vector<std::string> lines =
      absl::StrSplit(ReadAll(wrong_key_file_), '\n', absl::SkipEmpty());
  if (!lines.empty()) secrets.push_back(lines[lines.size() / 2]);
  return secrets;
}

}  // namespace leasehold::testing
