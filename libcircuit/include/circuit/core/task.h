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
// to `prompt` is `correct`, the answer to `twin` is `alternative`.
struct TaskPair {
  std::string prompt;
  std::string twin;
  std::string correct;
  std::string alternative;
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

struct TaskData {
  std::string name;
  std::string description;
  // Examples come in twin order: [prompt of pair 0, twin of pair 0, prompt of pair 1, ...].
  std::vector<TaskExample> train, validation, test;
};

struct TaskInfo {
  std::string name;
  std::string description;  // one line
};

// The built-in tasks, sorted by name.
std::vector<TaskInfo> BuiltinTasks();

// Builds a built-in task by name, or a user task from "file:path.jsonl".
// Fails with a clear message for an unknown task, a bad file (line numbers),
// or candidates that are not single tokens for `tokenizer`.
absl::StatusOr<TaskData> BuildTask(const std::string& name, const Tokenizer& tokenizer,
                                   const TaskOptions& options);

// Text pairs of a built-in task (deterministic for the seed); for `circuit tasks`.
absl::StatusOr<std::vector<TaskPair>> GenerateTaskPairs(const std::string& name, int count,
                                                        uint64_t seed);

}  // namespace circuit

#endif  // CIRCUIT_CORE_TASK_H_
