// Node explanations: what each node of a circuit responds to and what it
// writes, as plain data (no torch), so that export/ can store them in the
// circuit file (optional group /explanations/, docs/formats.md) and `circuit
// view` can show them. Computed by `circuit explain` (and by `extract` when the
// model's corpus means are available).
//
//   const CircuitExplanations& e = circuit.explanations;
//   if (e.present()) {
//     const NodeExplanation& n = e.nodes[i];           // for circuit.nodes[i]
//     for (const ActivatingContext& c : n.top_contexts) Show(c.tokens, c.marked, c.value);
//   }
#ifndef CIRCUIT_CORE_EXPLANATION_H_
#define CIRCUIT_CORE_EXPLANATION_H_

#include <cstdint>
#include <string>
#include <vector>

namespace circuit {

// A window of text around one token where a node takes an extreme value.
struct ActivatingContext {
  std::vector<std::string> tokens;  // decoded tokens of the window (~24), in order
  int32_t marked = 0;               // position in `tokens` of the token scored
  float value = 0.0f;               // the node's activation at that token
};

// A vocabulary token with a score (logit effect, or activation it drives).
struct TokenScore {
  int32_t id = 0;
  std::string text;   // decoded token
  float score = 0.0f;
};

// Where a head looks from the answer position on one task prompt.
struct AttentionExample {
  int32_t prompt = 0;              // row of CircuitExplanations::prompts
  std::vector<float> weights;      // attention from the last position to each position
};

// One node's explanation. Lists that do not apply to the node's location are empty.
struct NodeExplanation {
  std::vector<ActivatingContext> top_contexts;     // highest activation first
  std::vector<ActivatingContext> bottom_contexts;  // lowest activation first
  std::vector<float> histogram_edges;              // (bins + 1) activation bin edges
  std::vector<int64_t> histogram_counts;           // (bins) tokens per bin, corpus validation split
  // Mean activation at the answer position over the task's prompts of each
  // class (CircuitExplanations::class_names), e.g. single- vs double-quote twins.
  std::vector<float> class_means;
  std::vector<TokenScore> promoted;     // output tokens it raises most (residual writers)
  std::vector<TokenScore> suppressed;   // ... and lowers most
  std::vector<TokenScore> input_tokens; // input tokens that drive it most (embedding readers)
  std::vector<AttentionExample> attention;  // q/k channels of a head: where the head looks
  // Activation at every position of each of CircuitExplanations::prompts
  // (prompt_activations[p].size() == prompts[p].size()).
  std::vector<std::vector<float>> prompt_activations;
};

// The explanations of a circuit's nodes; empty `nodes` means none were computed.
struct CircuitExplanations {
  std::string corpus;                        // where the contexts came from (words)
  int32_t top = 0;                           // contexts per side
  std::vector<std::string> class_names;      // e.g. {"prompt", "twin"}, or the answer tokens
  std::vector<std::vector<std::string>> prompts;  // a few task prompts, decoded tokens
  std::vector<NodeExplanation> nodes;        // aligned with Circuit::nodes

  bool present() const { return !nodes.empty(); }
};

}  // namespace circuit

#endif  // CIRCUIT_CORE_EXPLANATION_H_
