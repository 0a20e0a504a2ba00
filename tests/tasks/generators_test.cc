// Built-in task generators at the text level: the registry, determinism by
// seed, variety of the prompts, and for every task that each pair's twins
// differ exactly as the task says and the answers follow that difference.
#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "circuit/core/task.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace circuit {
namespace {

using ::circuit::testing::IsOk;
using ::circuit::testing::StatusIs;
using ::testing::HasSubstr;

constexpr int kPairs = 300;

std::vector<std::string> TaskNames() {
  std::vector<std::string> names;
  for (const TaskInfo& info : BuiltinTasks()) names.push_back(info.name);
  return names;
}

// The part after the longest common prefix.
std::pair<std::string, std::string> Tails(const std::string& a, const std::string& b) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return {a.substr(i), b.substr(i)};
}

std::string LastLine(const std::string& s) {
  const size_t nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

// Orders a pair so that `first` is the prompt whose answer is `answer`.
struct Oriented {
  std::string first, second;  // prompts: first answers `answer`, second the other
  std::string answer, other;
};
Oriented Orient(const TaskPair& p, const std::string& answer) {
  if (p.correct == answer) return {p.prompt, p.twin, p.correct, p.alternative};
  return {p.twin, p.prompt, p.alternative, p.correct};
}

// The twin rule of each task: how the twins differ and which answer goes with
// which. Fails the test with the pair's texts on a violation.
using TwinRule = std::function<void(const TaskPair&)>;

std::map<std::string, TwinRule> TwinRules() {
  std::map<std::string, TwinRule> rules;
  rules["single_double_quote"] = [](const TaskPair& p) {
    ASSERT_EQ(p.prompt.size(), p.twin.size());
    const auto [a, b] = Tails(p.prompt, p.twin);
    EXPECT_EQ(a.substr(1), b.substr(1)) << "twins differ in more than one character";
    EXPECT_EQ(a.substr(0, 1), p.correct.substr(0, 1));  // the opening quote is the closing one
    EXPECT_EQ(b.substr(0, 1), p.alternative.substr(0, 1));
    EXPECT_THAT(std::vector<std::string>({p.correct.substr(0, 1), p.alternative.substr(0, 1)}),
                ::testing::UnorderedElementsAre("\"", "'"));
    EXPECT_EQ(p.correct.substr(1), p.alternative.substr(1));  // the same statement ending
    EXPECT_THAT(p.correct.substr(1), ::testing::AnyOf(")\n", "\n", ":\n"));
    EXPECT_EQ(a.find_first_of("\"'", 1), std::string::npos) << "a quote inside the string";
  };
  rules["bracket_counting"] = [](const TaskPair& p) {
    const Oriented o = Orient(p, "]]\n");
    EXPECT_EQ(o.other, "]\n");
    EXPECT_EQ(absl::StrReplaceAll(o.first, {{"[", ""}, {"]", ""}}),
              absl::StrReplaceAll(o.second, {{"[", ""}, {"]", ""}}));
    const std::string nested = LastLine(o.first), flat = LastLine(o.second);
    EXPECT_THAT(nested, HasSubstr(" [["));
    EXPECT_EQ(std::count(nested.begin(), nested.end(), '['),
              std::count(nested.begin(), nested.end(), ']') + 2);
    EXPECT_EQ(std::count(flat.begin(), flat.end(), '['), 1);
    EXPECT_EQ(std::count(flat.begin(), flat.end(), ']'), 0);
  };
  rules["bracket_brace"] = [](const TaskPair& p) {
    const Oriented o = Orient(p, "]\n");
    EXPECT_EQ(o.other, "}\n");
    const auto [list, set] = Tails(o.first, o.second);
    EXPECT_EQ(list.substr(0, 1), "[");
    EXPECT_EQ(set.substr(0, 1), "{");
    EXPECT_EQ(list.substr(1), set.substr(1));
    EXPECT_EQ(list.find_first_of("[]{}", 1), std::string::npos);
  };
  auto set_or_string = [](const TaskPair& p, bool fixed_name) {
    const Oriented o = Orient(p, ".add");
    EXPECT_EQ(o.other, " +=");
    const std::vector<std::string> a = absl::StrSplit(o.first, '\n');
    const std::vector<std::string> b = absl::StrSplit(o.second, '\n');
    ASSERT_EQ(a.size(), b.size());
    int differing = 0;
    std::string var;
    for (size_t i = 0; i < a.size(); ++i) {
      if (a[i] == b[i]) continue;
      ++differing;
      ASSERT_TRUE(absl::EndsWith(a[i], " = set()")) << a[i];
      var = std::string(absl::StripPrefix(a[i].substr(0, a[i].size() - 8), "    "));
      EXPECT_TRUE(b[i] == "    " + var + " = \"\"" || b[i] == "    " + var + " = ''") << b[i];
    }
    EXPECT_EQ(differing, 1);
    EXPECT_EQ(a.back(), "        " + var);  // the loop extends the initialised variable
    if (fixed_name) EXPECT_EQ(var, "current");
  };
  rules["set_or_string"] = [=](const TaskPair& p) { set_or_string(p, false); };
  rules["set_or_string_fixedvarname"] = [=](const TaskPair& p) { set_or_string(p, true); };
  rules["fstring_brace"] = [](const TaskPair& p) {
    const Oriented o = Orient(p, " {");
    const auto [f, plain] = Tails(o.first, o.second);
    ASSERT_FALSE(f.empty());
    EXPECT_EQ(f[0], 'f');
    EXPECT_EQ(f.substr(1), plain);
    EXPECT_EQ(o.other, " " + plain.substr(0, 1));  // the plain string closes with its quote
  };
  rules["var_swap"] = [](const TaskPair& p) {
    for (const auto& [prompt, answer, other] :
         {std::make_tuple(p.prompt, p.correct, p.alternative),
          std::make_tuple(p.twin, p.alternative, p.correct)}) {
      const std::string a = answer.substr(1), b = other.substr(1);
      EXPECT_TRUE(absl::EndsWith(LastLine(prompt), a + ", " + b + " = " + b + ",")) << prompt;
    }
  };
  rules["var_if"] = [](const TaskPair& p) {
    for (const auto& [prompt, answer, other] :
         {std::make_tuple(p.prompt, p.correct, p.alternative),
          std::make_tuple(p.twin, p.alternative, p.correct)}) {
      ASSERT_TRUE(absl::EndsWith(prompt, "\n    if"));
      const std::vector<std::string> lines = absl::StrSplit(prompt, '\n');
      const std::string& assign = lines[lines.size() - 2];
      EXPECT_TRUE(absl::StartsWith(assign, "    " + answer.substr(1) + " = ")) << assign;
      EXPECT_THAT(assign, HasSubstr("(" + other.substr(1)));
    }
  };
  rules["class_init"] = [](const TaskPair& p) {
    EXPECT_EQ(LastLine(p.prompt), "        self." + p.correct.substr(1) + " =");
    EXPECT_EQ(LastLine(p.twin), "        self." + p.alternative.substr(1) + " =");
    EXPECT_THAT(p.prompt, HasSubstr("def __init__(self, "));
    const auto [a, b] = Tails(p.prompt, p.twin);
    EXPECT_EQ(a.find('\n'), std::string::npos);  // only the last line differs
  };
  auto keyword_rule = [](std::string first_end, std::string second_end, std::string first_answer,
                         std::string second_answer) {
    return [=](const TaskPair& p) {
      const Oriented o = Orient(p, first_answer);
      if (!second_answer.empty()) EXPECT_EQ(o.other, second_answer);
      EXPECT_TRUE(absl::EndsWith(o.first, first_end)) << o.first;
      EXPECT_TRUE(absl::EndsWith(o.second, second_end)) << o.second;
      EXPECT_EQ(o.first.substr(0, o.first.size() - first_end.size()),
                o.second.substr(0, o.second.size() - second_end.size()));
    };
  };
  rules["while_return_true"] = keyword_rule("while True", "return True", ":\n", "\n");
  rules["else_elif"] = [=](const TaskPair& p) {
    keyword_rule("else", "elif", ":\n", "")(p);
    const Oriented o = Orient(p, ":\n");
    EXPECT_THAT(o.first, HasSubstr("    if" + o.other + " "));  // elif tests the same variable
  };
  rules["for_while"] = [=](const TaskPair& p) {
    const Oriented o = Orient(p, " in");
    EXPECT_EQ(o.other, " <");
    const auto [a, b] = Tails(o.first, o.second);
    EXPECT_EQ(a.substr(0, 3), "for");
    EXPECT_EQ(b.substr(0, 5), "while");
    EXPECT_EQ(a.substr(3), b.substr(5));
  };
  rules["if_equals"] = [](const TaskPair& p) {
    const Oriented o = Orient(p, " ==");
    EXPECT_EQ(o.other, " =");
    const std::string a = LastLine(o.first), b = LastLine(o.second);
    const size_t indent = b.find_first_not_of(' ');
    EXPECT_EQ(a, b.substr(0, indent) + "if " + b.substr(indent));
    EXPECT_EQ(o.first.substr(0, o.first.size() - a.size()),
              o.second.substr(0, o.second.size() - b.size()));
  };
  rules["if_ternary"] = [](const TaskPair& p) {
    const Oriented o = Orient(p, " else");
    EXPECT_EQ(o.other, ":\n");
    const std::string inline_line = LastLine(o.first);
    EXPECT_THAT(inline_line, HasSubstr(" = "));
    EXPECT_THAT(inline_line, HasSubstr(" if "));
    // The statement twin is the same text with the line broken before `if`.
    const size_t at = o.first.rfind(" if ");
    EXPECT_EQ(o.second, o.first.substr(0, at) + "\n" +
                            std::string(inline_line.find_first_not_of(' '), ' ') +
                            o.first.substr(at + 1));
  };
  rules["indent_for"] = [](const TaskPair& p) {
    const Oriented o = Orient(p, "       ");
    EXPECT_EQ(o.other, "   ");
    EXPECT_TRUE(absl::EndsWith(o.first, ":\n"));
    EXPECT_TRUE(absl::StartsWith(LastLine(o.first.substr(0, o.first.size() - 1)), "    for "));
    EXPECT_FALSE(absl::EndsWith(o.second, ":\n"));
    const auto [a, b] = Tails(o.first, o.second);
    EXPECT_EQ(a.find('\n'), a.size() - 1);  // only the last line differs
  };
  rules["lambda_func"] = [](const TaskPair& p) {
    const Oriented o = Orient(p, ":");
    EXPECT_EQ(o.other, "):\n");
    const std::string lam = LastLine(o.first), def = LastLine(o.second);
    const size_t eq = lam.find(" = lambda ");
    ASSERT_NE(eq, std::string::npos) << lam;
    const std::string pad(lam.find_first_not_of(' '), ' ');
    EXPECT_EQ(def, pad + "def " + lam.substr(pad.size(), eq - pad.size()) + "(" +
                       lam.substr(eq + 10));
  };
  rules["enumerate_range"] = [](const TaskPair& p) {
    const Oriented o = Orient(p, " enumerate");
    EXPECT_EQ(o.other, " range");
    EXPECT_TRUE(absl::EndsWith(o.first, " in"));
    const std::string two = LastLine(o.first), one = LastLine(o.second);
    EXPECT_EQ(std::count(two.begin(), two.end(), ','), 1) << two;
    EXPECT_EQ(std::count(one.begin(), one.end(), ','), 0) << one;
  };
  return rules;
}

TEST(TaskRegistry, ListsTheConfirmedTasksAndTenMoreSortedWithDescriptions) {
  const std::vector<TaskInfo> tasks = BuiltinTasks();
  EXPECT_GE(tasks.size(), 15u);
  std::vector<std::string> names = TaskNames();
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  for (const char* confirmed : {"single_double_quote", "bracket_counting", "set_or_string",
                                "set_or_string_fixedvarname", "while_return_true"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), confirmed), names.end()) << confirmed;
  }
  for (const TaskInfo& info : tasks) {
    EXPECT_FALSE(info.description.empty()) << info.name;
    EXPECT_EQ(info.description.find('\n'), std::string::npos) << info.name;
    ASSERT_FALSE(info.candidate_variants.empty()) << info.name;
    for (const auto& variant : info.candidate_variants) EXPECT_EQ(variant.size(), 2u) << info.name;
  }
}

