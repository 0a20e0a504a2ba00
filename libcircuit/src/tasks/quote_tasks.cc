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

// What comes right before the opening quote (a call, a return, an assignment,
// a comparison), and what closes the statement after the string.
struct Opener {
  std::string text;
  std::string closer;  // ")\n", "\n" or ":\n"
  std::string family;  // the template family (kQuoteFamilies)
};

// single_double_quote's template families, by the statement around the string.
// With the merged candidates only the calls (print, raise, log, append) occur.
// fstring_brace has the same families, all of which occur.
const std::vector<std::string> kQuoteFamilies = {"print", "return", "assign", "raise",
                                                 "log",   "append", "compare", "index"};

Opener StringOpener(TextRng& rng, const Context& c) {
  switch (rng.Below(8)) {
    case 0: return {"print(", ")\n", "print"};
    case 1: return {"return ", "\n", "return"};
    case 2: return {absl::StrCat(Identifier(rng), " = "), "\n", "assign"};
    case 3: return {"raise ValueError(", ")\n", "raise"};
    case 4:
      return {absl::StrCat(rng.Chance(0.5) ? "logger" : "log", ".", rng.Chance(0.5) ? "info(" : "warning("),
              ")\n", "log"};
    case 5: return {absl::StrCat(c.arg, ".append("), ")\n", "append"};
    case 6: return {absl::StrCat("if ", c.arg, " == "), ":\n", "compare"};
    default: return {absl::StrCat(Identifier(rng), "[", c.arg, "] = "), "\n", "index"};
  }
}

// A call that takes a string as its last argument: the statement ends with ")\n".
Opener CallOpener(TextRng& rng, const Context& c) {
  for (;;) {
    Opener o = StringOpener(rng, c);
    if (o.closer == ")\n") return o;
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

// fixed = {"\")\n", "')\n"}, or {"\"", "'"} as the fallback variant for
// tokenizers without those merges. The twins differ only in the opening quote.
// With the merged variant the string is the last argument of a call, and the
// candidates are the closing quote together with the call's end: that is how a
// code tokenizer writes a closing quote (BPE merges it with the punctuation after
// it), so a bare `"` after a word is rare in training text.
TaskPair SingleDoubleQuote(TextRng& rng, const std::vector<std::string>& fixed) {
  const Context c = FunctionContext(rng);
  const bool merged = fixed[0].size() > 1;
  const Opener opener = merged ? CallOpener(rng, c) : StringOpener(rng, c);
  const std::string head = c.text + c.pad + opener.text;
  const std::string contents = StringContents(rng);
  TaskPair p;
  p.family = opener.family;
  p.prompt = head + fixed[0].substr(0, 1) + contents;
  p.twin = head + fixed[1].substr(0, 1) + contents;
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
  const Opener opener = StringOpener(rng, c);
  const std::string head = c.text + c.pad + opener.text;
  const std::string q = Quote(rng);
  const std::string contents = Words(rng, 1, 4);
  TaskPair p;
  p.family = opener.family;
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
                    "close a string with the quote that opened it: \")\\n vs ')\\n at the end of a call",
                    {{"\")\n", "')\n"}, {"\"", "'"}},
                    SingleDoubleQuote,
                    kQuoteFamilies});
  specs->push_back({"fstring_brace",
                    "after words inside a string: ' {' in an f-string vs closing ' \"' in a plain one",
                    {{" {", ""}},
                    FstringBrace,
                    kQuoteFamilies});
}

}  // namespace circuit::internal
