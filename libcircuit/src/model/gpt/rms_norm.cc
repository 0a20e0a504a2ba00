// RMSNorm (circuit/core/model.h), with one backward pass under autograd.
#include <ATen/Parallel.h>

#include <cstdint>
#include <limits>

#include "circuit/core/model.h"
#include "model/gpt/vec8.h"

namespace circuit {
namespace {

using internal::At;
using internal::F8;

// x · r (the row's 1 / rms), as the forward pass computes it.
torch::Tensor InverseRms(const torch::Tensor& x) {
  constexpr double kEps = std::numeric_limits<float>::epsilon();
  return torch::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + kEps);
}

// The gradient of y = x · r · w for `rows` rows of n floats (n a multiple of
// 8): with g = dy · w, dx = r g - x r³ (g·x) / n.
__attribute__((target_clones("avx2", "default"))) void RmsNormRowsBackward(
    const float* x, const float* r, const float* w, const float* dy, float* dx, int64_t rows,
    int64_t n) {
  for (int64_t row = 0; row < rows; ++row) {
    const float* xr = x + row * n;
    const float* d = dy + row * n;
    F8 dot = F8{};
    for (int64_t i = 0; i < n; i += 8) dot += At(d + i) * At(w + i) * At(xr + i);
    float sum = 0.0f;
    for (int l = 0; l < 8; ++l) sum += dot[l];
    const float ri = r[row], c = ri * ri * ri * sum / static_cast<float>(n);
    for (int64_t i = 0; i < n; i += 8) {
      At(dx + row * n + i) = ri * (At(d + i) * At(w + i)) - c * At(xr + i);
    }
  }
}

// y = x · r · w with the gradient to x only (w frozen): the forward pass is
// torch's ops (the same values), the backward one pass per row instead of
// autograd's ten ops.
struct RmsNormFn : public torch::autograd::Function<RmsNormFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight) {
    const torch::Tensor r = InverseRms(x);
    ctx->save_for_backward({x, r, weight});
    return x * r * weight;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const torch::autograd::variable_list saved = ctx->get_saved_variables();
    const torch::Tensor x = saved[0].contiguous(), r = saved[1].contiguous(),
                        w = saved[2].contiguous(), dy = grad[0].contiguous();
    const int64_t n = x.size(-1), rows = x.numel() / n;
    torch::Tensor dx = torch::empty_like(x);
    at::parallel_for(0, rows, 64, [&](int64_t begin, int64_t end) {
      RmsNormRowsBackward(x.data_ptr<float>() + begin * n, r.data_ptr<float>() + begin,
                          w.data_ptr<float>(), dy.data_ptr<float>() + begin * n,
                          dx.data_ptr<float>() + begin * n, end - begin, n);
    });
    return {dx, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor RmsNorm(const torch::Tensor& x, const torch::Tensor& weight) {
  const bool fused = torch::GradMode::is_enabled() && x.requires_grad() &&
                     !weight.requires_grad() && x.device().is_cpu() &&
                     x.scalar_type() == torch::kFloat && weight.scalar_type() == torch::kFloat &&
                     weight.dim() == 1 && x.size(-1) % 8 == 0;
  if (fused) return RmsNormFn::apply(x, weight);
  return x * InverseRms(x) * weight;
}

}  // namespace circuit
