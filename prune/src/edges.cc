// Edge enumeration: nonzero weight entries restricted to kept rows and columns.
#include "circuit/prune/edges.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "circuit/core/status.h"

namespace circuit::prune {
namespace {

using L = NodeLocation;

// Kept channels of one (layer, location): their indices and their rows in `nodes`.
struct Kept {
  std::vector<int64_t> channels;
  std::vector<int64_t> rows;
};

// Adds the edges of weight block w (dst rows x src columns) between kept src and dst channels.
void AddBlock(const torch::Tensor& w, const Kept& src, const Kept& dst,
              std::vector<CircuitEdge>* out) {
  if (src.channels.empty() || dst.channels.empty()) return;
  torch::NoGradGuard no_grad;
  const torch::Tensor rows = torch::tensor(dst.channels, torch::kInt64).to(w.device());
  const torch::Tensor cols = torch::tensor(src.channels, torch::kInt64).to(w.device());
  // sub: (n_dst, n_src)
  const torch::Tensor sub =
      w.index_select(0, rows).index_select(1, cols).to(torch::kCPU, torch::kFloat32).contiguous();
  const torch::Tensor nz = sub.nonzero().contiguous();  // (E, 2) int64; may come transposed
  const int64_t* p = nz.data_ptr<int64_t>();
  const float* v = sub.data_ptr<float>();
  const int64_t n_src = sub.size(1);
  for (int64_t e = 0; e < nz.size(0); ++e) {
    const int64_t i = p[2 * e], j = p[2 * e + 1];
    out->push_back(CircuitEdge{src.rows[j], dst.rows[i], v[i * n_src + j]});
  }
}

}  // namespace

std::vector<CircuitEdge> CircuitEdges(const Model& model, const std::vector<Node>& nodes) {
  CIRCUIT_CHECK(std::is_sorted(nodes.begin(), nodes.end()));
  CIRCUIT_CHECK(std::adjacent_find(nodes.begin(), nodes.end()) == nodes.end());
  const ModelConfig& c = model.config();
  const int64_t A = c.attn_width();
  std::map<std::pair<int, L>, Kept> kept;
  for (size_t r = 0; r < nodes.size(); ++r) {
    Kept& k = kept[{nodes[r].layer, nodes[r].location}];
    k.channels.push_back(nodes[r].index);
    k.rows.push_back(static_cast<int64_t>(r));
  }
  const Kept none;
  auto at = [&](int layer, L loc) -> const Kept& {
    auto it = kept.find({layer, loc});
    return it == kept.end() ? none : it->second;
  };
  std::vector<CircuitEdge> edges;
  for (int l = 0; l < c.n_layer; ++l) {
    const LayerWeights& w = model.layer(l);
    const Kept& act_in = at(l, L::kAttnActIn);
    AddBlock(w.c_attn_w.narrow(0, 0, A), act_in, at(l, L::kAttnQ), &edges);
    AddBlock(w.c_attn_w.narrow(0, A, A), act_in, at(l, L::kAttnK), &edges);
    AddBlock(w.c_attn_w.narrow(0, 2 * A, A), act_in, at(l, L::kAttnV), &edges);
    AddBlock(w.attn_proj_w, at(l, L::kAttnV), at(l, L::kAttnResidDelta), &edges);
    AddBlock(w.fc_w, at(l, L::kMlpActIn), at(l, L::kMlpPostAct), &edges);
    AddBlock(w.mlp_proj_w, at(l, L::kMlpPostAct), at(l, L::kMlpResidDelta), &edges);
  }
  std::sort(edges.begin(), edges.end(), [](const CircuitEdge& a, const CircuitEdge& b) {
    return std::tie(a.dst, a.src) < std::tie(b.dst, b.src);
  });
  return edges;
}

int64_t TotalEdges(const Model& model) {
  torch::NoGradGuard no_grad;
  int64_t n = 0;
  for (int l = 0; l < model.config().n_layer; ++l) {
    const LayerWeights& w = model.layer(l);
    for (const torch::Tensor* t : {&w.c_attn_w, &w.attn_proj_w, &w.fc_w, &w.mlp_proj_w}) {
      n += t->ne(0).sum().item<int64_t>();
    }
  }
  return n;
}

}  // namespace circuit::prune
