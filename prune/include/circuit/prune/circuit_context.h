// What `circuit ablate`, `audit` and `explain` (and the Python module) rebuild
// from a circuit before they score it: the model it was extracted from
// (checked by weights digest), the task options its splits were drawn with
// (settings.h, TaskOptionsFor) and its task, so that every tool scores the
// circuit on the very test split it was verified on.
//
//   CIRCUIT_ASSIGN_OR_RETURN(Circuit c, ReadCircuitFile(path));
//   CIRCUIT_ASSIGN_OR_RETURN(CircuitContext ctx, LoadCircuitContext(c, path, "default.h5", torch::kCPU));
//   ctx.file.model, ctx.task.test, ctx.task_options
#ifndef CIRCUIT_PRUNE_CIRCUIT_CONTEXT_H_
#define CIRCUIT_PRUNE_CIRCUIT_CONTEXT_H_

#include <string>

#include "absl/status/statusor.h"
#include "circuit/core/any_model.h"
#include "circuit/core/circuit.h"
#include "circuit/core/task.h"

namespace circuit::prune {

struct CircuitContext {
  AnyModelFile file;         // the circuit's model, either architecture
  TaskOptions task_options;  // TaskOptionsFor(circuit, n_ctx, n_train)
  TaskData task;             // built with task_options
};

// Loads the model at `model_path` (LoadCircuitModel: its digest must be the
// circuit's) and builds `task` ("" : the circuit's own task) with the options
// the circuit records; n_train > 0 replaces the recorded split sizes.
// `circuit_path` only names the circuit in messages. Errors: the loader's, the
// digest mismatch ("...; pass --model"), a hostile /extract group, BuildTask's.
absl::StatusOr<CircuitContext> LoadCircuitContext(const Circuit& circuit, const std::string& circuit_path,
                                                  const std::string& model_path, torch::Device device,
                                                  int n_train = -1, const std::string& task = "");

// Another task to score the circuit on (`--task T`), built with the context's
// options. Its candidate tokens must be the circuit's task's, or the scores mean
// nothing. Errors: BuildTask's, or InvalidArgument
// "--task T: its candidates (a vs b) are not the circuit's task's (c vs d)".
absl::StatusOr<TaskData> BuildOtherTask(const std::string& name, const CircuitContext& context);

}  // namespace circuit::prune

#endif  // CIRCUIT_PRUNE_CIRCUIT_CONTEXT_H_
