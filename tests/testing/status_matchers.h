// gMock matchers for absl::Status, with upstream's names (Debian's Abseil lacks them).
//
//   EXPECT_THAT(LoadModel(path), IsOk());
//   EXPECT_THAT(LoadModel(bad), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("shape")));
#ifndef CIRCUIT_TESTING_STATUS_MATCHERS_H_
#define CIRCUIT_TESTING_STATUS_MATCHERS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"

namespace circuit::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& s = GetStatus(arg);
  if (!s.ok()) *result_listener << "status: " << s.ToString();
  return s.ok();
}

MATCHER_P2(StatusIs, code, message_matcher, "") {
  const absl::Status& s = GetStatus(arg);
  *result_listener << "status: " << s.ToString();
  return s.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, std::string(s.message()), result_listener);
}

#define CIRCUIT_ASSERT_OK(expr) ASSERT_THAT(expr, ::circuit::testing::IsOk())
#define CIRCUIT_EXPECT_OK(expr) EXPECT_THAT(expr, ::circuit::testing::IsOk())

}  // namespace circuit::testing

#endif  // CIRCUIT_TESTING_STATUS_MATCHERS_H_
