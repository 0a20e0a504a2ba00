// The weight-sparse GPT of PAPER.md §1, with a named tap at every node location.
//
// Parameters are plain tensors named by the release's state-dict keys
// ("transformer.h.0.attn.c_attn.weight", ...), so checkpoints map by name.
// One tap mechanism serves recording (means), masking (prune), ablation and
// attribution: at each of the nine node locations the forward pass hands the
// activation (B, T, width) to the installed TapFns, which may return a replacement.
//
//   CIRCUIT_ASSIGN_OR_RETURN(Model model, Model::Create(config, /*seed=*/0));
//   Taps taps(config.n_layer);
//   std::vector<torch::Tensor> acts(taps.num_sites());
//   taps.Add(RecordTap(&acts));
//   torch::Tensor logits = model.Forward(tokens, &taps);   // (B, T, vocab)
#ifndef CIRCUIT_CORE_MODEL_H_
#define CIRCUIT_CORE_MODEL_H_

#include <torch/torch.h>

#include <array>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "circuit/core/config.h"
#include "circuit/core/nodes.h"
#include "circuit/core/taps.h"

namespace circuit {
namespace internal {
struct SparseWeights;  // model/gpt/sparse_linear.h
}  // namespace internal

// The GPT's site numbers (its SiteLayout, ModelConfig::Layout):
// `site` = layer * 8 + location for layer locations, n_layer * 8 for final_resid.
inline int NumTapSites(int n_layer) { return n_layer * kNumLayerLocations + 1; }
inline int TapSiteIndex(int layer, NodeLocation loc) {
  return loc == NodeLocation::kFinalResid ? layer * kNumLayerLocations
                                          : layer * kNumLayerLocations + static_cast<int>(loc);
}
TapSite TapSiteAt(int site, int n_layer);

// Weight matrices at most this dense (nonzeros / entries) go through a sparse
// (CSR) product when they take no gradient (pruning, evaluation); denser ones
// through the dense product, which is faster there (docs/performance.md,
// "Sparse products"). 1/8 unless CIRCUIT_SPARSE_DENSITY says otherwise (0: never).
double SparseProductMaxDensity();

// The weights of one transformer block. Shapes with A = n_head * d_head.
struct LayerWeights {
  torch::Tensor ln_1;          // (d_model)
  torch::Tensor ln_p1, ln_p2;  // (d_pos_emb), concatenated positions only
  torch::Tensor c_attn_w;      // (3A, d_in): rows q | k | v
  torch::Tensor c_attn_b;      // (3A)
  torch::Tensor attn_proj_w;   // (d_model, A)
  torch::Tensor attn_proj_b;   // (d_model)
  torch::Tensor sink;          // (n_head), attention sink only
  torch::Tensor ln_2;          // (d_model)
  torch::Tensor fc_w;          // (d_mlp, d_in)
  torch::Tensor fc_b;          // (d_mlp)
  torch::Tensor mlp_proj_w;    // (d_model, d_mlp)
  torch::Tensor mlp_proj_b;    // (d_model)
};

struct NamedTensor {
  std::string name;
  torch::Tensor tensor;
};

class Model : public TapModel {
 public:
  // A freshly initialised model (PAPER.md §1.6), deterministic for a seed and
  // the same on every device (initialised on the CPU, then moved).
  static absl::StatusOr<Model> Create(const ModelConfig& config, uint64_t seed,
                                      torch::Device device = torch::kCPU);
  // The expected parameter names and shapes for `config`, in state-dict order.
  static std::vector<std::pair<std::string, std::vector<int64_t>>> ParameterShapes(
      const ModelConfig& config);
  // A model from named tensors (checkpoint loading, import); checks that the
  // names and shapes match `config` exactly and says what is missing or wrong.
  static absl::StatusOr<Model> FromTensors(const ModelConfig& config,
                                           std::vector<NamedTensor> tensors,
                                           torch::Device device = torch::kCPU);

