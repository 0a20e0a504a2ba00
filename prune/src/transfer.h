// Private to the audit: the transfer check (transfer.cc), called by AuditCircuit.
#ifndef CIRCUIT_PRUNE_SRC_TRANSFER_H_
#define CIRCUIT_PRUNE_SRC_TRANSFER_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "circuit/prune/audit.h"
#include "circuit/prune/mean_cache.h"

namespace circuit::prune::internal {

// Extracts a circuit from the audited model on `task` with the circuit's
// settings; sets *met_target.
using ExtractFn = std::function<absl::StatusOr<Circuit>(const TaskData& task,
                                                        const std::string& what, bool* met_target)>;

// Fills t->other_task* when in.other_task is set: the circuit on that task's test split.
void ScoreOnOtherTask(const AuditInputs& in, const MeanCache& means, Transfer* t);

// Calls ScoreOnOtherTask, then extracts on all families but one and scores the held-out one.
absl::StatusOr<Transfer> TransferAcrossFamilies(const AuditInputs& in, const MeanCache& means,
                                                const ExtractFn& extract);

}  // namespace circuit::prune::internal

#endif  // CIRCUIT_PRUNE_SRC_TRANSFER_H_
