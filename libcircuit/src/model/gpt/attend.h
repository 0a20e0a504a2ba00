// The GPT's softmax attention: a fused CPU kernel with its own backward pass,
// torch's kernels (in chunks of queries where the scores would be large) where
// it does not apply (circuit/core/attention.h).
//
//   y = internal::Attend(q, k, v, masked, sink, 1 / sqrt(d_head));  // (B, H, Tq, dh)
#ifndef CIRCUIT_MODEL_GPT_ATTEND_H_
#define CIRCUIT_MODEL_GPT_ATTEND_H_

#include <torch/torch.h>

namespace circuit::internal {

// softmax(q kᵀ · scale) v over the keys not masked, with the per-head sink
// logit `sink` (H) as a virtual key of zero value when it is defined: q
// (B, H, Tq, dh), k and v (B, H, Tk, dh), masked broadcastable to
// (B, 1, Tq, Tk). On the CPU, in float and at head width 16, one kernel
// computes each query's scores in turn, and under autograd a second one its
// gradients to q, k and v (unless FusedAttention() is off); torch's kernels,
// in chunks of queries beyond MaxAttentionScores(), otherwise and when the
// sink takes a gradient (training a model with a sink).
// The keys and values (R, H, s, dh) of prefixes shared by twin rows: row b
// of q attends to prefix row b / 2's s keys first, then to its own, and the
// mask covers both (B, 1, Tq, s + Tk). Read in place by the fused kernel
// (whose gradient adds the twins' parts); copied in front of each row's own
// keys for torch's kernels.
struct SharedPrefix {
  torch::Tensor k, v;  // undefined: no prefix
};

torch::Tensor Attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     const torch::Tensor& masked, const torch::Tensor& sink, double scale,
                     const SharedPrefix& prefix = SharedPrefix());

}  // namespace circuit::internal

#endif  // CIRCUIT_MODEL_GPT_ATTEND_H_