  // tokens: (B, T) int64, T <= n_ctx. Returns logits (B, T, vocab).
  torch::Tensor Forward(const torch::Tensor& tokens, const Taps* taps = nullptr) const override;
  // Same, but only the logits at positions (B) int64: (B, vocab). Cheaper for tasks.
  torch::Tensor ForwardAt(const torch::Tensor& tokens, const torch::Tensor& positions,
                          const Taps* taps = nullptr) const override;
  // The logits at positions (B) int64 like ForwardAt, for scoring: the last
  // layer computes keys and values at every position and everything else only
  // at `positions`, so taps at its sites after attn.act_in, attn.k and attn.v
  // (and at final_resid) see (B, 1, width). Equal to ForwardAt up to float
  // rounding; use ForwardAt when taps must see every position (recording).
  torch::Tensor AnswerLogits(const torch::Tensor& tokens, const torch::Tensor& positions,
                             const Taps* taps = nullptr) const override;
  // AnswerLogits in stages, so that a caller can run a shared prefix of the
  // layers once and repeat the residual stream for several ablations:
  //   Embed(tokens)                        (B, T, d_model) before layer 0
  //   Layers(x, begin, end, taps, pos)     layers [begin, end); the last layer
  //                                        returns (B, 1, d_model) at pos
  //   HeadAt(x, tokens, pos, taps)         x (B, 1, d_model) after the last
  //                                        layer -> final_resid, ln_f, logits (B, V)
  torch::Tensor Embed(const torch::Tensor& tokens) const override;
  torch::Tensor Layers(torch::Tensor x, int begin, int end, const Taps* taps,
                       const torch::Tensor& positions) const override;
  torch::Tensor HeadAt(torch::Tensor x, const torch::Tensor& tokens,
                       const torch::Tensor& positions, const Taps* taps) const override;
  // The stages with each twin pair's common prefix run once (taps.h).
  bool SplitsPrefixes() const override { return true; }
  SplitResidual EmbedSplit(const PrefixSplit& split) const override;
  SplitResidual LayersSplit(SplitResidual x, int begin, int end, const Taps* taps,
                            const PrefixSplit& split) const override;
  // Mean next-token cross-entropy of tokens[:, 1:] given tokens[:, :-1].
  torch::Tensor Loss(const torch::Tensor& tokens, const Taps* taps = nullptr) const;

  const ModelConfig& config() const { return config_; }
  torch::Device device() const override { return device_; }
  std::string arch() const override;  // "gpt"
  SiteLayout layout() const override { return config_.Layout(); }
  int n_ctx() const override { return config_.n_ctx; }
  int vocab_size() const override { return config_.vocab_size; }
  absl::StatusOr<std::unique_ptr<TapModel>> Reinitialized(uint64_t seed) const override;
  // Moves (and converts) every tensor; float64 serves gradient checks in tests.
  void To(torch::Device device, torch::ScalarType dtype = torch::kFloat32);

  // All tensors in state-dict order; trainable ones have requires_grad set by the caller.
  const std::vector<NamedTensor>& parameters() const { return params_; }
  std::vector<NamedTensor>& mutable_parameters() { return params_; }
  torch::Tensor Parameter(const std::string& name) const;  // undefined when absent
  const LayerWeights& layer(int i) const { return layers_[i]; }
  int64_t NumParameters() const;
  // How many weight matrices go through the sparse (CSR) product now: those
  // at most SparseProductMaxDensity() dense (the paper's are 1/1024),
  // unchanged since the model was built and taking no gradient. The others
  // use the dense product.
  int NumSparseProducts() const;
  int NumProducts() const;  // all of them: six per layer and lm_head

  torch::Tensor wte() const { return wte_; }      // (vocab, d_model)
  torch::Tensor wpe() const { return wpe_; }      // (n_ctx, d_model or d_pos_emb)
  torch::Tensor lm_head() const { return lm_head_; }  // (vocab, d_model)
  torch::Tensor bigram() const { return bigram_; }    // (vocab, vocab) or undefined

