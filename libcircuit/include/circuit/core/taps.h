// The seam between the architectures and the pruning engine: named tap sites
// where a forward pass hands each activation to interventions (recording,
// masking, ablation, attribution), and TapModel, what the engine needs of a
// model. The weight-sparse GPT (model.h) and BDH (bdh.h) implement it.
//
//   const TapModel& model = ...;                   // a Model or a BdhModel
//   Taps taps(model.layout());
//   std::vector<torch::Tensor> acts(taps.num_sites());
//   taps.Add(RecordTap(&acts));
//   torch::Tensor logits = model.Forward(tokens, &taps);   // (B, T, vocab)
//   // acts[s]: (B, T, width of site s)
#ifndef CIRCUIT_CORE_TAPS_H_
#define CIRCUIT_CORE_TAPS_H_

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "circuit/core/nodes.h"

namespace circuit {

// Where the forward pass is: one node location of one layer, and its site
// number in the model's SiteLayout.
struct TapSite {
  int layer = 0;
  NodeLocation location = NodeLocation::kAttnActIn;
  int site = 0;
};

// x: (B, T, width) -> the tensor the forward pass continues with.
using TapFn = std::function<torch::Tensor(const TapSite& site, const torch::Tensor& x)>;

// A weight product between two tap sites, out = input.matmul(weight): where
// edge interventions act (an edge is one entry of such a weight). BDH's three
// shared matrices; the GPT's products have none (its edges are its nonzero
// weights and are not pruned apart from their nodes).
enum class Product { kBdhEncoder, kBdhEncoderV, kBdhDecoder };
// (layer, product, input, weight, out) -> the product the forward pass continues with.
using ProductFn = std::function<torch::Tensor(int layer, Product product, const torch::Tensor& input,
                                              const torch::Tensor& weight, torch::Tensor out)>;

// The interventions of one forward pass. Functions run in the order added.
class Taps {
 public:
  explicit Taps(SiteLayout layout);
  // The GPT's sites for n_layer layers (model.h's numbering).
  explicit Taps(int n_layer);

  // At every site.
  void Add(TapFn fn);
  // At one site (layer of kFinalResid = n_layer); the model must have `loc`.
  void AddAt(int layer, NodeLocation loc, TapFn fn);

  // At every weight product (one function; a second replaces the first).
  void SetProduct(ProductFn fn);

  const SiteLayout& layout() const { return layout_; }
  int n_layer() const { return layout_.n_layer(); }
  int num_sites() const { return static_cast<int>(per_site_.size()); }
  bool empty() const { return empty_; }
  // Runs the site's functions on x; `site.site` picks them.
  torch::Tensor Apply(const TapSite& site, torch::Tensor x) const;
  // Apply at (layer, loc) of this layout, doing nothing when no function was added.
  torch::Tensor At(int layer, NodeLocation loc, torch::Tensor x) const;
  // Declares that the taps at some sites return one value whatever their
  // input: (*constants)[site], broadcastable to the site's (B, T, width), or
  // undefined where the output depends on the input (the vector is not
  // copied). A model may then skip what only feeds such sites (the GPT skips
  // a sublayer whose residual write is constant); the declaration must be
  // true of the functions added, e.g. mean ablation with all gates at 0.
  void SetConstants(const std::vector<torch::Tensor>* constants) { constants_ = constants; }
  // The declared value at `site`, or an undefined tensor.
  torch::Tensor Constant(int site) const {
    return constants_ != nullptr ? (*constants_)[site] : torch::Tensor();
  }
  // A gate blend at every site s where (*gates)[s] is defined: the site's
  // activation x becomes lerp(values[s], x, gates[s]) (both (width): x where
  // a gate is 1, the value where it is 0) before the functions added run;
  // gradients flow into the gates and x. A model may apply it fused with the
  // site's activation sparsity (the GPT does: one pass each way under
  // autograd). The vectors are not copied.
  void SetBlend(const std::vector<torch::Tensor>* gates, const std::vector<torch::Tensor>* values);
  // The blend's gate and value at `site` when it is the site's only
  // intervention (what a model may fuse); false otherwise.
  bool OnlyBlendAt(int site, torch::Tensor* gate, torch::Tensor* value) const;
  // input.matmul(weight), through the product function when one was set.
  torch::Tensor Multiply(int layer, Product product, const torch::Tensor& input,
                         const torch::Tensor& weight) const;

