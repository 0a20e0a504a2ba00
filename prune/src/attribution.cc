// Attribution scores from the gradient of the task loss at gates = 1.
#include "circuit/prune/attribution.h"

#include <algorithm>
#include <mutex>
#include <numeric>
#include <vector>

#include "circuit/core/runtime.h"
#include "circuit/core/task_eval.h"

namespace circuit::prune {

absl::StatusOr<torch::Tensor> AttributionScores(const TapModel& model, const NodeIndex& index,
                                                const MaskUnits& units,
                                                const std::vector<torch::Tensor>& means,
                                                const std::vector<TaskExample>& examples,
                                                const AttributionOptions& options,
                                                const ProgressFn& progress) {
  if (examples.empty()) return absl::InvalidArgumentError("attribution: no examples");
  torch::AutoGradMode grad_mode(/*enabled=*/true);
  // gates: (N) leaf at 1.
  torch::Tensor gates = torch::ones({index.total()}, torch::TensorOptions()
                                                         .dtype(torch::kFloat32)
                                                         .device(model.device())
                                                         .requires_grad(true));
  std::vector<torch::Tensor> site_gates = SplitBySite(gates, index);
  Taps taps(index.layout());
  std::vector<torch::Tensor> values;
  AddGates(&taps, &site_gates, &means, options.ablation, &values);

  const int64_t n = static_cast<int64_t>(examples.size());
  const int64_t step = std::max(2, options.batch_prompts + options.batch_prompts % 2);
  const int64_t n_batches = (n + step - 1) / step;
  // Twin pairs (examples 2p, 2p + 1) longest first: a batch's prompts are
  // padded to its longest, and the threads take the long batches first.
  std::vector<int64_t> pairs(n / 2);
  std::iota(pairs.begin(), pairs.end(), 0);
  auto length = [&](int64_t p) {
    return std::max(examples[2 * p].tokens.size(), examples[2 * p + 1].tokens.size());
  };
  std::stable_sort(pairs.begin(), pairs.end(),
                   [&](int64_t a, int64_t b) { return length(a) > length(b); });
  std::vector<int64_t> order;  // example indices in batch order
  for (int64_t p : pairs) order.insert(order.end(), {2 * p, 2 * p + 1});
  if (n % 2 == 1) order.push_back(n - 1);
  // Each batch's gradient on its own (the batches spread over the threads),
  // then summed in batch order as backward() would have accumulated them.
  std::vector<torch::Tensor> grads(n_batches);
  std::mutex progress_mu;
  int64_t done = 0;
  ParallelFor(n_batches, [&](int64_t i) {
    const int64_t start = i * step, end = std::min(n, start + step);
    std::vector<TaskExample> chunk;
    for (int64_t j = start; j < end; ++j) chunk.push_back(examples[order[j]]);
    const TaskBatch batch = MakeTaskBatch(chunk, model.device());
    const torch::Tensor logits = BatchAnswerLogits(
        model, batch, TwinSplit(model, batch, options.ablation), options.ablation, &taps);  // (B, V)
    // Weighted so that the summed gradient is that of the mean over all prompts.
    torch::Tensor loss = TaskLoss(logits, batch) * (static_cast<double>(end - start) / n);
    grads[i] = torch::autograd::grad({loss}, {gates})[0];
    if (!progress) return;
    std::lock_guard<std::mutex> lock(progress_mu);
    done += end - start;
    progress("attribution", static_cast<double>(done) / n);
  });
  torch::NoGradGuard no_grad;
  torch::Tensor grad = grads[0];
  for (int64_t i = 1; i < n_batches; ++i) grad = grad + grads[i];
  // L(g_i = 0) - L(1) ≈ -dL/dg_i; per unit the sum over its nodes.
  torch::Tensor node_score = -grad.to(torch::kCPU, torch::kFloat32);  // (N)
  torch::Tensor unit = torch::tensor(units.node_unit, torch::kInt64);
  torch::Tensor score = torch::zeros({units.n_units}, torch::kFloat32).index_add_(0, unit, node_score);
  if (options.absolute) score = score.abs();
  return score;
}

}  // namespace circuit::prune
