#include "planted_attention.h"

#include <map>
#include <string>

#include "circuit/core/status.h"

namespace circuit::testing {
namespace {

constexpr int kA = 1, kB = 2, kQ = 3, kX = 5, kY = 6;
constexpr int kDistractors[] = {7, 8, 9};
constexpr int kWidth = 16;  // d_model, d_mlp, vocabulary
constexpr int kAttn = 8;    // 2 heads x 4

ModelConfig PlantedAttentionConfig() {
  ModelConfig c;
  c.n_layer = 2;
  c.d_model = kWidth;
  c.n_head = 2;
  c.d_head = 4;
  c.d_mlp = kWidth;
  c.vocab_size = kWidth;
  c.n_ctx = 8;
  c.afrac = 0.5;  // AbsTopK keeps 8 of 16 (4 of 8 for q, k, v) at all eight locations
  c.attn_sink = false;
  c.bigram_table = false;
  c.activation = "relu";
  return c;
}

}  // namespace

Model PlantedAttentionModel() {
  const ModelConfig c = PlantedAttentionConfig();
  std::map<std::string, torch::Tensor> weights;  // every tensor zero but those set below
  for (const auto& [name, shape] : Model::ParameterShapes(c)) {
    weights[name] = torch::zeros(shape, torch::kFloat32);
  }
  auto get = [&](const std::string& name) -> torch::Tensor& { return weights.at(name); };
  auto layer = [&](int l, const std::string& name) -> torch::Tensor& {
    return weights.at("transformer.h." + std::to_string(l) + "." + name);
  };
  torch::NoGradGuard no_grad;
  for (int l = 0; l < 2; ++l) {
    layer(l, "ln_1.weight").fill_(1.0);
    layer(l, "ln_2.weight").fill_(1.0);
  }
  get("transformer.ln_f.weight").fill_(1.0);

  torch::Tensor& wte = get("transformer.wte.weight");  // (16, 16)
  wte[kA][0] = 1.0;
  wte[kA][1] = 1.0;
  wte[kB][0] = 1.0;
  wte[kB][1] = -1.0;
  wte[kQ][2] = 1.0;
  wte[7][3] = 1.0;
  wte[8][4] = 1.0;
  wte[8][3] = 0.5;
  wte[9][5] = 1.0;
  wte[9][6] = 0.5;
  wte[0][3] = 1.0;  // padding looks like a distractor
  wte[0][6] = 1.0;
  for (int t : {4, 5, 6, 10, 11, 12, 13, 14, 15}) wte[t][4] = 1.0;
  wte.select(1, 15) += 4.0;  // the constant channel

  // Layer 0 attention: planted head 0 (rows 0, 8, 16 of c_attn), distractor head 1.
  torch::Tensor& attn0 = layer(0, "attn.c_attn.weight");  // (24, 16): q, k, v
  attn0[0][2] = 2.5;                // q0 <- Q
  attn0[kAttn + 0][0] = 2.5;        // k0 <- A/B
  attn0[2 * kAttn + 0][1] = 3.0;    // v0 <- +A / -B
  attn0[4][3] = 0.5;
  attn0[kAttn + 4][4] = 0.5;
  attn0[2 * kAttn + 4][5] = 0.8;
  attn0[2 * kAttn + 5][3] = 0.6;
  torch::Tensor& proj0 = layer(0, "attn.c_proj.weight");  // (16, 8)
  proj0[7][0] = 1.0;
  proj0[9][4] = 0.3;
  proj0[10][5] = 0.225;
  // Layer 0 MLP: distractors only.
  torch::Tensor& fc0 = layer(0, "mlp.c_fc.weight");  // (16, 16)
  fc0[2][3] = 0.8;
  fc0[3][4] = 0.8;
  fc0[4][5] = 0.8;
  fc0[5][9] = 0.5;
  torch::Tensor& mproj0 = layer(0, "mlp.c_proj.weight");  // (16, 16)
  mproj0[11][2] = 0.5;
  mproj0[12][3] = 0.5;
  mproj0[11][4] = 0.3;
  mproj0[12][5] = 0.4;

  // Layer 1 attention: a distractor head.
  torch::Tensor& attn1 = layer(1, "attn.c_attn.weight");
  attn1[4][3] = 0.5;
  attn1[kAttn + 4][4] = 0.5;
  attn1[2 * kAttn + 4][11] = 0.8;
  layer(1, "attn.c_proj.weight")[13][4] = 0.7;
  // Layer 1 MLP: the planted neurons 0 and 1 on channel 7, distractor neurons 2..4.
  torch::Tensor& fc1 = layer(1, "mlp.c_fc.weight");
  torch::Tensor& fc1_b = layer(1, "mlp.c_fc.bias");
  fc1[0][7] = 2.0;
  fc1[1][7] = -2.0;
  fc1_b[0] = -3.0;
  fc1_b[1] = -3.0;
  fc1[2][9] = 0.8;
  fc1[3][11] = 0.8;
  fc1[4][13] = 0.6;
  torch::Tensor& mproj1 = layer(1, "mlp.c_proj.weight");
  mproj1[8][0] = 1.0;
  mproj1[8][1] = -1.0;
  mproj1[14][2] = 0.5;
  mproj1[15][3] = 0.5;
  mproj1[14][4] = 0.4;

  torch::Tensor& lm_head = get("lm_head.weight");  // (16, 16)
  lm_head[kX][8] = 3.0;
  lm_head[kY][8] = -3.0;
  for (int v : kDistractors) lm_head[v][14] = 1.0;
  std::vector<NamedTensor> tensors;
  for (const auto& [name, shape] : Model::ParameterShapes(c)) tensors.push_back({name, weights.at(name)});
  absl::StatusOr<Model> model = Model::FromTensors(c, std::move(tensors));
  CIRCUIT_CHECK(model.ok());
  return std::move(*model);
}

std::vector<Node> PlantedAttentionNodes() {
  using L = NodeLocation;
  return {Node{0, L::kAttnActIn, 0},       Node{0, L::kAttnActIn, 1},  Node{0, L::kAttnActIn, 2},
          Node{0, L::kAttnQ, 0},           Node{0, L::kAttnK, 0},      Node{0, L::kAttnV, 0},
          Node{0, L::kAttnResidDelta, 7},  Node{1, L::kMlpActIn, 7},   Node{1, L::kMlpPostAct, 0},
          Node{1, L::kMlpPostAct, 1},      Node{1, L::kMlpResidDelta, 8}, Node{2, L::kFinalResid, 8}};
}

TaskData PlantedAttentionTask(int n_train, int n_validation, int n_test, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  auto split = [&](int pairs) {
    std::vector<TaskExample> out;
    const torch::Tensor d = torch::randint(0, 3, {pairs, 3}, gen, torch::kInt64);
    for (int p = 0; p < pairs; ++p) {
      TaskExample prompt, twin;
      prompt.tokens = {kA};
      twin.tokens = {kB};
      for (int j = 0; j < 3; ++j) {
        const int32_t token = kDistractors[d[p][j].item<int64_t>()];
        prompt.tokens.push_back(token);
        twin.tokens.push_back(token);
      }
      prompt.tokens.push_back(kQ);
      twin.tokens.push_back(kQ);
      prompt.correct = twin.alternative = kX;
      prompt.alternative = twin.correct = kY;
      out.push_back(prompt);
      out.push_back(twin);
    }
    return out;
  };
  TaskData data;
  data.name = "planted_attention";
  data.description = "the first token (A or B) decides the answer at the last (Q): X or Y";
  data.train = split(n_train);
  data.validation = split(n_validation);
  data.test = split(n_test);
  return data;
}

torch::Tensor PlantedAttentionMeanWindows(int n, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  // A twice as often as B, so that the value channel's mean is not zero.
  const torch::Tensor pool = torch::tensor(
      {kA, kA, kB, kDistractors[0], kDistractors[1], kDistractors[2]}, torch::kInt64);
  torch::Tensor windows = pool.index({torch::randint(0, 6, {n, 8}, gen, torch::kInt64)});
  const torch::Tensor query = torch::rand({n, 8}, gen) < 0.1;
  return windows.masked_fill(query, kQ);  // (n, 8)
}

}  // namespace circuit::testing
