// y = x·Wᵀ + b for a frozen, weight-sparse W held in CSR (docs/performance.md,
// "Sparse products at paper densities").
//
// The paper's matrices keep 1/1024 of their entries; a dense product spends
// ~1000× the work on zeros. A SparseLinear holds W's nonzeros row by row (for
// the forward product) and column by column (for the gradient w.r.t. x, which
// mask training and attribution need); the weights themselves get no gradient,
// so it is used only for tensors that do not require one (pruning, evaluation)
// and only while the tensor is unchanged (its version counter).
//
//   internal::SparseLinear s = internal::SparseLinear::Of(w);   // w: (out, in)
//   if (s.UsableFor(w)) y = s.Apply(x, b);                      // x: (..., in)
#ifndef CIRCUIT_MODEL_GPT_SPARSE_LINEAR_H_
#define CIRCUIT_MODEL_GPT_SPARSE_LINEAR_H_

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <vector>

namespace circuit::internal {

class SparseLinear {
 public:
  SparseLinear() = default;
  // The CSR of w (out, in), float32 on the CPU, when its density is at most
  // SparseProductMaxDensity() (circuit/core/model.h); otherwise (or for other devices and dtypes) an
  // empty one.
  static SparseLinear Of(const torch::Tensor& w);

  bool empty() const { return !rows_.defined(); }
  // Not empty, built from `w` as it is now, and `w` takes no gradient.
  bool UsableFor(const torch::Tensor& w) const;
  // x (..., in) float32 -> (..., out); bias (out) or undefined. Differentiable
  // w.r.t. x only.
  torch::Tensor Apply(const torch::Tensor& x, const torch::Tensor& bias) const;

 private:
  // CSR of W (rows_: out + 1 offsets, cols_, vals_) and of Wᵀ.
  torch::Tensor rows_, cols_, vals_, t_rows_, t_cols_, t_vals_;
  const void* data_ = nullptr;  // the tensor built from, and its version then
  int64_t version_ = -1;
};

// The sparse products of one GPT (Model::BindViews); empty ones where dense wins.
// A layer's products, in this order: c_attn, its q and k|v row blocks (the last
// layer of a scoring pass), attn c_proj, c_fc, mlp c_proj.
enum LayerProduct { kCAttn, kCAttnQ, kCAttnKv, kAttnProj, kFc, kMlpProj, kLayerProducts };
using SparseLayerWeights = std::array<SparseLinear, kLayerProducts>;
struct SparseWeights {
  std::vector<SparseLayerWeights> layers;
  SparseLinear lm_head;
};

// Dense or sparse, whichever `sparse` allows: torch::linear(x, w, b) when it
// cannot be used.
torch::Tensor Linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                     const SparseLinear& sparse);

}  // namespace circuit::internal

#endif  // CIRCUIT_MODEL_GPT_SPARSE_LINEAR_H_
