#include "diagram.h"

#include <filesystem>

#include "absl/strings/str_format.h"
#include "circuit/core/h5.h"
#include "circuit/export/circuit_file.h"
#include "circuit/graph/analysis.h"

namespace circuit::cli {
namespace {

// d_head of the model the circuit came from, read from the checkpoint's root
// attributes (no weights loaded); 0 when no checkpoint matches the circuit's layers.
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

}  // namespace

DiagramArgv::DiagramArgv(int argc, char** argv) : args_(argv, argv + argc) {
  for (std::string& a : args_) {
    if (a == "-o") a = "--out";
    pointers_.push_back(a.data());
  }
}

void AddDiagramFlags(ArgParser& parser, DiagramFlags* flags, const std::string& out_help) {
  parser.Positional("CIRCUIT.h5", "a circuit file (circuit extract writes DIR/circuit.h5)",
                    &flags->path);
  parser.Option("out", out_help, &flags->out);
  parser.Option("d-head",
                "channels per head, to group q/k/v by head (0: read d_head from the model)",
                &flags->d_head);
  parser.Option("model",
                "checkpoint to read d_head from (default: the circuit's model file "
                "beside the circuit, else the bundled model)",
                &flags->model);
  parser.Flag("legend", "draw the legend (--no-legend: leave it out)", &flags->legend);
  parser.Flag("residual", "draw residual identity edges (--no-residual: leave them out)",
              &flags->residual);
  parser.Flag("prune-dangling", "leave out nodes with no path from an input or to the logits",
              &flags->prune);
  parser.Option("top", "only the N most important nodes and the edges among them "
                "(0: all); for the core of a large circuit", &flags->top);
  parser.Flag("force", "lay out even graphs too large to read (minutes)", &flags->force);
}

int LoadDiagram(const std::string& command, const DiagramFlags& flags, bool layout, Diagram* out) {
  if (flags.d_head < 0) return Fail(command, "--d-head must be >= 0", kExitUsage);
  if (flags.top < 0) return Fail(command, "--top must be >= 0", kExitUsage);
  absl::StatusOr<Circuit> circuit = ReadCircuitFile(flags.path);
  if (!circuit.ok()) return Fail(command, std::string(circuit.status().message()), kExitUsage);
  out->circuit = *std::move(circuit);
  Circuit& c = out->circuit;
  const int d_head = flags.d_head > 0 ? flags.d_head : ModelDHead(c, flags.path, flags.model);
  out->notes.clear();
  if (flags.top > 0 && flags.top < static_cast<int64_t>(c.nodes.size())) {
    out->notes = absl::StrFormat(", the %d most important of %d nodes", flags.top, c.nodes.size());
    c = graph::MostImportantNodes(c, flags.top);
  }
  const std::string top_note = out->notes;
  absl::StatusOr<graph::CircuitGraph> graph = graph::CircuitGraph::Build(c, {d_head});
  if (!graph.ok()) {
    return Fail(command, flags.path + ": " + std::string(graph.status().message()), kExitUsage);
  }
  out->graph = *std::move(graph);
  if (flags.prune) {
    graph::DanglingResult r = graph::RemoveDanglingNodes(out->graph);
    out->notes += absl::StrFormat(", %d dangling nodes left out",
                                  r.removed_no_input.size() + r.removed_no_output.size());
    out->graph = std::move(r.kept);
  }
  const graph::CircuitGraph& g = out->graph;
  if (layout && !flags.force && TooLargeToLayOut(g)) {
    return Fail(command,
                absl::StrFormat("%s: %d nodes and %d edges are too many to lay out (limits %d, "
                                "%d); use --top N or --prune-dangling, or pass --force",
                                flags.path, g.num_nodes(),
                                g.num_weight_edges() + g.num_residual_edges(), kMaxLayoutNodes,
                                kMaxLayoutEdges),
                kExitUsage);
  }
  out->options = DotOptions{};
  out->options.d_head = d_head;
  out->options.legend = flags.legend;
  out->options.residual_edges = flags.residual;
  out->options.title = CircuitTitle(c, g) + top_note;
  out->options.embedding_label = EmbeddingLabel(c);
  return kExitOk;
}

}  // namespace circuit::cli
