// Analyses of a CircuitGraph: computation order and stages, dangling-node
// removal, connected components, strongest input-to-logit paths, degrees.
// The rules (what counts as an input, how q/k reach the output) are in
// docs/graphs.md.
//
//   graph::DanglingResult pruned = graph::RemoveDanglingNodes(g);
//   for (const graph::Path& p : graph::StrongestPaths(pruned.kept, /*count=*/5)) ...;
//   graph::DegreeStats d = graph::Degrees(pruned.kept);
#ifndef CIRCUIT_GRAPH_ANALYSIS_H_
#define CIRCUIT_GRAPH_ANALYSIS_H_

#include <cstdint>
#include <vector>

#include "circuit/core/circuit.h"
#include "circuit/core/nodes.h"
#include "circuit/graph/circuit_graph.h"

namespace circuit::graph {

// The computation stage of a node: 6 per layer (attn read, q/k/v, attn write,
// mlp read, mlp neurons, mlp write), then 6 * n_layer for final_resid. Every
// edge goes from a lower stage to a higher one.
int ComputationStage(const Node& node);

// A topological order of the vertices: computation order (layer, location,
// index). CircuitGraph::Build guarantees every edge goes forward in it.
std::vector<Vertex> ComputationOrder(const CircuitGraph& g);

// Inputs: the residual reads (attn.act_in, mlp.act_in, final_resid). The residual
// stream always carries the token and position embeddings, so every read is an
// input, whatever else writes to it.
bool IsInput(const CircuitGraph& g, Vertex v);
// Outputs: the final_resid vertices (read by the unembedding).
bool IsOutput(const CircuitGraph& g, Vertex v);

struct DanglingResult {
  CircuitGraph kept;                    // the induced subgraph of the remaining nodes
  std::vector<Node> removed_no_input;   // no path from any input
  std::vector<Node> removed_no_output;  // reachable from an input, but no path to an output
  int64_t removed_weight_edges = 0;     // weight edges that touched a removed node
};
// Removes the nodes that cannot matter. A node reaches the output when a path of
// edges leads to a final_resid node, and a q or k channel reaches it when a
// value channel of the same head and layer does (q and k only steer the
// attention pattern that mixes those values; they have no outgoing weights).
DanglingResult RemoveDanglingNodes(const CircuitGraph& g);

// The core of a large circuit, for drawing: its `n` most important nodes
// (largest importance, then largest mask logit; circuits extracted without
// importances rank by mask logit alone) and the edges among them, in the
// original node order, with their explanations when the circuit has them; the
// circuit's figures are copied unchanged. n >= size: the circuit itself.
Circuit MostImportantNodes(const Circuit& circuit, int64_t n);

struct Components {
  int count = 0;
  std::vector<int> of_vertex;  // component id per vertex, 0..count-1, by first vertex
  std::vector<int64_t> sizes;  // vertices per component
};
// Connected components of the undirected graph (both edge kinds).
Components ConnectedComponents(const CircuitGraph& g);

struct Path {
  std::vector<Vertex> vertices;  // from an input to a final_resid vertex
  double strength = 0.0;         // product of |weight| over its edges (residual edges: 1)
};
// The `count` strongest paths with at least one edge that start at an input
// with no incoming edge (it reads only the embeddings) and end at a final_resid
// vertex, strongest first; exact (k-best dynamic programming over the DAG).
std::vector<Path> StrongestPaths(const CircuitGraph& g, int count);

struct DegreeStats {
  double in_mean = 0.0;
  double out_mean = 0.0;  // equals in_mean: both are edges / vertices
  int64_t in_max = 0;
  int64_t out_max = 0;
};
// Degrees over all edges, or weight edges only.
DegreeStats Degrees(const CircuitGraph& g, bool include_residual = true);

}  // namespace circuit::graph

#endif  // CIRCUIT_GRAPH_ANALYSIS_H_
