// AbsTopK, the GPT's activation sparsity (PAPER.md §1.2): a per-row
// threshold search on float bit patterns, compiled for AVX2 and the baseline.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "circuit/core/model.h"
#include "circuit/core/status.h"
#include "circuit/core/taps.h"
#include "model/gpt/vec8.h"

namespace circuit {
namespace {

using internal::At;
using internal::F8;
using internal::I8;

// The bit pattern of the k-th largest of n magnitudes given as float bit
// patterns (sign cleared: for non-negative floats the order of the bits as
// integers is the numeric order, and they fit a signed int32). Bisection on the
// pattern with branch-free counting, which vectorises; it stops early once
// exactly k values lie at or above the probe, since that probe keeps the same
// set as the k-th largest value itself.
[[gnu::always_inline]] inline int32_t KthLargestMagnitudeBits(const int32_t* bits, int64_t n,
                                                              int64_t k, int32_t max_bits) {
  int64_t lo = 0, hi = int64_t{max_bits} + 1;  // count(>= lo) >= k > count(>= hi)
  while (hi - lo > 1) {
    const int32_t mid = static_cast<int32_t>(lo + (hi - lo) / 2);
    int32_t count = 0;
    for (int64_t i = 0; i < n; ++i) count += bits[i] >= mid ? 1 : 0;
    if (count < k) {
      hi = mid;
    } else {
      lo = mid;
      if (count == k) break;
    }
  }
  return static_cast<int32_t>(lo);
}

// The magnitude bits at or above which a row of n floats (`raw`, as bits)
// keeps its entries under AbsTopK with k of n (0: all), via `magnitude` (n).
[[gnu::always_inline]] inline int32_t RowThreshold(const int32_t* raw, int32_t* magnitude,
                                                   int64_t n, int64_t k) {
  if (k >= n) return 0;
  int32_t max_bits = 0;
  for (int64_t i = 0; i < n; ++i) {
    magnitude[i] = raw[i] & 0x7fffffff;  // |x|
    max_bits = std::max(max_bits, magnitude[i]);
  }
  return KthLargestMagnitudeBits(magnitude, n, k, max_bits);
}

// AbsTopK of `rows` rows of n floats from `in` to `out`: each row's entries of
// magnitude at least its k-th largest, the others 0 (or, with `mask`, 1 and 0).
// Compiled for AVX2 and for the baseline, chosen when the program loads.
__attribute__((target_clones("avx2", "default"))) void AbsTopKRows(const float* in, float* out,
                                                                   int64_t rows, int64_t n,
                                                                   int64_t k, bool mask) {
  // Bit patterns throughout, so that every loop is branch-free and vectorises.
  std::vector<int32_t> raw(n), magnitude(n);
  constexpr int32_t kOne = 0x3f800000;  // 1.0f
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(raw.data(), in + r * n, n * sizeof(float));
    const int32_t t = RowThreshold(raw.data(), magnitude.data(), n, k);
    for (int64_t i = 0; i < n; ++i) {
      const int32_t keep = (raw[i] & 0x7fffffff) >= t ? -1 : 0;
      raw[i] = (mask ? kOne : raw[i]) & keep;
    }
    std::memcpy(out + r * n, raw.data(), n * sizeof(float));
  }
}

// lerp(m, a, g) as torch computes it for gates 0 and 1 (then exactly m or
// a): from the nearer end.
[[gnu::always_inline]] inline F8 Lerp(const F8& m, const F8& a, const F8& g) {
  const F8 abs_g = __builtin_bit_cast(F8, __builtin_bit_cast(I8, g) & 0x7fffffff);
  const F8 diff = a - m;
  return abs_g < 0.5f ? m + g * diff : a + (g - 1.0f) * diff;
}

// Row entries i..i+7 of x kept under threshold bits t: x or +0 (lanes of
// `kept`: -1 kept, 0 not).
[[gnu::always_inline]] inline F8 Kept(const float* x, int32_t t, I8& kept) {
  const I8 bits = __builtin_bit_cast(I8, F8(At(x)));
  kept = (bits & 0x7fffffff) >= t;
  return __builtin_bit_cast(F8, bits & kept);
}

// GatedAbsTopK's forward pass for `rows` rows of n floats (n a multiple of 8):
// each row's threshold to `thresholds` and lerp(m, kept x, g) to `out`.
__attribute__((target_clones("avx2", "default"))) void GatedRows(
    const float* in, float* out, int32_t* thresholds, int64_t rows, int64_t n, int64_t k,
    const float* g, const float* m) {
  std::vector<int32_t> raw(n), magnitude(n);
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = in + r * n;
    std::memcpy(raw.data(), x, n * sizeof(float));
    const int32_t t = thresholds[r] = RowThreshold(raw.data(), magnitude.data(), n, k);
    for (int64_t i = 0; i < n; i += 8) {
      I8 kept;
      const F8 a = Kept(x + i, t, kept);
      At(out + r * n + i) = Lerp(F8(At(m + i)), a, F8(At(g + i)));
    }
  }
}

