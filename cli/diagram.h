// What `circuit draw` and `circuit view` share: their flags (-o for --out, the
// model's d_head to group q/k/v channels by head, --top, --prune-dangling,
// --force) and the steps from a circuit file to the graph to lay out.
//
//   DiagramFlags flags;
//   AddDiagramFlags(parser, &flags, "the HTML file to write");
//   DiagramArgv args(argc, argv);                      // "-o x" reads as "--out x"
//   if (int rc = parser.Parse(args.argc(), args.argv()); rc >= 0) return rc;
//   Diagram d;
//   if (int rc = LoadDiagram("view", flags, /*layout=*/true, &d); rc != kExitOk) return rc;
#ifndef CIRCUIT_CLI_DIAGRAM_H_
#define CIRCUIT_CLI_DIAGRAM_H_

#include <cstdint>
#include <string>
#include <vector>

#include "args.h"
#include "circuit/core/circuit.h"
#include "circuit/export/dot.h"
#include "circuit/graph/circuit_graph.h"

namespace circuit::cli {

// argv with "-o" spelled "--out" (ArgParser knows only long options).
class DiagramArgv {
 public:
  DiagramArgv(int argc, char** argv);
  int argc() const { return static_cast<int>(pointers_.size()); }
  char** argv() { return pointers_.data(); }

 private:
  std::vector<std::string> args_;
  std::vector<char*> pointers_;
};

struct DiagramFlags {
  std::string path;   // the circuit file
  std::string out;
  std::string model;  // checkpoint to read d_head from
  int d_head = 0;     // 0: from the model
  bool legend = true, residual = true, prune = false, force = false;
  int64_t top = 0;    // 0: all nodes
};

// Declares CIRCUIT.h5, --out (`out_help`), --d-head, --model, --legend,
// --residual, --prune-dangling, --top and --force.
void AddDiagramFlags(ArgParser& parser, DiagramFlags* flags, const std::string& out_help);

// A circuit ready to lay out: its graph and the DotOptions for it.
struct Diagram {
  Circuit circuit;           // after --top (nodes, edges and explanations)
  graph::CircuitGraph graph; // after --prune-dangling
  DotOptions options;        // d_head, legend, residual edges, title
  std::string notes;         // ", the N most important of M nodes, K dangling nodes left out"
};

// Checks the flags, reads the circuit, keeps the --top nodes, builds the graph
// (d_head from the model when not given: the circuit's model file beside it,
// else the bundled model), leaves out dangling nodes with --prune-dangling and,
// when `layout`, refuses graphs too large to lay out unless --force. Returns
// kExitOk, or prints one line as `circuit <command>` and returns the exit code.
int LoadDiagram(const std::string& command, const DiagramFlags& flags, bool layout, Diagram* out);

}  // namespace circuit::cli

#endif  // CIRCUIT_CLI_DIAGRAM_H_
