// RedactUri: a registry URI or request URL as it may be shown in messages,
// logs and usage texts, with its secrets replaced by "***".
//
//   RedactUri("etcd://a:2379?username=u&password=s3cr3t&bogus=1")
//     == "etcd://a:2379?username=u&password=***&bogus=1"
//   RedactUri("http://u:s3cr3t@a:2379/v2/keys/k")
//     == "http://u:***@a:2379/v2/keys/k"
//   RedactUri("etcd:http://a:2379,http://u:s3cr3t@b:2379")
//     == "etcd:http://a:2379,http://u:***@b:2379"
//
// Every message of leasehold that shows a registry URI or a request URL
// passes it through this one function.
//
// Thread-safety: a pure function.
#ifndef LEASEHOLD_REGISTRY_REGISTRY_URI_H_
#define LEASEHOLD_REGISTRY_REGISTRY_URI_H_

#include <string>

#include "absl/strings/string_view.h"

namespace leasehold::registry {

// `uri` with "***" for the password of each "user:password@" of its
// endpoints (after "scheme://", or in each piece of a comma-separated list)
// and for the value of every query parameter whose name contains "pass" in
// any case (password, Password, a misspelt passwd; password-file, a path,
// stays). Works on malformed input too: it only ever removes text.
std::string RedactUri(absl::string_view uri);

}  // namespace leasehold::registry

#endif  // LEASEHOLD_REGISTRY_REGISTRY_URI_H_
