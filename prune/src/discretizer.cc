// Sweep-then-bisect search for the smallest circuit meeting the target loss.
#include "circuit/prune/discretizer.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "absl/strings/str_cat.h"

namespace circuit::prune {

std::vector<int64_t> RankUnits(const torch::Tensor& scores) {
  const torch::Tensor s = scores.to(torch::kCPU, torch::kFloat64).contiguous();
  const double* v = s.data_ptr<double>();
  std::vector<int64_t> order(s.numel());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [v](int64_t a, int64_t b) { return v[a] > v[b]; });
  return order;
}

double TieTolerance(const torch::Tensor& scores) {
  if (scores.numel() == 0) return 1e-9;
  const torch::Tensor s = scores.to(torch::kFloat64);
  return std::max(1e-9, 1e-3 * (s.max().item<double>() - s.min().item<double>()));
}

std::vector<int64_t> RankUnits(const torch::Tensor& scores, const torch::Tensor& second) {
  if (!second.defined()) return RankUnits(scores);
  const torch::Tensor s = scores.to(torch::kCPU, torch::kFloat64).contiguous();
  const torch::Tensor t = second.to(torch::kCPU, torch::kFloat64).contiguous();
  const double* v = s.data_ptr<double>();
  const double* w = t.data_ptr<double>();
  const double tol = TieTolerance(s);
  // Near-ties are not transitive, so group first: the scores sorted descending
  // split into blocks, each within the tolerance of its first (highest) score.
  std::vector<int64_t> order = RankUnits(s);
  size_t begin = 0;
  for (size_t i = 1; i <= order.size(); ++i) {
    if (i == order.size() || v[order[begin]] - v[order[i]] > tol) {
      std::stable_sort(order.begin() + begin, order.begin() + i, [w](int64_t a, int64_t b) {
        return w[a] > w[b] || (w[a] == w[b] && a < b);
      });
      begin = i;
    }
  }
  return order;
}

TieAtCut FindTieAtCut(const torch::Tensor& scores, const std::vector<int64_t>& order, int64_t k,
                      const std::vector<int64_t>& weight) {
  TieAtCut t;
  const int64_t n = static_cast<int64_t>(order.size());
  if (k <= 0 || k >= n) return t;
  const torch::Tensor s = scores.to(torch::kCPU, torch::kFloat64).contiguous();
  const double* v = s.data_ptr<double>();
  const double tol = TieTolerance(s);
  t.score = v[order[k - 1]];
  t.tolerance = tol;
  for (int64_t r = 0; r < n; ++r) {
    if (std::abs(v[order[r]] - t.score) > tol) continue;
    (r < k ? t.tied_kept : t.tied_left) += weight.empty() ? 1 : weight[order[r]];
  }
  if (t.tied_left == 0) t.tied_kept = 0;
  return t;
}

double ConfidenceZ(double confidence) {
  // Bisection on the normal CDF, Phi(x) = erfc(-x / sqrt 2) / 2.
  double lo = 0.0, hi = 10.0;
  for (int i = 0; i < 80; ++i) {
    const double mid = 0.5 * (lo + hi);
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < confidence ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

absl::Status ValidateConfidence(double confidence) {
  if (confidence >= 0.5 && confidence < 1.0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("confidence must be in [0.5, 1), got ", confidence));
}

DiscretizeResult Discretize(const std::function<LossEstimate(int64_t)>& loss_at, int64_t n_units,
                            int64_t hint, const DiscretizeOptions& options) {
  std::map<int64_t, LossEstimate> seen;
  auto eval = [&](int64_t k) {
    auto it = seen.find(k);
    if (it != seen.end()) return it->second;
    const LossEstimate e = loss_at(k);
    seen[k] = e;
    return e;
  };
  const double target = options.target_loss;
  auto bound = [&](const LossEstimate& e) { return e.loss + options.z * e.std_error; };
  auto meets = [&](int64_t k) { return bound(eval(k)) <= target; };

  DiscretizeResult r;
  int64_t hi = std::clamp<int64_t>(hint, std::min<int64_t>(1, n_units), n_units);
  if (!meets(hi) && hi < n_units) hi = n_units;
  if (meets(hi)) {
    // Coarse log-spaced sweep over [1, hi], plus k = 0.
    int64_t lo = 0;
    std::vector<int64_t> sweep = {0};
    for (int i = 0; i < options.sweep_points && hi > 1; ++i) {
      const double f = options.sweep_points == 1 ? 1.0 : i / double(options.sweep_points - 1);
      sweep.push_back(static_cast<int64_t>(std::llround(std::pow(double(hi), f))));
    }
    std::sort(sweep.begin(), sweep.end());
    sweep.erase(std::unique(sweep.begin(), sweep.end()), sweep.end());
    for (int64_t k : sweep) {
      if (k >= hi) break;
      if (meets(k)) {
        hi = k;
        break;
      }
      lo = k;
    }
    if (lo >= hi) lo = -1;  // k = 0 already meets the target
    // Bisection between a failing lo and a passing hi.
    while (hi - lo > 1) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (meets(mid)) {
        hi = mid;
      } else {
        lo = mid;
      }
    }
    r.met_target = true;
    // The smallest evaluated k that meets the target (bisection assumes monotone).
    r.units = hi;
    for (const auto& [k, e] : seen) {
      if (bound(e) <= target) {
        r.units = std::min(r.units, k);
        break;
      }
    }
  } else {
    r.units = n_units;
  }
  const LossEstimate at = eval(r.units);
  r.loss = at.loss;
  r.loss_bound = bound(at);
  for (const auto& [k, e] : seen) {
    r.curve_units.push_back(k);
    r.curve_loss.push_back(e.loss);
  }
  r.evaluations = static_cast<int64_t>(seen.size());
  return r;
}

}  // namespace circuit::prune
