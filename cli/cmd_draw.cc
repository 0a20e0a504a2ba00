// circuit draw CIRCUIT.h5 -o OUT.{svg,png,dot}: the circuit's diagram, laid out
// in process with Graphviz (docs/graphs.md describes what it shows).
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "args.h"
#include "circuit/core/h5.h"
#include "circuit/export/circuit_file.h"
#include "circuit/export/dot.h"
#include "circuit/graph/analysis.h"
#include "circuit/graph/circuit_graph.h"
#include "command.h"

namespace circuit::cli {
namespace {

// d_head of the model the circuit came from, read from the checkpoint's root
// attributes (no weights loaded); 0 when no matching checkpoint is found.
int ModelDHead(const Circuit& circuit, const std::string& circuit_path, const std::string& model) {
  std::vector<std::string> candidates;
  if (!model.empty()) {
    candidates.push_back(model);
  } else {
    const std::filesystem::path dir = std::filesystem::path(circuit_path).parent_path();
    if (!circuit.model_file.empty()) {
      candidates.push_back((dir / circuit.model_file).string());
      candidates.push_back(circuit.model_file);
    }
    candidates.push_back(DefaultModelPath());
  }
  for (const std::string& path : candidates) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) continue;
    absl::StatusOr<H5Reader> r = H5Reader::Open(path);
    if (!r.ok() || !r->CheckFormat("circuit.model", 1).ok()) continue;
    absl::StatusOr<int64_t> n_layer = r->ReadIntAttribute("/", "n_layer");
    absl::StatusOr<int64_t> d_head = r->ReadIntAttribute("/", "d_head");
    if (n_layer.ok() && d_head.ok() && *n_layer == circuit.n_layer && *d_head > 0) {
      return static_cast<int>(*d_head);
    }
  }
  return 0;
}

int RunDraw(int argc, char** argv) {
  ArgParser parser(
      "circuit draw CIRCUIT.h5 --out OUT.{svg,png,dot} [options]",
      "Draw a circuit: one cluster per attention and MLP sublayer, q/k/v channels grouped by "
      "head, edges coloured by sign (blue +, red -) and sized by |weight|, residual identity "
      "edges dashed grey (shown, not counted in the circuit's size). -o is short for --out.");
  std::string path, out, format, model;
  int d_head = 0;
  bool legend = true, residual = true, prune = false, force = false;
  int64_t top = 0;
  parser.Positional("CIRCUIT.h5", "a circuit file (circuit extract writes DIR/circuit.h5)", &path);
  parser.Option("out", "output file; its extension picks the format unless --format is given",
                &out);
  parser.Option("format", "svg, png or dot", &format);
  parser.Option("d-head",
                "channels per head, to group q/k/v by head (0: read d_head from the model)",
                &d_head);
  parser.Option("model",
                "checkpoint to read d_head from (default: the circuit's model file "
                "beside the circuit, else the bundled model)",
                &model);
  parser.Flag("legend", "draw the legend (--no-legend: leave it out)", &legend);
  parser.Flag("residual", "draw residual identity edges (--no-residual: leave them out)", &residual);
  parser.Flag("prune-dangling", "leave out nodes with no path from an input or to the logits",
              &prune);
  parser.Option("top", "draw only the N most important nodes and the edges among them "
                "(0: all); for the core of a large circuit", &top);
  parser.Flag("force", "lay out SVG/PNG even for graphs too large to read (minutes)", &force);
  // ArgParser only knows long options: accept -o as --out.
  std::vector<std::string> args(argv, argv + argc);
  std::vector<char*> argv_long;
  for (std::string& a : args) {
    if (a == "-o") a = "--out";
    argv_long.push_back(a.data());
  }
  if (int rc = parser.Parse(argc, argv_long.data()); rc >= 0) return rc;
  if (out.empty()) return Fail("draw", "--out (-o) is required", kExitUsage);
  if (format.empty()) {
    format = std::filesystem::path(out).extension().string();
    if (!format.empty()) format = format.substr(1);
  }
  if (format != "svg" && format != "png" && format != "dot") {
    return Fail("draw",
                "cannot tell the format of '" + out + "': use .svg, .png or .dot, or --format",
                kExitUsage);
  }
  if (d_head < 0) return Fail("draw", "--d-head must be >= 0", kExitUsage);

  absl::StatusOr<Circuit> circuit = ReadCircuitFile(path);
  if (!circuit.ok()) return Fail("draw", std::string(circuit.status().message()), kExitUsage);
  if (d_head == 0) d_head = ModelDHead(*circuit, path, model);
  if (top < 0) return Fail("draw", "--top must be >= 0", kExitUsage);
  std::string top_note;
  if (top > 0 && top < static_cast<int64_t>(circuit->nodes.size())) {
    top_note = absl::StrFormat(", the %d most important of %d nodes", top, circuit->nodes.size());
    *circuit = graph::MostImportantNodes(*circuit, top);
  }
  absl::StatusOr<graph::CircuitGraph> graph = graph::CircuitGraph::Build(*circuit, {d_head});
  if (!graph.ok()) {
    return Fail("draw", path + ": " + std::string(graph.status().message()), kExitUsage);
  }
  graph::CircuitGraph drawn = *std::move(graph);
  std::string pruned_note;
  if (prune) {
    graph::DanglingResult r = graph::RemoveDanglingNodes(drawn);
    pruned_note = absl::StrFormat(", %d dangling nodes left out",
                                  r.removed_no_input.size() + r.removed_no_output.size());
    drawn = std::move(r.kept);
  }

  if (format != "dot" && !force && TooLargeToLayOut(drawn)) {
    return Fail("draw",
                absl::StrFormat("%s: %d nodes and %d edges are too many to lay out (limits %d, %d); draw "
                                "--prune-dangling, write .dot, or pass --force",
                                path, drawn.num_nodes(), drawn.num_weight_edges() + drawn.num_residual_edges(),
                                kMaxLayoutNodes, kMaxLayoutEdges),
                kExitUsage);
  }
  DotOptions options;
  options.d_head = d_head;
  options.legend = legend;
  options.residual_edges = residual;
  options.title = CircuitTitle(*circuit, drawn) + top_note;
  absl::StatusOr<std::string> dot = CircuitToDot(drawn, options);
  if (!dot.ok()) return Fail("draw", std::string(dot.status().message()), kExitFailure);
  if (absl::Status s = RenderCircuit(*dot, format, out); !s.ok()) {
    return Fail("draw", std::string(s.message()),
                s.code() == absl::StatusCode::kInvalidArgument ? kExitUsage : kExitFailure);
  }
  std::cout << absl::StrFormat("wrote %s: %d nodes, %d weight edges, %d residual edges%s%s%s\n",
                               out, drawn.num_nodes(), drawn.num_weight_edges(),
                               residual ? drawn.num_residual_edges() : 0, top_note, pruned_note,
                               d_head > 0 ? absl::StrFormat(", heads of %d channels", d_head)
                                          : std::string(", heads not grouped (d_head unknown)"));
  return kExitOk;
}

}  // namespace

CIRCUIT_COMMAND(draw, "draw", "draw a circuit file as SVG, PNG or DOT (Graphviz)", RunDraw);

}  // namespace circuit::cli
