// Circuit: the plain-data result of pruning, shared by prune, graph and export.
// It holds no torch types, so graph/ and export/ build without libtorch.
//
//   Circuit c = ...;                        // from prune::ExtractCircuit or ReadCircuit
//   for (const CircuitEdge& e : c.edges)    // e.src, e.dst index c.nodes
//     Use(c.nodes[e.src].node, c.nodes[e.dst].node, e.weight);
#ifndef CIRCUIT_CORE_CIRCUIT_H_
#define CIRCUIT_CORE_CIRCUIT_H_

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "circuit/core/explanation.h"
#include "circuit/core/nodes.h"

namespace circuit {

struct CircuitNode {
  Node node;
  float mask_logit = 0.0f;  // tau after mask training (attribution score for that method)
  float importance = 0.0f;  // task loss when this node alone is also ablated (nats/prompt); NaN: not computed
};

// One nonzero weight between two kept nodes; src and dst index Circuit::nodes.
struct CircuitEdge {
  int64_t src = 0;
  int64_t dst = 0;
  float weight = 0.0f;
};

// How a circuit was extracted and verified, so that `circuit ablate` and
// `circuit audit` rebuild the same task splits and re-run the same extraction
// without the user repeating options (/extract in the file, docs/formats.md).
// NaN (doubles) and -1 (integers) mean "not recorded" (a file written before
// these were stored): readers then use the tools' defaults.
struct ExtractSettings {
  static constexpr double kUnset = std::numeric_limits<double>::quiet_NaN();
  // Task splits, as requested from BuildTask: datapoints (twin pairs) per split
  // and the seed that drew them.
  int64_t n_train = -1;
  int64_t n_validation = -1;
  int64_t n_test = -1;
  int64_t task_seed = -1;
  // Extraction options (prune::ExtractOptions); the method, penalty and
  // ablation are Circuit fields.
  double penalty_coef = kUnset;  // resolved coefficient c
  double lr = kUnset;
  int64_t batch = -1;
  int64_t epochs = -1;
  double heaviside_temp = kUnset;
  double warmup_frac = kUnset;
  double confidence = kUnset;
  int64_t search = -1;
  int64_t tie_qk = -1;       // 0 / 1
  int64_t calibrate = -1;    // 0 / 1
  // Logit calibration at the chosen k; NaN when not fitted (calibrate off).
  double calibration_scale = kUnset;
  double calibration_shift = kUnset;
};

struct Circuit {
  std::string task;
  std::string model_file;     // file name of the model checkpoint
  std::string model_digest;   // hex digest of the model's weights
  std::string ablation = "mean";  // mean | zero | resample
  std::string method = "masks";   // masks | attribution
  std::string penalty = "log";    // linear | log
  uint64_t seed = 0;
  int32_t n_layer = 0;        // layers of the model (final_resid sits at n_layer)
  std::string arch = "gpt";   // the model's architecture (arch.h); files without it: "gpt"
  // How `edges` were defined (prune/edges.h, EdgeDefinition, or
  // prune/edge_selection.h for BDH edges by attribution); "" when not recorded.
  std::string edge_definition;
  // Edges by attribution: the weights between kept nodes they were chosen from
  // (-1: not chosen, every such weight is an edge) and the test loss with only
  // the chosen ones (circuit_loss keeps them all; NaN: not chosen).
  int64_t edge_candidates = -1;
  double edge_loss = std::numeric_limits<double>::quiet_NaN();
  double target_loss = 0.15;  // all losses: per prompt, nats (PAPER.md §3.1)
  double full_model_loss = 0.0;
  double circuit_loss = 0.0;        // test split, everything outside ablated (sufficiency)
  double necessity_loss = 0.0;      // test split, only the circuit ablated
  double random_baseline_loss = 0.0;  // a random circuit of the same size per location; NaN: skipped
  double accuracy = 0.0;            // circuit accuracy on the test split
  int64_t total_nodes = 0;
  std::vector<CircuitNode> nodes;   // sorted by (layer, location, index)
  std::vector<CircuitEdge> edges;
  std::vector<int64_t> loss_vs_k_k;     // discretisation curve: k ...
  std::vector<double> loss_vs_k_loss;   // ... and the validation loss at that k
  std::map<std::string, double> location_importance;  // "L2 attn.q" -> loss when ablated
  // Share of the nodes whose single removal breaks the target on refinement's
  // selection pairs (train; files before them: validation) (1.0: minimal); NaN
  // when not computed (prune/refine.h).
  double minimality = std::numeric_limits<double>::quiet_NaN();
  bool refined = false;         // refinement ran after discretization ...
  int64_t refine_removed = 0;   // ... and dropped this many nodes (net of those put back)
  int64_t tied_nodes = 0;       // kept nodes tied in score with left-out ones at the cut
  std::string tie_note;         // words for tied_nodes; "" when none
  CircuitExplanations explanations;  // optional (/explanations/ in the file); see explanation.h
  ExtractSettings settings;          // how it was extracted (/extract in the file)
  // Optional: the ranking score (mask logit tau, or attribution score) of every
  // node of the model, in the model's flat node order (site by site in tap
  // order, channels in order; prune::NodeIndex). Empty when not stored.
  std::vector<float> node_scores;
};

}  // namespace circuit

#endif  // CIRCUIT_CORE_CIRCUIT_H_
