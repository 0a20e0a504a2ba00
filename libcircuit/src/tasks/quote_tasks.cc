// Tasks about string literals: which quote closes a string (single_double_quote,
// PAPER.md §3.2 row 1) and whether a string is an f-string (fstring_brace, row 12).
//
// Both prompts end inside the string right after a word, so the prompt ends at a
// token boundary (letters) and the candidate is a symbol token of its own.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "task_spec.h"

namespace circuit::internal {
namespace {

// Lines of a function body before the string, and the indentation of the
// line that opens it.
struct Context {
  std::string text;
  std::string pad;
  std::string arg;
};

Context FunctionContext(TextRng& rng) {
  Context c;
  c.arg = ShortName(rng);
  c.text = Filler(rng) + FunctionHeader(rng, Identifier(rng), {c.arg});
  c.text += BodyLines(rng, 4, 4, FillerOptions{}, {c.arg});
  c.pad = "    ";
  if (rng.Chance(0.4)) {
    c.text += absl::StrCat("    if ", c.arg, rng.Chance(0.5) ? " is None" : "", ":\n");
    c.pad = "        ";
  }
  return c;
}

// What comes right before the opening quote: a call, a return, an assignment...
std::string StringOpener(TextRng& rng, const Context& c) {
  switch (rng.Below(8)) {
    case 0: return "print(";
    case 1: return "return ";
    case 2: return absl::StrCat(Identifier(rng), " = ");
    case 3: return "raise ValueError(";
    case 4: return absl::StrCat(rng.Chance(0.5) ? "logger" : "log", ".", rng.Chance(0.5) ? "info(" : "warning(");
    case 5: return absl::StrCat(c.arg, ".append(");
    case 6: return absl::StrCat("if ", c.arg, " == ");
    default: return absl::StrCat(Identifier(rng), "[", c.arg, "] = ");
  }
}

// Words that end with a letter; sometimes with a colon or comma inside.
std::string StringContents(TextRng& rng) {
  std::string s = Words(rng, 1, 3);
  if (rng.Chance(0.3)) s += rng.Chance(0.5) ? ": " : ", ";
  else if (rng.Chance(0.5)) return s;
  else s += " ";
  return s + Words(rng, 1, 3);
}

// fixed = {"\"", "'"}: the twins differ only in the opening quote.
TaskPair SingleDoubleQuote(TextRng& rng, const std::vector<std::string>& fixed) {
  const Context c = FunctionContext(rng);
  const std::string head = c.text + c.pad + StringOpener(rng, c);
  const std::string contents = StringContents(rng);
  TaskPair p;
  p.prompt = head + fixed[0] + contents;
  p.twin = head + fixed[1] + contents;
  p.correct = fixed[0];
  p.alternative = fixed[1];
  if (rng.Chance(0.5)) {
    std::swap(p.prompt, p.twin);
    std::swap(p.correct, p.alternative);
  }
  return p;
}

// fixed = {" {"}: an f-string wants a replacement field after the words; the
// plain twin (no `f` prefix) is closed after a space, ready for `+ str(x)`.
TaskPair FstringBrace(TextRng& rng, const std::vector<std::string>& fixed) {
  const Context c = FunctionContext(rng);
  const std::string head = c.text + c.pad + StringOpener(rng, c);
  const std::string q = Quote(rng);
  const std::string contents = Words(rng, 1, 4);
  TaskPair p;
  p.prompt = absl::StrCat(head, "f", q, contents);
  p.twin = absl::StrCat(head, q, contents);
  p.correct = fixed[0];
  p.alternative = " " + q;
  if (rng.Chance(0.5)) {
    std::swap(p.prompt, p.twin);
    std::swap(p.correct, p.alternative);
  }
  return p;
}

}  // namespace

void AddQuoteTasks(std::vector<TaskSpec>* specs) {
  specs->push_back({"single_double_quote",
                    "close a string with the quote that opened it: \" vs '",
                    {{"\"", "'"}},
                    SingleDoubleQuote});
  specs->push_back({"fstring_brace",
                    "after words inside a string: ' {' in an f-string vs closing ' \"' in a plain one",
                    {{" {", ""}},
                    FstringBrace});
}

}  // namespace circuit::internal
