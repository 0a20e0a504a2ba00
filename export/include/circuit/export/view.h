// The interactive circuit viewer: one self-contained HTML page (script, style,
// diagram and data inline; no network) that shows a circuit laid out by
// Graphviz exactly as `circuit draw` lays it out, with hover cards (location,
// importance, mask logit, edges and, when the circuit file holds them, the
// node's explanations), pinned cards, an edge threshold slider, node search,
// zoom and pan, a prompt panel coloured by the selected node's activations, and
// the view state in the URL fragment. docs/graphs.md describes the page.
//
//   CIRCUIT_ASSIGN_OR_RETURN(graph::CircuitGraph g, graph::CircuitGraph::Build(circuit));
//   CIRCUIT_RETURN_IF_ERROR(WriteCircuitView(circuit, g, DotOptions{}, "circuit.html"));
#ifndef CIRCUIT_EXPORT_VIEW_H_
#define CIRCUIT_EXPORT_VIEW_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "circuit/core/circuit.h"
#include "circuit/export/dot.h"
#include "circuit/graph/circuit_graph.h"

namespace circuit {

// The page's data as one JSON document (format "circuit.view", version 1):
//   { "format", "format_version", "title", "task", "ablation", "circuit_loss",
//     "total_nodes",
//     "nodes": [{"row", "label", "layer", "location", "index", "importance",
//                "mask_logit"}],                   // the graph's vertices, in order
//     "edges": [[src_row, dst_row, weight, kind]],  // kind 0 weight, 1 residual
//     "tokens": ["..."],                            // every token text, once
//     "explanations": null | {"corpus", "top", "class_names",
//        "prompts": [[token]],                      // token: index into "tokens"
//        "nodes": [{"top"|"bottom": [[value, marked, [token]]],
//                   "hist": [[edges], [counts]], "means": [...],
//                   "promoted"|"suppressed"|"inputs": [[token, score]],
//                   "attention": [[prompt, [weight]]],
//                   "acts": [[percent]], "acts_scale"}]}}  // activation = percent / 100 * scale
// "explanations.nodes" is aligned with "nodes"; lists a node lacks are left out.
// Other numbers keep 4 significant digits. `graph` must have been built from
// `circuit` (its vertex rows index circuit.nodes and circuit.explanations.nodes).
// From `options`: the title, and whether residual edges are drawn (and listed).
std::string CircuitViewData(const Circuit& circuit, const graph::CircuitGraph& graph,
                            const DotOptions& options = {});

// The whole HTML page. `options` lay out the diagram as for CircuitToDot (node
// and edge tooltips are left out: the page shows cards). Errors: Internal when
// Graphviz fails to lay out or render, InvalidArgument when the explanations
// are present but not aligned with circuit.nodes.
absl::StatusOr<std::string> CircuitViewHtml(const Circuit& circuit,
                                            const graph::CircuitGraph& graph,
                                            const DotOptions& options = {});

// CircuitViewHtml written to `out_path` through a temporary file renamed into place.
absl::Status WriteCircuitView(const Circuit& circuit, const graph::CircuitGraph& graph,
                              const DotOptions& options, const std::string& out_path);

}  // namespace circuit

#endif  // CIRCUIT_EXPORT_VIEW_H_
