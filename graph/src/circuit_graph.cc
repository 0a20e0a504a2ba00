#include "circuit/graph/circuit_graph.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"

namespace circuit::graph {

std::string_view EdgeKindName(EdgeKind kind) {
  return kind == EdgeKind::kWeight ? "weight" : "residual";
}

bool IsResidualWrite(NodeLocation loc) {
  return loc == NodeLocation::kAttnResidDelta || loc == NodeLocation::kMlpResidDelta;
}

bool IsResidualRead(NodeLocation loc) {
  return loc == NodeLocation::kAttnActIn || loc == NodeLocation::kMlpActIn ||
         loc == NodeLocation::kFinalResid || loc == NodeLocation::kBdhResidIn;
}

absl::StatusOr<CircuitGraph> CircuitGraph::Build(const Circuit& circuit,
                                                 const GraphOptions& options) {
  if (options.d_head < 0) {
    return absl::InvalidArgumentError(absl::StrCat("d_head must be >= 0, got ", options.d_head));
  }
  const int64_t n = static_cast<int64_t>(circuit.nodes.size());
  for (int64_t i = 0; i < n; ++i) {
    const Node& node = circuit.nodes[i].node;
    const bool final = node.location == NodeLocation::kFinalResid;
    if (final ? node.layer != circuit.n_layer : (node.layer < 0 || node.layer >= circuit.n_layer)) {
      return absl::InvalidArgumentError(absl::StrCat("node ", i, " (", NodeLabel(node),
                                                     "): layer out of range for n_layer ",
                                                     circuit.n_layer));
    }
    if (node.index < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("node ", i, " (", NodeLabel(node), "): negative index"));
    }
    if (i > 0 && !(circuit.nodes[i - 1].node < node)) {
      return absl::InvalidArgumentError(
          absl::StrCat("nodes are not sorted by (layer, location, index) and unique at node ", i,
                       " (", NodeLabel(node), ")"));
    }
  }

  CircuitGraph g;
  g.n_layer_ = circuit.n_layer;
  g.d_head_ = options.d_head;
  g.graph_ = Graph(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const CircuitNode& c = circuit.nodes[i];
    g.graph_[i] =
        VertexProps{c.node.layer, c.node.location, c.node.index, c.importance, c.mask_logit, i};
  }
  for (size_t k = 0; k < circuit.edges.size(); ++k) {
    const CircuitEdge& e = circuit.edges[k];
    if (e.src < 0 || e.src >= n || e.dst < 0 || e.dst >= n) {
      return absl::InvalidArgumentError(absl::StrCat("edge ", k, " (", e.src, " -> ", e.dst,
                                                     "): endpoint out of range for ", n, " nodes"));
    }
    // Nodes are in computation order, so a forward edge has src < dst; this also
    // guarantees the graph is acyclic.
    if (e.src >= e.dst) {
      return absl::InvalidArgumentError(absl::StrCat(
          "edge ", k, " (", NodeLabel(circuit.nodes[e.src].node), " -> ",
          NodeLabel(circuit.nodes[e.dst].node), "): does not go forward in computation order"));
    }
    boost::add_edge(static_cast<Vertex>(e.src), static_cast<Vertex>(e.dst),
                    EdgeProps{e.weight, EdgeKind::kWeight}, g.graph_);
  }
  g.num_weight_edges_ = static_cast<int64_t>(circuit.edges.size());

  if (options.residual_edges) {
    // Reads of each channel, in computation order.
    std::map<int32_t, std::vector<Vertex>> reads;
    for (int64_t i = 0; i < n; ++i) {
      if (IsResidualRead(g.graph_[i].location)) reads[g.graph_[i].index].push_back(i);
    }
    // Vertex order is computation order, so "a later sublayer" is a larger vertex.
    for (int64_t w = 0; w < n; ++w) {
      if (!IsResidualWrite(g.graph_[w].location)) continue;
      auto it = reads.find(g.graph_[w].index);
      if (it == reads.end()) continue;
      for (Vertex r : it->second) {
        if (static_cast<int64_t>(r) <= w) continue;
        boost::add_edge(static_cast<Vertex>(w), r, EdgeProps{1.0f, EdgeKind::kResidual}, g.graph_);
        ++g.num_residual_edges_;
      }
    }
  }
  return g;
}

std::optional<Vertex> CircuitGraph::Find(const Node& node) const {
  // Vertices are sorted by node, so binary search.
  size_t lo = 0, hi = boost::num_vertices(graph_);
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    if (graph_[mid].node() < node) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo < boost::num_vertices(graph_) && graph_[lo].node() == node) return lo;
  return std::nullopt;
}

int CircuitGraph::Head(Vertex v) const {
  const NodeLocation loc = graph_[v].location;
  if (loc != NodeLocation::kAttnQ && loc != NodeLocation::kAttnK && loc != NodeLocation::kAttnV) {
    return -1;
  }
  return d_head_ > 0 ? graph_[v].index / d_head_ : 0;
}

CircuitGraph CircuitGraph::Subgraph(const std::vector<bool>& keep) const {
  const size_t n = boost::num_vertices(graph_);
  std::vector<int64_t> new_id(n, -1);
  CircuitGraph out;
  out.n_layer_ = n_layer_;
  out.d_head_ = d_head_;
  for (size_t v = 0; v < n && v < keep.size(); ++v) {
    if (keep[v]) new_id[v] = static_cast<int64_t>(boost::add_vertex(graph_[v], out.graph_));
  }
  for (size_t v = 0; v < n; ++v) {
    if (new_id[v] < 0) continue;
    for (const Edge& e : boost::make_iterator_range(boost::out_edges(v, graph_))) {
      const int64_t dst = new_id[boost::target(e, graph_)];
      if (dst < 0) continue;
      boost::add_edge(static_cast<Vertex>(new_id[v]), static_cast<Vertex>(dst), graph_[e],
                      out.graph_);
      if (graph_[e].kind == EdgeKind::kWeight) {
        ++out.num_weight_edges_;
      } else {
        ++out.num_residual_edges_;
      }
    }
  }
  return out;
}

}  // namespace circuit::graph
