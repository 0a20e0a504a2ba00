// Mask training (PAPER.md §4.5–4.6): minimise task loss + c·k or c·log(k) over
// the mask parameters tau only, k = Σ Heaviside(tau) (differentiable through the
// surrogate), with AdamW, linear LR decay, gradient-RMS clipping and epochs
// over the task's train split. The model is frozen.
//
//   MaskTrainOptions o;                         // the paper's tuned centres
//   CIRCUIT_ASSIGN_OR_RETURN(MaskTrainResult r,
//       TrainMasks(model, index, units, means, data.train, o, /*seed=*/0, progress));
//   torch::Tensor tau = r.tau;                  // (n_units), sort to rank nodes
#ifndef CIRCUIT_PRUNE_MASK_OPTIMIZER_H_
#define CIRCUIT_PRUNE_MASK_OPTIMIZER_H_

#include <torch/torch.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "circuit/core/model.h"
#include "circuit/core/task.h"
#include "circuit/prune/ablation.h"
#include "circuit/prune/node_index.h"
#include "circuit/prune/node_mask.h"
#include "circuit/prune/progress.h"

namespace circuit::prune {

enum class Penalty {
  kLog,     // c · log(1 + k): marginal cost c / (1 + k) per node (the release's logk_coef)
  kLinear,  // c · k (Drori's replication, centre 1e-4)
};
// "log" | "linear"; errors name the value.
absl::StatusOr<Penalty> ParsePenalty(const std::string& name);
std::string PenaltyName(Penalty penalty);
// The default coefficient c of a penalty: 0.0048 (log), 1e-4 (linear).
double DefaultPenaltyCoef(Penalty penalty);

// Defaults: the tuned config of the published algorithm (PAPER.md §4.6,
// csp_yolo2 / bracket counting / prune_v4), except `epochs` (the paper's 32–48
// epochs are over an unknown train-set size; 16 epochs over 512 pairs at batch
// 64 = 128 steps converge on the bundled model in seconds).
struct MaskTrainOptions {
  double lr = 0.0048;
  double weight_decay = 6.5e-4;  // decoupled (AdamW), pulls tau towards 0
  double beta1 = 0.9;
  double inv_beta2 = 0.25;       // beta2 = 1 - inv_beta2
  double heaviside_temp = 0.234; // T of the surrogate
  MaskInit init;                 // tau ~ N(0.072, 0.0125)
  Penalty penalty = Penalty::kLog;
  double penalty_coef = -1.0;    // < 0: DefaultPenaltyCoef(penalty)
  int epochs = 16;
  int batch = 64;                // task datapoints per step = 2 * batch prompts
  double warmup_frac = 0.0;      // linear warmup share of the steps, then linear decay to 0
  double grad_clip_rms = 1.0;    // scale tau's gradient down when its RMS exceeds this; 0: off
  Ablation ablation = Ablation::kMean;
};

// Checks ranges; the message names the field and value.
absl::Status ValidateMaskTrainOptions(const MaskTrainOptions& options);

// Presets of the mask settings. kPaper: the defaults above. kSmall: for models of
// a few thousand nodes, where the log penalty's pull per node (c / (1 + k)) is
// lost in the task gradient's noise and ~1,000 of the bundled model's 5,760 nodes
// stay (docs/pruning.md, "Settings for small models"): linear penalty 1e-3,
// lr 0.02, batch 16, 4 epochs. kAuto: kSmall for models below kSmallModelNodes
// nodes, kPaper from there (the paper's models have 10^5 nodes and more).
enum class MaskPreset { kAuto, kSmall, kPaper };
inline constexpr int64_t kSmallModelNodes = 32768;
// "auto" | "small" | "paper"; errors name the value.
absl::StatusOr<MaskPreset> ParseMaskPreset(const std::string& name);
std::string MaskPresetName(MaskPreset preset);
// kAuto resolved for a model of `total_nodes` nodes; the others as they are.
MaskPreset ResolveMaskPreset(MaskPreset preset, int64_t total_nodes);
// The options of a preset (kAuto resolved for `total_nodes`).
MaskTrainOptions MaskPresetOptions(MaskPreset preset, int64_t total_nodes);

struct MaskTrainResult {
  torch::Tensor tau;            // (n_units) float32, CPU: the trained mask parameters
  int64_t steps = 0;
  double seconds = 0.0;         // wall time of the loop
  double forward_seconds = 0.0; // of which forward passes (model + loss)
  double backward_seconds = 0.0;// of which backward passes
  double final_task_loss = 0.0; // mean task loss over the last epoch (with the masks' gates)
  double final_kept = 0.0;      // nodes kept at the end (tau >= 0)
};

// Trains masks on `train` (twin order; an even number of examples). Deterministic
// for `seed` (init and batch order). `means` must be per-site (width) tensors on
// the model's device when ablation is kMean (resample also falls back to them).
// Errors: bad options, fewer than one datapoint.
absl::StatusOr<MaskTrainResult> TrainMasks(const TapModel& model, const NodeIndex& index,
                                           const MaskUnits& units,
                                           const std::vector<torch::Tensor>& means,
                                           const std::vector<TaskExample>& train,
                                           const MaskTrainOptions& options, uint64_t seed,
                                           const ProgressFn& progress = nullptr);

}  // namespace circuit::prune

#endif  // CIRCUIT_PRUNE_MASK_OPTIMIZER_H_
