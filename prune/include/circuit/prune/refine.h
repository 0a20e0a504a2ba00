// Refinement after discretization, and the minimality of a circuit.
//
// Discretization keeps the top k units of one ranking; when that ranking is
// uninformative (saturated attention, ties at tau = -1) the top k carry many
// units the task does not need. Refinement removes them in two steps, on two
// different splits, so that its many accept/reject decisions do not spend the
// margin of the split that certifies the result:
//
//  1. Selection, on `select` (extract: a part of the train split). A sweep
//     scores every single removal; the units whose removal keeps the bound
//     (loss + z standard errors) at or under the target are candidates, least
//     important first. A galloping search (lengths 1, 2, 4, ... then bisection,
//     one set per call) finds the longest run of candidates, in order, whose
//     joint removal still meets the target; the candidate that breaks it stays,
//     and the search resumes after it. Sweeps repeat until one finds no
//     candidate; the last sweep is the minimality measurement.
//  2. Confirmation, on `confirm` (extract: the validation split), after each
//     pass that removed units: the set is scored once. If its bound is over the
//     target, the pass's removals are put back in reverse order of removal, the
//     fewest found by bisection over the removal order (the set before the pass
//     met the target there), selection stops, and a last sweep on `select`
//     measures the minimality of the set kept.
//
// Minimality is the share of the circuit's nodes whose single removal breaks
// the target on the selection split (1.0: every node is needed).
//
//   RefineOptions o;  o.target_loss = 0.15;  o.z = ConfidenceZ(0.9);
//   RefineResult r = RefineUnits(EvaluatorLoss(sel, nullptr), units, kept_units, o,
//                                nullptr, EvaluatorLoss(val, nullptr));
//   // r.units (kept, ascending), r.removed_nodes, r.readded_nodes, r.minimality
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
// above: empty, or (M) with what the caller decides by: a set whose loss is
// certain to exceed above[m] may stop being scored early, and its estimate is
// then a lower bound of its loss (> above[m]) with std_error 0 (GiveUp).
using BatchLossFn = std::function<std::vector<LossEstimate>(const torch::Tensor& keeps,
                                                            const std::vector<double>& above)>;

// Scores on `eval` (calibrated with `cal` when given; borrowed), `stack` sets per
// forward pass; with `give_up`, sets are dropped early as `above` allows.
BatchLossFn EvaluatorLoss(const AblationEvaluator& eval, const LogitCalibration* cal,
                          int stack = 8, bool give_up = true);

struct RefineOptions {
  double target_loss = 0.15;
  double z = 0.0;      // a set meets the target when loss + z * std_error <= target_loss
  int stack = 8;       // single-removal sets scored per call of the loss function
  bool remove = true;  // false: only measure single removals (minimality)
  // Selection sets that only need to fail (single removals, galloping probes)
  // may stop being scored once their loss is certain to exceed the target
  // (BatchLossFn's `above`): the decisions, the kept units and the losses of
  // the sets that meet the target are those of a full scoring; only
  // removal_bound of the units whose removal breaks the target is then a lower
  // bound (still above the target).
  bool give_up = true;
  // When the confirmation split puts units back, refinement ends with a sweep
  // of the kept set's single removals (removal_bound, minimality). false: no
  // such sweep: removal_bound is then empty and minimality NaN (re-extractions
  // that read only the set).
  bool final_sweep = true;
};

struct RefineResult {
  std::vector<int64_t> units;  // kept units after refinement, ascending
  int64_t removed_units = 0;
  int64_t removed_nodes = 0;
  int passes = 0;              // sweeps of single removals
  int64_t evaluations = 0;     // kept-node sets scored on the selection split
  double seconds = 0.0;
  LossEstimate loss;           // of the final set: on the confirmation split when sets
                               // were scored there, else on the selection split
  LossEstimate select_loss;    // of the final set, on the selection split
  // Confirmation: sets scored on the confirmation split, and the units (nodes)
  // put back because the selected set missed the target there.
  int64_t confirm_evaluations = 0;
  int64_t readded_units = 0;
  int64_t readded_nodes = 0;
  // Per unit of `units`: loss + z * std_error with that unit also removed
  // (selection split, last sweep).
  std::vector<double> removal_bound;
  // Share of the final nodes whose unit's single removal breaks the target.
  double minimality = std::numeric_limits<double>::quiet_NaN();
};

// kept_units: the units of the discretized circuit (any order, unique). Refines
// them (or, with remove = false, measures them) with removals selected on
// `select` and, when `confirm` is given, confirmed on it. The input set must
// meet the target on `confirm` (discretization chose it there); on `select`
// units are removed only while the target holds.
RefineResult RefineUnits(const BatchLossFn& select, const MaskUnits& units,
                         const std::vector<int64_t>& kept_units, const RefineOptions& options,
                         const ProgressFn& progress = nullptr,
                         const BatchLossFn& confirm = nullptr);

}  // namespace circuit::prune

#endif  // CIRCUIT_PRUNE_REFINE_H_