TEST(TaskRegistry, EveryTaskHasATwinRuleInThisTest) {
  const auto rules = TwinRules();
  for (const std::string& name : TaskNames()) EXPECT_TRUE(rules.count(name)) << name;
}

TEST(TaskRegistry, UnknownTaskSaysHowToSeeTheNames) {
  EXPECT_THAT(GenerateTaskPairs("no_such_task", 3, 0),
              StatusIs(absl::StatusCode::kNotFound,
                       ::testing::AllOf(HasSubstr("no_such_task"), HasSubstr("circuit tasks"))));
}

class GeneratorTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GeneratorTest, TwinsDifferAsTheTaskSays) {
  absl::StatusOr<std::vector<TaskPair>> pairs = GenerateTaskPairs(GetParam(), kPairs, 7);
  ASSERT_THAT(pairs, IsOk());
  ASSERT_EQ(pairs->size(), static_cast<size_t>(kPairs));
  const TwinRule rule = TwinRules().at(GetParam());
  int prompt_is_first_variant = 0;
  for (const TaskPair& p : *pairs) {
    SCOPED_TRACE("prompt:\n" + p.prompt + "\n---- twin:\n" + p.twin);
    ASSERT_NE(p.prompt, p.twin);
    ASSERT_NE(p.correct, p.alternative);
    ASSERT_FALSE(p.correct.empty());
    ASSERT_FALSE(p.alternative.empty());
    rule(p);
    if (::testing::Test::HasFailure()) return;  // one readable failure is enough
    prompt_is_first_variant += p.correct < p.alternative;
  }
  // Which twin comes first is random, so prompt/twin order carries no answer.
  EXPECT_GT(prompt_is_first_variant, kPairs / 4);
  EXPECT_LT(prompt_is_first_variant, kPairs * 3 / 4);
}

