#include "circuit/core/sparsity.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "circuit/core/model.h"
#include "circuit/core/status.h"

namespace circuit {

std::vector<SparseParameter> SparsityPlan(const ModelConfig& config,
                                          const SparsityOptions& options) {
  const int j = std::max(0, options.min_per_channel);
  std::vector<SparseParameter> plan;
  for (const auto& [name, shape] : Model::ParameterShapes(config)) {
    SparseParameter p{name, SparsityGroup::kHidden, ChannelAxis::kNone, 0};
    if (name == "transformer.wte.weight" || name == "lm_head.weight") {
      p.group = SparsityGroup::kEmbed;
    } else if (name == "transformer.wpe.weight") {
      // A concatenated position table is never sparsified (§2.1).
      if (!options.sparsify_wpe || config.d_pos_emb > 0) continue;
    } else if (absl::EndsWith(name, "mlp.c_fc.weight") || absl::EndsWith(name, "attn.c_attn.weight")) {
      p.axis = ChannelAxis::kRow;
      p.min_per_channel = j;
    } else if (absl::EndsWith(name, "c_proj.weight")) {
      p.axis = ChannelAxis::kColumn;
      p.min_per_channel = j;
    } else if (absl::EndsWith(name, ".bias") && absl::StartsWith(name, "transformer.h.")) {
      if (!options.sparsify_biases) continue;
      p.group = SparsityGroup::kEmbed;  // "pfrac / ef", like the embeddings (§2.1)
    } else {
      continue;  // norms, sinks, bigram table, final_logits_bias
    }
    if (p.axis == ChannelAxis::kNone) p.min_per_channel = 0;
    plan.push_back(std::move(p));
  }
  return plan;
}

int64_t KeepCount(int64_t numel, double fraction) {
  const double k = std::floor(fraction * static_cast<double>(numel));
  return std::clamp<int64_t>(static_cast<int64_t>(k), std::min<int64_t>(1, numel), numel);
}

torch::Tensor TopKMask(const torch::Tensor& w, int64_t k, ChannelAxis axis,
                       int64_t min_per_channel) {
  torch::NoGradGuard no_grad;
  const int64_t numel = w.numel();
  torch::Tensor score = w.detach().abs();  // same shape as w
  if (axis != ChannelAxis::kNone && min_per_channel > 0) {
    CIRCUIT_CHECK(w.dim() == 2);
    // The channel index is dim 0 for kRow; its entries run along dim 1.
    const int64_t along = axis == ChannelAxis::kRow ? 1 : 0;
    const int64_t j = std::min<int64_t>(min_per_channel, w.size(along));
    const int64_t channels = w.size(1 - along);
    torch::Tensor protect_idx = std::get<1>(score.topk(j, along, /*largest=*/true, /*sorted=*/false));
    // Protected entries outrank everything, so the global top-k below includes them.
    score.scatter_(along, protect_idx, std::numeric_limits<float>::infinity());
    k = std::max(k, j * channels);
  }
  if (k >= numel) return torch::ones_like(w, torch::kBool);
  if (k <= 0) return torch::zeros_like(w, torch::kBool);
  torch::Tensor keep = std::get<1>(score.view(-1).topk(k, 0, /*largest=*/true, /*sorted=*/false));
  torch::Tensor mask = torch::zeros({numel}, w.options().dtype(torch::kBool));
  mask.index_fill_(0, keep, true);
  return mask.view(w.sizes());
}

int64_t ProjectTopK(const torch::Tensor& w, int64_t k, ChannelAxis axis, int64_t min_per_channel) {
  torch::NoGradGuard no_grad;
  torch::Tensor mask = TopKMask(w, k, axis, min_per_channel);
  torch::Tensor data = w.detach();  // shares storage with w
  data.masked_fill_(mask.logical_not(), 0.0);
  return mask.sum().item<int64_t>();
}

}  // namespace circuit
