// The GPT's attention kernel and its memory bound (circuit/core/attention.h).
#include "model/gpt/attend.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "circuit/core/attention.h"
#include "circuit/core/status.h"
#include "model/gpt/vec8.h"

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

// One (row, head)'s keys or values, each row contiguous: the first s from
// its shared prefix (row b / 2 of the prefix's), the rest its own.
struct KeyRows {
  const float* prefix;
  int64_t prefix_row;
  int64_t s;
  const float* own;
  int64_t own_row;
  const float* operator[](int64_t j) const {
    return j < s ? prefix + j * prefix_row : own + (j - s) * own_row;
  }
};

// Strided views of one (row, head): queries (Tq, 16), keys and values
// (Tk, 16) and the mask (Tq, Tk), each row contiguous.
struct HeadView {
  const float* q;
  int64_t q_row;
  KeyRows k, v;
  const bool* masked;
  int64_t m_row;
};

// Keys padded to a multiple of 8, one vector's worth: the kernels' buffers.
inline int64_t Padded8(int64_t Tk) { return (Tk + 7) / 8 * 8; }

// Keys transposed into kt (16, Tk8), Tk8 = Tk rounded up to 8, the padding 0:
// 8 × 8 tiles.
[[gnu::always_inline]] inline void Transpose16(const KeyRows& k, int64_t Tk, int64_t Tk8,
                                               float* kt) {
  for (int64_t j = 0; j < Tk8; j += 8) {
    for (int d = 0; d < 16; d += 8) {
      F8 r[8];
      for (int t = 0; t < 8; ++t) r[t] = j + t < Tk ? F8(At(k[j + t] + d)) : F8{};
      Transpose8x8(r);
      for (int c = 0; c < 8; ++c) At(kt + (d + c) * Tk8 + j) = r[c];
    }
  }
}

// One past a query's last kept key (mask row mi of Tk keys): the keys after
// it get probability 0 and are skipped (half of them under a causal mask).
[[gnu::always_inline]] inline int64_t KeptEnd(const bool* mi, int64_t Tk) {
  int64_t end = Tk;
  while (end > 0 && mi[end - 1]) --end;
  return end;
}

// The keys a query scores: up to KeptEnd in whole vectors, at least one (with
// every key masked the row is NaN, as torch's softmax gives).
[[gnu::always_inline]] inline int64_t Scored8(int64_t end, int64_t Tk8) {
  return std::min(Tk8, std::max<int64_t>(8, Padded8(end)));
}

// One query's exponentials exp(s_j - m) into `scores` (n8 = Scored8 of them;
// 0 where the key is masked or padding), s_j = q·k_j · scale and m their
// maximum (with the sink logit when `has_sink`); returns their sum plus the
// sink's. kt's rows are Tk8 floats; `keep` holds n8. The sums run over keys
// in a fixed order (eight lanes, then the lanes), so skipping the zeros after
// n8 changes no bit.
[[gnu::always_inline]] inline float QueryExponentials(const float* qi, const bool* mi,
                                                      const float* kt, int64_t Tk, int64_t Tk8,
                                                      int64_t n8, float scale, bool has_sink,
                                                      float sink, float* keep, float* scores) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const int64_t n = std::min(Tk, n8);
  for (int64_t j = 0; j < n; ++j) keep[j] = mi[j] ? 0.0f : 1.0f;
  for (int64_t j = n; j < n8; ++j) keep[j] = 0.0f;
  F8 top = F8{} + (has_sink ? sink : -kInf);
  for (int64_t j = 0; j < n8; j += 8) {
    F8 dot = F8{};
    for (int d = 0; d < 16; ++d) dot += qi[d] * At(kt + d * Tk8 + j);
    const F8 s = At(keep + j) > 0.0f ? dot * scale : F8{} - kInf;
    At(scores + j) = s;
    top = s > top ? s : top;
  }
  // A masked key's exponential is multiplied by 0; with every key masked
  // and no sink, the maximum is -inf and the row NaN, as torch's softmax gives.
  const float m = MaxOf(top);
  F8 total = F8{};
  for (int64_t j = 0; j < n8; j += 8) {
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
  return sum;
}

