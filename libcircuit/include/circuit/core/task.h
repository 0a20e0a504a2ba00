// Binary next-token tasks (PAPER.md §3): pairs of prompts that differ minimally,
// each with its own correct next token; the two candidates swap roles between
// the twins. Torch-free: this builds and tokenizes the data; task_eval.h scores it.
//
//   CIRCUIT_ASSIGN_OR_RETURN(TaskData data,
//       BuildTask("single_double_quote", tokenizer, TaskOptions{.n_ctx = 256}));
//   for (const TaskExample& ex : data.test) ...;   // ex.tokens, ex.correct, ex.alternative
#ifndef CIRCUIT_CORE_TASK_H_
#define CIRCUIT_CORE_TASK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "circuit/core/tokenizer.h"

namespace circuit {

// One datapoint in text: a prompt and its minimally different twin. The answer
// to `prompt` is `correct`, the answer to `twin` is `alternative`. Candidates are
// texts that must each encode to exactly one token. A user task line without a
// twin leaves `twin` empty (a single-prompt datapoint).
struct TaskPair {
  std::string prompt;
  std::string twin;
  std::string correct;
  std::string alternative;
  // Built-in tasks split into template families: the family this pair's
  // template belongs to ("" for tasks without families and user files).
  std::string family;
};

// One tokenized prompt, prediction at its last token.
struct TaskExample {
  std::vector<int32_t> tokens;  // left-truncated to n_ctx
  int32_t correct = 0;          // the right next token
  int32_t alternative = 0;      // the other candidate
};

struct TaskOptions {
  int n_ctx = 256;
  uint64_t seed = 0;
  int n_train = 512;       // datapoints (pairs) per split; each yields two examples
  int n_validation = 128;
  int n_test = 128;
};

// The splits `circuit extract`, `ablate` and `tasks --dump` build: n_train
// datapoints for training, a quarter as many (at least 8) for validation and
// for test, prompts cut to n_ctx.
TaskOptions PruningSplits(int n_train, int n_ctx, uint64_t seed);

struct TaskData {
  std::string name;
  std::string description;
  // True when every datapoint has a twin, so each split is [prompt, twin] pairs.
  // Only a user file with twinless lines makes it false.
  bool paired = true;
  // "path:line" of the first datapoint without a twin; "" when paired.
  std::string first_twinless;
  // Built-in tasks: the candidate variant used (see TaskInfo); "" = per datapoint.
  std::vector<std::string> candidates;
  // Examples come in twin order: [prompt of pair 0, twin of pair 0, prompt of pair 1, ...].
  std::vector<TaskExample> train, validation, test;
};

struct TaskInfo {
  std::string name;
  std::string description;  // one line
  // The candidate texts in order of preference: BuildTask uses the first variant
  // whose texts are single tokens. Empty strings stand for per-datapoint
  // candidates (e.g. variable names), shown as "<name>".
  std::vector<std::vector<std::string>> candidate_variants;
  // Template families of the generator (empty: not split). "NAME@FAMILY" builds
  // the task from that family alone, "NAME@!FAMILY" from all the others.
  std::vector<std::string> families;
};

// The built-in tasks, sorted by name.
std::vector<TaskInfo> BuiltinTasks();

// Builds a built-in task by name, or a user task from "file:path.jsonl".
// "NAME@FAMILY" / "NAME@!FAMILY" restrict a built-in task to one template
// family / to all but one (TaskInfo::families; an unknown family is an error);
// the task's name in TaskData stays the full string.
// Splits are fixed by options.seed and disjoint (no prompt text in two splits);
// the test split does not depend on n_train or n_validation. Built-in prompts are
// checked to end at a token boundary: Encode(prompt + candidate) must equal
// Encode(prompt) followed by the candidate token (pairs that fail are redrawn).
// Prompts are left-truncated to n_ctx tokens; a pair whose twins become equal
// is dropped (built-in) or an error (user file).
// Fails with a clear message for an unknown task (NotFound), a bad file (path:line),
// or candidates that are not single tokens for `tokenizer`.
absl::StatusOr<TaskData> BuildTask(const std::string& name, const Tokenizer& tokenizer,
                                   const TaskOptions& options);

// Text pairs of a built-in task (deterministic for the seed); for `circuit tasks`.
// Uses the first candidate variant; BuildTask may substitute a later one.
absl::StatusOr<std::vector<TaskPair>> GenerateTaskPairs(const std::string& name, int count,
                                                        uint64_t seed);

// The datapoints of a user task file in JSON Lines: one object per line with
// string keys "prompt", "correct", "alternative" and optional "twin" (whose
// answer is "alternative"); blank lines are skipped. Errors name "path:line" and
// the problem (bad JSON, missing key, wrong type, empty prompt, equal candidates,
// a prompt seen before). Tokenizer checks happen in BuildTask.
absl::StatusOr<std::vector<TaskPair>> ReadTaskFile(const std::string& path);

// Pruning, ablation and audits compare each prompt with its twin (calibration,
// the pair standard error and resampling all assume [prompt, twin] order), so
// they call this first: InvalidArgument naming "path:line" of the first user
// datapoint without a twin; OK when data.paired.
absl::Status RequireTwins(const TaskData& data);
// The same for a task name before any tokenizer is at hand (`circuit sweep`
// checks its spec up front): OK for built-in tasks; a "file:" task is read, and
// only a missing twin is reported here (a file that cannot be read or parsed is
// BuildTask's error to report).
absl::Status RequireTwins(const std::string& task_name);

// The prefix that makes BuildTask read a user file: "file:path.jsonl".
inline constexpr char kTaskFilePrefix[] = "file:";

}  // namespace circuit

#endif  // CIRCUIT_CORE_TASK_H_
