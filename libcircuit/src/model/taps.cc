// Taps: interventions at the named sites of any architecture's forward pass.
#include "circuit/core/taps.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "circuit/core/config.h"
#include "circuit/core/status.h"

namespace circuit {
namespace {

// The GPT's sites for n_layer layers (the widths, which Taps does not read,
// are the default config's).
SiteLayout GptSites(int n_layer) {
  ModelConfig config;
  config.n_layer = n_layer;
  return config.Layout();
}

}  // namespace

Taps::Taps(SiteLayout layout) : layout_(std::move(layout)), per_site_(layout_.num_sites()) {}

Taps::Taps(int n_layer) : Taps(GptSites(n_layer)) {}

void Taps::Add(TapFn fn) {
  for (auto& fns : per_site_) fns.push_back(fn);
  empty_ = false;
}

void Taps::AddAt(int layer, NodeLocation loc, TapFn fn) {
  const int site = layout_.Site(layer, loc);
  CIRCUIT_CHECK(site >= 0 && site < num_sites());
  per_site_[site].push_back(std::move(fn));
  empty_ = false;
}

void Taps::SetProduct(ProductFn fn) {
  product_ = std::move(fn);
  empty_ = false;
}

torch::Tensor Taps::Multiply(int layer, Product product, const torch::Tensor& input,
                             const torch::Tensor& weight) const {
  torch::Tensor out = input.matmul(weight);
  return product_ ? product_(layer, product, input, weight, std::move(out)) : out;
}

void Taps::SetBlend(const std::vector<torch::Tensor>* gates,
                    const std::vector<torch::Tensor>* values) {
  CIRCUIT_CHECK(gates != nullptr && values != nullptr);
  CIRCUIT_CHECK(static_cast<int>(gates->size()) == num_sites() &&
                static_cast<int>(values->size()) == num_sites());
  blend_gates_ = gates;
  blend_values_ = values;
  empty_ = false;
}

bool Taps::OnlyBlendAt(int site, torch::Tensor* gate, torch::Tensor* value) const {
  if (blend_gates_ == nullptr || !(*blend_gates_)[site].defined() || !per_site_[site].empty()) {
    return false;
  }
  *gate = (*blend_gates_)[site];
  *value = (*blend_values_)[site];
  return true;
}

torch::Tensor Taps::Apply(const TapSite& site, torch::Tensor x) const {
  if (blend_gates_ != nullptr && (*blend_gates_)[site.site].defined()) {
    x = GateBlend(x, (*blend_gates_)[site.site], (*blend_values_)[site.site]);
  }
  for (const TapFn& fn : per_site_[site.site]) x = fn(site, x);
  return x;
}

torch::Tensor Taps::At(int layer, NodeLocation loc, torch::Tensor x) const {
  if (empty_) return x;
  const int site = layout_.Site(layer, loc);
  CIRCUIT_CHECK(site >= 0);
  return Apply(TapSite{layer, loc, site}, std::move(x));
}

torch::Tensor GateBlend(const torch::Tensor& x, const torch::Tensor& gate,
                        const torch::Tensor& value) {
  return torch::lerp(value.to(x.dtype()).expand_as(x), x, gate.to(x.dtype()));
}

TapFn RecordTap(std::vector<torch::Tensor>* out) {
  return [out](const TapSite& site, const torch::Tensor& x) {
    (*out)[site.site] = x;
    return x;
  };
}

TapFn BlendTap(const std::vector<torch::Tensor>* gates, const std::vector<torch::Tensor>* means) {
  return [gates, means](const TapSite& site, const torch::Tensor& x) -> torch::Tensor {
    const torch::Tensor& g = (*gates)[site.site];  // (width)
    if (!g.defined()) return x;
    const torch::Tensor* m = means != nullptr ? &(*means)[site.site] : nullptr;
    if (m == nullptr || !m->defined()) return x * g;  // zero ablation
    return x * g + (1 - g) * *m;
  };
}

PrefixSplit SplitTwinPrefixes(const torch::Tensor& tokens, const torch::Tensor& last) {
  CIRCUIT_CHECK(tokens.dim() == 2 && last.dim() == 1 && last.size(0) == tokens.size(0));
  const int64_t B = tokens.size(0), T = tokens.size(1), R = B / 2;
  CIRCUIT_CHECK(B % 2 == 0);
  const torch::Tensor tok = tokens.to(torch::kCPU, torch::kInt64).contiguous();
  const torch::Tensor end = last.to(torch::kCPU, torch::kInt64).contiguous();
  const int64_t* t = tok.data_ptr<int64_t>();
  const int64_t* e = end.data_ptr<int64_t>();
  // A pair shares its tokens up to the first that differs, and at most up to
  // either prompt's last token (which its own rows must compute).
  std::vector<int64_t> len(R);
  int64_t s = 0, S = 1;
  for (int64_t i = 0; i < R; ++i) {
    const int64_t* a = t + 2 * i * T;
    const int64_t* b = a + T;
    const int64_t limit = std::min(e[2 * i], e[2 * i + 1]);
    int64_t n = 0;
    while (n < limit && a[n] == b[n]) ++n;
    len[i] = n;
    s = std::max(s, n);
    S = std::max({S, e[2 * i] + 1 - n, e[2 * i + 1] + 1 - n});
  }
  PrefixSplit out;
  out.prefix = torch::zeros({R, s}, torch::kInt64);
  out.prefix_len = torch::tensor(len, torch::kInt64);
  out.suffix = torch::zeros({B, S}, torch::kInt64);
  out.suffix_pos = torch::empty({B, S}, torch::kInt64);
  out.suffix_last = torch::empty({B}, torch::kInt64);
  int64_t* p = out.prefix.data_ptr<int64_t>();
  int64_t* x = out.suffix.data_ptr<int64_t>();
  int64_t* pos = out.suffix_pos.data_ptr<int64_t>();
  int64_t* sl = out.suffix_last.data_ptr<int64_t>();
  for (int64_t i = 0; i < R; ++i) std::copy(t + 2 * i * T, t + 2 * i * T + len[i], p + i * s);
  for (int64_t j = 0; j < B; ++j) {
    const int64_t from = len[j / 2];
    sl[j] = e[j] - from;
    for (int64_t k = 0; k < S; ++k) {
      pos[j * S + k] = std::min(from + k, T - 1);
      if (from + k <= e[j]) x[j * S + k] = t[j * T + from + k];
    }
  }
  for (torch::Tensor* f : {&out.prefix, &out.prefix_len, &out.suffix, &out.suffix_pos,
                           &out.suffix_last}) {
    *f = f->to(tokens.device());
  }
  return out;
}

SplitResidual TapModel::EmbedSplit(const PrefixSplit& /*split*/) const {
  CIRCUIT_CHECK(false && "EmbedSplit: this model does not split prefixes");
  return {};
}

SplitResidual TapModel::LayersSplit(SplitResidual /*x*/, int /*begin*/, int /*end*/,
                                    const Taps* /*taps*/, const PrefixSplit& /*split*/) const {
  CIRCUIT_CHECK(false && "LayersSplit: this model does not split prefixes");
  return {};
}

}  // namespace circuit
