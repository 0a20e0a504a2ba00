// Ablation taps and batched scoring of kept-node sets.
#include "circuit/prune/ablation.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "circuit/core/status.h"

namespace circuit::prune {

absl::StatusOr<Ablation> ParseAblation(const std::string& name) {
  if (name == "mean") return Ablation::kMean;
  if (name == "zero") return Ablation::kZero;
  if (name == "resample") return Ablation::kResample;
  return absl::InvalidArgumentError(
      absl::StrCat("ablation: unknown value '", name, "' (expected mean, zero or resample)"));
}

std::string AblationName(Ablation ablation) {
  switch (ablation) {
    case Ablation::kMean: return "mean";
    case Ablation::kZero: return "zero";
    case Ablation::kResample: return "resample";
  }
  return "mean";
}

std::vector<torch::Tensor> SplitBySite(const torch::Tensor& flat, const NodeIndex& index) {
  CIRCUIT_CHECK(flat.dim() == 1 && flat.size(0) == index.total());
  std::vector<torch::Tensor> out(index.num_sites());
  for (int s = 0; s < index.num_sites(); ++s) {
    out[s] = flat.narrow(0, index.site_offset(s), index.site_width(s));
  }
  return out;
}

torch::Tensor ResamplePermutation(int64_t B) {
  auto gen = at::detail::createCPUGenerator(0x7e5a3b1eULL + static_cast<uint64_t>(B));
  torch::Tensor perm = torch::randperm(B, gen, torch::kInt64);  // (B)
  int64_t* p = perm.data_ptr<int64_t>();
  // Swapping a fixed point with its neighbour removes it without creating another.
  for (int64_t i = 0; i < B && B >= 2; ++i) {
    if (p[i] == i) std::swap(p[i], p[(i + 1) % B]);
  }
  return perm;
}

torch::Tensor AblatedValue(const torch::Tensor& x, int site,
                           const std::vector<torch::Tensor>& means, Ablation ablation) {
  const int64_t B = x.size(0);
  if (ablation == Ablation::kZero) return torch::zeros_like(x);
  if (ablation == Ablation::kResample && B >= 2) {
    return x.index_select(0, ResamplePermutation(B).to(x.device()));
  }
  const torch::Tensor& m = means[site];  // (width)
  CIRCUIT_CHECK(m.defined());
  return m.to(x.dtype()).expand_as(x);
}

TapFn GateTap(const std::vector<torch::Tensor>* gates, const std::vector<torch::Tensor>* means,
              Ablation ablation) {
  return [gates, means, ablation](const TapSite& site, const torch::Tensor& x) -> torch::Tensor {
    const torch::Tensor& g = (*gates)[site.site];  // (width)
    if (!g.defined()) return x;
    const torch::Tensor r = AblatedValue(x, site.site, *means, ablation);  // (B, T, width)
    // r + g * (x - r) = g * x + (1 - g) * r in one fused kernel that keeps no
    // intermediate tensors for the backward pass (it saves x, r and g).
    return torch::lerp(r, x, g.to(x.dtype()));
  };
}

AblationEvaluator::AblationEvaluator(const Model& model, const NodeIndex& index,
                                     const std::vector<torch::Tensor>& means, Ablation ablation,
                                     const std::vector<TaskExample>& examples, int batch_prompts)
    : model_(model), index_(index), means_(means), ablation_(ablation) {
  const int64_t n = static_cast<int64_t>(examples.size());
  const int64_t step = std::max<int64_t>(2, batch_prompts + (batch_prompts % 2));
  // Batches of pairs of similar length waste less compute on padding; twins stay
  // together so that resampling and the twin signs keep their meaning.
  std::vector<int64_t> pairs((n + 1) / 2);
  for (size_t p = 0; p < pairs.size(); ++p) pairs[p] = static_cast<int64_t>(p);
  auto length = [&](int64_t p) {
    size_t len = examples[2 * p].tokens.size();
    if (2 * p + 1 < n) len = std::max(len, examples[2 * p + 1].tokens.size());
    return len;
  };
  std::stable_sort(pairs.begin(), pairs.end(),
                   [&](int64_t a, int64_t b) { return length(a) < length(b); });
  std::vector<int64_t> order;  // example indices in batch order
  for (int64_t p : pairs) {
    order.push_back(2 * p);
    if (2 * p + 1 < n) order.push_back(2 * p + 1);
  }
  for (int64_t start = 0; start < n; start += step) {
    const int64_t end = std::min(n, start + step);
    std::vector<TaskExample> chunk;
    for (int64_t i = start; i < end; ++i) chunk.push_back(examples[order[i]]);
    batches_.push_back(MakeTaskBatch(chunk, model.device()));
  }
  order_ = torch::tensor(order, torch::kInt64);
  n_examples_ = n;
}

torch::Tensor AblationEvaluator::LogitDiffs(const torch::Tensor& keep) const {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> gates(index_.num_sites());
  if (keep.defined()) {
    const torch::Tensor k = keep.to(torch::kCPU, torch::kFloat32);
    std::vector<torch::Tensor> per_site = SplitBySite(k, index_);
    for (int s = 0; s < index_.num_sites(); ++s) {
      // Sites where every node is kept need no tap at all.
      if (per_site[s].min().item<float>() < 1.0f) gates[s] = per_site[s].to(model_.device());
    }
  }
  const bool any = std::any_of(gates.begin(), gates.end(),
                               [](const torch::Tensor& g) { return g.defined(); });
  Taps taps(index_.n_layer());
  if (any) taps.Add(GateTap(&gates, &means_, ablation_));
  std::vector<torch::Tensor> diffs;
  diffs.reserve(batches_.size());
  for (const TaskBatch& b : batches_) {
    torch::Tensor logits = model_.ForwardAt(b.tokens, b.last, any ? &taps : nullptr);  // (B, V)
    torch::Tensor d = logits.gather(1, b.correct.unsqueeze(1)).squeeze(1) -
                      logits.gather(1, b.alternative.unsqueeze(1)).squeeze(1);  // (B)
    diffs.push_back(d.to(torch::kCPU, torch::kFloat32));
    ++forward_passes_;
  }
  if (diffs.empty()) return torch::zeros({0});
  // Back to the order of the examples given.
  return torch::zeros({n_examples_}, torch::kFloat32).index_copy_(0, order_, torch::cat(diffs));
}

torch::Tensor AblationEvaluator::LogitDiffsMany(const torch::Tensor& keeps) const {
  CIRCUIT_CHECK(keeps.dim() == 2 && keeps.size(1) == index_.total());
  const int64_t M = keeps.size(0);
  if (M <= 1 || ablation_ == Ablation::kResample) {
    std::vector<torch::Tensor> rows;
    for (int64_t m = 0; m < M; ++m) rows.push_back(LogitDiffs(keeps[m]));
    return rows.empty() ? torch::zeros({0, n_examples_}) : torch::stack(rows);
  }
  torch::NoGradGuard no_grad;
  const torch::Tensor k = keeps.to(torch::kCPU, torch::kFloat32);
  std::vector<torch::Tensor> set_gates(index_.num_sites());  // (M, 1, width) or undefined
  for (int s = 0; s < index_.num_sites(); ++s) {
    const torch::Tensor g = k.narrow(1, index_.site_offset(s), index_.site_width(s));
    if (g.min().item<float>() < 1.0f) set_gates[s] = g.unsqueeze(1).to(model_.device());
  }
  // The gate tap blends with a (M * B, 1, width) gate: row m * B + i is prompt i under set m.
  std::vector<torch::Tensor> gates(index_.num_sites());
  Taps taps(index_.n_layer());
  taps.Add(GateTap(&gates, &means_, ablation_));
  std::vector<torch::Tensor> diffs;
  for (const TaskBatch& b : batches_) {
    const int64_t B = b.tokens.size(0);
    for (int s = 0; s < index_.num_sites(); ++s) {
      gates[s] = set_gates[s].defined() ? set_gates[s].repeat_interleave(B, 0) : torch::Tensor();
    }
    const torch::Tensor logits =
        model_.ForwardAt(b.tokens.repeat({M, 1}), b.last.repeat({M}), &taps);  // (M * B, V)
    const torch::Tensor d = logits.gather(1, b.correct.repeat({M}).unsqueeze(1)).squeeze(1) -
                            logits.gather(1, b.alternative.repeat({M}).unsqueeze(1)).squeeze(1);
    diffs.push_back(d.view({M, B}).to(torch::kCPU, torch::kFloat32));
    forward_passes_ += M;
  }
  if (diffs.empty()) return torch::zeros({M, 0});
  return torch::zeros({M, n_examples_}, torch::kFloat32).index_copy_(1, order_, torch::cat(diffs, 1));
}

TaskScore AblationEvaluator::ScoreDiffs(const torch::Tensor& diffs, const LogitCalibration* cal) {
  TaskScore score;
  if (diffs.numel() == 0) return score;
  const torch::Tensor sign = TwinSigns(diffs.size(0));
  const LogitCalibration identity;
  const LogitCalibration& c = cal != nullptr ? *cal : identity;
  const torch::Tensor losses = CalibratedLoss(diffs, sign, c).to(torch::kFloat64);
  score.loss = losses.mean().item<double>();
  const int64_t pairs = losses.numel() / 2;
  if (pairs >= 2) {
    const torch::Tensor pair_loss = losses.narrow(0, 0, 2 * pairs).view({pairs, 2}).mean(1);
    score.loss_std_error = pair_loss.std().item<double>() / std::sqrt(static_cast<double>(pairs));
  }
  // A calibrated prediction is right when the calibrated difference is positive.
  torch::Tensor calibrated = diffs * c.scale + sign * c.shift;
  score.accuracy = (calibrated > 0).to(torch::kFloat64).mean().item<double>();
  return score;
}

TaskScore AblationEvaluator::Score(const torch::Tensor& keep, const LogitCalibration* cal) const {
  return ScoreDiffs(LogitDiffs(keep), cal);
}

}  // namespace circuit::prune
