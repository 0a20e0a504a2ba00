// Refinement: greedy removal of kept units that the target does not need.
#include "circuit/prune/refine.h"

#include <algorithm>
#include <chrono>
#include <iterator>

#include "circuit/core/status.h"

namespace circuit::prune {

BatchLossFn EvaluatorLoss(const AblationEvaluator& eval, const LogitCalibration* cal, int stack) {
  return [&eval, cal, stack](const torch::Tensor& keeps) {
    std::vector<LossEstimate> out;
    for (int64_t start = 0; start < keeps.size(0); start += std::max(1, stack)) {
      const int64_t m = std::min<int64_t>(std::max(1, stack), keeps.size(0) - start);
      const torch::Tensor diffs = eval.LogitDiffsMany(keeps.narrow(0, start, m));  // (m, n)
      for (int64_t i = 0; i < m; ++i) {
        const TaskScore s = AblationEvaluator::ScoreDiffs(diffs[i], cal);
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

  std::vector<LossEstimate> Score(const std::vector<torch::Tensor>& keeps) {
    evaluations_ += static_cast<int64_t>(keeps.size());
    std::vector<LossEstimate> out = loss_of_(torch::stack(keeps));
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

}  // namespace

RefineResult RefineUnits(const BatchLossFn& loss_of, const MaskUnits& units,
                         const std::vector<int64_t>& kept_units, const RefineOptions& options,
                         const ProgressFn& progress) {
  const auto start = std::chrono::steady_clock::now();
  Refiner rf(loss_of, units, options);
  RefineResult r;
  std::vector<int64_t> kept = kept_units;
  std::sort(kept.begin(), kept.end());
  const size_t stack = static_cast<size_t>(std::max(1, options.stack));
  bool have_loss = false;
  while (true) {
    if (progress) progress("refine", 0.0);
    // Sweep: the set itself (first sweep only) and every single removal.
    std::vector<torch::Tensor> keeps;
    if (!have_loss) keeps.push_back(rf.Keep(kept, {}, 0));
    for (int64_t u : kept) keeps.push_back(rf.Keep(kept, {u}, 1));
    if (keeps.empty()) {  // every unit went
      r.removal_bound.clear();
      break;
    }
    std::vector<LossEstimate> scored = rf.Score(keeps);
    if (!have_loss) {
      r.loss = scored.front();
      scored.erase(scored.begin());
      have_loss = true;
    }
    ++r.passes;
    std::vector<double> bound(kept.size());
    for (size_t i = 0; i < kept.size(); ++i) bound[i] = rf.Bound(scored[i]);
    r.removal_bound = bound;
    // Candidates: units whose single removal meets the target, least important first.
    std::vector<size_t> cand;
    for (size_t i = 0; i < kept.size(); ++i) {
      if (bound[i] <= options.target_loss) cand.push_back(i);
    }
    if (!options.remove || cand.empty()) break;
    std::stable_sort(cand.begin(), cand.end(),
                     [&](size_t a, size_t b) { return bound[a] < bound[b]; });
    std::vector<int64_t> order;  // candidate unit ids in removal order
    for (size_t i : cand) order.push_back(kept[i]);

    std::vector<int64_t> removed;  // accepted this pass, in order
    size_t pos = 0;
    while (pos < order.size()) {
      if (progress) progress("refine", double(pos) / order.size());
      // Find the longest run order[pos .. pos + lo) whose removal (on top of
      // `removed`) meets the target: lo passes (0 trivially), hi fails (len + 1:
      // not evaluated), k-ary search with `stack` lengths per call.
      const size_t len = order.size() - pos;
      size_t lo = 0, hi = len + 1;
      LossEstimate lo_loss = r.loss;
      std::vector<int64_t> trial = removed;
      trial.insert(trial.end(), order.begin() + pos, order.end());
      while (hi - lo > 1) {
        std::vector<size_t> lengths;
        const size_t gap = hi - lo - 1;  // lengths strictly between lo and hi
        const size_t m = std::min(stack, gap);
        for (size_t j = 1; j <= m; ++j) {
          // Spread the probes over (lo, hi), the last one at hi - 1.
          lengths.push_back(lo + (gap * j + m - 1) / m);
        }
        lengths.erase(std::unique(lengths.begin(), lengths.end()), lengths.end());
        std::vector<torch::Tensor> probes;
        for (size_t l : lengths) probes.push_back(rf.Keep(kept, trial, removed.size() + l));
        const std::vector<LossEstimate> got = rf.Score(probes);
        size_t first_fail = lengths.size();
        for (size_t j = 0; j < lengths.size(); ++j) {
          if (!rf.Meets(got[j])) {
            first_fail = j;
            break;
          }
        }
        if (first_fail > 0) {
          lo = lengths[first_fail - 1];
          lo_loss = got[first_fail - 1];
        }
        if (first_fail < lengths.size()) hi = lengths[first_fail];
      }
      removed.insert(removed.end(), order.begin() + pos, order.begin() + pos + lo);
      if (lo > 0) r.loss = lo_loss;
      pos += lo + 1;  // order[pos + lo], when there is one, broke the target: it stays
    }
    if (removed.empty()) break;  // cannot happen with a deterministic loss; guards the loop
    for (int64_t u : removed) {
      r.removed_units += 1;
      r.removed_nodes += static_cast<int64_t>(units.unit_nodes[u].size());
    }
    std::sort(removed.begin(), removed.end());
    std::vector<int64_t> next;
    std::set_difference(kept.begin(), kept.end(), removed.begin(), removed.end(),
                        std::back_inserter(next));
    kept = std::move(next);
  }
  int64_t nodes = 0, needed = 0;
  for (size_t i = 0; i < kept.size(); ++i) {
    const int64_t n = static_cast<int64_t>(units.unit_nodes[kept[i]].size());
    nodes += n;
    if (r.removal_bound[i] > options.target_loss) needed += n;
  }
  if (nodes > 0) r.minimality = static_cast<double>(needed) / static_cast<double>(nodes);
  r.units = kept;
  r.evaluations = rf.evaluations();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (progress) progress("refine", 1.0);
  return r;
}

}  // namespace circuit::prune
