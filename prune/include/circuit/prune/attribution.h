// Attribution patching, the cheap alternative to mask training: with every
// gate at 1, one forward and one backward pass per batch give dL/dg for every
// node, and L(g_i = 0) - L(1) ≈ -dL/dg_i estimates the loss increase of
// ablating node i alone (first-order Taylor; for mean ablation this is
// Σ_positions (mean - x) · dL/dx). Nodes are then ranked by the score and the
// same discretization picks k.
//
//   CIRCUIT_ASSIGN_OR_RETURN(torch::Tensor score,
//       AttributionScores(model, index, units, means, data.train, AttributionOptions{}));
//   std::vector<int64_t> order = RankUnits(score);   // (n_units), biggest effect first
#ifndef CIRCUIT_PRUNE_ATTRIBUTION_H_
#define CIRCUIT_PRUNE_ATTRIBUTION_H_

#include <torch/torch.h>

#include <vector>

#include "absl/status/statusor.h"
#include "circuit/core/model.h"
#include "circuit/core/task.h"
#include "circuit/prune/ablation.h"
#include "circuit/prune/node_index.h"
#include "circuit/prune/progress.h"

namespace circuit::prune {

struct AttributionOptions {
  Ablation ablation = Ablation::kMean;
  int batch_prompts = kEvalBatch;
  // true: rank by |estimated loss change| (a node whose ablation helps counts
  // too); false: by the signed estimated loss increase.
  bool absolute = true;
};

// Returns (n_units) float32 CPU scores: the estimated loss change of ablating
// each unit (the sum over its nodes), averaged over all prompts of `examples`,
// made absolute when options.absolute. Errors: no examples.
absl::StatusOr<torch::Tensor> AttributionScores(const TapModel& model, const NodeIndex& index,
                                                const MaskUnits& units,
                                                const std::vector<torch::Tensor>& means,
                                                const std::vector<TaskExample>& examples,
                                                const AttributionOptions& options,
                                                const ProgressFn& progress = nullptr);

}  // namespace circuit::prune

#endif  // CIRCUIT_PRUNE_ATTRIBUTION_H_
