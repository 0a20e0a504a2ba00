// Circuit extraction, the top of the pruning engine (PAPER.md §4): means ->
// node scores (trained masks or attribution patching) -> discretization on the
// validation split -> edges -> verification on the test split -> a Circuit.
//
//   ExtractOptions o;                       // paper defaults, target loss 0.15
//   o.seed = 1;
//   CIRCUIT_ASSIGN_OR_RETURN(Circuit c, ExtractCircuit(model_file, task_data, o, progress));
//   // c.nodes, c.edges, c.circuit_loss, c.loss_vs_k_k / c.loss_vs_k_loss
//
// Deterministic for a seed on a given device and thread count (the caller sets
// torch's threads, e.g. with circuit::ConfigureRuntime).
#ifndef CIRCUIT_PRUNE_PRUNER_H_
#define CIRCUIT_PRUNE_PRUNER_H_

#include <torch/torch.h>

#include <cstdint>
#include <limits>
#include <string>

#include "absl/status/statusor.h"
#include "circuit/core/any_model.h"
#include "circuit/core/checkpoint.h"
#include "circuit/core/circuit.h"
#include "circuit/core/model.h"
#include "circuit/core/task.h"
#include "circuit/prune/ablation.h"
#include "circuit/prune/calibration.h"
#include "circuit/prune/mask_optimizer.h"
#include "circuit/prune/mean_cache.h"
#include "circuit/prune/progress.h"

namespace circuit::prune {

enum class Method {
  kMasks,        // trained node masks (the paper's method)
  kAttribution,  // attribution patching scores (one forward + backward)
};
// "masks" | "attribution"; errors name the value.
absl::StatusOr<Method> ParseMethod(const std::string& name);
std::string MethodName(Method method);

struct ExtractOptions {
  double target_loss = 0.15;           // validation task loss per prompt, nats
  // One-sided confidence with which the validation split must meet the target:
  // the chosen k has loss + z * standard error <= target_loss, z = ConfidenceZ.
  // 0.5: the mean alone (the paper's rule). The default keeps the test-split loss
  // of the circuit under the target in most runs (docs/pruning.md).
  double confidence = 0.9;
  Ablation ablation = Ablation::kMean;  // overrides masks.ablation
  Method method = Method::kMasks;
  MaskTrainOptions masks;              // mask-training hyperparameters (paper centres)
  int search = 0;                      // > 1: try this many settings (search.h), keep the smallest
  bool tie_qk = false;                 // one mask per (query, key) channel pair
  bool calibrate = false;              // fit logit scale + shift (L-BFGS) at every evaluated k
  bool attribution_absolute = true;    // attribution: rank by |score| (false: signed)
  uint64_t seed = 0;
  int eval_batch = kEvalBatch;         // prompts per forward pass when scoring
  int sweep_points = 8;                // coarse loss-vs-k points before bisection
  bool node_importance = true;         // per-node importance on the test split
  // ... for circuits of at most this many nodes (one forward pass per node);
  // larger ones get a note instead (`circuit ablate` computes it). 0: no limit.
  int64_t importance_limit = 500;
  int random_draws = 4;                // random-circuit baseline draws (0: none)
  bool location_importance = true;     // per-(layer, location) importance on the test split
  // Refinement after discretization (refine.h): drop every kept node whose
  // removal keeps the bound under the target, least important first, selected
  // on the first refine_pairs train pairs (0: as many as the validation split
  // has) and confirmed on the validation split (nodes are put back until it
  // meets the target). It, and the minimality measurement on the selection
  // pairs (what remains when refine is off), run for circuits of at most
  // refine_limit nodes (0: no limit): the first sweep alone costs one pass over
  // the selection pairs per node.
  bool refine = true;
  int64_t refine_limit = 500;
  int refine_stack = 8;                // single-removal sets per batched forward pass
  int refine_pairs = 0;
  // Masks: break (near-)ties of tau by attribution scores (one more forward and
  // backward pass over the train split), instead of by node index.
  bool tie_break = true;

  // Pretraining text for the means: (N, T) int64 windows, T <= n_ctx. Undefined:
  // the task's train prompts, concatenated and cut into windows, stand in.
  torch::Tensor mean_windows;
  std::string mean_source = "pretraining text";  // words for reports
  // Mean cache file; "" disables caching. ExtractCircuit(ModelFile) fills in
  // MeansPathFor(file.path) when `means_cache_auto` is set.
  std::string means_cache;
  bool means_cache_auto = true;

