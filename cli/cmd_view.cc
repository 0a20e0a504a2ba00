// circuit view CIRCUIT.h5 -o OUT.html: the circuit as one self-contained,
// interactive HTML page (docs/graphs.md, "The viewer"), laid out in process by
// Graphviz as `circuit draw` lays it out.
#include <filesystem>
#include <iostream>
#include <string>

#include "absl/strings/str_format.h"
#include "args.h"
#include "circuit/export/view.h"
#include "command.h"
#include "diagram.h"

namespace circuit::cli {
namespace {

int RunView(int argc, char** argv) {
  ArgParser parser(
      "circuit view CIRCUIT.h5 --out OUT.html [options]",
      "Write a circuit as one self-contained HTML page (no network needed; open it from disk): "
      "the diagram of `circuit draw` with hover cards (location, importance, mask logit, edges, "
      "and the node's explanations when the file holds them: contexts, class means, promoted "
      "tokens), click to pin, an edge threshold slider, search, zoom and pan, a prompt panel "
      "coloured by the selected node, and the view kept in the address. -o is short for --out.");
  DiagramFlags flags;
  AddDiagramFlags(parser, &flags, "the HTML file to write");
  DiagramArgv args(argc, argv);
  if (int rc = parser.Parse(args.argc(), args.argv()); rc >= 0) return rc;
  if (flags.out.empty()) return Fail("view", "--out (-o) is required", kExitUsage);
  Diagram d;
  if (int rc = LoadDiagram("view", flags, /*layout=*/true, &d); rc != kExitOk) return rc;
  if (absl::Status s = WriteCircuitView(d.circuit, d.graph, d.options, flags.out); !s.ok()) {
    return Fail("view", std::string(s.message()),
                s.code() == absl::StatusCode::kInvalidArgument ? kExitUsage : kExitFailure);
  }
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(flags.out, ec);
  std::cout << absl::StrFormat(
      "wrote %s (%.0f KB): %d nodes, %d weight edges, %d residual edges%s; %s\n", flags.out,
      ec ? 0.0 : bytes / 1024.0, d.graph.num_nodes(), d.graph.num_weight_edges(),
      flags.residual ? d.graph.num_residual_edges() : 0, d.notes,
      d.circuit.explanations.present()
          ? "with node explanations"
          : "no node explanations in the file (circuit explain adds them)");
  std::cout << "open " << flags.out << " in a browser (it needs no network)\n";
  return kExitOk;
}

}  // namespace

CIRCUIT_COMMAND(view, "view", "write a circuit as an interactive HTML page (hover, pin, search)",
                RunView);

}  // namespace circuit::cli
