// What the commands that work on an extracted circuit (ablate, explain) share:
// the check that a model is the circuit's own, and the circuit's task data.
//
//   CIRCUIT_RETURN_IF_ERROR(CheckCircuitModel(path, circuit, model_file));
//   CIRCUIT_ASSIGN_OR_RETURN(TaskData task, CircuitTask(circuit, model_file, /*n_train=*/512, ""));
#ifndef CIRCUIT_CLI_CIRCUIT_INPUTS_H_
#define CIRCUIT_CLI_CIRCUIT_INPUTS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "circuit/core/checkpoint.h"
#include "circuit/core/circuit.h"
#include "circuit/core/task.h"

namespace circuit::cli {

// InvalidArgument naming both files and digests when `file` is not the model
// the circuit at `circuit_path` was extracted from.
absl::Status CheckCircuitModel(const std::string& circuit_path, const Circuit& circuit, const ModelFile& file);

// The circuit's task (or `task_name` when not empty) built as extract built it:
// the circuit's seed, `n_train` train pairs, a quarter as many (at least 8) for
// validation and test. Errors: those of BuildTask.
absl::StatusOr<TaskData> CircuitTask(const Circuit& circuit, const ModelFile& file, int n_train,
                                     const std::string& task_name);

}  // namespace circuit::cli

#endif  // CIRCUIT_CLI_CIRCUIT_INPUTS_H_
