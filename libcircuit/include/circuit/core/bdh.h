// BDH-GPU, the tensor form of Pathway's Dragon Hatchling (Kosowski et al.
// 2025, docs/bdh.md), as a second architecture beside the weight-sparse GPT.
//
// One set of weights serves every layer: the embedding, the encoders E and E_v
// (n_head, D, N), the decoder (n_head * N, D) and lm_head (D, vocab). Per layer,
// on the residual stream x (LayerNorm without affine after the embedding):
//   x-neurons  a = ReLU(x E_h)                                    (B, H, T, N)
//   attention  yKV[t] = LN(sum_{s<t} <rope(a[t]), rope(a[s])> x[s])  (B, H, T, D)
//              (Q = K = the x-neurons, V = x, no softmax, strictly earlier s)
//   y-neurons  b = ReLU(yKV E_v,h)                                (B, H, T, N)
//   gate       a ⊙ b (dropout here in training), decoder back to D, LayerNorm
//   residual   x <- LN(x + LN((a ⊙ b) decoder))
// then logits = x lm_head. Parameter names follow the reference state dict
// (pathwaycom/bdh: "embed.weight", "encoder", "encoder_v", "decoder",
// "lm_head"), so checkpoints map by name. Device-agnostic.
//
//   CIRCUIT_ASSIGN_OR_RETURN(BdhModel model, BdhModel::Create(config, /*seed=*/0));
//   torch::Tensor logits = model.Forward(tokens);        // (B, T, vocab); taps as the GPT's
//   torch::Tensor loss = model.Loss(batch, /*train=*/true);
#ifndef CIRCUIT_CORE_BDH_H_
#define CIRCUIT_CORE_BDH_H_

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "circuit/core/bdh_config.h"
#include "circuit/core/model.h"  // NamedTensor
#include "circuit/core/taps.h"
#include "circuit/core/task.h"
#include "circuit/core/task_eval.h"  // TaskMetrics

namespace circuit {

class BdhModel : public TapModel {
 public:
  // Fresh weights, each N(0, 0.02) as in the reference, deterministic for a
  // seed on every device (drawn on the CPU, then moved).
  static absl::StatusOr<BdhModel> Create(const BdhConfig& config, uint64_t seed,
                                         torch::Device device = torch::kCPU);
  // The five parameters and their shapes, in the reference's state-dict order.
  static std::vector<std::pair<std::string, std::vector<int64_t>>> ParameterShapes(
      const BdhConfig& config);
  // A model from named tensors; the names and shapes must match `config`
  // exactly (the error says which is missing, unexpected or misshapen).
  static absl::StatusOr<BdhModel> FromTensors(const BdhConfig& config,
                                              std::vector<NamedTensor> tensors,
                                              torch::Device device = torch::kCPU);

  // The TapModel interface (taps.h): sites per layer resid_in, x_neuron,
  // attn_read, y_neuron, gate (heads flattened: channel h * W + w), then
  // final_resid. In AnswerLogits and Layers with positions, the last layer's
  // queries exist only at the answer positions: its attn_read, y_neuron and
  // gate sites see (B, 1, width), its resid_in and x_neuron (the keys) all.
  std::string arch() const override;  // "bdh"
  SiteLayout layout() const override { return config_.Layout(); }
  int n_ctx() const override { return config_.n_ctx; }
  int vocab_size() const override { return config_.vocab_size; }
  absl::StatusOr<std::unique_ptr<TapModel>> Reinitialized(uint64_t seed) const override;
  torch::Device device() const override { return device_; }
  torch::Tensor Forward(const torch::Tensor& tokens, const Taps* taps = nullptr) const override;
  torch::Tensor ForwardAt(const torch::Tensor& tokens, const torch::Tensor& positions,
                          const Taps* taps = nullptr) const override;
  torch::Tensor AnswerLogits(const torch::Tensor& tokens, const torch::Tensor& positions,
                             const Taps* taps = nullptr) const override;
  //   Embed(tokens)         (B, T, D): LN(embedding), the input of layer 0
  torch::Tensor Embed(const torch::Tensor& tokens) const override;
  torch::Tensor Layers(torch::Tensor x, int begin, int end, const Taps* taps,
                       const torch::Tensor& positions) const override;
  torch::Tensor HeadAt(torch::Tensor x, const torch::Tensor& tokens,
                       const torch::Tensor& positions, const Taps* taps) const override;

