// The GPT's attention kernel and its memory bound (circuit/core/attention.h).
#include "model/gpt/attend.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
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

namespace internal {

torch::Tensor Attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     const torch::Tensor& masked, const torch::Tensor& sink, double scale) {
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
