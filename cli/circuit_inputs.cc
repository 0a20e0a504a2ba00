#include "circuit_inputs.h"

#include "absl/strings/str_format.h"

namespace circuit::cli {

absl::Status CheckCircuitModel(const std::string& circuit_path, const Circuit& circuit, const ModelFile& file) {
  if (file.digest == circuit.model_digest) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrFormat("%s was extracted from %s (digest %s), not %s (digest %s); pass --model", circuit_path,
                      circuit.model_file, circuit.model_digest, file.path, file.digest));
}

absl::StatusOr<TaskData> CircuitTask(const Circuit& circuit, const ModelFile& file, int n_train,
                                     const std::string& task_name) {
  return BuildTask(task_name.empty() ? circuit.task : task_name, file.tokenizer,
                   PruningSplits(n_train, file.model.config().n_ctx, circuit.seed));
}

}  // namespace circuit::cli
