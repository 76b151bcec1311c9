// CountingKeys: a KeysApi that forwards every call and counts it, for the
// requests-per-operation figures of leasehold-bench.
//
// Thread-safety: safe from any number of threads, like the wrapped KeysApi.
#ifndef LEASEHOLD_BENCH_COUNTING_KEYS_H_
#define LEASEHOLD_BENCH_COUNTING_KEYS_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "registry/keys_api.h"

namespace leasehold::bench {

// Forwards to a KeysApi and counts the requests made through it.
class CountingKeys : public registry::KeysApi {
 public:
  explicit CountingKeys(registry::KeysApi* keys) : keys_(keys) {}

  int64_t requests() const { return requests_.load(); }
  int64_t renews() const { return renews_.load(); }    // refresh writes
  int64_t creates() const { return creates_.load(); }  // in-order creates
  int64_t watches() const { return watches_.load(); }

  absl::StatusOr<registry::Response> Get(
      const std::string& key, const registry::GetOptions& options) override {
    ++requests_;
    return keys_->Get(key, options);
  }
  absl::StatusOr<registry::Response> Set(
      const std::string& key, const std::string& value,
      const registry::SetOptions& options) override {
    ++requests_;
    if (options.refresh) ++renews_;
    return keys_->Set(key, value, options);
  }
  absl::StatusOr<registry::Response> CreateInOrder(
      const std::string& dir, const std::string& value,
      const registry::CreateInOrderOptions& options) override {
    ++requests_;
    absl::StatusOr<registry::Response> r =
        keys_->CreateInOrder(dir, value, options);
    ++creates_;
    return r;
  }
  absl::StatusOr<registry::Response> Delete(
      const std::string& key, const registry::DeleteOptions& options) override {
    ++requests_;
    return keys_->Delete(key, options);
  }
  absl::StatusOr<registry::Response> Watch(
      const std::string& key, const registry::WatchOptions& options) override {
    ++requests_;
    ++watches_;
    return keys_->Watch(key, options);
  }

 private:
  registry::KeysApi* const keys_;
  std::atomic<int64_t> requests_{0};
  std::atomic<int64_t> renews_{0};
  std::atomic<int64_t> creates_{0};
  std::atomic<int64_t> watches_{0};
};

}  // namespace leasehold::bench

#endif  // LEASEHOLD_BENCH_COUNTING_KEYS_H_
