// BrokenEtcd: a fake etcd member whose every answer is wrong in one chosen
// way, for tests that a client never mistakes a broken answer for etcd's.
//
//   ASSERT_OK_AND_ASSIGN(auto broken, BrokenEtcd::Start(Breakage::kHtml404));
//   auto keys = NewEtcdClient({.endpoints = {broken->endpoint(), real}});
//   // every request must end up at `real`, or fail; never "not found"
//
// AllBreakages() lists every kind: bodies that are not etcd's JSON (cut
// short, wrong types, empty or missing node, zero indexes), success answers
// without X-Etcd-Index, HTML error pages for each status a proxy sends,
// a body that drips slower than any timeout, a connection reset or closed
// mid-body, an HTTP/0.9 reply, chunked garbage, a bad status line.
//
// Thread-safety: all methods may be called from any thread.
#ifndef LEASEHOLD_TESTS_TESTING_BROKEN_ETCD_H_
#define LEASEHOLD_TESTS_TESTING_BROKEN_ETCD_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/testing/loopback_net.h"

namespace leasehold::testing {

enum class Breakage {
  kTruncatedJson,
  kWrongTypes,
  kEmptyNode,
  kNoNode,
  kZeroIndex,
  kNoKey,
  kCreatedAfterModified,
  kNotAnObject,
  kEmptyBody,
  kErrorBodyOn200,
  kNoEtcdIndex,
  kPlainTextOk,
  kHtml401,
  kHtml403,
  kHtml404,
  kHtml412,
  kHtml429,
  kHtml500,
  kHtml502,
  kHtml503,
  kHtml504,
  kBare404,
  kGatewayJson404,
  kRedirect,
  kSlowDrip,
  kResetMidBody,
  kCloseMidBody,
  kHttp09,
  kChunkedGarbage,
  kBadStatusLine,
  kNoAnswer,
};

// Every Breakage, in declaration order.
std::vector<Breakage> AllBreakages();
// "truncated-json", "html-404", ... (for test names).
std::string BreakageName(Breakage breakage);

class BrokenEtcd final : public LoopbackListener {
 public:
  static absl::StatusOr<std::unique_ptr<BrokenEtcd>> Start(Breakage breakage);
  ~BrokenEtcd() override { Stop(); }

  std::string endpoint() const;
  // host:port, for etcd:// URIs.
  std::string host_port() const;
  int requests() const { return requests_.load(); }

 private:
  explicit BrokenEtcd(Breakage breakage) : breakage_(breakage) {}
  void Serve(int fd) override;

  const Breakage breakage_;
  std::atomic<int> requests_{0};
};

}  // namespace leasehold::testing

#endif  // LEASEHOLD_TESTS_TESTING_BROKEN_ETCD_H_
