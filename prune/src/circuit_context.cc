#include "circuit/prune/circuit_context.h"

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "circuit/core/status.h"
#include "circuit/prune/settings.h"

namespace circuit::prune {

absl::StatusOr<CircuitContext> LoadCircuitContext(const Circuit& circuit, const std::string& circuit_path,
                                                  const std::string& model_path, torch::Device device,
                                                  int n_train, const std::string& task) {
  CIRCUIT_ASSIGN_OR_RETURN(AnyModelFile file, LoadCircuitModel(circuit, circuit_path, model_path, device));
  CIRCUIT_ASSIGN_OR_RETURN(TaskOptions task_options,
                           TaskOptionsFor(circuit, file.model->n_ctx(), n_train));
  CIRCUIT_ASSIGN_OR_RETURN(TaskData data,
                           BuildTask(task.empty() ? circuit.task : task, file.tokenizer, task_options));
  return CircuitContext{std::move(file), task_options, std::move(data)};
}

absl::StatusOr<TaskData> BuildOtherTask(const std::string& name, const CircuitContext& context) {
  CIRCUIT_ASSIGN_OR_RETURN(TaskData other, BuildTask(name, context.file.tokenizer, context.task_options));
  if (other.candidates != context.task.candidates) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--task %s: its candidates (%s) are not the circuit's task's (%s)", name,
                        absl::CEscape(absl::StrJoin(other.candidates, " vs ")),
                        absl::CEscape(absl::StrJoin(context.task.candidates, " vs "))));
  }
  return other;
}

}  // namespace circuit::prune
