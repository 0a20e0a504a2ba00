#include "circuit/graph/analysis.h"

#include <algorithm>
#include <boost/graph/connected_components.hpp>
#include <cmath>
#include <numeric>
#include <set>
#include <tuple>
#include <utility>

namespace circuit::graph {

int ComputationStage(const Node& node) {
  // Location -> stage within a layer. GPT: act_in | q k v | resid_delta |
  // act_in | post_act | resid_delta. BDH: resid_in | x_neuron | attn_read |
  // y_neuron | gate.
  int stage = 0;
  switch (node.location) {
    case NodeLocation::kAttnActIn: case NodeLocation::kFinalResid: case NodeLocation::kBdhResidIn:
      stage = 0; break;
    case NodeLocation::kAttnQ: case NodeLocation::kAttnK: case NodeLocation::kAttnV:
    case NodeLocation::kBdhXNeuron:
      stage = 1; break;
    case NodeLocation::kAttnResidDelta: case NodeLocation::kBdhAttnRead: stage = 2; break;
    case NodeLocation::kMlpActIn: case NodeLocation::kBdhYNeuron: stage = 3; break;
    case NodeLocation::kMlpPostAct: case NodeLocation::kBdhGate: stage = 4; break;
    case NodeLocation::kMlpResidDelta: stage = 5; break;
  }
  return 6 * node.layer + stage;
}

std::vector<Vertex> ComputationOrder(const CircuitGraph& g) {
  std::vector<Vertex> order(g.num_nodes());
  std::iota(order.begin(), order.end(), Vertex{0});
  return order;
}

bool IsInput(const CircuitGraph& g, Vertex v) { return IsResidualRead(g[v].location); }

bool IsOutput(const CircuitGraph& g, Vertex v) {
  return g[v].location == NodeLocation::kFinalResid;
}

DanglingResult RemoveDanglingNodes(const CircuitGraph& g) {
  const Graph& gr = g.graph();
  const size_t n = boost::num_vertices(gr);
  // Forward: vertices in computation order, so predecessors come first.
  std::vector<bool> from_input(n, false);
  for (Vertex v = 0; v < n; ++v) {
    from_input[v] = IsInput(g, v);
    for (const Edge& e : boost::make_iterator_range(boost::in_edges(v, gr))) {
      if (from_input[boost::source(e, gr)]) from_input[v] = true;
    }
  }
  // Backward: reverse computation order. Within a layer every v vertex comes
  // after every q/k vertex, so live value heads are known when q/k are visited.
  std::vector<bool> to_output(n, false);
  std::set<std::pair<int32_t, int>> live_value_heads;  // (layer, head)
  for (Vertex v = n; v-- > 0;) {
    bool live = IsOutput(g, v);
    for (const Edge& e : boost::make_iterator_range(boost::out_edges(v, gr))) {
      if (to_output[boost::target(e, gr)]) live = true;
    }
    const NodeLocation loc = g[v].location;
    if (loc == NodeLocation::kAttnQ || loc == NodeLocation::kAttnK) {
      if (live_value_heads.count({g[v].layer, g.Head(v)})) live = true;
    }
    to_output[v] = live;
    // A value channel matters to its head only if it also has an input.
    if (live && from_input[v] && loc == NodeLocation::kAttnV) {
      live_value_heads.insert({g[v].layer, g.Head(v)});
    }
  }
  DanglingResult result;
  std::vector<bool> keep(n, false);
  for (Vertex v = 0; v < n; ++v) {
    keep[v] = from_input[v] && to_output[v];
    if (!from_input[v]) {
      result.removed_no_input.push_back(g[v].node());
    } else if (!to_output[v]) {
      result.removed_no_output.push_back(g[v].node());
    }
  }
  for (const Edge& e : boost::make_iterator_range(boost::edges(gr))) {
    if (gr[e].kind == EdgeKind::kWeight &&
        (!keep[boost::source(e, gr)] || !keep[boost::target(e, gr)])) {
      ++result.removed_weight_edges;
    }
  }
  result.kept = g.Subgraph(keep);
  return result;
}

Circuit MostImportantNodes(const Circuit& circuit, int64_t n) {
  const int64_t size = static_cast<int64_t>(circuit.nodes.size());
  if (n >= size) return circuit;
  std::vector<int64_t> order(size);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    const CircuitNode& x = circuit.nodes[a];
    const CircuitNode& y = circuit.nodes[b];
    // NaN (importance not computed) sorts last.
    const float xi = std::isnan(x.importance) ? -INFINITY : x.importance;
    const float yi = std::isnan(y.importance) ? -INFINITY : y.importance;
    if (xi != yi) return xi > yi;
    return x.mask_logit > y.mask_logit;
  });
  std::vector<int64_t> new_row(size, -1);
  for (int64_t r = 0; r < std::max<int64_t>(n, 0); ++r) new_row[order[r]] = 0;
  Circuit out = circuit;
  out.nodes.clear();
  // Explanations are aligned with the nodes: they follow the nodes kept.
  const bool explained = circuit.explanations.nodes.size() == circuit.nodes.size();
  out.explanations.nodes.clear();
  for (int64_t i = 0; i < size; ++i) {
    if (new_row[i] < 0) continue;
    new_row[i] = static_cast<int64_t>(out.nodes.size());
    out.nodes.push_back(circuit.nodes[i]);
    if (explained) out.explanations.nodes.push_back(circuit.explanations.nodes[i]);
  }
  out.edges.clear();
  for (const CircuitEdge& e : circuit.edges) {
    if (new_row[e.src] >= 0 && new_row[e.dst] >= 0) {
      out.edges.push_back({new_row[e.src], new_row[e.dst], e.weight});
    }
  }
  return out;
}

