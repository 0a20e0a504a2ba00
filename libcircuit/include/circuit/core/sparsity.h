// Weight sparsity by top-k projection (PAPER.md §2.1, §2.3): after every
// optimiser step each sparse matrix keeps only its k = floor(f * numel) largest
// |w|, where the four block matrices first protect the j largest entries of every
// hidden-side channel (an MLP neuron, a q/k/v channel, a value channel) so that no
// channel dies. Which tensors are sparse, at which density group and channel
// orientation, comes from SparsityPlan().
//
//   std::vector<SparseParameter> plan = SparsityPlan(model.config(), SparsityOptions());
//   for (const SparseParameter& p : plan)
//     ProjectTopK(model.Parameter(p.name), KeepCount(numel, f), p.axis, /*min_per_channel=*/4);
#ifndef CIRCUIT_CORE_SPARSITY_H_
#define CIRCUIT_CORE_SPARSITY_H_

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "circuit/core/config.h"

namespace circuit {

// Which index of a 2-D weight names the channel that keeps a minimum of entries.
enum class ChannelAxis {
  kNone,    // plain global top-k
  kRow,     // per row: c_fc (every MLP neuron keeps inputs), c_attn (every q/k/v channel)
  kColumn,  // per column: mlp c_proj (every neuron keeps outputs), attn c_proj (every value channel)
};

// Which schedule sets a tensor's density.
enum class SparsityGroup {
  kHidden,  // block matrices and an added wpe: TrainSchedule::HiddenDensity
  kEmbed,   // wte, lm_head, and biases when sparsified: TrainSchedule::EmbedDensity
};

struct SparsityOptions {
  bool sparsify_biases = false;  // the paper is ambiguous (§2.1); off like the released script
  bool sparsify_wpe = true;      // an added wpe counts as a hidden matrix (§2.1)
  int min_per_channel = 4;       // j of §2.3; 0 turns the minimum off
};

struct SparseParameter {
  std::string name;  // state-dict key
  SparsityGroup group = SparsityGroup::kHidden;
  ChannelAxis axis = ChannelAxis::kNone;
  int min_per_channel = 0;  // j for this tensor (0 unless axis != kNone)
};

// The tensors of a model with `config` that the trainer projects, in state-dict
// order. Never listed: RMSNorm weights, sink logits, the bigram table,
// final_logits_bias, and a concatenated wpe (d_pos_emb > 0).
std::vector<SparseParameter> SparsityPlan(const ModelConfig& config,
                                          const SparsityOptions& options);

// floor(fraction * numel), at least 1 and at most numel.
int64_t KeepCount(int64_t numel, double fraction);

// Boolean mask (shape of w) of the entries a projection keeps: the j largest |w|
// of every channel along `axis` (j clamped to the channel length), then the
// largest |w| of the rest until k entries are kept in all. When j * channels > k
// the minimum wins and more than k entries are kept. Exactly max(k, j * channels)
// entries are true (ties broken by torch::topk). w: 1-D or 2-D (2-D when axis != kNone).
torch::Tensor TopKMask(const torch::Tensor& w, int64_t k, ChannelAxis axis = ChannelAxis::kNone,
                       int64_t min_per_channel = 0);

// Zeroes, in place and without autograd, every entry of `w` outside
// TopKMask(w, k, axis, min_per_channel). Returns the number of entries kept.
int64_t ProjectTopK(const torch::Tensor& w, int64_t k, ChannelAxis axis = ChannelAxis::kNone,
                    int64_t min_per_channel = 0);

}  // namespace circuit

#endif  // CIRCUIT_CORE_SPARSITY_H_
