// Edges chosen by attribution, for BDH circuits. BDH's three shared matrices
// are dense, so "an edge is a nonzero weight" joins every kept node of one
// location to every kept node of the next. Here an edge is one entry w of
// encoder, encoder_v or decoder in one layer, between two kept nodes; ablating
// it replaces its source's contribution w * a by w * mean(a) (0 under zero
// ablation) in that layer's product only. Each candidate is scored by
// attribution patching over the train prompts,
//
//   score = sum over prompts of | w * sum over positions (a - mean(a)) * dL/d(out) |,
//
// the first-order estimate of what ablating it alone changes in that prompt's
// loss, and the edges kept are the top m by score with m the smallest whose
// circuit (every other candidate ablated) meets the target on the validation
// split with the extraction's confidence, found by bisection as k is. The
// one-to-one links (x and y neurons into their gate, the residual read into the
// attention read-out) are not weights and are always kept.
//
//   EdgeSelectionOptions o;  o.target_loss = 0.15;  o.z = ConfidenceZ(0.9);
//   CIRCUIT_ASSIGN_OR_RETURN(EdgeSelection s,
//                            SelectBdhEdges(bdh, index, means, circuit_flat, task, o));
//   // s.edges (kept weights and links), s.kept of s.candidates, s.test_loss
#ifndef CIRCUIT_PRUNE_EDGE_SELECTION_H_
#define CIRCUIT_PRUNE_EDGE_SELECTION_H_

#include <torch/torch.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "circuit/core/bdh.h"
#include "circuit/core/circuit.h"
#include "circuit/core/task.h"
#include "circuit/prune/ablation.h"
#include "circuit/prune/calibration.h"
#include "circuit/prune/node_index.h"

namespace circuit::prune {

struct EdgeSelectionOptions {
  Ablation ablation = Ablation::kMean;  // kMean or kZero
  double target_loss = 0.15;
  double z = 0.0;  // a set meets the target when loss + z * std_error <= target_loss
  int batch_prompts = kEvalBatch;
  const LogitCalibration* calibration = nullptr;  // borrowed; null: uncalibrated losses
};

struct EdgeSelection {
  std::vector<CircuitEdge> edges;  // kept weights and every link, sorted by (dst, src)
  int64_t candidates = 0;          // nonzero weights between kept nodes
  int64_t kept = 0;                // of them kept
  // Validation loss (and loss + z * std_error) with only the kept weights.
  double validation_loss = 0.0;
  double validation_bound = 0.0;
  // false: even every candidate misses the target on validation; all are kept.
  bool met_target = false;
  double test_loss = std::numeric_limits<double>::quiet_NaN();  // with only the kept weights
  int evaluations = 0;  // validation passes (the bisection's and the chosen set's)
};

// flat: the circuit's kept nodes (flat indices of `index`, ascending). Scores on
// task.train, chooses m on task.validation, reports task.test. Errors:
// resample ablation, an empty train or validation split.
absl::StatusOr<EdgeSelection> SelectBdhEdges(const BdhModel& model, const NodeIndex& index,
                                             const std::vector<torch::Tensor>& means,
                                             const std::vector<int64_t>& flat,
                                             const TaskData& task,
                                             const EdgeSelectionOptions& options);

// The definition SelectBdhEdges uses, in words (circuit files' edge_definition).
std::string AttributionEdgeDefinition();

}  // namespace circuit::prune

#endif  // CIRCUIT_PRUNE_EDGE_SELECTION_H_
