// The CSR product for frozen weight-sparse matrices (sparse_linear.h). Tokens
// go 16 at a time, transposed so that each of W's nonzeros is one vector
// multiply-add over the 16; blocks of tokens are independent, so they are split
// over torch's threads. The backward product is the same kernel on the CSR of Wᵀ.
#include "model/gpt/sparse_linear.h"

#include "circuit/core/model.h"
#include "model/gpt/vec8.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

namespace circuit::internal {
namespace {

struct Csr {
  torch::Tensor rows, cols, vals;  // (out + 1) int64, (nnz) int32, (nnz) float32
};

// m: (out, in) float32, contiguous.
Csr CsrOf(const float* m, int64_t out, int64_t in, int64_t nnz) {
  Csr c{torch::empty({out + 1}, torch::kInt64), torch::empty({nnz}, torch::kInt32),
        torch::empty({nnz}, torch::kFloat32)};
  int64_t* r = c.rows.data_ptr<int64_t>();
  int32_t* col = c.cols.data_ptr<int32_t>();
  float* v = c.vals.data_ptr<float>();
  int64_t k = 0;
  for (int64_t i = 0; i < out; ++i) {
    r[i] = k;
    const float* row = m + i * in;
    for (int64_t j = 0; j < in; ++j) {
      if (row[j] != 0.0f) {
        col[k] = static_cast<int32_t>(j);
        v[k++] = row[j];
      }
    }
  }
  r[out] = k;
  return c;
}

// The CSR of Mᵀ from the CSR of M (out, in): a counting sort by column, so
// each transposed row lists its entries in increasing original row.
Csr Transposed(const Csr& c, int64_t in) {
  const int64_t out = c.rows.numel() - 1, nnz = c.vals.numel();
  const int64_t* r = c.rows.data_ptr<int64_t>();
  const int32_t* col = c.cols.data_ptr<int32_t>();
  const float* v = c.vals.data_ptr<float>();
  Csr t{torch::zeros({in + 1}, torch::kInt64), torch::empty({nnz}, torch::kInt32),
        torch::empty({nnz}, torch::kFloat32)};
  int64_t* tr = t.rows.data_ptr<int64_t>();
  for (int64_t k = 0; k < nnz; ++k) ++tr[col[k] + 1];
  for (int64_t j = 0; j < in; ++j) tr[j + 1] += tr[j];
  std::vector<int64_t> next(tr, tr + in);
  int32_t* tc = t.cols.data_ptr<int32_t>();
  float* tv = t.vals.data_ptr<float>();
  for (int64_t i = 0; i < out; ++i) {
    for (int64_t k = r[i]; k < r[i + 1]; ++k) {
      const int64_t at = next[col[k]]++;
      tc[at] = static_cast<int32_t>(i);
      tv[at] = v[k];
    }
  }
  return t;
}

// Tokens per block of CsrBlock: two vectors of eight floats.
constexpr int64_t kBlock = 16;

// dst (cols, rows) = src (rows, cols)ᵀ, rows `src_row` and `dst_row` floats
// apart, in 8 × 8 tiles: rows and cols multiples of 8.
[[gnu::always_inline]] inline void Transpose(const float* src, int64_t src_row, int64_t rows,
                                             int64_t cols, float* dst, int64_t dst_row) {
  for (int64_t i = 0; i < rows; i += 8) {
    for (int64_t j = 0; j < cols; j += 8) {
      F8 r[8];
      for (int t = 0; t < 8; ++t) r[t] = At(src + (i + t) * src_row + j);
      Transpose8x8(r);
      for (int c = 0; c < 8; ++c) At(dst + (j + c) * dst_row + i) = r[c];
    }
  }
}

// (lo, hi) += entry k of M (column cp[k], value vp[k]) times that column's
// kBlock tokens in xt.
[[gnu::always_inline]] inline void AddEntry(const float* xt, const int32_t* cp, const float* vp,
                                            int64_t k, F8& lo, F8& hi) {
  const float* xk = xt + int64_t{cp[k]} * kBlock;
  lo += vp[k] * At(xk);
  hi += vp[k] * At(xk + 8);
}

// y (rows, out) = x (rows, in) · Mᵀ (+ bias) for rows <= kBlock tokens: the
// block's x transposed into xt (in, kBlock), so that each nonzero of M is one
// multiply-add of kBlock tokens, the outputs gathered in yt (out, kBlock) and
// transposed back (8 × 8 tiles in registers where the block is full and the
// widths multiples of 8). Each output sums its row's nonzeros in column order
// from 0, then adds the bias: the same operations as one token at a time, so
// the result does not depend on the block (nor on AVX2: no fused multiply-add).
__attribute__((target_clones("avx2", "default"))) void CsrBlock(
    const float* x, int64_t rows, int64_t in, const int64_t* rp, const int32_t* cp,
    const float* vp, const float* bp, int64_t out, float* y, float* xt, float* yt) {
  const bool full = rows == kBlock;
  if (full && in % 8 == 0) {
    Transpose(x, in, kBlock, in, xt, kBlock);
  } else {
    for (int64_t t = 0; t < kBlock; ++t) {
      for (int64_t j = 0; j < in; ++j) xt[j * kBlock + t] = t < rows ? x[t * in + j] : 0.0f;
    }
  }
  // Four outputs at a time, their sums interleaved (eight independent chains
  // of adds instead of two), each in its own order.
  constexpr int kRows = 4;
  int64_t i = 0;
  for (; i + kRows <= out; i += kRows) {
    F8 lo[kRows] = {}, hi[kRows] = {};
    int64_t common = rp[i + 1] - rp[i];
    for (int r = 1; r < kRows; ++r) common = std::min(common, rp[i + r + 1] - rp[i + r]);
    for (int64_t j = 0; j < common; ++j) {
      for (int r = 0; r < kRows; ++r) {
        AddEntry(xt, cp, vp, rp[i + r] + j, lo[r], hi[r]);
      }
    }
    for (int r = 0; r < kRows; ++r) {
      for (int64_t k = rp[i + r] + common; k < rp[i + r + 1]; ++k) {
        AddEntry(xt, cp, vp, k, lo[r], hi[r]);
      }
      if (bp != nullptr) lo[r] += bp[i + r], hi[r] += bp[i + r];
      At(yt + (i + r) * kBlock) = lo[r];
      At(yt + (i + r) * kBlock + 8) = hi[r];
    }
  }
  for (; i < out; ++i) {
    F8 lo = F8{}, hi = F8{};
    for (int64_t k = rp[i]; k < rp[i + 1]; ++k) AddEntry(xt, cp, vp, k, lo, hi);
    if (bp != nullptr) lo += bp[i], hi += bp[i];
    At(yt + i * kBlock) = lo;
    At(yt + i * kBlock + 8) = hi;
  }
  if (full && out % 8 == 0) {
    Transpose(yt, kBlock, out, kBlock, y, out);
  } else {
    for (int64_t t = 0; t < rows; ++t) {
      for (int64_t o = 0; o < out; ++o) y[t * out + o] = yt[o * kBlock + t];
    }
  }
}

// y (n, out) = x (n, in) · Mᵀ (+ bias (out), when not empty), M given as CSR;
// blocks of kBlock tokens split over torch's threads.
torch::Tensor CsrProduct(const torch::Tensor& x, const torch::Tensor& rows,
                         const torch::Tensor& cols, const torch::Tensor& vals,
                         const torch::Tensor& bias) {
  const int64_t n = x.size(0), in = x.size(1), out = rows.numel() - 1;
  torch::Tensor y = torch::empty({n, out}, x.options());
  const float* xp = x.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  const int64_t* rp = rows.data_ptr<int64_t>();
  const int32_t* cp = cols.data_ptr<int32_t>();
  const float* vp = vals.data_ptr<float>();
  const float* bp = bias.numel() > 0 ? bias.data_ptr<float>() : nullptr;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  // About 64k multiply-adds per task.
  const int64_t grain = std::max<int64_t>(1, 65536 / (kBlock * (out + vals.numel() + 1)));
  at::parallel_for(0, blocks, grain, [&](int64_t begin, int64_t end) {
    std::vector<float> xt(in * kBlock), yt(out * kBlock);
    for (int64_t b = begin; b < end; ++b) {
      const int64_t t = b * kBlock;
      CsrBlock(xp + t * in, std::min(kBlock, n - t), in, rp, cp, vp, bp, out, yp + t * out,
               xt.data(), yt.data());
    }
  });
  return y;
}

// y = x·Wᵀ + b with the gradient to x only (W and b are frozen).
struct SparseLinearFn : public torch::autograd::Function<SparseLinearFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& rows, const torch::Tensor& cols,
                               const torch::Tensor& vals, const torch::Tensor& t_rows,
                               const torch::Tensor& t_cols, const torch::Tensor& t_vals,
                               const torch::Tensor& bias) {
    ctx->saved_data["t_rows"] = t_rows;
    ctx->saved_data["t_cols"] = t_cols;
    ctx->saved_data["t_vals"] = t_vals;
    const int64_t in = x.size(-1), out = rows.numel() - 1;
    std::vector<int64_t> shape = x.sizes().vec();
    shape.back() = out;
    const torch::Tensor x2 = x.reshape({-1, in}).contiguous();
    return CsrProduct(x2, rows, cols, vals, bias).view(shape);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const torch::Tensor t_rows = ctx->saved_data["t_rows"].toTensor();
    const torch::Tensor g = grad[0];  // (..., out)
    const int64_t in = t_rows.numel() - 1;
    std::vector<int64_t> shape = g.sizes().vec();
    shape.back() = in;
    const torch::Tensor gx =
        CsrProduct(g.reshape({-1, g.size(-1)}).contiguous(), t_rows,
                   ctx->saved_data["t_cols"].toTensor(), ctx->saved_data["t_vals"].toTensor(),
                   torch::empty({0}))
            .view(shape);
    return {gx,
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor()};
  }
};

}  // namespace