Components ConnectedComponents(const CircuitGraph& g) {
  const Graph& gr = g.graph();
  using Undirected = boost::adjacency_list<boost::vecS, boost::vecS, boost::undirectedS>;
  Undirected u(boost::num_vertices(gr));
  for (const Edge& e : boost::make_iterator_range(boost::edges(gr))) {
    boost::add_edge(boost::source(e, gr), boost::target(e, gr), u);
  }
  Components c;
  c.of_vertex.assign(boost::num_vertices(gr), 0);
  c.count = boost::connected_components(u, c.of_vertex.data());
  c.sizes.assign(c.count, 0);
  for (int id : c.of_vertex) ++c.sizes[id];
  return c;
}

std::vector<Path> StrongestPaths(const CircuitGraph& g, int count) {
  if (count <= 0) return {};
  const Graph& gr = g.graph();
  const size_t n = boost::num_vertices(gr);
  // best[v]: up to `count` best partial paths ending at v, strongest first; each
  // entry remembers its predecessor vertex and that vertex's entry.
  struct Entry {
    double strength;
    Vertex prev;
    int prev_rank;  // -1: the path starts at v
  };
  std::vector<std::vector<Entry>> best(n);
  for (Vertex v = 0; v < n; ++v) {  // computation order is topological
    std::vector<Entry>& mine = best[v];
    if (IsInput(g, v) && boost::in_degree(v, gr) == 0) mine.push_back({1.0, v, -1});
    for (const Edge& e : boost::make_iterator_range(boost::in_edges(v, gr))) {
      const Vertex u = boost::source(e, gr);
      const double w = std::abs(static_cast<double>(gr[e].weight));
      for (int r = 0; r < static_cast<int>(best[u].size()); ++r) {
        mine.push_back({best[u][r].strength * w, u, r});
      }
    }
    // Stable: equal strengths keep the (deterministic) order of discovery.
    std::stable_sort(mine.begin(), mine.end(),
                     [](const Entry& a, const Entry& b) { return a.strength > b.strength; });
    if (static_cast<int>(mine.size()) > count) mine.resize(count);
  }
  std::vector<std::tuple<double, Vertex, int>> ends;
  for (Vertex v = 0; v < n; ++v) {
    if (!IsOutput(g, v)) continue;
    for (int r = 0; r < static_cast<int>(best[v].size()); ++r) {
      if (best[v][r].prev_rank >= 0) ends.emplace_back(best[v][r].strength, v, r);
    }
  }
  std::stable_sort(ends.begin(), ends.end(),
                   [](const auto& a, const auto& b) { return std::get<0>(a) > std::get<0>(b); });
  if (static_cast<int>(ends.size()) > count) ends.resize(count);
  std::vector<Path> paths;
  for (const auto& [strength, end, end_rank] : ends) {
    Path p;
    p.strength = strength;
    Vertex v = end;
    int r = end_rank;
    while (true) {
      p.vertices.push_back(v);
      const Entry& e = best[v][r];
      if (e.prev_rank < 0) break;
      v = e.prev;
      r = e.prev_rank;
    }
    std::reverse(p.vertices.begin(), p.vertices.end());
    paths.push_back(std::move(p));
  }
  return paths;
}

DegreeStats Degrees(const CircuitGraph& g, bool include_residual) {
  const Graph& gr = g.graph();
  const size_t n = boost::num_vertices(gr);
  DegreeStats s;
  if (n == 0) return s;
  std::vector<int64_t> in(n, 0), out(n, 0);
  int64_t edges = 0;
  for (const Edge& e : boost::make_iterator_range(boost::edges(gr))) {
    if (!include_residual && gr[e].kind == EdgeKind::kResidual) continue;
    ++out[boost::source(e, gr)];
    ++in[boost::target(e, gr)];
    ++edges;
  }
  s.in_mean = s.out_mean = static_cast<double>(edges) / static_cast<double>(n);
  s.in_max = *std::max_element(in.begin(), in.end());
  s.out_max = *std::max_element(out.begin(), out.end());
  return s;
}

}  // namespace circuit::graph
