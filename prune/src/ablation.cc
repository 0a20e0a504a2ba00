// Ablation taps and batched scoring of kept-node sets.
#include "circuit/prune/ablation.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "circuit/core/runtime.h"
#include "circuit/core/status.h"

namespace circuit::prune {

absl::StatusOr<Ablation> ParseAblation(const std::string& name) {
  if (name == "mean") return Ablation::kMean;
  if (name == "zero") return Ablation::kZero;
  if (name == "resample") return Ablation::kResample;
  return absl::InvalidArgumentError(
      absl::StrCat("ablation: unknown value '", name, "' (expected mean, zero or resample)"));
}

std::string AblationName(Ablation ablation) {
  switch (ablation) {
    case Ablation::kMean: return "mean";
    case Ablation::kZero: return "zero";
    case Ablation::kResample: return "resample";
  }
  return "mean";
}

std::vector<torch::Tensor> SplitBySite(const torch::Tensor& flat, const NodeIndex& index) {
  CIRCUIT_CHECK(flat.dim() == 1 && flat.size(0) == index.total());
  std::vector<torch::Tensor> out(index.num_sites());
  for (int s = 0; s < index.num_sites(); ++s) {
    out[s] = flat.narrow(0, index.site_offset(s), index.site_width(s));
  }
  return out;
}

torch::Tensor ResamplePermutation(int64_t B) {
  auto gen = at::detail::createCPUGenerator(0x7e5a3b1eULL + static_cast<uint64_t>(B));
  torch::Tensor perm = torch::randperm(B, gen, torch::kInt64);  // (B)
  int64_t* p = perm.data_ptr<int64_t>();
  // Swapping a fixed point with its neighbour removes it without creating another.
  for (int64_t i = 0; i < B && B >= 2; ++i) {
    if (p[i] == i) std::swap(p[i], p[(i + 1) % B]);
  }
  return perm;
}

torch::Tensor AblatedValue(const torch::Tensor& x, int site,
                           const std::vector<torch::Tensor>& means, Ablation ablation) {
  const int64_t B = x.size(0);
  if (ablation == Ablation::kZero) return torch::zeros_like(x);
  if (ablation == Ablation::kResample && B >= 2) {
    return x.index_select(0, ResamplePermutation(B).to(x.device()));
  }
  const torch::Tensor& m = means[site];  // (width)
  CIRCUIT_CHECK(m.defined());
  return m.to(x.dtype()).expand_as(x);
}

TapFn GateTap(const std::vector<torch::Tensor>* gates, const std::vector<torch::Tensor>* means,
              Ablation ablation) {
  return [gates, means, ablation](const TapSite& site, const torch::Tensor& x) -> torch::Tensor {
    const torch::Tensor& g = (*gates)[site.site];  // (width), or (G, 1, 1, width)
    if (!g.defined()) return x;
    if (g.dim() == 4) {
      // One gate row per stacked copy of the batch: x (G * B, T, width).
      const torch::Tensor xs = x.reshape({g.size(0), -1, x.size(1), x.size(2)});
      const torch::Tensor r = AblatedValue(xs, site.site, *means, ablation);
      return torch::lerp(r, xs, g.to(x.dtype())).view(x.sizes());
    }
    const torch::Tensor r = AblatedValue(x, site.site, *means, ablation);  // (B, T, width)
    // r + g * (x - r) = g * x + (1 - g) * r in one fused kernel that keeps no
    // intermediate tensors for the backward pass (it saves x, r and g).
    return torch::lerp(r, x, g.to(x.dtype()));
  };
}

void AddGates(Taps* taps, const std::vector<torch::Tensor>* gates,
              const std::vector<torch::Tensor>* means, Ablation ablation,
              std::vector<torch::Tensor>* values) {
  if (ablation == Ablation::kResample) return taps->Add(GateTap(gates, means, ablation));
  values->assign(means->begin(), means->end());
  if (ablation == Ablation::kZero) {
    for (torch::Tensor& v : *values) v = v.defined() ? torch::zeros_like(v) : v;
  }
  taps->SetBlend(gates, values);
}

namespace {

// Per site, what GateTap returns whatever x where every gate is 0 (mean: the
// site's mean; zero: 0), undefined elsewhere: the model skips sublayers that
// only feed such sites (Taps::SetConstants). Resampling depends on x.
std::vector<torch::Tensor> ConstantSites(const std::vector<torch::Tensor>& gates,
                                         const std::vector<torch::Tensor>& means,
                                         Ablation ablation) {
  std::vector<torch::Tensor> out(gates.size());
  if (ablation == Ablation::kResample) return out;
  for (size_t s = 0; s < gates.size(); ++s) {
    const torch::Tensor& g = gates[s];
    if (!g.defined() || g.dim() != 1 || g.ne(0).any().item<bool>()) continue;
    out[s] = ablation == Ablation::kZero ? torch::zeros_like(g) : means[s].to(g.dtype());
  }
  return out;
}

// Running lower bounds of each set's mean loss, and which sets are still scored (GiveUp).
class Screen {
 public:
  Screen(const GiveUp* give_up, int64_t M, int64_t n)
      : give_up_(give_up), sums_(M, 0.0), alive_(M, true), n_(n) {
    if (give_up_ == nullptr) return;
    CIRCUIT_CHECK(static_cast<int64_t>(give_up_->above.size()) == M);
    signs_ = TwinSigns(n);
  }
  bool active() const { return give_up_ != nullptr; }
  bool alive(int64_t m) const { return alive_[m]; }
  // d: (B) differences of set m on the examples `rows` (indices, (B) int64).
  void Add(int64_t m, const torch::Tensor& d, const torch::Tensor& rows) {
    if (give_up_ == nullptr || !alive_[m] || std::isinf(give_up_->above[m])) return;
    const LogitCalibration identity;
    const LogitCalibration& c = give_up_->cal != nullptr ? *give_up_->cal : identity;
    const torch::Tensor losses = CalibratedLoss(d, signs_.index_select(0, rows), c);
    sums_[m] += losses.to(torch::kFloat64).sum().item<double>();
    const double a = give_up_->above[m];
    if (sums_[m] / n_ > a + 1e-6 * std::max(1.0, std::abs(a))) alive_[m] = false;
  }

