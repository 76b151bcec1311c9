// The byte contract of registry::KeysApi: ValidateKey and ValidateValue.
// (Both registries applying it is the conformance suite's job.)
#include "registry/keys_api.h"

#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace leasehold::registry {
namespace {

using ::leasehold::testing::IsOk;
using ::leasehold::testing::StatusIs;
using ::testing::HasSubstr;

TEST(ValidateValueTest, AcceptsEveryWellFormedUtf8Sequence) {
  for (const std::string& text :
       {std::string(), std::string("plain ascii"), std::string("nul\0in", 6),
        std::string("\x01\x7f"), std::string("\xc2\x80"),  // U+0080
        std::string("\xdf\xbf"), std::string("\xe0\xa0\x80"),
        std::string("\xed\x9f\xbf"),       // U+D7FF, below the surrogates
        std::string("\xee\x80\x80"),       // U+E000, above them
        std::string("\xf0\x90\x80\x80"),   // U+10000
        std::string("\xf4\x8f\xbf\xbf")})  // U+10FFFF, the last code point
  {
    EXPECT_THAT(ValidateValue("value", text), IsOk()) << text;
  }
}

TEST(ValidateValueTest, NamesTheFirstByteOfAnIllFormedSequence) {
  struct Case {
    std::string text;
    int offset;
  };
  for (const Case& c : {
           Case{"\xff", 0},
           Case{"ab\x80", 2},    // a lone continuation byte
           Case{"\xc0\xaf", 0},  // overlong (C0, C1 never occur)
           Case{"\xc1\xbf", 0},
           Case{"x\xe0\x9f\xbf", 1},     // overlong three-byte form
           Case{"\xed\xa0\x80", 0},      // a surrogate
           Case{"\xf0\x8f\xbf\xbf", 0},  // overlong four-byte form
           Case{"\xf4\x90\x80\x80", 0},  // above U+10FFFF
           Case{"\xf5\x80\x80\x80", 0},
           Case{"ok\xe2\x82", 2},  // cut short at the end
           Case{"\xe2\x82z", 0},   // cut short by ASCII
           Case{"\xc3\xa9\xc3", 2},
       }) {
    EXPECT_THAT(
        ValidateValue("prevValue", c.text),
        StatusIs(absl::StatusCode::kInvalidArgument,
                 HasSubstr(absl::StrCat(
                     "prevValue: invalid UTF-8 at byte offset ", c.offset))))
        << c.offset;
  }
}

TEST(ValidateKeyTest, RefusesInvalidUtf8AndDotSegments) {
  EXPECT_THAT(ValidateKey("/a/b"), IsOk());
  EXPECT_THAT(ValidateKey("/a//b/"), IsOk());
  EXPECT_THAT(ValidateKey("/.hidden/..x/x../.../\xc3\xa9"), IsOk());
  EXPECT_THAT(ValidateKey("/a/\xff"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("key \"/a/\\xff\": invalid UTF-8 at byte "
                                 "offset 3")));
  for (const char* key : {"/a/../b", "/./a", "/a/.", "..", "/a/.."}) {
    EXPECT_THAT(ValidateKey(key),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("'.' and '..' segments are not allowed")))
        << key;
  }
}

}  // namespace
}  // namespace leasehold::registry