// GatedAbsTopK's backward pass for `rows` rows: dx = dy · g where kept (else
// 0), and the rows' dy · (kept x - m) added to dg (n), row after row.
__attribute__((target_clones("avx2", "default"))) void GatedRowsBackward(
    const float* in, const float* dy, const int32_t* thresholds, int64_t rows, int64_t n,
    const float* g, const float* m, float* dx, float* dg) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < n; i += 8) {
      I8 kept;
      const F8 a = Kept(in + r * n + i, thresholds[r], kept);
      const F8 d = At(dy + r * n + i);
      const F8 dgx = d * At(g + i);
      At(dx + r * n + i) = __builtin_bit_cast(F8, __builtin_bit_cast(I8, dgx) & kept);
      At(dg + i) += d * (a - At(m + i));
    }
  }
}

// Rows per part of GatedAbsTopK's gate gradient: the parts' sums are added in
// order, so the result does not depend on the thread count.
constexpr int64_t kGateRows = 64;

struct GatedAbsTopKFn : public torch::autograd::Function<GatedAbsTopKFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& gate, const torch::Tensor& value, int64_t k) {
    const int64_t n = x.size(-1);
    const torch::Tensor in = x.contiguous(), g = gate.contiguous(), m = value.contiguous();
    const int64_t rows = in.numel() / n;
    torch::Tensor out = torch::empty_like(in);
    torch::Tensor thresholds = torch::empty({rows}, torch::kInt32);
    const float* ip = in.data_ptr<float>();
    float* op = out.data_ptr<float>();
    int32_t* tp = thresholds.data_ptr<int32_t>();
    at::parallel_for(0, rows, 64, [&](int64_t begin, int64_t end) {
      GatedRows(ip + begin * n, op + begin * n, tp + begin, end - begin, n, k, g.data_ptr<float>(),
                m.data_ptr<float>());
    });
    ctx->save_for_backward({in, g, m, thresholds});
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const torch::autograd::variable_list saved = ctx->get_saved_variables();
    const torch::Tensor &in = saved[0], &g = saved[1], &m = saved[2], &thresholds = saved[3];
    const torch::Tensor dy = grad[0].contiguous();
    const int64_t n = in.size(-1), rows = in.numel() / n;
    const int64_t parts = std::max<int64_t>(1, (rows + kGateRows - 1) / kGateRows);
    torch::Tensor dx = torch::empty_like(in);
    torch::Tensor part_dg = torch::zeros({parts, n}, torch::kFloat32);
    at::parallel_for(0, parts, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const int64_t r0 = p * kGateRows, r1 = std::min(rows, r0 + kGateRows);
        GatedRowsBackward(in.data_ptr<float>() + r0 * n, dy.data_ptr<float>() + r0 * n,
                          thresholds.data_ptr<int32_t>() + r0, r1 - r0, n, g.data_ptr<float>(),
                          m.data_ptr<float>(), dx.data_ptr<float>() + r0 * n,
                          part_dg.data_ptr<float>() + p * n);
      }
    });
    // The parts' sums added in order (rows 1.. onto row 0).
    float* dg = part_dg.data_ptr<float>();
    for (int64_t p = 1; p < parts; ++p) {
      for (int64_t i = 0; i < n; ++i) dg[i] += dg[p * n + i];
    }
    return {dx, part_dg[0], torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor GatedAbsTopK(const torch::Tensor& x, int64_t k, const torch::Tensor& gate,
                           const torch::Tensor& value) {
  const int64_t n = x.size(-1);
  if (!x.device().is_cpu() || x.scalar_type() != torch::kFloat || gate.dim() != 1 ||
      gate.scalar_type() != torch::kFloat || n % 8 != 0) {
    return GateBlend(AbsTopK(x, k), gate, value);
  }
  CIRCUIT_CHECK(gate.size(0) == n && value.numel() == n);
  return GatedAbsTopKFn::apply(x, gate, value.to(torch::kFloat).reshape({n}), std::min(k, n));
}

// Keeps the k entries of largest magnitude in every row (last dimension) and
// zeroes the rest. On the CPU a per-row threshold search keeps everything at
// least as large as the row's k-th largest |x| (ties at the threshold keep more
// than k; continuous activations do not tie), in one pass that writes the
// result (several times faster than topk + scatter, and ~2.5x faster than a
// per-row nth_element; docs/performance.md). topk + scatter stays the path on
// other devices and dtypes. Under autograd the pass writes the 0/1 mask instead and
// x * mask carries the gradient.
torch::Tensor AbsTopK(const torch::Tensor& x, int64_t k) {
  const int64_t n = x.size(-1);
  if (k >= n) return x;
  if (!x.device().is_cpu() || x.scalar_type() != torch::kFloat) {
    torch::Tensor indices = std::get<1>(x.abs().topk(k, /*dim=*/-1, /*largest=*/true, /*sorted=*/false));
    return torch::zeros_like(x).scatter(-1, indices, x.gather(-1, indices));
  }
  const bool grad = torch::GradMode::is_enabled() && x.requires_grad();
  const torch::Tensor input = x.detach().contiguous();
  torch::Tensor out = torch::empty_like(input);
  const int64_t rows = input.numel() / n;
  const float* in = input.data_ptr<float>();
  float* o = out.data_ptr<float>();
  at::parallel_for(0, rows, 64, [&](int64_t begin, int64_t end) {
    AbsTopKRows(in + begin * n, o + begin * n, end - begin, n, k, grad);
  });
  return grad ? x * out : out;
}

}  // namespace circuit
