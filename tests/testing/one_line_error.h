// The CLI's contract for bad input, checked by the end-to-end tests: exit code
// 2 and exactly one line on stderr, "circuit <command>: ...".
#ifndef CIRCUIT_TESTING_ONE_LINE_ERROR_H_
#define CIRCUIT_TESTING_ONE_LINE_ERROR_H_

#include <algorithm>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/run.h"

namespace circuit::testing {

inline void ExpectOneLineError(const RunResult& r, const std::string& command) {
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, ::testing::StartsWith("circuit " + command + ": "));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

}  // namespace circuit::testing

#endif  // CIRCUIT_TESTING_ONE_LINE_ERROR_H_
