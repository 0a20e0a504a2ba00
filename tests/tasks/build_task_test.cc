// BuildTask with real tokenizers: every built-in task builds for the bundled
// tokenizer with the requested counts, twins swap their answers, prompts end at
// a token boundary, splits are disjoint and fixed by the seed; tokenizers that
// lack a task's candidates fail with a message that shows the split; user files.
#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "circuit/core/task.h"
#include "circuit/core/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"

namespace circuit {
namespace {

using ::circuit::testing::IsOk;
using ::circuit::testing::StatusIs;
using ::testing::HasSubstr;

const Tokenizer& Bundled() {
  static const Tokenizer* const kTokenizer = [] {
    const std::string dir = testing::SourceDir() + "/data/tokenizer/";
    absl::StatusOr<Tokenizer> tok = Tokenizer::FromFiles(dir + "encoder.json", dir + "vocab.bpe");
    if (!tok.ok()) {
      ADD_FAILURE() << tok.status();
      return new Tokenizer(*Tokenizer::Train({"x"}, 257));
    }
    return new Tokenizer(*std::move(tok));
  }();
  return *kTokenizer;
}

// Bytes only: no merges, so every multi-character candidate is several tokens.
const Tokenizer& ByteLevel() {
  static const Tokenizer* const kTokenizer = new Tokenizer(*Tokenizer::Train({"abc"}, 257));
  return *kTokenizer;
}

TaskOptions SmallOptions(uint64_t seed = 1) {
  TaskOptions o;
  o.n_ctx = 256;
  o.seed = seed;
  o.n_train = 24;
  o.n_validation = 8;
  o.n_test = 8;
  return o;
}

std::set<std::vector<int32_t>> Sequences(const std::vector<TaskExample>& split) {
  std::set<std::vector<int32_t>> out;
  for (const TaskExample& ex : split) out.insert(ex.tokens);
  return out;
}

std::vector<std::string> TaskNames() {
  std::vector<std::string> names;
  for (const TaskInfo& info : BuiltinTasks()) names.push_back(info.name);
  return names;
}

class BuiltinBuildTest : public ::testing::TestWithParam<std::string> {};

// A task whose candidates are not single tokens for the bundled tokenizer fails
// by design with a clear message; such a task is skipped here, naming the reason.
#define SKIP_IF_CANDIDATES_DO_NOT_FIT(status_or)                                        \
  if (!(status_or).ok() &&                                                            \
      (status_or).status().code() == absl::StatusCode::kFailedPrecondition &&         \
      std::string((status_or).status().message()).find("tokens for this tokenizer") != \
          std::string::npos) {                                                        \
    GTEST_SKIP() << (status_or).status().message();                                   \
  }

TEST_P(BuiltinBuildTest, BuildsForTheBundledTokenizerAsDesigned) {
  const Tokenizer& tok = Bundled();
  absl::StatusOr<TaskData> data = BuildTask(GetParam(), tok, SmallOptions());
  SKIP_IF_CANDIDATES_DO_NOT_FIT(data);
  ASSERT_THAT(data, IsOk());
  EXPECT_EQ(data->name, GetParam());
  EXPECT_TRUE(data->paired);
  EXPECT_EQ(data->train.size(), 48u);
  EXPECT_EQ(data->validation.size(), 16u);
  EXPECT_EQ(data->test.size(), 16u);
  ASSERT_EQ(data->candidates.size(), 2u);
  for (const std::vector<TaskExample>* split : {&data->train, &data->validation, &data->test}) {
    for (size_t i = 0; i < split->size(); i += 2) {
      const TaskExample& a = (*split)[i];
      const TaskExample& b = (*split)[i + 1];
      // Twins: the same two candidates with roles swapped, different prompts.
      EXPECT_EQ(a.correct, b.alternative);
      EXPECT_EQ(a.alternative, b.correct);
      EXPECT_NE(a.correct, a.alternative);
      EXPECT_NE(a.tokens, b.tokens);
      for (const TaskExample* ex : {&a, &b}) {
        ASSERT_FALSE(ex->tokens.empty());
        ASSERT_LE(ex->tokens.size(), 256u);
        // The prompt ends at a token boundary: prompt + answer re-encodes as
        // the prompt's tokens followed by the answer token.
        const std::string text = tok.Decode(ex->tokens) + tok.TokenBytes(ex->correct);
        std::vector<int32_t> expected = ex->tokens;
        expected.push_back(ex->correct);
        if (ex->tokens.size() < 256) EXPECT_EQ(tok.Encode(text), expected) << text;
      }
      // Fixed candidates are the chosen variant's tokens.
      for (const std::string& c : data->candidates) {
        if (c.empty()) continue;
        const int32_t id = *tok.SingleToken(c);
        EXPECT_TRUE(a.correct == id || a.alternative == id) << c;
      }
    }
  }
  // Disjoint splits.
  const auto train = Sequences(data->train), validation = Sequences(data->validation),
             test = Sequences(data->test);
  for (const auto& seq : test) {
    EXPECT_EQ(train.count(seq), 0u);
    EXPECT_EQ(validation.count(seq), 0u);
  }
  for (const auto& seq : validation) EXPECT_EQ(train.count(seq), 0u);
}

TEST_P(BuiltinBuildTest, FixedBySeedAndTestSplitIndependentOfTrainSize) {
  const Tokenizer& tok = Bundled();
  absl::StatusOr<TaskData> a = BuildTask(GetParam(), tok, SmallOptions(5));
  TaskOptions more = SmallOptions(5);
  more.n_train = 40;
  absl::StatusOr<TaskData> b = BuildTask(GetParam(), tok, more);
  absl::StatusOr<TaskData> c = BuildTask(GetParam(), tok, SmallOptions(6));
  SKIP_IF_CANDIDATES_DO_NOT_FIT(a);
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(Sequences(a->test), Sequences(b->test));
  EXPECT_EQ(Sequences(a->validation), Sequences(b->validation));
  EXPECT_EQ(b->train.size(), 80u);
  EXPECT_NE(Sequences(a->test), Sequences(c->test));
}

// Every built-in task is split into template families: at least three occur,
// each generated pair carries a listed one, each family builds on its own (and
// the same again for the same seed), the families partition the task's test
// split (each of its prompts is in exactly one NAME@F), and NAME@!F holds no
// prompt of NAME@F.
TEST_P(BuiltinBuildTest, TemplateFamiliesPartitionTheTask) {
  const std::string name = GetParam();
  std::vector<std::string> families;
  for (const TaskInfo& info : BuiltinTasks()) {
    if (info.name == name) families = info.families;
  }
  ASSERT_GE(families.size(), 3u);
  absl::StatusOr<std::vector<TaskPair>> pairs = GenerateTaskPairs(name, 400, 3);
  ASSERT_THAT(pairs, IsOk());
  std::set<std::string> occurring;
  for (const TaskPair& p : *pairs) {
    EXPECT_NE(std::find(families.begin(), families.end(), p.family), families.end()) << p.family;
    occurring.insert(p.family);
  }
  EXPECT_GE(occurring.size(), 3u);

  const TaskOptions o = SmallOptions();
  absl::StatusOr<TaskData> all = BuildTask(name, Bundled(), o);
  SKIP_IF_CANDIDATES_DO_NOT_FIT(all);
  ASSERT_THAT(all, IsOk());
  std::map<std::vector<int32_t>, int> owners;  // test prompt -> families whose split holds it
  for (const TaskExample& ex : all->test) owners[ex.tokens] = 0;
  // single_double_quote's non-call statements do not occur with the merged candidates.
  for (const std::string& f : occurring) {
    absl::StatusOr<TaskData> one = BuildTask(name + "@" + f, Bundled(), o);
    ASSERT_THAT(one, IsOk()) << f;
    EXPECT_EQ(one->name, name + "@" + f);
    EXPECT_EQ(one->test.size(), all->test.size()) << f;
    EXPECT_EQ(one->train.size(), all->train.size()) << f;
    absl::StatusOr<TaskData> again = BuildTask(name + "@" + f, Bundled(), o);
    ASSERT_THAT(again, IsOk());
    EXPECT_EQ(Sequences(one->train), Sequences(again->train)) << f;
    EXPECT_EQ(Sequences(one->test), Sequences(again->test)) << f;
    for (const TaskExample& ex : one->test) {
      if (auto it = owners.find(ex.tokens); it != owners.end()) ++it->second;
    }
    absl::StatusOr<TaskData> rest = BuildTask(name + "@!" + f, Bundled(), o);
    ASSERT_THAT(rest, IsOk()) << f;
    std::set<std::vector<int32_t>> held = Sequences(one->train);
    for (const auto* split : {&one->validation, &one->test}) {
      for (const auto& seq : Sequences(*split)) held.insert(seq);
    }
    for (const auto* split : {&rest->train, &rest->validation, &rest->test}) {
      for (const TaskExample& ex : *split) EXPECT_EQ(held.count(ex.tokens), 0u) << f;
    }
  }
  for (const auto& [tokens, n] : owners) EXPECT_EQ(n, 1);
}

INSTANTIATE_TEST_SUITE_P(AllTasks, BuiltinBuildTest, ::testing::ValuesIn(TaskNames()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

TEST(BuildTask, CandidatesThatAreNotSingleTokensFailWithTheirSplit) {
  EXPECT_THAT(BuildTask("set_or_string", ByteLevel(), SmallOptions()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("set_or_string: candidate \".add\" is 4 tokens for this tokenizer "
                                 "(\".\", \"a\", \"d\", \"d\")")));
  EXPECT_THAT(BuildTask("bracket_counting", ByteLevel(), SmallOptions()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       ::testing::AllOf(HasSubstr("bracket_counting: candidate \"]]\\n\" is 3 tokens"),
                                        HasSubstr("fallback"))));
  // The bare-quote fallback variant fits any byte-level tokenizer.
  absl::StatusOr<TaskData> quotes = BuildTask("single_double_quote", ByteLevel(), SmallOptions());
  ASSERT_THAT(quotes.status(), IsOk());
  EXPECT_EQ(quotes->candidates, std::vector<std::string>({"\"", "'"}));
}

TEST(BuildTask, UnknownTaskAndBadOptions) {
  EXPECT_THAT(BuildTask("nope", ByteLevel(), SmallOptions()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("circuit tasks")));
  TaskOptions bad = SmallOptions();
  bad.n_test = -1;
  EXPECT_THAT(BuildTask("single_double_quote", ByteLevel(), bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("test -1")));
}

// single_double_quote's families are the statements that take the string:
// NAME@F keeps one, NAME@!F all others, and an unknown family names the known ones.
TEST(BuildTask, TemplateFamilies) {
  std::vector<std::string> families;
  for (const TaskInfo& info : BuiltinTasks()) {
    if (info.name == "single_double_quote") families = info.families;
  }
  ASSERT_FALSE(families.empty());
  absl::StatusOr<std::vector<TaskPair>> pairs = GenerateTaskPairs("single_double_quote", 200, 1);
  ASSERT_THAT(pairs, IsOk());
  std::set<std::string> seen;
  for (const TaskPair& p : *pairs) {
    EXPECT_NE(std::find(families.begin(), families.end(), p.family), families.end()) << p.family;
    seen.insert(p.family);
    // The family is the statement that takes the string.
    if (p.family == "print") EXPECT_THAT(p.prompt, HasSubstr("print("));
    if (p.family == "raise") EXPECT_THAT(p.prompt, HasSubstr("raise ValueError("));
  }
  EXPECT_GE(seen.size(), 2u);

  TaskOptions o = SmallOptions();
  absl::StatusOr<TaskData> print = BuildTask("single_double_quote@print", Bundled(), o);
  ASSERT_THAT(print, IsOk());
  EXPECT_EQ(print->name, "single_double_quote@print");
  EXPECT_EQ(print->test.size(), 2u * o.n_test);
  absl::StatusOr<TaskData> rest = BuildTask("single_double_quote@!print", Bundled(), o);
  ASSERT_THAT(rest, IsOk());
  absl::StatusOr<TaskData> all = BuildTask("single_double_quote", Bundled(), o);
  ASSERT_THAT(all, IsOk());
  EXPECT_EQ(rest->candidates, all->candidates);
  // No prompt of one side is a prompt of the other.
  std::set<std::vector<int32_t>> held;
  for (const TaskExample& ex : print->test) held.insert(ex.tokens);
  for (const TaskExample& ex : rest->test) EXPECT_EQ(held.count(ex.tokens), 0u);

  EXPECT_THAT(BuildTask("single_double_quote@nope", Bundled(), o),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("families: print")));
  EXPECT_THAT(BuildTask("bracket_brace@print", Bundled(), o),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("families: module_assign")));
}

class UserTaskTest : public ::testing::Test {
 protected:
  std::string Write(const std::vector<std::string>& lines) {
    const std::string path = dir_.File("task" + std::to_string(++count_) + ".jsonl");
    std::ofstream out(path, std::ios::binary);
    for (const std::string& line : lines) out << line << "\n";
    return path;
  }
  // Line i: a pair of prompts with distinct contents; one-byte candidates.
  static std::string PairLine(int i) {
    return "{\"prompt\": \"x = [" + std::to_string(i) + ", 1\", \"twin\": \"x = {" +
           std::to_string(i) + ", 1\", \"correct\": \"]\", \"alternative\": \"}\"}";
  }
  testing::TempDir dir_;
  int count_ = 0;
};

TEST_F(UserTaskTest, SplitsBySeedWithExactCounts) {
  std::vector<std::string> lines;
  for (int i = 0; i < 30; ++i) lines.push_back(PairLine(i));
  const std::string path = Write(lines);
  TaskOptions o = SmallOptions();
  o.n_train = 10;
  o.n_validation = 5;
  o.n_test = 5;
  absl::StatusOr<TaskData> data = BuildTask("file:" + path, ByteLevel(), o);
  ASSERT_THAT(data, IsOk());
  EXPECT_EQ(data->name, "file:" + path);
  EXPECT_TRUE(data->paired);
  EXPECT_EQ(data->train.size(), 20u);
  EXPECT_EQ(data->validation.size(), 10u);
  EXPECT_EQ(data->test.size(), 10u);
  const int32_t bracket = *ByteLevel().SingleToken("]"), brace = *ByteLevel().SingleToken("}");
  for (size_t i = 0; i < data->test.size(); i += 2) {
    const TaskExample& prompt = data->test[i];
    const TaskExample& twin = data->test[i + 1];
    EXPECT_EQ(ByteLevel().Decode(prompt.tokens).substr(0, 5), "x = [");
    EXPECT_EQ(prompt.correct, bracket);
    EXPECT_EQ(prompt.alternative, brace);
    EXPECT_EQ(ByteLevel().Decode(twin.tokens).substr(0, 5), "x = {");
    EXPECT_EQ(twin.correct, brace);
    EXPECT_EQ(twin.alternative, bracket);
  }
  const auto train = Sequences(data->train), test = Sequences(data->test);
  for (const auto& seq : test) EXPECT_EQ(train.count(seq), 0u);
  absl::StatusOr<TaskData> again = BuildTask("file:" + path, ByteLevel(), o);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(Sequences(again->test), test);
  o.seed = 2;
  absl::StatusOr<TaskData> other = BuildTask("file:" + path, ByteLevel(), o);
  ASSERT_THAT(other, IsOk());
  EXPECT_NE(Sequences(other->test), test);
}

TEST_F(UserTaskTest, SmallFilesSplitInProportionTwinlessLinesAreSinglePrompts) {
  std::vector<std::string> lines;
  for (int i = 0; i < 8; ++i) lines.push_back(PairLine(i));
  lines.push_back("{\"prompt\": \"y = (1\", \"correct\": \")\", \"alternative\": \"]\"}");
  absl::StatusOr<TaskData> data = BuildTask("file:" + Write(lines), ByteLevel(), SmallOptions());
  ASSERT_THAT(data, IsOk());
  EXPECT_FALSE(data->paired);
  // 9 datapoints for 24/8/8 asked: 1 test, 1 validation, 7 train.
  EXPECT_EQ(data->train.size() + data->validation.size() + data->test.size(), 17u);
  EXPECT_GE(data->test.size(), 1u);
  EXPECT_GE(data->validation.size(), 1u);
}

TEST_F(UserTaskTest, TwinlessLinesAreRejectedForPruningWithTheirLine) {
  std::vector<std::string> lines;
  for (int i = 0; i < 4; ++i) lines.push_back(PairLine(i));
  lines.push_back("");
  lines.push_back("{\"prompt\": \"y = (1\", \"correct\": \")\", \"alternative\": \"]\"}");
  lines.push_back("{\"prompt\": \"y = (2\", \"correct\": \")\", \"alternative\": \"]\"}");
  const std::string path = Write(lines);
  absl::StatusOr<TaskData> data = BuildTask("file:" + path, ByteLevel(), SmallOptions());
  ASSERT_THAT(data, IsOk());
  EXPECT_THAT(RequireTwins(*data),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(path + ":6: no \"twin\"")));
  EXPECT_THAT(RequireTwins("file:" + path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(path + ":6: no \"twin\"")));

