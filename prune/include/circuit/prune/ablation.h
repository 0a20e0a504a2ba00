// Ablating nodes: what a pruned node's activation becomes (PAPER.md §4.3), the
// gate tap that blends kept and ablated values, and fast task scoring of a set
// of kept nodes. Shared by mask training, discretization, verification and
// attribution.
//
//   AblationEvaluator eval(model, index, means, Ablation::kMean, data.validation);
//   torch::Tensor keep = torch::zeros({index.total()});     // (N) 1 = kept
//   keep.index_fill_(0, circuit_nodes, 1.0);
//   TaskScore s = eval.Score(keep);                          // s.loss, s.accuracy
#ifndef CIRCUIT_PRUNE_ABLATION_H_
#define CIRCUIT_PRUNE_ABLATION_H_

#include <torch/torch.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "circuit/core/model.h"
#include "circuit/core/task.h"
#include "circuit/core/task_eval.h"
#include "circuit/prune/calibration.h"
#include "circuit/prune/node_index.h"

namespace circuit::prune {

// Prompts per forward pass when scoring. Batches hold pairs of similar length
// and pad to their longest prompt; smaller batches pad less and stay in cache,
// and on CPU their per-pass overhead is small: on the quote task, 256 prompts
// scored in batches of 8 take 232 ms, of 16 236 ms, of 32 251 ms, of 64 308 ms
// (bench_prune BM_QuoteEvaluation, docs/performance.md); the quickstart's
// extraction is 13 % faster at 16 than at 32.
inline constexpr int kEvalBatch = 16;

// What a pruned node is replaced by.
enum class Ablation {
  kMean,      // its mean over pretraining text (the paper's choice)
  kZero,      // zero
  kResample,  // its activation on another prompt of the batch (same position)
};
// "mean" | "zero" | "resample"; errors name the value.
absl::StatusOr<Ablation> ParseAblation(const std::string& name);
std::string AblationName(Ablation ablation);

// Per-site views of a flat (N) tensor: result[site] is (site_width).
std::vector<torch::Tensor> SplitBySite(const torch::Tensor& flat, const NodeIndex& index);

// Whether scoring passes run each twin pair's common prefix once (PrefixSplit):
// yes, unless $CIRCUIT_SHARE_PREFIXES is 0 (to compare; the figures agree up to
// float rounding).
bool SharePrefixes();

// A batch's twin pairs split at their common prefix (PrefixSplit) where that
// pays: SharePrefixes(), a model that splits, mean or zero ablation (resample
// donors need whole rows), an even batch, and a tenth of the token rows saved.
// Otherwise empty (undefined tensors).
PrefixSplit TwinSplit(const TapModel& model, const TaskBatch& batch, Ablation ablation);
// The logits at the batch's answer positions (B, V): through `split` where it
// is defined (TwinSplit), else AnswerLogits; with resample ablation ForwardAt
// (its donors must come from the same positions: the whole last layer).
torch::Tensor BatchAnswerLogits(const TapModel& model, const TaskBatch& batch,
                                const PrefixSplit& split, Ablation ablation, const Taps* taps);

// The gates of a kept-node set, keep (N) 0/1, per site on `device`: undefined
// where every node is kept (the site needs no tap at all).
std::vector<torch::Tensor> KeepGates(const torch::Tensor& keep, const NodeIndex& index,
                                     torch::Device device);

// The replacement value r of the ablated nodes at one site, x: (B, T, width).
// kMean: means[site] (width); kZero: 0; kResample: x of another prompt of the
// batch, x[ResamplePermutation(B)], at the same positions (with B == 1 it falls
// back to the mean). A shifted batch would not do: twin order puts the same
// class at every even position, so a shift by one or two always picks the
// opposite or the same class.
torch::Tensor AblatedValue(const torch::Tensor& x, int site,
                           const std::vector<torch::Tensor>& means, Ablation ablation);

// A derangement of [0, B) (no prompt is its own source), fixed for each B so that
// every site of a forward pass, and every run, uses the same sources. (B) int64, CPU.
torch::Tensor ResamplePermutation(int64_t B);

// A tap computing g * x + (1 - g) * r per channel with gates[site] (width),
// which may carry gradients (mask training, attribution), or (G, 1, 1, width):
// one row per stacked copy of the batch, x (G * B, T, width). Undefined gates
// leave the site alone. `gates` and `means` are borrowed and must outlive the tap.
TapFn GateTap(const std::vector<torch::Tensor>* gates, const std::vector<torch::Tensor>* means,
              Ablation ablation);

// Taps running GateTap(gates, &means, ablation): for mean and zero ablation
// as the taps' gate blend (Taps::SetBlend, which the GPT fuses with AbsTopK),
// with the values kept in *values; for resampling as the tap.
void AddGates(Taps* taps, const std::vector<torch::Tensor>* gates,
              const std::vector<torch::Tensor>* means, Ablation ablation,
              std::vector<torch::Tensor>* values);

struct TaskScore {
  double loss = 0.0;      // mean per prompt, nats
  double accuracy = 0.0;  // share of prompts whose correct candidate wins
  // Standard error of `loss`, over twin pairs (consecutive prompts) since twins
  // are not independent; 0 with fewer than two pairs.
  double loss_std_error = 0.0;
};

// Early stopping for scoring (refinement, discretization): set m stops being
// scored once its mean loss over all the examples is certain to exceed
// above[m]. The per-prompt losses (softplus, calibrated with `cal`) are >= 0,
// so those of the prompts scored so far, summed and divided by the number of
// examples, bound the mean from below; a set is dropped when that bound
// exceeds above[m] by a relative 1e-6 (rounding). A dropped set's remaining
// differences are NaN (ScreenedEstimate turns them into the bound).
// above[m] = +inf: scored in full. Sets that are not dropped are scored
// exactly as without it.
struct GiveUp {
  std::vector<double> above;
  const LogitCalibration* cal = nullptr;
};

// Scores sets of kept nodes on a fixed list of examples, under NoGradGuard.
// The batches are built once. Borrows model and means (they must outlive it).
class AblationEvaluator {
 public:
  // batch_prompts: prompts per forward pass (rounded up to an even number so
  // twins stay together).
  AblationEvaluator(const TapModel& model, const NodeIndex& index,
                    const std::vector<torch::Tensor>& means, Ablation ablation,
                    const std::vector<TaskExample>& examples, int batch_prompts = kEvalBatch);

