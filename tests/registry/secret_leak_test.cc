// No message of the library shows a secret: every failure a client holding
// a password can meet (LeakScenarios), through registry::Open and every
// KeysApi call, with every message and warning searched for the passwords,
// their basic-auth encodings and key file contents.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registry/open.h"
#include "tests/testing/leak_scenarios.h"
#include "tests/testing/scoped_env.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::registry {
namespace {

using ::leasehold::testing::IsOk;
using ::leasehold::testing::LeakScenario;
using ::leasehold::testing::LeakScenarios;
using ::leasehold::testing::ScopedEnv;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// The messages of opening `scenario` and of every call on the result.
std::vector<std::string> Messages(const LeakScenario& scenario) {
  std::vector<std::unique_ptr<ScopedEnv>> env;
  for (const char* name : {"LEASEHOLD_USERNAME", "LEASEHOLD_PASSWORD"}) {
    env.push_back(std::make_unique<ScopedEnv>(name, nullptr));
  }
  for (const std::string& entry : scenario.env) {
    const std::vector<std::string> parts =
        absl::StrSplit(entry, absl::MaxSplits('=', 1));
    env.push_back(
        std::make_unique<ScopedEnv>(parts[0].c_str(), parts[1].c_str()));
  }
  std::vector<std::string> messages;
  absl::StatusOr<std::unique_ptr<KeysApi>> keys =
      Open(scenario.uri, OpenOptions{.warn = [&](absl::string_view w) {
             messages.emplace_back(w);
           }});
  if (!keys.ok()) {
    EXPECT_TRUE(scenario.open_fails) << keys.status();
    messages.emplace_back(keys.status().message());
    return messages;
  }
  EXPECT_FALSE(scenario.open_fails) << "opened";
  // Credentials that work once make later refusals "lacks permission".
  if (absl::Status s = (*keys)->Set("/app/leak-probe", "v", {}).status();
      !s.ok()) {
    messages.emplace_back(s.message());
  }
  const std::string key = absl::StrCat(LeakScenarios::kPrefix, "k");
  const std::vector<absl::Status> results = {
      (*keys)->Get(key, {}).status(),
      (*keys)->Set(key, "v", {}).status(),
      (*keys)->CreateInOrder(key, "v", {}).status(),
      (*keys)->Delete(key, {}).status(),
      (*keys)
          ->Watch(key, {.deadline = absl::Now() + absl::Milliseconds(500)})
          .status(),
  };
  for (const absl::Status& s : results) {
    EXPECT_FALSE(s.ok()) << "a call succeeded";
    messages.emplace_back(s.message());
  }
  return messages;
}

TEST(SecretLeakTest, NoMessageShowsASecret) {
  ASSERT_OK_AND_ASSIGN(auto scenarios, LeakScenarios::Start());
  const std::vector<std::string> secrets = scenarios->Secrets();
  for (const LeakScenario& scenario : scenarios->All()) {
    SCOPED_TRACE(scenario.name);
    const std::vector<std::string> messages = Messages(scenario);
    ASSERT_THAT(messages, Not(IsEmpty()));
    for (const std::string& message : messages) {
      EXPECT_THAT(message, Not(IsEmpty()));
      for (const std::string& secret : secrets) {
        EXPECT_THAT(message, Not(HasSubstr(secret)));
      }
    }
  }
}

}  // namespace
}  // namespace leasehold::registry
