// Taps: interventions at the named sites of any architecture's forward pass.
#include "circuit/core/taps.h"

#include <utility>

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

torch::Tensor Taps::Apply(const TapSite& site, torch::Tensor x) const {
  for (const TapFn& fn : per_site_[site.site]) x = fn(site, x);
  return x;
}

torch::Tensor Taps::At(int layer, NodeLocation loc, torch::Tensor x) const {
  if (empty_) return x;
  const int site = layout_.Site(layer, loc);
  CIRCUIT_CHECK(site >= 0);
  return Apply(TapSite{layer, loc, site}, std::move(x));
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

}  // namespace circuit