// softmax(q kᵀ · scale) v for one (row, head) of head width 16, with the sink
// logit as a key of zero value when `has_sink`. The keys are transposed once
// into `kt` (16, Tk8), so that a query's scores are eight keys per vector;
// `keep` and `scores` hold Tk8 floats; the output goes to `out` (Tq, 16).
__attribute__((target_clones("avx2", "default"))) void AttendHead16(
    const HeadView& h, float* out, int64_t Tq, int64_t Tk, float scale, bool has_sink,
    float sink, float* kt, float* keep, float* scores) {
  constexpr int kDh = 16;
  const int64_t Tk8 = Padded8(Tk);
  Transpose16(h.k, Tk, Tk8, kt);
  for (int64_t i = 0; i < Tq; ++i) {
    const bool* mi = h.masked + i * h.m_row;
    const int64_t end = KeptEnd(mi, Tk);
    const float sum = QueryExponentials(h.q + i * h.q_row, mi, kt, Tk, Tk8, Scored8(end, Tk8),
                                        scale, has_sink, sink, keep, scores);
    // Two accumulators per half row (even and odd keys) keep the adds' latency
    // from serialising the loop.
    F8 lo0 = F8{}, lo1 = F8{}, hi0 = F8{}, hi1 = F8{};
    int64_t j = 0;
    for (; j + 1 < end; j += 2) {
      const float* v0 = h.v[j];
      const float* v1 = h.v[j + 1];
      lo0 += scores[j] * At(v0);
      hi0 += scores[j] * At(v0 + 8);
      lo1 += scores[j + 1] * At(v1);
      hi1 += scores[j + 1] * At(v1 + 8);
    }
    if (j < end) {
      const float* v0 = h.v[j];
      lo0 += scores[j] * At(v0);
      hi0 += scores[j] * At(v0 + 8);
    }
    const float inv = 1.0f / sum;
    At(out + i * kDh) = (lo0 + lo1) * inv;
    At(out + i * kDh + 8) = (hi0 + hi1) * inv;
  }
}

// AttendHead16's gradients for one (row, head): from dout (Tq, 16) to dq
// (Tq, 16), dk and dv (Tk, 16), all contiguous, with the probabilities
// recomputed as the forward pass computed them. With p_j a query's
// probabilities and g its output's gradient: dv_j += p_j g, and with
// ds_j = p_j (g·v_j - Σ p g·v) · scale (the sink's value is 0): dq = Σ ds_j k_j,
// dk_j += ds_j q. kt and vt hold 16 × Tk8 floats, keep, scores and ds Tk8.
__attribute__((target_clones("avx2", "default"))) void AttendHead16Backward(
    const HeadView& h, const float* dout, float* dq, float* dk, float* dv, int64_t Tq,
    int64_t Tk, float scale, bool has_sink, float sink, float* kt, float* vt, float* keep,
    float* scores, float* ds) {
  constexpr int kDh = 16;
  const int64_t Tk8 = Padded8(Tk);
  Transpose16(h.k, Tk, Tk8, kt);
  Transpose16(h.v, Tk, Tk8, vt);
  std::fill(dk, dk + Tk * kDh, 0.0f);
  std::fill(dv, dv + Tk * kDh, 0.0f);
  for (int64_t i = 0; i < Tq; ++i) {
    const float* qi = h.q + i * h.q_row;
    const bool* mi = h.masked + i * h.m_row;
    const float* gi = dout + i * kDh;
    const int64_t end = KeptEnd(mi, Tk), n8 = Scored8(end, Tk8);
    const float inv =
        1.0f / QueryExponentials(qi, mi, kt, Tk, Tk8, n8, scale, has_sink, sink, keep, scores);
    F8 weighted = F8{};
    for (int64_t j = 0; j < n8; j += 8) {
      const F8 p = At(scores + j) * inv;
      At(scores + j) = p;
      F8 dot = F8{};
      for (int d = 0; d < kDh; ++d) dot += gi[d] * At(vt + d * Tk8 + j);
      At(ds + j) = dot;
      weighted += p * dot;
    }
    float mean = 0.0f;
    for (int l = 0; l < 8; ++l) mean += weighted[l];
    for (int64_t j = 0; j < n8; j += 8) At(ds + j) = At(scores + j) * (At(ds + j) - mean) * scale;
    // Keys after the last one kept get nothing (p = ds = 0).
    const F8 q_lo = At(qi), q_hi = At(qi + 8), g_lo = At(gi), g_hi = At(gi + 8);
    F8 dq_lo = F8{}, dq_hi = F8{};
    for (int64_t j = 0; j < end; ++j) {
      const float* kj = h.k[j];
      dq_lo += ds[j] * At(kj);
      dq_hi += ds[j] * At(kj + 8);
      At(dk + j * kDh) += ds[j] * q_lo;
      At(dk + j * kDh + 8) += ds[j] * q_hi;
      At(dv + j * kDh) += scores[j] * g_lo;
      At(dv + j * kDh + 8) += scores[j] * g_hi;
    }
    At(dq + i * kDh) = dq_lo;
    At(dq + i * kDh + 8) = dq_hi;
  }
}