 private:
  SiteLayout layout_;
  bool empty_ = true;
  std::vector<std::vector<TapFn>> per_site_;
  ProductFn product_;
  const std::vector<torch::Tensor>* constants_ = nullptr;
  const std::vector<torch::Tensor>* blend_gates_ = nullptr;
  const std::vector<torch::Tensor>* blend_values_ = nullptr;
};

// lerp(value, x, gate) in x's dtype, gate and value (width): x where a gate
// is 1, the value where it is 0; what Taps::SetBlend does at a site.
torch::Tensor GateBlend(const torch::Tensor& x, const torch::Tensor& gate,
                        const torch::Tensor& value);

// Stores each site's activation into (*out)[site] (out sized num_sites()).
TapFn RecordTap(std::vector<torch::Tensor>* out);
// Blends g * x + (1 - g) * m per channel with gates[site] and means[site], both
// (width); undefined entries leave the site alone. Gradients flow into gates.
TapFn BlendTap(const std::vector<torch::Tensor>* gates, const std::vector<torch::Tensor>* means);

// Twin prompts (rows 2i and 2i + 1 of a scoring batch) begin with the same
// tokens up to the one that sets their answers apart: each pair's common prefix
// once, and each prompt's remaining tokens (at least its last one). For
// TapModel::EmbedSplit / LayersSplit, which run every prefix once per pair.
struct PrefixSplit {
  torch::Tensor prefix;       // (R, s) int64: pair i's common tokens, right-padded with 0
  torch::Tensor prefix_len;   // (R) int64
  torch::Tensor suffix;       // (2R, S) int64: prompt j's tokens from prefix_len[j / 2] on
  torch::Tensor suffix_pos;   // (2R, S) int64: their positions in the prompt (padding clamped)
  torch::Tensor suffix_last;  // (2R) int64: each prompt's last token, as an index into suffix
};
// tokens (B, T) int64 right-padded, last (B) the prompts' last positions; B even.
PrefixSplit SplitTwinPrefixes(const torch::Tensor& tokens, const torch::Tensor& last);

// The residual stream of a PrefixSplit's rows, G stacked copies of the batch:
// prefix (G * R, s, D), suffix (G * 2R, S, D); after the last layer prefix is
// undefined and suffix (G * 2R, 1, D) at each prompt's last token.
struct SplitResidual {
  torch::Tensor prefix, suffix;
};

// What the pruning engine needs of a model: its sites and a forward pass with
// taps, whole or in stages. Implementations: Model (the GPT), BdhModel.
class TapModel {
 public:
  virtual ~TapModel() = default;

  virtual std::string arch() const = 0;  // kArchGpt, kArchBdh (arch.h)
  virtual SiteLayout layout() const = 0;
  virtual int n_ctx() const = 0;         // the longest input the tools feed it
  virtual int vocab_size() const = 0;
  virtual torch::Device device() const = 0;
  // A freshly initialised model of the same shape on the same device (what
  // `circuit init` makes), deterministic for a seed: the audit's control.
  virtual absl::StatusOr<std::unique_ptr<TapModel>> Reinitialized(uint64_t seed) const = 0;

  // tokens: (B, T) int64. Logits (B, T, vocab); every site sees (B, T, width).
  virtual torch::Tensor Forward(const torch::Tensor& tokens, const Taps* taps = nullptr) const = 0;
  // Only the logits at positions (B) int64: (B, vocab); every site sees all positions.
  virtual torch::Tensor ForwardAt(const torch::Tensor& tokens, const torch::Tensor& positions,
                                  const Taps* taps = nullptr) const = 0;
  // The logits at positions for scoring; sites of the last layer may see only
  // the answer positions (B, 1, width). Equal to ForwardAt up to rounding.
  virtual torch::Tensor AnswerLogits(const torch::Tensor& tokens, const torch::Tensor& positions,
                                     const Taps* taps = nullptr) const = 0;
  // AnswerLogits in stages, so that a caller can run a shared prefix of the
  // layers once and repeat the residual stream for several ablations:
  //   Embed(tokens)                        (B, T, D) before layer 0
  //   Layers(x, begin, end, taps, pos)     layers [begin, end); the last layer
  //                                        returns (B, 1, D) at pos
  //   HeadAt(x, tokens, pos, taps)         x (B, 1, D) after the last layer ->
  //                                        final_resid, logits (B, V)
  virtual torch::Tensor Embed(const torch::Tensor& tokens) const = 0;
  virtual torch::Tensor Layers(torch::Tensor x, int begin, int end, const Taps* taps,
                               const torch::Tensor& positions) const = 0;
  virtual torch::Tensor HeadAt(torch::Tensor x, const torch::Tensor& tokens,
                               const torch::Tensor& positions, const Taps* taps) const = 0;
  // The same stages with each pair's common prefix run once (PrefixSplit);
  // every site sees the prefix rows and the suffix rows in two calls. Equal to
  // Embed/Layers up to float rounding. Only where SplitsPrefixes():
  //   EmbedSplit(split)                    before layer 0
  //   LayersSplit(x, begin, end, taps, split)   x.suffix after the last layer
  //                                        goes to HeadAt with the batch's tokens
  virtual bool SplitsPrefixes() const { return false; }
  virtual SplitResidual EmbedSplit(const PrefixSplit& split) const;
  virtual SplitResidual LayersSplit(SplitResidual x, int begin, int end, const Taps* taps,
                                    const PrefixSplit& split) const;
};

}  // namespace circuit

#endif  // CIRCUIT_CORE_TAPS_H_
