// V3LikeKeysApi: a KeysApi wrapper that gives a registry the differences of
// the etcd v3 backend (registry/etcd_v3/etcd_v3_client.h) that upper layers
// must not depend on, so that unit tests on the memory registry catch a
// v2-only assumption:
// - in-order keys are NOT named in creation order: each new one sorts
//   BEFORE every earlier one (v3 names them at random; this is the worst
//   case, every time);
// - an expiry arrives as a plain "delete" event.
//
//   V3LikeKeysApi keys(memory.get());
//   Session::Create(&keys, options);   // queues must order by createdIndex
//
// Thread-safety: as the wrapped KeysApi.
#ifndef LEASEHOLD_TESTS_TESTING_V3_LIKE_KEYS_API_H_
#define LEASEHOLD_TESTS_TESTING_V3_LIKE_KEYS_API_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/strings/str_format.h"
#include "registry/keys_api.h"

namespace leasehold::testing {

class V3LikeKeysApi final : public registry::KeysApi {
 public:
  // REQUIRES: `base` outlives this object.
  explicit V3LikeKeysApi(registry::KeysApi* base) : base_(base) {}

  absl::StatusOr<registry::Response> Get(
      const std::string& key, const registry::GetOptions& options) override {
    return base_->Get(key, options);
  }
  absl::StatusOr<registry::Response> Set(
      const std::string& key, const std::string& value,
      const registry::SetOptions& options) override {
    return base_->Set(key, value, options);
  }
  absl::StatusOr<registry::Response> CreateInOrder(
      const std::string& dir, const std::string& value,
      const registry::CreateInOrderOptions& options) override {
    registry::SetOptions create;
    create.prev_exist = false;
    create.ttl = options.ttl;
    const uint64_t name = UINT64_MAX - next_.fetch_add(1);
    return base_->Set(absl::StrFormat("%s/%020u", dir, name), value, create);
  }
  absl::StatusOr<registry::Response> Delete(
      const std::string& key, const registry::DeleteOptions& options) override {
    return base_->Delete(key, options);
  }
  absl::StatusOr<registry::Response> Watch(
      const std::string& key, const registry::WatchOptions& options) override {
    absl::StatusOr<registry::Response> event = base_->Watch(key, options);
    if (event.ok() && event->action == "expire") event->action = "delete";
    return event;
  }

 private:
  registry::KeysApi* const base_;
  std::atomic<uint64_t> next_{0};
};

}  // namespace leasehold::testing

#endif  // LEASEHOLD_TESTS_TESTING_V3_LIKE_KEYS_API_H_
