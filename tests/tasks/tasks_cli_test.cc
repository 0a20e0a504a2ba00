// `circuit tasks` and `circuit eval` as a user runs them, on a small
// random-weights model written by `circuit init` with the bundled tokenizer.
#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "circuit/core/task.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/run.h"
#include "testing/temp_dir.h"

namespace circuit::testing {
namespace {

using ::testing::HasSubstr;

class TasksCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    model_ = dir_->File("tiny.h5");
    RunResult r = RunCommand(CircuitBinary() + " init --layers 1 --d-model 16 --heads 2 --d-head 8 " +
                             "--d-mlp 32 --n-ctx 256 --seed 1 --out " + model_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() { delete dir_; }
  static TempDir* dir_;
  static std::string model_;
};
TempDir* TasksCliTest::dir_ = nullptr;
std::string TasksCliTest::model_;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST_F(TasksCliTest, TasksListsEveryTaskWithAnExample) {
  RunResult r = RunCommand(CircuitBinary() + " tasks");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const TaskInfo& info : BuiltinTasks()) EXPECT_THAT(r.out, HasSubstr(info.name + " "));
  EXPECT_THAT(r.out, HasSubstr("candidates"));
  EXPECT_THAT(r.out, HasSubstr("-> \"]]\\n\""));

