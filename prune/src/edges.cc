// Edge enumeration: nonzero weight entries restricted to kept rows and columns.
#include "circuit/prune/edges.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "circuit/core/arch.h"
#include "circuit/core/bdh.h"
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

// The kept channels of each (layer, location) of sorted, unique nodes.
class KeptNodes {
 public:
  explicit KeptNodes(const std::vector<Node>& nodes) {
    CIRCUIT_CHECK(std::is_sorted(nodes.begin(), nodes.end()));
    CIRCUIT_CHECK(std::adjacent_find(nodes.begin(), nodes.end()) == nodes.end());
    for (size_t r = 0; r < nodes.size(); ++r) {
      Kept& k = kept_[{nodes[r].layer, nodes[r].location}];
      k.channels.push_back(nodes[r].index);
      k.rows.push_back(static_cast<int64_t>(r));
    }
  }
  const Kept& at(int layer, L loc) const {
    auto it = kept_.find({layer, loc});
    return it == kept_.end() ? none_ : it->second;
  }

 private:
  std::map<std::pair<int, L>, Kept> kept_;
  const Kept none_;
};

// One-to-one links: src channel i feeds dst channel map(i) (weight 1).
template <typename Map>
void AddLinks(const Kept& src, const Kept& dst, Map map, std::vector<CircuitEdge>* out) {
  std::map<int64_t, int64_t> dst_row;  // channel -> row
  for (size_t j = 0; j < dst.channels.size(); ++j) dst_row[dst.channels[j]] = dst.rows[j];
  for (size_t i = 0; i < src.channels.size(); ++i) {
    for (int64_t channel : map(src.channels[i])) {
      auto it = dst_row.find(channel);
      if (it != dst_row.end()) out->push_back(CircuitEdge{src.rows[i], it->second, 1.0f});
    }
  }
}


std::vector<CircuitEdge> GptEdges(const Model& model, const std::vector<Node>& nodes) {
  const KeptNodes kept(nodes);
  auto at = [&](int layer, L loc) -> const Kept& { return kept.at(layer, loc); };
  const ModelConfig& c = model.config();
  const int64_t A = c.attn_width();
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
  SortEdges(&edges);
  return edges;
}

// BDH's three weight blocks as (dst x src) matrices, shared by every layer.
struct BdhBlocks {
  torch::Tensor encoder;    // resid_in (D) -> x_neuron (H*N): (H*N, D)
  torch::Tensor encoder_v;  // attn_read (H*D) -> y_neuron (H*N): block-diagonal (H*N, H*D)
  torch::Tensor decoder;    // gate (H*N) -> next resid_in / final_resid (D): (D, H*N)
};
BdhBlocks BdhWeightBlocks(const BdhModel& model) {
  torch::NoGradGuard no_grad;
  const BdhConfig& c = model.config();
  const int64_t H = c.n_head, N = c.n_neuron, D = c.d_model;
  BdhBlocks b;
  b.encoder = model.encoder().permute({0, 2, 1}).reshape({H * N, D});
  b.encoder_v = torch::zeros({H * N, H * D}, model.encoder_v().options());
  for (int64_t h = 0; h < H; ++h) {
    b.encoder_v.narrow(0, h * N, N).narrow(1, h * D, D).copy_(model.encoder_v()[h].t());
  }
  b.decoder = model.decoder().t();
  return b;
}

// weights: the three blocks' nonzero entries too; false: only the links.
std::vector<CircuitEdge> BdhEdges(const BdhModel& model, const std::vector<Node>& nodes,
                                  bool weights) {
  const KeptNodes kept(nodes);
  const BdhConfig& c = model.config();
  const int64_t H = c.n_head, D = c.d_model;
  const BdhBlocks w = weights ? BdhWeightBlocks(model) : BdhBlocks{};
  std::vector<CircuitEdge> edges;
  for (int l = 0; l < c.n_layer; ++l) {
    const Kept& resid = kept.at(l, L::kBdhResidIn);
    const Kept& x = kept.at(l, L::kBdhXNeuron);
    const Kept& gate = kept.at(l, L::kBdhGate);
    if (weights) AddBlock(w.encoder, resid, x, &edges);
    AddLinks(resid, kept.at(l, L::kBdhAttnRead), [&](int64_t d) {  // the values, every head
      std::vector<int64_t> to;
      for (int64_t h = 0; h < H; ++h) to.push_back(h * D + d);
      return to;
    }, &edges);
    if (weights) AddBlock(w.encoder_v, kept.at(l, L::kBdhAttnRead), kept.at(l, L::kBdhYNeuron), &edges);
    auto same = [](int64_t i) { return std::vector<int64_t>{i}; };
    AddLinks(x, gate, same, &edges);
    AddLinks(kept.at(l, L::kBdhYNeuron), gate, same, &edges);
    const bool last = l + 1 == c.n_layer;
    if (weights) {
      AddBlock(w.decoder, gate, last ? kept.at(c.n_layer, L::kFinalResid)
                                     : kept.at(l + 1, L::kBdhResidIn), &edges);
    }
  }
  SortEdges(&edges);
  return edges;
}

}  // namespace

void SortEdges(std::vector<CircuitEdge>* edges) {
  std::sort(edges->begin(), edges->end(), [](const CircuitEdge& a, const CircuitEdge& b) {
    return std::tie(a.dst, a.src) < std::tie(b.dst, b.src);
  });
}

std::vector<CircuitEdge> CircuitEdges(const TapModel& model, const std::vector<Node>& nodes) {
  if (const auto* gpt = dynamic_cast<const Model*>(&model)) return GptEdges(*gpt, nodes);
  const auto* bdh = dynamic_cast<const BdhModel*>(&model);
  CIRCUIT_CHECK(bdh != nullptr);
  return BdhEdges(*bdh, nodes, /*weights=*/true);
}

std::vector<CircuitEdge> BdhLinkEdges(const BdhModel& model, const std::vector<Node>& nodes) {
  return BdhEdges(model, nodes, /*weights=*/false);
}

std::string EdgeDefinition(const std::string& arch) {
  if (arch == kArchBdh) {
    return "bdh: every pair of kept nodes joined by a nonzero weight (encoder, encoder_v, "
           "decoder; dense) or a one-to-one link (x and y neurons into their gate, the residual "
           "read into each head's attention read-out as its value)";
  }
  return "gpt: the nonzero weights between kept nodes in the six node-to-node blocks";
}

int64_t TotalEdges(const TapModel& model) {
  torch::NoGradGuard no_grad;
  if (const auto* bdh = dynamic_cast<const BdhModel*>(&model)) {
    // The nonzero weights of the three blocks and every one-to-one link, per layer.
    const BdhConfig& c = bdh->config();
    int64_t weights = 0;
    for (const torch::Tensor& t : {bdh->encoder(), bdh->encoder_v(), bdh->decoder()}) {
      weights += t.ne(0).sum().item<int64_t>();
    }
    return c.n_layer * (weights + 2 * c.neurons() + int64_t{c.n_head} * c.d_model);
  }
  const auto* gpt = dynamic_cast<const Model*>(&model);
  CIRCUIT_CHECK(gpt != nullptr);
  int64_t n = 0;
  for (int l = 0; l < gpt->config().n_layer; ++l) {
    const LayerWeights& w = gpt->layer(l);
    for (const torch::Tensor* t : {&w.c_attn_w, &w.attn_proj_w, &w.fc_w, &w.mlp_proj_w}) {
      n += t->ne(0).sum().item<int64_t>();
    }
  }
  return n;
}

}  // namespace circuit::prune