// q, k, v (and the shared prefix's keys and values, when given) with rows
// contiguous, the mask expanded to (B, H, Tq, s + Tk) with rows contiguous,
// the sink contiguous: what the kernels read through HeadViews.
struct Operands {
  Operands(const torch::Tensor& q_in, const torch::Tensor& k_in, const torch::Tensor& v_in,
           const torch::Tensor& masked_in, const torch::Tensor& sink_in, const SharedPrefix& p)
      : q(RowsContiguous(q_in)), k(RowsContiguous(k_in)), v(RowsContiguous(v_in)),
        pk(p.k.defined() ? RowsContiguous(p.k) : p.k), pv(p.v.defined() ? RowsContiguous(p.v) : p.v),
        s(p.k.defined() ? p.k.size(2) : 0),
        masked(masked_in.expand({q_in.size(0), q_in.size(1), q_in.size(2), s + k_in.size(2)})),
        sink(sink_in.defined() ? sink_in.contiguous() : torch::Tensor()) {
    if (masked.stride(3) != 1) masked = masked.contiguous();
  }
  // Rows contiguous, and rows a page apart or more (wide models: all heads'
  // channels lie between a head's consecutive keys) copied together: the
  // kernels read a head's keys one by one.
  static torch::Tensor RowsContiguous(const torch::Tensor& t) {
    constexpr int64_t kFarRow = 4096 / sizeof(float);
    return t.stride(-1) == 1 && t.stride(-2) < kFarRow ? t : t.contiguous();
  }
  int64_t B() const { return q.size(0); }
  int64_t H() const { return q.size(1); }
  int64_t Tq() const { return q.size(2); }
  int64_t Tk() const { return s + k.size(2); }  // the prefix's keys and the row's own
  float Sink(int64_t h) const { return sink.defined() ? sink.data_ptr<float>()[h] : 0.0f; }
  // Row b's keys or values (own: k or v; prefix: pk or pv) for head h.
  KeyRows Rows(const torch::Tensor& own, const torch::Tensor& prefix, int64_t b, int64_t h) const {
    KeyRows r{nullptr, 0, s, own.data_ptr<float>() + b * own.stride(0) + h * own.stride(1),
              own.stride(2)};
    if (s > 0) {
      r.prefix = prefix.data_ptr<float>() + b / 2 * prefix.stride(0) + h * prefix.stride(1);
      r.prefix_row = prefix.stride(2);
    }
    return r;
  }
  // (row, head) bh's view.
  HeadView View(int64_t bh) const {
    const int64_t b = bh / H(), h = bh % H();
    return HeadView{q.data_ptr<float>() + b * q.stride(0) + h * q.stride(1), q.stride(2),
                    Rows(k, pk, b, h), Rows(v, pv, b, h),
                    masked.data_ptr<bool>() + b * masked.stride(0) + h * masked.stride(1),
                    masked.stride(2)};
  }

  torch::Tensor q, k, v, pk, pv;
  int64_t s;
  torch::Tensor masked, sink;
};

// The output (B, H, Tq, 16), one (row, head) at a time and the scores of one
// query at a time, so no (B, H, Tq, Tk) tensor is ever made.
torch::Tensor AttendFused(const Operands& o, float scale) {
  torch::Tensor out = torch::empty({o.B(), o.H(), o.Tq(), 16}, o.q.options());
  float* op = out.data_ptr<float>();
  at::parallel_for(0, o.B() * o.H(), 1, [&](int64_t begin, int64_t end) {
    const int64_t Tk8 = Padded8(o.Tk());
    std::vector<float> kt(16 * Tk8), keep(Tk8), scores(Tk8);
    for (int64_t bh = begin; bh < end; ++bh) {
      AttendHead16(o.View(bh), op + bh * o.Tq() * 16, o.Tq(), o.Tk(), scale, o.sink.defined(),
                   o.Sink(bh % o.H()), kt.data(), keep.data(), scores.data());
    }
  });
  return out;
}

// Autograd takes no undefined input: an absent tensor is an empty one.
torch::Tensor OrEmpty(const torch::Tensor& t) { return t.defined() ? t : torch::empty({0}); }
torch::Tensor OrNone(const torch::Tensor& t) { return t.numel() > 0 ? t : torch::Tensor(); }

// The gradient of the shared prefix's keys or values from that of all keys
// d (B, H, s + Tk, 16): the twins' first s rows added (their order does not
// matter for two terms), and the own keys' rest.
std::pair<torch::Tensor, torch::Tensor> SplitPrefixGradient(const torch::Tensor& d, int64_t s) {
  if (s == 0) return {torch::Tensor(), d};
  const int64_t B = d.size(0), H = d.size(1), Tk = d.size(2) - s;
  const torch::Tensor prefix = d.narrow(2, 0, s).reshape({B / 2, 2, H, s, 16}).sum(1);
  return {prefix, d.narrow(2, s, Tk)};
}

