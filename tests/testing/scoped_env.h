// ScopedEnv: sets (or, given nullptr, unsets) an environment variable for
// one scope and restores it after.
//
//   ScopedEnv user("LEASEHOLD_USERNAME", "alice");
//
// Thread-safety: setenv races with every getenv of other threads; use it
// while the test has no other thread that reads the environment.
#ifndef LEASEHOLD_TESTS_TESTING_SCOPED_ENV_H_
#define LEASEHOLD_TESTS_TESTING_SCOPED_ENV_H_

#include <stdlib.h>

#include <optional>
#include <string>

namespace leasehold::testing {

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = getenv(name)) old_ = old;
    if (value != nullptr) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_.has_value()) {
      setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const std::string name_;
  std::optional<std::string> old_;
};

}  // namespace leasehold::testing

#endif  // LEASEHOLD_TESTS_TESTING_SCOPED_ENV_H_
