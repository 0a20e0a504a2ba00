// Tasks about functions and iteration helpers: lambda_func (PAPER.md §3.2
// row 17) and enumerate_range (row 18).
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "task_spec.h"

namespace circuit::internal {
namespace {

void MaybeSwapRoles(TextRng& rng, TaskPair* p) {
  if (rng.Chance(0.5)) {
    std::swap(p->prompt, p->twin);
    std::swap(p->correct, p->alternative);
  }
}

// Code before the task's line, at top level ("") or inside a function ("    ").
// The task's families say which (with more detail where the task has it).
std::string Surroundings(TextRng& rng, const std::vector<std::string>& avoid, std::string* pad) {
  std::string text = Filler(rng);
  *pad = "";
  if (rng.Chance(0.6)) {
    std::string arg = ShortName(rng);
    for (int i = 0; i < 20 && std::find(avoid.begin(), avoid.end(), arg) != avoid.end(); ++i) {
      arg = ShortName(rng);
    }
    text += FunctionHeader(rng, Identifier(rng), {arg});
    std::vector<std::string> taken = avoid;
    taken.push_back(arg);
    text += BodyLines(rng, 4, 3, FillerOptions{}, taken);
    *pad = "    ";
  }
  return text;
}

// fixed = {":", "):\n"} (or {":", ")"}): `f = lambda x` is followed by the
// colon, the twin `def f(x` by the closing parenthesis.
TaskPair LambdaFunc(TextRng& rng, const std::vector<std::string>& fixed) {
  std::vector<std::string> args = {ShortName(rng)};
  if (rng.Chance(0.4)) {
    std::string second = ShortName(rng);
    if (second != args[0]) args.push_back(second);
  }
  std::string pad;
  const std::string text = Surroundings(rng, args, &pad);
  const std::string name = Identifier(rng);
  const std::string params = absl::StrJoin(args, ", ");
  TaskPair p{absl::StrCat(text, pad, name, " = lambda ", params),
             absl::StrCat(text, pad, "def ", name, "(", params), fixed[0], fixed[1]};
  p.family = absl::StrCat(pad.empty() ? "module" : "function",
                          args.size() == 1 ? "_one_arg" : "_two_args");
  MaybeSwapRoles(rng, &p);
  return p;
}

// fixed = {" enumerate", " range"}: two loop targets `for i, x in` unpack
// enumerate(...); one target `for i in` counts with range(...).
TaskPair EnumerateRange(TextRng& rng, const std::vector<std::string>& fixed) {
  const auto [index, item] = TwoShortNames(rng);
  std::string pad;
  std::string text = Surroundings(rng, {index, item}, &pad);
  const bool comment = rng.Chance(0.3);
  if (comment) text += absl::StrCat(pad, "# ", Words(rng, 2, 6), "\n");
  TaskPair p{absl::StrCat(text, pad, "for ", index, ", ", item, " in"),
             absl::StrCat(text, pad, "for ", index, " in"), fixed[0], fixed[1]};
  p.family = comment ? "after_comment" : pad.empty() ? "module" : "function";
  MaybeSwapRoles(rng, &p);
  return p;
}

}  // namespace

void AddFunctionTasks(std::vector<TaskSpec>* specs) {
  specs->push_back({"lambda_func", "`f = lambda x` continues with :, `def f(x` with the closing )",
                    {{":", "):\n"}, {":", ")"}}, LambdaFunc,
                    {"module_one_arg", "module_two_args", "function_one_arg", "function_two_args"}});
  specs->push_back({"enumerate_range",
                    "`for i, x in` unpacks enumerate, `for i in` counts with range",
                    {{" enumerate", " range"}}, EnumerateRange,
                    {"module", "function", "after_comment"}});
}

}  // namespace circuit::internal
