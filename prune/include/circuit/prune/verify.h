// Verification of a circuit on held-out prompts (PAPER.md §4.10, §8.9):
//   sufficiency  — loss with everything outside the circuit ablated;
//   necessity    — loss with only the circuit's nodes ablated;
//   baseline     — loss of random circuits with the same number of nodes at
//                  every (layer, location), averaged over a few draws;
//   importance   — per node: loss when that node is ablated as well; per
//                  (layer, location): loss when all its circuit nodes are.
//
//   CIRCUIT_ASSIGN_OR_RETURN(Verification v,
//       VerifyCircuit(model, index, means, data.test, circuit_flat, VerifyOptions{}));
//   v.circuit.loss, v.necessity.loss, v.node_importance[i]
#ifndef CIRCUIT_PRUNE_VERIFY_H_
#define CIRCUIT_PRUNE_VERIFY_H_

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "circuit/core/model.h"
#include "circuit/core/task.h"
#include "circuit/prune/ablation.h"
#include "circuit/prune/calibration.h"
#include "circuit/prune/node_index.h"
#include "circuit/prune/progress.h"

namespace circuit::prune {

struct VerifyOptions {
  Ablation ablation = Ablation::kMean;
  int batch_prompts = kEvalBatch;
  uint64_t seed = 0;            // random baseline circuits
  int random_draws = 4;         // 0: no baseline
  bool node_importance = true;  // one forward sweep per circuit node
  bool location_importance = true;
  // Applied to every ablated evaluation (not to the full model) when set. Borrowed.
  const LogitCalibration* calibration = nullptr;
};

struct Verification {
  TaskScore full;       // the unablated model
  TaskScore circuit;    // sufficiency
  TaskScore necessity;  // circuit ablated, rest intact
  TaskScore random;     // mean over random_draws random circuits of the same shape
  std::vector<double> node_importance;                // per circuit node, in input order
  std::map<std::string, double> location_importance;  // "L2 attn.q" -> loss
  int64_t forward_passes = 0;
};

// "L2 attn.q", "L4 final_resid": the key of location_importance.
std::string LocationKey(int layer, NodeLocation loc);

// circuit: flat node indices (see NodeIndex), unique. `examples`: the test split.
// Errors: an index outside the model, a duplicate, or no examples.
absl::StatusOr<Verification> VerifyCircuit(const TapModel& model, const NodeIndex& index,
                                           const std::vector<torch::Tensor>& means,
                                           const std::vector<TaskExample>& examples,
                                           const std::vector<int64_t>& circuit,
                                           const VerifyOptions& options,
                                           const ProgressFn& progress = nullptr);

}  // namespace circuit::prune

#endif  // CIRCUIT_PRUNE_VERIFY_H_
