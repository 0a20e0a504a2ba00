// Builds the DOT text of a circuit with cgraph. The layout is left to Graphviz;
// this file only decides grouping (clusters), ranks and styling.
#include "circuit/export/dot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cgraph_util.h"
#include "circuit/core/arch.h"
#include "circuit/core/nodes.h"
#include "circuit/graph/analysis.h"

namespace circuit {
namespace {

using graph::CircuitGraph;
using graph::EdgeKind;
using graph::Vertex;
using internal::SetAttr;

constexpr char kPositive[] = "#1f5fbf";  // blue
constexpr char kNegative[] = "#c8322d";  // red
constexpr char kResidual[] = "#9a9a9a";  // grey

// Light to dark orange by t in [0, 1].
std::string Shade(double t) {
  t = std::clamp(t, 0.0, 1.0);
  auto mix = [t](int a, int b) { return static_cast<int>(std::lround(a + (b - a) * t)); };
  return absl::StrFormat("#%02x%02x%02x", mix(0xff, 0xe6), mix(0xf5, 0x55), mix(0xeb, 0x0d));
}

std::string Number(double v) { return absl::StrFormat("%.6g", v); }

// Subgraphs created on first use, so that clusters appear in computation order.
class Subgraphs {
 public:
  explicit Subgraphs(Agraph_t* root) : root_(root) {}
  // The subgraph `name` of `parent`; `label` is set when non-empty (clusters),
  // `rank` ("same") for the rank groups.
  Agraph_t* Get(Agraph_t* parent, const std::string& name, const std::string& label,
                const char* rank = nullptr) {
    auto it = made_.find(name);
    if (it != made_.end()) return it->second;
    Agraph_t* sub = agsubg(parent, internal::Mutable(name), 1);
    if (!label.empty()) {
      SetAttr(sub, "label", label);
      SetAttr(sub, "style", "rounded");
      SetAttr(sub, "color", "#c0c0c0");
    }
    if (rank != nullptr) SetAttr(sub, "rank", rank);
    made_[name] = sub;
    return sub;
  }
  Agraph_t* root() const { return root_; }

