// BDH-GPU's forward pass (circuit/core/bdh.h). Shapes: B batch, H heads,
// T positions, D = d_model, N neurons per head, V vocabulary.
#include "circuit/core/bdh.h"

#include <cmath>
#include <utility>

#include "circuit/core/arch.h"
#include "circuit/core/status.h"
#include "model/named_tensors.h"
#include "tasks/task_eval_internal.h"

namespace circuit {
namespace {

constexpr double kInitStd = 0.02;  // every tensor, as the reference initialises them
constexpr double kTwoPi = 2.0 * M_PI;

}  // namespace

torch::Tensor BdhRopeFrequencies(int n_neuron) {
  // The reference quantises i to even values so that each rotated pair shares
  // one frequency, and divides by 2 pi so that phases count turns.
  torch::Tensor i = torch::arange(0, n_neuron, torch::kFloat32);  // (N)
  torch::Tensor even = torch::floor(i / 2) * 2;
  return 1.0 / torch::pow(65536.0, even / n_neuron) / kTwoPi;
}

torch::Tensor BdhRope(const torch::Tensor& v) {
  const int64_t T = v.size(-2), N = v.size(-1);
  torch::Tensor freqs = BdhRopeFrequencies(static_cast<int>(N)).to(v.device());  // (N)
  torch::Tensor t = torch::arange(0, T, torch::TensorOptions(torch::kFloat32).device(v.device()));
  // Float32 throughout, in the reference's order of operations, so that long
  // sequences lose the same bits: frac(t * f) first, then the angle.
  torch::Tensor phases = torch::remainder(t.view({T, 1}) * freqs.view({1, N}), 1.0) * kTwoPi;
  torch::Tensor cos = torch::cos(phases).to(v.scalar_type());  // (T, N)
  torch::Tensor sin = torch::sin(phases).to(v.scalar_type());
  torch::Tensor odd = v.slice(-1, 1, N, 2), even = v.slice(-1, 0, N, 2);   // (..., T, N/2)
  torch::Tensor rotated = torch::stack({-odd, even}, -1).view(v.sizes());  // (..., T, N)
  return v * cos + rotated * sin;
}

torch::Tensor LayerNormNoAffine(const torch::Tensor& x) {
  return torch::layer_norm(x, {x.size(-1)}, /*weight=*/{}, /*bias=*/{}, /*eps=*/1e-5);
}

std::vector<std::pair<std::string, std::vector<int64_t>>> BdhModel::ParameterShapes(
    const BdhConfig& c) {
  const int64_t V = c.vocab_size, D = c.d_model, H = c.n_head, N = c.n_neuron;
  return {{"decoder", {H * N, D}},
          {"encoder", {H, D, N}},
          {"encoder_v", {H, D, N}},
          {"lm_head", {D, V}},
          {"embed.weight", {V, D}}};
}

absl::StatusOr<BdhModel> BdhModel::Create(const BdhConfig& config, uint64_t seed,
                                          torch::Device device) {
  CIRCUIT_RETURN_IF_ERROR(config.Validate());
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  std::vector<NamedTensor> params;
  for (const auto& [name, shape] : ParameterShapes(config)) {
    torch::Tensor t = torch::zeros(shape, torch::kFloat32);
    t.normal_(0.0, kInitStd, gen);
    params.push_back({name, t});
  }
  BdhModel model(config, std::move(params), torch::kCPU);
  if (device != torch::kCPU) model.To(device);
  return model;
}

absl::StatusOr<BdhModel> BdhModel::FromTensors(const BdhConfig& config,
                                               std::vector<NamedTensor> tensors,
                                               torch::Device device) {
  CIRCUIT_RETURN_IF_ERROR(config.Validate());
  CIRCUIT_ASSIGN_OR_RETURN(
      std::vector<NamedTensor> params,
      internal::TensorsInOrder(ParameterShapes(config), std::move(tensors), "a BDH model"));
  BdhModel model(config, std::move(params), torch::kCPU);
  if (device != torch::kCPU) model.To(device);
  return model;
}

BdhModel::BdhModel(BdhConfig config, std::vector<NamedTensor> params, torch::Device device)
    : config_(std::move(config)), device_(device), params_(std::move(params)) {}

std::string BdhModel::arch() const { return kArchBdh; }

absl::StatusOr<std::unique_ptr<TapModel>> BdhModel::Reinitialized(uint64_t seed) const {
  CIRCUIT_ASSIGN_OR_RETURN(BdhModel fresh, Create(config_, seed, device_));
  return std::unique_ptr<TapModel>(std::make_unique<BdhModel>(std::move(fresh)));
}

torch::Tensor BdhModel::Embed(const torch::Tensor& tokens) const {
  CIRCUIT_CHECK(tokens.dim() == 2);
  const int64_t B = tokens.size(0), T = tokens.size(1);
  torch::Tensor x = embed().index_select(0, tokens.reshape({-1})).view({B, T, -1});
  return LayerNormNoAffine(x);  // (B, T, D); the reference: "actually helps with training"
}

namespace {

// (B, H, T, W) per-head activations as one site (B, T, H*W): channel h * W + w,
// the decoder's order for the gated neurons; and back.
torch::Tensor Flat(const torch::Tensor& v) {
  return v.transpose(1, 2).reshape({v.size(0), v.size(2), v.size(1) * v.size(3)});
}
torch::Tensor Heads(const torch::Tensor& flat, int64_t H) {
  return flat.view({flat.size(0), flat.size(1), H, -1}).transpose(1, 2);
}

}  // namespace

torch::Tensor BdhModel::Layer(const torch::Tensor& x_in, const Taps* taps, int layer,
                              const torch::Tensor& positions, bool train) const {
  const int64_t H = config_.n_head, T = x_in.size(1);
  auto tap = [&](NodeLocation loc, torch::Tensor v) {
    return taps == nullptr ? v : taps->At(layer, loc, std::move(v));
  };
  auto tap_heads = [&](NodeLocation loc, torch::Tensor v) {  // v (B, H, T', W)
    return taps == nullptr || taps->empty() ? v : Heads(tap(loc, Flat(v)), H);
  };
  auto multiply = [&](Product p, const torch::Tensor& in, const torch::Tensor& w) {
    return taps == nullptr ? in.matmul(w) : taps->Multiply(layer, p, in, w);
  };
  // What the layer reads (the encoder's input, attention's values); the skip
  // connection carries x_in itself, as the GPT's residual stream is not its reads.
  const torch::Tensor x = x_in.unsqueeze(1);                                      // (B, 1, T, D)
  const torch::Tensor read = tap(NodeLocation::kBdhResidIn, x_in).unsqueeze(1);  // (B, 1, T, D)
  const torch::Tensor x_neurons =
      tap_heads(NodeLocation::kBdhXNeuron, torch::relu(multiply(Product::kBdhEncoder, read, encoder())));  // (B, H, T, N)
  // Linear attention, Q = K = rope(x-neurons), V = x, over strictly earlier
  // positions; with `positions`, queries only there (B, H, 1, .).
  const torch::Tensor kr = BdhRope(x_neurons);  // (B, H, T, N)
  torch::Tensor scores, x_query, q_neurons;
  if (positions.defined()) {
    const int64_t B = x_in.size(0), N = kr.size(3);
    const torch::Tensor pos = positions.view({B, 1, 1, 1});
    const torch::Tensor qr = kr.gather(2, pos.expand({B, H, 1, N}));  // (B, H, 1, N)
    const torch::Tensor earlier =
        torch::arange(T, positions.options()).view({1, 1, 1, T}) < pos;  // (B, 1, 1, T)
    scores = qr.matmul(kr.transpose(-1, -2)) * earlier.to(qr.dtype());  // (B, H, 1, T)
    x_query = x.gather(2, pos.expand({B, 1, 1, x.size(3)}));           // (B, 1, 1, D)
    q_neurons = x_neurons.gather(2, pos.expand({B, H, 1, N}));         // (B, H, 1, N)
  } else {
    scores = kr.matmul(kr.transpose(-1, -2)).tril(/*diagonal=*/-1);  // (B, H, T, T)
    x_query = x;
    q_neurons = x_neurons;
  }
  // (B, H, T', D), T' = 1 with `positions`
  const torch::Tensor y_kv =
      tap_heads(NodeLocation::kBdhAttnRead, LayerNormNoAffine(scores.matmul(read)));
  const torch::Tensor y_neurons =
      tap_heads(NodeLocation::kBdhYNeuron,
                torch::relu(multiply(Product::kBdhEncoderV, y_kv, encoder_v())));  // (B, H, T', N)
  torch::Tensor gated = q_neurons * y_neurons;  // (B, H, T', N)
  if (train && config_.dropout > 0) gated = torch::dropout(gated, config_.dropout, /*train=*/true);
  // Neuron h * N + n of the decoder's rows is neuron n of head h.
  const torch::Tensor flat = tap(NodeLocation::kBdhGate, Flat(gated));  // (B, T', H*N)
  const torch::Tensor y = LayerNormNoAffine(multiply(Product::kBdhDecoder, flat, decoder()));     // (B, T', D)
  return LayerNormNoAffine(x_query.squeeze(1) + y);
}

torch::Tensor BdhModel::Layers(torch::Tensor x, int begin, int end, const Taps* taps,
                               const torch::Tensor& positions) const {
  CIRCUIT_CHECK(0 <= begin && begin <= end && end <= config_.n_layer);
  for (int l = begin; l < end; ++l) {
    x = Layer(x, taps, l, l == config_.n_layer - 1 ? positions : torch::Tensor());
  }
  return x;
}

torch::Tensor BdhModel::HeadAt(torch::Tensor x, const torch::Tensor& /*tokens*/,
                               const torch::Tensor& /*positions*/, const Taps* taps) const {
  CIRCUIT_CHECK(x.dim() == 3 && x.size(1) == 1);
  if (taps != nullptr) x = taps->At(config_.n_layer, NodeLocation::kFinalResid, std::move(x));
  return x.squeeze(1).matmul(lm_head());  // (B, V)
}

torch::Tensor BdhModel::Logits(const torch::Tensor& x) const {
  return x.matmul(lm_head());  // (B, T, V)
}

torch::Tensor BdhModel::Run(const torch::Tensor& tokens, const Taps* taps, bool train) const {
  torch::Tensor x = Embed(tokens);
  for (int l = 0; l < config_.n_layer; ++l) x = Layer(x, taps, l, torch::Tensor(), train);
  if (taps != nullptr) x = taps->At(config_.n_layer, NodeLocation::kFinalResid, std::move(x));
  return Logits(x);
}

torch::Tensor BdhModel::Forward(const torch::Tensor& tokens, const Taps* taps) const {
  return Run(tokens, taps, /*train=*/false);
}

torch::Tensor BdhModel::ForwardAt(const torch::Tensor& tokens, const torch::Tensor& positions,
                                  const Taps* taps) const {
  const torch::Tensor logits = Forward(tokens, taps);  // (B, T, V)
  const int64_t B = logits.size(0), V = logits.size(2);
  return logits.gather(1, positions.view({B, 1, 1}).expand({B, 1, V})).squeeze(1);  // (B, V)
}

torch::Tensor BdhModel::AnswerLogits(const torch::Tensor& tokens, const torch::Tensor& positions,
                                     const Taps* taps) const {
  return HeadAt(Layers(Embed(tokens), 0, config_.n_layer, taps, positions), tokens, positions,
                taps);
}

torch::Tensor BdhModel::Loss(const torch::Tensor& tokens, bool train) const {
  const int64_t T = tokens.size(1);
  torch::Tensor logits = Run(tokens.slice(1, 0, T - 1), nullptr, train);  // (B, T-1, V)
  torch::Tensor targets = tokens.slice(1, 1, T);
  return torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}),
                                              targets.reshape({-1}));
}

torch::Tensor BdhModel::Parameter(const std::string& name) const {
  for (const NamedTensor& p : params_) {
    if (p.name == name) return p.tensor;
  }
  return torch::Tensor();
}

int64_t BdhModel::NumParameters() const {
  int64_t n = 0;
  for (const NamedTensor& p : params_) n += p.tensor.numel();
  return n;
}

void BdhModel::To(torch::Device device, torch::ScalarType dtype) {
  torch::NoGradGuard no_grad;
  for (NamedTensor& p : params_) {
    const bool grad = p.tensor.requires_grad();
    p.tensor = p.tensor.to(device, dtype).detach().set_requires_grad(grad);
  }
  device_ = device;
}

TaskMetrics EvaluateBdhTask(const BdhModel& model, const std::vector<TaskExample>& examples,
                            int batch_size, torch::Tensor* last_logits) {
  return internal::EvaluateTaskWith(
      [&](const TaskBatch& b) { return model.AnswerLogits(b.tokens, b.last); }, model.device(),
      model.config().vocab_size, examples, batch_size, last_logits);
}

}  // namespace circuit
