// A circuit as one JSON document, for notebooks and web viewers.
//
//   std::string text = CircuitToJson(circuit, &graph);   // graph may be nullptr
//
// Shape (format "circuit.json", version 1):
//   { "format", "format_version", "task", "model": {"file", "digest"}, "ablation",
//     "method", "penalty", "seed", "n_layer", "total_nodes",
//     "figures": {"target_loss", "full_model_loss", "circuit_loss", "necessity_loss",
//                 "random_baseline_loss", "accuracy", "n_nodes", "n_edges",
//                 "loss_vs_k": {"k": [...], "loss": [...]}, "location_importance": {...}},
//     "nodes": [{"id", "layer", "location", "index", "label", "mask_logit", "importance"}],
//     "edges": [{"src", "dst", "weight", "kind"}],        // kind "weight" | "residual"
//     "graph": {...} }                                   // only with a graph: analyses
// Without a graph, "edges" holds the circuit's weight edges; with one, also its
// residual identity edges. Node "id" is the row in Circuit::nodes.
#ifndef CIRCUIT_EXPORT_JSON_H_
#define CIRCUIT_EXPORT_JSON_H_

#include <string>

#include "circuit/core/circuit.h"
#include "circuit/graph/circuit_graph.h"

namespace circuit {

// `graph`, when given, must have been built from `circuit` (its vertex rows
// index circuit.nodes); it adds residual edges and a "graph" section (edge
// counts by kind, components, degrees, the strongest paths). Indented by 2.
std::string CircuitToJson(const Circuit& circuit, const graph::CircuitGraph* graph);

}  // namespace circuit

#endif  // CIRCUIT_EXPORT_JSON_H_
