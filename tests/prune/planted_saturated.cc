// The planted model with a saturated conjunctive attention head (planted.h).
#include <string>

#include "circuit/core/status.h"
#include "planted.h"

namespace circuit::testing {
namespace {

constexpr int kA = 1, kB = 2, kQ = 3, kX = 4, kY = 5;
constexpr int kDistractors[] = {6, 7, 8, 9};
// Residual channels.
constexpr int kSig = 0, kAb = 1, kQry = 2, kMoved = 3, kOut = 4, kBulk = 15;

ModelConfig AttentionConfig() {
  ModelConfig c;
  c.n_layer = 2;
  c.d_model = 16;
  c.n_head = 2;
  c.d_head = 4;  // A = 8: head 0 is channels 0..3, head 1 is 4..7
  c.d_mlp = 8;
  c.vocab_size = 16;
  c.n_ctx = 8;
  c.afrac = 0.0;
  c.attn_sink = false;
  c.bigram_table = false;
  c.activation = "relu";
  return c;
}

}  // namespace

Model PlantedSaturatedModel() {
  const ModelConfig c = AttentionConfig();
  const int A = c.attn_width();
  std::vector<NamedTensor> tensors = ZeroParameters(c);
  auto get = [&](const std::string& name) -> torch::Tensor& {
    return ParameterNamed(tensors, name);
  };
  auto layer = [](int l, const std::string& name) {
    return "transformer.h." + std::to_string(l) + "." + name;
  };
  torch::NoGradGuard no_grad;
  for (int l = 0; l < 2; ++l) {
    get(layer(l, "ln_1.weight")).fill_(1.0);
    get(layer(l, "ln_2.weight")).fill_(1.0);
  }
  get("transformer.ln_f.weight").fill_(1.0);

  torch::Tensor& wte = get("transformer.wte.weight");  // (16, 16)
  wte.select(1, kBulk).fill_(4.0);
  wte[kA][kSig] = 1.0;
  wte[kA][kAb] = 1.0;
  wte[kB][kSig] = 1.0;
  wte[kB][kAb] = -1.0;
  wte[kQ][kQry] = 1.0;
  for (int i = 0; i < 4; ++i) {
    wte[kDistractors[i]][5 + i] = 1.0;
    wte[kDistractors[i]][5 + (i + 1) % 4] = 0.5;
  }
  wte[0][5] = 1.0;  // the padding token looks like a distractor

  // Layer 0 attention. Head 0: the planted query, key and value channel 0.
  torch::Tensor& attn0 = get(layer(0, "attn.c_attn.weight"));  // (3A, 16)
  attn0[0][kQry] = 8.0;
  attn0[A][kSig] = 8.0;
  attn0[2 * A][kAb] = 2.0;
  get(layer(0, "attn.c_proj.weight"))[kMoved][0] = 1.0;
  // Head 1: distractor channels in, 10 and 11 out.
  for (int j = 0; j < 4; ++j) {
    attn0[4 + j][5 + j] = 0.5;
    attn0[A + 4 + j][5 + (j + 1) % 4] = 0.5;
    attn0[2 * A + 4 + j][5 + j] = 1.0;
  }
  get(layer(0, "attn.c_proj.weight"))[10][4] = 0.3;
  get(layer(0, "attn.c_proj.weight"))[11][6] = 0.3;
  // Layer 0 MLP: distractor neurons only.
  torch::Tensor& fc0 = get(layer(0, "mlp.c_fc.weight"));  // (8, 16)
  for (int n = 0; n < 8; ++n) {
    fc0[n][5 + n % 4] = 1.0;
    get(layer(0, "mlp.c_fc.bias"))[n] = -0.2;
    get(layer(0, "mlp.c_proj.weight"))[12 + n % 3][n] = 0.3;
  }
  // Layer 1 attention: both heads are distractors (queries also read Q's channel).
  torch::Tensor& attn1 = get(layer(1, "attn.c_attn.weight"));
  for (int j = 0; j < A; ++j) {
    attn1[j][10 + j % 4] = 0.4;
    attn1[j][kQry] = 0.3;
    attn1[A + j][5 + j % 4] = 0.6;
    attn1[2 * A + j][5 + (j + 1) % 4] = 0.5;
  }
  get(layer(1, "attn.c_proj.weight"))[13][1] = 0.3;
  get(layer(1, "attn.c_proj.weight"))[14][6] = 0.3;
  // Layer 1 MLP: neurons 0 and 1 read the moved channel past a threshold.
  torch::Tensor& fc1 = get(layer(1, "mlp.c_fc.weight"));
  torch::Tensor& fc1_b = get(layer(1, "mlp.c_fc.bias"));
  torch::Tensor& proj1 = get(layer(1, "mlp.c_proj.weight"));
  fc1[0][kMoved] = 3.0;
  fc1[1][kMoved] = -3.0;
  fc1_b[0] = -2.0;
  fc1_b[1] = -2.0;
  proj1[kOut][0] = 1.0;
  proj1[kOut][1] = -1.0;
  for (int n = 2; n < 8; ++n) {
    fc1[n][5 + n % 4] = 0.8;
    fc1[n][10 + n % 4] = 0.5;
    proj1[10 + n % 5][n] = 0.3;
  }
  torch::Tensor& lm_head = get("lm_head.weight");  // (16, 16)
  lm_head[kX][kOut] = 2.0;
  lm_head[kY][kOut] = -2.0;
  for (int i = 0; i < 4; ++i) lm_head[kDistractors[i]][10 + i] = 1.0;
  absl::StatusOr<Model> model = Model::FromTensors(c, std::move(tensors));
  CIRCUIT_CHECK(model.ok());
  return std::move(*model);
}

std::vector<Node> PlantedSaturatedNodes() {
  using L = NodeLocation;
  return {Node{0, L::kAttnActIn, kSig},       Node{0, L::kAttnActIn, kAb},
          Node{0, L::kAttnActIn, kQry},       Node{0, L::kAttnQ, 0},
          Node{0, L::kAttnK, 0},              Node{0, L::kAttnV, 0},
          Node{0, L::kAttnResidDelta, kMoved}, Node{1, L::kMlpActIn, kMoved},
          Node{1, L::kMlpPostAct, 0},         Node{1, L::kMlpPostAct, 1},
          Node{1, L::kMlpResidDelta, kOut},   Node{2, L::kFinalResid, kOut}};
}

TaskData PlantedSaturatedTask(int n_train, int n_validation, int n_test, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  auto split = [&](int pairs) {
    std::vector<TaskExample> out;
    const torch::Tensor d = torch::randint(0, 4, {pairs, 3}, gen, torch::kInt64);
    const torch::Tensor where = torch::randint(0, 3, {pairs}, gen, torch::kInt64);
    for (int p = 0; p < pairs; ++p) {
      std::vector<int32_t> prompt, twin;
      for (int j = 0; j < 3; ++j) {
        const bool signal = j == where[p].item<int64_t>();
        prompt.push_back(signal ? kA : kDistractors[d[p][j].item<int64_t>()]);
        twin.push_back(signal ? kB : kDistractors[d[p][j].item<int64_t>()]);
      }
      prompt.push_back(kQ);
      twin.push_back(kQ);
      AddTwins(&out, prompt, twin, kX, kY);
    }
    return out;
  };
  TaskData data;
  data.name = "planted_attention";
  data.description = "A or B earlier in the prompt, moved by a saturated head -> X vs Y";
  data.train = split(n_train);
  data.validation = split(n_validation);
  data.test = split(n_test);
  return data;
}

torch::Tensor PlantedSaturatedMeanWindows(int n, uint64_t seed) {
  return WindowsOf({kDistractors[0], kDistractors[1], kDistractors[2], kDistractors[3]}, n, 8,
                   seed);
}

}  // namespace circuit::testing