 private:
  Agraph_t* root_;
  std::map<std::string, Agraph_t*> made_;
};

// The rank group (inside its cluster) that holds node `v`.
Agraph_t* Home(Subgraphs& subs, const CircuitGraph& cg, Vertex v, int d_head) {
  const graph::VertexProps& p = cg[v];
  const std::string l = absl::StrCat("L", p.layer);
  switch (p.location) {
    case NodeLocation::kAttnActIn:
    case NodeLocation::kAttnQ:
    case NodeLocation::kAttnK:
    case NodeLocation::kAttnV:
    case NodeLocation::kAttnResidDelta: {
      Agraph_t* attn = subs.Get(subs.root(), absl::StrCat("cluster_", l, "_attn"),
                                absl::StrCat("layer ", p.layer, " attention"));
      if (p.location == NodeLocation::kAttnActIn) {
        return subs.Get(attn, absl::StrCat(l, "_attn_in"), "", "same");
      }
      if (p.location == NodeLocation::kAttnResidDelta) {
        return subs.Get(attn, absl::StrCat(l, "_attn_out"), "", "same");
      }
      const int head = d_head > 0 ? p.index / d_head : 0;
      Agraph_t* cluster = subs.Get(attn, absl::StrCat("cluster_", l, "_attn_h", head),
                                   d_head > 0 ? absl::StrCat("head ", head) : std::string("q k v"));
      return subs.Get(cluster, absl::StrCat(l, "_attn_h", head, "_qkv"), "", "same");
    }
    case NodeLocation::kMlpActIn:
    case NodeLocation::kMlpPostAct:
    case NodeLocation::kMlpResidDelta: {
      Agraph_t* mlp = subs.Get(subs.root(), absl::StrCat("cluster_", l, "_mlp"),
                               absl::StrCat("layer ", p.layer, " MLP"));
      const char* part = p.location == NodeLocation::kMlpActIn     ? "_mlp_in"
                         : p.location == NodeLocation::kMlpPostAct ? "_mlp_neurons"
                                                                   : "_mlp_out";
      return subs.Get(mlp, absl::StrCat(l, part), "", "same");
    }
    case NodeLocation::kBdhResidIn:
    case NodeLocation::kBdhXNeuron:
    case NodeLocation::kBdhAttnRead:
    case NodeLocation::kBdhYNeuron:
    case NodeLocation::kBdhGate: {
      // BDH: one cluster per layer, one rank per location in computation order.
      Agraph_t* layer = subs.Get(subs.root(), absl::StrCat("cluster_", l, "_bdh"),
                                 absl::StrCat("layer ", p.layer));
      const std::string rank = absl::StrCat(l, "_", std::string(LocationName(p.location)));
      return subs.Get(layer, rank, "", "same");
    }
    case NodeLocation::kFinalResid:
      break;
  }
  Agraph_t* unembed = subs.Get(subs.root(), "cluster_unembed", "unembedding");
  return subs.Get(unembed, "final_resid", "", "same");
}

constexpr char kLegend[] =
    "legend\\l"
    "blue edge: positive weight\\l"
    "red edge: negative weight\\l"
    "edge width: |weight|\\l"
    "dashed grey: residual identity (not counted in circuit size)\\l"
    "dotted grey: reads the embeddings\\l"
    "node fill: importance (loss when also ablated)\\l";

absl::StatusOr<std::string> Write(Agraph_t* g) {
  char* buffer = nullptr;
  size_t size = 0;
  FILE* f = open_memstream(&buffer, &size);
  if (f == nullptr) return absl::InternalError("open_memstream failed");
  const int rc = agwrite(g, f);
  std::fclose(f);
  std::string out(buffer, size);
  std::free(buffer);
  if (rc != 0) return absl::InternalError("cgraph: agwrite failed");
  return out;
}

}  // namespace

absl::StatusOr<std::string> CircuitToDot(const CircuitGraph& cg, const DotOptions& options) {
  internal::ScopedGraphvizErrors errors;
  internal::AgraphPtr root(agopen(internal::Mutable("circuit"), Agdirected, nullptr));
  if (root == nullptr) return absl::InternalError("cgraph: agopen failed: " + errors.text());
  Agraph_t* g = root.get();
  SetAttr(g, "rankdir", options.rankdir);
  SetAttr(g, "newrank", "true");
  SetAttr(g, "fontname", "Helvetica");
  SetAttr(g, "nodesep", "0.15");
  SetAttr(g, "ranksep", "0.45");
  if (!options.title.empty()) {
    SetAttr(g, "label", options.title);
    SetAttr(g, "labelloc", "t");
  }
  agattr(g, AGNODE, internal::Mutable("shape"), internal::Mutable("box"));
  agattr(g, AGNODE, internal::Mutable("style"), internal::Mutable("rounded,filled"));
  agattr(g, AGNODE, internal::Mutable("fontname"), internal::Mutable("Helvetica"));
  agattr(g, AGNODE, internal::Mutable("fontsize"), internal::Mutable("10"));
  agattr(g, AGEDGE, internal::Mutable("arrowsize"), internal::Mutable("0.5"));

  const graph::Graph& gr = cg.graph();
  const int d_head = options.d_head > 0 ? options.d_head : cg.d_head();
  const size_t n = boost::num_vertices(gr);
  double importance_min = 0, importance_max = 0, weight_max = 0;
  bool any_importance = false;  // NaN importances (not computed) are left out of the scale
  for (Vertex v = 0; v < n; ++v) {
    if (std::isnan(gr[v].importance)) continue;
    importance_min = any_importance ? std::min<double>(importance_min, gr[v].importance) : gr[v].importance;
    importance_max = any_importance ? std::max<double>(importance_max, gr[v].importance) : gr[v].importance;
    any_importance = true;
  }
  for (const graph::Edge& e : boost::make_iterator_range(boost::edges(gr))) {
    if (gr[e].kind == EdgeKind::kWeight)
      weight_max = std::max(weight_max, std::abs(double(gr[e].weight)));
  }

  Subgraphs subs(g);
  Agnode_t* embeddings = nullptr;
  if (options.embedding_node) {
    Agraph_t* cluster = subs.Get(g, "cluster_embed", "embeddings");
    embeddings = agnode(cluster, internal::Mutable("embeddings"), 1);
    SetAttr(embeddings, "label", options.embedding_label);
    SetAttr(embeddings, "fillcolor", "#eeeeee");
  }
  std::vector<Agnode_t*> nodes(n, nullptr);
  for (Vertex v : graph::ComputationOrder(cg)) {
    const graph::VertexProps& p = gr[v];
    Agnode_t* node =
        agnode(Home(subs, cg, v, d_head), internal::Mutable(absl::StrCat("n", p.row)), 1);
    if (node == nullptr) return absl::InternalError("cgraph: agnode failed: " + errors.text());
    nodes[v] = node;
    const double t = std::isnan(p.importance) ? 0.0
                     : importance_max > importance_min
                         ? (p.importance - importance_min) / (importance_max - importance_min)
                         : 0.5;
    SetAttr(node, "label", NodeLabel(p.node()));
    SetAttr(node, "fillcolor", Shade(t));
    if (t > 0.65) SetAttr(node, "fontcolor", "white");
    SetAttr(node, "id", absl::StrCat("n", p.row));
    if (options.tooltips) {
      SetAttr(node, "tooltip",
              absl::StrFormat("%s\nimportance %.4g\nmask_logit %.4g", NodeLabel(p.node()),
                              p.importance, p.mask_logit));
    }
    SetAttr(node, "layer", absl::StrCat(p.layer));
    SetAttr(node, "location", std::string(LocationName(p.location)));
    SetAttr(node, "index", absl::StrCat(p.index));
    SetAttr(node, "importance", Number(p.importance));
    SetAttr(node, "mask_logit", Number(p.mask_logit));
  }

  std::vector<int> drawn_in(n, 0);
  for (const graph::Edge& e : boost::make_iterator_range(boost::edges(gr))) {
    const graph::EdgeProps& p = gr[e];
    if (p.kind == EdgeKind::kResidual && !options.residual_edges) continue;
    const Vertex s = boost::source(e, gr), t = boost::target(e, gr);
    Agedge_t* edge = agedge(g, nodes[s], nodes[t], nullptr, 1);
    if (edge == nullptr) return absl::InternalError("cgraph: agedge failed: " + errors.text());
    ++drawn_in[t];
    SetAttr(edge, "id", absl::StrCat("e", gr[s].row, "_", gr[t].row));
    SetAttr(edge, "kind", std::string(graph::EdgeKindName(p.kind)));
    SetAttr(edge, "circuit_weight", Number(p.weight));
    if (p.kind == EdgeKind::kResidual) {
      SetAttr(edge, "style", "dashed");
      SetAttr(edge, "color", kResidual);
      SetAttr(edge, "penwidth", "0.8");
      continue;
    }
    const double width = weight_max > 0 ? 0.6 + 3.4 * std::abs(double(p.weight)) / weight_max : 1.0;
    SetAttr(edge, "penwidth", absl::StrFormat("%.2f", width));
    SetAttr(edge, "color", p.weight > 0 ? kPositive : p.weight < 0 ? kNegative : kResidual);
    if (options.tooltips) {
      SetAttr(edge, "tooltip", absl::StrFormat("%s -> %s: %.4g", NodeLabel(gr[s].node()),
                                               NodeLabel(gr[t].node()), p.weight));
    }
  }
  if (embeddings != nullptr) {
    for (Vertex v = 0; v < n; ++v) {
      if (!graph::IsInput(cg, v) || drawn_in[v] > 0) continue;
      Agedge_t* edge = agedge(g, embeddings, nodes[v], nullptr, 1);
      if (edge == nullptr) return absl::InternalError("cgraph: agedge failed: " + errors.text());
      SetAttr(edge, "id", absl::StrCat("x", gr[v].row));
      SetAttr(edge, "kind", "embedding");
      SetAttr(edge, "style", "dotted");
      SetAttr(edge, "color", kResidual);
    }
  }
  if (options.legend) {
    Agraph_t* cluster = subs.Get(g, "cluster_legend", "legend");
    Agnode_t* legend = agnode(cluster, internal::Mutable("legend"), 1);
    SetAttr(legend, "shape", "plaintext");
    SetAttr(legend, "style", "");
    SetAttr(legend, "label", kLegend);
  }
  return Write(g);
}

std::string EmbeddingLabel(const Circuit& circuit) {
  return circuit.arch == kArchBdh ? "token embeddings\n(positions: RoPE)"
                                  : DotOptions().embedding_label;
}

std::string CircuitTitle(const Circuit& circuit, const graph::CircuitGraph& graph) {
  return absl::StrFormat("%s: %d nodes, %d edges (circuit loss %.4f, %s ablation)", circuit.task,
                         graph.num_nodes(), graph.num_weight_edges(), circuit.circuit_loss,
                         circuit.ablation);
}

bool TooLargeToLayOut(const graph::CircuitGraph& graph) {
  return graph.num_nodes() > kMaxLayoutNodes ||
         graph.num_weight_edges() + graph.num_residual_edges() > kMaxLayoutEdges;
}

}  // namespace circuit
