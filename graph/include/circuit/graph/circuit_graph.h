// CircuitGraph: a Circuit as a directed Boost graph, with the residual stream
// made visible. Vertices are the circuit's nodes (in Circuit::nodes order, i.e.
// computation order); edges are of two kinds:
//   EdgeKind::kWeight    one nonzero weight between two kept nodes (Circuit::edges)
//   EdgeKind::kResidual  a residual identity edge: a kept write channel c
//                        (attn.resid_delta / mlp.resid_delta of layer l) to every
//                        kept read of channel c in a later sublayer (attn.act_in,
//                        mlp.act_in) and to final_resid c.
// Residual edges are drawn but, as in the paper, do NOT count toward circuit size:
// size = num_weight_edges(). See docs/graphs.md.
//
//   CIRCUIT_ASSIGN_OR_RETURN(graph::CircuitGraph g, graph::CircuitGraph::Build(circuit));
//   for (auto e : boost::make_iterator_range(boost::edges(g.graph())))
//     Use(g[boost::source(e, g.graph())].node(), g.graph()[e].weight, g.graph()[e].kind);
#ifndef CIRCUIT_GRAPH_CIRCUIT_GRAPH_H_
#define CIRCUIT_GRAPH_CIRCUIT_GRAPH_H_

#include <boost/graph/adjacency_list.hpp>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "circuit/core/circuit.h"
#include "circuit/core/nodes.h"

namespace circuit::graph {

enum class EdgeKind : int8_t {
  kWeight = 0,    // a model weight; counts toward circuit size
  kResidual = 1,  // residual identity (weight 1); shown, never counted
};
// "weight" | "residual"
std::string_view EdgeKindName(EdgeKind kind);

// Bundled vertex properties: one kept node.
struct VertexProps {
  int32_t layer = 0;
  NodeLocation location = NodeLocation::kAttnActIn;
  int32_t index = 0;
  float importance = 0.0f;  // loss when this node alone is also ablated (nats/prompt)
  float mask_logit = 0.0f;
  int64_t row = 0;  // row of Circuit::nodes this vertex was built from

  Node node() const { return Node{layer, location, index}; }
};

// Bundled edge properties.
struct EdgeProps {
  float weight = 1.0f;  // the matrix entry; 1 for residual edges
  EdgeKind kind = EdgeKind::kWeight;
};

using Graph =
    boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS, VertexProps, EdgeProps>;
using Vertex = boost::graph_traits<Graph>::vertex_descriptor;
using Edge = boost::graph_traits<Graph>::edge_descriptor;

struct GraphOptions {
  // Channels per attention head; q/k/v channel i belongs to head i / d_head.
  // 0: unknown (every q/k/v channel of a layer is treated as one head).
  int d_head = 0;
  bool residual_edges = true;  // add the residual identity edges
};

class CircuitGraph {
 public:
  CircuitGraph() = default;  // empty: no nodes, n_layer 0
  // Builds the graph of `circuit`. Errors (InvalidArgument) when the nodes are not
  // sorted and unique, a layer is out of range (final_resid must sit at n_layer),
  // an edge endpoint is out of range, or an edge does not go forward in
  // computation order (src row >= dst row).
  static absl::StatusOr<CircuitGraph> Build(const Circuit& circuit,
                                            const GraphOptions& options = {});

  const Graph& graph() const { return graph_; }
  const VertexProps& operator[](Vertex v) const { return graph_[v]; }
  const EdgeProps& operator[](Edge e) const { return graph_[e]; }

  int32_t n_layer() const { return n_layer_; }
  int d_head() const { return d_head_; }
  int64_t num_nodes() const { return static_cast<int64_t>(boost::num_vertices(graph_)); }
  // Circuit size (the paper's count): weight edges only.
  int64_t num_weight_edges() const { return num_weight_edges_; }
  int64_t num_residual_edges() const { return num_residual_edges_; }

  // The vertex of `node`, if kept.
  std::optional<Vertex> Find(const Node& node) const;
  // Attention head of a q/k/v vertex (index / d_head, or 0 when d_head is 0); -1 otherwise.
  int Head(Vertex v) const;

  // The induced subgraph on the vertices with keep[v] (keep.size() == num_nodes()):
  // every edge between two kept vertices stays. Vertex rows are preserved.
  CircuitGraph Subgraph(const std::vector<bool>& keep) const;

 private:
  Graph graph_;
  int32_t n_layer_ = 0;
  int d_head_ = 0;
  int64_t num_weight_edges_ = 0;
  int64_t num_residual_edges_ = 0;
};

// True for locations that write the residual stream (attn.resid_delta, mlp.resid_delta).
bool IsResidualWrite(NodeLocation loc);
// True for locations that read the residual stream (attn.act_in, mlp.act_in, final_resid).
bool IsResidualRead(NodeLocation loc);

}  // namespace circuit::graph

#endif  // CIRCUIT_GRAPH_CIRCUIT_GRAPH_H_
