// A hand-built model with a planted circuit, and its task (tests only).
//
// One layer, d_model 8, no AbsTopK, ReLU MLP. Token A (1) embeds as channel 0,
// token B (2) as channel 1; distractor tokens (3, 4, 7) write channels 2..4.
// MLP neuron 0 reads channel 0 (fires on A), neuron 1 reads channel 1 (fires on B);
// they write +/- residual channel 5, which the unembedding reads to prefer
// X (5) over Y (6). Distractor neurons 2..7 and the attention read channels 2..4
// and write channels 6, 7, which X and Y ignore.
// The planted circuit: L0 mlp.act_in {0, 1}, L0 mlp.post_act {0, 1},
// L0 mlp.resid_delta 5, L1 final_resid 5.
#ifndef CIRCUIT_TESTS_PRUNE_PLANTED_H_
#define CIRCUIT_TESTS_PRUNE_PLANTED_H_

#include <torch/torch.h>

#include <set>
#include <string>
#include <vector>

#include "circuit/core/circuit.h"
#include "circuit/core/model.h"
#include "circuit/core/task.h"

namespace circuit::testing {

// Helpers shared by the planted models. Every parameter of `config`, zero.
std::vector<NamedTensor> ZeroParameters(const ModelConfig& config);
// The tensor called `name` (aborts when there is none).
torch::Tensor& ParameterNamed(std::vector<NamedTensor>& tensors, const std::string& name);
// Appends a prompt (-> correct) and its twin (-> alternative, the answers swapped).
void AddTwins(std::vector<TaskExample>* out, std::vector<int32_t> prompt,
              std::vector<int32_t> twin, int correct, int alternative);
// (n, length) int64 windows of tokens drawn uniformly from `tokens`.
torch::Tensor WindowsOf(const std::vector<int64_t>& tokens, int n, int length, uint64_t seed);
// The nodes of a circuit as a set.
std::set<Node> NodeSet(const Circuit& circuit);

Model PlantedModel();
std::vector<Node> PlantedNodes();
// Pairs: [d, d, d, A] -> X and its twin [d, d, d, B] -> Y, distractors drawn from seed.
TaskData PlantedTask(int n_train, int n_validation, int n_test, uint64_t seed);
// (n, 8) windows of distractor tokens only: the "pretraining text" for the means.
torch::Tensor PlantedMeanWindows(int n, uint64_t seed);
// A random model of the planted shape with sparse weights (edge tests).
Model RandomSparseModel(uint64_t seed, double density);

// A two-layer model whose task needs a saturated conjunctive attention head
// (planted_saturated.cc). Prompts [p0, p1, p2, Q] carry a signal token A (1) or
// B (2) at one of p0..p2 among distractors (6..9); the answer is X (4) after A,
// Y (5) after B. Every token writes a bulk channel 15 (4.0) that keeps RMSNorm
// nearly constant. L0 head 0 has query channel 0 reading the Q channel 2 and
// key channel 0 reading the signal channel 0: their logit at the signal is
// about 29, so the softmax is saturated and its gradients vanish; it is needed
// only as a conjunction (without either, attention spreads evenly and the moved
// value falls below the L1 MLP neurons' threshold). Value channel 0 reads the
// A-minus-B channel 1 and writes residual channel 3; L1 MLP neurons 0 and 1 turn
// its sign into +/- channel 4, which X and Y read. L0 head 1, both L1 heads and
// the other neurons are distractors that read distractor channels 5..8 and write
// 10..14; many other channels carry nothing.
Model PlantedSaturatedModel();
// The 12 nodes the task needs: L0 attn.act_in {0, 1, 2}, attn.q 0, attn.k 0,
// attn.v 0, attn.resid_delta 3, L1 mlp.act_in 3, mlp.post_act {0, 1},
// mlp.resid_delta 4, L2 final_resid 4.
std::vector<Node> PlantedSaturatedNodes();
// Pairs [.., A, .., Q] -> X and the twin with B -> Y, positions and distractors from seed.
TaskData PlantedSaturatedTask(int n_train, int n_validation, int n_test, uint64_t seed);
// (n, 8) windows of distractor tokens only: the means.
torch::Tensor PlantedSaturatedMeanWindows(int n, uint64_t seed);

}  // namespace circuit::testing

#endif  // CIRCUIT_TESTS_PRUNE_PLANTED_H_
