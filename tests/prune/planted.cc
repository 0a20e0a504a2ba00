#include "planted.h"

#include <string>

#include "circuit/core/status.h"

namespace circuit::testing {
namespace {

constexpr int kA = 1, kB = 2, kX = 5, kY = 6;
constexpr int kDistractors[] = {3, 4, 7};

ModelConfig PlantedConfig() {
  ModelConfig c;
  c.n_layer = 1;
  c.d_model = 8;
  c.n_head = 1;
  c.d_head = 4;
  c.d_mlp = 8;
  c.vocab_size = 8;
  c.n_ctx = 8;
  c.afrac = 0.0;
  c.attn_sink = false;
  c.bigram_table = false;
  c.activation = "relu";
  return c;
}

}  // namespace

std::vector<NamedTensor> ZeroParameters(const ModelConfig& config) {
  std::vector<NamedTensor> tensors;
  for (const auto& [name, shape] : Model::ParameterShapes(config)) {
    tensors.push_back({name, torch::zeros(shape, torch::kFloat32)});
  }
  return tensors;
}

torch::Tensor& ParameterNamed(std::vector<NamedTensor>& tensors, const std::string& name) {
  for (NamedTensor& t : tensors) {
    if (t.name == name) return t.tensor;
  }
  CIRCUIT_CHECK(false);
  return tensors[0].tensor;
}

void AddTwins(std::vector<TaskExample>* out, std::vector<int32_t> prompt,
              std::vector<int32_t> twin, int correct, int alternative) {
  TaskExample a, b;
  a.tokens = std::move(prompt);
  a.correct = b.alternative = correct;
  a.alternative = b.correct = alternative;
  b.tokens = std::move(twin);
  out->push_back(std::move(a));
  out->push_back(std::move(b));
}

torch::Tensor WindowsOf(const std::vector<int64_t>& tokens, int n, int length, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  const torch::Tensor idx =
      torch::randint(0, static_cast<int64_t>(tokens.size()), {n, length}, gen, torch::kInt64);
  return torch::tensor(tokens, torch::kInt64).index({idx});
}

std::set<Node> NodeSet(const Circuit& circuit) {
  std::set<Node> s;
  for (const CircuitNode& n : circuit.nodes) s.insert(n.node);
  return s;
}

Model PlantedModel() {
  const ModelConfig c = PlantedConfig();
  std::vector<NamedTensor> tensors = ZeroParameters(c);
  auto get = [&](const std::string& name) -> torch::Tensor& {
    return ParameterNamed(tensors, name);
  };
  torch::NoGradGuard no_grad;
  get("transformer.h.0.ln_1.weight").fill_(1.0);
  get("transformer.h.0.ln_2.weight").fill_(1.0);
  get("transformer.ln_f.weight").fill_(1.0);
  torch::Tensor& wte = get("transformer.wte.weight");  // (8, 8)
  wte[kA][0] = 1.0;
  wte[kB][1] = 1.0;
  for (int i = 0; i < 3; ++i) {
    wte[kDistractors[i]][2 + i] = 1.0;
    wte[kDistractors[i]][(i + 1) % 3 + 2] += 0.5;
  }
  wte[0][2] = 1.0;  // the padding token looks like a distractor
  // Distractor attention: q, k, v read channels 2..4; the output writes 6, 7.
  torch::Tensor& c_attn = get("transformer.h.0.attn.c_attn.weight");  // (12, 8)
  for (int r = 0; r < 12; ++r) c_attn[r][2 + r % 3] = 0.3 * (1 + r % 4);
  torch::Tensor& attn_proj = get("transformer.h.0.attn.c_proj.weight");  // (8, 4)
  attn_proj[6][0] = 0.5;
  attn_proj[7][2] = -0.4;
  attn_proj[6][3] = 0.2;
  // The planted neurons and distractor neurons.
  torch::Tensor& fc = get("transformer.h.0.mlp.c_fc.weight");  // (8, 8)
  fc[0][0] = 1.5;
  fc[1][1] = 1.5;
  for (int n = 2; n < 8; ++n) fc[n][2 + n % 3] = 0.8;
  torch::Tensor& mlp_proj = get("transformer.h.0.mlp.c_proj.weight");  // (8, 8)
  mlp_proj[5][0] = 1.0;
  mlp_proj[5][1] = -1.0;
  for (int n = 2; n < 8; ++n) mlp_proj[6 + n % 2][n] = 0.3;
  torch::Tensor& lm_head = get("lm_head.weight");  // (8, 8)
  lm_head[kX][5] = 1.0;
  lm_head[kY][5] = -1.0;
  for (int v : kDistractors) lm_head[v][6] = 1.0;
  absl::StatusOr<Model> model = Model::FromTensors(c, std::move(tensors));
  CIRCUIT_CHECK(model.ok());
  return std::move(*model);
}

std::vector<Node> PlantedNodes() {
  using L = NodeLocation;
  return {Node{0, L::kMlpActIn, 0},   Node{0, L::kMlpActIn, 1},      Node{0, L::kMlpPostAct, 0},
          Node{0, L::kMlpPostAct, 1}, Node{0, L::kMlpResidDelta, 5}, Node{1, L::kFinalResid, 5}};
}

TaskData PlantedTask(int n_train, int n_validation, int n_test, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  auto split = [&](int pairs) {
    std::vector<TaskExample> out;
    torch::Tensor d = torch::randint(0, 3, {pairs, 3}, gen, torch::kInt64);
    for (int p = 0; p < pairs; ++p) {
      std::vector<int32_t> prefix;
      for (int j = 0; j < 3; ++j) prefix.push_back(kDistractors[d[p][j].item<int64_t>()]);
      std::vector<int32_t> twin = prefix;
      prefix.push_back(kA);
      twin.push_back(kB);
      AddTwins(&out, prefix, twin, kX, kY);
    }
    return out;
  };
  TaskData data;
  data.name = "planted";
  data.description = "A vs B at the last position -> X vs Y";
  data.train = split(n_train);
  data.validation = split(n_validation);
  data.test = split(n_test);
  return data;
}

torch::Tensor PlantedMeanWindows(int n, uint64_t seed) {
  return WindowsOf({kDistractors[0], kDistractors[1], kDistractors[2]}, n, 8, seed);
}

Model RandomSparseModel(uint64_t seed, double density) {
  ModelConfig c = PlantedConfig();
  c.n_layer = 2;
  c.n_head = 2;
  c.d_head = 3;  // A = 6
  c.d_mlp = 12;
  c.d_pos_emb = 2;
  absl::StatusOr<Model> model = Model::Create(c, seed);
  CIRCUIT_CHECK(model.ok());
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed + 1);
  for (NamedTensor& p : model->mutable_parameters()) {
    p.tensor.normal_(0.0, 1.0, gen);
    if (p.tensor.dim() == 2) p.tensor.mul_((torch::rand(p.tensor.sizes(), gen) < density).to(torch::kFloat32));
  }
  return std::move(*model);
}

}  // namespace circuit::testing
