#include "circuit/prune/audit_run.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "circuit/core/status.h"
#include "circuit/prune/mean_cache.h"
#include "circuit/prune/settings.h"

namespace circuit::prune {

absl::StatusOr<PreparedAudit> PrepareAudit(Circuit circuit, std::string circuit_path,
                                           const AuditRequest& request) {
  if (request.options.seeds < 0 || request.options.seeds > 100) {
    return absl::InvalidArgumentError(
        absl::StrCat("seeds must be in [0, 100], got ", request.options.seeds));
  }
  CIRCUIT_ASSIGN_OR_RETURN(ExtractOptions extract, ExtractOptionsFor(circuit));
  CIRCUIT_ASSIGN_OR_RETURN(CircuitContext context,
                           LoadCircuitContext(circuit, circuit_path, request.model_path, request.device));
  if (!context.task.paired) {
    // Shuffled answers and resampling work on pairs.
    return absl::InvalidArgumentError(absl::StrCat(
        "task ", circuit.task,
        ": every line needs a twin (shuffled answers and resampling work on pairs)"));
  }
  std::optional<TaskData> other;
  if (!request.other_task.empty()) {
    CIRCUIT_ASSIGN_OR_RETURN(other, BuildOtherTask(request.other_task, context));
  }
  extract.means_cache = MeansPathFor(context.file.path);
  AuditOptions options = request.options;
  options.seed = circuit.seed;
  return PreparedAudit{std::move(circuit), std::move(circuit_path), std::move(context),
                       std::move(other),   std::move(extract),      options};
}

absl::StatusOr<AuditResult> RunPreparedAudit(const PreparedAudit& p, const ProgressFn& progress) {
  AuditInputs in;
  in.model = p.context.file.model.get();
  in.model_file = p.circuit.model_file;
  in.model_digest = p.context.file.digest;
  in.circuit = &p.circuit;
  in.task = &p.context.task;
  in.extract = p.extract;
  in.tokenizer = &p.context.file.tokenizer;
  in.task_options = p.context.task_options;
  if (p.other_task.has_value()) in.other_task = &*p.other_task;
  return AuditCircuit(in, p.options, progress);
}

}  // namespace circuit::prune