SparseLinear SparseLinear::Of(const torch::Tensor& w) {
  SparseLinear s;
  if (!w.defined() || w.dim() != 2 || !w.device().is_cpu() || w.scalar_type() != torch::kFloat32 ||
      !w.is_contiguous() || w.numel() == 0) {
    return s;
  }
  const torch::NoGradGuard no_grad;
  const int64_t out = w.size(0), in = w.size(1);
  const int64_t nnz = w.count_nonzero().item<int64_t>();
  if (static_cast<double>(nnz) > SparseProductMaxDensity() * static_cast<double>(w.numel())) {
    return s;
  }
  const Csr c = CsrOf(w.data_ptr<float>(), out, in, nnz);
  const Csr t = Transposed(c, in);
  s.rows_ = c.rows, s.cols_ = c.cols, s.vals_ = c.vals;
  s.t_rows_ = t.rows, s.t_cols_ = t.cols, s.t_vals_ = t.vals;
  s.data_ = w.data_ptr();
  s.version_ = w._version();
  return s;
}

bool SparseLinear::UsableFor(const torch::Tensor& w) const {
  return !empty() && !w.requires_grad() && w.data_ptr() == data_ && w._version() == version_;
}

torch::Tensor SparseLinear::Apply(const torch::Tensor& x, const torch::Tensor& bias) const {
  // Autograd's custom functions take no undefined tensors: an empty bias is none.
  const bool inside = bias.defined() && !bias.requires_grad();
  torch::Tensor y = SparseLinearFn::apply(x, rows_, cols_, vals_, t_rows_, t_cols_, t_vals_,
                                          inside ? bias.contiguous() : torch::empty({0}));
  // A bias that takes a gradient is added outside, where autograd sees it.
  return bias.defined() && !inside ? y + bias : y;
}

torch::Tensor Linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                     const SparseLinear& sparse) {
  if (sparse.UsableFor(w) && x.device().is_cpu() && x.scalar_type() == torch::kFloat32) {
    return sparse.Apply(x, b);
  }
  return b.defined() ? torch::linear(x, w, b) : torch::linear(x, w);
}

}  // namespace circuit::internal

namespace circuit {

double SparseProductMaxDensity() {
  static const double max_density = [] {
    const char* env = std::getenv("CIRCUIT_SPARSE_DENSITY");
    return env != nullptr && *env != '\0' ? std::atof(env) : 1.0 / 8;
  }();
  return max_density;
}

}  // namespace circuit
