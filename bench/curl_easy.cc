#include "bench/curl_easy.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace leasehold::bench {
namespace {

size_t OnBody(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

}  // namespace

CurlEasy::CurlEasy()
    : easy_(curl_easy_init()), headers_(curl_slist_append(nullptr, "Expect:")) {
  curl_easy_setopt(easy_, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, headers_);
  curl_easy_setopt(easy_, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(easy_, CURLOPT_WRITEDATA, &body_);
}

CurlEasy::~CurlEasy() {
  curl_easy_cleanup(easy_);
  curl_slist_free_all(headers_);
}

std::string CurlEasy::Escape(const std::string& text) {
  char* escaped =
      curl_easy_escape(nullptr, text.c_str(), static_cast<int>(text.size()));
  std::string result(escaped);
  curl_free(escaped);
  return result;
}

absl::StatusOr<int> CurlEasy::Perform(const char* method,
                                      const std::string& url,
                                      const std::string& form) {
  body_.clear();
  curl_easy_setopt(easy_, CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy_, CURLOPT_HTTPGET, 1L);  // clears the last body
  curl_easy_setopt(easy_, CURLOPT_CUSTOMREQUEST, method);
  if (!form.empty()) {
    curl_easy_setopt(easy_, CURLOPT_POSTFIELDSIZE,
                     static_cast<long>(form.size()));  // NOLINT
    curl_easy_setopt(easy_, CURLOPT_POSTFIELDS, form.c_str());
  }
  CURLcode rc = curl_easy_perform(easy_);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(
        absl::StrCat(method, " ", url, ": ", curl_easy_strerror(rc)));
  }
  long code = 0;  // NOLINT: curl's type
  curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &code);
  return static_cast<int>(code);
}

}  // namespace leasehold::bench