TEST_P(GeneratorTest, DeterministicBySeed) {
  auto a = GenerateTaskPairs(GetParam(), 20, 11);
  auto b = GenerateTaskPairs(GetParam(), 20, 11);
  auto c = GenerateTaskPairs(GetParam(), 20, 12);
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(c, IsOk());
  for (size_t i = 0; i < a->size(); ++i) {
    EXPECT_EQ((*a)[i].prompt, (*b)[i].prompt);
    EXPECT_EQ((*a)[i].twin, (*b)[i].twin);
    EXPECT_EQ((*a)[i].correct, (*b)[i].correct);
  }
  int same = 0;
  for (size_t i = 0; i < a->size(); ++i) same += (*a)[i].prompt == (*c)[i].prompt;
  EXPECT_LT(same, 3);
}

TEST_P(GeneratorTest, PromptsAreVaried) {
  auto pairs = GenerateTaskPairs(GetParam(), kPairs, 3);
  ASSERT_THAT(pairs, IsOk());
  std::set<std::string> prompts, endings;
  size_t shortest = SIZE_MAX, longest = 0;
  for (const TaskPair& p : *pairs) {
    prompts.insert(p.prompt);
    endings.insert(p.prompt.substr(p.prompt.size() - std::min<size_t>(p.prompt.size(), 60)));
    shortest = std::min(shortest, p.prompt.size());
    longest = std::max(longest, p.prompt.size());
  }
  EXPECT_GE(prompts.size(), kPairs * 95 / 100);  // hardly any repeats
  EXPECT_GE(endings.size(), kPairs / 2u);        // not one fixed template near the end
  EXPECT_GE(longest, 3 * shortest) << "lengths " << shortest << ".." << longest;
  EXPECT_LE(longest, 1500u);  // stays within a 256-token context most of the time
}

INSTANTIATE_TEST_SUITE_P(AllTasks, GeneratorTest, ::testing::ValuesIn(TaskNames()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace circuit
