// CurlEasy: one keep-alive libcurl easy handle and nothing else, the
// leasehold-bench baseline's whole HTTP client (the floor of any client),
// also used to read etcd's own counters.
//
//   CurlEasy curl;
//   absl::StatusOr<int> code = curl.Perform("GET", url, "");
//   if (code.ok() && *code == 200) Use(curl.body());
//
// Thread-safety: one thread at a time (a libcurl easy handle).
#ifndef LEASEHOLD_BENCH_CURL_EASY_H_
#define LEASEHOLD_BENCH_CURL_EASY_H_

#include <string>

#include "absl/status/statusor.h"
#include "curl/curl.h"

namespace leasehold::bench {

class CurlEasy {
 public:
  CurlEasy();
  ~CurlEasy();
  CurlEasy(const CurlEasy&) = delete;
  CurlEasy& operator=(const CurlEasy&) = delete;

  // Sends `method` to `url` with `form` (x-www-form-urlencoded) as the body
  // unless it is empty, on the kept-alive connection. Returns the HTTP
  // status code, whatever it is; kUnavailable when no answer arrived.
  absl::StatusOr<int> Perform(const char* method, const std::string& url,
                              const std::string& form);
  // `text` percent-encoded for a URL or a form.
  static std::string Escape(const std::string& text);
  // The last answer's body.
  const std::string& body() const { return body_; }

 private:
  CURL* const easy_;
  curl_slist* const headers_;
  std::string body_;
};

}  // namespace leasehold::bench

#endif  // LEASEHOLD_BENCH_CURL_EASY_H_
