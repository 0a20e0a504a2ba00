// What ExtractCircuit's steps pass between them (pruner.cc, pruner_refine.cc):
// the candidate circuit of one scoring, and the steps after discretization.
#ifndef CIRCUIT_PRUNE_SRC_PRUNER_INTERNAL_H_
#define CIRCUIT_PRUNE_SRC_PRUNER_INTERNAL_H_

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "circuit/core/circuit.h"
#include "circuit/core/taps.h"
#include "circuit/core/task.h"
#include "circuit/prune/ablation.h"
#include "circuit/prune/calibration.h"
#include "circuit/prune/discretizer.h"
#include "circuit/prune/node_index.h"
#include "circuit/prune/pruner.h"

namespace circuit::prune::internal {

// One scored-and-discretized attempt (one search setting, or attribution).
struct Candidate {
  torch::Tensor unit_score;        // (U) tau or attribution score
  std::vector<int64_t> flat;       // kept nodes, ascending flat index
  std::vector<CircuitEdge> edges;  // between `flat` nodes, rows = positions in `flat`
  DiscretizeResult disc;
  std::vector<int64_t> curve_nodes;  // disc.curve_units converted to node counts
  LogitCalibration calibration;
  int setting = 0;
  std::string setting_text;
  int64_t active = 0;
  int64_t tied_nodes = 0;
  std::string tie_note;
};

// Appends a warning to stats->note ("; " between notes).
inline void AddNote(ExtractStats* stats, const std::string& note) {
  stats->note = stats->note.empty() ? note : absl::StrCat(stats->note, "; ", note);
}

// Refines the chosen candidate in place (refine.h: removals selected on part of
// the train split, confirmed on the validation split) or, with options.refine
// off, only measures it; returns its minimality (NaN when not measured).
double RefineCandidate(const TapModel& model, const NodeIndex& index, const MaskUnits& units,
                       const std::vector<torch::Tensor>& means, const TaskData& task,
                       const AblationEvaluator& val, const ExtractOptions& options,
                       const ProgressFn& progress, Candidate* c, ExtractStats* stats);

// The circuit of a nodes-only re-extraction (ExtractOptions::nodes_only): the
// node set, its edges and scores, its test loss from one pass; no verification.
Circuit NodesOnlyCircuit(const TapModel& model, const NodeIndex& index,
                         const std::vector<torch::Tensor>& means, const TaskData& task,
                         const ExtractOptions& options, const Candidate& c, const MaskUnits& units);

}  // namespace circuit::prune::internal

#endif  // CIRCUIT_PRUNE_SRC_PRUNER_INTERNAL_H_