  // Mean next-token cross-entropy of tokens[:, 1:] given tokens[:, :-1];
  // `train` applies dropout.
  torch::Tensor Loss(const torch::Tensor& tokens, bool train = false) const;

  // The one shared layer on x (B, T, D), as layer `layer` for the taps; with
  // `positions` (B) only those positions' output (B, 1, D).
  torch::Tensor Layer(const torch::Tensor& x, const Taps* taps = nullptr, int layer = 0,
                      const torch::Tensor& positions = torch::Tensor(), bool train = false) const;
  // x (B, T, D) after the last layer -> logits (B, T, vocab).
  torch::Tensor Logits(const torch::Tensor& x) const;

  const BdhConfig& config() const { return config_; }
  // Moves (and converts) every tensor; float64 serves reference checks in tests.
  void To(torch::Device device, torch::ScalarType dtype = torch::kFloat32);

  // The five tensors in state-dict order; no per-layer copies exist.
  const std::vector<NamedTensor>& parameters() const { return params_; }
  std::vector<NamedTensor>& mutable_parameters() { return params_; }
  torch::Tensor Parameter(const std::string& name) const;  // undefined when absent
  int64_t NumParameters() const;

  torch::Tensor embed() const { return params_[kEmbed].tensor; }         // (V, D)
  torch::Tensor encoder() const { return params_[kEncoder].tensor; }     // (H, D, N)
  torch::Tensor encoder_v() const { return params_[kEncoderV].tensor; }  // (H, D, N)
  torch::Tensor decoder() const { return params_[kDecoder].tensor; }     // (H*N, D)
  torch::Tensor lm_head() const { return params_[kLmHead].tensor; }      // (D, V)

 private:
  // Indices into params_, in the reference's state-dict order.
  enum { kDecoder = 0, kEncoder = 1, kEncoderV = 2, kLmHead = 3, kEmbed = 4 };
  BdhModel(BdhConfig config, std::vector<NamedTensor> params, torch::Device device);
  torch::Tensor Run(const torch::Tensor& tokens, const Taps* taps, bool train) const;

  BdhConfig config_;
  torch::Device device_;
  std::vector<NamedTensor> params_;
};

// The reference's RoPE frequencies for N neurons, float32 (N), in turns per
// position: 1 / 65536^(2 floor(i / 2) / N) / (2 pi). The reference keeps them
// as the buffer "attn.freqs" of shape (1, 1, 1, N).
torch::Tensor BdhRopeFrequencies(int n_neuron);
// v (..., T, N) rotated by position: v cos(phi) + rot(v) sin(phi), with
// phi[t, i] = 2 pi frac(t * freqs[i]) computed in float32 as the reference
// does, and rot(v)[2i] = -v[2i+1], rot(v)[2i+1] = v[2i].
torch::Tensor BdhRope(const torch::Tensor& v);
// LayerNorm over the last dimension without weight or bias, eps 1e-5.
torch::Tensor LayerNormNoAffine(const torch::Tensor& x);

// Task scoring of a BDH model, as EvaluateTask (circuit/core/task_eval.h) for
// the GPT: per-prompt two-way loss and accuracy at each prompt's last token.
TaskMetrics EvaluateBdhTask(const BdhModel& model, const std::vector<TaskExample>& examples,
                            int batch_size = 64, torch::Tensor* last_logits = nullptr);

}  // namespace circuit

#endif  // CIRCUIT_CORE_BDH_H_
