// A human-readable, multi-line summary of a circuit (what `circuit inspect`
// prints for circuit files): provenance, losses, size, nodes per location, and
// the ten most important nodes, and one line per node when it has explanations.
//
//   std::cout << DescribeCircuit(circuit);
#ifndef CIRCUIT_EXPORT_DESCRIBE_H_
#define CIRCUIT_EXPORT_DESCRIBE_H_

#include <cstdint>
#include <string>

#include "circuit/core/circuit.h"

namespace circuit {

// Ends with a newline. Importance is the loss when the node alone is also
// ablated, so "most important" means the highest such loss.
std::string DescribeCircuit(const Circuit& circuit);

// One line about one explained node: its label, the tokens its top contexts
// mark, the output tokens it promotes and suppresses (or, for residual readers,
// the input tokens that drive it) and its mean at the answer per class:
//   L0 attn.v 37   top "'" "\"" | promotes "')\n" ..., suppresses ... | answer means 0.81 / -0.40
std::string ExplanationLine(const CircuitNode& node, const NodeExplanation& explanation);

// A heading and ExplanationLine for every node; "" when the circuit has no explanations.
std::string DescribeExplanations(const Circuit& circuit);

// "1.000 of the nodes are needed (...)", or "not measured" (NaN), plus what
// refinement removed when it ran. One line, no newline.
std::string MinimalityText(const Circuit& circuit);
// The edges that are weights: all of a GPT circuit's; of a BDH circuit's, those
// into x- and y-neurons and residual channels (the others are one-to-one links).
int64_t WeightEdges(const Circuit& circuit);

}  // namespace circuit

#endif  // CIRCUIT_EXPORT_DESCRIBE_H_
