// Tasks about statements and control flow: while_return_true (PAPER.md §3.2
// row 5), for_while (8), else_elif (9), if_ternary (10), if_equals (11) and
// indent_for (16). Each prompt is the inside of a function; the twins differ in
// the keyword (or line break) the task is about.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "task_spec.h"

namespace circuit::internal {
namespace {

void MaybeSwapRoles(TextRng& rng, TaskPair* p) {
  if (rng.Chance(0.5)) {
    std::swap(p->prompt, p->twin);
    std::swap(p->correct, p->alternative);
  }
}

// Where FunctionStart put the task's line: the template family of the
// statement-level tasks, read off the draws (no draw of its own).
const std::vector<std::string> kPlacementFamilies = {"first_line", "after_lines", "in_if"};

// Filler, a function taking `arg`, a few unrelated lines; sometimes an `if`
// that indents the task's line one level deeper (*pad says how deep).
// *placement: "in_if" under that `if`, else "first_line" when no unrelated
// line follows the header (and docstring), else "after_lines".
std::string FunctionStart(TextRng& rng, const std::string& arg, std::string* pad,
                          bool allow_nesting = true, std::string* placement = nullptr) {
  std::string text = Filler(rng) + FunctionHeader(rng, Identifier(rng), {arg});
  const std::string lines = BodyLines(rng, 4, 3, FillerOptions{}, {arg});
  text += lines;
  *pad = "    ";
  std::string where = lines.empty() ? "first_line" : "after_lines";
  if (allow_nesting && rng.Chance(0.3)) {
    text += absl::StrCat("    if ", arg, rng.Chance(0.5) ? " is not None" : "", ":\n");
    *pad = "        ";
    where = "in_if";
  }
  if (placement != nullptr) *placement = where;
  return text;
}

// if_ternary's template families, by the form of the condition.
const std::vector<std::string> kConditionFamilies = {"name", "not", "is_none", "compare",
                                                     "attribute"};

// A condition on `var`; *family is its form (kConditionFamilies).
std::string Condition(TextRng& rng, const std::string& var, std::string* family) {
  const int kind = rng.Below(5);
  *family = kConditionFamilies[kind];
  switch (kind) {
    case 0: return var;
    case 1: return "not " + var;
    case 2: return var + " is None";
    case 3: return absl::StrCat(var, rng.Chance(0.5) ? " > " : " <= ", SmallNumber(rng));
    default: return absl::StrCat(var, ".", Identifier(rng));
  }
}

// fixed = {":\n", "\n"} (or {":", "\n"}): `while True` opens a block, `return True` ends a line.
TaskPair WhileReturnTrue(TextRng& rng, const std::vector<std::string>& fixed) {
  std::string pad, placement;
  const std::string text = FunctionStart(rng, ShortName(rng), &pad, true, &placement);
  TaskPair p{text + pad + "while True", text + pad + "return True", fixed[0], fixed[1]};
  p.family = placement;
  MaybeSwapRoles(rng, &p);
  return p;
}

// fixed = {" in", " <"}: `for i` continues with ` in`, `while i` with ` <`.
TaskPair ForWhile(TextRng& rng, const std::vector<std::string>& fixed) {
  const auto [arg, index] = TwoShortNames(rng);
  std::string pad;
  std::string placement;
  std::string text = FunctionStart(rng, arg, &pad, /*allow_nesting=*/false, &placement);
  const bool initialised = rng.Chance(0.5);
  if (initialised) text += absl::StrCat("    ", index, " = 0\n");
  TaskPair p{absl::StrCat(text, pad, "for ", index), absl::StrCat(text, pad, "while ", index),
             fixed[0], fixed[1]};
  p.family = initialised ? "after_init" : placement;
  MaybeSwapRoles(rng, &p);
  return p;
}

// fixed = {":\n", ""}: `else` is followed by the colon, `elif` by a condition
// on the variable the `if` tested (` x`, varying).
TaskPair ElseElif(TextRng& rng, const std::vector<std::string>& fixed) {
  const auto [arg, var] = TwoShortNames(rng);
  std::string pad;
  std::string text = FunctionStart(rng, arg, &pad, /*allow_nesting=*/false);
  text += absl::StrCat("    ", var, " = ", Identifier(rng), "(", arg, ")\n");
  text += absl::StrCat("    if ", var, rng.Chance(0.5) ? " > " : " == ", SmallNumber(rng), ":\n");
  const bool returns = rng.Chance(0.5);
  text += absl::StrCat("        ", returns ? "return " + var : arg + " = " + var, "\n");
  const bool chained = rng.Chance(0.3);
  if (chained) {
    text += absl::StrCat("    elif ", var, " < ", SmallNumber(rng), ":\n        ", arg, " = ",
                         SmallNumber(rng), "\n");
  }
  TaskPair p{text + "    else", text + "    elif", fixed[0], " " + var};
  p.family = chained ? "after_elif" : returns ? "if_return" : "if_assign";
  MaybeSwapRoles(rng, &p);
  return p;
}

// fixed = {" ==", " ="}: after `if x` a comparison, after `x` at the start of a
// statement an assignment.
TaskPair IfEquals(TextRng& rng, const std::vector<std::string>& fixed) {
  const auto [arg, var] = TwoShortNames(rng);
  std::string pad, placement;
  std::string text = FunctionStart(rng, arg, &pad, true, &placement);
  const bool assigned = rng.Chance(0.6);
  if (assigned) text += absl::StrCat(pad, var, " = ", Identifier(rng), "(", arg, ")\n");
  TaskPair p{absl::StrCat(text, pad, "if ", var), absl::StrCat(text, pad, var), fixed[0], fixed[1]};
  p.family = placement == "in_if" ? placement : assigned ? "after_assign" : "unassigned";
  MaybeSwapRoles(rng, &p);
  return p;
}

// fixed = {" else", ":\n"}: `y = v if c` is an inline ternary that needs ` else`;
// the twin breaks the line before `if`, making it a statement that needs the colon.
TaskPair IfTernary(TextRng& rng, const std::vector<std::string>& fixed) {
  const auto [arg, target] = TwoShortNames(rng);
  std::string pad;
  const std::string text = FunctionStart(rng, arg, &pad);
  const std::string assign = absl::StrCat(pad, target, " = ", SimpleValue(rng));
  std::string family;
  const std::string condition = Condition(rng, arg, &family);
  TaskPair p{absl::StrCat(text, assign, " if ", condition),
             absl::StrCat(text, assign, "\n", pad, "if ", condition), fixed[0], fixed[1]};
  p.family = family;
  MaybeSwapRoles(rng, &p);
  return p;
}

// indent_for's template families, by what the loop iterates over.
const std::vector<std::string> kCollectionFamilies = {"name", "range", "dict_view", "sorted"};

// fixed = {7 spaces, 3 spaces}: after `for ...:` the body is indented one level
// (8 spaces; the tokenizer splits "\n" + 8 spaces + "x" as "\n", 7 spaces, " x");
// after the twin's plain statement the next line stays at 4.
TaskPair IndentFor(TextRng& rng, const std::vector<std::string>& fixed) {
  const auto [arg, item] = TwoShortNames(rng);
  std::string pad;
  const std::string text = FunctionStart(rng, arg, &pad, /*allow_nesting=*/false);
  std::string collection;
  const int kind = rng.Below(4);
  switch (kind) {
    case 0: collection = arg; break;
    case 1: collection = absl::StrCat("range(", SmallNumber(rng), ")"); break;
    case 2: collection = absl::StrCat(arg, ".", rng.Chance(0.5) ? "items()" : "values()"); break;
    default: collection = absl::StrCat("sorted(", arg, ")"); break;
  }
  const std::string flag = Identifier(rng);
  TaskPair p{absl::StrCat(text, "    for ", item, " in ", collection, ":\n"),
             absl::StrCat(text, "    ", flag, " = ", item, " in ", collection, "\n"), fixed[0],
             fixed[1]};
  p.family = kCollectionFamilies[kind];
  MaybeSwapRoles(rng, &p);
  return p;
}

}  // namespace

void AddControlTasks(std::vector<TaskSpec>* specs) {
  specs->push_back({"while_return_true", "`while True` opens a block (:) vs `return True` ends the line",
                    {{":\n", "\n"}, {":", "\n"}}, WhileReturnTrue, kPlacementFamilies});
  specs->push_back({"for_while", "loop header: `for i` continues with in, `while i` with <",
                    {{" in", " <"}}, ForWhile,
                    {"first_line", "after_lines", "after_init"}});
  specs->push_back({"else_elif", "`else` takes the colon, `elif` a condition on the tested variable",
                    {{":\n", ""}, {":", ""}}, ElseElif,
                    {"if_return", "if_assign", "after_elif"}});
  specs->push_back({"if_equals", "`if x` compares (==), a statement `x` assigns (=)",
                    {{" ==", " ="}}, IfEquals,
                    {"unassigned", "after_assign", "in_if"}});
  specs->push_back({"if_ternary", "inline `v if c` needs else, a statement `if c` needs the colon",
                    {{" else", ":\n"}, {" else", ":"}}, IfTernary,
                    kConditionFamilies});
  specs->push_back({"indent_for", "the line after `for ...:` is indented one level deeper",
                    {{"       ", "   "}}, IndentFor,
                    kCollectionFamilies});
}

}  // namespace circuit::internal
