// Circuit edges. For the GPT (PAPER.md §4.2): every nonzero weight between two
// kept nodes in the six node-to-node blocks of a layer:
//   attn.act_in -> attn.q | attn.k | attn.v   (c_attn rows q|k|v, columns d_in)
//   attn.v      -> attn.resid_delta          (attn c_proj, (d_model, A))
//   mlp.act_in  -> mlp.post_act              (c_fc, (d_mlp, d_in))
//   mlp.post_act-> mlp.resid_delta           (mlp c_proj, (d_model, d_mlp))
// Residual connections and biases are not edges. Circuit size = number of edges.
// For BDH (docs/bdh.md), whose weights are dense: every pair of kept nodes
// joined by a nonzero weight of the shared blocks (resid_in -> x_neuron: encoder;
// attn_read -> y_neuron: encoder_v, per head; gate -> the next layer's
// resid_in or final_resid: decoder) or by a one-to-one link of weight 1
// (x_neuron and y_neuron -> their gate; resid_in channel d -> attn_read h*D+d,
// attention's value). EdgeDefinition(arch) says it in words for circuit files.
//
//   std::vector<Node> nodes = ...;                         // sorted, unique
//   std::vector<CircuitEdge> edges = CircuitEdges(model, nodes);
//   // edges[i].src / .dst index `nodes`; .weight is the matrix entry
#ifndef CIRCUIT_PRUNE_EDGES_H_
#define CIRCUIT_PRUNE_EDGES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "circuit/core/bdh.h"
#include "circuit/core/circuit.h"
#include "circuit/core/model.h"
#include "circuit/core/nodes.h"

namespace circuit::prune {

// nodes: the kept nodes, sorted by (layer, location, index) and unique (checked).
// Returns the edges sorted by (dst, src).
std::vector<CircuitEdge> CircuitEdges(const TapModel& model, const std::vector<Node>& nodes);

// Sorts edges by (dst, src), the order CircuitEdges returns.
void SortEdges(std::vector<CircuitEdge>* edges);

// Only BDH's one-to-one links between the kept nodes (attribution-selected
// circuits keep them beside their chosen weights; edge_selection.h).
std::vector<CircuitEdge> BdhLinkEdges(const BdhModel& model, const std::vector<Node>& nodes);

// The edges of the circuit that keeps every node: for the GPT the nonzero
// weights of the six blocks, for BDH the nonzero weights of its three blocks
// and every link, times n_layer (the weights are shared, the edges per layer).
int64_t TotalEdges(const TapModel& model);

// The definition CircuitEdges uses for models of `arch`, in words.
std::string EdgeDefinition(const std::string& arch);

}  // namespace circuit::prune

#endif  // CIRCUIT_PRUNE_EDGES_H_
