// Read a circuit file and walk its nodes and edges — the starting point for
// your own analysis of a circuit (torch-free: links circuit::export only).
//
//   list_circuit out/quickstart/circuit.h5
#include <iostream>

#include "circuit/core/circuit.h"
#include "circuit/export/circuit_file.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: list_circuit CIRCUIT.h5\n";
    return 2;
  }
  absl::StatusOr<circuit::Circuit> c = circuit::ReadCircuitFile(argv[1]);
  if (!c.ok()) return std::cerr << c.status().message() << "\n", 2;
  std::cout << c->task << " in " << c->model_file << ": " << c->nodes.size() << " of "
            << c->total_nodes << " nodes, circuit loss " << c->circuit_loss << "\n";
  for (const circuit::CircuitNode& n : c->nodes) {
    std::cout << "node " << circuit::NodeLabel(n.node) << "  importance " << n.importance << "\n";
  }
  for (const circuit::CircuitEdge& e : c->edges) {
    std::cout << "edge " << circuit::NodeLabel(c->nodes[e.src].node) << " -> "
              << circuit::NodeLabel(c->nodes[e.dst].node) << "  weight " << e.weight << "\n";
  }
  return 0;
}
