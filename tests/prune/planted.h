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

#include <vector>

#include "circuit/core/model.h"
#include "circuit/core/task.h"

namespace circuit::testing {

Model PlantedModel();
std::vector<Node> PlantedNodes();
// Pairs: [d, d, d, A] -> X and its twin [d, d, d, B] -> Y, distractors drawn from seed.
TaskData PlantedTask(int n_train, int n_validation, int n_test, uint64_t seed);
// (n, 8) windows of distractor tokens only: the "pretraining text" for the means.
torch::Tensor PlantedMeanWindows(int n, uint64_t seed);
// A random model of the planted shape with sparse weights (edge tests).
Model RandomSparseModel(uint64_t seed, double density);

}  // namespace circuit::testing

#endif  // CIRCUIT_TESTS_PRUNE_PLANTED_H_
