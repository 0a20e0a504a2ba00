// User task files (JSON Lines): what is accepted, and that every kind of bad
// line is reported with its path and line number.
#include <fstream>
#include <string>
#include <vector>

#include "circuit/core/task.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"

namespace circuit {
namespace {

using ::circuit::testing::IsOk;
using ::circuit::testing::StatusIs;
using ::testing::HasSubstr;

class TaskFileTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& contents) {
    const std::string path = dir_.File("task" + std::to_string(++count_) + ".jsonl");
    std::ofstream(path, std::ios::binary) << contents;
    return path;
  }
  // A file whose line 1 is fine and line 2 is `bad` fails naming "path:2: <message>".
  void ExpectSecondLineError(const std::string& bad, const std::string& message) {
    const std::string path =
        Write("{\"prompt\": \"x = [1, 2\", \"correct\": \"]\", \"alternative\": \"]]\"}\n" + bad +
              "\n");
    EXPECT_THAT(ReadTaskFile(path), StatusIs(absl::StatusCode::kInvalidArgument,
                                             HasSubstr(path + ":2: " + message)));
  }
  testing::TempDir dir_;
  int count_ = 0;
};

TEST_F(TaskFileTest, ReadsPairsAndSinglePromptsSkippingBlankLines) {
  const std::string path = Write(
      "{\"prompt\": \"print('hi\", \"twin\": \"print(\\\"hi\", \"correct\": \"'\", "
      "\"alternative\": \"\\\"\"}\n"
      "\n"
      "{\"prompt\": \"x = [[1, 2\", \"correct\": \"]]\", \"alternative\": \"]\", \"note\": 3}\n");
  absl::StatusOr<std::vector<TaskPair>> pairs = ReadTaskFile(path);
  ASSERT_THAT(pairs, IsOk());
  ASSERT_EQ(pairs->size(), 2u);
  EXPECT_EQ((*pairs)[0].prompt, "print('hi");
  EXPECT_EQ((*pairs)[0].twin, "print(\"hi");
  EXPECT_EQ((*pairs)[0].correct, "'");
  EXPECT_EQ((*pairs)[0].alternative, "\"");
  EXPECT_EQ((*pairs)[1].twin, "");  // no twin: a single-prompt datapoint
  EXPECT_EQ((*pairs)[1].correct, "]]");
}

TEST_F(TaskFileTest, BadJsonNamesTheLine) {
  ExpectSecondLineError("{\"prompt\": \"x\", ", "not valid JSON");
}

TEST_F(TaskFileTest, NotAnObject) {
  ExpectSecondLineError("[1, 2]", "expected a JSON object, got array");
}

TEST_F(TaskFileTest, MissingKey) {
  ExpectSecondLineError("{\"prompt\": \"y = [3\", \"correct\": \"]\"}",
                        "missing key \"alternative\"");
  ExpectSecondLineError("{\"correct\": \"]\", \"alternative\": \"]]\"}", "missing key \"prompt\"");
}

TEST_F(TaskFileTest, WrongType) {
  ExpectSecondLineError("{\"prompt\": \"y = [3\", \"correct\": 93, \"alternative\": \"]\"}",
                        "\"correct\" must be a string, got number");
  ExpectSecondLineError(
      "{\"prompt\": \"y\", \"twin\": null, \"correct\": \"a\", \"alternative\": \"b\"}",
      "\"twin\" must be a string, got null");
}

TEST_F(TaskFileTest, EmptyPromptOrCandidate) {
  ExpectSecondLineError("{\"prompt\": \"\", \"correct\": \"]\", \"alternative\": \"]]\"}",
                        "\"prompt\" is empty");
  ExpectSecondLineError("{\"prompt\": \"z\", \"correct\": \"\", \"alternative\": \"]]\"}",
                        "\"correct\" is empty");
}

TEST_F(TaskFileTest, EqualCandidates) {
  ExpectSecondLineError("{\"prompt\": \"z\", \"correct\": \"]\", \"alternative\": \"]\"}",
                        "\"correct\" and \"alternative\" are the same");
}

TEST_F(TaskFileTest, RepeatedPromptNamesBothLines) {
  ExpectSecondLineError(
      "{\"prompt\": \"q\", \"twin\": \"x = [1, 2\", \"correct\": \"]\", \"alternative\": \"]]\"}",
      "twin repeats a prompt of line 1");
}

TEST_F(TaskFileTest, MissingAndEmptyFiles) {
  EXPECT_THAT(ReadTaskFile(dir_.File("absent.jsonl")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("absent.jsonl: cannot open")));
  const std::string empty = Write("\n  \n");
  EXPECT_THAT(ReadTaskFile(empty),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(empty + ": no datapoints")));
}

}  // namespace
}  // namespace circuit
