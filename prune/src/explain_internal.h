// Private parts of node explanations (explain.h), one file per kind of evidence:
// explain_record.cc records circuit nodes in batched forward passes,
// explain_weights.cc reads the weights' direct paths.
#ifndef CIRCUIT_PRUNE_SRC_EXPLAIN_INTERNAL_H_
#define CIRCUIT_PRUNE_SRC_EXPLAIN_INTERNAL_H_

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "circuit/core/explanation.h"
#include "circuit/core/model.h"
#include "circuit/core/nodes.h"

namespace circuit::prune::internal {

// Records the activations of a fixed list of nodes in every forward pass it
// is installed in, and (optionally) the whole q and k sites of some layers.
class NodeRecorder {
 public:
  // `full_qk_layers`: layers whose q and k sites are kept whole (attention).
  // Its taps capture `this`: it stays where it was made.
  NodeRecorder(const Model& model, const std::vector<Node>& nodes,
               const std::vector<int>& full_qk_layers);
  NodeRecorder(const NodeRecorder&) = delete;
  NodeRecorder& operator=(const NodeRecorder&) = delete;

  const Taps& taps() const { return taps_; }
  // After a forward pass: (B, T, n_nodes) float32 on the CPU, columns in node order.
  torch::Tensor Nodes() const;
  // After a forward pass: the q or k site of a layer in full_qk_layers, (B, T, A).
  const torch::Tensor& Query(int layer) const { return q_[layer]; }
  const torch::Tensor& Key(int layer) const { return k_[layer]; }

 private:
  struct SiteNodes {
    torch::Tensor channels;  // (m) int64 on the model's device
    torch::Tensor rows;      // (m) int64: their columns in Nodes()
  };
  int64_t n_nodes_;
  Taps taps_;
  std::vector<SiteNodes> sites_;            // per tap site
  std::vector<torch::Tensor> captured_;     // per tap site: (B, T, m) after a pass
  std::vector<torch::Tensor> q_, k_;        // per layer: (B, T, A) when recorded
};

// Activations of `nodes` at every position of `windows` (N, T) in batches of
// `batch` windows: (n_nodes, N * T) float32 on the CPU, row-major over (window, position).
torch::Tensor RecordOverText(const Model& model, const std::vector<Node>& nodes,
                             const torch::Tensor& windows, int batch);

// Output tokens a residual writer raises and lowers most through the final norm's
// scale and the unembedding (lists left empty for nodes that write no residual
// direction). `vocab`: decoded text of every id.
void FillOutputTokens(const Model& model, const Node& node, int top,
                      const std::vector<std::string>& vocab, NodeExplanation* e);

// Input tokens whose embedding drives a residual reader most on the direct path
// (act_in through its norm, final_resid raw), by |value|; empty for other nodes.
void FillInputTokens(const Model& model, const Node& node, int top,
                     const std::vector<std::string>& vocab, NodeExplanation* e);

// The attention of head `head` from the last of the first `length` positions of
// row `row` of q and k (B, T, A) to each of those positions, the sink's share
// left out when the model has one: (length) weights.
std::vector<float> AttentionFromLast(const Model& model, int layer, int head,
                                     const torch::Tensor& q, const torch::Tensor& k, int64_t row,
                                     int64_t length);

}  // namespace circuit::prune::internal

#endif  // CIRCUIT_PRUNE_SRC_EXPLAIN_INTERNAL_H_
