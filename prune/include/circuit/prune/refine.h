// Refinement after discretization, and the minimality of a circuit.
//
// Discretization keeps the top k units of one ranking; when that ranking is
// uninformative (saturated attention, ties at tau = -1) the top k carry many
// units the task does not need. Refinement tries removing kept units one at a
// time, least important first (by the loss bound with that unit alone removed),
// and drops every unit whose removal keeps the validation bound (loss + z
// standard errors, as discretization) at or under the target; passes repeat
// until no unit can go. Candidate removals are scored many at a time
// (AblationEvaluator::LogitDiffsMany): the first sweep scores every single
// removal, then a k-ary search finds the longest run of candidates, in order,
// whose joint removal still meets the target; the candidate that breaks it is
// skipped, and the search resumes after it.
//
// Minimality is the share of the circuit's nodes whose single removal breaks
// the target (1.0: every node is needed); refinement ends with it at 1.0.
//
//   RefineOptions o;  o.target_loss = 0.15;  o.z = ConfidenceZ(0.9);
//   RefineResult r = RefineUnits(EvaluatorLoss(val, nullptr), units, kept_units, o);
//   // r.units (kept, ascending), r.removed_nodes, r.minimality, r.seconds
#ifndef CIRCUIT_PRUNE_REFINE_H_
#define CIRCUIT_PRUNE_REFINE_H_

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "circuit/prune/ablation.h"
#include "circuit/prune/calibration.h"
#include "circuit/prune/discretizer.h"
#include "circuit/prune/node_index.h"
#include "circuit/prune/progress.h"

namespace circuit::prune {

// Losses of several kept-node sets: keeps (M, N) float32 0/1 -> M estimates.
using BatchLossFn = std::function<std::vector<LossEstimate>(const torch::Tensor& keeps)>;

// Scores on `eval` (calibrated with `cal` when given; borrowed), `stack` sets per
// forward pass.
BatchLossFn EvaluatorLoss(const AblationEvaluator& eval, const LogitCalibration* cal,
                          int stack = 8);

struct RefineOptions {
  double target_loss = 0.15;
  double z = 0.0;      // a set meets the target when loss + z * std_error <= target_loss
  int stack = 8;       // candidate sets scored per call of the loss function
  bool remove = true;  // false: only measure single removals (minimality)
};

struct RefineResult {
  std::vector<int64_t> units;  // kept units after refinement, ascending
  int64_t removed_units = 0;
  int64_t removed_nodes = 0;
  int passes = 0;              // sweeps of single removals
  int64_t evaluations = 0;     // kept-node sets scored
  double seconds = 0.0;
  LossEstimate loss;           // of the final set
  // Per unit of `units`: loss + z * std_error with that unit also removed (last sweep).
  std::vector<double> removal_bound;
  // Share of the final nodes whose unit's single removal breaks the target.
  double minimality = std::numeric_limits<double>::quiet_NaN();
};

// kept_units: the units of the discretized circuit (any order, unique). Refines
// them (or, with remove = false, measures them) against `loss_of`. The input set
// should meet the target; units are removed only while it does.
RefineResult RefineUnits(const BatchLossFn& loss_of, const MaskUnits& units,
                         const std::vector<int64_t>& kept_units, const RefineOptions& options,
                         const ProgressFn& progress = nullptr);

}  // namespace circuit::prune

#endif  // CIRCUIT_PRUNE_REFINE_H_
