// Tasks about closing brackets: nesting depth (bracket_counting, PAPER.md §3.2
// row 2) and bracket kind (bracket_brace, row 13).
//
// Every literal sits on one line of its own (an assignment or a return), so the
// natural next token is the closer with its newline ("]]\n"); when the tokenizer
// has no such merged token the task falls back to the bare closers ("]]").
// The last element is a number or a name, so the prompt ends at a token boundary.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "task_spec.h"

namespace circuit::internal {
namespace {

// List elements of one kind per literal: all numbers or all names.
std::vector<std::string> Elements(TextRng& rng, int count) {
  const bool numbers = rng.Chance(0.6);
  const bool negative = numbers && rng.Chance(0.2);
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) {
    if (numbers) {
      out.push_back(absl::StrCat(negative && rng.Chance(0.4) ? "-" : "", SmallNumber(rng)));
    } else {
      out.push_back(ShortName(rng));
    }
  }
  return out;
}

// Both tasks' template families, by the statement that holds the literal:
// an assignment at module level, an assignment in a function, a return.
const std::vector<std::string> kLiteralFamilies = {"module_assign", "local_assign", "return"};

// The text before the literal: filler, maybe a function, then `name = ` or
// `return `; *family says which (kLiteralFamilies).
std::string LiteralContext(TextRng& rng, std::string* family) {
  std::string text = Filler(rng);
  if (rng.Chance(0.6)) {
    const std::string arg = ShortName(rng);
    text += FunctionHeader(rng, Identifier(rng), {arg});
    text += BodyLines(rng, 4, 3, FillerOptions{}, {arg});
    const bool returns = rng.Chance(0.4);
    text += returns ? "    return " : absl::StrCat("    ", Identifier(rng), " = ");
    *family = returns ? "return" : "local_assign";
  } else {
    text += absl::StrCat(Identifier(rng), " = ");
    *family = "module_assign";
  }
  return text;
}

// fixed = {nested closer, flat closer}. The nested literal has rows
// `[[a, b], [c, d` and the flat twin holds the same elements `[a, b, c, d`.
TaskPair BracketCounting(TextRng& rng, const std::vector<std::string>& fixed) {
  TaskPair p;
  const std::string head = LiteralContext(rng, &p.family);
  const int rows = rng.Between(1, 4);
  const int width = rng.Between(1, 4);
  const std::vector<std::string> elements = Elements(rng, rows * width);
  std::vector<std::string> row_texts;
  for (int r = 0; r < rows; ++r) {
    std::vector<std::string> row(elements.begin() + r * width, elements.begin() + (r + 1) * width);
    row_texts.push_back(absl::StrJoin(row, ", "));
  }
  p.prompt = absl::StrCat(head, "[[", absl::StrJoin(row_texts, "], ["));
  p.twin = absl::StrCat(head, "[", absl::StrJoin(elements, ", "));
  p.correct = fixed[0];
  p.alternative = fixed[1];
  if (rng.Chance(0.5)) {
    std::swap(p.prompt, p.twin);
    std::swap(p.correct, p.alternative);
  }
  return p;
}

// fixed = {list closer, set closer}: the twins differ only in the opener.
TaskPair BracketBrace(TextRng& rng, const std::vector<std::string>& fixed) {
  TaskPair p;
  const std::string head = LiteralContext(rng, &p.family);
  const std::string elements = absl::StrJoin(Elements(rng, rng.Between(1, 7)), ", ");
  p.prompt = absl::StrCat(head, "[", elements);
  p.twin = absl::StrCat(head, "{", elements);
  p.correct = fixed[0];
  p.alternative = fixed[1];
  if (rng.Chance(0.5)) {
    std::swap(p.prompt, p.twin);
    std::swap(p.correct, p.alternative);
  }
  return p;
}

}  // namespace

void AddBracketTasks(std::vector<TaskSpec>* specs) {
  specs->push_back({"bracket_counting",
                    "close a list literal: ]] after a nested list vs ] after a flat one",
                    {{"]]\n", "]\n"}, {"]]", "]"}},
                    BracketCounting,
                    kLiteralFamilies});
  specs->push_back({"bracket_brace",
                    "close a literal with the bracket that opened it: ] for a list vs } for a set",
                    {{"]\n", "}\n"}, {"]", "}"}},
                    BracketBrace,
                    kLiteralFamilies});
}

}  // namespace circuit::internal