// The fused kernel under autograd: gradients to q, k and v and the shared
// prefix's keys and values (not to the sink).
class AttendFunction : public torch::autograd::Function<AttendFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q,
                               const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& masked, const torch::Tensor& sink,
                               const torch::Tensor& pk, const torch::Tensor& pv, double scale) {
    ctx->save_for_backward({q, k, v, masked, sink, pk, pv});  // empty when absent
    ctx->saved_data["scale"] = scale;
    return AttendFused(Operands(q, k, v, masked, OrNone(sink), {OrNone(pk), OrNone(pv)}),
                       static_cast<float>(scale));
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const torch::autograd::variable_list saved = ctx->get_saved_variables();
    const Operands o(saved[0], saved[1], saved[2], saved[3], OrNone(saved[4]),
                     {OrNone(saved[5]), OrNone(saved[6])});
    const float scale = static_cast<float>(ctx->saved_data["scale"].toDouble());
    const torch::Tensor dout = grads[0].contiguous();  // (B, H, Tq, 16)
    const int64_t Tq = o.Tq(), Tk = o.Tk();
    torch::Tensor dq = torch::empty({o.B(), o.H(), Tq, 16}, o.q.options());
    torch::Tensor dk = torch::empty({o.B(), o.H(), Tk, 16}, o.q.options());
    torch::Tensor dv = torch::empty_like(dk);
    const float* gp = dout.data_ptr<float>();
    float *dqp = dq.data_ptr<float>(), *dkp = dk.data_ptr<float>(), *dvp = dv.data_ptr<float>();
    at::parallel_for(0, o.B() * o.H(), 1, [&](int64_t begin, int64_t end) {
      const int64_t Tk8 = Padded8(Tk);
      std::vector<float> kt(16 * Tk8), vt(16 * Tk8), keep(Tk8), scores(Tk8), ds(Tk8);
      for (int64_t bh = begin; bh < end; ++bh) {
        AttendHead16Backward(o.View(bh), gp + bh * Tq * 16, dqp + bh * Tq * 16,
                             dkp + bh * Tk * 16, dvp + bh * Tk * 16, Tq, Tk, scale,
                             o.sink.defined(), o.Sink(bh % o.H()), kt.data(), vt.data(),
                             keep.data(), scores.data(), ds.data());
      }
    });
    const auto [dpk, dk_own] = SplitPrefixGradient(dk, o.s);
    const auto [dpv, dv_own] = SplitPrefixGradient(dv, o.s);
    return {dq, dk_own, dv_own, torch::Tensor(), torch::Tensor(), dpk, dpv, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor Attend(const torch::Tensor& q, const torch::Tensor& k_own, const torch::Tensor& v_own,
                     const torch::Tensor& masked, const torch::Tensor& sink, double scale,
                     const SharedPrefix& prefix) {
  CIRCUIT_CHECK(prefix.k.defined() == prefix.v.defined());
  CIRCUIT_CHECK(!prefix.k.defined() || 2 * prefix.k.size(0) == q.size(0));
  // The fused kernel: CPU, float, head width 16 (every model this project
  // makes), forward and backward; torch's kernels when the sink takes a
  // gradient (training).
  const auto is_float = [](const torch::Tensor& t) {
    return !t.defined() || t.scalar_type() == torch::kFloat;
  };
  const bool fused = FusedAttention() && q.device().is_cpu() && q.scalar_type() == torch::kFloat &&
                     is_float(k_own) && is_float(v_own) && is_float(prefix.k) &&
                     is_float(prefix.v) && masked.scalar_type() == torch::kBool &&
                     q.size(3) == 16 && is_float(sink);
  if (fused) {
    const bool grad = torch::GradMode::is_enabled();
    const bool sink_grad = grad && sink.defined() && sink.requires_grad();
    const bool any_grad = q.requires_grad() || k_own.requires_grad() || v_own.requires_grad() ||
                          (prefix.k.defined() && (prefix.k.requires_grad() || prefix.v.requires_grad()));
    if (!grad || !(any_grad || sink_grad)) {
      return AttendFused(Operands(q, k_own, v_own, masked, sink, prefix), static_cast<float>(scale));
    }
    if (!sink_grad) {
      return AttendFunction::apply(q, k_own, v_own, masked, OrEmpty(sink), OrEmpty(prefix.k),
                                   OrEmpty(prefix.v), scale);
    }
  }
  // Torch's kernels: each row's prefix keys and values put in front of its own.
  torch::Tensor k = k_own, v = v_own;
  if (prefix.k.defined()) {
    const torch::Tensor twin = torch::arange(q.size(0), torch::TensorOptions().device(q.device()))
                                   .div(2, "floor");
    k = torch::cat({prefix.k.index_select(0, twin), k_own}, 2);
    v = torch::cat({prefix.v.index_select(0, twin), v_own}, 2);
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