  // keep: (N) with 1 for kept and 0 for ablated nodes; an undefined tensor keeps
  // every node (the full model). Returns (n_examples) l_correct - l_alternative, CPU.
  torch::Tensor LogitDiffs(const torch::Tensor& keep, const GiveUp* give_up = nullptr) const;
  // The same for M kept-node sets at once, keeps: (M, N); returns (M, n_examples).
  // The sets are stacked along the batch (M copies of each built batch in one
  // forward pass), except for resample ablation, whose donors would then cross
  // copies: there they are scored one after another.
  // give_up: drop sets early (GiveUp); give_up->above has M entries.
  torch::Tensor LogitDiffsMany(const torch::Tensor& keeps, const GiveUp* give_up = nullptr) const;
  // Loss and accuracy of LogitDiffs(keep), calibrated when `cal` is given.
  TaskScore Score(const torch::Tensor& keep, const LogitCalibration* cal = nullptr) const;
  // Same from precomputed differences.
  static TaskScore ScoreDiffs(const torch::Tensor& diffs, const LogitCalibration* cal = nullptr);
  // Loss and standard error of one row of screened differences: ScoreDiffs when
  // complete; for a dropped set (NaN entries), the lower bound of its loss that
  // dropped it, with standard error 0.
  static TaskScore ScreenedScore(const torch::Tensor& diffs, const LogitCalibration* cal = nullptr);

  // Every later pass also runs `fn` at the weight products (edge ablation,
  // bdh_edges.h); the sets are then scored one after another. Not with
  // resample ablation.
  void SetProduct(ProductFn fn);

  int64_t num_examples() const { return n_examples_; }
  int64_t forward_passes() const { return forward_passes_; }
  // Prompt rows scored, summed over the sets (dropped sets count what they ran).
  int64_t rows_scored() const { return rows_scored_; }

 private:
  const TapModel& model_;
  const NodeIndex& index_;
  const std::vector<torch::Tensor>& means_;
  Ablation ablation_;
  ProductFn product_;
  std::vector<TaskBatch> batches_;  // pairs sorted by length
  std::vector<PrefixSplit> splits_;  // per batch: its twins' prefixes, or empty
  torch::Tensor order_;             // (n_examples) example index of each batched row
  int64_t n_examples_ = 0;
  mutable int64_t forward_passes_ = 0;
  mutable int64_t rows_scored_ = 0;
};

}  // namespace circuit::prune

#endif  // CIRCUIT_PRUNE_ABLATION_H_
