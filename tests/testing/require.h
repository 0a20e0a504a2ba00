// Tests that need a tool outside the project (python3-torch, h5py, mpirun) skip
// without it on a developer's machine, but fail in CI (CI=true), where
// scripts/bootstrap installs every one: a missing tool there is a broken
// environment, and a skipped test would hide it.
//
//   if (!std::filesystem::exists("/usr/bin/mpirun")) CIRCUIT_SKIP_UNLESS_CI() << "no mpirun";
#ifndef CIRCUIT_TESTING_REQUIRE_H_
#define CIRCUIT_TESTING_REQUIRE_H_

#include <cstdlib>
#include <cstring>

#include "gtest/gtest.h"

namespace circuit::testing {

// True when the environment says it is CI (CI=true, as GitHub Actions, GitLab
// and the project's .ci/run set it).
inline bool InCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && (std::strcmp(ci, "true") == 0 || std::strcmp(ci, "1") == 0);
}

}  // namespace circuit::testing

// Use as a statement followed by `<< "why"`: a skip, or under CI a fatal
// failure; returns from the (void) function either way.
#define CIRCUIT_SKIP_UNLESS_CI()                                                         \
  return GTEST_MESSAGE_AT_(                                                              \
      __FILE__, __LINE__,                                                                \
      ::circuit::testing::InCi()                                                         \
          ? "CI=true, where scripts/bootstrap installs every tool: failing, not skipping" \
          : "",                                                                          \
      ::circuit::testing::InCi() ? ::testing::TestPartResult::kFatalFailure               \
                                 : ::testing::TestPartResult::kSkip)

#endif  // CIRCUIT_TESTING_REQUIRE_H_
