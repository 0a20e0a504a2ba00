// Private to the task suite: how a built-in task is declared, and the random
// text helpers its generator composes prompts from (identifiers, string
// contents, unrelated preceding code).
#ifndef CIRCUIT_LIBCIRCUIT_SRC_TASKS_TASK_SPEC_H_
#define CIRCUIT_LIBCIRCUIT_SRC_TASKS_TASK_SPEC_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "circuit/core/task.h"
#include "circuit/core/tokenizer.h"

namespace circuit::internal {

// A small deterministic generator (splitmix64): the same texts on every
// platform and standard library, unlike std::uniform_int_distribution.
class TextRng {
 public:
  explicit TextRng(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  int Below(int n);                      // uniform in [0, n), n >= 1
  int Between(int lo, int hi);           // uniform in [lo, hi]
  bool Chance(double p);                 // true with probability p
  template <typename T>
  const T& Pick(const std::vector<T>& items) {
    return items[Below(static_cast<int>(items.size()))];
  }

 private:
  uint64_t state_;
};

// A built-in task. `generate` draws one datapoint; `fixed` are the candidate
// texts of the chosen variant (index as in `variants`), which the generator uses
// for the answers that do not vary per datapoint.
struct TaskSpec {
  std::string name;
  std::string description;
  std::vector<std::vector<std::string>> variants;  // preference order; "" = per datapoint
  std::function<TaskPair(TextRng& rng, const std::vector<std::string>& fixed)> generate;
  std::vector<std::string> families;  // values of TaskPair::family the generator sets
};

// Registration, one function per source file, in the order of the registry.
void AddQuoteTasks(std::vector<TaskSpec>* specs);     // quote_tasks.cc
void AddBracketTasks(std::vector<TaskSpec>* specs);   // bracket_tasks.cc
void AddVariableTasks(std::vector<TaskSpec>* specs);  // variable_tasks.cc
void AddControlTasks(std::vector<TaskSpec>* specs);   // control_tasks.cc
void AddFunctionTasks(std::vector<TaskSpec>* specs);  // function_tasks.cc

// All built-in tasks, sorted by name.
const std::vector<TaskSpec>& TaskSpecs();
const TaskSpec* FindTaskSpec(const std::string& name);
// NotFound: "unknown task 'x' (...how to see the names...)".
absl::Status UnknownTask(const std::string& name);

// --- tokenization shared by built-in and user tasks (task_build.cc) ---

// `text` in double quotes with C escapes: "]]\n".
std::string ShowText(const std::string& text);
// The id of a one-token candidate, else InvalidArgument:
// `candidate "]]\n" is 2 tokens for this tokenizer ("]]", "\n")`.
absl::StatusOr<int32_t> CandidateToken(const Tokenizer& tokenizer, const std::string& text);
// Encode(text), keeping the last n_ctx tokens.
std::vector<int32_t> EncodePrompt(const Tokenizer& tokenizer, const std::string& text, int n_ctx);

// A user task file (user_task.cc).
struct NumberedPair {
  int line = 0;  // 1-based line in the file
  TaskPair pair;
};
absl::StatusOr<std::vector<NumberedPair>> ReadNumberedTaskFile(const std::string& path);
absl::StatusOr<TaskData> BuildUserTask(const std::string& path, const Tokenizer& tokenizer,
                                       const TaskOptions& options);

// --- text helpers (text_gen.cc) ---

// A snake_case identifier of one or two words ("row_count", "buffer").
std::string Identifier(TextRng& rng);
// A CamelCase class name ("RowBuffer").
std::string ClassName(TextRng& rng);
// A short common variable name ("value", "count", "x"), likely one token.
std::string ShortName(TextRng& rng);
// Two different short names.
std::pair<std::string, std::string> TwoShortNames(TextRng& rng);
// `count` lowercase words joined by spaces; no quotes, ends with a letter.
std::string Words(TextRng& rng, int min_count, int max_count);
// A non-negative integer literal of 1 to 3 digits.
std::string SmallNumber(TextRng& rng);
// A simple expression that ends with a letter or digit: a name, a number,
// `name.attr`, `name[0]`-free; safe before any symbol candidate.
std::string SimpleValue(TextRng& rng);
// A quote character, ' or ".
std::string Quote(TextRng& rng);

// What the unrelated code before a task's own lines may contain.
struct FillerOptions {
  bool lists = true;    // balanced list literals
  bool strings = true;  // complete string literals of both quote styles
  int min_snippets = 0;
  int max_snippets = 3;
};
// Unrelated complete code at top level (imports, constants, comments, small
// functions), each snippet ending with a newline and followed by a blank line.
std::string Filler(TextRng& rng, const FillerOptions& options = {});
// 0 to `max_lines` unrelated complete statements at the given indentation that
// do not use `avoid` names, each ending with a newline.
std::string BodyLines(TextRng& rng, int indent, int max_lines, const FillerOptions& options = {},
                      const std::vector<std::string>& avoid = {});
// A `def name(args):` header line (with newline) and optionally a docstring.
std::string FunctionHeader(TextRng& rng, const std::string& name,
                           const std::vector<std::string>& args);

}  // namespace circuit::internal

#endif  // CIRCUIT_LIBCIRCUIT_SRC_TASKS_TASK_SPEC_H_
