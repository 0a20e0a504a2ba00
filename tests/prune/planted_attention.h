// A hand-built two-layer model whose planted mechanism needs attention (tests
// only): the answer at the last position depends on the first token, four
// positions back, so the information must be moved by an attention head.
//
// Prompts are [A|B, d, d, d, Q] with distractors d; A -> X, B -> Y; the twin
// swaps the first token. Every token also writes 4 to a constant residual
// channel 15 (as a large shared direction would), which keeps RMSNorm in its
// linear range. The mechanism:
//   L0 head 0: query q0 reads channel 2 (the Q token), key k0 reads channel 0
//     (A and B), value v0 reads channel 1 (+1 for A, -1 for B); the head writes
//     its output to residual channel 7. The attention on the first token is
//     about 0.8 (not saturated), enough to carry the sign past the distractors.
//   L1 MLP: neuron 0 = relu(2·c7 − 3) and neuron 1 = relu(−2·c7 − 3) write ±
//     residual channel 8, which the unembedding reads (X: +3, Y: −3).
// Distractor heads, neurons and channels run beside it (L0 head 1, L0 MLP, L1
// head 1, L1 neurons 2..4) and never reach channel 8. AbsTopK is on (afrac 0.5
// at all eight locations) and the means over PlantedAttentionMeanWindows are
// nonzero at the planted nodes. Each planted node is necessary: mean-ablating
// any one of them (the rest of the circuit kept) costs more than 0.25 nats.
#ifndef CIRCUIT_TESTS_PRUNE_PLANTED_ATTENTION_H_
#define CIRCUIT_TESTS_PRUNE_PLANTED_ATTENTION_H_

#include <torch/torch.h>

#include <vector>

#include "circuit/core/model.h"
#include "circuit/core/task.h"

namespace circuit::testing {

Model PlantedAttentionModel();
// The 12 planted nodes: L0 attn.act_in {0, 1, 2}, L0 attn.q 0, attn.k 0,
// attn.v 0, L0 attn.resid_delta 7, L1 mlp.act_in 7, L1 mlp.post_act {0, 1},
// L1 mlp.resid_delta 8, L2 final_resid 8.
std::vector<Node> PlantedAttentionNodes();
// Pairs [A, d, d, d, Q] -> X and [B, d, d, d, Q] -> Y, distractors drawn from seed.
TaskData PlantedAttentionTask(int n_train, int n_validation, int n_test, uint64_t seed);
// (n, 8) windows of "pretraining text": A (twice as often as B), B and
// distractors, with Q at about one position in ten.
torch::Tensor PlantedAttentionMeanWindows(int n, uint64_t seed);

}  // namespace circuit::testing

#endif  // CIRCUIT_TESTS_PRUNE_PLANTED_ATTENTION_H_
