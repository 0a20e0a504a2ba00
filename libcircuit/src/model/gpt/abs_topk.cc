// AbsTopK, the GPT's activation sparsity (PAPER.md §1.2): a per-row
// threshold search on float bit patterns, compiled for AVX2 and the baseline.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "circuit/core/model.h"

namespace circuit {
namespace {

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
    int32_t max_bits = 0;
    for (int64_t i = 0; i < n; ++i) {
      magnitude[i] = raw[i] & 0x7fffffff;  // |x|
      max_bits = std::max(max_bits, magnitude[i]);
    }
    const int32_t t = KthLargestMagnitudeBits(magnitude.data(), n, k, max_bits);
    for (int64_t i = 0; i < n; ++i) {
      const int32_t keep = magnitude[i] >= t ? -1 : 0;
      raw[i] = (mask ? kOne : raw[i]) & keep;
    }
    std::memcpy(out + r * n, raw.data(), n * sizeof(float));
  }
}

}  // namespace

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
