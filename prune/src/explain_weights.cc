// What the weights alone say about a node: the output tokens its residual
// write promotes and suppresses, and the input tokens whose embedding drives it.
// Both follow the direct path only (later layers and the attention mixing are
// left out), which is exact for final_resid and the embedding at layer 0.
#include <algorithm>

#include "explain_internal.h"

namespace circuit::prune::internal {
namespace {

// The residual direction (d_model) that one unit of the node's activation adds,
// or undefined when the node writes no residual direction of its own.
torch::Tensor WriteDirection(const Model& model, const Node& node) {
  const ModelConfig& c = model.config();
  using L = NodeLocation;
  switch (node.location) {
    case L::kAttnResidDelta:
    case L::kMlpResidDelta:
    case L::kFinalResid: {
      torch::Tensor unit = torch::zeros({c.d_model}, model.wte().options());
      unit[node.index] = 1.0;
      return unit;
    }
    case L::kAttnV:  // through the head's output projection
      return model.layer(node.layer).attn_proj_w.select(1, node.index);
    case L::kMlpPostAct:  // through the MLP's output projection
      return model.layer(node.layer).mlp_proj_w.select(1, node.index);
    default:
      return {};
  }
}

std::vector<TokenScore> Scores(const torch::Tensor& values, const torch::Tensor& ids,
                               const std::vector<std::string>& vocab) {
  const torch::Tensor v = values.to(torch::kCPU, torch::kFloat32).contiguous();
  const torch::Tensor i = ids.to(torch::kCPU, torch::kInt64).contiguous();
  std::vector<TokenScore> out;
  for (int64_t r = 0; r < v.numel(); ++r) {
    const int32_t id = static_cast<int32_t>(i.data_ptr<int64_t>()[r]);
    out.push_back(TokenScore{id, vocab[id], v.data_ptr<float>()[r]});
  }
  return out;
}

}  // namespace

void FillOutputTokens(const Model& model, const Node& node, int top,
                      const std::vector<std::string>& vocab, NodeExplanation* e) {
  const torch::Tensor direction = WriteDirection(model, node);  // (d_model)
  if (!direction.defined()) return;
  const torch::Tensor ln_f = model.Parameter("transformer.ln_f.weight");  // (d_model)
  // effect: (V) change of each logit per unit of activation, before the norm's 1/rms.
  const torch::Tensor effect = torch::mv(model.lm_head(), direction.to(ln_f.dtype()) * ln_f);
  const int64_t k = std::min<int64_t>(top, effect.numel());
  const auto [up, up_ids] = effect.topk(k, 0, /*largest=*/true);
  const auto [down, down_ids] = effect.topk(k, 0, /*largest=*/false);
  e->promoted = Scores(up, up_ids, vocab);
  e->suppressed = Scores(down, down_ids, vocab);
}

void FillInputTokens(const Model& model, const Node& node, int top,
                     const std::vector<std::string>& vocab, NodeExplanation* e) {
  const ModelConfig& c = model.config();
  using L = NodeLocation;
  const bool act_in = node.location == L::kAttnActIn || node.location == L::kMlpActIn;
  if (!(act_in || node.location == L::kFinalResid) || node.index >= c.d_model) return;
  // Each token's embedding at a typical position: (V, d_model).
  torch::Tensor embed = model.wte();
  if (c.d_pos_emb == 0) embed = embed + model.wpe().mean(0);
  torch::Tensor value;  // (V)
  if (act_in) {
    const LayerWeights& w = model.layer(node.layer);
    value = RmsNorm(embed, node.location == L::kAttnActIn ? w.ln_1 : w.ln_2).select(1, node.index);
  } else {
    value = embed.select(1, node.index);  // final_resid is read before ln_f
  }
  const int64_t k = std::min<int64_t>(top, value.numel());
  const torch::Tensor ids = std::get<1>(value.abs().topk(k));
  e->input_tokens = Scores(value.index_select(0, ids), ids, vocab);
}

}  // namespace circuit::prune::internal