 private:
  const GiveUp* give_up_;
  std::vector<double> sums_;
  std::vector<bool> alive_;
  int64_t n_;
  torch::Tensor signs_;
};

// The (M, B) differences of each batch: score(b, alive) computes the rows of
// the sets alive and leaves the others NaN. The batches are spread over the
// threads (ParallelFor: each batch's passes single-threaded; a free thread takes
// the next batch, so none waits for another). With a GiveUp the screen reads the
// batches in order as they finish; a batch scores the sets the screen had not
// dropped when it started, and a set the screen drops at an earlier batch loses
// its rows of the later ones. Figures, and the passes and rows counted, are
// then those of scoring one batch after another; threads only add passes whose
// rows are discarded.
using BatchScoreFn = std::function<torch::Tensor(int64_t b, const std::vector<bool>& alive)>;
std::vector<torch::Tensor> ScoreBatches(const std::vector<TaskBatch>& batches,
                                        const torch::Tensor& order, int64_t M, Screen& screen,
                                        const BatchScoreFn& score, int64_t* passes,
                                        int64_t* rows_scored) {
  const int64_t nb = static_cast<int64_t>(batches.size());
  std::vector<torch::Tensor> out(nb);
  std::vector<int64_t> offsets(nb + 1, 0);  // of each batch's first row in `order`
  for (int64_t b = 0; b < nb; ++b) offsets[b + 1] = offsets[b] + batches[b].tokens.size(0);
  std::mutex mu;  // guards the screen, `out` and `screened`
  int64_t screened = 0;  // batches the screen has read, in order
  auto read = [&](int64_t b) {
    const int64_t B = batches[b].tokens.size(0);
    const torch::Tensor rows = order.narrow(0, offsets[b], B);
    for (int64_t m = 0; m < M; ++m) {
      if (!screen.alive(m)) {  // dropped at an earlier batch
        out[b][m].fill_(std::nanf(""));
        continue;
      }
      ++*passes;
      *rows_scored += B;
      screen.Add(m, out[b][m], rows);
    }
  };
  auto run = [&](int64_t b) {
    std::vector<bool> alive(M);
    {
      std::lock_guard<std::mutex> lock(mu);
      for (int64_t m = 0; m < M; ++m) alive[m] = screen.alive(m);
    }
    torch::Tensor d = std::none_of(alive.begin(), alive.end(), [](bool a) { return a; })
                          ? torch::full({M, batches[b].tokens.size(0)}, std::nanf(""), torch::kFloat32)
                          : score(b, alive);
    std::lock_guard<std::mutex> lock(mu);
    out[b] = std::move(d);
    for (; screened < nb && out[screened].defined(); ++screened) read(screened);
  };
  if (screen.active()) {
    ParallelFor(nb, run);  // in order: the screen reads a batch once those before it are read
  } else {
    // Longest batches first (they are sorted by length), so that the last
    // ones taken are short and the threads finish together.
    ParallelFor(nb, [&](int64_t j) { run(nb - 1 - j); });
  }
  return out;
}

}  // namespace

AblationEvaluator::AblationEvaluator(const TapModel& model, const NodeIndex& index,
                                     const std::vector<torch::Tensor>& means, Ablation ablation,
                                     const std::vector<TaskExample>& examples, int batch_prompts)
    : model_(model), index_(index), means_(means), ablation_(ablation) {
  const int64_t n = static_cast<int64_t>(examples.size());
  const int64_t step = std::max<int64_t>(2, batch_prompts + (batch_prompts % 2));
  // Batches of pairs of similar length waste less compute on padding; twins stay
  // together so that resampling and the twin signs keep their meaning.
  std::vector<int64_t> pairs((n + 1) / 2);
  for (size_t p = 0; p < pairs.size(); ++p) pairs[p] = static_cast<int64_t>(p);
  auto length = [&](int64_t p) {
    size_t len = examples[2 * p].tokens.size();
    if (2 * p + 1 < n) len = std::max(len, examples[2 * p + 1].tokens.size());
    return len;
  };
  std::stable_sort(pairs.begin(), pairs.end(),
                   [&](int64_t a, int64_t b) { return length(a) < length(b); });
  std::vector<int64_t> order;  // example indices in batch order
  for (int64_t p : pairs) {
    order.push_back(2 * p);
    if (2 * p + 1 < n) order.push_back(2 * p + 1);
  }
  for (int64_t start = 0; start < n; start += step) {
    const int64_t end = std::min(n, start + step);
    std::vector<TaskExample> chunk;
    for (int64_t i = start; i < end; ++i) chunk.push_back(examples[order[i]]);
    batches_.push_back(MakeTaskBatch(chunk, model.device()));
    splits_.push_back(TwinSplit(model, batches_.back(), ablation));
  }
  order_ = torch::tensor(order, torch::kInt64);
  n_examples_ = n;
}

bool SharePrefixes() {
  static const bool share = [] {
    const char* env = std::getenv("CIRCUIT_SHARE_PREFIXES");
    return env == nullptr || std::string(env) != "0";
  }();
  return share;
}

PrefixSplit TwinSplit(const TapModel& model, const TaskBatch& batch, Ablation ablation) {
  // Twins share the tokens before their quote, bracket, ...: about half of
  // the built-in tasks' tokens.
  if (!SharePrefixes() || !model.SplitsPrefixes() || ablation == Ablation::kResample ||
      batch.tokens.size(0) % 2 != 0) {
    return {};
  }
  PrefixSplit split = SplitTwinPrefixes(batch.tokens, batch.last);
  const int64_t rows = split.prefix.numel() + split.suffix.numel();  // token rows computed
  if (10 * rows > 9 * batch.tokens.numel()) return {};
  return split;
}

std::vector<torch::Tensor> KeepGates(const torch::Tensor& keep, const NodeIndex& index,
                                     torch::Device device) {
  const std::vector<torch::Tensor> per_site =
      SplitBySite(keep.to(torch::kCPU, torch::kFloat32), index);
  std::vector<torch::Tensor> gates(index.num_sites());
  for (int s = 0; s < index.num_sites(); ++s) {
    if (per_site[s].min().item<float>() < 1.0f) gates[s] = per_site[s].to(device);
  }
  return gates;
}

void AblationEvaluator::SetProduct(ProductFn fn) {
  CIRCUIT_CHECK(ablation_ != Ablation::kResample);
  product_ = std::move(fn);
}

namespace {

// AnswerLogits' stages on one batch, G stacked copies of it at a time: with
// each twin pair's common prefix run once when the batch has a PrefixSplit.
class Stages {
 public:
  Stages(const TapModel& model, const TaskBatch& b, const PrefixSplit& split)
      : model_(model), b_(b), split_(split.suffix.defined() ? &split : nullptr) {}

