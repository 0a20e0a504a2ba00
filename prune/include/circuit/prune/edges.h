// Circuit edges (PAPER.md §4.2): every nonzero weight between two kept nodes in
// the six node-to-node blocks of a layer:
//   attn.act_in -> attn.q | attn.k | attn.v   (c_attn rows q|k|v, columns d_in)
//   attn.v      -> attn.resid_delta          (attn c_proj, (d_model, A))
//   mlp.act_in  -> mlp.post_act              (c_fc, (d_mlp, d_in))
//   mlp.post_act-> mlp.resid_delta           (mlp c_proj, (d_model, d_mlp))
// Residual connections and biases are not edges. Circuit size = number of edges.
//
//   std::vector<Node> nodes = ...;                         // sorted, unique
//   std::vector<CircuitEdge> edges = CircuitEdges(model, nodes);
//   // edges[i].src / .dst index `nodes`; .weight is the matrix entry
#ifndef CIRCUIT_PRUNE_EDGES_H_
#define CIRCUIT_PRUNE_EDGES_H_

#include <cstdint>
#include <vector>

#include "circuit/core/circuit.h"
#include "circuit/core/model.h"
#include "circuit/core/nodes.h"

namespace circuit::prune {

// nodes: the kept nodes, sorted by (layer, location, index) and unique (checked).
// Returns the edges sorted by (dst, src).
std::vector<CircuitEdge> CircuitEdges(const Model& model, const std::vector<Node>& nodes);

// Number of nonzero weights in the six blocks of the whole model (the edges of
// the circuit that keeps every node).
int64_t TotalEdges(const Model& model);

}  // namespace circuit::prune

#endif  // CIRCUIT_PRUNE_EDGES_H_
