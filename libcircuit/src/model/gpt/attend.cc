// The GPT's attention kernel and its memory bound (circuit/core/attention.h).
#include "model/gpt/attend.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "circuit/core/attention.h"

namespace circuit {
namespace {

std::atomic<int64_t> max_attention_scores{int64_t{1} << 24};

}  // namespace

int64_t MaxAttentionScores() { return max_attention_scores.load(); }
void SetMaxAttentionScores(int64_t floats) {
  max_attention_scores.store(std::max<int64_t>(1, floats));
}

namespace {

std::atomic<bool> fused_attention{[] {
  const char* env = std::getenv("CIRCUIT_FUSED_ATTENTION");
  return env == nullptr || std::string(env) != "0";
}()};

}  // namespace

bool FusedAttention() { return fused_attention.load(); }
void SetFusedAttention(bool on) { fused_attention.store(on); }

namespace internal {
namespace {

// Eight floats: one AVX2 register, two SSE ones in the baseline copy. No
// vector crosses a call (the helpers take references), since the ABI of vector
// arguments differs with AVX (clang refuses such calls in the baseline copy).
using F8 = float __attribute__((vector_size(32)));
using I8 = int32_t __attribute__((vector_size(32)));
// Eight floats at any float's address (unaligned loads and stores).
using F8u = float __attribute__((vector_size(32), aligned(4), may_alias));

[[gnu::always_inline]] inline const F8u& At(const float* p) {
  return *reinterpret_cast<const F8u*>(p);
}
[[gnu::always_inline]] inline F8u& At(float* p) { return *reinterpret_cast<F8u*>(p); }
[[gnu::always_inline]] inline float MaxOf(const F8& v) {
  float m = v[0];
  for (int l = 1; l < 8; ++l) m = std::max(m, v[l]);
  return m;
}

// x = exp(x) for x <= 0: x = n ln 2 + r with |r| <= ln 2 / 2, exp(r) by
// Cephes' degree-6 polynomial (about 1 ulp), 2^n from the exponent bits; below
// -87 it gives ~1e-38. NaN stays NaN.
[[gnu::always_inline]] inline void ExpNonPositive(F8& x) {
  x = x < -87.0f ? F8{} - 87.0f : x;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const F8 n = (x * 1.44269504088896341f + kRound) - kRound;
  const F8 r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  F8 p = F8{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const I8 bits = (__builtin_convertvector(n, I8) + 127) << 23;
  F8 scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  x = p * scale;
}

// Strided views of one (row, head): queries (Tq, 16), keys and values
// (Tk, 16) and the mask (Tq, Tk), each row contiguous.
struct HeadView {
  const float* q;
  int64_t q_row;
  const float* k;
  int64_t k_row;
  const float* v;
  int64_t v_row;
  const bool* masked;
  int64_t m_row;
  float* out;  // (Tq, 16), contiguous
};

// softmax(q kᵀ · scale) v for one (row, head) of head width 16, with the sink
// logit as a key of zero value when `has_sink`. The keys are transposed once
// into `kt` (16, Tk8), Tk8 = Tk rounded up to 8 and the padding masked, so that
// a query's scores are eight keys per vector; `keep` and `scores` hold Tk8
// floats. The sums run over keys in a fixed order (eight lanes, then the lanes).
__attribute__((target_clones("avx2", "default"))) void AttendHead16(
    const HeadView& h, int64_t Tq, int64_t Tk, float scale, bool has_sink, float sink,
    float* kt, float* keep, float* scores) {
  constexpr int kDh = 16;
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const int64_t Tk8 = (Tk + 7) / 8 * 8;
  for (int64_t j = 0; j < Tk8; ++j) {
    for (int d = 0; d < kDh; ++d) kt[d * Tk8 + j] = j < Tk ? h.k[j * h.k_row + d] : 0.0f;
  }
  for (int64_t i = 0; i < Tq; ++i) {
    const float* qi = h.q + i * h.q_row;
    const bool* mi = h.masked + i * h.m_row;
    for (int64_t j = 0; j < Tk; ++j) keep[j] = mi[j] ? 0.0f : 1.0f;
    for (int64_t j = Tk; j < Tk8; ++j) keep[j] = 0.0f;
    F8 top = F8{} + (has_sink ? sink : -kInf);
    for (int64_t j = 0; j < Tk8; j += 8) {
      F8 dot = F8{};
      for (int d = 0; d < kDh; ++d) dot += qi[d] * At(kt + d * Tk8 + j);
      const F8 s = At(keep + j) > 0.0f ? dot * scale : F8{} - kInf;
      At(scores + j) = s;
      top = s > top ? s : top;
    }
    // A masked key's exponential is multiplied by 0; with every key masked
    // and no sink, the maximum is -inf and the row NaN, as torch's softmax gives.
    const float m = MaxOf(top);
    F8 total = F8{};
    for (int64_t j = 0; j < Tk8; j += 8) {
      F8 e = At(scores + j) - m;
      ExpNonPositive(e);
      e *= At(keep + j);
      At(scores + j) = e;
      total += e;
    }
    float sum = 0.0f;
    if (has_sink) {
      F8 e = F8{} + (sink - m);
      ExpNonPositive(e);
      sum = e[0];
    }
    for (int l = 0; l < 8; ++l) sum += total[l];
    // Two accumulators per half row (even and odd keys) keep the adds' latency
    // from serialising the loop.
    F8 lo0 = F8{}, lo1 = F8{}, hi0 = F8{}, hi1 = F8{};
    int64_t j = 0;
    for (; j + 1 < Tk; j += 2) {
      const float* v0 = h.v + j * h.v_row;
      const float* v1 = v0 + h.v_row;
      lo0 += scores[j] * At(v0);
      hi0 += scores[j] * At(v0 + 8);
      lo1 += scores[j + 1] * At(v1);
      hi1 += scores[j + 1] * At(v1 + 8);
    }
    if (j < Tk) {
      const float* v0 = h.v + j * h.v_row;
      lo0 += scores[j] * At(v0);
      hi0 += scores[j] * At(v0 + 8);
    }
    const float inv = 1.0f / sum;
    At(h.out + i * kDh) = (lo0 + lo1) * inv;
    At(h.out + i * kDh + 8) = (hi0 + hi1) * inv;
  }
}

// The output (B, H, Tq, 16), one (row, head) at a time and the scores of one
// query at a time, so no (B, H, Tq, Tk) tensor is ever made.
torch::Tensor AttendFused(const torch::Tensor& q_in, const torch::Tensor& k_in,
                          const torch::Tensor& v_in, const torch::Tensor& masked_in,
                          const torch::Tensor& sink_in, float scale) {
  const int64_t B = q_in.size(0), H = q_in.size(1), Tq = q_in.size(2), Tk = k_in.size(2);
  auto rows_contiguous = [](const torch::Tensor& t) {
    return t.stride(-1) == 1 ? t : t.contiguous();
  };
  const torch::Tensor q = rows_contiguous(q_in), k = rows_contiguous(k_in),
                      v = rows_contiguous(v_in);
  torch::Tensor masked = masked_in.expand({B, H, Tq, Tk});
  if (masked.stride(3) != 1) masked = masked.contiguous();
  const torch::Tensor sink = sink_in.defined() ? sink_in.contiguous() : torch::Tensor();
  torch::Tensor out = torch::empty({B, H, Tq, 16}, q.options());
  const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>();
  const float* sp = sink.defined() ? sink.data_ptr<float>() : nullptr;
  const bool* mp = masked.data_ptr<bool>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, B * H, 1, [&](int64_t begin, int64_t end) {
    const int64_t Tk8 = (Tk + 7) / 8 * 8;
    std::vector<float> kt(16 * Tk8), keep(Tk8), scores(Tk8);
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / H, h = bh % H;
      const HeadView view{qp + b * q.stride(0) + h * q.stride(1), q.stride(2),
                          kp + b * k.stride(0) + h * k.stride(1), k.stride(2),
                          vp + b * v.stride(0) + h * v.stride(1), v.stride(2),
                          mp + b * masked.stride(0) + h * masked.stride(1), masked.stride(2),
                          op + bh * Tq * 16};
      AttendHead16(view, Tq, Tk, scale, sp != nullptr, sp != nullptr ? sp[h] : 0.0f, kt.data(),
                   keep.data(), scores.data());
    }
  });
  return out;
}

}  // namespace

torch::Tensor Attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     const torch::Tensor& masked, const torch::Tensor& sink, double scale) {
  // The fused kernel: passes without gradients (evaluations; mask training and
  // attribution keep torch's kernels and their backward pass), CPU, float, head
  // width 16 (every model this project makes).
  const bool needs_grad = torch::GradMode::is_enabled() &&
                          (q.requires_grad() || k.requires_grad() || v.requires_grad() ||
                           (sink.defined() && sink.requires_grad()));
  if (FusedAttention() && !needs_grad && q.device().is_cpu() &&
      q.scalar_type() == torch::kFloat && k.scalar_type() == torch::kFloat &&
      v.scalar_type() == torch::kFloat && masked.scalar_type() == torch::kBool &&
      q.size(3) == 16 && (!sink.defined() || sink.scalar_type() == torch::kFloat)) {
    return AttendFused(q, k, v, masked, sink, static_cast<float>(scale));
  }
  const int64_t B = q.size(0), H = q.size(1), Tq = q.size(2), Tk = k.size(2);
  const int64_t chunk =
      std::max<int64_t>(1, MaxAttentionScores() / std::max<int64_t>(1, B * H * Tk));
  auto part = [&](int64_t start, int64_t n) {
    const torch::Tensor m = masked.size(-2) == 1 ? masked : masked.narrow(-2, start, n);
    torch::Tensor att = torch::matmul(q.narrow(2, start, n), k.transpose(-2, -1)) * scale;
    att = att.masked_fill(m, -std::numeric_limits<float>::infinity());  // (B, H, n, Tk)
    if (sink.defined()) {
      const torch::Tensor s = sink.view({1, H, 1, 1}).expand({B, H, n, 1});
      att = torch::softmax(torch::cat({s, att}, -1), -1).slice(-1, 1);
    } else {
      att = torch::softmax(att, -1);
    }
    return torch::matmul(att, v);  // (B, H, n, dh)
  };
  if (chunk >= Tq) return part(0, Tq);
  std::vector<torch::Tensor> parts;
  for (int64_t start = 0; start < Tq; start += chunk) {
    parts.push_back(part(start, std::min(chunk, Tq - start)));
  }
  return torch::cat(parts, 2);
}

}  // namespace internal
}  // namespace circuit
