// A human-readable, multi-line summary of a circuit (what `circuit inspect`
// prints for circuit files): provenance, losses, size, nodes per location, and
// the ten most important nodes.
//
//   std::cout << DescribeCircuit(circuit);
#ifndef CIRCUIT_EXPORT_DESCRIBE_H_
#define CIRCUIT_EXPORT_DESCRIBE_H_

#include <string>

#include "circuit/core/circuit.h"

namespace circuit {

// Ends with a newline. Importance is the loss when the node alone is also
// ablated, so "most important" means the highest such loss.
std::string DescribeCircuit(const Circuit& circuit);

// "1.000 of the nodes are needed (...)", or "not measured" (NaN), plus what
// refinement removed when it ran. One line, no newline.
std::string MinimalityText(const Circuit& circuit);

}  // namespace circuit

#endif  // CIRCUIT_EXPORT_DESCRIBE_H_
