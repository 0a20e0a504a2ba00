// Refinement: greedy removal of kept units that the target does not need,
// selected on one split and confirmed on another (refine.h).
#include "circuit/prune/refine.h"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <limits>

#include "circuit/core/status.h"

namespace circuit::prune {

BatchLossFn EvaluatorLoss(const AblationEvaluator& eval, const LogitCalibration* cal, int stack,
                          bool give_up) {
  return [&eval, cal, stack, give_up](const torch::Tensor& keeps,
                                      const std::vector<double>& above) {
    CIRCUIT_CHECK(above.empty() || static_cast<int64_t>(above.size()) == keeps.size(0));
    const bool screen = give_up && !above.empty();
    std::vector<LossEstimate> out;
    for (int64_t start = 0; start < keeps.size(0); start += std::max(1, stack)) {
      const int64_t m = std::min<int64_t>(std::max(1, stack), keeps.size(0) - start);
      GiveUp g;
      if (screen) g = {{above.begin() + start, above.begin() + start + m}, cal};
      const torch::Tensor diffs =
          eval.LogitDiffsMany(keeps.narrow(0, start, m), screen ? &g : nullptr);  // (m, n)
      for (int64_t i = 0; i < m; ++i) {
        const TaskScore s = AblationEvaluator::ScreenedScore(diffs[i], cal);
        out.push_back({s.loss, s.loss_std_error});
      }
    }
    return out;
  };
}

namespace {

class Refiner {
 public:
  Refiner(const BatchLossFn& loss_of, const MaskUnits& units, const RefineOptions& options)
      : loss_of_(loss_of), units_(units), o_(options) {}

  double Bound(const LossEstimate& e) const { return e.loss + o_.z * e.std_error; }
  bool Meets(const LossEstimate& e) const { return Bound(e) <= o_.target_loss; }

  // The kept-node mask of `kept` without the units in removed[0..n).
  torch::Tensor Keep(const std::vector<int64_t>& kept, const std::vector<int64_t>& removed,
                     size_t n) const {
    torch::Tensor keep = torch::zeros({static_cast<int64_t>(units_.node_unit.size())});
    float* k = keep.data_ptr<float>();
    for (int64_t u : kept) {
      for (int64_t node : units_.unit_nodes[u]) k[node] = 1.0f;
    }
    for (size_t i = 0; i < n; ++i) {
      for (int64_t node : units_.unit_nodes[removed[i]]) k[node] = 0.0f;
    }
    return keep;
  }

  // above: empty (every set in full), or per set the target when the set only
  // needs to fail (RefineOptions::give_up) and +inf when its loss is read.
  std::vector<LossEstimate> Score(const std::vector<torch::Tensor>& keeps,
                                  std::vector<double> above = {}) {
    evaluations_ += static_cast<int64_t>(keeps.size());
    if (!o_.give_up) above.clear();
    std::vector<LossEstimate> out = loss_of_(torch::stack(keeps), above);
    CIRCUIT_CHECK(out.size() == keeps.size());
    return out;
  }

  int64_t evaluations() const { return evaluations_; }

