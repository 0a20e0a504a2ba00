// circuit draw CIRCUIT.h5 -o OUT.{svg,png,dot}: the circuit's diagram, laid out
// in process with Graphviz (docs/graphs.md describes what it shows).
#include <filesystem>
#include <iostream>
#include <string>

#include "absl/strings/str_format.h"
#include "args.h"
#include "circuit/core/arch.h"
#include "circuit/export/dot.h"
#include "command.h"
#include "diagram.h"

namespace circuit::cli {
namespace {

int RunDraw(int argc, char** argv) {
  ArgParser parser(
      "circuit draw CIRCUIT.h5 --out OUT.{svg,png,dot} [options]",
      "Draw a circuit: one cluster per attention and MLP sublayer, q/k/v channels grouped by "
      "head, edges coloured by sign (blue +, red -) and sized by |weight|, residual identity "
      "edges dashed grey (shown, not counted in the circuit's size). -o is short for --out.");
  DiagramFlags flags;
  std::string format;
  AddDiagramFlags(parser, &flags,
                  "output file; its extension picks the format unless --format is given");
  parser.Option("format", "svg, png or dot", &format);
  DiagramArgv args(argc, argv);
  if (int rc = parser.Parse(args.argc(), args.argv()); rc >= 0) return rc;
  const std::string& out = flags.out;
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
  Diagram d;
  if (int rc = LoadDiagram("draw", flags, /*layout=*/format != "dot", &d); rc != kExitOk) return rc;
  absl::StatusOr<std::string> dot = CircuitToDot(d.graph, d.options);
  if (!dot.ok()) return Fail("draw", std::string(dot.status().message()), kExitFailure);
  if (absl::Status s = RenderCircuit(*dot, format, out); !s.ok()) {
    return Fail("draw", std::string(s.message()),
                s.code() == absl::StatusCode::kInvalidArgument ? kExitUsage : kExitFailure);
  }
  const int d_head = d.options.d_head;
  std::cout << absl::StrFormat("wrote %s: %d nodes, %d weight edges, %d residual edges%s%s\n",
                               out, d.graph.num_nodes(), d.graph.num_weight_edges(),
                               flags.residual ? d.graph.num_residual_edges() : 0, d.notes,
                               d.circuit.arch != kArchGpt ? std::string()  // no q/k/v to group
                               : d_head > 0 ? absl::StrFormat(", heads of %d channels", d_head)
                                            : std::string(", heads not grouped (d_head unknown)"));
  return kExitOk;
}

}  // namespace

CIRCUIT_COMMAND(draw, "draw", "draw a circuit file as SVG, PNG or DOT (Graphviz)", RunDraw);

}  // namespace circuit::cli