  // Re-extractions that read only the node set, the edges and met_target (the
  // audit's controls, seeds and transfer): no verification pass (no
  // importances, no random baseline, no necessity loss; those are NaN),
  // circuit_loss is the chosen nodes' test loss from one pass, full_model_loss
  // is `full_test_loss` when given (else one pass). The scores and refinement
  // are the normal ones.
  bool nodes_only = false;
  // Sets that only need to miss the target stop being scored once they
  // certainly do (GiveUp; refine.h): refinement's single removals and probes
  // always, and with nodes_only (uncalibrated) discretization's points too,
  // whose loss-vs-k values are then lower bounds. Same circuit either way.
  bool give_up = true;
  double full_test_loss = std::numeric_limits<double>::quiet_NaN();
  // Means already resolved for this model (the audit's): used instead of
  // ResolveMeans when set. Borrowed; must outlive the call.
  const MeanCache* means = nullptr;
};

// Where the time went and what was decided; all optional reading.
struct ExtractStats {
  double seconds = 0.0;
  double means_seconds = 0.0;
  double score_seconds = 0.0;       // mask training or attribution
  double discretize_seconds = 0.0;
  double verify_seconds = 0.0;
  double edges_seconds = 0.0;       // BDH edges by attribution (edge_selection.h)
  int64_t mask_steps = 0;           // summed over search settings
  double forward_seconds = 0.0;     // of mask training
  double backward_seconds = 0.0;
  bool met_target = false;
  bool means_reused = false;
  std::string means_source;
  std::string note;                 // warnings worth showing (cache not saved, ...)
  int settings_tried = 0;
  int best_setting = 0;
  std::string best_setting_text;
  int64_t active_after_training = 0;  // units with tau >= 0 (masks)
  double validation_loss = 0.0;       // at the chosen k
  double validation_loss_bound = 0.0; // ... plus z standard errors (what met the target)
  double full_validation_loss = 0.0;
  int64_t evaluations = 0;            // discretization loss evaluations
  LogitCalibration calibration;       // identity unless calibrate
  int64_t total_edges = 0;            // nonzero weights in the six blocks of the model
  double tie_break_seconds = 0.0;     // attribution scores that break tau ties
  std::string tie_note;               // the ranking's cut passes through tied scores
  // Refinement (all zero when it did not run); the nodes and edges are before it.
  bool refined = false;
  double refine_seconds = 0.0;        // refinement, or the minimality sweep alone
  int64_t refine_removed_nodes = 0;
  int refine_passes = 0;
  int64_t refine_evaluations = 0;
  int64_t nodes_before_refine = 0;
  int64_t edges_before_refine = 0;
  double validation_loss_before_refine = 0.0;
  // Test loss of the unrefined set, for comparison (nothing is chosen by it);
  // NaN unless refinement removed nodes.
  double test_loss_before_refine = std::numeric_limits<double>::quiet_NaN();
  int64_t refine_selection_pairs = 0;       // train pairs removals were selected on
  double refine_selection_loss = 0.0;       // the final set's loss on them
  int64_t refine_readded_nodes = 0;         // put back by the validation confirmation
  int64_t refine_confirm_evaluations = 0;   // sets scored on the validation split
};

// Extracts the circuit of `task` from the model of `file` (Circuit fields all
// filled; model_file is the file name of file.path). Errors: bad options, a task
// without train/validation/test examples, means that cannot be computed.
// Missing the target is not an error: stats->met_target says so, and the
// circuit then keeps every node (the full model).
absl::StatusOr<Circuit> ExtractCircuit(const ModelFile& file, const TaskData& task,
                                       const ExtractOptions& options,
                                       const ProgressFn& progress = nullptr,
                                       ExtractStats* stats = nullptr);
// The same for a file of either architecture (the TapModel seam).
absl::StatusOr<Circuit> ExtractCircuit(const AnyModelFile& file, const TaskData& task,
                                       const ExtractOptions& options,
                                       const ProgressFn& progress = nullptr,
                                       ExtractStats* stats = nullptr);

// The same for a bare model of either architecture (tests, planted circuits,
// the audit's re-extractions); no cache unless
// options.means_cache is set.
absl::StatusOr<Circuit> ExtractCircuitFromModel(const TapModel& model, const std::string& model_file,
                                                const std::string& model_digest,
                                                const TaskData& task,
                                                const ExtractOptions& options,
                                                const ProgressFn& progress = nullptr,
                                                ExtractStats* stats = nullptr);

// The means ExtractCircuit uses: from options.mean_windows (or the task's train
// prompts), through the cache file when options.means_cache is set.
absl::StatusOr<MeanCache> ResolveMeans(const TapModel& model, const std::string& model_digest,
                                       const TaskData& task, const ExtractOptions& options,
                                       ExtractStats* stats = nullptr);

// Windows of `length` tokens cut from the concatenated token lists of `examples`
// (the stand-in for pretraining text). (N, length) int64; errors when too short.
absl::StatusOr<torch::Tensor> WindowsFromExamples(const std::vector<TaskExample>& examples,
                                                  int length);

}  // namespace circuit::prune

#endif  // CIRCUIT_PRUNE_PRUNER_H_
