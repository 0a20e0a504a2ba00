// Recording circuit nodes for explanations: one tap per site that holds circuit
// nodes keeps just their channels, so a pass over text costs one forward pass
// whatever the circuit's size.
#include <algorithm>
#include <cmath>
#include <limits>

#include "explain_internal.h"

namespace circuit::prune::internal {

NodeRecorder::NodeRecorder(const Model& model, const std::vector<Node>& nodes,
                           const std::vector<int>& full_qk_layers)
    : n_nodes_(static_cast<int64_t>(nodes.size())),
      taps_(model.config().n_layer),
      sites_(NumTapSites(model.config().n_layer)),
      captured_(sites_.size()),
      q_(model.config().n_layer),
      k_(model.config().n_layer) {
  std::vector<std::vector<int64_t>> channels(sites_.size()), rows(sites_.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    const int site = TapSiteIndex(nodes[i].layer, nodes[i].location);
    channels[site].push_back(nodes[i].index);
    rows[site].push_back(static_cast<int64_t>(i));
  }
  for (size_t s = 0; s < sites_.size(); ++s) {
    if (channels[s].empty()) continue;
    sites_[s].channels = torch::tensor(channels[s], torch::kInt64).to(model.device());
    sites_[s].rows = torch::tensor(rows[s], torch::kInt64);
    const TapSite site = TapSiteAt(static_cast<int>(s), model.config().n_layer);
    taps_.AddAt(site.layer, site.location, [this](const TapSite& at, const torch::Tensor& x) {
      captured_[at.site] = x.index_select(-1, sites_[at.site].channels);  // (B, T, m)
      return x;
    });
  }
  for (int layer : full_qk_layers) {
    taps_.AddAt(layer, NodeLocation::kAttnQ, [this](const TapSite& at, const torch::Tensor& x) {
      q_[at.layer] = x;
      return x;
    });
    taps_.AddAt(layer, NodeLocation::kAttnK, [this](const TapSite& at, const torch::Tensor& x) {
      k_[at.layer] = x;
      return x;
    });
  }
}

torch::Tensor NodeRecorder::Nodes() const {
  torch::Tensor out;  // (B, T, n_nodes)
  for (size_t s = 0; s < sites_.size(); ++s) {
    if (!sites_[s].rows.defined()) continue;
    const torch::Tensor part = captured_[s].to(torch::kCPU, torch::kFloat32);  // (B, T, m)
    if (!out.defined()) out = torch::zeros({part.size(0), part.size(1), n_nodes_}, torch::kFloat32);
    out.index_copy_(2, sites_[s].rows, part);
  }
  return out;
}

torch::Tensor RecordOverText(const Model& model, const std::vector<Node>& nodes,
                             const torch::Tensor& windows, int batch) {
  NodeRecorder recorder(model, nodes, {});
  const int64_t N = windows.size(0), step = std::max(1, batch);
  std::vector<torch::Tensor> parts;  // each (n_nodes, B * T)
  for (int64_t start = 0; start < N; start += step) {
    const torch::Tensor tokens = windows.slice(0, start, std::min(N, start + step)).to(model.device());
    // Logits at one position only: the trunk is what the taps see.
    model.ForwardAt(tokens, torch::zeros({tokens.size(0)}, tokens.options()), &recorder.taps());
    parts.push_back(recorder.Nodes().reshape({-1, static_cast<int64_t>(nodes.size())}).t());
  }
  return torch::cat(parts, 1).contiguous();
}

std::vector<float> AttentionFromLast(const Model& model, int layer, int head, const torch::Tensor& q,
                                     const torch::Tensor& k, int64_t row, int64_t length) {
  const int64_t dh = model.config().d_head;
  const torch::Tensor qh = q[row][length - 1].slice(0, head * dh, (head + 1) * dh);  // (dh)
  const torch::Tensor kh = k[row].slice(0, 0, length).slice(1, head * dh, (head + 1) * dh);  // (L, dh)
  torch::Tensor scores = torch::mv(kh, qh) / std::sqrt(static_cast<double>(dh));  // (L)
  torch::Tensor weights;
  if (model.config().attn_sink) {
    // As the forward pass: a virtual key whose logit is the sink, dropped after the softmax.
    torch::Tensor sink = model.layer(layer).sink[head].reshape({1}).to(scores.dtype());
    weights = torch::softmax(torch::cat({sink, scores}), 0).slice(0, 1);
  } else {
    weights = torch::softmax(scores, 0);
  }
  weights = weights.to(torch::kCPU, torch::kFloat32).contiguous();
  return std::vector<float>(weights.data_ptr<float>(), weights.data_ptr<float>() + length);
}

}  // namespace circuit::prune::internal
