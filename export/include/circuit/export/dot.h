// Circuit diagrams: a CircuitGraph as Graphviz DOT, built in process with cgraph,
// and rendered to SVG or PNG in process with gvc (no `dot` program needed).
// Conventions (clusters, colours, what residual edges mean): docs/graphs.md.
//
//   CIRCUIT_ASSIGN_OR_RETURN(std::string dot, CircuitToDot(graph, DotOptions{}));
//   CIRCUIT_RETURN_IF_ERROR(RenderCircuit(dot, "svg", "out/circuit.svg"));
#ifndef CIRCUIT_EXPORT_DOT_H_
#define CIRCUIT_EXPORT_DOT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "circuit/graph/circuit_graph.h"

namespace circuit {

struct DotOptions {
  // Channels per head, to group q/k/v channels by head (head = index / d_head).
  // 0: the graph's d_head; when that is 0 too, one group per attention layer.
  int d_head = 0;
  std::string title;           // graph label (e.g. task and size); empty: none
  bool legend = true;          // a "legend" cluster with one text node
  bool embedding_node = true;  // one "embeddings" node feeding every input without
                               // incoming edges (dotted grey edges)
  std::string embedding_label = "token + position\nembeddings";  // EmbeddingLabel(circuit)
  bool residual_edges = true;  // draw the graph's residual identity edges
  std::string rankdir = "BT";  // "BT": embeddings at the bottom, logits on top
  bool tooltips = true;        // node and edge tooltips (the viewer shows cards instead)
};

// Graphviz's dot layout takes minutes beyond a few thousand edges (a whole
// model is ~50k): circuit draw refuses larger graphs without --force, and
// circuit extract then writes circuit.dot but no circuit.svg.
inline constexpr int64_t kMaxLayoutNodes = 1000;
inline constexpr int64_t kMaxLayoutEdges = 3000;
bool TooLargeToLayOut(const graph::CircuitGraph& graph);

// "single_double_quote: 41 nodes, 57 edges (circuit loss 0.1234, mean ablation)":
// the diagram title `circuit draw` and `circuit extract` use.
std::string CircuitTitle(const Circuit& circuit, const graph::CircuitGraph& graph);

// What the embeddings node stands for: token and position embeddings (GPT) or
// token embeddings alone (BDH, whose positions enter through RoPE).
std::string EmbeddingLabel(const Circuit& circuit);

// The DOT text of `graph`. Nodes are named "n<row>" (row of Circuit::nodes) and
// carry the attributes layer, location, index, importance, mask_logit; edges
// carry kind ("weight" | "residual" | "embedding") and circuit_weight. Element
// ids (the `id` of SVG groups): nodes "n<row>", edges "e<src row>_<dst row>",
// embedding edges "x<dst row>". Errors: Internal when cgraph fails.
absl::StatusOr<std::string> CircuitToDot(const graph::CircuitGraph& graph,
                                         const DotOptions& options = {});

// Lays out `dot` with Graphviz's dot layout and writes it to `out_path` as
// `format` ("svg" | "png" | "dot"; "dot" writes the text unchanged), through a
// temporary file renamed into place. Errors: InvalidArgument for an unknown
// format, DOT that does not parse, or an unwritable path; Internal when layout
// or rendering fails (e.g. Graphviz plugins not configured: run `dot -c`).
absl::Status RenderCircuit(const std::string& dot, const std::string& format,
                           const std::string& out_path);

// The same rendering into memory (the bytes of the SVG or PNG file).
absl::StatusOr<std::string> RenderCircuitData(const std::string& dot, const std::string& format);

}  // namespace circuit

#endif  // CIRCUIT_EXPORT_DOT_H_
