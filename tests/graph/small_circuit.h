// A tiny hand-built circuit (2 layers, d_head 2) shared by the graph and export
// tests. Rows, in computation order:
//    0 L0 attn.act_in 3        9 L0 mlp.resid_delta 7
//    1 L0 attn.q 0  (head 0)  10 L1 attn.act_in 5   (read, no outgoing edge)
//    2 L0 attn.q 2  (head 1,  11 L1 mlp.act_in 7
//                    no value) 12 L1 mlp.post_act 4
//    3 L0 attn.k 1  (head 0)  13 L1 mlp.resid_delta 2 (channel 2 never read)
//    4 L0 attn.v 0  (head 0)  14 L2 final_resid 5
//    5 L0 attn.resid_delta 5  15 L2 final_resid 7
//    6 L0 mlp.act_in 5        16 L2 final_resid 9   (isolated)
//    7 L0 mlp.post_act 10
//    8 L0 mlp.post_act 11 (no input)
// Residual identity edges: 5->6, 5->10, 5->14, 9->11, 9->15.
#ifndef CIRCUIT_TESTS_GRAPH_SMALL_CIRCUIT_H_
#define CIRCUIT_TESTS_GRAPH_SMALL_CIRCUIT_H_

#include "circuit/core/circuit.h"

namespace circuit::testing {

inline Circuit SmallCircuit() {
  using L = NodeLocation;
  Circuit c;
  c.task = "single_double_quote";
  c.model_file = "default.h5";
  c.model_digest = "0123456789abcdef";
  c.ablation = "mean";
  c.method = "masks";
  c.penalty = "log";
  c.seed = 7;
  c.n_layer = 2;
  c.target_loss = 0.15;
  c.full_model_loss = 0.03125;
  c.circuit_loss = 0.140625;
  c.necessity_loss = 1.5;
  c.random_baseline_loss = 2.25;
  c.accuracy = 0.96875;
  c.total_nodes = 6144;
  const Node nodes[] = {
      {0, L::kAttnActIn, 3},     {0, L::kAttnQ, 0},         {0, L::kAttnQ, 2},
      {0, L::kAttnK, 1},         {0, L::kAttnV, 0},         {0, L::kAttnResidDelta, 5},
      {0, L::kMlpActIn, 5},      {0, L::kMlpPostAct, 10},   {0, L::kMlpPostAct, 11},
      {0, L::kMlpResidDelta, 7}, {1, L::kAttnActIn, 5},     {1, L::kMlpActIn, 7},
      {1, L::kMlpPostAct, 4},    {1, L::kMlpResidDelta, 2}, {2, L::kFinalResid, 5},
      {2, L::kFinalResid, 7},    {2, L::kFinalResid, 9}};
  int i = 0;
  for (const Node& n : nodes) {
    c.nodes.push_back(CircuitNode{n, /*mask_logit=*/0.25f * i - 1.0f, /*importance=*/0.1f * i});
    ++i;
  }
  c.edges = {{0, 1, 0.5f}, {0, 2, 0.25f}, {0, 3, -1.0f}, {0, 4, 2.0f},   {4, 5, -0.5f},
             {6, 7, 1.5f}, {7, 9, 0.8f},  {8, 9, 0.3f},  {11, 12, 1.0f}, {12, 13, -2.0f}};
  c.loss_vs_k_k = {4, 8, 16, 17};
  c.loss_vs_k_loss = {1.25, 0.5, 0.15, 0.140625};
  c.location_importance = {{"L0 attn.q", 0.75}, {"L0 mlp.post_act", 1.125}};
  return c;
}

}  // namespace circuit::testing

#endif  // CIRCUIT_TESTS_GRAPH_SMALL_CIRCUIT_H_
