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

// Filler, a function taking `arg`, a few unrelated lines; sometimes an `if`
// that indents the task's line one level deeper (*pad says how deep).
std::string FunctionStart(TextRng& rng, const std::string& arg, std::string* pad,
                          bool allow_nesting = true) {
  std::string text = Filler(rng) + FunctionHeader(rng, Identifier(rng), {arg});
  text += BodyLines(rng, 4, 3, FillerOptions{}, {arg});
  *pad = "    ";
  if (allow_nesting && rng.Chance(0.3)) {
    text += absl::StrCat("    if ", arg, rng.Chance(0.5) ? " is not None" : "", ":\n");
    *pad = "        ";
  }
  return text;
}

std::string Condition(TextRng& rng, const std::string& var) {
  switch (rng.Below(5)) {
    case 0: return var;
    case 1: return "not " + var;
    case 2: return var + " is None";
    case 3: return absl::StrCat(var, rng.Chance(0.5) ? " > " : " <= ", SmallNumber(rng));
    default: return absl::StrCat(var, ".", Identifier(rng));
  }
}

// fixed = {":\n", "\n"} (or {":", "\n"}): `while True` opens a block, `return True` ends a line.
TaskPair WhileReturnTrue(TextRng& rng, const std::vector<std::string>& fixed) {
  std::string pad;
  const std::string text = FunctionStart(rng, ShortName(rng), &pad);
  TaskPair p{text + pad + "while True", text + pad + "return True", fixed[0], fixed[1]};
  MaybeSwapRoles(rng, &p);
  return p;
}

// fixed = {" in", " <"}: `for i` continues with ` in`, `while i` with ` <`.
TaskPair ForWhile(TextRng& rng, const std::vector<std::string>& fixed) {
  const auto [arg, index] = TwoShortNames(rng);
  std::string pad;
  std::string text = FunctionStart(rng, arg, &pad, /*allow_nesting=*/false);
  if (rng.Chance(0.5)) text += absl::StrCat("    ", index, " = 0\n");
  TaskPair p{absl::StrCat(text, pad, "for ", index), absl::StrCat(text, pad, "while ", index),
             fixed[0], fixed[1]};
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
  text += absl::StrCat("        ", rng.Chance(0.5) ? "return " + var : arg + " = " + var, "\n");
  if (rng.Chance(0.3)) {
    text += absl::StrCat("    elif ", var, " < ", SmallNumber(rng), ":\n        ", arg, " = ",
                         SmallNumber(rng), "\n");
  }
  TaskPair p{text + "    else", text + "    elif", fixed[0], " " + var};
  MaybeSwapRoles(rng, &p);
  return p;
}

// fixed = {" ==", " ="}: after `if x` a comparison, after `x` at the start of a
// statement an assignment.
TaskPair IfEquals(TextRng& rng, const std::vector<std::string>& fixed) {
  const auto [arg, var] = TwoShortNames(rng);
  std::string pad;
  std::string text = FunctionStart(rng, arg, &pad);
  if (rng.Chance(0.6)) text += absl::StrCat(pad, var, " = ", Identifier(rng), "(", arg, ")\n");
  TaskPair p{absl::StrCat(text, pad, "if ", var), absl::StrCat(text, pad, var), fixed[0], fixed[1]};
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
  const std::string condition = Condition(rng, arg);
  TaskPair p{absl::StrCat(text, assign, " if ", condition),
             absl::StrCat(text, assign, "\n", pad, "if ", condition), fixed[0], fixed[1]};
  MaybeSwapRoles(rng, &p);
  return p;
}

// fixed = {7 spaces, 3 spaces}: after `for ...:` the body is indented one level
// (8 spaces; the tokenizer splits "\n" + 8 spaces + "x" as "\n", 7 spaces, " x");
// after the twin's plain statement the next line stays at 4.
TaskPair IndentFor(TextRng& rng, const std::vector<std::string>& fixed) {
  const auto [arg, item] = TwoShortNames(rng);
  std::string pad;
  const std::string text = FunctionStart(rng, arg, &pad, /*allow_nesting=*/false);
  std::string collection;
  switch (rng.Below(4)) {
    case 0: collection = arg; break;
    case 1: collection = absl::StrCat("range(", SmallNumber(rng), ")"); break;
    case 2: collection = absl::StrCat(arg, ".", rng.Chance(0.5) ? "items()" : "values()"); break;
    default: collection = absl::StrCat("sorted(", arg, ")"); break;
  }
  const std::string flag = Identifier(rng);
  TaskPair p{absl::StrCat(text, "    for ", item, " in ", collection, ":\n"),
             absl::StrCat(text, "    ", flag, " = ", item, " in ", collection, "\n"), fixed[0],
             fixed[1]};
  MaybeSwapRoles(rng, &p);
  return p;
}

}  // namespace

void AddControlTasks(std::vector<TaskSpec>* specs) {
  specs->push_back({"while_return_true", "`while True` opens a block (:) vs `return True` ends the line",
                    {{":\n", "\n"}, {":", "\n"}}, WhileReturnTrue});
  specs->push_back({"for_while", "loop header: `for i` continues with in, `while i` with <",
                    {{" in", " <"}}, ForWhile});
  specs->push_back({"else_elif", "`else` takes the colon, `elif` a condition on the tested variable",
                    {{":\n", ""}, {":", ""}}, ElseElif});
  specs->push_back({"if_equals", "`if x` compares (==), a statement `x` assigns (=)",
                    {{" ==", " ="}}, IfEquals});
  specs->push_back({"if_ternary", "inline `v if c` needs else, a statement `if c` needs the colon",
                    {{" else", ":\n"}, {" else", ":"}}, IfTernary});
  specs->push_back({"indent_for", "the line after `for ...:` is indented one level deeper",
                    {{"       ", "   "}}, IndentFor});
}

}  // namespace circuit::internal
