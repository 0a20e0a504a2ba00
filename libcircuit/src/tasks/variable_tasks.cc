// Tasks about tracking variables: a variable's type (set_or_string,
// set_or_string_fixedvarname: PAPER.md §3.2 rows 3-4), the swap idiom
// (var_swap, row 14), the variable just assigned (var_if, row 15), and which
// parameter an attribute copies in __init__ (class_init, row 20).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "task_spec.h"

namespace circuit::internal {
namespace {

template <typename Pair>
void MaybeSwapRoles(TextRng& rng, Pair* p) {
  if (rng.Chance(0.5)) {
    std::swap(p->prompt, p->twin);
    std::swap(p->correct, p->alternative);
  }
}

// set_or_string's template families, by the accumulator initialised before
// `var`: none, a set() or a string.
const std::vector<std::string> kAccumulatorFamilies = {"alone", "after_set", "after_string"};

// A loop that accumulates into `var`, initialised as set() or "": the twins
// differ only in the initialiser. Sometimes another accumulator (either type)
// comes first, so the answer depends on which variable the loop extends.
TaskPair SetOrString(TextRng& rng, const std::vector<std::string>& fixed, const std::string& var) {
  std::string items = Identifier(rng);
  while (items == var) items = Identifier(rng);
  std::string item = ShortName(rng);
  while (item == var || item == items) item = ShortName(rng);
  std::string text = Filler(rng) + FunctionHeader(rng, Identifier(rng), {items});
  text += BodyLines(rng, 4, 2, FillerOptions{}, {var, item, items});
  std::string other;
  const bool distractor = rng.Chance(0.5), other_is_set = rng.Chance(0.5);
  const std::string family = !distractor ? "alone" : other_is_set ? "after_set" : "after_string";
  if (distractor) {
    do other = Identifier(rng); while (other == var || other == items);
  }
  const std::string q = Quote(rng);
  auto program = [&](bool is_set) {
    std::string s = text;
    if (distractor) s += absl::StrCat("    ", other, " = ", other_is_set ? "set()" : q + q, "\n");
    s += absl::StrCat("    ", var, " = ", is_set ? "set()" : q + q, "\n");
    s += BodyLines(rng, 4, 1, FillerOptions{}, {var, item, items});
    s += absl::StrCat("    for ", item, " in ", items, ":\n");
    if (rng.Chance(0.4)) s += absl::StrCat("        if not ", item, ":\n            continue\n");
    return s + "        " + var;
  };
  // The same random draws for both twins: BodyLines and Chance above are called
  // in `program`, so run it on copies of the generator.
  TextRng fork = rng;
  TaskPair p;
  p.prompt = program(/*is_set=*/true);
  rng = fork;
  p.twin = program(/*is_set=*/false);
  p.family = family;
  p.correct = fixed[0];
  p.alternative = fixed[1];
  MaybeSwapRoles(rng, &p);
  return p;
}

// `a, b = b, a`: after `a, b = b,` comes ` a`; the twin swaps the left side.
TaskPair VarSwap(TextRng& rng, const std::vector<std::string>&) {
  const auto [a, b] = TwoShortNames(rng);
  std::string text = Filler(rng) + FunctionHeader(rng, Identifier(rng), {a, b});
  const std::string lines = BodyLines(rng, 4, 3, FillerOptions{}, {a, b});
  text += lines;
  std::string pad = "    ", family = lines.empty() ? "first_line" : "after_lines";
  if (rng.Chance(0.5)) {
    family = "in_if";
    text += absl::StrCat("    if ", rng.Chance(0.5) ? a : b, rng.Chance(0.5) ? " > " : " < ",
                         rng.Chance(0.5) ? (rng.Chance(0.5) ? b : a) : SmallNumber(rng), ":\n");
    pad = "        ";
  }
  TaskPair p;
  p.prompt = absl::StrCat(text, pad, a, ", ", b, " = ", b, ",");
  p.twin = absl::StrCat(text, pad, b, ", ", a, " = ", a, ",");
  p.correct = " " + a;
  p.alternative = " " + b;
  p.family = family;
  MaybeSwapRoles(rng, &p);
  return p;
}

// After `a = f(b)` the next `if` tests ` a`; the twin assigns `b = f(a)`.
TaskPair VarIf(TextRng& rng, const std::vector<std::string>&) {
  const auto [a, b] = TwoShortNames(rng);
  std::string text = Filler(rng) + FunctionHeader(rng, Identifier(rng), {a, b});
  text += BodyLines(rng, 4, 3, FillerOptions{}, {a, b});
  const std::string call = rng.Chance(0.5) ? absl::StrCat(Identifier(rng), "(") : absl::StrCat(
      rng.Chance(0.5) ? "self." : "", Identifier(rng), "(");
  const std::string tail = rng.Chance(0.5) ? ")" : absl::StrCat(", ", SmallNumber(rng), ")");
  const std::string family = call.rfind("self.", 0) == 0 ? "method"
                             : tail == ")"                ? "call"
                                                          : "call_two_args";
  TaskPair p;
  p.prompt = absl::StrCat(text, "    ", a, " = ", call, b, tail, "\n    if");
  p.twin = absl::StrCat(text, "    ", b, " = ", call, a, tail, "\n    if");
  p.family = family;
  p.correct = " " + a;
  p.alternative = " " + b;
  MaybeSwapRoles(rng, &p);
  return p;
}

// In __init__(self, a, b, ...), `self.a =` is followed by ` a`; the twin
// assigns `self.b =`. Other parameters may be stored first.
TaskPair ClassInit(TextRng& rng, const std::vector<std::string>&) {
  const auto [a, b] = TwoShortNames(rng);
  std::string c = ShortName(rng);
  while (c == a || c == b) c = ShortName(rng);
  std::vector<std::string> params = {a, b, c};
  for (int i = 2; i > 0; --i) std::swap(params[i], params[rng.Below(i + 1)]);
  std::string text = Filler(rng) + absl::StrCat("class ", ClassName(rng), ":\n");
  if (rng.Chance(0.4)) text += absl::StrCat("    \"\"\"", Words(rng, 2, 6), ".\"\"\"\n\n");
  text += absl::StrCat("    def __init__(self, ", params[0], ", ", params[1], ", ", params[2], "):\n");
  const bool stored = rng.Chance(0.6);
  if (stored) text += absl::StrCat("        self.", c, " = ", c, "\n");
  const bool defaulted = rng.Chance(0.3);
  if (defaulted) text += absl::StrCat("        self.", Identifier(rng), " = None\n");
  TaskPair p;
  p.family = defaulted ? "after_none" : stored ? "after_param" : "first_line";
  p.prompt = absl::StrCat(text, "        self.", a, " =");
  p.twin = absl::StrCat(text, "        self.", b, " =");
  p.correct = " " + a;
  p.alternative = " " + b;
  MaybeSwapRoles(rng, &p);
  return p;
}

}  // namespace

void AddVariableTasks(std::vector<TaskSpec>* specs) {
  specs->push_back({"set_or_string",
                    "a variable initialised as set() or \"\": extend it with .add vs +=",
                    {{".add", " +="}},
                    [](TextRng& rng, const std::vector<std::string>& fixed) {
                      std::string var = Identifier(rng);
                      return SetOrString(rng, fixed, var);
                    },
                    kAccumulatorFamilies});
  specs->push_back({"set_or_string_fixedvarname",
                    "set_or_string with the variable always named current",
                    {{".add", " +="}},
                    [](TextRng& rng, const std::vector<std::string>& fixed) {
                      return SetOrString(rng, fixed, "current");
                    },
                    kAccumulatorFamilies});
  specs->push_back({"var_swap", "the swap idiom: after `a, b = b,` comes a (names vary)", {{"", ""}},
                    VarSwap, {"first_line", "after_lines", "in_if"}});
  specs->push_back({"var_if", "after `a = f(b)` the next if tests a, not b (names vary)", {{"", ""}},
                    VarIf, {"call", "call_two_args", "method"}});
  specs->push_back({"class_init",
                    "in __init__, `self.a =` takes the parameter a, not b (names vary)",
                    {{"", ""}},
                    ClassInit,
                    {"first_line", "after_param", "after_none"}});
}

}  // namespace circuit::internal