  lines.resize(4);
  const std::string paired = Write(lines);
  absl::StatusOr<TaskData> good = BuildTask("file:" + paired, ByteLevel(), SmallOptions());
  ASSERT_THAT(good, IsOk());
  EXPECT_THAT(RequireTwins(*good), IsOk());
  EXPECT_THAT(RequireTwins("file:" + paired), IsOk());
  EXPECT_THAT(RequireTwins("single_double_quote"), IsOk());
  // A file that cannot be read is BuildTask's error, not this one.
  EXPECT_THAT(RequireTwins("file:" + path + ".missing"), IsOk());
}

TEST_F(UserTaskTest, LeftTruncatesToTheContext) {
  const std::string path = Write({"{\"prompt\": \"abcdefghijkl\", \"twin\": \"abcdefghijkL\", "
                                  "\"correct\": \"x\", \"alternative\": \"y\"}"});
  TaskOptions o = SmallOptions();
  o.n_ctx = 5;
  absl::StatusOr<TaskData> data = BuildTask("file:" + path, ByteLevel(), o);
  ASSERT_THAT(data, IsOk());
  ASSERT_EQ(data->train.size(), 2u);
  EXPECT_EQ(ByteLevel().Decode(data->train[0].tokens), "hijkl");
  EXPECT_EQ(ByteLevel().Decode(data->train[1].tokens), "hijkL");
  // Twins that differ only before the kept context are an error naming the line.
  const std::string same = Write({"{\"prompt\": \"Abcdefgh\", \"twin\": \"abcdefgh\", "
                                  "\"correct\": \"x\", \"alternative\": \"y\"}"});
  EXPECT_THAT(BuildTask("file:" + same, ByteLevel(), o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(same + ":1: prompt and twin are the same after left-truncation")));
}

TEST_F(UserTaskTest, MultiTokenCandidateNamesTheLine) {
  const std::string path = Write({PairLine(0), PairLine(1),
                                  "{\"prompt\": \"z = [[1\", \"correct\": \"]]\\n\", "
                                  "\"alternative\": \"]\\n\"}"});
  EXPECT_THAT(BuildTask("file:" + path, ByteLevel(), SmallOptions()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(path + ":3: candidate \"]]\\n\" is 3 tokens for this tokenizer "
                                        "(\"]\", \"]\", \"\\n\")")));
}

}  // namespace
}  // namespace circuit
