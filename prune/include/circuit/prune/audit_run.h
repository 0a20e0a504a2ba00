// `circuit audit` as two library calls, shared by the CLI and the Python
// module: PrepareAudit rebuilds what the audit needs from the circuit (its
// model, checked by digest; its task and splits; the extraction settings it
// records) and reports user errors; RunPreparedAudit runs AuditCircuit on it.
//
//   AuditRequest r{.model_path = "data/models/default.h5"};
//   r.options.seeds = 0;                                    // no stability runs
//   CIRCUIT_ASSIGN_OR_RETURN(PreparedAudit p, PrepareAudit(circuit, "q/circuit.h5", r));
//   CIRCUIT_ASSIGN_OR_RETURN(AuditResult a, RunPreparedAudit(p, progress));
//   std::string json = AuditJson(p.circuit_path, p.circuit, a, p.options);  // audit_json.h
#ifndef CIRCUIT_PRUNE_AUDIT_RUN_H_
#define CIRCUIT_PRUNE_AUDIT_RUN_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "circuit/core/circuit.h"
#include "circuit/prune/audit.h"
#include "circuit/prune/circuit_context.h"
#include "circuit/prune/progress.h"
#include "circuit/prune/pruner.h"

namespace circuit::prune {

struct AuditRequest {
  std::string model_path;              // the model the circuit came from (digest checked)
  torch::Device device = torch::kCPU;
  std::string other_task;              // also score the circuit on this task ("": no)
  AuditOptions options;                // options.seed is replaced by the circuit's seed
};

struct PreparedAudit {
  Circuit circuit;
  std::string circuit_path;            // names the circuit in messages and in audit.json
  CircuitContext context;              // model, task options, the circuit's task
  std::optional<TaskData> other_task;  // AuditRequest::other_task, built
  ExtractOptions extract;              // ExtractOptionsFor(circuit), means cache beside the model
  AuditOptions options;
};

// Errors (all the user's): seeds outside [0, 100], LoadCircuitContext's,
// ExtractOptionsFor's, a task with lines lacking a twin, BuildOtherTask's.
absl::StatusOr<PreparedAudit> PrepareAudit(Circuit circuit, std::string circuit_path,
                                           const AuditRequest& request);

// AuditCircuit on the prepared inputs. Errors: the audit's (failed extractions).
absl::StatusOr<AuditResult> RunPreparedAudit(const PreparedAudit& prepared,
                                             const ProgressFn& progress = nullptr);

}  // namespace circuit::prune

#endif  // CIRCUIT_PRUNE_AUDIT_RUN_H_