  r = RunCommand(CircuitBinary() + " tasks --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), BuiltinTasks().size());
  for (const nlohmann::json& task : j) {
    EXPECT_TRUE(task["name"].is_string());
    EXPECT_TRUE(task["description"].is_string());
    EXPECT_TRUE(task["candidates"].is_array());
    EXPECT_TRUE(task["example"]["prompt"].is_string());
    EXPECT_NE(task["example"]["prompt"], task["example"]["twin"]);
    EXPECT_GE(task["families"].size(), 3u) << task["name"];
  }
}

// Every task lists its template families, and --dump builds one of them.
TEST_F(TasksCliTest, TasksListsFamiliesAndDumpsOne) {
  RunResult r = RunCommand(CircuitBinary() + " tasks");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("families    if_return, if_assign, after_elif (NAME@FAMILY"));
  r = RunCommand(CircuitBinary() + " tasks --dump else_elif@after_elif --pairs 8 --split test " +
                 "--model " + model_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 16u);  // at least 8 test pairs, two prompts each
  for (const std::string& line : lines) {
    const nlohmann::json j = nlohmann::json::parse(line);
    EXPECT_EQ(j["task"], "else_elif@after_elif");
    // The family: an `elif` branch comes before the else/elif being predicted.
    EXPECT_THAT(j["text"].get<std::string>(), HasSubstr("\n    elif "));
  }
  r = RunCommand(CircuitBinary() + " tasks --dump else_elif@nope --model " + model_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("families: if_return, if_assign, after_elif"));
}

TEST_F(TasksCliTest, EvalPrintsExactlyOneJsonObject) {
  RunResult r = RunCommand(CircuitBinary() + " eval --task single_double_quote --n 4 --json --model " +
                           model_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 1u) << r.out;
  const nlohmann::json j = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(j.size(), 5u);
  EXPECT_EQ(j["task"], "single_double_quote");
  EXPECT_EQ(j["split"], "test");
  EXPECT_EQ(j["n"], 8);  // 4 pairs
  EXPECT_GT(j["loss"].get<double>(), 0.0);
  EXPECT_GE(j["accuracy"].get<double>(), 0.0);
  EXPECT_LE(j["accuracy"].get<double>(), 1.0);

  r = RunCommand(CircuitBinary() + " eval --task single_double_quote --n 4 --split validation --model " +
                 model_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("loss "));
  EXPECT_THAT(r.out, HasSubstr("accuracy "));
  EXPECT_THAT(r.out, HasSubstr("n 8"));
}

// A task file whose name is not UTF-8 once aborted --json output (nlohmann's
// type_error.316); the name is printed with U+FFFD in place of the bad bytes.
TEST_F(TasksCliTest, EvalJsonSurvivesATaskNameThatIsNotUtf8) {
  const std::string path = dir_->File("quotes\xff.jsonl");
  {
    std::ofstream out(path);
    for (const char* word : {"hello", "world", "value", "print", "name", "data"}) {
      out << "{\"prompt\": \"x = '" << word << "\", \"twin\": \"x = \\\"" << word
          << "\", \"correct\": \"'\", \"alternative\": \"\\\"\"}\n";
    }
  }
  RunResult r = RunCommand(CircuitBinary() + " eval --task 'file:" + path +
                           "' --split test --n 2 --json --model " + model_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 1u) << r.out;
  const nlohmann::json j = nlohmann::json::parse(lines[0]);
  EXPECT_THAT(j["task"].get<std::string>(), HasSubstr("quotes\xef\xbf\xbd.jsonl"));
}

TEST_F(TasksCliTest, EvalAllGivesOneObjectPerTask) {
  RunResult r = RunCommand(CircuitBinary() + " eval --task all --n 2 --json --model " + model_);
  // Tasks whose candidates are not single tokens for the tokenizer are reported on
  // stderr and skipped (exit 1); every other task gives one JSON line, in order.
  const std::vector<std::string> lines = Lines(r.out);
  const size_t skipped = std::count(r.err.begin(), r.err.end(), '\n');
  EXPECT_EQ(r.exit_code, skipped == 0 ? 0 : 1) << r.err;
  ASSERT_EQ(lines.size() + skipped, BuiltinTasks().size()) << r.err;
  EXPECT_GE(lines.size(), 14u) << r.err;
  for (const std::string& line : lines) {
    const nlohmann::json j = nlohmann::json::parse(line);
    EXPECT_EQ(j["n"], 4);
  }
}

// tasks --dump prints the splits extract builds, one JSON line per prompt; eval
// --logits writes the logits of the same prompts, in the same order, as .npy.
TEST_F(TasksCliTest, DumpAndLogitsDescribeTheSamePrompts) {
  RunResult r = RunCommand(CircuitBinary() + " tasks --dump single_double_quote --pairs 32 --seed 3 " +
                           "--split test --model " + model_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 16u);  // a quarter of 32 pairs, two prompts each
  for (size_t i = 0; i < lines.size(); ++i) {
    const nlohmann::json j = nlohmann::json::parse(lines[i]);
    EXPECT_EQ(j["split"], "test");
    EXPECT_EQ(j["index"], i);
    EXPECT_EQ(j["pair"], i / 2);
    EXPECT_EQ(j["role"], i % 2 == 0 ? "prompt" : "twin");
    EXPECT_FALSE(j["tokens"].empty());
    EXPECT_NE(j["correct"], j["alternative"]);
    if (i % 2 == 1) {  // a twin's answers are its prompt's, swapped
      const nlohmann::json prompt = nlohmann::json::parse(lines[i - 1]);
      EXPECT_EQ(j["correct"], prompt["alternative"]);
      EXPECT_EQ(j["alternative"], prompt["correct"]);
    }
  }
  r = RunCommand(CircuitBinary() + " tasks --dump single_double_quote --pairs 32 --seed 3 --model " +
                 model_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Lines(r.out).size(), 2u * (32 + 8 + 8));

  // The logits: (16, vocab) float32, and the loss they give is eval's loss.
  const std::string npy = dir_->File("logits.npy");
  r = RunCommand(CircuitBinary() + " eval --task single_double_quote --n 8 --seed 3 --json --model " +
                 model_ + " --logits " + npy);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const double loss = nlohmann::json::parse(r.out)["loss"].get<double>();
  const std::string tokens_file = dir_->File("test.jsonl");
  r = RunCommand(CircuitBinary() + " tasks --dump single_double_quote --pairs 32 --seed 3 --split test "
                 "--model " + model_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ofstream(tokens_file) << r.out;
  const std::string script = dir_->File("check.py");
  std::ofstream(script) << R"(import sys, json, numpy as np
x = np.load(sys.argv[1])
rows = [json.loads(l) for l in open(sys.argv[2])]
assert x.dtype == np.float32 and x.ndim == 2 and x.shape[0] == len(rows), x.shape
c = np.array([x[i, r["correct"]] for i, r in enumerate(rows)], dtype=np.float64)
a = np.array([x[i, r["alternative"]] for i, r in enumerate(rows)], dtype=np.float64)
print(np.mean(np.logaddexp(0, a - c)))
)";
  r = RunCommand("/usr/bin/python3 " + script + " " + npy + " " + tokens_file);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NEAR(std::stod(r.out), loss, 1e-5);

  EXPECT_EQ(RunCommand(CircuitBinary() + " eval --task all --logits " + npy + " --model " + model_)
                .exit_code, 2);
  EXPECT_EQ(RunCommand(CircuitBinary() + " tasks --dump single_double_quote --split dev --model " +
                       model_).exit_code, 2);
  EXPECT_EQ(RunCommand(CircuitBinary() + " tasks --dump no_such_task --model " + model_).exit_code, 2);
}

// tokenizer encode: a newline token and the two characters \ and n print apart;
// text comes from the argument (C escapes), a file or standard input.
TEST_F(TasksCliTest, TokenizerEncodePrintsTokensUnambiguously) {
  const std::string encode = CircuitBinary() + " tokenizer encode --model " + model_ + " --json ";
  RunResult newline = RunCommand(encode + "'a\\nb'");
  RunResult backslash_n = RunCommand(encode + "'a\\\\nb'");
  ASSERT_EQ(newline.exit_code, 0) << newline.err;
  ASSERT_EQ(backslash_n.exit_code, 0) << backslash_n.err;
  auto joined = [](const RunResult& r) {
    const nlohmann::json j = nlohmann::json::parse(r.out);
    std::string text;
    for (const auto& t : j["tokens"]) text += t.get<std::string>();
    return text;
  };
  EXPECT_EQ(joined(newline), "a\nb");
  EXPECT_EQ(joined(backslash_n), "a\\nb");
  // Plain output escapes every token's bytes: the two texts print differently.
  RunResult plain_newline = RunCommand(CircuitBinary() + " tokenizer encode --model " + model_ + " 'a\\nb'");
  RunResult plain_backslash = RunCommand(CircuitBinary() + " tokenizer encode --model " + model_ + " 'a\\\\nb'");
  EXPECT_NE(plain_newline.out, plain_backslash.out);
  EXPECT_THAT(plain_backslash.out, HasSubstr("\\\\"));
  // Standard input and --file are taken as raw bytes.
  const std::string file = dir_->File("text.txt");
  std::ofstream(file) << "x = 'a\\n'\n";
  RunResult from_file = RunCommand(encode + "--file " + file);
  RunResult from_stdin = RunCommand("sh -c \"" + encode + "- < " + file + "\"");
  ASSERT_EQ(from_file.exit_code, 0) << from_file.err;
  EXPECT_EQ(joined(from_file), "x = 'a\\n'\n");
  EXPECT_EQ(from_file.out, from_stdin.out);
  EXPECT_EQ(RunCommand(encode + "'bad \\q escape' 2>/dev/null").exit_code, 2);
}

TEST_F(TasksCliTest, UnknownTaskAndBadSplitAreUsageErrors) {
  RunResult r = RunCommand(CircuitBinary() + " eval --task no_such_task --model " + model_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, ::testing::StartsWith("circuit eval: unknown task 'no_such_task'"));
  EXPECT_THAT(r.err, HasSubstr("circuit tasks"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  r = RunCommand(CircuitBinary() + " eval --task single_double_quote --split dev --model " + model_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--split must be train, validation or test"));
  r = RunCommand(CircuitBinary() + " eval --task file:" + dir_->File("absent.jsonl") + " --model " +
                 model_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("absent.jsonl: cannot open"));
}

// docs/tasks.md: pruning pairs each prompt with its twin, so extract, ablate and
// sweep refuse a user file with a twinless line, naming the line.
TEST_F(TasksCliTest, TwinlessUserTaskIsRejectedByExtractAblateAndSweep) {
  auto write = [](const std::string& path, bool twinless_last) {
    std::ofstream out(path);
    for (int i = 0; i < 40; ++i) {  // enough train tokens for one means window of 256
      out << "{\"prompt\": \"x = [" << i << ", 1\", \"twin\": \"x = {" << i
          << ", 1\", \"correct\": \"]\", \"alternative\": \"}\"}\n";
    }
    if (twinless_last) out << "{\"prompt\": \"y = [7\", \"correct\": \"]\", \"alternative\": \"}\"}\n";
  };
  const std::string task = dir_->File("twins.jsonl");
  const std::string out = dir_->File("twins_out");
  write(task, /*twinless_last=*/false);
  const std::string extract = CircuitBinary() + " extract --task file:" + task + " --model " +
                              model_ + " --epochs 1 --no-importance --out " + out;
  RunResult r = RunCommand(extract);
  ASSERT_EQ(r.exit_code, 0) << r.err;

  write(task, /*twinless_last=*/true);
  const std::string expected = task + ":41: no \"twin\"";
  r = RunCommand(extract);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr(expected));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;

  r = RunCommand(CircuitBinary() + " ablate --circuit " + out + "/circuit.h5 --model " + model_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr(expected));

  const std::string spec = dir_->File("twins_sweep.json");
  std::ofstream(spec) << "{\"models\": [\"" << model_ << "\"], \"tasks\": [\"file:" << task
                      << "\"]}";
  r = RunCommand(CircuitBinary() + " sweep " + spec + " --out " + dir_->File("twins_sweep"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr(expected));
}

}  // namespace
}  // namespace circuit::testing