  SplitResidual Embed() const {
    return split_ != nullptr ? model_.EmbedSplit(*split_) : SplitResidual{{}, model_.Embed(b_.tokens)};
  }
  SplitResidual Layers(SplitResidual x, int begin, int end, const Taps* taps) const {
    if (split_ != nullptr) return model_.LayersSplit(std::move(x), begin, end, taps, *split_);
    x.suffix = model_.Layers(x.suffix, begin, end, taps, b_.last.repeat({Copies(x)}));
    return x;
  }
  // After the last layer: logits (G * B, V).
  torch::Tensor Head(const SplitResidual& x, const Taps* taps) const {
    const int64_t G = Copies(x);
    return model_.HeadAt(x.suffix, b_.tokens.repeat({G, 1}), b_.last.repeat({G}), taps);
  }
  static SplitResidual Repeat(const SplitResidual& x, int64_t G) {
    return {x.prefix.defined() ? x.prefix.repeat({G, 1, 1}) : x.prefix, x.suffix.repeat({G, 1, 1})};
  }

 private:
  int64_t Copies(const SplitResidual& x) const { return x.suffix.size(0) / b_.tokens.size(0); }

  const TapModel& model_;
  const TaskBatch& b_;
  const PrefixSplit* split_;
};

}  // namespace

torch::Tensor BatchAnswerLogits(const TapModel& model, const TaskBatch& batch,
                                const PrefixSplit& split, Ablation ablation, const Taps* taps) {
  if (ablation == Ablation::kResample) return model.ForwardAt(batch.tokens, batch.last, taps);
  if (!split.suffix.defined()) return model.AnswerLogits(batch.tokens, batch.last, taps);
  const Stages stages(model, batch, split);
  return stages.Head(stages.Layers(stages.Embed(), 0, model.layout().n_layer(), taps), taps);
}

torch::Tensor AblationEvaluator::LogitDiffs(const torch::Tensor& keep, const GiveUp* give_up) const {
  torch::NoGradGuard no_grad;
  const std::vector<torch::Tensor> gates = keep.defined()
                                              ? KeepGates(keep, index_, model_.device())
                                              : std::vector<torch::Tensor>(index_.num_sites());
  const bool any = product_ || std::any_of(gates.begin(), gates.end(),
                                           [](const torch::Tensor& g) { return g.defined(); });
  Taps taps(index_.layout());
  if (any) taps.Add(GateTap(&gates, &means_, ablation_));
  const std::vector<torch::Tensor> constants = ConstantSites(gates, means_, ablation_);
  if (product_) {
    taps.SetProduct(product_);
  } else {
    taps.SetConstants(&constants);
  }
  Screen screen(give_up, 1, n_examples_);
  const std::vector<torch::Tensor> diffs = ScoreBatches(
      batches_, order_, 1, screen,
      [&](int64_t batch, const std::vector<bool>&) {
        const TaskBatch& b = batches_[batch];
        const torch::Tensor logits =
            BatchAnswerLogits(model_, b, splits_[batch], ablation_, any ? &taps : nullptr);  // (B, V)
        torch::Tensor d = logits.gather(1, b.correct.unsqueeze(1)).squeeze(1) -
                          logits.gather(1, b.alternative.unsqueeze(1)).squeeze(1);  // (B)
        return d.to(torch::kCPU, torch::kFloat32).unsqueeze(0);
      },
      &forward_passes_, &rows_scored_);
  if (diffs.empty()) return torch::zeros({0});
  // Back to the order of the examples given.
  return torch::zeros({n_examples_}, torch::kFloat32)
      .index_copy_(0, order_, torch::cat(diffs, 1)[0]);
}

namespace {

// l_correct - l_alternative of logits (R * B, V) for R copies of batch b: (R, B).
torch::Tensor DiffsOf(const torch::Tensor& logits, const TaskBatch& b, int64_t R) {
  const int64_t B = b.tokens.size(0);
  const torch::Tensor d = logits.gather(1, b.correct.repeat({R}).unsqueeze(1)).squeeze(1) -
                          logits.gather(1, b.alternative.repeat({R}).unsqueeze(1)).squeeze(1);
  return d.view({R, B}).to(torch::kCPU, torch::kFloat32);
}

}  // namespace

// The sets are compared with a base set, the per-node median of the M sets (for
// 0/1 sets: the majority). Set m agrees with the base on every site below its
// first differing stage d_m (a layer, or n_layer for final_resid alone), so its
// residual stream entering layer d_m is the base's: the base runs once per
// batch up to the largest d_m, and each group of sets with the same d_m runs
// stacked along the batch from the base's residual at d_m. Sets equal to the
// base take the base's logits. Discretization's top-k sets differ at layer 0
// and gain nothing; one-node changes of a circuit (refinement, importances)
// skip on average half the layers.
torch::Tensor AblationEvaluator::LogitDiffsMany(const torch::Tensor& keeps,
                                                const GiveUp* give_up) const {
  CIRCUIT_CHECK(keeps.dim() == 2 && keeps.size(1) == index_.total());
  const int64_t M = keeps.size(0);
  if (M <= 1 || ablation_ == Ablation::kResample || product_) {
    std::vector<torch::Tensor> rows;
    for (int64_t m = 0; m < M; ++m) {
      GiveUp one;
      if (give_up != nullptr) one = {{give_up->above[m]}, give_up->cal};
      rows.push_back(LogitDiffs(keeps[m], give_up != nullptr ? &one : nullptr));
    }
    return rows.empty() ? torch::zeros({0, n_examples_}) : torch::stack(rows);
  }
  torch::NoGradGuard no_grad;
  const int n_layer = index_.n_layer();
  const int n_sites = index_.num_sites();
  const torch::Tensor k = keeps.to(torch::kCPU, torch::kFloat32).contiguous();
  const torch::Tensor base = std::get<0>(k.median(0));  // (N)
  auto stage_of = [&](int site) { return index_.SiteStage(site); };  // final_resid: n_layer
  std::vector<int> first(M, n_layer + 1);  // n_layer + 1: equal to the base
  std::vector<torch::Tensor> base_gates(n_sites);
  for (int s = 0; s < n_sites; ++s) {
    const torch::Tensor b = base.narrow(0, index_.site_offset(s), index_.site_width(s));
    if (b.min().item<float>() < 1.0f) base_gates[s] = b.to(model_.device());
    const torch::Tensor differs =
        (k.narrow(1, index_.site_offset(s), index_.site_width(s)) != b.unsqueeze(0)).any(1);
    const bool* d = differs.contiguous().data_ptr<bool>();
    for (int64_t m = 0; m < M; ++m) {
      if (d[m]) first[m] = std::min(first[m], stage_of(s));
    }
  }
  // Groups of sets by first differing stage, each with its gates per site:
  // (width) where the group agrees, (G, 1, 1, width) where it does not (GateTap).
  struct Group {
    std::vector<int64_t> rows;
    std::vector<torch::Tensor> gates;  // per site
    std::vector<bool> stacked;
    std::vector<torch::Tensor> constants;  // ConstantSites of gates
  };
  std::map<int, Group> groups;
  for (int64_t m = 0; m < M; ++m) groups[first[m]].rows.push_back(m);
  int base_layers = 0;  // layers the base runs
  for (auto& [d, g] : groups) {
    base_layers = std::max(base_layers, std::min(d, n_layer));
    if (d > n_layer) continue;
    const torch::Tensor rows = torch::tensor(g.rows, torch::kInt64);
    const torch::Tensor gk = k.index_select(0, rows);  // (G, N)
    g.gates.assign(n_sites, torch::Tensor());
    g.stacked.assign(n_sites, false);
    for (int s = 0; s < n_sites; ++s) {
      if (stage_of(s) < d) continue;  // shared with the base
      const torch::Tensor gs = gk.narrow(1, index_.site_offset(s), index_.site_width(s));
      if ((gs != gs[0].unsqueeze(0)).any().item<bool>()) {
        g.gates[s] = gs.reshape({gs.size(0), 1, 1, gs.size(1)}).to(model_.device());
        g.stacked[s] = true;
      } else if (gs[0].min().item<float>() < 1.0f) {
        g.gates[s] = gs[0].to(model_.device());
      }
    }
    g.constants = ConstantSites(g.gates, means_, ablation_);
  }

  Taps base_taps(index_.layout());
  base_taps.Add(GateTap(&base_gates, &means_, ablation_));
  const std::vector<torch::Tensor> base_constants = ConstantSites(base_gates, means_, ablation_);
  base_taps.SetConstants(&base_constants);
  Screen screen(give_up, M, n_examples_);
  const std::vector<torch::Tensor> diffs = ScoreBatches(
      batches_, order_, M, screen,
      [&](int64_t batch, const std::vector<bool>& alive_sets) {
        const TaskBatch& b = batches_[batch];
        const Stages stages(model_, b, splits_[batch]);
        const int64_t B = b.tokens.size(0);
        torch::Tensor out = torch::full({M, B}, std::nanf(""), torch::kFloat32);
        std::vector<torch::Tensor> gates(n_sites);
        Taps taps(index_.layout());
        taps.Add(GateTap(&gates, &means_, ablation_));
        std::vector<SplitResidual> xs = {stages.Embed()};  // residual entering each layer
        for (int l = 0; l < base_layers; ++l) {
          xs.push_back(stages.Layers(xs.back(), l, l + 1, &base_taps));
        }
        for (const auto& [d, g] : groups) {
          // The group's sets still scored (positions in g.rows).
          std::vector<int64_t> pos, rows;
          for (size_t c = 0; c < g.rows.size(); ++c) {
            if (!alive_sets[g.rows[c]]) continue;
            pos.push_back(static_cast<int64_t>(c));
            rows.push_back(g.rows[c]);
          }
          if (pos.empty()) continue;
          const int64_t G = static_cast<int64_t>(pos.size());
          const bool all = G == static_cast<int64_t>(g.rows.size());
          const torch::Tensor p = torch::tensor(pos, torch::kInt64);
          torch::Tensor d_rows;
          if (d > n_layer) {
            d_rows = DiffsOf(stages.Head(xs[n_layer], &base_taps), b, 1).expand({G, B});
          } else {
            for (int s = 0; s < n_sites; ++s) {
              const torch::Tensor gs =
                  g.stacked[s] && !all ? g.gates[s].index_select(0, p.to(g.gates[s].device()))
                                       : g.gates[s];
              gates[s] = gs;
            }
            taps.SetConstants(&g.constants);
            // Row c * B + i is prompt i under the group's c-th set still scored.
            const SplitResidual x = stages.Layers(Stages::Repeat(xs[d], G), d, n_layer, &taps);
            d_rows = DiffsOf(stages.Head(x, &taps), b, G);
          }
          out.index_copy_(0, torch::tensor(rows, torch::kInt64), d_rows);
        }
        return out;
      },
      &forward_passes_, &rows_scored_);
  if (diffs.empty()) return torch::zeros({M, 0});
  return torch::zeros({M, n_examples_}, torch::kFloat32).index_copy_(1, order_, torch::cat(diffs, 1));
}

TaskScore AblationEvaluator::ScoreDiffs(const torch::Tensor& diffs, const LogitCalibration* cal) {
  TaskScore score;
  if (diffs.numel() == 0) return score;
  const torch::Tensor sign = TwinSigns(diffs.size(0));
  const LogitCalibration identity;
  const LogitCalibration& c = cal != nullptr ? *cal : identity;
  const torch::Tensor losses = CalibratedLoss(diffs, sign, c).to(torch::kFloat64);
  score.loss = losses.mean().item<double>();
  const int64_t pairs = losses.numel() / 2;
  if (pairs >= 2) {
    const torch::Tensor pair_loss = losses.narrow(0, 0, 2 * pairs).view({pairs, 2}).mean(1);
    score.loss_std_error = pair_loss.std().item<double>() / std::sqrt(static_cast<double>(pairs));
  }
  // A calibrated prediction is right when the calibrated difference is positive.
  torch::Tensor calibrated = diffs * c.scale + sign * c.shift;
  score.accuracy = (calibrated > 0).to(torch::kFloat64).mean().item<double>();
  return score;
}

TaskScore AblationEvaluator::ScreenedScore(const torch::Tensor& diffs,
                                           const LogitCalibration* cal) {
  const torch::Tensor missing = torch::isnan(diffs);
  if (!missing.any().item<bool>()) return ScoreDiffs(diffs, cal);
  const LogitCalibration identity;
  const torch::Tensor losses =
      CalibratedLoss(diffs, TwinSigns(diffs.size(0)), cal != nullptr ? *cal : identity);
  TaskScore score;
  score.loss = losses.masked_fill(missing, 0.0).to(torch::kFloat64).sum().item<double>() /
               static_cast<double>(diffs.size(0));
  score.accuracy = std::nan("");
  return score;
}

TaskScore AblationEvaluator::Score(const torch::Tensor& keep, const LogitCalibration* cal) const {
  return ScoreDiffs(LogitDiffs(keep), cal);
}

}  // namespace circuit::prune