 private:
  const BatchLossFn& loss_of_;
  const MaskUnits& units_;
  const RefineOptions& o_;
  int64_t evaluations_ = 0;
};

// Scores every single removal from `kept` on the selection split (and, when
// `with_set`, the set itself first); fills r->removal_bound and r->passes.
std::vector<LossEstimate> Sweep(Refiner& rf, const std::vector<int64_t>& kept, bool with_set,
                                const RefineOptions& o, RefineResult* r) {
  std::vector<torch::Tensor> keeps;
  std::vector<double> above;  // the set's loss is read; a removal only needs to fail
  if (with_set) {
    keeps.push_back(rf.Keep(kept, {}, 0));
    above.push_back(std::numeric_limits<double>::infinity());
  }
  for (int64_t u : kept) {
    keeps.push_back(rf.Keep(kept, {u}, 1));
    above.push_back(o.target_loss);
  }
  if (keeps.empty()) return {};
  std::vector<LossEstimate> scored = rf.Score(keeps, above);
  if (with_set) {
    r->select_loss = scored.front();
    scored.erase(scored.begin());
  }
  ++r->passes;
  r->removal_bound.resize(kept.size());
  for (size_t i = 0; i < kept.size(); ++i) r->removal_bound[i] = rf.Bound(scored[i]);
  return scored;
}

// One selection pass over the candidates of the last sweep (`single`: their
// single-removal losses): appends the accepted units to `removed`, in order.
void SelectPass(Refiner& rf, const std::vector<int64_t>& kept,
                const std::vector<LossEstimate>& single, const RefineOptions& o,
                const ProgressFn& progress, std::vector<int64_t>* removed, RefineResult* r) {
  std::vector<size_t> cand;  // units whose single removal meets the target, least important first
  for (size_t i = 0; i < kept.size(); ++i) {
    if (r->removal_bound[i] <= o.target_loss) cand.push_back(i);
  }
  std::stable_sort(cand.begin(), cand.end(), [&](size_t a, size_t b) {
    return r->removal_bound[a] < r->removal_bound[b];
  });
  std::vector<int64_t> order;
  for (size_t i : cand) order.push_back(kept[i]);
  const size_t base = removed->size();  // removed before this pass
  size_t pos = 0;
  while (pos < order.size()) {
    if (progress) progress("refine", double(pos) / order.size());
    // The longest run order[pos .. pos + lo) whose removal (on top of `removed`)
    // meets the target: lo passes, hi fails (len + 1: not evaluated). Galloping
    // (1, 2, 4, ...) then bisection, one set per call: a short run costs few sets.
    const size_t len = order.size() - pos;
    std::vector<int64_t> trial = *removed;
    trial.insert(trial.end(), order.begin() + pos, order.end());
    size_t lo = 0, hi = len + 1;
    LossEstimate lo_loss;
    if (removed->size() == base) {
      lo = 1;  // nothing removed this pass: the sweep scored exactly this set, and it met the target
      lo_loss = single[cand[pos]];
    }
    auto probe = [&](size_t l) {
      const LossEstimate e =
          rf.Score({rf.Keep(kept, trial, removed->size() + l)}, {o.target_loss}).front();
      if (!rf.Meets(e)) {
        hi = l;
        return false;
      }
      lo = l;
      lo_loss = e;
      return true;
    };
    while (lo < len) {
      if (!probe(std::min(lo == 0 ? size_t{1} : 2 * lo, len))) break;
    }
    while (hi - lo > 1) probe(lo + (hi - lo) / 2);
    removed->insert(removed->end(), order.begin() + pos, order.begin() + pos + lo);
    if (lo > 0) r->select_loss = lo_loss;
    pos += lo + 1;  // order[pos + lo], when there is one, broke the target: it stays
  }
}

std::vector<int64_t> Without(const std::vector<int64_t>& kept, std::vector<int64_t> removed) {
  std::sort(removed.begin(), removed.end());
  std::vector<int64_t> next;
  std::set_difference(kept.begin(), kept.end(), removed.begin(), removed.end(),
                      std::back_inserter(next));
  return next;
}

}  // namespace

RefineResult RefineUnits(const BatchLossFn& select, const MaskUnits& units,
                         const std::vector<int64_t>& kept_units, const RefineOptions& options,
                         const ProgressFn& progress, const BatchLossFn& confirm) {
  const auto start = std::chrono::steady_clock::now();
  Refiner rf(select, units, options);
  RefineResult r;
  std::vector<int64_t> input = kept_units;
  std::sort(input.begin(), input.end());
  std::vector<int64_t> kept = input;
  std::vector<int64_t> removal_order;  // every unit selection removed, in order
  Refiner cf(confirm, units, options);
  bool first = true, scored_on_confirm = false;
  while (true) {
    if (progress) progress("refine", 0.0);
    const std::vector<LossEstimate> single = Sweep(rf, kept, first, options, &r);
    first = false;
    if (kept.empty()) break;  // every unit went
    const size_t before = removal_order.size();
    if (options.remove) SelectPass(rf, kept, single, options, progress, &removal_order, &r);
    // No candidate (or, with a non-monotone loss, none that could go jointly):
    // this sweep measured the final set.
    if (removal_order.size() == before) break;
    kept = Without(input, removal_order);
    if (!confirm) continue;
    // Confirmation of this pass's removals: the set with the first p units of
    // removal_order removed, p in [before, m]. p = before met the target on the
    // confirmation split (an earlier confirmation, or the input: discretization
    // chose it there); find the largest p that does, by bisection.
    auto score = [&](size_t p) {
      return cf.Score({cf.Keep(input, removal_order, p)}, {options.target_loss}).front();
    };
    size_t lo = before, hi = removal_order.size();
    const LossEstimate got = score(hi);
    if (cf.Meets(got)) {
      r.loss = got;
      scored_on_confirm = true;
      continue;  // confirmed: the next sweep looks for more
    }
    while (hi - lo > 1) {
      const size_t mid = lo + (hi - lo) / 2;
      const LossEstimate e = score(mid);
      if (cf.Meets(e)) {
        lo = mid;
        r.loss = e;
        scored_on_confirm = true;
      } else {
        hi = mid;
      }
    }
    for (size_t i = lo; i < removal_order.size(); ++i) {
      r.readded_units += 1;
      r.readded_nodes += static_cast<int64_t>(units.unit_nodes[removal_order[i]].size());
    }
    removal_order.resize(lo);
    kept = Without(input, removal_order);
    if (options.final_sweep) {
      if (progress) progress("refine", 0.0);
      Sweep(rf, kept, /*with_set=*/true, options, &r);  // minimality of the set kept
    } else {
      r.removal_bound.clear();
    }
    break;  // selection went further than the confirmation split allows: stop here
  }
  if (!scored_on_confirm) {
    // Every confirmation failed (the input is kept: score it there too), or none ran.
    r.loss = cf.evaluations() > 0 ? cf.Score({cf.Keep(input, {}, 0)}).front() : r.select_loss;
  }
  r.confirm_evaluations = cf.evaluations();
  for (int64_t u : removal_order) {
    r.removed_units += 1;
    r.removed_nodes += static_cast<int64_t>(units.unit_nodes[u].size());
  }
  int64_t nodes = 0, needed = 0;
  const bool measured = r.removal_bound.size() == kept.size();
  for (size_t i = 0; i < kept.size(); ++i) {
    const int64_t n = static_cast<int64_t>(units.unit_nodes[kept[i]].size());
    nodes += n;
    if (measured && r.removal_bound[i] > options.target_loss) needed += n;
  }
  if (kept.empty()) r.removal_bound.clear();
  if (nodes > 0 && measured) r.minimality = static_cast<double>(needed) / static_cast<double>(nodes);
  r.units = kept;
  r.evaluations = rf.evaluations();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (progress) progress("refine", 1.0);
  return r;
}

}  // namespace circuit::prune