 private:
  Model(ModelConfig config, std::vector<NamedTensor> params, torch::Device device);
  void BindViews();  // points the typed fields at params_
  torch::Tensor Trunk(const torch::Tensor& tokens, const Taps* taps) const;  // (B, T, d_model) after ln_f
  // What Block needs for rows that continue earlier tokens (LayersSplit).
  struct BlockContext {
    torch::Tensor positions;           // (B, T) of x's tokens; undefined: 0 .. T - 1
    // (B / 2, H, s, d_head): the earlier tokens' keys and values, one row per
    // twin pair (rows 2i and 2i + 1 read row i, internal::SharedPrefix).
    torch::Tensor prefix_k, prefix_v;
    torch::Tensor prefix_masked;  // (B, 1, 1, s) bool: which of them are padding
    // Set to this layer's keys and values (B, H, T, d_head) when not null;
    // left undefined when the taps declare the attention's write constant.
    torch::Tensor* k_out = nullptr;
    torch::Tensor* v_out = nullptr;
    bool kv_only = false;  // stop after the keys and values (returns undefined)
  };
  // Layer l on the residual stream x (B, T, d_model); with `answer` (B) defined,
  // only the answer positions after the keys and values: returns (B, 1, d_model).
  torch::Tensor Block(int l, const torch::Tensor& x, const Taps* taps, const torch::Tensor& answer,
                      const BlockContext& context) const;
  torch::Tensor Block(int l, const torch::Tensor& x, const Taps* taps,
                      const torch::Tensor& answer) const;
  // Layer l's attention write (B, Tq, d_model) to the residual stream x
  // (B, T, d_model), through its taps; with context.kv_only only the keys and
  // values (returns undefined).
  torch::Tensor AttentionWrite(int l, const torch::Tensor& x, const Taps* taps,
                               const torch::Tensor& answer, const BlockContext& context) const;
  // h (B, T', d_in) with the normalised positions concatenated (d_pos_emb > 0):
  // of the T positions, or with T' = 1 of the answer positions.
  torch::Tensor WithPositions(const torch::Tensor& h, const torch::Tensor& ln_p, int64_t T,
                              const torch::Tensor& answer, const BlockContext& context) const;
  torch::Tensor Site(const Taps* taps, int layer, NodeLocation loc, torch::Tensor x) const;
  // The value the taps declare for (layer, loc) whatever its input
  // (Taps::SetConstants), or an undefined tensor.
  torch::Tensor SiteConstant(const Taps* taps, int layer, NodeLocation loc) const;
  torch::Tensor Sparsify(NodeLocation loc, const torch::Tensor& x) const;
  // Site(taps, layer, loc, Sparsify(loc, x)), the taps' gate blend fused with
  // the AbsTopK (GatedAbsTopK) where it is the site's only intervention.
  torch::Tensor SparseSite(const Taps* taps, int layer, NodeLocation loc, torch::Tensor x) const;
  // The matrices of layer w's products, in internal::LayerProduct's order.
  std::array<torch::Tensor, 6> ProductWeights(const LayerWeights& w) const;
  torch::Tensor Logits(const torch::Tensor& x) const;  // x (..., d_model) -> lm_head + bias

  ModelConfig config_;
  torch::Device device_;
  std::vector<NamedTensor> params_;
  std::vector<LayerWeights> layers_;
  torch::Tensor wte_, wpe_, ln_f_, lm_head_, final_logits_bias_, bigram_;
  // CSR copies of the matrices sparse enough for it (weight-sparse models at
  // the paper's densities); shared by copies of the model, rebuilt by BindViews.
  std::shared_ptr<const internal::SparseWeights> sparse_;
};

// AbsTopK along the last dimension: keeps the k entries of largest |x|, zeroes the rest.
torch::Tensor AbsTopK(const torch::Tensor& x, int64_t k);
// lerp(value, AbsTopK(x, k), gate) with gate and value (width) (k >= width:
// no AbsTopK): the taps' gate blend (Taps::SetBlend) fused with the
// activation sparsity. On the CPU for float one pass forward and one backward,
// with gradients to x and gate (the gate's summed over rows in a fixed order).
torch::Tensor GatedAbsTopK(const torch::Tensor& x, int64_t k, const torch::Tensor& gate,
                           const torch::Tensor& value);
// RMSNorm with weight, eps = float32 machine epsilon (torch nn.RMSNorm's default).
torch::Tensor RmsNorm(const torch::Tensor& x, const torch::Tensor& weight);

// "cpu", "cuda", "cuda:1" -> a device, or an error naming the device.
absl::StatusOr<torch::Device> ParseDevice(const std::string& name);

}  // namespace circuit

#endif  // CIRCUIT_CORE_MODEL_H_
